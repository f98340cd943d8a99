//! `eremu replay` end to end: a capture eremu wrote of its own synthetic
//! traffic, replayed through the same circuit without that traffic, must
//! meet the same fate packet for packet; speed scaling, determinism, and
//! clear errors on bad captures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const EREMU: &str = env!("CARGO_BIN_EXE_eremu");

/// 300 Mbps of 1400-byte UDP offered to a 200 Mbps circuit for 200 ms; the
/// capture keeps only what the on-premises host sent.
const CIRCUIT: &str = r#"
duration = "200ms"
[onprem]
prefixes = ["192.168.0.0/16"]
[azure]
prefixes = ["10.1.0.0/16"]
[circuit]
bandwidth = "200Mbps"
port_speed = "10Gbps"
mode = "active-passive"
[circuit.primary]
latency = "2ms"
queue = "1MiB"
[circuit.secondary]
latency = "3ms"
queue = "1MiB"
[gateway]
sku = "ErGw3Az"
[capture]
taps = ["onprem-ce"]
"#;

const FLOW: &str = r#"
[[flows]]
name = "bulk"
kind = "udp-cbr"
from = "192.168.1.10"
to = "10.1.0.4"
rate = "300Mbps"
size = 1400
"#;

fn eremu(args: &[&str]) -> Output {
    Command::new(EREMU).args(args).output().expect("eremu runs")
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "eremu failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// Writes the scenarios, runs the original, returns (capture, bare scenario).
fn original(tmp: &Path) -> (PathBuf, PathBuf, Value) {
    let with = tmp.join("with.toml");
    let bare = tmp.join("bare.toml");
    std::fs::write(&with, format!("name = \"orig\"\n{CIRCUIT}{FLOW}")).unwrap();
    std::fs::write(&bare, format!("name = \"bare\"\n{CIRCUIT}")).unwrap();
    let out = tmp.join("orig");
    ok(eremu(&[
        "run",
        with.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    (out.join("capture.pcapng"), bare, report(&out))
}

fn replay(capture: &Path, scenario: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "replay",
        capture.to_str().unwrap(),
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ok(eremu(&args));
    report(out)
}

#[test]
fn a_replayed_capture_meets_the_fate_of_the_traffic_it_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (capture, bare, orig) = original(tmp.path());
    let r = replay(&capture, &bare, &tmp.path().join("replay"), &[]);
    let o = &orig["flows"]["bulk"];
    let flows = r["flows"].as_object().unwrap();
    assert_eq!(flows.len(), 1, "one 5-tuple: {flows:?}");
    let (name, f) = flows.iter().next().unwrap();
    assert_eq!(name, "udp 192.168.1.10:49152 > 10.1.0.4:5001");
    assert_eq!(f["direction"], "in");
    // Same frames at the same virtual times: the policer makes the same
    // decisions. The original run ended with packets still on the wire
    // (never policed); the replay runs 1 s longer and polices them too.
    let sent = o["sent_packets"].as_u64().unwrap();
    assert_eq!(f["sent_packets"].as_u64().unwrap(), sent);
    let (o_rx, o_drop, o_fly) = (
        o["received_packets"].as_u64().unwrap(),
        o["drops"]["policer"].as_u64().unwrap(),
        o["in_flight_packets"].as_u64().unwrap(),
    );
    let (r_rx, r_drop) = (
        f["received_packets"].as_u64().unwrap(),
        f["drops"]["policer"].as_u64().unwrap(),
    );
    assert_eq!(f["in_flight_packets"], 0);
    assert_eq!(r_rx + r_drop, sent);
    assert!(r_drop >= o_drop && r_rx >= o_rx);
    assert_eq!((r_rx - o_rx) + (r_drop - o_drop), o_fly);
    // The same one-way latency: 2 ms plus serialization, to the nanosecond.
    assert_eq!(f["latency_ns"]["p50"], o["latency_ns"]["p50"]);
    assert_eq!(r["ingress"]["frames"]["modeled"].as_u64().unwrap(), sent);
    assert_eq!(r["ingress"]["mode"], "replay");
}

#[test]
fn speed_scales_the_capture_s_timing_and_replays_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (capture, bare, _) = original(tmp.path());
    let a = replay(&capture, &bare, &tmp.path().join("a"), &["--speed", "2x"]);
    let b = replay(&capture, &bare, &tmp.path().join("b"), &["--speed", "2x"]);
    // Twice as fast: the last frame at about 100 ms, then 1 s of drain.
    let duration = a["duration_ns"].as_u64().unwrap();
    assert!(
        (1_099_000_000..1_100_000_000).contains(&duration),
        "{duration}"
    );
    let f = a["flows"].as_object().unwrap().values().next().unwrap();
    // 600 Mbps offered: the 200 Mbps policer (plus its 5 ms bucket) passes
    // about a third.
    let offered = f["offered_bps"].as_u64().unwrap();
    assert!((590_000_000..610_000_000).contains(&offered), "{offered}");
    let rx = f["received_packets"].as_f64().unwrap() / f["sent_packets"].as_f64().unwrap();
    assert!((0.33..0.40).contains(&rx), "{rx}");
    let strip = |mut v: Value| {
        v["engine"]["wall_seconds"] = Value::Null;
        v
    };
    assert_eq!(strip(a), strip(b));
    let (ca, cb) = (
        std::fs::read(tmp.path().join("a/capture.pcapng")).unwrap(),
        std::fs::read(tmp.path().join("b/capture.pcapng")).unwrap(),
    );
    assert!(ca == cb, "captures of two replays differ");
}

#[test]
fn bad_captures_are_refused_with_the_file_and_byte_offset_and_no_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (capture, bare, _) = original(tmp.path());
    let bytes = std::fs::read(&capture).unwrap();
    let cut = tmp.path().join("cut.pcapng");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let not = tmp.path().join("not.pcap");
    std::fs::write(&not, b"this is no capture at all").unwrap();
    for (file, want) in [(&cut, "byte "), (&not, "not a pcap or pcapng file")] {
        let out_dir = tmp.path().join("bad");
        let out = eremu(&[
            "replay",
            file.to_str().unwrap(),
            bare.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(file.to_str().unwrap()) && err.contains(want),
            "{err}"
        );
        assert!(
            !out_dir.join("report.json").exists(),
            "no report for a bad capture"
        );
    }
    let out = eremu(&[
        "replay",
        capture.to_str().unwrap(),
        bare.to_str().unwrap(),
        "--speed",
        "0x",
    ]);
    assert_eq!(out.status.code(), Some(2), "a bad --speed is a usage error");
}

#[test]
fn real_frames_in_captures_are_cut_to_the_snap_length() {
    let tmp = tempfile::tempdir().unwrap();
    let (capture, _, _) = original(tmp.path());
    let cut = tmp.path().join("cut.toml");
    std::fs::write(
        &cut,
        format!(
            "name = \"cut\"\n{}",
            CIRCUIT.replace("taps = [\"onprem-ce\"]", "snaplen = 128")
        ),
    )
    .unwrap();
    let out = tmp.path().join("cut");
    replay(&capture, &cut, &out, &[]);
    let mut frames = 0;
    for f in eremu::replay::reader::CaptureReader::open(&out.join("capture.pcapng")).unwrap() {
        let f = f.unwrap();
        // 1400-byte IP packets: 1414 bytes untagged, 1418 with the 802.1Q tag.
        assert_eq!(f.frame.len(), 128);
        assert!(f.orig_len == 1414 || f.orig_len == 1418, "{}", f.orig_len);
        frames += 1;
    }
    assert!(frames > 5000, "{frames}");
}
