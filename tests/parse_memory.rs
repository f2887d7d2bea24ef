//! Issue #21: what a body is weighed at bounds what reading it builds.
//! Every JSON route of the OpenAPI document is sent 1 MB bodies of nested
//! arrays (and of small objects, the densest tree JSON has) in every field
//! it accepts plus an unknown one, and the heap's peak while the request
//! runs must stay within what the admission charged for it: the body's
//! bytes as they arrived, and its parser's weight.
//!
//! The heap is counted by a global allocator (`peak_alloc`), so this file
//! holds one test: nothing else runs in its process while it measures.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TestApp, send_to};
use peak_alloc::PeakAlloc;
use serde_json::Value;
use storybook::admission::RECEIVE_EXPANSION;
use storybook::extract::{JsonBody, JsonFields, JsonWithStrokes};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// A body's size: under the 1 MiB limit.
const BODY_BYTES: usize = 1_000_000;

/// The routes whose handlers read strokes as drafts (`JsonWithStrokes`).
const STROKE_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/drawings"),
    ("post", "/api/drawings/{id}/strokes"),
];

/// `count` copies of `item` in an array.
fn array_of(item: &str, count: usize) -> String {
    let mut text = String::with_capacity(count * (item.len() + 1) + 2);
    text.push('[');
    for n in 0..count {
        if n > 0 {
            text.push(',');
        }
        text.push_str(item);
    }
    text.push(']');
    text
}

/// A body with `fields` (and an unknown one), each holding a tree of
/// `item`s, about `BODY_BYTES` long in all.
fn body_of(fields: &[String], item: &str) -> Vec<u8> {
    let names: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .chain(["an_unknown_field"])
        .collect();
    let per_field = BODY_BYTES / names.len();
    let tree = array_of(item, per_field / (item.len() + 1) - 4);
    let entries: Vec<String> = names
        .iter()
        .map(|name| format!("\"{name}\":{tree}"))
        .collect();
    format!("{{{}}}", entries.join(",")).into_bytes()
}

/// The fields a route's JSON body schema names.
fn fields_of(document: &Value, operation: &Value) -> Option<Vec<String>> {
    let mut schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return None;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next()?;
        schema = &document["components"]["schemas"][name];
    }
    Some(
        schema["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default(),
    )
}

/// Sends `body` and returns the heap's growth at its peak while the
/// request ran, and the answer's status.
async fn peak_of(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> (usize, StatusCode) {
    let request = Request::builder()
        .method(Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap())
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        // Spelled as the attack did: media types are compared without case.
        .header(header::CONTENT_TYPE, "Application/JSON; Charset=UTF-8")
        .body(Body::from(body))
        .unwrap();
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let reply = send_to(&app.router, request).await;
    (HEAP.peak_usage().saturating_sub(before), reply.status)
}

#[tokio::test]
async fn no_json_route_builds_more_than_its_body_was_weighed_at() {
    let app = TestApp::sqlite().await;
    let token = app.register_admin("weigher").await;
    let document = app.get("/api/openapi.json", None).await.body;
    // Warm every lazily made thing (the token cache, statements) first.
    app.get("/api/me", Some(&token)).await;

    let items = [
        ("pairs", "[0,0]"),
        ("objects", "{\"\":0}"),
        ("deep", "[[[[[[[[[[0]]]]]]]]]]"),
        (
            "strokes",
            "{\"id\":[[0,0]],\"points\":[[0,[0]],[0,0]],\"tool\":{\"a\":[0]}}",
        ),
        ("empty", "{}"),
    ];
    let mut routes_tried = 0;
    let paths = document["paths"].as_object().expect("paths");
    for (template, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let Some(fields) = fields_of(&document, operation) else {
                continue;
            };
            routes_tried += 1;
            let path = template
                .replace("{id}", "1")
                .replace("{kind}", "quiz")
                .replace("{username}", "weigher")
                .replace("{stroke_id}", "s1");
            let strokes = STROKE_ROUTES.contains(&(method.as_str(), template.as_str()));
            for (shape, item) in items {
                let body = body_of(&fields, item);
                let length = body.len();
                let weight = length * RECEIVE_EXPANSION
                    + if strokes {
                        JsonWithStrokes::weight(length)
                    } else {
                        JsonFields::weight(length)
                    };
                let (peak, status) = peak_of(&app, method, &path, &token, body).await;
                println!("{method} {template} {shape}: {status}, peak {peak} of {weight}");
                assert!(
                    peak <= weight,
                    "{method} {template} with {shape}: the heap grew by {peak} bytes, \
                     more than the {weight} it was weighed at"
                );
                assert!(
                    status.is_client_error(),
                    "{method} {template} with {shape}: {status}"
                );
            }
        }
    }
    assert!(routes_tried >= 15, "only {routes_tried} JSON routes found");

    // The measure sees a tree: serde_json's own, of the same pairs, grows
    // the heap far past a JSON route's weight.
    let pairs = body_of(&["text".to_owned()], "[0,0]");
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let tree: Value = serde_json::from_slice(&pairs).unwrap();
    let tree_peak = HEAP.peak_usage() - before;
    drop(tree);
    assert!(
        tree_peak > JsonFields::weight(pairs.len()) + pairs.len() * RECEIVE_EXPANSION,
        "a plain tree took only {tree_peak}"
    );
}
