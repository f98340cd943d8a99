//! The `eremu` command line: parse flags, call the library, print.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use eremu::check::{self, CheckOptions, CheckRun};
use eremu::scenario::{self, Tolerance, DEFAULT_SCENARIO};

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

#[derive(clap::Args, Default)]
struct RunArgs {
    /// Scenario file (TOML). Without it, the built-in `failover-to-vpn`.
    scenario: Option<PathBuf>,
    /// Output directory [default: captures/<scenario name>]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Write no capture, whatever the scenario says.
    #[arg(long)]
    no_capture: bool,
    /// Check the scenario's [[expect]] tables: exit 1 when one fails.
    #[arg(long)]
    check: bool,
    /// Worker threads [default: the number of cores]; results do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    #[command(flatten)]
    halves: HalvesArg,
    #[command(flatten)]
    print: PrintArgs,
}

#[derive(clap::Args, Default)]
struct HalvesArg {
    /// Without capture, run each direction in a sending and a receiving
    /// half, so that one direction's traffic can use two threads (results
    /// are the same; experimental: on the 2-core machine the README
    /// measures, it runs at 0.3x to 1.25x the speed of one thread).
    #[arg(long)]
    halves: bool,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Scenario file (TOML). Without it, the built-in `failover-to-vpn`.
    scenario: Option<PathBuf>,
    /// Threads of the parallel measurement [default: the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    /// Override the scenario's duration (e.g. "60s").
    #[arg(long)]
    duration: Option<eremu::units::SimDuration>,
    /// Runs per measurement; the fastest counts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Also measure the run with every tap captured for its whole run
    /// (headers: snaplen 128; full: whole frames), against the same run
    /// without capture; files go to a temporary directory. A full capture
    /// of a 1 Gbps scenario writes about 600 MB per simulated second.
    #[arg(long, value_enum, default_value_t = eremu::bench::CaptureMode::None)]
    capture: eremu::bench::CaptureMode,
    #[command(flatten)]
    halves: HalvesArg,
}

#[derive(clap::Args)]
struct LiveArgs {
    /// Scenario file (TOML): the circuit real traffic crosses.
    scenario: PathBuf,
    /// Interface on the on-premises side (frames from it go to Azure).
    #[arg(long, value_name = "IFACE")]
    onprem: String,
    /// Interface on the Azure side.
    #[arg(long, value_name = "IFACE")]
    azure: String,
    /// Run this long instead of the scenario's duration (Ctrl-C stops earlier).
    #[arg(long)]
    duration: Option<eremu::units::SimDuration>,
    /// Output directory [default: captures/<scenario name>-live]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write no capture, whatever the scenario says.
    #[arg(long)]
    no_capture: bool,
    /// Most flows (5-tuples) of real traffic; frames of further flows are dropped and counted.
    #[arg(long, default_value_t = 1024)]
    max_flows: usize,
    #[command(flatten)]
    print: PrintArgs,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture to replay: pcap or pcapng (Ethernet, raw IP, Linux cooked, loopback).
    capture: PathBuf,
    /// Scenario file (TOML): the circuit the capture's traffic crosses.
    scenario: PathBuf,
    /// Replay speed: 2x plays twice as fast as captured, 0.5x half as fast.
    #[arg(long, default_value = "1x")]
    speed: eremu::replay::Speed,
    /// Run this long [default: the capture's span at that speed, plus 1 s to drain].
    #[arg(long)]
    duration: Option<eremu::units::SimDuration>,
    /// Output directory [default: captures/<scenario name>-replay]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write no capture of the model's links.
    #[arg(long)]
    no_capture: bool,
    /// Most flows (5-tuples); frames of further flows are dropped and counted
    /// (flow-table-full). Each costs about 5 KB and a row in each output: the
    /// default holds about 50 MB of flow state.
    #[arg(long, default_value_t = eremu::replay::DEFAULT_MAX_FLOWS)]
    max_flows: usize,
    #[command(flatten)]
    print: PrintArgs,
}

/// How a finished run is printed.
#[derive(clap::Args, Default)]
struct PrintArgs {
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// How the summary is printed: table (text), json (report.json's content) or markdown.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: print the summary, write report.json and the capture.
    Run(RunArgs),
    /// Carry real traffic between two network interfaces through the modeled
    /// circuit, in real time (needs root or CAP_NET_RAW).
    Live(LiveArgs),
    /// Replay a pcap/pcapng capture through a scenario's circuit in virtual
    /// time: per flow (5-tuple), what it would deliver, drop and delay.
    Replay(ReplayArgs),
    /// Measure the engine: packet-hops, simulated seconds and events per
    /// wall-second, and peak memory, on 1 thread and on N threads.
    Bench(BenchArgs),
    /// Check scenario files and report every problem with file, line and key.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Run scenarios and record their metrics as baselines: <out>/<scenario name>.json.
    Baseline {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Directory of the baseline files (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Rerun scenarios, compare with their baselines and check their [[expect]] tables.
    /// Exit status: 0 all pass, 1 a regression, 2 an input error.
    Check {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Directory of the baselines recorded by `eremu baseline`.
        #[arg(long, value_name = "DIR")]
        baseline: Option<PathBuf>,
        /// Tolerance for matching metrics: absolute (10, "2us") or relative ("1%"); repeatable.
        #[arg(long, value_name = "METRIC=VALUE", value_parser = check::parse_tolerance_arg)]
        tolerance: Vec<(String, Tolerance)>,
        /// Also compare the engine speed (hops per wall-clock second).
        #[arg(long)]
        speed: bool,
        /// How much slower than the baseline the engine may be.
        #[arg(long, value_name = "PERCENT", default_value = "50%", value_parser = check::parse_speed_tolerance)]
        speed_tolerance: f64,
        /// Show every metric, not only the failures.
        #[arg(long, short)]
        verbose: bool,
        /// Write JUnit XML: one testsuite per scenario, one testcase per metric.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Compare even when a scenario file changed since its baseline was recorded.
        #[arg(long)]
        allow_changed_scenario: bool,
    },
}

/// The summary's format on stdout.
#[derive(Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
enum Format {
    #[default]
    Table,
    Json,
    Markdown,
}

/// A progress bar on stderr, shown once a run has taken a second of wall
/// time, and only when stderr is a terminal. It only watches the run.
struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    enabled: bool,
    started: std::time::Instant,
    last: std::time::Instant,
}

impl ProgressBar {
    fn new(enabled: bool) -> Self {
        use std::io::IsTerminal;
        let now = std::time::Instant::now();
        ProgressBar {
            bar: None,
            enabled: enabled && std::io::stderr().is_terminal(),
            started: now,
            last: now,
        }
    }

    fn update(&mut self, p: &eremu::Progress) {
        if !self.enabled {
            return;
        }
        let wall = self.started.elapsed();
        if wall < std::time::Duration::from_secs(1)
            || self.last.elapsed() < std::time::Duration::from_millis(100)
        {
            return;
        }
        self.last = std::time::Instant::now();
        let bar = self.bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(p.end.0);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:20} {msg}").expect("valid template"),
            );
            b
        });
        bar.set_position(p.now.0);
        let secs = wall.as_secs_f64();
        bar.set_message(format!(
            "{:.2}/{:.2} s simulated, {:.2}x real time, {:.3} M packets/s",
            p.now.0 as f64 / 1e9,
            p.end.0 as f64 / 1e9,
            p.now.0 as f64 / 1e9 / secs,
            p.packets as f64 / secs / 1e6
        ));
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

fn load(path: &Option<PathBuf>) -> anyhow::Result<scenario::Config> {
    Ok(match path {
        Some(p) => scenario::load(p)?,
        None => scenario::parse(DEFAULT_SCENARIO.0, DEFAULT_SCENARIO.1)?,
    })
}

/// A `--duration` flag, refused when zero.
fn positive(
    d: Option<eremu::units::SimDuration>,
) -> anyhow::Result<Option<eremu::units::SimDuration>> {
    if let Some(d) = d {
        anyhow::ensure!(d.as_nanos() > 0, "--duration must be longer than zero");
    }
    Ok(d)
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let mut cfg = load(&args.scenario)?;
    if let Some(d) = positive(args.duration)? {
        cfg.set_duration(d).context("--duration")?;
    }
    let threads = args
        .threads
        .map_or_else(eremu::default_threads, |t| t as usize);
    let result = eremu::bench::run(&cfg, threads, args.repeat, args.capture, args.halves.halves)?;
    print!("{}", result.render());
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs {
        scenario,
        out,
        seed,
        no_capture,
        check: expect,
        threads,
        halves,
        print,
    } = args;
    let PrintArgs { quiet, format } = print;
    let threads = threads.map_or_else(eremu::default_threads, |t| t as usize);
    let mut cfg = load(&scenario)?;
    if let Some(seed) = seed {
        cfg.set_seed(seed);
    }
    let out = out.unwrap_or_else(|| PathBuf::from("captures").join(&cfg.name));
    eremu::interrupt::install().context("installing the SIGINT and SIGTERM handlers")?;
    let hook = eremu::interrupt::test_hook();
    let mut windows = 0u64;
    let mut bar = ProgressBar::new(!quiet);
    let result = eremu::run_stoppable(&cfg, &out, !no_capture, threads, halves.halves, &mut |p| {
        bar.update(p);
        windows += 1;
        if let Some((sig, _)) = hook.filter(|&(_, n)| n == windows) {
            eremu::interrupt::raise(sig);
        }
        match eremu::interrupt::received() {
            Some(_) => ControlFlow::Break(()),
            None => ControlFlow::Continue(()),
        }
    });
    bar.finish();
    let report = result.context("writing the outputs")?;
    print_report(&cfg, &report, &out, &print);
    let broken = report.conservation_errors();
    anyhow::ensure!(
        broken.is_empty(),
        "internal error: packet conservation fails for flows {broken:?}"
    );
    if report.interrupted {
        return Ok(interrupted(&report, expect));
    }
    if expect {
        let results = check::expect::evaluate(&cfg, &check::flatten::flatten(&report))?;
        let failed = results.iter().filter(|r| !r.passed).count();
        let text = check::expect::render(&results, !quiet);
        // Keep stdout parseable when it holds JSON or Markdown.
        let table = format == Format::Table;
        if table {
            print!("{text}");
        } else {
            eprint!("{text}");
        }
        anyhow::ensure!(
            failed == 0,
            "{failed} of {} expectations failed",
            results.len()
        );
        let line = if results.is_empty() {
            "expectations: the scenario has no [[expect]] table".to_string()
        } else {
            format!("expectations: all {} hold", results.len())
        };
        if !quiet && table {
            println!("{line}");
        } else if !quiet {
            eprintln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr that a run was interrupted, and returns its exit status
/// (128 + the signal's number).
fn interrupted(report: &eremu::Report, expect: bool) -> ExitCode {
    let sig = eremu::interrupt::received().unwrap_or(libc::SIGINT);
    eprintln!(
        "eremu: interrupted by {}: the outputs cover the first {} of {}{}",
        eremu::interrupt::name(sig),
        eremu::units::SimDuration(report.duration_ns),
        eremu::units::SimDuration(report.scenario_duration_ns.unwrap_or(report.duration_ns)),
        if expect {
            "; expectations not checked"
        } else {
            ""
        }
    );
    ExitCode::from(eremu::interrupt::exit_status(sig))
}

fn live(args: LiveArgs) -> anyhow::Result<()> {
    let mut cfg = scenario::load(&args.scenario)?;
    // Real flows get time series of their own: fit the interval for them.
    let d = positive(args.duration)?.unwrap_or(cfg.duration);
    cfg.set_duration_for_external(d, args.max_flows as u64)
        .context("--duration")?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("captures").join(format!("{}-live", cfg.name)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    eremu::outdir::prepare(&out)?;
    let opts = eremu::live::LiveOptions {
        onprem: args.onprem,
        azure: args.azure,
        out: out.clone(),
        capture: !args.no_capture,
        max_flows: args.max_flows,
    };
    if !args.print.quiet {
        eprintln!(
            "eremu live: {} between {} (on-premises) and {} (Azure) for {}; Ctrl-C stops",
            cfg.name, opts.onprem, opts.azure, cfg.duration
        );
    }
    let report = eremu::live::run(&cfg, &opts, stop)?;
    print_report(&cfg, &report, &out, &args.print);
    Ok(())
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let cfg = scenario::load(&args.scenario)?;
    positive(args.duration)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("captures").join(format!("{}-replay", cfg.name)));
    eremu::outdir::prepare(&out)?;
    let opts = eremu::replay::ReplayOptions {
        file: args.capture,
        speed: args.speed,
        duration: args.duration,
        out: out.clone(),
        capture: !args.no_capture,
        max_flows: args.max_flows,
        stop: eremu::interrupt::stop_flag(),
    };
    eremu::interrupt::install().context("installing the SIGINT and SIGTERM handlers")?;
    let report = eremu::replay::run(&cfg, &opts)?.report;
    print_report(&cfg, &report, &out, &args.print);
    let broken = report.conservation_errors();
    anyhow::ensure!(
        broken.is_empty(),
        "internal error: packet conservation fails for flows {broken:?}"
    );
    if report.interrupted {
        return Ok(interrupted(&report, false));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(
    cfg: &scenario::Config,
    report: &eremu::Report,
    out: &std::path::Path,
    print: &PrintArgs,
) {
    let PrintArgs { quiet, format } = *print;
    if !quiet && format == Format::Json {
        print!("{}", report.to_json(false));
    } else if !quiet && format == Format::Markdown {
        print!("{}", eremu::observe::tables::render_markdown(report));
    } else if !quiet {
        print!("{}", eremu::observe::summary::render(report));
        println!("report: {}", out.join("report.json").display());
        println!(
            "views: {} (plots in {}, time series {}, latency in {})",
            out.join("report.html").display(),
            out.join("plots").display(),
            out.join("timeseries.csv").display(),
            out.join("latency").display()
        );
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
}

fn baseline(scenarios: &[PathBuf], out: &std::path::Path) -> ExitCode {
    let mut failed = 0;
    for r in check::record(scenarios, out) {
        match r {
            Ok(r) => println!(
                "{}: recorded {} metrics in {}",
                r.scenario_file.display(),
                r.metrics,
                r.baseline_file.display()
            ),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    ExitCode::from(if failed > 0 { 2 } else { 0 })
}

fn check_cmd(
    scenarios: &[PathBuf],
    opts: &CheckOptions,
    verbose: bool,
    junit: Option<PathBuf>,
) -> ExitCode {
    let run = CheckRun::run(scenarios, opts);
    print!("{}", run.render(verbose));
    for sc in run.scenarios.iter() {
        if let Some(e) = &sc.error {
            eprintln!("error: {e}");
        }
    }
    if let Some(path) = junit {
        if let Err(e) = eremu::write_atomically(&path, run.junit().as_bytes()) {
            eprintln!("error: writing JUnit XML: {e}");
            return ExitCode::from(2);
        }
    }
    ExitCode::from(run.exit_code())
}

/// An error and its causes on one line, `: ` between them, leaving out a
/// cause whose text its parent already ends with (an I/O error shown with
/// the path it concerns is not repeated).
fn chain_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(RunArgs::default()),
        Some(Command::Run(args)) => run(args),
        Some(Command::Bench(args)) => bench(args).map(|()| ExitCode::SUCCESS),
        Some(Command::Live(args)) => live(args).map(|()| ExitCode::SUCCESS),
        Some(Command::Replay(args)) => replay(args),
        Some(Command::Baseline { scenarios, out }) => return baseline(&scenarios, &out),
        Some(Command::Check {
            scenarios,
            baseline,
            tolerance,
            speed,
            speed_tolerance,
            verbose,
            junit,
            allow_changed_scenario,
        }) => {
            let opts = CheckOptions {
                baseline_dir: baseline,
                tolerances: tolerance,
                speed_tolerance: speed.then_some(speed_tolerance),
                allow_changed_scenario,
            };
            return check_cmd(&scenarios, &opts, verbose, junit);
        }
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
                Ok(ExitCode::SUCCESS)
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain_text(&e));
            ExitCode::FAILURE
        }
    }
}
