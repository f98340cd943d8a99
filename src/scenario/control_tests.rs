//! `[bgp]` and `[[advertise]]` validation: every timer and every count that
//! sizes an allocation is bounded, and errors name the file, line and key.

use super::*;
use crate::scenario::parse;

const BASE: &str = include_str!("../../scenarios/failover-to-vpn.toml");

fn with_bgp(bgp: &str) -> String {
    format!("{BASE}\n[bgp]\nasn = 65010\n{bgp}\n")
}

fn error(bgp: &str) -> String {
    match parse("bad.toml", &with_bgp(bgp)) {
        Ok(_) => panic!("accepted: {bgp}"),
        Err(e) => e.to_string(),
    }
}

fn accepted(bgp: &str) -> BgpScenario {
    parse("good.toml", &with_bgp(bgp))
        .unwrap_or_else(|e| panic!("{e}"))
        .bgp
        .clone()
        .unwrap()
}

/// The line `needle` is on in the scenario built from `bgp`.
fn line(bgp: &str, needle: &str) -> usize {
    let text = with_bgp(bgp);
    text[..text.rfind(needle).unwrap()].matches('\n').count() + 1
}

/// Checks that `bgp` is refused at `needle`'s line, naming `key`, with a
/// message containing `limit`.
fn refused(bgp: &str, needle: &str, key: &str, limit: &str) {
    let e = error(bgp);
    let at = format!("bad.toml:{}:", line(bgp, needle));
    assert!(e.starts_with(&at), "{e} (expected {at})");
    assert!(e.contains(&format!(" {key}: ")), "{e} (expected {key})");
    assert!(e.contains(limit), "{e} (expected {limit})");
}

#[test]
fn connect_retry_is_whole_seconds_from_1_to_65535() {
    for bad in ["0s", "1ns", "500ms", "1500ms", "65536s"] {
        let bgp = format!("connect_retry = \"{bad}\"");
        refused(&bgp, "connect_retry", "bgp.connect_retry", "1 s to 65535 s");
    }
    for (good, secs) in [("1s", 1), ("5s", 5), ("120s", 120), ("65535s", 65_535)] {
        let b = accepted(&format!("connect_retry = \"{good}\""));
        assert_eq!(b.connect_retry, SimDuration::from_secs(secs));
    }
    assert_eq!(accepted("").connect_retry, SimDuration::from_secs(5));
}

#[test]
fn hold_time_and_keepalive_are_bounded() {
    for bad in ["0s", "1ns", "9s", "10500ms", "65536s"] {
        let bgp = format!("hold_time = \"{bad}\"");
        refused(
            &bgp,
            "hold_time",
            "bgp.hold_time",
            "10 s (the MSEE's minimum) to 65535 s",
        );
    }
    let b = accepted("hold_time = \"65535s\"\nkeepalive = \"65534s\"");
    assert_eq!(b.hold_time, SimDuration::from_secs(65_535));
    for bad in ["0s", "1ns", "2s", "180s"] {
        let bgp = format!("keepalive = \"{bad}\"");
        refused(
            &bgp,
            "keepalive",
            "bgp.keepalive",
            "at least 3 s and below the hold time",
        );
    }
}

/// BFD errors name the sub-key, on its own line.
#[test]
fn bfd_errors_name_the_sub_key_and_its_line() {
    for bad in ["0s", "1ns", "1us", "9ms", "10000100ns", "61s"] {
        let bgp = format!("[bgp.bfd]\ninterval = \"{bad}\"\nmultiplier = 3");
        refused(&bgp, "interval", "bgp.bfd.interval", "10 ms to 60 s");
        let inline = format!("bfd = {{ interval = \"{bad}\", multiplier = 3 }}");
        refused(&inline, "bfd", "bgp.bfd.interval", "10 ms to 60 s");
    }
    for bad in ["0", "-1", "256"] {
        let bgp = format!("[bgp.bfd]\ninterval = \"300ms\"\nmultiplier = {bad}");
        refused(&bgp, "multiplier", "bgp.bfd.multiplier", "1..255");
    }
    for (interval, ns, mult) in [("10ms", 10_000_000, 1), ("60s", 60_000_000_000, 255)] {
        let b = accepted(&format!(
            "bfd = {{ interval = \"{interval}\", multiplier = {mult} }}"
        ));
        assert_eq!(b.bfd, Some((SimDuration(ns), mult)));
    }
}

#[test]
fn as_path_prepends_are_at_most_254() {
    for (key, bad) in [
        ("primary", "4294967295"),
        ("secondary", "255"),
        ("vpn", "-1"),
    ] {
        let bgp = format!("as_path_prepend = {{ {key} = {bad} }}");
        refused(
            &bgp,
            "as_path_prepend",
            &format!("bgp.as_path_prepend.{key}"),
            "at most 254",
        );
    }
    let b = accepted("as_path_prepend = { primary = 254, vpn = 1 }");
    assert_eq!(b.prepend, [254, 0, 1]);
}

/// 100,000 prefixes in all are accepted, one more is refused at the entry
/// that goes over, whether by a split or by a single prefix.
#[test]
fn advertised_prefixes_are_at_most_100000_in_all() {
    let entry = |split: u8| {
        format!("[[advertise]]\nside = \"onprem\"\nprefix = \"192.168.0.0/16\"\nvia = [\"primary\"]\nsplit = {split}\n")
    };
    // 65,536 + 32,768 + 1,024 + 512 + 128 + 32 = 100,000.
    let full: String = [32, 31, 26, 25, 23, 21].map(entry).concat();
    let b = accepted(&full);
    assert_eq!(b.advertise.len(), MAX_ADVERTISED);
    let one_more = format!("{full}[[advertise]]\nprefix = \"10.1.1.0/24\"\nvia = [\"vpn\"]\n");
    refused(
        &one_more,
        "10.1.1.0/24",
        "advertise[6].prefix",
        "give 100001 prefixes; at most 100000 in all",
    );
    let split_over = format!("{}{}", entry(32), entry(32));
    refused(
        &split_over,
        "split",
        "advertise[1].split",
        "give 131072 prefixes; at most 100000 in all",
    );
    refused(
        &entry(33),
        "split",
        "advertise[0].split",
        "between /16 and /32",
    );
}
