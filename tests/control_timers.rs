//! The control plane's timers end to end: a run always reaches the end of
//! the scenario, whatever fails when; zero or tiny timer values are refused
//! at validation, and the smallest accepted ones run.

mod common;

use common::text;
use eremu::{scenario, simulate, Report};

const BFD: &str = "\n[bgp]\nasn = 65010\nbfd = { interval = \"300ms\", multiplier = 3 }\n";

/// `failover-secondary` (primary carrier lost at 3 s, back at 7 s) with BGP
/// and BFD, the link going down at `down` instead.
fn failover_with_bfd(down: &str) -> scenario::Config {
    let t = text("failover-secondary").replacen("at = \"3s\"", &format!("at = \"{down}\""), 1);
    scenario::parse("failover-bfd.toml", &format!("{t}{BFD}")).unwrap_or_else(|e| panic!("{e}"))
}

fn events(r: &Report, needle: &str) -> Vec<u64> {
    r.timeline
        .iter()
        .filter(|e| e.event.contains(needle))
        .map(|e| e.time_ns)
        .collect()
}

const S: u64 = 1_000_000_000;

/// Carrier loss with BFD running: BFD goes AdminDown on both ends and its
/// packets are lost on the dead link; the run reaches its end. Carrier loss
/// takes the session down at once (detection 0), so the failover is the
/// interface's, as without BFD.
#[test]
fn a_link_down_with_bfd_runs_to_the_end() {
    for down in ["3s", "0s"] {
        let r = simulate(&failover_with_bfd(down));
        assert_eq!(r.duration_ns, 10 * S);
        let f = &r.failovers[0];
        if down == "3s" {
            assert_eq!((f.at_ns, f.detect_ns), (3 * S, Some(0)));
            assert_eq!(f.flows["app"].path_after.as_deref(), Some("secondary"));
        } else {
            // Down before the session ever came up: nothing to detect, and
            // the primary's session is first Established after 7 s.
            assert_eq!((f.at_ns, f.detect_ns), (0, None));
            let first = events(&r, "bgp CE primary: OpenConfirm -> Established")[0];
            assert!(first > 7 * S, "{first}");
        }
        assert_eq!(events(&r, "-> AdminDown").len(), 2, "both ends");
        // Back at 7 s: BFD leaves AdminDown and comes up again with the MSEE
        // (within one slow interval, 1 s, and two propagation delays).
        assert_eq!(events(&r, "bfd CE primary: AdminDown -> Down"), [7 * S]);
        let up = events(&r, "bfd CE primary: Down -> Up")
            .into_iter()
            .chain(events(&r, "bfd CE primary: Init -> Up"))
            .find(|&t| t > 7 * S)
            .expect("BFD up again");
        assert!(up <= 8 * S + 4_000_000, "{up}");
        // The sessions and the traffic come back over the primary.
        assert!(!events(&r, "bgp CE primary: OpenConfirm -> Established").is_empty());
    }
}

/// Zero and tiny timers cannot reach the model: validation refuses them at
/// their keys (the model's own floors for them are tested in
/// `src/model/*_tests.rs`, with `now` passed in). The smallest values it
/// accepts run to the end of the scenario.
#[test]
fn zero_and_tiny_timers_are_refused_and_the_smallest_valid_ones_run() {
    let with = |bgp: &str| {
        let t = text("failover-secondary");
        scenario::parse("timers.toml", &format!("{t}\n[bgp]\nasn = 65010\n{bgp}\n"))
    };
    for (bgp, key) in [
        ("connect_retry = \"0s\"", "bgp.connect_retry"),
        ("connect_retry = \"1ns\"", "bgp.connect_retry"),
        ("keepalive = \"0s\"", "bgp.keepalive"),
        ("hold_time = \"1ns\"", "bgp.hold_time"),
        (
            "bfd = { interval = \"0s\", multiplier = 3 }",
            "bgp.bfd.interval",
        ),
        (
            "bfd = { interval = \"1ns\", multiplier = 3 }",
            "bgp.bfd.interval",
        ),
        (
            "bfd = { interval = \"300ms\", multiplier = 0 }",
            "bgp.bfd.multiplier",
        ),
    ] {
        let e = with(bgp).expect_err(bgp).to_string();
        assert!(e.contains(key), "{bgp}: {e}");
    }
    let smallest = "connect_retry = \"1s\"\nkeepalive = \"3s\"\nhold_time = \"10s\"\n\
                    bfd = { interval = \"10ms\", multiplier = 1 }";
    let r = simulate(&with(smallest).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(r.duration_ns, 10 * S);
    assert!(r.conservation_errors().is_empty());
    // The failure at 3 s is carrier loss: detected at once, whatever BFD runs.
    assert_eq!(r.failovers[0].detect_ns, Some(0));
}
