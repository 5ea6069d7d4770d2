//! Tests for `tls::generate`: generated and kept CAs, checked with openssl.

use std::path::Path;

use super::*;
use crate::tls::server_config;
use crate::tls::tests::{openssl, write};

/// `openssl verify -CAfile ca server`: whether openssl builds the chain (names and
/// key identifiers) and checks its signature.
fn openssl_verifies(dir: &Path, ca: &str, server: &str) -> bool {
    std::process::Command::new("openssl")
        .args(["verify", "-CAfile", ca, server])
        .current_dir(dir)
        .output()
        .expect("openssl runs (apt-get install -y openssl)")
        .status
        .success()
}

#[test]
fn a_kept_ca_issues_server_certificates_that_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = generate(&["localhost".into()]).expect("generate");
    let ca_cert = write(dir.path(), "ca.crt", &g.ca_cert);
    let ca_key = write(dir.path(), "ca.key", &g.ca_key);
    let issued = Ca::load(&ca_cert, &ca_key)
        .and_then(|ca| ca.issue(&["registry.example".into()]))
        .expect("issue");
    assert_eq!(issued.days, u64::from(SERVER_CERT_DAYS));
    write(dir.path(), "server.crt", &issued.cert);
    write(dir.path(), "server.key", &issued.key);
    assert!(openssl_verifies(dir.path(), "ca.crt", "server.crt"));
    server_config(
        &dir.path().join("server.crt"),
        &dir.path().join("server.key"),
    )
    .expect("the new pair loads");

    // A CA made by openssl (RSA, SHA-1 key identifiers) is kept as well.
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=ops CA",
            "-keyout",
            "ops.key",
            "-out",
            "ops.crt",
        ],
        dir.path(),
    );
    let ops = Ca::load(&dir.path().join("ops.crt"), &dir.path().join("ops.key"))
        .expect("an openssl CA loads");
    let issued = ops.issue(&["localhost".into()]).expect("issue");
    assert_eq!(
        issued.days, 30,
        "capped at the CA's notAfter, 30 days and an hour from its start"
    );
    write(dir.path(), "ops-server.crt", &issued.cert);
    assert!(openssl_verifies(dir.path(), "ops.crt", "ops-server.crt"));
    assert!(!openssl_verifies(dir.path(), "ca.crt", "ops-server.crt"));
}

#[test]
fn a_kept_ca_must_be_a_ca_with_its_own_key_and_not_expired() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().expect("tempdir");
    let g = generate(&["localhost".into()]).expect("generate");
    write(dir.path(), "ca.crt", &g.ca_cert);
    write(dir.path(), "ca.key", &g.ca_key);
    write(dir.path(), "server.crt", &g.server_cert);
    write(dir.path(), "server.key", &g.server_key);
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = (std::time::SystemTime::now() - DAY * 10).into();
    params.not_after = (std::time::SystemTime::now() - DAY).into();
    write(
        dir.path(),
        "old.crt",
        &params.self_signed(&key).expect("old CA").pem(),
    );
    write(dir.path(), "old.key", &key.serialize_pem());
    let d = dir.path().display();
    #[rustfmt::skip]
    let cases = [
        ("server.crt", "server.key", format!("CA certificate {d}/server.crt: is not a CA certificate (no basicConstraints cA)")),
        ("ca.crt", "server.key", format!("CA key file {d}/server.key: is not the key of the CA certificate {d}/ca.crt")),
        ("ca.crt", "ca.crt", format!("CA key file {d}/ca.crt: not a usable PKCS#8 private key (")),
        ("ca.crt", "missing.key", format!("CA key file {d}/missing.key: No such file")),
        ("old.crt", "old.key", format!("CA certificate {d}/old.crt: expired on ")),
    ];
    for (cert, key, want) in cases {
        let err = Ca::load(&dir.path().join(cert), &dir.path().join(key))
            .err()
            .unwrap_or_else(|| panic!("{cert} with {key} is refused"));
        assert!(err.to_string().starts_with(&want), "{cert} {key}: {err}");
    }
}

#[test]
fn generated_server_certificate_lives_825_days_and_the_ca_ten_years() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = generate(&["localhost".into()]).expect("generate");
    write(dir.path(), "server.pem", &g.server_cert);
    write(dir.path(), "ca.pem", &g.ca_cert);
    // `-checkend N`: exit 0 when the certificate is still valid N seconds from now.
    let valid_in = |file: &str, days: u32| {
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-in", file, "-checkend"])
            .arg((u64::from(days) * 86_400).to_string())
            .current_dir(dir.path())
            .status()
            .expect("openssl runs (apt-get install -y openssl)")
            .success()
    };
    assert!(valid_in("server.pem", 0));
    assert!(valid_in("server.pem", SERVER_CERT_DAYS - 1));
    assert!(!valid_in("server.pem", SERVER_CERT_DAYS + 1));
    assert!(valid_in("ca.pem", CA_DAYS - 1));
    assert!(!valid_in("ca.pem", CA_DAYS + 1));
}
