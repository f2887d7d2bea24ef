//! The OpenAPI 3 document, generated at start-up from the operations the
//! routers registered, plus the schemas of the contract's objects and an
//! example of every body.

mod examples;
mod links;
mod schemas;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::http::{Access, Operation, ParamKind, QueryParam, RequestMedia};

/// Where the document itself is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";

/// Builds the whole document.
/// The document as `/api/openapi.json` serves it: made on the first request
/// and kept compressed (zlib, about 12 KiB instead of 108 KiB), sent as is
/// to clients that accept `deflate` and inflated for the others. Made at
/// start-up and kept whole, it cost 0.5 MB of lean idle RSS (its bytes and
/// the heap its making fragmented); made on every request, 8 ms of CPU.
pub struct Served {
    operations: Vec<Operation>,
    compressed: std::sync::OnceLock<axum::body::Bytes>,
}

impl Served {
    pub fn new(operations: Vec<Operation>) -> Self {
        Self {
            operations,
            compressed: std::sync::OnceLock::new(),
        }
    }

    pub fn answer(&self, headers: &axum::http::HeaderMap) -> axum::response::Response {
        use axum::http::{HeaderValue, header};
        use axum::response::IntoResponse;
        let compressed = self.compressed.get_or_init(|| {
            let made = {
                let text = document(&self.operations).to_string();
                miniz_oxide::deflate::compress_to_vec_zlib(text.as_bytes(), 6)
            };
            // Copied once everything the making used is freed, so what is
            // kept lands low in the heap instead of pinning its top.
            axum::body::Bytes::copy_from_slice(&made)
        });
        let json = (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let accepts_deflate = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|e| e.trim().starts_with("deflate")));
        if accepts_deflate {
            let deflate = (
                header::CONTENT_ENCODING,
                HeaderValue::from_static("deflate"),
            );
            return ([json, deflate], compressed.clone()).into_response();
        }
        match miniz_oxide::inflate::decompress_to_vec_zlib(compressed) {
            Ok(text) => ([json], text).into_response(),
            Err(_) => crate::ApiError::internal("the document does not inflate").into_response(),
        }
    }
}

pub fn document(operations: &[Operation]) -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for operation in operations {
        paths
            .entry(operation.path)
            .or_default()
            .insert(operation.method.to_owned(), describe(operation));
    }
    paths.entry(DOCUMENT_PATH).or_default().insert(
        "get".to_owned(),
        json!({
            "operationId": links::operation_id("get", DOCUMENT_PATH),
            "summary": "This document",
            "tags": ["system"],
            "responses": {
                "200": {
                    "description": "The OpenAPI 3 document of every REST route",
                    "content": { "application/json": { "schema": { "type": "object" } } },
                },
                "401": error_response(401),
                "503": error_response(503),
            },
        }),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Storybook API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The storybook server's REST API. Every error has the shape \
                `{\"error\": {\"code\", \"message\", \"fields\"?}}`. Malformed JSON or a non-JSON \
                Content-Type is 400 `bad_request` (media types are compared without regard to case); \
                XML and form bodies are 415; a JSON body over the body limit, or whose values would \
                take more memory than its route reads (about 12 times its length, plus 48 KiB), is \
                413; a server short of a resource (request memory, request slots, the login lock's \
                table, hash or render queues) answers 503 `busy` with Retry-After at once; a request that takes longer than the request time-out \
                is 503 `timeout`. Lists take `page` (>= 1) and `page_size` (1..100). A bad \
                token is 401 on every /api route, public ones included. Browsers on another origin: \
                the origins listed in CORS_ALLOWED_ORIGINS (exact, none by default) get \
                Access-Control-Allow-Origin and Access-Control-Expose-Headers (ETag, Retry-After, \
                Render-Incomplete, Content-Disposition) on every /api answer, errors included, \
                and Vary: Origin; a preflight (OPTIONS with Origin and \
                Access-Control-Request-Method) on any /api path is 204, answered before \
                authentication and every limit, with Allow-Methods GET, POST, PUT, PATCH, DELETE, \
                Allow-Headers Authorization, Content-Type, If-None-Match and Max-Age 600 for a \
                listed origin and no Allow header for another; never credentials. The WebSocket \
                at /ws (realtime build) is described in the contract, not here; a page of an \
                origin neither listed nor the server's own is refused 403 there.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas::all(),
        },
    })
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

/// A path parameter's schema, by its name.
fn path_parameter_schema(name: &str) -> Value {
    match name {
        "username" => json!({ "type": "string", "minLength": 1 }),
        "stroke_id" => json!({ "type": "string", "minLength": 1 }),
        "kind" => {
            json!({ "type": "string", "enum": storybook_games::Kind::ALL.map(|kind| kind.as_str()) })
        }
        _ => json!({ "type": "integer", "format": "int64" }),
    }
}

fn query_parameter(param: &QueryParam) -> Value {
    let schema = match param.kind {
        ParamKind::Text => json!({ "type": "string" }),
        ParamKind::Integer { minimum, maximum } => {
            json!({ "type": "integer", "format": "int64", "minimum": minimum, "maximum": maximum })
        }
        ParamKind::Boolean => json!({ "type": "boolean" }),
        ParamKind::OneOf(words) => json!({ "type": "string", "enum": words }),
    };
    json!({
        "name": param.name, "in": "query", "required": false,
        "description": param.description, "schema": schema,
    })
}

/// A body of `schema` in `media_type`, with its example when there is one.
fn content(media_type: &str, schema: &str) -> Value {
    let mut body = json!({ "schema": reference(schema) });
    if let Some(example) = examples::of(schema) {
        body["example"] = example;
    }
    json!({ media_type: body })
}

fn error_response(status: u16) -> Value {
    let mut response = json!({
        "description": reason(status),
        "content": { "application/json": { "schema": reference("Error") } },
    });
    if status == 429 || status == 503 {
        response["headers"] = json!({ "Retry-After": {
            "description": "seconds until the next attempt may succeed (429, and 503 busy)",
            "schema": { "type": "integer", "minimum": 1 },
        } });
    }
    response
}

fn success_response(operation: &Operation) -> Value {
    let doc = &operation.doc;
    let mut success = json!({ "description": "Success" });
    match (doc.response, doc.response_media) {
        (Some(schema), media_type) => success["content"] = content(media_type, schema),
        (None, "image/png") => {
            success["content"] =
                json!({ "image/png": { "schema": { "type": "string", "format": "binary" } } });
        }
        (None, "application/json") => {}
        (None, media_type) => {
            success["content"] = json!({ media_type: { "schema": { "type": "string" } } })
        }
    }
    if doc.errors.contains(&304) {
        success["headers"] = etag_header();
    }
    if doc.response_media == "application/x-ndjson" {
        success["headers"]["Content-Disposition"] = json!({
            "description": "`attachment; filename=\"storybook-YYYY-MM-DD.jsonl\"`",
            "schema": { "type": "string" },
        });
    }
    if doc.response_media == "image/png" {
        success["headers"]["Render-Incomplete"] = json!({
            "description": "present (`true`) when the drawing's strokes did not all fit the render's work budget (RENDER_WORK_BUDGET): the image shows the strokes up to the first that did not fit",
            "schema": { "type": "string", "enum": ["true"] },
        });
    }
    success
}

fn etag_header() -> Value {
    json!({ "ETag": {
        "description": "changes whenever the answer would; send it back as If-None-Match",
        "schema": { "type": "string" },
    } })
}

fn describe(operation: &Operation) -> Value {
    let doc = &operation.doc;
    let mut parameters: Vec<Value> = operation
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true, "schema": path_parameter_schema(name) })
        })
        .collect();
    parameters.extend(doc.query.iter().map(query_parameter));

    let mut responses = Map::new();
    responses.insert(doc.status.to_string(), success_response(operation));
    let mut errors: Vec<u16> = doc.errors.to_vec();
    match doc.access {
        Access::Public => {}
        Access::User => errors.push(401),
        Access::Admin => errors.extend([401, 403]),
    }
    if let Some(_schema) = doc.request {
        errors.extend([400, 413, 415, 422]);
    }
    if !parameters.is_empty() {
        errors.push(422);
    }
    if operation.path.starts_with("/api") {
        // A bad token is refused on every /api route, public ones included.
        errors.push(401);
    }
    // Any request may outlast the request time-out.
    errors.push(503);
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        let response = if status == 304 {
            json!({ "description": "Not modified: If-None-Match matched the ETag (no body)", "headers": etag_header() })
        } else {
            error_response(status)
        };
        responses.insert(status.to_string(), response);
    }

    let mut described = json!({
        "operationId": links::operation_id(operation.method, operation.path),
        "summary": doc.summary,
        "tags": [operation.tag],
        "responses": responses,
    });
    if let Some(links) = links::from(operation.method, operation.path) {
        described["responses"][doc.status.to_string()]["links"] = links;
    }
    if !parameters.is_empty() {
        described["parameters"] = json!(parameters);
    }
    if let Some(schema) = doc.request {
        let media_type = match doc.request_media {
            RequestMedia::Json => "application/json",
            RequestMedia::Multipart => "multipart/form-data",
        };
        described["requestBody"] =
            json!({ "required": true, "content": content(media_type, schema) });
    }
    if doc.access != Access::Public {
        described["security"] = json!([{ "bearer": [] }]);
    }
    described
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Malformed body (bad_request)",
        401 => "Missing or bad token (unauthorized)",
        403 => "Not allowed (forbidden)",
        404 => "Not found, or not visible to you (not_found)",
        409 => "Conflict",
        413 => "Body too large (payload_too_large)",
        415 => "Unsupported media type",
        422 => "Invalid fields or parameters (validation, profanity)",
        429 => "Too many attempts (rate_limited, with Retry-After)",
        503 => {
            "A bounded resource is full (busy, with Retry-After: password checks, renders, \
                searches), the request time-out passed (timeout), or a dependency is unavailable"
        }
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every body an operation names has a schema and an example, so each
    /// operation shows one request and one response example.
    #[test]
    fn every_body_has_a_schema_and_an_example() {
        let (_, operations) = crate::http::routes().into_parts();
        let all = schemas::all();
        for operation in &operations {
            for schema in [operation.doc.request, operation.doc.response]
                .into_iter()
                .flatten()
            {
                assert!(
                    all.get(schema).is_some(),
                    "{} {}: no schema {schema}",
                    operation.method,
                    operation.path
                );
                assert!(
                    examples::of(schema).is_some(),
                    "{} {}: no example of {schema}",
                    operation.method,
                    operation.path
                );
            }
        }
    }

    /// Every link leads to an operation that exists, naming its parameters.
    #[test]
    fn links_lead_to_real_operations() {
        let (_, operations) = crate::http::routes().into_parts();
        let document = document(&operations);
        let mut ids = std::collections::HashMap::new();
        for (path, methods) in document["paths"].as_object().unwrap() {
            for operation in methods.as_object().unwrap().values() {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(
                    ids.insert(id.clone(), path.clone()).is_none(),
                    "{id} is unique"
                );
            }
        }
        let mut links_seen = 0;
        for methods in document["paths"].as_object().unwrap().values() {
            for operation in methods.as_object().unwrap().values() {
                for response in operation["responses"].as_object().unwrap().values() {
                    for link in response["links"]
                        .as_object()
                        .into_iter()
                        .flat_map(|l| l.values())
                    {
                        links_seen += 1;
                        let target = link["operationId"].as_str().unwrap();
                        let path = ids.get(target).unwrap_or_else(|| panic!("{target} exists"));
                        for parameter in link["parameters"].as_object().unwrap().keys() {
                            assert!(
                                path.contains(&format!("{{{parameter}}}")),
                                "{target} has {parameter}"
                            );
                        }
                    }
                }
            }
        }
        assert!(links_seen >= 20, "{links_seen} links");
    }
}
