//! What `eremu run` leaves in its output directory: one file per flow and
//! kind whatever the flow's name, and nothing from an earlier run.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn eremu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eremu"))
}

/// A short scenario with one small UDP flow per name in `names`.
fn scenario(names: &[&str]) -> String {
    let mut s = String::from(
        "name = \"names\"\nduration = \"50ms\"\nseed = 1\n\
         [onprem]\nprefixes = [\"192.168.0.0/16\"]\n\
         [azure]\nprefixes = [\"10.1.0.0/16\"]\n\
         [circuit]\nbandwidth = \"1Gbps\"\n[circuit.primary]\nlatency = \"2ms\"\n\
         [gateway]\nsku = \"ErGw2Az\"\n",
    );
    for (i, n) in names.iter().enumerate() {
        let quoted = toml::Value::String(n.to_string()).to_string();
        s += &format!(
            "[[flows]]\nname = {quoted}\nkind = \"udp-cbr\"\nfrom = \"192.168.1.{}\"\n\
             to = \"10.1.0.4\"\nrate = \"1Mbps\"\nsize = 500\n",
            i + 1
        );
    }
    s
}

fn run(scenario_text: &str, dir: &Path, extra: &[&str]) -> Output {
    let file = dir.join("s.toml");
    std::fs::write(&file, scenario_text).unwrap();
    eremu()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap()
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Names that used to map to one file (`x_y`, `x/y`; `a b`, `a?b`), a
/// non-ASCII one, and names whose file could not be written (`.`, `..` and
/// one far over the 255-byte limit of a file name): every flow gets its own
/// `.hgrm` and `.hlog`, so the directory holds exactly two files per flow.
#[test]
fn every_flow_gets_its_own_latency_files() {
    let long_a = format!("{}a", "x".repeat(300));
    let long_b = format!("{}b", "x".repeat(300));
    let names = [
        "x_y", "x/y", "a b", "a?b", "a_b", "é", "e", ".", "..", "Web", "web", &long_a, &long_b,
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = run(&scenario(&names), dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latency = files(&dir.path().join("out/latency"));
    assert_eq!(latency.len(), 2 * names.len(), "{latency:?}");
    for f in &latency {
        assert!(
            f.len() <= 255 - 3,
            "{f}: room for `.partial` instead of `.hgrm`"
        );
        assert!(
            f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{f}"
        );
    }
    // Shipped scenarios' names stay as they were.
    let plain = tempfile::tempdir().unwrap();
    let out = run(&scenario(&["backup-1", "voice"]), plain.path(), &[]);
    assert!(out.status.success());
    let want: BTreeSet<String> = ["backup-1.hgrm", "backup-1.hlog", "voice.hgrm", "voice.hlog"]
        .map(String::from)
        .into();
    assert_eq!(files(&plain.path().join("out/latency")), want);
}

/// [`scenario`] with a VPN and a capture of every tap in its own file.
fn with_vpn_and_capture(names: &[&str]) -> String {
    scenario(names)
        + "[vpn]\ngateway_sku = \"VpnGw1\"\nlatency = \"10ms\"\n\
           [capture]\ntaps = [\"onprem-ce\", \"azure-gw\"]\nsplit = true\n"
}

/// A rerun owns the directory: what the earlier run wrote and this one does
/// not (its captures and `esp_sa` after `--no-capture`, the latency files of
/// a flow since renamed, temporary files) is gone; files eremu never writes
/// stay.
#[test]
fn a_rerun_removes_what_the_earlier_run_wrote_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let first = run(&with_vpn_and_capture(&["old"]), dir.path(), &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = files(&out_dir);
    for f in [
        "onprem-ce.pcapng",
        "azure-gw.pcapng",
        "esp_sa",
        "report.json",
    ] {
        assert!(before.contains(f), "{before:?}");
    }
    // Left by a run that was killed, and the user's own files.
    for f in [
        "report.partial",
        "capture.pcapng.partial",
        "plots/queue.partial",
    ] {
        std::fs::write(out_dir.join(f), "stale").unwrap();
    }
    for f in [
        "notes.txt",
        "plots/mine.txt",
        "latency/readme",
        "mine.pcapng",
    ] {
        std::fs::write(out_dir.join(f), "mine").unwrap();
    }
    let second = run(
        &with_vpn_and_capture(&["new"]),
        dir.path(),
        &["--no-capture"],
    );
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let want: BTreeSet<String> = [
        "mine.pcapng",
        "notes.txt",
        "latency",
        "plots",
        "report.html",
        "report.json",
        "timeseries.csv",
    ]
    .map(String::from)
    .into();
    assert_eq!(files(&out_dir), want);
    let want: BTreeSet<String> = ["new.hgrm", "new.hlog", "readme"].map(String::from).into();
    assert_eq!(files(&out_dir.join("latency")), want);
    assert!(files(&out_dir.join("plots")).contains("mine.txt"));
    assert!(!files(&out_dir.join("plots")).contains("queue.partial"));
}

/// `--out` naming a file: one clear error, and the file untouched.
#[test]
fn out_naming_a_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    std::fs::write(&file, "mine").unwrap();
    let out = run(&scenario(&["a"]), dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: is a file, not a directory", file.display())),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

/// An OS error is printed once, not once per link of the error chain.
#[test]
fn an_os_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, scenario(&["a"])).unwrap();
    let out = eremu()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("a-file/sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
