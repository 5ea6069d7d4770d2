//! The fuzz targets' bodies ([`targets`]) and what they share.
//!
//! The bodies live here rather than in `fuzz_targets/`, so that `cargo test` can replay kept
//! inputs through them without libFuzzer (`tests/regressions.rs`).
//!
//! The one thing two targets need is [`verify_is_cheap`]: `hash` and `htpasswd` must not
//! call `PasswordHash::verify` on a hash that is valid but deliberately slow. A bcrypt cost
//! of 31 or a yescrypt hash asking for 1 GiB is a legitimate hash that takes minutes; the
//! gate accepts it by design (the admin chose it), so spending that time is not a bug, but
//! it would make libFuzzer report a timeout and stop. The costs are read here, from the
//! hash text, independently of the code under test, so that a parser bug that misreads a
//! cost cannot also hide itself from the guard.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod targets;

/// Highest bcrypt cost verified: 2^6 key expansions, about a millisecond.
pub const MAX_BCRYPT_COST: u32 = 6;

/// Highest sha-crypt round count verified (the default, with no `rounds=`, is 5000).
pub const MAX_SHA_CRYPT_ROUNDS: u64 = 10_000;

/// Highest yescrypt work verified, as `N * r * p * (t + 1)`: 1 MiB of memory touched once,
/// `mkpasswd -m yescrypt -R 1` (`$y$j75$`). Its default, `-R 5` (`$y$j9T$`), is 64 times that.
pub const MAX_YESCRYPT_WORK: u128 = 8192;

/// Highest scrypt work verified, as `N * r * p`: 1 MiB of memory touched once, as
/// `$7$86..../....` (N = 2^10, r = 8, p = 1). `mkpasswd -m scrypt` makes at least 32 times that.
pub const MAX_SCRYPT_WORK: u128 = 8192;

/// sha-crypt's round count when the hash has no `rounds=` field.
const SHA_CRYPT_DEFAULT_ROUNDS: u64 = 5000;

/// crypt(3)'s base64 alphabet, in value order; yescrypt encodes its parameters with it.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether verifying a password against `hash` (an htpasswd hash field) is cheap enough
/// for a fuzzer: bcrypt cost at most [`MAX_BCRYPT_COST`], sha-crypt rounds at most
/// [`MAX_SHA_CRYPT_ROUNDS`], yescrypt and gost-yescrypt work at most [`MAX_YESCRYPT_WORK`],
/// scrypt work at most [`MAX_SCRYPT_WORK`]. Every other
/// scheme is cheap. A cost we cannot read counts as expensive: the hash parser should
/// have refused it anyway, and a skipped `verify` is only lost coverage.
pub fn verify_is_cheap(hash: &str) -> bool {
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        // `$2y$NN$`: two decimal digits.
        let cost = hash.get(4..6).and_then(decimal);
        cost.is_some_and(|c| c <= u64::from(MAX_BCRYPT_COST))
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
        // `$6$rounds=N$salt$digest`, or `$6$salt$digest` for the default.
        let rounds = match hash[3..].strip_prefix("rounds=") {
            None => Some(SHA_CRYPT_DEFAULT_ROUNDS),
            Some(rest) => rest.split('$').next().and_then(decimal),
        };
        rounds.is_some_and(|r| r <= MAX_SHA_CRYPT_ROUNDS)
    } else if let Some(rest) = hash.strip_prefix("$y$").or(hash.strip_prefix("$gy$")) {
        let params = rest.split('$').next().unwrap_or("");
        yescrypt_work(params.as_bytes()).is_some_and(|w| w <= MAX_YESCRYPT_WORK)
    } else if let Some(rest) = hash.strip_prefix("$7$") {
        scrypt_work(rest.as_bytes()).is_some_and(|w| w <= MAX_SCRYPT_WORK)
    } else {
        true
    }
}

/// A non-empty string of ASCII digits (no sign, unlike `str::parse`) that fits a `u64`.
fn decimal(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    s.parse().ok().filter(|_| digits)
}

/// `N * r * p * (t + 1)` from yescrypt's parameter field (`j9T`): the flavor, log2 of N, r,
/// then, if any remain, a "have" bit set and p (bit 1), t (bit 2), g (bit 4), NROM (bit 8).
fn yescrypt_work(params: &[u8]) -> Option<u128> {
    let mut pos = 0;
    let _flavor = decode_uint32(params, &mut pos, 0)?;
    let n_log2 = decode_uint32(params, &mut pos, 1)?;
    let r = decode_uint32(params, &mut pos, 1)?;
    let (mut p, mut t) = (1, 0);
    if pos < params.len() {
        let have = decode_uint32(params, &mut pos, 1)?;
        if have & 1 != 0 {
            p = decode_uint32(params, &mut pos, 2)?;
        }
        if have & 2 != 0 {
            t = decode_uint32(params, &mut pos, 1)?;
        }
    }
    let n = 1u128.checked_shl(n_log2).filter(|_| n_log2 <= 63)?;
    Some(n * u128::from(r) * u128::from(p) * (u128::from(t) + 1))
}

/// `N * r * p` from the start of what follows `$7$`: log2 N in one character, then r and p in
/// five characters each, least significant first (`decode64_uint32_fixed` in libxcrypt).
fn scrypt_work(params: &[u8]) -> Option<u128> {
    let value = |b: &u8| {
        CRYPT_ALPHABET
            .iter()
            .position(|c| c == b)
            .map(|v| v as u128)
    };
    let fixed = |chars: &[u8]| -> Option<u128> {
        chars
            .iter()
            .rev()
            .try_fold(0, |v, c| Some((v << 6) | value(c)?))
    };
    let n_log2 = value(params.first()?)?;
    let r = fixed(params.get(1..6)?)?;
    let p = fixed(params.get(6..11)?)?;
    Some((1u128 << n_log2) * r * p)
}

/// One variable-length integer of yescrypt's parameter encoding, as `decode64_uint32` in
/// the reference implementation: the first character's value says how many follow.
fn decode_uint32(src: &[u8], pos: &mut usize, min: u32) -> Option<u32> {
    let value = |b: u8| {
        CRYPT_ALPHABET
            .iter()
            .position(|&c| c == b)
            .map(|v| v as u64)
    };
    let first = value(*src.get(*pos)?)?;
    *pos += 1;
    let (mut start, mut end, mut chars, mut bits) = (0u64, 47u64, 1, 0u32);
    let mut dst = u64::from(min);
    while first > end {
        dst += (end + 1 - start) << bits;
        start = end + 1;
        end = start + (62 - end) / 2;
        chars += 1;
        bits += 6;
    }
    dst += (first - start) << bits;
    for _ in 1..chars {
        let next = value(*src.get(*pos)?)?;
        *pos += 1;
        bits -= 6;
        dst += next << bits;
    }
    u32::try_from(dst).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_guard() {
        let cases = [
            (
                "$2y$04$puLR0TXqUrQBSoBRqBGFd.ydN.33YvCGaSXL.OGC0yBFtY2oMqqfu",
                true,
            ),
            (
                "$2b$06$puLR0TXqUrQBSoBRqBGFd.ydN.33YvCGaSXL.OGC0yBFtY2oMqqfu",
                true,
            ),
            (
                "$2a$07$puLR0TXqUrQBSoBRqBGFd.ydN.33YvCGaSXL.OGC0yBFtY2oMqqfu",
                false,
            ),
            (
                "$2y$31$puLR0TXqUrQBSoBRqBGFd.ydN.33YvCGaSXL.OGC0yBFtY2oMqqfu",
                false,
            ),
            ("$2y$", false),
            (
                "$5$AAA4ygqO5.hcfmMQ$V7DHloCELhE6D8bjcJoU23yPUOPD/U6YG83BHV.RIP2",
                true,
            ),
            ("$6$rounds=10000$salt$digest", true),
            ("$6$rounds=10001$salt$digest", false),
            ("$6$rounds=999999999$salt$digest", false),
            ("$6$rounds=x$salt$digest", false),
            ("$6$rounds=+5000$salt$digest", false),
            (
                "$2y$+4$puLR0TXqUrQBSoBRqBGFd.ydN.33YvCGaSXL.OGC0yBFtY2oMqqfu",
                false,
            ),
            (
                "$y$j75$me2J2X20Ao674X3g2Zzz.0$1LDrYWa62CR8q7oCybI4s1DRLbcpRt6sPj5uhS7e9I7",
                true,
            ),
            (
                "$y$j7T$fCtDdDrGVKwdBUdZ5Bw1S0$Uv1Ujy/neoTStmWWSYZ0KeUsIr9EeAJGK.9kaNkgdr2",
                false,
            ),
            (
                "$y$j9T$tG0my/k9wzavt44ZI5ea1.$y5WcJft2ktGtFWle3IG25rt0WJKcPBhD.0L6.NQildA",
                false,
            ),
            ("$y$$salt$digest", false),
            (
                "$gy$j75$mz5kSJk7Q4/qQTc8m2W840$WeI9fut3iw9pLFpKAh26.rfjUHZXljcEaZY1QZNfqPB",
                true,
            ),
            ("$gy$j9T$salt$digest", false),
            ("$gy$$salt$digest", false),
            ("$7$86..../....salt$digest", true),
            ("$7$96..../....salt$digest", false),
            ("$7$76....0....salt$digest", true),
            ("$7$86....0....salt$digest", false),
            ("$7$BU..../....salt$digest", false),
            ("$7$86..../...", false),
            ("$7$86..!./....salt$digest", false),
            ("{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=", true),
            ("$apr1$FHpeqa7k$Ui2VnkKqhk7OsxMGX0mHX/", true),
            ("cM9sBLjy7lPlA", true),
        ];
        for (hash, cheap) in cases {
            assert_eq!(verify_is_cheap(hash), cheap, "hash={hash:?}");
        }
    }

    #[test]
    fn yescrypt_params() {
        // N = 2^10, r = 8 (`mkpasswd -R 1`); N = 2^12, r = 32 (the default).
        assert_eq!(yescrypt_work(b"j75"), Some(1024 * 8));
        assert_eq!(yescrypt_work(b"j9T"), Some(4096 * 32));
        // "have" = 2 (t follows), t = 3: four times the work.
        assert_eq!(yescrypt_work(b"j75/0"), Some(1024 * 8 * 4));
        // "have" = 1 (p follows), p = 2 (two characters, minimum 2).
        assert_eq!(yescrypt_work(b"j75.."), Some(1024 * 8 * 2));
        assert_eq!(yescrypt_work(b"j7"), None);
        assert_eq!(yescrypt_work(b"j\\5"), None);
    }

    /// N, r and p as the yescrypt crate reads them (it does not expose t).
    #[test]
    fn yescrypt_params_agree_with_the_crate() {
        let cases = [
            ("j75", 0),
            ("j9T", 0),
            ("jC5", 0),
            ("j85.0", 0),
            ("j6A.6", 0),
            ("j75/.", 1),
        ];
        for (params, t) in cases {
            let theirs: yescrypt::Params = params.parse().expect("valid params");
            let nrp = u128::from(theirs.n()) * u128::from(theirs.r()) * u128::from(theirs.p());
            let want = nrp * (t + 1);
            assert_eq!(
                yescrypt_work(params.as_bytes()),
                Some(want),
                "params={params:?}"
            );
        }
    }
}
