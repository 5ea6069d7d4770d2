//! md5-crypt (`$1$`, Poul-Henning Kamp's FreeBSD scheme) and Apache's `$apr1$`, which differs
//! only in its magic string. No maintained crate implements it, and it is short.
//!
//! Reference: `apr_md5_encode` in APR's `crypto/apr_md5.c` and `crypt-md5.c` in libxcrypt.

use md5::{Digest as _, Md5};

use super::CRYPT_ALPHABET;

/// The encoded 22-character digest of `password` for `salt` (at most 8 bytes, checked by the
/// caller) under `magic` (`$1$` or `$apr1$`).
pub(super) fn digest(password: &[u8], salt: &[u8], magic: &[u8]) -> [u8; 22] {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();

    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(magic)
        .chain_update(salt);
    for chunk in password.chunks(16) {
        context.update(&alternate[..chunk.len()]);
    }
    // "Then something really weird...": one byte per bit of the password's length.
    let mut length = password.len();
    while length != 0 {
        let byte = if length & 1 == 1 {
            0
        } else {
            password.first().copied().unwrap_or(0)
        };
        context.update([byte]);
        length >>= 1;
    }
    let mut state: [u8; 16] = context.finalize().into();

    // 1000 rounds to slow down brute force.
    for round in 0..1000 {
        let mut context = Md5::new();
        if round % 2 == 1 {
            context.update(password);
        } else {
            context.update(state);
        }
        if round % 3 != 0 {
            context.update(salt);
        }
        if round % 7 != 0 {
            context.update(password);
        }
        if round % 2 == 1 {
            context.update(state);
        } else {
            context.update(password);
        }
        state = context.finalize().into();
    }
    encode(&state)
}

/// crypt(3)'s base64 of the digest, in md5-crypt's byte order, least significant bits first.
fn encode(state: &[u8; 16]) -> [u8; 22] {
    const GROUPS: [[usize; 3]; 5] = [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]];
    let mut out = [0; 22];
    let mut chars = out.chunks_mut(4);
    for ([a, b, c], chunk) in GROUPS.iter().zip(&mut chars) {
        let word = u32::from(state[*a]) << 16 | u32::from(state[*b]) << 8 | u32::from(state[*c]);
        to64(word, chunk);
    }
    if let Some(last) = chars.next() {
        to64(u32::from(state[11]), last);
    }
    out
}

/// Writes `out.len()` characters of `word`, 6 bits each, least significant first.
fn to64(mut word: u32, out: &mut [u8]) {
    for c in out {
        *c = CRYPT_ALPHABET[(word & 0x3f) as usize];
        word >>= 6;
    }
}
