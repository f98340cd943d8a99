//! Latency files the HdrHistogram tools read, per flow:
//!
//! - `<flow>.hgrm`: the percentile distribution of the whole run, in the text
//!   format of HdrHistogram's `outputPercentileDistribution` (5 ticks per half
//!   distance), values in milliseconds (ns / 1,000,000), as HdrHistogram's
//!   plotter and `HistogramLogProcessor` expect.
//! - `<flow>.hlog`: an interval log (format V2, compressed histograms as
//!   Java's `HistogramLogWriter` writes them) with one histogram per
//!   time-series interval; values in ns, `MaxValueDivisor` 1,000,000 so the
//!   max column reads in ms; timestamps in seconds of virtual time from
//!   `BaseTime` 2026-01-01T00:00:00Z (the captures' time zero).

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use super::timeseries::TimeSeries;

/// Values in the `.hgrm` files are ns divided by this (milliseconds).
pub const HGRM_SCALING_RATIO: f64 = 1_000_000.0;

/// Virtual time zero: 2026-01-01T00:00:00Z.
pub fn time_zero() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// A flow name as a file name: anything but letters, digits, `-`, `_` and `.`
/// becomes `_`.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `outputPercentileDistribution(out, 5, scaling_ratio)` of HdrHistogram.
pub fn percentile_distribution(h: &Histogram<u64>, scaling_ratio: f64) -> String {
    let d = h.sigfig() as usize;
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / scaling_ratio;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:>12.d$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:>12.d$} {q:>2.12} {total:>10}");
            }
        }
    }
    let sub_buckets = 1u64 << (2.0 * 10f64.powi(d as i32)).log2().ceil() as u32;
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.d$}, StdDeviation   = {:>12.d$}]",
        h.mean() / scaling_ratio,
        h.stdev() / scaling_ratio
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.d$}, Total count    = {:>12}]",
        h.max() as f64 / scaling_ratio,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets
    );
    s
}

/// The interval log of one flow's latency: one histogram per interval.
pub fn interval_log(ts: &TimeSeries, flow: usize, scenario: &str) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let name = &ts.flow_names()[flow];
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "eremu {}: one-way latency of flow {name}, scenario {scenario}, ns per {} ns interval",
            env!("CARGO_PKG_VERSION"),
            ts.interval_ns()
        ))
        .with_start_time(time_zero())
        .with_base_time(time_zero())
        .with_max_value_divisor(HGRM_SCALING_RATIO)
        .begin_log_with(&mut buf, &mut serializer)?;
    let io = |e: hdrhistogram::serialization::interval_log::IntervalLogWriterError<_>| {
        std::io::Error::other(format!("{e:?}"))
    };
    ts.for_each_latency_histogram(flow, |k, h| {
        writer
            .write_histogram(
                h,
                Duration::from_nanos(ts.start_ns(k)),
                Duration::from_nanos(ts.len_ns(k)),
                None,
            )
            .map_err(io)
    })?;
    drop(writer);
    Ok(buf)
}
