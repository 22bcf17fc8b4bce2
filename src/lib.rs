//! Mesos-DNS in Rust: DNS-based service discovery for Apache Mesos.
//!
//! The modules follow the data, in the order it meets them
//! (docs/architecture.md has the whole picture; a test,
//! `tests/it/layers.rs`, holds that every module uses only those before it):
//!
//! - [`cli`] and [`config`]: the inputs, the Go-style flags and the
//!   original's `config.json`, read, validated and parsed once.
//! - [`detect`]: which master leads, from ZooKeeper.
//! - [`fetch`]: one state document from the first master that answers
//!   (HTTP/HTTPS, basic or IAM authentication).
//! - [`state`]: the master's state document, read leniently, task objects
//!   parsed on a second thread.
//! - [`generate`] (with [`labels`]): the naming rules, a pure function from
//!   a state to a [`records::RecordSet`].
//! - [`records`]: the record set and its JSON views (`/v1/axfr`,
//!   `/v1/enumerate`).
//! - [`zone`]: the record set compiled into wire-encoded RRsets behind a
//!   name index.
//! - [`snapshot`]: what is in service, swapped in whole; [`refresh`] runs
//!   fetch → parse → generate → compile → publish on its schedule.
//! - [`dns`]: the UDP/TCP listeners, the hot path, forwarding, and zone
//!   transfers to secondaries (AXFR/IXFR, NOTIFY); [`http`]:
//!   the REST API, `/metrics` and `/health`. Both read the snapshot.
//! - [`app`]: the wiring at the top: every component built, the metrics
//!   exporter, signals and shutdown.
//! - [`watch`]: the client mode (`mesos-dns watch`), which renders templates
//!   from servers' HTTP API; of the crate it uses only the blocking
//!   queries' index header and duration syntax.
//!
//! The leaves, which use nothing else of the crate: [`proto`] (DNS protocol
//! basics, TSIG), [`addr`] (host:port and UPID text), [`metrics`] (histograms
//! and the exporter), [`memory`] (giving memory back, huge pages).

pub mod cli;
pub mod config;
pub mod detect;
pub mod fetch;
pub mod state;
pub mod labels;
pub mod generate;
pub mod records;
pub mod zone;
pub mod snapshot;
pub mod refresh;
pub mod dns;
pub mod http;
pub mod app;
pub mod watch;

pub mod addr;
pub mod memory;
pub mod metrics;
pub mod proto;

/// The version `-version` prints and `/v1/version` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The log target of the few lines a newcomer sees at the default
/// verbosity: where the server listens and where its records come from,
/// and when the first records are in service.
pub const START: &str = "mesos_dns::start";
