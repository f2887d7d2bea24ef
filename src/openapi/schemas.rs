//! The schemas of the contract's objects, by the names operations use.

use serde_json::{Value, json};

use super::reference;
use crate::http::story_input::{
    MAX_PAGE_CHARS, MAX_PAGES, MAX_REASON_CHARS, MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS,
};

/// Text with at least one character that is not white space (the server
/// trims these fields; the class is Rust's `White_Space`, which `trim` uses).
const NOT_BLANK: &str = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// Trimmed text of `min..=max` characters.
fn trimmed_text(max: usize) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": NOT_BLANK })
}

/// A story body: on create the four story fields are required; a PATCH
/// sends any of them and changes only those.
fn story_input(story_page: &Value, create: bool) -> Value {
    let mut input = json!({ "type": "object", "properties": {
        "title": trimmed_text(MAX_TITLE_CHARS),
        "pages": { "type": "array", "minItems": 1, "maxItems": MAX_PAGES, "items": story_page },
        "genre": { "type": "string", "enum": storybook_store::GENRES },
        "age_group": { "type": "string", "enum": storybook_store::AGE_GROUPS },
        "tags": { "type": "array", "maxItems": MAX_TAGS, "items": trimmed_text(MAX_TAG_CHARS) },
        "status": { "type": "string", "enum": ["draft", "published"], "default": "draft" },
    } });
    if create {
        input["required"] = json!(["title", "pages", "genre", "age_group"]);
    }
    input
}

/// Schemas of the contract's objects.
pub fn all() -> Value {
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
            "title": trimmed_text(120),
            "width": { "type": "integer", "minimum": 16, "maximum": 4096 },
            "height": { "type": "integer", "minimum": 16, "maximum": 4096 },
            "background": { "type": "string", "pattern": "^#[0-9a-fA-F]{6}$", "default": "#ffffff" },
            "strokes": strokes,
        } },
        "DrawingUpdate": { "type": "object", "properties": {
            "title": trimmed_text(120),
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
            "answers": {
                "type": "object",
                "description": "question id to answer: a string, or for order the question's choices as an array in story order",
                "additionalProperties": { "oneOf": [
                    { "type": "string" },
                    { "type": "array", "items": { "type": "string" } },
                ] },
            },
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
            "prompt": trimmed_text(500),
            "genre": { "type": "string", "enum": storybook_store::GENRES, "default": "adventure" },
            "age_group": { "type": "string", "enum": storybook_store::AGE_GROUPS, "default": "6-8" },
            "pages": { "type": "integer", "minimum": 1, "maximum": 12, "default": 5 },
        } },
        "PhotoInput": { "type": "object", "required": ["image"], "additionalProperties": false, "properties": {
            "image": { "type": "string", "format": "binary", "description": "PNG or JPEG, at most 5 MiB and 25 megapixels" },
            "title": { "type": "string", "maxLength": MAX_TITLE_CHARS, "description": "default: My photo story" },
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
        "email": { "type": "string", "nullable": true, "description": "only for the user themself and admins; null for a user imported without an address of their own" },
    });
    let settings = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "theme": { "type": "string", "enum": ["light", "dark", "system"] },
            "font_size": { "type": "string", "enum": ["small", "medium", "large"] },
            "language": {
                "type": "string",
                "description": "BCP 47 tag: en, en-GB, pt-BR, zh-Hant",
                "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$|^[A-Za-z]{5,8}(-[A-Za-z0-9]{1,8})*$",
            },
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
        "text": { "type": "string", "maxLength": MAX_PAGE_CHARS },
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
        "StoryInput": story_input(&story_page, true),
        "StoryUpdate": story_input(&story_page, false),
        "StoryPage": page_of(reference("StorySummary")),
        "Like": { "type": "object", "properties": { "likes": integer, "liked": { "type": "boolean" } } },
        "ProgressInput": { "type": "object", "required": ["page"], "properties": { "page": { "type": "integer", "minimum": 0 } } },
        "Progress": { "type": "object", "properties": { "page": integer, "completed": { "type": "boolean" }, "updated_at": time } },
        "ReadingPage": page_of(json!({ "type": "object", "properties": {
            "story": reference("StorySummary"), "page": integer, "completed": { "type": "boolean" }, "updated_at": time,
        } })),
        "ReportInput": { "type": "object", "required": ["reason"], "properties": { "reason": trimmed_text(MAX_REASON_CHARS) } },
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
        "AuditEntry": { "type": "object", "properties": {
            "id": integer, "admin": reference("UserSummary"),
            "action": { "type": "string", "enum": storybook_store::AuditAction::NAMES },
            "target": { "type": "object", "properties": {
                "type": { "type": "string", "enum": ["user", "story", "report", "database"] },
                "id": { "type": "integer", "format": "int64", "nullable": true, "description": "null for the database (a backup)" },
            } },
            "detail": { "type": "object", "description": "what the action was: for a report its story action and story id; for a story its title, author and (on an edit) the fields written; for a role change `from` and `to`" },
            "created_at": time,
        } },
        "AuditPage": page_of(reference("AuditEntry")),
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
                "username": { "type": "string", "pattern": "^[A-Za-z0-9_]{3,30}$", "description": "lowercased, then 3-30 of [a-z0-9_]" },
                "email": { "type": "string", "format": "email", "maxLength": 254 },
                "password": { "type": "string", "minLength": 8, "maxLength": 1024 },
                "display_name": trimmed_text(50),
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
        "PasswordReset": {
            "type": "object",
            "required": ["login", "code", "new_password"],
            "additionalProperties": false,
            "properties": {
                "login": { "type": "string", "description": "username or email" },
                "code": { "type": "string", "description": "the code an admin issued (spaces, dashes and case do not matter)" },
                "new_password": { "type": "string", "minLength": 8, "maxLength": 1024 },
            },
        },
        "ResetCode": {
            "type": "object",
            "properties": {
                "code": { "type": "string", "description": "12 letters and digits without look-alikes; shown only here" },
                "expires_at": time,
            },
        },
        "PasswordChange": {
            "type": "object",
            "required": ["current_password", "new_password"],
            "properties": {
                "current_password": { "type": "string", "maxLength": 1024 },
                "new_password": { "type": "string", "minLength": 8, "maxLength": 1024 },
            },
        },
        "ProfileUpdate": {
            "type": "object",
            "properties": {
                "display_name": trimmed_text(50),
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
