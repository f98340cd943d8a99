//! Observers: what watches the network from outside and what is made of it.
//! Metrics implement the model's `Tap`; reports and summaries read metrics.

pub mod metrics;
pub mod report;
pub mod summary;

pub use report::Report;
