//! Scenario files: the TOML format users write, and the validated [`Config`]
//! the rest of eremu runs on.
//!
//! Parsing happens once. [`raw`] mirrors the file (unknown keys are errors),
//! `validate` turns it into a [`Config`] whose values are all present, in
//! range and consistent, and every error names the file, line, column and key.

pub mod config;
pub mod control;
pub mod limits;
mod locate;
pub mod raw;
mod validate;

use std::ops::Range;
use std::path::Path;

pub use config::*;
pub use locate::{locate, Location};

/// The built-in default scenario, run by `eremu` without arguments.
pub const DEFAULT_SCENARIO: (&str, &str) = (
    "failover-to-vpn.toml",
    include_str!("../../scenarios/failover-to-vpn.toml"),
);

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
}

impl ScenarioError {
    pub(crate) fn at(
        file: &str,
        source: &str,
        span: Option<Range<usize>>,
        message: String,
    ) -> Self {
        let Location { line, column, key } = locate(source, span);
        ScenarioError::Invalid {
            file: file.to_string(),
            line,
            column,
            key,
            message,
        }
    }
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Config, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        file: file.clone(),
        source,
    })?;
    parse(&file, &text)
}

/// Validates scenario text; `file` is used in error messages only.
pub fn parse(file: &str, text: &str) -> Result<Config, ScenarioError> {
    let raw: raw::RawScenario = toml::from_str(text).map_err(|e| {
        // toml's messages end with a newline and sometimes repeat the position.
        let message = e.message().trim().to_string();
        ScenarioError::at(file, text, e.span(), message)
    })?;
    validate::validate(&validate::Ctx { file, source: text }, raw)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
