//! A WebSocket client for tests of the realtime build.

use std::net::SocketAddr;
use std::time::Duration;

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
