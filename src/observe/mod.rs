//! Observers: what watches the network from outside and what is made of it.
//! Metrics implement the model's `Tap`; reports and summaries read metrics.

pub mod capture;
pub mod esp_sa;
pub mod frames;
pub mod hdr;
pub mod html;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod summary;
pub mod tables;
pub mod timeseries;

pub use report::Report;

use crate::model::{DropCause, Packet, Place, Tap};
use crate::scenario::{Direction, PathId};
use crate::units::SimTime;

/// Everything that watches a run: metrics always, a capture when asked.
pub struct Observers {
    pub metrics: metrics::Metrics,
    pub capture: Option<capture::CaptureSink>,
    /// Whether timeline notes are kept (one logical process keeps them).
    pub notes: bool,
    pub timeseries: timeseries::TimeSeries,
}

macro_rules! fan_out {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        $self.metrics.$method($($arg),*);
        $self.timeseries.$method($($arg),*);
        if let Some(c) = &mut $self.capture {
            c.$method($($arg),*);
        }
    }};
}

impl Tap for Observers {
    #[inline]
    fn sent(&mut self, now: SimTime, pkt: &Packet) {
        fan_out!(self, sent(now, pkt))
    }
    #[inline]
    fn enqueued(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        fan_out!(self, enqueued(now, path, dir, pkt))
    }
    #[inline]
    fn link_arrived(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        fan_out!(self, link_arrived(now, path, dir, pkt))
    }
    #[inline]
    fn link_delivered(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        fan_out!(self, link_delivered(now, path, dir, pkt))
    }
    #[inline]
    fn gateway_passed(&mut self, now: SimTime, dir: Direction, pkt: &Packet) {
        fan_out!(self, gateway_passed(now, dir, pkt))
    }
    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        fan_out!(self, dropped(now, place, cause, pkt))
    }
    #[inline]
    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        fan_out!(self, delivered(now, pkt))
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
        if self.notes {
            self.metrics.note(now, text)
        }
    }
}
