//! Turns the raw result of a call into a typed outcome, and checks the output.

use wasmtime::Trap;

use super::{AttemptReport, AttemptState, StepOutput, Usage};
use crate::bindings;
use crate::failure::StepFailure;
use crate::limits::Limits;

/// Longest route label accepted; routes are identifiers, not payloads.
const MAX_ROUTE_BYTES: usize = 128;
/// ASCII punctuation a route label may hold besides letters and digits.
const ROUTE_PUNCTUATION: &str = " -_.:/+@#";

/// Whether `c` may appear in a route label: a letter or digit of any script, or one of
/// [`ROUTE_PUNCTUATION`]. Labels are matched by workflows and shown to operators, so nothing
/// invisible, bidirectional, or breaking a line (U+200B, U+202E, U+2028, ...) is allowed.
fn is_route_char(c: char) -> bool {
    c.is_alphanumeric() || ROUTE_PUNCTUATION.contains(c)
}

/// How much of the guest's stderr a trap message quotes (its tail, where a panic message is).
const STDERR_TAIL_BYTES: usize = 600;

type CallResult = wasmtime::Result<Result<bindings::StepOutput, bindings::StepError>>;

pub(super) fn report(
    result: CallResult,
    state: AttemptState,
    limits: &Limits,
    usage: Usage,
) -> AttemptReport {
    let (stdout, stdout_dropped) = state.stdout.take();
    let (stderr, stderr_dropped) = state.stderr.take();
    let (denials, denials_dropped) = state.denials.take();

    let mut outcome = match result {
        Ok(Ok(output)) => check_output(output, limits),
        Ok(Err(guest_error)) => Err(StepFailure::from(guest_error)),
        Err(error) => Err(classify_trap(&error, &state, limits, &stderr)),
    };
    // A step that failed after being refused something failed *because* of the refusal:
    // report the denial, keeping the step's own words as the detail.
    if let (Err(failure), Some(denial)) = (&outcome, denials.first())
        && !matches!(
            failure,
            StepFailure::Timeout { .. }
                | StepFailure::FuelExhausted { .. }
                | StepFailure::MemoryExceeded { .. }
        )
    {
        outcome = Err(StepFailure::Denied {
            capability: denial.capability.to_string(),
            target: denial.target.clone(),
            detail: failure.to_string(),
        });
    }
    // A step that went over a directory quota is stopped for it, whatever it did next; one
    // that returned before the last check caught it fails for it all the same.
    if let Some(hit) = state.quota.hit() {
        outcome = Err(StepFailure::Denied {
            capability: "files".into(),
            target: hit.guest,
            detail: hit.detail,
        });
    }
    let outcome = outcome.map_err(StepFailure::bounded);

    let time = super::TimeLimit {
        deadline: state.deadline,
        limit: limits.timeout,
        run_deadline: state.deadline_cut,
    };
    let (logs, logs_dropped) = state.log.into_parts();
    AttemptReport {
        outcome,
        usage,
        logs,
        logs_dropped,
        stdout,
        stderr,
        stdio_dropped_bytes: stdout_dropped + stderr_dropped,
        denials,
        denials_dropped,
        time,
    }
}

fn classify_trap(
    error: &wasmtime::Error,
    state: &AttemptState,
    limits: &Limits,
    stderr: &str,
) -> StepFailure {
    if let Some(hit) = &state.limiter.exceeded {
        return StepFailure::MemoryExceeded {
            limit: hit.limit,
            requested: hit.requested,
        };
    }
    if state.timed_out {
        return StepFailure::Timeout {
            limit: limits.timeout,
            run_deadline: state.deadline_cut,
        };
    }
    if error.chain().any(|e| {
        matches!(
            e.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        )
    }) {
        return StepFailure::Trap {
            message: format!(
                "host resource limit: the step held {} host resources at once (open files, \
                 streams, HTTP requests and fields), the limit",
                crate::limits::MAX_HOST_RESOURCES
            ),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => StepFailure::FuelExhausted {
            limit: limits.fuel.unwrap_or_default(),
        },
        Some(Trap::Interrupt) => StepFailure::Timeout {
            limit: limits.timeout,
            run_deadline: state.deadline_cut,
        },
        Some(Trap::StackOverflow) => StepFailure::Trap {
            message: with_stderr("stack overflow".into(), stderr),
        },
        Some(trap) => StepFailure::Trap {
            message: with_stderr(trap.to_string(), stderr),
        },
        None => StepFailure::Trap {
            message: with_stderr(format!("{error:#}"), stderr),
        },
    }
}

/// Appends the tail of the guest's stderr, where a panic message usually is.
fn with_stderr(message: String, stderr: &str) -> String {
    let text = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect::<Vec<_>>()
        .join(" | ");
    if text.is_empty() {
        return message;
    }
    let mut start = text.len().saturating_sub(STDERR_TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{message}; guest stderr: {}", &text[start..])
}

fn check_output(output: bindings::StepOutput, limits: &Limits) -> Result<StepOutput, StepFailure> {
    let size = output.payload.len() as u64;
    if size > limits.output_bytes {
        return Err(StepFailure::OutputTooLarge {
            size,
            limit: limits.output_bytes,
        });
    }
    let payload =
        serde_json::from_str(&output.payload).map_err(|e| StepFailure::InvalidOutput {
            message: format!("payload is not valid JSON: {e}"),
        })?;
    if let Some(c) = output.confidence
        && !(0.0..=1.0).contains(&c)
    {
        return Err(StepFailure::InvalidOutput {
            message: format!("confidence {c} is outside 0.0..=1.0"),
        });
    }
    if let Some(route) = &output.route
        && (route.is_empty() || route.len() > MAX_ROUTE_BYTES || !route.chars().all(is_route_char))
    {
        return Err(StepFailure::InvalidOutput {
            message: format!(
                "route label {:?} must be 1 to {MAX_ROUTE_BYTES} bytes of letters, digits and {ROUTE_PUNCTUATION:?}",
                crate::text::truncated(route, MAX_ROUTE_BYTES)
            ),
        });
    }
    Ok(StepOutput {
        payload,
        confidence: output.confidence,
        route: output.route,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(payload: &str) -> bindings::StepOutput {
        bindings::StepOutput {
            payload: payload.into(),
            confidence: None,
            route: None,
        }
    }

    #[test]
    fn output_checks_name_the_problem() {
        let limits = Limits {
            output_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            check_output(output("\"0123456789\""), &limits),
            Err(StepFailure::OutputTooLarge {
                size: 12,
                limit: 10
            })
        );
        let err = check_output(output("{nope"), &limits).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid output: payload is not valid JSON"),
            "{err}"
        );
        let bad_confidence = bindings::StepOutput {
            confidence: Some(1.5),
            ..output("1")
        };
        assert_eq!(
            check_output(bad_confidence, &limits)
                .unwrap_err()
                .to_string(),
            "invalid output: confidence 1.5 is outside 0.0..=1.0"
        );
        let nan = bindings::StepOutput {
            confidence: Some(f64::NAN),
            ..output("1")
        };
        assert!(check_output(nan, &limits).is_err());
        let empty_route = bindings::StepOutput {
            route: Some(String::new()),
            ..output("1")
        };
        assert!(check_output(empty_route, &limits).is_err());
        for bad in [
            "a\u{200B}b",
            "a\u{2028}b",
            "\u{202E}lebal",
            "tab\there",
            "a\u{1b}[2K",
        ] {
            let route = bindings::StepOutput {
                route: Some(bad.into()),
                ..output("1")
            };
            assert!(
                check_output(route, &limits).is_err(),
                "{bad:?} was accepted"
            );
        }
        for good in [
            "ok",
            "billing",
            "needs review",
            "tier-2/urgent",
            "срочно",
            "紧急",
        ] {
            let route = bindings::StepOutput {
                route: Some(good.into()),
                ..output("1")
            };
            assert!(check_output(route, &limits).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn stderr_tail_is_quoted_without_the_backtrace_hint() {
        let stderr =
            "thread 'x' panicked at src/lib.rs:1:1:\nboom\nnote: run with `RUST_BACKTRACE=1` ...\n";
        assert_eq!(
            with_stderr("unreachable".into(), stderr),
            "unreachable; guest stderr: thread 'x' panicked at src/lib.rs:1:1: | boom"
        );
        assert_eq!(with_stderr("unreachable".into(), ""), "unreachable");
    }
}
