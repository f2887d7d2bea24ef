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
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{register, start_server};
use common::{TempDir, raw_http, raw_http_as};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's `/usr/bin/chromium` is a wrapper script; this is the browser.
const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// The key WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// ChromeDriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    address: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Option<Self> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI=true but chromium/chromium-driver are not installed"
            );
            eprintln!("chromium or chromedriver not installed: skipping the browser test");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let driver = Self {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(driver.address).await.is_ok() {
                let (_, status) = raw_http(driver.address, "GET", "/status", None).await;
                if serde_json::from_str::<Value>(&status).is_ok_and(|s| s["value"]["ready"] == true)
                {
                    return Some(driver);
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (method != "GET").then(|| body.to_string());
        let (status, text) = raw_http(self.address, method, path, body.as_deref()).await;
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("webdriver {method} {path}: {status} {text}"));
        assert_eq!(status, 200, "webdriver {method} {path}: {value}");
        value["value"].clone()
    }

    /// A new headless browser window.
    async fn page(&self) -> Page<'_> {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,800"],
            },
        }}});
        let session = self.call("POST", "/session", capabilities).await;
        Page {
            driver: self,
            session: session["sessionId"].as_str().expect("session").to_owned(),
        }
    }
}

/// One browser window.
struct Page<'d> {
    driver: &'d Driver,
    session: String,
}

impl Page<'_> {
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.driver.call(method, &path, body).await
    }

    async fn open(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    async fn element(&self, id: &str) -> String {
        let found = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": format!("#{id}")}),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no #{id}: {found}"))
            .to_owned()
    }

    async fn type_into(&self, id: &str, text: &str) {
        let element = self.element(id).await;
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, id: &str) {
        let element = self.element(id).await;
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Polls a script until `done` accepts what it returns.
    async fn wait_for(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.script(script).await;
            if done(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}: last saw {value}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in through the form and opens the drawing.
    async fn sign_in_and_open(&self, server: SocketAddr, username: &str, drawing: i64) {
        self.open(&format!("http://{server}/demo")).await;
        self.type_into("username", username).await;
        self.type_into("password", "password123").await;
        self.click("login").await;
        self.wait_for(
            "signed in",
            "return document.getElementById('who').textContent",
            |v| v.as_str().is_some_and(|t| t.starts_with("signed in")),
        )
        .await;
        self.type_into("drawing", &drawing.to_string()).await;
        self.click("join").await;
        let connected = format!("connected to drawing:{drawing}");
        self.wait_for(
            "connected",
            "return document.getElementById('status').textContent",
            |v| v.as_str() == Some(connected.as_str()),
        )
        .await;
    }

    /// Drags the mouse across the middle of the canvas.
    async fn draw_across_canvas(&self) {
        let canvas = self.element("canvas").await;
        let origin = json!({ELEMENT: canvas});
        let mut actions = vec![
            json!({"type": "pointerMove", "origin": origin, "x": -120, "y": 0}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        for x in (-100..=120).step_by(20) {
            actions.push(
                json!({"type": "pointerMove", "origin": origin, "x": x, "y": 0, "duration": 10}),
            );
        }
        actions.push(json!({"type": "pointerUp", "button": 0}));
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse",
                                "parameters": {"pointerType": "mouse"}, "actions": actions}]}),
        )
        .await;
    }

    async fn close(self) {
        self.call("DELETE", "", json!({})).await;
    }
}

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
    alices_page.sign_in_and_open(address, "alice", id).await;
    bobs_page.sign_in_and_open(address, "bob", id).await;
    for page in [&alices_page, &bobs_page] {
        page.wait_for("both in the presence list", PRESENCE, |v| {
            *v == json!(["alice", "bob"])
        })
        .await;
    }

    assert_eq!(
        bobs_page.script(CENTRE_PIXEL).await,
        json!([255, 255, 255]),
        "Bob's canvas starts blank"
    );
    alices_page.draw_across_canvas().await;
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
