//! Limits that protect the machine a scenario runs on. Each is checked when
//! the scenario is validated, and its message names the limit, so that a
//! scenario `eremu validate` accepts runs to its end in bounded memory.
//!
//! They are far above anything a real deployment needs (the README's
//! "Limits" section gives each with its reason and the peak memory measured
//! at the limit); what they refuse are values that would only exhaust
//! memory or never finish.

use crate::units::{BitRate, ByteSize, SimDuration};

/// Longest run: a week of virtual time. A day of backup windows or a week
/// of voice traffic fit; the time series and its per-minute books are
/// fitted to the duration, so memory does not grow with it.
pub const MAX_DURATION: SimDuration = SimDuration::from_secs(7 * 24 * 3600);

/// Most `[[flows]]` in one scenario. Each flow keeps a few KB of books while
/// idle and its latency histogram once it delivers.
pub const MAX_FLOWS: usize = 10_000;

/// Highest offered rate of one flow: ten times the fastest port a circuit
/// can have (ExpressRoute Direct, 100 Gbps). Above it a flow would only be
/// dropped at its first queue, at a cost in events of billions per second.
pub const MAX_FLOW_RATE: BitRate = BitRate(1_000_000_000_000);

/// Largest socket buffer of a TCP flow: 64 MiB, ten times Linux's default
/// `tcp_rmem` maximum (6 MiB) and enough for a 100 Gbps x 5 ms window.
pub const MAX_TCP_BUFFER: ByteSize = ByteSize(64 << 20);

/// Most socket buffer bytes over all TCP flows of a scenario (`buffer` x
/// flows). Each flow has four buffers (send and receive at both hosts),
/// touched as they fill; a bulk transfer fills its sender's.
pub const MAX_TCP_BUFFER_TOTAL: ByteSize = ByteSize(256 << 20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_what_real_deployments_need() {
        // A 100 Gbps x 5 ms bandwidth-delay product fits one buffer.
        assert!(100_000_000_000u64 / 8 / 200 <= MAX_TCP_BUFFER.bytes());
        // The fastest port, overloaded tenfold, is still a valid offer.
        assert_eq!(MAX_FLOW_RATE.bps(), 10 * BitRate::from_gbps(100).bps());
        // A 24-hour backup window is a valid duration.
        assert!(SimDuration::from_secs(24 * 3600) <= MAX_DURATION);
    }
}
