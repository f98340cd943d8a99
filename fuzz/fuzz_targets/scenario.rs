//! Fuzzes scenario files end to end: whatever text a scenario file holds,
//! `eremu validate` either refuses it with an error or accepts it, and an
//! accepted file then runs (50 ms of virtual time at most, with capture,
//! into a temporary directory) without a panic, a hang or more memory than
//! libFuzzer's limit.
//!
//! From the repository root, with cargo-fuzz installed
//! (`cargo install cargo-fuzz`), the shipped scenarios as the seed corpus
//! and the scenario keys as a dictionary:
//!
//! ```text
//! mkdir -p fuzz/corpus/scenario && cp scenarios/*.toml fuzz/corpus/scenario/
//! RUSTC_BOOTSTRAP=1 cargo fuzz run scenario fuzz/corpus/scenario -- \
//!     -dict=fuzz/scenario.dict -rss_limit_mb=1024 -timeout=60 -max_total_time=1800
//! ```
#![no_main]

use eremu::units::SimDuration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut cfg) = eremu::scenario::parse("fuzz.toml", text) else {
        return;
    };
    let short = cfg.duration.min(SimDuration::from_millis(50));
    cfg.set_duration(short)
        .expect("a shorter duration of a valid scenario is valid");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = eremu::run(&cfg, dir.path(), true, 1).expect("outputs are written");
    assert!(report.conservation_errors().is_empty());
});
