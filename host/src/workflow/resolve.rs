//! Authored to resolved: every check that can be made without running anything, with every
//! problem collected.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;
use toml::Spanned;

use super::authored::{LimitsTable, StepTable};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::expr::{Expr, VARIABLES};
use super::parse::parse;
use super::{DEFAULT_MAX_PARALLEL, OutputDecl, PluginRef, StepDef, Workflow};
use crate::attempt::StepSpec;
use crate::capabilities::Grants;
use crate::capabilities::config::StepConfig;
use crate::capabilities::files::DirGrant;
use crate::capabilities::http::HostGrant;
use crate::limits::Limits;

type Failed = (String, Vec<Diagnostic>);

pub(super) fn resolve(
    source: String,
    base_dir: &Path,
    pinned_prompts: Option<&BTreeMap<String, String>>,
) -> Result<Workflow, Failed> {
    let (header, tables, mut errors) = parse(&source);
    let Some(header) = header else {
        return Err((source, errors));
    };

    let name = header.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        errors.push(
            Diagnostic::at(
                header.name.span(),
                format!("workflow name {name:?} is not valid"),
            )
            .help("use lower-case letters, digits, `-` and `_`, e.g. ticket-triage"),
        );
    }
    let version = match semver::Version::parse(header.version.get_ref()) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(
                Diagnostic::at(
                    header.version.span(),
                    format!(
                        "version {:?} is not a semantic version: {e}",
                        header.version.get_ref()
                    ),
                )
                .help("write MAJOR.MINOR.PATCH, e.g. version = \"1.0.0\""),
            );
            None
        }
    };
    let input_schema = header.input_schema.as_ref().and_then(|schema| {
        let json = serde_json::to_value(schema.get_ref()).ok()?;
        match crate::schema::Schema::compile(json) {
            Ok(compiled) => Some(compiled),
            Err(e) => {
                errors.push(Diagnostic::at(
                    schema.span(),
                    format!("input-schema is not a valid JSON Schema: {e}"),
                ));
                None
            }
        }
    });
    let default_limits = limits(&header.limits, &Limits::default(), &mut errors);
    let model = super::models::workflow_model(&header, base_dir, pinned_prompts, &mut errors);
    let max_parallel = match &header.max_parallel {
        Some(n) if *n.get_ref() == 0 => {
            errors.push(Diagnostic::at(n.span(), "max-parallel must be at least 1"));
            DEFAULT_MAX_PARALLEL
        }
        Some(n) => *n.get_ref() as usize,
        None => DEFAULT_MAX_PARALLEL,
    };

    // Ids first, so every reference can be checked against the full set.
    let mut ids: HashMap<String, Range<usize>> = HashMap::new();
    for table in &tables {
        let id = table.id.get_ref();
        if !is_identifier(id) {
            errors.push(
                Diagnostic::at(table.id.span(), format!("step id {id:?} is not valid"))
                    .help("step ids are used in expressions as steps.<id>: start with a letter or `_`, then letters, digits and `_`"),
            );
        } else if let Some(first) = ids.get(id) {
            let (line, _) = line_of(&source, first.start);
            errors.push(
                Diagnostic::at(table.id.span(), format!("step id `{id}` is used twice")).help(
                    format!("the first `{id}` is on line {line}; ids must be unique"),
                ),
            );
            continue;
        }
        ids.insert(id.clone(), table.id.span());
    }
    let known: Vec<&str> = ids.keys().map(String::as_str).collect();

    let mut steps = Vec::new();
    for table in &tables {
        if let Some(step) = step(table, &ids, &known, &default_limits, base_dir, &mut errors) {
            steps.push(step);
        }
    }
    super::models::link_fallbacks(&mut steps, &tables, &ids, &known, &mut errors);
    let order = order_steps(&steps, &tables, &mut errors);
    check_expression_scopes(&steps, &tables, &mut errors);

    let output = output(header.output.as_ref(), &steps, &ids, &known, &mut errors);
    let protection = super::protection::resolve(&header, &known, &mut errors);
    let monitor = super::monitoring::resolve(header.monitor.as_ref(), &mut errors);
    errors.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    errors.dedup();
    if !errors.is_empty() {
        return Err((source, errors));
    }
    let (Some(version), Some(output), Some(order)) = (version, output, order) else {
        return Err((source, errors));
    };
    let mut by_id: HashMap<String, StepDef> =
        steps.into_iter().map(|s| (s.id.clone(), s)).collect();
    let steps = order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect();
    Ok(Workflow {
        name,
        version,
        description: header.description,
        input_schema,
        output,
        max_parallel,
        steps,
        source,
        base_dir: base_dir.to_path_buf(),
        deadline: model.deadline,
        model_policy: model.policy,
        budgets: model.budgets,
        prompts: std::sync::Arc::new(model.prompts),
        redactor: protection.redactor,
        retention: protection.retention,
        monitor,
    })
}

fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn line_of(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    (
        before.matches('\n').count() + 1,
        before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
    )
}

pub(super) fn unknown_step(span: Range<usize>, what: &str, id: &str, known: &[&str]) -> Diagnostic {
    let d = Diagnostic::at(
        span,
        format!("{what} names step `{id}`, which does not exist"),
    );
    match did_you_mean(id, known.iter().copied()) {
        Some(close) => d.help(format!("did you mean `{close}`?")),
        None => d.help(format!("the steps are: {}", sorted(known))),
    }
}

fn sorted(known: &[&str]) -> String {
    let mut known = known.to_vec();
    known.sort_unstable();
    known.join(", ")
}

pub(super) fn compile(
    expr: &Spanned<String>,
    what: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<Expr> {
    match Expr::compile(expr.get_ref()) {
        Ok(e) => Some(e),
        Err(message) => {
            errors.push(
                Diagnostic::at(
                    expr.span(),
                    format!("{what} is not a valid CEL expression: {message}"),
                )
                .help(format!(
                    "expressions read {}; e.g. steps.classify.confidence < 0.6",
                    VARIABLES.join(" and ")
                )),
            );
            None
        }
    }
}

/// Checks an expression's references: known steps, known variables.
pub(super) fn check_refs(
    expr: &Expr,
    span: Range<usize>,
    what: &str,
    known: &[&str],
    errors: &mut Vec<Diagnostic>,
) -> BTreeSet<String> {
    let refs = expr.references();
    for id in &refs.steps {
        if !known.contains(&id.as_str()) {
            errors.push(unknown_step(span.clone(), what, id, known));
        }
    }
    for var in &refs.unknown_variables {
        let d = Diagnostic::at(
            span.clone(),
            format!("{what} uses `{var}`, which is not defined"),
        );
        errors.push(match did_you_mean(var, VARIABLES.iter().copied()) {
            Some(close) => d.help(format!("did you mean `{close}`?")),
            None => d.help("expressions can read `input` (the run input) and `steps.<id>` (output, confidence, route, status)"),
        });
    }
    refs.steps
}

fn step(
    table: &StepTable,
    ids: &HashMap<String, Range<usize>>,
    known: &[&str],
    defaults: &Limits,
    base_dir: &Path,
    errors: &mut Vec<Diagnostic>,
) -> Option<StepDef> {
    let id = table.id.get_ref().clone();
    let mut after: Vec<String> = Vec::new();
    for dep in &table.after {
        if !ids.contains_key(dep.get_ref()) {
            errors.push(unknown_step(dep.span(), "`after`", dep.get_ref(), known));
        } else if *dep.get_ref() == id {
            errors.push(Diagnostic::at(
                dep.span(),
                format!("step `{id}` cannot run after itself"),
            ));
        } else if !after.contains(dep.get_ref()) {
            after.push(dep.get_ref().clone());
        }
    }
    let mut on_route = BTreeMap::new();
    if let Some(routes) = &table.on_route {
        for (step, labels) in routes.get_ref() {
            if !ids.contains_key(step) {
                errors.push(unknown_step(routes.span(), "`on-route`", step, known));
                continue;
            }
            if labels.is_empty() {
                errors.push(Diagnostic::at(routes.span(), format!("`on-route` for `{step}` lists no routes")).help("list the route labels that let this step run, e.g. on-route = { route = [\"ok\"] }"));
            }
            if !after.contains(step) {
                after.push(step.clone());
            }
            on_route.insert(step.clone(), labels.clone());
        }
    }
    let when = table
        .when
        .as_ref()
        .and_then(|w| compile(w, "`when`", errors));
    let input = table
        .input
        .as_ref()
        .and_then(|i| compile(i, "`input`", errors));
    if let (Some(w), Some(expr)) = (&table.when, &when) {
        check_refs(expr, w.span(), "`when`", known, errors);
    }
    if let (Some(i), Some(expr)) = (&table.input, &input) {
        check_refs(expr, i.span(), "`input`", known, errors);
    }
    let review = table
        .review
        .as_ref()
        .map(|r| super::review::review_policy(r, known, errors));
    if table.input.is_none() && after.len() > 1 {
        errors.push(
            Diagnostic::at(table.id.span(), format!("step `{id}` waits for {} steps but does not say what it receives", after.len()))
                .help(format!("add an `input` mapping, e.g. input = '{{\"a\": steps.{}.output, \"b\": steps.{}.output}}'", after[0], after[1])),
        );
    }

    let plugin = plugin_ref(&table.plugin, base_dir, errors);
    let shadow = table
        .shadow
        .as_ref()
        .and_then(|t| super::shadow::resolve(t, base_dir, errors));
    let features = super::monitoring::features(table.monitor.as_ref(), errors);

    let limits = limits(&table.limits, defaults, errors);
    let config = match &table.config {
        None => StepConfig::default(),
        Some(config) => match serde_json::to_value(config.get_ref())
            .map_err(|e| e.to_string())
            .and_then(|v| StepConfig::from_value(v).map_err(|e| e.to_string()))
        {
            Ok(config) => config,
            Err(e) => {
                errors.push(Diagnostic::at(
                    config.span(),
                    format!("config cannot be used: {e}"),
                ));
                StepConfig::default()
            }
        },
    };
    let mut dirs = Vec::new();
    for dir in &table.grants.dirs {
        // Relative host directories are relative to the workflow file, not to where weir runs.
        let text = dir.get_ref();
        let anchored = if text.starts_with('/') {
            text.clone()
        } else {
            format!("{}/{text}", base_dir.display())
        };
        match anchored.parse::<DirGrant>() {
            Ok(grant) => dirs.push(grant),
            Err(e) => errors.push(Diagnostic::at(dir.span(), e.to_string())),
        }
    }
    let (model_policy, models, fallback) = super::models::step_model(table, errors);
    let mut hosts = Vec::new();
    for host in &table.grants.hosts {
        match HostGrant::parse(host.get_ref()) {
            Ok(grant) => hosts.push(grant),
            Err(e) => errors.push(Diagnostic::at(host.span(), e.to_string())),
        }
    }
    Some(StepDef {
        id,
        plugin,
        plugin_span: table.plugin.span(),
        spec: StepSpec {
            limits,
            config,
            grants: Grants {
                dirs,
                hosts: hosts.into(),
                models,
            },
        },
        after,
        when,
        on_route,
        input,
        review,
        model_policy,
        fallback,
        stands_in_for: None,
        shadow,
        features,
    })
}

/// `plugin = "…"`: a component file (relative to the workflow file) or `name@version` of a
/// registered plugin.
pub(super) fn plugin_ref(
    text: &Spanned<String>,
    base_dir: &Path,
    errors: &mut Vec<Diagnostic>,
) -> PluginRef {
    let plugin_text = text.get_ref();
    match plugin_text.split_once('@') {
        Some((name, version)) if !plugin_text.ends_with(".wasm") && !name.contains('/') => {
            if semver::Version::parse(version).is_err() {
                errors.push(
                    Diagnostic::at(
                        text.span(),
                        format!("plugin {plugin_text:?} has a version that is not semver"),
                    )
                    .help("write name@MAJOR.MINOR.PATCH, or a path to a .wasm file"),
                );
            }
            PluginRef::Registry {
                name: name.to_string(),
                version: version.to_string(),
            }
        }
        _ => PluginRef::Path(base_dir.join(plugin_text)),
    }
}

fn limits(table: &LimitsTable, defaults: &Limits, errors: &mut Vec<Diagnostic>) -> Limits {
    let mut limits = defaults.clone();
    if let Some(fuel) = &table.fuel {
        limits.fuel = Some(*fuel.get_ref());
    }
    if let Some(timeout) = &table.timeout {
        match crate::limits::parse_duration(timeout.get_ref()) {
            Ok(d) => limits.timeout = d,
            Err(e) => errors.push(Diagnostic::at(timeout.span(), format!("timeout: {e}"))),
        }
    }
    for (name, field, target) in [
        ("memory", &table.memory, &mut limits.memory_bytes),
        ("output", &table.output, &mut limits.output_bytes),
    ] {
        if let Some(size) = field {
            match crate::limits::parse_size(size.get_ref()) {
                Ok(bytes) => *target = bytes,
                Err(e) => errors.push(Diagnostic::at(size.span(), format!("{name}: {e}"))),
            }
        }
    }
    if let Some(n) = &table.http_requests {
        limits.http_requests = *n.get_ref();
    }
    limits
}

/// A topological order of the steps, or a diagnostic for each cycle.
fn order_steps(
    steps: &[StepDef],
    tables: &[StepTable],
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    let mut graph = DiGraph::<&str, ()>::new();
    let nodes: HashMap<&str, _> = steps
        .iter()
        .map(|s| (s.id.as_str(), graph.add_node(s.id.as_str())))
        .collect();
    for step in steps {
        for dep in &step.after {
            if let (Some(&from), Some(&to)) = (nodes.get(dep.as_str()), nodes.get(step.id.as_str()))
            {
                graph.add_edge(from, to, ());
            }
        }
    }
    let mut cyclic = false;
    for component in tarjan_scc(&graph) {
        if component.len() < 2 {
            continue;
        }
        cyclic = true;
        let mut members: Vec<&str> = component.iter().map(|n| graph[*n]).collect();
        members.sort_unstable();
        let first = members[0];
        let span = tables
            .iter()
            .find(|t| t.id.get_ref() == first)
            .map_or(0..0, |t| t.id.span());
        let mut path = members.clone();
        path.push(first);
        errors.push(
            Diagnostic::at(
                span,
                format!(
                    "steps {} wait for each other in a cycle",
                    members
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .help(format!(
                "remove one of the `after` (or `on-route`) links in {}",
                path.join(" → ")
            )),
        );
    }
    if cyclic {
        return None;
    }
    // Stable order: file order among steps that are ready at the same time.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < steps.len() {
        let next = steps.iter().find(|s| {
            !done.contains(s.id.as_str()) && s.after.iter().all(|d| done.contains(d.as_str()))
        })?;
        done.insert(&next.id);
        order.push(next.id.clone());
    }
    Some(order)
}

/// A step's expressions may only read steps that finish before it: its transitive dependencies.
fn check_expression_scopes(steps: &[StepDef], tables: &[StepTable], errors: &mut Vec<Diagnostic>) {
    let deps: HashMap<&str, &[String]> = steps
        .iter()
        .map(|s| (s.id.as_str(), s.after.as_slice()))
        .collect();
    for (step, table) in steps.iter().zip(
        tables
            .iter()
            .filter(|t| steps.iter().any(|s| &s.id == t.id.get_ref())),
    ) {
        let mut upstream = BTreeSet::new();
        let mut stack: Vec<&str> = step.after.iter().map(String::as_str).collect();
        while let Some(id) = stack.pop() {
            if upstream.insert(id) {
                stack.extend(
                    deps.get(id)
                        .into_iter()
                        .flat_map(|d| d.iter().map(String::as_str)),
                );
            }
        }
        let review_when = (
            step.review.as_ref().and_then(|r| r.when.as_ref()),
            table
                .review
                .as_ref()
                .and_then(|r| r.get_ref().when.as_ref()),
            "`review.when`",
        );
        for (expr, spanned, what) in [
            (step.when.as_ref(), table.when.as_ref(), "`when`"),
            (step.input.as_ref(), table.input.as_ref(), "`input`"),
            review_when,
        ] {
            let (Some(expr), Some(spanned)) = (expr, spanned) else {
                continue;
            };
            for id in expr.references().steps {
                if deps.contains_key(id.as_str())
                    && !upstream.contains(id.as_str())
                    && id != step.id
                {
                    errors.push(
                        Diagnostic::at(spanned.span(), format!("{what} of step `{}` reads `steps.{id}`, which does not run before it", step.id))
                            .help(format!("add \"{id}\" to this step's `after`")),
                    );
                }
            }
        }
    }
}

fn output(
    declared: Option<&Spanned<String>>,
    steps: &[StepDef],
    ids: &HashMap<String, Range<usize>>,
    known: &[&str],
    errors: &mut Vec<Diagnostic>,
) -> Option<OutputDecl> {
    match declared {
        Some(text) if ids.contains_key(text.get_ref()) => {
            Some(OutputDecl::Step(text.get_ref().clone()))
        }
        Some(text) => {
            let expr = compile(text, "`output`", errors)?;
            check_refs(&expr, text.span(), "`output`", known, errors);
            Some(OutputDecl::Expr(expr))
        }
        None => {
            let sinks: Vec<&StepDef> = steps
                .iter()
                .filter(|s| !steps.iter().any(|o| o.after.contains(&s.id)))
                .collect();
            match sinks.as_slice() {
                [only] => Some(OutputDecl::Step(only.id.clone())),
                // With other errors the set of last steps is not to be trusted: say nothing yet.
                _ if !errors.is_empty() => None,
                _ => {
                    errors.push(
                        Diagnostic::whole_file("the workflow does not say what its output is")
                            .help("add `output = \"<step id>\"` or a CEL expression such as output = '{\"label\": steps.classify.output.label}'"),
                    );
                    None
                }
            }
        }
    }
}
