//! pcapng captures: the frames the network's taps see, built with real
//! headers and written by a background thread.
//!
//! One file (`capture.pcapng`) holds one interface per tap, named as the
//! scenario's `[capture] taps` are (`onprem-ce`, `primary-msee`, ...), with
//! nanosecond timestamps (`if_tsresol` = 9) counted from [`EPOCH_UNIX_SECS`]
//! plus virtual time; or, with `split = true`, one file per tap. Files are
//! written under a temporary name and renamed when complete.
//!
//! Frames are built from the packet's headers when a tap sees them (the model
//! itself needs only their sizes, which `wire` computes from the same headers).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

use crate::model::{DropCause, Packet, Place, Tap};
use crate::scenario::{CaptureTap, Config, Direction, PathId, Snaplen};
use crate::units::{BitRate, SimTime};
use crate::wire::esp::{SecurityAssociation, NEXT_IPV4, NEXT_IPV6};
use crate::wire::frame::{self, Mac, Tags, UdpSpec};
use crate::wire::payload::Payload;
use crate::OutputError;

/// Virtual time zero in captures: 2026-01-01T00:00:00Z.
pub const EPOCH_UNIX_SECS: u64 = 1_767_225_600;

/// MAC addresses of the modeled devices (locally administered).
pub const MAC_CE: Mac = [0x02, 0xce, 0, 0, 0, 0x01];
pub const MAC_MSEE: [Mac; 2] = [[0x02, 0x4d, 0x53, 0x45, 0x45, 0x01], [0x02, 0x4d, 0x53, 0x45, 0x45, 0x02]];
pub const MAC_AZURE_GW: Mac = [0x02, 0xa2, 0, 0, 0, 0x01];
pub const MAC_VPN_ONPREM: Mac = [0x02, 0x76, 0x70, 0x6e, 0, 0x01];
pub const MAC_VPN_AZURE: Mac = [0x02, 0x76, 0x70, 0x6e, 0, 0x02];

/// A host's MAC: 02:00 and the last four bytes of its address.
pub fn host_mac(addr: IpAddr) -> Mac {
    let b = match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => a.octets()[12..].try_into().expect("4 bytes"),
    };
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

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

struct Record {
    tap: CaptureTap,
    ts_ns: u64,
    orig_len: u32,
    data: Vec<u8>,
    comment: Option<String>,
}

struct VpnFrames {
    sa: [SecurityAssociation; 2],
    onprem: std::net::Ipv4Addr,
    azure: std::net::Ipv4Addr,
    nat_t: bool,
}

/// What a finished capture wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CaptureSummary {
    /// Files written, relative to the output directory.
    pub files: Vec<String>,
    /// Frames written per tap.
    pub frames: BTreeMap<String, u64>,
}

struct FlowFrames {
    spec: UdpSpec,
    selected: bool,
    dir: Direction,
}

pub struct Capture {
    flows: Vec<FlowFrames>,
    enabled: [bool; 6],
    snap_headers: bool,
    snaplen: Option<u32>,
    window: Option<(SimTime, SimTime)>,
    tags: [Tags; 2],
    vpn: Option<VpnFrames>,
    tx: Option<Sender<Record>>,
    writer: Option<JoinHandle<Result<(), OutputError>>>,
    frames: BTreeMap<String, u64>,
    files: Vec<(PathBuf, PathBuf)>,
    scratch: Vec<u8>,
    inner: Vec<u8>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
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

impl Capture {
    /// Opens the capture file(s) in `dir` (which must exist) and starts the
    /// writer thread. `None` when the scenario captures nothing.
    pub fn start(cfg: &Config, dir: &Path) -> Result<Option<Capture>, OutputError> {
        let c = &cfg.capture;
        if !c.enabled || c.taps.is_empty() {
            return Ok(None);
        }
        let mut enabled = [false; 6];
        for t in &c.taps {
            enabled[*t as usize] = true;
        }
        let snaplen = match c.snaplen {
            Snaplen::Bytes(b) => Some(b),
            Snaplen::Auto => None,
        };
        let snap_headers = c.snaplen == Snaplen::Auto && cfg.circuit.bandwidth > BitRate::from_gbps(1);
        // Interface ids: index in the enabled list (one file) or 0 (split).
        let mut files = Vec::new();
        let mut writers: Vec<PcapNgWriter<BufWriter<File>>> = Vec::new();
        let mut iface = [(0usize, 0u32); 6];
        let names: Vec<(String, Vec<CaptureTap>)> = if c.split {
            c.taps.iter().map(|t| (format!("{}.pcapng", t.name()), vec![*t])).collect()
        } else {
            vec![("capture.pcapng".to_string(), c.taps.clone())]
        };
        for (file_index, (name, taps)) in names.into_iter().enumerate() {
            let path = dir.join(&name);
            let tmp = dir.join(format!("{name}.partial"));
            let file = File::create(&tmp).map_err(io_err(&tmp))?;
            let mut w = PcapNgWriter::new(BufWriter::with_capacity(1 << 20, file)).map_err(|e| OutputError::Io {
                path: tmp.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            for (i, t) in taps.iter().enumerate() {
                iface[*t as usize] = (file_index, i as u32);
                w.write_pcapng_block(idb(*t, snaplen.unwrap_or(0))).map_err(|e| OutputError::Io {
                    path: tmp.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
            writers.push(w);
            files.push((tmp, path));
        }
        let (tx, rx) = bounded::<Record>(4096);
        let tmp_paths: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
        let writer = std::thread::Builder::new()
            .name("eremu-capture".into())
            .spawn(move || -> Result<(), OutputError> {
                for r in rx {
                    let (f, id) = iface[r.tap as usize];
                    let mut options = vec![];
                    if let Some(c) = &r.comment {
                        options.push(EnhancedPacketOption::Comment(c.as_str().into()));
                    }
                    let block = EnhancedPacketBlock {
                        interface_id: id,
                        timestamp: Duration::from_nanos(EPOCH_UNIX_SECS * 1_000_000_000 + r.ts_ns),
                        original_len: r.orig_len,
                        data: r.data.as_slice().into(),
                        options,
                    };
                    writers[f].write_pcapng_block(block).map_err(|e| OutputError::Io {
                        path: tmp_paths[f].clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                }
                for (w, p) in writers.into_iter().zip(&tmp_paths) {
                    w.into_inner().into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all()).map_err(io_err(p))?;
                }
                Ok(())
            })
            .map_err(io_err(dir))?;
        let vpn = cfg.vpn.as_ref().map(|v| VpnFrames {
            sa: [SecurityAssociation::new(v.sa_in.spi, v.sa_in.key), SecurityAssociation::new(v.sa_out.spi, v.sa_out.key)],
            onprem: v.onprem_address,
            azure: v.azure_address,
            nat_t: v.nat_traversal,
        });
        let selected = |i: usize| c.flows.as_ref().is_none_or(|f| f.contains(&i));
        Ok(Some(Capture {
            flows: cfg
                .flows
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let spec = UdpSpec { src: f.from, dst: f.to, src_port: f.src_port, dst_port: f.dst_port, dscp: f.dscp };
                    FlowFrames { spec, selected: selected(i), dir: f.direction }
                })
                .collect(),
            enabled,
            snap_headers,
            snaplen,
            window: c.window,
            tags: match cfg.circuit.s_tags {
                Some([p, s]) => [Tags::QinQ { s_tag: p, c_tag: cfg.circuit.vlan }, Tags::QinQ { s_tag: s, c_tag: cfg.circuit.vlan }],
                None => [Tags::Dot1q(cfg.circuit.vlan); 2],
            },
            vpn,
            tx: Some(tx),
            writer: Some(writer),
            frames: CaptureTap::ALL.iter().filter(|t| enabled[**t as usize]).map(|t| (t.name().to_string(), 0)).collect(),
            files,
            scratch: Vec::with_capacity(2048),
            inner: Vec::with_capacity(2048),
        }))
    }

    fn wants(&self, now: SimTime, tap: CaptureTap, pkt: &Packet) -> bool {
        self.enabled[tap as usize]
            && self.flows[pkt.flow as usize].selected
            && self.window.is_none_or(|(a, b)| now >= a && now < b)
    }

    /// The flow's IP packet into `self.inner`.
    fn build_inner(&mut self, pkt: &Packet) {
        let payload = Payload { flow: pkt.flow, seq: pkt.seq, sent_ns: pkt.sent.0 };
        self.inner.clear();
        let spec = self.flows[pkt.flow as usize].spec;
        frame::write_udp_packet(&spec, pkt.ip_len as usize, &payload, &mut self.scratch, &mut self.inner);
    }

    /// An Ethernet frame around the flow's IP packet.
    fn plain_frame(&mut self, pkt: &Packet, src: Mac, dst: Mac, tags: Tags) -> (Vec<u8>, usize) {
        self.build_inner(pkt);
        let mut f = Vec::with_capacity(self.inner.len() + 22);
        frame::write_ethernet(src, dst, tags, frame::ether_type_of(&self.inner), &mut f);
        let headers = f.len() + frame::ip_udp_headers(self.flows[pkt.flow as usize].spec.src.is_ipv4());
        f.extend_from_slice(&self.inner);
        frame::pad(&mut f, 0);
        (f, headers)
    }

    /// The tunnel's frame for a packet going `dir`.
    fn esp_frame(&mut self, pkt: &Packet, dir: Direction) -> (Vec<u8>, usize) {
        self.build_inner(pkt);
        let vpn = self.vpn.as_ref().expect("VPN frames exist only with a VPN");
        let next = if self.inner[0] >> 4 == 6 { NEXT_IPV6 } else { NEXT_IPV4 };
        self.scratch.clear();
        vpn.sa[dir as usize].encrypt(pkt.esp_seq, &self.inner, next, &mut self.scratch);
        let (src, dst, smac, dmac) = match dir {
            Direction::In => (vpn.onprem, vpn.azure, MAC_VPN_ONPREM, MAC_VPN_AZURE),
            Direction::Out => (vpn.azure, vpn.onprem, MAC_VPN_AZURE, MAC_VPN_ONPREM),
        };
        let mut f = Vec::with_capacity(self.scratch.len() + 50);
        frame::write_ethernet(smac, dmac, Tags::Untagged, etherparse::EtherType::IPV4, &mut f);
        frame::write_esp_packet(src, dst, vpn.nat_t, &self.scratch, &mut f);
        let headers = 14 + 20 + if vpn.nat_t { 8 } else { 0 } + 16;
        frame::pad(&mut f, 0);
        (f, headers)
    }

    fn circuit_frame(&mut self, pkt: &Packet, path: PathId, dir: Direction) -> (Vec<u8>, usize) {
        let msee = MAC_MSEE[path as usize];
        let (src, dst) = if dir == Direction::In { (MAC_CE, msee) } else { (msee, MAC_CE) };
        self.plain_frame(pkt, src, dst, self.tags[path as usize])
    }

    fn emit(&mut self, now: SimTime, tap: CaptureTap, (mut data, headers): (Vec<u8>, usize), comment: Option<String>) {
        let orig_len = data.len() as u32;
        let keep = match (self.snaplen, self.snap_headers) {
            (Some(s), _) => s as usize,
            (None, true) => headers + 64,
            (None, false) => data.len(),
        };
        data.truncate(keep);
        *self.frames.get_mut(tap.name()).expect("enabled tap") += 1;
        if let Some(tx) = &self.tx {
            if tx.send(Record { tap, ts_ns: now.0, orig_len, data, comment }).is_err() {
                // The writer stopped on an error; `finish` reports it.
                self.tx = None;
            }
        }
    }

    /// Waits for the writer, renames the files into place and returns what was
    /// written. On error, the partial files are removed.
    pub fn finish(mut self) -> Result<CaptureSummary, OutputError> {
        drop(self.tx.take());
        let result = self.writer.take().expect("started").join().unwrap_or_else(|_| {
            Err(OutputError::Io { path: self.files[0].0.clone(), source: std::io::Error::other("capture writer panicked") })
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
            files.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        }
        Ok(CaptureSummary { files, frames: std::mem::take(&mut self.frames) })
    }
}

impl Tap for Capture {
    fn sent(&mut self, now: SimTime, pkt: &Packet) {
        let dir = self.flows[pkt.flow as usize].dir;
        let tap = if dir == Direction::In { CaptureTap::OnpremCe } else { CaptureTap::AzureGw };
        if self.wants(now, tap, pkt) {
            let spec = self.flows[pkt.flow as usize].spec;
            let (src, dst) = if dir == Direction::In { (host_mac(spec.src), MAC_CE) } else { (host_mac(spec.src), MAC_AZURE_GW) };
            let f = self.plain_frame(pkt, src, dst, Tags::Untagged);
            self.emit(now, tap, f, None);
        }
    }

    fn link_arrived(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let tap = match path {
            PathId::Primary => CaptureTap::PrimaryMsee,
            PathId::Secondary => CaptureTap::SecondaryMsee,
            PathId::Vpn => CaptureTap::VpnInternet,
        };
        if self.wants(now, tap, pkt) {
            let f = if path == PathId::Vpn { self.esp_frame(pkt, dir) } else { self.circuit_frame(pkt, path, dir) };
            self.emit(now, tap, f, None);
        }
    }

    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        if !self.wants(now, CaptureTap::Drops, pkt) {
            return;
        }
        let spec = self.flows[pkt.flow as usize].spec;
        let f = match place {
            Place::Link(PathId::Vpn, dir) if cause != DropCause::Mtu => self.esp_frame(pkt, dir),
            Place::Link(PathId::Vpn, _) | Place::Router(Direction::In) => {
                self.plain_frame(pkt, host_mac(spec.src), MAC_CE, Tags::Untagged)
            }
            Place::Link(path, dir) => self.circuit_frame(pkt, path, dir),
            Place::Gateway(Direction::In) => self.plain_frame(pkt, MAC_MSEE[0], MAC_AZURE_GW, Tags::Untagged),
            Place::Gateway(Direction::Out) | Place::Router(Direction::Out) => {
                self.plain_frame(pkt, host_mac(spec.src), MAC_AZURE_GW, Tags::Untagged)
            }
        };
        let comment = format!("{}@{}", cause.as_str(), drop_place(place, cause));
        self.emit(now, CaptureTap::Drops, f, Some(comment));
    }

    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        let dir = self.flows[pkt.flow as usize].dir;
        let tap = if dir == Direction::In { CaptureTap::AzureGw } else { CaptureTap::OnpremCe };
        if self.wants(now, tap, pkt) {
            let spec = self.flows[pkt.flow as usize].spec;
            let src = if dir == Direction::In { MAC_AZURE_GW } else { MAC_CE };
            let f = self.plain_frame(pkt, src, host_mac(spec.dst), Tags::Untagged);
            self.emit(now, tap, f, None);
        }
    }
}

