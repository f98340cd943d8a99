use rand::SeedableRng;

use super::*;

const MS: u64 = 1_000_000;

fn t_ms(ms: u64) -> SimTime {
    SimTime(ms * MS)
}

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Two sessions joined by a wire with a fixed one-way delay. Packets go
/// through their bytes, so the wire checks are part of every exchange.
struct Pair {
    s: [BfdSession; 2],
    now: SimTime,
    delay: SimDuration,
    /// (arrival, receiver, bytes), in send order.
    wire: Vec<(SimTime, usize, Vec<u8>)>,
    /// `cut[i]`: what session `i` sends is lost.
    cut: [bool; 2],
    sent: [Vec<(SimTime, Repr)>; 2],
    received: [Vec<SimTime>; 2],
    events: [Vec<BfdEvent>; 2],
}

impl Pair {
    fn new(cfg: [BfdConfig; 2], seed: u64) -> Self {
        Pair {
            s: [
                BfdSession::new(cfg[0], rng(seed), SimTime::ZERO),
                BfdSession::new(cfg[1], rng(seed + 1), SimTime::ZERO),
            ],
            now: SimTime::ZERO,
            delay: SimDuration::from_millis(1),
            wire: vec![],
            cut: [false; 2],
            sent: [vec![], vec![]],
            received: [vec![], vec![]],
            events: [vec![], vec![]],
        }
    }

    fn mse() -> [BfdConfig; 2] {
        let ce = BfdConfig {
            local_discriminator: 0x11,
            ..BfdConfig::default()
        };
        let msee = BfdConfig {
            local_discriminator: 0x22,
            ..BfdConfig::default()
        };
        [ce, msee]
    }

    /// Advances to the next thing that happens, if it is not after `until`.
    fn step(&mut self, until: SimTime) -> bool {
        let next = [
            self.s[0].next_deadline(),
            self.s[1].next_deadline(),
            self.wire.iter().map(|w| w.0).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next.filter(|&t| t <= until) else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        let (due, rest): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|w| w.0 <= now);
        self.wire = rest;
        for (_, to, bytes) in due {
            let p = crate::wire::bfd::Repr::parse(&bytes).expect("sessions emit valid packets");
            self.received[to].push(now);
            self.s[to].handle_packet(now, &p);
        }
        for i in 0..2 {
            self.s[i].handle_timeout(now);
            while let Some(p) = self.s[i].poll_transmit(now) {
                self.sent[i].push((now, p));
                if !self.cut[i] {
                    self.wire.push((now + self.delay, 1 - i, p.to_bytes()));
                }
            }
            while let Some(e) = self.s[i].poll_event() {
                self.events[i].push(e);
            }
            // What was due is consumed, never re-armed at the same instant.
            let next = self.s[i].next_deadline();
            assert!(next.is_none_or(|d| d > now), "{i}: {next:?} at {now:?}");
        }
        true
    }

    fn run_until(&mut self, until: SimTime) {
        for _ in 0..1_000_000 {
            if !self.step(until) {
                self.now = until;
                return;
            }
        }
        panic!("livelock before {until:?}");
    }
}

#[test]
fn pair_comes_up_within_one_slow_interval() {
    let mut p = Pair::new(Pair::mse(), 7);
    p.run_until(t_ms(5_000));
    for i in 0..2 {
        assert_eq!(p.s[i].state(), State::Up);
        let up = p.events[i].iter().find(|e| e.to == State::Up).unwrap();
        // Both send Down at 0 and hear it at 1 ms (-> Init); the first
        // jittered slow packet (at most 1 s) carries Init to the other side,
        // which goes Up and answers at once: at most 1 s plus two delays.
        assert!(up.at <= t_ms(1_002), "{i} up at {:?}", up.at);
        assert_eq!(p.events[i].len(), 2, "{:?}", p.events[i]);
        assert!(!p.s[i].polling, "poll sequence finished");
    }
    // The initial exchange: Down packets carry no Your Discriminator.
    assert_eq!(p.sent[0][0].1.state, State::Down);
    assert_eq!(p.sent[0][0].1.your_discriminator, 0);
    assert_eq!(p.sent[0][0].1.desired_min_tx_us, 1_000_000);
    // Once Up, periodic packets are 300 ms less 0-25 % apart.
    for i in 0..2 {
        let times: Vec<SimTime> = p.sent[i]
            .iter()
            .filter(|(t, r)| *t >= t_ms(2_000) && !r.final_)
            .map(|(t, _)| *t)
            .collect();
        assert!(times.len() > 10);
        for w in times.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                (225 * MS..=300 * MS).contains(&gap.as_nanos()),
                "gap {gap:?}"
            );
        }
        assert_eq!(p.sent[i].last().unwrap().1.desired_min_tx_us, 300_000);
    }
}

#[test]
fn silent_peer_is_detected_after_detect_mult_intervals() {
    let mut p = Pair::new(Pair::mse(), 11);
    p.run_until(t_ms(5_000));
    assert_eq!(p.s[0].state(), State::Up);
    // The MSEE (1) stops sending at 5 s.
    let stop = p.now;
    p.cut[1] = true;
    p.run_until(t_ms(8_000));
    let down = p.events[0]
        .iter()
        .find(|e| e.from == State::Up)
        .copied()
        .unwrap();
    assert_eq!(down.to, State::Down);
    assert_eq!(down.diag, Diagnostic::ControlDetectionTimeExpired);
    // Detection time = the MSEE's multiplier 3 x max(our Required Min RX
    // 300 ms, its Desired Min TX 300 ms) = 900 ms after the last packet that
    // arrived, exactly.
    let last_rx = *p.received[0].iter().rfind(|&&t| t <= down.at).unwrap();
    assert_eq!(down.at, last_rx + SimDuration::from_millis(900));
    // Relative to the failure: the last packet left at most one interval
    // (300 ms) before it, so detection takes between (3-1) x 300 ms and
    // 3 x 300 ms, plus the wire delay.
    let after = down.at - stop;
    assert!(
        after >= SimDuration::from_millis(600) + p.delay,
        "{after:?}"
    );
    assert!(
        after <= SimDuration::from_millis(900) + p.delay,
        "{after:?}"
    );
    // The MSEE still hears us: our next periodic packet (within one
    // interval) says Down and takes it down too.
    let msee_down = p.events[1].iter().find(|e| e.from == State::Up).unwrap();
    assert_eq!(msee_down.diag, Diagnostic::NeighborSignaledSessionDown);
    assert!(msee_down.at > down.at);
    assert!(msee_down.at <= down.at + SimDuration::from_millis(300) + p.delay);
    // Nothing heard: no packets sent by us carry a remote discriminator.
    let last = p.sent[0].last().unwrap().1;
    assert_eq!((last.state, last.your_discriminator), (State::Down, 0));
}

#[test]
fn jitter_bounds_and_determinism() {
    for (mult, lo, hi) in [(3u8, 750, 1_000), (1, 750, 900)] {
        let cfg = BfdConfig {
            detect_mult: mult,
            ..BfdConfig::default()
        };
        let mut s = BfdSession::new(cfg, rng(3), SimTime::ZERO);
        let mut times = vec![];
        while times.len() < 200 {
            let t = s.next_deadline().unwrap();
            if s.poll_transmit(t).is_some() {
                times.push(t);
            }
        }
        // Alone, the session stays Down and sends at the 1 s slow rate.
        for w in times.windows(2) {
            let gap = (w[1] - w[0]).as_nanos();
            assert!((lo * MS..=hi * MS).contains(&gap), "mult {mult}: {gap}");
        }
    }
    let run = |seed| {
        let mut p = Pair::new(Pair::mse(), seed);
        p.run_until(t_ms(3_000));
        p.sent[0].iter().map(|s| s.0).collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn admin_down_and_foreign_discriminators() {
    let mut p = Pair::new(Pair::mse(), 1);
    p.run_until(t_ms(3_000));
    // A packet for another session is ignored.
    let mut stray = p.sent[1].last().unwrap().1;
    stray.your_discriminator = 0x99;
    stray.state = State::AdminDown;
    p.s[0].handle_packet(p.now, &stray);
    assert_eq!(p.s[0].state(), State::Up);
    p.s[1].admin_down(p.now);
    p.run_until(t_ms(4_000));
    let e = p.events[0].last().unwrap();
    assert_eq!(
        (e.from, e.to, e.diag),
        (
            State::Up,
            State::Down,
            Diagnostic::NeighborSignaledSessionDown
        )
    );
    assert_eq!(p.s[1].state(), State::AdminDown);
    p.s[1].admin_up(p.now);
    p.run_until(t_ms(7_000));
    assert_eq!([p.s[0].state(), p.s[1].state()], [State::Up; 2]);
}

#[test]
fn slower_peer_sets_the_rate() {
    let [ce, mut msee] = Pair::mse();
    msee.required_min_rx = SimDuration::from_millis(750);
    msee.desired_min_tx = SimDuration::from_millis(750);
    let mut p = Pair::new([ce, msee], 2);
    p.run_until(t_ms(6_000));
    assert_eq!(p.s[0].state(), State::Up);
    assert_eq!(p.s[0].tx_interval(), SimDuration::from_millis(750));
    // 3 x max(300 ms, 750 ms) = 2.25 s (fact sheet 3.3).
    assert_eq!(
        p.s[0].detection_time(),
        Some(SimDuration::from_millis(2_250))
    );
}

/// A packet from the MSEE's session (discriminator 0x22) in `state`,
/// advertising `interval_us` both ways.
fn peer_packet(state: State, your: u32, interval_us: u32) -> Repr {
    Repr {
        diag: Diagnostic::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 0x22,
        your_discriminator: your,
        desired_min_tx_us: interval_us,
        required_min_rx_us: interval_us,
        required_min_echo_rx_us: 0,
    }
}

/// Zero intervals and multiplier (which validation refuses, but the session
/// must survive): the session runs them as 1 us, the wire's unit, and a
/// multiplier of 1. Up with a peer that asks for 1 us, it sends a packet
/// every 1 us less 10-25 % jitter (multiplier 1), never twice at one
/// instant, and says so in its packets.
#[test]
fn zero_intervals_run_as_one_microsecond() {
    let cfg = BfdConfig {
        desired_min_tx: SimDuration::ZERO,
        required_min_rx: SimDuration::ZERO,
        detect_mult: 0,
        local_discriminator: 0x11,
    };
    let mut s = BfdSession::new(cfg, rng(4), SimTime::ZERO);
    assert!(s.poll_transmit(SimTime::ZERO).is_some());
    s.handle_packet(t_ms(1), &peer_packet(State::Init, 0x11, 1));
    assert_eq!(s.state(), State::Up);
    let mut now = t_ms(1);
    let mut sent = vec![];
    while sent.len() < 1_000 {
        s.handle_timeout(now);
        while let Some(p) = s.poll_transmit(now) {
            sent.push((now, p));
        }
        let next = s.next_deadline().unwrap();
        assert!(next > now, "{next:?} at {now:?}");
        now = next;
        // The peer keeps talking (detection time 3 x 1 us), so the session
        // stays Up.
        s.handle_packet(now, &peer_packet(State::Up, 0x11, 1));
    }
    assert_eq!(s.state(), State::Up);
    let last = sent.last().unwrap().1;
    assert_eq!(
        (
            last.desired_min_tx_us,
            last.required_min_rx_us,
            last.detect_mult
        ),
        (1, 1, 1)
    );
    // From the second packet after Up on, the 1 us rate.
    for w in sent[2..].windows(2) {
        let gap = (w[1].0 - w[0].0).as_nanos();
        assert!((750..=900).contains(&gap), "gap {gap}");
    }
}

/// A peer asking for no periodic packets (Required Min RX 0, RFC 5880
/// 6.8.7): the session sends none, and its transmit timer moves on instead
/// of staying due.
#[test]
fn a_peer_wanting_no_packets_gets_none_and_the_timer_moves_on() {
    let mut s = BfdSession::new(Pair::mse()[0], rng(4), SimTime::ZERO);
    assert!(s.poll_transmit(SimTime::ZERO).is_some());
    let mut peer = peer_packet(State::Down, 0, 1_000_000);
    peer.required_min_rx_us = 0;
    s.handle_packet(t_ms(10), &peer);
    let mut now = t_ms(10);
    // Until detection (3 x 1 s after the packet), nothing is sent, and each
    // deadline is strictly later than the previous one.
    while now < t_ms(3_010) {
        s.handle_timeout(now);
        assert_eq!(s.poll_transmit(now), None, "at {now:?}");
        let next = s.next_deadline().unwrap();
        assert!(next > now, "{next:?} at {now:?}");
        now = next;
    }
    assert_eq!(now, t_ms(3_010));
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn arb_packet() -> impl Strategy<Value = Repr> {
        (
            0u8..4,
            any::<(bool, bool)>(),
            1u8..5,
            prop_oneof![Just(0x11u32), Just(0x22), Just(0x99)],
            prop_oneof![Just(0u32), Just(0x11), Just(0x42)],
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(300_000),
                Just(1_000_000),
                Just(u32::MAX)
            ],
            prop_oneof![Just(0u32), Just(1), Just(300_000), Just(u32::MAX)],
        )
            .prop_map(|(st, (poll, final_), mult, my, your, tx, rx)| Repr {
                diag: Diagnostic::None,
                state: [State::AdminDown, State::Down, State::Init, State::Up][st as usize],
                poll,
                final_,
                control_plane_independent: false,
                demand: false,
                detect_mult: mult,
                my_discriminator: my,
                your_discriminator: your,
                desired_min_tx_us: tx,
                required_min_rx_us: rx,
                required_min_echo_rx_us: 0,
            })
    }

    proptest! {
        /// Any packets at any times: no panic, no F with P, and Up only with
        /// a known peer.
        #[test]
        fn session_invariants(
            steps in prop::collection::vec((0u64..2_000, prop::option::of(arb_packet())), 0..80),
            mult in 1u8..4,
        ) {
            let cfg = BfdConfig { detect_mult: mult, local_discriminator: 0x11, ..BfdConfig::default() };
            let mut s = BfdSession::new(cfg, rng(9), SimTime::ZERO);
            let mut now = SimTime::ZERO;
            for (dt, pkt) in steps {
                now += SimDuration::from_millis(dt);
                s.handle_timeout(now);
                if let Some(p) = pkt {
                    s.handle_packet(now, &p);
                }
                while let Some(out) = s.poll_transmit(now) {
                    prop_assert!(!(out.poll && out.final_));
                    prop_assert_eq!(crate::wire::bfd::Repr::parse(&out.to_bytes()), Ok(out));
                }
                if s.state() == State::Up {
                    prop_assert!(s.remote_discriminator != 0);
                }
                while s.poll_event().is_some() {}
            }
        }
    }
}
