//! The OpenAPI 3 document, generated at start-up from the operations the
//! routers registered, plus the schemas of the contract's objects.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::http::{Access, Operation};

/// Builds the whole document.
pub fn document(operations: &[Operation]) -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for operation in operations {
        paths
            .entry(operation.path)
            .or_default()
            .insert(operation.method.to_owned(), describe(operation));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Storybook API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The storybook server's REST API. Every error has the shape \
                `{\"error\": {\"code\", \"message\", \"fields\"?}}`. Malformed JSON or a non-JSON \
                Content-Type is 400 `bad_request`; XML and form bodies are 415; a JSON body over \
                the body limit is 413; a request that takes longer than the request time-out \
                is 503 `timeout`. Lists take `page` (>= 1) and `page_size` (1..100).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas(),
        },
    })
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

fn describe(operation: &Operation) -> Value {
    let doc = &operation.doc;
    let mut parameters: Vec<Value> = operation
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = if name == "username" || name.ends_with("kind") || name == "stroke_id" {
                json!({ "type": "string" })
            } else {
                json!({ "type": "integer", "format": "int64" })
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    parameters.extend(doc.query.iter().map(|name| {
        json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } })
    }));

    let mut responses = Map::new();
    let success = match doc.response {
        Some(schema) => json!({
            "description": "Success",
            "content": { "application/json": { "schema": reference(schema) } },
        }),
        None => json!({ "description": "Success" }),
    };
    responses.insert(doc.status.to_string(), success);
    let mut errors: Vec<u16> = doc.errors.to_vec();
    match doc.access {
        Access::Public => {}
        Access::User => errors.push(401),
        Access::Admin => errors.extend([401, 403]),
    }
    if doc.request.is_some() {
        errors.extend([400, 413, 415, 422]);
    }
    if !parameters.is_empty() {
        errors.push(422);
    }
    if operation.path.starts_with("/api") {
        // A bad token is refused on every /api route, public ones included.
        errors.push(401);
    }
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({
                "description": reason(status),
                "content": { "application/json": { "schema": reference("Error") } },
            }),
        );
    }

    let mut described = json!({
        "summary": doc.summary,
        "tags": [operation.tag],
        "responses": responses,
    });
    if !parameters.is_empty() {
        described["parameters"] = json!(parameters);
    }
    if let Some(schema) = doc.request {
        described["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": reference(schema) } },
        });
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
        503 => "A dependency is unavailable",
        _ => "Error",
    }
}

/// Schemas of the contract's objects.
fn schemas() -> Value {
    let mut all = account_and_library_schemas();
    if let (Some(all), Value::Object(more)) = (all.as_object_mut(), creative_schemas()) {
        all.extend(more);
    }
    all
}

/// Drawings, games and the story tools.
fn creative_schemas() -> Value {
    let string = json!({ "type": "string" });
    let integer = json!({ "type": "integer", "format": "int64" });
    let time = json!({ "type": "string", "format": "date-time" });
    let stroke = json!({ "type": "object", "required": ["id", "tool", "color", "width", "points"], "properties": {
        "id": { "type": "string", "minLength": 1, "maxLength": 64 },
        "tool": { "type": "string", "enum": ["pen", "eraser", "highlighter"] },
        "color": { "type": "string", "pattern": "^#[0-9a-fA-F]{6}$" },
        "width": { "type": "number", "minimum": 0.5, "maximum": 100 },
        "points": { "type": "array", "minItems": 1, "maxItems": 2000,
            "items": { "type": "array", "minItems": 2, "maxItems": 2, "items": { "type": "number" } } },
    } });
    let strokes = json!({ "type": "array", "maxItems": 10000, "items": stroke });
    let drawing_properties = json!({
        "id": integer, "owner": reference("UserSummary"), "title": string, "width": integer, "height": integer,
        "background": string, "collaborators": { "type": "array", "items": string },
        "created_at": time, "updated_at": time,
    });
    let mut drawing = drawing_properties.clone();
    drawing["strokes"] = strokes.clone();
    let mut drawing_summary = drawing_properties;
    drawing_summary["stroke_count"] = integer.clone();
    json!({
        "Stroke": stroke,
        "Drawing": { "type": "object", "properties": drawing },
        "DrawingSummary": { "type": "object", "properties": drawing_summary },
        "DrawingPage": { "type": "object", "properties": {
            "items": { "type": "array", "items": reference("DrawingSummary") },
            "total": integer, "page": integer, "page_size": integer,
        } },
        "DrawingInput": { "type": "object", "required": ["title", "width", "height"], "properties": {
            "title": { "type": "string", "minLength": 1, "maxLength": 120 },
            "width": { "type": "integer", "minimum": 16, "maximum": 4096 },
            "height": { "type": "integer", "minimum": 16, "maximum": 4096 },
            "background": { "type": "string", "pattern": "^#[0-9a-fA-F]{6}$", "default": "#ffffff" },
            "strokes": strokes,
        } },
        "DrawingUpdate": { "type": "object", "properties": {
            "title": { "type": "string", "minLength": 1, "maxLength": 120 },
            "background": { "type": "string", "pattern": "^#[0-9a-fA-F]{6}$" },
        } },
        "StrokesInput": { "type": "object", "required": ["strokes"], "properties": { "strokes": strokes } },
        "StrokeCount": { "type": "object", "properties": { "stroke_count": integer } },
        "CollaboratorInput": { "type": "object", "required": ["username"], "properties": { "username": string } },
        "Collaborators": { "type": "object", "properties": { "collaborators": { "type": "array", "items": string } } },
        "GameKinds": { "type": "object", "properties": { "kinds": { "type": "array",
            "items": { "type": "string", "enum": ["quiz", "scramble", "fill_blank", "order"] } } } },
        "Game": { "type": "object", "properties": {
            "kind": string, "story_id": integer, "version": integer,
            "questions": { "type": "array", "minItems": 3, "maxItems": 10, "items": { "type": "object", "properties": {
                "id": string, "prompt": string, "choices": { "type": "array", "items": string },
            } } },
        } },
        "GameAnswers": { "type": "object", "required": ["version", "answers"], "properties": {
            "version": integer,
            "answers": { "type": "object", "description": "question id to answer: a string, or for order the choices as an array in story order" },
        } },
        "GameScore": { "type": "object", "properties": {
            "score": integer, "total": integer,
            "results": { "type": "object", "additionalProperties": { "type": "object", "properties": {
                "correct": { "type": "boolean" }, "answer": {},
            } } },
        } },
        "Leaderboard": { "type": "object", "properties": { "items": { "type": "array", "items": { "type": "object", "properties": {
            "user": reference("UserSummary"), "score": integer, "total": integer, "at": time,
        } } } } },
        "GenerateInput": { "type": "object", "required": ["prompt"], "properties": {
            "prompt": { "type": "string", "minLength": 1, "maxLength": 500 },
            "genre": { "type": "string", "enum": storybook_store::GENRES, "default": "adventure" },
            "age_group": { "type": "string", "enum": storybook_store::AGE_GROUPS, "default": "6-8" },
            "pages": { "type": "integer", "minimum": 1, "maximum": 12, "default": 5 },
        } },
        "PhotoInput": { "type": "object", "required": ["image"], "properties": {
            "image": { "type": "string", "format": "binary", "description": "PNG or JPEG, at most 5 MiB and 25 megapixels" },
            "title": string,
        } },
    })
}

fn account_and_library_schemas() -> Value {
    let string = json!({ "type": "string" });
    let integer = json!({ "type": "integer", "format": "int64" });
    let time = json!({ "type": "string", "format": "date-time" });
    let user_properties = json!({
        "id": integer, "username": string, "display_name": string, "bio": string,
        "role": { "type": "string", "enum": ["user", "admin"] }, "created_at": time,
        "email": { "type": "string", "description": "only for the user themself and admins" },
    });
    let settings = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "theme": { "type": "string", "enum": ["light", "dark", "system"] },
            "font_size": { "type": "string", "enum": ["small", "medium", "large"] },
            "language": { "type": "string", "description": "BCP 47 tag" },
            "notifications": { "type": "boolean" },
        },
    });
    let mut me = user_properties.clone();
    me["settings"] = reference("Settings");
    let mut profile = user_properties.clone();
    profile["stories"] = json!({ "type": "integer", "description": "published stories" });
    let summary = json!({ "type": "object", "properties": {
        "id": integer, "title": string, "author": reference("UserSummary"),
        "excerpt": { "type": "string", "description": "first <= 200 characters of page one" },
        "page_count": integer, "genre": string, "age_group": string,
        "tags": { "type": "array", "items": string },
        "status": { "type": "string", "enum": ["draft", "published"] },
        "source": { "type": "string", "enum": ["manual", "ai", "photo"] },
        "likes": integer, "reads": integer, "liked": { "type": "boolean" },
        "created_at": time, "updated_at": time,
    } });
    let story_page = json!({ "type": "object", "required": ["text"], "properties": {
        "text": { "type": "string", "maxLength": 5000 },
        "drawing_id": { "type": "integer", "format": "int64", "nullable": true },
    } });
    let page_of = |items: Value| {
        json!({ "type": "object", "properties": {
        "items": { "type": "array", "items": items }, "total": integer, "page": integer, "page_size": integer,
    } })
    };
    let notification = json!({ "type": "object", "properties": {
        "id": integer, "kind": { "type": "string", "enum": ["like", "collab_invite", "report_resolved", "system"] },
        "data": { "type": "object" }, "read": { "type": "boolean" }, "created_at": time,
    } });
    let mut notification_page = page_of(notification);
    notification_page["properties"]["unread_count"] = integer.clone();
    let report = json!({ "type": "object", "properties": {
        "id": integer, "status": { "type": "string", "enum": ["open", "resolved", "dismissed"] },
        "reason": string, "reporter": reference("UserSummary"), "story_id": { "type": "integer", "nullable": true },
        "story": { "allOf": [reference("StorySummary")], "nullable": true },
        "action": { "type": "string", "nullable": true }, "created_at": time,
        "resolved_at": { "type": "string", "format": "date-time", "nullable": true },
    } });
    let mut admin_user = user_properties.clone();
    admin_user["active"] = json!({ "type": "boolean" });
    json!({
        "StorySummary": summary,
        "Story": { "type": "object", "properties": {
            "id": integer, "title": string, "author": reference("UserSummary"),
            "pages": { "type": "array", "items": story_page },
            "genre": string, "age_group": string, "tags": { "type": "array", "items": string },
            "status": { "type": "string", "enum": ["draft", "published"] },
            "source": { "type": "string", "enum": ["manual", "ai", "photo"] },
            "likes": integer, "reads": integer, "liked": { "type": "boolean" },
            "created_at": time, "updated_at": time,
        } },
        "StoryInput": { "type": "object", "description": "title, pages, genre and age_group are required on create; any subset on PATCH", "properties": {
            "title": { "type": "string", "minLength": 1, "maxLength": 120 },
            "pages": { "type": "array", "minItems": 1, "maxItems": 50, "items": story_page },
            "genre": { "type": "string", "enum": storybook_store::GENRES },
            "age_group": { "type": "string", "enum": storybook_store::AGE_GROUPS },
            "tags": { "type": "array", "maxItems": 10, "items": { "type": "string", "minLength": 1, "maxLength": 30 } },
            "status": { "type": "string", "enum": ["draft", "published"], "default": "draft" },
        } },
        "StoryPage": page_of(reference("StorySummary")),
        "Like": { "type": "object", "properties": { "likes": integer, "liked": { "type": "boolean" } } },
        "ProgressInput": { "type": "object", "required": ["page"], "properties": { "page": { "type": "integer", "minimum": 0 } } },
        "Progress": { "type": "object", "properties": { "page": integer, "completed": { "type": "boolean" }, "updated_at": time } },
        "ReadingPage": page_of(json!({ "type": "object", "properties": {
            "story": reference("StorySummary"), "page": integer, "completed": { "type": "boolean" }, "updated_at": time,
        } })),
        "ReportInput": { "type": "object", "required": ["reason"], "properties": { "reason": { "type": "string", "minLength": 1, "maxLength": 500 } } },
        "ReportCreated": { "type": "object", "properties": { "id": integer, "status": string, "created_at": time } },
        "Report": report,
        "ReportPage": page_of(reference("Report")),
        "ReportDecision": { "type": "object", "required": ["status"], "properties": {
            "status": { "type": "string", "enum": ["resolved", "dismissed"] },
            "action": { "type": "string", "enum": ["none", "unpublish", "delete"], "default": "none" },
        } },
        "NotificationPage": notification_page,
        "AdminUser": { "type": "object", "properties": admin_user },
        "UserPage": page_of(reference("AdminUser")),
        "AdminUserUpdate": { "type": "object", "properties": {
            "role": { "type": "string", "enum": ["user", "admin"] }, "active": { "type": "boolean" },
        } },
        "Stats": { "type": "object", "properties": {
            "users": integer, "stories": integer, "drawings": integer, "open_reports": integer,
            "rss_bytes": integer, "uptime_s": integer, "connections": integer,
        } },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": string, "message": string,
                    "fields": { "type": "object", "additionalProperties": string },
                },
            } },
        },
        "Health": { "type": "object", "properties": { "status": string } },
        "Features": {
            "type": "object",
            "properties": {
                "version": string, "realtime": { "type": "boolean" }, "ocr": { "type": "boolean" },
                "generator": { "type": "string", "enum": ["builtin", "openai"] },
                "database": { "type": "string", "enum": ["sqlite", "postgres"] },
                "broker": { "type": "string", "enum": ["memory", "redis"], "nullable": true },
            },
        },
        "User": { "type": "object", "properties": user_properties },
        "UserSummary": {
            "type": "object",
            "properties": { "id": integer, "username": string, "display_name": string },
        },
        "Me": { "type": "object", "properties": me },
        "Profile": { "type": "object", "properties": profile },
        "Settings": settings,
        "Register": {
            "type": "object",
            "required": ["username", "email", "password"],
            "properties": {
                "username": { "type": "string", "pattern": "^[a-z0-9_]{3,30}$", "description": "lowercased before checking" },
                "email": string,
                "password": { "type": "string", "minLength": 8, "maxLength": 1024 },
                "display_name": { "type": "string", "minLength": 1, "maxLength": 50 },
            },
        },
        "Login": {
            "type": "object",
            "required": ["username", "password"],
            "properties": { "username": { "type": "string", "description": "username or email" }, "password": string },
        },
        "Auth": {
            "type": "object",
            "properties": { "token": string, "user": reference("User") },
        },
        "ProfileUpdate": {
            "type": "object",
            "properties": {
                "display_name": { "type": "string", "minLength": 1, "maxLength": 50 },
                "bio": { "type": "string", "maxLength": 500 },
            },
        },
        "ProfanityCheck": {
            "type": "object",
            "required": ["text"],
            "properties": { "text": { "type": "string", "maxLength": 10000 } },
        },
        "ProfanityReport": {
            "type": "object",
            "properties": {
                "clean": { "type": "boolean" },
                "censored": string,
                "matches": { "type": "array", "items": {
                    "type": "object",
                    "properties": { "start": integer, "end": integer, "word": string },
                } },
            },
        },
    })
}
