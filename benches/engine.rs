//! Engine speed: simulated packet-hops per wall-second on `oversubscribed`
//! (one thread, no capture). Criterion reports it as "elements/s".
//!
//! cargo bench --bench engine

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn oversubscribed(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/oversubscribed.toml");
    let cfg = eremu::scenario::load(&path).expect("shipped scenario");
    let hops = eremu::simulate(&cfg).engine.hops;
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(hops));
    group.sample_size(10);
    // The whole 10 s scenario, so the fixed cost of a run (about 10 ms)
    // weighs as it does for users.
    group.bench_function("oversubscribed-10s", |b| b.iter(|| eremu::simulate(&cfg)));
    group.finish();
}

criterion_group!(benches, oversubscribed);
criterion_main!(benches);
