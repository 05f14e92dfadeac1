//! The data-protection keys of a workflow: `[redact]` (fields by path, detectors of personal
//! data) and `[retention]` (how long a finished run keeps its payloads). Checked when the
//! file loads, each problem pointing at its entry.

use std::sync::Arc;
use std::time::Duration;

use super::authored::Header;
use super::diagnostic::{Diagnostic, did_you_mean};
use crate::redaction::Redactor;

/// The workflow's data-protection settings.
pub(super) struct Protection {
    pub redactor: Option<Arc<Redactor>>,
    pub retention: Option<Duration>,
}

pub(super) fn resolve(header: &Header, steps: &[&str], errors: &mut Vec<Diagnostic>) -> Protection {
    let retention = header.retention.as_ref().and_then(|r| {
        let payloads = &r.get_ref().payloads;
        humantime::parse_duration(payloads.get_ref().trim())
            .map_err(|e| format!("{:?} is not a duration such as 30d or 12h: {e}", payloads.get_ref()))
            .and_then(|d| {
                if d.is_zero() {
                    Err("a retention of zero would purge runs as they end; give a positive duration".into())
                } else {
                    Ok(d)
                }
            })
            .map_err(|e| errors.push(Diagnostic::at(payloads.span(), format!("`retention.payloads`: {e}"))))
            .ok()
    });
    let redactor = header.redact.as_ref().and_then(|table| {
        let table = table.get_ref();
        let before = errors.len();
        // Each entry on its own, so that every bad one is reported at its place.
        for d in &table.detectors {
            if let Err(e) = Redactor::new(std::slice::from_ref(d.get_ref()), &[]) {
                errors.push(Diagnostic::at(d.span(), format!("`redact.detectors`: {e}")));
            }
        }
        for f in &table.fields {
            match Redactor::new(&[], std::slice::from_ref(f.get_ref())) {
                Err(e) => errors.push(Diagnostic::at(f.span(), format!("`redact.fields`: {e}"))),
                Ok(one) => {
                    for step in one.named_steps() {
                        if !steps.contains(&step) {
                            let d = Diagnostic::at(
                                f.span(),
                                format!(
                                    "`redact.fields` names step `{step}`, which does not exist"
                                ),
                            );
                            errors.push(match did_you_mean(step, steps.iter().copied()) {
                                Some(near) => d.help(format!("did you mean `{near}`?")),
                                None => d,
                            });
                        }
                    }
                }
            }
        }
        if errors.len() > before {
            return None;
        }
        let detectors: Vec<String> = table
            .detectors
            .iter()
            .map(|d| d.get_ref().clone())
            .collect();
        let fields: Vec<String> = table.fields.iter().map(|f| f.get_ref().clone()).collect();
        Redactor::new(&detectors, &fields).ok().map(Arc::new)
    });
    Protection {
        redactor,
        retention,
    }
}
