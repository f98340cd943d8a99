//! The hot paths below the engine: one link (enqueue and arrival), building
//! frames for a capture, and ESP encryption.
//!
//! cargo bench --bench paths

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eremu::model::link::{Link, ETHERNET_GAP};
use eremu::model::Packet;
use eremu::units::{BitRate, ByteSize, SimDuration, SimTime};
use eremu::wire::esp::{SecurityAssociation, NEXT_IPV4};
use eremu::wire::frame::{write_udp_packet, UdpSpec};
use eremu::wire::payload::Payload;

const N: u64 = 100_000;

fn packet(seq: u64) -> Packet {
    Packet {
        wire_len: 1422,
        ..Packet::new(0, seq, SimTime::ZERO, 1400)
    }
}

/// 100,000 frames through a 10 Gbps link, offered back to back.
fn link(c: &mut Criterion) {
    let mut g = c.benchmark_group("link");
    g.throughput(Throughput::Elements(N));
    g.bench_function("enqueue-and-arrive-100k", |b| {
        b.iter(|| {
            let mut l = Link::new(
                BitRate::from_gbps(10),
                SimDuration::from_millis(2),
                ETHERNET_GAP,
                ByteSize(1 << 30),
            );
            for i in 0..N {
                let now = SimTime(i * 1_154);
                l.handle_enqueue(now, &packet(i)).expect("room");
                while l.poll_arrival(now).is_some() {}
            }
            l
        })
    });
    g.finish();
}

fn frames(c: &mut Criterion) {
    let spec = UdpSpec {
        src: "192.168.1.10".parse().unwrap(),
        dst: "10.1.0.4".parse().unwrap(),
        src_port: 49152,
        dst_port: 5001,
        dscp: 18,
    };
    let mut g = c.benchmark_group("frames");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(2048);
    g.bench_function("udp-1400-full", |b| {
        b.iter(|| {
            out.clear();
            write_udp_packet(
                &spec,
                1400,
                &Payload {
                    flow: 0,
                    seq: 7,
                    sent_ns: 9,
                },
                usize::MAX,
                &mut out,
            );
            out.len()
        })
    });
    g.bench_function("udp-1400-headers-plus-64", |b| {
        b.iter(|| {
            out.clear();
            write_udp_packet(
                &spec,
                1400,
                &Payload {
                    flow: 0,
                    seq: 7,
                    sent_ns: 9,
                },
                28 + 64,
                &mut out,
            );
            out.len()
        })
    });
    let sa = SecurityAssociation::new(0x1001, [7; 36]);
    let inner = vec![0u8; 1400];
    let mut esp = Vec::with_capacity(2048);
    g.bench_function("esp-aes256gcm-1400", |b| {
        b.iter(|| {
            esp.clear();
            sa.encrypt(1, &inner, NEXT_IPV4, &mut esp);
            esp.len()
        })
    });
    g.finish();
}

criterion_group!(benches, link, frames);
criterion_main!(benches);
