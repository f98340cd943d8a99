//! Live mode: the scenario's model between two real network interfaces, in
//! real time. Frames read on the on-premises interface cross the modeled
//! circuit to the Azure interface and back, with the same code as `run`
//! ([`crate::ingress::Driver`]); only the clock differs: virtual time is the
//! wall time since the start, and the engine is run up to it continuously.
//!
//! Threads: one receive and one transmit thread per interface, the engine on
//! the caller's thread, joined by crossbeam channels. The engine thread
//! sleeps until the next modeled event or the next frame, whichever comes
//! first. How late frames leave compared with the virtual time the model
//! delivered them is recorded (`ingress.lag_ns` in the report), so that users
//! see when the machine cannot keep up.

mod iface;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use hdrhistogram::Histogram;

use crate::ingress::{Driver, DriverError, Side};
use crate::scenario::Config;
use crate::units::SimTime;
use crate::Report;

pub use iface::TxStats;

/// The one wall clock of live mode: virtual time is the time since `start`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> SimTime {
        SimTime(self.start.elapsed().as_nanos() as u64)
    }

    /// How long until virtual time `t` (zero if it has passed).
    pub fn until(&self, t: SimTime) -> Duration {
        Duration::from_nanos(t.0.saturating_sub(self.now().0))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no interface named {name:?} (interfaces here: {available})")]
    NoInterface { name: String, available: String },
    #[error("cannot open interface {name}: {source}")]
    Open {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--onprem and --azure must be two different interfaces (both are {0})")]
    SameInterface(String),
    #[error("starting the interface threads: {0}")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// What `eremu live` was asked.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub onprem: String,
    pub azure: String,
    pub out: PathBuf,
    pub capture: bool,
    pub max_flows: usize,
}

/// The longest the engine thread sleeps without looking at the stop flag.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// Runs `cfg` between the two interfaces until its duration has passed or
/// `stop` is set (Ctrl-C), then writes the report, capture and views as a
/// `run` does.
pub fn run(cfg: &Config, opts: &LiveOptions, stop: Arc<AtomicBool>) -> Result<Report, LiveError> {
    if opts.onprem == opts.azure {
        return Err(LiveError::SameInterface(opts.onprem.clone()));
    }
    let onprem = iface::open(&opts.onprem)?;
    let azure = iface::open(&opts.azure)?;
    let mut driver = Driver::start(cfg, &opts.out, opts.capture, opts.max_flows)?;
    let clock = Clock::start();
    let (arrivals_tx, arrivals) = crossbeam_channel::unbounded();
    let stats = [Arc::new(TxStats::default()), Arc::new(TxStats::default())];
    let mut threads = Vec::new();
    let mut out = Vec::new();
    for (port, side) in [(onprem, Side::Onprem), (azure, Side::Azure)] {
        let (tx, handles) = port
            .spawn(
                side,
                clock,
                arrivals_tx.clone(),
                stop.clone(),
                stats[side as usize].clone(),
            )
            .map_err(LiveError::Thread)?;
        out.push(tx);
        threads.extend(handles);
    }
    drop(arrivals_tx);
    let mut lag = Histogram::<u64>::new(3).expect("3 significant digits are valid");
    let send = |side: Side, frame: Vec<u8>| {
        // A closed channel means its thread ended; the frame is lost either way.
        let _ = out[side as usize].send(frame);
    };
    // A frame read at virtual time `t` enters the model (never before the
    // model's present); a bridged one leaves at once.
    let arrive = |driver: &mut Driver, (side, t, frame): iface::Arrival| {
        let t = t.max(driver.now());
        if let Some((to, frame)) = driver.frame(t, Some(side), frame) {
            send(to, frame);
        }
    };
    let end = driver.end();
    let mut stopped_at = end;
    loop {
        let now = clock.now();
        if stop.load(Ordering::Relaxed) {
            stopped_at = now.min(end);
            break;
        }
        if now >= end {
            break;
        }
        // Frames that arrived, in arrival order, then the model up to now.
        while let Ok(a) = arrivals.try_recv() {
            arrive(&mut driver, a);
        }
        driver.advance(now);
        for (t, side, frame) in driver.delivered() {
            let _ = lag.record(clock.now().0.saturating_sub(t.0));
            send(side, frame);
        }
        let wake = driver.next_deadline().unwrap_or(end).min(end);
        let wait = clock.until(wake).min(MAX_SLEEP);
        match arrivals.recv_timeout(wait) {
            Ok(a) => arrive(&mut driver, a),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                stopped_at = clock.now().min(end);
                break;
            }
        }
    }
    // Stop the readers, let the writers drain, then count what they did.
    stop.store(true, Ordering::Relaxed);
    drop(out);
    for t in threads {
        let _ = t.join();
    }
    for (side, s) in [(Side::Onprem, &stats[0]), (Side::Azure, &stats[1])] {
        let written = s.written.load(Ordering::Relaxed);
        let errors = s.errors.load(Ordering::Relaxed);
        let (w, e) = match side {
            Side::Onprem => ("written-onprem", "write-errors-onprem"),
            Side::Azure => ("written-azure", "write-errors-azure"),
        };
        driver.count(w, written);
        driver.count(e, errors);
    }
    let source = format!("onprem={} azure={}", opts.onprem, opts.azure);
    let lag = crate::observe::report::latency_of(&lag);
    Ok(driver.finish(stopped_at, "live", source, Some(lag))?)
}
