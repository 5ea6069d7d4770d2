//! Blob uploads through the gate: deterministic data and starting an upload session.

use super::client::{basic, Client, Proto};

/// Deterministic bytes, so that the registry's copy can be compared by digest.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `sha256:HEX` of `data`.
pub fn digest(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Starts an upload on the gate as alice/pw; returns the upload path (with its query).
pub async fn start_upload(client: &Client, repo: &str) -> String {
    let post = client
        .request(Proto::H1, "POST", &format!("/v2/{repo}/blobs/uploads/"))
        .header("authorization", basic("alice", "pw"));
    let posted = client.send_empty(Proto::H1, post).await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    upload_path(client, &posted.one("location"))
}

/// The path and query of an upload `Location` (the registry's is absolute).
pub fn upload_path(client: &Client, location: &str) -> String {
    location
        .split_once(client.authority())
        .map_or(location, |(_, p)| p)
        .to_string()
}

/// Asserts that the registry itself holds blob `digest` of `repo` with `len` bytes
/// (the registry checked the digest when the upload was committed).
pub fn assert_stored(registry: &super::registry::Registry, repo: &str, digest: &str, len: usize) {
    let stored = super::registry::request_head(
        registry.addr,
        "HEAD",
        &format!("/v2/{repo}/blobs/{digest}"),
        &[],
    )
    .expect("registry HEAD");
    assert_eq!(stored.status, 200, "{repo}@{digest} in the registry");
    assert_eq!(
        stored.header("content-length"),
        Some(len.to_string().as_str()),
        "{repo}@{digest} size"
    );
}
