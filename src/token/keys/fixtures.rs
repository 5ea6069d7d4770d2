//! Test keys: made by the `openssl` CLI (an outside implementation, in every PEM
//! format we accept) or by [`super::generate_es256`], written to a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The PEM formats [`super::SigningKey::load`] accepts, with the `openssl` command
/// that writes each and the PEM label it must have.
pub(crate) const OPENSSL_KINDS: &[(&str, &[&str], &str)] = &[
    (
        "ec-pkcs8",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        "BEGIN PRIVATE KEY",
    ),
    (
        "ec-sec1",
        &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
        "BEGIN EC PRIVATE KEY",
    ),
    (
        "rsa-pkcs8",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        "BEGIN PRIVATE KEY",
    ),
    (
        "rsa-pkcs1",
        &["genrsa", "-traditional", "2048"],
        "BEGIN RSA PRIVATE KEY",
    ),
];

/// A key file and the certificate file issued for it.
pub(crate) struct Pair {
    pub(crate) key: PathBuf,
    pub(crate) cert: PathBuf,
}

/// Runs `openssl` in `dir` and returns its standard output; panics with its
/// standard error if it fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Makes a key with `args` (an `openssl` key command without `-out`) and a
/// self-signed certificate for it, named after `name`.
pub(crate) fn openssl_pair_with(dir: &Path, name: &str, args: &[&str]) -> Pair {
    let key = format!("{name}.key");
    let cert = format!("{name}.crt");
    // `-out` right after the subcommand: `genrsa` wants the key size last.
    let (command, options) = args.split_first().expect("an openssl subcommand");
    openssl(dir, &[&[*command, "-out", &key], options].concat());
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            "/CN=token",
        ],
    );
    Pair {
        key: dir.join(key),
        cert: dir.join(cert),
    }
}

/// An `openssl` pair of one of [`OPENSSL_KINDS`], checked to carry its PEM label.
pub(crate) fn openssl_pair(dir: &Path, kind: &str) -> Pair {
    let (_, args, label) = OPENSSL_KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .unwrap_or_else(|| panic!("no openssl kind {kind}"));
    let pair = openssl_pair_with(dir, kind, args);
    let text = std::fs::read_to_string(&pair.key).expect("key written");
    assert!(text.contains(label), "{kind} is {label}: {text}");
    pair
}

/// A pair from [`super::generate_es256`].
pub(crate) fn generated_pair(dir: &Path, name: &str) -> Pair {
    let generated = super::generate_es256("registry-gate token").expect("generate");
    Pair {
        key: write(dir, &format!("{name}.key"), &generated.key_pem),
        cert: write(dir, &format!("{name}.crt"), &generated.cert_pem),
    }
}

/// Writes `text` to `dir/name`.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}
