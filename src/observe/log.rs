//! The log between the two halves of a direction: what the sending half did,
//! as records, for the receiving half on another thread.
//!
//! The sending half turns what it sees into [`Item`]s: the [`Tap`] calls it
//! made ([`Seen`]), the packets it put on links with their arrival times, and
//! marks that say which event of the model the following records belong to.
//! It hands them over in chunks through a channel; the receiving half reads
//! them in order, replays the calls into its [`Books`] and puts the packets
//! in its links, so its books receive exactly the calls, in exactly the
//! order, that one process would have made, whatever thread reads them and
//! however the records were chunked.
//!
//! Pushing never blocks (the channel is unbounded): the writer looks at
//! [`Log::backlog`] between steps and waits there when its reader is too far
//! behind, which bounds memory without a thread ever waiting inside the
//! model.

use crossbeam_channel::{Receiver, Sender};

use super::Books;
use crate::model::{DropCause, FlowId, Packet, Place, Tap};
use crate::scenario::{Direction, PathId};
use crate::units::SimTime;

/// Records per chunk: 48 KB, so a chunk stays in a core's L2 cache while
/// it is written and read.
pub const CHUNK_RECORDS: usize = 1024;

/// One [`Tap`] call (or time-series queue sample), with its arguments.
#[derive(Debug, Clone)]
pub enum Seen {
    Sent(SimTime, Packet),
    Enqueued(SimTime, PathId, Direction, Packet),
    LinkArrived(SimTime, PathId, Direction, Packet),
    LinkDelivered(SimTime, PathId, Direction, Packet),
    GatewayPassed(SimTime, Direction, Packet),
    Dropped(SimTime, Place, DropCause, Packet),
    Delivered(SimTime, Packet),
    LinkPassed(SimTime, PathId, Direction, bool, Packet),
    PathChanged(SimTime, FlowId, PathId, PathId),
    Failure(SimTime, PathId, String),
    ControlDown(SimTime, PathId),
    Note(SimTime, String),
    /// Bytes waiting in a link's queue at an interval boundary.
    QueueSample(SimTime, PathId, Direction, u64),
}

impl Seen {
    /// Makes the call this record stands for on `books`.
    #[inline]
    pub fn replay(self, books: &mut Books) {
        match self {
            Seen::Sent(t, p) => books.sent(t, &p),
            Seen::Enqueued(t, path, dir, p) => books.enqueued(t, path, dir, &p),
            Seen::LinkArrived(t, path, dir, p) => books.link_arrived(t, path, dir, &p),
            Seen::LinkDelivered(t, path, dir, p) => books.link_delivered(t, path, dir, &p),
            Seen::GatewayPassed(t, dir, p) => books.gateway_passed(t, dir, &p),
            Seen::Dropped(t, place, cause, p) => books.dropped(t, place, cause, &p),
            Seen::Delivered(t, p) => books.delivered(t, &p),
            Seen::LinkPassed(t, path, dir, gw, p) => books.link_passed(t, path, dir, gw, &p),
            Seen::PathChanged(t, flow, from, to) => books.path_changed(t, flow, from, to),
            Seen::Failure(t, path, what) => books.failure(t, path, &what),
            Seen::ControlDown(t, path) => books.control_down(t, path),
            Seen::Note(t, text) => books.note(t, text),
            Seen::QueueSample(t, path, dir, bytes) => {
                books.timeseries.queue_sample(t, path, dir, bytes)
            }
        }
    }
}

/// An event key of the engine, `(high, low)` 64 bits.
pub type EventKey = [u64; 2];

/// What the sending half of a direction tells the receiving half. Small (48
/// bytes): the common record is [`Item::Queued`]; the rare one is boxed.
#[derive(Debug, Clone)]
pub enum Item {
    /// The records up to the next mark belong to the model's event with
    /// this key (the engine's packed `(time, class, index)`, in two halves
    /// so that a record needs no 16-byte alignment).
    Mark(EventKey),
    /// A call the sending half made on its tap (other than `sent`,
    /// `gateway_passed` and `enqueued`, whose counts it keeps itself).
    Seen(Box<Seen>),
    /// A packet put on a link (see [`Queued`]).
    Queued(Queued),
}

/// A source sent a packet (in its event at `time`, source `index`), which
/// was put on link `link` (the network's link index) and reaches its far
/// end at `arrive`. Its own mark: it belongs to that event.
///
/// Only what the receiving half reads crosses: the packet's flow, send time
/// and lengths. Its sequence number, hash and ESP sequence number stay
/// behind: the far end of a link and the books never read them (a capture
/// does, and a captured run does not split; the test that runs every
/// scenario at 1, 2 and 8 threads would see any difference in the books).
#[derive(Debug, Clone, Copy)]
pub struct Queued {
    pub time: SimTime,
    pub index: u32,
    pub flow: FlowId,
    pub ip_len: u32,
    pub wire_len: u32,
    pub arrive: SimTime,
    pub link: u8,
}

impl Queued {
    /// The packet as it was put on the link.
    pub fn packet(&self) -> Packet {
        Packet {
            wire_len: self.wire_len,
            ..Packet::new(self.flow, 0, self.time, self.ip_len)
        }
    }
}

/// The writing end.
#[derive(Debug)]
pub struct Log {
    chunk: Vec<Option<Item>>,
    /// `None` once closed.
    tx: Option<Sender<Vec<Option<Item>>>>,
    /// Emptied chunks coming back from the reader, to be filled again.
    spare: Receiver<Vec<Option<Item>>>,
}

/// The reading end: reads records one by one, a chunk at a time.
#[derive(Debug)]
pub struct LogReader {
    rx: Receiver<Vec<Option<Item>>>,
    spare: Sender<Vec<Option<Item>>>,
    /// The chunk being read: records before `pos` have been taken.
    chunk: Vec<Option<Item>>,
    pos: usize,
}

/// A log and its reader.
pub fn log() -> (Log, LogReader) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (spare_tx, spare_rx) = crossbeam_channel::unbounded();
    (
        Log {
            chunk: Vec::with_capacity(CHUNK_RECORDS),
            tx: Some(tx),
            spare: spare_rx,
        },
        LogReader {
            rx,
            spare: spare_tx,
            chunk: Vec::new(),
            pos: 0,
        },
    )
}

impl Log {
    #[inline]
    pub fn push(&mut self, item: Item) {
        self.chunk.push(Some(item));
        if self.chunk.len() >= CHUNK_RECORDS {
            self.flush();
        }
    }

    /// Hands the records so far to the reader.
    pub fn flush(&mut self) {
        let Some(tx) = &self.tx else { return };
        if self.chunk.is_empty() {
            return;
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_RECORDS));
        let full = std::mem::replace(&mut self.chunk, next);
        // The reader outlives the writer; if it is gone, the run is being
        // torn down and the records have nowhere to go.
        let _ = tx.send(full);
    }

    /// Hands over the last records; the reader then sees the end.
    pub fn close(&mut self) {
        self.flush();
        self.tx = None;
    }

    /// Chunks handed over and not yet read.
    pub fn backlog(&self) -> usize {
        self.tx.as_ref().map_or(0, |tx| tx.len())
    }
}

/// What [`LogReader::peek`] found.
#[derive(Debug)]
pub enum Peek<'a> {
    Item(&'a Item),
    /// Nothing to read yet.
    Empty,
    /// The writer is gone and everything it wrote has been read.
    Closed,
}

impl LogReader {
    /// The next record, without taking it.
    #[inline]
    pub fn peek(&mut self) -> Peek<'_> {
        if self.pos == self.chunk.len() {
            match self.rx.try_recv() {
                Ok(next) => {
                    // Give the emptied buffer back for the writer to fill.
                    let mut done = std::mem::replace(&mut self.chunk, next);
                    self.pos = 0;
                    done.clear();
                    if done.capacity() > 0 {
                        let _ = self.spare.send(done);
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => return Peek::Empty,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return Peek::Closed,
            }
        }
        match self.chunk.get(self.pos) {
            Some(Some(item)) => Peek::Item(item),
            _ => Peek::Empty,
        }
    }

    /// Passes over the record [`LogReader::peek`] showed (one without
    /// anything to drop, read in place).
    #[inline]
    pub fn skip(&mut self) {
        self.pos += 1;
    }

    /// Takes the record [`LogReader::peek`] showed.
    #[inline]
    pub fn take(&mut self) -> Option<Item> {
        let item = self.chunk.get_mut(self.pos)?.take();
        self.pos += 1;
        item
    }
}
