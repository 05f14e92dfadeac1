//! Extractors whose rejections answer in the API's error shape instead of plain text.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body (`Content-Type: application/json`), within the body size limit.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match &rejection {
        // A body of the wrong shape is a malformed request like bad syntax (400
        // `bad_request`); 422 `invalid_input` is kept for input the workflow's schema refuses.
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request(format!("the body does not have the expected fields: {e}"))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("the body is not valid JSON: {e}"))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::from_status(
            rejection.status(),
            "send the body as JSON with `Content-Type: application/json`".to_string(),
        ),
        JsonRejection::BytesRejection(e) => body_rejection(e),
        other => ApiError::from_status(other.status(), other.body_text()),
    }
}

/// A raw body, within the route's body size limit.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| body_rejection(&rejection))
    }
}

fn body_rejection(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::from_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than this route accepts (`--max-body` for JSON, `--max-upload` for components)"
                .to_string(),
        );
    }
    ApiError::from_status(
        rejection.status(),
        format!("cannot read the body: {}", rejection.body_text()),
    )
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query parameters: {}", rejection.body_text()))
}
