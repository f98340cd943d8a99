//! `report.json`: the numbers of a run, in a stable layout with fixed key
//! order, so that two runs of the same scenario and seed give the same bytes
//! (apart from `engine.wall_seconds`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::capture::{drop_place, CaptureSummary};
use super::metrics::{DropCounts, HopStats, Latency, Metrics, Outage};
use crate::engine::{EngineCounters, Outcome};
use crate::model::DropCause;
use crate::scenario::{Config, Direction, PathId};
use crate::units::NS_PER_SEC;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub eremu_version: String,
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    /// Virtual time simulated: the scenario's duration, or where an
    /// interrupted run stopped.
    pub duration_ns: u64,
    /// Present, and true, only when the run was stopped (Ctrl-C, SIGTERM)
    /// before the scenario's end: everything in the report covers
    /// `duration_ns`, as if the scenario ended there.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The scenario's duration, when the run was interrupted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario_duration_ns: Option<u64>,
    /// `links.<primary|secondary|vpn>.<in|out>`; `in` is on-premises to Azure.
    pub links: BTreeMap<String, BTreeMap<String, LinkReport>>,
    /// The ExpressRoute gateway, per direction.
    pub gateway: BTreeMap<String, HopReport>,
    pub flows: BTreeMap<String, FlowReport>,
    /// Every drop in the run: `<cause>@<place>` to count.
    pub drops: BTreeMap<String, u64>,
    pub timeline: Vec<TimelineReport>,
    /// Every failure of a path: how long until the CE noticed, and for each
    /// flow that was on it, how long until it was delivered over another path
    /// and what it lost meanwhile.
    pub failovers: Vec<FailoverReport>,
    pub azure_monitor: AzureMonitor,
    /// Files and frames per tap, when the run captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureSummary>,
    /// Real frames from outside (live mode, replay): where they came from
    /// and what became of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressReport>,
    pub engine: EngineReport,
}

/// What a live or replay run did with the frames it read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngressReport {
    /// `replay` or `live`.
    pub mode: String,
    /// The capture file, or the interfaces (`onprem=IF azure=IF`).
    pub source: String,
    /// Frames read, by what became of them: `modeled`, `bridged-arp`,
    /// `bridged-nd`, or the cause they were not carried (see the README).
    pub frames: BTreeMap<String, u64>,
    /// Work done on frames before the model: `checksums-completed`,
    /// `super-frames-segmented`, `segments-made`; live mode adds
    /// `written-onprem`, `written-azure`, `write-errors`.
    pub counters: BTreeMap<String, u64>,
    /// Replay: for each cause of a drop found in the capture file itself
    /// (`oversize`), the byte offset of the first record dropped for it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub first_drop_offsets: BTreeMap<String, u64>,
    /// Live mode: how late frames were written compared with the virtual
    /// time the model delivered them, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ns: Option<LatencyReport>,
}

/// Percentiles of a histogram of nanoseconds (count, min, mean, p50 ...).
pub fn latency_of(h: &hdrhistogram::Histogram<u64>) -> LatencyReport {
    if h.is_empty() {
        return LatencyReport::default();
    }
    let mean = h.mean().round() as u64;
    percentiles([h.len(), h.min(), mean, h.max()], |x| {
        h.value_at_quantile(x)
    })
}

/// A report from `[count, min, mean, max]` and a quantile function.
fn percentiles([count, min, mean, max]: [u64; 4], q: impl Fn(f64) -> u64) -> LatencyReport {
    LatencyReport {
        count,
        min,
        mean,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max,
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyReport {
    pub count: u64,
    pub min: u64,
    pub mean: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HopReport {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Reached the far end (links only; before the MSEE's policer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    pub delivered_packets: u64,
    pub delivered_bytes: u64,
    pub drops: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    #[serde(flatten)]
    pub hop: HopReport,
    /// Fraction of the run the serializer was busy (line rate; for the VPN,
    /// the gateway's throughput).
    pub utilization: f64,
    /// Frame bits passed by the MSEE policer over bandwidth times duration
    /// (circuit links only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_utilization: Option<f64>,
    /// Enqueue to far end: queueing, serialization and propagation.
    pub latency_ns: LatencyReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub direction: String,
    /// IP bits sent over the flow's active time (start to stop).
    pub offered_bps: u64,
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub received_bytes: u64,
    pub drops: BTreeMap<String, u64>,
    pub in_flight_packets: u64,
    /// IP bits received over the flow's active time (start to stop).
    pub throughput_bps: u64,
    /// One way, send to delivery.
    pub latency_ns: LatencyReport,
    pub outages: Vec<Outage>,
    /// TCP flows only.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpFlowReport>,
}

/// What a TCP flow's applications saw.
#[derive(Debug, Clone, Serialize)]
pub struct TcpFlowReport {
    /// Application bytes received (both ways) over the time from connection
    /// establishment to the last byte read, bits per second.
    pub goodput_bps: u64,
    /// Application bytes received, both ways.
    pub bytes_transferred: u64,
    /// Bounded transfers: start to the last byte read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_ns: Option<u64>,
    /// Segments sent again, both ends.
    pub retransmitted_segments: u64,
    /// Round-trip samples (data to its acknowledgement).
    pub rtt_ns: LatencyReport,
    /// Request/response: transactions completed and their durations.
    pub transactions: u64,
    pub transaction_ns: LatencyReport,
    /// Periods of 200 ms or more without application progress while data was
    /// outstanding.
    pub stalls: Vec<Stall>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stall {
    pub start_ns: u64,
    pub end_ns: u64,
}

fn hist_report(h: &hdrhistogram::Histogram<u64>) -> LatencyReport {
    if h.is_empty() {
        return LatencyReport::default();
    }
    LatencyReport {
        count: h.len(),
        min: h.min(),
        mean: h.mean().round() as u64,
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

fn tcp_report(m: &crate::traffic::tcp::TcpMetrics) -> TcpFlowReport {
    TcpFlowReport {
        goodput_bps: m.goodput_bps.unwrap_or(0),
        bytes_transferred: m.bytes_received(),
        completion_ns: m.completion_time.map(|d| d.as_nanos()),
        retransmitted_segments: m.retransmissions(),
        rtt_ns: hist_report(&m.rtt_ns),
        transactions: m.transactions,
        transaction_ns: hist_report(&m.transaction_ns),
        stalls: m
            .stalls
            .iter()
            .map(|(a, b)| Stall {
                start_ns: a.0,
                end_ns: b.0,
            })
            .collect(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub at_ns: u64,
    pub path: String,
    pub event: String,
    /// Failure to the CE's session (or interface) going down; absent when
    /// never detected.
    pub detect_ns: Option<u64>,
    pub flows: BTreeMap<String, FlowFailoverReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowFailoverReport {
    pub path_before: String,
    pub path_after: Option<String>,
    /// Failure to the first delivery over another path; absent when the flow
    /// never got one.
    pub converge_ns: Option<u64>,
    pub lost_packets: u64,
    pub lost_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineReport {
    pub time_ns: u64,
    pub event: String,
}

/// Azure Monitor's circuit metrics as the portal shows them: one value per
/// minute (the last minute may be partial and is averaged over its length),
/// per `DeviceRole`. Bits are Ethernet frame bits as the policer counts them.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case)]
pub struct AzureMonitor {
    pub granularity_ns: u64,
    pub BitsInPerSecond: BTreeMap<String, Vec<f64>>,
    pub BitsOutPerSecond: BTreeMap<String, Vec<f64>>,
    pub DroppedInBitsPerSecond: BTreeMap<String, Vec<f64>>,
    pub DroppedOutBitsPerSecond: BTreeMap<String, Vec<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    /// Wall-clock time of the run: the only field that differs between runs.
    pub wall_seconds: f64,
    pub events: u64,
    pub packets: u64,
    pub hops: u64,
}

fn drops_map(d: &DropCounts) -> BTreeMap<String, u64> {
    DropCause::ALL
        .iter()
        .filter(|c| d[c.index()] > 0)
        .map(|c| (c.as_str().to_string(), d[c.index()]))
        .collect()
}

fn latency(l: &Latency) -> LatencyReport {
    if l.count() == 0 {
        return LatencyReport::default();
    }
    let mean = (l.sum / l.count() as u128) as u64;
    let h = l.histogram();
    percentiles([l.count(), l.min, mean, l.max], |x| {
        h.value_at_quantile(x).clamp(l.min, l.max)
    })
}

fn hop(h: &HopStats, link: bool) -> HopReport {
    HopReport {
        tx_packets: h.tx_packets,
        tx_bytes: h.tx_bytes,
        rx_packets: link.then_some(h.rx_packets),
        rx_bytes: link.then_some(h.rx_bytes),
        delivered_packets: h.delivered_packets,
        delivered_bytes: h.delivered_bytes,
        drops: drops_map(&h.drops),
    }
}

impl Report {
    /// Marks the report as that of a run stopped before the scenario's
    /// end, `planned`.
    pub fn mark_interrupted(&mut self, planned: crate::units::SimDuration) {
        self.interrupted = true;
        self.scenario_duration_ns = Some(planned.as_nanos());
    }

    pub fn build(cfg: &Config, outcome: &Outcome, wall_seconds: f64) -> Report {
        let m: &Metrics = &outcome.metrics;
        let duration = cfg.duration.as_nanos();
        let mut links: BTreeMap<String, BTreeMap<String, LinkReport>> = BTreeMap::new();
        let mut drops = BTreeMap::new();
        for (&(place, cause), &n) in &m.drop_sites {
            *drops
                .entry(format!("{}@{}", cause.as_str(), drop_place(place, cause)))
                .or_insert(0) += n;
        }
        for (i, busy) in outcome.busy.iter().enumerate() {
            let Some(busy) = busy else { continue };
            let (path, dir) = crate::model::network::link_of(i);
            let s = &m.links[i];
            let circuit = path != PathId::Vpn;
            let passed_bits: u64 = s.policed_bits.iter().sum();
            links.entry(path.as_str().to_string()).or_default().insert(
                dir.as_str().to_string(),
                LinkReport {
                    hop: hop(&s.hop, true),
                    utilization: busy.as_nanos() as f64 / duration as f64,
                    circuit_utilization: circuit.then(|| {
                        passed_bits as f64
                            / (cfg.circuit.bandwidth.bps() as f64 * cfg.duration.as_secs_f64())
                    }),
                    latency_ns: latency(&s.latency),
                },
            );
        }
        let mut gateway = BTreeMap::new();
        for dir in [Direction::In, Direction::Out] {
            let g = &m.gateway[dir as usize];
            gateway.insert(dir.as_str().to_string(), hop(g, false));
        }
        let in_flight = outcome.in_flight.clone();
        let flows = cfg
            .flows
            .iter()
            .zip(&m.flows)
            .zip(in_flight)
            .map(|((f, s), in_flight)| {
                let active = (f.stop.0 - f.start.0) as u128;
                let report = FlowReport {
                    direction: f.direction.as_str().to_string(),
                    offered_bps: (s.sent_bytes as u128 * 8 * NS_PER_SEC as u128 / active) as u64,
                    sent_packets: s.sent_packets,
                    sent_bytes: s.sent_bytes,
                    received_packets: s.received_packets,
                    received_bytes: s.received_bytes,
                    drops: drops_map(&s.drops),
                    in_flight_packets: in_flight,
                    throughput_bps: (s.received_bytes as u128 * 8 * NS_PER_SEC as u128 / active)
                        as u64,
                    latency_ns: latency(&s.latency),
                    outages: s.outages.clone(),
                    tcp: outcome
                        .tcp
                        .iter()
                        .find(|(i, _)| cfg.flows[*i].name == f.name)
                        .map(|(_, m)| tcp_report(m)),
                };
                (f.name.clone(), report)
            })
            .collect();
        let timeline = m
            .timeline
            .iter()
            .map(|e| TimelineReport {
                time_ns: e.time.0,
                event: e.text.clone(),
            })
            .collect();
        let failovers = m
            .failovers
            .iter()
            .map(|r| FailoverReport {
                at_ns: r.at.0,
                path: r.path.as_str().to_string(),
                event: r.what.clone(),
                detect_ns: r.detected.map(|d| d.0 - r.at.0),
                flows: r
                    .flows
                    .iter()
                    .map(|f| {
                        let report = FlowFailoverReport {
                            path_before: f.before.as_str().to_string(),
                            path_after: f.after.map(|p| p.as_str().to_string()),
                            converge_ns: f.converged.map(|c| c.0 - r.at.0),
                            lost_packets: f.lost_packets,
                            lost_bytes: f.lost_bytes,
                        };
                        (cfg.flows[f.flow].name.clone(), report)
                    })
                    .collect(),
            })
            .collect();
        Report {
            failovers,
            eremu_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: cfg.name.clone(),
            description: cfg.description.clone(),
            seed: cfg.seed,
            duration_ns: duration,
            interrupted: false,
            scenario_duration_ns: None,
            links,
            gateway,
            flows,
            drops,
            timeline,
            azure_monitor: azure_monitor(cfg, m),
            capture: None,
            ingress: None,
            engine: engine_report(outcome.counters, wall_seconds),
        }
    }

    /// The report as pretty JSON, with `engine.wall_seconds` set to zero when
    /// `deterministic` (for byte comparisons).
    pub fn to_json(&self, deterministic: bool) -> String {
        let mut r = self.clone();
        if deterministic {
            r.engine.wall_seconds = 0.0;
        }
        serde_json::to_string_pretty(&r).expect("report serializes") + "\n"
    }

    /// Conservation per flow: sent = received + drops + in flight. Returns the
    /// flows where it fails.
    pub fn conservation_errors(&self) -> Vec<String> {
        self.flows
            .iter()
            .filter(|(_, f)| {
                f.sent_packets
                    != f.received_packets + f.drops.values().sum::<u64>() + f.in_flight_packets
            })
            .map(|(n, _)| n.clone())
            .collect()
    }
}

fn engine_report(c: EngineCounters, wall_seconds: f64) -> EngineReport {
    EngineReport {
        wall_seconds,
        events: c.events,
        packets: c.packets,
        hops: c.hops,
    }
}

fn azure_monitor(cfg: &Config, m: &Metrics) -> AzureMonitor {
    let duration = cfg.duration.as_nanos();
    let minute = 60 * NS_PER_SEC;
    let per_second = |bits: &[u64]| -> Vec<f64> {
        bits.iter()
            .enumerate()
            .map(|(i, &b)| {
                let len = (duration - i as u64 * minute).min(minute);
                b as f64 * NS_PER_SEC as f64 / len as f64
            })
            .collect()
    };
    let mut mon = AzureMonitor {
        granularity_ns: minute,
        BitsInPerSecond: BTreeMap::new(),
        BitsOutPerSecond: BTreeMap::new(),
        DroppedInBitsPerSecond: BTreeMap::new(),
        DroppedOutBitsPerSecond: BTreeMap::new(),
    };
    for path in [PathId::Primary, PathId::Secondary] {
        let role = || path.as_str().to_string();
        let l_in = &m.links[path as usize * 2];
        let l_out = &m.links[path as usize * 2 + 1];
        mon.BitsInPerSecond
            .insert(role(), per_second(&l_in.policed_bits));
        mon.BitsOutPerSecond
            .insert(role(), per_second(&l_out.policed_bits));
        mon.DroppedInBitsPerSecond
            .insert(role(), per_second(&l_in.dropped_bits));
        mon.DroppedOutBitsPerSecond
            .insert(role(), per_second(&l_out.dropped_bits));
    }
    mon
}
