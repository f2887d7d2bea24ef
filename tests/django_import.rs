//! Contract v1.5, "Coming from Django": `storybook import-django` on the
//! real dump (`tests/fixtures/django/users.json`), through the binary, on
//! SQLite and PostgreSQL: the mapping, the renames, idempotence, a bad dump
//! refused having written nothing, and the imported users signing in.

mod common;

use std::path::Path;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};

backend_tests!(
    a_django_dump_moves_in_and_signs_in,
    names_and_addresses_taken_within_one_batch_are_seen
);

const DUMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/django/users.json"
);

/// Runs `storybook import-django FILE --model accounts.user`: the exit
/// status and standard output.
fn import(database_url: &str, file: &Path) -> (bool, String, String) {
    let file = file.to_str().unwrap();
    common::process::run(
        database_url,
        &["import-django", "--model", "accounts.user", file],
    )
}

async fn a_django_dump_moves_in_and_signs_in(app: TestApp) {
    // A user already here with Anna's address: she moves in without it.
    app.post(
        "/api/auth/register",
        None,
        json!({"username": "already_here", "email": "ANNA@example.org", "password": "password123"}),
    )
    .await;
    let (ok, out, err) = import(&app.database_url, Path::new(DUMP));
    assert!(ok, "{out}{err}");
    assert!(out.contains("Anna.K -> anna_k"), "{out}");
    let summary = out.lines().last().unwrap();
    assert_eq!(
        summary,
        "imported 4, skipped 0 (already here), renamed 1, without email 1, unusable passwords 1",
        "{out}"
    );

    let admin = app.register_admin("move_admin").await;
    let users = app
        .get("/api/admin/users?page_size=100", Some(&admin))
        .await
        .body;
    let by_name = |name: &str| -> Value {
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {users}"))
    };
    let anna = by_name("anna_k");
    assert_eq!(
        (
            &anna["display_name"],
            &anna["email"],
            &anna["role"],
            &anna["active"]
        ),
        (&json!("Anna K"), &Value::Null, &json!("user"), &json!(true))
    );
    assert_eq!(anna["created_at"], "2026-12-07T17:53:44.813Z");
    assert_eq!(by_name("teacher_bob")["role"], "admin");
    assert_eq!(by_name("inactive_cat")["active"], false);

    // Their Django passwords work (once, then they are ours).
    let login = |username: &'static str, password: &'static str| {
        app.post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
    };
    assert_eq!(
        login("anna_k", "correct horse 1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        login("bob@example.org", "teacher pass 2").await.status,
        StatusCode::OK
    );
    assert_eq!(
        login("inactive_cat", "sleepy cat 3").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login("no_password_eve", "anything at all").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Again: nothing changes.
    let (ok, out, _) = import(&app.database_url, Path::new(DUMP));
    assert!(ok);
    assert_eq!(
        out.lines().last().unwrap(),
        "imported 0, skipped 4 (already here), renamed 0, without email 0, unusable passwords 0"
    );

    // A bad record stops the import before anything is written.
    let dir = common::TempDir::new();
    let bad = dir.0.join("bad.json");
    let mut records: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(DUMP).unwrap()).unwrap();
    for (n, record) in records.iter_mut().enumerate() {
        record["pk"] = json!(100 + n);
        record["fields"]["username"] = json!(format!("fresh_{n}"));
    }
    records[2]["fields"]["date_joined"] = json!("not a date");
    std::fs::write(&bad, serde_json::to_string(&records).unwrap()).unwrap();
    let (ok, out, err) = import(&app.database_url, &bad);
    assert!(!ok, "{out}");
    assert!(err.contains("record 3 (accounts.user 102)"), "{err}");
    assert!(
        app.state.store.user_by_username("fresh_0").await.is_err(),
        "nothing written"
    );
}

/// A batch is checked as a whole before it is written: names and
/// addresses taken by an earlier record of the same batch count as taken,
/// and a record repeated in it is imported once.
async fn names_and_addresses_taken_within_one_batch_are_seen(app: TestApp) {
    app.register("sam_lee3").await;
    let template: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(DUMP).unwrap()).unwrap();
    let record = |pk: i64, username: &str, email: &str| {
        let mut record = template[0].clone();
        record["pk"] = json!(pk);
        record["fields"]["username"] = json!(username);
        record["fields"]["email"] = json!(email);
        record
    };
    let records = vec![
        record(501, "Sam.Lee", "sam@example.org"),
        // The same rule-made name: numbered, skipping one already here.
        record(502, "sam lee", "other@example.org"),
        record(503, "SAM-LEE", "third@example.org"),
        // A valid name the first record now holds: already here.
        record(504, "sam_lee", "fourth@example.org"),
        // The first record again.
        record(501, "Sam.Lee", "sam@example.org"),
        // The first record's address in other letters: moves in without it.
        record(505, "kim_park", "SAM@example.org"),
        // Numbered again: the name already here is still taken the second
        // time it comes up in the batch.
        record(506, "sam.lee", "fifth@example.org"),
    ];
    let dir = common::TempDir::new();
    let file = dir.0.join("batch.json");
    std::fs::write(&file, serde_json::to_string(&records).unwrap()).unwrap();
    let (ok, out, err) = import(&app.database_url, &file);
    assert!(ok, "{out}{err}");
    for rename in [
        "Sam.Lee -> sam_lee",
        "sam lee -> sam_lee2",
        "SAM-LEE -> sam_lee4",
    ] {
        assert!(out.contains(rename), "{rename}: {out}");
    }
    assert_eq!(
        out.lines().last().unwrap(),
        "imported 5, skipped 2 (already here), renamed 4, without email 1, unusable passwords 0"
    );
    let admin = app.register_admin("batch_admin").await;
    let users = app
        .get("/api/admin/users?q=kim_park", Some(&admin))
        .await
        .body;
    assert_eq!(users["items"][0]["email"], Value::Null, "{users}");
}
