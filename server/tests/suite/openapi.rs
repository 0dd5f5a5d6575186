//! The OpenAPI document of `/api/v1`: served without a token, read by an OpenAPI 3.1 parser
//! (`oas3`, as a client generator would read it), listing every route of the REST API with
//! every reference resolving; and each documented read answering, at its versioned path and at
//! its alias, with a status the document lists. `scripts/test` then runs schemathesis against a
//! real pipescope for everything else the document promises.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;
use server::http::access::{Policy, Token};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common;

const DOCUMENT: &str = "/api/v1/openapi.json";

/// Every operation the API has, as `METHOD path`.
const OPERATIONS: [&str; 21] = [
    "GET /api/v1/state",
    "POST /api/v1/executions",
    "GET /api/v1/executions/{id}",
    "GET /api/v1/executions/{id}/transcript",
    "POST /api/v1/executions/{id}/pause",
    "POST /api/v1/executions/{id}/resume",
    "POST /api/v1/executions/{id}/cancel",
    "POST /api/v1/executions/{id}/rerun",
    "POST /api/v1/executions/{id}/steps/{step}/replay",
    "POST /api/v1/batches",
    "GET /api/v1/batches/{id}",
    "POST /api/v1/batches/{id}/cancel",
    "GET /api/v1/pipelines",
    "POST /api/v1/pipelines/validate",
    "GET /api/v1/logs",
    "GET /api/v1/logs/export",
    "GET /api/v1/history",
    "GET /api/v1/history/export",
    "GET /api/v1/events",
    "GET /api/v1/bus/stats",
    "POST /api/v1/ingest/events",
];

async fn document(addr: std::net::SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}{DOCUMENT}"))
        .await
        .expect("document");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));
    response.text().await.expect("text")
}

/// Every `$ref` in `value`.
fn references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("$ref", Value::String(target)) => {
                        found.insert(target.clone());
                    }
                    _ => references(field, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_document_is_valid_openapi_listing_every_route(pool: PgPool) {
    // With a token required: the document holds no data, and tools read it before anything.
    let token = |text| Token::parse(text).expect("token");
    let policy = Policy::new(
        Some(token("write-token-0123456789abcdef")),
        None,
        Vec::new(),
        true,
    )
    .expect("policy");
    let addr = common::serve_with(common::state(pool, Default::default()).await, policy).await;
    let text = document(addr).await;
    let spec = oas3::from_json(&text).expect("an OpenAPI document oas3 reads");
    spec.validate_version()
        .expect("an OpenAPI version oas3 supports");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    assert_eq!(spec.info.title, "pipescope");
    assert_eq!(spec.info.version, env!("CARGO_PKG_VERSION"));

    let operations: BTreeSet<String> = spec
        .operations()
        .map(|(path, method, _)| format!("{method} {path}"))
        .collect();
    let expected: BTreeSet<String> = OPERATIONS.iter().map(|o| o.to_string()).collect();
    assert_eq!(operations, expected);

    for (path, method, operation) in spec.operations() {
        let name = format!("{method} {path}");
        assert!(operation.summary.is_some(), "{name} has no summary");
        assert!(!operation.tags.is_empty(), "{name} has no tag");
        // Each `{parameter}` of the path is declared as a path parameter.
        let declared: BTreeSet<String> = operation
            .parameters
            .iter()
            .map(|p| p.resolve(&spec).expect("parameter resolves"))
            .filter(|p| p.location == oas3::spec::ParameterIn::Path)
            .map(|p| p.name)
            .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, in_path, "{name}");
        let responses = operation.responses.as_ref().expect("responses");
        assert!(
            responses.keys().any(|code| code.starts_with('2')),
            "{name} documents no success"
        );
        for (code, response) in responses {
            let response = response.resolve(&spec).expect("response resolves");
            for (media, content) in &response.content {
                content
                    .schema(&spec)
                    .unwrap_or_else(|e| panic!("{name} {code} {media}: {e}"));
            }
            // Errors are the JSON error, whatever the route.
            if code.starts_with('4') || code.starts_with('5') {
                let schema = response.content["application/json"]
                    .schema(&spec)
                    .expect("resolves")
                    .expect("a schema");
                assert!(
                    schema.required.contains(&"error".to_owned()),
                    "{name} {code}"
                );
            }
        }
        if let Some(body) = &operation.request_body {
            let body = body.resolve(&spec).expect("request body resolves");
            for content in body.content.values() {
                content.schema(&spec).expect("request schema resolves");
            }
        }
    }

    // Every reference, however deep, names a schema the document holds.
    let raw: Value = serde_json::from_str(&text).expect("JSON");
    let mut found = BTreeSet::new();
    references(&raw, &mut found);
    let schemas = &spec.components.as_ref().expect("components").schemas;
    for target in &found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {target}"));
        assert!(
            schemas.contains_key(name),
            "{target} is not in the document"
        );
    }
    for name in [
        "ExecutionDetail",
        "StepDetail",
        "RunStatus",
        "CurrentState",
        "ApiError",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn every_documented_read_answers_as_documented_at_both_prefixes(pool: PgPool) {
    let addr = common::serve(common::state(pool, Default::default()).await).await;
    let spec = oas3::from_json(document(addr).await).expect("document");
    let unknown = Uuid::new_v4().to_string();
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (path, method, operation) in spec.operations() {
        // The live stream never ends; the backbone tests read it.
        if method != reqwest::Method::GET || path.ends_with("/events") {
            continue;
        }
        let documented = operation.responses.as_ref().expect("responses");
        let versioned = path.replace("{id}", &unknown);
        let alias = versioned.replacen("/api/v1/", "/api/", 1);
        for url in [&versioned, &alias] {
            let response = client
                .get(format!("http://{addr}{url}"))
                .send()
                .await
                .expect("answer");
            let status = response.status();
            assert!(
                documented.contains_key(status.as_str()),
                "GET {url}: {status} is not documented"
            );
            let media = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .unwrap_or_default()
                .to_owned();
            let answer = documented[status.as_str()]
                .resolve(&spec)
                .expect("resolves");
            assert!(
                answer.content.contains_key(&media),
                "GET {url}: {status} answered {media}, documented {:?}",
                answer.content.keys().collect::<Vec<_>>()
            );
            if media == "application/json" {
                let body: Value = response.json().await.expect("the JSON it says");
                assert!(body.is_object() || body.is_array(), "GET {url}: {body}");
            }
            checked += 1;
        }
    }
    // state, 2 executions, batches, pipelines, 2 logs, 2 history, bus stats: each twice.
    assert_eq!(checked, 20);
}
