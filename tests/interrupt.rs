//! SIGINT and SIGTERM during `eremu run`: the run stops at a window
//! boundary, writes complete outputs of the time it simulated, marks the
//! report, leaves no temporary file and exits with 128 + the signal.
//!
//! Most tests interrupt at a known point with `EREMU_TEST_SIGNAL`, which
//! makes eremu send itself the signal after so many windows (the same
//! handler runs as for a signal from outside), so nothing depends on
//! timing; one sends a real signal from outside.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn eremu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eremu"))
}

/// 1000 s of two light flows, one each way, with an explicit time-series
/// interval (so that a shorter run has the same intervals) and a capture
/// of the on-premises side when `capture`.
fn scenario(duration: &str, capture: bool) -> String {
    let mut s = format!(
        "name = \"long\"\nduration = \"{duration}\"\nseed = 3\n\
         [onprem]\nprefixes = [\"192.168.0.0/16\"]\n\
         [azure]\nprefixes = [\"10.1.0.0/16\"]\n\
         [circuit]\nbandwidth = \"1Gbps\"\n[circuit.primary]\nlatency = \"2ms\"\n\
         [gateway]\nsku = \"ErGw2Az\"\n[report]\ninterval = \"1s\"\n\
         [[flows]]\nname = \"up\"\nkind = \"udp-poisson\"\nfrom = \"192.168.1.1\"\n\
         to = \"10.1.0.4\"\nrate = \"200kbps\"\nsize = 500\n\
         [[flows]]\nname = \"down\"\nkind = \"udp-cbr\"\nfrom = \"10.1.0.4\"\n\
         to = \"192.168.1.1\"\nrate = \"100kbps\"\nsize = 400\n"
    );
    if capture {
        s += "[capture]\ntaps = [\"onprem-ce\"]\n";
    }
    s
}

struct Run {
    out: Output,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn run(text: &str, signal: Option<&str>, args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, text).unwrap();
    let dir = tmp.path().join("out");
    let mut cmd = eremu();
    cmd.arg("run").arg(&file).arg("--out").arg(&dir).args(args);
    if let Some(s) = signal {
        cmd.env("EREMU_TEST_SIGNAL", s);
    }
    Run {
        out: cmd.output().unwrap(),
        dir,
        _tmp: tmp,
    }
}

/// `report.json` without the wall-clock time.
fn report(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    v["engine"].as_object_mut().unwrap().remove("wall_seconds");
    v
}

/// The run exited with `code`, said it was interrupted by `signal`, and
/// left no temporary file.
fn stopped_by(r: &Run, code: i32, signal: &str) {
    let stderr = String::from_utf8_lossy(&r.out.stderr);
    assert_eq!(r.out.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {signal}")),
        "{stderr}"
    );
    no_partial_files(&r.dir);
}

/// Every file under `dir`, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tree(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

fn no_partial_files(dir: &Path) {
    let partial: Vec<_> = tree(dir)
        .into_iter()
        .filter(|p| p.ends_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

/// Without capture a window is a hundredth of the run: 10 s. Told of the
/// third window (30 s), the run stops at the end of the fourth (40 s), on
/// any number of threads, and its report is the one of a 40 s run of the
/// same scenario, marked.
#[test]
fn sigint_stops_at_the_next_window_with_complete_outputs() {
    let a = run(
        &scenario("1000s", false),
        Some("INT@3"),
        &["--threads", "1", "--no-capture"],
    );
    stopped_by(&a, 130, "SIGINT");
    let stdout = String::from_utf8_lossy(&a.out.stdout);
    assert!(
        stdout.contains("INTERRUPTED: stopped at 40s of the scenario's 1000s"),
        "{stdout}"
    );
    no_partial_files(&a.dir);
    let mut r = report(&a.dir);
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["duration_ns"], 40_000_000_000u64);
    assert_eq!(r["scenario_duration_ns"], 1_000_000_000_000u64);
    for f in [
        "report.html",
        "timeseries.csv",
        "latency/up.hgrm",
        "plots/throughput.svg",
    ] {
        assert!(a.dir.join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(a.dir.join("report.html")).unwrap();
    assert!(html.contains("INTERRUPTED"));

    let two = run(
        &scenario("1000s", false),
        Some("INT@3"),
        &["--threads", "2", "--no-capture"],
    );
    assert_eq!(two.out.status.code(), Some(130));
    assert_eq!(r, report(&two.dir), "the same on two threads");

    let short = run(&scenario("40s", false), None, &["--no-capture"]);
    assert_eq!(short.out.status.code(), Some(0));
    let obj = r.as_object_mut().unwrap();
    obj.remove("interrupted");
    obj.remove("scenario_duration_ns");
    assert_eq!(r, report(&short.dir), "as if the scenario lasted 40 s");
    for f in ["timeseries.csv", "latency/up.hgrm", "latency/down.hlog"] {
        assert_eq!(
            std::fs::read(a.dir.join(f)).unwrap(),
            std::fs::read(short.dir.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// Capturing, a window is a millisecond: told of the fifth, the run stops
/// at 6 ms, exits 143 for SIGTERM, and its capture is complete and the same
/// on one thread and two.
#[test]
fn sigterm_while_capturing_leaves_a_complete_capture() {
    let one = run(
        &scenario("1000s", true),
        Some("TERM@5"),
        &["--threads", "1", "-q"],
    );
    stopped_by(&one, 143, "SIGTERM");
    let r = report(&one.dir);
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["duration_ns"], 6_000_000u64);
    let two = run(
        &scenario("1000s", true),
        Some("TERM@5"),
        &["--threads", "2", "-q"],
    );
    assert_eq!(two.out.status.code(), Some(143));
    assert_eq!(r, report(&two.dir));
    let capture = std::fs::read(one.dir.join("capture.pcapng")).unwrap();
    assert_eq!(
        capture,
        std::fs::read(two.dir.join("capture.pcapng")).unwrap()
    );
    // The same frames as a 6 ms run's capture.
    let short = run(&scenario("6ms", true), None, &["-q"]);
    assert_eq!(
        capture,
        std::fs::read(short.dir.join("capture.pcapng")).unwrap()
    );
}

/// A real SIGINT from outside, once the run has started writing its
/// capture: it stops, with a complete report and no temporary file.
#[test]
fn a_signal_from_outside_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario("1000s", true)).unwrap();
    let dir = tmp.path().join("out");
    let child = eremu()
        .arg("run")
        .arg(&file)
        .arg("-q")
        .arg("--out")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The capture's temporary file exists once the handlers are installed
    // and the run has begun; 1000 s of capture take far longer than this.
    let partial = dir.join("capture.pcapng.partial");
    for _ in 0..6000 {
        if partial.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(partial.exists(), "the run did not start");
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    no_partial_files(&dir);
    let r = report(&dir);
    assert_eq!(r["interrupted"], true);
    assert!(r["duration_ns"].as_u64().unwrap() < 1_000_000_000_000);
    assert!(dir.join("capture.pcapng").is_file());
}

/// With `--halves`, the run stops at the first hundredth of the run (10 s)
/// that no half has passed, at or after the third, and its report is that of
/// a run of the scenario lasting that long. (The flows are heavier here, so
/// that a sending half cannot run ahead to the end: it is held back once it
/// is a few thousand packets ahead of its receiving half.)
#[test]
fn a_run_in_halves_stops_at_a_window_boundary() {
    let args = ["--threads", "2", "--no-capture", "--halves", "-q"];
    let heavy = |d: &str| {
        scenario(d, false)
            .replace("200kbps", "20Mbps")
            .replace("100kbps", "20Mbps")
    };
    let a = run(&heavy("1000s"), Some("INT@3"), &args);
    stopped_by(&a, 130, "SIGINT");
    let mut r = report(&a.dir);
    assert_eq!(r["interrupted"], true);
    let at = r["duration_ns"].as_u64().unwrap();
    assert!(
        at >= 30_000_000_000 && at.is_multiple_of(10_000_000_000),
        "{at}"
    );
    let short = run(&heavy(&format!("{}s", at / 1_000_000_000)), None, &args);
    assert_eq!(short.out.status.code(), Some(0));
    let obj = r.as_object_mut().unwrap();
    obj.remove("interrupted");
    obj.remove("scenario_duration_ns");
    assert_eq!(r, report(&short.dir));
}
