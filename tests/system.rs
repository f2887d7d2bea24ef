//! Contract sections "Conventions" and "System", black-box: health,
//! features, OpenAPI, metrics, the error shape for every kind of bad
//! request, and graceful shutdown over a real socket.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TestApp, send_to};
use serde_json::json;

#[cfg(not(feature = "realtime"))]
#[tokio::test]
async fn the_lean_build_has_no_websockets() {
    let app = TestApp::sqlite().await;
    let token = app.register("lean_user").await;
    let reply = app.get(&format!("/ws?token={token}"), None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(app.get("/api/features", None).await.body["realtime"], false);
}

backend_tests!(
    health_readiness_and_features,
    openapi_documents_the_contract_routes,
    metrics_report_requests_and_memory,
    metrics_token_guards_metrics,
    every_rejection_has_the_error_shape,
    profanity_check_reports_offsets,
);

async fn health_readiness_and_features(app: TestApp) {
    let health = app.get("/healthz", None).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    let features = app.get("/api/features", None).await;
    assert_eq!(features.status, StatusCode::OK);
    let expected_database = if app.database_url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(features.body["database"], expected_database);
    assert_eq!(features.body["realtime"], cfg!(feature = "realtime"));
    assert_eq!(features.body["generator"], "builtin");
    assert!(features.body["version"].is_string());
    if cfg!(feature = "realtime") {
        assert_eq!(features.body["broker"], "memory");
    } else {
        assert!(features.body["broker"].is_null());
    }

    // A database that stops answering makes the server unready, not dead.
    app.state.store.close().await;
    let unready = app.get("/readyz", None).await;
    assert_eq!(unready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(unready.body["error"]["code"].is_string());
    let still_alive = app.get("/healthz", None).await;
    assert_eq!(still_alive.status, StatusCode::OK);
}

async fn openapi_documents_the_contract_routes(app: TestApp) {
    let reply = app.get("/api/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = &reply.body["paths"];
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/api/features", "get"),
        ("/metrics", "get"),
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/logout-all", "post"),
        ("/api/me/password", "post"),
        ("/api/me", "get"),
        ("/api/me", "patch"),
        ("/api/me/settings", "get"),
        ("/api/me/settings", "patch"),
        ("/api/users/{username}", "get"),
        ("/api/profanity/check", "post"),
        ("/api/stories", "get"),
        ("/api/stories", "post"),
        ("/api/stories/{id}", "get"),
        ("/api/stories/{id}", "patch"),
        ("/api/stories/{id}", "delete"),
        ("/api/stories/{id}/like", "post"),
        ("/api/stories/{id}/like", "delete"),
        ("/api/stories/{id}/progress", "put"),
        ("/api/stories/{id}/report", "post"),
        ("/api/me/stories", "get"),
        ("/api/me/reading", "get"),
        ("/api/notifications", "get"),
        ("/api/notifications/{id}/read", "post"),
        ("/api/notifications/read-all", "post"),
        ("/api/admin/users", "get"),
        ("/api/admin/users/{id}", "patch"),
        ("/api/admin/reports", "get"),
        ("/api/admin/reports/{id}", "patch"),
        ("/api/admin/stats", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    // Every documented operation is really routed (never the 404 fallback).
    for (path, operations) in paths.as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path.replace("{username}", "someone").replace("{id}", "1");
            let request = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let reply = app.send(request).await;
            let unrouted = reply.status == StatusCode::NOT_FOUND
                && reply.body["error"]["message"] == "no such route";
            assert!(
                !unrouted && reply.status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    // Every schema reference resolves.
    let text = reply.body.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            reply.body["components"]["schemas"][name].is_object(),
            "schema {name} is defined"
        );
    }
    let register = &paths["/api/auth/register"]["post"];
    assert!(register["responses"]["201"].is_object());
    assert!(register["responses"]["409"].is_object());
    assert!(register["requestBody"].is_object());
    assert!(paths["/api/me"]["get"]["security"].is_array());
    assert!(paths["/api/openapi.json"]["get"].is_object());

    // Query parameters carry their types, ranges and enums.
    let query_schema = |path: &str, name: &str| {
        paths[path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name && p["in"] == "query")
            .unwrap_or_else(|| panic!("{path} documents ?{name}"))["schema"]
            .clone()
    };
    let page_size = query_schema("/api/stories", "page_size");
    assert_eq!(
        (
            &page_size["type"],
            &page_size["minimum"],
            &page_size["maximum"]
        ),
        (&json!("integer"), &json!(1), &json!(100))
    );
    let width = query_schema("/api/drawings/{id}/image.png", "width");
    assert_eq!(
        (&width["minimum"], &width["maximum"]),
        (&json!(16), &json!(1024))
    );
    assert_eq!(
        query_schema("/api/stories", "sort")["enum"],
        json!(["newest", "popular", "title", "relevance"])
    );
    assert_eq!(
        query_schema("/api/notifications", "unread")["type"],
        "boolean"
    );
    assert_eq!(
        query_schema("/api/admin/reports", "status")["enum"],
        json!(["open", "resolved", "dismissed"])
    );
    let kind = paths["/api/stories/{id}/games/{kind}"]["get"]["parameters"][1].clone();
    assert_eq!(
        kind["schema"]["enum"],
        json!(["quiz", "scramble", "fill_blank", "order"])
    );

    // Bodies: the photo upload is multipart; a PNG and the metrics are not JSON.
    let photo = &paths["/api/stories/from-photo"]["post"]["requestBody"]["content"];
    assert!(photo["multipart/form-data"]["schema"]["$ref"].is_string());
    let image = &paths["/api/drawings/{id}/image.png"]["get"]["responses"];
    assert!(image["200"]["content"]["image/png"].is_object());
    assert!(image["304"].get("content").is_none(), "304 has no body");
    assert!(image["200"]["headers"]["ETag"].is_object());
    assert!(paths["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"].is_object());
    let login_429 = &paths["/api/auth/login"]["post"]["responses"]["429"];
    assert!(login_429["headers"]["Retry-After"].is_object());
    let schemas = &reply.body["components"]["schemas"];
    assert_eq!(
        schemas["Register"]["properties"]["email"]["format"],
        "email"
    );
    assert!(schemas["Settings"]["properties"]["language"]["pattern"].is_string());
    assert_eq!(
        schemas["StoryInput"]["required"],
        json!(["title", "pages", "genre", "age_group"])
    );
    assert!(schemas["StoryUpdate"].get("required").is_none());

    // One request and one response example for every operation with bodies.
    for (path, operations) in paths.as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            if let Some(content) = operation["requestBody"]["content"].as_object() {
                assert!(
                    content.values().all(|media| media["example"].is_object()),
                    "{method} {path} has a request example"
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                let Some(json_body) = response["content"].get("application/json") else {
                    continue;
                };
                if status.starts_with('2') && json_body["schema"]["$ref"].is_string() {
                    assert!(
                        json_body["example"].is_object(),
                        "{method} {path} {status} example"
                    );
                }
            }
        }
    }
}

async fn metrics_report_requests_and_memory(app: TestApp) {
    app.get("/healthz", None).await;
    app.get("/api/users/nobody", None).await;
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = reply.body.as_str().expect("text body");
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/users/{username}",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1")
    );
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("rss line");
    assert!(rss > 1_000_000, "rss {rss}");
    assert!(text.contains("db_pool_connections "));
    assert!(text.contains("db_pool_idle_connections "));
}

async fn metrics_token_guards_metrics(app: TestApp) {
    let user_token = app.register("metrics_user").await;
    let guarded = app.with_metrics_token("s3cret-metrics");
    let get = |token: Option<&str>| {
        let mut request = Request::get("/metrics");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        send_to(&guarded, request.body(Body::empty()).unwrap())
    };
    assert_eq!(get(None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(Some(&user_token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let allowed = get(Some("s3cret-metrics")).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(get(Some("wrong")).await.code(), "unauthorized");
}

async fn every_rejection_has_the_error_shape(app: TestApp) {
    let unknown = app.get("/api/no/such/thing", None).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let outside = app.get("/nothing-here", None).await;
    assert_eq!(
        (outside.status, outside.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let method = app.delete("/api/features", None).await;
    assert_eq!(
        (method.status, method.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    let with_type = |content_type: &str, body: &str| {
        Request::post("/api/auth/login")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let malformed = app
        .send(with_type("application/json", "{\"username\": "))
        .await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let plain = app.send(with_type("text/plain", "hello")).await;
    assert_eq!(
        (plain.status, plain.code()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let no_type = app
        .send(
            Request::post("/api/auth/login")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(no_type.status, StatusCode::BAD_REQUEST);
    let xml = app.send(with_type("application/xml", "<login/>")).await;
    assert_eq!(
        (xml.status, xml.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let form = app
        .send(with_type("application/x-www-form-urlencoded", "username=a"))
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let wrong_types = app
        .send(with_type(
            "application/json",
            r#"{"username": 5, "password": ["x"]}"#,
        ))
        .await;
    assert_eq!(
        (wrong_types.status, wrong_types.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation")
    );
    assert_eq!(wrong_types.fields(), ["password", "username"]);
    let huge = format!(
        r#"{{"username": "{}", "password": "x"}}"#,
        "a".repeat(1024 * 1024 + 10)
    );
    let too_large = app.send(with_type("application/json", &huge)).await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let not_utf8 = app
        .send(
            Request::post("/api/auth/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(vec![0xff, 0xfe, 0x00]))
                .unwrap(),
        )
        .await;
    assert_eq!(not_utf8.status, StatusCode::BAD_REQUEST);
    // Routes with two path parameters name the bad one, like those with one.
    let token = app.register("paths").await;
    for (delete, path, parameter) in [
        (false, "/api/stories/abc/games/quiz/leaderboard", "id"),
        (false, "/api/stories/9223372036854775808/games/quiz", "id"),
        (true, "/api/drawings/abc/collaborators/someone", "id"),
        (true, "/api/drawings/1.5/strokes/s1", "id"),
    ] {
        let reply = if delete {
            app.delete(path, Some(&token)).await
        } else {
            app.get(path, None).await
        };
        assert_eq!(
            (reply.status, reply.code(), reply.fields()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                vec![parameter.to_owned()]
            ),
            "{path}"
        );
    }
    // 10,000 bad strokes in a 30 KB body: 50 fields named, the body small.
    let strokes = vec![json!({}); 10_000];
    let many_bad = app
        .post(
            "/api/drawings",
            Some(&token),
            json!({"title": "t", "width": 100, "height": 100, "strokes": strokes}),
        )
        .await;
    assert_eq!(many_bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(many_bad.fields().len(), 50);
    assert!(many_bad.body.to_string().len() <= 16 * 1024);
    assert!(
        many_bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more not listed")
    );
    for reply in [&unknown, &method, &malformed, &xml, &too_large] {
        assert!(reply.body["error"]["message"].is_string());
    }
}

async fn profanity_check_reports_offsets(app: TestApp) {
    let reply = app
        .post(
            "/api/profanity/check",
            None,
            json!({"text": "Ça f.u.c.k and a classic sh1t"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["clean"], false);
    assert_eq!(reply.body["censored"], "Ça ******* and a classic ****");
    assert_eq!(
        reply.body["matches"],
        json!([{"start": 3, "end": 10, "word": "fuck"}, {"start": 25, "end": 29, "word": "shit"}])
    );
    let clean = app
        .post(
            "/api/profanity/check",
            None,
            json!({"text": "Scunthorpe therapist"}),
        )
        .await;
    assert_eq!(
        clean.body,
        json!({"clean": true, "censored": "Scunthorpe therapist", "matches": []})
    );
    let long = app
        .post(
            "/api/profanity/check",
            None,
            json!({"text": "é".repeat(10_001)}),
        )
        .await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long.fields(), ["text"]);
    let exact = app
        .post(
            "/api/profanity/check",
            None,
            json!({"text": "é".repeat(10_000)}),
        )
        .await;
    assert_eq!(exact.status, StatusCode::OK);
    let missing = app.post("/api/profanity/check", None, json!({})).await;
    assert_eq!(missing.fields(), ["text"]);
}

/// Contract v1.3: when the in-flight request memory is reserved, a large
/// body is `503 busy` at once (with Retry-After) instead of being read;
/// small requests go on, and the budget comes back when requests end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_wait_for_memory_or_are_busy() {
    let app = TestApp::sqlite_with(storybook::config::Limits {
        request_memory_budget: 8 * 1024 * 1024,
        ..Default::default()
    })
    .await;
    // 400 KB of text: weighed at about 7.3 MB (its bytes twice, and up to
    // 16 times in the tree and its copies).
    let big_text = "a ".repeat(200_000);
    let held = app.state.memory.reserve(6 * 1024 * 1024).unwrap();
    let busy = app
        .post("/api/profanity/check", None, json!({ "text": big_text }))
        .await;
    assert_eq!(
        (busy.status, busy.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    assert_eq!(busy.headers["retry-after"], "1");
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    // Strokes are read as drafts, not trees: the same size of body fits.
    let token = app.register("drafter").await;
    let points = vec![json!([1, 1]); 1500];
    let strokes: Vec<_> = (0..12)
        .map(|n| json!({"id": format!("s{n}"), "tool": "pen", "color": "#000000", "width": 1, "points": points}))
        .collect();
    let drawn = app
        .post(
            "/api/drawings",
            Some(&token),
            json!({"title": "dots", "width": 16, "height": 16, "strokes": strokes}),
        )
        .await;
    assert_eq!(drawn.status, StatusCode::CREATED, "{}", drawn.body);
    drop(held);
    let admitted = app
        .post("/api/profanity/check", None, json!({ "text": big_text }))
        .await;
    // Admitted and read (then refused for its length, as the contract says).
    assert_eq!(admitted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.state.memory.in_use_bytes(),
        0,
        "every reservation given back"
    );
}

/// The document is kept compressed: a client that accepts `deflate` gets
/// those bytes, and they inflate to what everyone else is sent.
#[tokio::test]
async fn the_openapi_document_is_sent_deflated_to_who_accepts_it() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let app = TestApp::sqlite().await;
    let fetch = |encoding: Option<&'static str>| {
        let mut request = Request::get("/api/openapi.json");
        if let Some(encoding) = encoding {
            request = request.header(header::ACCEPT_ENCODING, encoding);
        }
        app.router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
    };
    let plain = fetch(None).await.unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain = plain.into_body().collect().await.unwrap().to_bytes();
    let deflated = fetch(Some("gzip, deflate")).await.unwrap();
    assert_eq!(deflated.headers()[header::CONTENT_ENCODING], "deflate");
    let deflated = deflated.into_body().collect().await.unwrap().to_bytes();
    assert!(deflated.len() * 5 < plain.len(), "compressed");
    let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(&deflated).unwrap();
    assert_eq!(inflated, plain.to_vec());
    let document: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(document["openapi"].as_str().map(|v| &v[..2]), Some("3."));
}
