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
