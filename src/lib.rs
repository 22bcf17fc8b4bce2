//! Mesos-DNS in Rust: DNS-based service discovery for Apache Mesos.
//!
//! The crate follows the data (docs/architecture.md): master detection → state fetch
//! → record generation → compiled zone → DNS/HTTP serving.

pub mod addr;
pub mod app;
pub mod cli;
pub mod config;
pub mod detect;
pub mod dns;
pub mod fetch;
pub mod generate;
pub mod http;
pub mod labels;
pub mod memory;
pub mod metrics;
pub mod proto;
pub mod records;
pub mod refresh;
pub mod snapshot;
pub mod state;
pub mod zone;

/// The version `-version` prints and `/v1/version` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The log target of the few lines a newcomer sees at the default
/// verbosity: where the server listens and where its records come from,
/// and when the first records are in service.
pub const START: &str = "mesos_dns::start";
