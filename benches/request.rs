//! Per-request pure work on the hot path: parsing `Authorization`, classifying the
//! path, matching the user agent against the recipe's pattern, and rewriting the
//! forwarding and hop-by-hop headers. Run with `cargo bench --bench request`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use registry_gate::config::{UaPattern, DEFAULT_UA_BLOCK};
use registry_gate::proxy::headers::{self, TrustedProxies};
use registry_gate::proxy::ua::UaBlocklist;
use registry_gate::proxy::{basic, route};

fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "registry.example.com:5043"),
        (
            "user-agent",
            "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64",
        ),
        (
            "authorization",
            "Basic YWxpY2U6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==",
        ),
        ("accept", "application/vnd.oci.image.manifest.v1+json"),
        ("connection", "keep-alive"),
        ("x-forwarded-for", "203.0.113.9"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

fn per_request(c: &mut Criterion) {
    let headers = request_headers();
    c.bench_function("authorization: parse Basic", |b| {
        b.iter(|| basic::parse(black_box(&headers)).expect("valid"))
    });

    let path = "/v2/team/app/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    c.bench_function("route: classify a blob path", |b| {
        b.iter(|| route::classify(black_box(path)))
    });

    let pattern = UaPattern::try_from(DEFAULT_UA_BLOCK.to_string()).expect("pattern");
    let list = UaBlocklist::new(vec![pattern]);
    let modern = headers.get("user-agent").cloned();
    let old = Some(HeaderValue::from_static("docker/1.5.0 go/go1.4.1"));
    c.bench_function("user agent: modern docker (allowed)", |b| {
        b.iter(|| list.is_blocked(black_box(modern.as_ref())))
    });
    c.bench_function("user agent: docker 1.5 (blocked)", |b| {
        b.iter(|| list.is_blocked(black_box(old.as_ref())))
    });

    let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")]);
    let peer: IpAddr = "10.0.0.5".parse().expect("ip");
    let host = HeaderValue::from_static("registry.example.com:5043");
    c.bench_function(
        "headers: strip hop-by-hop + set forwarding (trusted peer)",
        |b| {
            b.iter_batched(
                || headers.clone(),
                |mut h| {
                    headers::strip_hop_by_hop(&mut h);
                    let client = headers::client_address(&h, peer, &trusted);
                    headers::set_forwarding(&mut h, peer, client, host.clone(), &trusted);
                    h
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

criterion_group!(benches, per_request);
criterion_main!(benches);
