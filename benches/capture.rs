//! What a capture costs: building frames into pcapng blocks on the writer
//! thread (per frame, no file), and whole runs of `oversubscribed` with every
//! tap captured against the same runs without capture.
//!
//! cargo bench --bench capture

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eremu::bench::CaptureMode;
use eremu::model::{Packet, Place};
use eremu::observe::frames::{FrameBuilder, Shape};
use eremu::observe::pcapng;
use eremu::scenario::{Config, Direction, PathId};
use eremu::units::{SimDuration, SimTime};

fn oversubscribed() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/oversubscribed.toml");
    eremu::scenario::load(&path).expect("shipped scenario")
}

/// What the writer does for each frame of `oversubscribed`: the backup
/// flow's 1400-byte packets as the taps see them (sent, on the primary link,
/// dropped by the policer, delivered), each built into an Enhanced Packet
/// Block in one buffer. Throughput counts frames.
fn blocks(c: &mut Criterion) {
    const N: u64 = 10_000;
    let shapes = [
        Shape::Sent,
        Shape::Circuit(PathId::Primary, Direction::In),
        Shape::Drop(
            Place::Link(PathId::Primary, Direction::In),
            eremu::model::DropCause::Policer,
        ),
        Shape::Delivered,
    ];
    let mut g = c.benchmark_group("capture-blocks");
    g.throughput(Throughput::Elements(N));
    for (name, mode) in [
        ("full", CaptureMode::Full),
        ("snaplen-128", CaptureMode::Headers),
    ] {
        let cfg = mode.apply(&oversubscribed()).expect("a capture");
        let mut builder = FrameBuilder::new(&cfg);
        let mut buf = Vec::with_capacity(32 << 20);
        g.bench_function(format!("1400-byte-{name}-10k"), |b| {
            b.iter(|| {
                buf.clear();
                for seq in 0..N {
                    let pkt = Packet {
                        wire_len: 1422,
                        ..Packet::new(0, seq, SimTime(seq * 7_466), 1400)
                    };
                    let start = pcapng::begin(&mut buf, 0, pkt.sent.0);
                    let len = builder.append(&pkt, shapes[seq as usize % 4], &mut buf);
                    pcapng::end(&mut buf, start, len, None);
                }
                buf.len()
            })
        });
    }
    g.finish();
}

/// 0.1 s of `oversubscribed` (about 40,000 frames seen by the taps), every
/// tap captured for the whole run, against the same run without capture;
/// outputs go to a temporary directory. `eremu bench --capture` measures
/// the same on the command line.
fn runs(c: &mut Criterion) {
    let mut cfg = oversubscribed();
    cfg.set_duration(SimDuration::from_millis(100))
        .expect("100 ms is a valid duration");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut g = c.benchmark_group("capture-runs");
    g.sample_size(10);
    for (name, mode) in [
        ("none", CaptureMode::None),
        ("snaplen-128", CaptureMode::Headers),
        ("full", CaptureMode::Full),
    ] {
        let with = mode.apply(&cfg);
        let run_cfg = with.as_ref().unwrap_or(&cfg);
        let out = dir.path().join("run");
        g.bench_function(format!("oversubscribed-100ms-{name}"), |b| {
            b.iter_batched(
                // The last run's files are removed untimed.
                || {
                    let _ = std::fs::remove_dir_all(&out);
                },
                |_| {
                    let r = eremu::run(run_cfg, &out, with.is_some(), eremu::default_threads());
                    r.expect("run").engine.hops
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, blocks, runs);
criterion_main!(benches);
