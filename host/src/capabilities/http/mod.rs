//! The `http` capability: outgoing `wasi:http` requests, only to granted hosts.
//!
//! The host checks every request's authority against the grants before anything leaves the
//! process, counts requests against `Limits::http_requests`, and adds a granted host's secret
//! header itself, so the guest never sees the credential.

mod config;
mod host;

pub use config::{HostGrant, HostGrantError};
pub(crate) use host::HttpGate;
