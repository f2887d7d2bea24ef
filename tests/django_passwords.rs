//! Contract v1.5, "Coming from Django": users keep their passwords. The
//! hashes are the real dump's (`tests/fixtures/django/users.json`, Django
//! 5.2: PBKDF2-SHA256 at 1,000,000 rounds; its README has the passwords), a
//! PBKDF2-SHA1 one made with Python's hashlib, and Django's Argon2 form; a
//! first sign-in replaces each by this server's Argon2id. On both backends.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::Value;

backend_tests!(django_hashes_sign_in_and_are_replaced_on_the_first_sign_in);

/// The dump's password hash of `username`.
fn dumped_hash(username: &str) -> String {
    let dump: Value =
        serde_json::from_str(include_str!("fixtures/django/users.json")).expect("the dump");
    dump.as_array()
        .unwrap()
        .iter()
        .find(|record| record["fields"]["username"] == username)
        .and_then(|record| record["fields"]["password"].as_str())
        .unwrap_or_else(|| panic!("{username} in the dump"))
        .to_owned()
}

async fn with_hash(app: &TestApp, username: &str, hash: &str) {
    app.register(username).await;
    let user = app.state.store.user_by_username(username).await.unwrap();
    app.state
        .store
        .change_password(user.id, hash, "")
        .await
        .unwrap();
}

async fn stored_hash(app: &TestApp, username: &str) -> String {
    app.state
        .store
        .user_by_username(username)
        .await
        .unwrap()
        .password_hash
}

async fn django_hashes_sign_in_and_are_replaced_on_the_first_sign_in(app: TestApp) {
    // An Argon2id hash of this server's, written in Django's form.
    app.register("argon_user").await;
    let ours = stored_hash(&app, "argon_user").await;
    let users = [
        ("anna_k", dumped_hash("Anna.K"), "correct horse 1"),
        (
            "sha1_user",
            "pbkdf2_sha1$2000$NaCl4salt$Uih8FIVtoRQ+glXC4USn2cKfHTA=".to_owned(),
            "sha1 pass 4",
        ),
        ("django_argon", format!("argon2{ours}"), "password123"),
    ];
    for (username, hash, password) in &users {
        if *username != "argon_user" {
            with_hash(&app, username, hash).await;
        }
        let checks = app.state.auth.passwords.checks_made();
        assert_eq!(
            app.login_status(username, "not the password").await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.state.auth.passwords.checks_made() - checks,
            1,
            "{username}: one check"
        );
        assert_eq!(
            &stored_hash(&app, username).await,
            hash,
            "a wrong password changes nothing"
        );
        assert_eq!(
            app.login_status(username, password).await,
            StatusCode::OK,
            "{username}"
        );
        let replaced = stored_hash(&app, username).await;
        assert!(replaced.starts_with("$argon2id$"), "{username}: {replaced}");
        assert_eq!(
            app.login_status(username, password).await,
            StatusCode::OK,
            "{username} again"
        );
    }
    // Unusable (Django's `!…`), another hasher, and too many rounds: no
    // sign-in, at the cost of one check.
    let too_many = dumped_hash("Anna.K").replacen("1000000", "5000001", 1);
    for (username, hash) in [
        ("no_password_eve", dumped_hash("no_password_eve")),
        (
            "md5_user",
            "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99".to_owned(),
        ),
        ("greedy_hash", too_many),
    ] {
        with_hash(&app, username, &hash).await;
        let checks = app.state.auth.passwords.checks_made();
        assert_eq!(
            app.login_status(username, "password123").await,
            StatusCode::UNAUTHORIZED,
            "{username}"
        );
        assert_eq!(app.state.auth.passwords.checks_made() - checks, 1);
    }
}
