//! The control plane driven through its API with `now` passed in: whatever
//! the timers, every deadline it reports is consumed when it is run, and
//! zero or tiny times behave exactly as the floors the sessions apply.

use super::*;
use crate::scenario::parse;

const BASE: &str = include_str!("../../scenarios/failover-to-vpn.toml");

fn s(secs: u64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs(secs)
}

/// The timeline the control plane writes.
#[derive(Default)]
struct Notes(Vec<(SimTime, String)>);

impl Tap for Notes {
    fn note(&mut self, now: SimTime, text: String) {
        self.0.push((now, text));
    }
}

#[derive(Debug, Clone, Copy)]
enum Input {
    Carrier(PathId, bool),
    Silent(PathId, bool),
    Router(PathId, bool),
}

/// Link down at 0 s (before BFD has sent anything) and up at 2 s; a silent
/// failure of the secondary (BFD detects it) from 5 to 7 s; a silent failure
/// of the tunnel, which has no BFD (the hold timer detects it) from 8 to
/// 25 s; the primary MSEE fails from 26 to 28 s. Sessions restart after each
/// failure with ConnectRetry.
const FAILURES: [(u64, Input); 8] = [
    (0, Input::Carrier(PathId::Primary, false)),
    (2, Input::Carrier(PathId::Primary, true)),
    (5, Input::Silent(PathId::Secondary, true)),
    (7, Input::Silent(PathId::Secondary, false)),
    (8, Input::Silent(PathId::Vpn, true)),
    (25, Input::Silent(PathId::Vpn, false)),
    (26, Input::Router(PathId::Primary, true)),
    (28, Input::Router(PathId::Primary, false)),
];

fn config(bgp: &str) -> Config {
    parse(
        "control.toml",
        &format!("{BASE}\n[bgp]\nasn = 65010\n{bgp}\n"),
    )
    .unwrap()
}

/// Runs the control plane to `until` through `inputs` as the engine does
/// (at each deadline or input, in time order) and returns its timeline and
/// how many times it ran. After each run nothing may be left due.
fn run(
    cfg: &Config,
    b: &BgpScenario,
    inputs: &[(u64, Input)],
    until: SimTime,
) -> (Vec<(SimTime, String)>, u64) {
    let mut plane = ControlPlane::new(cfg, b, SimTime::ZERO);
    let mut ribs: [Rib; 2] = Default::default();
    let mut notes = Notes::default();
    let mut inputs = inputs.iter().map(|&(t, i)| (s(t), i)).peekable();
    let mut runs = 0u64;
    loop {
        let next_input = inputs.peek().map(|i| i.0);
        let Some(now) = [plane.next_deadline(), next_input]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        if now > until {
            break;
        }
        while let Some((_, input)) = inputs.next_if(|i| i.0 == now) {
            match input {
                Input::Carrier(p, up) => plane.set_carrier(now, p, up),
                Input::Silent(p, failed) => plane.set_silent_fail(p, failed),
                Input::Router(p, down) => plane.set_router_down(now, p, down),
            }
        }
        plane.process(now, &mut ribs, None, &mut notes);
        runs += 1;
        let next = plane.next_deadline();
        assert!(
            next.is_none_or(|d| d > now),
            "deadline {next:?} not after {now:?} (run {runs})"
        );
        assert!(runs < 1_000_000, "no end in sight at {now:?}");
    }
    (notes.0, runs)
}

/// The failures above with BFD at the MSEE's 300 ms x 3 and the shortest
/// valid BGP timers: every deadline is consumed, and the sessions come
/// back after each failure.
#[test]
fn every_deadline_is_consumed_through_every_failure() {
    let cfg = config(
        "hold_time = \"10s\"\nkeepalive = \"3s\"\nconnect_retry = \"1s\"\nbfd = { interval = \"300ms\", multiplier = 3 }",
    );
    let (notes, _) = run(&cfg, cfg.bgp.as_ref().unwrap(), &FAILURES, s(40));
    let has = |text: &str, after: u64| {
        notes
            .iter()
            .any(|(t, n)| *t >= s(after) && n.contains(text))
    };
    // Carrier loss at 0 s: BFD on the primary goes AdminDown at once.
    assert!(has("bfd CE primary: Down -> AdminDown", 0));
    // BFD takes the secondary's session down, the hold timer the tunnel's.
    assert!(has("bgp CE secondary: Established -> Idle (BFD down)", 5));
    assert!(has(
        "bgp CE vpn: Established -> Idle (hold timer expired)",
        8
    ));
    // All three sessions are Established again at the end.
    for path in ["primary", "secondary", "vpn"] {
        let last = notes
            .iter()
            .rfind(|(_, n)| n.starts_with(&format!("bgp CE {path}:")))
            .unwrap();
        assert!(
            last.1.ends_with("-> Established (KEEPALIVE received)"),
            "{last:?}"
        );
    }
}

/// Zero and sub-floor times (validation refuses them; the model must not
/// spin on them) give exactly the timeline of their floors: BGP timers of
/// 1 s, a hold time of 3 s (or none when it rounds to 0 s), BFD intervals of
/// 1 us and a multiplier of 1. The CE's BFD interval below the MSEE's
/// 300 ms changes nothing at all: the slower peer sets the rate.
#[test]
fn zero_and_tiny_timers_run_as_their_floors() {
    let base = config(
        "hold_time = \"10s\"\nkeepalive = \"3s\"\nconnect_retry = \"1s\"\nbfd = { interval = \"300ms\", multiplier = 3 }",
    );
    let b0 = base.bgp.clone().unwrap();
    let timeline = |edit: &dyn Fn(&mut BgpScenario)| {
        let mut b = b0.clone();
        edit(&mut b);
        run(&base, &b, &FAILURES, s(40)).0
    };
    let tiny = [
        SimDuration::ZERO,
        SimDuration(1),
        SimDuration::from_millis(999),
    ];
    let secs = SimDuration::from_secs;
    let retry_floor = timeline(&|b| b.connect_retry = secs(1));
    let keepalive_floor = timeline(&|b| b.keepalive = secs(1));
    let bfd_300 = timeline(&|_| {});
    let mult_floor = timeline(&|b| b.bfd = Some((SimDuration::from_millis(300), 1)));
    let hold_none = timeline(&|b| b.hold_time = SimDuration::ZERO);
    let hold_floor = timeline(&|b| b.hold_time = secs(3));
    assert_ne!(hold_none, hold_floor, "the hold time matters here");
    assert_ne!(mult_floor, bfd_300, "the multiplier matters here");
    for t in tiny {
        assert_eq!(
            timeline(&|b| b.connect_retry = t),
            retry_floor,
            "connect_retry {t:?}"
        );
        assert_eq!(
            timeline(&|b| b.keepalive = t),
            keepalive_floor,
            "keepalive {t:?}"
        );
    }
    for t in [SimDuration::ZERO, SimDuration(1), SimDuration(999)] {
        let interval = |b: &mut BgpScenario| b.bfd = Some((t, 3));
        assert_eq!(timeline(&interval), bfd_300, "bfd interval {t:?}");
    }
    assert_eq!(timeline(&|b| b.bfd = Some((secs(0), 0))), mult_floor);
    assert_eq!(timeline(&|b| b.hold_time = SimDuration(1)), hold_none);
    assert_eq!(timeline(&|b| b.hold_time = secs(2)), hold_floor);
    assert_eq!(
        timeline(&|b| b.hold_time = SimDuration::from_millis(2_999)),
        hold_floor
    );
}
