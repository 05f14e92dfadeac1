//! The OpenAPI document as tools read it: unique operation ids, a binary upload body,
//! query parameters described as the server parses them (and the server holding to that),
//! and links from a submitted run to the calls that take its id.

use super::*;

/// Every operation in the document, as (`METHOD path`, operation).
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((format!("{} {path}", method.to_uppercase()), operation));
        }
    }
    found
}

fn operation<'a>(doc: &'a Value, id: &str) -> &'a Value {
    operations(doc)
        .into_iter()
        .find(|(_, op)| op["operationId"] == id)
        .unwrap_or_else(|| panic!("no operation {id}"))
        .1
}

/// A parameter's schema, with a `$ref` to a component followed.
fn parameter_schema<'a>(doc: &'a Value, operation_id: &str, name: &str) -> &'a Value {
    let parameters = operation(doc, operation_id)["parameters"]
        .as_array()
        .unwrap();
    let parameter = parameters
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{operation_id} has no parameter {name}"));
    let schema = &parameter["schema"];
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

#[tokio::test]
async fn the_openapi_document_is_precise_enough_for_generators_and_fuzzers() {
    let s = api_sidecar().await;
    let doc = s.json("/openapi.json").await;

    // Every operation has an id, and no two share one (client generators name methods
    // by them; links name their targets by them).
    let mut seen = std::collections::BTreeMap::new();
    for (label, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{label} has no operationId"));
        assert!(!id.is_empty(), "{label} has an empty operationId");
        if let Some(other) = seen.insert(id.to_string(), label.clone()) {
            panic!("{label} and {other} share the operationId {id:?}");
        }
    }

    // The upload body is binary, not an array of numbers.
    let content = operation(&doc, "uploadPlugin")["requestBody"]["content"]
        .as_object()
        .unwrap();
    assert!(!content.is_empty());
    for (media_type, body) in content {
        let schema = &body["schema"];
        assert_eq!(
            (&schema["type"], &schema["format"]),
            (&json!("string"), &json!("binary")),
            "{media_type}: {schema}"
        );
    }

    // `status` lists exactly the run statuses; `limit` and `wait` state their bounds.
    let status = parameter_schema(&doc, "listRuns", "status");
    assert_eq!(
        status["enum"],
        json!([
            "pending",
            "running",
            "awaiting_review",
            "succeeded",
            "failed",
            "cancelled"
        ]),
        "{status}"
    );
    let limit = parameter_schema(&doc, "listRuns", "limit");
    assert_eq!(
        (&limit["minimum"], &limit["maximum"]),
        (&json!(1), &json!(500))
    );
    let wait = parameter_schema(&doc, "submitRun", "wait");
    assert!(wait["pattern"].is_string(), "{wait}");
    let reviews = parameter_schema(&doc, "listReviews", "status");
    assert_eq!(
        reviews["enum"],
        json!(["pending", "approved", "edited", "rejected", "closed", "all"]),
        "{reviews}"
    );

    // A submitted run links to the calls that take its id.
    for status in ["201", "200"] {
        let links = &operation(&doc, "submitRun")["responses"][status]["links"];
        for target in ["getRun", "cancelRun", "runEvents"] {
            assert_eq!(
                links[target],
                json!({"operationId": target, "parameters": {"id": "$response.body#/run/id"}}),
                "submitRun {status} links to {target}: {links}"
            );
        }
    }
    let links = &operation(&doc, "listReviews")["responses"]["200"]["links"];
    assert_eq!(links["getReview"]["operationId"], "getReview", "{links}");

    s.server.unwrap().shutdown().await.unwrap();
}

#[tokio::test]
async fn query_parameters_are_accepted_and_refused_as_documented() {
    let s = api_sidecar().await;
    let doc = s.json("/openapi.json").await;

    // Every status the document lists is accepted; anything else, and a limit out of its
    // bounds, is refused.
    let statuses = parameter_schema(&doc, "listRuns", "status")["enum"].clone();
    for status in statuses.as_array().unwrap() {
        let r = s
            .get(&format!("/v1/runs?status={}", status.as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{status}");
    }
    let statuses = parameter_schema(&doc, "listReviews", "status")["enum"].clone();
    for status in statuses.as_array().unwrap() {
        let r = s
            .get(&format!("/v1/reviews?status={}", status.as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{status}");
    }
    for limit in ["1", "500"] {
        let r = s
            .get(&format!("/v1/runs?limit={limit}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "limit={limit}");
    }
    for limit in ["0", "501"] {
        let r = s
            .get(&format!("/v1/runs?limit={limit}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "limit={limit}");
    }

    // `wait` takes a number and a unit, cut to 5 minutes; nothing else.
    for wait in ["", "0s", "250ms", "30s", "999999999m"] {
        let (status, body) = s
            .submit(
                &format!("?wait={wait}"),
                json!({"workflow": "echo", "input": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "wait={wait}: {body}");
    }
    for wait in ["30", "1m%2030s", "%2030s", "1h"] {
        let (status, body) = s
            .submit(
                &format!("?wait={wait}"),
                json!({"workflow": "echo", "input": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "wait={wait}: {body}");
    }

    s.server.unwrap().shutdown().await.unwrap();
}
