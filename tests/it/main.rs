//! The integration tests, built as one binary (one link of the server's
//! dependencies instead of one per file). Every test runs against real
//! sockets on 127.0.0.1; the shared pieces (fake masters, DNS clients, the
//! binary as a child process, certificates, ZooKeeper) are in [`harness`].
//!
//! All tests are threads of this one process: a test must not change the
//! environment or the working directory, and tests that load the machine
//! or measure time hold a pass from [`harness::exclusive`].

// Test code: a failure should panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod bad_state;
mod binary;
mod cli;
mod config;
mod dns;
mod dns_edge;
mod faults;
mod forward;
mod health;
mod http;
mod layers;
mod live_prop;
mod ops;
mod ptr;
mod reference;
mod refresh;
mod rrl;
mod secondaries;
mod secure;
mod stream;
mod transfer;
mod watch;
mod watch_command;
mod wire_prop;
mod zk;
