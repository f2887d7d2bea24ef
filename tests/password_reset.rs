//! Contract v1.5, "Password resets without email", black-box on SQLite
//! and PostgreSQL: an admin issues a code, the user sets a new password
//! with it once, and every old token stops working.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};

backend_tests!(an_admin_code_resets_a_password_once);

async fn reset(app: &TestApp, login: &str, code: &str, new_password: &str) -> common::Reply {
    app.post(
        "/api/auth/reset",
        None,
        json!({"login": login, "code": code, "new_password": new_password}),
    )
    .await
}

async fn an_admin_code_resets_a_password_once(app: TestApp) {
    let admin = app.register_admin("parent_admin").await;
    let child = app.register("forgetful_kid").await;
    let child_id = app.get("/api/me", Some(&child)).await.body["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/admin/users/{child_id}/reset-code");
    assert_eq!(
        app.post(&path, Some(&child), json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            "/api/admin/users/999999/reset-code",
            Some(&admin),
            json!({})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let first = app.post(&path, Some(&admin), Value::Null).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let first_code = first.body["code"].as_str().unwrap().to_owned();
    assert_eq!(first_code.len(), 12);
    assert!(first.body["expires_at"].is_string());
    // A newer code replaces the older one.
    let issued = app.post(&path, Some(&admin), Value::Null).await;
    let code = issued.body["code"].as_str().unwrap().to_owned();
    assert_ne!(code, first_code);
    let audit = app
        .get("/api/admin/audit?action=user_password_reset", Some(&admin))
        .await;
    assert_eq!(audit.body["total"], 2, "{}", audit.body);
    assert!(
        !audit.body.to_string().contains(&code),
        "the code is never in the log"
    );

    // The body first: a short password uses nothing up.
    let short = reset(&app, "forgetful_kid", &code, "short").await;
    assert_eq!(
        (short.status, short.fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["new_password".to_owned()]
        )
    );
    for (login_name, wrong) in [
        ("forgetful_kid", first_code.as_str()),
        ("forgetful_kid", "AAAAAAAAAAAA"),
        ("nobody_at_all", code.as_str()),
    ] {
        let refused = reset(&app, login_name, wrong, "brand new password").await;
        assert_eq!(
            (refused.status, refused.fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["code".to_owned()]),
            "{login_name} {wrong}"
        );
    }
    // Typed in groups and in lower case: the same code.
    let typed = format!("{}-{} {}", &code[..4], &code[4..8], &code[8..]).to_lowercase();
    let done = reset(
        &app,
        "forgetful_kid@example.com",
        &typed,
        "brand new password",
    )
    .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    assert_eq!(
        app.get("/api/me", Some(&child)).await.status,
        StatusCode::UNAUTHORIZED,
        "old tokens stop"
    );
    assert_eq!(
        app.login_status("forgetful_kid", "password123").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_status("forgetful_kid", "brand new password")
            .await,
        StatusCode::OK
    );
    let again = reset(&app, "forgetful_kid", &code, "another new password").await;
    assert_eq!(again.fields(), ["code"], "used once");

    // A deactivated user's code is refused like a wrong one.
    let issued = app.post(&path, Some(&admin), Value::Null).await;
    let code = issued.body["code"].as_str().unwrap().to_owned();
    let deactivate = app
        .patch(
            &format!("/api/admin/users/{child_id}"),
            Some(&admin),
            json!({"active": false}),
        )
        .await;
    assert_eq!(deactivate.status, StatusCode::OK);
    let refused = reset(&app, "forgetful_kid", &code, "yet another password").await;
    assert_eq!(refused.fields(), ["code"]);
}
