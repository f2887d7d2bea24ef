//! Issue #21, hostile input round 3, black-box: the admission's side doors
//! (media types spelled in any case, slow uploads, a full concurrency
//! limit) and the limits that hold under attack.

mod common;

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use common::{TestApp, send_to};
use futures_util::stream;
use serde_json::json;
use storybook::config::Limits;

backend_tests!(
    emails_are_unique_by_their_unicode_lower_case,
    a_sign_in_past_the_token_limit_revokes_the_oldest,
);

/// Contract v1.5: at most `TOKENS_PER_USER` (20) live tokens a user; a
/// new sign-in revokes the oldest.
async fn a_sign_in_past_the_token_limit_revokes_the_oldest(app: TestApp) {
    let first = app.register("collector").await;
    let mut tokens = vec![first];
    for _ in 0..20 {
        let login = app
            .post(
                "/api/auth/login",
                None,
                json!({"username": "collector", "password": "password123"}),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        tokens.push(login.body["token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        app.get("/api/me", Some(&tokens[0])).await.status,
        StatusCode::UNAUTHORIZED
    );
    for token in &tokens[1..] {
        assert_eq!(app.get("/api/me", Some(token)).await.status, StatusCode::OK);
    }
}

/// Emails are unique case-insensitively in all of Unicode, on both
/// backends: SQLite's `lower()` is ASCII-only, so `Élise@` and `élise@`
/// both registered before (#21).
async fn emails_are_unique_by_their_unicode_lower_case(app: TestApp) {
    let register = |username: &'static str, email: &'static str| {
        app.post(
            "/api/auth/register",
            None,
            json!({"username": username, "email": email, "password": "password123"}),
        )
    };
    assert_eq!(
        register("elise", "Élise@example.fr").await.status,
        StatusCode::CREATED
    );
    for (username, email) in [
        ("elise2", "élise@example.fr"),
        ("elise3", "ÉLISE@EXAMPLE.FR"),
        // The same letters decomposed (E + combining acute accent).
        ("elise4", "E\u{301}lise@example.fr"),
    ] {
        let taken = register(username, email).await;
        assert_eq!(
            (taken.status, taken.code()),
            (StatusCode::CONFLICT, "conflict"),
            "{email}"
        );
    }
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "éLISE@example.fr", "password": "password123"}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["user"]["username"], "elise");
}

/// A request whose body sends `first` and then nothing more, ever: a
/// client trickling an upload.
fn stalled(path: &str, declared: usize, first: &'static [u8]) -> Request<Body> {
    let chunks = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from_static(first)) })
        .chain(stream::pending());
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, declared)
        .body(Body::from_stream(chunks))
        .unwrap()
}

use futures_util::StreamExt;

/// A JSON body of `text` bytes for `/api/profanity/check`.
fn big_check(text_bytes: usize) -> Request<Body> {
    let body = json!({ "text": "a".repeat(text_bytes) }).to_string();
    Request::builder()
        .method(Method::POST)
        .uri("/api/profanity/check")
        .header(header::CONTENT_TYPE, "APPLICATION/JSON")
        .body(Body::from(body))
        .unwrap()
}

/// A slow upload holds what it has sent, not what it declared: two
/// stalled 1 MiB uploads leave the budget to everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_upload_holds_what_it_sent_not_what_it_declared() {
    let app = TestApp::sqlite_with(Limits {
        request_memory_budget: 8 * 1024 * 1024,
        ..Default::default()
    })
    .await;
    let mut stalled_requests = Vec::new();
    for _ in 0..2 {
        let router = app.router.clone();
        let request = stalled("/api/profanity/check", 1 << 20, b"{\"text\": \"");
        stalled_requests.push(tokio::spawn(async move { send_to(&router, request).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.state.memory.in_use_bytes(),
        0,
        "20 bytes sent: nothing held"
    );
    // 300 KB of text weighs about 5.4 MB: it fits beside them.
    let reply = send_to(&app.router, big_check(300_000)).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.fields(), ["text"]);
    for request in stalled_requests {
        request.abort();
    }
}

/// Media types are compared without regard to case, and the weight comes
/// from the parser: an upper-case JSON type is parsed and weighed as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upper_case_json_type_is_weighed_as_json() {
    let app = TestApp::sqlite_with(Limits {
        request_memory_budget: 4 * 1024 * 1024,
        ..Default::default()
    })
    .await;
    // 400 KB: 0.8 MB as it arrives, then 6.4 MB to parse: over 4 MiB.
    let reply = send_to(&app.router, big_check(400_000)).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    assert_eq!(reply.headers["retry-after"], "1");
    assert_eq!(app.state.memory.in_use_bytes(), 0);
    let small = send_to(&app.router, big_check(100)).await;
    assert_eq!(small.status, StatusCode::OK, "{}", small.body);
}

/// The concurrency limit refuses at once with `Retry-After`, and the
/// probes stay outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_concurrency_limit_answers_busy_at_once_and_probes_still_answer() {
    let app = TestApp::sqlite_with(Limits {
        max_concurrent_requests: 4,
        ..Default::default()
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..6 {
        let router = app.router.clone();
        let request = stalled("/api/profanity/check", 1 << 20, b"{");
        slow.push(tokio::spawn(async move { send_to(&router, request).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let library = app.get("/api/stories", None).await;
    assert_eq!(
        (library.status, library.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    assert_eq!(library.headers["retry-after"], "1");
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered in {:?}",
        started.elapsed()
    );
    // Two of the six never got a slot: they were refused at once too.
    let mut refused = 0;
    for request in slow {
        if request.is_finished() {
            let reply = request.await.unwrap();
            assert_eq!(reply.code(), "busy");
            refused += 1;
        } else {
            request.abort();
        }
    }
    assert_eq!(refused, 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.get("/api/stories", None).await.status, StatusCode::OK);
}

/// A login checks one password whoever it names: a wrong password for an
/// account, an unknown name and a deactivated account each cost one check
/// (counted, not timed: the time of a check is the same by construction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_checks_one_password_whoever_it_names() {
    let app = TestApp::sqlite().await;
    app.register("dora").await;
    app.register("gone").await;
    let gone = app.state.store.user_by_username("gone").await.unwrap();
    app.state
        .store
        .set_role_and_active(gone.id, None, Some(false), None)
        .await
        .unwrap();
    let checks = || app.state.auth.passwords.checks_made();
    for (username, password) in [
        ("dora", "wrong-password"),
        ("nobody-at-all", "password123"),
        ("gone", "password123"),
        ("dora", &"x".repeat(5_000)),
    ] {
        let before = checks();
        let reply = app
            .post(
                "/api/auth/login",
                None,
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{username}");
        assert_eq!(checks() - before, 1, "{username}: one password checked");
    }
}

/// The login lock's table full of accounts with failures refuses new
/// names with `503 busy` instead of forgetting a victim's failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_login_lock_refuses_new_names_and_keeps_failures() {
    let app = TestApp::sqlite_with(Limits {
        login_tracked_accounts: 4,
        ..Default::default()
    })
    .await;
    app.register("victim").await;
    let attempt = |username: &'static str| {
        app.post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": "wrong-password"}),
        )
    };
    for _ in 0..4 {
        assert_eq!(attempt("victim").await.status, StatusCode::UNAUTHORIZED);
    }
    for name in ["flood1", "flood2", "flood3"] {
        assert_eq!(attempt(name).await.status, StatusCode::UNAUTHORIZED);
    }
    let refused = attempt("flood4").await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    assert!(refused.headers.contains_key("retry-after"));
    // The victim's fifth failure still locks it.
    assert_eq!(attempt("victim").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        attempt("victim").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Contract v1.5: a request that gets no database connection within
/// `DATABASE_ACQUIRE_MS` is `503 busy` with `Retry-After`, never `500`.
/// The pool has one connection; a request holds it, blocked on a table
/// lock the test holds from its own connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_database_connection_is_busy() {
    let pool = storybook_store::PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let Some(app) = TestApp::postgres_with_pool(Limits::default(), pool).await else {
        return;
    };
    let token = app.register("waiting_reader").await;
    sqlx::any::install_default_drivers();
    let database = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let mut lock = database.begin().await.unwrap();
    sqlx::query("LOCK TABLE stories IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let router = app.router.clone();
    let holder = tokio::spawn(async move {
        let request = Request::get("/api/stories?q=fox")
            .body(Body::empty())
            .unwrap();
        send_to(&router, request).await.status
    });
    // Until the holder waits for the lock with the pool's one connection.
    assert!(
        common::until_a_lock_is_awaited(&database).await,
        "the holder never waited for the lock"
    );
    let started = Instant::now();
    let refused = app.get("/api/me/drawings", Some(&token)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        "{}",
        refused.body
    );
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    lock.rollback().await.unwrap();
    assert_eq!(holder.await.unwrap(), StatusCode::OK);
}
