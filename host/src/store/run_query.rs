//! The query behind `list_runs`, for both backends: only the conditions a filter sets (so
//! the planner sees each as a plain condition, not an `IS NULL OR` it cannot index), newest
//! first by id, with the values to bind in order.

use super::RunFilter;

/// A value to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// The condition that some step of `runs` took the route bound at placeholder `p`, in a
/// backend's own tables.
pub(crate) type RouteCondition = fn(&str) -> String;

/// Where the steps' rows hold their routes (PostgreSQL, and SQLite runs made before its
/// schema version 7).
pub(crate) fn route_in_steps(p: &str) -> String {
    format!("EXISTS (SELECT 1 FROM steps s WHERE s.run_id = runs.id AND s.route = {p})")
}

/// SQL selecting `columns` of the runs `filter` admits, with placeholders written by
/// `param` (1, 2, …), and what to bind to them.
pub(crate) fn list_runs(
    columns: &str,
    filter: &RunFilter,
    limit: u32,
    param: fn(usize) -> String,
    route: RouteCondition,
) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut next = |bind: Bind| {
        binds.push(bind);
        param(binds.len())
    };
    let mut conditions = Vec::new();
    if let Some(status) = filter.status {
        conditions.push(format!("status = {}", next(Bind::Text(status.to_string()))));
    }
    if let Some(workflow) = &filter.workflow {
        conditions.push(format!("workflow = {}", next(Bind::Text(workflow.clone()))));
    }
    if let Some(version) = &filter.version {
        conditions.push(format!("version = {}", next(Bind::Text(version.clone()))));
    }
    if let Some(before) = &filter.before {
        conditions.push(format!("id < {}", next(Bind::Text(before.clone()))));
    }
    if let Some(since) = filter.since_ms {
        conditions.push(format!("created_ms >= {}", next(Bind::Int(since))));
    }
    if let Some(until) = filter.until_ms {
        conditions.push(format!("created_ms < {}", next(Bind::Int(until))));
    }
    if let Some(wanted) = &filter.route {
        conditions.push(route(&next(Bind::Text(wanted.clone()))));
    }
    let reviewed = "EXISTS (SELECT 1 FROM reviews v WHERE v.run_id = runs.id)";
    match filter.has_review {
        Some(true) => conditions.push(reviewed.to_string()),
        Some(false) => conditions.push(format!("NOT {reviewed}")),
        None => {}
    }
    if let Some(text) = &filter.id_or_key {
        let (a, b) = (
            next(Bind::Text(text.clone())),
            next(Bind::Text(text.clone())),
        );
        conditions.push(format!("(id = {a} OR idempotency_key = {b})"));
    }
    if let Some(micros) = filter.min_cost_micros {
        conditions.push(format!(
            "(SELECT COALESCE(SUM(m.cost_micros), 0) FROM model_calls m WHERE m.run_id = runs.id) >= {}",
            next(Bind::Int(micros))
        ));
    }
    let limit = next(Bind::Int(i64::from(limit)));
    let condition = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (
        format!("SELECT {columns} FROM runs{condition} ORDER BY id DESC LIMIT {limit}"),
        binds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunStatus;

    #[test]
    fn only_the_conditions_a_filter_sets_are_in_the_query() {
        let q = |n: usize| format!("?{n}");
        let (sql, binds) = list_runs("id", &RunFilter::default(), 50, q, route_in_steps);
        assert_eq!(sql, "SELECT id FROM runs ORDER BY id DESC LIMIT ?1");
        assert_eq!(binds, [Bind::Int(50)]);
        let filter = RunFilter {
            status: Some(RunStatus::Failed),
            route: Some("billing".into()),
            has_review: Some(false),
            id_or_key: Some("k-1".into()),
            ..RunFilter::default()
        };
        let (sql, binds) = list_runs("id", &filter, 10, |n| format!("${n}"), route_in_steps);
        assert_eq!(
            sql,
            "SELECT id FROM runs WHERE status = $1 AND EXISTS (SELECT 1 FROM steps s WHERE s.run_id = runs.id AND s.route = $2) \
             AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.run_id = runs.id) AND (id = $3 OR idempotency_key = $4) \
             ORDER BY id DESC LIMIT $5"
        );
        assert_eq!(binds.len(), 5);
        assert_eq!(binds[0], Bind::Text("failed".into()));
    }
}
