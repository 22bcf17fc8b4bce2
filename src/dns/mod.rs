//! DNS serving: the hot path ([`wire`]), the UDP/TCP listeners
//! ([`server`]) with the UDP workers' batched socket loop ([`batch`]) and
//! the TCP connection table ([`tcp`]), forwarding of names outside the
//! domain ([`forward`]), zone transfers and signed queries ([`transfer`],
//! from the versions [`journal`] remembers), NOTIFY to secondaries
//! ([`notify`]), response rate limiting of UDP answers ([`rrl`]), and the
//! DNS counters ([`metrics`]).

pub mod batch;
pub mod forward;
pub mod journal;
pub mod metrics;
pub mod notify;
pub mod rrl;
pub mod server;
pub mod tcp;
pub mod transfer;
pub mod wire;
