//! Outgoing HTTP through an attempt's [`Deck`]: on a recording the request goes out and the
//! answer is written to tape as the step reads it; on a replay nothing leaves the host, and
//! the answer comes from the tape when the request matches the recorded one.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use sha2::Digest as _;
use wasmtime_wasi_http::{Error, WasiBody};

use super::deck::{Deck, HttpTurn};
use super::tape::{HttpRequestRecord, HttpResponseRecord, MATCHED_HEADERS};

/// What a send hook hands back: the response, and the future that drives its connection.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// Sends `request` through `deck` with `send`, or answers it from the tape.
pub async fn exchange<F, Fut>(
    deck: Deck,
    request: http::Request<WasiBody>,
    send: F,
) -> Result<Sent, Error>
where
    F: FnOnce(http::Request<WasiBody>) -> Fut,
    Fut: Future<Output = Result<Sent, Error>>,
{
    if deck.playing() {
        return play(&deck, request, send).await;
    }
    let mut record = head(&request);
    // A body-less request (a GET, nearly always) is known whole before it is sent.
    let empty = request.body().is_end_stream();
    if empty {
        record.body_sha256 = hex::encode(sha2::Sha256::digest(b""));
    }
    let HttpTurn::Send(Some(index)) = deck.http_request(record) else {
        return send(request).await;
    };
    let request = if empty {
        request
    } else {
        request.map(|body| {
            let digest = RequestDigest {
                hasher: sha2::Sha256::new(),
                bytes: 0,
                deck: deck.clone(),
                index,
            };
            Watched::boxed(body, digest)
        })
    };
    match send(request).await {
        Err(error) => {
            deck.http_error(index, error.to_string());
            Err(error)
        }
        Ok((response, io)) => {
            deck.http_response(
                index,
                HttpResponseRecord {
                    status: response.status().as_u16(),
                    headers: response_headers(response.headers()),
                    ..HttpResponseRecord::default()
                },
            );
            let deck = deck.clone();
            let response = response.map(|body| Watched::boxed(body, ResponseTape { deck, index }));
            Ok((response, io))
        }
    }
}

/// Answers `request` from the tape, refuses it, or (a candidate's `GET` the record does not
/// hold, with `--on-miss live`) sends it with `send`.
async fn play<F, Fut>(deck: &Deck, request: http::Request<WasiBody>, send: F) -> Result<Sent, Error>
where
    F: FnOnce(http::Request<WasiBody>) -> Fut,
    Fut: Future<Output = Result<Sent, Error>>,
{
    let mut record = head(&request);
    let (parts, body) = request.into_parts();
    // The body is read whole before anything is decided; past the cap it cannot have been
    // on tape either.
    let limited = http_body_util::Limited::new(body, crate::limits::REPLAY_TAPE_BYTES as usize);
    let body = limited
        .collect()
        .await
        .map_err(|e| {
            Error::InternalError(Some(format!(
                "replay: the request body could not be read: {e}"
            )))
        })?
        .to_bytes();
    record.body_sha256 = hex::encode(sha2::Sha256::digest(&body));
    record.body_bytes = body.len() as u64;
    match deck.http_request(record) {
        HttpTurn::Answer(exchange) => {
            let Some(recorded) = exchange.response else {
                return Err(Error::InternalError(Some(
                    exchange
                        .error
                        .unwrap_or_else(|| "the recorded request had no answer".into()),
                )));
            };
            let mut response = http::Response::builder().status(recorded.status);
            for (name, value) in &recorded.headers {
                response = response.header(name, value);
            }
            let body = http_body_util::Full::new(Bytes::from(recorded.body_bytes()))
                .map_err(|never| match never {})
                .boxed_unsync();
            let response = response
                .body(body)
                .map_err(|e| Error::InternalError(Some(e.to_string())))?;
            Ok((response, Box::new(async { Ok(()) })))
        }
        HttpTurn::Send(_) => {
            let body = http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync();
            send(http::Request::from_parts(parts, body)).await
        }
        HttpTurn::Refuse(_) => Err(Error::HttpRequestDenied),
    }
}

/// The parts of a request that are matched on replay (the body's digest comes later).
fn head(request: &http::Request<WasiBody>) -> HttpRequestRecord {
    let headers = request
        .headers()
        .iter()
        .filter(|(name, _)| MATCHED_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    HttpRequestRecord {
        method: request.method().to_string(),
        url: request.uri().to_string(),
        headers,
        body_sha256: String::new(),
        body_bytes: 0,
    }
}

fn response_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| *name != http::header::SET_COOKIE)
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// What a body tells as it streams through: each data chunk, then its end.
trait Watcher: Send + Unpin + 'static {
    fn data(&mut self, chunk: &[u8]);
    fn end(&mut self);
}

/// A body passed on unchanged while its watcher sees every chunk.
struct Watched<W> {
    inner: WasiBody,
    watcher: W,
}

impl<W: Watcher> Watched<W> {
    fn boxed(inner: WasiBody, watcher: W) -> WasiBody {
        Self { inner, watcher }.boxed_unsync()
    }
}

impl<W: Watcher> Body for Watched<W> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.watcher.data(data);
                }
            }
            Poll::Ready(None) => this.watcher.end(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Hashes a request body as it is sent, for the tape, without holding it.
struct RequestDigest {
    hasher: sha2::Sha256,
    bytes: u64,
    deck: Deck,
    index: usize,
}

impl Watcher for RequestDigest {
    fn data(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
    }

    fn end(&mut self) {
        let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
        self.deck.http_request_body(self.index, digest, self.bytes);
    }
}

/// Writes what the step reads of a response body to the tape.
struct ResponseTape {
    deck: Deck,
    index: usize,
}

impl Watcher for ResponseTape {
    fn data(&mut self, chunk: &[u8]) {
        self.deck.http_body(self.index, chunk, false);
    }

    fn end(&mut self) {
        self.deck.http_body(self.index, &[], true);
    }
}
