//! Contract section "Accounts", black-box through the real router, on
//! SQLite and PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestApp;
use serde_json::json;

backend_tests!(
    register_login_logout_and_me,
    usernames_and_emails_are_case_insensitive,
    registration_names_every_bad_field,
    registration_refuses_profanity,
    login_refuses_bad_pairs_and_deactivated_accounts,
    login_locks_after_five_failures,
    concurrent_guesses_check_at_most_five_passwords,
    over_long_logins_are_refused_unremembered,
    password_change_signs_out_the_other_tokens,
    logout_all_revokes_every_token,
    expired_tokens_are_refused_and_deleted,
    profile_updates,
    settings_read_and_patch,
    public_profiles_hide_email,
    bad_tokens_are_refused_everywhere_under_api,
);

async fn register_login_logout_and_me(app: TestApp) {
    let reply = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "Alice", "email": "alice@example.com", "password": "correct horse", "display_name": "Alice A."}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let token = reply.body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32, "at least 128 bits");
    let user = &reply.body["user"];
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "Alice A.");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["role"], "user");
    assert_eq!(user["bio"], "");
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password_hash").is_none());

    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], "alice@example.com");
    assert_eq!(me.body["settings"]["theme"], "system");
    assert_eq!(me.body["id"], user["id"]);

    let logout = app
        .call(
            axum::http::Method::POST,
            "/api/auth/logout",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let after = app.get("/api/me", Some(&token)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "unauthorized");

    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "ALICE", "password": "correct horse"}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let by_email = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "Alice@Example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(by_email.status, StatusCode::OK, "{}", by_email.body);
    assert_ne!(login.body["token"], by_email.body["token"]);
    let me = app.get("/api/me", login.body["token"].as_str()).await;
    assert_eq!(me.body["username"], "alice");

    let no_token = app.get("/api/me", None).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
}

async fn usernames_and_emails_are_case_insensitive(app: TestApp) {
    app.register("bob").await;
    let same_name = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "BOB", "email": "other@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(same_name.status, StatusCode::CONFLICT);
    assert_eq!(same_name.code(), "conflict");
    let same_email = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "bobby", "email": "BOB@EXAMPLE.COM", "password": "password123"}),
        )
        .await;
    assert_eq!(same_email.status, StatusCode::CONFLICT);
    assert_eq!(same_email.code(), "conflict");
}

async fn registration_names_every_bad_field(app: TestApp) {
    let reply = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "x y", "email": "not-an-address", "password": "short"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "validation");
    assert_eq!(reply.fields(), ["email", "password", "username"]);

    let missing = app
        .post("/api/auth/register", None, json!({"display_name": 7}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        missing.fields(),
        ["display_name", "email", "password", "username"]
    );

    for bad in ["ab", "a".repeat(31).as_str(), "élise", "has-dash"] {
        let reply = app
            .post(
                "/api/auth/register",
                None,
                json!({"username": bad, "email": "e@example.com", "password": "password123"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(reply.fields(), ["username"], "{bad}");
    }
    let not_object = app.post("/api/auth/register", None, json!(["a"])).await;
    assert_eq!(not_object.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn registration_refuses_profanity(app: TestApp) {
    let reply = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "shithead", "email": "s@example.com", "password": "password123", "display_name": "f.u.c.k"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "profanity");
    assert_eq!(reply.fields(), ["display_name", "username"]);
    // Innocent words that contain a bad one are fine.
    app.register("scunthorpe_fan").await;
}

async fn login_refuses_bad_pairs_and_deactivated_accounts(app: TestApp) {
    app.register("carol").await;
    let wrong = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "carol", "password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "unauthorized");
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "nobody", "password": "password123"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let missing = app
        .post("/api/auth/login", None, json!({"username": "carol"}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.fields(), ["password"]);

    let carol = app.state.store.user_by_username("carol").await.unwrap();
    app.state
        .store
        .set_role_and_active(carol.id, None, Some(false), None)
        .await
        .unwrap();
    let deactivated = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "carol", "password": "password123"}),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::UNAUTHORIZED);
}

async fn login_locks_after_five_failures(app: TestApp) {
    app.register("dave").await;
    app.register("erin").await;
    for attempt in 0..5 {
        // Alternate username and email: it is one account either way.
        let login = if attempt % 2 == 0 {
            "dave"
        } else {
            "DAVE@example.com"
        };
        let reply = app
            .post(
                "/api/auth/login",
                None,
                json!({"username": login, "password": "wrong password"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    for password in ["wrong password", "password123"] {
        let reply = app
            .post(
                "/api/auth/login",
                None,
                json!({"username": "dave", "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.code(), "rate_limited");
        let retry: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    let other = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "erin", "password": "password123"}),
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "another account is not locked"
    );
}

/// However many guesses arrive at once, at most five passwords of one
/// account are checked in a lock window (contract v1.3, login lock).
async fn concurrent_guesses_check_at_most_five_passwords(app: TestApp) {
    app.register("frank").await;
    let guesses = (0..40).map(|_| {
        app.post(
            "/api/auth/login",
            None,
            json!({"username": "frank", "password": "wrong password"}),
        )
    });
    let replies = futures_util::future::join_all(guesses).await;
    let checked = replies
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let refused = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (5, 35));
}

/// A login name longer than any account's is 401 at once and leaves
/// nothing behind in the throttle.
async fn over_long_logins_are_refused_unremembered(app: TestApp) {
    let before = app.state.auth.login_throttle.tracked();
    for n in 0..20 {
        let reply = app
            .post(
                "/api/auth/login",
                None,
                json!({"username": format!("{n}{}", "x".repeat(300)), "password": "x"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.state.auth.login_throttle.tracked(), before);
}

async fn login(app: &TestApp, username: &str, password: &str) -> (StatusCode, Option<String>) {
    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
        .await;
    let token = reply.body["token"].as_str().map(str::to_owned);
    (reply.status, token)
}

/// Contract v1.3: `POST /api/me/password`.
async fn password_change_signs_out_the_other_tokens(app: TestApp) {
    let here = app.register("grace").await;
    let (_, elsewhere) = login(&app, "grace", "password123").await;
    let elsewhere = elsewhere.expect("signed in elsewhere");

    let wrong = app
        .post(
            "/api/me/password",
            Some(&here),
            json!({"current_password": "not it at all", "new_password": "a new password"}),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["current_password".to_owned()]
        )
    );
    let short = app
        .post(
            "/api/me/password",
            Some(&here),
            json!({"current_password": "password123", "new_password": "short"}),
        )
        .await;
    assert_eq!(short.fields(), ["new_password"]);

    let changed = app
        .post(
            "/api/me/password",
            Some(&here),
            json!({"current_password": "password123", "new_password": "a new password"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    assert_eq!(app.get("/api/me", Some(&here)).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/me", Some(&elsewhere)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "grace", "password123").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "grace", "a new password").await.0,
        StatusCode::OK
    );
}

/// Contract v1.3: `POST /api/auth/logout-all`.
async fn logout_all_revokes_every_token(app: TestApp) {
    let first = app.register("heidi").await;
    let (_, second) = login(&app, "heidi", "password123").await;
    let second = second.unwrap();
    let bystander = app.register("ivan").await;
    let reply = app
        .post("/api/auth/logout-all", Some(&first), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    for token in [&first, &second] {
        assert_eq!(
            app.get("/api/me", Some(token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.get("/api/me", Some(&bystander)).await.status,
        StatusCode::OK
    );
    assert_eq!(login(&app, "heidi", "password123").await.0, StatusCode::OK);
}

/// Contract v1.3: tokens expire `TOKEN_TTL_DAYS` after they were issued.
async fn expired_tokens_are_refused_and_deleted(mut app: TestApp) {
    let token = app.register("judy").await;
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::OK
    );
    app.reconfigure(|state| {
        let mut limits = (*state.limits).clone();
        limits.token_ttl_days = 0;
        state.limits = std::sync::Arc::new(limits);
    });
    let expired = app.get("/api/me", Some(&token)).await;
    assert_eq!(
        (expired.status, expired.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let cutoff = storybook::auth::tokens_issued_after(0);
    assert!(
        app.state
            .store
            .delete_tokens_issued_before(cutoff)
            .await
            .unwrap()
            >= 1
    );
}

async fn profile_updates(app: TestApp) {
    let token = app.register("frank").await;
    let reply = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"display_name": "Frank the Brave", "bio": "I like dragons."}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["display_name"], "Frank the Brave");
    assert_eq!(reply.body["bio"], "I like dragons.");
    assert_eq!(reply.body["email"], "frank@example.com");

    let long = app
        .patch(
            "/api/me",
            Some(&token),
            json!({"bio": "a".repeat(501), "display_name": ""}),
        )
        .await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long.fields(), ["bio", "display_name"]);
    let rude = app
        .patch("/api/me", Some(&token), json!({"bio": "you are a b1tch"}))
        .await;
    assert_eq!(rude.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rude.code(), "profanity");
    assert_eq!(rude.fields(), ["bio"]);
    let unchanged = app.get("/api/me", Some(&token)).await;
    assert_eq!(unchanged.body["bio"], "I like dragons.");
    let exact = app
        .patch("/api/me", Some(&token), json!({"bio": "é".repeat(500)}))
        .await;
    assert_eq!(exact.status, StatusCode::OK, "500 characters, not bytes");
}

async fn settings_read_and_patch(app: TestApp) {
    let token = app.register("grace").await;
    let defaults = app.get("/api/me/settings", Some(&token)).await;
    assert_eq!(
        defaults.body,
        json!({"theme": "system", "font_size": "medium", "language": "en", "notifications": true})
    );
    let changed = app
        .patch(
            "/api/me/settings",
            Some(&token),
            json!({"theme": "dark", "language": "pt-BR"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(
        changed.body,
        json!({"theme": "dark", "font_size": "medium", "language": "pt-BR", "notifications": true})
    );
    let bad = app
        .patch(
            "/api/me/settings",
            Some(&token),
            json!({"theme": "neon", "font_size": "huge", "language": "english please", "notifications": "yes", "colour": 1}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.fields(),
        ["colour", "font_size", "language", "notifications", "theme"]
    );
    let kept = app.get("/api/me/settings", Some(&token)).await;
    assert_eq!(kept.body["theme"], "dark");
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["settings"]["language"], "pt-BR");
}

async fn public_profiles_hide_email(app: TestApp) {
    let token = app.register("heidi").await;
    let profile = app.get("/api/users/HEIDI", None).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.body["username"], "heidi");
    assert_eq!(profile.body["stories"], 0);
    assert!(profile.body.get("email").is_none());
    let own = app.get("/api/users/heidi", Some(&token)).await;
    assert!(
        own.body.get("email").is_none(),
        "never an email, even to the user"
    );
    let missing = app.get("/api/users/nobody_here", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found");
}

async fn bad_tokens_are_refused_everywhere_under_api(app: TestApp) {
    for path in [
        "/api/features",
        "/api/users/nobody",
        "/api/openapi.json",
        "/api/me",
    ] {
        let reply = app.get(path, Some("not-a-real-token")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.code(), "unauthorized");
    }
    let basic = app
        .send(
            axum::http::Request::get("/api/features")
                .header("authorization", "Basic YWxpY2U6cHc=")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    let bad_register = app
        .post(
            "/api/auth/register",
            Some("nope"),
            json!({"username": "ivan", "email": "i@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(bad_register.status, StatusCode::UNAUTHORIZED);
    for path in ["/healthz", "/readyz"] {
        let reply = app.get(path, Some("not-a-real-token")).await;
        assert_eq!(reply.status, StatusCode::OK, "{path} ignores Authorization");
    }
}

/// Contract v1.3: registrations are throttled per client address, and
/// behind a trusted proxy the client is the forwarded address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_throttled_per_client_address() {
    let app = TestApp::sqlite_with(storybook::config::Limits {
        auth_attempts_per_minute: 2,
        // Requests through `oneshot` have no TCP peer: 0.0.0.0 plays the proxy.
        trusted_proxies: "0.0.0.0/32".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let register = |n: u32, forwarded_for: &str| {
        let request = Request::post("/api/auth/register")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", forwarded_for)
            .body(Body::from(
                json!({"username": format!("kid{n}"), "email": format!("kid{n}@example.com"), "password": "password123"})
                    .to_string(),
            ))
            .unwrap();
        app.send(request)
    };
    // A client that forwards a made-up address left of the real one is
    // still counted under the real one.
    assert_eq!(
        register(1, "198.51.100.1").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        register(2, "6.6.6.6, 198.51.100.1").await.status,
        StatusCode::CREATED
    );
    let third = register(3, "7.7.7.7, 198.51.100.1").await;
    assert_eq!(
        (third.status, third.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(third.headers.contains_key("retry-after"));
    assert_eq!(
        register(4, "198.51.100.2").await.status,
        StatusCode::CREATED
    );
}

/// Contract v1.6: a school signs in from one address, so the per-address
/// count of sign-ins counts failures only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_from_one_address_count_only_failures() {
    let app = TestApp::sqlite_with(storybook::config::Limits {
        auth_attempts_per_minute: 2,
        trusted_proxies: "0.0.0.0/32".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let post = |path: &str, forwarded_for: &str, body: serde_json::Value| {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", forwarded_for)
            .body(Body::from(body.to_string()))
            .unwrap();
        app.send(request)
    };
    for n in 0..3 {
        let body = json!({"username": format!("pupil{n}"), "email": format!("pupil{n}@example.com"), "password": "password123"});
        let from = format!("198.51.100.{n}");
        assert_eq!(
            post("/api/auth/register", &from, body).await.status,
            StatusCode::CREATED
        );
    }
    let school = "203.0.113.7";
    let sign_in = |n: u32, password: &str| {
        post(
            "/api/auth/login",
            school,
            json!({"username": format!("pupil{n}"), "password": password}),
        )
    };
    for round in 0..4 {
        for n in 0..3 {
            let reply = sign_in(n, "password123").await;
            assert_eq!(reply.status, StatusCode::OK, "round {round}, pupil {n}");
        }
    }
    assert_eq!(
        sign_in(0, "wrong-guess").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(1, "wrong-guess").await.status,
        StatusCode::UNAUTHORIZED
    );
    let refused = sign_in(2, "password123").await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "two failures fill a quota of two"
    );
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(
        post(
            "/api/auth/login",
            "203.0.113.8",
            json!({"username": "pupil2", "password": "password123"})
        )
        .await
        .status,
        StatusCode::OK,
        "another address is not held back"
    );
}
