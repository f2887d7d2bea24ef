//! One example for each request and response body the document names,
//! taken from a real exchange with the server (the ids, times and texts of
//! a fresh database), so generated docs and clients show real shapes.

use serde_json::{Value, json};

const CREATED: &str = "2026-12-06T03:59:55.479Z";

fn author() -> Value {
    json!({ "id": 2, "username": "alice", "display_name": "Alice" })
}

fn admin() -> Value {
    json!({ "id": 1, "username": "ada", "display_name": "Ada" })
}

fn user() -> Value {
    json!({
        "id": 2, "username": "alice", "display_name": "Alice", "bio": "I like dragons.",
        "role": "user", "created_at": "2026-12-06T03:59:50.874Z",
    })
}

fn settings() -> Value {
    json!({ "theme": "system", "font_size": "medium", "language": "en-GB", "notifications": true })
}

fn pages() -> Value {
    json!([
        { "text": "Once upon a time a little dragon lived by the sea. He loved to fly over the waves every morning.", "drawing_id": 1 },
        { "text": "One day a storm came and the dragon helped the fishermen find their way home through the rain.", "drawing_id": null },
        { "text": "The village cheered and the dragon was never lonely again. They sang songs about him for years.", "drawing_id": null },
    ])
}

fn story_fields() -> Value {
    json!({
        "id": 1, "title": "The brave little dragon", "author": author(), "genre": "fantasy",
        "age_group": "6-8", "tags": ["dragons", "sea"], "status": "published", "source": "manual",
        "likes": 1, "reads": 3, "liked": false, "created_at": CREATED, "updated_at": CREATED,
    })
}

fn story() -> Value {
    let mut story = story_fields();
    story["pages"] = pages();
    story
}

fn story_summary() -> Value {
    let mut summary = story_fields();
    summary["excerpt"] = json!(
        "Once upon a time a little dragon lived by the sea. He loved to fly over the waves every morning."
    );
    summary["page_count"] = json!(3);
    summary
}

fn audit_entry() -> Value {
    json!({
        "id": 1, "admin": admin(), "action": "report_resolved",
        "target": { "type": "report", "id": 1 },
        "detail": { "action": "unpublish", "story_id": 1 }, "created_at": CREATED,
    })
}

fn page_of(item: Value) -> Value {
    json!({ "items": [item], "total": 1, "page": 1, "page_size": 20 })
}

fn stroke() -> Value {
    json!({ "id": "s1", "tool": "pen", "color": "#ff0000", "width": 4.0, "points": [[10.0, 10.0], [120.0, 80.0]] })
}

fn drawing_fields() -> Value {
    json!({
        "id": 1, "owner": author(), "title": "My dragon", "width": 800, "height": 600,
        "background": "#ffffff", "collaborators": ["ada"], "created_at": CREATED, "updated_at": CREATED,
    })
}

fn report() -> Value {
    json!({
        "id": 1, "status": "resolved", "reason": "It is a bit scary", "reporter": admin(),
        "story_id": 1, "story": story_summary(), "action": "unpublish",
        "created_at": CREATED, "resolved_at": "2026-12-06T04:10:00.000Z",
    })
}

/// The example of the schema named `schema`, if the document uses it as
/// a body.
pub fn of(schema: &str) -> Option<Value> {
    let example = match schema {
        "Health" => json!({ "status": "ok" }),
        "Features" => json!({
            "version": "0.1.0", "realtime": true, "ocr": true, "generator": "builtin",
            "database": "sqlite", "broker": "memory",
        }),
        "Register" => json!({
            "username": "alice", "email": "alice@example.com", "password": "correct horse battery",
            "display_name": "Alice",
        }),
        "Login" => json!({ "username": "alice", "password": "correct horse battery" }),
        "Auth" => {
            let mut signed_in = user();
            signed_in["email"] = json!("alice@example.com");
            json!({
                "token": "f0c07779d703d2bcd3646cd24008240696db9bb0281fd31987d2936c374da8d2",
                "user": signed_in,
            })
        }
        "Me" => {
            let mut me = user();
            me["email"] = json!("alice@example.com");
            me["settings"] = settings();
            me
        }
        "User" => user(),
        "Profile" => {
            let mut profile = user();
            profile["stories"] = json!(1);
            profile
        }
        "PasswordChange" => json!({
            "current_password": "correct horse battery", "new_password": "staple battery horse",
        }),
        "ProfileUpdate" => json!({ "display_name": "Alice", "bio": "I like dragons." }),
        "Settings" => settings(),
        "ProfanityCheck" => json!({ "text": "what the sh1t" }),
        "ProfanityReport" => json!({
            "clean": false, "censored": "what the ****",
            "matches": [{ "start": 9, "end": 13, "word": "shit" }],
        }),
        "Story" => story(),
        "StoryPage" => page_of(story_summary()),
        "StoryInput" => json!({
            "title": "The brave little dragon", "pages": pages(), "genre": "fantasy",
            "age_group": "6-8", "tags": ["dragons", "sea"], "status": "published",
        }),
        "StoryUpdate" => json!({ "title": "The bravest little dragon", "tags": ["dragons"] }),
        "Like" => json!({ "likes": 1, "liked": true }),
        "ProgressInput" => json!({ "page": 1 }),
        "Progress" => json!({ "page": 1, "completed": false, "updated_at": CREATED }),
        "ReadingPage" => page_of(json!({
            "story": story_summary(), "page": 1, "completed": false, "updated_at": CREATED,
        })),
        "ReportInput" => json!({ "reason": "It is a bit scary" }),
        "ReportCreated" => json!({ "id": 1, "status": "open", "created_at": CREATED }),
        "Report" => report(),
        "ReportPage" => page_of(report()),
        "ReportDecision" => json!({ "status": "resolved", "action": "unpublish" }),
        "NotificationPage" => {
            let mut page = page_of(json!({
                "id": 1, "kind": "like", "data": { "story_id": 1, "user": admin() },
                "read": false, "created_at": CREATED,
            }));
            page["unread_count"] = json!(1);
            page
        }
        "AdminUser" => admin_listed_user(),
        "UserPage" => page_of(admin_listed_user()),
        "ResetCode" => json!({ "code": "K7QM2WZ9RD4H", "expires_at": CREATED }),
        "PasswordReset" => json!({
            "login": "alice", "code": "K7QM-2WZ9-RD4H", "new_password": "staple battery horse",
        }),
        "AdminUserUpdate" => json!({ "role": "user", "active": false }),
        "AuditEntry" => audit_entry(),
        "AuditPage" => page_of(audit_entry()),
        "Stats" => json!({
            "users": 2, "stories": 1, "drawings": 1, "open_reports": 1, "rss_bytes": 10846208,
            "uptime_s": 5, "connections": 0,
        }),
        "Drawing" => {
            let mut drawing = drawing_fields();
            drawing["strokes"] = json!([stroke()]);
            drawing
        }
        "DrawingPage" => {
            let mut summary = drawing_fields();
            summary["stroke_count"] = json!(1);
            page_of(summary)
        }
        "DrawingInput" => json!({
            "title": "My dragon", "width": 800, "height": 600, "background": "#ffffff",
            "strokes": [stroke()],
        }),
        "DrawingUpdate" => json!({ "title": "My red dragon", "background": "#fff8e7" }),
        "StrokesInput" => json!({ "strokes": [{
            "id": "s2", "tool": "highlighter", "color": "#ffd700", "width": 12.5,
            "points": [[200.0, 300.0], [260.0, 310.0], [320.0, 300.0]],
        }] }),
        "StrokeCount" => json!({ "stroke_count": 2 }),
        "CollaboratorInput" => json!({ "username": "ada" }),
        "Collaborators" => json!({ "collaborators": ["ada"] }),
        "GameKinds" => json!({ "kinds": ["quiz", "scramble", "fill_blank", "order"] }),
        "Game" => json!({
            "kind": "quiz", "story_id": 1, "version": 1,
            "questions": [
                { "id": "q1", "prompt": "Which of these words is in the story?", "choices": ["tomato", "jacket", "ticket", "years"] },
                { "id": "q2", "prompt": "Which of these words is in the story?", "choices": ["donkey", "home", "river", "violin"] },
                { "id": "q3", "prompt": "Which of these words is in the story?", "choices": ["fishermen", "whistle", "rainbow", "snowman"] },
            ],
        }),
        "GameAnswers" => {
            json!({ "version": 1, "answers": { "q1": "years", "q2": "home", "q3": "fishermen" } })
        }
        "GameScore" => json!({
            "score": 2, "total": 3,
            "results": {
                "q1": { "correct": true, "answer": "years" },
                "q2": { "correct": true, "answer": "home" },
                "q3": { "correct": false, "answer": "fishermen" },
            },
        }),
        "Leaderboard" => {
            json!({ "items": [{ "user": author(), "score": 3, "total": 3, "at": CREATED }] })
        }
        "GenerateInput" => json!({
            "prompt": "a shy dragon who learns to swim", "genre": "animals", "age_group": "3-5", "pages": 3,
        }),
        "PhotoInput" => json!({ "title": "My story from school" }),
        _ => return None,
    };
    Some(example)
}

/// A user as the admin pages show them.
fn admin_listed_user() -> Value {
    let mut listed = user();
    listed["email"] = json!("alice@example.com");
    listed["active"] = json!(true);
    listed
}
