//! Tests for `tls::certificate`: facts read from rcgen's and openssl's certificates,
//! both time forms, and every truncation refused.

use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::build::{tlv, Parts, GENERALIZED_TIME, UTC_TIME};
use super::*;
use crate::tls::der::{OCTET_STRING, SEQUENCE};

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// A self-signed certificate ending at `not_after`, a CA or not.
fn certificate(not_after: SystemTime, ca: bool) -> (Vec<u8>, KeyPair) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params.not_before = at(1_700_000_000).into();
    params.not_after = not_after.into();
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.der().to_vec(), key)
}

#[test]
fn reads_expiry_ca_flag_and_public_key() {
    // 2049 is written as UTCTime, 2050 and later as GeneralizedTime (RFC 5280).
    for (not_after, ca) in [(2_000_000_000, true), (2_600_000_000, false)] {
        let (der, key) = certificate(at(not_after), ca);
        let facts = read(&der).unwrap_or_else(|e| panic!("{not_after}: {e:?}"));
        assert_eq!(facts.not_after, at(not_after), "{not_after}");
        assert_eq!(facts.is_ca, ca, "{not_after}");
        assert_eq!(facts.public_key, key.public_key_raw(), "{not_after}");
    }
}

#[test]
fn times_in_both_forms() {
    #[rustfmt::skip]
    let cases: &[(u8, &str, Option<u64>)] = &[
        (UTC_TIME, "700101000000Z", Some(0)),
        (UTC_TIME, "491231235959Z", Some(2_524_607_999)),
        (UTC_TIME, "500101000000Z", None), // 1950
        (UTC_TIME, "240229120000Z", Some(1_709_208_000)),
        (GENERALIZED_TIME, "20240229120000Z", Some(1_709_208_000)),
        (GENERALIZED_TIME, "99991231235959Z", Some(253_402_300_799)),
        (GENERALIZED_TIME, "20241301000000Z", None),
        (GENERALIZED_TIME, "20240229120000+0100", None),
        (GENERALIZED_TIME, "2024022912000Z", None),
        (UTC_TIME, "20240229120000Z", None),
        (UTC_TIME, "24022912000aZ", None),
        (OCTET_STRING, "240229120000Z", None),
    ];
    for &(tag, text, want) in cases {
        let parts = Parts {
            not_after: tlv(tag, text.as_bytes()),
            ..Parts::new()
        };
        let got = read(&parts.der()).ok().map(|facts| facts.not_after);
        assert_eq!(got, want.map(at), "tag={tag:#x} text={text:?}");
    }
}

#[test]
fn certificates_made_by_openssl_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10",
        ])
        .args([
            "-subj",
            "/CN=test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-outform",
            "DER",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl runs (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let der = std::fs::read(dir.path().join("ca.crt")).expect("read");
    let facts = read(&der).expect("read");
    assert!(facts.is_ca, "openssl req -x509 makes a CA");
    let left = facts
        .not_after
        .duration_since(SystemTime::now())
        .expect("in the future");
    assert!(left > Duration::from_secs(9 * 86_400) && left <= Duration::from_secs(10 * 86_400));
    assert_eq!(facts.public_key.first(), Some(&SEQUENCE), "RSAPublicKey");
}

#[test]
fn every_truncation_is_refused() {
    let (der, _) = certificate(at(2_000_000_000), true);
    assert!(read(&der).is_ok());
    for len in 0..der.len() {
        assert!(read(&der[..len]).is_err(), "len={len}");
    }
    assert!(
        read(&[der.as_slice(), &[0]].concat()).is_err(),
        "trailing byte"
    );
}

#[test]
fn only_ders_true_makes_a_ca() {
    // x509-parser reads any non-zero BOOLEAN as TRUE (BER); DER's TRUE is 0xff only.
    let (der, _) = certificate(at(2_000_000_000), true);
    let ca_true = [SEQUENCE, 0x03, 0x01, 0x01, 0xff];
    let at_byte = der
        .windows(ca_true.len())
        .position(|w| w == ca_true)
        .expect("basicConstraints cA TRUE")
        + ca_true.len()
        - 1;
    let mut one = der.clone();
    one[at_byte] = 0x01;
    let lenient = parse(&one).expect("parses").is_ca();
    assert!(lenient, "x509-parser alone calls 0x01 a CA");
    assert_eq!(read(&der).map(|f| f.is_ca), Ok(true));
    assert_eq!(read(&one).map(|f| f.is_ca), Ok(false));
}
