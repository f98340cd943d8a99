//! End-to-end checks of the shipped scenarios against numbers derived from
//! first principles.

use std::path::Path;

use eremu::scenario::{self, Config};
use eremu::{simulate, Report};

fn load(name: &str) -> Config {
    scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{name}.toml")),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn shipped() -> Vec<String> {
    let mut names: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "toml")
                    .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
            })
            .collect();
    names.sort();
    names
}

fn rel_err(actual: f64, expected: f64) -> f64 {
    (actual - expected).abs() / expected
}

/// Bytes of the Ethernet frame (802.1Q-tagged) carrying an IP packet.
fn frame(ip: u64) -> u64 {
    14 + 4 + ip + 4
}

#[test]
fn required_scenarios_are_shipped() {
    let names = shipped();
    for required in [
        "steady-1g",
        "oversubscribed",
        "active-active",
        "gateway-bottleneck",
        "failover-secondary",
        "failover-to-vpn",
        "direct-100g",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "scenarios/{required}.toml is missing"
        );
    }
}

#[test]
fn conservation_and_determinism_on_every_scenario() {
    for name in shipped() {
        let cfg = load(&name);
        let a = simulate(&cfg);
        assert!(
            a.conservation_errors().is_empty(),
            "{name}: {:?}",
            a.conservation_errors()
        );
        for (flow, f) in &a.flows {
            assert!(f.sent_packets > 0, "{name}/{flow} sent nothing");
        }
        let b = simulate(&cfg);
        assert_eq!(a.to_json(true), b.to_json(true), "{name}: two runs differ");
        for threads in [2, 8] {
            for halves in [false, true] {
                let c = eremu::simulate_threads(&cfg, threads, halves);
                assert_eq!(
                    a.to_json(true),
                    c.to_json(true),
                    "{name}: 1 and {threads} threads differ (halves: {halves})"
                );
            }
        }
    }
}

#[test]
fn seed_changes_random_sources_only() {
    let mut cfg = load("failover-to-vpn");
    let a = simulate(&cfg);
    cfg.set_seed(7);
    let b = simulate(&cfg);
    // CBR traffic is the same; the VPN's random loss and jitter are not.
    assert_eq!(
        a.flows["backup"].sent_packets,
        b.flows["backup"].sent_packets
    );
    assert_ne!(a.to_json(true), b.to_json(true));
}

#[test]
fn under_capacity_everything_arrives_at_the_offered_rate() {
    let r = simulate(&load("steady-1g"));
    for (name, f) in &r.flows {
        assert!(f.drops.is_empty(), "{name}: {:?}", f.drops);
        // throughput = min(offered, capacity) = offered, within 0.5 %. CBR
        // loses only the packets still in flight at the end (2 ms of 10 s).
        let expected = f.offered_bps as f64;
        assert!(
            rel_err(f.throughput_bps as f64, expected) < 0.005,
            "{name}: {} vs {expected}",
            f.throughput_bps
        );
    }
    // An unloaded 1 Gbps circuit on a 10 Gbps port: voice sees propagation
    // (2 or 2.1 ms) plus the serialization of its 222-byte frame (242 bytes
    // on the wire at 10 Gbps: 193.6 ns) and nothing else.
    let v = &r.flows["voice"].latency_ns;
    assert!(v.min == 2_000_193 || v.min == 2_100_193, "{v:?}");
    assert_eq!(v.min, v.max);
}

#[test]
fn oversubscribed_policer_drops_the_excess() {
    let cfg = load("oversubscribed");
    let r = simulate(&cfg);
    let link = &r.links["primary"]["in"];
    // The policer counts frame bytes (802.1Q tag and FCS, no preamble).
    // Offered frame rate: backup 1.5 Gbps x 1422/1400 plus voice 80 kbps x
    // 222/200. It may pass bandwidth x duration plus the bucket (5 ms of
    // 1 Gbps = 625,000 bytes), so the dropped fraction of policer bytes is
    // 1 - capacity / offered.
    let secs = cfg.duration.as_secs_f64();
    let offered = 1.5e9 * frame(1400) as f64 / 1400.0 + 80e3 * frame(200) as f64 / 200.0;
    let capacity = 1e9 + 625_000.0 * 8.0 / secs;
    let expected_drop = 1.0 - capacity / offered;
    let passed_bytes = link.hop.delivered_bytes as f64;
    let in_flight_bytes: f64 = r
        .flows
        .values()
        .map(|f| f.in_flight_packets as f64)
        .sum::<f64>()
        * frame(1400) as f64;
    let dropped_bytes = link.hop.tx_bytes as f64 - passed_bytes - in_flight_bytes;
    let drop = dropped_bytes / (link.hop.tx_bytes as f64 - in_flight_bytes);
    assert!(
        rel_err(drop, expected_drop) < 0.005,
        "drop fraction {drop} vs {expected_drop}"
    );
    // Passed bits match the capacity to within the frames still on the wire.
    let passed_rate = passed_bytes * 8.0 / secs;
    assert!(
        (passed_rate - capacity).abs() * secs / 8.0 <= in_flight_bytes + 2.0 * frame(1400) as f64
    );
    // About a third is dropped, all by the policer.
    assert!((0.33..0.36).contains(&drop), "{drop}");
    assert_eq!(link.hop.drops.keys().collect::<Vec<_>>(), ["policer"]);
    // IP throughput of the backup flow: its share of the 1 Gbps of frames.
    let backup = &r.flows["backup"];
    let expected_ip = (1e9 - 80e3 * frame(200) as f64 / 200.0 * (1.0 - expected_drop)) * 1400.0
        / frame(1400) as f64;
    assert!(
        rel_err(backup.throughput_bps as f64, expected_ip) < 0.005,
        "{} vs {expected_ip}",
        backup.throughput_bps
    );
    // Active-passive: the secondary carries nothing while the primary is up.
    assert_eq!(r.links["secondary"]["in"].hop.tx_packets, 0);
}

#[test]
fn active_active_spreads_flows_over_both_links() {
    let r = simulate(&load("active-active"));
    let p = r.links["primary"]["in"].hop.tx_packets;
    let s = r.links["secondary"]["in"].hop.tx_packets;
    assert!(p > 0 && s > 0, "{p} {s}");
    // 1.6 Gbps offered is above one link's 1 Gbps but the hash put four
    // 200 Mbps flows on each: nothing is dropped, the circuit carries 1.6x.
    let total: u64 = r.flows.values().map(|f| f.throughput_bps).sum();
    assert!(rel_err(total as f64, 1.6e9) < 0.005, "{total}");
    assert!(r.drops.is_empty(), "{:?}", r.drops);
}

#[test]
fn gateway_bottleneck_caps_at_the_gateway_sku() {
    let cfg = load("gateway-bottleneck");
    let r = simulate(&cfg);
    let f = &r.flows["migration"];
    // ErGw1Az: 1 Gbps of IP bits (100k pps is not reached: 1 Gbps of 1400-byte
    // packets is 89,286 pps), plus its 1 ms bucket (125,000 bytes) once.
    let secs = cfg.duration.as_secs_f64();
    let expected = 1e9 + 125_000.0 * 8.0 / secs;
    assert!(
        rel_err(f.throughput_bps as f64, expected) < 0.005,
        "{}",
        f.throughput_bps
    );
    assert_eq!(f.drops.keys().collect::<Vec<_>>(), ["gateway"]);
    // The circuit itself dropped nothing.
    assert!(r.links["primary"]["in"].hop.drops.is_empty());
}

#[test]
fn carrier_loss_moves_traffic_to_the_secondary_at_once() {
    let cfg = load("failover-secondary");
    let r = simulate(&cfg);
    let app = &r.flows["app"];
    // Packets on the primary's wire (2 ms) or in its queue at 3 s are lost;
    // the next packet goes via the secondary and arrives 5 ms (plus 1,153.6 ns
    // of serialization at 10 Gbps) later. So the outage runs from the last
    // primary delivery (just before 3 s) to 3 s + 5 ms + 1,153 ns, and loses
    // the packets sent in the last 2 ms: 500 Mbps / 11,200 bits = 44,643 pps,
    // so 89 packets.
    assert_eq!(app.outages.len(), 1, "{:?}", app.outages);
    let o = app.outages[0];
    assert_eq!(o.lost_packets, 89);
    assert!(
        o.start_ns > 2_999_970_000 && o.start_ns <= 3_000_000_000,
        "{o:?}"
    );
    let first_secondary = 3_000_000_000 + 5_000_000 + 1_153;
    assert!(
        o.end_ns >= first_secondary && o.end_ns < first_secondary + 23_000,
        "{o:?}"
    );
    assert_eq!(app.drops.get("link-down"), Some(&89));
    // Traffic returns to the primary when it comes back at 7 s; the secondary
    // carried exactly the packets sent between 3 s and 7 s: 4 s x 44,642.9
    // app packets/s = 178,571.4, plus 4 s x 50 voice packets/s.
    let secondary = r.links["secondary"]["in"].hop.delivered_packets;
    let expected = (4.0 * 500e6 / 11_200.0) as u64 + 200;
    assert!(
        secondary.abs_diff(expected) <= 2,
        "{secondary} vs {expected}"
    );
    // The timeline tells the story in order.
    let texts: Vec<_> = r.timeline.iter().map(|e| e.event.as_str()).collect();
    let pos = |needle: &str| {
        texts
            .iter()
            .position(|t| t.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {texts:?}"))
    };
    assert!(pos("link primary down") < pos("flow app: first packet delivered via secondary"));
    assert!(pos("link primary up") < pos("flow app: first packet delivered via primary"));
}

#[test]
fn both_circuit_links_down_falls_back_to_the_vpn() {
    let r = simulate(&load("failover-to-vpn"));
    let vpn = &r.links["vpn"]["in"];
    // From 6 s to 8 s all 600 Mbps goes through the tunnel: 2 s x 53,571.4
    // packets/s = 107,143 packets.
    assert!(
        vpn.hop.tx_packets.abs_diff(107_143) <= 1,
        "{}",
        vpn.hop.tx_packets
    );
    // Each 1400-byte packet becomes 1400 + 56 bytes of ESP (AES-GCM, 2 bytes
    // of padding) in the outer IP packet.
    assert_eq!(vpn.hop.tx_bytes, vpn.hop.tx_packets * 1456);
    // Random loss of 0.01 %: about 11 packets; allow 5 sigma.
    let lost = vpn.hop.drops.get("loss").copied().unwrap_or(0);
    assert!(lost <= 11 + 17, "{lost}");
    // Latency via the VPN: 12 ms +/- 2 ms jitter, never reordered.
    let f = &r.flows["backup"].latency_ns;
    assert!(f.max <= 14_000_000 + 20_000, "{f:?}");
    assert!(r.conservation_errors().is_empty());
}

/// Poisson arrivals of fixed-size packets into the VPN gateway's shaping
/// queue form an M/D/1 queue: mean wait W = rho * S / (2 (1 - rho)), with S
/// the service (serialization) time of one packet.
#[test]
fn poisson_queueing_matches_md1_theory() {
    let text = r#"
name = "md1"
duration = "30s"
seed = 3
[onprem]
prefixes = ["192.168.0.0/16"]
[azure]
prefixes = ["10.1.0.0/16"]
[circuit]
bandwidth = "1Gbps"
[gateway]
sku = "ErGw1Az"
[vpn]
gateway_sku = "VpnGw1"
latency = "10ms"
queue = "64MiB"
[[flows]]
name = "poisson"
kind = "udp-poisson"
from = "192.168.1.1"
to = "10.1.0.1"
rate = "390Mbps"
size = 1398
[[events]]
at = "0s"
action = "link-down"
link = "primary"
[[events]]
at = "0s"
action = "link-down"
link = "secondary"
"#;
    let cfg = scenario::parse("md1.toml", text).unwrap();
    let r: Report = simulate(&cfg);
    let link = &r.links["vpn"]["in"];
    assert_eq!(link.hop.tx_packets, r.flows["poisson"].sent_packets);
    // 1398-byte packets become 1452-byte ESP packets (no padding); at
    // VpnGw1's 650 Mbps each takes S = 1452 x 8 / 650e6 s = 17,870.77 ns.
    // Arrivals: 390 Mbps / (1398 x 8) = 34,871 packets/s, so
    // rho = 34,871 x 17,870.77e-9 = 0.6232.
    let s = 1452.0 * 8.0 / 650e6;
    let lambda = 390e6 / (1398.0 * 8.0);
    let rho = lambda * s;
    let wait_theory = rho * s / (2.0 * (1.0 - rho));
    // Measured: link latency (queue + serialization + 10 ms) minus S and 10 ms.
    let wait = link.latency_ns.mean as f64 * 1e-9 - s - 0.010;
    assert!(
        rel_err(wait, wait_theory) < 0.03,
        "W = {wait} s, theory {wait_theory} s (rho {rho})"
    );
}

#[test]
fn tunnel_mtu_and_path_mtu_drop_what_does_not_fit() {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/failover-to-vpn.toml"),
    )
    .unwrap();
    // 1450-byte packets exceed the tunnel's inner MTU of 1400: once both circuit
    // links are down (6 s to 8 s) every packet is dropped with cause `mtu`.
    let big = base.replace("size = 1400", "size = 1450");
    let r = simulate(&scenario::parse("big.toml", &big).unwrap());
    let f = &r.flows["backup"];
    let expected = (2.0 * 600e6 / (1450.0 * 8.0)) as u64; // 103,448 packets in 2 s
    assert!(f.drops["mtu"].abs_diff(expected) <= 1, "{:?}", f.drops);
    assert_eq!(r.links["vpn"]["in"].hop.tx_packets, 0);
    // 1400 bytes fit the tunnel, but with NAT-T the outer packet is 1400 + 64
    // = 1464 bytes: a 1460-byte Internet path MTU drops them, 1464 carries them.
    let natt = base.replace(
        "mtu = 1400",
        "mtu = 1400\nnat_traversal = true\npath_mtu = 1460",
    );
    let r = simulate(&scenario::parse("natt.toml", &natt).unwrap());
    assert!(r.flows["backup"].drops["mtu"] > 100_000);
    let fits = natt.replace("path_mtu = 1460", "path_mtu = 1464");
    let r = simulate(&scenario::parse("fits.toml", &fits).unwrap());
    assert!(!r.flows["backup"].drops.contains_key("mtu"));
    assert_eq!(
        r.links["vpn"]["in"].hop.tx_bytes,
        r.links["vpn"]["in"].hop.tx_packets * 1464
    );
}

/// Reports, captures and `esp_sa` files are byte-identical between runs and
/// for 1, 2 and 8 threads, on every shipped scenario.
#[test]
fn outputs_are_byte_identical_across_runs_and_thread_counts() {
    for name in shipped() {
        let cfg = load(&name);
        let dir = tempfile::tempdir().unwrap();
        let runs: Vec<_> = [1usize, 1, 2, 8]
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let out = dir.path().join(format!("run{i}"));
                (eremu::run(&cfg, &out, true, t).unwrap(), out)
            })
            .collect();
        let (first, first_dir) = &runs[0];
        let files = first.capture.as_ref().unwrap().files.clone();
        assert!(!files.is_empty(), "{name}");
        for (r, out) in &runs[1..] {
            assert_eq!(first.to_json(true), r.to_json(true), "{name}");
            for f in files
                .iter()
                .map(String::as_str)
                .chain(cfg.vpn.as_ref().map(|_| "esp_sa"))
            {
                let (x, y) = (
                    std::fs::read(first_dir.join(f)).unwrap(),
                    std::fs::read(out.join(f)).unwrap(),
                );
                assert!(x == y && !x.is_empty(), "{name}: {f} differs");
            }
            // No temporary files are left behind.
            let leftovers: Vec<_> = std::fs::read_dir(out)
                .unwrap()
                .filter_map(|e| {
                    let n = e.unwrap().file_name().to_string_lossy().into_owned();
                    n.ends_with(".partial").then_some(n)
                })
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }
}

#[test]
fn split_capture_writes_one_file_per_tap() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/failover-secondary.toml")).unwrap()
        .replace("[capture]", "[capture]\nsplit = true\ntaps = [\"primary-msee\", \"secondary-msee\", \"drops\"]\nflows = [\"app\"]");
    let cfg = scenario::parse("split.toml", &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = eremu::run(&cfg, dir.path(), true, 2).unwrap();
    let c = r.capture.unwrap();
    assert_eq!(
        c.files,
        [
            "primary-msee.pcapng",
            "secondary-msee.pcapng",
            "drops.pcapng"
        ]
    );
    for f in &c.files {
        assert!(dir.path().join(f).metadata().unwrap().len() > 0);
    }
    // Only the app flow's 89 lost packets are in the drops tap.
    assert_eq!(c.frames["drops"], 89);
}

/// Zero-latency links give the processes no lookahead; runs must still end
/// and agree across thread counts.
#[test]
fn zero_latency_links_run_at_any_thread_count() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steady-1g.toml"),
    )
    .unwrap()
    .replace("latency = \"2ms\"", "latency = \"0s\"")
    .replace("latency = \"2.1ms\"", "latency = \"0s\"");
    let cfg = scenario::parse("zero.toml", &text).unwrap();
    let one = eremu::simulate_with(&cfg, 1);
    assert!(one.flows.values().all(|f| f.received_packets > 0));
    for t in [2, 8] {
        for halves in [false, true] {
            assert_eq!(
                one.to_json(true),
                eremu::simulate_threads(&cfg, t, halves).to_json(true)
            );
        }
    }
}

/// Many flows both ways, random sizes and rates, and a storm of failures on
/// every path: every packet is accounted for, at any thread count.
#[test]
fn stress_many_flows_and_random_failures_conserve_packets() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(42);
    let mut text = String::from(
        "name = \"stress\"\nduration = \"2s\"\nseed = 5\n[onprem]\nprefixes = [\"192.168.0.0/16\"]\n[azure]\nprefixes = [\"10.1.0.0/16\"]\n\
         [circuit]\nbandwidth = \"200Mbps\"\n[circuit.primary]\nlatency = \"1ms\"\nqueue = \"64KiB\"\n[circuit.secondary]\nlatency = \"3ms\"\nqueue = \"64KiB\"\n\
         [gateway]\nsku = \"ErGw1Az\"\n[vpn]\ngateway_sku = \"VpnGw1\"\nlatency = \"10ms\"\njitter = \"3ms\"\nloss = \"0.5%\"\nqueue = \"128KiB\"\n",
    );
    for i in 0..40 {
        let (from, to) = if i % 2 == 0 {
            (
                format!("192.168.{}.{}", i, 10),
                format!("10.1.{}.{}", i, 20),
            )
        } else {
            (
                format!("10.1.{}.{}", i, 20),
                format!("192.168.{}.{}", i, 10),
            )
        };
        let kind = ["udp-cbr", "udp-poisson"][rng.gen_range(0..2)];
        let rate = rng.gen_range(1..30);
        let size = rng.gen_range(48..1500);
        text += &format!("[[flows]]\nname = \"f{i}\"\nkind = \"{kind}\"\nfrom = \"{from}\"\nto = \"{to}\"\nrate = \"{rate}Mbps\"\nsize = {size}\n");
    }
    for k in 0..30 {
        let link = ["primary", "secondary", "vpn"][rng.gen_range(0..3)];
        let action = ["link-down", "link-up"][rng.gen_range(0..2)];
        text += &format!(
            "[[events]]\nat = \"{}ms\"\naction = \"{action}\"\nlink = \"{link}\"\n",
            50 + k * 30
        );
    }
    // And a moment with every path down: traffic meets the VPN, then nothing.
    for (at, action, link) in [
        (1_000, "link-down", "primary"),
        (1_000, "link-down", "secondary"),
        (990, "link-up", "vpn"),
        (1_300, "link-down", "vpn"),
        (1_400, "link-up", "primary"),
        (1_400, "link-up", "secondary"),
        (1_400, "link-up", "vpn"),
    ] {
        text += &format!("[[events]]\nat = \"{at}ms\"\naction = \"{action}\"\nlink = \"{link}\"\n");
    }
    let cfg = scenario::parse("stress.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let one = eremu::simulate_with(&cfg, 1);
    assert!(
        one.conservation_errors().is_empty(),
        "{:?}",
        one.conservation_errors()
    );
    for cause in ["link-down", "no-route", "loss"] {
        assert!(
            one.drops.keys().any(|k| k.starts_with(cause)),
            "no {cause}: {:?}",
            one.drops
        );
    }
    for halves in [false, true] {
        assert_eq!(
            one.to_json(true),
            eremu::simulate_threads(&cfg, 2, halves).to_json(true)
        );
    }
}
