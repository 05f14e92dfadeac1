//! The `sockets` capability: no step is granted raw sockets.
//!
//! TCP and UDP are switched on at the protocol level only so that every `connect` and `bind`
//! reaches the address check below, which refuses it and records the denial; the step's
//! failure is then reported as `denied` with the address it tried. Name lookups stay off.

use wasmtime_wasi::WasiCtxBuilder;

use super::{DenialLog, record_denial};

/// Refuses every socket address and records each attempt.
pub(crate) fn prepare(builder: &mut WasiCtxBuilder, denials: &DenialLog) {
    let denials = denials.clone();
    builder
        .allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(false)
        .socket_addr_check(move |addr, usage| {
            record_denial(
                &denials,
                "sockets",
                addr.to_string(),
                &format!("{usage:?} is not granted"),
            );
            Box::pin(async { false })
        });
}
