//! The runs page's filters, read from its URL: each one named in the form, checked, turned
//! into the journal's [`RunFilter`], and kept for the next page's link.

use std::collections::HashMap;

use crate::store::{RunFilter, RunStatus};

/// The filters a runs page takes, in the order its form shows them.
pub(super) const FILTERS: &[&str] = &[
    "q", "workflow", "version", "status", "route", "review", "since", "until", "min_cost",
];

/// A runs page's filters: the journal's, and the given values to show and carry on.
pub(super) struct RunsFilter {
    pub filter: RunFilter,
    pub given: Vec<(&'static str, String)>,
}

/// Midnight UTC of a `YYYY-MM-DD` day, in ms since the Unix epoch.
fn day_start_ms(name: &str, day: &str) -> Result<i64, String> {
    humantime::parse_rfc3339(&format!("{day}T00:00:00Z"))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| format!("`{name}` is a day written YYYY-MM-DD (UTC), not {day:?}."))
}

impl RunsFilter {
    /// Reads the filters from a page's query; an unusable one is named in the error.
    pub(super) fn parse(query: &HashMap<String, String>) -> Result<Self, String> {
        let given: Vec<(&'static str, String)> = FILTERS
            .iter()
            .filter_map(|name| {
                let value = query.get(*name)?.trim();
                (!value.is_empty()).then(|| (*name, value.to_string()))
            })
            .collect();
        let mut filter = RunFilter::default();
        for (name, value) in &given {
            match *name {
                "q" => filter.id_or_key = Some(value.clone()),
                "workflow" => filter.workflow = Some(value.clone()),
                "version" => filter.version = Some(value.clone()),
                "route" => filter.route = Some(value.clone()),
                "status" => {
                    filter.status = Some(value.parse::<RunStatus>().map_err(|_| {
                        format!("Unknown status {value:?}: choose one from the list.")
                    })?);
                }
                "review" => {
                    filter.has_review = match value.as_str() {
                        "yes" => Some(true),
                        "no" => Some(false),
                        _ => return Err(format!("`review` is yes or no, not {value:?}.")),
                    };
                }
                "since" => filter.since_ms = Some(day_start_ms(name, value)?),
                // The whole of the `until` day is included.
                "until" => filter.until_ms = Some(day_start_ms(name, value)? + 86_400_000),
                "min_cost" => {
                    let dollars = value
                        .trim_start_matches('$')
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d >= 0.0)
                        .ok_or_else(|| {
                            format!("`min_cost` is an amount in dollars, like 0.01, not {value:?}.")
                        })?;
                    filter.min_cost_micros = Some((dollars * 1e6).round() as i64);
                }
                _ => {}
            }
        }
        Ok(Self { filter, given })
    }

    /// The given value of `name`, or nothing.
    pub(super) fn value(&self, name: &str) -> String {
        self.given
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The link to the page after the run `last`, with the same filters.
    pub(super) fn next_page(&self, last: &str) -> String {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.given {
            pairs.append_pair(name, value);
        }
        pairs.append_pair("before", last);
        format!("/ui?{}", pairs.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<RunsFilter, String> {
        let query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RunsFilter::parse(&query)
    }

    #[test]
    fn each_filter_becomes_the_journals_and_is_kept_for_the_next_page() {
        let f = parse(&[
            ("status", "failed"),
            ("since", "2026-12-01"),
            ("until", "2026-12-01"),
            ("min_cost", "$0.0125"),
            ("review", "no"),
            ("route", "billing"),
            ("q", " key-1 "),
            ("workflow", ""),
        ])
        .unwrap();
        assert_eq!(f.filter.status, Some(RunStatus::Failed));
        assert_eq!(f.filter.since_ms, Some(1_796_083_200_000));
        assert_eq!(f.filter.until_ms, Some(1_796_083_200_000 + 86_400_000));
        assert_eq!(f.filter.min_cost_micros, Some(12_500));
        assert_eq!(f.filter.has_review, Some(false));
        assert_eq!(f.filter.id_or_key.as_deref(), Some("key-1"));
        assert_eq!(f.filter.workflow, None, "an empty field is no filter");
        assert_eq!(
            f.next_page("r-9"),
            "/ui?q=key-1&status=failed&route=billing&review=no&since=2026-12-01&until=2026-12-01&min_cost=%240.0125&before=r-9"
        );
    }

    #[test]
    fn a_bad_filter_is_named() {
        for (pair, says) in [
            (("status", "done"), "Unknown status \"done\""),
            (
                ("since", "yesterday"),
                "`since` is a day written YYYY-MM-DD",
            ),
            (("min_cost", "-1"), "`min_cost` is an amount in dollars"),
            (("review", "maybe"), "`review` is yes or no"),
        ] {
            let err = parse(&[pair]).err().unwrap();
            assert!(err.starts_with(says), "{err}");
        }
    }
}
