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
use sha2::Digest;

use super::timeseries::TimeSeries;

/// Values in the `.hgrm` files are ns divided by this (milliseconds).
pub const HGRM_SCALING_RATIO: f64 = 1_000_000.0;

/// Virtual time zero: 2026-01-01T00:00:00Z.
pub fn time_zero() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// Longest file stem [`file_stem`] makes: a file name may have 255 bytes,
/// and the stem is followed by `.hgrm`, `.hlog` or, while written,
/// `.partial`.
pub const MAX_STEM: usize = 200;

/// A flow name as a file stem, distinct for distinct names and portable:
/// lowercase ASCII letters, digits and `-` stay as they are; every other
/// byte of the name's UTF-8 (uppercase letters too, so that names differing
/// in case differ on case-insensitive file systems; `_` itself, `.`, `/`,
/// spaces) becomes `_` and two uppercase hex digits (`x_y` is `x_5Fy`, `x/y`
/// is `x_2Fy`, `.` is `_2E`). The empty name is `_`. A stem longer than
/// [`MAX_STEM`] is cut (between escapes) and ends in `_Z` and 16 hex
/// digits of the name's SHA-256, which no escaped name contains.
pub fn file_stem(name: &str) -> String {
    if name.is_empty() {
        return "_".to_string();
    }
    let mut s = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            s.push(b as char);
        } else {
            let _ = write!(s, "_{b:02X}");
        }
    }
    if s.len() <= MAX_STEM {
        return s;
    }
    let mut cut = MAX_STEM - 18;
    // `_` only ever starts an escape: do not split one.
    let bytes = s.as_bytes();
    if bytes[cut - 1] == b'_' {
        cut -= 1;
    } else if bytes[cut - 2] == b'_' {
        cut -= 2;
    }
    s.truncate(cut);
    let digest = sha2::Sha256::digest(name.as_bytes());
    s.push_str("_Z");
    for b in &digest[..8] {
        let _ = write!(s, "{b:02x}");
    }
    s
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_keep_their_spelling() {
        // Every flow name of the shipped scenarios is of this kind.
        for n in ["backup", "backup-1", "app-v6", "voice", "in-8"] {
            assert_eq!(file_stem(n), n);
        }
    }

    #[test]
    fn other_bytes_are_escaped_in_hex() {
        // `_` is 0x5F, `/` 0x2F, ` ` 0x20, `?` 0x3F, `.` 0x2E, `W` 0x57;
        // `é` is 0xC3 0xA9 in UTF-8.
        assert_eq!(file_stem("x_y"), "x_5Fy");
        assert_eq!(file_stem("x/y"), "x_2Fy");
        assert_eq!(file_stem("a b"), "a_20b");
        assert_eq!(file_stem("a?b"), "a_3Fb");
        assert_eq!(file_stem("é"), "_C3_A9");
        assert_eq!(file_stem("."), "_2E");
        assert_eq!(file_stem(".."), "_2E_2E");
        assert_eq!(file_stem("Web"), "_57eb");
        assert_eq!(file_stem(""), "_");
    }

    /// Decoding the short form gives the name back, so distinct names
    /// never share a stem.
    #[test]
    fn short_stems_decode_to_the_name() {
        let decode = |s: &str| {
            let b = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'_' {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        };
        for n in ["x_y", "x_5Fy", "a b", "é", "_2E", "MiXeD/Case.1", "-"] {
            assert_eq!(decode(&file_stem(n)), n);
        }
    }

    #[test]
    fn long_names_are_cut_and_told_apart_by_their_hash() {
        let a = format!("{}a", "x".repeat(300));
        let b = format!("{}b", "x".repeat(300));
        let (sa, sb) = (file_stem(&a), file_stem(&b));
        assert_ne!(sa, sb);
        // 182 bytes of the name, `_Z`, 16 hex digits.
        assert_eq!(sa.len(), MAX_STEM);
        assert!(sa.starts_with(&"x".repeat(182)) && sa[182..].starts_with("_Z"));
        // An escape is never split: `.` (3 bytes escaped) repeated puts an
        // escape across byte 182; the cut goes before it.
        let dots = file_stem(&".".repeat(100));
        assert_eq!(&dots[..dots.len() - 18], "_2E".repeat(60));
        // A name whose escaped form just fits stays whole.
        assert_eq!(file_stem(&"y".repeat(MAX_STEM)), "y".repeat(MAX_STEM));
    }
}
