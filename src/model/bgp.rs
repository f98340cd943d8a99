//! A BGP session (RFC 4271 section 8), sans-IO.
//!
//! The caller owns the transport and the clock. Inputs:
//! [`BgpSession::start`]/[`BgpSession::stop`], transport up/down, received
//! messages ([`BgpSession::handle_message`]), timer expiry
//! ([`BgpSession::handle_timeout`]), BFD ([`BgpSession::bfd_down`]) and the
//! routes to advertise ([`BgpSession::set_advertised`]). Outputs: messages
//! to send ([`BgpSession::poll_transmit`]), events
//! ([`BgpSession::poll_event`]) and the next deadline. Calls take `now`, in
//! non-decreasing order.
//!
//! Transport contract: while [`BgpSession::wants_transport`] is true
//! (Connect, Active) the caller tries to bring a TCP connection up and then
//! calls [`BgpSession::handle_transport_up`]. When the session goes Idle it
//! may leave a final NOTIFICATION in [`BgpSession::poll_transmit`]; the
//! caller sends it, then closes the connection.
//!
//! Simplifications of RFC 4271 section 8, chosen because the emulator has one
//! link per session and a reliable transport it models itself:
//! - one connection per session, made by the caller: no collision detection
//!   (6.8), no DelayOpen, no separate TCP events (a connect failure simply
//!   leaves the session in Connect/Active, where ConnectRetry re-arms);
//! - messages received without a transport (Idle, Connect, Active) are ignored;
//! - after any failure the session waits one ConnectRetry time in Idle before
//!   restarting (the RFC's IdleHoldTimer, with no oscillation damping); a
//!   max-prefix teardown waits [`BgpConfig::max_prefix_restart`] instead, and
//!   if the peer still sends too many prefixes it is torn down again: this is
//!   how the model renders "reset once the prefix count goes below the
//!   limit" (fact sheet 7.3);
//! - the peer must advertise 4-octet AS support (we always send 4-octet
//!   AS_PATHs, see `wire::bgp`), otherwise the OPEN is refused (2/7);
//! - leaving Established clears the Adj-RIB-In without one event per route:
//!   the state change itself means "everything learned is withdrawn";
//! - no route refresh, graceful restart, MinRouteAdvertisementInterval or
//!   attribute-based policy beyond the eBGP rules of 5.1 (prepend our AS,
//!   no LOCAL_PREF to external peers, AS-loop rejection).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::units::{SimDuration, SimTime, NS_PER_SEC};
use crate::wire::bgp::{
    error_code as ec, NotificationRepr, OpenRepr, PathAttributes, Repr, UpdateRepr,
};

/// The hold time used between sending our OPEN and receiving the peer's
/// (RFC 4271 8.2.2 suggests 4 minutes).
pub const OPEN_HOLD: SimDuration = SimDuration::from_secs(240);

/// The shortest ConnectRetry, restart wait and keepalive interval the
/// session runs: routers count BGP timers in whole seconds, and a timer
/// that fires must be re-armed strictly later, so zero or sub-second values
/// run as 1 s.
pub const MIN_TIMER: SimDuration = SimDuration::from_secs(1);

/// Configuration of one session. Times are whole seconds on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    pub local_as: u32,
    pub peer_as: u32,
    pub router_id: Ipv4Addr,
    /// Hold time we propose, in whole seconds (rounded down): 0 (none) or at
    /// least 3 s, 1 or 2 s being proposed as 3 s (RFC 4271 4.2). Default
    /// 180 s, the MSEE's (fact sheet 3.1).
    pub hold_time: SimDuration,
    /// Keepalive interval if lower than a third of the negotiated hold time;
    /// at least [`MIN_TIMER`].
    pub keepalive: Option<SimDuration>,
    /// ConnectRetry time: retry interval while connecting and the wait in
    /// Idle after a failure. Default 5 s (the RFC suggests 120 s; routers
    /// facing a directly connected peer retry much sooner); at least
    /// [`MIN_TIMER`].
    pub connect_retry: SimDuration,
    /// Most prefixes accepted from the peer; `None` for no limit. Default
    /// 4,000 (private peering, fact sheet 7.1; 10,000 with Premium).
    pub max_prefixes: Option<usize>,
    /// Wait in Idle after a max-prefix teardown. Default 60 s; at least
    /// [`MIN_TIMER`].
    pub max_prefix_restart: SimDuration,
    /// Wait for the peer to connect (Active) instead of connecting (Connect).
    pub passive: bool,
}

impl BgpConfig {
    pub fn new(local_as: u32, peer_as: u32, router_id: Ipv4Addr) -> Self {
        BgpConfig {
            local_as,
            peer_as,
            router_id,
            hold_time: SimDuration::from_secs(180),
            keepalive: None,
            connect_retry: SimDuration::from_secs(5),
            max_prefixes: Some(4_000),
            max_prefix_restart: SimDuration::from_secs(60),
            passive: false,
        }
    }

    fn ebgp(&self) -> bool {
        self.local_as != self.peer_as
    }

    fn connect_retry(&self) -> SimDuration {
        self.connect_retry.max(MIN_TIMER)
    }

    /// The hold time we propose, in whole seconds: 0 or at least 3.
    fn proposed_hold(&self) -> u16 {
        match whole_secs(self.hold_time) {
            1 | 2 => 3,
            s => s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BgpState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Why the state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Start,
    Stop,
    TransportUp,
    TransportDown,
    RestartTimerExpired,
    OpenReceived,
    KeepaliveReceived,
    HoldTimerExpired,
    NotificationReceived(NotificationRepr),
    /// We sent this NOTIFICATION about the peer's OPEN or an unexpected message.
    ProtocolError(NotificationRepr),
    MaxPrefixes {
        limit: usize,
    },
    BfdDown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Start => write!(f, "start"),
            Reason::Stop => write!(f, "stop"),
            Reason::TransportUp => write!(f, "transport up"),
            Reason::TransportDown => write!(f, "transport down"),
            Reason::RestartTimerExpired => write!(f, "restart timer expired"),
            Reason::OpenReceived => write!(f, "OPEN received"),
            Reason::KeepaliveReceived => write!(f, "KEEPALIVE received"),
            Reason::HoldTimerExpired => write!(f, "hold timer expired"),
            Reason::NotificationReceived(n) => write!(f, "NOTIFICATION received: {n}"),
            Reason::ProtocolError(n) => write!(f, "NOTIFICATION sent: {n}"),
            Reason::MaxPrefixes { limit } => write!(f, "more than {limit} prefixes"),
            Reason::BfdDown => write!(f, "BFD down"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BgpEvent {
    /// Leaving Established withdraws every route learned in the session.
    StateChanged {
        at: SimTime,
        from: BgpState,
        to: BgpState,
        reason: Reason,
    },
    /// A new or replaced route in the Adj-RIB-In.
    RouteLearned {
        at: SimTime,
        prefix: Ipv4Net,
        attrs: PathAttributes,
    },
    RouteWithdrawn {
        at: SimTime,
        prefix: Ipv4Net,
    },
}

impl fmt::Display for BgpEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BgpEvent::StateChanged {
                from, to, reason, ..
            } => write!(f, "{from:?} -> {to:?} ({reason})"),
            BgpEvent::RouteLearned { prefix, attrs, .. } => {
                write!(
                    f,
                    "learned {prefix} via {} path {:?}",
                    attrs.next_hop, attrs.as_path
                )
            }
            BgpEvent::RouteWithdrawn { prefix, .. } => write!(f, "withdrawn {prefix}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BgpSession {
    cfg: BgpConfig,
    state: BgpState,
    /// Automatic restarts are on (between `start` and `stop`).
    started: bool,
    /// Negotiated hold time and keepalive interval (zero: none).
    hold: SimDuration,
    keepalive: SimDuration,
    hold_at: Option<SimTime>,
    keepalive_at: Option<SimTime>,
    /// ConnectRetry in Connect/Active, the restart wait in Idle.
    retry_at: Option<SimTime>,
    adj_rib_in: BTreeMap<Ipv4Net, PathAttributes>,
    /// What the caller wants advertised, as given.
    advertised: BTreeMap<Ipv4Net, PathAttributes>,
    /// What the peer has been sent in this session, as sent.
    adj_rib_out: BTreeMap<Ipv4Net, PathAttributes>,
    /// Messages to send, each with the time it was queued.
    tx: VecDeque<(SimTime, Repr)>,
    events: VecDeque<BgpEvent>,
}

fn whole_secs(d: SimDuration) -> u16 {
    u16::try_from(d.as_nanos() / NS_PER_SEC).unwrap_or(u16::MAX)
}

impl BgpSession {
    /// A session in Idle; nothing happens before [`BgpSession::start`].
    pub fn new(cfg: BgpConfig) -> Self {
        BgpSession {
            cfg,
            state: BgpState::Idle,
            started: false,
            hold: SimDuration::ZERO,
            keepalive: SimDuration::ZERO,
            hold_at: None,
            keepalive_at: None,
            retry_at: None,
            adj_rib_in: BTreeMap::new(),
            advertised: BTreeMap::new(),
            adj_rib_out: BTreeMap::new(),
            tx: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> BgpState {
        self.state
    }

    pub fn config(&self) -> &BgpConfig {
        &self.cfg
    }

    /// Negotiated hold time and keepalive interval (valid once OpenConfirm).
    pub fn timers(&self) -> (SimDuration, SimDuration) {
        (self.hold, self.keepalive)
    }

    /// Routes learned from the peer and currently held.
    pub fn adj_rib_in(&self) -> &BTreeMap<Ipv4Net, PathAttributes> {
        &self.adj_rib_in
    }

    /// The caller should bring a transport connection up.
    pub fn wants_transport(&self) -> bool {
        matches!(self.state, BgpState::Connect | BgpState::Active)
    }

    fn set_state(&mut self, now: SimTime, to: BgpState, reason: Reason) {
        let from = std::mem::replace(&mut self.state, to);
        self.events.push_back(BgpEvent::StateChanged {
            at: now,
            from,
            to,
            reason,
        });
    }

    fn connecting_state(&self) -> BgpState {
        if self.cfg.passive {
            BgpState::Active
        } else {
            BgpState::Connect
        }
    }

    /// Starts the session and enables automatic restarts (ManualStart).
    pub fn start(&mut self, now: SimTime) {
        self.started = true;
        if self.state == BgpState::Idle {
            self.retry_at = Some(now + self.cfg.connect_retry());
            self.set_state(now, self.connecting_state(), Reason::Start);
        }
    }

    /// Stops the session for good (ManualStop), with Cease/Administrative
    /// Shutdown if connected.
    pub fn stop(&mut self, now: SimTime) {
        self.started = false;
        let n = NotificationRepr::new(ec::CEASE, ec::CEASE_ADMIN_SHUTDOWN);
        self.go_idle(now, Reason::Stop, Some(n), SimDuration::ZERO);
    }

    /// Drops the session at once: BFD saw the path die. The Cease/BFD Down
    /// NOTIFICATION (RFC 9384) is queued, though it will likely be lost.
    pub fn bfd_down(&mut self, now: SimTime) {
        if matches!(
            self.state,
            BgpState::OpenSent | BgpState::OpenConfirm | BgpState::Established
        ) {
            let n = NotificationRepr::new(ec::CEASE, ec::CEASE_BFD_DOWN);
            self.go_idle(now, Reason::BfdDown, Some(n), self.cfg.connect_retry());
        }
    }

    /// Tears the session down to Idle, leaving at most `notification` to send.
    fn go_idle(
        &mut self,
        now: SimTime,
        reason: Reason,
        notification: Option<NotificationRepr>,
        restart_after: SimDuration,
    ) {
        self.tx.clear();
        let connected = matches!(
            self.state,
            BgpState::OpenSent | BgpState::OpenConfirm | BgpState::Established
        );
        if let (true, Some(n)) = (connected, notification) {
            self.tx.push_back((now, Repr::Notification(n)));
        }
        self.hold_at = None;
        self.keepalive_at = None;
        self.retry_at = self.started.then(|| now + restart_after.max(MIN_TIMER));
        self.adj_rib_in.clear();
        self.adj_rib_out.clear();
        if self.state != BgpState::Idle {
            self.set_state(now, BgpState::Idle, reason);
        }
    }

    /// The transport connection is up: send OPEN (8.2.2, Connect/Active).
    pub fn handle_transport_up(&mut self, now: SimTime) {
        if !self.wants_transport() {
            return;
        }
        self.retry_at = None;
        let open = OpenRepr::new(
            self.cfg.local_as,
            self.cfg.proposed_hold(),
            self.cfg.router_id,
        );
        self.tx.push_back((now, Repr::Open(open)));
        self.hold_at = Some(now + OPEN_HOLD);
        self.set_state(now, BgpState::OpenSent, Reason::TransportUp);
    }

    /// The transport connection closed or failed.
    pub fn handle_transport_down(&mut self, now: SimTime) {
        match self.state {
            BgpState::OpenSent => {
                // 8.2.2: back to listening, with ConnectRetry running.
                self.tx.clear();
                self.hold_at = None;
                self.retry_at = Some(now + self.cfg.connect_retry());
                self.set_state(now, BgpState::Active, Reason::TransportDown);
            }
            BgpState::OpenConfirm | BgpState::Established => {
                self.go_idle(now, Reason::TransportDown, None, self.cfg.connect_retry())
            }
            _ => {}
        }
    }

    /// Handles the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: SimTime) {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = Some(now + self.cfg.connect_retry());
            if self.state == BgpState::Idle {
                self.set_state(now, self.connecting_state(), Reason::RestartTimerExpired);
            }
        }
        if self.hold_at.is_some_and(|t| t <= now) {
            let n = NotificationRepr::new(ec::HOLD_TIMER_EXPIRED, 0);
            self.go_idle(
                now,
                Reason::HoldTimerExpired,
                Some(n),
                self.cfg.connect_retry(),
            );
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            // Re-armed when the KEEPALIVE leaves, in poll_transmit.
            self.keepalive_at = None;
            self.tx.push_back((now, Repr::Keepalive));
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self, now: SimTime) -> Option<Repr> {
        let (_, msg) = self.tx.pop_front()?;
        let after_open = matches!(self.state, BgpState::OpenConfirm | BgpState::Established);
        if after_open
            && matches!(msg, Repr::Keepalive | Repr::Update(_))
            && self.keepalive > SimDuration::ZERO
        {
            // 8.2.2: sending a KEEPALIVE or UPDATE restarts the KeepaliveTimer.
            self.keepalive_at = Some(now + self.keepalive);
        }
        Some(msg)
    }

    pub fn poll_event(&mut self) -> Option<BgpEvent> {
        self.events.pop_front()
    }

    /// When the session next needs [`BgpSession::handle_timeout`] or
    /// [`BgpSession::poll_transmit`] (a queued message is due when queued).
    pub fn next_deadline(&self) -> Option<SimTime> {
        let queued = self.tx.front().map(|m| m.0);
        [queued, self.retry_at, self.hold_at, self.keepalive_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Replaces the routes to advertise; sent at once when Established, on
    /// reaching Established otherwise. Attributes are as the caller would
    /// originate them: towards an external peer the session prepends its AS
    /// and drops LOCAL_PREF (RFC 4271 5.1.2, 5.1.5).
    pub fn set_advertised(&mut self, now: SimTime, routes: Vec<(Ipv4Net, PathAttributes)>) {
        self.advertised = routes.into_iter().collect();
        if self.state == BgpState::Established {
            self.sync_adj_rib_out(now);
        }
    }

    fn export(&self, attrs: &PathAttributes) -> PathAttributes {
        let mut a = attrs.clone();
        if self.cfg.ebgp() {
            a.as_path.insert(0, self.cfg.local_as);
            a.local_pref = None;
        } else {
            a.local_pref = Some(a.local_pref.unwrap_or(100));
        }
        a
    }

    /// Queues the UPDATEs that bring the peer from `adj_rib_out` to `advertised`.
    fn sync_adj_rib_out(&mut self, now: SimTime) {
        let withdrawn: Vec<Ipv4Net> = self
            .adj_rib_out
            .keys()
            .filter(|p| !self.advertised.contains_key(p))
            .copied()
            .collect();
        // Prefixes grouped by identical attributes, so each group is one UPDATE run.
        let mut groups: Vec<(PathAttributes, Vec<Ipv4Net>)> = Vec::new();
        for (prefix, attrs) in &self.advertised {
            let out = self.export(attrs);
            if self.adj_rib_out.get(prefix) == Some(&out) {
                continue;
            }
            match groups.iter_mut().find(|g| g.0 == out) {
                Some(g) => g.1.push(*prefix),
                None => groups.push((out, vec![*prefix])),
            }
        }
        for p in &withdrawn {
            self.adj_rib_out.remove(p);
        }
        for u in UpdateRepr::pack(&withdrawn, None, &[]) {
            self.tx.push_back((now, Repr::Update(u)));
        }
        for (attrs, prefixes) in groups {
            for u in UpdateRepr::pack(&[], Some(&attrs), &prefixes) {
                self.tx.push_back((now, Repr::Update(u)));
            }
            for p in prefixes {
                self.adj_rib_out.insert(p, attrs.clone());
            }
        }
    }

    /// Handles a message received on the transport.
    pub fn handle_message(&mut self, now: SimTime, msg: Repr) {
        use BgpState::*;
        let fsm_error = |subcode| Reason::ProtocolError(NotificationRepr::new(ec::FSM, subcode));
        match (self.state, msg) {
            (Idle | Connect | Active, _) => {}
            (_, Repr::Notification(n)) => self.go_idle(
                now,
                Reason::NotificationReceived(n),
                None,
                self.cfg.connect_retry(),
            ),
            (OpenSent, Repr::Open(open)) => self.handle_open(now, &open),
            (OpenConfirm, Repr::Keepalive) => {
                self.restart_hold(now);
                self.set_state(now, Established, Reason::KeepaliveReceived);
                self.sync_adj_rib_out(now);
            }
            (Established, Repr::Keepalive) => self.restart_hold(now),
            (Established, Repr::Update(u)) => {
                self.restart_hold(now);
                self.handle_update(now, u);
            }
            // RFC 6608 subcodes: unexpected message in OpenSent (1),
            // OpenConfirm (2), Established (3).
            (state, _) => {
                let subcode = match state {
                    OpenSent => 1,
                    OpenConfirm => 2,
                    _ => 3,
                };
                let reason = fsm_error(subcode);
                let n = NotificationRepr::new(ec::FSM, subcode);
                self.go_idle(now, reason, Some(n), self.cfg.connect_retry());
            }
        }
    }

    fn restart_hold(&mut self, now: SimTime) {
        if self.hold > SimDuration::ZERO {
            self.hold_at = Some(now + self.hold);
        }
    }

    /// Checks the peer's OPEN (RFC 4271 6.2) and negotiates the timers.
    fn handle_open(&mut self, now: SimTime, open: &OpenRepr) {
        let refuse = |subcode| Some(NotificationRepr::new(ec::OPEN, subcode));
        let error = if open.my_as != self.cfg.peer_as {
            refuse(ec::OPEN_BAD_PEER_AS)
        } else if matches!(open.hold_time, 1 | 2) {
            refuse(ec::OPEN_UNACCEPTABLE_HOLD_TIME)
        } else if open.bgp_id.is_unspecified()
            || (!self.cfg.ebgp() && open.bgp_id == self.cfg.router_id)
        {
            refuse(ec::OPEN_BAD_BGP_ID)
        } else if !open.four_octet_as() {
            // RFC 5492 Unsupported Capability, naming the capability we need.
            Some(NotificationRepr {
                code: ec::OPEN,
                subcode: 7,
                data: vec![65, 4, 0, 0, 0, 0],
            })
        } else {
            None
        };
        if let Some(n) = error {
            let reason = Reason::ProtocolError(n.clone());
            self.go_idle(now, reason, Some(n), self.cfg.connect_retry());
            return;
        }
        let secs = self.cfg.proposed_hold().min(open.hold_time) as u64;
        self.hold = SimDuration::from_secs(secs);
        // A third of the hold time, or the configured interval if lower
        // (whole seconds, as routers count them, so at least 1 s; 0 when
        // there is no hold time).
        let third = SimDuration::from_secs(secs / 3);
        self.keepalive = self
            .cfg
            .keepalive
            .map_or(third, |k| k.max(MIN_TIMER).min(third));
        self.hold_at = None;
        self.restart_hold(now);
        self.tx.push_back((now, Repr::Keepalive));
        self.set_state(now, BgpState::OpenConfirm, Reason::OpenReceived);
    }

    /// Applies an UPDATE to the Adj-RIB-In (RFC 4271 9), then the prefix limit.
    fn handle_update(&mut self, now: SimTime, u: UpdateRepr) {
        let mut events = Vec::new();
        for prefix in &u.withdrawn {
            if self.adj_rib_in.remove(prefix).is_some() {
                events.push(BgpEvent::RouteWithdrawn {
                    at: now,
                    prefix: *prefix,
                });
            }
        }
        if let Some(mut attrs) = u.attributes {
            if self.cfg.ebgp() {
                // 5.1.5: LOCAL_PREF from an external peer is ignored.
                attrs.local_pref = None;
            }
            // 9.1.2: a path through our own AS is a loop, unusable: it
            // implicitly withdraws what the peer had announced before.
            let looped = attrs.as_path.contains(&self.cfg.local_as);
            for prefix in u.nlri {
                if looped {
                    if self.adj_rib_in.remove(&prefix).is_some() {
                        events.push(BgpEvent::RouteWithdrawn { at: now, prefix });
                    }
                } else {
                    self.adj_rib_in.insert(prefix, attrs.clone());
                    events.push(BgpEvent::RouteLearned {
                        at: now,
                        prefix,
                        attrs: attrs.clone(),
                    });
                }
            }
        }
        if let Some(limit) = self.cfg.max_prefixes.filter(|&l| self.adj_rib_in.len() > l) {
            // RFC 4486: the data is AFI, SAFI and the limit.
            let mut data = vec![0, 1, 1];
            data.extend_from_slice(&u32::try_from(limit).unwrap_or(u32::MAX).to_be_bytes());
            let n = NotificationRepr {
                code: ec::CEASE,
                subcode: ec::CEASE_MAX_PREFIXES,
                data,
            };
            let wait = self.cfg.max_prefix_restart;
            self.go_idle(now, Reason::MaxPrefixes { limit }, Some(n), wait);
            return;
        }
        self.events.extend(events);
    }
}

#[cfg(test)]
#[path = "bgp_tests.rs"]
mod tests;
