//! The authorization matrix: for every route that takes an id, someone who
//! is not the owner (or collaborator, or admin) gets the contract's answer,
//! `403` or `404`, and never the data; without a token, `401` wherever a
//! token is needed. One table covers them all.

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use serde_json::{Value, json};

backend_tests!(strangers_and_anonymous_get_the_contract_answer);

async fn strangers_and_anonymous_get_the_contract_answer(app: TestApp) {
    let owner = app.register("owner").await;
    let stranger = app.register("stranger").await;
    let fan = app.register("fan").await;
    let secret_title = "Top secret draft";
    let story = |title: &str, status: &str| json!({"title": title, "pages": [{"text": "one"}, {"text": "two"}], "genre": "mystery", "age_group": "6-8", "status": status});
    let draft = app
        .post("/api/stories", Some(&owner), story(secret_title, "draft"))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let public = app
        .post("/api/stories", Some(&owner), story("Public", "published"))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/stories/{public}/like"),
        Some(&fan),
        json!({}),
    )
    .await;
    let notification = app.get("/api/notifications", Some(&owner)).await.body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let report = app
        .post(
            &format!("/api/stories/{public}/report"),
            Some(&fan),
            json!({"reason": "test"}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let owner_id = app.get("/api/me", Some(&owner)).await.body["id"]
        .as_i64()
        .unwrap();

    // (method, path, body, answer to a signed-in stranger, needs a token)
    let matrix: Vec<(Method, String, Option<Value>, StatusCode, bool)> = vec![
        (
            Method::GET,
            format!("/api/stories/{draft}"),
            None,
            StatusCode::NOT_FOUND,
            false,
        ),
        (
            Method::PATCH,
            format!("/api/stories/{draft}"),
            Some(json!({"title": "x"})),
            StatusCode::NOT_FOUND,
            true,
        ),
        (
            Method::PATCH,
            format!("/api/stories/{public}"),
            Some(json!({"title": "x"})),
            StatusCode::FORBIDDEN,
            true,
        ),
        (
            Method::DELETE,
            format!("/api/stories/{draft}"),
            None,
            StatusCode::NOT_FOUND,
            true,
        ),
        (
            Method::DELETE,
            format!("/api/stories/{public}"),
            None,
            StatusCode::FORBIDDEN,
            true,
        ),
        (
            Method::POST,
            format!("/api/stories/{draft}/like"),
            None,
            StatusCode::NOT_FOUND,
            true,
        ),
        (
            Method::DELETE,
            format!("/api/stories/{draft}/like"),
            None,
            StatusCode::NOT_FOUND,
            true,
        ),
        (
            Method::PUT,
            format!("/api/stories/{draft}/progress"),
            Some(json!({"page": 0})),
            StatusCode::NOT_FOUND,
            true,
        ),
        (
            Method::POST,
            format!("/api/stories/{draft}/report"),
            Some(json!({"reason": "x"})),
            StatusCode::NOT_FOUND,
            true,
        ),
        (
            Method::POST,
            format!("/api/notifications/{notification}/read"),
            None,
            StatusCode::NOT_FOUND,
            true,
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{owner_id}"),
            Some(json!({"active": false})),
            StatusCode::FORBIDDEN,
            true,
        ),
        (
            Method::PATCH,
            format!("/api/admin/reports/{report}"),
            Some(json!({"status": "resolved"})),
            StatusCode::FORBIDDEN,
            true,
        ),
        (
            Method::GET,
            "/api/admin/users".into(),
            None,
            StatusCode::FORBIDDEN,
            true,
        ),
        (
            Method::GET,
            "/api/admin/reports".into(),
            None,
            StatusCode::FORBIDDEN,
            true,
        ),
        (
            Method::GET,
            "/api/admin/stats".into(),
            None,
            StatusCode::FORBIDDEN,
            true,
        ),
    ];
    for (method, path, body, expected, needs_token) in &matrix {
        let reply = app
            .call(method.clone(), path, Some(&stranger), body.clone())
            .await;
        assert_eq!(
            reply.status, *expected,
            "stranger: {method} {path}: {}",
            reply.body
        );
        assert!(
            !reply.body.to_string().contains(secret_title),
            "{method} {path} leaked the draft"
        );
        assert!(
            reply.body["error"]["code"].is_string(),
            "{method} {path}: error shape"
        );

        let anonymous = app.call(method.clone(), path, None, body.clone()).await;
        let expected_anonymous = if *needs_token {
            StatusCode::UNAUTHORIZED
        } else {
            *expected
        };
        assert_eq!(
            anonymous.status, expected_anonymous,
            "anonymous: {method} {path}"
        );
        assert!(!anonymous.body.to_string().contains(secret_title));
    }

    // Nothing the stranger tried changed anything.
    let still = app
        .get(&format!("/api/stories/{public}"), Some(&owner))
        .await;
    assert_eq!(
        (still.body["title"].as_str(), still.body["likes"].as_i64()),
        (Some("Public"), Some(1))
    );
    assert_eq!(
        app.get(&format!("/api/stories/{draft}"), Some(&owner))
            .await
            .body["title"],
        secret_title
    );
    assert_eq!(
        app.get("/api/me", Some(&owner)).await.status,
        StatusCode::OK,
        "owner still active"
    );
    assert_eq!(
        app.get("/api/notifications?unread=true", Some(&owner))
            .await
            .body["total"],
        1
    );
}
