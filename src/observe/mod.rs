//! Observers: what watches the network from outside and what is made of it.
//! Metrics implement the model's `Tap`; reports and summaries read metrics.

pub mod bins;
pub mod capture;
pub mod esp_sa;
pub mod frames;
pub mod hdr;
pub mod html;
mod latency;
pub mod log;
pub mod metrics;
pub mod pcapng;
pub mod plots;
pub mod report;
pub mod summary;
pub mod tables;
mod template;
pub mod timeseries;

pub use report::Report;

use crate::model::{DropCause, Packet, Place, Tap};
use crate::scenario::{Direction, PathId};
use crate::units::SimTime;

/// The books of a run: metrics and time series. Pure observers: they only
/// count what they are told, inline or replayed from a [`log::Log`].
pub struct Books {
    pub metrics: metrics::Metrics,
    pub timeseries: timeseries::TimeSeries,
    /// Whether timeline notes are kept (one logical process keeps them).
    pub notes: bool,
}

impl Books {
    pub fn new(cfg: &crate::scenario::Config, notes: bool) -> Self {
        Books {
            metrics: metrics::Metrics::new(cfg),
            timeseries: timeseries::TimeSeries::new(cfg),
            notes,
        }
    }

    /// Counts a flow that appears during the run (real frames from outside).
    pub fn add_flow(&mut self, f: &crate::scenario::FlowConfig) {
        self.metrics.add_flow(f);
        self.timeseries.add_flow(&f.name);
    }

    /// Ends the books at `end`, before the scenario's end (a live run
    /// stopped early).
    pub fn truncate(&mut self, end: SimTime) {
        self.metrics.truncate(end);
        self.timeseries.truncate(end.0);
    }
}

macro_rules! both {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        $self.metrics.$method($($arg),*);
        $self.timeseries.$method($($arg),*);
    }};
}

impl Tap for Books {
    #[inline(always)]
    fn sent(&mut self, now: SimTime, pkt: &Packet) {
        both!(self, sent(now, pkt))
    }
    #[inline(always)]
    fn enqueued(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        both!(self, enqueued(now, path, dir, pkt))
    }
    #[inline(always)]
    fn link_arrived(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        both!(self, link_arrived(now, path, dir, pkt))
    }
    #[inline(always)]
    fn link_delivered(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        both!(self, link_delivered(now, path, dir, pkt))
    }
    #[inline(always)]
    fn gateway_passed(&mut self, now: SimTime, dir: Direction, pkt: &Packet) {
        both!(self, gateway_passed(now, dir, pkt))
    }
    #[inline(always)]
    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        both!(self, dropped(now, place, cause, pkt))
    }
    #[inline(always)]
    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        both!(self, delivered(now, pkt))
    }
    #[inline(always)]
    fn link_passed(
        &mut self,
        now: SimTime,
        path: PathId,
        dir: Direction,
        gateway: bool,
        pkt: &Packet,
    ) {
        both!(self, link_passed(now, path, dir, gateway, pkt))
    }
    #[inline(always)]
    fn link_policed(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        both!(self, link_policed(now, path, dir, pkt))
    }
    fn path_changed(&mut self, now: SimTime, flow: crate::model::FlowId, from: PathId, to: PathId) {
        self.metrics.path_changed(now, flow, from, to)
    }
    fn failure(&mut self, now: SimTime, path: PathId, what: &str) {
        self.metrics.failure(now, path, what)
    }
    fn control_down(&mut self, now: SimTime, path: PathId) {
        self.metrics.control_down(now, path)
    }
    fn note(&mut self, now: SimTime, text: String) {
        if self.notes {
            self.metrics.note(now, text)
        }
    }
}

/// Everything that watches a run: the books, a capture when asked, and the
/// two things the model needs back from its packets: the bytes of real
/// frames and the TCP segments delivered.
pub struct Observers {
    pub books: Books,
    pub capture: Option<capture::CaptureSink>,
    /// Bytes of the packets that carry real frames (TCP segments).
    pub frames: crate::model::FrameStore,
    /// TCP segments delivered since the engine last looked, for their hosts.
    pub tcp_delivered: Vec<Packet>,
}

macro_rules! fan_out {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        $self.books.$method($($arg),*);
        if let Some(c) = &mut $self.capture {
            c.$method($($arg),*);
        }
    }};
}

/// Like `fan_out`, but a packet with real bytes reaches the capture as those
/// bytes, seen as `$shape` on the tap `$tap`.
macro_rules! fan_out_bytes {
    ($self:ident, $pkt:expr, $now:expr, $tap:expr, $shape:expr, $method:ident ( $($arg:expr),* )) => {{
        $self.books.$method($($arg),*);
        if let Some(c) = &mut $self.capture {
            if $pkt.frame == crate::model::NO_FRAME {
                c.$method($($arg),*);
            } else {
                let bytes = $self.frames.get($pkt.frame);
                let tap = $tap(&*c);
                c.raw($now, tap, $shape, $pkt, bytes);
            }
        }
    }};
}

impl Observers {
    /// Watches a flow that appears during the run (real frames from outside).
    pub fn add_flow(&mut self, f: &crate::scenario::FlowConfig) {
        self.books.add_flow(f);
        if let Some(c) = &mut self.capture {
            c.add_flow(f, true);
        }
    }

    /// Whether only the books hear about `pkt`: no capture, no real bytes.
    #[inline(always)]
    fn books_only(&self, pkt: &Packet) -> bool {
        self.capture.is_none() && pkt.frame == crate::model::NO_FRAME
    }

    #[cold]
    #[inline(never)]
    fn sent_captured(&mut self, now: SimTime, pkt: &Packet) {
        fan_out_bytes!(
            self,
            pkt,
            now,
            |c: &capture::CaptureSink| c.sent_tap(pkt),
            frames::Shape::Sent,
            sent(now, pkt)
        )
    }

    #[cold]
    #[inline(never)]
    fn dropped_captured(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        let shape = frames::Shape::Drop(place, cause);
        fan_out_bytes!(
            self,
            pkt,
            now,
            |_: &capture::CaptureSink| crate::scenario::CaptureTap::Drops,
            shape,
            dropped(now, place, cause, pkt)
        );
        if pkt.frame != crate::model::NO_FRAME {
            self.frames.free(pkt.frame);
        }
    }
}

impl Tap for Observers {
    // Without a capture, a synthetic packet only reaches the books: that
    // path is inlined into the engine's loop; the rest is out of line.
    #[inline(always)]
    fn sent(&mut self, now: SimTime, pkt: &Packet) {
        if self.capture.is_none() {
            self.books.sent(now, pkt)
        } else {
            self.sent_captured(now, pkt)
        }
    }
    #[inline(always)]
    fn enqueued(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        self.books.enqueued(now, path, dir, pkt);
        if let Some(c) = &mut self.capture {
            c.enqueued(now, path, dir, pkt);
        }
    }
    #[inline]
    fn link_arrived(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let shape = if path == PathId::Vpn {
            frames::Shape::Esp(dir)
        } else {
            frames::Shape::Circuit(path, dir)
        };
        fan_out_bytes!(
            self,
            pkt,
            now,
            |_: &capture::CaptureSink| capture::link_tap(path),
            shape,
            link_arrived(now, path, dir, pkt)
        )
    }
    #[inline]
    fn link_delivered(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        fan_out!(self, link_delivered(now, path, dir, pkt))
    }
    #[inline]
    fn gateway_passed(&mut self, now: SimTime, dir: Direction, pkt: &Packet) {
        fan_out!(self, gateway_passed(now, dir, pkt))
    }
    #[inline(always)]
    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        if self.books_only(pkt) {
            self.books.dropped(now, place, cause, pkt)
        } else {
            self.dropped_captured(now, place, cause, pkt)
        }
    }
    #[inline]
    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        fan_out_bytes!(
            self,
            pkt,
            now,
            |c: &capture::CaptureSink| c.delivered_tap(pkt),
            frames::Shape::Delivered,
            delivered(now, pkt)
        );
        if pkt.frame != crate::model::NO_FRAME {
            self.tcp_delivered.push(*pkt);
        }
    }
    #[inline(always)]
    fn link_passed(
        &mut self,
        now: SimTime,
        path: PathId,
        dir: Direction,
        gateway: bool,
        pkt: &Packet,
    ) {
        if self.books_only(pkt) {
            self.books.link_passed(now, path, dir, gateway, pkt);
        } else {
            // A capture, or a packet with real bytes: step by step.
            crate::model::network::link_passed_steps(self, now, path, dir, gateway, pkt);
        }
    }
    #[inline(always)]
    fn link_policed(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        if self.books_only(pkt) {
            self.books.link_policed(now, path, dir, pkt);
        } else {
            self.link_arrived(now, path, dir, pkt);
            self.dropped_captured(now, Place::Link(path, dir), DropCause::Policer, pkt);
        }
    }
    fn path_changed(&mut self, now: SimTime, flow: crate::model::FlowId, from: PathId, to: PathId) {
        self.books.path_changed(now, flow, from, to)
    }
    fn failure(&mut self, now: SimTime, path: PathId, what: &str) {
        self.books.failure(now, path, what)
    }
    fn control_down(&mut self, now: SimTime, path: PathId) {
        self.books.control_down(now, path)
    }
    fn control_frame(
        &mut self,
        now: SimTime,
        path: PathId,
        dir: Direction,
        frame: &[u8],
        esp_seq: Option<u32>,
    ) {
        if let Some(c) = &mut self.capture {
            c.control_frame(now, path, dir, frame, esp_seq)
        }
    }
    fn note(&mut self, now: SimTime, text: String) {
        self.books.note(now, text)
    }
}
