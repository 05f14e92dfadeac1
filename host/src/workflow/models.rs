//! The model-layer keys of a workflow: `deadline`, `[model]`, `[budgets]`, `[prompts]`, and
//! per step `model`, `grants.models` and `fallback`. Checked when the file loads, like
//! everything else, with each problem pointing at its key.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::authored::{Header, StepTable};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::{Fallback, StepDef};
use crate::model::prompt::Prompt;
use crate::model::{BudgetTable, CallPolicy, PolicyTable};

/// The workflow-wide model settings.
pub(super) struct WorkflowModel {
    pub deadline: Option<Duration>,
    pub policy: PolicyTable,
    pub budgets: BudgetTable,
    pub prompts: BTreeMap<String, Prompt>,
}

pub(super) fn workflow_model(
    header: &Header,
    base_dir: &Path,
    pinned: Option<&BTreeMap<String, String>>,
    errors: &mut Vec<Diagnostic>,
) -> WorkflowModel {
    let deadline = header.deadline.as_ref().and_then(|d| {
        crate::limits::parse_duration(d.get_ref())
            .map_err(|e| errors.push(Diagnostic::at(d.span(), format!("`deadline`: {e}"))))
            .ok()
    });
    let policy = checked_policy(header.model.as_ref(), "`model`", errors);
    let budgets = header
        .budgets
        .as_ref()
        .map_or_else(BudgetTable::default, |b| {
            if let Err(e) = b.get_ref().check() {
                errors.push(Diagnostic::at(b.span(), format!("`budgets`: {e}")));
            }
            *b.get_ref()
        });
    let mut prompts = BTreeMap::new();
    for (id, path) in &header.prompts {
        let text = match pinned.and_then(|p| p.get(id)) {
            Some(text) => text.clone(),
            None => match std::fs::read_to_string(base_dir.join(path.get_ref())) {
                Ok(text) => text,
                Err(e) => {
                    errors.push(
                        Diagnostic::at(
                            path.span(),
                            format!("prompt `{id}`: cannot read {:?}: {e}", path.get_ref()),
                        )
                        .help("prompt paths are relative to the workflow file"),
                    );
                    continue;
                }
            },
        };
        match Prompt::new(id, text) {
            Ok(prompt) => {
                prompts.insert(id.clone(), prompt);
            }
            Err(e) => errors.push(Diagnostic::at(
                path.span(),
                format!("prompt `{id}` is not a valid template: {e}"),
            )),
        }
    }
    WorkflowModel {
        deadline,
        policy,
        budgets,
        prompts,
    }
}

/// A step's model policy, granted aliases and fallback rule (its step is linked later).
pub(super) fn step_model(
    table: &StepTable,
    errors: &mut Vec<Diagnostic>,
) -> (PolicyTable, Vec<String>, Option<Fallback>) {
    let policy = checked_policy(table.model.as_ref(), "`model`", errors);
    let mut models = Vec::new();
    for alias in &table.grants.models {
        if alias.get_ref().trim().is_empty() {
            errors.push(Diagnostic::at(
                alias.span(),
                "`grants.models` holds an empty alias",
            ));
        } else if !models.contains(alias.get_ref()) {
            models.push(alias.get_ref().clone());
        }
    }
    let fallback = table.fallback.as_ref().map(|f| {
        let f = f.get_ref();
        let kinds = crate::failure::rule_kinds();
        if f.on.is_empty() {
            errors.push(
                Diagnostic::at(f.step.span(), "`fallback.on` names no failure kind").help(
                    "e.g. on = [\"model.unavailable\", \"model.budget_exceeded\", \"timeout\"]",
                ),
            );
        }
        for kind in &f.on {
            if !kinds.contains(kind.get_ref()) {
                let d = Diagnostic::at(
                    kind.span(),
                    format!(
                        "`fallback.on` names {:?}, which is not a failure kind",
                        kind.get_ref()
                    ),
                );
                errors.push(
                    match did_you_mean(kind.get_ref(), kinds.iter().map(String::as_str)) {
                        Some(close) => d.help(format!("did you mean `{close}`?")),
                        None => d.help(format!("the kinds are: {}", kinds.join(", "))),
                    },
                );
            }
        }
        Fallback {
            step: f.step.get_ref().clone(),
            on: f.on.iter().map(|k| k.get_ref().clone()).collect(),
        }
    });
    (policy, models, fallback)
}

/// Marks each fallback step with the step it stands in for, and makes it wait for that step.
pub(super) fn link_fallbacks(
    steps: &mut [StepDef],
    tables: &[StepTable],
    ids: &HashMap<String, Range<usize>>,
    known: &[&str],
    errors: &mut Vec<Diagnostic>,
) {
    let rules: Vec<(String, String, Range<usize>)> = tables
        .iter()
        .filter_map(|t| {
            let f = t.fallback.as_ref()?;
            Some((
                t.id.get_ref().clone(),
                f.get_ref().step.get_ref().clone(),
                f.get_ref().step.span(),
            ))
        })
        .collect();
    for (owner, target, span) in rules {
        if !ids.contains_key(&target) {
            errors.push(super::resolve::unknown_step(
                span,
                "`fallback.step`",
                &target,
                known,
            ));
            continue;
        }
        if owner == target {
            errors.push(Diagnostic::at(
                span,
                format!("step `{owner}` cannot be its own fallback"),
            ));
            continue;
        }
        let Some(step) = steps.iter_mut().find(|s| s.id == target) else {
            continue;
        };
        if let Some(other) = &step.stands_in_for {
            errors.push(
                Diagnostic::at(span, format!("step `{target}` is already the fallback of `{other}`"))
                    .help("a step can stand in for one step only; declare another step with the same plugin"),
            );
            continue;
        }
        step.stands_in_for = Some(owner.clone());
        if !step.after.contains(&owner) {
            step.after.push(owner);
        }
    }
}

fn checked_policy(
    table: Option<&Spanned<PolicyTable>>,
    what: &str,
    errors: &mut Vec<Diagnostic>,
) -> PolicyTable {
    let Some(table) = table else {
        return PolicyTable::default();
    };
    if let Err(e) = CallPolicy::default().with(table.get_ref()) {
        errors.push(Diagnostic::at(table.span(), format!("{what}: {e}")));
    }
    table.get_ref().clone()
}
