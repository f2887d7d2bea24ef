//! A real browser for the web pages' tests: Debian's `chromium` driven
//! through `chromedriver` over WebDriver's HTTP protocol (no client crate:
//! a handful of JSON calls is all the tests need).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::raw_http;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's `/usr/bin/chromium` is a wrapper script; this is the browser.
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// The key WebDriver names element references by.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// ChromeDriver on a free port, killed when dropped.
pub struct Driver {
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
    pub async fn start() -> Option<Self> {
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

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (method != "GET").then(|| body.to_string());
        let (status, text) = raw_http(self.address, method, path, body.as_deref()).await;
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("webdriver {method} {path}: {status} {text}"));
        assert_eq!(status, 200, "webdriver {method} {path}: {value}");
        value["value"].clone()
    }

    /// A new headless browser window.
    pub async fn page(&self) -> Page<'_> {
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
pub struct Page<'d> {
    driver: &'d Driver,
    session: String,
}

impl Page<'_> {
    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.driver.call(method, &path, body).await
    }

    pub async fn open(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    pub async fn element(&self, id: &str) -> String {
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

    pub async fn type_into(&self, id: &str, text: &str) {
        let element = self.element(id).await;
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn click(&self, id: &str) {
        let element = self.element(id).await;
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .await;
    }

    pub async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Polls a script until `done` accepts what it returns.
    pub async fn wait_for(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
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

    /// The first element matching a CSS selector, when there is one.
    pub async fn find(&self, selector: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        let body = json!({"using": "css selector", "value": selector}).to_string();
        let (status, text) = raw_http(self.driver.address, "POST", &path, Some(&body)).await;
        let value: Value = serde_json::from_str(&text).ok()?;
        (status == 200).then(|| value["value"][ELEMENT].as_str().map(str::to_owned))?
    }

    /// Waits for an element matching `selector`, then clicks it.
    pub async fn click_on(&self, selector: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let element = loop {
            if let Some(element) = self.find(selector).await {
                break element;
            }
            assert!(Instant::now() < deadline, "nothing matches {selector}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Saves what the window shows as a PNG.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let shot = self.call("GET", "/screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("a base64 screenshot"))
            .expect("WebDriver sends standard base64");
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Resizes the window (a phone's width, say).
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    pub async fn close(self) {
        self.call("DELETE", "", json!({})).await;
    }
}
