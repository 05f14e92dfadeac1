//! A step's `review = { when, timeout, default }` table: the confidence gate and what
//! happens when a review waits too long.

use toml::Spanned;

use super::ReviewPolicy;
use super::authored::ReviewTable;
use super::diagnostic::Diagnostic;
use super::resolve::{check_refs, compile};
use crate::store::DefaultAction;

pub(super) fn review_policy(
    table: &Spanned<ReviewTable>,
    known: &[&str],
    errors: &mut Vec<Diagnostic>,
) -> ReviewPolicy {
    let review = table.get_ref();
    let when = review.when.as_ref().and_then(|w| {
        let expr = compile(w, "`review.when`", errors)?;
        check_refs(&expr, w.span(), "`review.when`", known, errors);
        Some(expr)
    });
    let timeout =
        review
            .timeout
            .as_ref()
            .and_then(|t| match crate::limits::parse_duration(t.get_ref()) {
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(Diagnostic::at(t.span(), format!("`review.timeout`: {e}")));
                    None
                }
            });
    let default = review
        .default
        .as_ref()
        .and_then(|d| match d.get_ref().as_str() {
            "approve" => Some(DefaultAction::Approve),
            "reject" => Some(DefaultAction::Reject),
            other => {
                errors.push(
                    Diagnostic::at(d.span(), format!("`review.default` is {other:?}"))
                        .help("write default = \"approve\" or default = \"reject\""),
                );
                None
            }
        });
    if review.default.is_some() != review.timeout.is_some() {
        errors.push(
            Diagnostic::at(table.span(), "`review.timeout` and `review.default` go together")
                .help("say how long a review may wait and what happens then, e.g. review = { timeout = \"24h\", default = \"reject\" }"),
        );
    }
    ReviewPolicy {
        when,
        timeout,
        default,
    }
}
