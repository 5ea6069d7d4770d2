//! Reading a hash field: which scheme its prefix names, and whether the rest has that
//! scheme's structure (checked once, at load time, so a bad line is reported with its
//! location).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use super::{
    crypt64, crypt_value, gost_yescrypt, is_crypt_base64, malformed, scrypt, Error, Kind,
    PasswordHash, APR1, BCRYPT, BCRYPT_BASE64, DES_CRYPT, MAX_YESCRYPT_MEMORY, MD5_CRYPT, SHA1,
    SHA256_CRYPT, SHA512_CRYPT, SSHA, YESCRYPT,
};

/// Longest scheme prefix echoed in [`Error::UnsupportedScheme`].
const MAX_SCHEME_LEN: usize = 24;

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
pub(super) fn yescrypt_params(scheme: &'static str, text: &str) -> Result<yescrypt::Params, Error> {
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

#[cfg(test)]
mod tests;
