//! Password hashes as they appear in the second field of an htpasswd line.
//!
//! [`PasswordHash::parse`] validates a hash once, when the file is loaded, so that a malformed
//! line is reported with its location instead of silently failing every login. After that,
//! [`PasswordHash::verify`] never fails and never panics: it answers `true` or `false`.
//!
//! The accepted schemes are those that nginx on Debian accepts, less the rare ones listed on
//! [`Error::UnsupportedScheme`]. Errors name at most the scheme prefix of a hash, never the hash
//! itself: hashes are secrets and errors end up in logs.

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

mod crypt64;
mod des_crypt;
mod gost_yescrypt;
mod md5_crypt;
mod scrypt;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::sync::OnceLock;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;
use yescrypt::PasswordVerifier as _;

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

/// The bcrypt cost of [`PasswordHash::dummy`]: a typical cost for bcrypt htpasswd entries.
const DUMMY_BCRYPT_COST: u32 = 10;

/// sha-crypt's rounds when a hash names none.
const SHA_CRYPT_DEFAULT_ROUNDS: u32 = 5_000;

/// bcrypt's base64 (its own alphabet, no padding).
const BCRYPT_BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::BCRYPT, NO_PAD);

/// The alphabet of crypt(3)'s base64, in value order.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Longest scheme prefix echoed in [`Error::UnsupportedScheme`].
const MAX_SCHEME_LEN: usize = 24;

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

/// What checking a password against a hash costs: its scheme and work factor.
/// Two hashes of equal `Cost` take the same time to check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cost {
    /// bcrypt of this cost (2^cost rounds).
    Bcrypt(u32),
    /// `$5$` (`sha512: false`) or `$6$` with this many rounds.
    ShaCrypt {
        /// `$6$` rather than `$5$`.
        sha512: bool,
        /// The rounds, 5000 when the hash names none.
        rounds: u32,
    },
    /// yescrypt with these parameters (the hash's parameter field, e.g. `j9T`).
    Yescrypt(Box<str>),
    /// scrypt with N = 2^`log_n`, r and p.
    Scrypt {
        /// log2 N.
        log_n: u8,
        /// The block size.
        r: u32,
        /// The parallelism.
        p: u32,
    },
    /// gost-yescrypt with these parameters (the hash's parameter field, e.g. `j9T`).
    GostYescrypt(Box<str>),
    /// A scheme without a work factor, by its name (`apr1`, `sha1`, ...).
    Fixed(&'static str),
}

impl Cost {
    /// The scheme's short name, as [`PasswordHash::scheme`] gives it.
    pub fn scheme(&self) -> &'static str {
        match self {
            Cost::Bcrypt(_) => BCRYPT,
            Cost::ShaCrypt { sha512: false, .. } => SHA256_CRYPT,
            Cost::ShaCrypt { sha512: true, .. } => SHA512_CRYPT,
            Cost::Yescrypt(_) => YESCRYPT,
            Cost::Scrypt { .. } => SCRYPT,
            Cost::GostYescrypt(_) => GOST_YESCRYPT,
            Cost::Fixed(name) => name,
        }
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cost::Bcrypt(cost) => write!(f, "bcrypt cost {cost}"),
            Cost::ShaCrypt { rounds, .. } => write!(f, "{} rounds {rounds}", self.scheme()),
            Cost::Yescrypt(params) => write!(f, "yescrypt {params}"),
            Cost::Scrypt { log_n, r, p } => write!(f, "scrypt N=2^{log_n} r={r} p={p}"),
            Cost::GostYescrypt(params) => write!(f, "gost-yescrypt {params}"),
            Cost::Fixed(name) => f.write_str(name),
        }
    }
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
    /// Parses the hash field of an htpasswd line (everything between the first and the second
    /// `:`).
    pub fn parse(s: &str) -> Result<PasswordHash, Error> {
        let kind = if s.is_empty() {
            return Err(Error::Empty);
        } else if let Some(plain) = s.strip_prefix("{PLAIN}") {
            Kind::Plain(Sha1::digest(plain).into())
        } else if let Some(rest) = s.strip_prefix("{SHA}") {
            parse_sha1(rest)?
        } else if let Some(rest) = s.strip_prefix("{SSHA}") {
            parse_ssha(rest)?
        } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p)) {
            parse_bcrypt(s)?
        } else if let Some(rest) = s.strip_prefix("$apr1$") {
            parse_md5_crypt(rest, true)?
        } else if let Some(rest) = s.strip_prefix("$1$") {
            parse_md5_crypt(rest, false)?
        } else if s.starts_with("$5$") || s.starts_with("$6$") {
            parse_sha_crypt(s)?
        } else if let Some(rest) = s.strip_prefix("$y$") {
            parse_yescrypt(s, rest)?
        } else if let Some(rest) = s.strip_prefix("$7$") {
            Kind::Scrypt(scrypt::parse(rest)?.into())
        } else if s.starts_with("$gy$") {
            Kind::GostYescrypt(gost_yescrypt::parse(s)?.into())
        } else if s.len() == 13 && s.bytes().all(|b| crypt_value(b).is_some()) {
            parse_des_crypt(s.as_bytes())?
        } else {
            return Err(unsupported(s));
        };
        Ok(PasswordHash { kind })
    }

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

    /// This hash's scheme and work factor.
    pub fn cost(&self) -> Cost {
        match &self.kind {
            // Validated by `parse_bcrypt`: two digits at 4..6.
            Kind::Bcrypt(s) => Cost::Bcrypt(s[4..6].parse().unwrap_or(DUMMY_BCRYPT_COST)),
            Kind::ShaCrypt { sha512, mcf } => Cost::ShaCrypt {
                sha512: *sha512,
                rounds: mcf[3..]
                    .strip_prefix("rounds=")
                    .and_then(|r| r.split_once('$'))
                    .and_then(|(n, _)| n.parse().ok())
                    .unwrap_or(SHA_CRYPT_DEFAULT_ROUNDS),
            },
            Kind::Yescrypt(mcf) => {
                Cost::Yescrypt(mcf[3..].split('$').next().unwrap_or_default().into())
            }
            Kind::Scrypt(hash) => {
                let (log_n, r, p) = hash.params();
                Cost::Scrypt { log_n, r, p }
            }
            Kind::GostYescrypt(hash) => Cost::GostYescrypt(hash.params_text().into()),
            _ => Cost::Fixed(self.scheme()),
        }
    }

    /// A new hash of the same scheme and work factor with a fresh random salt, which
    /// no known password matches: checking a password against it takes as long as
    /// against `self`. Cheap to build (no hashing at this cost).
    pub fn dummy_like(&self) -> PasswordHash {
        let kind = match &self.kind {
            Kind::Bcrypt(s) => {
                let salt = BCRYPT_BASE64.encode(random_bytes());
                return reparse(format!("{}{salt}{}", &s[..7], &s[29..]));
            }
            Kind::Md5Crypt { apr1, salt, .. } => {
                let magic: &[u8] = if *apr1 { b"$apr1$" } else { b"$1$" };
                let salt = random_crypt_chars(salt.len());
                let digest = md5_crypt::digest(&random_bytes(), &salt, magic);
                Kind::Md5Crypt {
                    apr1: *apr1,
                    salt: salt.into(),
                    digest,
                }
            }
            Kind::Sha1(_) => Kind::Sha1(Sha1::digest(random_bytes()).into()),
            Kind::Plain(_) => Kind::Plain(Sha1::digest(random_bytes()).into()),
            Kind::Ssha { salt, .. } => Kind::Ssha {
                digest: Sha1::digest(random_bytes()).into(),
                salt: random_crypt_chars(salt.len()).into(),
            },
            Kind::DesCrypt { .. } => {
                let salt = random_crypt_chars(2);
                let salt = [salt[0], salt[1]];
                Kind::DesCrypt {
                    salt,
                    digest: des_crypt::digest(&random_bytes()[..8], salt),
                }
            }
            Kind::ShaCrypt { mcf, .. } => {
                // `$6$[rounds=N$]salt$digest`: the salt is the second-to-last field.
                let (head, digest) = mcf.rsplit_once('$').unwrap_or((mcf, ""));
                let (params, salt) = head.rsplit_once('$').unwrap_or((head, ""));
                let salt = random_crypt_chars(salt.len());
                let salt = String::from_utf8_lossy(&salt);
                return reparse(format!("{params}${salt}${digest}"));
            }
            Kind::Yescrypt(mcf) => {
                let params = mcf[3..].split('$').next().unwrap_or_default();
                let mut fields = mcf[3..].split('$').skip(1);
                let (salt, digest) = (fields.next().unwrap_or_default(), fields.next());
                let salt = random_crypt_base64(salt.len());
                let salt = String::from_utf8_lossy(&salt);
                let digest = digest.unwrap_or_default();
                return reparse(format!("$y${params}${salt}${digest}"));
            }
            Kind::Scrypt(hash) => {
                let salt = random_crypt_chars(hash.salt_len());
                Kind::Scrypt(hash.dummy_like(&salt, random_digest()).into())
            }
            Kind::GostYescrypt(hash) => {
                let salt = random_vec(hash.salt_len());
                Kind::GostYescrypt(hash.dummy_like(salt, random_digest()).into())
            }
        };
        PasswordHash { kind }
    }

    /// A bcrypt (cost 10) hash of a random value, built on first use. Verify against it when
    /// the user is unknown, so that unknown users take as long as known ones.
    pub fn dummy() -> &'static PasswordHash {
        static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
        DUMMY.get_or_init(|| {
            let (secret, salt) = (random_bytes(), random_bytes());
            let hash = bcrypt::hash_with_salt(secret, DUMMY_BCRYPT_COST, salt)
                .expect("DUMMY_BCRYPT_COST is within bcrypt's cost range");
            let hash = hash.format_for_version(bcrypt::Version::TwoB);
            PasswordHash {
                kind: Kind::Bcrypt(hash.into()),
            }
        })
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("scheme", &self.scheme())
            .finish_non_exhaustive()
    }
}

/// 16 unpredictable bytes: SipHash outputs under std's `RandomState` keys, which are seeded
/// from the OS, so `dummy` needs no RNG crate.
fn random_bytes() -> [u8; 16] {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut out = [0; 16];
    for chunk in out.chunks_mut(8) {
        let word = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// `n` random bytes.
fn random_vec(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.extend_from_slice(&random_bytes()[..16.min(n - out.len())]);
    }
    out
}

/// 32 random bytes: a digest that no known password gives.
fn random_digest() -> [u8; 32] {
    let mut out = [0; 32];
    out[..16].copy_from_slice(&random_bytes());
    out[16..].copy_from_slice(&random_bytes());
    out
}

/// `n` random characters of crypt(3)'s alphabet.
fn random_crypt_chars(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let chunk = random_bytes().map(|b| CRYPT_ALPHABET[usize::from(b % 64)]);
        out.extend_from_slice(&chunk[..chunk.len().min(n - out.len())]);
    }
    out
}

/// `n` random characters that decode as crypt(3)'s base64 (the `yescrypt` crate's,
/// least significant bits first): the last character of a partial group carries
/// only the bits that fit in whole bytes.
fn random_crypt_base64(n: usize) -> Vec<u8> {
    let mut out = random_crypt_chars(n);
    let spare_bits = match n % 4 {
        2 => 4,
        3 => 2,
        _ => 0,
    };
    if let Some(last) = out.last_mut() {
        let value = crypt_value(*last).unwrap_or(0) >> spare_bits;
        *last = CRYPT_ALPHABET[usize::from(value)];
    }
    out
}

/// Parses a dummy built from a validated hash; should that ever fail, the fixed
/// dummy stands in.
fn reparse(text: String) -> PasswordHash {
    PasswordHash::parse(&text).unwrap_or_else(|_| PasswordHash::dummy().clone())
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

/// Names the scheme prefix of an unrecognised hash, or says there is none.
fn unsupported(s: &str) -> Error {
    let is_scheme_char = |b: u8| b.is_ascii_alphanumeric() || b",=._-".contains(&b);
    let prefix = match s.as_bytes().first() {
        Some(b'{') => s.find('}').map(|end| (&s[..=end], &s[1..end])),
        Some(b'$') => s[1..].find('$').map(|end| (&s[..end + 2], &s[1..end + 1])),
        Some(b'_') if s.len() == 20 => Some(("_", "_")),
        _ => None,
    };
    match prefix {
        Some((scheme, name))
            if !name.is_empty()
                && scheme.len() <= MAX_SCHEME_LEN
                && name.bytes().all(is_scheme_char) =>
        {
            Error::UnsupportedScheme {
                scheme: scheme.to_owned(),
            }
        }
        _ => Error::NoScheme,
    }
}

/// Base64 as nginx and Apache decode `{SHA}`/`{SSHA}`: padding optional, stray bits ignored.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn parse_sha1(rest: &str) -> Result<Kind, Error> {
    let bytes = LENIENT_BASE64
        .decode(rest)
        .map_err(|_| malformed(SHA1, "invalid base64"))?;
    let digest = bytes
        .try_into()
        .map_err(|_| malformed(SHA1, "expected a 20-byte SHA-1 digest"))?;
    Ok(Kind::Sha1(digest))
}

fn parse_ssha(rest: &str) -> Result<Kind, Error> {
    let bytes = LENIENT_BASE64
        .decode(rest)
        .map_err(|_| malformed(SSHA, "invalid base64"))?;
    let (digest, salt) = bytes
        .split_first_chunk::<20>()
        .ok_or_else(|| malformed(SSHA, "shorter than a 20-byte SHA-1 digest"))?;
    Ok(Kind::Ssha {
        digest: *digest,
        salt: salt.into(),
    })
}

/// `$2y$NN$` + 22 characters of salt + 31 of digest, in bcrypt's base64 without stray bits.
fn parse_bcrypt(s: &str) -> Result<Kind, Error> {
    if s.len() != 60 || !s.is_ascii() {
        return Err(malformed(BCRYPT, "expected 60 characters"));
    }
    let cost = &s[4..6];
    let cost_ok = cost.bytes().all(|b| b.is_ascii_digit())
        && (4..=31).contains(&cost.parse::<u32>().unwrap_or(0));
    if !cost_ok || s.as_bytes()[6] != b'$' {
        return Err(malformed(BCRYPT, "cost must be two digits from 04 to 31"));
    }
    let (mut salt, mut digest) = ([0; 16], [0; 23]);
    let salt_ok = BCRYPT_BASE64.decode_slice(&s[7..29], &mut salt) == Ok(16);
    let digest_ok = BCRYPT_BASE64.decode_slice(&s[29..], &mut digest) == Ok(23);
    if !(salt_ok && digest_ok) {
        return Err(malformed(BCRYPT, "invalid base64 in salt or digest"));
    }
    Ok(Kind::Bcrypt(s.into()))
}

/// `salt$digest` after the magic: as Apache and libxcrypt, the salt ends at the first `$` and
/// has at most 8 bytes.
fn parse_md5_crypt(rest: &str, apr1: bool) -> Result<Kind, Error> {
    let scheme = if apr1 { APR1 } else { MD5_CRYPT };
    let (salt, digest) = rest
        .split_once('$')
        .ok_or_else(|| malformed(scheme, "missing '$' after the salt"))?;
    if salt.len() > 8 {
        return Err(malformed(scheme, "salt longer than 8 characters"));
    }
    let digest: [u8; 22] = match digest.as_bytes().try_into() {
        Ok(d) if is_crypt_base64(digest) => d,
        _ => return Err(malformed(scheme, "expected a 22-character digest")),
    };
    // The last character carries 2 bits of the digest; any other value can never match.
    if crypt_value(digest[21]).unwrap_or(0) >= 4 {
        return Err(malformed(scheme, "non-canonical digest encoding"));
    }
    Ok(Kind::Md5Crypt {
        apr1,
        salt: salt.as_bytes().into(),
        digest,
    })
}

/// 2 characters of salt and 11 of digest, all from crypt's alphabet (checked by the caller).
fn parse_des_crypt(s: &[u8]) -> Result<Kind, Error> {
    let (salt, digest) = s.split_at(2);
    match (salt.try_into(), digest.try_into()) {
        // 64 bits in 11 characters leave the last character's 2 low bits clear.
        (Ok(salt), Ok(digest)) if crypt_value(s[12]).unwrap_or(1) & 3 == 0 => {
            Ok(Kind::DesCrypt { salt, digest })
        }
        _ => Err(malformed(DES_CRYPT, "non-canonical digest encoding")),
    }
}

/// `$5$` or `$6$`, optional `rounds=N$`, a salt of 1 to 16 characters, `$` and the digest. We
/// reject what glibc and libxcrypt could never match (rounds out of range or not canonical,
/// longer salts) so it shows as a warning at load time.
fn parse_sha_crypt(s: &str) -> Result<Kind, Error> {
    let sha512 = s.starts_with("$6$");
    let (scheme, digest_len) = if sha512 {
        (SHA512_CRYPT, 86)
    } else {
        (SHA256_CRYPT, 43)
    };
    let mut rest = &s[3..];
    if let Some(after) = rest.strip_prefix("rounds=") {
        let (rounds, after) = after
            .split_once('$')
            .ok_or_else(|| malformed(scheme, "missing '$' after rounds"))?;
        let canonical = !rounds.starts_with('0') && rounds.bytes().all(|b| b.is_ascii_digit());
        match rounds.parse::<u32>() {
            Ok(n) if canonical && (1_000..=999_999_999).contains(&n) => rest = after,
            _ => return Err(malformed(scheme, "rounds must be from 1000 to 999999999")),
        }
    }
    let (salt, digest) = rest
        .split_once('$')
        .ok_or_else(|| malformed(scheme, "missing '$' after the salt"))?;
    if !(1..=16).contains(&salt.len()) || !is_crypt_base64(salt) {
        return Err(malformed(
            scheme,
            "salt must be 1 to 16 characters of [./0-9A-Za-z]",
        ));
    }
    if digest.len() != digest_len || !is_crypt_base64(digest) {
        let reason = if sha512 {
            "expected an 86-character digest"
        } else {
            "expected a 43-character digest"
        };
        return Err(malformed(scheme, reason));
    }
    // The last character carries 4 bits of a SHA-256 digest and 2 of a SHA-512 one.
    let last_limit = if sha512 { 4 } else { 16 };
    if crypt_value(digest.as_bytes()[digest_len - 1]).unwrap_or(0) >= last_limit {
        return Err(malformed(scheme, "non-canonical digest encoding"));
    }
    Ok(Kind::ShaCrypt {
        sha512,
        mcf: s.into(),
    })
}

/// `$y$params$salt$digest`, with the memory the parameters ask for bounded.
fn parse_yescrypt(s: &str, rest: &str) -> Result<Kind, Error> {
    let mut fields = rest.split('$');
    let (Some(params), Some(salt), Some(digest), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed(YESCRYPT, "expected parameters, salt and digest"));
    };
    yescrypt_params(YESCRYPT, params)?;
    if salt.is_empty() || !is_crypt_base64(salt) {
        return Err(malformed(YESCRYPT, "invalid salt"));
    }
    if digest.len() != 43 || !is_crypt_base64(digest) {
        return Err(malformed(YESCRYPT, "expected a 43-character digest"));
    }
    Ok(Kind::Yescrypt(s.into()))
}

/// A yescrypt parameter field (`j9T`), with the memory and work it asks for bounded.
fn yescrypt_params(scheme: &'static str, text: &str) -> Result<yescrypt::Params, Error> {
    let invalid = || malformed(scheme, "invalid parameters");
    let params: yescrypt::Params = text.parse().map_err(|_| invalid())?;
    let t = crypt64::yescrypt_t(text).ok_or_else(invalid)?;
    let memory = 128 * u128::from(params.r()) * u128::from(params.n());
    if memory > u128::from(MAX_YESCRYPT_MEMORY) {
        return Err(malformed(scheme, "parameters ask for more than 1 GiB"));
    }
    // N >= 2, so this also bounds the p blocks of 128 * r bytes each.
    let work = memory * u128::from(params.p()) * (u128::from(t) + 1);
    if work > u128::from(MAX_YESCRYPT_MEMORY) {
        return Err(malformed(
            scheme,
            "p and t ask for more than 1 GiB of work (mkpasswd leaves both at 1 and 0)",
        ));
    }
    Ok(params)
}

impl PasswordHash {
    /// A keyed digest of the stored hash (its salt and digest): it changes whenever
    /// the password is set again, and without `key` it tells nothing about either.
    /// Refresh tokens carry it, so that a password change voids them.
    pub fn keyed_digest(&self, key: &ring::hmac::Key) -> ring::hmac::Tag {
        let mut mac = ring::hmac::Context::with_key(key);
        mac.update(self.scheme().as_bytes());
        mac.update(b"\0");
        match &self.kind {
            Kind::Bcrypt(s) | Kind::ShaCrypt { mcf: s, .. } | Kind::Yescrypt(s) => {
                mac.update(s.as_bytes());
            }
            Kind::Md5Crypt { salt, digest, .. } => {
                mac.update(salt);
                mac.update(b"$");
                mac.update(digest);
            }
            Kind::Sha1(digest) | Kind::Plain(digest) => mac.update(digest),
            Kind::Ssha { digest, salt } => {
                mac.update(digest);
                mac.update(salt);
            }
            Kind::DesCrypt { salt, digest } => {
                mac.update(salt);
                mac.update(digest);
            }
            Kind::Scrypt(hash) => mac.update(hash.to_mcf().as_bytes()),
            Kind::GostYescrypt(hash) => mac.update(hash.to_mcf().as_bytes()),
        }
        mac.sign()
    }
}
