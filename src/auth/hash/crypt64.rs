//! crypt(3)'s base64 as yescrypt writes salts and digests: groups of three bytes, least
//! significant bits first, a partial group in as few characters as hold its bits. These are
//! libxcrypt's `encode64` and `decode64` (`lib/alg-yescrypt-common.c`), decoding as strictly:
//! a lone character, or stray bits in a partial group's last character, is refused.

use super::{crypt_value, CRYPT_ALPHABET};

/// The characters of `bytes`.
pub(super) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let value = group
            .iter()
            .rev()
            .fold(0u32, |v, &b| (v << 8) | u32::from(b));
        let bits = 8 * group.len() as u32;
        for shift in (0..bits).step_by(6) {
            out.push(char::from(
                CRYPT_ALPHABET[((value >> shift) & 0x3f) as usize],
            ));
        }
    }
    out
}

/// The bytes `text` encodes, or `None` if it is not canonical crypt base64.
pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for group in text.as_bytes().chunks(4) {
        let mut value = 0u32;
        for (i, &c) in group.iter().enumerate() {
            value |= u32::from(crypt_value(c)?) << (6 * i);
        }
        let bytes = group.len() * 6 / 8;
        if bytes == 0 || value >> (8 * bytes) != 0 {
            return None;
        }
        out.extend_from_slice(&value.to_le_bytes()[..bytes]);
    }
    Some(out)
}

/// The 32 bytes of a 43-character yescrypt or scrypt digest.
pub(super) fn decode_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 43 {
        return None;
    }
    decode(text)?.try_into().ok()
}

/// yescrypt's `t` (its time factor) from a parameter field such as `j9T`: 0 when the field
/// has none. The `yescrypt` crate reads it but does not tell; this reads the fields in
/// the same order, as libxcrypt's `yescrypt_r`: flavor, log2 N and r, then, if anything
/// is left, a "have" bit set and p (bit 1), then t (bit 2).
pub(super) fn yescrypt_t(params: &str) -> Option<u32> {
    let mut rest = params.as_bytes();
    let mut next = |min| decode_uint32(&mut rest, min);
    let (_flavor, _n_log2, _r) = (next(0)?, next(1)?, next(1)?);
    if rest.is_empty() {
        return Some(0);
    }
    let have = decode_uint32(&mut rest, 1)?;
    if have & 1 != 0 {
        decode_uint32(&mut rest, 2)?;
    }
    if have & 2 == 0 {
        return Some(0);
    }
    decode_uint32(&mut rest, 1)
}

/// One variable-length number, as libxcrypt's `decode64_uint32`: the first character's value
/// says how many characters follow.
fn decode_uint32(src: &mut &[u8], min: u32) -> Option<u32> {
    let (&first, rest) = src.split_first()?;
    let first = u64::from(crypt_value(first)?);
    let (mut start, mut end, mut chars, mut bits) = (0u64, 47u64, 1, 0u32);
    let mut value = u64::from(min);
    while first > end {
        value += (end + 1 - start) << bits;
        start = end + 1;
        end = start + (62 - end) / 2;
        chars += 1;
        bits += 6;
    }
    value += (first - start) << bits;
    let (more, rest) = (rest.get(..chars - 1)?, &rest[chars - 1..]);
    for &c in more {
        bits -= 6;
        value += u64::from(crypt_value(c)?) << bits;
    }
    *src = rest;
    u32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_libxcrypt_refuses() {
        let bytes: Vec<u8> = (0..=255).collect();
        for len in 0..40 {
            let text = encode(&bytes[len..len * 2]);
            assert_eq!(text.len(), (len * 8).div_ceil(6), "len={len}");
            assert_eq!(
                decode(&text).as_deref(),
                Some(&bytes[len..len * 2]),
                "{text}"
            );
        }
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("", Some(&[])),
            // 0x01 0x02 0x03: 0x030201 in four characters, low bits first.
            ("/6k.", Some(&[1, 2, 3])),
            ("/.", Some(&[1])),
            ("/1", Some(&[0xc1])),
            // A lone character holds no whole byte.
            ("/", None),
            ("/6k./", None),
            // Stray bits above the byte(s) a partial group carries.
            ("/E", None),
            ("/.E", None),
            ("/.$", None),
            ("/.ä", None),
        ];
        for &(text, want) in cases {
            assert_eq!(decode(text).as_deref(), want, "text={text:?}");
        }
    }

    #[test]
    fn yescrypt_t_reads_the_time_factor() {
        let cases = [
            ("j9T", Some(0)),
            ("j75", Some(0)),
            // "have" = 2 (t follows), t = 1 + 0; then t = 1 + 31.
            ("j75/.", Some(1)),
            ("j75/T", Some(32)),
            // "have" = 1 (p only), p = 2.
            ("j75..", Some(0)),
            // "have" = 3: p = 2, then t = 1 + 2.
            ("j750.0", Some(3)),
            // Two- and three-character numbers: 1 + 48 + 1 * 64 + 0; 1 + 560 + 4096.
            ("j75/l.", Some(113)),
            ("j75/t..", Some(4657)),
            ("j75/t.", None),
            ("j7", None),
            ("j75/!", None),
        ];
        for (params, want) in cases {
            assert_eq!(yescrypt_t(params), want, "params={params:?}");
        }
    }

    #[test]
    fn digests_are_43_canonical_characters() {
        let digest = encode(&[0xff; 32]);
        assert_eq!((digest.len(), &digest[40..]), (43, "zzD"));
        assert_eq!(decode_digest(&digest), Some([0xff; 32]));
        let cases = [
            format!("{digest}."),
            digest[..42].to_owned(),
            format!("{}E", &digest[..42]),
        ];
        for text in cases {
            assert_eq!(decode_digest(&text), None, "text={text:?}");
        }
    }
}
