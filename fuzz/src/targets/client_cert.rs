//! `tls::client_cert::certificate_user` on arbitrary bytes: the hand-written DER walk that
//! reads a client certificate's subject CN. A user it returns must be a plain name, as the
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
