//! The `storybook` binary itself: start-up, `migrate`, `create-admin`, the
//! start-up error for an unknown database, and a SIGTERM that loses no
//! acknowledged write.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{start_server, storybook};
use common::{TempDir, raw_http};
use storybook_store::{PoolSettings, Store};

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM, checks the server exits cleanly, and opens its database
/// again to see what it left.
async fn stop_with_sigterm(child: &mut std::process::Child, url: &str) -> Store {
    sigterm(child);
    let exit = wait_exit(child);
    assert!(exit.success(), "exit status {exit}");
    Store::connect(url, &PoolSettings::default())
        .await
        .expect("reopen")
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_keeps_acknowledged_writes() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("server.db").display());
    let (mut child, address) = start_server(&url);

    let (status, body) = raw_http(address, "GET", "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    for i in 0..20 {
        let body = format!(
            r#"{{"username":"kid{i}","email":"kid{i}@example.com","password":"password123"}}"#
        );
        let (status, reply) = raw_http(address, "POST", "/api/auth/register", Some(&body)).await;
        assert_eq!(status, 201, "{reply}");
    }
    let store = stop_with_sigterm(&mut child, &url).await;
    assert_eq!(
        store.count_users().await.unwrap(),
        20,
        "every acknowledged registration survived"
    );
    store.close().await;
}

/// Reads are counted in memory and written in batches (#24): the ones
/// acknowledged before a SIGTERM are written as the server stops. The
/// batches are set an hour apart here, so every read is still pending
/// when the signal comes.
#[tokio::test]
async fn sigterm_writes_the_reads_not_yet_written() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("reads.db").display());
    let (mut child, address) =
        common::process::start_server_with(&url, &[], &[("READS_WRITE_MS", "3600000")]);
    let author = common::process::register(address, "author").await;
    let story = r#"{"title": "Read me", "pages": [{"text": "x"}], "genre": "funny", "age_group": "3-5", "status": "published"}"#;
    let (status, body) =
        common::raw_http_as(address, "POST", "/api/stories", Some(&author), Some(story)).await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();
    for n in 1..=10 {
        let reader = common::process::register(address, &format!("reader{n}")).await;
        let path = format!("/api/stories/{id}");
        let (status, body) = common::raw_http_as(address, "GET", &path, Some(&reader), None).await;
        assert_eq!(status, 200);
        let shown = serde_json::from_str::<serde_json::Value>(&body).unwrap()["reads"].clone();
        assert_eq!(shown, n, "a pending read shows at once");
    }
    let store = stop_with_sigterm(&mut child, &url).await;
    assert_eq!(
        store.story(id).await.unwrap().reads,
        10,
        "every acknowledged read was written"
    );
    store.close().await;
}

#[tokio::test]
async fn postgres_url_serves_the_same_binary() {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must set TEST_DATABASE_URL"
        );
        eprintln!("TEST_DATABASE_URL not set: skipping");
        return;
    };
    let schema = common::unique_name("bin");
    let admin = Store::connect_without_migrating(&base, &PoolSettings::default())
        .await
        .unwrap();
    admin
        .execute_raw(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    admin.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let (mut child, address) = start_server(&url);
    let (status, body) = raw_http(address, "GET", "/api/features", None).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""database":"postgres""#), "{body}");
    let (status, _) = raw_http(
        address,
        "POST",
        "/api/auth/register",
        Some(r#"{"username":"pg_kid","email":"pg@example.com","password":"password123"}"#),
    )
    .await;
    assert_eq!(status, 201);
    sigterm(&child);
    assert!(wait_exit(&mut child).success());
}

#[test]
fn unknown_database_scheme_is_a_clear_startup_error() {
    let output = storybook()
        .args(["serve", "--port", "0"])
        .env("DATABASE_URL", "mysql://localhost/db")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mysql") && stderr.contains("sqlite:") && stderr.contains("postgres:"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_and_create_admin() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("admin.db").display());
    let migrate = storybook()
        .args(["migrate", "--database-url", &url])
        .output()
        .expect("migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("migration(s) applied"));

    let create = |password: &str| {
        let mut child = storybook()
            .args([
                "create-admin",
                "--database-url",
                &url,
                "--username",
                "Root_Admin",
                "--email",
                "root@example.com",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("create-admin");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let short = create("short\n");
    assert!(!short.status.success(), "a short password is refused");
    let made = create("a long admin password\n");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let again = create("a long admin password\n");
    assert!(!again.status.success(), "the same admin twice is refused");

    let no_stdin_flag = storybook()
        .args([
            "create-admin",
            "--database-url",
            &url,
            "--username",
            "x_admin",
            "--email",
            "x@example.com",
        ])
        .output()
        .unwrap();
    assert!(
        !no_stdin_flag.status.success(),
        "the password only comes from stdin"
    );

    let store = Store::connect(&url, &PoolSettings::default())
        .await
        .unwrap();
    let admin = store
        .user_by_username("root_admin")
        .await
        .expect("admin exists");
    assert!(admin.is_admin());
    store.close().await;
}

#[tokio::test]
async fn seed_fills_a_varied_library() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("seed.db").display());
    let seeded = storybook()
        .args([
            "seed",
            "--database-url",
            &url,
            "--stories",
            "60",
            "--users",
            "4",
        ])
        .output()
        .expect("seed");
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let store = Store::connect(&url, &PoolSettings::default())
        .await
        .unwrap();
    assert_eq!(store.totals().await.unwrap().stories, 60);
    assert_eq!(store.count_users().await.unwrap(), 4);
    let library = store
        .list_stories(
            &storybook_store::StoryFilter {
                published_only: true,
                ..Default::default()
            },
            storybook_store::PageRequest {
                page: 1,
                page_size: 100,
            },
        )
        .await
        .unwrap();
    assert!(library.total >= 40, "most seeded stories are published");
    let genres: std::collections::HashSet<&str> =
        library.items.iter().map(|s| s.genre.as_str()).collect();
    let titles: std::collections::HashSet<&str> =
        library.items.iter().map(|s| s.title.as_str()).collect();
    assert!(genres.len() >= 5, "varied genres: {genres:?}");
    assert!(titles.len() >= library.items.len() * 3 / 4, "varied titles");
    assert!(
        library.items.iter().any(|s| s.likes > 0),
        "some stories have likes"
    );
    store.close().await;
}

/// The served binary sweeps idle channels: after everyone leaves and the
/// history expires, the channel map is empty again (realtime build).
#[cfg(feature = "realtime")]
#[tokio::test]
async fn the_served_binary_frees_idle_channels() {
    use common::process::start_server_with;
    use futures_util::SinkExt;
    use serde_json::Value;
    use tokio_tungstenite::tungstenite::Message;

    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("sweep.db").display());
    let (mut child, address) = start_server_with(&url, &["--ws-history-secs", "1"], &[]);
    let token = common::process::register(address, "sweeper").await;
    let story = r#"{"title":"Swept","pages":[{"text":"x"}],"genre":"funny","age_group":"3-5","status":"published"}"#;
    let (status, body) =
        common::raw_http_as(address, "POST", "/api/stories", Some(&token), Some(story)).await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/ws?token={token}"))
            .await
            .expect("connect");
    for frame in [
        format!(r#"{{"op":"subscribe","channel":"story:{id}"}}"#),
        format!(
            r#"{{"op":"publish","channel":"story:{id}","data":{{"type":"chat","text":"hello"}}}}"#
        ),
    ] {
        socket.send(Message::Text(frame.into())).await.unwrap();
    }
    let channels = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("ws_channels "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, metrics) = raw_http(address, "GET", "/metrics", None).await;
    assert_eq!(channels(&metrics), Some(1), "{metrics}");
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, metrics) = raw_http(address, "GET", "/metrics", None).await;
    assert_eq!(
        channels(&metrics),
        Some(1),
        "kept while its history is fresh: {metrics}"
    );
    // History lives 1 s here; the sweep runs every 5 s.
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, metrics) = raw_http(address, "GET", "/metrics", None).await;
        if channels(&metrics) == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the channel was never freed: {metrics}"
        );
    }
    sigterm(&child);
    assert!(wait_exit(&mut child).success());
}
