//! Bearer-token authentication. Tokens are kept as sha256 digests and a presented token is
//! compared against each in constant time, so neither its content nor its length leaks
//! through timing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The accepted tokens; empty means no authentication (loopback only).
#[derive(Clone, Default)]
pub struct Tokens(Arc<Vec<[u8; 32]>>);

impl Tokens {
    /// From the token strings (blank ones are ignored).
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Arc::new(
            tokens
                .into_iter()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Sha256::digest(t.as_bytes()).into())
                .collect(),
        ))
    }

    /// Whether any token is configured.
    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is one of the tokens.
    pub fn allows(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        for token in self.0.iter() {
            found |= token.ct_eq(&digest);
        }
        found.into()
    }
}

/// Rejects a request without a valid `Authorization: Bearer` token, when tokens are set.
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    if !tokens.required() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match presented {
        Some(token) if tokens.allows(token) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

/// The token of an `Authorization` value `Bearer <token>`: the scheme is matched without
/// regard to case and may be followed by any run of spaces (RFC 9110 section 11.4).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_tokens_are_allowed() {
        let tokens = Tokens::new(["alpha", " beta ", ""]);
        assert!(tokens.required());
        assert!(tokens.allows("alpha"));
        assert!(tokens.allows("beta"));
        assert!(!tokens.allows("alph"));
        assert!(!tokens.allows(""));
        assert!(!Tokens::new([" "]).required());
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc", " bEaReR\tabc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        for value in ["Bearer", "Bearer ", "Basic abc", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
