use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};

use super::*;

/// A 2048-bit RSA key made once with `openssl genpkey` (PKCS#1 DER; ring cannot make RSA keys).
const RSA_PKCS1: &[u8] = include_bytes!("testdata/rsa2048.der");
const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    fn rsa() -> Signer {
        Signer::Rsa(RsaKeyPair::from_der(RSA_PKCS1).expect("test key"))
    }

    fn ec() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        )
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Rsa(k) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                       "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "kid": kid, "crv": "P-256",
                       "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
        }
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let signature = match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{signed}.{}", b64(&signature))
    }

    fn alg(&self) -> &'static str {
        match self {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
        }
    }

    fn token(&self, kid: &str, claims: &Value) -> String {
        self.sign(
            &json!({"alg": self.alg(), "kid": kid, "typ": "JWT"}),
            claims,
        )
    }
}

fn github_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": "registry.example.com",
        "sub": "repo:octo-org/app:ref:refs/heads/main",
        "repository": "octo-org/app",
        "repository_owner": "octo-org",
        "ref": "refs/heads/main",
        "run_number": 42,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 290,
    })
}

fn with(claims: &Value, name: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[name] = value;
    c
}

fn rule(claims: &[(&str, &str)], user: &str, groups: &[&str]) -> ClaimRule {
    let claims: Vec<(String, String)> = claims
        .iter()
        .map(|(n, g)| (n.to_string(), g.to_string()))
        .collect();
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    ClaimRule::compile(&claims, user, &groups).expect("rule")
}

fn issuer(rules: Vec<ClaimRule>) -> Issuer {
    Issuer {
        issuer: ISSUER.into(),
        audience: "registry.example.com".into(),
        username: "oidc".into(),
        max_lifetime: Duration::from_secs(3600),
        rules,
    }
}

fn keys(signers: &[(&Signer, &str)]) -> Jwks {
    let set = json!({"keys": signers.iter().map(|(s, kid)| s.jwk(kid)).collect::<Vec<_>>()});
    Jwks::parse(set.to_string().as_bytes()).expect("jwks")
}

fn refusal(issuer: &Issuer, keys: &Jwks, token: &str) -> Refusal {
    verify(issuer, keys, token, now()).expect_err("refused")
}

#[test]
fn a_github_shaped_rs256_token_maps_to_the_first_matching_rule() {
    let rsa = Signer::rsa();
    let keys = keys(&[(&rsa, "gh-1")]);
    let issuer = issuer(vec![
        rule(
            &[
                ("repository", "octo-org/app"),
                ("ref", "refs/heads/release"),
            ],
            "release",
            &[],
        ),
        rule(
            &[("repository_owner", "octo-org"), ("ref", "refs/heads/*")],
            "ci-${claim.repository}",
            &["pushers", "run-${claim.run_number}", "pushers"],
        ),
    ]);
    let token = rsa.token("gh-1", &github_claims());
    assert_eq!(kid(&token).as_deref(), Some("gh-1"));
    let verified = verify(&issuer, &keys, &token, now()).expect("verified");
    assert_eq!(verified.kid, "gh-1");
    assert_eq!(
        verified.expires,
        UNIX_EPOCH + Duration::from_secs(NOW + 290)
    );
    let mapped = identify(&issuer, &verified).expect("mapped");
    assert_eq!(
        mapped,
        Mapped {
            user: "ci-octo-org/app".into(),
            groups: vec!["pushers".into(), "run-42".into()],
            rule: 1,
        }
    );
}

#[test]
fn a_gitlab_shaped_es256_token_with_an_audience_list_verifies() {
    let ec = Signer::ec();
    let keys = keys(&[(&ec, "gl")]);
    let mut issuer = issuer(vec![rule(
        &[("project_path", "group/**")],
        "${claim.project_path}",
        &[],
    )]);
    issuer.issuer = "https://gitlab.example.com".into();
    let claims = json!({
        "iss": "https://gitlab.example.com",
        "aud": ["other", "registry.example.com"],
        "project_path": "group/sub/app",
        "iat": NOW, "exp": NOW + 300,
    });
    let verified = verify(&issuer, &keys, &ec.token("gl", &claims), now()).expect("verified");
    assert_eq!(identify(&issuer, &verified).unwrap().user, "group/sub/app");
}

#[test]
fn forged_wrong_issuer_audience_and_expired_tokens_are_refused() {
    let rsa = Signer::rsa();
    let keys = keys(&[(&rsa, "k")]);
    let issuer = issuer(vec![]);
    let good = rsa.token("k", &github_claims());
    let (signed, signature) = good.rsplit_once('.').unwrap();
    let (header, _) = signed.split_once('.').unwrap();
    let forged = format!(
        "{header}.{}.{signature}",
        b64(
            with(&github_claims(), "repository", json!("octo-org/other"))
                .to_string()
                .as_bytes()
        )
    );
    assert_eq!(
        refusal(&issuer, &keys, &forged),
        Refusal::Signature("k".into())
    );
    let wrong_iss = rsa.token(
        "k",
        &with(&github_claims(), "iss", json!("https://evil.example")),
    );
    assert_eq!(
        refusal(&issuer, &keys, &wrong_iss).to_string(),
        format!("token issuer \"https://evil.example\" is not \"{ISSUER}\"")
    );
    let wrong_aud = rsa.token("k", &with(&github_claims(), "aud", json!(["x", "y"])));
    assert_eq!(
        refusal(&issuer, &keys, &wrong_aud),
        Refusal::Audience("registry.example.com".into())
    );
    let expired = rsa.token("k", &with(&github_claims(), "exp", json!(NOW)));
    assert_eq!(refusal(&issuer, &keys, &expired), Refusal::Expired(0));
    let no_exp = {
        let mut c = github_claims();
        c.as_object_mut().unwrap().remove("exp");
        rsa.token("k", &c)
    };
    assert_eq!(
        refusal(&issuer, &keys, &no_exp),
        Refusal::Claims("no `exp`".into())
    );
    let early = rsa.token("k", &with(&github_claims(), "nbf", json!(NOW + 61)));
    assert_eq!(refusal(&issuer, &keys, &early), Refusal::NotYet("nbf", 61));
    let skewed = rsa.token("k", &with(&github_claims(), "nbf", json!(NOW + 60)));
    assert!(
        verify(&issuer, &keys, &skewed, now()).is_ok(),
        "60 s of clock skew is allowed"
    );
    let long = rsa.token("k", &with(&github_claims(), "exp", json!(NOW - 10 + 3601)));
    assert_eq!(
        refusal(&issuer, &keys, &long),
        Refusal::Lifetime(3601, 3600)
    );
}

#[test]
fn none_hmac_unknown_kid_mismatched_alg_and_crit_are_refused() {
    let rsa = Signer::rsa();
    let ec = Signer::ec();
    let keys = keys(&[(&rsa, "rsa"), (&ec, "ec")]);
    let issuer = issuer(vec![]);
    let claims = github_claims();
    let body = b64(claims.to_string().as_bytes());
    let none = format!("{}.{body}.", b64(br#"{"alg":"none","kid":"rsa"}"#));
    assert_eq!(
        refusal(&issuer, &keys, &none),
        Refusal::Algorithm("none".into())
    );
    let hs = format!("{}.{body}.c2ln", b64(br#"{"alg":"HS256","kid":"rsa"}"#));
    assert_eq!(
        refusal(&issuer, &keys, &hs),
        Refusal::Algorithm("HS256".into())
    );
    assert_eq!(
        refusal(&issuer, &keys, &rsa.token("nope", &claims)),
        Refusal::UnknownKey("nope".into())
    );
    assert_eq!(
        refusal(&issuer, &keys, &rsa.sign(&json!({"alg": "RS256"}), &claims)),
        Refusal::NoKid
    );
    // An ES256 signature under the RSA key's kid (and the reverse) never verifies.
    let mismatch = ec.sign(&json!({"alg": "ES256", "kid": "rsa"}), &claims);
    assert_eq!(
        refusal(&issuer, &keys, &mismatch).to_string(),
        "token algorithm ES256 does not match key \"rsa\", which is RS256"
    );
    let crit = rsa.sign(
        &json!({"alg": "RS256", "kid": "rsa", "crit": ["exp"]}),
        &claims,
    );
    assert_eq!(refusal(&issuer, &keys, &crit), Refusal::Critical);
    assert_eq!(
        refusal(&issuer, &keys, "a.b"),
        Refusal::Malformed("not three dot-separated parts")
    );
    assert_eq!(
        refusal(&issuer, &keys, &"a".repeat(17 * 1024)),
        Refusal::Malformed("longer than 16 KiB")
    );
}

#[test]
fn claim_rules_match_strictly_and_substitute_only_plain_values() {
    let rsa = Signer::rsa();
    let keys = keys(&[(&rsa, "k")]);
    let issuer = issuer(vec![rule(
        &[("repository", "octo-org/*"), ("ref", "refs/heads/*")],
        "ci-${claim.repository}",
        &[],
    )]);
    let map = |claims: &Value| {
        let verified = verify(&issuer, &keys, &rsa.token("k", claims), now()).expect("verified");
        identify(&issuer, &verified)
    };
    assert!(map(&github_claims()).is_ok());
    let nested_ref = with(&github_claims(), "ref", json!("refs/heads/a/b"));
    let no_rule = Refusal::NoRule("no claim rule matches the token".into());
    assert_eq!(
        map(&nested_ref).unwrap_err(),
        no_rule,
        "* stays in one segment"
    );
    for sneaky in [
        "octo-org/*",
        "octo-org/..",
        "octo-org/a\nb",
        "octo-org/${claim.x}",
        "octo-org/",
    ] {
        let claims = with(&github_claims(), "repository", json!(sneaky));
        assert_eq!(
            map(&claims).unwrap_err(),
            no_rule,
            "{sneaky:?} must not be used"
        );
    }
    let not_string = with(&github_claims(), "repository", json!(["octo-org/app"]));
    assert_eq!(map(&not_string).unwrap_err(), no_rule);
}

#[test]
fn a_rule_cannot_make_a_robot_and_templates_are_checked_at_compile_time() {
    let compile =
        |user: &str| ClaimRule::compile(&[("sub".into(), "*".into())], user, &[]).map(|_| ());
    assert_eq!(
        compile("robot$${claim.sub}").unwrap_err(),
        "the rule's user \"robot$${claim.sub}\" starts with `robot$`, and those names are robots'"
    );
    assert_eq!(
        compile("robot$ci").unwrap_err(),
        "the rule gives the user \"robot$ci\", but `robot$` names are robots'"
    );
    assert_eq!(
        compile(" ").unwrap_err(),
        "the rule gives the user \" \", which is not a user name"
    );
    // The hole may not start the name: a claim value never holds `$`.
    assert!(compile("robot-${claim.sub}").is_ok());
    assert_eq!(
        compile("${account}").unwrap_err(),
        "`user` \"${account}\": only `${claim.NAME}` can be substituted, not `${account}`"
    );
    assert_eq!(
        compile("ci-${claim.sub").unwrap_err(),
        "`user` \"ci-${claim.sub\": `${` without `}`"
    );
    assert!(ClaimRule::compile(&[], "u", &[]).is_err());
}

#[test]
fn a_key_set_skips_what_it_cannot_trust_and_refuses_a_set_with_nothing_left() {
    let rsa = Signer::rsa();
    let ec = Signer::ec();
    let mut enc = ec.jwk("enc");
    enc["use"] = json!("enc");
    let mut p384 = ec.jwk("p384");
    p384["crv"] = json!("P-384");
    let mut wrong_alg = rsa.jwk("ps");
    wrong_alg["alg"] = json!("PS256");
    let small = json!({"kty": "RSA", "kid": "small", "n": b64(&[0xc5; 128]), "e": "AQAB"});
    let oct = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"});
    let set = json!({"keys": [rsa.jwk("good"), rsa.jwk("good"), enc, p384, wrong_alg, small, oct,
                              {"kty": "EC"}]});
    let jwks = Jwks::parse(set.to_string().as_bytes()).expect("one usable key");
    assert_eq!(jwks.len(), 1);
    assert!(jwks.get("good").is_some());
    assert_eq!(
        jwks.skipped,
        vec![
            "key \"good\": a second key with this kid",
            "key \"enc\": not a signing key (`use` is not \"sig\")",
            "key \"p384\": curve \"P-384\" (only P-256)",
            "key \"ps\": alg \"PS256\" (only RS256 for this key)",
            "key \"small\": an RSA key of 1024 bits (2048 to 8192 are accepted)",
            "key \"hmac\": key type \"oct\" (only RSA and EC)",
            "key 8: no kid",
        ]
    );
    let none = json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]});
    assert_eq!(
        Jwks::parse(none.to_string().as_bytes()).unwrap_err().to_string(),
        "the JWK set has no RS256 or ES256 signing key with a kid (skipped: key \"h\": key type \"oct\" (only RSA and EC))"
    );
    assert!(Jwks::parse(b"[]").is_err());
    let many = json!({"keys": vec![rsa.jwk("a"); 65]});
    assert_eq!(
        Jwks::parse(many.to_string().as_bytes())
            .unwrap_err()
            .to_string(),
        "the JWK set has more than 64 keys"
    );
}
