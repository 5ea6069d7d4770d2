//! Traditional DES crypt(3): 25 DES encryptions of a zero block, keyed by the password's first
//! 8 bytes (7 bits each), with the salt swapping bits of DES's expansion table.
//!
//! RustCrypto's `des` crate cannot express the salted expansion, so this is a small bit-level
//! DES after FIPS 46-3. It is slow and obsolete; we verify it only so existing files work.

use super::{crypt_value, CRYPT_ALPHABET};

/// Tables from FIPS 46-3: bit positions counted from 1 at the most significant end.
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6,
    64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61,
    53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
const FP: [u8; 64] = [
    40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30,
    37, 5, 45, 13, 53, 21, 61, 29, 36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
    34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];
const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18,
    19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
/// S-boxes, each 4 rows of 16, indexed by `row * 16 + column`.
const S: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12,
        11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9,
        1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1,
        10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15,
        4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5,
        14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6,
        9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2,
        12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1,
        13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15,
        10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14,
        2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13,
        14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5,
        15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5,
        12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4,
        10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6,
        11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10,
        8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// The encoded 11-character digest of `password` with `salt` (two characters of crypt's
/// alphabet, checked by the caller). As in C, the key stops at the first NUL byte.
pub(super) fn digest(password: &[u8], salt: [u8; 2]) -> [u8; 11] {
    let mut key = [0u8; 8];
    for (k, &b) in key.iter_mut().zip(password.iter().take_while(|&&b| b != 0)) {
        *k = b << 1;
    }
    let subkeys = subkeys(u64::from_be_bytes(key));

    // Salt bit `i` (6 bits per character, least significant first) swaps E[i] and E[i + 24].
    let salt_bits = salt.iter().rev().fold(0u32, |acc, &c| {
        acc << 6 | u32::from(crypt_value(c).unwrap_or(0))
    });
    let mut expansion = E;
    for i in 0..12 {
        if salt_bits >> i & 1 == 1 {
            expansion.swap(i, i + 24);
        }
    }

    let block = (0..25).fold(0, |block, _| encrypt(block, &subkeys, &expansion));
    // 64 bits as 11 characters of 6 bits, most significant first, padded with 2 zero bits.
    let padded = u128::from(block) << 2;
    let mut out = [0; 11];
    for (i, c) in out.iter_mut().enumerate() {
        *c = CRYPT_ALPHABET[(padded >> (60 - 6 * i) & 0x3f) as usize];
    }
    out
}

/// DES's 16 round keys, 48 bits each.
fn subkeys(key: u64) -> [u64; 16] {
    const MASK: u64 = (1 << 28) - 1;
    let halves = permute(key, 64, &PC1);
    let (mut c, mut d) = (halves >> 28, halves & MASK);
    let mut keys = [0; 16];
    for (k, &shift) in keys.iter_mut().zip(&SHIFTS) {
        c = (c << shift | c >> (28 - shift)) & MASK;
        d = (d << shift | d >> (28 - shift)) & MASK;
        *k = permute(c << 28 | d, 56, &PC2);
    }
    keys
}

/// One DES encryption with the given (possibly salted) expansion table.
fn encrypt(block: u64, subkeys: &[u64; 16], expansion: &[u8; 48]) -> u64 {
    let block = permute(block, 64, &IP);
    let (mut left, mut right) = (block >> 32, block & 0xffff_ffff);
    for key in subkeys {
        let mixed = permute(right, 32, expansion) ^ key;
        let substituted = S.iter().enumerate().fold(0, |acc, (i, sbox)| {
            let six = (mixed >> (42 - 6 * i) & 0x3f) as usize;
            let (row, column) = ((six & 0x20) >> 4 | (six & 1), six >> 1 & 0xf);
            acc << 4 | u64::from(sbox[row * 16 + column])
        });
        (left, right) = (right, left ^ permute(substituted, 32, &P));
    }
    permute(right << 32 | left, 64, &FP)
}

/// Picks bits of the `width`-bit `input` at the table's 1-based positions (1 = most significant).
fn permute(input: u64, width: u32, table: &[u8]) -> u64 {
    table.iter().fold(0, |acc, &position| {
        acc << 1 | (input >> (width - u32::from(position)) & 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a zero salt, crypt's DES is plain DES: check the FIPS 46 worked example.
    #[test]
    fn unsalted_encryption_matches_the_des_worked_example() {
        let keys = subkeys(0x1334_5779_9BBC_DFF1);
        assert_eq!(
            encrypt(0x0123_4567_89AB_CDEF, &keys, &E),
            0x85E8_1354_0F0A_B405
        );
    }
}
