//! OCI image layouts on disk, built without external tools.
//!
//! [`build_image`] writes a layout that `skopeo copy oci:DIR:TAG ...` can push: uncompressed tar
//! layers of deterministic pseudo-random bytes, an image config and an OCI manifest, all named by
//! their SHA-256 digest. [`read_layout`] reads a layout back (one that skopeo wrote, say) so a
//! round trip can be compared digest by digest.
//!
//! Layer bytes are streamed into the blob file while they are hashed, so a 100 MiB layer costs
//! one buffer of memory, not 100 MiB.
//!
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/image-layout.md>

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an uncompressed OCI layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of an OCI image index (`index.json`).
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Annotation that names a manifest's tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Buffer between the tar writer and the blob file; also the PRNG's chunk size.
const BUF_SIZE: usize = 1 << 20;

/// One image inside an OCI layout directory. Digests are `sha256:<64 hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciImage {
    /// The layout directory (holds `oci-layout`, `index.json`, `blobs/`).
    pub layout: PathBuf,
    /// The tag, as in `index.json`'s `org.opencontainers.image.ref.name`.
    pub tag: String,
    /// Digest of the manifest blob.
    pub manifest_digest: String,
    /// Digest of the image config blob.
    pub config_digest: String,
    /// Digests of the layer blobs, in manifest order.
    pub layer_digests: Vec<String>,
}

impl OciImage {
    /// The skopeo image reference `oci:LAYOUT:TAG`.
    pub fn reference(&self) -> String {
        format!("oci:{}:{}", self.layout.display(), self.tag)
    }

    /// Path of a blob of this layout.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.layout, digest)
    }

    /// Re-hashes every blob of the image and panics if one is missing or does not match its
    /// name.
    pub fn verify_blobs(&self) {
        let digests = [&self.manifest_digest, &self.config_digest]
            .into_iter()
            .chain(&self.layer_digests);
        for digest in digests {
            let path = self.blob_path(digest);
            let mut file = File::open(&path)
                .unwrap_or_else(|e| panic!("opening blob {}: {e}", path.display()));
            let mut hasher = HashingWriter::new(io::sink());
            io::copy(&mut file, &mut hasher)
                .unwrap_or_else(|e| panic!("reading blob {}: {e}", path.display()));
            assert_eq!(&hasher.digest(), digest, "content of {}", path.display());
        }
    }
}

/// An OCI content descriptor.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// `index.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

/// An image manifest (OCI, or Docker schema 2, which has the same shape).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Writes image `tag` into the OCI layout at `dir` (created if needed) and returns it.
///
/// Layer `i` is an uncompressed tar holding one file, `layer-<i>.bin`, of `layer_sizes[i]`
/// pseudo-random bytes from a generator seeded with `seed + i`: the same arguments give the same
/// digests. An existing `index.json` keeps its other tags; an entry with the same tag is
/// replaced.
pub fn build_image(dir: &Path, tag: &str, layer_sizes: &[usize], seed: u64) -> OciImage {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("creating {}: {e}", blobs.display()));

    let layers: Vec<Descriptor> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let seed = seed.wrapping_add(i as u64);
            write_layer(&blobs, &format!("layer-{i}.bin"), size, seed)
        })
        .collect();

    // Uncompressed layers: each diff_id is the layer digest itself.
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = write_json_blob(dir, CONFIG_MEDIA_TYPE, &config);

    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
        config,
        layers,
    };
    let mut manifest_desc = write_json_blob(dir, MANIFEST_MEDIA_TYPE, &manifest);
    manifest_desc
        .annotations
        .insert(REF_NAME.to_owned(), tag.to_owned());

    let manifest_digest = manifest_desc.digest.clone();
    update_index(dir, tag, manifest_desc);
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );

    OciImage {
        layout: dir.to_owned(),
        tag: tag.to_owned(),
        manifest_digest,
        config_digest: manifest.config.digest,
        layer_digests: manifest.layers.into_iter().map(|l| l.digest).collect(),
    }
}

/// Reads image `tag` back from the OCI layout at `dir`: `index.json` → manifest → config and
/// layers. Panics, naming the file, if the layout is incomplete or the tag is missing.
pub fn read_layout(dir: &Path, tag: &str) -> OciImage {
    let index: Index = read_json(&dir.join("index.json"));
    let entry = index
        .manifests
        .iter()
        .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
        .unwrap_or_else(|| panic!("no manifest tagged {tag:?} in {}/index.json", dir.display()));
    let manifest: Manifest = read_json(&blob_path(dir, &entry.digest));
    OciImage {
        layout: dir.to_owned(),
        tag: tag.to_owned(),
        manifest_digest: entry.digest.clone(),
        config_digest: manifest.config.digest,
        layer_digests: manifest.layers.into_iter().map(|l| l.digest).collect(),
    }
}

/// Path of the blob named `digest` (`sha256:<hex>`) in the layout at `dir`.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest
        .split_once(':')
        .unwrap_or_else(|| panic!("digest {digest:?} has no algorithm prefix"));
    dir.join("blobs").join(algorithm).join(hex)
}

/// SHA-256 digest of `bytes`, as `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Streams one tar layer into `blobs` and returns its descriptor.
fn write_layer(blobs: &Path, file_name: &str, size: usize, seed: u64) -> Descriptor {
    let tmp = tempfile::NamedTempFile::new_in(blobs)
        .unwrap_or_else(|e| panic!("creating a temp file in {}: {e}", blobs.display()));
    let file = tmp
        .reopen()
        .unwrap_or_else(|e| panic!("opening {}: {e}", tmp.path().display()));
    let out = BufWriter::with_capacity(BUF_SIZE, HashingWriter::new(file));

    let mut header = tar::Header::new_ustar();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(out);
    let data = PrngReader::new(seed, size as u64);
    let out = builder
        .append_data(&mut header, file_name, data)
        .and_then(|()| builder.into_inner())
        .unwrap_or_else(|e| panic!("writing layer {file_name} to {}: {e}", blobs.display()));
    let hashing = out
        .into_inner()
        .unwrap_or_else(|e| panic!("flushing layer {file_name}: {}", e.error()));

    let (digest, size) = (hashing.digest(), hashing.written);
    let path = blobs.join(digest.trim_start_matches("sha256:"));
    tmp.persist(&path)
        .unwrap_or_else(|e| panic!("renaming layer to {}: {e}", path.display()));
    Descriptor {
        media_type: LAYER_MEDIA_TYPE.to_owned(),
        digest,
        size,
        annotations: BTreeMap::new(),
    }
}

/// Serialises `value` into a blob of the layout at `dir` and returns its descriptor.
fn write_json_blob(dir: &Path, media_type: &str, value: &impl Serialize) -> Descriptor {
    let bytes = serde_json::to_vec(value).expect("OCI JSON documents always serialise");
    let digest = sha256_digest(&bytes);
    write_file(&blob_path(dir, &digest), &bytes);
    Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size: bytes.len() as u64,
        annotations: BTreeMap::new(),
    }
}

/// Adds (or replaces) the entry for `tag` in `dir/index.json`.
fn update_index(dir: &Path, tag: &str, manifest: Descriptor) {
    let path = dir.join("index.json");
    let mut index = if path.exists() {
        read_json(&path)
    } else {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.to_owned()),
            manifests: Vec::new(),
        }
    };
    index
        .manifests
        .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
    index.manifests.push(manifest);
    let bytes = serde_json::to_vec(&index).expect("index.json always serialises");
    write_file(&path, &bytes);
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// A writer that hashes and counts everything passing through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `len` pseudo-random bytes, deterministic in `seed` and cheap even in an unoptimised test
/// build: a pool of up to 1 MiB of `SplitMix64` output, and block `k` of the stream is that pool
/// rotated by a `SplitMix64`-chosen offset, so producing a block is two `memcpy`s. The bytes depend
/// only on their position, not on how the caller sizes its reads, and gzip (32 KiB window) cannot
/// shrink them.
struct PrngReader {
    pool: Vec<u8>,
    seed: u64,
    pos: u64,
    len: u64,
}

impl PrngReader {
    fn new(seed: u64, len: u64) -> Self {
        let words = usize::try_from(len.div_ceil(8))
            .unwrap_or(usize::MAX)
            .min(BUF_SIZE / 8);
        let pool = (0..words as u64)
            .flat_map(|k| splitmix64(seed, k).to_le_bytes())
            .collect();
        PrngReader {
            pool,
            seed,
            pos: 0,
            len,
        }
    }
}

impl Read for PrngReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pool_len = self.pool.len() as u64;
        let n = buf
            .len()
            .min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        let mut filled = 0;
        while filled < n {
            let (block, in_block) = (self.pos / pool_len, self.pos % pool_len);
            let rotation = splitmix64(!self.seed, block) % pool_len;
            let start = ((in_block + rotation) % pool_len) as usize;
            let take = (n - filled)
                .min((pool_len - in_block) as usize)
                .min(self.pool.len() - start);
            buf[filled..filled + take].copy_from_slice(&self.pool[start..start + take]);
            filled += take;
            self.pos += take as u64;
        }
        Ok(n)
    }
}

/// Output `k` of the `SplitMix64` generator seeded with `seed`.
fn splitmix64(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add(k.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in_chunks(reader: &mut PrngReader, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0; chunk];
        loop {
            let n = reader.read(&mut buf).expect("PrngReader never fails");
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn prng_bytes_do_not_depend_on_read_sizes() {
        let len = 2 * BUF_SIZE as u64 + 12_345; // crosses pool-rotation blocks
        let whole = read_in_chunks(&mut PrngReader::new(9, len), 4 * BUF_SIZE);
        for chunk in [1, 7, 4099, BUF_SIZE - 1] {
            let pieces = read_in_chunks(&mut PrngReader::new(9, len), chunk);
            assert!(pieces == whole, "reads of {chunk} bytes give other bytes");
        }
        assert_eq!(whole.len() as u64, len);
        assert_ne!(
            whole[..BUF_SIZE],
            whole[BUF_SIZE..2 * BUF_SIZE],
            "consecutive blocks must differ"
        );
    }

    #[test]
    fn prng_handles_empty_and_tiny_lengths() {
        for len in [0, 1, 8, 9] {
            let bytes = read_in_chunks(&mut PrngReader::new(1, len), 3);
            assert_eq!(bytes.len() as u64, len, "len={len}");
        }
    }
}
