//! Contract v1.5, "Moderation races", black-box on SQLite and PostgreSQL:
//! an admin's edit of someone else's story is audited by the row its
//! transaction read, an edit that changes nothing writes nothing, reports
//! are bounded per user, and the console's lookups are by id.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};
use storybook_store::{StoryChanges, StoryStatus};

backend_tests!(
    an_admin_edit_that_changes_nothing_writes_nothing,
    an_admin_unpublish_is_judged_by_the_row_not_the_cache,
    a_user_files_at_most_twenty_reports_a_day,
    admins_look_users_and_a_storys_reports_up_by_id,
);

/// Contract v1.5: `GET /api/admin/users/{id}` is the user as the admin
/// list shows it; `GET /api/admin/reports?story=` a story's reports.
async fn admins_look_users_and_a_storys_reports_up_by_id(app: TestApp) {
    let admin = app.register_admin("looker").await;
    let author = app.register("looked_at").await;
    let me = app.get("/api/me", Some(&author)).await.body;
    let id = me["id"].as_i64().unwrap();
    let found = app
        .get(&format!("/api/admin/users/{id}"), Some(&admin))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(
        (
            &found.body["username"],
            &found.body["email"],
            &found.body["active"],
            &found.body["role"]
        ),
        (
            &json!("looked_at"),
            &json!("looked_at@example.com"),
            &json!(true),
            &json!("user")
        )
    );
    let listed = app.get("/api/admin/users?q=looked_at", Some(&admin)).await;
    assert_eq!(listed.body["items"][0], found.body, "as the list shows it");
    assert_eq!(
        app.get("/api/admin/users/999999", Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/admin/users/{id}"), Some(&author))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/admin/users/abc", Some(&admin)).await.fields(),
        ["id"]
    );

    let first = story(&app, &author, "published").await;
    let second = story(&app, &author, "published").await;
    for (story_id, reason) in [(first, "one"), (second, "two"), (first, "three")] {
        let filed = app
            .post(
                &format!("/api/stories/{story_id}/report"),
                Some(&admin),
                json!({"reason": reason}),
            )
            .await;
        assert_eq!(filed.status, StatusCode::CREATED);
    }
    let about_first = app
        .get(&format!("/api/admin/reports?story={first}"), Some(&admin))
        .await;
    assert_eq!(about_first.body["total"], 2, "{}", about_first.body);
    assert!(
        about_first.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["story_id"] == first)
    );
    assert_eq!(
        app.get("/api/admin/reports?story=x", Some(&admin))
            .await
            .fields(),
        ["story"]
    );
}

/// Contract v1.5: at most 20 reports a user in 24 hours; beyond, `429`
/// with `Retry-After` (until the oldest is a day old); others still may.
async fn a_user_files_at_most_twenty_reports_a_day(app: TestApp) {
    let author = app.register("reported_author").await;
    let reporter = app.register("eager_reporter").await;
    let other = app.register("other_reporter").await;
    let id = story(&app, &author, "published").await;
    let path = format!("/api/stories/{id}/report");
    for n in 0..20 {
        let filed = app
            .post(
                &path,
                Some(&reporter),
                json!({"reason": format!("reason {n}")}),
            )
            .await;
        assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.body);
    }
    let refused = app
        .post(&path, Some(&reporter), json!({"reason": "one more"}))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((86_000..=86_400).contains(&wait), "{wait}");
    let theirs = app
        .post(&path, Some(&other), json!({"reason": "mine"}))
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
}

async fn story(app: &TestApp, token: &str, status: &str) -> i64 {
    let body = json!({
        "title": "A tale",
        "pages": [{"text": "A fox and an owl walked home under the stars."}],
        "genre": "animals",
        "age_group": "3-5",
        "status": status,
    });
    let reply = app.post("/api/stories", Some(token), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

/// The audit log's `(action, story id)` entries.
async fn story_entries(app: &TestApp, admin: &str) -> Vec<(String, i64)> {
    let reply = app.get("/api/admin/audit", Some(admin)).await;
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["target"]["type"] == "story")
        .map(|entry: &Value| {
            (
                entry["action"].as_str().unwrap().to_owned(),
                entry["target"]["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn an_admin_edit_that_changes_nothing_writes_nothing(app: TestApp) {
    let admin = app.register_admin("quiet_admin").await;
    let author = app.register("quiet_author").await;
    let id = story(&app, &author, "published").await;
    let path = format!("/api/stories/{id}");
    let before = app.get(&path, Some(&admin)).await.body;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for nothing in [json!({}), json!({"title": "A tale", "status": "published"})] {
        let reply = app.patch(&path, Some(&admin), nothing.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["updated_at"], before["updated_at"], "{nothing}");
    }
    assert!(story_entries(&app, &admin).await.is_empty(), "no entry");
    // A real change is audited and moves updated_at.
    let changed = app
        .patch(&path, Some(&admin), json!({"title": "Retitled"}))
        .await;
    assert_ne!(changed.body["updated_at"], before["updated_at"]);
    assert_eq!(
        story_entries(&app, &admin).await,
        [("story_updated".to_owned(), id)]
    );
}

/// The story is published by a write this process's read cache does not
/// see (another process's, here the store's directly); the admin's
/// unpublish is still audited as one, and readers are told.
async fn an_admin_unpublish_is_judged_by_the_row_not_the_cache(app: TestApp) {
    let admin = app.register_admin("judging_admin").await;
    let author = app.register("judged_author").await;
    let id = story(&app, &author, "draft").await;
    let path = format!("/api/stories/{id}");
    // The admin's view of the draft (cached where the cache keeps it).
    assert_eq!(app.get(&path, Some(&admin)).await.status, StatusCode::OK);
    let publish = StoryChanges {
        status: Some(StoryStatus::Published),
        ..Default::default()
    };
    app.state
        .store
        .update_story(id, &publish, None)
        .await
        .unwrap();
    let reply = app
        .patch(&path, Some(&admin), json!({"status": "draft"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        story_entries(&app, &admin).await,
        [("story_unpublished".to_owned(), id)]
    );
}

/// Deleting a drawing detaches it from the pages that showed it without
/// writing over a page edit committed meanwhile (PostgreSQL: the stories
/// are locked before their pages are read). The test holds the story's row
/// lock from its own connection, waits until the deletion is blocked on
/// it, commits an edit, and then lets the deletion finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_drawing_keeps_a_page_edit_made_meanwhile() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let author = app.register("illustrator").await;
    let drawing = app
        .post(
            "/api/drawings",
            Some(&author),
            json!({"title": "Owl", "width": 100, "height": 100}),
        )
        .await;
    let drawing = drawing.body["id"].as_i64().unwrap();
    let body = json!({"title": "Illustrated", "pages": [{"text": "Look!", "drawing_id": drawing}, {"text": "second"}], "genre": "funny", "age_group": "3-5", "status": "published"});
    let story = app.post("/api/stories", Some(&author), body).await;
    assert_eq!(story.status, StatusCode::CREATED, "{}", story.body);
    let story = story.body["id"].as_i64().unwrap();

    sqlx::any::install_default_drivers();
    let database = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let mut edit = database.begin().await.unwrap();
    let (pages,): (String,) = sqlx::query_as("SELECT pages FROM stories WHERE id = $1 FOR UPDATE")
        .bind(story)
        .fetch_one(&mut *edit)
        .await
        .unwrap();
    let router = app.router.clone();
    let token = author.clone();
    let deletion = tokio::spawn(async move {
        let request = axum::http::Request::delete(format!("/api/drawings/{drawing}"))
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        common::send_to(&router, request).await.status
    });
    // Until the deletion waits for the lock the test holds.
    let waiting = common::until_a_lock_is_awaited(&database).await;
    assert!(waiting, "the deletion never waited for the story's lock");
    let mut pages: Value = serde_json::from_str(&pages).unwrap();
    pages[1]["text"] = json!("edited meanwhile");
    sqlx::query("UPDATE stories SET pages = $1 WHERE id = $2")
        .bind(pages.to_string())
        .bind(story)
        .execute(&mut *edit)
        .await
        .unwrap();
    edit.commit().await.unwrap();
    assert_eq!(deletion.await.unwrap(), StatusCode::NO_CONTENT);
    let (after,): (String,) = sqlx::query_as("SELECT pages FROM stories WHERE id = $1")
        .bind(story)
        .fetch_one(&database)
        .await
        .unwrap();
    let after: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after[1]["text"], "edited meanwhile", "{after}");
    assert_eq!(after[0]["drawing_id"], Value::Null, "{after}");
}
