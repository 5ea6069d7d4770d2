//! Each seed of `corpus/oidc_token` reaches what its name says, so that the fuzzer
//! starts from every shape of token (and a change to the fixture or the input format
//! that leaves a seed short of its check fails here).

use std::fs;
use std::path::Path;

use super::*;

/// What the gate makes of a seed.
#[derive(Debug, PartialEq)]
enum Want {
    /// Verified and mapped to this user.
    User(&'static str),
    /// Verified, but no claim rule maps it.
    Unmapped,
    /// Refused by `verify`.
    Refused(Refusal),
}

fn want(seed: &str) -> Want {
    use Refusal::*;
    use Want::*;
    match seed {
        "alg-none" => Refused(Algorithm("none".into())),
        "bad-base64" => Refused(Malformed("header is not base64url")),
        "es256-alg-mismatch" => Refused(AlgorithmMismatch {
            alg: "ES256",
            kid: RS_KID.into(),
            expected: "RS256",
        }),
        "es256-aud-array" | "es256-big-header" | "es256-float-times" | "es256-github" => {
            User("ci-octo-org/app")
        }
        "es256-claims-array" => Refused(Claims("not a JSON object".into())),
        "es256-crit" => Refused(Critical),
        "es256-not-yet" => Refused(NotYet("nbf", 300)),
        "es256-too-long" => Refused(Lifetime(90_000, MAX_LIFETIME)),
        "es256-unplain-claim" | "rs256-no-rule" => Unmapped,
        "es256-wrong-audience" => Refused(Audience(AUDIENCE.into())),
        "hs256" => Refused(Algorithm("HS256".into())),
        "huge-header" => Refused(Malformed("longer than 16 KiB")),
        "rs256-expired" => Refused(Expired(10)),
        "rs256-forged" => Refused(Signature(RS_KID.into())),
        "rs256-github" | "rs256-signed-github" => User("ci-octo-org/app"),
        "rs256-gitlab-issuer" => Refused(Issuer {
            got: "https://gitlab.example.com".into(),
            want: ISSUER.into(),
        }),
        "rs256-no-kid" => Refused(NoKid),
        "rs256-unknown-kid" => Refused(UnknownKey("rotated-away".into())),
        "two-parts" => Refused(Malformed("not three dot-separated parts")),
        other => panic!("seed-{other}: no expected outcome; add one here"),
    }
}

#[test]
fn every_seed_reaches_what_it_is_named_for() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/oidc_token");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry of the corpus").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(seed) = name.strip_prefix("seed-") else {
            continue;
        };
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = match outcome(&data) {
            None => panic!("{name}: not a token"),
            Some(Err(refusal)) => Want::Refused(refusal),
            Some(Ok((_, Ok(mapped)))) => {
                assert_eq!(mapped.groups, ["ci"], "{name}");
                Want::User(if mapped.user == "ci-octo-org/app" {
                    "ci-octo-org/app"
                } else {
                    panic!("{name}: mapped to {:?}", mapped.user)
                })
            }
            Some(Ok((_, Err(Refusal::NoRule(_))))) => Want::Unmapped,
            Some(Ok((_, Err(other)))) => panic!("{name}: identify refused with {other:?}"),
        };
        assert_eq!(got, want(seed), "{name}");
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} seeds in {}", dir.display());
}

#[test]
fn the_reference_reads_times_as_the_module_docs_say() {
    let claims = |extra: Value| -> Map<String, Value> {
        let mut c =
            serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 60});
        for (k, v) in extra.as_object().expect("an object").clone() {
            c[k] = v;
        }
        c.as_object().expect("an object").clone()
    };
    let cases = [
        (serde_json::json!({}), Some(true)),
        (serde_json::json!({"exp": NOW}), Some(false)),
        (serde_json::json!({"iat": NOW + CLOCK_SKEW}), Some(true)),
        (
            serde_json::json!({"iat": NOW + CLOCK_SKEW + 1}),
            Some(false),
        ),
        (
            serde_json::json!({"nbf": NOW + CLOCK_SKEW + 1}),
            Some(false),
        ),
        (
            serde_json::json!({"exp": NOW + MAX_LIFETIME, "iat": NOW}),
            Some(true),
        ),
        (
            serde_json::json!({"exp": NOW + MAX_LIFETIME + 1, "iat": NOW}),
            Some(false),
        ),
        (serde_json::json!({"aud": [1, AUDIENCE]}), Some(true)),
        (serde_json::json!({"aud": "other"}), Some(false)),
        (serde_json::json!({"iss": "other"}), Some(false)),
        (serde_json::json!({"exp": 1.5e9}), None),
    ];
    for (extra, expected) in cases {
        assert_eq!(reference(&claims(extra.clone())), expected, "{extra}");
    }
    let mut no_iat = claims(serde_json::json!({}));
    no_iat.remove("iat");
    assert_eq!(reference(&no_iat), Some(false));
}
