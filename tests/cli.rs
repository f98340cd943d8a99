//! The `eremu` binary as users call it: exit codes, messages, outputs.

use std::process::Command;

fn eremu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eremu"))
}

#[test]
fn no_arguments_runs_the_builtin_default_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = eremu().current_dir(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("scenario failover-to-vpn"), "{stdout}");
    assert!(stdout.contains("timeline"), "{stdout}");
    let report = dir.path().join("captures/failover-to-vpn/report.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(json["scenario"], "failover-to-vpn");
    assert!(
        json["flows"]["backup"]["latency_ns"]["p99"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn run_with_out_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/failover-to-vpn.toml"
    );
    let out = eremu()
        .args(["run", scenario, "--seed", "7", "--quiet", "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o/report.json")).unwrap()).unwrap();
    assert_eq!(json["seed"], 7);
    // No temporary file is left behind.
    assert!(!dir.path().join("o/report.partial").exists());
}

#[test]
fn validate_reports_each_bad_file_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nduration = \"ten seconds\"\n").unwrap();
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/steady-1g.toml");
    let out = eremu()
        .arg("validate")
        .arg(good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains("duration"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("steady-1g.toml: ok"));
}

#[test]
fn run_refuses_bad_input_without_panicking() {
    let out = eremu().args(["run", "/nonexistent.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent.toml") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let out = eremu().args(["run", "--seed", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn unwritable_output_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = eremu()
        .args(["run", "--quiet", "--out"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a-file/sub"), "{stderr}");
}

#[test]
fn live_names_a_missing_interface_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let out = eremu()
        .args([
            "live",
            "scenarios/circuit-200m.toml",
            "--onprem",
            "nosuch-if0",
        ])
        .args(["--azure", "nosuch-if1", "--duration", "1s", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no interface named \"nosuch-if0\""), "{err}");
    assert!(!out_dir.join("report.json").exists());
    let same = eremu()
        .args([
            "live",
            "scenarios/circuit-200m.toml",
            "--onprem",
            "lo",
            "--azure",
            "lo",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&same.stderr);
    assert!(err.contains("two different interfaces"), "{err}");
}

#[test]
fn bench_refuses_zero_repeats() {
    let out = eremu()
        .args(["bench", "--repeat", "0", "--duration", "1ms"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("--repeat"), "{stderr}");
}

/// `--seed 7` is the same run as `seed = 7` in the file: the same report
/// (but for the wall-clock time) and the same ESP keys in `esp_sa`.
#[test]
fn seed_flag_equals_seed_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/failover-to-vpn.toml"
    ))
    .unwrap();
    assert!(text.contains("\nseed = 1\n"));
    let (flag, file) = (dir.path().join("flag"), dir.path().join("file"));
    let plain = dir.path().join("s.toml");
    std::fs::write(&plain, &text).unwrap();
    let seeded = dir.path().join("s7.toml");
    std::fs::write(&seeded, text.replace("\nseed = 1\n", "\nseed = 7\n")).unwrap();
    for (scenario, seed, out) in [(&plain, Some("7"), &flag), (&seeded, None, &file)] {
        let mut cmd = eremu();
        cmd.arg("run").arg(scenario).arg("-q").arg("--out").arg(out);
        if let Some(s) = seed {
            cmd.args(["--seed", s]);
        }
        assert!(cmd.output().unwrap().status.success());
    }
    let report = |d: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
        v["engine"].as_object_mut().unwrap().remove("wall_seconds");
        v
    };
    assert_eq!(report(&flag), report(&file));
    let esp = |d: &std::path::Path| std::fs::read_to_string(d.join("esp_sa")).unwrap();
    assert_eq!(esp(&flag), esp(&file));
}
