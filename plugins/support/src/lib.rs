//! Helpers shared by the example plugins: a small blocking HTTP GET over `wasi:http`.
//!
//! The host decides which hosts a step may reach; a request to any other host fails with
//! `HTTP-request-denied`, which this client reports as an error string.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// A response as the client saw it.
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, decoded as UTF-8 with replacement characters for invalid bytes.
    pub body: String,
}

/// The largest body this client reads before it gives up, so a step cannot be flooded.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Sends `GET url` and reads the whole response.
pub fn get(url: &str) -> Result<Response, String> {
    let url = url::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("unsupported URL scheme {other:?}")),
    };
    let host = url.host_str().ok_or("URL has no host")?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };

    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&Method::Get)
        .map_err(|()| "bad method")?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(&authority))
        .map_err(|()| "bad authority")?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| "bad path")?;

    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("response not ready")?
        .map_err(|()| "response already taken")?
        .map_err(|e| format!("{e:?}"))?;

    let status = response.status();
    let body = response.consume().map_err(|()| "body already taken")?;
    let stream = body.stream().map_err(|()| "body stream already taken")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY_BYTES {
                    return Err(format!(
                        "response body is larger than {MAX_BODY_BYTES} bytes"
                    ));
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the body failed: {}", e.to_debug_string()));
            }
        }
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Tries to read `path` and reports what happened as JSON: `{"path", "read": <text>}` when the
/// read succeeded, `{"path", "error": <message>}` when the sandbox refused it.
pub fn try_read(path: &str) -> serde_json::Value {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::json!({ "path": path, "read": text }),
        Err(e) => serde_json::json!({ "path": path, "error": e.to_string() }),
    }
}
