//! The `eremu` command line: parse flags, call the library, print.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use eremu::scenario::{self, DEFAULT_SCENARIO};

#[derive(Parser)]
#[command(
    name = "eremu",
    version,
    about = "Packet-level data-plane emulator for Azure ExpressRoute"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: print the summary, write report.json.
    Run {
        /// Scenario file (TOML). Without it, the built-in `failover-to-vpn`.
        scenario: Option<PathBuf>,
        /// Output directory [default: captures/<scenario name>]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
        /// Write no capture, whatever the scenario says.
        #[arg(long)]
        no_capture: bool,
    },
    /// Check scenario files and report every problem with file, line and key.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
}

fn load(path: &Option<PathBuf>) -> anyhow::Result<scenario::Config> {
    Ok(match path {
        Some(p) => scenario::load(p)?,
        None => scenario::parse(DEFAULT_SCENARIO.0, DEFAULT_SCENARIO.1)?,
    })
}

fn run(
    scenario: Option<PathBuf>,
    out: Option<PathBuf>,
    seed: Option<u64>,
    quiet: bool,
    capture: bool,
) -> anyhow::Result<()> {
    let mut cfg = load(&scenario)?;
    if let Some(seed) = seed {
        cfg.seed = seed;
    }
    let out = out.unwrap_or_else(|| PathBuf::from("captures").join(&cfg.name));
    let report = eremu::run(&cfg, &out, capture).context("writing the outputs")?;
    if !quiet {
        print!("{}", eremu::observe::summary::render(&report));
        println!("report: {}", out.join("report.json").display());
        if let Some(c) = &report.capture {
            for f in &c.files {
                println!("capture: {}", out.join(f).display());
            }
            if cfg.vpn.is_some() {
                println!(
                    "esp_sa: {} (Wireshark ESP SA table; see README)",
                    out.join("esp_sa").display()
                );
            }
        }
    }
    let broken = report.conservation_errors();
    anyhow::ensure!(
        broken.is_empty(),
        "internal error: packet conservation fails for flows {broken:?}"
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(None, None, None, false, true),
        Some(Command::Run {
            scenario,
            out,
            seed,
            quiet,
            no_capture,
        }) => run(scenario, out, seed, quiet, !no_capture),
        Some(Command::Validate { scenarios }) => {
            let mut failed = 0;
            for path in &scenarios {
                match scenario::load(path) {
                    Ok(cfg) => println!(
                        "{}: ok ({}, {} flows, {} events)",
                        path.display(),
                        cfg.name,
                        cfg.flows.len(),
                        cfg.events.len()
                    ),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                Err(anyhow::anyhow!(
                    "{failed} of {} scenario files are invalid",
                    scenarios.len()
                ))
            } else {
                Ok(())
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
