//! Contract v1.5, "Moderation races", black-box on SQLite and PostgreSQL:
//! an admin's edit of someone else's story is audited by the row its
//! transaction read, and an edit that changes nothing writes nothing.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};
use storybook_store::{StoryChanges, StoryStatus};

backend_tests!(
    an_admin_edit_that_changes_nothing_writes_nothing,
    an_admin_unpublish_is_judged_by_the_row_not_the_cache,
);

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
