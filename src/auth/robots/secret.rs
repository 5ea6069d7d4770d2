//! Robot secrets: 256 random bits shown once, stored as HMAC-SHA256 under a random
//! per-robot salt, compared in constant time (see the parent module for why not bcrypt).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::SecureRandom;

use super::EditError;

/// The prefix of every robot secret (so secret scanners can find a leaked one).
const SECRET_PREFIX: &str = "rgr_";
/// Random bytes in a secret.
const SECRET_BYTES: usize = 32;
/// Random bytes in a salt.
const SALT_BYTES: usize = 16;
/// The stored form's scheme.
const SCHEME: &str = "hmac-sha256";

/// A secret's stored form: `hmac-sha256:SALT:MAC`, both base64url.
#[derive(Clone, Debug)]
pub(super) struct Stored {
    salt: Vec<u8>,
    mac: Vec<u8>,
}

impl Stored {
    pub(super) fn new(secret: &str, rng: &dyn SecureRandom) -> Result<Stored, EditError> {
        let mut salt = vec![0; SALT_BYTES];
        rng.fill(&mut salt).map_err(|_| EditError::Random)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salt);
        let mac = hmac::sign(&key, secret.as_bytes()).as_ref().to_vec();
        Ok(Stored { salt, mac })
    }

    pub(super) fn parse(text: &str) -> Result<Stored, String> {
        let bad = || format!("`secret` is not a stored secret ({SCHEME}:SALT:MAC)");
        let mut parts = text.split(':');
        let (Some(SCHEME), Some(salt), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let salt = URL_SAFE_NO_PAD.decode(salt).map_err(|_| bad())?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| bad())?;
        if salt.len() != SALT_BYTES || mac.len() != 32 {
            return Err(bad());
        }
        Ok(Stored { salt, mac })
    }

    /// Constant time in the secret's content.
    pub(super) fn matches(&self, secret: &str) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.salt);
        hmac::verify(&key, secret.as_bytes(), &self.mac).is_ok()
    }
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}:{}:{}",
            URL_SAFE_NO_PAD.encode(&self.salt),
            URL_SAFE_NO_PAD.encode(&self.mac)
        )
    }
}

pub(super) fn new_secret(rng: &dyn SecureRandom) -> Result<String, EditError> {
    let mut bytes = [0; SECRET_BYTES];
    rng.fill(&mut bytes).map_err(|_| EditError::Random)?;
    Ok(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}
