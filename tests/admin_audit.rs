//! Contract section "Admin console and audit (v1.4)", black-box on SQLite
//! and PostgreSQL: every story for admins, the audit log written with each
//! action, and the guard that keeps the last admin in.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};

backend_tests!(
    the_admin_story_list_has_drafts_and_filters,
    every_admin_action_is_audited,
    admins_cannot_lock_themselves_out,
    a_refused_or_failed_action_writes_no_entry,
    a_closed_report_cannot_be_closed_again,
    two_admins_demoting_each_other_leave_one,
);

async fn story(app: &TestApp, token: &str, title: &str, status: &str) -> i64 {
    let body = json!({
        "title": title,
        "pages": [{"text": "A fox and an owl walked home under the stars."}],
        "genre": "animals",
        "age_group": "3-5",
        "status": status,
    });
    let reply = app.post("/api/stories", Some(token), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

async fn user_id(app: &TestApp, token: &str) -> i64 {
    app.get("/api/me", Some(token)).await.body["id"]
        .as_i64()
        .unwrap()
}

/// The audit log as `(action, target type, target id)`, newest first.
async fn audit(app: &TestApp, admin: &str, query: &str) -> Vec<(String, String, i64)> {
    let reply = app
        .get(&format!("/api/admin/audit{query}"), Some(admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["action"].as_str().unwrap().to_owned(),
                entry["target"]["type"].as_str().unwrap().to_owned(),
                entry["target"]["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn the_admin_story_list_has_drafts_and_filters(app: TestApp) {
    let ann = app.register("ann_writer").await;
    let ben = app.register("ben_writer").await;
    let admin = app.register_admin("story_admin").await;
    let ann_draft = story(&app, &ann, "Ann's secret dragon", "draft").await;
    let ann_published = story(&app, &ann, "Ann's 100% true tale", "published").await;
    let ben_draft = story(&app, &ben, "Ben and the DRAGON", "draft").await;

    let all = app.get("/api/admin/stories", Some(&admin)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["total"], 3);
    assert_eq!(
        ids(&all.body),
        [ben_draft, ann_published, ann_draft],
        "newest first, drafts included"
    );
    let summary = &all.body["items"][0];
    assert_eq!(summary["status"], "draft");
    assert!(summary["excerpt"].is_string() && summary["page_count"] == 1);
    assert_eq!(summary["author"]["username"], "ben_writer");

    let dragons = app.get("/api/admin/stories?q=dragon", Some(&admin)).await;
    assert_eq!(
        ids(&dragons.body),
        [ben_draft, ann_draft],
        "title, any case"
    );
    let percent = app.get("/api/admin/stories?q=100%25", Some(&admin)).await;
    assert_eq!(ids(&percent.body), [ann_published], "% is a character");
    let drafts = app
        .get("/api/admin/stories?status=draft", Some(&admin))
        .await;
    assert_eq!(ids(&drafts.body), [ben_draft, ann_draft]);
    let anns = app
        .get(
            "/api/admin/stories?author=ANN_WRITER&status=published",
            Some(&admin),
        )
        .await;
    assert_eq!(ids(&anns.body), [ann_published]);
    let nobody = app
        .get("/api/admin/stories?author=nobody", Some(&admin))
        .await;
    assert_eq!(
        (nobody.status, nobody.body["total"].clone()),
        (StatusCode::OK, json!(0))
    );
    let second = app
        .get("/api/admin/stories?page=2&page_size=2", Some(&admin))
        .await;
    assert_eq!(
        (
            ids(&second.body),
            second.body["page"].clone(),
            second.body["total"].clone()
        ),
        (vec![ann_draft], json!(2), json!(3))
    );

    let bad = app
        .get("/api/admin/stories?status=hidden", Some(&admin))
        .await;
    assert_eq!(
        (bad.status, bad.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["status".to_owned()])
    );
    assert_eq!(
        app.get("/api/admin/stories", Some(&ann)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/admin/stories", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/admin/audit", Some(&ben)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/admin/audit", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn every_admin_action_is_audited(app: TestApp) {
    let author = app.register("audited_author").await;
    let reporter = app.register("audited_reporter").await;
    let admin = app.register_admin("first_admin").await;
    let other_admin = app.register_admin("second_admin").await;
    let author_id = user_id(&app, &author).await;
    let admin_id = user_id(&app, &admin).await;

    // Reports: one resolved with unpublish, one dismissed.
    let reported = story(&app, &author, "Reported tale", "published").await;
    let report = |reason: &'static str| {
        let app = &app;
        let reporter = &reporter;
        async move {
            let reply = app
                .post(
                    &format!("/api/stories/{reported}/report"),
                    Some(reporter),
                    json!({ "reason": reason }),
                )
                .await;
            reply.body["id"].as_i64().unwrap()
        }
    };
    let resolved = report("scary").await;
    let dismissed = report("too long").await;
    let decide = |id: i64, decision: Value| {
        let app = &app;
        let admin = &admin;
        async move {
            let reply = app
                .patch(&format!("/api/admin/reports/{id}"), Some(admin), decision)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
    };
    decide(
        resolved,
        json!({"status": "resolved", "action": "unpublish"}),
    )
    .await;
    decide(dismissed, json!({"status": "dismissed"})).await;

    // Stories changed by an admin who is not their author.
    let edited = story(&app, &author, "Edited tale", "published").await;
    let reply = app
        .patch(
            &format!("/api/stories/{edited}"),
            Some(&admin),
            json!({"title": "Edited by an admin"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = app
        .patch(
            &format!("/api/stories/{edited}"),
            Some(&admin),
            json!({"status": "draft"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let deleted = story(&app, &author, "Deleted tale", "published").await;
    let reply = app
        .delete(&format!("/api/stories/{deleted}"), Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    // An admin's own story, and an author's own edit, are not admin actions.
    let own = story(&app, &admin, "The admin's own tale", "published").await;
    app.patch(
        &format!("/api/stories/{own}"),
        Some(&admin),
        json!({"title": "Still mine"}),
    )
    .await;
    app.patch(
        &format!("/api/stories/{edited}"),
        Some(&author),
        json!({"title": "Mine again"}),
    )
    .await;

    // Users: a role change, then a deactivation and a reactivation; a
    // PATCH that changes nothing writes nothing.
    let user_path = format!("/api/admin/users/{author_id}");
    for change in [
        json!({"role": "admin"}),
        json!({"role": "admin"}),
        json!({"role": "user", "active": false}),
        json!({"active": false}),
        json!({"active": true}),
    ] {
        let reply = app.patch(&user_path, Some(&admin), change).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    let log = audit(&app, &admin, "").await;
    let expected = [
        ("user_reactivated", "user", author_id),
        ("user_deactivated", "user", author_id),
        ("user_role_changed", "user", author_id),
        ("user_role_changed", "user", author_id),
        ("story_deleted", "story", deleted),
        ("story_unpublished", "story", edited),
        ("story_updated", "story", edited),
        ("report_dismissed", "report", dismissed),
        ("report_resolved", "report", resolved),
    ]
    .map(|(action, kind, id)| (action.to_owned(), kind.to_owned(), id));
    assert_eq!(log, expected, "every action once, newest first");

    let page = app
        .get("/api/admin/audit?page_size=9", Some(&admin))
        .await
        .body;
    assert_eq!(page["total"], 9);
    let entries = page["items"].as_array().unwrap();
    let newest = &entries[0];
    assert_eq!(newest["admin"]["username"], "first_admin");
    assert_eq!(newest["admin"]["id"], admin_id);
    assert!(newest["id"].is_i64() && newest["created_at"].is_string());
    assert_eq!(entries[0]["detail"], json!({"username": "audited_author"}));
    assert_eq!(
        entries[2]["detail"],
        json!({"username": "audited_author", "from": "admin", "to": "user"})
    );
    assert_eq!(entries[3]["detail"]["from"], "user");
    assert_eq!(entries[3]["detail"]["to"], "admin");
    assert_eq!(entries[4]["detail"]["title"], "Deleted tale");
    assert_eq!(entries[4]["detail"]["author"], "audited_author");
    assert_eq!(entries[6]["detail"]["fields"], json!(["title"]));
    assert_eq!(
        entries[8]["detail"],
        json!({"action": "unpublish", "story_id": reported})
    );
    assert_eq!(
        entries[7]["detail"],
        json!({"action": "none", "story_id": reported})
    );

    // Filters: by action, by admin (a username), both, and an unknown admin.
    assert_eq!(
        audit(&app, &admin, "?action=story_unpublished").await,
        [("story_unpublished".to_owned(), "story".to_owned(), edited)]
    );
    let reply = app
        .patch(
            &format!("/api/stories/{reported}"),
            Some(&other_admin),
            json!({"tags": ["owl"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        audit(&app, &admin, "?admin=second_admin").await,
        [("story_updated".to_owned(), "story".to_owned(), reported)]
    );
    assert_eq!(
        audit(&app, &admin, "?admin=first_admin&action=story_updated")
            .await
            .len(),
        1
    );
    assert!(audit(&app, &admin, "?admin=nobody").await.is_empty());
    let bad = app
        .get("/api/admin/audit?action=user_deleted", Some(&admin))
        .await;
    assert_eq!(
        (bad.status, bad.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["action".to_owned()])
    );
}

async fn admins_cannot_lock_themselves_out(app: TestApp) {
    let admin = app.register_admin("only_admin").await;
    let admin_id = user_id(&app, &admin).await;
    let own = format!("/api/admin/users/{admin_id}");

    let demote = app.patch(&own, Some(&admin), json!({"role": "user"})).await;
    assert_eq!(
        demote.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        demote.body
    );
    assert_eq!(demote.code(), "validation");
    assert_eq!(demote.fields(), ["role"]);
    let leave = app
        .patch(&own, Some(&admin), json!({"active": false}))
        .await;
    assert_eq!(leave.fields(), ["active"]);
    let both = app
        .patch(&own, Some(&admin), json!({"role": "user", "active": false}))
        .await;
    assert_eq!(both.fields(), ["active", "role"], "every bad field named");
    let me = app.get("/api/me", Some(&admin)).await;
    assert_eq!(
        (me.status, me.body["role"].clone()),
        (StatusCode::OK, json!("admin"))
    );
    // Saying what is already so is allowed (and changes nothing).
    let same = app
        .patch(&own, Some(&admin), json!({"role": "admin", "active": true}))
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);

    // Another admin may demote them.
    let second = app.register_admin("second_in_line").await;
    let demoted = app
        .patch(&own, Some(&second), json!({"role": "user"}))
        .await;
    assert_eq!(
        (demoted.status, demoted.body["role"].clone()),
        (StatusCode::OK, json!("user"))
    );
    assert_eq!(
        audit(&app, &second, "").await,
        [("user_role_changed".to_owned(), "user".to_owned(), admin_id)]
    );
}

async fn a_refused_or_failed_action_writes_no_entry(app: TestApp) {
    let admin = app.register_admin("careful_admin").await;
    let author = app.register("careful_author").await;
    let id = story(&app, &author, "A careful tale", "published").await;
    let missing_user = app
        .patch(
            "/api/admin/users/999999",
            Some(&admin),
            json!({"active": false}),
        )
        .await;
    assert_eq!(missing_user.status, StatusCode::NOT_FOUND);
    let missing_report = app
        .patch(
            "/api/admin/reports/999999",
            Some(&admin),
            json!({"status": "dismissed"}),
        )
        .await;
    assert_eq!(missing_report.status, StatusCode::NOT_FOUND);
    let invalid = app
        .patch(
            &format!("/api/stories/{id}"),
            Some(&admin),
            json!({"title": ""}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing_story = app.delete("/api/stories/999999", Some(&admin)).await;
    assert_eq!(missing_story.status, StatusCode::NOT_FOUND);
    let page = app.get("/api/admin/audit", Some(&admin)).await;
    assert_eq!(page.body["total"], 0, "{}", page.body);
}

/// Contract v1.5, "Moderation races": a report that is no longer open
/// cannot be closed again: `409`, nothing changes, nothing is audited.
async fn a_closed_report_cannot_be_closed_again(app: TestApp) {
    let admin = app.register_admin("closer").await;
    let author = app.register("closed_author").await;
    let reporter = app.register("closed_reporter").await;
    let reported = story(&app, &author, "Reported once", "published").await;
    let report = app
        .post(
            &format!("/api/stories/{reported}/report"),
            Some(&reporter),
            json!({"reason": "scary"}),
        )
        .await;
    let report = report.body["id"].as_i64().unwrap();
    let path = format!("/api/admin/reports/{report}");
    let close = |decision: Value| app.patch(&path, Some(&admin), decision);
    let first = close(json!({"status": "resolved", "action": "none"})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    for decision in [
        json!({"status": "resolved", "action": "unpublish"}),
        json!({"status": "dismissed"}),
    ] {
        let again = close(decision).await;
        assert_eq!(
            (again.status, again.code()),
            (StatusCode::CONFLICT, "conflict"),
            "{}",
            again.body
        );
    }
    let story = app.get(&format!("/api/stories/{reported}"), None).await;
    assert_eq!(story.status, StatusCode::OK, "still published");
    let audit = app.get("/api/admin/audit", Some(&admin)).await;
    let closings = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["target"]["type"] == "report")
        .count();
    assert_eq!(closings, 1, "{}", audit.body);
    let missing = app
        .patch(
            "/api/admin/reports/999999",
            Some(&admin),
            json!({"status": "dismissed"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Contract v1.5: no change leaves the server with no active admin, also
/// when two admins demote each other at the same moment: one of the two
/// changes is refused (`422` naming `role`), whichever order they land in.
async fn two_admins_demoting_each_other_leave_one(app: TestApp) {
    let first = app.register_admin("first_admin").await;
    let second = app.register_admin("second_admin").await;
    let first_id = user_id(&app, &first).await;
    let second_id = user_id(&app, &second).await;
    let demote_second = format!("/api/admin/users/{second_id}");
    let demote_first = format!("/api/admin/users/{first_id}");
    // Both requests pass their admin check, then meet here before either
    // starts its transaction: the race happens on every run.
    app.state
        .pauses
        .arm(storybook::pause::PausePoint::AdminUserChange, 2);
    let (a, b) = tokio::join!(
        app.patch(&demote_second, Some(&first), json!({"role": "user"})),
        app.patch(&demote_first, Some(&second), json!({"role": "user"})),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422], "{} / {}", a.body, b.body);
    let refused = if a.status == StatusCode::OK { &b } else { &a };
    assert_eq!(refused.fields(), ["role"]);
    let mut roles = Vec::new();
    for token in [&first, &second] {
        roles.push(app.get("/api/me", Some(token)).await.body["role"].clone());
    }
    roles.sort_by_key(|role| role.to_string());
    assert_eq!(roles, [json!("admin"), json!("user")], "one admin left");
}
