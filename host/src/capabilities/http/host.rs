//! The gate every outgoing request passes: grant check, request budget, secret injection.

use std::sync::Arc;

use http::uri::Scheme;
use tracing::Instrument as _;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::HostGrant;
use crate::capabilities::{DenialLog, record_denial};

type Outcome = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// Per-attempt HTTP policy: the grants, the request budget, and where denials are recorded.
pub(crate) struct HttpGate {
    grants: Arc<[HostGrant]>,
    denials: DenialLog,
    remaining: u64,
    /// Where exchanges are kept for replay, or answered from on one.
    deck: crate::replay::Deck,
}

impl HttpGate {
    pub(crate) fn new(
        grants: Arc<[HostGrant]>,
        denials: DenialLog,
        max_requests: u64,
        deck: crate::replay::Deck,
    ) -> Self {
        Self {
            grants,
            denials,
            remaining: max_requests,
            deck,
        }
    }

    /// The grant that allows this request, or why none does.
    fn admit(
        &mut self,
        request: &http::Request<WasiBody>,
    ) -> Result<&HostGrant, (String, &'static str)> {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_string();
        let default_port = if uri.scheme() == Some(&Scheme::HTTP) {
            80
        } else {
            443
        };
        let port = uri.port_u16().unwrap_or(default_port);
        let target = format!("{host}:{port}");
        let Some(grant) = self
            .grants
            .iter()
            .find(|g| g.allows(&host, port, default_port))
        else {
            return Err((target, "host is not granted"));
        };
        if self.remaining == 0 {
            return Err((target, "request budget of this attempt is used up"));
        }
        self.remaining -= 1;
        Ok(grant)
    }
}

impl WasiHttpHooks for HttpGate {
    // What an outgoing body may buffer on the host, beside the step's memory: with the
    // resource cap, unsent bodies hold at most a few tens of MiB, not gigabytes.
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        crate::limits::OUTGOING_BODY_CHUNK_BYTES
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Outcome> + Send> {
        _ = fut;
        match self.admit(&request) {
            Err((target, reason)) => {
                record_denial(&self.denials, "http", target, reason);
                Box::new(async { Err(Error::HttpRequestDenied) })
            }
            Ok(grant) => {
                if let Some((name, value)) = grant.secret.clone() {
                    request.headers_mut().insert(name, value);
                }
                let span = tracing::info_span!(
                    "host_call",
                    capability = "http",
                    op = %request.method(),
                    host = request.uri().host().unwrap_or_default(),
                );
                let deck = self.deck.clone();
                Box::new(
                    crate::replay::http::exchange(deck, request, move |request| async move {
                        use http_body_util::BodyExt;
                        let (response, io) =
                            wasmtime_wasi_http::default_send_request(request, options).await?;
                        Ok((
                            response.map(BodyExt::boxed_unsync),
                            Box::new(io) as Box<dyn Future<Output = _> + Send>,
                        ))
                    })
                    .instrument(span),
                )
            }
        }
    }
}
