//! The `sockets` capability: no step is granted raw sockets, not even an unconnected one.
//!
//! Creating a TCP or UDP socket is refused at once, before the host opens a descriptor for
//! it, and recorded as a denial: a step that loops on `socket()` cannot exhaust the process's
//! file descriptors. The WASI context has TCP and UDP switched off too, and its address check
//! refuses every `connect` and `bind`, should a socket ever be made some other way. Name
//! lookups stay off.

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{SocketError, SocketResult, TcpSocket, UdpSocket};

use super::{DenialLog, record_denial};
use crate::attempt::AttemptState;

/// Switches sockets off in the attempt's WASI context; every address is refused and recorded.
pub(crate) fn prepare(builder: &mut WasiCtxBuilder, denials: &DenialLog) {
    let denials = denials.clone();
    builder
        .allow_tcp(false)
        .allow_udp(false)
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

/// Replaces WASI's socket constructors with ones that refuse and record. Called after the
/// WASI interfaces are linked, with shadowing allowed.
pub(crate) fn link(linker: &mut Linker<AttemptState>) -> anyhow::Result<()> {
    tcp_create_socket::add_to_linker::<_, Refusal>(linker, |s| SocketRefusal(&s.denials))?;
    udp_create_socket::add_to_linker::<_, Refusal>(linker, |s| SocketRefusal(&s.denials))?;
    Ok(())
}

struct Refusal;

impl HasData for Refusal {
    type Data<'a> = SocketRefusal<'a>;
}

/// The view of an attempt that socket constructors get: where to record the refusal.
pub(crate) struct SocketRefusal<'a>(&'a DenialLog);

impl SocketRefusal<'_> {
    fn refuse(&self, protocol: &str, family: IpAddressFamily) -> ErrorCode {
        let family = match family {
            IpAddressFamily::Ipv4 => "ipv4",
            IpAddressFamily::Ipv6 => "ipv6",
        };
        record_denial(
            self.0,
            "sockets",
            format!("{protocol} socket ({family})"),
            "creating a socket is not granted",
        );
        ErrorCode::AccessDenied
    }
}

/// How the constructors' errors reach the guest: the same conversion WASI's own uses.
impl network::Host for SocketRefusal<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        _error: Resource<wasmtime_wasi::p2::bindings::io::error::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        // Only the `network` interface asks this, and it is linked to WASI's own view.
        Ok(None)
    }
}

impl network::HostNetwork for SocketRefusal<'_> {
    fn drop(&mut self, _network: Resource<network::Network>) -> wasmtime::Result<()> {
        // Never called through this view: the `network` resource is WASI's own.
        Ok(())
    }
}

impl tcp_create_socket::Host for SocketRefusal<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        Err(self.refuse("tcp", address_family).into())
    }
}

impl udp_create_socket::Host for SocketRefusal<'_> {
    async fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        Err(self.refuse("udp", address_family).into())
    }
}
