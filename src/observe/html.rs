//! `report.html`: one self-contained page (inline CSS, SVG plots inline, no
//! script, nothing fetched) with the scenario, the summary tables and the
//! plots.

use std::fmt::Write;

use super::report::Report;
use super::tables::{html_escape, render_html_table, scenario_tables, tables};
use crate::units::SimDuration;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin-bottom:1em;font-size:13px}\
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}\
th{background:#eee}td:first-child,th:first-child{text-align:left}\
figure{margin:1em 0}svg{max-width:100%;height:auto}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}dd{margin:0}";

/// The page; `plots` are `(file name, SVG text)` in display order.
pub fn render(
    cfg: &crate::scenario::Config,
    r: &Report,
    interval_ns: u64,
    plots: &[(String, String)],
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>eremu: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Scenario {name}</h1>\n",
        name = html_escape(&r.scenario)
    );
    if !r.description.is_empty() {
        let _ = writeln!(s, "<p>{}</p>", html_escape(&r.description));
    }
    if let Some(line) = super::summary::interrupted(r) {
        let _ = writeln!(s, "<p><strong>{}</strong></p>", html_escape(&line));
    }
    let _ = writeln!(
        s,
        "<dl><dt>Seed</dt><dd>{}</dd><dt>Simulated</dt><dd>{}</dd>\
         <dt>Time-series interval</dt><dd>{}</dd><dt>eremu</dt><dd>{}</dd></dl>",
        r.seed,
        SimDuration(r.duration_ns),
        SimDuration(interval_ns),
        html_escape(&r.eremu_version)
    );
    for t in scenario_tables(cfg) {
        s.push_str(&render_html_table(&t));
    }
    for t in tables(r) {
        s.push_str(&render_html_table(&t));
    }
    let _ = writeln!(s, "<h2>Plots</h2>");
    for (name, svg) in plots {
        let body = match svg.find("<svg") {
            Some(i) => &svg[i..],
            None => svg.as_str(),
        };
        let _ = writeln!(
            s,
            "<figure id=\"{id}\">\n{body}\n<figcaption>{name}</figcaption>\n</figure>",
            id = html_escape(name.trim_end_matches(".svg")),
            name = html_escape(name)
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}
