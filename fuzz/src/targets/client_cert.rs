//! `tls::client_cert::certificate_user` on arbitrary bytes: x509-parser reads the
//! certificate, and a hand-written walk of its subject finds the CN. A user it returns must be a plain name, as the
//! module promises: 1 to 255 bytes, no `:`, no control characters.

use registry_gate::tls::client_cert::certificate_user;

/// One input of the `client_cert` target; panics on a failed check.
pub fn run(data: &[u8]) {
    if let Some(user) = certificate_user(data) {
        let name = user.0;
        assert!(!name.is_empty() && name.len() <= 255, "name={name:?}");
        assert!(
            !name.contains(':') && !name.chars().any(char::is_control),
            "name={name:?}"
        );
    }
}
