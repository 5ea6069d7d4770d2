//! The harness itself: the registry starts, restarts and is configurable; skopeo pushes and pulls
//! images built by `support::oci` without changing a digest; the registry's URL rules the gate
//! depends on still hold.

use std::fs;
use std::io::ErrorKind;
use std::process::Command;
use std::time::Duration;

use crate::support::oci::{self, OciImage};
use crate::support::process::{run_bounded, Run};
use crate::support::registry::{http_status, request_head, Registry};
use crate::support::{install_hint, skopeo};

const MIB: usize = 1 << 20;

/// Pushes `image` to `registry` as `repo:TAG` unchanged; returns the `docker://` reference.
fn push(image: &OciImage, registry: &Registry, repo: &str) -> String {
    let dst = format!("docker://{}/{repo}:{}", registry.host(), image.tag);
    skopeo::copy(
        &image.reference(),
        &dst,
        &["--dest-tls-verify=false", "--preserve-digests"],
    )
    .expect_success();
    dst
}

/// Pulls `src` into a new OCI layout under `dir`, keeping layers uncompressed, and reads it back.
fn pull(src: &str, dir: &std::path::Path, tag: &str) -> OciImage {
    let layout = dir.join("pulled");
    let dst = format!("oci:{}:{tag}", layout.display());
    skopeo::copy(
        src,
        &dst,
        &[
            "--src-tls-verify=false",
            "--dest-oci-accept-uncompressed-layers",
        ],
    )
    .expect_success();
    oci::read_layout(&layout, tag)
}

fn assert_same_image(pulled: &OciImage, original: &OciImage) {
    assert_eq!(
        pulled.config_digest, original.config_digest,
        "config digest"
    );
    assert_eq!(
        pulled.layer_digests, original.layer_digests,
        "layer digests"
    );
    assert_eq!(
        pulled.manifest_digest, original.manifest_digest,
        "manifest digest"
    );
    pulled.verify_blobs();
}

#[test]
fn registry_serves_v2_on_the_port_it_logged() {
    let registry = Registry::start();

    assert_eq!(http_status(registry.addr, "/v2/").expect("GET /v2/"), 200);
    assert_ne!(registry.addr.port(), 0);
    let listening = format!("listening on {}", registry.addr);
    assert!(
        registry.log().contains(&listening),
        "log:\n{}",
        registry.log()
    );
    assert_eq!(registry.url(), format!("http://{}", registry.addr));
}

#[test]
fn image_round_trips_through_the_registry_with_identical_digests() {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let image = oci::build_image(&dir.path().join("src"), "v1", &[1000, 100 * MIB, 5], 42);
    let registry = Registry::start();

    let reference = push(&image, &registry, "test/img");
    let manifest = skopeo::inspect_raw(&reference, &["--tls-verify=false"]).expect_success();
    assert_eq!(
        oci::sha256_digest(manifest.stdout.as_bytes()),
        image.manifest_digest,
        "digest of the manifest the registry serves"
    );
    let pulled = pull(&reference, dir.path(), "v1");

    assert_same_image(&pulled, &image);
    assert_eq!(image.layer_digests.len(), 3);
}

#[test]
fn registry_restart_keeps_port_and_storage() {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let image = oci::build_image(&dir.path().join("src"), "v1", &[4096, 2 * MIB], 7);
    let mut registry = Registry::start();
    let reference = push(&image, &registry, "test/restart");
    let addr = registry.addr;

    registry.stop();
    assert!(!registry.is_running());
    let down = http_status(addr, "/v2/").expect_err("GET /v2/ while the registry is down");
    assert_eq!(down.kind(), ErrorKind::ConnectionRefused, "{down}");

    registry.restart();
    assert!(registry.is_running());
    assert_eq!(registry.addr, addr);
    assert_eq!(
        http_status(addr, "/v2/").expect("GET /v2/ after restart"),
        200
    );
    assert_same_image(&pull(&reference, dir.path(), "v1"), &image);
}

#[test]
fn builder_fragments_reach_the_registry_config() {
    let registry = Registry::builder()
        .auth_yaml("silly:\n  realm: https://auth.example/token\n  service: test-registry\n")
        .http_yaml("relativeurls: true\n")
        .start();

    let v2 = request_head(registry.addr, "GET", "/v2/", &[]).expect("GET /v2/");
    assert_eq!(v2.status, 401);
    assert_eq!(
        v2.header("www-authenticate"),
        Some(r#"Bearer realm="https://auth.example/token",service="test-registry""#)
    );
    // `silly` auth accepts any Authorization header.
    let upload = request_head(
        registry.addr,
        "POST",
        "/v2/test/img/blobs/uploads/",
        &[("Authorization", "Bearer anything")],
    )
    .expect("POST blob upload");
    assert_eq!(upload.status, 202);
    let location = upload.header("location").expect("upload has a Location");
    assert!(
        location.starts_with("/v2/test/img/blobs/uploads/"),
        "{location}"
    );
}

/// The rules by which registry 2.8 builds absolute upload URLs (see `support::registry`).
#[test]
fn upload_location_follows_forwarding_headers() {
    let registry = Registry::start();
    let own = format!("http://{}", registry.addr);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], &own),
        (&[("Host", "gate.example:8443")], "http://gate.example:8443"),
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "gate.example:9443"),
            ],
            "https://gate.example:9443",
        ),
        (
            &[("X-Forwarded-Host", "a.example, b.example")],
            "http://a.example",
        ),
        (
            &[("X-Forwarded-Proto", "https, http")],
            &format!("https, http://{}", registry.addr),
        ),
        (&[("X-Forwarded-Port", "9443")], &own),
        (
            &[("Forwarded", r#"proto=https;host="gate.example:9443""#)],
            "https://gate.example:9443",
        ),
        (
            &[
                ("Forwarded", "proto=https;host=gate.example"),
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", "xfh.example"),
            ],
            "https://gate.example",
        ),
        (
            &[
                ("Forwarded", "proto=https"),
                ("X-Forwarded-Host", "xfh.example"),
            ],
            &format!("https://{}", registry.addr),
        ),
        (
            &[
                ("Forwarded", "host=gate.example:9443"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "xfh.example"),
            ],
            &own,
        ),
    ];
    for (headers, base) in cases {
        let head = request_head(
            registry.addr,
            "POST",
            "/v2/test/img/blobs/uploads/",
            headers,
        )
        .expect("POST blob upload");
        let location = head.header("location").unwrap_or_default();
        let expected = format!("{base}/v2/test/img/blobs/uploads/");
        assert!(
            location.starts_with(&expected),
            "headers={headers:?}: Location {location:?}, want prefix {expected:?}"
        );
    }
}

#[test]
fn built_image_unpacks_with_umoci() {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let image = oci::build_image(&dir.path().join("src"), "v1", &[0, 3000, MIB + 1], 3);
    let bundle = dir.path().join("bundle");

    let mut umoci = Command::new("umoci");
    umoci.arg("unpack").arg("--rootless").arg("--image");
    umoci.arg(format!("{}:{}", image.layout.display(), image.tag));
    umoci.arg(&bundle);
    run_bounded(umoci, "umoci", skopeo::TIMEOUT).expect_success();

    for (i, size) in [0, 3000, MIB + 1].into_iter().enumerate() {
        let path = bundle.join("rootfs").join(format!("layer-{i}.bin"));
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(meta.len(), size as u64, "{}", path.display());
    }
}

#[test]
fn build_image_is_deterministic_per_seed() {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let a = oci::build_image(&dir.path().join("a"), "v1", &[10, 5000], 1);
    let b = oci::build_image(&dir.path().join("b"), "v1", &[10, 5000], 1);
    let c = oci::build_image(&dir.path().join("c"), "v1", &[10, 5000], 2);
    // A second tag in the same layout keeps the first.
    let a2 = oci::build_image(&dir.path().join("a"), "v2", &[10], 1);

    assert_eq!(
        (&a.manifest_digest, &a.layer_digests),
        (&b.manifest_digest, &b.layer_digests)
    );
    assert_ne!(a.layer_digests, c.layer_digests);
    assert_eq!(oci::read_layout(&a.layout, "v1"), a);
    assert_eq!(oci::read_layout(&a.layout, "v2"), a2);
    a.verify_blobs();
}

#[test]
fn failed_skopeo_run_reports_command_and_stderr() {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let missing = dir.path().join("missing");
    let run: Run = skopeo::copy(
        &format!("oci:{}:v1", missing.display()),
        &format!("dir:{}", dir.path().join("out").display()),
        &[],
    )
    .expect_failure();

    assert!(run.stderr.contains("index.json"), "stderr: {}", run.stderr);
    assert!(
        run.command.starts_with("skopeo --insecure-policy"),
        "{}",
        run.command
    );
    assert!(run.command.contains("--retry-times 0"), "{}", run.command);
}

#[test]
#[should_panic(expected = "docker-registry exited during startup")]
fn registry_that_cannot_start_fails_with_its_log() {
    // Token auth without `rootcertbundle` is a fatal config error.
    Registry::builder()
        .auth_yaml("token:\n  realm: https://auth.example/token\n  service: s\n  issuer: i\n")
        .start();
}

#[test]
#[should_panic(expected = "did not finish within 100ms and was killed")]
fn run_bounded_kills_a_command_that_overruns() {
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    run_bounded(sleep, "coreutils", Duration::from_millis(100));
}

#[test]
fn install_hint_names_the_debian_package() {
    assert_eq!(
        install_hint("docker-registry", "docker-registry"),
        "`docker-registry` is not on PATH: install the Debian package with \
         `apt-get install -y docker-registry`"
    );
}
