//! DNS serving: the hot path ([`wire`]) and the UDP/TCP listeners
//! ([`server`]).

pub mod batch;
pub mod server;
pub mod wire;
