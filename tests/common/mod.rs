//! Test harness: the real router on a real database (a fresh SQLite file,
//! and a fresh PostgreSQL schema when `TEST_DATABASE_URL` is set), driven
//! through `tower::ServiceExt::oneshot` or a real socket.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use storybook::config::{Limits, Secret};
use storybook::{AppState, app};
use storybook_store::{PoolSettings, Store};
use tower::ServiceExt;

pub mod browser;
pub mod process;
#[cfg(feature = "realtime")]
pub mod ws;

/// Runs each named `async fn name(app: TestApp)` on SQLite and, when
/// `TEST_DATABASE_URL` is set, on PostgreSQL. In CI (`CI=true`) a missing
/// `TEST_DATABASE_URL` fails the PostgreSQL half instead of skipping it.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::common::TestApp::postgres().await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// The Redis the Redis-broker tests use (`TEST_REDIS_URL`); `None` when
/// it is unset outside CI. In CI (`CI=true`) a missing one fails the test.
pub fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but TEST_REDIS_URL is not set: Redis tests must run in CI")
        }
        _ => {
            eprintln!("TEST_REDIS_URL not set: skipping the Redis half");
            None
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (in this or a parallel process) uses.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// A temporary directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(unique_name("storybook_test"));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One server under test: its router, state and database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub database_url: String,
    _dir: Option<TempDir>,
}

/// An answer: status, headers and the body as JSON (`Null` when empty,
/// a JSON string when the body is not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    /// The names in `error.fields`, sorted.
    pub fn fields(&self) -> Vec<String> {
        let mut names: Vec<String> = self.body["error"]["fields"]
            .as_object()
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::sqlite_with(Limits::default()).await
    }

    pub async fn sqlite_with(limits: Limits) -> Self {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("test.db").display());
        Self::start(url, Some(dir), limits).await
    }

    /// `None` when `TEST_DATABASE_URL` is unset outside CI.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_with(Limits::default()).await
    }

    pub async fn postgres_with(limits: Limits) -> Option<Self> {
        Self::postgres_with_pool(limits, PoolSettings::default()).await
    }

    /// PostgreSQL with pool settings of the test's (a pool of one).
    pub async fn postgres_with_pool(limits: Limits, pool: PoolSettings) -> Option<Self> {
        let url = fresh_postgres_url().await?;
        Some(Self::start_with_pool(url, None, limits, pool).await)
    }

    /// An app on a database the test set up (migrated if it is not yet).
    pub async fn on(url: &str) -> Self {
        Self::start(url.to_owned(), None, Limits::default()).await
    }

    /// Either backend by URL: `TestApp::on(&url)` is how shared helpers get
    /// a second app on the same database.
    async fn start(url: String, dir: Option<TempDir>, limits: Limits) -> Self {
        Self::start_with_pool(url, dir, limits, PoolSettings::default()).await
    }

    async fn start_with_pool(
        url: String,
        dir: Option<TempDir>,
        limits: Limits,
        pool: PoolSettings,
    ) -> Self {
        let store = Store::connect(&url, &pool)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let mut state = AppState::new(store, limits, None);
        state.tools.ocr = std::sync::Arc::new(storybook_ocr::Ocr::new(ocr_settings()));
        Self {
            router: app(state.clone()),
            state,
            database_url: url,
            _dir: dir,
        }
    }

    /// Serves this app on a real socket (a free port on 127.0.0.1) until
    /// the test ends; returns its address.
    /// Writes the reads counted in memory (the server does it every
    /// second; tests without its background tasks do it here).
    pub async fn write_pending_reads(&self) {
        let caches = &self.state.caches;
        caches
            .read_counter
            .flush(&self.state.store, &caches.reads)
            .await
            .expect("pending reads written");
    }

    pub async fn listen(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(storybook::serve(
            listener,
            app(self.state.clone()),
            std::future::pending(),
            std::time::Duration::from_secs(1),
        ));
        address
    }

    /// Changes the state (a generator, text recognition) and rebuilds the router.
    pub fn reconfigure(&mut self, change: impl FnOnce(&mut AppState)) {
        change(&mut self.state);
        self.router = app(self.state.clone());
    }

    /// The same database with a different configuration.
    pub fn with_metrics_token(&self, token: &str) -> Router {
        let mut state = self.state.clone();
        state.metrics_token = Some(std::sync::Arc::new(Secret(token.to_owned())));
        app(state)
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        send_to(&self.router, request).await
    }

    /// A JSON request (`body` `None`: no body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, token, None).await
    }

    /// The status of a sign-in with `username` (or email) and `password`.
    pub async fn login_status(&self, username: &str, password: &str) -> StatusCode {
        self.post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
        .await
        .status
    }

    /// Registers `username` (password `password123`) and returns its token.
    pub async fn register(&self, username: &str) -> String {
        let reply = self
            .post(
                "/api/auth/register",
                None,
                json!({ "username": username, "email": format!("{username}@example.com"), "password": "password123" }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register {username}: {}",
            reply.body
        );
        reply.body["token"].as_str().expect("token").to_owned()
    }

    /// Registers a user and makes them an admin directly in the store.
    pub async fn register_admin(&self, username: &str) -> String {
        let token = self.register(username).await;
        let user = self
            .state
            .store
            .user_by_username(username)
            .await
            .expect("user");
        self.state
            .store
            .set_role_and_active(user.id, Some(storybook_store::Role::Admin), None, None)
            .await
            .expect("promote");
        token
    }
}

pub async fn send_to(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Creates a schema of its own for one test, so runs never collide. The
/// schemas are left behind (CI's database is thrown away after the run).
/// The URL of a new, empty PostgreSQL schema (nothing migrated); `None`
/// when `TEST_DATABASE_URL` is unset outside CI.
pub async fn fresh_postgres_url() -> Option<String> {
    let base = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!("TEST_DATABASE_URL not set: skipping the PostgreSQL half");
            return None;
        }
    };
    let schema = fresh_schema(&base).await;
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options[search_path]={schema}"))
}

async fn fresh_schema(base: &str) -> String {
    let admin = Store::connect_without_migrating(
        base,
        &PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("connect {base}: {e}"));
    let schema = unique_name("t");
    admin
        .execute_raw(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    admin.close().await;
    schema
}

/// Sends one HTTP/1.1 request over a real socket; returns status and body.
pub async fn raw_http(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    raw_http_as(address, method, path, None, body).await
}

/// [`raw_http`] with a bearer token.
pub async fn raw_http_as(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    // Read to the end of the body: by Content-Length when there is one
    // (some peers, ChromeDriver among them, keep the connection open
    // despite `Connection: close`), else to the end of the stream.
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let read = stream.read(&mut chunk).await.expect("read");
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|length| response.len() >= end + 4 + length) {
                break;
            }
            if head.contains("transfer-encoding: chunked") && response.ends_with(b"0\r\n\r\n") {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The server's text recognition settings, with the photo preparation run
/// by the built `storybook` binary: in a test, the running executable is
/// the test itself, not the server.
pub fn ocr_settings() -> storybook_ocr::OcrSettings {
    storybook_ocr::OcrSettings {
        prepare_command: vec![
            env!("CARGO_BIN_EXE_storybook").into(),
            "photo-prepare".into(),
        ],
        ..storybook::config::ToolArgs::default().ocr_settings()
    }
}

/// Waits, up to 5 s, until some PostgreSQL session waits for a lock (the
/// request a test holds a lock against has reached it); false if none did.
pub async fn until_a_lock_is_awaited(database: &sqlx::AnyPool) -> bool {
    for _ in 0..500 {
        let (blocked,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(database)
            .await
            .expect("pg_locks");
        if blocked > 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}
