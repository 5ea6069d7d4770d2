//! gost-yescrypt, libxcrypt's `$gy$`: a yescrypt hash whose digest is then put through HMAC
//! with GOST R 34.11-2012 (Streebog-256), as `crypt_gost_yescrypt_rn` in
//! `lib/crypt-gost-yescrypt.c` computes it:
//!
//! ```text
//! digest = HMAC(HMAC(Streebog256(password), "$gy$params$salt"), yescrypt(password, salt))
//! ```
//!
//! where `yescrypt(password, salt)` is the 32-byte digest of the `$y$` hash with the same
//! parameters and salt. libxcrypt's inner message is the setting's first
//! `len("$y$params$salt$")` bytes, which is `"$gy$params$salt"` without a trailing `$`.

use hmac::{KeyInit as _, Mac as _};
use streebog::{Digest as _, Streebog256};
use subtle::ConstantTimeEq as _;

use super::{crypt64, malformed, yescrypt_params, Error, GOST_YESCRYPT};

/// libxcrypt decodes a yescrypt salt into at most 64 bytes.
const MAX_SALT_BYTES: usize = 64;

/// A validated `$gy$` hash.
#[derive(Clone)]
pub(super) struct GostYescrypt {
    /// `$gy$params$salt`: the inner HMAC's message.
    setting: Box<str>,
    params: yescrypt::Params,
    /// The decoded salt, 1 to [`MAX_SALT_BYTES`] bytes.
    salt: Box<[u8]>,
    digest: [u8; 32],
}

/// Parses a whole `$gy$` hash.
pub(super) fn parse(s: &str) -> Result<GostYescrypt, Error> {
    let mut fields = s["$gy$".len()..].split('$');
    let (Some(params_text), Some(salt_text), Some(digest), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed(
            GOST_YESCRYPT,
            "expected parameters, salt and digest",
        ));
    };
    let params = yescrypt_params(GOST_YESCRYPT, params_text)?;
    let salt = crypt64::decode(salt_text)
        .filter(|salt| (1..=MAX_SALT_BYTES).contains(&salt.len()))
        .ok_or_else(|| malformed(GOST_YESCRYPT, "invalid salt"))?;
    let digest = crypt64::decode_digest(digest)
        .ok_or_else(|| malformed(GOST_YESCRYPT, "expected a 43-character digest"))?;
    Ok(GostYescrypt {
        setting: format!("$gy${params_text}${salt_text}").into(),
        params,
        salt: salt.into(),
        digest,
    })
}

/// HMAC-Streebog-256.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        hmac::Hmac::<Streebog256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl GostYescrypt {
    /// Whether `password` matches, comparing the digests in constant time.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let mut y = [0; 32];
        if yescrypt::yescrypt(password, &self.salt, &self.params, &mut y).is_err() {
            return false;
        }
        let inner = hmac(&Streebog256::digest(password), self.setting.as_bytes());
        hmac(&inner, &y).ct_eq(&self.digest).into()
    }

    /// The parameter field, such as `j9T`.
    pub(super) fn params_text(&self) -> &str {
        self.setting["$gy$".len()..]
            .split('$')
            .next()
            .unwrap_or_default()
    }

    /// The same parameters and salt length with a fresh salt and a digest that no known
    /// password gives.
    pub(super) fn dummy_like(&self, salt: Vec<u8>, digest: [u8; 32]) -> GostYescrypt {
        let setting = format!("$gy${}${}", self.params_text(), crypt64::encode(&salt));
        GostYescrypt {
            setting: setting.into(),
            salt: salt.into(),
            digest,
            ..self.clone()
        }
    }

    /// The salt's length in bytes.
    pub(super) fn salt_len(&self) -> usize {
        self.salt.len()
    }

    /// The hash as libxcrypt writes it; `parse` gives `self` back.
    pub(super) fn to_mcf(&self) -> String {
        format!("{}${}", self.setting, crypt64::encode(&self.digest))
    }
}
