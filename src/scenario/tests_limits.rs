//! What validation must refuse so that every accepted scenario runs: the
//! limits that protect the machine, and the TCP module's own rules (each of
//! which panicked in the engine when only the scenario's looser checks ran).

use super::*;
use crate::units::{SimDuration, SimTime};

const TCP: &str = include_str!("../../scenarios/tcp-over-vpn.toml");
const UDP: &str = include_str!("../../scenarios/oversubscribed.toml");

/// `base` with `from` replaced by `to` (`from` must occur), parsed.
fn edited(base: &str, from: &str, to: &str) -> Result<Config, String> {
    assert!(
        base.contains(from),
        "test edits text that is not there: {from}"
    );
    parse("x.toml", &base.replacen(from, to, 1)).map_err(|e| e.to_string())
}

fn refused(base: &str, from: &str, to: &str) -> String {
    match edited(base, from, to) {
        Ok(_) => panic!("accepted: {to}"),
        Err(e) => e,
    }
}

/// Every accepted variant runs: built and run for a few milliseconds.
fn runs(cfg: &Config) {
    let mut cfg = cfg.clone();
    cfg.set_duration(SimDuration::from_millis(5)).unwrap();
    let report = crate::simulate(&cfg);
    assert!(report.conservation_errors().is_empty());
}

#[test]
fn tcp_ports_of_zero_are_refused_at_the_port() {
    // smoltcp cannot bind or connect port 0; the engine used to panic.
    let e = refused(TCP, "cc = \"cubic\"", "cc = \"cubic\"\nsrc_port = 0");
    // The key's own line: the line after `cc`.
    let line = TCP[..TCP.find("cc = \"cubic\"").unwrap()]
        .matches('\n')
        .count()
        + 2;
    assert!(e.starts_with(&format!("x.toml:{line}:")), "{e}");
    assert!(e.contains("flows[0].src_port"), "{e}");
    assert!(e.contains("client port is 0"), "{e}");
    let e = refused(TCP, "cc = \"cubic\"", "cc = \"cubic\"\ndst_port = 0");
    assert!(
        e.contains("flows[0].dst_port") && e.contains("server port is 0"),
        "{e}"
    );
    // Any other port is a port.
    runs(
        &edited(
            TCP,
            "cc = \"cubic\"",
            "cc = \"cubic\"\nsrc_port = 1\ndst_port = 65535",
        )
        .unwrap(),
    );
}

#[test]
fn ipv6_tcp_mss_is_at_least_the_ipv6_minimum_mtu_less_headers() {
    let v6 = TCP
        .replace(
            "[\"192.168.0.0/16\"]",
            "[\"192.168.0.0/16\", \"fd00:10::/48\"]",
        )
        .replace("[\"10.1.0.0/16\"]", "[\"10.1.0.0/16\", \"fd00:20::/48\"]")
        .replacen("from = \"192.168.1.10\"", "from = \"fd00:10::10\"", 1)
        .replacen("to = \"10.1.0.4\"", "to = \"fd00:20::4\"", 1);
    // 1280 (RFC 8200's minimum MTU) - 40 (IPv6) - 20 (TCP) = 1220.
    let e = refused(&v6, "cc = \"cubic\"", "cc = \"cubic\"\nmss = 600");
    assert!(
        e.contains("flows[0].mss") && e.contains("1220 to 1440 (IPv6)"),
        "{e}"
    );
    refused(&v6, "cc = \"cubic\"", "cc = \"cubic\"\nmss = 1219");
    runs(&edited(&v6, "cc = \"cubic\"", "cc = \"cubic\"\nmss = 1220").unwrap());
    // IPv4 keeps 536 (576 - 40).
    runs(&edited(TCP, "cc = \"cubic\"", "cc = \"cubic\"\nmss = 536").unwrap());
}

#[test]
fn tcp_endpoints_are_unicast_hosts() {
    // Inside prefixes the file declares, but no host can own them.
    let text = TCP
        .replace(
            "[\"192.168.0.0/16\"]",
            "[\"192.168.0.0/16\", \"255.255.255.255/32\"]",
        )
        .replace(
            "[\"10.1.0.0/16\"]",
            "[\"10.1.0.0/16\", \"0.0.0.0/8\", \"224.0.0.0/4\"]",
        );
    runs(&parse("x.toml", &text).unwrap());
    for (from, to, key) in [
        (
            "from = \"192.168.1.10\"",
            "from = \"255.255.255.255\"",
            "flows[0].from",
        ),
        ("to = \"10.1.0.4\"", "to = \"0.0.0.0\"", "flows[0].to"),
        ("to = \"10.1.0.4\"", "to = \"239.1.1.1\"", "flows[0].to"),
    ] {
        let e = refused(&text, from, to);
        assert!(
            e.contains(key) && e.contains("not a unicast address"),
            "{to}: {e}"
        );
    }
}

#[test]
fn tcp_buffers_are_bounded_per_flow_and_in_total() {
    let e = refused(TCP, "buffer = \"8MiB\"", "buffer = \"1073741823B\"");
    assert!(e.contains("flows[0].buffer") && e.contains("64MiB"), "{e}");
    runs(&edited(TCP, "buffer = \"8MiB\"", "buffer = \"64MiB\"").unwrap());
    // 64 flows at the default 4 MiB are 256 MiB: the most in total.
    let flow = |i: usize| {
        format!(
            "\n[[flows]]\nname = \"t{i}\"\nkind = \"tcp-bulk\"\nfrom = \"192.168.2.{}\"\nto = \"10.1.2.{}\"\n",
            i + 1,
            i + 1
        )
    };
    let base = TCP
        .replace("buffer = \"8MiB\"", "buffer = \"4MiB\"")
        .replacen(
            "[[events]]",
            &((2..64).map(flow).collect::<String>() + "\n[[events]]"),
            1,
        );
    // backup (4 MiB) + db (4 MiB) + 62 more = 64 flows.
    let cfg = parse("x.toml", &base).unwrap();
    assert_eq!(cfg.flows.len(), 64);
    let e = refused(&base, "[[events]]", &(flow(64) + "\n[[events]]"));
    assert!(e.contains("flows[64]") && e.contains("256MiB"), "{e}");
}

#[test]
fn durations_flows_and_rates_have_limits() {
    let e = refused(UDP, "duration = \"10s\"", "duration = \"9999999999s\"");
    assert!(e.contains("x.toml:3:") && e.contains("604800s"), "{e}");
    edited(UDP, "duration = \"10s\"", "duration = \"604800s\"").unwrap();
    let e = refused(UDP, "rate = \"1.5Gbps\"", "rate = \"18000000Tbps\"");
    assert!(e.contains("flows[0].rate") && e.contains("1000Gbps"), "{e}");
    runs(&edited(UDP, "rate = \"1.5Gbps\"", "rate = \"1000Gbps\"").unwrap());
    let many: String = (0..=limits::MAX_FLOWS)
        .map(|i| {
            format!(
                "[[flows]]\nname = \"f{i}\"\nkind = \"udp-cbr\"\nfrom = \"192.168.1.1\"\nto = \"10.1.0.4\"\nrate = \"1kbps\"\n"
            )
        })
        .collect();
    let text = UDP.replace("[capture]", &(many + "[capture]"));
    let e = parse("x.toml", &text).unwrap_err().to_string();
    assert!(
        e.contains("flows[10000].name") && e.contains("at most 10000"),
        "{e}"
    );
}

#[test]
fn an_explicit_interval_is_checked_again_when_the_duration_changes() {
    // 10 ms of 1 us intervals for 6 series is 60,000 cells: valid.
    let text = UDP
        .replacen("duration = \"10s\"", "duration = \"10ms\"", 1)
        .replacen("[capture]\nwindow = [\"1s\", \"1.01s\"]", "", 1)
        + "\n[report]\ninterval = \"1us\"\n";
    let mut cfg = parse("x.toml", &text).unwrap();
    let before = cfg.report.interval;
    // 10 s of them would be 60 M cells. At most floor(500,000 / 6) =
    // 83,333 intervals fit: 10 s / 83,333 = 120,000.48 ns, rounded up.
    let e = cfg.set_duration(SimDuration::from_secs(10)).unwrap_err();
    assert!(
        e.to_string()
            .contains("report.interval of at least 120.001us"),
        "{e}"
    );
    assert_eq!(
        cfg.duration,
        SimDuration::from_millis(10),
        "refused: unchanged"
    );
    assert_eq!(cfg.report.interval, before);
    // Without an explicit interval the duration refits it: a day of 6
    // series at the 500,000-cell cap has at most 83,333 intervals of
    // 86,400 s / 83,333 = 1.0368 s, rounded up to whole 10 ms.
    let mut cfg = parse("x.toml", UDP).unwrap();
    assert_eq!(cfg.report.interval, SimDuration::from_millis(10));
    cfg.set_duration(SimDuration::from_secs(86_400)).unwrap();
    assert_eq!(cfg.report.interval, SimDuration::from_millis(1_040));
    // Real flows (replay, live) count as series too.
    cfg.set_duration_for_external(SimDuration::from_secs(10), 1_000)
        .unwrap();
    // floor(500,000 / 1,006 series) = 497 intervals of 10 s / 497 =
    // 20.12 ms, rounded up to 30 ms.
    assert_eq!(cfg.report.interval, SimDuration::from_millis(30));
    assert!(cfg.set_duration(SimDuration::from_secs(604_801)).is_err());
    assert!(cfg.set_duration(SimDuration::ZERO).is_err());
}

#[test]
fn the_seed_override_is_the_seed_in_the_file() {
    let vpn = include_str!("../../scenarios/failover-to-vpn.toml");
    assert!(vpn.contains("seed = 1"));
    let file7 = parse("x.toml", &vpn.replacen("seed = 1", "seed = 7", 1)).unwrap();
    let mut flag7 = parse("x.toml", vpn).unwrap();
    assert_ne!(flag7.vpn.unwrap().sa_in.key, file7.vpn.unwrap().sa_in.key);
    flag7.set_seed(7);
    assert_eq!(flag7.seed, 7);
    assert_eq!(flag7.vpn.unwrap().sa_in, file7.vpn.unwrap().sa_in);
    assert_eq!(flag7.vpn.unwrap().sa_out, file7.vpn.unwrap().sa_out);
    // Keys written in the file stay as written.
    let key = "ab".repeat(36);
    let given = vpn.replacen("[vpn]", &format!("[vpn]\nkey_in = \"{key}\""), 1);
    let mut cfg = parse("x.toml", &given).unwrap();
    let written = cfg.vpn.unwrap().sa_in.key;
    cfg.set_seed(7);
    assert_eq!(cfg.vpn.unwrap().sa_in.key, written);
    assert_eq!(cfg.vpn.unwrap().sa_out, file7.vpn.unwrap().sa_out);
}

#[test]
fn a_stopped_run_ends_its_flows_where_it_stopped() {
    let cfg = parse("x.toml", UDP).unwrap();
    let stopped = cfg.ended_at(SimTime(1_500_000_000));
    assert_eq!(stopped.duration, SimDuration::from_millis(1_500));
    assert!(stopped
        .flows
        .iter()
        .all(|f| f.stop <= SimTime(1_500_000_000)));
    assert_eq!(
        cfg.duration,
        SimDuration::from_secs(10),
        "the original is unchanged"
    );
}
