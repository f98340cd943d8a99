//! Real frames into the model, for live mode and replay: which flow a frame
//! from outside belongs to, and what becomes of the frames the model does
//! not carry.
//!
//! eremu stands between the two sides as a transparent bridge with the
//! circuit inside it:
//!
//! - IP packets from a host in one side's prefixes to a host in the other
//!   side's cross the model: one flow per 5-tuple (protocol, addresses,
//!   ports), direction `in` from on-premises to Azure, `out` back; the
//!   frame's bytes (and its Ethernet addresses) travel unchanged.
//! - ARP and IPv6 neighbor discovery cross at once, unmodeled, so that hosts
//!   on both sides find each other without static neighbors (the circuit's
//!   routers are not hosts the applications see).
//! - Everything else is not carried and is counted with its cause:
//!   `not-ip` (LLDP, STP, ...), `link-scoped` (multicast, broadcast,
//!   link-local IP), `outside-prefixes` (an address in neither side's
//!   prefixes), `wrong-side` (a frame arriving from the side its destination
//!   is on), `runt`, `malformed-ip`, `malformed`, `flow-table-full`; replay
//!   adds `oversize` (a record longer than any link carries).
//!
//! The classifier is a state machine without a clock: the caller passes the
//! virtual time, and the flow table is ordered, so that the same frames give
//! the same flows in the same order.

mod classify;
mod driver;

#[cfg(test)]
pub(crate) use classify::tests as testing;
pub use classify::{Ingress, Side, Verdict};
pub use driver::{Driver, DriverError};
