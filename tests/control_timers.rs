//! The control plane's timers end to end: a run always reaches the end of
//! the scenario, whatever fails when, and zero or tiny timer values (which
//! validation refuses, but which the model must survive) behave exactly as
//! the floors the sessions run them at.

mod common;

use common::text;
use eremu::units::SimDuration;
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

/// Zero and sub-floor BGP and BFD timers give exactly the report of their
/// floors (1 s for BGP timers, 1 us for BFD intervals, which the MSEE's
/// 300 ms then overrides: the slower peer sets the rate): same timeline,
/// flows, failovers and engine event count.
#[test]
fn zero_and_tiny_timers_give_the_report_of_their_floors() {
    let run = |edit: &dyn Fn(&mut scenario::control::BgpScenario)| {
        let mut cfg = failover_with_bfd("3s");
        edit(cfg.bgp.as_mut().unwrap());
        let mut r = simulate(&cfg);
        r.engine.wall_seconds = 0.0;
        serde_json::to_string(&r).unwrap()
    };
    let floor = run(&|b| {
        b.connect_retry = SimDuration::from_secs(1);
        b.keepalive = SimDuration::from_secs(1);
    });
    for t in [SimDuration::ZERO, SimDuration(1)] {
        let tiny = run(&|b| {
            b.connect_retry = t;
            b.keepalive = t;
        });
        assert!(tiny == floor, "connect_retry and keepalive {t:?}");
    }
    let bfd_300 = run(&|_| {});
    for t in [SimDuration::ZERO, SimDuration(1)] {
        let tiny = run(&|b| b.bfd = Some((t, 3)));
        assert!(tiny == bfd_300, "bfd interval {t:?}");
    }
}
