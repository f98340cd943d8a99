use super::*;
use crate::wire::bgp::Deframer;

const CE_AS: u32 = 65020;
const MSEE_AS: u32 = 12076;

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}

fn at(d: SimDuration) -> SimTime {
    SimTime::ZERO + d
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

enum OnWire {
    Bytes(Vec<u8>),
    Close,
}

/// A CE (0, connects) and an MSEE (1, listens) over one link with a fixed
/// one-way delay. Messages travel as bytes through a de-framer, in order; a
/// session that goes Idle gets its last NOTIFICATION out, then the
/// connection closes (the peer sees it one delay later).
struct Pair {
    s: [BgpSession; 2],
    now: SimTime,
    delay: SimDuration,
    /// The link carries nothing (a silent failure: no TCP reset either).
    cut: bool,
    connected: bool,
    /// (arrival, receiver, connection number, what).
    wire: Vec<(SimTime, usize, u32, OnWire)>,
    conn: u32,
    rx: [Deframer; 2],
    /// Time each side last received a message.
    last_rx: [Option<SimTime>; 2],
    events: [Vec<BgpEvent>; 2],
    sent: [Vec<(SimTime, Repr)>; 2],
}

impl Pair {
    fn new(ce: BgpConfig, msee: BgpConfig) -> Self {
        let mut s = [BgpSession::new(ce), BgpSession::new(msee)];
        s[0].start(SimTime::ZERO);
        s[1].start(SimTime::ZERO);
        Pair {
            s,
            now: SimTime::ZERO,
            delay: SimDuration::from_millis(2),
            cut: false,
            connected: false,
            wire: vec![],
            conn: 0,
            rx: [Deframer::new(), Deframer::new()],
            last_rx: [None; 2],
            events: [vec![], vec![]],
            sent: [vec![], vec![]],
        }
    }

    fn configs(hold: u64) -> (BgpConfig, BgpConfig) {
        let mut ce = BgpConfig::new(CE_AS, MSEE_AS, Ipv4Addr::new(192, 168, 0, 1));
        ce.hold_time = secs(hold);
        let mut msee = BgpConfig::new(MSEE_AS, CE_AS, Ipv4Addr::new(10, 255, 0, 1));
        msee.passive = true;
        (ce, msee)
    }

    fn can_connect(&self) -> bool {
        !self.connected && !self.cut && self.s.iter().all(|s| s.wants_transport())
    }

    fn step(&mut self, until: SimTime) -> bool {
        let next = [
            self.can_connect().then_some(self.now),
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
        for (_, to, conn, what) in due {
            if conn != self.conn {
                continue;
            }
            match what {
                OnWire::Bytes(b) => {
                    self.rx[to].push(&b);
                    while let Some(m) = self.rx[to].next_message() {
                        self.last_rx[to] = Some(now);
                        self.s[to].handle_message(now, m.expect("valid messages"));
                    }
                }
                OnWire::Close => {
                    self.connected = false;
                    self.s[to].handle_transport_down(now);
                }
            }
        }
        if self.can_connect() {
            // The TCP handshake is not modeled here: both ends see it at once.
            self.connected = true;
            self.conn += 1;
            self.rx = [Deframer::new(), Deframer::new()];
            for s in &mut self.s {
                s.handle_transport_up(now);
            }
        }
        for i in 0..2 {
            self.s[i].handle_timeout(now);
            while let Some(m) = self.s[i].poll_transmit(now) {
                self.sent[i].push((now, m.clone()));
                if self.connected && !self.cut {
                    let what = OnWire::Bytes(m.to_bytes());
                    self.wire.push((now + self.delay, 1 - i, self.conn, what));
                }
            }
            if self.connected && self.s[i].state() == BgpState::Idle {
                // Idle: the NOTIFICATION is out, now close the connection.
                self.connected = false;
                if !self.cut {
                    self.wire
                        .push((now + self.delay, 1 - i, self.conn, OnWire::Close));
                }
            }
            while let Some(e) = self.s[i].poll_event() {
                self.events[i].push(e);
            }
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

    fn transitions(&self, i: usize) -> Vec<(SimTime, String)> {
        self.events[i]
            .iter()
            .filter(|e| matches!(e, BgpEvent::StateChanged { .. }))
            .map(|e| match e {
                BgpEvent::StateChanged { at, .. } => (*at, e.to_string()),
                _ => unreachable!(),
            })
            .collect()
    }
}

fn established_pair(hold: u64) -> Pair {
    let (ce, msee) = Pair::configs(hold);
    let mut p = Pair::new(ce, msee);
    p.run_until(at(secs(1)));
    assert_eq!(p.s[0].state(), BgpState::Established);
    assert_eq!(p.s[1].state(), BgpState::Established);
    p
}

#[test]
fn back_to_back_sessions_establish() {
    let p = established_pair(9);
    let d = p.delay;
    // Connected at 0; OPENs cross (arrive at d), KEEPALIVEs answer them
    // (arrive at 2d).
    assert_eq!(
        p.transitions(0),
        [
            (at(secs(0)), "Idle -> Connect (start)".to_string()),
            (at(secs(0)), "Connect -> OpenSent (transport up)".into()),
            (at(d), "OpenSent -> OpenConfirm (OPEN received)".into()),
            (
                at(d + d),
                "OpenConfirm -> Established (KEEPALIVE received)".into()
            ),
        ]
    );
    assert_eq!(p.transitions(1)[0].1, "Idle -> Active (start)");
    // Hold = min(9, 180) = 9 s on both sides, keepalive a third.
    for s in &p.s {
        assert_eq!(s.timers(), (secs(9), secs(3)));
    }
    let Repr::Open(open) = &p.sent[0][0].1 else {
        panic!("OPEN first")
    };
    assert_eq!((open.my_as, open.hold_time), (CE_AS, 9));
}

#[test]
fn keepalives_hold_the_session_and_routes_flow() {
    let mut p = established_pair(9);
    let nh = Ipv4Addr::new(192, 168, 0, 1);
    let mut ce_route = PathAttributes::new(vec![], nh);
    ce_route.local_pref = Some(150);
    p.s[0].set_advertised(p.now, vec![(net("10.1.0.0/16"), ce_route.clone())]);
    let vnet = PathAttributes::new(vec![], Ipv4Addr::new(10, 255, 0, 1));
    p.s[1].set_advertised(p.now, vec![(net("10.100.0.0/16"), vnet)]);
    p.run_until(at(secs(60)));
    assert_eq!(p.s[0].state(), BgpState::Established);
    // eBGP export: our AS prepended, no LOCAL_PREF.
    let learned = &p.s[1].adj_rib_in()[&net("10.1.0.0/16")];
    assert_eq!(
        (learned.as_path.clone(), learned.local_pref),
        (vec![CE_AS], None)
    );
    assert_eq!(
        p.s[0].adj_rib_in()[&net("10.100.0.0/16")].as_path,
        [MSEE_AS]
    );
    // Keepalives every 3 s (the UPDATE at 1 s restarted the timer once).
    let ka: Vec<SimTime> = p.sent[0]
        .iter()
        .filter(|m| m.1 == Repr::Keepalive && m.0 > at(secs(2)))
        .map(|m| m.0)
        .collect();
    assert!(ka.windows(2).all(|w| w[1] - w[0] == secs(3)), "{ka:?}");
    // Withdrawal, and an unchanged re-announcement sends nothing.
    let n_sent = p.sent[0].len();
    p.s[0].set_advertised(p.now, vec![(net("10.1.0.0/16"), ce_route)]);
    assert!(p.s[0].next_deadline() > Some(p.now));
    assert_eq!(p.sent[0].len(), n_sent);
    p.s[0].set_advertised(p.now, vec![]);
    p.run_until(at(secs(61)));
    assert!(p.s[1].adj_rib_in().is_empty());
    assert!(matches!(
        p.events[1].last(),
        Some(BgpEvent::RouteWithdrawn { prefix, .. }) if *prefix == net("10.1.0.0/16")
    ));
}

#[test]
fn silent_link_drops_the_session_at_hold_expiry() {
    let mut p = established_pair(9);
    p.run_until(at(secs(20)));
    p.cut = true;
    p.run_until(at(secs(40)));
    let last = p.last_rx[0].unwrap();
    assert!(last <= at(secs(20)));
    let expiry = last + secs(9);
    let down: Vec<_> = p
        .transitions(0)
        .into_iter()
        .filter(|t| t.0 > at(secs(20)))
        .collect();
    // Nothing received for exactly the negotiated 9 s: down at that instant.
    assert_eq!(
        down[0],
        (
            expiry,
            "Established -> Idle (hold timer expired)".to_string()
        )
    );
    assert_eq!(
        p.sent[0].iter().find(|m| m.0 == expiry).map(|m| &m.1),
        Some(&Repr::Notification(NotificationRepr::new(4, 0)))
    );
    // Then the ConnectRetry wait, and Connect again (the link is still cut).
    assert_eq!(
        down[1],
        (
            expiry + secs(5),
            "Idle -> Connect (restart timer expired)".into()
        )
    );
}

#[test]
fn hold_timer_exact_without_a_peer() {
    let (ce, _) = Pair::configs(9);
    let mut s = BgpSession::new(ce);
    s.start(SimTime::ZERO);
    s.handle_transport_up(SimTime::ZERO);
    let mut open = OpenRepr::new(MSEE_AS, 180, Ipv4Addr::new(10, 255, 0, 1));
    s.handle_message(at(secs(1)), Repr::Open(open.clone()));
    s.handle_message(at(secs(1)), Repr::Keepalive);
    assert_eq!(s.state(), BgpState::Established);
    while s.poll_transmit(at(secs(1))).is_some() {}
    let expiry = at(secs(10));
    s.handle_timeout(SimTime(expiry.0 - 1));
    assert_eq!(s.state(), BgpState::Established);
    s.handle_timeout(expiry);
    assert_eq!(s.state(), BgpState::Idle);
    // Hold time 0 on either side: no keepalives and no hold timer at all.
    let (mut ce, _) = Pair::configs(0);
    ce.connect_retry = secs(5);
    let mut s = BgpSession::new(ce);
    s.start(SimTime::ZERO);
    s.handle_transport_up(SimTime::ZERO);
    open.hold_time = 0;
    s.handle_message(SimTime::ZERO, Repr::Open(open));
    s.handle_message(SimTime::ZERO, Repr::Keepalive);
    while s.poll_transmit(SimTime::ZERO).is_some() {}
    assert_eq!(s.timers(), (SimDuration::ZERO, SimDuration::ZERO));
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn max_prefix_limit_tears_down_and_restarts() {
    let (ce, mut msee) = Pair::configs(9);
    msee.max_prefixes = Some(4);
    let mut p = Pair::new(ce, msee);
    let nh = Ipv4Addr::new(192, 168, 0, 1);
    let five: Vec<_> = (1..=5)
        .map(|i| {
            (
                net(&format!("10.{i}.0.0/16")),
                PathAttributes::new(vec![], nh),
            )
        })
        .collect();
    p.s[0].set_advertised(SimTime::ZERO, five.clone());
    p.run_until(at(secs(1)));
    let d = p.delay;
    // Established at 2d, the UPDATE with five prefixes arrives at 3d.
    let t = p.transitions(1);
    assert_eq!(
        t[4],
        (
            at(d + d + d),
            "Established -> Idle (more than 4 prefixes)".to_string()
        )
    );
    let cease = NotificationRepr {
        code: 6,
        subcode: 1,
        data: vec![0, 1, 1, 0, 0, 0, 4],
    };
    assert_eq!(
        p.sent[1].last().unwrap().1,
        Repr::Notification(cease.clone())
    );
    let ce_t = p.transitions(0);
    assert_eq!(
        ce_t[4],
        (
            at(secs(0) + SimDuration(d.0 * 4)),
            "Established -> Idle (NOTIFICATION received: cease: maximum number of prefixes reached (6/1))"
                .to_string()
        )
    );
    // No route of the refused update is reported as learned.
    assert!(!p.events[1]
        .iter()
        .any(|e| matches!(e, BgpEvent::RouteLearned { .. })));
    // The MSEE waits its 60 s before it listens again; the CE retries every
    // 5 s meanwhile. Below the limit the session then stays up.
    p.s[0].set_advertised(p.now, five[..4].to_vec());
    p.run_until(at(secs(70)));
    let t = p.transitions(1);
    assert_eq!(
        t[5],
        (
            at(SimDuration(d.0 * 3) + secs(60)),
            "Idle -> Active (restart timer expired)".into()
        )
    );
    assert_eq!(p.s[1].state(), BgpState::Established);
    assert_eq!(p.s[1].adj_rib_in().len(), 4);
}

#[test]
fn bfd_down_drops_the_session_at_once() {
    let mut p = established_pair(180);
    p.s[0].set_advertised(
        p.now,
        vec![(
            net("10.1.0.0/16"),
            PathAttributes::new(vec![], Ipv4Addr::new(192, 168, 0, 1)),
        )],
    );
    p.run_until(at(secs(2)));
    assert_eq!(p.s[1].adj_rib_in().len(), 1);
    // The link dies silently; BFD on the MSEE notices and says so at 2.9 s.
    p.cut = true;
    let t = at(SimDuration::from_millis(2_900));
    p.s[1].bfd_down(t);
    assert_eq!(p.s[1].state(), BgpState::Idle);
    assert!(p.s[1].adj_rib_in().is_empty());
    assert_eq!(
        p.s[1].poll_event().unwrap().to_string(),
        "Established -> Idle (BFD down)"
    );
    assert_eq!(
        p.s[1].poll_transmit(t),
        Some(Repr::Notification(NotificationRepr::new(6, 10)))
    );
    // Without BFD the CE would wait for its 180 s hold time.
    p.run_until(at(secs(100)));
    assert_eq!(p.s[0].state(), BgpState::Established);
}

#[test]
fn reestablishes_after_connect_retry() {
    let mut p = established_pair(9);
    p.run_until(at(secs(10)));
    // A TCP reset reaches both ends at 10 s.
    let t0 = p.now;
    p.connected = false;
    p.s[0].handle_transport_down(t0);
    p.s[1].handle_transport_down(t0);
    p.run_until(at(secs(30)));
    let d = p.delay;
    let ce: Vec<_> = p.transitions(0).into_iter().filter(|t| t.0 >= t0).collect();
    assert_eq!(
        ce,
        [
            (t0, "Established -> Idle (transport down)".to_string()),
            (
                t0 + secs(5),
                "Idle -> Connect (restart timer expired)".into()
            ),
            (t0 + secs(5), "Connect -> OpenSent (transport up)".into()),
            (
                t0 + secs(5) + d,
                "OpenSent -> OpenConfirm (OPEN received)".into()
            ),
            (
                t0 + secs(5) + d + d,
                "OpenConfirm -> Established (KEEPALIVE received)".into()
            ),
        ]
    );
    // With no peer at all, Connect re-arms ConnectRetry every 5 s.
    let (ce, _) = Pair::configs(9);
    let mut s = BgpSession::new(ce);
    s.start(SimTime::ZERO);
    assert_eq!(s.next_deadline(), Some(at(secs(5))));
    s.handle_timeout(at(secs(5)));
    assert_eq!(
        (s.state(), s.next_deadline()),
        (BgpState::Connect, Some(at(secs(10))))
    );
}

#[test]
fn bad_opens_and_unexpected_messages_are_refused() {
    let cases = [
        (OpenRepr::new(65000, 180, Ipv4Addr::new(1, 1, 1, 1)), (2, 2)),
        (OpenRepr::new(MSEE_AS, 2, Ipv4Addr::new(1, 1, 1, 1)), (2, 6)),
        (OpenRepr::new(MSEE_AS, 180, Ipv4Addr::UNSPECIFIED), (2, 3)),
        (
            OpenRepr {
                capabilities: vec![],
                ..OpenRepr::new(MSEE_AS, 180, Ipv4Addr::new(1, 1, 1, 1))
            },
            (2, 7),
        ),
    ];
    for (open, (code, subcode)) in cases {
        let (ce, _) = Pair::configs(9);
        let mut s = BgpSession::new(ce);
        s.start(SimTime::ZERO);
        s.handle_transport_up(SimTime::ZERO);
        assert!(matches!(
            s.poll_transmit(SimTime::ZERO),
            Some(Repr::Open(_))
        ));
        s.handle_message(SimTime::ZERO, Repr::Open(open));
        assert_eq!(s.state(), BgpState::Idle);
        let Some(Repr::Notification(n)) = s.poll_transmit(SimTime::ZERO) else {
            panic!("NOTIFICATION expected")
        };
        assert_eq!((n.code, n.subcode), (code, subcode));
    }
    // An UPDATE before the session is Established is an FSM error (RFC 6608).
    let (ce, _) = Pair::configs(9);
    let mut s = BgpSession::new(ce);
    s.start(SimTime::ZERO);
    s.handle_transport_up(SimTime::ZERO);
    s.handle_message(
        SimTime::ZERO,
        Repr::Open(OpenRepr::new(MSEE_AS, 9, Ipv4Addr::new(1, 1, 1, 1))),
    );
    s.handle_message(SimTime::ZERO, Repr::Update(UpdateRepr::default()));
    assert_eq!(s.state(), BgpState::Idle);
    let last = s.tx.back().map(|m| m.1.clone());
    assert_eq!(last, Some(Repr::Notification(NotificationRepr::new(5, 2))));
}

#[test]
fn updates_replace_withdraw_and_reject_loops() {
    let mut p = established_pair(9);
    let nh = Ipv4Addr::new(10, 255, 0, 1);
    let mut s = p.s[0].clone();
    let now = p.now;
    let mut attrs = PathAttributes::new(vec![MSEE_AS], nh);
    attrs.local_pref = Some(500);
    let upd = |withdrawn: Vec<Ipv4Net>, attrs: Option<PathAttributes>, nlri: Vec<Ipv4Net>| {
        Repr::Update(UpdateRepr {
            withdrawn,
            attributes: attrs,
            nlri,
        })
    };
    s.handle_message(
        now,
        upd(vec![], Some(attrs.clone()), vec![net("10.0.0.0/8")]),
    );
    // LOCAL_PREF from an external peer is ignored.
    assert_eq!(s.adj_rib_in()[&net("10.0.0.0/8")].local_pref, None);
    // Our own AS in the path: a loop, which withdraws the earlier route.
    attrs.as_path = vec![MSEE_AS, CE_AS];
    s.handle_message(now, upd(vec![], Some(attrs), vec![net("10.0.0.0/8")]));
    assert!(s.adj_rib_in().is_empty());
    s.handle_message(now, upd(vec![net("10.0.0.0/8")], None, vec![]));
    let ev: Vec<String> = std::iter::from_fn(|| s.poll_event())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        ev,
        [
            "learned 10.0.0.0/8 via 10.255.0.1 path [12076]",
            "withdrawn 10.0.0.0/8"
        ]
    );
    // iBGP keeps LOCAL_PREF and does not prepend.
    p.s[0].cfg.peer_as = CE_AS;
    let out = p.s[0].export(&PathAttributes::new(vec![], nh));
    assert_eq!((out.as_path, out.local_pref), (vec![], Some(100)));
}

/// Runs what is due at `now` (timers, then transmissions) and checks that
/// nothing is left due: a deadline at or before `now` must have been
/// consumed, never re-armed at the same instant.
fn settle(s: &mut BgpSession, now: SimTime) {
    s.handle_timeout(now);
    while s.poll_transmit(now).is_some() {}
    while s.poll_event().is_some() {}
    let next = s.next_deadline();
    assert!(
        next.is_none_or(|d| d > now),
        "deadline {next:?} not after {now:?} in {:?}",
        s.state()
    );
}

/// A session brought to Established by hand at `now`, negotiating `hold` s.
fn established_alone(ce: BgpConfig, now: SimTime, hold: u16) -> BgpSession {
    let mut s = BgpSession::new(ce);
    s.start(now);
    s.handle_transport_up(now);
    let open = OpenRepr::new(MSEE_AS, hold, Ipv4Addr::new(10, 255, 0, 1));
    s.handle_message(now, Repr::Open(open));
    s.handle_message(now, Repr::Keepalive);
    assert_eq!(s.state(), BgpState::Established);
    s
}

/// Zero and sub-second times for ConnectRetry, the restart waits and the
/// keepalive run as [`MIN_TIMER`] (1 s, the granularity of BGP timers on
/// routers): every retry, restart and keepalive is then exactly 1 s after
/// the event that armed it, and no deadline repeats an instant.
#[test]
fn zero_and_tiny_timers_run_as_one_second() {
    for tiny in [
        SimDuration::ZERO,
        SimDuration(1),
        SimDuration::from_millis(1),
    ] {
        let (mut ce, _) = Pair::configs(9);
        ce.connect_retry = tiny;
        ce.max_prefix_restart = tiny;
        ce.keepalive = Some(tiny);
        // Connect with no transport: ConnectRetry fires every second.
        let mut s = BgpSession::new(ce.clone());
        s.start(SimTime::ZERO);
        let mut now = SimTime::ZERO;
        for k in 1..=10u64 {
            settle(&mut s, now);
            now = s.next_deadline().expect("ConnectRetry armed");
            assert_eq!(now, at(secs(k)), "retry {k} with {tiny:?}");
        }
        // Established: keepalives every second (the negotiated third, 3 s,
        // lowered to the configured interval, raised to the floor).
        let t0 = at(secs(20));
        let mut s = established_alone(ce.clone(), t0, 9);
        settle(&mut s, t0);
        assert_eq!(s.timers(), (secs(9), secs(1)));
        assert_eq!(s.next_deadline(), Some(t0 + secs(1)));
        // BFD down: Idle, then the restart 1 s later, then ConnectRetry.
        s.bfd_down(t0);
        settle(&mut s, t0);
        assert_eq!(s.state(), BgpState::Idle);
        assert_eq!(s.next_deadline(), Some(t0 + secs(1)));
        settle(&mut s, t0 + secs(1));
        assert_eq!(s.state(), BgpState::Connect);
        assert_eq!(s.next_deadline(), Some(t0 + secs(2)));
        // Hold expiry (no message from the peer for 9 s): the same.
        let mut s = established_alone(ce.clone(), t0, 9);
        settle(&mut s, t0);
        settle(&mut s, t0 + secs(9));
        assert_eq!(s.state(), BgpState::Idle);
        assert_eq!(s.next_deadline(), Some(t0 + secs(10)));
        // Transport loss in OpenSent: back to Active, ConnectRetry 1 s.
        let mut s = BgpSession::new(ce.clone());
        s.start(t0);
        s.handle_transport_up(t0);
        s.handle_transport_down(t0);
        settle(&mut s, t0);
        assert_eq!(s.next_deadline(), Some(t0 + secs(1)));
    }
}

/// A proposed hold time of 1 or 2 s is not allowed on the wire (RFC 4271
/// 4.2: zero or at least three seconds): the session proposes 3 s.
#[test]
fn a_hold_time_below_three_seconds_is_proposed_as_three() {
    for (hold, sent) in [
        (SimDuration::from_millis(1_500), 3),
        (secs(2), 3),
        (secs(0), 0),
    ] {
        let (mut ce, _) = Pair::configs(9);
        ce.hold_time = hold;
        let mut s = BgpSession::new(ce);
        s.start(SimTime::ZERO);
        s.handle_transport_up(SimTime::ZERO);
        let Some(Repr::Open(open)) = s.poll_transmit(SimTime::ZERO) else {
            panic!("OPEN first")
        };
        assert_eq!(open.hold_time, sent, "{hold:?}");
    }
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Input {
        Start,
        Stop,
        Up,
        Down,
        Bfd,
        Advance(u64),
        Advertise(u8),
        Msg(Repr),
    }

    fn arb_msg() -> impl Strategy<Value = Repr> {
        let nh = Ipv4Addr::new(10, 255, 0, 1);
        prop_oneof![
            Just(Repr::Keepalive),
            (prop_oneof![Just(MSEE_AS), Just(1u32)], 0u16..20).prop_map(|(asn, hold)| {
                Repr::Open(OpenRepr::new(asn, hold, Ipv4Addr::new(10, 255, 0, 1)))
            }),
            (0u8..7, 0u8..4).prop_map(|(c, s)| Repr::Notification(NotificationRepr::new(c, s))),
            (
                prop::collection::vec(0u8..16, 0..4),
                prop::collection::vec(0u8..16, 0..8),
                prop::bool::ANY
            )
                .prop_map(move |(w, n, looped)| {
                    let p = |i: &u8| net(&format!("10.{i}.0.0/16"));
                    let path = if looped {
                        vec![MSEE_AS, CE_AS]
                    } else {
                        vec![MSEE_AS]
                    };
                    Repr::Update(UpdateRepr {
                        withdrawn: w.iter().map(p).collect(),
                        attributes: (!n.is_empty()).then(|| PathAttributes::new(path, nh)),
                        nlri: n.iter().map(p).collect(),
                    })
                }),
        ]
    }

    fn arb_input() -> impl Strategy<Value = Input> {
        prop_oneof![
            1 => Just(Input::Start),
            1 => Just(Input::Stop),
            3 => Just(Input::Up),
            1 => Just(Input::Down),
            1 => Just(Input::Bfd),
            3 => (0u64..20_000).prop_map(Input::Advance),
            1 => (0u8..10).prop_map(Input::Advertise),
            6 => arb_msg().prop_map(Input::Msg),
        ]
    }

    proptest! {
        /// Any sequence of inputs: no panic, and the invariants hold.
        #[test]
        fn session_invariants(
            establish_first in prop::bool::ANY,
            random in prop::collection::vec(arb_input(), 0..60),
            timer_ns in prop_oneof![Just(0u64), Just(1), Just(5_000_000_000)],
        ) {
            // Half the runs start Established, so UPDATEs meet a live session.
            let open = OpenRepr::new(MSEE_AS, 9, Ipv4Addr::new(10, 255, 0, 1));
            let prefix = [
                Input::Start,
                Input::Up,
                Input::Msg(Repr::Open(open)),
                Input::Msg(Repr::Keepalive),
            ];
            let skip = if establish_first { 0 } else { prefix.len() };
            let inputs = prefix.into_iter().skip(skip).chain(random);
            let (mut ce, _) = Pair::configs(9);
            ce.max_prefixes = Some(5);
            ce.connect_retry = SimDuration(timer_ns);
            ce.keepalive = Some(SimDuration(timer_ns));
            let mut s = BgpSession::new(ce);
            let mut now = SimTime::ZERO;
            for input in inputs {
                match input {
                    Input::Start => s.start(now),
                    Input::Stop => s.stop(now),
                    Input::Up => s.handle_transport_up(now),
                    Input::Down => s.handle_transport_down(now),
                    Input::Bfd => s.bfd_down(now),
                    Input::Advance(ms) => {
                        now += SimDuration::from_millis(ms);
                        s.handle_timeout(now);
                    }
                    Input::Advertise(n) => {
                        let nh = Ipv4Addr::new(192, 168, 0, 1);
                        let routes = (0..n)
                            .map(|i| (net(&format!("172.16.{i}.0/24")), PathAttributes::new(vec![], nh)))
                            .collect();
                        s.set_advertised(now, routes);
                    }
                    Input::Msg(m) => s.handle_message(now, m),
                }
                while let Some(m) = s.poll_transmit(now) {
                    // What the session sends always encodes and parses back.
                    prop_assert_eq!(Repr::parse(&m.to_bytes()), Ok(m));
                }
                while s.poll_event().is_some() {}
                prop_assert!(s.adj_rib_in().len() <= 5);
                if s.state() != BgpState::Established {
                    prop_assert!(s.adj_rib_in().is_empty());
                }
                let connected = matches!(
                    s.state(),
                    BgpState::OpenSent | BgpState::OpenConfirm | BgpState::Established
                );
                prop_assert_eq!(s.hold_at.is_some() && !connected, false);
                if let Some(d) = s.next_deadline() {
                    prop_assert!(d >= now, "deadline {d:?} before {now:?} with nothing queued");
                }
                // Whatever is due at `now` is consumed by running it, never
                // re-armed at the same instant.
                s.handle_timeout(now);
                while s.poll_transmit(now).is_some() {}
                while s.poll_event().is_some() {}
                if let Some(d) = s.next_deadline() {
                    prop_assert!(d > now, "deadline {d:?} not after {now:?}");
                }
            }
        }
    }
}
