use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use sha2::{Digest, Sha256};

use super::fixtures::{self, openssl, openssl_pair, openssl_pair_with, OPENSSL_KINDS};
use super::*;

/// base64url of `bytes` without leading zero bytes, as Go's `big.Int.Bytes` gives.
fn go_b64(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    URL_SAFE_NO_PAD.encode(&bytes[start..])
}

/// SHA-256 of the canonical JWK, base64url: RFC 7638 §3.
fn sha256_b64(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Registry 3's thumbprint of an EC key, computed here from the key as `openssl`
/// prints it, not through our DER code.
fn expected_ec_kid(key: &Path) -> String {
    let dir = key.parent().expect("key in a dir");
    let spki = openssl(
        dir,
        &[
            "pkey",
            "-in",
            &key.display().to_string(),
            "-pubout",
            "-outform",
            "DER",
        ],
    );
    let (x, y) = spki[spki.len() - 64..].split_at(32);
    sha256_b64(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        go_b64(x),
        go_b64(y)
    ))
}

/// Likewise for RSA: the modulus from `openssl rsa -modulus`, exponent 65537.
fn expected_rsa_kid(key: &Path) -> String {
    let dir = key.parent().expect("key in a dir");
    let out = openssl(
        dir,
        &[
            "rsa",
            "-in",
            &key.display().to_string(),
            "-noout",
            "-modulus",
        ],
    );
    let text = String::from_utf8(out).expect("ascii");
    let hex_n = text.trim().strip_prefix("Modulus=").expect("Modulus= line");
    let n = hex::decode(hex_n).expect("hex modulus");
    sha256_b64(&format!(
        r#"{{"e":"AQAB","kty":"RSA","n":"{}"}}"#,
        go_b64(&n)
    ))
}

#[test]
fn openssl_keys_in_every_format_load_with_the_registry_3_kid() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(OPENSSL_KINDS.len(), 4);
    for (kind, _, _) in OPENSSL_KINDS {
        let pair = openssl_pair(dir.path(), kind);
        let key = SigningKey::load(&pair.key, &pair.cert).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let (alg, kid) = if kind.starts_with("ec") {
            (Algorithm::Es256, expected_ec_kid(&pair.key))
        } else {
            (Algorithm::Rs256, expected_rsa_kid(&pair.key))
        };
        assert_eq!(key.algorithm(), alg, "{kind}");
        assert_eq!(key.kid(), kid, "{kind}");
        let from_cert = VerifyingKey::from_cert(&pair.cert).expect("cert loads");
        assert_eq!(from_cert.kid(), kid, "{kind}");
        assert_eq!(from_cert.jwk(), key.jwk(), "{kind}");
    }
}

#[test]
fn jwk_has_the_key_its_id_and_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = fixtures::generated_pair(dir.path(), "gen");
    let key = SigningKey::load(&pair.key, &pair.cert).expect("loads");
    let jwk = key.jwk();
    let der = openssl(dir.path(), &["x509", "-in", "gen.crt", "-outform", "DER"]);
    let spki = openssl(
        dir.path(),
        &["pkey", "-in", "gen.key", "-pubout", "-outform", "DER"],
    );
    let (x, y) = spki[spki.len() - 64..].split_at(32);
    assert_eq!(
        jwk,
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
            "kid": key.kid(),
            "alg": "ES256",
            "use": "sig",
            "x5c": [STANDARD.encode(&der)],
        })
    );
    // Generated keys have no leading zero byte, so the kid is also the strict
    // RFC 7638 thumbprint of the JWK's own full-width members.
    let strict = sha256_b64(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().expect("x"),
        jwk["y"].as_str().expect("y"),
    ));
    assert_eq!(key.kid(), strict);
}

#[test]
fn rfc_7638_example_thumbprint() {
    // RFC 7638 §3.1: the RSA key of RFC 7515 appendix A.1 hashes to this.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let public = PublicKey::Rsa {
        n: URL_SAFE_NO_PAD.decode(n).expect("n"),
        e: vec![1, 0, 1],
    };
    assert_eq!(
        public.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn a_leading_zero_coordinate_is_dropped_in_the_kid_as_registry_3_does() {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    // About one key in 128 has x or y starting with a zero byte.
    let point = (0..5_000)
        .map(|_| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
            let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("parse");
            pair.public_key().as_ref().to_vec()
        })
        .find(|p| p[1] == 0 || p[33] == 0)
        .expect("a key with a leading zero byte within 5000");
    let (x, y) = point[1..].split_at(32);
    let public = PublicKey::P256(point.clone());
    let go = sha256_b64(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        go_b64(x),
        go_b64(y)
    ));
    let strict = sha256_b64(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    ));
    assert_eq!(public.thumbprint(), go);
    assert_ne!(go, strict, "point={point:02x?}");
    // The JWK keeps full-width coordinates, as go-jose requires.
    let members = public.jwk_members();
    for c in ["x", "y"] {
        let bytes = URL_SAFE_NO_PAD
            .decode(members[c].as_str().expect("string"))
            .expect("base64url");
        assert_eq!(bytes.len(), 32, "{c}");
    }
}

#[test]
fn generated_certificate_is_valid_for_about_ten_years() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixtures::generated_pair(dir.path(), "gen");
    let year = 365 * 24 * 60 * 60;
    // `-checkend N` succeeds when the certificate is still valid N seconds from now.
    openssl(
        dir.path(),
        &[
            "x509",
            "-in",
            "gen.crt",
            "-noout",
            "-checkend",
            &(9 * year).to_string(),
        ],
    );
    let later = std::process::Command::new("openssl")
        .args([
            "x509",
            "-in",
            "gen.crt",
            "-noout",
            "-checkend",
            &(11 * year).to_string(),
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl runs");
    assert!(!later.status.success(), "expires within 11 years");
    let subject = openssl(
        dir.path(),
        &["x509", "-in", "gen.crt", "-noout", "-subject"],
    );
    assert_eq!(
        String::from_utf8_lossy(&subject).trim(),
        "subject=CN = registry-gate token"
    );
}

#[test]
fn a_key_with_another_keys_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ec = openssl_pair(dir.path(), "ec-pkcs8");
    let rsa = openssl_pair(dir.path(), "rsa-pkcs1");
    let generated = fixtures::generated_pair(dir.path(), "gen");
    for (key, cert) in [
        (&ec.key, &generated.cert),
        (&generated.key, &ec.cert),
        (&ec.key, &rsa.cert),
        (&rsa.key, &ec.cert),
    ] {
        let err = SigningKey::load(key, cert).expect_err("mismatch");
        assert!(matches!(err, Error::Mismatch { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&key.display().to_string()) && text.contains(&cert.display().to_string()),
            "{text}"
        );
    }
    // The chain's first certificate must be the key's own.
    let chain = fs_concat(dir.path(), "chain.crt", &[&ec.cert, &generated.cert]);
    SigningKey::load(&ec.key, &chain).expect("leaf first loads");
    let reversed = fs_concat(dir.path(), "reversed.crt", &[&generated.cert, &ec.cert]);
    let err = SigningKey::load(&ec.key, &reversed).expect_err("leaf second");
    assert!(matches!(err, Error::Mismatch { .. }), "{err:?}");
}

fn fs_concat(dir: &Path, name: &str, parts: &[&PathBuf]) -> PathBuf {
    let text: String = parts
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect();
    fixtures::write(dir, name, &text)
}

#[test]
fn unsupported_keys_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "p384-sec1",
            &["ecparam", "-name", "secp384r1", "-genkey", "-noout"],
            "on P-256",
        ),
        (
            "p384-pkcs8",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ],
            "on P-256",
        ),
        (
            "ed25519",
            &["genpkey", "-algorithm", "ED25519"],
            "EC P-256 or RSA",
        ),
        (
            "rsa1024",
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
            ],
            "smaller than 2048 bits",
        ),
    ];
    for (name, args, want) in cases {
        let pair = openssl_pair_with(d, name, args);
        let err = SigningKey::load(&pair.key, &pair.cert).expect_err(name);
        let text = err.to_string();
        assert!(matches!(err, Error::Key { .. }), "{name}: {err:?}");
        assert!(
            text.contains(want) && text.contains(&format!("{name}.key")),
            "{name}: {text}"
        );
        let err = VerifyingKey::from_cert(&pair.cert)
            .expect_err(name)
            .to_string();
        let want_cert = if *name == "rsa1024" {
            "RSA key of 1024 bits"
        } else {
            want
        };
        assert!(
            err.contains(want_cert) && err.contains(&format!("{name}.crt")),
            "{name}: {err}"
        );
    }
}

#[test]
fn unreadable_files_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = fixtures::generated_pair(dir.path(), "gen");
    let empty = fixtures::write(dir.path(), "empty.pem", "");
    let garbage = fixtures::write(
        dir.path(),
        "garbage.crt",
        "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
    );
    let cases = [
        (
            &pair.key,
            &empty,
            "empty.pem: no \"BEGIN CERTIFICATE\" block found",
        ),
        (&empty, &pair.cert, "empty.pem: no PEM private key found"),
        (
            &pair.key,
            &garbage,
            "garbage.crt: certificate 1 of 1: expected an X.509 certificate",
        ),
        (&pair.cert, &pair.cert, "gen.crt: no PEM private key found"),
    ];
    for (key, cert, want) in cases {
        let err = SigningKey::load(key, cert)
            .expect_err("must fail")
            .to_string();
        assert!(err.contains(want), "key={key:?} cert={cert:?}: {err}");
    }
}

#[test]
fn debug_shows_the_kid_and_not_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = fixtures::generated_pair(dir.path(), "gen");
    let key = SigningKey::load(&pair.key, &pair.cert).expect("loads");
    // The whole text: the private key has no field in it.
    assert_eq!(
        format!("{key:?}"),
        format!(
            "SigningKey {{ public: VerifyingKey {{ kid: {:?}, alg: Es256, not_after: {}, \
             chain_len: 1 }}, .. }}",
            key.kid(),
            humantime::format_rfc3339_seconds(key.verifying_key().not_after())
        )
    );
}

#[test]
fn an_expired_certificate_is_refused_and_the_end_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("generate");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let expired = params.self_signed(&key).expect("self-signed");
    let key_path = fixtures::write(dir.path(), "old.key", &key.serialize_pem());
    let cert_path = fixtures::write(dir.path(), "old.crt", &expired.pem());
    let err = SigningKey::load(&key_path, &cert_path).expect_err("expired");
    assert_eq!(
        err.to_string(),
        format!(
            "token certificate file {}: the certificate expired at 2001-01-01T00:00:00Z; \
             registries would refuse its tokens",
            cert_path.display()
        )
    );
    // A previous key's certificate still loads for verifying, and says when it ended.
    let old = VerifyingKey::from_cert(&cert_path).expect("verifying key");
    assert_eq!(
        old.not_after(),
        UNIX_EPOCH + Duration::from_secs(978_307_200)
    );

    // Generated: ten years from now. openssl `-days 2`: two days from now.
    let generated = fixtures::generated_pair(dir.path(), "gen");
    let openssl_made = openssl_pair(dir.path(), "ec-sec1");
    let now = SystemTime::now();
    for (pair, days) in [(generated, 3_652), (openssl_made, 2)] {
        let key = SigningKey::load(&pair.key, &pair.cert).expect("loads");
        let expected = now + Duration::from_secs(days * 86_400);
        let off = match key.verifying_key().not_after().duration_since(expected) {
            Ok(late) => late,
            Err(early) => early.duration(),
        };
        assert!(off < Duration::from_secs(60), "{days} days: off by {off:?}");
    }
}
