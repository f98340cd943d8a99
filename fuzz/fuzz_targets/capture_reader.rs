//! Fuzzes the reader behind `eremu replay`: whatever bytes a capture file
//! holds, reading it must end, with frames or an error, never panic, and
//! never allocate from a length it read: the most it holds is one block of
//! 16 MiB (`MAX_BLOCK`), so the limits below catch any larger allocation.
//!
//! From the repository root, with cargo-fuzz installed
//! (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets a stable toolchain
//! take the sanitizer flags cargo-fuzz passes:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run capture_reader -- -max_total_time=60 \
//!     -malloc_limit_mb=64 -rss_limit_mb=512
//! ```
#![no_main]

use eremu::replay::reader::CaptureReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = std::io::Cursor::new(data.to_vec());
    if let Ok(reader) = CaptureReader::from_reader("fuzz-input", input) {
        // The iterator ends after an error, so this loop ends too.
        for _frame in reader {}
    }
});
