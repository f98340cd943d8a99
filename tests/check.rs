//! `eremu baseline`, `eremu check` and `eremu run --check` end to end: exit
//! statuses, which metrics fail, error messages, JUnit XML. Nothing here
//! depends on wall-clock time: the engine speed is injected by editing a
//! baseline file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn eremu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eremu"))
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml")),
    )
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temp dir holding `s.toml` (a copy of `failover-secondary`) and its
/// baseline in `base/`.
struct Setup {
    dir: tempfile::TempDir,
    scenario: PathBuf,
    baselines: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, shipped("failover-secondary")).unwrap();
    let baselines = dir.path().join("base");
    let out = eremu()
        .arg("baseline")
        .arg(&scenario)
        .arg("--out")
        .arg(&baselines)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("failover-secondary.json"), "{stdout}");
    Setup {
        dir,
        scenario,
        baselines,
    }
}

impl Setup {
    fn baseline_file(&self) -> PathBuf {
        self.baselines.join("failover-secondary.json")
    }
    fn check(&self, scenario: &Path, extra: &[&str]) -> Output {
        eremu()
            .arg("check")
            .arg(scenario)
            .arg("--baseline")
            .arg(&self.baselines)
            .args(extra)
            .output()
            .unwrap()
    }
    /// Writes a variant of the scenario with `from` replaced by `to`.
    fn variant(&self, file: &str, from: &str, to: &str) -> PathBuf {
        let orig = shipped("failover-secondary");
        assert!(orig.contains(from), "{from}");
        let path = self.dir.path().join(file);
        std::fs::write(&path, orig.replacen(from, to, 1)).unwrap();
        path
    }
}

/// Metric names of the table rows with a failing verdict.
fn failing(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter(|l| {
            l.starts_with("  ")
                && ["FAIL", "MISSING", "NEW"]
                    .iter()
                    .any(|v| l.trim_end().ends_with(v))
        })
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|m| m != "FAIL")
        .collect()
}

#[test]
fn baseline_is_sorted_json_with_hash_and_check_passes() {
    let s = setup();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.baseline_file()).unwrap()).unwrap();
    assert_eq!(json["scenario"], "failover-secondary");
    assert_eq!(json["scenario_file"], "s.toml");
    assert_eq!(json["scenario_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(json["eremu_version"], env!("CARGO_PKG_VERSION"));
    let metrics = json["metrics"].as_object().unwrap();
    assert!(metrics["flows.voice.latency_ns.p99"].as_u64().unwrap() > 0);
    assert_eq!(metrics["flows.app.outages.count"], 1);
    assert!(metrics.contains_key("flows.app.outages.0.end_ns"));
    assert_eq!(metrics["flows.voice.drops.policer"], 0);
    assert!(!metrics.keys().any(|k| k.starts_with("engine")));
    assert!(json["speed"]["engine.hops_per_second"].is_number());

    let out = s.check(&s.scenario, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("failover-secondary (") && stdout.contains(": ok: 0 of"),
        "{stdout}"
    );
    assert!(failing(&stdout).is_empty());
    // --verbose lists every metric.
    let out = s.check(&s.scenario, &["--verbose"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("flows.voice.sent_packets"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim_end().ends_with(" ok"))
            .count(),
        metrics.len()
    );
}

#[test]
fn deliberate_change_fails_exactly_the_moved_metrics() {
    let s = setup();
    // The secondary link, used from 3 s to 7 s, gets 1 ms farther away.
    let changed = s.variant("changed.toml", "latency = \"5ms\"", "latency = \"6ms\"");

    // Without consent, a changed scenario file is one clear input error.
    let out = s.check(&changed, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("was recorded from a different scenario file")
            && stderr.contains("re-record with `eremu baseline"),
        "{stderr}"
    );
    assert!(failing(&stdout).is_empty(), "{stdout}");

    let out = s.check(&changed, &["--allow-changed-scenario"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("warning: the scenario file changed"),
        "{stdout}"
    );
    let failed = failing(&stdout);
    for moved in [
        "links.secondary.in.latency_ns.min",
        "links.secondary.out.latency_ns.max",
        "flows.voice.latency_ns.p99",
        "flows.app.latency_ns.mean",
        "flows.reply.latency_ns.max",
        "flows.app.outages.0.end_ns",
    ] {
        assert!(failed.contains(moved), "{moved} should fail: {stdout}");
    }
    for kept in failed.iter() {
        assert!(
            kept.starts_with("links.secondary.")
                || kept.contains(".latency_ns.")
                || kept.ends_with("_ns"),
            "{kept} should not move: {stdout}"
        );
    }
    for unmoved in [
        "links.primary.in.latency_ns.max",
        "flows.voice.sent_packets",
        "flows.app.received_packets",
        "flows.app.drops.link-down",
        "links.secondary.in.tx_packets",
        "flows.voice.latency_ns.min",
    ] {
        assert!(!failed.contains(unmoved), "{unmoved} should pass: {stdout}");
    }
    // A tolerance on the command line lets the link metrics pass, the flows still fail.
    let out = s.check(
        &changed,
        &[
            "--allow-changed-scenario",
            "--tolerance",
            "links.secondary.**=25%",
        ],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let failed = failing(&stdout);
    assert!(!failed.iter().any(|m| m.starts_with("links.")), "{stdout}");
    assert!(failed.contains("flows.voice.latency_ns.p99"), "{stdout}");
    // Wide enough tolerances make the change pass.
    let out = s.check(
        &changed,
        &["--allow-changed-scenario", "--tolerance", "**=1.1ms"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);
}

#[test]
fn scenario_check_table_sets_tolerances() {
    let s = setup();
    let changed = s.variant("tolerant.toml", "latency = \"5ms\"", "latency = \"6ms\"");
    let mut t = std::fs::read_to_string(&changed).unwrap();
    t += "\n[check]\ntolerance = { \"**.latency_ns.*\" = \"25%\", \"**.*_ns\" = \"1ms\" }\n";
    std::fs::write(&changed, t).unwrap();
    let out = s.check(&changed, &["--allow-changed-scenario"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
}

#[test]
fn missing_and_corrupt_baselines_exit_2_naming_the_file() {
    let s = setup();
    let empty = s.dir.path().join("empty");
    let out = eremu()
        .arg("check")
        .arg(&s.scenario)
        .arg("--baseline")
        .arg(&empty)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let expected = empty.join("failover-secondary.json");
    assert!(
        stderr.contains(&format!("{} does not exist", expected.display()))
            && stderr.contains("record it with `eremu baseline"),
        "{stderr}"
    );

    let good = std::fs::read_to_string(s.baseline_file()).unwrap();
    for corrupt in [&good[..good.len() / 2], "{ not json", ""] {
        std::fs::write(s.baseline_file(), corrupt).unwrap();
        let out = s.check(&s.scenario, &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains(&format!(
                "{}: not a valid eremu baseline",
                s.baseline_file().display()
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A bad scenario is an input error too.
    let bad = s.dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nduration = \"ten seconds\"\n").unwrap();
    let out = s.check(&bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("bad.toml:2:"), "{}", text(&out).1);
    // Usage errors: exit 2.
    let out = s.check(&s.scenario, &["--tolerance", "no-equals-sign"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn junit_is_valid_xml_with_one_testcase_per_metric() {
    let s = setup();
    let changed = s.variant("changed.toml", "latency = \"5ms\"", "latency = \"6ms\"");
    let junit = s.dir.path().join("junit.xml");
    // A file whose name needs escaping, holding an invalid scenario name.
    let invalid = s.dir.path().join("a<b&c.toml");
    std::fs::write(
        &invalid,
        shipped("steady-1g").replace("name = \"steady-1g\"", "name = \"bad <name> & 'x'\""),
    )
    .unwrap();
    let out = s.check(
        &changed,
        &[
            "--allow-changed-scenario",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let failures = failing(&stdout).len();
    assert!(failures > 10, "{stdout}");
    let baseline: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.baseline_file()).unwrap()).unwrap();
    let metrics = baseline["metrics"].as_object().unwrap().len();

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0].attribute("name"), Some("failover-secondary"));
    let cases: Vec<_> = suites[0]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), metrics);
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .collect();
    assert_eq!(failed.len(), failures);
    assert_eq!(
        suites[0].attribute("failures"),
        Some(failures.to_string().as_str())
    );
    let voice = cases
        .iter()
        .find(|c| c.attribute("name") == Some("flows.voice.latency_ns.p99"))
        .unwrap();
    let msg = voice
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap()
        .attribute("message")
        .unwrap();
    assert!(
        msg.contains("baseline 5001347") && msg.contains("current 6001347"),
        "{msg}"
    );

    // Two scenarios, one invalid with a file name needing escapes: an
    // <error> test case, still valid XML.
    let out = s.check(&s.scenario, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let out = eremu()
        .arg("check")
        .arg(&s.scenario)
        .arg(&invalid)
        .arg("--baseline")
        .arg(&s.baselines)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    assert_eq!(suites[1].attribute("name"), Some("a<b&c"));
    assert_eq!(suites[1].attribute("errors"), Some("1"));
    assert_eq!(suites[0].attribute("failures"), Some("0"));
    let error = suites[1]
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .unwrap();
    assert!(
        error
            .attribute("message")
            .unwrap()
            .contains("a<b&c.toml:1:"),
        "{xml}"
    );
}

#[test]
fn speed_is_compared_only_when_asked_with_an_injected_baseline_value() {
    let s = setup();
    let set_speed = |v: &str| {
        let text = std::fs::read_to_string(s.baseline_file()).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["speed"]["engine.hops_per_second"] = serde_json::from_str(v).unwrap();
        std::fs::write(
            s.baseline_file(),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
    };
    // No machine is 10^15 hops per second fast: a certain slowdown.
    set_speed("1000000000000000");
    assert_eq!(s.check(&s.scenario, &[]).status.code(), Some(0));
    let out = s.check(&s.scenario, &["--speed"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        failing(&stdout),
        BTreeSet::from(["engine.hops_per_second".to_string()])
    );
    assert!(stdout.contains("-50%"), "{stdout}");
    // Every machine is faster than 1 hop per second: faster never fails.
    set_speed("1");
    let out = s.check(&s.scenario, &["--speed", "--speed-tolerance", "10%"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);
}

const EXPECTS_PASS: &str = r#"
[[expect]]
metric = "flows.voice.latency_ns.p99"
max = "10ms"

[[expect]]
metric = "flows.*.drops.policer"
max = 0

[[expect]]
metric = "flows.app.throughput_bps"
min = "450Mbps"
"#;

#[test]
fn expectations_pass_and_fail_with_run_check_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let base = shipped("failover-secondary");
    let write = |name: &str, extra: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{base}{extra}")).unwrap();
        p
    };
    let pass = write("pass.toml", EXPECTS_PASS);
    let fail = write(
        "fail.toml",
        &EXPECTS_PASS.replace("max = \"10ms\"", "max = \"5ms\""),
    );
    let run = |p: &Path| {
        eremu()
            .arg("run")
            .arg(p)
            .arg("--check")
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap()
    };
    let check = |p: &Path| eremu().arg("check").arg(p).output().unwrap();

    let out = run(&pass);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("expectations: all 5 hold"), "{stdout}");
    let out = check(&pass);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);

    let out = run(&fail);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "FAIL expect flows.voice.latency_ns.p99 = 5001347, expected at most 5ms (5000000)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("fail.toml:"), "{stdout}");
    assert!(stderr.contains("1 of 5 expectations failed"), "{stderr}");
    let out = check(&fail);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL expect flows.voice.latency_ns.p99"),
        "{stdout}"
    );

    // A path that does not exist: statically when it can be, else after the run.
    let unknown_flow = write(
        "flow.toml",
        "\n[[expect]]\nmetric = \"flows.video.latency_ns.p99\"\nmax = \"5ms\"\n",
    );
    let out = eremu().arg("validate").arg(&unknown_flow).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out).1;
    assert!(
        stderr.contains(&format!("{}:", unknown_flow.display()))
            && stderr.contains("expect[0].metric")
            && stderr.contains("unknown flow `video`"),
        "{stderr}"
    );
    assert_eq!(check(&unknown_flow).status.code(), Some(2));
    let unknown_leaf = write(
        "leaf.toml",
        "\n[[expect]]\nmetric = \"flows.voice.latncy_ns.p99\"\nmax = \"5ms\"\n",
    );
    let out = check(&unknown_leaf);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out).1;
    assert!(
        stderr.contains("leaf.toml:")
            && stderr.contains("expect[0].metric")
            && stderr.contains("did you mean `flows.voice.latency_ns.p99`"),
        "{stderr}"
    );
    assert_eq!(run(&unknown_leaf).status.code(), Some(1));
}

/// Two files with the same scenario name: refused (exit 2) before either
/// is run, so the baseline directory is not even created.
#[test]
fn two_scenarios_of_one_name_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, shipped("failover-secondary")).unwrap();
    std::fs::write(&b, shipped("failover-secondary")).unwrap();
    let base = dir.path().join("base");
    let out = eremu()
        .arg("baseline")
        .args([&a, &b])
        .arg("--out")
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out)
        .1
        .contains("both have the scenario name `failover-secondary`"));
    assert!(!base.exists(), "nothing written");
}

/// Records a baseline of `failover-secondary`, edits its file with `edit`,
/// and checks that `eremu check` refuses it as an input error (exit 2)
/// naming the file and saying `want`.
fn refused_after(edit: impl Fn(String) -> String, want: &str) {
    let setup = setup();
    let file = setup.baseline_file();
    let json = std::fs::read_to_string(&file).unwrap();
    let edited = edit(json.clone());
    assert_ne!(json, edited);
    std::fs::write(&file, edited).unwrap();
    let out = setup.check(&setup.scenario, &[]);
    let e = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&file.display().to_string()) && e.contains(want),
        "{e}"
    );
}

/// A key the format does not have (a typo, a hand edit) is an input error
/// naming the file and the key, not ignored.
#[test]
fn a_baseline_with_an_unknown_field_is_refused() {
    refused_after(
        |j| j.replacen('{', "{\n  \"tolerance\": 5,", 1),
        "unknown field `tolerance`",
    );
}

/// A baseline of another scenario, put under this scenario's name: refused,
/// naming the file and the `scenario` field.
#[test]
fn a_baseline_of_another_scenario_is_refused() {
    refused_after(
        |j| {
            j.replace(
                "\"scenario\": \"failover-secondary\"",
                "\"scenario\": \"steady-1g\"",
            )
        },
        "`scenario` is `steady-1g`, not `failover-secondary`",
    );
}

/// A baseline larger than the cap (16 MiB) is refused before it is parsed.
#[test]
fn an_oversized_baseline_is_refused() {
    let padding = " ".repeat(16 * 1024 * 1024);
    refused_after(
        |j| j.replacen('{', &format!("{{{padding}"), 1),
        "larger than 16 MiB",
    );
}
