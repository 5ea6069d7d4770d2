//! What checking a hash costs ([`Cost`]), and dummies of equal cost: hashes no known
//! password matches, checked in place of a missing user's so that unknown users take as
//! long as known ones.

use std::fmt;
use std::sync::OnceLock;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use super::{
    crypt_value, des_crypt, md5_crypt, Kind, PasswordHash, BCRYPT, BCRYPT_BASE64, CRYPT_ALPHABET,
    GOST_YESCRYPT, SCRYPT, SHA256_CRYPT, SHA512_CRYPT, YESCRYPT,
};

/// The bcrypt cost of [`PasswordHash::dummy`]: a typical cost for bcrypt htpasswd entries.
const DUMMY_BCRYPT_COST: u32 = 10;

/// sha-crypt's rounds when a hash names none.
const SHA_CRYPT_DEFAULT_ROUNDS: u32 = 5_000;

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

impl PasswordHash {
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
                    // Crypt's alphabet, never NUL: DES crypt's key stops at the first
                    // NUL (as in C), and a random byte string starting with one is the
                    // empty password (1 in 256 of them: the test saw it).
                    digest: des_crypt::digest(&random_crypt_chars(8), salt),
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

#[cfg(test)]
mod tests;
