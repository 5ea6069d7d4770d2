//! scrypt in libxcrypt's `$7$` format: `$7$`, log2 N in one character, r and p in five
//! characters each (30 bits, least significant first), the salt, `$` and a 43-character digest.
//!
//! libxcrypt computes `$7$` with its yescrypt code in classic mode (`crypt-scrypt.c` hands the
//! setting to `yescrypt_r`), and so do we, with the `yescrypt` crate's [`yescrypt::Mode::Classic`].
//! As there, the salt is used as the text it is, not decoded.

use subtle::ConstantTimeEq as _;

use super::{crypt64, crypt_value, is_crypt_base64, malformed, Error, MAX_YESCRYPT_MEMORY, SCRYPT};

/// The longest salt: what libxcrypt's `gensalt` writes for its maximum of 64 random bytes.
const MAX_SALT_LEN: usize = 86;

/// A validated `$7$` hash.
#[derive(Clone)]
pub(super) struct Scrypt {
    /// log2 N, from 1; with `r` and `p` within [`MAX_YESCRYPT_MEMORY`] (see [`parse`]).
    log_n: u8,
    /// The block size, at least 1.
    r: u32,
    /// The parallelism, at least 1.
    p: u32,
    /// 1 to [`MAX_SALT_LEN`] characters of crypt(3)'s alphabet.
    salt: Box<str>,
    digest: [u8; 32],
}

/// Parses what follows `$7$`.
pub(super) fn parse(rest: &str) -> Result<Scrypt, Error> {
    let (setting, digest) = rest
        .rsplit_once('$')
        .ok_or_else(|| malformed(SCRYPT, "expected parameters, salt and digest"))?;
    let (Some(params), Some(salt)) = (setting.get(..11), setting.get(11..)) else {
        return Err(malformed(SCRYPT, "expected 11 characters of parameters"));
    };
    let params = params.as_bytes();
    let (Some(log_n), Some(r), Some(p)) = (
        crypt_value(params[0]),
        fixed_u30(&params[1..6]),
        fixed_u30(&params[6..11]),
    ) else {
        return Err(malformed(SCRYPT, "invalid parameters"));
    };
    if log_n == 0 || r == 0 || p == 0 {
        return Err(malformed(
            SCRYPT,
            "N must be at least 2, r and p at least 1",
        ));
    }
    // Each of the p passes fills 128 * r * N bytes, one after the other: the product bounds
    // both the memory and the time a login takes.
    let work = 128u128 << log_n;
    if work * u128::from(r) * u128::from(p) > u128::from(MAX_YESCRYPT_MEMORY) {
        return Err(malformed(SCRYPT, "parameters ask for more than 1 GiB"));
    }
    if salt.is_empty() || salt.len() > MAX_SALT_LEN || !is_crypt_base64(salt) {
        return Err(malformed(
            SCRYPT,
            "salt must be 1 to 86 characters of [./0-9A-Za-z]",
        ));
    }
    let digest = crypt64::decode_digest(digest)
        .ok_or_else(|| malformed(SCRYPT, "expected a 43-character digest"))?;
    Ok(Scrypt {
        log_n,
        r,
        p,
        salt: salt.into(),
        digest,
    })
}

/// A 30-bit number in five characters, least significant first (`decode64_uint32_fixed`).
fn fixed_u30(chars: &[u8]) -> Option<u32> {
    chars
        .iter()
        .rev()
        .try_fold(0u32, |v, &c| Some((v << 6) | u32::from(crypt_value(c)?)))
}

fn encode_fixed_u30(mut value: u32, out: &mut String) {
    for _ in 0..5 {
        out.push(char::from(super::CRYPT_ALPHABET[(value & 0x3f) as usize]));
        value >>= 6;
    }
}

impl Scrypt {
    /// Whether `password` matches, comparing the digests in constant time.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let params =
            yescrypt::Params::new(yescrypt::Mode::Classic, 1 << self.log_n, self.r, self.p);
        let mut actual = [0; 32];
        let computed = params.is_ok_and(|params| {
            yescrypt::yescrypt(password, self.salt.as_bytes(), &params, &mut actual).is_ok()
        });
        computed && bool::from(actual.ct_eq(&self.digest))
    }

    /// log2 N, r and p.
    pub(super) fn params(&self) -> (u8, u32, u32) {
        (self.log_n, self.r, self.p)
    }

    /// The salt's length in characters.
    pub(super) fn salt_len(&self) -> usize {
        self.salt.len()
    }

    /// The same parameters and salt length with a fresh salt and a digest that no known
    /// password gives.
    pub(super) fn dummy_like(&self, salt: &[u8], digest: [u8; 32]) -> Scrypt {
        Scrypt {
            salt: String::from_utf8_lossy(salt).into(),
            digest,
            ..self.clone()
        }
    }

    /// The hash as libxcrypt writes it; `parse` of what follows `$7$` gives `self` back.
    pub(super) fn to_mcf(&self) -> String {
        let mut out = String::from("$7$");
        out.push(char::from(super::CRYPT_ALPHABET[usize::from(self.log_n)]));
        encode_fixed_u30(self.r, &mut out);
        encode_fixed_u30(self.p, &mut out);
        out.push_str(&self.salt);
        out.push('$');
        out.push_str(&crypt64::encode(&self.digest));
        out
    }
}
