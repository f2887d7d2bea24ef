//! Contract v1.5, "Backups and moving between databases": `storybook
//! export` and `storybook import` through the binary, and
//! `GET /api/admin/export`, over data made through the API that touches
//! every table a backup carries.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TempDir, TestApp};
use serde_json::{Value, json};
use storybook::pause::PausePoint;

backend_tests!(
    an_import_refuses_what_it_cannot_load_and_leaves_nothing,
    an_older_backup_is_imported_then_migrated,
    the_http_export_is_the_backup_one_at_a_time_and_audited,
);

/// Every table a backup carries: the data made by [`fill`] has rows in
/// each, so a table added to the export without data here fails, and a
/// table added to the schema without export support makes every export
/// refuse to run.
const CARRIED: [&str; 16] = [
    "users",
    "django_imports",
    "stories",
    "story_tags",
    "drawings",
    "strokes",
    "drawing_collaborators",
    "drawing_invitations",
    "story_drawings",
    "likes",
    "story_reads",
    "reading_progress",
    "game_scores",
    "notifications",
    "reports",
    "audit_log",
];

const DJANGO_DUMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/django/users.json"
);

/// `storybook export` to standard output.
fn export(database_url: &str) -> String {
    let (ok, out, err) = common::process::run(database_url, &["export"]);
    assert!(ok, "export failed: {err}");
    assert!(err.contains("exported"), "{err}");
    out
}

/// `storybook import FILE` of `backup`.
fn import(database_url: &str, backup: &str) -> (bool, String, String) {
    let dir = TempDir::new();
    let file = dir.0.join("backup.jsonl");
    std::fs::write(&file, backup).unwrap();
    common::process::run(database_url, &["import", file.to_str().unwrap()])
}

/// The lines after the header (the header says when it was written).
fn rows(backup: &str) -> Vec<&str> {
    backup.lines().skip(1).collect()
}

/// The two backups' lines after the header are the same (the first
/// difference is named, not two whole files).
fn assert_same_rows(left: &str, right: &str, what: &str) {
    let (left, right) = (rows(left), rows(right));
    if let Some((n, (l, r))) = left
        .iter()
        .zip(&right)
        .enumerate()
        .find(|(_, (l, r))| l != r)
    {
        panic!("{what}: line {} differs:\n  {l}\n  {r}", n + 2);
    }
    assert_eq!(left.len(), right.len(), "{what}: as many lines");
}

fn header(backup: &str) -> Value {
    serde_json::from_str(backup.lines().next().unwrap()).unwrap()
}

fn tables(backup: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for line in rows(backup) {
        let line: Value = serde_json::from_str(line).unwrap();
        let table = line["table"].as_str().unwrap().to_owned();
        if seen.last() != Some(&table) {
            assert!(!seen.contains(&table), "{table} comes in one run");
            seen.push(table);
        }
    }
    seen
}

/// A database of the app's backend that nothing has set up yet.
async fn fresh_database(app: &TestApp) -> (String, Option<TempDir>) {
    if app.database_url.starts_with("sqlite") {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("fresh.db").display());
        (url, Some(dir))
    } else {
        let url = common::fresh_postgres_url().await.expect("PostgreSQL");
        (url, None)
    }
}

/// What [`fill`] made that the checks after an import look for.
struct Filled {
    story: i64,
    deleted_story: i64,
}

/// Data in every table, made through the API (and `import-django` for
/// the Django users).
async fn fill(app: &TestApp) -> Filled {
    let (ok, out, err) = common::process::run(
        &app.database_url,
        &["import-django", "--model", "accounts.user", DJANGO_DUMP],
    );
    assert!(ok, "{out}{err}");
    let alice = app.register("alice_backup").await;
    let bob = app.register("bob_backup").await;
    let admin = app.register_admin("admin_backup").await;
    let ok = |reply: common::Reply, what: &str| {
        assert!(reply.status.is_success(), "{what}: {}", reply.body);
        reply.body
    };
    ok(
        app.patch("/api/me/settings", Some(&alice), json!({"theme": "dark"}))
            .await,
        "settings",
    );
    let drawing = ok(
        app.post(
            "/api/drawings",
            Some(&alice),
            json!({"title": "Castle", "width": 200, "height": 100, "strokes": [
                {"id": "s1", "tool": "pen", "color": "#ff0000", "width": 8, "points": [[10, 50], [190, 50], [100, 10]]},
                {"id": "s2", "tool": "highlighter", "color": "#00ff00", "width": 2.5, "points": [[1, 1], [2, 3]]}
            ]}),
        )
        .await,
        "drawing",
    )["id"]
        .as_i64()
        .unwrap();
    ok(
        app.post(
            &format!("/api/drawings/{drawing}/collaborators"),
            Some(&alice),
            json!({"username": "bob_backup"}),
        )
        .await,
        "collaborator",
    );
    let story = |title: &str, status: &str, drawing: Option<i64>| {
        json!({
            "title": title,
            "pages": [
                {"text": "Once upon a time a brave little fox lived by the river.", "drawing_id": drawing},
                {"text": "The fox met a friendly owl who knew every star in the sky."},
                {"text": "Together they found the way home before the moon rose high."}
            ],
            "genre": "animals", "age_group": "3-5", "tags": ["Fox", "night"], "status": status,
        })
    };
    let created = ok(
        app.post(
            "/api/stories",
            Some(&alice),
            story("The brave fox", "published", Some(drawing)),
        )
        .await,
        "story",
    );
    let id = created["id"].as_i64().unwrap();
    ok(
        app.post(
            "/api/stories",
            Some(&alice),
            story("A draft", "draft", None),
        )
        .await,
        "draft",
    );
    let deleted = ok(
        app.post(
            "/api/stories",
            Some(&bob),
            story("Gone tomorrow", "published", None),
        )
        .await,
        "story to delete",
    )["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.delete(&format!("/api/stories/{deleted}"), Some(&bob))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    ok(
        app.post(&format!("/api/stories/{id}/like"), Some(&bob), json!({}))
            .await,
        "like",
    );
    ok(
        app.get(&format!("/api/stories/{id}"), Some(&bob)).await,
        "read",
    );
    ok(
        app.call(
            axum::http::Method::PUT,
            &format!("/api/stories/{id}/progress"),
            Some(&bob),
            Some(json!({"page": 1})),
        )
        .await,
        "progress",
    );
    ok(
        app.post(
            &format!("/api/stories/{id}/games/order/answers"),
            Some(&bob),
            json!({"version": 1, "answers": {}}),
        )
        .await,
        "game",
    );
    let report = ok(
        app.post(
            &format!("/api/stories/{id}/report"),
            Some(&bob),
            json!({"reason": "too scary"}),
        )
        .await,
        "report",
    )["id"]
        .as_i64()
        .unwrap();
    ok(
        app.patch(
            &format!("/api/admin/reports/{report}"),
            Some(&admin),
            json!({"status": "dismissed"}),
        )
        .await,
        "report decision",
    );
    // What the server does within a second, so the command sees it.
    app.write_pending_reads().await;
    Filled {
        story: id,
        deleted_story: deleted,
    }
}

/// SQLite -> PostgreSQL -> SQLite gives the same lines after the header,
/// and each imported database works: passwords, search, counters, ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_moves_between_backends_and_back_unchanged() {
    let source = TestApp::sqlite().await;
    let filled = fill(&source).await;
    let first = export(&source.database_url);
    assert_eq!(tables(&first), CARRIED, "every table carried, in order");
    let head = header(&first);
    assert_eq!(head["format"], "storybook-export");
    assert_eq!(head["version"], 1);
    assert!(head["schema"].as_i64().unwrap() >= 9, "{head}");
    assert!(
        head["sequences"]["stories"].as_i64().unwrap() >= filled.deleted_story,
        "{head}"
    );
    for line in rows(&first) {
        let line: Value = serde_json::from_str(line).unwrap();
        assert!(
            !["tokens", "reset_codes", "schema_migrations"]
                .contains(&line["table"].as_str().unwrap())
        );
        if line["table"] == "strokes" {
            assert!(line["row"]["points"].is_string(), "binary is base64");
        }
    }

    // PostgreSQL when there is one (CI always), else a second SQLite file.
    let (middle_url, _middle_dir) = match common::fresh_postgres_url().await {
        Some(url) => (url, None),
        None => {
            let dir = TempDir::new();
            (
                format!("sqlite://{}", dir.0.join("middle.db").display()),
                Some(dir),
            )
        }
    };
    let (ok, out, err) = import(&middle_url, &first);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("imported "), "{out}");
    let second = export(&middle_url);
    assert_same_rows(&first, &second, "the way there");
    let middle = TestApp::on(&middle_url).await;
    the_imported_database_works(&middle, &filled).await;

    let back = TempDir::new();
    let back_url = format!("sqlite://{}", back.0.join("back.db").display());
    let (ok, out, err) = import(&back_url, &second);
    assert!(ok, "{out}{err}");
    let third = export(&back_url);
    assert_same_rows(&first, &third, "the way back");
    the_imported_database_works(&TestApp::on(&back_url).await, &filled).await;
}

async fn the_imported_database_works(app: &TestApp, filled: &Filled) {
    // Passwords came along (tokens did not: everyone signs in again).
    assert_eq!(
        app.login_status("alice_backup", "password123").await,
        StatusCode::OK
    );
    // The full-text index was rebuilt; drafts are still not in it.
    let found = app.get("/api/stories?q=brave", None).await;
    assert_eq!(found.body["total"], 1, "{}", found.body);
    let story = app
        .get(&format!("/api/stories/{}", filled.story), None)
        .await;
    assert_eq!(
        story.body["reads"], 1,
        "the read counter loaded as exported"
    );
    assert_eq!(story.body["likes"], 1);
    // A deleted story's id is never issued again.
    let token = app.register("newcomer_backup").await;
    let new = app
        .post(
            "/api/stories",
            Some(&token),
            json!({"title": "After the move", "pages": [{"text": "Hello there, new home."}],
                   "genre": "funny", "age_group": "3-5", "status": "draft"}),
        )
        .await;
    assert_eq!(new.status, StatusCode::CREATED, "{}", new.body);
    assert!(new.body["id"].as_i64().unwrap() > filled.deleted_story);
}

async fn an_import_refuses_what_it_cannot_load_and_leaves_nothing(app: TestApp) {
    fill(&app).await;
    let backup = export(&app.database_url);
    let users_before = app.state.store.totals().await.unwrap().users;

    // Into a database with users: refused, nothing changed.
    let (ok, _, err) = import(&app.database_url, &backup);
    assert!(!ok);
    assert!(err.contains("already holds users or stories"), "{err}");
    assert_eq!(app.state.store.totals().await.unwrap().users, users_before);

    let (fresh, _dir) = fresh_database(&app).await;
    let mut lines: Vec<String> = backup.lines().map(String::from).collect();
    let refused = |lines: &[String], why: &str| {
        let (ok, out, err) = import(&fresh, &(lines.join("\n") + "\n"));
        assert!(!ok, "{out}");
        assert!(err.contains(why), "expected {why:?}: {err}");
    };
    // A row that breaks the schema, far into the file: named by its line,
    // and the rows before it are not left behind (the good backup loads
    // into the same database afterwards).
    let last = lines.len() - 1;
    let good_last = lines[last].clone();
    lines[last] = r#"{"row":{"id":"seven"},"table":"audit_log"}"#.into();
    refused(&lines, &format!("line {}:", last + 1));
    // Well-typed but refused by the database (no such admin): the batch
    // is replayed to name the line.
    let mut orphan: Value = serde_json::from_str(&good_last).unwrap();
    orphan["row"]["admin_id"] = json!(999_999);
    lines[last] = orphan.to_string();
    refused(
        &lines,
        &format!("line {}: audit_log refused the row", last + 1),
    );
    lines[last] = r#"{"row":{},"table":"stickers"}"#.into();
    refused(&lines, &format!("line {}: unknown table", last + 1));
    lines[last] = good_last;
    let good_header = lines[0].clone();
    lines[0] = good_header.replace("storybook-export", "other-export");
    refused(&lines, "line 1:");
    let mut newer = header(&backup);
    newer["schema"] = json!(999);
    lines[0] = newer.to_string();
    refused(&lines, "newer");
    lines[0] = good_header;

    let (ok, out, err) = import(&fresh, &(lines.join("\n") + "\n"));
    assert!(
        ok,
        "after the refusals the database is still empty: {out}{err}"
    );
    assert_same_rows(&backup, &export(&fresh), "after the refusals");
}

/// A backup of schema 6 (before `users.email_key` and `django_imports`)
/// loads into that schema and is migrated after: the email keys are
/// computed by the migration, so an address stays taken.
async fn an_older_backup_is_imported_then_migrated(app: TestApp) {
    fill(&app).await;
    let backup = export(&app.database_url);
    let mut older = vec![];
    let mut head = header(&backup);
    head["schema"] = json!(6);
    head["sequences"]
        .as_object_mut()
        .unwrap()
        .remove("django_imports");
    older.push(head.to_string());
    for line in rows(&backup) {
        let mut line: Value = serde_json::from_str(line).unwrap();
        match line["table"].as_str().unwrap() {
            "django_imports" => continue,
            "users" => {
                line["row"].as_object_mut().unwrap().remove("email_key");
            }
            _ => {}
        }
        older.push(line.to_string());
    }
    let (fresh, _dir) = fresh_database(&app).await;
    let (ok, out, err) = import(&fresh, &(older.join("\n") + "\n"));
    assert!(ok, "{out}{err}");
    assert!(out.contains("migrated from schema 6 to"), "{out}");
    let moved = TestApp::on(&fresh).await;
    let taken = moved
        .post(
            "/api/auth/register",
            None,
            json!({"username": "copycat", "email": "ALICE_BACKUP@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(
        moved.login_status("bob_backup", "password123").await,
        StatusCode::OK
    );

    // An empty database already at a newer schema says what to do instead.
    let (set_up, _set_up_dir) = fresh_database(&app).await;
    drop(TestApp::on(&set_up).await);
    let (ok, _, err) = import(&set_up, &(older.join("\n") + "\n"));
    assert!(!ok);
    assert!(err.contains("no storybook has set up yet"), "{err}");
}

async fn the_http_export_is_the_backup_one_at_a_time_and_audited(app: TestApp) {
    fill(&app).await;
    let admin = app.register_admin("exporting_admin").await;
    let child = app.register("not_an_admin").await;
    assert_eq!(
        app.get("/api/admin/export", Some(&child)).await.status,
        StatusCode::FORBIDDEN
    );
    let reply = app.get("/api/admin/export", Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/x-ndjson");
    let disposition = reply.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"storybook-20")
            && disposition.ends_with(".jsonl\""),
        "{disposition}"
    );
    let over_http = reply.body.as_str().expect("JSON Lines, not one JSON");
    // The same lines as the command's; its own audit entry is in it,
    // written before the snapshot opened.
    assert_same_rows(over_http, &export(&app.database_url), "HTTP and command");
    let last: Value = serde_json::from_str(rows(over_http).last().unwrap()).unwrap();
    assert_eq!(last["table"], "audit_log");
    assert_eq!(last["row"]["action"], "data_exported");
    let audit = app
        .get("/api/admin/audit?action=data_exported", Some(&admin))
        .await;
    assert_eq!(audit.body["total"], 1);
    assert_eq!(
        audit.body["items"][0]["target"],
        json!({"type": "database", "id": null})
    );

    // One at a time: a second download while one is under way is busy.
    app.state.pauses.arm(PausePoint::BackupStarted, 2);
    let first = tokio::spawn({
        let router = app.router.clone();
        let admin = admin.clone();
        async move {
            let request = axum::http::Request::get("/api/admin/export")
                .header("authorization", format!("Bearer {admin}"))
                .body(axum::body::Body::empty())
                .unwrap();
            common::send_to(&router, request).await.status
        }
    });
    let started = Instant::now();
    while app.state.tools.backups.admitted() == 0 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = app.get("/api/admin/export", Some(&admin)).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.code(), "busy");
    assert!(second.headers.contains_key("retry-after"));
    app.state.pauses.reach(PausePoint::BackupStarted).await;
    assert_eq!(first.await.unwrap(), StatusCode::OK);
}

/// A client that stops reading a big backup is cut off after
/// RESPONSE_STALL_SECS: the snapshot and the one-at-a-time slot are given
/// back, and the answer ends as an error, never as a short backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_backup_download_is_cut_off_and_released() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::sqlite_with(storybook::config::Limits {
        response_stall_secs: 1,
        ..Default::default()
    })
    .await;
    let admin = app.register_admin("stalled_admin").await;
    // About 12 MB of backup: more than the socket buffers hold.
    storybook::seed::seed(&app.state.store, 4_000, 20, 7, "x".repeat(20))
        .await
        .unwrap();
    let address = app.listen().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /api/admin/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(60), stream.peek(&mut first))
        .await
        .expect("the download started")
        .unwrap();
    // The server answers others meanwhile.
    let ready = tokio::time::timeout(Duration::from_secs(3), app.get("/readyz", None))
        .await
        .expect("readyz answers while the download stalls");
    assert_eq!(ready.status, StatusCode::OK);
    let started = Instant::now();
    while app.state.metrics.streams_cut.load(Ordering::Relaxed) < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the stalled download is cut off"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The slot is free again: another download starts.
    let again = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if app.state.tools.backups.admitted() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(again.is_ok(), "the slot is given back");
    // What was received is not a whole backup: the body ended in error.
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut received)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..80.min(text.len())]
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the chunked body never ends cleanly"
    );
}
