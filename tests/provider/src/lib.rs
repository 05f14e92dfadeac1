//! A model provider stand-in for Weir's tests: a real HTTP server on loopback that speaks
//! the OpenAI chat completions API (`POST /v1/chat/completions`) and answers from a script,
//! so a test can inject exactly the failures production sees: latency, 429 with
//! `Retry-After`, 5xx, malformed JSON, a truncated body, a slow drip. Successful answers
//! carry `usage` fields computed from the request, and every request is recorded.
//!
//! ```no_run
//! # async fn demo() {
//! use weir_provider::{Provider, Reply};
//! let provider = Provider::start().await;
//! provider.script([Reply::status(429).retry_after(2), Reply::complete("billing")]);
//! // point the code under test at provider.url(), then:
//! assert_eq!(provider.calls(), 2);
//! # }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with a completion whose message content is this text.
    Complete(String),
    /// An error status, with `Retry-After` (seconds) when set.
    Status {
        /// The status code.
        code: u16,
        /// The `Retry-After` header, in seconds.
        retry_after: Option<u64>,
    },
    /// 200 with a body that is not JSON (the prompt was read: its tokens count as served).
    Malformed,
    /// 200 with JSON that carries `usage` but no completion (`choices` is empty).
    NoChoices,
    /// A gullible model: when the prompt says "route this to `<queue>`" (or "route it to"), it
    /// answers `{"label": "<queue>", "confidence": 1.0}`, whatever else the prompt says;
    /// otherwise it answers with this text.
    Obey(String),
    /// 200 whose body stops halfway: the connection closes before `Content-Length` bytes.
    Truncated,
    /// A completion sent a few bytes at a time, `interval` apart.
    Drip(String, Duration),
    /// Wait this long, then give the inner reply.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// 200 with this content.
    pub fn complete(content: impl Into<String>) -> Self {
        Self::Complete(content.into())
    }

    /// An error status.
    pub fn status(code: u16) -> Self {
        Self::Status {
            code,
            retry_after: None,
        }
    }

    /// The same status with a `Retry-After` header.
    pub fn retry_after(self, seconds: u64) -> Self {
        match self {
            Self::Status { code, .. } => Self::Status {
                code,
                retry_after: Some(seconds),
            },
            other => other,
        }
    }

    /// This reply, after a delay.
    pub fn after(self, delay: Duration) -> Self {
        Self::Delayed(delay, Box::new(self))
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Given when the script has run out.
    fallback: Option<Reply>,
    requests: Vec<Value>,
    /// Tokens served, as a provider would bill them: (prompt, completion).
    served: (u64, u64),
}

/// A running stand-in. It stops when dropped.
pub struct Provider {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Provider {
    /// Starts a stand-in on a free loopback port. Unscripted requests get a completion
    /// that echoes the last user message.
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            script,
            server,
        }
    }

    /// The base URL, as an OpenAI-compatible client wants it (`…/v1`).
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues replies, given in order to the next requests.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().replies.extend(replies);
    }

    /// The reply for every request once the script has run out (e.g. a lasting outage).
    pub fn otherwise(&self, reply: Reply) {
        self.lock().fallback = Some(reply);
    }

    /// Requests received so far.
    pub fn calls(&self) -> usize {
        self.lock().requests.len()
    }

    /// Tokens served so far by this stand-in's own count, as a provider bills them: every
    /// answer it generated, whole or cut short, `(prompt, completion)`.
    pub fn usage_served(&self) -> (u64, u64) {
        self.lock().served
    }

    /// The bodies of the requests received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("script poisoned")
    }
}

/// Tokens as this stand-in counts them: whitespace-separated words.
pub fn tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

async fn complete(State(script): State<Arc<Mutex<Script>>>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = json!({"error": {"message": format!("invalid JSON: {e}"), "type": "invalid_request_error"}});
            return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
        }
    };
    let reply = {
        let mut script = script.lock().expect("script poisoned");
        script.requests.push(request.clone());
        script
            .replies
            .pop_front()
            .or_else(|| script.fallback.clone())
    };
    let reply = reply.unwrap_or_else(|| Reply::Complete(last_user_message(&request)));
    if let Some((prompt, completion)) = billed(&reply, &request) {
        let mut script = script.lock().expect("script poisoned");
        script.served.0 += prompt;
        script.served.1 += completion;
    }
    answer(reply, &request).await
}

/// What a reply bills: the usage of the completion it generates (whole or cut), the prompt
/// alone for an answer that is not JSON, nothing for an error status.
fn billed(reply: &Reply, request: &Value) -> Option<(u64, u64)> {
    let usage = |content: &str| {
        let body = completion(request, content);
        let usage = &body["usage"];
        Some((
            usage["prompt_tokens"].as_u64().unwrap_or(0),
            usage["completion_tokens"].as_u64().unwrap_or(0),
        ))
    };
    match reply {
        Reply::Complete(content) | Reply::Drip(content, _) => usage(content),
        Reply::Obey(otherwise) => usage(&obeyed(request, otherwise)),
        Reply::Truncated => usage(TRUNCATED),
        Reply::Malformed | Reply::NoChoices => usage("").map(|(p, _)| (p, 0)),
        Reply::Status { .. } => None,
        Reply::Delayed(_, inner) => billed(inner, request),
    }
}

/// The content of the completion [`Reply::Truncated`] cuts short.
const TRUNCATED: &str = "cut short";

/// What [`Reply::Obey`] answers to `request`.
fn obeyed(request: &Value, otherwise: &str) -> String {
    let text = last_user_message(request).to_lowercase();
    ["route this to ", "route it to "]
        .iter()
        .find_map(|phrase| {
            let at = text.find(phrase)? + phrase.len();
            let queue: String = text[at..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            (!queue.is_empty()).then(|| json!({"label": queue, "confidence": 1.0}).to_string())
        })
        .unwrap_or_else(|| otherwise.to_string())
}

fn last_user_message(request: &Value) -> String {
    request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn completion(request: &Value, content: &str) -> Value {
    let prompt: u64 = request["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["content"].as_str())
                .map(tokens)
                .sum()
        })
        .unwrap_or(0);
    let completion = tokens(content);
    json!({
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 0,
        "model": request["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

async fn answer(reply: Reply, request: &Value) -> Response {
    match reply {
        Reply::Delayed(delay, inner) => {
            tokio::time::sleep(delay).await;
            Box::pin(answer(*inner, request)).await
        }
        Reply::Complete(content) => axum::Json(completion(request, &content)).into_response(),
        Reply::Obey(otherwise) => {
            axum::Json(completion(request, &obeyed(request, &otherwise))).into_response()
        }
        Reply::Status { code, retry_after } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let error =
                json!({"error": {"message": format!("scripted {code}"), "type": "standin_error"}});
            let mut response = (status, axum::Json(error)).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Reply::Malformed => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"choices\": [{\"message\": ",
        )
            .into_response(),
        Reply::NoChoices => {
            let mut body = completion(request, "");
            body["choices"] = json!([]);
            axum::Json(body).into_response()
        }
        Reply::Truncated => {
            let full = completion(request, TRUNCATED).to_string();
            let half = Bytes::from(full.as_bytes()[..full.len() / 2].to_vec());
            let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
                futures_util::stream::once(async {
                    // Long enough for the headers and the first half to go out.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(std::io::Error::other("the stand-in cuts the body short"))
                }),
            );
            let mut response = Response::new(Body::from_stream(stream));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len() as u64));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Reply::Drip(content, interval) => {
            let full = completion(request, &content).to_string().into_bytes();
            let chunks: Vec<Bytes> = full.chunks(16).map(Bytes::copy_from_slice).collect();
            let stream = futures_util::stream::iter(chunks).then(move |chunk| async move {
                tokio::time::sleep(interval).await;
                Ok::<_, std::io::Error>(chunk)
            });
            let mut response = Response::new(Body::from_stream(stream));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}
