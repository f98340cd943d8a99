//! pcapng captures of what the network's taps see.
//!
//! One file (`capture.pcapng`) holds one interface per tap, named as the
//! scenario's `[capture] taps` are (`onprem-ce`, `primary-msee`, ...), with
//! nanosecond timestamps (`if_tsresol` = 9) counted from [`EPOCH_UNIX_SECS`]
//! plus virtual time; or, with `split = true`, one file per tap.
//!
//! The engine's side only records which packet a tap saw, when and where, in
//! windows of virtual time; a writer thread merges the windows of every
//! logical process, builds the frames ([`FrameBuilder`]) straight into one
//! buffer per file as Enhanced Packet Blocks ([`pcapng`]) and writes each
//! window's buffer with one call. Emptied windows go back to the engine, so a
//! steady capture allocates nothing per packet on either side. Files are
//! written under a temporary name and renamed when complete.

use super::pcapng;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::DataLink;

use super::frames::{FrameBuilder, Shape};
use crate::model::{DropCause, Packet, Place, Tap};
use crate::scenario::{CaptureTap, Config, Direction, PathId, Snaplen};
use crate::units::SimTime;
use crate::OutputError;

/// Virtual time zero in captures: 2026-01-01T00:00:00Z.
pub const EPOCH_UNIX_SECS: u64 = 1_767_225_600;

/// The device name used in drop comments and report keys (`policer@primary-msee`).
pub fn drop_place(place: Place, cause: DropCause) -> String {
    match place {
        Place::Link(PathId::Vpn, dir) => match cause {
            DropCause::Loss => "internet".into(),
            DropCause::VpnGateway => "vpn-gateway".into(),
            DropCause::LinkDown => "vpn-link".into(),
            _ if dir == Direction::In => "ce".into(),
            _ => "vpn-gateway".into(),
        },
        Place::Link(p, Direction::In) => match cause {
            DropCause::Policer => format!("{}-msee", p.as_str()),
            DropCause::LinkDown => format!("{}-link", p.as_str()),
            _ => "ce".into(),
        },
        Place::Link(p, Direction::Out) => match cause {
            DropCause::LinkDown => format!("{}-link", p.as_str()),
            _ => format!("{}-msee", p.as_str()),
        },
        Place::Gateway(_) => "er-gateway".into(),
        Place::Router(Direction::In) => "ce".into(),
        Place::Router(Direction::Out) => "azure".into(),
    }
}

/// The tap of a link, captured where frames arrive.
pub fn link_tap(path: PathId) -> CaptureTap {
    match path {
        PathId::Primary => CaptureTap::PrimaryMsee,
        PathId::Secondary => CaptureTap::SecondaryMsee,
        PathId::Vpn => CaptureTap::VpnInternet,
    }
}

/// One packet seen by one tap: a data packet (rebuilt by the writer), or a
/// frame with its own bytes, kept in its window's `raw` at `(offset, len)`.
#[derive(Clone, Copy)]
struct Seen {
    tap: CaptureTap,
    time: SimTime,
    shape: Shape,
    pkt: Packet,
    raw: Option<(u32, u32)>,
}

/// What one logical process's taps saw during a window of virtual time, in
/// time order.
#[derive(Default)]
struct Window {
    seen: Vec<Seen>,
    /// Bytes of the frames that carry their own.
    raw: Vec<u8>,
}

impl Window {
    fn raw(&self, (offset, len): (u32, u32)) -> &[u8] {
        &self.raw[offset as usize..(offset + len) as usize]
    }
}

/// What a finished capture wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CaptureSummary {
    /// Files written, relative to the output directory.
    pub files: Vec<String>,
    /// Frames written per tap.
    pub frames: BTreeMap<String, u64>,
}

/// The engine's side of a capture: one per logical process. Records what its
/// taps see during a window of virtual time and hands the window to the writer.
pub struct CaptureSink {
    enabled: [bool; 6],
    /// Per flow: captured at all, and its direction.
    flows: Vec<bool>,
    directions: Vec<Direction>,
    window: Option<(SimTime, SimTime)>,
    batch: Window,
    tx: Option<Sender<Window>>,
    /// Windows the writer has emptied, to fill again.
    spare: Receiver<Window>,
    frames: [u64; 6],
}

/// The writer thread and the files it writes.
pub struct CaptureWriter {
    enabled: [bool; 6],
    writer: JoinHandle<Result<(), OutputError>>,
    files: Vec<(PathBuf, PathBuf)>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn idb(tap: CaptureTap, snaplen: u32) -> InterfaceDescriptionBlock<'static> {
    let description = match tap {
        CaptureTap::OnpremCe => "on-premises hosts <-> customer edge router",
        CaptureTap::PrimaryMsee => "CE <-> MSEE primary (802.1Q/QinQ), at the receiving end",
        CaptureTap::SecondaryMsee => "CE <-> MSEE secondary (802.1Q/QinQ), at the receiving end",
        CaptureTap::VpnInternet => "IPsec ESP tunnel on the Internet, at the receiving end",
        CaptureTap::AzureGw => "VNet gateways <-> VMs",
        CaptureTap::Drops => "every dropped frame; the packet comment says why and where",
    };
    InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen,
        options: vec![
            InterfaceDescriptionOption::IfName(tap.name().into()),
            InterfaceDescriptionOption::IfDescription(description.into()),
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    }
}

/// A capture file being written: its buffer holds the current window's blocks.
struct Output {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// Bytes written to the file, and how many of them the disk was asked
    /// to write back.
    written: u64,
    flushed: u64,
}

/// Bytes written before the disk is asked to write them back.
const WRITEBACK_CHUNK: u64 = 8 << 20;

impl Output {
    /// Writes the buffer's blocks to the file and empties it. Every
    /// [`WRITEBACK_CHUNK`] bytes, asks the kernel to start writing them to
    /// the disk, so that the disk works while the run goes on and the final
    /// `fsync` waits only for the tail (without the hint, Linux writes a new
    /// file back only after 30 s or under memory pressure).
    fn write_window(&mut self) -> Result<(), OutputError> {
        self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.written - self.flushed >= WRITEBACK_CHUNK {
            start_writeback(&self.file, self.flushed, self.written - self.flushed);
            self.flushed = self.written;
        }
        Ok(())
    }
}

/// Starts writing `len` bytes of `file` from `offset` back to the disk
/// without waiting; a hint only, so failures are ignored (`fsync` reports
/// real errors).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and
    // sync_file_range reads no memory of this process.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

/// The writer thread: takes one window from each stream in turn, merges them
/// in `(time, stream)` order (each stream's window is already in time order,
/// so the result is the same whatever thread produced each stream), builds
/// each frame into its file's buffer and writes the buffers.
fn write_all(
    streams: Vec<Receiver<Window>>,
    spare: Sender<Window>,
    mut builder: FrameBuilder,
    mut outputs: Vec<Output>,
    iface: [(usize, u32); 6],
) -> Result<(), OutputError> {
    let mut comments: BTreeMap<(Place, DropCause), String> = BTreeMap::new();
    let mut windows: Vec<Window> = Vec::with_capacity(streams.len());
    let mut next = vec![0usize; streams.len()];
    'windows: loop {
        for rx in &streams {
            match rx.recv() {
                Ok(w) => windows.push(w),
                Err(_) => break 'windows,
            }
        }
        next.fill(0);
        loop {
            // k-way merge; k is the number of logical processes (1 or 2).
            let mut pick: Option<(SimTime, usize)> = None;
            for (i, w) in windows.iter().enumerate() {
                if let Some(s) = w.seen.get(next[i]) {
                    if pick.is_none_or(|(t, _)| s.time < t) {
                        pick = Some((s.time, i));
                    }
                }
            }
            let Some((_, i)) = pick else { break };
            let w = &windows[i];
            let s = w.seen[next[i]];
            next[i] += 1;
            let (f, id) = iface[s.tap as usize];
            let buf = &mut outputs[f].buf;
            let start = pcapng::begin(buf, id, EPOCH_UNIX_SECS * 1_000_000_000 + s.time.0);
            let original_len = match s.raw {
                Some(r) => builder.control(w.raw(r), s.shape, s.pkt.esp_seq, buf),
                None => builder.append(&s.pkt, s.shape, buf),
            };
            let comment = match s.shape {
                Shape::Drop(place, cause) => Some(
                    comments
                        .entry((place, cause))
                        .or_insert_with(|| {
                            format!("{}@{}", cause.as_str(), drop_place(place, cause))
                        })
                        .as_str(),
                ),
                _ => None,
            };
            pcapng::end(buf, start, original_len, comment);
        }
        for o in &mut outputs {
            o.write_window()?;
        }
        for mut w in windows.drain(..) {
            w.seen.clear();
            w.raw.clear();
            // A full spare queue only means the engine has enough.
            let _ = spare.try_send(w);
        }
    }
    for o in outputs {
        o.file.sync_all().map_err(io_err(&o.path))?;
    }
    Ok(())
}

/// Windows a stream may run ahead of the writer before its sink waits.
const WINDOWS_AHEAD: usize = 8;

impl CaptureWriter {
    /// Opens the capture file(s) in `dir` (which must exist), starts the writer
    /// thread and returns one sink per stream (logical process). `None` when
    /// the scenario captures nothing.
    pub fn start(
        cfg: &Config,
        dir: &Path,
        streams: usize,
    ) -> Result<Option<(CaptureWriter, Vec<CaptureSink>)>, OutputError> {
        let c = &cfg.capture;
        if !c.enabled || c.taps.is_empty() {
            return Ok(None);
        }
        let mut enabled = [false; 6];
        for t in &c.taps {
            enabled[*t as usize] = true;
        }
        let snaplen = match c.snaplen {
            Snaplen::Bytes(b) => b,
            Snaplen::Auto => 0,
        };
        let groups: Vec<(String, Vec<CaptureTap>)> = if c.split {
            c.taps
                .iter()
                .map(|t| (format!("{}.pcapng", t.name()), vec![*t]))
                .collect()
        } else {
            vec![("capture.pcapng".to_string(), c.taps.clone())]
        };
        // Interface ids: position within the tap's file.
        let mut iface = [(0usize, 0u32); 6];
        let mut files = Vec::new();
        let mut outputs = Vec::new();
        for (file_index, (name, taps)) in groups.into_iter().enumerate() {
            let tmp = dir.join(format!("{name}.partial"));
            let file = File::create(&tmp).map_err(io_err(&tmp))?;
            for (i, t) in taps.iter().enumerate() {
                iface[*t as usize] = (file_index, i as u32);
            }
            let buf = pcapng::file_header(taps.iter().map(|t| idb(*t, snaplen)).collect());
            outputs.push(Output {
                file,
                path: tmp.clone(),
                buf,
                written: 0,
                flushed: 0,
            });
            files.push((tmp, dir.join(name)));
        }
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..streams).map(|_| bounded(WINDOWS_AHEAD)).unzip();
        let (spare_tx, spare_rx) = bounded(streams * (WINDOWS_AHEAD + 2));
        let builder = FrameBuilder::new(cfg);
        let writer = std::thread::Builder::new()
            .name("eremu-capture".into())
            .spawn(move || write_all(rxs, spare_tx, builder, outputs, iface))
            .map_err(io_err(dir))?;
        let sinks = txs
            .into_iter()
            .map(|tx| CaptureSink {
                enabled,
                flows: (0..cfg.flows.len())
                    .map(|i| c.flows.as_ref().is_none_or(|f| f.contains(&i)))
                    .collect(),
                directions: cfg.flows.iter().map(|f| f.direction).collect(),
                window: c.window,
                batch: Window::default(),
                tx: Some(tx),
                spare: spare_rx.clone(),
                frames: [0; 6],
            })
            .collect();
        Ok(Some((
            CaptureWriter {
                enabled,
                writer,
                files,
            },
            sinks,
        )))
    }

    /// Waits for the writer (every sink must have been closed), renames the
    /// files into place and returns what was written. On error, the partial
    /// files are removed. `frames` are the sinks' counts, summed.
    pub fn finish(self, frames: [u64; 6]) -> Result<CaptureSummary, OutputError> {
        let result = self.writer.join().unwrap_or_else(|_| {
            Err(OutputError::Io {
                path: self.files[0].0.clone(),
                source: std::io::Error::other("capture writer panicked"),
            })
        });
        if let Err(e) = result {
            for (tmp, _) in &self.files {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(e);
        }
        let mut files = vec![];
        for (tmp, path) in &self.files {
            std::fs::rename(tmp, path).map_err(io_err(path))?;
            files.push(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        let frames = CaptureTap::ALL
            .iter()
            .filter(|t| self.enabled[**t as usize])
            .map(|t| (t.name().to_string(), frames[*t as usize]))
            .collect();
        Ok(CaptureSummary { files, frames })
    }
}

impl CaptureSink {
    /// Where a packet is sent from: its flow's source side, or the other
    /// for a packet against the flow (a TCP server's segment).
    pub fn sent_tap(&self, pkt: &Packet) -> CaptureTap {
        match (self.directions[pkt.flow as usize], pkt.reverse) {
            (Direction::In, false) | (Direction::Out, true) => CaptureTap::OnpremCe,
            _ => CaptureTap::AzureGw,
        }
    }

    /// Watches a flow that appears during the run (real frames from
    /// outside): captured unless the scenario names the flows to capture.
    pub fn add_flow(&mut self, f: &crate::scenario::FlowConfig, wanted: bool) {
        self.flows.push(wanted);
        self.directions.push(f.direction);
    }

    /// Where a packet is delivered: the side it is sent to.
    pub fn delivered_tap(&self, pkt: &Packet) -> CaptureTap {
        if self.sent_tap(pkt) == CaptureTap::OnpremCe {
            CaptureTap::AzureGw
        } else {
            CaptureTap::OnpremCe
        }
    }

    /// A packet that carries its own bytes, seen by `tap` as `shape`.
    pub fn raw(
        &mut self,
        time: SimTime,
        tap: CaptureTap,
        shape: Shape,
        pkt: &Packet,
        bytes: &[u8],
    ) {
        self.record(time, tap, shape, pkt, Some(bytes));
    }

    #[inline]
    fn see(&mut self, time: SimTime, tap: CaptureTap, shape: Shape, pkt: &Packet) {
        self.record(time, tap, shape, pkt, None);
    }

    /// Keeps an observation if the tap, the flow and the window want it.
    #[inline]
    fn record(
        &mut self,
        time: SimTime,
        tap: CaptureTap,
        shape: Shape,
        pkt: &Packet,
        raw: Option<&[u8]>,
    ) {
        if !self.enabled[tap as usize]
            || !self.flows[pkt.flow as usize]
            || self.window.is_some_and(|(a, b)| time < a || time >= b)
        {
            return;
        }
        self.push(time, tap, shape, *pkt, raw);
    }

    fn push(
        &mut self,
        time: SimTime,
        tap: CaptureTap,
        shape: Shape,
        pkt: Packet,
        raw: Option<&[u8]>,
    ) {
        self.frames[tap as usize] += 1;
        let raw = raw.map(|bytes| {
            let offset = self.batch.raw.len() as u32;
            self.batch.raw.extend_from_slice(bytes);
            (offset, bytes.len() as u32)
        });
        self.batch.seen.push(Seen {
            tap,
            time,
            shape,
            pkt,
            raw,
        });
    }

    /// Ends a window of virtual time: hands what was seen to the writer and
    /// starts the next in a window the writer has emptied, if one is back.
    pub fn end_window(&mut self) {
        let next = self.spare.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        if let Some(tx) = &self.tx {
            if tx.send(batch).is_err() {
                // The writer stopped on an error; `finish` reports it.
                self.tx = None;
            }
        }
    }

    /// Ends the stream; returns the frames seen per tap.
    pub fn close(mut self) -> [u64; 6] {
        self.end_window();
        self.frames
    }
}

impl Tap for CaptureSink {
    fn sent(&mut self, now: SimTime, pkt: &Packet) {
        let tap = self.sent_tap(pkt);
        self.see(now, tap, Shape::Sent, pkt);
    }

    fn link_arrived(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let (tap, shape) = match path {
            PathId::Primary => (CaptureTap::PrimaryMsee, Shape::Circuit(path, dir)),
            PathId::Secondary => (CaptureTap::SecondaryMsee, Shape::Circuit(path, dir)),
            PathId::Vpn => (CaptureTap::VpnInternet, Shape::Esp(dir)),
        };
        self.see(now, tap, shape, pkt);
    }

    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        self.see(now, CaptureTap::Drops, Shape::Drop(place, cause), pkt);
    }

    fn control_frame(
        &mut self,
        now: SimTime,
        path: PathId,
        dir: Direction,
        frame: &[u8],
        esp_seq: Option<u32>,
    ) {
        let (tap, shape) = match path {
            PathId::Primary => (CaptureTap::PrimaryMsee, Shape::Circuit(path, dir)),
            PathId::Secondary => (CaptureTap::SecondaryMsee, Shape::Circuit(path, dir)),
            // Inside the tunnel: the writer encrypts the inner IP packet.
            PathId::Vpn => (CaptureTap::VpnInternet, Shape::Esp(dir)),
        };
        if !self.enabled[tap as usize] || self.window.is_some_and(|(a, b)| now < a || now >= b) {
            return;
        }
        let pkt = Packet {
            esp_seq: esp_seq.unwrap_or(0),
            ..Packet::new(0, 0, now, 0)
        };
        self.push(now, tap, shape, pkt, Some(frame));
    }

    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        let tap = self.delivered_tap(pkt);
        self.see(now, tap, Shape::Delivered, pkt);
    }
}
