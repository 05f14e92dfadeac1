//! The query parameters of `/v1/runs` and `/v1/reviews`, each described in the OpenAPI
//! document from the same constants its parser uses: a value the document allows is
//! accepted, and one it forbids is refused with 400 (a fuzzer holds the server to both).

// utoipa's `IntoParams` expansion names types by their full paths.
#![allow(unused_qualifications)]

use std::time::Duration;

use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::error::ApiError;
use crate::store::{ReviewStatus, RunStatus};

/// How long `?wait` waits when it is given empty.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest wait a request may ask for; longer ones are cut to it (a client asking for
/// more than the server gives still gets an answer, not an error).
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// What `wait` may be: a whole number of milliseconds, seconds or minutes, or empty for the
/// default. Deliberately narrower than the durations workflow files take: a grammar a
/// regular expression states exactly, so the document and the parser agree.
const WAIT_PATTERN: &str = "^([0-9]{1,9}(ms|s|m))?$";
/// The most digits of a `wait` (so minutes in milliseconds cannot overflow).
const WAIT_DIGITS: usize = 9;

/// Runs a page holds when `limit` is absent.
pub const DEFAULT_PAGE: u32 = 50;
/// Runs a page holds at most: bounds what one request makes the store read.
pub const MAX_PAGE: u32 = 500;

/// What `GET /v1/reviews` takes as `status` beyond the review statuses.
const ALL_REVIEWS: &str = "all";

/// Options of `POST /v1/runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubmitQuery {
    // (A parameter with its own schema takes its description from it.)
    #[param(schema_with = wait_schema)]
    pub wait: Option<String>,
}

/// Filters of `GET /v1/runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(schema_with = run_status_schema)]
    pub status: Option<String>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    #[param(schema_with = limit_schema)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub before: Option<String>,
}

/// Filters of `GET /v1/reviews`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    #[param(schema_with = review_status_schema)]
    pub status: Option<String>,
}

fn enum_schema(names: impl IntoIterator<Item = &'static str>, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .description(Some(description))
        .into()
}

fn run_status_schema() -> Schema {
    enum_schema(
        RunStatus::NAMES.iter().copied(),
        "Only runs in this status.",
    )
}

fn review_status_schema() -> Schema {
    enum_schema(
        ReviewStatus::NAMES.iter().copied().chain([ALL_REVIEWS]),
        "Only reviews in this status (`all` for every review); `pending` when absent.",
    )
}

fn wait_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(WAIT_PATTERN))
        .description(Some(format!(
            "Block until the run ends (or waits for review), up to this long: a whole number of \
             `ms`, `s` or `m` (`30s`, `2m`); empty means {} s, `0s` does not wait, and longer \
             than {} min is cut to {} min. Without it the call returns once the run is queued.",
            DEFAULT_WAIT.as_secs(),
            MAX_WAIT.as_secs() / 60,
            MAX_WAIT.as_secs() / 60,
        )))
        .into()
}

fn limit_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE))
        .default(Some(DEFAULT_PAGE.into()))
        .description(Some(format!(
            "Runs per page: 1 to {MAX_PAGE}, default {DEFAULT_PAGE}."
        )))
        .into()
}

impl SubmitQuery {
    /// How long to wait, if at all.
    pub fn wait(&self) -> Result<Option<Duration>, ApiError> {
        self.wait.as_deref().map(parse_wait).transpose()
    }
}

impl ListQuery {
    /// The status filter.
    pub fn status(&self) -> Result<Option<RunStatus>, ApiError> {
        self.status
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("`status`: {e}")))
    }

    /// The page size.
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(limit @ 1..=MAX_PAGE) => Ok(limit),
            Some(limit) => Err(ApiError::bad_request(format!(
                "`limit`: {limit} is not between 1 and {MAX_PAGE}"
            ))),
        }
    }
}

impl ReviewQuery {
    /// The status filter; `None` for every review.
    pub fn status(&self) -> Result<Option<ReviewStatus>, ApiError> {
        match self
            .status
            .as_deref()
            .unwrap_or(ReviewStatus::Pending.as_str())
        {
            ALL_REVIEWS => Ok(None),
            s => s
                .parse()
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("`status`: {e}"))),
        }
    }
}

/// `wait` as [`WAIT_PATTERN`] states it.
fn parse_wait(text: &str) -> Result<Duration, ApiError> {
    if text.is_empty() {
        return Ok(DEFAULT_WAIT);
    }
    let refused = || {
        ApiError::bad_request(format!(
            "`wait`: {text:?} is not a whole number of ms, s or m such as 30s (at most {WAIT_DIGITS} digits)"
        ))
    };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=WAIT_DIGITS).contains(&digits) {
        return Err(refused());
    }
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| refused())?;
    let wait = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number * 60),
        _ => return Err(refused()),
    };
    Ok(wait.min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_takes_what_its_pattern_states() {
        assert_eq!(parse_wait("").unwrap(), DEFAULT_WAIT);
        assert_eq!(parse_wait("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_wait("999999999m").unwrap(), MAX_WAIT);
        for refused in [
            "30",
            "s",
            "1m 30s",
            " 30s",
            "30s ",
            "1h",
            "1000000000ms",
            "-1s",
            "１s",
        ] {
            assert!(parse_wait(refused).is_err(), "{refused:?} is refused");
        }
    }

    #[test]
    fn limit_is_refused_outside_its_bounds() {
        let query = |limit| ListQuery {
            status: None,
            workflow: None,
            limit,
            before: None,
        };
        assert_eq!(query(None).limit().unwrap(), DEFAULT_PAGE);
        assert_eq!(query(Some(1)).limit().unwrap(), 1);
        assert_eq!(query(Some(MAX_PAGE)).limit().unwrap(), MAX_PAGE);
        assert!(query(Some(0)).limit().is_err());
        assert!(query(Some(MAX_PAGE + 1)).limit().is_err());
    }
}
