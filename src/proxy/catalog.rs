//! `/v2/_catalog` under rules: the registry's list, filtered to the repositories
//! the user may pull.
//!
//! The gate walks the registry's pages (`?n=1000&last=...`, following its
//! `Link: ...; rel="next"`) from the client's `last`, keeps the names the rules
//! let the user pull, and answers the client's page size `n` (default 100, at most
//! 1000) with a `Link` to the next page when more remain, as the registry does.
//!
//! The walk is bounded: at most [`MAX_PAGES`] registry pages per client request. In
//! distribution 2.8 every page is a fresh storage walk from the root, so a user who
//! may pull few repositories could otherwise cost the registry hundreds of full walks
//! with one request (review F9). When the bound is hit, the gate answers what it
//! found (possibly nothing) with a `Link` that continues from where its walk stopped
//! (the last name the registry gave, every name before which was read), so a client
//! following `Link`s still sees every name it may pull, one bounded request at a
//! time. A short-lived cache of the whole catalog would save the walks too, but it
//! would hold every name in memory per state and show stale lists; the bound keeps
//! the gate stateless and the cost per request at most `MAX_PAGES` registry pages.
//!
//! In token mode the client's `Authorization` (its catalog token) goes with every
//! page request: the registry decides whether the client may list at all.

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::header::{CONTENT_TYPE, LINK};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use serde::{Deserialize, Serialize};

use super::{Answer, Error};
use crate::auth::Identity;
use crate::authz::policy::Policy;
use crate::authz::rules::{Request, Rights};
use crate::state::State;

/// Names asked of the registry per page.
const PAGE: usize = 1000;
/// Registry pages read at most for one client request (10 000 names).
const MAX_PAGES: usize = 10;
/// The client's page size when it gives none (the registry's default).
const DEFAULT_N: usize = 100;
/// The largest page a client gets.
const MAX_N: usize = 1000;
/// Largest registry page body accepted.
const MAX_PAGE_BYTES: usize = 16 << 20;

/// A page as the registry sends it.
#[derive(Deserialize)]
struct Page {
    repositories: Vec<String>,
}

/// A page as the gate answers it.
#[derive(Serialize)]
struct Answered<'a> {
    repositories: &'a [String],
}

/// Answers `/v2/_catalog` with only the repositories `who` may pull.
pub async fn list(
    state: &State,
    policy: &Policy<'_>,
    who: Option<&Identity>,
    query: Option<&str>,
) -> Result<Response<Answer>, Error> {
    list_as(state, policy, who, query, None).await
}

/// [`list`], sending `authorization` (token mode: the client's bearer token) with
/// each registry page request.
pub async fn list_as(
    state: &State,
    policy: &Policy<'_>,
    who: Option<&Identity>,
    query: Option<&str>,
    authorization: Option<&HeaderValue>,
) -> Result<Response<Answer>, Error> {
    let registry = state.upstream.as_ref().ok_or(Error::NotFound)?;
    let (n, mut last) = page_request(query);
    let mut kept: Vec<String> = Vec::new();
    let mut more_upstream = true;
    let mut pages = 0;
    while kept.len() <= n && more_upstream && pages < MAX_PAGES {
        pages += 1;
        let mut path = format!("/v2/_catalog?n={PAGE}");
        if let Some(l) = &last {
            path.push_str(&format!("&last={}", encode(l)));
        }
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(AUTHORIZATION, value.clone());
        }
        let response = registry.get(&path, headers, MAX_PAGE_BYTES).await?;
        let status = response.status();
        more_upstream = response.headers().contains_key(LINK);
        let (mut parts, body) = response.into_parts();
        if status != StatusCode::OK {
            // Catalog disabled, a token without the catalog right, or an error: the
            // registry's answer as it is (its challenge included).
            crate::proxy::headers::strip_hop_by_hop(&mut parts.headers);
            parts.headers.remove(http::header::CONTENT_LENGTH);
            return Ok(Response::from_parts(parts, Either::Right(Full::new(body))));
        }
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| Error::Upstream(format!("catalog page is not JSON: {e}").into()))?;
        if page.repositories.is_empty() {
            more_upstream = false;
        }
        last = page.repositories.last().cloned().or(last);
        kept.extend(page.repositories.into_iter().filter(|name| {
            policy
                .decide(who, Request::Repository(name), Rights::PULL)
                .allowed()
        }));
    }
    let full = kept.len() > n;
    kept.truncate(n);
    // A full page continues after its last name; a walk stopped by the bound
    // continues from the registry's position (all names before it were read).
    let next = if full {
        kept.last()
    } else if more_upstream {
        last.as_ref()
    } else {
        None
    };
    let body = serde_json::to_vec(&Answered {
        repositories: &kept,
    })
    .map_err(|e| Error::Internal(e.into()))?;
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(body))));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(tail) = next {
        let link = format!("</v2/_catalog?last={}&n={n}>; rel=\"next\"", encode(tail));
        if let Ok(v) = HeaderValue::from_str(&link) {
            r.headers_mut().insert(LINK, v);
        }
    }
    Ok(r)
}

/// The client's `n` and `last`.
fn page_request(query: Option<&str>) -> (usize, Option<String>) {
    let mut n = DEFAULT_N;
    let mut last = None;
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("n", v)) => {
                if let Ok(v) = v.parse::<usize>() {
                    n = v.clamp(1, MAX_N);
                }
            }
            Some(("last", v)) => last = Some(decode(v)),
            _ => {}
        }
    }
    (n, last)
}

/// Percent-encodes a repository name for a query (`/` as `%2F`).
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space, as Go's query parser does); a
/// malformed escape stays as it is.
fn decode(value: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_and_escapes() {
        assert_eq!(page_request(None), (100, None));
        assert_eq!(
            page_request(Some("n=5&last=team-a%2Fapp")),
            (5, Some("team-a/app".to_string()))
        );
        assert_eq!(page_request(Some("n=0")).0, 1);
        assert_eq!(page_request(Some("n=99999")).0, 1000);
        assert_eq!(
            page_request(Some("n=x&last=%zz")),
            (100, Some("%zz".into()))
        );
        assert_eq!(encode("team-a/app_1.x"), "team-a%2Fapp_1.x");
        assert_eq!(decode(&encode("a/b/c")), "a/b/c");
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("a%2"), "a%2");
    }
}
