//! Fetches `input.url` with `GET` through the host's outgoing HTTP. The host only lets the
//! request through to hosts the workflow grants, and adds any secret header for that host
//! itself, so the step never sees credentials.

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Request {
    url: String,
}

#[derive(Serialize)]
struct Fetched {
    status: u16,
    body: String,
}

struct FetchUrl;

impl Step for FetchUrl {
    type Input = Request;
    type Output = Fetched;

    fn meta() -> Meta {
        Meta::new("fetch-url", "1.0.0")
            .description("GETs a URL from a granted host")
            .capability("http")
    }

    fn run(_ctx: &Context, input: Request) -> Result<Output<Fetched>, StepError> {
        let response = plugin_support::get(&input.url)
            .map_err(|e| StepError::transient(format!("GET {} failed: {e}", input.url)))?;
        if response.status >= 500 {
            return Err(StepError::transient(format!(
                "GET {} answered {}",
                input.url, response.status
            )));
        }
        Ok(Output::new(Fetched {
            status: response.status,
            body: response.body,
        }))
    }
}

weir_sdk::export_step!(FetchUrl);
