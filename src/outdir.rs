//! The output directory of a run: a run owns it. Before writing, it
//! removes what an earlier run of eremu wrote there, so that nothing of
//! that run (a capture after `--no-capture`, the latency files of a renamed
//! flow, temporary files of a run that was killed) lies beside the new
//! report. Only files eremu writes are removed, by name:
//!
//! - `report.json`, `report.html`, `timeseries.csv`, `esp_sa`;
//! - the captures: `capture.pcapng` and `<tap>.pcapng` for every tap;
//! - in `plots/`, the plots eremu draws (`*.svg`); in `latency/`, the
//!   HdrHistogram files (`*.hgrm`, `*.hlog`);
//! - temporary files (`*.partial`) in the directory, `plots/` and
//!   `latency/`.
//!
//! `plots/` and `latency/` are removed when that leaves them empty. Any
//! other file stays.

use std::path::{Path, PathBuf};

use crate::scenario::CaptureTap;
use crate::OutputError;

/// Files at the top of the directory that every run may write.
const TOP: [&str; 4] = ["report.json", "report.html", "timeseries.csv", "esp_sa"];

/// Subdirectories eremu writes, with the extensions of the files it writes
/// there.
const SUBDIRS: [(&str, &[&str]); 2] = [("plots", &["svg"]), ("latency", &["hgrm", "hlog"])];

/// Creates `dir` if needed and removes what an earlier run wrote there (see
/// the module's documentation). `dir` naming something else than a
/// directory is an error.
pub fn prepare(dir: &Path) -> Result<(), OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(OutputError::NotADirectory(dir.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir)(e)),
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let captures = CaptureTap::ALL
        .iter()
        .map(|t| format!("{}.pcapng", t.name()))
        .chain(["capture.pcapng".to_string()]);
    let named = TOP.iter().map(|n| n.to_string()).chain(captures);
    for name in named {
        remove(&dir.join(name))?;
    }
    remove_with_extensions(dir, &["partial"])?;
    for (sub, extensions) in SUBDIRS {
        let sub = dir.join(sub);
        if !sub.is_dir() {
            continue;
        }
        remove_with_extensions(&sub, extensions)?;
        remove_with_extensions(&sub, &["partial"])?;
        // Fails, as it should, when the user's files are left in it.
        let _ = std::fs::remove_dir(&sub);
    }
    Ok(())
}

/// Removes the temporary files a run that ends early leaves in `dir`.
pub fn remove_partials(dir: &Path) -> Result<(), OutputError> {
    remove_with_extensions(dir, &["partial"])?;
    for (sub, _) in SUBDIRS {
        let sub = dir.join(sub);
        if sub.is_dir() {
            remove_with_extensions(&sub, &["partial"])?;
        }
    }
    Ok(())
}

/// Removes the regular files of `dir` (not its subdirectories) whose
/// extension is one of `extensions`.
fn remove_with_extensions(dir: &Path, extensions: &[&str]) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
        })
        .collect();
    for f in files {
        remove(&f)?;
    }
    Ok(())
}

/// Removes the file `path` if it is one (never a directory).
fn remove(path: &Path) -> Result<(), OutputError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(path).map_err(|source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        }),
        _ => Ok(()),
    }
}
