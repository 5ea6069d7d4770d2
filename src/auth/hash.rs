//! Password hashes as they appear in the second field of an htpasswd line.
//!
//! [`PasswordHash::parse`] validates a hash once, when the file is loaded, so that a malformed
//! line is reported with its location instead of silently failing every login. After that,
//! [`PasswordHash::verify`] never fails and never panics: it answers `true` or `false`.
//!
//! The accepted schemes are those that nginx on Debian accepts, less the rare ones listed on
//! [`Error::UnsupportedScheme`]. Errors name at most the scheme prefix of a hash, never the hash
//! itself: hashes are secrets and errors end up in logs.
//!
//! Reading a hash field is in `parse`, its [`Cost`] and the dummies of equal cost in `cost`,
//! the keyed digest refresh tokens carry in `keyed`, and each scheme that no crate verifies
//! in a file of its own.

// Crates, and why:
// - `bcrypt` 0.19: the maintained bcrypt crate. Its `verify` handles `$2a$`, `$2b$` and `$2y$`
//   alike and returns an error, not a panic, on a malformed hash; we still check the structure
//   here so that bad lines are rejected at load time.
// - `md-5`, `sha1` (RustCrypto): the digests under md5-crypt/apr1 and `{SHA}`/`{SSHA}`. No
//   maintained crate implements md5-crypt, so it is in `hash/md5_crypt.rs` (~60 lines).
// - `base64` 0.22: `{SHA}`/`{SSHA}` payloads and bcrypt's alphabet.
// - `sha-crypt`, `yescrypt` (RustCrypto): `$5$`/`$6$` and `$y$`, verified from the full Modular
//   Crypt Format string after we have validated (and, for yescrypt, bounded) it.
// - `yescrypt` again for scrypt `$7$` (its classic mode, as libxcrypt computes `$7$` with its
//   yescrypt code; `hash/scrypt.rs`), and with `streebog` and `hmac` (RustCrypto) for
//   gost-yescrypt `$gy$` (`hash/gost_yescrypt.rs`). Not the `scrypt` crate: a second
//   implementation of the core that `yescrypt` already has.
// - `subtle`: constant-time comparison of the digests we compute ourselves.
// - DES crypt is `hash/des_crypt.rs`: RustCrypto's `des` cannot do it (crypt(3) perturbs DES's
//   expansion table with the salt), and the crates that can (`pwhash`, `htpasswd-verify`) are
//   unmaintained or panic on malformed input.

mod cost;
mod crypt64;
mod des_crypt;
mod gost_yescrypt;
mod keyed;
mod md5_crypt;
mod parse;
mod scrypt;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;
use yescrypt::PasswordVerifier as _;

pub use cost::Cost;
use parse::yescrypt_params;

/// Passwords longer than this are refused by every scheme without hashing them.
///
/// sha-crypt's cost grows with the square of the password's length, so an unbounded password
/// lets one request burn seconds of CPU. libxcrypt, which nginx uses on Debian, refuses
/// passwords of 512 bytes or more; we allow twice that.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The most memory a yescrypt, gost-yescrypt or scrypt hash may ask for (`128 * N * r` bytes):
/// `mkpasswd -R 11`, the highest cost it offers. A larger value would make each login allocate
/// that much, and an allocation failure aborts the process. It also bounds the work,
/// `128 * N * r * p * (t + 1)` (scrypt has no `t`): p and yescrypt's time factor t multiply
/// the time a login takes, and `mkpasswd` leaves both at their minimum.
pub const MAX_YESCRYPT_MEMORY: u64 = 1 << 30;

/// bcrypt's base64 (its own alphabet, no padding).
const BCRYPT_BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::BCRYPT, NO_PAD);

/// The alphabet of crypt(3)'s base64, in value order.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const BCRYPT: &str = "bcrypt";
const APR1: &str = "apr1";
const MD5_CRYPT: &str = "md5-crypt";
const SHA1: &str = "sha1";
const SSHA: &str = "ssha";
const DES_CRYPT: &str = "des-crypt";
const SHA256_CRYPT: &str = "sha256-crypt";
const SHA512_CRYPT: &str = "sha512-crypt";
const YESCRYPT: &str = "yescrypt";
const SCRYPT: &str = "scrypt";
const GOST_YESCRYPT: &str = "gost-yescrypt";
const PLAIN: &str = "plain";

/// Why a hash field was rejected. Never contains more of the hash than its scheme prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The hash field is empty.
    #[error("empty hash")]
    Empty,
    /// The hash starts with a scheme prefix we do not implement, such as `{SMD5}`, `$2x$`
    /// (crypt_blowfish's buggy variant), `$md5` (SunMD5), `$3$` (NT) or `_` (BSDi extended
    /// DES).
    #[error("unsupported hash scheme {scheme:?}")]
    UnsupportedScheme {
        /// The prefix, e.g. `{SMD5}` or `$2x$`.
        scheme: String,
    },
    /// The hash has no recognised prefix, e.g. a bare plaintext password.
    #[error(
        "unsupported hash scheme: no recognised prefix (a plaintext password needs \"{{PLAIN}}\")"
    )]
    NoScheme,
    /// The prefix is known but the rest does not have that scheme's structure.
    #[error("malformed {scheme} hash: {reason}")]
    Malformed {
        /// The scheme's name, as [`PasswordHash::scheme`] gives it.
        scheme: &'static str,
        /// What is wrong, without quoting the hash.
        reason: &'static str,
    },
}

/// A validated password hash. Only [`PasswordHash::parse`] and [`PasswordHash::dummy`] make
/// one, and its `Debug` shows the scheme only.
#[derive(Clone)]
pub struct PasswordHash {
    kind: Kind,
}

/// The parsed hash. Every variant has been validated by `parse`.
#[derive(Clone)]
enum Kind {
    /// `$2a$`, `$2b$` or `$2y$`: the whole 60-character string.
    Bcrypt(Box<str>),
    /// `$apr1$` (when `apr1`) or `$1$`: salt of at most 8 bytes and the 22-character digest.
    Md5Crypt {
        apr1: bool,
        salt: Box<[u8]>,
        digest: [u8; 22],
    },
    /// `{SHA}`: the SHA-1 of the password.
    Sha1([u8; 20]),
    /// `{SSHA}`: the SHA-1 of the password followed by the salt.
    Ssha { digest: [u8; 20], salt: Box<[u8]> },
    /// 13 characters: 2 of salt and 11 of digest.
    DesCrypt { salt: [u8; 2], digest: [u8; 11] },
    /// `$5$` or `$6$`: the whole Modular Crypt Format string.
    ShaCrypt { sha512: bool, mcf: Box<str> },
    /// `$y$`: the whole Modular Crypt Format string.
    Yescrypt(Box<str>),
    /// `$7$`.
    Scrypt(Box<scrypt::Scrypt>),
    /// `$gy$`.
    GostYescrypt(Box<gost_yescrypt::GostYescrypt>),
    /// `{PLAIN}`: the SHA-1 of the password, so that comparing it hides the length.
    Plain([u8; 20]),
}

impl PasswordHash {
    /// Checks `password` against the hash. Takes time, by design, but never fails or panics.
    ///
    /// A password longer than [`MAX_PASSWORD_LEN`] is refused. For bcrypt only its first 72
    /// bytes count, and for DES crypt its first 8, as in every other implementation.
    pub fn verify(&self, password: &[u8]) -> bool {
        if password.len() > MAX_PASSWORD_LEN {
            return false;
        }
        match &self.kind {
            Kind::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Kind::Md5Crypt { apr1, salt, digest } => {
                let magic: &[u8] = if *apr1 { b"$apr1$" } else { b"$1$" };
                md5_crypt::digest(password, salt, magic)
                    .ct_eq(digest)
                    .into()
            }
            Kind::Sha1(digest) | Kind::Plain(digest) => {
                Sha1::digest(password).as_slice().ct_eq(digest).into()
            }
            Kind::Ssha { digest, salt } => {
                let actual = Sha1::new().chain_update(password).chain_update(salt);
                actual.finalize().as_slice().ct_eq(digest).into()
            }
            Kind::DesCrypt { salt, digest } => {
                des_crypt::digest(password, *salt).ct_eq(digest).into()
            }
            Kind::ShaCrypt { mcf, .. } => sha_crypt::ShaCrypt::default()
                .verify_password(password, &**mcf)
                .is_ok(),
            Kind::Yescrypt(mcf) => yescrypt::Yescrypt::default()
                .verify_password(password, &**mcf)
                .is_ok(),
            Kind::Scrypt(hash) => hash.verify(password),
            Kind::GostYescrypt(hash) => hash.verify(password),
        }
    }

    /// The scheme's short name: `bcrypt`, `apr1`, `md5-crypt`, `sha1`, `ssha`, `des-crypt`,
    /// `sha256-crypt`, `sha512-crypt`, `yescrypt`, `scrypt`, `gost-yescrypt` or `plain`.
    pub fn scheme(&self) -> &'static str {
        match &self.kind {
            Kind::Bcrypt(_) => BCRYPT,
            Kind::Md5Crypt { apr1: true, .. } => APR1,
            Kind::Md5Crypt { apr1: false, .. } => MD5_CRYPT,
            Kind::Sha1(_) => SHA1,
            Kind::Ssha { .. } => SSHA,
            Kind::DesCrypt { .. } => DES_CRYPT,
            Kind::ShaCrypt { sha512: false, .. } => SHA256_CRYPT,
            Kind::ShaCrypt { sha512: true, .. } => SHA512_CRYPT,
            Kind::Yescrypt(_) => YESCRYPT,
            Kind::Scrypt(_) => SCRYPT,
            Kind::GostYescrypt(_) => GOST_YESCRYPT,
            Kind::Plain(_) => PLAIN,
        }
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("scheme", &self.scheme())
            .finish_non_exhaustive()
    }
}

fn malformed(scheme: &'static str, reason: &'static str) -> Error {
    Error::Malformed { scheme, reason }
}

/// The value of a character of crypt(3)'s base64 alphabet.
fn crypt_value(b: u8) -> Option<u8> {
    CRYPT_ALPHABET.iter().position(|&c| c == b).map(|v| v as u8)
}

fn is_crypt_base64(s: &str) -> bool {
    s.bytes().all(|b| crypt_value(b).is_some())
}
