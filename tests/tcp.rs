//! TCP flows: smoltcp hosts in virtual time, their segments crossing the
//! modeled circuit as real frames.

mod common;

use common::{have_tshark, load, text, tshark};
use eremu::scenario;
use eremu::simulate;
use eremu::units::SimDuration;

const S: u64 = 1_000_000_000;

/// One bulk transfer over an uncongested 1 Gbps path whose line rate is the
/// bottleneck: each 1460-byte segment is a 1500-byte IP packet in a
/// 1522-byte tagged frame, 1542 bytes on the wire, so goodput approaches
/// 1 Gbps x 1460 / 1542 = 946.8 Mbit/s. The 1 MiB window exceeds the
/// bandwidth-delay product (1 Gbps x 4 ms = 500 kB) by less than the 1 MiB
/// queue, so nothing is dropped; slow start costs the first few round trips.
#[test]
fn a_single_transfer_approaches_the_line_rate_times_payload_over_frame() {
    let t = r#"
name = "one-tcp"
duration = "6s"
[onprem]
prefixes = ["192.168.0.0/16"]
[azure]
prefixes = ["10.1.0.0/16"]
[circuit]
bandwidth = "1Gbps"
port_speed = "1Gbps"
mode = "active-passive"
[circuit.primary]
latency = "2ms"
[gateway]
sku = "ErGw3Az"
[[flows]]
name = "bulk"
kind = "tcp-bulk"
from = "192.168.1.10"
to = "10.1.0.4"
bytes = "400MB"
buffer = "1MiB"
"#;
    let r = simulate(&scenario::parse("one.toml", t).unwrap());
    let f = &r.flows["bulk"];
    let tcp = f.tcp.as_ref().unwrap();
    assert_eq!(tcp.bytes_transferred, 400_000_000);
    assert!(f.drops.is_empty(), "{:?}", f.drops);
    assert_eq!(tcp.retransmitted_segments, 0);
    let expected = 1e9 * 1460.0 / 1542.0;
    let goodput = tcp.goodput_bps as f64;
    assert!(
        goodput > 0.96 * expected && goodput <= expected,
        "{goodput} vs {expected}"
    );
    assert!(tcp.completion_ns.unwrap() > 3 * S);
    // Round trips: 4 ms of propagation plus the queue the window keeps full.
    // (RTT samples are whole microseconds, kept to 4 significant digits.)
    assert!(tcp.rtt_ns.min >= 3_990_000, "{:?}", tcp.rtt_ns);
}

#[test]
fn a_policer_costs_tcp_more_than_its_drops() {
    let r = simulate(&load("tcp-oversubscribed"));
    let total: u64 = r
        .flows
        .values()
        .map(|f| f.tcp.as_ref().unwrap().goodput_bps)
        .sum();
    let policed: u64 = r
        .flows
        .values()
        .map(|f| f.drops.get("policer").copied().unwrap_or(0))
        .sum();
    let retransmitted: u64 = r
        .flows
        .values()
        .map(|f| f.tcp.as_ref().unwrap().retransmitted_segments)
        .sum();
    // The policer drops well under 1 % of the segments, yet every drop the
    // fast-retransmit machinery does not repair costs a retransmission
    // timeout (smoltcp's minimum is 1 s) and a collapsed window: the four
    // flows stall for a second at a time (see README for the figures).
    assert!(
        policed > 0 && retransmitted >= policed / 2,
        "{policed} {retransmitted}"
    );
    assert!(r
        .flows
        .values()
        .all(|f| !f.tcp.as_ref().unwrap().stalls.is_empty()));
    // Below the 984 Mbit/s of IP the policer lets through, above half of it.
    assert!(total > 500_000_000 && total < 984_000_000, "{total}");
}

#[test]
fn a_transfer_survives_a_silent_failure_with_a_visible_stall() {
    let r = simulate(&load("tcp-failover"));
    let f = &r.flows["backup"];
    let tcp = f.tcp.as_ref().unwrap();
    // The black hole swallows segments from 3 s until BFD moves the routes
    // (0.88 s); TCP then waits for its retransmission timer, so the stall
    // starts at the failure and ends after the switch.
    assert!(
        tcp.stalls
            .iter()
            .any(|s| s.start_ns <= 3 * S + 10_000_000 && s.end_ns > 3 * S + 880_000_000),
        "{:?}",
        tcp.stalls
    );
    let fo = &r.failovers[0].flows["backup"];
    assert_eq!(fo.path_after.as_deref(), Some("secondary"));
    assert!(f.drops["black-hole"] > 0);
    // It carried on: most of the 7 s of transfer got through.
    assert!(tcp.goodput_bps > 200_000_000, "{}", tcp.goodput_bps);
    assert!(tcp.retransmitted_segments > 0);
}

#[test]
fn over_the_vpn_tcp_uses_the_clamped_mss_and_the_gateways_rate() {
    let r = simulate(&load("tcp-over-vpn"));
    let vpn = &r.links["vpn"]["in"];
    // MSS 1350: 1390-byte packets fit the tunnel's 1400-byte MTU, nothing is
    // dropped for size.
    assert!(
        r.flows.values().all(|f| !f.drops.contains_key("mtu")),
        "{:?}",
        r.drops
    );
    assert!(vpn.hop.tx_packets > 1000);
    // Each full segment is 1390 + 54 bytes of ESP (no padding: 1392 is a
    // multiple of 4) on the tunnel.
    assert!(vpn.hop.tx_bytes <= vpn.hop.tx_packets * 1444);
    let backup = r.flows["backup"].tcp.as_ref().unwrap();
    // Below VpnGw1's 650 Mbit/s of outer packets.
    assert!(
        backup.goodput_bps > 50_000_000 && (backup.goodput_bps as f64) < 650e6 * 1350.0 / 1444.0
    );
    let db = r.flows["db"].tcp.as_ref().unwrap();
    // A transaction takes at least one round trip: 2 x 15 ms, less up to
    // 2 ms of jitter each way.
    assert!(
        db.transactions > 100 && db.transaction_ns.min >= 26_000_000,
        "{:?}",
        db.transaction_ns
    );
}

#[test]
fn jitter_on_the_tunnel_does_not_collapse_tcp() {
    // The Internet's delay varies smoothly (close packets see close delays),
    // so 2 ms of jitter on a 30 ms round trip changes a bulk transfer's
    // goodput little. (Independent per-packet draws kept in order once cut
    // it from 244 to 22 Mbit/s by compressing acknowledgements.)
    let with = load("tcp-over-vpn");
    assert_eq!(
        with.vpn.as_ref().unwrap().jitter,
        SimDuration::from_millis(2)
    );
    let file = include_str!("../scenarios/tcp-over-vpn.toml");
    assert!(file.contains("jitter = \"2ms\""));
    let without = eremu::scenario::parse(
        "x.toml",
        &file.replace("jitter = \"2ms\"", "jitter = \"0s\""),
    )
    .unwrap();
    assert_eq!(without.vpn.as_ref().unwrap().jitter, SimDuration::ZERO);
    let goodput = |cfg| {
        simulate(&cfg).flows["backup"]
            .tcp
            .as_ref()
            .unwrap()
            .goodput_bps as f64
    };
    let (a, b) = (goodput(with), goodput(without));
    assert!(
        (0.8..1.25).contains(&(a / b)),
        "with jitter {a}, without {b}"
    );
}

#[test]
fn tcp_runs_are_deterministic() {
    for name in ["tcp-failover", "tcp-over-vpn"] {
        let cfg = load(name);
        let a = eremu::simulate_with(&cfg, 1);
        let b = eremu::simulate_with(&cfg, 2);
        assert_eq!(a.to_json(true), b.to_json(true), "{name}");
        assert!(a.conservation_errors().is_empty());
    }
}

#[test]
fn bad_tcp_flows_are_refused() {
    let base = text("tcp-failover");
    for (from, to, needle) in [
        ("buffer = \"1MiB\"", "buffer = \"2GiB\"", "flows[0].buffer"),
        (
            "buffer = \"1MiB\"",
            "buffer = \"1MiB\"\nbytes = 0",
            "flows[0].bytes",
        ),
        (
            "buffer = \"1MiB\"",
            "buffer = \"1MiB\"\nrate = \"1Gbps\"",
            "rate",
        ),
        ("cc = \"cubic\"", "cc = \"bbr\"", "flows[0].cc"),
        ("kind = \"tcp-bulk\"", "kind = \"tcp-rr\"", "request"),
        (
            "buffer = \"1MiB\"",
            "buffer = \"1MiB\"\nmss = 9000",
            "flows[0].mss",
        ),
    ] {
        let t = base.replacen(from, to, 1);
        let e = scenario::parse("bad.toml", &t).expect_err(to).to_string();
        assert!(
            e.contains(needle) && e.starts_with("bad.toml:"),
            "{to}: {e}"
        );
    }
}

#[test]
fn tshark_sees_the_handshake_and_the_retransmissions() {
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = load("tcp-failover");
    let out = dir.path().join("out");
    eremu::run(&cfg, &out, true, 1).unwrap();
    // The Azure side of the connection, one file per tap.
    let file = out.join("azure-gw.pcapng");
    // Checksums verified (status 0 is bad).
    let bad = tshark(
        dir.path(),
        &file,
        &[
            "-o",
            "tcp.check_checksum:TRUE",
            "-Y",
            "_ws.malformed || tcp.checksum.status == 0",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    assert!(bad.trim().is_empty(), "{bad}");
    let retrans = tshark(
        dir.path(),
        &file,
        &[
            "-Y",
            "tcp.analysis.retransmission || tcp.analysis.fast_retransmission",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    assert!(retrans.lines().count() > 0, "no retransmissions seen");
    // The handshake happened before the window: start one from 0 s.
    let t = text("tcp-failover").replace(
        "window = [\"2.99s\", \"5s\"]",
        "window = [\"0.99s\", \"1.1s\"]",
    );
    let cfg = scenario::parse("t.toml", &t).unwrap();
    let out = dir.path().join("start");
    eremu::run(&cfg, &out, true, 1).unwrap();
    let syn = tshark(
        dir.path(),
        &out.join("azure-gw.pcapng"),
        &[
            "-Y",
            "tcp.flags.syn == 1",
            "-T",
            "fields",
            "-e",
            "tcp.flags.ack",
        ],
    );
    assert_eq!(
        syn.lines().collect::<Vec<_>>(),
        ["0", "1"],
        "SYN then SYN-ACK: {syn}"
    );
}
