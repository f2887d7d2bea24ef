//! The demo page in a real browser (realtime build): two headless Chromium
//! pages, driven through ChromeDriver, signed in as two users on one
//! drawing. A stroke drawn with the mouse in one page appears on the other
//! page's canvas, and both presence lists show both users.
//!
//! Needs Debian's `chromium` and `chromium-driver` (CI installs them);
//! outside CI the test is skipped when ChromeDriver is missing.
#![cfg(feature = "realtime")]

mod common;

use std::net::SocketAddr;

use common::browser::{Driver, ELEMENT, Page};
use common::process::{register, start_server};
use common::{TempDir, raw_http_as};
use serde_json::{Value, json};

/// Signs in through the form and opens the drawing.
async fn sign_in_and_open(page: &Page<'_>, server: SocketAddr, username: &str, drawing: i64) {
    page.open(&format!("http://{server}/demo")).await;
    page.type_into("username", username).await;
    page.type_into("password", "password123").await;
    page.click("login").await;
    page.wait_for(
        "signed in",
        "return document.getElementById('who').textContent",
        |v| v.as_str().is_some_and(|t| t.starts_with("signed in")),
    )
    .await;
    page.type_into("drawing", &drawing.to_string()).await;
    page.click("join").await;
    let connected = format!("connected to drawing:{drawing}");
    page.wait_for(
        "connected",
        "return document.getElementById('status').textContent",
        |v| v.as_str() == Some(connected.as_str()),
    )
    .await;
}

/// Drags the mouse across the middle of the canvas.
async fn draw_across_canvas(page: &Page<'_>) {
    let canvas = page.element("canvas").await;
    let origin = json!({ELEMENT: canvas});
    let mut actions = vec![
        json!({"type": "pointerMove", "origin": origin, "x": -120, "y": 0}),
        json!({"type": "pointerDown", "button": 0}),
    ];
    for x in (-100..=120).step_by(20) {
        actions
            .push(json!({"type": "pointerMove", "origin": origin, "x": x, "y": 0, "duration": 10}));
    }
    actions.push(json!({"type": "pointerUp", "button": 0}));
    page.call(
        "POST",
        "/actions",
        json!({"actions": [{"type": "pointer", "id": "mouse",
                            "parameters": {"pointerType": "mouse"}, "actions": actions}]}),
    )
    .await;
}

const PRESENT: &str = "return document.getElementById('present').textContent";
const PRESENCE: &str =
    "return [...document.querySelectorAll('#presence li')].map(li => li.dataset.username).sort()";
/// The colour of the canvas pixel at its centre, as `[r, g, b]`.
const CENTRE_PIXEL: &str = "const c = document.getElementById('canvas'); \
     const d = c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data; \
     return [d[0], d[1], d[2]]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_draw_together_on_the_demo_page() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = TempDir::new();
    let (mut server, address) =
        start_server(&format!("sqlite://{}", dir.0.join("demo.db").display()));
    let alice = register(address, "alice").await;
    register(address, "bob").await;
    let drawing = json!({"title": "Together", "width": 600, "height": 400});
    let (status, body) = raw_http_as(
        address,
        "POST",
        "/api/drawings",
        Some(&alice),
        Some(&drawing.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, body) = raw_http_as(
        address,
        "POST",
        &format!("/api/drawings/{id}/collaborators"),
        Some(&alice),
        Some(r#"{"username":"bob"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let alices_page = driver.page().await;
    let bobs_page = driver.page().await;
    sign_in_and_open(&alices_page, address, "alice", id).await;
    sign_in_and_open(&bobs_page, address, "bob", id).await;
    for page in [&alices_page, &bobs_page] {
        page.wait_for("both in the presence list", PRESENCE, |v| {
            *v == json!(["alice", "bob"])
        })
        .await;
        // From batched `presence` frames (v1.6), with their count.
        page.wait_for("the count of who is here", PRESENT, |v| {
            *v == json!("2 here")
        })
        .await;
    }

    assert_eq!(
        bobs_page.script(CENTRE_PIXEL).await,
        json!([255, 255, 255]),
        "Bob's canvas starts blank"
    );
    draw_across_canvas(&alices_page).await;
    // The demo's default pen colour is #e63946.
    bobs_page
        .wait_for("Alice's stroke on Bob's canvas", CENTRE_PIXEL, |v| {
            *v == json!([230, 57, 70])
        })
        .await;
    let (_, body) = raw_http_as(
        address,
        "GET",
        &format!("/api/drawings/{id}"),
        Some(&alice),
        None,
    )
    .await;
    let saved = serde_json::from_str::<Value>(&body).unwrap();
    assert_eq!(
        saved["strokes"].as_array().map(Vec::len),
        Some(1),
        "{saved}"
    );

    alices_page.close().await;
    bobs_page.close().await;
    let _ = server.kill();
    let _ = server.wait();
}
