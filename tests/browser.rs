//! `report.html` in a real browser: headless Chromium renders it (a
//! screenshot that is not blank) and its DOM holds the headings, tables and
//! inline SVG plots. Skipped, with a line saying so, when Chromium is not
//! installed, unless `EREMU_REQUIRE_CHROMIUM=1` (CI sets it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Chromium with the flags that keep it off the network and alone.
fn headless(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Decodes an 8-bit RGB or RGBA PNG and tells whether it has more than one
/// colour.
fn png_is_blank(bytes: &[u8]) -> bool {
    use flate2::read::ZlibDecoder;
    use std::io::Read;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut pos = 8;
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    // Undo the filters row by row, then look for a second colour.
    let stride = width * channels;
    let mut prev = vec![0u8; stride];
    let mut first: Option<Vec<u8>> = None;
    for y in 0..height {
        let row = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let filter = row[0];
        let mut cur = row[1..].to_vec();
        for i in 0..stride {
            let a = if i >= channels {
                cur[i - channels] as i32
            } else {
                0
            };
            let b = prev[i] as i32;
            let c = if i >= channels {
                prev[i - channels] as i32
            } else {
                0
            };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("filter {f}"),
            };
            cur[i] = (cur[i] as i32 + add) as u8;
        }
        for px in cur.chunks(channels) {
            match &first {
                None => first = Some(px.to_vec()),
                Some(f) if f.as_slice() != px => return false,
                _ => {}
            }
        }
        prev = cur;
    }
    true
}

#[test]
fn report_html_renders_in_headless_chromium() {
    let required = std::env::var("EREMU_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    let Some(bin) = chromium() else {
        assert!(
            !required,
            "EREMU_REQUIRE_CHROMIUM=1 but chromium is not installed"
        );
        println!("SKIPPED: chromium not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/failover-to-vpn.toml"
    );
    let run = Command::new(env!("CARGO_BIN_EXE_eremu"))
        .args(["run", scenario, "--quiet", "--no-capture", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success());
    let html = out.join("report.html");
    let text = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch, no script.
    for bad in ["<script", "<link", "http://", "https://", "src="] {
        let hits: Vec<_> = text.match_indices(bad).collect();
        // The SVG namespace is the only URL allowed.
        let allowed = text.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        if bad == "http://" {
            assert_eq!(hits.len(), allowed, "{bad}");
        } else {
            assert!(hits.is_empty(), "report.html contains {bad}");
        }
    }
    let url = format!("file://{}", html.display());

    let shot = dir.path().join("shot.png");
    let profile = tempfile::tempdir().unwrap();
    let o = headless(&bin, profile.path())
        .arg("--window-size=1200,2400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.len() > 1000);
    assert!(!png_is_blank(&png), "the screenshot is blank");

    let profile = tempfile::tempdir().unwrap();
    let o = headless(&bin, profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(o.status.success());
    let dom = String::from_utf8_lossy(&o.stdout);
    for h in [
        "<h1>Scenario failover-to-vpn</h1>",
        "<h2>Circuit</h2>",
        "<h2>Traffic</h2>",
        "<h2>Links</h2>",
        "<h2>Flows</h2>",
        "<h2>Outages</h2>",
        "<h2>Failovers</h2>",
        "<h2>Timeline</h2>",
        "<h2>Plots</h2>",
    ] {
        assert!(dom.contains(h), "DOM lacks {h}");
    }
    assert_eq!(dom.matches("<svg").count(), 5, "one inline SVG per plot");
    assert!(dom.contains("<td>backup</td>"));
}
