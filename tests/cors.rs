//! Contract v1.5, "Browsers on another origin (CORS)": the headers on
//! `/api/` answers (errors included) and nowhere else, preflights answered
//! before authentication and the limits, the start-up check of
//! `CORS_ALLOWED_ORIGINS`, and (realtime build) the `/ws` Origin check.
//! A real browser on another origin is `tests/cross_origin.rs`.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Reply, TestApp};
use storybook::config::Limits;

const LISTED: &str = "https://app.example.org";

async fn app_with_origins(origins: &str) -> TestApp {
    TestApp::sqlite_with(Limits {
        cors_allowed_origins: origins.parse().unwrap(),
        ..Limits::default()
    })
    .await
}

async fn send(app: &TestApp, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply.headers.get(name).map(|v| v.to_str().unwrap())
}

fn preflight(origin: &'static str) -> [(&'static str, &'static str); 3] {
    [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization, content-type",
        ),
    ]
}

#[tokio::test]
async fn a_listed_origin_gets_cors_headers_on_every_api_answer() {
    let app = app_with_origins(&format!("{LISTED}, http://localhost:5173")).await;
    let origin = [("origin", LISTED)];
    let token = app.register("cors_reader").await;

    let listed = send(&app, Method::GET, "/api/stories", &origin).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(header(&listed, "access-control-allow-origin"), Some(LISTED));
    assert_eq!(
        header(&listed, "access-control-expose-headers"),
        Some("ETag, Retry-After, Render-Incomplete, Content-Disposition")
    );
    assert_eq!(header(&listed, "vary"), Some("Origin"));
    assert_eq!(header(&listed, "access-control-allow-credentials"), None);

    // Errors too: a missing route, a bad token (refused by an outer layer).
    let missing = send(&app, Method::GET, "/api/stories/999999", &origin).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        header(&missing, "access-control-allow-origin"),
        Some(LISTED)
    );
    let bad_token = send(
        &app,
        Method::GET,
        "/api/me",
        &[("origin", LISTED), ("authorization", "Bearer nonsense")],
    )
    .await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&bad_token, "access-control-allow-origin"),
        Some(LISTED)
    );
    let bearer = format!("Bearer {token}");
    let signed_in = send(
        &app,
        Method::GET,
        "/api/me",
        &[("origin", LISTED), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::OK);
    assert_eq!(
        header(&signed_in, "access-control-allow-origin"),
        Some(LISTED)
    );

    // Another origin: no Allow-Origin, but Vary all the same (a cache must
    // not hand one origin's answer to another).
    let other = send(
        &app,
        Method::GET,
        "/api/stories",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    assert_eq!(header(&other, "vary"), Some("Origin"));

    // Outside /api/: never.
    for path in ["/healthz", "/readyz", "/admin", "/api/openapi.json"] {
        let reply = send(&app, Method::GET, path, &origin).await;
        let expected = path.starts_with("/api/").then_some(LISTED);
        assert_eq!(
            header(&reply, "access-control-allow-origin"),
            expected,
            "{path}"
        );
    }
}

#[tokio::test]
async fn preflights_are_answered_before_authentication_and_every_limit() {
    let app = app_with_origins(LISTED).await;
    let listed = send(&app, Method::OPTIONS, "/api/stories", &preflight(LISTED)).await;
    assert_eq!(listed.status, StatusCode::NO_CONTENT);
    assert_eq!(header(&listed, "access-control-allow-origin"), Some(LISTED));
    assert_eq!(
        header(&listed, "access-control-allow-methods"),
        Some("GET, POST, PUT, PATCH, DELETE")
    );
    assert_eq!(
        header(&listed, "access-control-allow-headers"),
        Some("Authorization, Content-Type, If-None-Match")
    );
    assert_eq!(header(&listed, "access-control-max-age"), Some("600"));
    assert_eq!(header(&listed, "vary"), Some("Origin"));

    // Any /api/ path, even one that does not exist or needs an admin.
    for path in ["/api/admin/users/1", "/api/no/such/thing"] {
        let reply = send(&app, Method::OPTIONS, path, &preflight(LISTED)).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{path}");
    }

    // An unlisted origin: 204 with no Allow header; the browser refuses.
    let other = send(
        &app,
        Method::OPTIONS,
        "/api/stories",
        &preflight("https://evil.example"),
    )
    .await;
    assert_eq!(other.status, StatusCode::NO_CONTENT);
    for name in other.headers.keys() {
        assert!(
            !name.as_str().starts_with("access-control-allow"),
            "{name} on an unlisted origin's preflight"
        );
    }

    app.register("after_the_preflights").await;
}

/// With the one request slot taken, a request is `503 busy` and a
/// preflight is still answered: it is counted by no limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_needs_no_request_slot() {
    let app = TestApp::sqlite_with(Limits {
        cors_allowed_origins: LISTED.parse().unwrap(),
        max_concurrent_requests: 1,
        ..Limits::default()
    })
    .await;
    let admin = app.register_admin("slot_holder").await;
    let child = app.register("slot_child").await;
    let child_id = app.get("/api/me", Some(&child)).await.body["id"]
        .as_i64()
        .unwrap();
    // An admin's change held at its pause point keeps the only slot. (If
    // one of the probing requests below holds the slot when the change
    // arrives, the change is refused busy and is sent again.)
    app.state
        .pauses
        .arm(storybook::pause::PausePoint::AdminUserChange, 2);
    let hold = || {
        let router = app.router.clone();
        let admin = admin.clone();
        tokio::spawn(async move {
            let request = Request::patch(format!("/api/admin/users/{child_id}"))
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"active": false}"#))
                .unwrap();
            common::send_to(&router, request).await.status
        })
    };
    let mut held = hold();
    let started = std::time::Instant::now();
    loop {
        if held.is_finished() {
            assert_eq!(held.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
            held = hold();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let busy = send(&app, Method::GET, "/api/stories", &[("origin", LISTED)]).await;
        if busy.status == StatusCode::SERVICE_UNAVAILABLE && !held.is_finished() {
            assert_eq!(busy.code(), "busy");
            assert_eq!(header(&busy, "access-control-allow-origin"), Some(LISTED));
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
    let reply = send(&app, Method::OPTIONS, "/api/stories", &preflight(LISTED)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(header(&reply, "access-control-allow-origin"), Some(LISTED));
    app.state
        .pauses
        .reach(storybook::pause::PausePoint::AdminUserChange)
        .await;
    assert_eq!(held.await.unwrap(), StatusCode::OK);
}

#[tokio::test]
async fn with_no_origin_listed_no_cors_header_is_ever_sent() {
    let app = TestApp::sqlite().await;
    let reply = send(&app, Method::GET, "/api/stories", &[("origin", LISTED)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .headers
            .keys()
            .all(|name| !name.as_str().starts_with("access-control")),
        "{:?}",
        reply.headers
    );
    let options = send(&app, Method::OPTIONS, "/api/stories", &preflight(LISTED)).await;
    assert_eq!(options.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&options, "access-control-allow-origin"), None);
}

#[test]
fn a_wildcard_or_malformed_origin_stops_the_server_at_start() {
    for bad in ["*", "https://app.example.org/", "app.example.org"] {
        let output = common::process::storybook()
            .args(["serve", "--port", "0"])
            .env("DATABASE_URL", "sqlite::memory:")
            .env("CORS_ALLOWED_ORIGINS", bad)
            .output()
            .expect("the storybook binary");
        assert!(!output.status.success(), "{bad} was accepted");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains("CORS_ALLOWED_ORIGINS"), "{bad}: {error}");
    }
}

/// A `/ws` handshake over a real socket with the given `Origin`: the
/// status the server answers.
#[cfg(feature = "realtime")]
async fn handshake(address: std::net::SocketAddr, token: &str, origin: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{origin}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[cfg(feature = "realtime")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_opens_only_from_a_listed_origin_or_the_servers_own() {
    let app = app_with_origins(LISTED).await;
    let token = app.register("socket_origin").await;
    let address = app.listen().await;
    assert_eq!(handshake(address, &token, None).await, 101, "not a browser");
    assert_eq!(handshake(address, &token, Some(LISTED)).await, 101);
    let own = format!("http://{address}");
    assert_eq!(handshake(address, &token, Some(&own)).await, 101);
    assert_eq!(
        handshake(address, &token, Some("https://evil.example")).await,
        403
    );
    // Refused before the token is even looked at.
    assert_eq!(
        handshake(address, "nonsense", Some("https://evil.example")).await,
        403
    );
}
