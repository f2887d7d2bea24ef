//! A WebSocket client for tests of the realtime build.

use std::net::SocketAddr;
use std::time::Duration;

use storybook::config::RealtimeArgs;

use super::TestApp;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(address: SocketAddr, token: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws?token={token}"))
        .await
        .expect("connect");
    socket
}

/// The next JSON frame (pings and pongs skipped), or `None` on close or
/// after two seconds of silence.
pub async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// The close code the socket gets within `within`, skipping other frames.
pub async fn closed_with(socket: &mut Socket, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(close)))) => return close.map(|c| u16::from(c.code)),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// The next `unsubscribed` frame within `within`.
pub async fn unsubscribed(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["op"] == "unsubscribed" {
                    return Some(frame);
                }
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// The next frame with this op, skipping others (joins, leaves...).
pub async fn next_op(socket: &mut Socket, op: &str) -> Value {
    for _ in 0..500 {
        let frame = next(socket)
            .await
            .unwrap_or_else(|| panic!("no {op} frame"));
        if frame["op"] == op {
            return frame;
        }
    }
    panic!("no {op} frame");
}

pub async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

pub async fn subscribe(socket: &mut Socket, channel: &str, since: Option<u64>) -> Value {
    let mut request = json!({"op": "subscribe", "channel": channel});
    if let Some(since) = since {
        request["since"] = json!(since);
    }
    send(socket, request).await;
    loop {
        let frame = next_op(socket, "subscribed").await;
        if frame["channel"] == channel {
            return frame;
        }
    }
}

/// Which broker a test runs on.
pub enum Broker {
    Memory,
    /// The real Redis at `TEST_REDIS_URL`, with keys under a prefix of the
    /// test's own.
    Redis(String),
}

impl Broker {
    fn apply(&self, settings: &mut RealtimeArgs) {
        if let Broker::Redis(url) = self {
            settings.redis_url = Some(storybook::config::Secret(url.clone()));
            settings.redis_prefix = super::unique_name("sbtest");
        }
    }
}

/// Runs each named `async fn name(broker: Broker)` once on the memory
/// broker and once on Redis (when `TEST_REDIS_URL` is set; CI sets it, and
/// fails without it). The test file imports [`Broker`].
#[macro_export]
macro_rules! broker_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Broker::Memory).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(url) = $crate::common::redis_url() {
                        super::$name(super::Broker::Redis(url)).await;
                    }
                }
            )*
        }
    };
}

/// The real server on 127.0.0.1:0, with realtime settings of the test's.
pub async fn start(broker: &Broker, settings: RealtimeArgs) -> (TestApp, SocketAddr) {
    start_with(broker, settings, storybook::config::Limits::default()).await
}

/// [`start`] with limits of the test's.
pub async fn start_with(
    broker: &Broker,
    mut settings: RealtimeArgs,
    limits: storybook::config::Limits,
) -> (TestApp, SocketAddr) {
    broker.apply(&mut settings);
    let mut app = TestApp::sqlite_with(limits).await;
    app.reconfigure(|state| {
        *state = state
            .clone()
            .with_realtime(settings)
            .expect("realtime settings")
    });
    storybook::start_background_tasks(&app.state);
    let address = app.listen().await;
    (app, address)
}

pub fn generous() -> RealtimeArgs {
    RealtimeArgs {
        ws_publish_rate: 10_000,
        ws_publish_burst: 10_000,
        ..RealtimeArgs::default()
    }
}

/// The channel of a published story of `token`'s.
pub async fn story_channel(app: &TestApp, token: &str) -> String {
    format!("story:{}", published_story(app, token).await)
}

/// A socket of `token`'s, subscribed to `channel`.
pub async fn subscribed(address: SocketAddr, token: &str, channel: &str) -> Socket {
    let mut socket = connect(address, token).await;
    subscribe(&mut socket, channel, None).await;
    socket
}

pub async fn published_story(app: &TestApp, token: &str) -> i64 {
    let story = json!({"title": "Live", "pages": [{"text": "one"}], "genre": "funny", "age_group": "3-5", "status": "published"});
    app.post("/api/stories", Some(token), story).await.body["id"]
        .as_i64()
        .unwrap()
}
