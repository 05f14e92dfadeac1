//! The costs page: what model calls cost per workflow version, step and model, and per day,
//! over the last days, read from the daily usage rollup (never from the calls themselves).

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;

use super::pages::unreadable;
use super::render::{error, page, viewer};
use super::session::Viewer;
use crate::serve::App;
use crate::store::usage::{LATENCY_BUCKETS, UsageRow, bucket_bound_ms, quantile_bucket, utc_day};

/// Days a costs page covers unless the URL says otherwise, and at most.
pub const DEFAULT_COST_DAYS: u32 = 7;
const MAX_COST_DAYS: u32 = 366;

/// Sums of rollup rows.
#[derive(Default)]
struct Totals {
    calls: i64,
    cached: i64,
    failed: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_micros: i64,
    latency_us: i64,
    buckets: Vec<i64>,
}

impl Totals {
    fn add(&mut self, row: &UsageRow) {
        self.calls += row.calls;
        self.cached += row.cached;
        self.failed += row.failed;
        self.prompt_tokens += row.prompt_tokens;
        self.completion_tokens += row.completion_tokens;
        self.cost_micros += row.cost_micros;
        self.latency_us += row.latency_us;
        self.buckets.resize(LATENCY_BUCKETS, 0);
        for (sum, count) in self.buckets.iter_mut().zip(&row.latency_buckets) {
            *sum += count;
        }
    }

    /// The numbers as a page shows them, each with its unit.
    fn shown(&self) -> minijinja::Value {
        let share = |n: i64| {
            if self.calls == 0 {
                "–".to_string()
            } else {
                format!("{:.0} %", 100.0 * n as f64 / self.calls as f64)
            }
        };
        let quantile = |q: f64| match quantile_bucket(&self.buckets, q) {
            None => "–".to_string(),
            Some(k) => match bucket_bound_ms(k) {
                Some(bound) => format!("< {bound} ms"),
                None => format!("≥ {} ms", bucket_bound_ms(k - 1).unwrap_or(0)),
            },
        };
        let mean_ms = if self.calls == 0 {
            "–".to_string()
        } else {
            format!(
                "{:.1} ms",
                self.latency_us as f64 / self.calls as f64 / 1000.0
            )
        };
        context! {
            calls => self.calls,
            cached => share(self.cached),
            failed => self.failed,
            tokens_in => self.prompt_tokens,
            tokens_out => self.completion_tokens,
            cost => format!("${:.6}", self.cost_micros as f64 / 1e6),
            mean => mean_ms,
            p50 => quantile(0.5),
            p95 => quantile(0.95),
        }
    }
}

fn days_before(days: u32) -> String {
    utc_day(crate::store::now_ms() - i64::from(days.saturating_sub(1)) * 86_400_000)
}

/// `/ui/costs?days=7&workflow=`: per workflow version, step and model over the last `days`
/// UTC days (today included), then per day.
pub(super) async fn costs(
    State(app): State<App>,
    Extension(who): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let days = match query.get("days").filter(|d| !d.is_empty()) {
        None => DEFAULT_COST_DAYS,
        Some(text) => match text.parse::<u32>() {
            Ok(days) if (1..=MAX_COST_DAYS).contains(&days) => days,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("`days` is a whole number of days from 1 to {MAX_COST_DAYS}."),
                );
            }
        },
    };
    let workflow = query.get("workflow").filter(|w| !w.is_empty()).cloned();
    let since = days_before(days);
    let rows = match app.store().usage(&since).await {
        Ok(rows) => rows,
        Err(e) => return unreadable(&e, "the usage rollup"),
    };
    let mut by_use: BTreeMap<(String, String, String, String), Totals> = BTreeMap::new();
    let mut by_day: BTreeMap<String, Totals> = BTreeMap::new();
    let mut total = Totals::default();
    for row in rows
        .iter()
        .filter(|r| workflow.as_ref().is_none_or(|w| &r.workflow == w))
    {
        let key = (
            row.workflow.clone(),
            row.version.clone(),
            row.step_id.clone(),
            row.model.clone(),
        );
        by_use.entry(key).or_default().add(row);
        by_day.entry(row.day.clone()).or_default().add(row);
        total.add(row);
    }
    let uses: Vec<_> = by_use
        .iter()
        .map(|((workflow, version, step, model), t)| {
            context! { workflow, version, step, model, n => t.shown() }
        })
        .collect();
    let days_shown: Vec<_> = by_day
        .iter()
        .rev()
        .map(|(day, t)| context! { day, n => t.shown() })
        .collect();
    page(
        StatusCode::OK,
        "costs.html",
        context! {
            uses => uses,
            days => days_shown,
            total => total.shown(),
            since => since,
            span => days,
            workflow => workflow.unwrap_or_default(),
            viewer => viewer(&who),
        },
    )
}
