//! SVG plots of a run (plotters' SVG backend: text stays SVG `<text>`, no
//! fonts or system libraries needed).
//!
//! - `throughput.svg`: delivered bits per second per path (primary,
//!   secondary, vpn), stacked, one panel per direction;
//! - `latency.svg`: one-way latency per flow per interval: p50 and p99 (from
//!   the interval's 2-digit histogram) and max;
//! - `latency-cdf.svg`: each flow's latency distribution over the run;
//! - `queue.svg`: bytes waiting in each link direction's egress queue at the
//!   end of each interval;
//! - `drops.svg`: drops per interval by cause, all flows together.
//!
//! Every time plot marks the scenario's events (`link ... down/up`,
//! bandwidth and latency changes) with a dashed line and shades the flows'
//! outages (the report's `outages`: while a flow lost packets and none
//! arrived), where a failover happens.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::Report;
use super::timeseries::TimeSeries;
use crate::model::DropCause;
use crate::scenario::{Direction, PathId};

const W: u32 = 960;
const H: u32 = 400;
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type DrawResult<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// One named line of a plot.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
}

/// What every time plot shows besides its data: events and outages.
struct Marks {
    events: Vec<(f64, String)>,
    outages: Vec<(f64, f64)>,
}

fn marks(r: &Report) -> Marks {
    let scenario_event = |e: &str| {
        e.starts_with("link ") || e.contains("bandwidth set") || e.contains("latency set")
    };
    Marks {
        events: r
            .timeline
            .iter()
            .filter(|e| scenario_event(&e.event))
            .map(|e| {
                let short = e.event.split(" (").next().unwrap_or(&e.event);
                (e.time_ns as f64 / 1e9, format!(" {short}"))
            })
            .collect(),
        outages: r
            .flows
            .values()
            .flat_map(|f| f.outages.iter())
            .map(|o| (o.start_ns as f64 / 1e9, o.end_ns as f64 / 1e9))
            .collect(),
    }
}

fn y_max(lines: &[Line]) -> f64 {
    let m = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    if m > 0.0 {
        m * 1.1
    } else {
        1.0
    }
}

/// Draws lines (or, when `stacked`, areas stacked in order) on `area`.
#[allow(clippy::too_many_arguments)]
fn draw_chart(
    area: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    x_range: (f64, f64),
    lines: &[Line],
    stacked: bool,
    marks: Option<&Marks>,
) -> DrawResult<()> {
    let mut shown: Vec<Line> = Vec::new();
    if stacked {
        let mut acc: Vec<(f64, f64)> = Vec::new();
        for l in lines {
            if acc.is_empty() {
                acc = l.points.iter().map(|&(x, _)| (x, 0.0)).collect();
            }
            for (a, p) in acc.iter_mut().zip(&l.points) {
                a.1 += p.1;
            }
            shown.push(Line {
                name: l.name.clone(),
                points: acc.clone(),
            });
        }
    } else {
        for l in lines {
            shown.push(Line {
                name: l.name.clone(),
                points: l.points.clone(),
            });
        }
    }
    let ymax = y_max(&shown);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.0..x_range.1.max(x_range.0 + 1e-9), 0.0..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    if let Some(m) = marks {
        let shade = RGBColor(214, 39, 40).mix(0.25);
        // At least 0.4 % of the plot wide, so that a failover of a few
        // milliseconds stays visible on a run of minutes.
        let min_width = (x_range.1 - x_range.0) * 0.004;
        for (i, &(a, b)) in m.outages.iter().enumerate() {
            let b = b.max(a + min_width);
            let s = chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, 0.0), (b, ymax)],
                    shade.filled(),
                )))
                .map_err(err)?;
            if i == 0 {
                s.label("outage").legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], shade.filled())
                });
            }
        }
    }
    // Stacked areas are drawn from the top layer down, so that each lower
    // layer covers the one above it.
    let order: Vec<usize> = if stacked {
        (0..shown.len()).rev().collect()
    } else {
        (0..shown.len()).collect()
    };
    for i in order {
        let l = &shown[i];
        let c = color(i);
        let s = if stacked {
            // Opaque light fills: each layer hides the ones above it.
            let light = |v: u8| (v as f64 * 0.6 + 255.0 * 0.4) as u8;
            let fill = RGBColor(light(c.0), light(c.1), light(c.2));
            chart
                .draw_series(
                    AreaSeries::new(l.points.iter().copied(), 0.0, fill.filled()).border_style(c),
                )
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
        };
        s.label(l.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    if let Some(m) = marks {
        for (i, (t, text)) in m.events.iter().enumerate() {
            chart
                .draw_series(DashedLineSeries::new(
                    [(*t, 0.0), (*t, ymax)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    text.clone(),
                    (*t, ymax * (0.99 - 0.05 * (i % 3) as f64)),
                    ("sans-serif", 11).into_font().color(&BLACK),
                )))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn svg(
    height: u32,
    f: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult<()>,
) -> DrawResult<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (W, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        f(&root)?;
        root.present().map_err(err)?;
    }
    Ok(s)
}

fn times(ts: &TimeSeries) -> Vec<f64> {
    (0..ts.intervals())
        .map(|k| (ts.start_ns(k) + ts.len_ns(k) / 2) as f64 / 1e9)
        .collect()
}

/// Every plot, as `(file name, SVG text)`.
pub fn render_all(
    r: &Report,
    ts: &TimeSeries,
    flow_latency: &[(&str, &super::metrics::Latency)],
) -> Result<Vec<(String, String)>, String> {
    let m = marks(r);
    let x = times(ts);
    let x_range = (0.0, r.duration_ns as f64 / 1e9);
    let mut out = Vec::new();

    // Throughput per path, stacked, one panel per direction.
    let dirs = [Direction::In, Direction::Out];
    let t = svg(2 * H, |root| {
        for (area, dir) in root.split_evenly((2, 1)).iter().zip(dirs) {
            let lines: Vec<Line> = PathId::ALL
                .into_iter()
                .filter(|&p| !ts.link(p, dir).is_empty())
                .map(|p| Line {
                    name: p.as_str().to_string(),
                    points: (0..ts.intervals())
                        .map(|k| (x[k], ts.throughput_bps(ts.link(p, dir), k) / 1e6))
                        .collect(),
                })
                .collect();
            let title = format!(
                "Throughput per path, {} ({})",
                dir.as_str(),
                match dir {
                    Direction::In => "on-premises to Azure",
                    Direction::Out => "Azure to on-premises",
                }
            );
            draw_chart(
                area,
                &title,
                "time (s)",
                "delivered Mbps",
                x_range,
                &lines,
                true,
                Some(&m),
            )?;
        }
        Ok(())
    })?;
    out.push(("throughput.svg".to_string(), t));

    // Latency percentiles over time per flow.
    let mut lines = Vec::new();
    for (f, name) in ts.flow_names().iter().enumerate() {
        let cells = ts.flow(f);
        let pct = ts.latency_percentiles(f);
        let p = |i: usize| -> Vec<(f64, f64)> {
            pct.iter()
                .map(|v| (x[v.0], [v.1, v.2][i] as f64 / 1e6))
                .collect()
        };
        lines.push(Line {
            name: format!("{name} p50"),
            points: p(0),
        });
        lines.push(Line {
            name: format!("{name} p99"),
            points: p(1),
        });
        lines.push(Line {
            name: format!("{name} max"),
            points: pct
                .iter()
                .map(|v| (x[v.0], cells[v.0].lat_max as f64 / 1e6))
                .collect(),
        });
    }
    let l = svg(H, |root| {
        draw_chart(
            root,
            "One-way latency per flow (p50, p99, max per interval)",
            "time (s)",
            "latency (ms)",
            x_range,
            &lines,
            false,
            Some(&m),
        )
    })?;
    out.push(("latency.svg".to_string(), l));

    // Latency CDF per flow over the whole run.
    let mut lines = Vec::new();
    let mut xmax: f64 = 0.0;
    for (name, l) in flow_latency {
        // Built one flow at a time: a histogram of 4 digits is large.
        let h = l.histogram();
        let points: Vec<(f64, f64)> = if h.is_empty() {
            Vec::new()
        } else {
            h.iter_quantiles(5)
                .map(|v| (v.value_iterated_to() as f64 / 1e6, v.quantile_iterated_to()))
                .collect()
        };
        xmax = points.iter().map(|p| p.0).fold(xmax, f64::max);
        lines.push(Line {
            name: name.to_string(),
            points,
        });
    }
    let c = svg(H, |root| {
        draw_chart(
            root,
            "Latency CDF per flow (whole run)",
            "one-way latency (ms)",
            "fraction of packets",
            (0.0, xmax.max(1e-3) * 1.05),
            &lines,
            false,
            None,
        )
    })?;
    out.push(("latency-cdf.svg".to_string(), c));

    // Queue occupancy per link direction.
    let lines: Vec<Line> = ts
        .series()
        .iter()
        .filter(|s| s.is_link)
        .map(|s| Line {
            name: s.name.trim_start_matches("link.").to_string(),
            points: s
                .cells
                .iter()
                .enumerate()
                .map(|(k, c)| (x[k], c.queue_bytes as f64 / 1e3))
                .collect(),
        })
        .collect();
    let q = svg(H, |root| {
        draw_chart(
            root,
            "Egress queue occupancy (end of each interval)",
            "time (s)",
            "queued KB",
            x_range,
            &lines,
            false,
            Some(&m),
        )
    })?;
    out.push(("queue.svg".to_string(), q));

    // Drops by cause, all flows.
    let flows: Vec<_> = (0..ts.flow_names().len()).map(|f| ts.flow(f)).collect();
    let lines: Vec<Line> = DropCause::ALL
        .into_iter()
        .filter(|c| {
            flows
                .iter()
                .any(|f| f.iter().any(|x| x.drops[c.index()] > 0))
        })
        .map(|c| Line {
            name: c.as_str().to_string(),
            points: (0..ts.intervals())
                .map(|k| {
                    (
                        x[k],
                        flows.iter().map(|f| f[k].drops[c.index()]).sum::<u64>() as f64,
                    )
                })
                .collect(),
        })
        .collect();
    let d = svg(H, |root| {
        draw_chart(
            root,
            "Drops per interval by cause",
            "time (s)",
            "packets dropped",
            x_range,
            &lines,
            false,
            Some(&m),
        )
    })?;
    out.push(("drops.svg".to_string(), d));
    Ok(out)
}
