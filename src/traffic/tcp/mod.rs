//! Real TCP flows: two smoltcp hosts, driven in virtual time, whose frames are
//! real Ethernet frames for the modeled network to carry.
//!
//! A [`TcpFlow`] is a sans-IO state machine like the UDP sources: the caller
//! owns time and the network. It asks [`TcpFlow::poll_transmit`] for the
//! frames the hosts emit at `now`, hands frames the network delivers to
//! [`TcpFlow::handle_frame`], and calls again at [`TcpFlow::next_deadline`].
//! Nothing reads a clock; the only randomness is smoltcp's, seeded from the
//! configuration.
//!
//! # Time resolution
//!
//! smoltcp keeps time in whole microseconds. A flow shows smoltcp the virtual
//! time rounded *up* to the next microsecond, and reports smoltcp's timers
//! back as exact multiples of a microsecond. So smoltcp never sees a time
//! earlier than the true one, a timer fires at most 999 ns late and never
//! early, and everything is a pure function of the call sequence. (smoltcp's
//! RTT estimator and RTO are in milliseconds, with a 1 s minimum RTO.)
//!
//! # Frames
//!
//! Ethernet II, untagged, no FCS, padded to 60 bytes; IPv4 or IPv6 and TCP
//! with valid checksums. Each host sends to its configured next-hop MAC:
//! address resolution is answered inside the host's virtual device (proxy
//! ARP and NDP) and never reaches the network. Why: smoltcp has no public way
//! to pre-fill its neighbor cache, whose entries expire after 60 s anyway.

mod app;
mod config;
mod device;
mod endpoint;
mod metrics;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use smoltcp::socket::tcp::State;
use smoltcp::time::Instant;

pub use config::{
    flow_config, CongestionControl, Side, TcpConfigError, TcpFlowConfig, TcpFlowKind, TcpHost,
    MAX_BUFFER,
};
pub use metrics::{TcpMetrics, STALL_THRESHOLD};

use app::App;
use endpoint::{Common, Endpoint};
use metrics::{parse_segment, SendTracker, StallDetector};

use crate::model::network::stream_seed;
use crate::units::SimTime;

/// Rounds of application work and interface polls per step before giving up
/// on reaching quiet; far above what any step needs (about three).
const MAX_ROUNDS: usize = 64;

/// smoltcp's time for virtual time `t`: rounded up to the microsecond.
fn to_instant(t: SimTime) -> Instant {
    Instant::from_micros(t.as_nanos().div_ceil(1_000) as i64)
}

/// A TCP connection between a client host and a server host, with the
/// applications that drive it (see [`TcpFlowKind`]).
pub struct TcpFlow {
    cfg: TcpFlowConfig,
    /// `[client, server]`.
    ends: [Endpoint; 2],
    app: App,
    connected: bool,
    /// Latest time seen; calls with an earlier time are treated as this one.
    now: SimTime,
    /// Frames emitted and not yet handed to the caller, in emission order.
    out: VecDeque<(Side, Vec<u8>)>,
    deadline: Option<SimTime>,
    senders: [SendTracker; 2],
    stalls: StallDetector,
    m: TcpMetrics,
}

impl TcpFlow {
    /// Builds both hosts at `now`; the server listens at once, the client
    /// connects at `cfg.start`.
    pub fn new(cfg: TcpFlowConfig, now: SimTime) -> Result<TcpFlow, TcpConfigError> {
        cfg.validate()?;
        let rr = matches!(cfg.kind, TcpFlowKind::RequestResponse { .. });
        let common = Common {
            frame_mtu: cfg.frame_mtu(),
            buffer: cfg.buffer as usize,
            congestion: cfg.congestion,
            nagle: !rr,
        };
        let t = to_instant(now);
        let client = Endpoint::new(&cfg.client, &common, stream_seed(cfg.seed, "tcp-client"), t);
        let mut server =
            Endpoint::new(&cfg.server, &common, stream_seed(cfg.seed, "tcp-server"), t);
        server.listen(cfg.server.ip, cfg.server.port);
        Ok(TcpFlow {
            app: App::new(cfg.kind, cfg.stop),
            deadline: Some(cfg.start.max(now)),
            cfg,
            ends: [client, server],
            connected: false,
            now,
            out: VecDeque::new(),
            senders: Default::default(),
            stalls: StallDetector::default(),
            m: TcpMetrics::new(),
        })
    }

    pub fn config(&self) -> &TcpFlowConfig {
        &self.cfg
    }

    /// The next frame a host emits at `now` and which host emitted it, or
    /// `None` when neither has anything more to send now. Call until `None`.
    /// `now` must not decrease between calls.
    pub fn poll_transmit(&mut self, now: SimTime) -> Option<(Side, Vec<u8>)> {
        if self.out.is_empty() {
            self.step(now);
        }
        let f = self.out.pop_front();
        if self.out.is_empty() {
            self.update_deadline();
        }
        f
    }

    /// A frame the network delivers to host `to` at `now`, addressed as the
    /// last router sends it: destination the host's MAC (frames for other
    /// MACs are ignored, as by a NIC), source normally the host's `gw_mac`.
    /// The host processes it at once; any frames it answers with come from
    /// [`poll_transmit`](Self::poll_transmit). An earlier `now` than already
    /// seen is taken as the latest time seen. Malformed frames, or frames
    /// for another address, are dropped by smoltcp.
    pub fn handle_frame(&mut self, now: SimTime, to: Side, frame: &[u8]) {
        let now = now.max(self.now);
        let host_mac = match to {
            Side::Client => self.cfg.client.mac,
            Side::Server => self.cfg.server.mac,
        };
        let for_host = frame.get(0..6) == Some(&host_mac[..]);
        if let Some(ack) = parse_segment(frame)
            .and_then(|s| s.ack)
            .filter(|_| for_host)
        {
            if let Some(rtt) = self.senders[to.index()].on_ack(ack, now) {
                self.m
                    .rtt_ns
                    .record(rtt.as_nanos())
                    .expect("auto-resizing histogram");
            }
        }
        self.ends[to.index()].dev.rx.push_back(frame.to_vec());
        self.step(now);
    }

    /// When to call [`poll_transmit`](Self::poll_transmit) next: now if
    /// frames are waiting, else the earliest of smoltcp's timers (rounded as
    /// the module documentation says) and the applications' start and stop.
    /// `None` once both connections are closed: the flow is over.
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.deadline
    }

    /// Both hosts have closed (or the connection was reset).
    pub fn is_finished(&self) -> bool {
        let c = self.ends[0].socket_ref().state();
        let s = self.ends[1].socket_ref().state();
        self.connected
            && matches!(c, State::Closed | State::TimeWait)
            && matches!(s, State::Closed | State::TimeWait | State::Listen)
    }

    /// The measurements so far, with an ongoing stall counted up to `now`.
    pub fn metrics(&self, now: SimTime) -> TcpMetrics {
        let mut m = self.m.clone();
        m.stalls = self.stalls.snapshot(now.max(self.now));
        m.completion_time = m.completed.map(|t| t.saturating_since(self.cfg.start));
        if let (Some(from), Some(to)) = (m.established, m.last_progress) {
            let ns = to.saturating_since(from).as_nanos();
            if ns > 0 {
                let bits = m.bytes_received() as u128 * 8 * 1_000_000_000;
                m.goodput_bps = Some((bits / ns as u128) as u64);
            }
        }
        m
    }

    /// Runs applications and both interfaces at `now` until quiet, queueing
    /// the frames they emit.
    fn step(&mut self, now: SimTime) {
        let now = now.max(self.now);
        self.now = now;
        if now < self.cfg.start {
            self.update_deadline();
            return;
        }
        let t = to_instant(now);
        if !self.connected {
            let (c, s) = (&self.cfg.client, &self.cfg.server);
            self.ends[0].connect((c.ip, c.port), (s.ip, s.port));
            self.connected = true;
            self.stalls.outstanding(now);
        }
        for _ in 0..MAX_ROUNDS {
            let read_before = self.app.read_total();
            let [client, server] = &mut self.ends;
            let progress = self.app.run(
                now,
                client.sockets.get_mut(client.handle),
                server.sockets.get_mut(server.handle),
                &mut self.m,
            );
            if self.app.read_total() > read_before {
                self.m.last_progress = Some(now);
                self.stalls.progress(now, self.app.outstanding());
            } else if self.app.outstanding() {
                // E.g. the next transaction started after an idle moment.
                self.stalls.outstanding(now);
            }
            let changed = client.poll(t) | server.poll(t);
            self.collect(now);
            if self.m.established.is_none() && self.ends[0].socket_ref().may_send() {
                self.m.established = Some(now);
            }
            if !progress && !changed {
                break;
            }
        }
        if !self.app.outstanding() {
            self.stalls.progress(now, false);
        }
        self.update_deadline();
    }

    /// Moves the frames both devices sent into `out`, watching them.
    fn collect(&mut self, now: SimTime) {
        for side in [Side::Client, Side::Server] {
            let i = side.index();
            while let Some(frame) = self.ends[i].dev.tx.pop_front() {
                self.m.frames_sent[i] += 1;
                if let Some(seg) = parse_segment(&frame) {
                    if self.senders[i].on_send(&seg, now) {
                        self.m.retransmitted_segments[i] += 1;
                    }
                }
                self.out.push_back((side, frame));
            }
        }
    }

    fn update_deadline(&mut self) {
        let now = self.now;
        if !self.out.is_empty() {
            self.deadline = Some(now);
            return;
        }
        if !self.connected {
            self.deadline = Some(self.cfg.start.max(now));
            return;
        }
        if self.is_finished() {
            self.deadline = None;
            return;
        }
        let t = to_instant(now);
        let mut d = (!self.app.closed && self.cfg.stop > now).then_some(self.cfg.stop);
        for end in &mut self.ends {
            if let Some(at) = end.poll_at(t) {
                // smoltcp asking again for a time it has already been polled
                // at means there was nothing to do then: the next chance is
                // its next microsecond.
                let us = at.total_micros().max(t.total_micros() + 1) as u64;
                d = Some(d.map_or(SimTime(us * 1_000), |d| d.min(SimTime(us * 1_000))));
            }
        }
        self.deadline = d;
    }
}
