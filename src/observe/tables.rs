//! The summary as tables (links, flows, outages, failovers, timeline), rendered as
//! GitHub Markdown (`eremu run --format markdown`) and as HTML
//! (`report.html`).

use std::fmt::Write;

use super::report::{LatencyReport, Report};
use crate::units::SimDuration;

pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

fn lat(l: &LatencyReport) -> [String; 4] {
    if l.count == 0 {
        return ["-".into(), "-".into(), "-".into(), "-".into()];
    }
    [ms(l.p50), ms(l.p99), ms(l.p999), ms(l.max)]
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

fn mbps(bps: u64) -> String {
    format!("{:.3}", bps as f64 / 1e6)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Links (with the gateway), flows, outages and the timeline.
pub fn tables(r: &Report) -> Vec<Table> {
    let mut links = Table {
        title: "Links".into(),
        header: strings(&[
            "link",
            "tx packets",
            "delivered",
            "utilization",
            "circuit",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "drops",
        ]),
        rows: Vec::new(),
    };
    for (name, dirs) in &r.links {
        for (dir, l) in dirs {
            let mut row = vec![
                format!("{name}.{dir}"),
                l.hop.tx_packets.to_string(),
                l.hop.delivered_packets.to_string(),
                format!("{:.1}%", l.utilization * 100.0),
                l.circuit_utilization
                    .map_or("-".to_string(), |u| format!("{:.1}%", u * 100.0)),
            ];
            row.extend(lat(&l.latency_ns));
            row.push(drops(&l.hop.drops));
            links.rows.push(row);
        }
    }
    for (dir, g) in &r.gateway {
        let mut row = vec![
            format!("gateway.{dir}"),
            g.tx_packets.to_string(),
            g.delivered_packets.to_string(),
        ];
        row.extend(std::iter::repeat_n("-".to_string(), 6));
        row.push(drops(&g.drops));
        links.rows.push(row);
    }
    let mut flows = Table {
        title: "Flows".into(),
        header: strings(&[
            "flow",
            "dir",
            "offered Mbps",
            "throughput Mbps",
            "sent",
            "received",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "drops",
        ]),
        rows: Vec::new(),
    };
    for (name, f) in &r.flows {
        let mut row = vec![
            name.clone(),
            f.direction.clone(),
            mbps(f.offered_bps),
            mbps(f.throughput_bps),
            f.sent_packets.to_string(),
            f.received_packets.to_string(),
        ];
        row.extend(lat(&f.latency_ns));
        row.push(drops(&f.drops));
        flows.rows.push(row);
    }
    let mut outages = Table {
        title: "Outages".into(),
        header: strings(&["flow", "from", "to", "length", "lost"]),
        rows: Vec::new(),
    };
    for (name, f) in &r.flows {
        for o in &f.outages {
            outages.rows.push(vec![
                name.clone(),
                SimDuration(o.start_ns).to_string(),
                SimDuration(o.end_ns).to_string(),
                SimDuration(o.end_ns - o.start_ns).to_string(),
                o.lost_packets.to_string(),
            ]);
        }
    }
    let mut failovers = Table {
        title: "Failovers".into(),
        header: strings(&[
            "at",
            "path",
            "event",
            "detect",
            "flow",
            "path before -> after",
            "converge",
            "lost packets",
            "lost bytes",
        ]),
        rows: Vec::new(),
    };
    let opt = |v: Option<u64>| v.map_or("never".to_string(), |n| SimDuration(n).to_string());
    for f in &r.failovers {
        let head = [
            SimDuration(f.at_ns).to_string(),
            f.path.clone(),
            f.event.clone(),
            opt(f.detect_ns),
        ];
        if f.flows.is_empty() {
            let mut row = head.to_vec();
            row.extend([
                "(no flow was on it)".to_string(),
                "-".into(),
                "-".into(),
                "0".into(),
                "0".into(),
            ]);
            failovers.rows.push(row);
        }
        for (name, ff) in &f.flows {
            let mut row = head.to_vec();
            row.extend([
                name.clone(),
                format!(
                    "{} -> {}",
                    ff.path_before,
                    ff.path_after.as_deref().unwrap_or("-")
                ),
                opt(ff.converge_ns),
                ff.lost_packets.to_string(),
                ff.lost_bytes.to_string(),
            ]);
            failovers.rows.push(row);
        }
    }
    let timeline = Table {
        title: "Timeline".into(),
        header: strings(&["time", "event"]),
        rows: r
            .timeline
            .iter()
            .map(|e| vec![SimDuration(e.time_ns).to_string(), e.event.clone()])
            .collect(),
    };
    vec![links, flows, outages, failovers, timeline]
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The summary as GitHub Markdown.
pub fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Scenario `{}`\n", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.description);
    }
    let _ = writeln!(
        s,
        "Seed {}, {} simulated. Latencies are one way; `in` is on-premises to Azure.\n",
        r.seed,
        SimDuration(r.duration_ns)
    );
    if let Some(line) = super::summary::interrupted(r) {
        let _ = writeln!(s, "**{line}**\n");
    }
    for t in tables(r) {
        let _ = writeln!(s, "## {}\n", t.title);
        if t.rows.is_empty() {
            let _ = writeln!(s, "None.\n");
            continue;
        }
        let _ = writeln!(
            s,
            "| {} |",
            t.header
                .iter()
                .map(|h| md_cell(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(s, "|{}", "---|".repeat(t.header.len()));
        for row in &t.rows {
            let _ = writeln!(
                s,
                "| {} |",
                row.iter()
                    .map(|c| md_cell(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        s.push('\n');
    }
    s
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// One table as HTML.
pub fn render_html_table(t: &Table) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<h2>{}</h2>", html_escape(&t.title));
    if t.rows.is_empty() {
        let _ = writeln!(s, "<p>None.</p>");
        return s;
    }
    s.push_str("<table>\n<thead><tr>");
    for h in &t.header {
        let _ = write!(s, "<th>{}</th>", html_escape(h));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", html_escape(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// What ran: the circuit, gateways and VPN as configured, and the flows.
pub fn scenario_tables(cfg: &crate::scenario::Config) -> Vec<Table> {
    use crate::scenario::{FlowKind, Mode, SizeDist};
    let c = &cfg.circuit;
    let mut rows = vec![
        vec!["circuit bandwidth".into(), c.bandwidth.to_string()],
        vec!["port speed".into(), c.port_speed.to_string()],
        vec![
            "mode".into(),
            match c.mode {
                Mode::ActiveActive => "active-active".into(),
                Mode::ActivePassive => "active-passive".into(),
            },
        ],
        vec!["policer burst".into(), c.burst.to_string()],
        vec![
            "latency primary / secondary".into(),
            format!("{} / {}", c.primary.latency, c.secondary.latency),
        ],
        vec![
            "queue primary / secondary".into(),
            format!("{} / {}", c.primary.queue, c.secondary.queue),
        ],
        vec![
            "ExpressRoute gateway".into(),
            format!(
                "{}{}",
                cfg.gateway.sku.name(),
                if cfg.gateway.fastpath {
                    ", FastPath"
                } else {
                    ""
                }
            ),
        ],
    ];
    match &cfg.vpn {
        Some(v) => rows.push(vec![
            "VPN".into(),
            format!(
                "{:?} ({}), latency {} ± {}, loss {}, MTU {}",
                v.sku, v.rate, v.latency, v.jitter, v.loss, v.mtu
            ),
        ]),
        None => rows.push(vec!["VPN".into(), "none".into()]),
    }
    let setup = Table {
        title: "Circuit".into(),
        header: strings(&["setting", "value"]),
        rows,
    };
    let flows = Table {
        title: "Traffic".into(),
        header: strings(&[
            "flow", "kind", "from", "to", "dir", "rate", "size", "start", "stop",
        ]),
        rows: cfg
            .flows
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    match f.kind {
                        FlowKind::Cbr => "udp-cbr".into(),
                        FlowKind::Poisson => "udp-poisson".into(),
                        FlowKind::OnOff { on, off } => format!("udp-onoff ({on} on, {off} off)"),
                        FlowKind::External { protocol } => {
                            format!("real frames ({})", crate::wire::ip_protocol_name(protocol))
                        }
                        FlowKind::Tcp(t) => match t.app {
                            crate::traffic::tcp::TcpFlowKind::Bulk { bytes: Some(b) } => {
                                format!("tcp-bulk ({b} B, {:?})", t.cc)
                            }
                            crate::traffic::tcp::TcpFlowKind::Bulk { bytes: None } => {
                                format!("tcp-bulk ({:?})", t.cc)
                            }
                            crate::traffic::tcp::TcpFlowKind::RequestResponse {
                                request,
                                response,
                            } => {
                                format!("tcp-rr ({request} B / {response} B)")
                            }
                        },
                    },
                    f.from.to_string(),
                    f.to.to_string(),
                    f.direction.as_str().to_string(),
                    f.rate.to_string(),
                    match f.size {
                        SizeDist::Fixed(s) => format!("{s} B"),
                        SizeDist::Uniform(a, b) => format!("{a}..{b} B"),
                        SizeDist::Imix => "imix".into(),
                    },
                    f.start.to_string(),
                    f.stop.to_string(),
                ]
            })
            .collect(),
    };
    vec![setup, flows]
}
