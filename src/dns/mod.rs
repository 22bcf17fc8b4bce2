//! DNS serving: the hot path ([`wire`]), the UDP/TCP listeners
//! ([`server`]) with the UDP workers' batched socket loop ([`batch`]),
//! forwarding of names outside the domain ([`forward`]), and the DNS
//! counters ([`metrics`]).

pub mod batch;
pub mod forward;
pub mod metrics;
pub mod server;
pub mod tcp;
pub mod wire;
