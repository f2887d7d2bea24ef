//! The moderators' console (`/admin`, both builds): how its files are
//! served, and the whole moderation flow in a real browser (headless
//! Chromium through ChromeDriver): a user reports a story; an admin signs
//! in, finds the report, opens the story (its drawing rendered by the
//! server), resolves the report with `unpublish`; the story is a draft,
//! the reporter is told, and the audit page shows the action.
//!
//! Each console page is saved as a screenshot under
//! `target/tmp/admin-console-screenshots/` for a person to look at.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::browser::{Driver, Page};
use common::process::{register, start_server, storybook};
use common::{TempDir, TestApp, raw_http_as};
use serde_json::{Value, json};

#[tokio::test]
async fn the_console_is_served_with_strict_headers_and_validators() {
    let app = TestApp::sqlite().await;
    let get = |path: &'static str, etag: Option<String>| {
        let app = &app;
        async move {
            let mut request = Request::builder().uri(path);
            if let Some(etag) = etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            app.send(request.body(Body::empty()).unwrap()).await
        }
    };
    for (path, media_type) in [
        ("/admin", "text/html; charset=utf-8"),
        ("/admin/console.js", "text/javascript; charset=utf-8"),
        ("/admin/console.css", "text/css; charset=utf-8"),
    ] {
        let reply = get(path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let header_of = |name: header::HeaderName| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header_of(header::CONTENT_TYPE), media_type);
        let policy = header_of(header::CONTENT_SECURITY_POLICY);
        assert!(
            policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(header_of(header::X_FRAME_OPTIONS), "DENY");
        assert_eq!(header_of(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header_of(header::CACHE_CONTROL), "no-cache");
        let etag = header_of(header::ETAG);
        assert!(etag.starts_with('"') && etag.len() > 2, "{path}: {etag}");

        let again = get(path, Some(etag.clone())).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.body, Value::Null, "a 304 has no body");
        let weak = get(path, Some(format!("W/{etag}, \"other\""))).await;
        assert_eq!(
            weak.status,
            StatusCode::NOT_MODIFIED,
            "{path}: a list with it"
        );
        let stale = get(path, Some("\"0000000000000000\"".into())).await;
        assert_eq!(stale.status, StatusCode::OK, "{path}: another version");
    }

    let page = get("/admin", None).await;
    let html = page.body.as_str().expect("HTML");
    for script in html.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("src="),
            "every script is a file (the policy forbids inline ones): <script{script}"
        );
    }
    assert!(!html.contains(" style="), "no inline styles");

    let missing = get("/admin/other.js", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found", "the contract's error shape");
}

/// Makes the first admin the way an operator does: `create-admin`.
fn create_admin(database_url: &str, username: &str, password: &str) {
    let mut child = storybook()
        .args([
            "create-admin",
            "--database-url",
            database_url,
            "--username",
            username,
            "--email",
            &format!("{username}@example.com"),
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("create-admin");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn call(address: SocketAddr, method: &str, path: &str, token: &str, body: Value) -> Value {
    let body = (!body.is_null()).then(|| body.to_string());
    let (status, text) = raw_http_as(address, method, path, Some(token), body.as_deref()).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn screenshots() -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-console-screenshots");
    std::fs::create_dir_all(&folder).expect("the screenshots' folder");
    folder
}

async fn text_of(page: &Page<'_>, id: &str) -> String {
    let script =
        format!("const e = document.getElementById('{id}'); return e ? e.textContent : ''");
    page.script(&script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn sign_in(page: &Page<'_>, username: &str, password: &str) {
    page.script(
        "document.getElementById('signin-username').value = ''; \
         document.getElementById('signin-password').value = '';",
    )
    .await;
    page.type_into("signin-username", username).await;
    page.type_into("signin-password", password).await;
    page.click("signin-submit").await;
}

/// Waits until an element matches `selector`.
async fn wait_for_element(page: &Page<'_>, what: &str, selector: &str) {
    let script = format!("return document.querySelector({selector:?}) !== null");
    page.wait_for(what, &script, |v| *v == json!(true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_resolves_a_report_in_the_console() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = TempDir::new();
    let database_url = format!("sqlite://{}", dir.0.join("console.db").display());
    create_admin(&database_url, "head_teacher", "a long admin password");
    let (mut server, address) = start_server(&database_url);
    let author = register(address, "amy_author").await;
    let reporter = register(address, "rex_reporter").await;

    // A published story whose page shows a drawing.
    let drawing = call(
        address,
        "POST",
        "/api/drawings",
        &author,
        json!({"title": "The moon", "width": 400, "height": 300, "background": "#fff8e7",
               "strokes": [{"id": "s1", "tool": "pen", "color": "#1d3557", "width": 12,
                            "points": [[40, 150], [200, 60], [360, 150]]}]}),
    )
    .await;
    let story = call(
        address,
        "POST",
        "/api/stories",
        &author,
        json!({"title": "The night the moon fell", "genre": "bedtime", "age_group": "6-8",
               "status": "published",
               "pages": [{"text": "The moon rolled down the hill and into the pond.",
                          "drawing_id": drawing["id"]},
                         {"text": "Everyone went out with buckets to fish it out."}]}),
    )
    .await;
    let story_id = story["id"].as_i64().unwrap();
    let report = call(
        address,
        "POST",
        &format!("/api/stories/{story_id}/report"),
        &reporter,
        json!({"reason": "Too scary for my little brother"}),
    )
    .await;
    let report_id = report["id"].as_i64().unwrap();

    let shots = screenshots();
    let page = driver.page().await;
    page.open(&format!("http://{address}/admin")).await;

    // A child's account is told it is not an admin and kept out.
    sign_in(&page, "rex_reporter", "password123").await;
    page.wait_for(
        "refused",
        "return document.getElementById('signin-message').textContent",
        |v| v.as_str().is_some_and(|t| t.contains("not an admin")),
    )
    .await;
    assert_eq!(
        page.script("return document.getElementById('app-view').hidden")
            .await,
        json!(true)
    );
    assert_eq!(
        page.script("return sessionStorage.length").await,
        json!(0),
        "nothing of theirs is kept"
    );
    page.screenshot(&shots.join("01-sign-in-refused.png")).await;

    // The admin signs in and lands on the dashboard.
    sign_in(&page, "head_teacher", "a long admin password").await;
    wait_for_element(&page, "the dashboard", "#stats").await;
    page.wait_for(
        "the open-report count",
        "return document.getElementById('nav-open-reports').textContent",
        |v| *v == json!("1"),
    )
    .await;
    page.screenshot(&shots.join("02-dashboard.png")).await;

    // A backup downloads from the dashboard, which then says when it was
    // taken (contract v1.5: the free plan has no shell).
    assert!(
        text_of(&page, "backup-last")
            .await
            .contains("No backup has been taken yet")
    );
    page.click("backup-download").await;
    page.wait_for(
        "the backup saved",
        "return document.getElementById('flash').textContent",
        |v| {
            v.as_str()
                .is_some_and(|t| t.starts_with("Saved storybook-20"))
        },
    )
    .await;
    page.wait_for(
        "the last backup's time",
        "return (document.getElementById('backup-last') || {}).textContent || ''",
        |v| v.as_str().is_some_and(|t| t.contains("by head_teacher")),
    )
    .await;
    page.screenshot(&shots.join("02-backup.png")).await;

    // The report queue shows the report; the story opens with its drawing.
    page.click_on("nav a[data-section=reports]").await;
    wait_for_element(
        &page,
        "the report",
        &format!("tr[data-report='{report_id}']"),
    )
    .await;
    let row = page
        .script(&format!(
            "return document.querySelector(\"tr[data-report='{report_id}']\").textContent"
        ))
        .await;
    let row = row.as_str().unwrap();
    for shown in [
        "The night the moon fell",
        "amy_author",
        "Too scary for my little brother",
        "rex_reporter",
    ] {
        assert!(row.contains(shown), "the report row shows {shown}: {row}");
    }
    page.screenshot(&shots.join("03-reports.png")).await;

    page.click_on(&format!("#report-story-{report_id}")).await;
    page.wait_for(
        "the story",
        "return document.getElementById('story-title')?.textContent",
        |v| *v == json!("The night the moon fell"),
    )
    .await;
    page.wait_for(
        "the drawing, rendered by the server",
        "const img = document.querySelector('img.drawing'); return img ? img.complete && img.naturalWidth : 0",
        |v| *v == json!(400),
    )
    .await;
    page.screenshot(&shots.join("04-story.png")).await;

    // Resolve it with `unpublish`.
    page.click_on("nav a[data-section=reports]").await;
    page.click_on(&format!(
        "#report-action-{report_id} option[value=unpublish]"
    ))
    .await;
    page.click(&format!("report-resolve-{report_id}")).await;
    page.wait_for(
        "the answer on the page",
        "return document.getElementById('flash').textContent",
        |v| v.as_str().is_some_and(|t| t.contains("resolved")),
    )
    .await;
    page.wait_for(
        "the queue emptied",
        "return document.querySelector('main').textContent",
        |v| v.as_str().is_some_and(|t| t.contains("No open reports")),
    )
    .await;
    page.screenshot(&shots.join("05-report-resolved.png")).await;

    // Over the API: the story is a draft, and the reporter was told.
    let seen = call(
        address,
        "GET",
        &format!("/api/stories/{story_id}"),
        &author,
        Value::Null,
    )
    .await;
    assert_eq!(seen["status"], "draft");
    let notes = call(address, "GET", "/api/notifications", &reporter, Value::Null).await;
    let told = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "report_resolved")
        .unwrap_or_else(|| panic!("a report_resolved notification: {notes}"));
    assert_eq!(told["data"]["status"], "resolved");
    assert_eq!(told["data"]["report_id"], report_id);

    // The audit page shows the action.
    page.click_on("nav a[data-section=audit]").await;
    wait_for_element(&page, "the audit entry", "tr[data-action=report_resolved]").await;
    let entry = page
        .script("return document.querySelector('tr[data-action=report_resolved]').textContent")
        .await;
    let entry = entry.as_str().unwrap();
    assert!(
        entry.contains("head_teacher") && entry.contains(&format!("Report {report_id}")),
        "{entry}"
    );
    assert!(entry.contains("unpublish"), "{entry}");
    page.screenshot(&shots.join("06-audit.png")).await;

    // The other pages, for the screenshots (and that they load).
    page.click_on("nav a[data-section=stories]").await;
    wait_for_element(
        &page,
        "the stories",
        &format!("tr[data-story='{story_id}']"),
    )
    .await;
    page.screenshot(&shots.join("07-stories.png")).await;
    page.click_on("nav a[data-section=users]").await;
    wait_for_element(&page, "the users", "tr[data-user=amy_author]").await;
    page.screenshot(&shots.join("08-users.png")).await;
    page.click_on("tr[data-user=amy_author] a").await;
    page.wait_for(
        "amy's page",
        "return document.querySelector('main h1')?.textContent",
        |v| *v == json!("amy_author"),
    )
    .await;
    assert!(
        text_of(&page, "main")
            .await
            .contains("Reports about their stories (1)")
    );
    page.screenshot(&shots.join("09-user.png")).await;

    // A reset code for amy, shown once, works once (contract v1.5).
    page.click("user-reset-code").await;
    page.wait_for(
        "the confirmation",
        "return document.getElementById('confirm-dialog').open",
        |v| *v == json!(true),
    )
    .await;
    page.click("confirm-ok").await;
    let shown = page
        .wait_for(
            "the reset code",
            "return document.getElementById('flash').textContent",
            |v| v.as_str().is_some_and(|t| t.contains("this code: ")),
        )
        .await;
    let code = shown.as_str().unwrap().split("this code: ").nth(1).unwrap();
    let code = code.split(". ").next().unwrap().to_owned();
    page.screenshot(&shots.join("10-reset-code.png")).await;
    let reset = json!({"login": "amy_author", "code": code, "new_password": "amy's new password"});
    let (status, answer) = raw_http_as(
        address,
        "POST",
        "/api/auth/reset",
        None,
        Some(&reset.to_string()),
    )
    .await;
    assert_eq!(status, 204, "{code}: {answer}");

    // A phone's width.
    page.resize(390, 844).await;
    page.open(&format!("http://{address}/admin#/reports?status=all"))
        .await;
    wait_for_element(
        &page,
        "the queue on a phone",
        &format!("tr[data-report='{report_id}']"),
    )
    .await;
    page.screenshot(&shots.join("10-reports-phone.png")).await;

    // Signing out gives the token back.
    let token = page
        .script("return sessionStorage.getItem('storybook.console.token')")
        .await;
    let token = token.as_str().expect("a kept token").to_owned();
    page.click("signout").await;
    page.wait_for(
        "signed out",
        "return document.getElementById('signin-view').hidden",
        |v| *v == json!(false),
    )
    .await;
    let (status, _) = raw_http_as(address, "GET", "/api/me", Some(&token), None).await;
    assert_eq!(status, 401, "the console's token stopped working");

    page.close().await;
    let _ = server.kill();
    let _ = server.wait();
}
