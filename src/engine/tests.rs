//! The engine's scheduling across scenario events.

use super::Engine;
use crate::units::{SimDuration, SimTime, NS_PER_SEC};

/// The shipped oversubscribed circuit (1 Gbps, active-passive) with 100 Mbps
/// of 1000-byte packets (one every 80 us) from 0.99 s over the primary,
/// whose latency is 50 ms; at 1 s it goes down (the flow moves to the
/// secondary, 2 ms) with its first packet due at about 1.04 s, its latency
/// drops to 1 ms, and at 1.002 s it comes back up.
fn relink() -> crate::scenario::Config {
    let base = include_str!("../../scenarios/oversubscribed.toml");
    let circuit = &base[..base.find("[[flows]]").expect("the scenario has flows")];
    let text = circuit
        .replace("duration = \"10s\"", "duration = \"2s\"")
        .replace("latency = \"2ms\"", "latency = \"50ms\"")
        .replace("latency = \"2.1ms\"", "latency = \"2ms\"")
        + r#"
[[flows]]
name = "a"
kind = "udp-cbr"
from = "192.168.1.10"
to = "10.1.0.4"
rate = "100Mbps"
size = 1000
start = "0.99s"
[[events]]
at = "1s"
action = "link-down"
link = "primary"
[[events]]
at = "1.001s"
action = "set-latency"
link = "primary"
latency = "1ms"
[[events]]
at = "1.002s"
action = "link-up"
link = "primary"
"#;
    let cfg = crate::scenario::parse("relink.toml", &text).unwrap();
    assert_eq!(cfg.duration.as_nanos(), 2 * NS_PER_SEC);
    assert_eq!(cfg.circuit.primary.latency, SimDuration::from_millis(50));
    cfg
}

#[test]
fn a_link_emptied_by_a_failure_delivers_on_time_after_it() {
    let cfg = relink();
    let mut e = Engine::new(&cfg, None, None);
    e.advance(SimTime(2 * NS_PER_SEC));
    let o = e.finish();
    let f = &o.metrics.flows[0];
    // Every packet delivered takes its link's latency plus at most 100 us
    // of serialization at port speed: 2 ms on the secondary, 1 ms after
    // (none sent before the failure arrived). A packet held back by a stale
    // entry of the link would arrive with the old head, at 1.04 s.
    let ms = NS_PER_SEC / 1000;
    assert_eq!(f.latency.histogram().count_between(3 * ms, 49 * ms), 0);
    assert!(f.latency.min >= ms && f.latency.max < 3 * ms);
    // 12,625 sent in 1.01 s; the 125 of the 10 ms before the failure were
    // lost on the wire.
    assert_eq!(f.sent_packets, 12_625);
    assert_eq!(f.drops.iter().sum::<u64>(), 125);
    assert_eq!(f.received_packets + o.in_flight[0], 12_625 - 125);
}
