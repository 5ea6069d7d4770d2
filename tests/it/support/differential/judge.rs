//! The differential test's verdict on one row: the parts of both answers, the wants each side
//! missed, and the report of a row that did not hold.

use super::side::{Outcome, Seen, Side};
use super::*;
use crate::support::client::Answer;

/// The compared parts of one side's answer, normalised.
pub(super) fn parts(side: &Side<'_>, seen: &Seen) -> Vec<(Part, String)> {
    let mut parts = Vec::new();
    match &seen.outcome {
        Outcome::Refused(_) => parts.push((Part::Handshake, "refused".to_owned())),
        Outcome::NoAnswer(e) => {
            parts.push((Part::Handshake, "completed".to_owned()));
            parts.push((Part::Status, format!("no answer: {e}")));
        }
        Outcome::Answered(version, a) => {
            parts.push((Part::Handshake, "completed".to_owned()));
            parts.push((Part::Protocol, format!("{version:?}")));
            parts.push((Part::Status, a.status.as_u16().to_string()));
            let header = |name: &str| side.normalise(&format!("{:?}", a.all(name)));
            parts.push((Part::ApiVersion, header("docker-distribution-api-version")));
            parts.push((Part::Challenge, header("www-authenticate")));
            parts.push((Part::Location, header("location")));
            parts.push((Part::Digest, header("docker-content-digest")));
            parts.push((Part::Range, header("range")));
            let body = format!(
                "content-type {} content-length {} body {:?}",
                header("content-type"),
                header("content-length"),
                side.normalise(&a.text())
            );
            parts.push((Part::Body, body));
        }
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    parts.push((Part::UpstreamProtocol, or_dash(seen.upstream.clone())));
    parts.push((
        Part::Buffering,
        or_dash(seen.buffering.map(|b| format!("{b:?}"))),
    ));
    parts
}

/// Every way the row did not hold: a want not met, or a part that differs without an exception.
pub(super) fn judge(
    row: &Row,
    exceptions: &Exceptions,
    sides: &[Side<'_>; 2],
    seen: &[Seen],
) -> Vec<String> {
    let (wants, exempt): ([Want; 2], &[Part]) = match row.expect {
        Expect::Same(want) => ([want, want], &[]),
        Expect::Differs { why, nginx, gate } => {
            let (_, parts, _) = exceptions
                .iter()
                .find(|(w, ..)| *w == why)
                .expect("every exception is listed");
            ([nginx, gate], parts)
        }
    };
    let mut problems = Vec::new();
    for ((side, seen), want) in sides.iter().zip(seen).zip(wants) {
        for miss in misses(&want, side, seen) {
            problems.push(format!("{}: {miss}", side.name));
        }
    }
    let (a, b) = (parts(&sides[0], &seen[0]), parts(&sides[1], &seen[1]));
    for (part, left) in &a {
        let right = b.iter().find(|(p, _)| p == part).map(|(_, v)| v.as_str());
        if right != Some(left.as_str()) && !exempt.contains(part) {
            problems.push(format!(
                "{part:?} differs: nginx {left} | gate {}",
                right.unwrap_or("(none)")
            ));
        }
    }
    problems
}

/// How `seen` falls short of `want`.
pub(super) fn misses(want: &Want, side: &Side<'_>, seen: &Seen) -> Vec<String> {
    let mut misses = Vec::new();
    let answer = match (&seen.outcome, want.refused) {
        (Outcome::Refused(_), true) => return misses,
        (Outcome::Refused(e), false) => return vec![format!("refused: {e}")],
        (_, true) => return vec!["completed a handshake it should refuse".to_owned()],
        (Outcome::NoAnswer(e), false) => return vec![e.clone()],
        (Outcome::Answered(version, answer), false) => {
            if want.protocol.is_some_and(|v| v != *version) {
                misses.push(format!("spoke {version:?}, want {:?}", want.protocol));
            }
            answer
        }
    };
    if want.status.is_some_and(|s| s != answer.status.as_u16()) {
        misses.push(format!("status {}, want {:?}", answer.status, want.status));
    }
    let first = |name: &str| answer.all(name).first().map(|v| side.normalise(v));
    if let Some(shape) = want.location {
        if first("location").as_deref() != Some(shape) {
            misses.push(format!("location {:?}, want {shape:?}", first("location")));
        }
    }
    if let Some(shape) = want.digest {
        if first("docker-content-digest").as_deref() != Some(shape) {
            misses.push(format!(
                "digest {:?}, want {shape:?}",
                first("docker-content-digest")
            ));
        }
    }
    if let Some(page) = want.page {
        if let Err(e) = check_page(page, answer) {
            misses.push(e);
        }
    }
    if want.upstream.is_some() && seen.upstream.as_deref() != want.upstream {
        misses.push(format!(
            "registry saw {:?}, want {:?}",
            seen.upstream, want.upstream
        ));
    }
    if want.buffering.is_some() && seen.buffering != want.buffering {
        misses.push(format!(
            "held body {:?}, want {:?}",
            seen.buffering, want.buffering
        ));
    }
    misses
}

pub(super) fn check_page(page: Page, answer: &Answer) -> Result<(), String> {
    let content_type = answer.all("content-type").join(", ");
    match page {
        Page::Html if content_type.starts_with("text/html") && answer.text().contains("<html>") => {
            Ok(())
        }
        Page::Json(code) if content_type.starts_with("application/json") => {
            let json: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|e| format!("body is not JSON ({e}): {}", answer.text()))?;
            let got = &json["errors"][0]["code"];
            (got == code)
                .then_some(())
                .ok_or_else(|| format!("error code {got}, want {code}"))
        }
        _ => Err(format!(
            "{content_type:?} body {:?}, want {page:?}",
            answer.text()
        )),
    }
}

pub(super) fn report(row: &Row, problems: &[String], seen: &[Seen]) -> String {
    let mut text = format!(
        "row {:?}: {} {} (auth {:?}, user agent {:?}, headers {:?}, body {:?}, {:?})\n",
        row.name,
        row.method,
        row.path,
        row.auth,
        row.user_agent,
        row.headers,
        row.body,
        row.transport
    );
    for problem in problems {
        text.push_str(&format!("  - {problem}\n"));
    }
    for (name, seen) in ["nginx", "gate"].iter().zip(seen) {
        text.push_str(&format!("  {name} answered: {}\n", describe(seen)));
    }
    text
}

pub(super) fn describe(seen: &Seen) -> String {
    match &seen.outcome {
        Outcome::Refused(e) | Outcome::NoAnswer(e) => e.clone(),
        Outcome::Answered(version, a) => {
            let headers: Vec<String> = a
                .headers
                .iter()
                .filter(|(n, _)| *n != "date")
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            format!(
                "{version:?} {} [{}] {:?}",
                a.status,
                headers.join("; "),
                a.text()
            )
        }
    }
}
