//! What the host offers a step beyond its own memory, one module per capability.
//!
//! Every capability follows the same three phases: `link` once per engine (its imports go
//! into the shared linker), configure when a step is declared (grants are parsed and checked
//! here, so a bad grant fails before any step runs) and `prepare` per attempt (fresh,
//! least-privilege state built from the grants alone). Deny by default: a step with no
//! grants sees no files, no network, no environment and no arguments.

pub mod config;
mod denials;
pub mod files;
pub mod http;
pub mod log;
pub mod model;
pub mod sockets;
pub mod state;
pub mod stdio;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::attempt::AttemptState;
pub(crate) use denials::DenialLog;
pub use denials::{Denial, MAX_DENIAL_TARGET_BYTES, MAX_KEPT_DENIALS};

/// Everything a step is granted beyond computing on its input.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Host directories visible to the guest, each read-only unless granted write.
    pub dirs: Vec<files::DirGrant>,
    /// Hosts the guest may reach over outgoing HTTP, with optional injected secrets.
    pub hosts: Arc<[http::HostGrant]>,
    /// Model aliases the guest may call.
    pub models: Vec<String>,
}

/// Records one refused request in the attempt's bounded denial log.
pub(crate) fn record_denial(
    log: &DenialLog,
    capability: &'static str,
    target: String,
    reason: &str,
) {
    log.record(capability, target, reason);
}

/// Adds every capability's imports to the engine's linker.
pub(crate) fn link(linker: &mut Linker<AttemptState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    // Socket constructors are replaced by ones that refuse before a descriptor exists,
    // `open-at` by one that refuses FIFOs and devices, whose open could block for ever, and
    // `insecure-seed` by one that goes on the replay tape when it is read.
    linker.allow_shadowing(true);
    sockets::link(linker)?;
    files::link(linker)?;
    crate::replay::sources::link(linker)?;
    linker.allow_shadowing(false);
    crate::bindings::weir::step::log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    crate::bindings::weir::step::config::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    crate::bindings::weir::step::state::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    crate::bindings::weir::step::model::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}
