//! Engine speed: simulated packet-hops per wall-second on `oversubscribed`
//! (one thread, no capture). Criterion reports it as "elements/s".
//!
//! cargo bench --bench engine

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eremu::units::SimDuration;

fn oversubscribed(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/oversubscribed.toml");
    let mut cfg = eremu::scenario::load(&path).expect("shipped scenario");
    // One simulated second keeps each sample short.
    cfg.duration = SimDuration::from_secs(1);
    let hops = eremu::simulate(&cfg).engine.hops;
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(hops));
    group.sample_size(20);
    group.bench_function("oversubscribed-1s", |b| b.iter(|| eremu::simulate(&cfg)));
    group.finish();
}

criterion_group!(benches, oversubscribed);
criterion_main!(benches);
