//! What `eremu run` writes for people to look at: `timeseries.csv`,
//! `plots/*.svg`, `report.html`, `latency/*.hgrm` and `.hlog`, and the
//! `--format` of the summary. Every number is checked against report.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn eremu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eremu"))
}

fn scenario(name: &str) -> String {
    format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

/// Runs a shipped scenario without capture into a fresh directory.
fn run(name: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = eremu()
        .args(["run", &scenario(name), "--no-capture", "--out"])
        .arg(&out_dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, out_dir, out.stdout)
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

/// `(series, metric)` to the sum of its values over all intervals, and the
/// number of intervals seen.
fn csv_sums(dir: &Path) -> (BTreeMap<(String, String), u64>, usize) {
    let text = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("time_ns,series,metric,value"));
    let mut sums = BTreeMap::new();
    let mut times = std::collections::BTreeSet::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 4, "{line}");
        times.insert(f[0].parse::<u64>().unwrap());
        *sums
            .entry((f[1].to_string(), f[2].to_string()))
            .or_insert(0) += f[3].parse::<u64>().unwrap();
    }
    (sums, times.len())
}

fn sum(sums: &BTreeMap<(String, String), u64>, series: &str, metric: &str) -> u64 {
    *sums
        .get(&(series.to_string(), metric.to_string()))
        .unwrap_or(&0)
}

const CAUSES: [&str; 8] = [
    "policer",
    "queue",
    "link-down",
    "no-route",
    "mtu",
    "loss",
    "gateway",
    "vpn-gateway",
];

fn check_csv_matches_report(dir: &Path) {
    let r = report(dir);
    let (sums, intervals) = csv_sums(dir);
    // 10 ms intervals by default.
    let duration = r["duration_ns"].as_u64().unwrap();
    assert_eq!(intervals as u64, duration.div_ceil(10_000_000));
    for (path, dirs) in r["links"].as_object().unwrap() {
        for (d, l) in dirs.as_object().unwrap() {
            let series = format!("link.{path}.{d}");
            for m in ["delivered_bytes", "delivered_packets"] {
                assert_eq!(
                    sum(&sums, &series, m),
                    l[m].as_u64().unwrap(),
                    "{series} {m}"
                );
            }
            for c in CAUSES {
                let want = l["drops"][c].as_u64().unwrap_or(0);
                let got = sum(&sums, &series, &format!("drops.{c}"));
                assert_eq!(got, want, "{series} drops.{c}");
            }
        }
    }
    for (name, f) in r["flows"].as_object().unwrap() {
        let series = format!("flow.{name}");
        assert_eq!(
            sum(&sums, &series, "delivered_bytes"),
            f["received_bytes"].as_u64().unwrap()
        );
        assert_eq!(
            sum(&sums, &series, "delivered_packets"),
            f["received_packets"].as_u64().unwrap()
        );
        for c in CAUSES {
            let want = f["drops"][c].as_u64().unwrap_or(0);
            assert_eq!(
                sum(&sums, &series, &format!("drops.{c}")),
                want,
                "{series} {c}"
            );
        }
    }
}

#[test]
fn timeseries_sums_equal_the_report_totals() {
    for name in ["failover-to-vpn", "oversubscribed", "active-active"] {
        let (_tmp, dir, _) = run(name, &["--quiet"]);
        check_csv_matches_report(&dir);
    }
}

#[test]
fn timeseries_shows_the_failover_and_the_queue() {
    let (_tmp, dir, _) = run("failover-to-vpn", &["--quiet"]);
    let text = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let value = |t: u64, series: &str, metric: &str| -> Option<u64> {
        let prefix = format!("{t},{series},{metric},");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
    };
    // Primary fails at 4 s, secondary at 6 s, primary returns at 8 s.
    assert!(value(3_000_000_000, "link.primary.in", "throughput_bps").unwrap() > 500_000_000);
    assert_eq!(
        value(5_000_000_000, "link.primary.in", "throughput_bps"),
        Some(0)
    );
    assert!(value(5_000_000_000, "link.secondary.in", "throughput_bps").unwrap() > 500_000_000);
    assert!(value(7_000_000_000, "link.vpn.in", "throughput_bps").unwrap() > 500_000_000);
    assert!(value(4_000_000_000, "flow.backup", "drops.link-down").unwrap() > 0);
    // The VPN gateway's shaping queue holds packets while it carries 600 Mbps.
    assert!(value(7_000_000_000, "link.vpn.in", "queue_bytes").is_some());
    assert!(value(7_000_000_000, "flow.backup", "latency_p99_ns").unwrap() > 10_000_000);
}

fn svg_texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

fn count(doc: &roxmltree::Document, tag: &str) -> usize {
    doc.descendants().filter(|n| n.has_tag_name(tag)).count()
}

#[test]
fn plots_are_svg_with_their_series() {
    let (_tmp, dir, _) = run("failover-to-vpn", &["--quiet"]);
    let read = |f: &str| std::fs::read_to_string(dir.join("plots").join(f)).unwrap();
    let files = [
        "throughput.svg",
        "latency.svg",
        "latency-cdf.svg",
        "queue.svg",
        "drops.svg",
    ];
    for f in files {
        let text = read(f);
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{f}");
        assert!(count(&doc, "polyline") > 0, "{f}");
    }

    let text = read("throughput.svg");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let texts = svg_texts(&doc);
    for t in [
        "Throughput per path, in (on-premises to Azure)",
        "Throughput per path, out (Azure to on-premises)",
        "primary",
        "secondary",
        "vpn",
        "outage",
        "link primary down",
        "link secondary down",
        "link primary up",
    ] {
        assert!(
            texts.iter().any(|x| x == t),
            "throughput.svg lacks {t:?}: {texts:?}"
        );
    }
    // One filled area per path and direction.
    assert_eq!(count(&doc, "polygon"), 3 * 2);

    let text = read("latency.svg");
    let texts = svg_texts(&roxmltree::Document::parse(&text).unwrap());
    for t in ["backup p50", "backup p99", "backup max"] {
        assert!(texts.iter().any(|x| x == t), "latency.svg lacks {t}");
    }
    let text = read("latency-cdf.svg");
    let texts = svg_texts(&roxmltree::Document::parse(&text).unwrap());
    assert!(texts
        .iter()
        .any(|x| x == "Latency CDF per flow (whole run)"));
    assert!(texts.iter().any(|x| x == "backup"));
    let text = read("queue.svg");
    let texts = svg_texts(&roxmltree::Document::parse(&text).unwrap());
    for t in ["primary.in", "secondary.out", "vpn.in"] {
        assert!(texts.iter().any(|x| x == t), "queue.svg lacks {t}");
    }
    let text = read("drops.svg");
    let texts = svg_texts(&roxmltree::Document::parse(&text).unwrap());
    for t in ["link-down", "loss"] {
        assert!(texts.iter().any(|x| x == t), "drops.svg lacks {t}");
    }
}

/// Total count of every histogram in an interval log, read back with the
/// hdrhistogram crate.
fn hlog_total(bytes: &[u8]) -> (u64, usize) {
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let mut total = 0;
    let mut histograms = 0;
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        if let LogEntry::Interval(h) = entry.expect("log parses") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(h.encoded_histogram())
                .unwrap();
            let hist: hdrhistogram::Histogram<u64> =
                de.deserialize(&mut std::io::Cursor::new(raw)).unwrap();
            total += hist.len();
            histograms += 1;
        }
    }
    (total, histograms)
}

#[test]
fn hdrhistogram_files_hold_every_latency() {
    for name in ["failover-to-vpn", "oversubscribed"] {
        let (_tmp, dir, _) = run(name, &["--quiet"]);
        let r = report(&dir);
        for (flow, f) in r["flows"].as_object().unwrap() {
            let count = f["latency_ns"]["count"].as_u64().unwrap();
            assert!(count > 0);
            let log = std::fs::read(dir.join(format!("latency/{flow}.hlog"))).unwrap();
            let (total, histograms) = hlog_total(&log);
            assert_eq!(total, count, "{name} {flow}.hlog");
            assert!(histograms > 100, "{histograms}");

            let hgrm = std::fs::read_to_string(dir.join(format!("latency/{flow}.hgrm"))).unwrap();
            let mut lines = hgrm.lines();
            let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
            assert_eq!(
                header,
                ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
            );
            let rows: Vec<Vec<&str>> = hgrm
                .lines()
                .skip(2)
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split_whitespace().collect())
                .collect();
            let last = rows.last().unwrap();
            assert_eq!(last[1], "1.000000000000");
            assert_eq!(last[2].parse::<u64>().unwrap(), count);
            let max_ms: f64 = last[0].parse().unwrap();
            let max_ns = f["latency_ns"]["max"].as_u64().unwrap() as f64;
            assert!(
                (max_ms * 1e6 - max_ns).abs() <= max_ns * 1e-3,
                "{max_ms} {max_ns}"
            );
            let total_line = hgrm.lines().find(|l| l.contains("Total count")).unwrap();
            assert!(total_line
                .trim_end_matches(']')
                .ends_with(&format!(" {count}")));
        }
    }
}

#[test]
fn format_json_is_report_json() {
    let (_tmp, dir, stdout) = run("failover-to-vpn", &["--format", "json"]);
    let mut printed: Value = serde_json::from_slice(&stdout).expect("stdout is JSON");
    let mut written = report(&dir);
    for v in [&mut printed, &mut written] {
        v["engine"]
            .as_object_mut()
            .unwrap()
            .remove("wall_seconds")
            .unwrap();
    }
    assert_eq!(printed, written);
}

#[test]
fn format_markdown_and_table() {
    let (_tmp, _dir, stdout) = run("failover-to-vpn", &["--format", "markdown"]);
    let md = String::from_utf8(stdout).unwrap();
    for h in [
        "# Scenario `failover-to-vpn`",
        "## Links",
        "## Flows",
        "## Outages",
        "## Failovers",
        "## Timeline",
    ] {
        assert!(md.contains(h), "{md}");
    }
    assert!(md.contains("| flow | dir | offered Mbps |"), "{md}");
    assert!(md.contains("| backup | in |"), "{md}");
    let (_tmp, _dir, stdout) = run("failover-to-vpn", &["--format", "table"]);
    let table = String::from_utf8(stdout).unwrap();
    assert!(table.starts_with("scenario failover-to-vpn"), "{table}");
    assert!(table.contains("report.html"), "{table}");
    let out = eremu().args(["run", "--format", "yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn progress_callback_does_not_change_results() {
    let cfg = eremu::scenario::load(Path::new(&scenario("failover-to-vpn"))).unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    eremu::run(&cfg, a.path(), false, 1).unwrap();
    let mut calls = 0;
    let mut last = 0;
    eremu::run_with_progress(&cfg, b.path(), false, 2, false, &mut |p| {
        assert!(p.now.0 >= last);
        last = p.now.0;
        calls += 1;
    })
    .unwrap();
    assert!(calls >= 100, "{calls}");
    assert_eq!(last, cfg.duration.as_nanos());
    let strip = |dir: &Path| {
        let mut v = report(dir);
        v["engine"]["wall_seconds"] = Value::from(0);
        v
    };
    assert_eq!(strip(a.path()), strip(b.path()));
    for f in [
        "timeseries.csv",
        "latency/backup.hgrm",
        "latency/backup.hlog",
        "plots/throughput.svg",
        "report.html",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f}"
        );
    }
}

fn with_interval(interval: Option<&str>, duration: &str) -> Result<eremu::Config, String> {
    let base = std::fs::read_to_string(scenario("failover-to-vpn")).unwrap();
    let mut doc: toml_edit::DocumentMut = base.parse().unwrap();
    doc["duration"] = toml_edit::value(duration);
    if let Some(i) = interval {
        doc["report"]["interval"] = toml_edit::value(i);
    }
    eremu::scenario::parse("x.toml", &doc.to_string()).map_err(|e| e.to_string())
}

#[test]
fn report_interval_is_validated_and_capped() {
    let cfg = with_interval(None, "10s").unwrap();
    assert_eq!(cfg.report.interval.as_nanos(), 10_000_000);
    let cfg = with_interval(Some("100ms"), "10s").unwrap();
    assert_eq!(cfg.report.interval.as_nanos(), 100_000_000);
    // 1 hour at 10 ms, 6 link directions and 1 flow: coarsened to fit the cap.
    let cfg = with_interval(None, "60min").unwrap_or_else(|e| panic!("{e}"));
    let cells = 3_600_000_000_000u64.div_ceil(cfg.report.interval.as_nanos()) * 7;
    assert!(cells <= eremu::scenario::MAX_TIMESERIES_CELLS);
    assert_eq!(cfg.report.interval.as_nanos() % 10_000_000, 0);
    let e = with_interval(Some("1ms"), "60min").unwrap_err();
    assert!(e.contains("x.toml:") && e.contains("interval"), "{e}");
    assert!(e.contains("cap"), "{e}");
    let e = with_interval(Some("0s"), "10s").unwrap_err();
    assert!(e.contains("longer than zero"), "{e}");
}

#[test]
fn queue_occupancy_of_an_overloaded_vpn_gateway() {
    // 600 Mbps into a 100 Mbps Basic VPN gateway: its 1 MiB shaping queue
    // fills while the VPN carries the traffic (6 s to 8 s) and overflows.
    let base = std::fs::read_to_string(scenario("failover-to-vpn")).unwrap();
    let mut doc: toml_edit::DocumentMut = base.parse().unwrap();
    doc["vpn"]["gateway_sku"] = toml_edit::value("Basic");
    doc["vpn"]["generation"] = toml_edit::value(1);
    doc["capture"]["enabled"] = toml_edit::value(false);
    let cfg = eremu::scenario::parse("basic-vpn.toml", &doc.to_string()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = eremu::run(&cfg, dir.path(), false, 2).unwrap();
    check_csv_matches_report(dir.path());
    let text = std::fs::read_to_string(dir.path().join("timeseries.csv")).unwrap();
    let queue: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| l.split_once(",link.vpn.in,queue_bytes,"))
        .map(|(t, v)| (t.parse().unwrap(), v.parse().unwrap()))
        .collect();
    assert_eq!(queue.len(), 1000);
    let limit = 1 << 20;
    for &(t, q) in &queue {
        assert!(q <= limit, "{t}: {q}");
        if (6_100_000_000..7_900_000_000).contains(&t) {
            assert!(q > limit - 2000, "{t}: the full queue holds {q} bytes");
        }
        if !(5_900_000_000..=8_100_000_000).contains(&t) {
            assert_eq!(q, 0, "{t}");
        }
    }
    let vpn_drops = report.links["vpn"]["in"].hop.drops["vpn-gateway"];
    assert!(vpn_drops > 0);
}
