//! The human summary `eremu run` prints: per link and per flow, then the
//! timeline.

use std::fmt::Write;

use super::report::{LatencyReport, Report};
use crate::units::{BitRate, SimDuration};

fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

fn drops(d: &std::collections::BTreeMap<String, u64>) -> String {
    if d.is_empty() {
        return "-".into();
    }
    d.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn lat(l: &LatencyReport) -> String {
    if l.count == 0 {
        return format!("{:>9} {:>9} {:>9} {:>9}", "-", "-", "-", "-");
    }
    format!(
        "{:>9} {:>9} {:>9} {:>9}",
        ms(l.p50),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
}

fn rate(bps: u64) -> String {
    // Three decimals of the largest unit, for reading, not parsing.
    let r = BitRate(bps);
    if bps >= 1_000_000_000 {
        format!("{:.3} Gbps", bps as f64 / 1e9)
    } else if bps >= 1_000_000 {
        format!("{:.3} Mbps", bps as f64 / 1e6)
    } else {
        r.to_string()
    }
}

/// What an interrupted run's outputs cover, for the summary and the page.
pub fn interrupted(r: &Report) -> Option<String> {
    r.interrupted.then(|| {
        format!(
            "INTERRUPTED: stopped at {} of the scenario's {}; everything here covers the time simulated",
            SimDuration(r.duration_ns),
            SimDuration(r.scenario_duration_ns.unwrap_or(r.duration_ns))
        )
    })
}

/// Renders the summary as plain text tables.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "scenario {} (seed {}, {} simulated)",
        r.scenario,
        r.seed,
        SimDuration(r.duration_ns)
    );
    if !r.description.is_empty() {
        let _ = writeln!(s, "  {}", r.description);
    }
    if let Some(line) = interrupted(r) {
        let _ = writeln!(s, "  {line}");
    }
    let _ = writeln!(
        s,
        "\nlinks (in = on-premises to Azure; latency in ms: p50 p99 p99.9 max)"
    );
    let _ = writeln!(
        s,
        "  {:<14} {:>10} {:>10} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}  drops",
        "link", "tx pkts", "delivered", "util", "circuit", "p50", "p99", "p99.9", "max"
    );
    for (name, dirs) in &r.links {
        for (dir, l) in dirs {
            let cu = l
                .circuit_utilization
                .map_or("-".to_string(), |u| format!("{:.1}%", u * 100.0));
            let _ = writeln!(
                s,
                "  {:<14} {:>10} {:>10} {:>6.1}% {:>7} {}  {}",
                format!("{name}.{dir}"),
                l.hop.tx_packets,
                l.hop.delivered_packets,
                l.utilization * 100.0,
                cu,
                lat(&l.latency_ns),
                drops(&l.hop.drops)
            );
        }
    }
    for (dir, g) in &r.gateway {
        let _ = writeln!(
            s,
            "  {:<14} {:>10} {:>10} {:>7} {:>7} {:>39}  {}",
            format!("gateway.{dir}"),
            g.tx_packets,
            g.delivered_packets,
            "",
            "",
            "",
            drops(&g.drops)
        );
    }
    // Flow names of real traffic (5-tuples) are long: widen the column.
    let w = r.flows.keys().map(|n| n.len()).max().unwrap_or(0).max(14);
    let _ = writeln!(s, "\nflows (one-way latency in ms: p50 p99 p99.9 max)");
    let _ = writeln!(
        s,
        "  {:<w$} {:>4} {:>14} {:>14} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}  drops",
        "flow",
        "dir",
        "offered",
        "throughput",
        "sent",
        "received",
        "p50",
        "p99",
        "p99.9",
        "max",
        w = w
    );
    for (name, f) in &r.flows {
        let _ = writeln!(
            s,
            "  {:<w$} {:>4} {:>14} {:>14} {:>10} {:>10} {}  {}",
            name,
            f.direction,
            rate(f.offered_bps),
            rate(f.throughput_bps),
            f.sent_packets,
            f.received_packets,
            lat(&f.latency_ns),
            drops(&f.drops),
            w = w
        );
    }
    let tcp: Vec<_> = r
        .flows
        .iter()
        .filter_map(|(n, f)| f.tcp.as_ref().map(|t| (n, t)))
        .collect();
    if !tcp.is_empty() {
        let _ = writeln!(s, "\ntcp flows (RTT in ms)");
        let _ = writeln!(
            s,
            "  {:<w$} {:>14} {:>14} {:>12} {:>8} {:>9} {:>9} {:>12} {:>7}",
            "flow",
            "goodput",
            "bytes",
            "completed",
            "retrans",
            "rtt p50",
            "rtt p99",
            "transactions",
            "stalls",
            w = w
        );
        for (n, t) in tcp {
            let _ = writeln!(
                s,
                "  {:<w$} {:>14} {:>14} {:>12} {:>8} {:>9} {:>9} {:>12} {:>7}",
                n,
                rate(t.goodput_bps),
                t.bytes_transferred,
                t.completion_ns
                    .map_or("-".to_string(), |c| SimDuration(c).to_string()),
                t.retransmitted_segments,
                ms(t.rtt_ns.p50),
                ms(t.rtt_ns.p99),
                t.transactions,
                t.stalls.len(),
                w = w
            );
        }
    }
    let outages: Vec<_> = r
        .flows
        .iter()
        .flat_map(|(n, f)| f.outages.iter().map(move |o| (n, o)))
        .collect();
    if !outages.is_empty() {
        let _ = writeln!(s, "\noutages (no delivery while packets were lost)");
        let _ = writeln!(
            s,
            "  {:<w$} {:>12} {:>12} {:>12} {:>8}",
            "flow",
            "from",
            "to",
            "length",
            "lost",
            w = w
        );
        for (n, o) in outages {
            let _ = writeln!(
                s,
                "  {:<w$} {:>12} {:>12} {:>12} {:>8}",
                n,
                SimDuration(o.start_ns).to_string(),
                SimDuration(o.end_ns).to_string(),
                SimDuration(o.end_ns - o.start_ns).to_string(),
                o.lost_packets,
                w = w
            );
        }
    }
    if !r.failovers.is_empty() {
        let _ = writeln!(s, "\nfailovers (detect: failure to the CE noticing; converge: failure to first delivery on another path)");
        let _ = writeln!(
            s,
            "  {:>12} {:<10} {:<16} {:>12} {:<14} {:<16} {:>12} {:>8}",
            "at", "path", "event", "detect", "flow", "path", "converge", "lost"
        );
        let opt = |v: Option<u64>| v.map_or("never".to_string(), |n| SimDuration(n).to_string());
        for f in &r.failovers {
            let head = format!(
                "{:>12} {:<10} {:<16} {:>12}",
                SimDuration(f.at_ns).to_string(),
                f.path,
                f.event,
                opt(f.detect_ns)
            );
            if f.flows.is_empty() {
                let _ = writeln!(s, "  {head} (no flow was on it)");
            }
            for (name, ff) in &f.flows {
                let moved = format!(
                    "{} -> {}",
                    ff.path_before,
                    ff.path_after.as_deref().unwrap_or("-")
                );
                let _ = writeln!(
                    s,
                    "  {head} {:<14} {:<16} {:>12} {:>8}",
                    name,
                    moved,
                    opt(ff.converge_ns),
                    ff.lost_packets
                );
            }
        }
    }
    if let Some(i) = &r.ingress {
        let _ = writeln!(s, "\nreal frames ({} from {})", i.mode, i.source);
        for (what, n) in i.frames.iter().chain(&i.counters) {
            let _ = writeln!(s, "  {what:<24} {n:>12}");
        }
        if let Some(l) = &i.lag_ns {
            let _ = writeln!(
                s,
                "  lag behind the model (ms: p50 p99 p99.9 max) {}",
                lat(l)
            );
        }
    }
    if !r.timeline.is_empty() {
        let _ = writeln!(s, "\ntimeline");
        for e in &r.timeline {
            let _ = writeln!(
                s,
                "  {:>12}  {}",
                SimDuration(e.time_ns).to_string(),
                e.event
            );
        }
    }
    let _ = writeln!(
        s,
        "\nengine: {} packets, {} hops, {} events in {:.3} s ({:.1} M hops/s)",
        r.engine.packets,
        r.engine.hops,
        r.engine.events,
        r.engine.wall_seconds,
        r.engine.hops as f64 / r.engine.wall_seconds.max(1e-9) / 1e6
    );
    s
}
