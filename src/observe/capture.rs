//! pcapng captures of what the network's taps see.
//!
//! One file (`capture.pcapng`) holds one interface per tap, named as the
//! scenario's `[capture] taps` are (`onprem-ce`, `primary-msee`, ...), with
//! nanosecond timestamps (`if_tsresol` = 9) counted from [`EPOCH_UNIX_SECS`]
//! plus virtual time; or, with `split = true`, one file per tap.
//!
//! The engine's side only records which packet a tap saw, when and where, in
//! batches; a writer thread builds the frames ([`FrameBuilder`]) and writes
//! them through a buffered writer. Files are written under a temporary name and
//! renamed when complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
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

/// One packet seen by one tap: a data packet (rebuilt by the writer), or the
/// bytes of a control-plane frame.
struct Seen {
    tap: CaptureTap,
    time: SimTime,
    shape: Shape,
    pkt: Packet,
    raw: Option<Box<[u8]>>,
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
    batch: Vec<Seen>,
    tx: Option<Sender<Vec<Seen>>>,
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

fn pcap_err(path: &Path) -> impl Fn(pcap_file::PcapError) -> OutputError + '_ {
    move |e| OutputError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
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

/// Merges one window from every stream in `(time, stream)` order: each
/// stream's window is already in time order, so this is a k-way merge, and
/// the result is the same whatever thread produced each stream.
fn merge_window(windows: Vec<Vec<Seen>>, out: &mut Vec<Seen>) {
    out.clear();
    let mut windows: Vec<_> = windows
        .into_iter()
        .map(|w| w.into_iter().peekable())
        .collect();
    loop {
        let next = (0..windows.len())
            .filter_map(|i| windows[i].peek().map(|s| (s.time, i)))
            .min();
        let Some((_, i)) = next else { break };
        out.extend(windows[i].next());
    }
}

/// The writer thread: takes one window from each stream in turn, merges them,
/// builds each frame and appends it to its file.
fn write_all(
    streams: Vec<Receiver<Vec<Seen>>>,
    mut builder: FrameBuilder,
    mut writers: Vec<PcapNgWriter<BufWriter<File>>>,
    iface: [(usize, u32); 6],
    paths: Vec<PathBuf>,
) -> Result<(), OutputError> {
    let mut frame = Vec::with_capacity(2048);
    let mut merged = Vec::new();
    'windows: loop {
        let mut windows = Vec::with_capacity(streams.len());
        for rx in &streams {
            match rx.recv() {
                Ok(w) => windows.push(w),
                Err(_) => break 'windows,
            }
        }
        merge_window(windows, &mut merged);
        for s in merged.drain(..) {
            let original_len = match &s.raw {
                Some(bytes) => builder.control(bytes, s.shape, s.pkt.esp_seq, &mut frame),
                None => builder.build(&s.pkt, s.shape, &mut frame),
            };
            let mut options = vec![];
            if let Shape::Drop(place, cause) = s.shape {
                options.push(EnhancedPacketOption::Comment(
                    format!("{}@{}", cause.as_str(), drop_place(place, cause)).into(),
                ));
            }
            let (f, id) = iface[s.tap as usize];
            let block = EnhancedPacketBlock {
                interface_id: id,
                timestamp: Duration::from_nanos(EPOCH_UNIX_SECS * 1_000_000_000 + s.time.0),
                original_len,
                data: frame.as_slice().into(),
                options,
            };
            writers[f]
                .write_pcapng_block(block)
                .map_err(pcap_err(&paths[f]))?;
        }
    }
    for (w, p) in writers.into_iter().zip(&paths) {
        let file = w
            .into_inner()
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_err(p))?;
        file.sync_all().map_err(io_err(p))?;
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
        let mut writers = Vec::new();
        for (file_index, (name, taps)) in groups.into_iter().enumerate() {
            let tmp = dir.join(format!("{name}.partial"));
            let file = File::create(&tmp).map_err(io_err(&tmp))?;
            let mut w = PcapNgWriter::new(BufWriter::with_capacity(1 << 20, file))
                .map_err(pcap_err(&tmp))?;
            for (i, t) in taps.iter().enumerate() {
                iface[*t as usize] = (file_index, i as u32);
                w.write_pcapng_block(idb(*t, snaplen))
                    .map_err(pcap_err(&tmp))?;
            }
            writers.push(w);
            files.push((tmp, dir.join(name)));
        }
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..streams).map(|_| bounded(WINDOWS_AHEAD)).unzip();
        let paths: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
        let builder = FrameBuilder::new(cfg);
        let writer = std::thread::Builder::new()
            .name("eremu-capture".into())
            .spawn(move || write_all(rxs, builder, writers, iface, paths))
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
                batch: Vec::new(),
                tx: Some(tx),
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
        self.record(time, tap, shape, pkt, || Some(bytes.into()));
    }

    #[inline]
    fn see(&mut self, time: SimTime, tap: CaptureTap, shape: Shape, pkt: &Packet) {
        self.record(time, tap, shape, pkt, || None);
    }

    /// Keeps an observation if the tap, the flow and the window want it.
    #[inline]
    fn record(
        &mut self,
        time: SimTime,
        tap: CaptureTap,
        shape: Shape,
        pkt: &Packet,
        raw: impl FnOnce() -> Option<Box<[u8]>>,
    ) {
        if !self.enabled[tap as usize]
            || !self.flows[pkt.flow as usize]
            || self.window.is_some_and(|(a, b)| time < a || time >= b)
        {
            return;
        }
        self.frames[tap as usize] += 1;
        self.batch.push(Seen {
            tap,
            time,
            shape,
            pkt: *pkt,
            raw: raw(),
        });
    }

    /// Ends a window of virtual time: hands what was seen to the writer.
    pub fn end_window(&mut self) {
        let batch = std::mem::take(&mut self.batch);
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
        self.frames[tap as usize] += 1;
        let pkt = Packet {
            flow: 0,
            seq: 0,
            sent: now,
            ip_len: 0,
            wire_len: 0,
            hash: 0,
            enqueued: now,
            esp_seq: esp_seq.unwrap_or(0),
            frame: crate::model::packet::NO_FRAME,
            reverse: false,
        };
        self.batch.push(Seen {
            tap,
            time: now,
            shape,
            pkt,
            raw: Some(frame.into()),
        });
    }

    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        let tap = self.delivered_tap(pkt);
        self.see(now, tap, Shape::Delivered, pkt);
    }
}
