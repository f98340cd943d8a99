//! A BFD session in asynchronous mode (RFC 5880 6.2, 6.8), sans-IO.
//!
//! Inputs are [`BfdSession::handle_packet`] (a control packet that passed
//! the wire checks) and [`BfdSession::handle_timeout`]; outputs are
//! [`BfdSession::poll_transmit`] (packets to send now),
//! [`BfdSession::poll_event`] (state changes) and
//! [`BfdSession::next_deadline`] (when to call again). Calls take `now` and
//! must come in non-decreasing time order.
//!
//! Timing rules, all from RFC 5880:
//! - transmit interval = max(our advertised Desired Min TX, peer's Required
//!   Min RX), less a random 0-25 % per packet (6.8.7; 10-25 % with a detect
//!   multiplier of 1), drawn from the caller's seeded RNG so runs repeat;
//! - while not Up we advertise a Desired Min TX of at least 1 s (6.8.3);
//!   going Up lowers it, which starts a Poll sequence (P until an F arrives);
//! - detection time = peer's Detect Mult x max(our Required Min RX, peer's
//!   Desired Min TX) (6.8.4), restarted by every accepted packet; when it
//!   passes in Init or Up the session goes Down with diagnostic 1.
//!
//! Not modeled: demand mode, the echo function, authentication, and the
//! passive role (both ends transmit from the start).

use std::collections::VecDeque;

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::units::{SimDuration, SimTime};
use crate::wire::bfd::{Diagnostic, Repr, State};

/// The Desired Min TX floor while the session is not Up (RFC 5880 6.8.3).
pub const SLOW_TX: SimDuration = SimDuration::from_secs(1);

/// The shortest interval the session runs: the wire carries intervals in
/// whole microseconds, and a packet sent must schedule the next one
/// strictly later, so shorter configured intervals run as 1 us.
pub const MIN_INTERVAL: SimDuration = SimDuration::from_micros(1);

/// Local parameters of a session. The defaults are the MSEE's (fact sheet
/// 3.3): 300 ms both ways, multiplier 3. The session runs intervals below
/// [`MIN_INTERVAL`] as [`MIN_INTERVAL`] and a multiplier of 0 as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdConfig {
    /// bfd.DesiredMinTxInterval once Up; whole microseconds.
    pub desired_min_tx: SimDuration,
    /// bfd.RequiredMinRxInterval; whole microseconds, not zero.
    pub required_min_rx: SimDuration,
    /// bfd.DetectMult, at least 1.
    pub detect_mult: u8,
    /// bfd.LocalDiscr, unique per system and not zero.
    pub local_discriminator: u32,
}

impl Default for BfdConfig {
    fn default() -> Self {
        BfdConfig {
            desired_min_tx: SimDuration::from_millis(300),
            required_min_rx: SimDuration::from_millis(300),
            detect_mult: 3,
            local_discriminator: 1,
        }
    }
}

/// A change of the local session state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdEvent {
    pub at: SimTime,
    pub from: State,
    pub to: State,
    /// The local diagnostic after the change (why it went down).
    pub diag: Diagnostic,
}

#[derive(Debug, Clone)]
pub struct BfdSession {
    cfg: BfdConfig,
    rng: Xoshiro256PlusPlus,
    state: State,
    diag: Diagnostic,
    remote_state: State,
    remote_discriminator: u32,
    /// bfd.RemoteMinRxInterval; starts at 1 us as 6.8.1 requires.
    remote_min_rx: SimDuration,
    remote_desired_min_tx: SimDuration,
    remote_detect_mult: u8,
    /// We are sending P and wait for F.
    polling: bool,
    /// A packet with F is owed since this time.
    final_due: Option<SimTime>,
    next_tx: Option<SimTime>,
    last_tx: Option<SimTime>,
    detect_at: Option<SimTime>,
    events: VecDeque<BfdEvent>,
}

fn us(d: SimDuration) -> u32 {
    u32::try_from(d.as_nanos() / 1_000).unwrap_or(u32::MAX)
}

fn from_us(v: u32) -> SimDuration {
    SimDuration::from_micros(v as u64)
}

impl BfdSession {
    /// A session in state Down that sends its first packet at `now`.
    pub fn new(cfg: BfdConfig, rng: Xoshiro256PlusPlus, now: SimTime) -> Self {
        let cfg = BfdConfig {
            desired_min_tx: cfg.desired_min_tx.max(MIN_INTERVAL),
            required_min_rx: cfg.required_min_rx.max(MIN_INTERVAL),
            detect_mult: cfg.detect_mult.max(1),
            ..cfg
        };
        BfdSession {
            cfg,
            rng,
            state: State::Down,
            diag: Diagnostic::None,
            remote_state: State::Down,
            remote_discriminator: 0,
            remote_min_rx: SimDuration::from_micros(1),
            remote_desired_min_tx: SimDuration::ZERO,
            remote_detect_mult: 0,
            polling: false,
            final_due: None,
            next_tx: Some(now),
            last_tx: None,
            detect_at: None,
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// The Desired Min TX we advertise now (at least [`SLOW_TX`] unless Up).
    pub fn advertised_min_tx(&self) -> SimDuration {
        if self.state == State::Up {
            self.cfg.desired_min_tx
        } else {
            self.cfg.desired_min_tx.max(SLOW_TX)
        }
    }

    /// The negotiated interval between our packets, before jitter.
    pub fn tx_interval(&self) -> SimDuration {
        self.advertised_min_tx().max(self.remote_min_rx)
    }

    /// How long without a packet before the peer is declared down; `None`
    /// until a packet has been received.
    pub fn detection_time(&self) -> Option<SimDuration> {
        (self.remote_detect_mult > 0).then(|| {
            let base = self.cfg.required_min_rx.max(self.remote_desired_min_tx);
            SimDuration(base.as_nanos() * self.remote_detect_mult as u64)
        })
    }

    /// The interval to the next packet: `interval` less 0-25 % (10-25 %
    /// with a multiplier of 1, so that a single late packet is not fatal).
    fn jittered(&mut self, interval: SimDuration) -> SimDuration {
        let i = interval.as_nanos();
        let lo = i - i / 4;
        let hi = if self.cfg.detect_mult == 1 {
            i * 9 / 10
        } else {
            i
        };
        // `max(lo)`: for intervals of a few nanoseconds 90 % rounds below 75 %.
        SimDuration(self.rng.gen_range(lo..=hi.max(lo)))
    }

    fn set_state(&mut self, now: SimTime, to: State, diag: Diagnostic) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.diag = diag;
        self.events.push_back(BfdEvent {
            at: now,
            from,
            to,
            diag,
        });
        if to == State::Up {
            // Our advertised Desired Min TX just dropped below 1 s: tell the
            // peer with a Poll sequence, and use the faster rate at once.
            self.polling = self.cfg.desired_min_tx < SLOW_TX;
            if let (Some(last), Some(next)) = (self.last_tx, self.next_tx) {
                let sooner = last + self.jittered(self.tx_interval());
                self.next_tx = Some(next.min(sooner.max(now)));
            }
        } else {
            self.polling = false;
        }
    }

    /// Processes a received control packet (RFC 5880 6.8.6, after the
    /// packet-level checks `wire::bfd` has made).
    pub fn handle_packet(&mut self, now: SimTime, p: &Repr) {
        if p.your_discriminator != 0 && p.your_discriminator != self.cfg.local_discriminator {
            return;
        }
        if p.your_discriminator == 0 && !matches!(p.state, State::Down | State::AdminDown) {
            return;
        }
        self.remote_discriminator = p.my_discriminator;
        self.remote_state = p.state;
        self.remote_min_rx = from_us(p.required_min_rx_us);
        self.remote_desired_min_tx = from_us(p.desired_min_tx_us);
        self.remote_detect_mult = p.detect_mult;
        if p.final_ {
            self.polling = false;
        }
        self.detect_at = self.detection_time().map(|d| now + d);
        if p.poll {
            self.final_due = Some(now);
        }
        match (self.state, p.state) {
            (State::AdminDown, _) => {}
            (State::Down, State::AdminDown) => {}
            (_, State::AdminDown) => {
                self.set_state(now, State::Down, Diagnostic::NeighborSignaledSessionDown)
            }
            (State::Down, State::Down) => self.set_state(now, State::Init, Diagnostic::None),
            (State::Down, State::Init) => self.set_state(now, State::Up, Diagnostic::None),
            (State::Init, State::Init | State::Up) => {
                self.set_state(now, State::Up, Diagnostic::None)
            }
            (State::Up, State::Down) => {
                self.set_state(now, State::Down, Diagnostic::NeighborSignaledSessionDown)
            }
            _ => {}
        }
    }

    /// Expires the detection timer if it is due.
    pub fn handle_timeout(&mut self, now: SimTime) {
        if self.detect_at.is_some_and(|t| t <= now) {
            self.detect_at = None;
            // 6.8.1: forget the peer's discriminator after a silent Detection Time.
            self.remote_discriminator = 0;
            if matches!(self.state, State::Init | State::Up) {
                self.set_state(now, State::Down, Diagnostic::ControlDetectionTimeExpired);
            }
        }
    }

    fn packet(&self, poll: bool, final_: bool) -> Repr {
        Repr {
            diag: self.diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.cfg.detect_mult,
            my_discriminator: self.cfg.local_discriminator,
            your_discriminator: self.remote_discriminator,
            desired_min_tx_us: us(self.advertised_min_tx()),
            required_min_rx_us: us(self.cfg.required_min_rx),
            required_min_echo_rx_us: 0,
        }
    }

    /// The next packet to send at `now`, if any: an owed Final answer at
    /// once, else the periodic packet when its time has come.
    pub fn poll_transmit(&mut self, now: SimTime) -> Option<Repr> {
        if self.final_due.take().is_some() {
            // 6.5: the answer to a Poll carries F and never P.
            return Some(self.packet(false, true));
        }
        if self.next_tx.is_none_or(|t| t > now) {
            return None;
        }
        let interval = self.jittered(self.tx_interval());
        self.next_tx = Some(now + interval);
        // 6.8.7: a peer with Required Min RX 0 wants no periodic packets; the
        // timer runs on, to send again once the peer asks.
        if self.remote_min_rx == SimDuration::ZERO {
            return None;
        }
        self.last_tx = Some(now);
        Some(self.packet(self.polling, false))
    }

    /// When the session next needs [`BfdSession::handle_timeout`] or
    /// [`BfdSession::poll_transmit`].
    pub fn next_deadline(&self) -> Option<SimTime> {
        [self.final_due, self.next_tx, self.detect_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_event(&mut self) -> Option<BfdEvent> {
        self.events.pop_front()
    }

    /// Takes the session administratively down (it keeps sending AdminDown).
    pub fn admin_down(&mut self, now: SimTime) {
        self.set_state(now, State::AdminDown, Diagnostic::AdministrativelyDown);
    }

    /// Leaves AdminDown for Down, to come up again with the peer.
    pub fn admin_up(&mut self, now: SimTime) {
        if self.state == State::AdminDown {
            self.set_state(now, State::Down, Diagnostic::None);
        }
    }
}

#[cfg(test)]
#[path = "bfd_tests.rs"]
mod tests;
