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
pub mod forward;
pub mod generate;
pub mod http;
pub mod labels;
pub mod memory;
pub mod metrics;
pub mod records;
pub mod refresh;
pub mod state;
pub mod zone;
