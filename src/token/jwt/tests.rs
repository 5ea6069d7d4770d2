use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use super::*;
use crate::token::keys::fixtures::{self, openssl, openssl_pair, OPENSSL_KINDS};
use crate::token::keys::{Algorithm, SigningKey, VerifyingKey};

/// Claims shaped as registry 2.8 reads them (`aud` a single string).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    access: Vec<Value>,
}

fn claims() -> Claims {
    Claims {
        iss: "registry-gate".into(),
        sub: "alice".into(),
        aud: "registry.example".into(),
        exp: 1_700_000_300,
        nbf: 1_700_000_000,
        iat: 1_700_000_000,
        jti: "8d2f".into(),
        access: vec![json!({"type": "repository", "name": "library/alpine", "actions": ["pull"]})],
    }
}

fn load(dir: &Path, kind: &str) -> SigningKey {
    let pair = match kind {
        "generated" => fixtures::generated_pair(dir, kind),
        _ => openssl_pair(dir, kind),
    };
    SigningKey::load(&pair.key, &pair.cert).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn parts(token: &str) -> [String; 3] {
    let v: Vec<String> = token.split('.').map(str::to_string).collect();
    v.try_into().expect("three parts")
}

fn decode_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

#[test]
fn tokens_round_trip_for_every_key_format_and_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kinds = OPENSSL_KINDS.iter().map(|k| k.0).chain(["generated"]);
    let mut seen = 0;
    for kind in kinds {
        let key = load(dir.path(), kind);
        for hint in [KeyHint::Chain, KeyHint::KidOnly] {
            let token = sign(&key, &claims(), hint).expect("sign");
            let got: Claims = verify(&token, &[key.verifying_key().clone()])
                .unwrap_or_else(|e| panic!("{kind} {hint:?}: {e}"));
            assert_eq!(got, claims(), "{kind} {hint:?}");
            seen += 1;
        }
    }
    assert_eq!(seen, 10);
}

#[test]
fn header_names_the_key_and_carries_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = load(dir.path(), "generated");
    let der = openssl(
        dir.path(),
        &["x509", "-in", "generated.crt", "-outform", "DER"],
    );

    let [header, payload, _] = parts(&sign(&key, &claims(), KeyHint::Chain).expect("sign"));
    let raw = URL_SAFE_NO_PAD.decode(&header).expect("base64url");
    let expected = format!(
        r#"{{"typ":"JWT","alg":"ES256","kid":"{}","x5c":["{}"]}}"#,
        key.kid(),
        STANDARD.encode(&der)
    );
    assert_eq!(String::from_utf8(raw).expect("utf-8"), expected);
    assert_eq!(decode_json(&payload)["aud"], "registry.example");

    let [header, _, _] = parts(&sign(&key, &claims(), KeyHint::KidOnly).expect("sign"));
    assert_eq!(
        decode_json(&header),
        json!({"typ": "JWT", "alg": "ES256", "kid": key.kid()})
    );
}

#[test]
fn signature_sizes_are_the_algorithms() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (kind, alg, len) in [
        ("generated", Algorithm::Es256, 64),
        ("ec-sec1", Algorithm::Es256, 64),
        ("rsa-pkcs8", Algorithm::Rs256, 256),
    ] {
        let key = load(dir.path(), kind);
        assert_eq!(key.algorithm(), alg, "{kind}");
        let [header, _, sig] = parts(&sign(&key, &claims(), KeyHint::Chain).expect("sign"));
        assert_eq!(decode_json(&header)["alg"], alg.as_str(), "{kind}");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(sig).expect("b64").len(),
            len,
            "{kind}"
        );
    }
}

/// A DER INTEGER of the unsigned big-endian `v`.
fn der_integer(v: &[u8]) -> Vec<u8> {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len() - 1);
    let mut body = v[start..].to_vec();
    if body[0] & 0x80 != 0 {
        body.insert(0, 0);
    }
    [vec![0x02, body.len() as u8], body].concat()
}

#[test]
fn openssl_verifies_our_signatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for kind in ["generated", "rsa-pkcs1"] {
        let key = load(d, kind);
        let [header, payload, sig] = parts(&sign(&key, &claims(), KeyHint::Chain).expect("sign"));
        let raw = URL_SAFE_NO_PAD.decode(sig).expect("b64");
        let sig = match key.algorithm() {
            // JWS has r || s; OpenSSL wants ECDSA-Sig-Value ::= SEQUENCE { r, s }.
            Algorithm::Es256 => {
                let (r, s) = raw.split_at(32);
                let body = [der_integer(r), der_integer(s)].concat();
                [vec![0x30, body.len() as u8], body].concat()
            }
            Algorithm::Rs256 => raw,
        };
        std::fs::write(d.join("sig"), sig).expect("write");
        std::fs::write(d.join("msg"), format!("{header}.{payload}")).expect("write");
        std::fs::write(d.join("bad"), format!("{header}.{payload}x")).expect("write");
        let public = openssl(
            d,
            &["x509", "-in", &format!("{kind}.crt"), "-pubkey", "-noout"],
        );
        std::fs::write(d.join("pub.pem"), public).expect("write");
        let args = ["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig"];
        let out = openssl(d, &[&args[..], &["msg"]].concat());
        assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            "Verified OK",
            "{kind}"
        );
        let bad = std::process::Command::new("openssl")
            .args(args)
            .arg("bad")
            .current_dir(d)
            .output()
            .expect("openssl runs");
        assert!(
            !bad.status.success(),
            "{kind}: another message must not verify"
        );
    }
}

/// Re-signs `header` and `payload` with `key`, as an attacker holding a key could.
fn forge(key: &SigningKey, header: &Value, payload: &str) -> String {
    let signed = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let sig = key.sign_bytes(signed.as_bytes()).expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn tampered_and_foreign_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ec = load(dir.path(), "generated");
    let rsa = load(dir.path(), "rsa-pkcs8");
    let other = load(dir.path(), "ec-pkcs8");
    let keys = [ec.verifying_key().clone(), rsa.verifying_key().clone()];
    let token = sign(&ec, &claims(), KeyHint::Chain).expect("sign");
    let [header, payload, sig] = parts(&token);

    let mut admin = claims();
    admin.sub = "admin".into();
    let other_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).expect("json"));
    let mut flipped = URL_SAFE_NO_PAD.decode(&sig).expect("b64");
    flipped[10] ^= 1;
    let flipped = URL_SAFE_NO_PAD.encode(flipped);
    let kid = ec.kid();
    let none = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string());
    let hs256 = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": kid}).to_string());
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, ec.jwk().to_string().as_bytes());
    let hs256_sig = ring::hmac::sign(&hmac_key, format!("{hs256}.{payload}").as_bytes());
    let hs256_sig = URL_SAFE_NO_PAD.encode(hs256_sig.as_ref());
    let rs256_with_ec_key = forge(&ec, &json!({"alg": "RS256", "kid": kid}), &payload);
    let es256_with_rsa_key = forge(&rsa, &json!({"alg": "ES256", "kid": rsa.kid()}), &payload);
    let no_kid = forge(&ec, &json!({"alg": "ES256"}), &payload);
    let by_other = sign(&other, &claims(), KeyHint::Chain).expect("sign");

    let cases: Vec<(String, &str)> = vec![
        (
            format!("{header}.{other_payload}.{sig}"),
            "token signature does not verify",
        ),
        (
            format!("{header}.{payload}.{flipped}"),
            "token signature does not verify",
        ),
        (
            format!("{header}.{payload}."),
            "token signature does not verify",
        ),
        (
            format!("{none}.{payload}."),
            r#"token algorithm "none" is not accepted"#,
        ),
        (
            format!("{hs256}.{payload}.{hs256_sig}"),
            r#"token algorithm "HS256" is not accepted"#,
        ),
        (
            rs256_with_ec_key,
            r#"token algorithm "RS256" does not match key"#,
        ),
        (
            es256_with_rsa_key,
            r#"token algorithm "ES256" does not match key"#,
        ),
        (no_kid, "header has no kid"),
        (by_other, "is not one of ours"),
        (
            format!("{header}.{payload}"),
            "not three dot-separated parts",
        ),
        (format!("{token}.{sig}"), "not three dot-separated parts"),
        (
            format!("!{header}.{payload}.{sig}"),
            "header is not base64url",
        ),
        (
            format!("{header}.{payload}.{sig}="),
            "signature is not base64url",
        ),
        (
            format!("{}.{payload}.{sig}", URL_SAFE_NO_PAD.encode("[]")),
            "not a JSON object",
        ),
        ("a".repeat(MAX_TOKEN_LEN + 1), "longer than 64 KiB"),
    ];
    for (bad, want) in cases {
        let err = verify::<Claims>(&bad, &keys).expect_err(want).to_string();
        assert!(
            err.contains(want),
            "want {want:?}, got {err:?} for {bad:.80}"
        );
    }
    // The untampered token still verifies, so the cases fail for their own reason.
    assert_eq!(verify::<Claims>(&token, &keys).expect("valid"), claims());
    // A valid signature over claims of the wrong shape is a claims error.
    let wrong_shape = forge(
        &ec,
        &json!({"alg": "ES256", "kid": kid}),
        &URL_SAFE_NO_PAD.encode("{}"),
    );
    let err = verify::<Claims>(&wrong_shape, &keys).expect_err("claims");
    assert!(matches!(err, Error::Claims(_)), "{err:?}");
}

#[test]
fn a_previous_key_kept_by_its_certificate_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = load(dir.path(), "ec-sec1");
    let new = load(dir.path(), "generated");
    let old_cert = VerifyingKey::from_cert(&dir.path().join("ec-sec1.crt")).expect("cert");
    let token = sign(&old, &claims(), KeyHint::Chain).expect("sign");
    let keys = [new.verifying_key().clone(), old_cert];
    assert_eq!(
        verify::<Claims>(&token, &keys).expect("old key kept"),
        claims()
    );
    let err = verify::<Claims>(&token, &keys[..1]).expect_err("old key dropped");
    assert!(
        matches!(err, Error::UnknownKey(ref k) if k == old.kid()),
        "{err:?}"
    );
}

#[test]
fn jwks_lists_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ec = load(dir.path(), "generated");
    let rsa = load(dir.path(), "rsa-pkcs1");
    let set = jwks(&[ec.verifying_key().clone(), rsa.verifying_key().clone()]);
    assert_eq!(set, json!({"keys": [ec.jwk(), rsa.jwk()]}));
    let rsa_jwk = &set["keys"][1];
    assert_eq!(
        (
            &rsa_jwk["kty"],
            &rsa_jwk["alg"],
            &rsa_jwk["use"],
            &rsa_jwk["e"],
            &rsa_jwk["kid"]
        ),
        (
            &json!("RSA"),
            &json!("RS256"),
            &json!("sig"),
            &json!("AQAB"),
            &json!(rsa.kid())
        )
    );
    let n = URL_SAFE_NO_PAD
        .decode(rsa_jwk["n"].as_str().expect("n"))
        .expect("base64url");
    assert_eq!(n.len(), 256, "2048-bit modulus without a leading zero");
}
