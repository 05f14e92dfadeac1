//! The OpenAPI document's links: which field of a response feeds which parameter of the
//! next call. They state how the API is used (submit a run, then read, follow or cancel
//! it; list reviews, then read or decide one) for people and client generators, and they
//! are what a stateful fuzzer (schemathesis) follows to chain real calls on real runs
//! instead of guessing ids that never exist.
//!
//! Kept as one table, added to the generated document, rather than spread over the
//! handlers' annotations: the graph reads in one place, and a test checks that every
//! operation and response it names exists.

use serde_json::{Value, json};

/// A link from the responses of one operation to another, filling its `id` path parameter.
struct Link {
    /// The operation whose responses carry it.
    from: &'static str,
    /// Its responses that do (they share the body's shape).
    statuses: &'static [&'static str],
    /// The operation it leads to (also the link's name).
    to: &'static str,
    /// Where in the response body the `id` is (an OpenAPI runtime expression).
    id: &'static str,
}

const fn link(
    from: &'static str,
    statuses: &'static [&'static str],
    to: &'static str,
    id: &'static str,
) -> Link {
    Link {
        from,
        statuses,
        to,
        id,
    }
}

/// A run just submitted: 201 when created, 200 when its idempotency key returned it.
const SUBMITTED: &[&str] = &["201", "200"];
const OK: &[&str] = &["200"];

const LINKS: &[Link] = &[
    link("submitRun", SUBMITTED, "getRun", "$response.body#/run/id"),
    link(
        "submitRun",
        SUBMITTED,
        "runEvents",
        "$response.body#/run/id",
    ),
    link(
        "submitRun",
        SUBMITTED,
        "cancelRun",
        "$response.body#/run/id",
    ),
    link("listRuns", OK, "getRun", "$response.body#/runs/0/id"),
    link("getRun", OK, "runEvents", "$response.body#/run/id"),
    link("getRun", OK, "cancelRun", "$response.body#/run/id"),
    link("cancelRun", OK, "getRun", "$response.body#/id"),
    link(
        "listReviews",
        OK,
        "getReview",
        "$response.body#/reviews/0/id",
    ),
    link(
        "listReviews",
        OK,
        "decideReview",
        "$response.body#/reviews/0/id",
    ),
    link("getReview", OK, "decideReview", "$response.body#/id"),
    link("getReview", OK, "getRun", "$response.body#/run_id"),
    link("decideReview", OK, "getReview", "$response.body#/id"),
    link("decideReview", OK, "getRun", "$response.body#/run_id"),
];

/// Adds [`LINKS`] to the document's responses. Written into the JSON rather than through
/// utoipa's `Link`, which (in utoipa 5.5) serializes its fields in snake case
/// (`operation_id`), a name OpenAPI tools do not read.
pub fn add(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in operation.values_mut() {
            let Some(from) = operation["operationId"].as_str().map(str::to_string) else {
                continue;
            };
            for link in LINKS.iter().filter(|link| link.from == from) {
                for status in link.statuses {
                    let Some(response) = operation
                        .pointer_mut(&format!("/responses/{status}"))
                        .and_then(Value::as_object_mut)
                    else {
                        continue;
                    };
                    let links = response.entry("links").or_insert_with(|| json!({}));
                    links[link.to] = json!({
                        "operationId": link.to,
                        "parameters": {"id": link.id},
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_joins_documented_operations_and_responses() {
        let doc = super::super::openapi();
        let mut operations = std::collections::BTreeMap::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                operations.insert(operation["operationId"].as_str().unwrap(), operation);
            }
        }
        for link in LINKS {
            let from = operations
                .get(link.from)
                .unwrap_or_else(|| panic!("no {}", link.from));
            for status in link.statuses {
                let links = &from["responses"][status]["links"];
                assert_eq!(
                    links[link.to]["operationId"], link.to,
                    "{} {status}",
                    link.from
                );
            }
            assert!(operations.contains_key(link.to), "no {}", link.to);
        }
    }
}
