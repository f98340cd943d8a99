//! Baseline files: the metrics of one scenario's run, stored as
//! `<scenario name>.json` with sorted keys and one metric per line, so that a
//! re-recorded baseline reviews as a plain diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::flatten::{Metrics, SPEED_METRIC};
use super::CheckError;

/// Version of the file layout, `format` in the file.
pub const FORMAT: u32 = 1;

/// Largest baseline file read or written, in MiB: about 350,000 metrics,
/// a scenario of some ten thousand flows. Reading one takes about 15 times
/// its size in memory.
pub const MAX_MIB: u64 = 16;

/// A baseline file. Fields are declared in alphabetical order so that the
/// file's keys are sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The eremu that recorded it.
    pub eremu_version: String,
    pub format: u32,
    /// Every deterministic metric of the run (see `flatten`).
    pub metrics: BTreeMap<String, serde_json::Number>,
    /// The scenario's `name`.
    pub scenario: String,
    /// File name (without directory) the scenario was read from.
    pub scenario_file: String,
    /// SHA-256 of the scenario file's bytes, lowercase hex.
    pub scenario_sha256: String,
    /// Machine-dependent numbers, compared only with `--speed`:
    /// `engine.hops_per_second`.
    pub speed: BTreeMap<String, serde_json::Number>,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A metric value as JSON: whole numbers as integers (no `.0`), others as
/// the shortest decimal that reads back to the same `f64`.
fn number(x: f64) -> Option<serde_json::Number> {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Some(serde_json::Number::from(x as i64))
    } else {
        serde_json::Number::from_f64(x)
    }
}

impl Baseline {
    pub fn new(
        scenario: &str,
        scenario_file: &Path,
        scenario_bytes: &[u8],
        metrics: &Metrics,
        speed: Option<f64>,
    ) -> Baseline {
        Baseline {
            eremu_version: env!("CARGO_PKG_VERSION").to_string(),
            format: FORMAT,
            metrics: metrics
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), number(*v)?)))
                .collect(),
            scenario: scenario.to_string(),
            scenario_file: scenario_file
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
            scenario_sha256: sha256_hex(scenario_bytes),
            // Rounded to whole hops per second: finer digits are noise.
            speed: speed
                .and_then(|s| number(s.round()))
                .map(|n| (SPEED_METRIC.to_string(), n))
                .into_iter()
                .collect(),
        }
    }

    /// The metrics as numbers.
    pub fn metric_values(&self) -> Metrics {
        self.metrics
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
            .collect()
    }

    pub fn speed_value(&self) -> Option<f64> {
        self.speed.get(SPEED_METRIC).and_then(|n| n.as_f64())
    }

    /// Pretty JSON, keys sorted, one metric per line, ending in a newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("baseline serializes") + "\n"
    }

    pub fn from_json(path: &Path, text: &str) -> Result<Baseline, CheckError> {
        let corrupt = |message: String| CheckError::CorruptBaseline {
            path: path.to_path_buf(),
            message,
        };
        let b: Baseline = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        if b.format != FORMAT {
            return Err(corrupt(format!(
                "format {} is not supported (this eremu reads format {FORMAT})",
                b.format
            )));
        }
        Ok(b)
    }

    /// Reads `<dir>/<scenario>.json`, which must be the baseline of
    /// `scenario` and at most [`MAX_MIB`] long.
    pub fn load(dir: &Path, scenario: &str, scenario_file: &Path) -> Result<Baseline, CheckError> {
        let path = path_for(dir, scenario);
        let corrupt = |message: String| CheckError::CorruptBaseline {
            path: path.clone(),
            message,
        };
        let text = match read_capped(&path) {
            Ok(Some(bytes)) => {
                String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8 text".into()))?
            }
            Ok(None) => return Err(corrupt(format!("larger than {MAX_MIB} MiB"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CheckError::MissingBaseline {
                    scenario: scenario.to_string(),
                    scenario_file: scenario_file.to_path_buf(),
                    path,
                    dir: dir.to_path_buf(),
                })
            }
            Err(source) => return Err(CheckError::Io { path, source }),
        };
        let b = Baseline::from_json(&path, &text)?;
        if b.scenario != scenario {
            return Err(corrupt(format!(
                "`scenario` is `{}`, not `{scenario}`",
                b.scenario
            )));
        }
        Ok(b)
    }

    /// Writes `<dir>/<scenario>.json`, creating `dir`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, CheckError> {
        std::fs::create_dir_all(dir).map_err(|source| CheckError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = path_for(dir, &self.scenario);
        let json = self.to_json();
        if json.len() as u64 > MAX_MIB << 20 {
            return Err(CheckError::TooLarge {
                path,
                metrics: self.metrics.len(),
            });
        }
        crate::write_atomically(&path, json.as_bytes())?;
        Ok(path)
    }
}

/// The bytes of `path`, or `None` when it is longer than [`MAX_MIB`]:
/// reads at most one byte more than that.
fn read_capped(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let cap = MAX_MIB << 20;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= cap).then_some(bytes))
}

/// Where the baseline of scenario `name` lives in `dir`.
pub fn path_for(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Baseline {
        let mut m = Metrics::new();
        m.insert("flows.b.latency_ns.p99".into(), 1500.0);
        m.insert("links.primary.in.utilization".into(), 0.1);
        m.insert("flows.a.sent_packets".into(), 7.0);
        Baseline::new(
            "s",
            Path::new("dir/s.toml"),
            b"name = \"s\"\n",
            &m,
            Some(1234.4),
        )
    }

    #[test]
    fn json_is_sorted_one_metric_per_line_and_reads_back() {
        let b = sample();
        let text = b.to_json();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        let top: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        let mut sorted = top.clone();
        sorted.sort();
        assert_eq!(top, sorted, "{text}");
        assert!(
            text.contains("\n    \"flows.a.sent_packets\": 7,\n"),
            "{text}"
        );
        assert!(
            text.contains("\"links.primary.in.utilization\": 0.1\n"),
            "{text}"
        );
        assert!(
            text.contains("\"engine.hops_per_second\": 1234\n"),
            "{text}"
        );
        assert!(text.contains("\"scenario_file\": \"s.toml\""), "{text}");
        assert!(keys.contains(&"scenario_sha256"));
        let back = Baseline::from_json(Path::new("x.json"), &text).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.metric_values()["links.primary.in.utilization"], 0.1);
        assert_eq!(back.speed_value(), Some(1234.0));
    }

    #[test]
    fn sha256_is_the_standard_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let text = sample().to_json();
        for bad in [&text[..text.len() / 2], "not json", "{}", "[1, 2]"] {
            let e = Baseline::from_json(Path::new("b/x.json"), bad).unwrap_err();
            assert!(matches!(e, CheckError::CorruptBaseline { .. }), "{e}");
            assert!(e.to_string().starts_with("b/x.json: "), "{e}");
        }
        let future = text.replace("\"format\": 1", "\"format\": 99");
        let e = Baseline::from_json(Path::new("x.json"), &future).unwrap_err();
        assert!(e.to_string().contains("format 99"), "{e}");
    }
}
