//! A keyed digest of a stored hash, which refresh tokens carry so that a password
//! change voids them.

use super::{Kind, PasswordHash};

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
