//! Two `storybook` processes sharing one real Redis (realtime build): a
//! message published on one reaches a subscriber on the other with the
//! same offset, presence shows users from both, a Redis restart crashes
//! neither, and a crashed process's users leave.
//!
//! The test runs its own `redis-server` (the one CI installs) on a free
//! port, because it restarts it: the shared one at `TEST_REDIS_URL` is
//! in use by other tests. It runs when Redis tests are enabled
//! (`TEST_REDIS_URL` set; CI fails without it).
#![cfg(feature = "realtime")]

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::start_server_with;
use common::ws::{Socket, closed_with, connect, next, next_op, send, subscribe, unsubscribed};
use common::{TempDir, raw_http, raw_http_as};
use serde_json::{Value, json};

/// A private `redis-server`, killed when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (CI installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn start(database_url: &str, redis_url: &str, prefix: &str) -> Self {
        let (child, address) = start_server_with(
            database_url,
            &[],
            &[
                ("REDIS_URL", redis_url),
                ("REDIS_PREFIX", prefix),
                // Renewed every second: a crashed process's users leave fast.
                ("REDIS_PRESENCE_TTL_SECS", "3"),
                ("REDIS_TIMEOUT_MS", "500"),
            ],
        );
        Self { child, address }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn register(server: &Server, name: &str) -> String {
    common::process::register(server.address, name).await
}

/// A published story of `token`'s, made through `server`.
async fn published_story(server: &Server, token: &str) -> i64 {
    let story = json!({"title": "Shared", "pages": [{"text": "x"}], "genre": "funny", "age_group": "3-5", "status": "published"});
    let (status, body) = raw_http_as(
        server.address,
        "POST",
        "/api/stories",
        Some(token),
        Some(&story.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn status_of(server: &Server, path: &str) -> u16 {
    raw_http(server.address, "GET", path, None).await.0
}

/// Waits until `/readyz` answers `want` (Redis noticed gone, or back).
async fn wait_ready(server: &Server, want: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if status_of(server, "/readyz").await == want {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz never answered {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn chat(socket: &mut Socket, channel: &str, text: &str) {
    let publish =
        json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": text}});
    send(socket, publish).await;
}

/// The message frame whose chat text is `text`, if it comes within `within`.
async fn message_within(socket: &mut Socket, text: &str, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match next(socket).await {
            Some(frame) if frame["op"] == "message" && frame["data"]["text"] == text => {
                return Some(frame);
            }
            Some(_) => continue,
            None => return None,
        }
    }
    None
}

/// The next message frame whose chat text is `text`.
async fn message_with_text(socket: &mut Socket, text: &str) -> Value {
    loop {
        let message = next_op(socket, "message").await;
        if message["data"]["text"] == text {
            return message;
        }
    }
}

/// Waits for a `presence` frame listing `username` in `list` (`joins` or
/// `leaves`).
async fn presence_change(socket: &mut Socket, list: &str, username: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(frame) = next(socket).await
            && frame["op"] == "presence"
            && frame[list]
                .as_array()
                .is_some_and(|users| users.iter().any(|u| u["username"] == username))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{username} never in {list}");
    }
}

fn usernames(subscribed: &Value) -> Vec<String> {
    let mut names: Vec<String> = subscribed["presence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_channels_through_redis_and_survive_its_restart() {
    if common::redis_url().is_none() {
        return;
    }
    let mut redis = RedisServer::start(free_port());
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let dir = TempDir::new();
    let database = format!("sqlite://{}", dir.0.join("shared.db").display());
    // One after the other: the first applies the migrations.
    let prefix = common::unique_name("sbpair");
    let mut one = Server::start(&database, &redis_url, &prefix);
    let mut two = Server::start(&database, &redis_url, &prefix);

    let alice = register(&one, "alice").await;
    let bob = register(&two, "bob").await;
    let id = published_story(&one, &alice).await;
    let channel = format!("story:{id}");
    for server in [&one, &two] {
        let (_, features) = raw_http(server.address, "GET", "/api/features", None).await;
        assert_eq!(
            serde_json::from_str::<Value>(&features).unwrap()["broker"],
            "redis"
        );
    }

    // Alice on process one, Bob on process two, one channel.
    let mut a = connect(one.address, &alice).await;
    subscribe(&mut a, &channel, None).await;
    let mut b = connect(two.address, &bob).await;
    let joined = subscribe(&mut b, &channel, None).await;
    assert_eq!(
        usernames(&joined),
        ["alice", "bob"],
        "presence shows users from both processes"
    );
    // Batched presence (v1.6) crosses processes within two intervals (the
    // default, one second, here).
    let joined_at = Instant::now();
    presence_change(&mut a, "joins", "bob", Duration::from_secs(10)).await;
    let took = joined_at.elapsed();
    assert!(
        took < Duration::from_millis(2_500),
        "bob's join reached process one after {took:?}"
    );

    chat(&mut b, &channel, "hello from two").await;
    let on_one = message_with_text(&mut a, "hello from two").await;
    let on_two = message_with_text(&mut b, "hello from two").await;
    assert_eq!(on_one["offset"], 1);
    assert_eq!(on_one["offset"], on_two["offset"], "offsets agree");
    assert_eq!(on_one["from"]["username"], "bob");
    chat(&mut a, &channel, "hello from one").await;
    assert_eq!(
        message_with_text(&mut b, "hello from one").await["offset"],
        2
    );
    assert_eq!(
        message_with_text(&mut a, "hello from one").await["offset"],
        2
    );
    // A late joiner on the other process recovers from the shared history.
    let mut late = connect(two.address, &alice).await;
    let recovered = subscribe(&mut late, &channel, Some(0)).await;
    assert_eq!(
        (
            recovered["recovered"].as_bool(),
            recovered["offset"].as_u64()
        ),
        (Some(true), Some(2))
    );
    assert_eq!(next_op(&mut late, "message").await["offset"], 1);
    assert_eq!(next_op(&mut late, "message").await["offset"], 2);
    drop(late);

    // Revocations cross processes: a logout on one closes the socket its
    // token opened on two, and a story back to draft on one unsubscribes
    // its reader on two, each within a second.
    let (_, login) = raw_http(
        two.address,
        "POST",
        "/api/auth/login",
        Some(&json!({"username": "bob", "password": "password123"}).to_string()),
    )
    .await;
    let second = serde_json::from_str::<Value>(&login).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bobs_second = connect(two.address, &second).await;
    let other = published_story(&one, &alice).await;
    let mut reader = connect(two.address, &bob).await;
    subscribe(&mut reader, &format!("story:{other}"), None).await;
    let started = Instant::now();
    let draft = json!({"status": "draft"}).to_string();
    let (status, _) = raw_http_as(
        one.address,
        "PATCH",
        &format!("/api/stories/{other}"),
        Some(&alice),
        Some(&draft),
    )
    .await;
    assert_eq!(status, 200);
    let lost = unsubscribed(&mut reader, Duration::from_secs(1))
        .await
        .expect("unsubscribed on the other process within 1 s");
    assert_eq!(lost["reason"], "forbidden");
    eprintln!("story revocation across processes: {:?}", started.elapsed());
    let started = Instant::now();
    let (status, _) =
        raw_http_as(one.address, "POST", "/api/auth/logout", Some(&second), None).await;
    assert_eq!(status, 204);
    assert_eq!(
        closed_with(&mut bobs_second, Duration::from_secs(1)).await,
        Some(1008),
        "closed on the other process within 1 s"
    );
    eprintln!("logout across processes: {:?}", started.elapsed());

    // Redis goes away: both keep serving, /readyz says so, local sockets
    // still work.
    redis.kill();
    wait_ready(&one, 503, Duration::from_secs(10)).await;
    wait_ready(&two, 503, Duration::from_secs(10)).await;
    assert!(one.is_running() && two.is_running());
    assert_eq!(status_of(&one, "/healthz").await, 200);
    assert_eq!(
        status_of(&one, "/api/stories").await,
        200,
        "REST still works"
    );
    chat(&mut a, &channel, "alone on one").await;
    message_with_text(&mut a, "alone on one").await;

    // Redis comes back (empty): both reconnect and share channels again.
    let restarted = RedisServer::start(redis.port);
    wait_ready(&one, 200, Duration::from_secs(20)).await;
    wait_ready(&two, 200, Duration::from_secs(20)).await;
    assert!(one.is_running() && two.is_running());
    // `/readyz` says 200 once a command has gone through and the pub/sub
    // connection is back; a publish racing the command connection's own
    // reconnect is served by its process alone (the outage's rule), so
    // Bob says it again until Alice hears one, within a few tries.
    let mut heard = None;
    for attempt in 0..5 {
        let text = format!("after the restart {attempt}");
        chat(&mut b, &channel, &text).await;
        if let Some(on_one) = message_within(&mut a, &text, Duration::from_secs(2)).await {
            heard = Some((text, on_one));
            break;
        }
    }
    let (text, on_one) = heard.expect("process one hears process two again after the restart");
    let on_two = message_with_text(&mut b, &text).await;
    assert_eq!(on_one["offset"], on_two["offset"], "offsets agree again");
    // Presence is renewed by the heartbeats (every second here).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut carol = connect(one.address, &register(&one, "carol").await).await;
    assert_eq!(
        usernames(&subscribe(&mut carol, &channel, None).await),
        ["alice", "bob", "carol"]
    );

    // Process two crashes: Bob leaves within the presence TTL.
    let _ = two.child.kill();
    let _ = two.child.wait();
    presence_change(&mut a, "leaves", "bob", Duration::from_secs(10)).await;
    assert!(one.is_running());
    drop(restarted);
}
