//! Captures checked by a real dissector: tshark reads what eremu writes.
//!
//! `.ci/run` installs tshark and sets `EREMU_REQUIRE_TSHARK=1`, so there a
//! missing tshark fails the tests; elsewhere they say they are skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;

use common::{have_tshark, install_esp_sa, tshark};
use eremu::observe::capture::EPOCH_UNIX_SECS;
use eremu::scenario;
use eremu::Report;

fn scenario_text(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{name}.toml")),
    )
    .unwrap()
}

/// Runs scenario text with capture into a fresh directory.
fn run(text: &str) -> (tempfile::TempDir, PathBuf, Report) {
    let cfg = scenario::parse("test.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = eremu::run(&cfg, &out, true, 2).unwrap();
    (dir, out, report)
}

/// Removes the `[capture]` window so the whole run is captured.
fn whole_run(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("window"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn count_by(lines: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in lines.lines().filter(|l| !l.is_empty()) {
        *m.entry(l.to_string()).or_insert(0) += 1;
    }
    m
}

fn no_errors(conf: &Path, file: &Path) {
    let bad = tshark(
        conf,
        file,
        &[
            "-Y",
            "_ws.malformed || _ws.expert.severity >= 0x00600000",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.message",
        ],
    );
    assert!(
        bad.trim().is_empty(),
        "frames with warnings or errors:\n{}",
        &bad[..bad.len().min(2000)]
    );
}

#[test]
fn shipped_scenarios_dissect_without_warnings() {
    if !have_tshark() {
        return;
    }
    for name in [
        "steady-1g",
        "oversubscribed",
        "failover-to-vpn",
        "direct-100g",
        "ipv6-dual-stack",
    ] {
        let (dir, out, report) = run(&scenario_text(name));
        let file = out.join("capture.pcapng");
        no_errors(dir.path(), &file);
        let tshark_counts = count_by(&tshark(
            dir.path(),
            &file,
            &["-T", "fields", "-e", "frame.interface_name"],
        ));
        let written: BTreeMap<_, _> = report
            .capture
            .as_ref()
            .unwrap()
            .frames
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(tshark_counts, written, "{name}");
    }
}

/// Frames per tap, computed from the report's own counters.
fn expected_taps(r: &Report) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for f in r.flows.values() {
        let (sent_tap, recv_tap) = if f.direction == "in" {
            ("onprem-ce", "azure-gw")
        } else {
            ("azure-gw", "onprem-ce")
        };
        *m.entry(sent_tap.into()).or_default() += f.sent_packets;
        *m.entry(recv_tap.into()).or_default() += f.received_packets;
    }
    for (link, tap) in [
        ("primary", "primary-msee"),
        ("secondary", "secondary-msee"),
        ("vpn", "vpn-internet"),
    ] {
        if let Some(dirs) = r.links.get(link) {
            *m.entry(tap.into()).or_default() += dirs
                .values()
                .map(|l| l.hop.rx_packets.unwrap())
                .sum::<u64>();
        }
    }
    m.insert("drops".into(), r.drops.values().sum());
    m.retain(|_, v| *v > 0);
    m
}

#[test]
fn frame_counts_per_tap_match_the_report_and_drops_say_why() {
    if !have_tshark() {
        return;
    }
    // Small rates keep the whole-run captures small.
    let failover = whole_run(&scenario_text("failover-to-vpn"))
        .replace("rate = \"600Mbps\"", "rate = \"10Mbps\"");
    let policed = whole_run(&scenario_text("oversubscribed"))
        .replace("bandwidth = \"1Gbps\"", "bandwidth = \"50Mbps\"")
        .replace("rate = \"1.5Gbps\"", "rate = \"75Mbps\"")
        .replace("duration = \"10s\"", "duration = \"2s\"");
    for text in [failover, policed] {
        let (dir, out, report) = run(&text);
        let file = out.join("capture.pcapng");
        no_errors(dir.path(), &file);
        let counts = count_by(&tshark(
            dir.path(),
            &file,
            &["-T", "fields", "-e", "frame.interface_name"],
        ));
        assert_eq!(counts, expected_taps(&report), "{}", report.scenario);
        // Built frames have exactly the sizes the model charged: 1400-byte IP
        // packets are 1414-byte untagged frames, 1418 with 802.1Q (the model's
        // 1422 less the FCS a capture does not see), and 1400 + 56 bytes of
        // ESP + 14 of Ethernet in the tunnel.
        if report.scenario == "failover-to-vpn" {
            let sizes = count_by(&tshark(
                dir.path(),
                &file,
                &[
                    "-Y",
                    "frame.interface_name != \"drops\"",
                    "-T",
                    "fields",
                    "-e",
                    "frame.interface_name",
                    "-e",
                    "frame.len",
                ],
            ));
            let keys: Vec<_> = sizes.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "azure-gw\t1414",
                    "onprem-ce\t1414",
                    "primary-msee\t1418",
                    "secondary-msee\t1418",
                    "vpn-internet\t1470"
                ],
                "{sizes:?}"
            );
        }
        // Every dropped frame carries "cause@place", and their counts are the
        // report's `drops` exactly.
        let comments = count_by(&tshark(
            dir.path(),
            &file,
            &[
                "-Y",
                "frame.interface_name == \"drops\"",
                "-T",
                "fields",
                "-e",
                "frame.comment",
            ],
        ));
        assert_eq!(comments, report.drops, "{}", report.scenario);
        assert!(!report.drops.is_empty());
    }
}

#[test]
fn vlan_and_qinq_tags_are_as_configured() {
    if !have_tshark() {
        return;
    }
    let fields = |text: &str| {
        let (dir, out, _) = run(text);
        let file = out.join("capture.pcapng");
        no_errors(dir.path(), &file);
        count_by(&tshark(
            dir.path(),
            &file,
            &[
                "-Y",
                "frame.interface_name == \"primary-msee\"",
                "-T",
                "fields",
                "-e",
                "eth.type",
                "-e",
                "ieee8021ad.id",
                "-e",
                "vlan.id",
            ],
        ))
    };
    // Private peering: one 802.1Q tag with the peering's VLAN.
    let dot1q = fields(&scenario_text("steady-1g").replace(
        "mode = \"active-active\"",
        "mode = \"active-active\"\nvlan = 412",
    ));
    assert_eq!(
        dot1q.keys().collect::<Vec<_>>(),
        ["0x8100\t\t412"],
        "{dot1q:?}"
    );
    // ExpressRoute Direct: QinQ, outer S-tag 0x88a8, inner C-tag.
    let qinq = fields(
        &scenario_text("direct-100g")
            .replace("direct = true", "direct = true\nvlan = 100\ns_tag = 3001"),
    );
    assert_eq!(
        qinq.keys().collect::<Vec<_>>(),
        ["0x88a8\t3001\t100"],
        "{qinq:?}"
    );
    // Provider QinQ with an outer tag per link.
    let provider = scenario_text("steady-1g")
        .replace(
            "mode = \"active-active\"",
            "mode = \"active-active\"\nencapsulation = \"qinq\"\nvlan = 150",
        )
        .replace("latency = \"2ms\"", "latency = \"2ms\"\ns_tag = 15");
    assert_eq!(
        fields(&provider).keys().collect::<Vec<_>>(),
        ["0x88a8\t15\t150"]
    );
}

#[test]
fn esp_decrypts_with_the_written_sa_file() {
    if !have_tshark() {
        return;
    }
    for (name, inner_port_field, nat_t) in [
        ("failover-to-vpn", "udp.dstport", false),
        ("ipv6-dual-stack", "udp.dstport", true),
    ] {
        let (dir, out, report) = run(&scenario_text(name));
        install_esp_sa(dir.path(), &out);
        let file = out.join("capture.pcapng");
        no_errors(dir.path(), &file);
        let rows = tshark(
            dir.path(),
            &file,
            &[
                "-Y",
                "frame.interface_name == \"vpn-internet\"",
                "-T",
                "fields",
                "-E",
                "occurrence=l",
                "-e",
                "esp.spi",
                "-e",
                "esp.sequence",
                "-e",
                inner_port_field,
                "-e",
                "data.data",
            ],
        );
        let flows: Vec<_> = report.flows.keys().collect();
        let mut n = 0;
        let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
        for row in rows.lines() {
            let cols: Vec<_> = row.split('\t').collect();
            assert_eq!(cols.len(), 4, "{row}");
            // Decrypted: the inner UDP header and eremu payload are visible.
            assert_eq!(cols[2], "5001", "inner packet not decrypted: {row}");
            let flow = u32::from_str_radix(&cols[3][..8], 16).unwrap() as usize;
            assert!(flow < flows.len(), "{row}");
            let seq: u64 = cols[1].parse().unwrap();
            if let Some(prev) = last_seq.insert(cols[0].to_string(), seq) {
                assert!(seq > prev, "ESP sequence numbers increase per SA");
            }
            n += 1;
        }
        assert!(n > 100, "{name}: only {n} tunnel frames");
        if nat_t {
            let ports = count_by(&tshark(
                dir.path(),
                &file,
                &[
                    "-Y",
                    "frame.interface_name == \"vpn-internet\"",
                    "-T",
                    "fields",
                    "-E",
                    "occurrence=f",
                    "-e",
                    "udp.port",
                ],
            ));
            assert_eq!(ports.keys().collect::<Vec<_>>(), ["4500"]);
        }
    }
}

#[test]
fn latency_from_the_capture_matches_the_report() {
    if !have_tshark() {
        return;
    }
    let text = whole_run(&scenario_text("steady-1g"))
        .replace("duration = \"10s\"", "duration = \"300ms\"");
    let (dir, out, report) = run(&text);
    let file = out.join("capture.pcapng");
    // udp.payload: the raw payload, whatever a heuristic dissector makes of it.
    let rows = tshark(
        dir.path(),
        &file,
        &[
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.time_epoch",
            "-e",
            "udp.payload",
        ],
    );
    // Payload flow ids index the scenario's [[flows]] in file order.
    let names: Vec<_> = scenario::parse("t.toml", &text)
        .unwrap()
        .flows
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let mut latencies: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for row in rows.lines() {
        let cols: Vec<_> = row.split('\t').collect();
        let data = cols[2];
        let flow = &names[u32::from_str_radix(&data[..8], 16).unwrap() as usize];
        let f = &report.flows[flow];
        // The delivery tap: Azure's side for inbound flows, on-premises for outbound.
        let delivery = if f.direction == "in" {
            "azure-gw"
        } else {
            "onprem-ce"
        };
        let sent_ns = u64::from_str_radix(&data[24..40], 16).unwrap();
        let (secs, frac) = cols[1].split_once('.').unwrap();
        let ts = secs.parse::<u64>().unwrap() * 1_000_000_000
            + format!("{frac:0<9}")[..9].parse::<u64>().unwrap();
        let (epoch, rel) = (
            EPOCH_UNIX_SECS * 1_000_000_000,
            ts - EPOCH_UNIX_SECS * 1_000_000_000,
        );
        assert!(ts >= epoch);
        if cols[0] == delivery {
            latencies
                .entry(flow.clone())
                .or_default()
                .push(rel - sent_ns);
        }
    }
    for (flow, mut l) in latencies {
        l.sort_unstable();
        let f = &report.flows[&flow];
        assert_eq!(l.len() as u64, f.received_packets, "{flow}");
        let p50 = l[(l.len() - 1) / 2];
        assert!(
            p50.abs_diff(f.latency_ns.p50) <= 1_000,
            "{flow}: capture p50 {p50} ns, report {}",
            f.latency_ns.p50
        );
        assert_eq!(l[0], f.latency_ns.min, "{flow}");
        assert_eq!(*l.last().unwrap(), f.latency_ns.max, "{flow}");
    }
}
