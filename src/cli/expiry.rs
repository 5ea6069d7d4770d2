//! The server certificate's expiry, for the start line: its notAfter and the days
//! left, with a warning when few are left.

use std::path::Path;
use std::time::SystemTime;

use crate::tls;

/// Fewer days left than this at start is logged as a warning.
const WARN_DAYS: i64 = 30;
const DAY_SECONDS: i64 = 86_400;

/// When the server certificate (the first of `tls.cert`) expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expiry {
    /// Read: the notAfter and the whole days from now to it (negative once past).
    Known {
        not_after: SystemTime,
        days_left: i64,
    },
    /// Not read (the file changed since the state was built, say): why.
    Unknown(String),
}

impl Expiry {
    /// Reads the first certificate of `cert`.
    pub(super) fn of(cert: &Path) -> Expiry {
        match tls::load_certs(cert) {
            Ok(chain) => match chain.first() {
                Some(der) => Expiry::from_der(der, SystemTime::now()),
                None => Expiry::Unknown("no certificate".into()),
            },
            Err(e) => Expiry::Unknown(e.to_string()),
        }
    }

    /// The expiry of the DER certificate `der`, seen at `now`.
    fn from_der(der: &[u8], now: SystemTime) -> Expiry {
        match tls::certificate::read(der) {
            Ok(facts) => Expiry::Known {
                not_after: facts.not_after,
                days_left: days_between(now, facts.not_after),
            },
            Err(e) => Expiry::Unknown(format!("unreadable certificate ({})", e.0)),
        }
    }

    /// The notAfter as RFC 3339 (`2029-03-12T10:00:00Z`), or `unknown (why)`.
    pub(super) fn not_after(&self) -> String {
        match self {
            Expiry::Known { not_after, .. } => {
                humantime::format_rfc3339_seconds(*not_after).to_string()
            }
            Expiry::Unknown(why) => format!("unknown ({why})"),
        }
    }

    /// The whole days left, or `unknown`.
    pub(super) fn days_left(&self) -> String {
        match self {
            Expiry::Known { days_left, .. } => days_left.to_string(),
            Expiry::Unknown(_) => "unknown".into(),
        }
    }

    /// Logs a warning if the certificate has expired or expires within [`WARN_DAYS`].
    pub(super) fn warn_if_near(&self, cert: &Path) {
        let Expiry::Known { days_left, .. } = self else {
            return;
        };
        if *days_left < WARN_DAYS {
            tracing::warn!(
                cert = %cert.display(),
                not_after = %self.not_after(),
                days_left,
                "the server certificate expires soon (or has expired): renew it \
                 (`registry-gate certs generate --force` keeps a development CA)"
            );
        }
    }
}

/// Whole days from `now` to `then`, rounded towards negative infinity.
fn days_between(now: SystemTime, then: SystemTime) -> i64 {
    let seconds = match then.duration_since(now) {
        Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
        Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
    };
    seconds.div_euclid(DAY_SECONDS)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn days_left_round_down_and_go_negative() {
        let now = at(1_000_000_000);
        #[rustfmt::skip]
        let cases = [(0, 0), (86_399, 0), (86_400, 1), (825 * 86_400 - 3600, 824), (-1, -1), (-86_400, -1), (-86_401, -2)];
        for (offset, want) in cases {
            let then = at(1_000_000_000u64.saturating_add_signed(offset));
            assert_eq!(days_between(now, then), want, "offset={offset}");
        }
    }

    #[test]
    fn a_generated_certificate_reads_its_expiry() {
        let generated = tls::generate(&["localhost".into()]).expect("generate");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.crt");
        std::fs::write(&path, &generated.server_cert).expect("write");
        let expiry = Expiry::of(&path);
        // Valid from an hour ago for 825 days: 824 whole days and 23 hours are left.
        assert_eq!(expiry.days_left(), "824", "{expiry:?}");
        let Expiry::Known { not_after, .. } = &expiry else {
            panic!("{expiry:?}");
        };
        let left = not_after
            .duration_since(SystemTime::now())
            .expect("in the future");
        assert!(
            left > Duration::from_secs(824 * 86_400 + 22 * 3600),
            "{left:?}"
        );
        assert!(expiry.not_after().ends_with('Z'), "{}", expiry.not_after());
    }

    #[test]
    fn an_unreadable_file_is_unknown_and_named() {
        let expiry = Expiry::of(Path::new("/nonexistent/server.crt"));
        assert_eq!(expiry.days_left(), "unknown");
        assert!(
            expiry
                .not_after()
                .starts_with("unknown (certificate file /nonexistent/server.crt: "),
            "{}",
            expiry.not_after()
        );
    }
}
