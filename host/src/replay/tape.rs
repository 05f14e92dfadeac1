//! An attempt's tape: everything it read from the host besides its input and its model
//! calls (which the model journal keeps), in the order it read it. Clock reads, random bytes
//! and outgoing HTTP exchanges are what make a step's output differ between two runs on the
//! same input; with them on tape an attempt can be run again and must come out the same.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What one attempt read from the host, in order per kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptTape {
    /// Wall-clock reads, nanoseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wall_ns: Vec<u64>,
    /// Monotonic clock reads, nanoseconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub monotonic_ns: Vec<u64>,
    /// Random bytes handed out (secure and insecure sources, one stream), base64.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub random: String,
    /// The insecure-random seed the attempt was given, as a decimal `u128`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Outgoing HTTP requests and what came back, in the order they were sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpExchange>,
    /// Bytes the tape holds (what the per-attempt cap counts).
    pub bytes: u64,
    /// Why the tape is not whole (it went over the cap): such an attempt cannot be replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

impl AttemptTape {
    /// Whether the attempt read nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.wall_ns.is_empty()
            && self.monotonic_ns.is_empty()
            && self.random.is_empty()
            && self.http.is_empty()
            && self.seed.is_none()
            && self.incomplete.is_none()
    }

    /// The random bytes, decoded.
    pub fn random_bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.random)
            .unwrap_or_default()
    }
}

/// One outgoing request and its answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpExchange {
    /// The request as the step made it.
    pub request: HttpRequestRecord,
    /// The answer, when one came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<HttpResponseRecord>,
    /// Why no answer came (a refusal, a connection error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A request as matched on replay: method, URL, the headers the step set that say what it
/// asked for, and its body's digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpRequestRecord {
    /// `GET`, `POST`, …
    pub method: String,
    /// The full URL.
    pub url: String,
    /// The step's headers among [`MATCHED_HEADERS`], lower-cased, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// sha256 of the body, hex (of the empty body when there was none).
    pub body_sha256: String,
    /// Body length in bytes.
    pub body_bytes: u64,
}

/// Request headers that take part in matching: the ones that change what is asked for.
/// Credentials (the grant's injected secret, `authorization`, cookies) never go on tape.
pub const MATCHED_HEADERS: &[&str] = &["accept", "content-type", "range", "if-none-match"];

/// An answer: status, headers and the body as the step read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpResponseRecord {
    /// The status code.
    pub status: u16,
    /// Response headers, lower-cased, in order (`set-cookie` left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The body bytes the step read, base64.
    pub body: String,
    /// The body went to its end (otherwise the step stopped reading, or the tape's cap cut it).
    pub complete: bool,
}

impl HttpResponseRecord {
    /// The body, decoded.
    pub fn body_bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .unwrap_or_default()
    }
}

/// Base64 of `bytes`, the way tapes hold binary data.
pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
