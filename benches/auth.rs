//! The hot path of authentication: a credential-cache hit against the bcrypt
//! verification it saves (cost 5 and 10), the naive baseline that nginx runs on
//! every request. Run with `cargo bench --bench auth`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use registry_gate::auth::cache::CredentialCache;
use registry_gate::auth::hash::PasswordHash;

fn cache_hit_vs_bcrypt(c: &mut Criterion) {
    let cache = CredentialCache::new(Duration::from_secs(300), 10_000);
    let fp = cache.fingerprint("alice", b"correct horse battery staple");
    cache.insert(fp);
    c.bench_function("cache hit (fingerprint + lookup)", |b| {
        b.iter(|| {
            let fp = cache.fingerprint(
                black_box("alice"),
                black_box(b"correct horse battery staple"),
            );
            assert!(cache.is_fresh(&fp));
        })
    });

    let mut group = c.benchmark_group("bcrypt verify");
    group.sample_size(10);
    for cost in [5u32, 10] {
        let text = bcrypt::hash("correct horse battery staple", cost).expect("bcrypt hash");
        let hash = PasswordHash::parse(&text).expect("bcrypt hash parses");
        group.bench_function(format!("cost {cost}"), |b| {
            b.iter(|| assert!(hash.verify(black_box(b"correct horse battery staple"))))
        });
    }
    group.finish();
}

criterion_group!(benches, cache_hit_vs_bcrypt);
criterion_main!(benches);
