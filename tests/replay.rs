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

/// A UDP frame from on-premises 192.168.1.10:`sport` to Azure 10.1.0.4:5001
/// with 20 bytes of payload: 62 bytes on the wire, FCS left out.
fn udp_frame(sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 168, 1, 10], [10, 1, 0, 4], 64)
        .udp(sport, 5001)
        .write(&mut f, &[0u8; 20])
        .unwrap();
    f
}

/// A nanosecond pcap (Ethernet) of records `(time_ns, frame, orig_len)`.
fn pcap(records: &[(u64, Vec<u8>, u32)]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(0xA1B2_3C4Du32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    f.extend([0; 8]);
    f.extend(65_535u32.to_le_bytes());
    f.extend(1u32.to_le_bytes());
    for (t, frame, orig) in records {
        let sec = u32::try_from(t / 1_000_000_000).unwrap();
        let ns = (t % 1_000_000_000) as u32;
        for v in [sec, ns, frame.len() as u32, *orig] {
            f.extend(v.to_le_bytes());
        }
        f.extend(frame);
    }
    f
}

/// Address space given to an eremu run that must stay bounded: ample for
/// a few flows over any span, far below what an unbounded allocation (a
/// frame padded to 4 GiB, a time series of a day in 10 ms steps) takes.
const BOUNDED_KB: u64 = 2 * 1024 * 1024;

/// `eremu replay FILE SCENARIO --out OUT --quiet` with `extra`, its address
/// space capped at [`BOUNDED_KB`]: an allocation past it fails the run.
fn replay_bounded(file: &Path, scenario: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {BOUNDED_KB} && exec \"$0\" \"$@\""))
        .arg(EREMU)
        .args(["replay", file.to_str().unwrap(), scenario.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--quiet"])
        .args(extra);
    c.output().expect("sh runs")
}

/// Writes the bare circuit's scenario and `records` as a capture in `tmp`.
fn crafted(tmp: &Path, records: &[(u64, Vec<u8>, u32)]) -> (PathBuf, PathBuf) {
    let scenario = tmp.join("bare.toml");
    std::fs::write(&scenario, format!("name = \"bare\"\n{CIRCUIT}")).unwrap();
    let file = tmp.join("crafted.pcap");
    std::fs::write(&file, pcap(records)).unwrap();
    (file, scenario)
}

#[test]
fn a_frame_longer_than_any_link_carries_is_dropped_with_its_offset() {
    let tmp = tempfile::tempdir().unwrap();
    // Three 62-byte frames; the second claims 4 GiB on the wire, more than
    // any IP packet (65,535 bytes) in any Ethernet frame.
    let f = udp_frame(40_000);
    let (file, scenario) = crafted(
        tmp.path(),
        &[
            (0, f.clone(), 62),
            (1_000, f.clone(), u32::MAX),
            (2_000, f, 62),
        ],
    );
    let out = tmp.path().join("out");
    let run = replay_bounded(&file, &scenario, &out, &["--no-capture"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r = report(&out);
    let frames = &r["ingress"]["frames"];
    assert_eq!(frames["oversize"], 1, "{frames}");
    assert_eq!(frames["modeled"], 2, "{frames}");
    // The 24-byte file header, then one record of 16 + 62 bytes before it.
    assert_eq!(r["ingress"]["first_drop_offsets"]["oversize"], 24 + 16 + 62);
}

#[test]
fn speeds_out_of_range_are_refused_with_the_range() {
    let tmp = tempfile::tempdir().unwrap();
    let f = udp_frame(40_000);
    let (file, scenario) = crafted(tmp.path(), &[(0, f.clone(), 62), (1_000, f, 62)]);
    for speed in ["0.000001x", "1000000x"] {
        let out = eremu(&[
            "replay",
            file.to_str().unwrap(),
            scenario.to_str().unwrap(),
            "--speed",
            speed,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{speed}: {err}");
        assert!(err.contains("0.001x") && err.contains("1000x"), "{err}");
    }
}

#[test]
fn a_span_too_long_at_the_speed_asked_is_refused_naming_file_and_span() {
    let tmp = tempfile::tempdir().unwrap();
    let f = udp_frame(40_000);
    // 100 years between two frames, played 1000 times slower: 100,000
    // years, past the 584 years a 64-bit nanosecond clock holds.
    let century = 100 * 365 * 86_400 * 1_000_000_000u64;
    let (file, scenario) = crafted(tmp.path(), &[(0, f.clone(), 62), (century, f, 62)]);
    let out = tmp.path().join("out");
    let run = replay_bounded(&file, &scenario, &out, &["--speed", "0.001x"]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    assert!(err.contains("3153600000s"), "the captured span: {err}");
    assert!(!out.join("report.json").exists());
}

/// Replays two frames `gap_ns` apart; returns the run and its output dir.
fn two_frames_apart(tmp: &Path, gap_ns: u64) -> (Output, PathBuf, PathBuf) {
    let f = udp_frame(40_000);
    let (file, scenario) = crafted(tmp, &[(0, f.clone(), 62), (gap_ns, f, 62)]);
    let out = tmp.join("out");
    let run = replay_bounded(&file, &scenario, &out, &["--no-capture"]);
    (run, out, file)
}

#[test]
fn a_day_between_two_frames_runs_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let day = 86_400 * 1_000_000_000u64;
    let (run, out, _) = two_frames_apart(tmp.path(), day);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r = report(&out);
    // The span plus the one second of drain.
    assert_eq!(r["duration_ns"], day + 1_000_000_000);
    let f = r["flows"].as_object().unwrap().values().next().unwrap();
    assert_eq!(
        (&f["sent_packets"], &f["received_packets"]),
        (&2.into(), &2.into())
    );
}

#[test]
fn a_year_between_two_frames_runs_or_is_refused_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let year = 365 * 86_400 * 1_000_000_000u64;
    let (run, out, file) = two_frames_apart(tmp.path(), year);
    let err = String::from_utf8_lossy(&run.stderr);
    // Either outcome is a clean one: a complete run, or a refusal that
    // names the capture; never an abort for memory (status 134 or a signal).
    match run.status.code() {
        Some(0) => {
            let r = report(&out);
            assert_eq!(r["duration_ns"], year + 1_000_000_000);
        }
        Some(1) => {
            assert!(err.contains(file.to_str().unwrap()), "{err}");
            assert!(!out.join("report.json").exists());
        }
        other => panic!("replay ended with {other:?}: {err}"),
    }
}

#[test]
fn a_replay_stopped_while_reading_the_capture_writes_nothing() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let f = udp_frame(40_000);
    let (file, scenario) = crafted(tmp.path(), &[(0, f.clone(), 62), (1_000_000, f, 62)]);
    let cfg = eremu::scenario::load(&scenario).unwrap();
    let out = tmp.path().join("out");
    let opts = eremu::replay::ReplayOptions {
        file: file.clone(),
        speed: eremu::replay::Speed::REAL,
        duration: None,
        out: out.clone(),
        capture: true,
        max_flows: 8,
        // Set before the run: the stop comes while the capture is read,
        // before anything is written.
        stop: Arc::new(AtomicBool::new(true)),
    };
    let err = eremu::replay::run(&cfg, &opts).unwrap_err().to_string();
    assert!(
        err.contains(file.to_str().unwrap()) && err.contains("stopped"),
        "{err}"
    );
    assert!(!out.exists(), "no outputs");
}
