//! Helpers shared by the test files that run tshark on eremu's captures.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::Command;

/// Whether tshark is installed. `.ci/run` installs it and sets
/// `EREMU_REQUIRE_TSHARK=1`, so there a missing tshark fails; elsewhere the
/// caller's test says it is skipped and passes.
pub fn have_tshark() -> bool {
    let found = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("EREMU_REQUIRE_TSHARK").is_none(),
            "tshark is required (EREMU_REQUIRE_TSHARK is set)"
        );
        eprintln!("SKIPPED: tshark is not installed (apt-get install -y tshark)");
    }
    found
}

/// Runs tshark on `file` with checksum validation on and the personal
/// configuration directory `conf` (where an `esp_sa` file may be).
pub fn tshark(conf: &Path, file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .env("XDG_CONFIG_HOME", conf)
        .env("HOME", conf)
        .args([
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-r",
        ])
        .arg(file)
        .args(args)
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Installs `out/esp_sa` in the configuration directory `conf`, with ESP
/// decryption on, as a user would in their Wireshark profile.
pub fn install_esp_sa(conf: &Path, out: &Path) {
    let ws = conf.join("wireshark");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::copy(out.join("esp_sa"), ws.join("esp_sa")).unwrap();
    std::fs::write(
        ws.join("preferences"),
        "esp.enable_encryption_decode: TRUE\n",
    )
    .unwrap();
}

/// The text of a shipped scenario.
pub fn text(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{name}.toml")),
    )
    .unwrap()
}

/// A shipped scenario, validated.
pub fn load(name: &str) -> eremu::scenario::Config {
    eremu::scenario::parse(&format!("{name}.toml"), &text(name)).unwrap_or_else(|e| panic!("{e}"))
}
