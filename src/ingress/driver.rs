//! The engine driven by real frames: the one code path of live mode and
//! replay. The caller owns time: it hands each frame with the virtual time it
//! arrived and advances the model; live mode maps a wall clock onto virtual
//! time, replay takes the capture's timestamps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::model::network::CIRCUIT_MTU;
use crate::model::Packet;
use crate::observe::capture::CaptureWriter;
use crate::observe::report::{IngressReport, LatencyReport};
use crate::scenario::{Config, Direction};
use crate::units::{SimDuration, SimTime};
use crate::wire::offload::{complete_checksums, segment_tcp};
use crate::{OutputError, Report};

use super::{Ingress, Side, Verdict};

/// Virtual time between hand-overs of captured frames to the capture writer.
const CAPTURE_WINDOW: SimDuration = SimDuration(1_000_000);

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// What became of a frame handed to [`Driver::frame`], besides the model.
pub type Bridged = Option<(Side, Vec<u8>)>;

/// A scenario's model fed with real frames.
pub struct Driver {
    cfg: Config,
    engine: Engine,
    ingress: Ingress,
    writer: Option<CaptureWriter>,
    dir: PathBuf,
    counters: BTreeMap<&'static str, u64>,
    /// Byte offset in the capture of the first frame dropped, by cause.
    first_drops: BTreeMap<&'static str, u64>,
    last_window: SimTime,
    started: std::time::Instant,
    /// Set when the run was stopped (a signal) before its planned length.
    interrupted: Option<SimDuration>,
}

impl Driver {
    /// A driver for `cfg` writing its outputs into `dir` (and a capture
    /// unless `capture` is false); at most `max_flows` flows of real frames.
    pub fn start(
        cfg: &Config,
        dir: &Path,
        capture: bool,
        max_flows: usize,
    ) -> Result<Driver, DriverError> {
        std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (writer, sink) = match capture {
            true => match CaptureWriter::start(cfg, dir, 1)? {
                Some((w, mut sinks)) => (Some(w), sinks.pop()),
                None => (None, None),
            },
            false => (None, None),
        };
        Ok(Driver {
            cfg: cfg.clone(),
            engine: Engine::new(cfg, sink, None),
            ingress: Ingress::new(cfg, max_flows),
            writer,
            dir: dir.to_path_buf(),
            counters: BTreeMap::new(),
            first_drops: BTreeMap::new(),
            last_window: SimTime::ZERO,
            started: std::time::Instant::now(),
            interrupted: None,
        })
    }

    fn bump(&mut self, what: &'static str, n: u64) {
        *self.counters.entry(what).or_default() += n;
    }

    /// The model's current virtual time.
    pub fn now(&self) -> SimTime {
        self.engine.now()
    }

    /// The scenario's end.
    pub fn end(&self) -> SimTime {
        self.engine.end()
    }

    /// When the model next has something to do.
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.engine.next_deadline()
    }

    /// Runs the model up to `until` (exclusive). Returns true at the
    /// scenario's end.
    pub fn advance(&mut self, until: SimTime) -> bool {
        let done = self.engine.advance(until.max(self.engine.now()));
        if self.engine.now() >= self.last_window + CAPTURE_WINDOW || done {
            self.engine.end_window();
            self.last_window = self.engine.now();
        }
        done
    }

    /// A frame that arrived at `now` (not before [`Driver::now`]) from
    /// `from` (None: infer the side from its addresses). TCP super-frames
    /// are cut into segments and checksums left to offload are completed
    /// first. Returns the frame to write to the other side at once when it
    /// is bridged (ARP, neighbor discovery).
    pub fn frame(&mut self, now: SimTime, from: Option<Side>, mut frame: Vec<u8>) -> Bridged {
        self.advance(now);
        let now = now.max(self.engine.now());
        let too_big = crate::wire::frame::ip_len_of(&frame).is_some_and(|l| l > CIRCUIT_MTU);
        if too_big {
            if let Ok(segments) = segment_tcp(&frame, CIRCUIT_MTU) {
                self.bump("super-frames-segmented", 1);
                self.bump("segments-made", segments.len() as u64);
                // Cut segments carry checksums computed as they were cut,
                // and TCP is never bridged.
                for s in segments {
                    self.carry(now, from, s);
                }
                return None;
            }
            // Not TCP: the model drops it for the MTU, as the circuit would.
        }
        if complete_checksums(&mut frame).unwrap_or(false) {
            self.bump("checksums-completed", 1);
        }
        self.carry(now, from, frame)
    }

    /// Classifies a finished frame and hands it to the model, or back to be
    /// bridged, or drops it (counted by the classifier).
    fn carry(&mut self, now: SimTime, from: Option<Side>, frame: Vec<u8>) -> Bridged {
        match self.ingress.classify(now, from, &frame) {
            // Replay (no side) has nowhere to write a bridged frame.
            Verdict::Bridge => from.map(|side| (side.other(), frame)),
            Verdict::Drop(_) => None,
            Verdict::Model {
                flow,
                hash,
                new,
                ip_len,
            } => {
                if new {
                    self.engine.add_flow(self.ingress.flow(flow));
                }
                self.engine.inject(now, flow, hash, ip_len, frame);
                None
            }
        }
    }

    /// The real frames the model delivered since the last call, each with
    /// the side it goes out on and the virtual time it arrived there.
    pub fn delivered(&mut self) -> Vec<(SimTime, Side, Vec<u8>)> {
        let delivered = self.engine.take_delivered();
        delivered
            .into_iter()
            .map(|(t, pkt, bytes): (SimTime, Packet, Vec<u8>)| {
                let dir = self.direction_of(&pkt);
                let side = if dir == Direction::In {
                    Side::Azure
                } else {
                    Side::Onprem
                };
                (t, side, bytes)
            })
            .collect()
    }

    fn direction_of(&self, pkt: &Packet) -> Direction {
        let first = self.cfg.flows.len() as u32;
        if pkt.flow >= first {
            self.ingress.flow(pkt.flow).direction
        } else {
            self.cfg.flows[pkt.flow as usize].direction
        }
    }

    /// A frame the caller dropped before the model for `cause` (replay: a
    /// record of the capture, at byte `offset`, that no link carries);
    /// counted with the classifier's causes, the first offset kept.
    pub fn drop_frame(&mut self, cause: &'static str, offset: u64) {
        self.ingress.drop_frame(cause);
        self.first_drops.entry(cause).or_insert(offset);
    }

    /// Counts something the caller did (frames written, write errors, ...).
    pub fn count(&mut self, what: &'static str, n: u64) {
        self.bump(what, n);
    }

    /// Marks the run as stopped by a signal before its planned length
    /// `planned`: the report [`finish`](Driver::finish) writes says so.
    pub fn interrupted(&mut self, planned: SimDuration) {
        self.interrupted = Some(planned);
    }

    /// Runs the model to `end` (the scenario's end unless earlier), then
    /// writes the report, capture and views. `mode` and `source` describe
    /// the run; `lag` is live mode's lateness histogram.
    pub fn finish(
        mut self,
        end: SimTime,
        mode: &str,
        source: String,
        lag: Option<LatencyReport>,
    ) -> Result<Report, DriverError> {
        // A run stopped early (Ctrl-C, --duration) ends where it stopped, so
        // rates are per the time that really ran.
        let end = end.min(self.engine.end());
        while !self.advance(end) && self.engine.now() < end {}
        let _ = self.delivered();
        // Rates of real flows are over their first to last frame, at least
        // a millisecond (so that one lone frame does not make a huge rate).
        let counts = owned(&self.ingress.counts);
        let cfg = self.cfg.ended_at(end).with_external_flows(
            self.ingress
                .into_flows(SimDuration(1_000_000), end.max(SimTime(1))),
        );
        let mut engine = self.engine;
        engine.truncate_end(end);
        let mut outcome = engine.finish();
        let sink_frames = outcome
            .capture
            .take()
            .map(crate::observe::capture::CaptureSink::close);
        let ingress = IngressReport {
            mode: mode.to_string(),
            source,
            frames: counts,
            counters: owned(&self.counters),
            first_drop_offsets: owned(&self.first_drops),
            lag_ns: lag,
        };
        let interrupted = self.interrupted;
        Ok(crate::finish_with(
            &cfg,
            &self.dir,
            &outcome,
            (self.writer, sink_frames),
            self.started,
            |r| {
                r.ingress = Some(ingress);
                if let Some(planned) = interrupted {
                    r.mark_interrupted(planned);
                }
            },
        )?)
    }
}

/// A count table with owned keys, for the report.
fn owned(counts: &BTreeMap<&'static str, u64>) -> BTreeMap<String, u64> {
    counts.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    fn cfg() -> Config {
        crate::scenario::parse(
            "t.toml",
            r#"
name = "t"
duration = "1s"
[onprem]
prefixes = ["192.168.0.0/16", "fd00:1::/64"]
[azure]
prefixes = ["10.1.0.0/16", "fd00:2::/64"]
[circuit]
bandwidth = "100Mbps"
[gateway]
sku = "ErGw1Az"
[vpn]
gateway_sku = "VpnGw1"
latency = "10ms"
jitter = "1ms"
"#,
        )
        .unwrap()
    }

    /// Valid frames of several kinds, to be mutated.
    fn seeds() -> Vec<Vec<u8>> {
        let eth = || PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut out = Vec::new();
        let mut f = Vec::new();
        eth()
            .ipv4([192, 168, 1, 10], [10, 1, 0, 4], 64)
            .tcp(40000, 5201, 7, 1000)
            .write(&mut f, &vec![1u8; 9000])
            .unwrap();
        out.push(f);
        let mut f = Vec::new();
        eth()
            .ipv6(
                [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4],
                [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
                64,
            )
            .udp(53, 1000)
            .write(&mut f, &[2u8; 300])
            .unwrap();
        out.push(f);
        let mut arp = vec![0xff; 6];
        arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend([0u8; 28]);
        out.push(arp);
        out
    }

    #[test]
    fn a_run_stopped_early_ends_its_books_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg();
        cfg.set_duration(SimDuration(150_000_000_000)).unwrap();
        let mut d = Driver::start(&cfg, dir.path(), false, 8).unwrap();
        for (i, f) in seeds().into_iter().enumerate() {
            let _ = d.frame(SimTime(i as u64 * 1_000_000), Some(Side::Onprem), f);
        }
        // Stopped (Ctrl-C) 1.5 s into a 150 s scenario.
        let r = d
            .finish(SimTime(1_500_000_000), "live", "test".into(), None)
            .unwrap();
        assert_eq!(r.duration_ns, 1_500_000_000);
        // One Azure Monitor minute, not three; 150 rows of 10 ms, not 15,000.
        let minutes = r
            .azure_monitor
            .BitsInPerSecond
            .values()
            .next()
            .unwrap()
            .len();
        assert_eq!(minutes, 1);
        let csv = std::fs::read_to_string(dir.path().join("timeseries.csv")).unwrap();
        let times: Vec<u64> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(times.iter().max(), Some(&1_490_000_000));
        assert!(r.conservation_errors().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever arrives on an interface, eremu neither panics nor loses
        /// count: every packet it modeled is delivered, dropped or in flight.
        #[test]
        fn any_frames_are_carried_or_counted(
            picks in proptest::collection::vec((0usize..4, any::<u16>(), any::<u8>(), 0usize..20_000, 0u64..1_000_000), 1..60)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = cfg();
            let mut d = Driver::start(&cfg, dir.path(), false, 8).unwrap();
            let seeds = seeds();
            let mut t = SimTime::ZERO;
            for (kind, at, byte, len, gap) in picks {
                t += SimDuration(gap);
                let mut f = match seeds.get(kind) {
                    Some(s) => s.clone(),
                    None => vec![byte; len % 2000],
                };
                if !f.is_empty() {
                    let i = at as usize % f.len();
                    f[i] ^= byte;
                }
                if len % 3 == 0 {
                    f.truncate(len % (f.len() + 1));
                }
                let from = if at % 2 == 0 { Some(Side::Onprem) } else { None };
                let _ = d.frame(t, from, f);
                let _ = d.delivered();
            }
            let report = d.finish(SimTime::ZERO + cfg.duration, "replay", "test".into(), None).unwrap();
            prop_assert!(report.conservation_errors().is_empty());
        }
    }
}
