//! The scenario fuzz target's property with a small budget, in `cargo test`:
//! a shipped scenario with one value replaced by an awkward one (zero,
//! tiny, huge, negative, the wrong type, a reserved address) is refused by
//! validation with a located error, or accepted and then run (a few
//! milliseconds, with capture) to a report whose books balance. The
//! cargo-fuzz target `fuzz/fuzz_targets/scenario.rs` does the same with
//! coverage guidance and no budget.

use proptest::prelude::*;

const SCENARIOS: &[(&str, &str)] = &[
    (
        "failover-to-vpn",
        include_str!("../scenarios/failover-to-vpn.toml"),
    ),
    (
        "oversubscribed",
        include_str!("../scenarios/oversubscribed.toml"),
    ),
    (
        "tcp-over-vpn",
        include_str!("../scenarios/tcp-over-vpn.toml"),
    ),
    (
        "silent-failure-bfd",
        include_str!("../scenarios/silent-failure-bfd.toml"),
    ),
    (
        "ipv6-dual-stack",
        include_str!("../scenarios/ipv6-dual-stack.toml"),
    ),
    (
        "route-limit-exceeded",
        include_str!("../scenarios/route-limit-exceeded.toml"),
    ),
    (
        "active-active",
        include_str!("../scenarios/active-active.toml"),
    ),
];

/// Values that have broken eremu, or would: zeros, the smallest and largest
/// quantities, wrong types, addresses no host can have.
const AWKWARD: &[&str] = &[
    "0",
    "1",
    "-1",
    "4294967295",
    "18446744073709551615",
    "1e308",
    "\"\"",
    "\"0s\"",
    "\"1ns\"",
    "\"9999999999s\"",
    "\"604800s\"",
    "\"0bps\"",
    "\"1bps\"",
    "\"18000000Tbps\"",
    "\"1000Gbps\"",
    "\"0B\"",
    "\"1073741823B\"",
    "\"0%\"",
    "\"100%\"",
    "\"0.0.0.0\"",
    "\"255.255.255.255\"",
    "\"224.0.0.1\"",
    "\"::\"",
    "\"ff02::1\"",
    "\"0.0.0.0/0\"",
    "\"::/0\"",
    "[]",
    "{}",
    "true",
    "\"x/y\"",
    "\".\"",
    "\"\\u00e9\"",
];

/// The byte ranges of every value written after `key = ` in `text`.
fn values(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('[') && !trimmed.starts_with('#') {
            if let Some(eq) = line.find(" = ") {
                let start = at + eq + 3;
                let body = &line[eq + 3..];
                let end = body.find(" #").unwrap_or(body.trim_end().len());
                out.push(start..start + end);
            }
        }
        at += line.len();
    }
    out
}

fn check(text: &str) {
    let Ok(mut cfg) = eremu::scenario::parse("fuzz.toml", text) else {
        return;
    };
    let short = cfg.duration.min(eremu::units::SimDuration::from_millis(3));
    cfg.set_duration(short)
        .expect("a shorter duration of a valid scenario is valid");
    let dir = tempfile::tempdir().unwrap();
    let report = eremu::run(&cfg, dir.path(), true, 1).expect("outputs are written");
    assert!(report.conservation_errors().is_empty(), "{text}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn an_awkward_value_is_refused_or_runs(
        scenario in 0..SCENARIOS.len(),
        pick in any::<prop::sample::Index>(),
        value in prop::sample::select(AWKWARD),
    ) {
        let (_, text) = SCENARIOS[scenario];
        let spots = values(text);
        let spot = spots[pick.index(spots.len())].clone();
        let edited = format!("{}{}{}", &text[..spot.start], value, &text[spot.end..]);
        check(&edited);
    }
}

#[test]
fn every_shipped_scenario_has_values_to_edit() {
    for (name, text) in SCENARIOS {
        let spots = values(text);
        assert!(spots.len() > 10, "{name}: {}", spots.len());
        // Each spot is exactly a value: the text before it ends with " = ".
        for s in &spots {
            assert!(text[..s.start].ends_with(" = "), "{name}");
            assert!(!text[s.clone()].trim().is_empty(), "{name}");
        }
    }
}
