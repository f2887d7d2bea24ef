//! The realtime attacks of issue #13, against a server built with
//! `--features realtime`: how long a revocation takes to reach a socket,
//! whether one socket's subscribe toggling closes anybody else, and
//! whether any bad word reaches a subscriber. Each runs under the same
//! probe and RSS sampling as the REST attacks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::abuse::{Target, measured, register, with_figures};
use crate::client::Connection;

/// The realtime scenarios, in the order they run.
pub const SCENARIOS: &[&str] = &[
    "ws-revoked-collaborator",
    "ws-logout",
    "ws-lobby-toggle",
    "ws-unmasked",
];

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

pub async fn run(target: &Target, name: &str) -> Result<Value, String> {
    match name {
        "ws-revoked-collaborator" => revoked_collaborator(target).await,
        "ws-logout" => logout(target).await,
        "ws-lobby-toggle" => lobby_toggle(target).await,
        "ws-unmasked" => unmasked(target).await,
        other => Err(format!("no realtime scenario {other}")),
    }
}

fn server(target: &Target) -> Result<SocketAddr, String> {
    target
        .host
        .parse()
        .map_err(|e| format!("{}: {e}", target.host))
}

async fn open(target: &Target, token: &str) -> Result<Socket, String> {
    let source = "127.0.0.1".parse().map_err(|e| format!("{e}"))?;
    crate::ws::open(server(target)?, source, token).await
}

async fn send(socket: &mut Socket, frame: Value) -> Result<(), String> {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .map_err(|e| e.to_string())
}

/// The next text frame, or what ended the socket, within `within`.
enum Heard {
    Frame(Value),
    Closed(Option<u16>),
    Nothing,
}

async fn hear(socket: &mut Socket, within: Duration) -> Heard {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                return Heard::Frame(serde_json::from_str(&text).unwrap_or(Value::Null));
            }
            Ok(Some(Ok(Message::Close(close)))) => {
                return Heard::Closed(close.map(|c| u16::from(c.code)));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Heard::Closed(None),
            Err(_) => return Heard::Nothing,
        }
    }
}

/// Waits for a frame with this op (skipping others) for up to `within`.
async fn wait_for(socket: &mut Socket, op: &str, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match hear(socket, left).await {
            Heard::Frame(frame) if frame["op"] == op => return Some(frame),
            Heard::Frame(_) => {}
            _ => return None,
        }
    }
    None
}

async fn subscribe(socket: &mut Socket, channel: &str) -> Result<(), String> {
    send(socket, json!({"op": "subscribe", "channel": channel})).await?;
    wait_for(socket, "subscribed", Duration::from_secs(5))
        .await
        .map(|_| ())
        .ok_or(format!("no subscribed for {channel}"))
}

async fn rest(
    target: &Target,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), String> {
    let mut connection = Connection::open(&target.host).await?;
    connection.json(method, path, Some(token), body).await
}

/// A new user: `(username, token)`, named apart from every other of this
/// run and of other runs on the same database.
async fn user(target: &Target, role: &str) -> Result<(String, String), String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("{role}{}_{n}", std::process::id() % 10_000);
    let mut connection = Connection::open(&target.host).await?;
    Ok((name.clone(), register(&mut connection, &name).await?))
}

/// A collaborator on a drawing is removed over REST and publishes a
/// stroke at once: the time until their socket hears `unsubscribed`, what
/// their publish is answered, and how many of their strokes were stored.
async fn revoked_collaborator(target: &Target) -> Result<Value, String> {
    let (_, owner) = user(target, "owner").await?;
    let (bob_name, bob) = user(target, "collab").await?;
    let (_, created) = rest(
        target,
        Method::POST,
        "/api/drawings",
        &owner,
        Some(json!({"title": "shared", "width": 100, "height": 100})),
    )
    .await?;
    let id = created["id"]
        .as_i64()
        .ok_or(format!("drawing: {created}"))?;
    rest(
        target,
        Method::POST,
        &format!("/api/drawings/{id}/collaborators"),
        &owner,
        Some(json!({ "username": bob_name })),
    )
    .await?;
    let channel = format!("drawing:{id}");
    let (common, (latency_ms, answer, stored)) = measured(target, async {
        let mut socket = open(target, &bob).await?;
        subscribe(&mut socket, &channel).await?;
        let started = Instant::now();
        rest(
            target,
            Method::DELETE,
            &format!("/api/drawings/{id}/collaborators/{bob_name}"),
            &owner,
            None,
        )
        .await?;
        // The stroke goes out right after the removal, before the socket
        // has heard anything.
        let stroke = json!({"op": "publish", "channel": channel, "data": {"type": "stroke", "stroke": {"id": "late", "tool": "pen", "color": "#000000", "width": 2, "points": [[1, 1], [9, 9]]}}});
        send(&mut socket, stroke).await?;
        let mut latency_ms = None;
        let mut answer = Value::Null;
        while latency_ms.is_none() || answer.is_null() {
            match hear(&mut socket, Duration::from_secs(3)).await {
                Heard::Frame(frame) if frame["op"] == "unsubscribed" => {
                    latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
                Heard::Frame(frame) if frame["op"] == "error" || frame["op"] == "message" => {
                    answer = frame;
                }
                Heard::Frame(_) => {}
                _ => break,
            }
        }
        let (_, drawing) = rest(
            target,
            Method::GET,
            &format!("/api/drawings/{id}"),
            &owner,
            None,
        )
        .await?;
        let stored = drawing["strokes"].as_array().map_or(0, Vec::len);
        Ok((latency_ms, answer, stored))
    })
    .await?;
    let within = latency_ms.is_some_and(|ms| ms <= 1000.0) && stored == 0;
    Ok(with_figures(
        common,
        "ws-revoked-collaborator",
        json!({
            "unsubscribed_after_ms": latency_ms, "budget_ms": 1000,
            "publish_answer": answer["code"].as_str().or(answer["op"].as_str()),
            "strokes_stored_after_removal": stored, "budget_stored": 0,
        }),
        within,
    ))
}

/// A token is logged out over REST while a socket it opened is in the
/// lobby: the time until that socket is closed, and its close code.
async fn logout(target: &Target) -> Result<Value, String> {
    let (_, token) = user(target, "leaver").await?;
    let (common, (latency_ms, code)) = measured(target, async {
        let mut socket = open(target, &token).await?;
        subscribe(&mut socket, "lobby").await?;
        let started = Instant::now();
        rest(target, Method::POST, "/api/auth/logout", &token, None).await?;
        loop {
            match hear(&mut socket, Duration::from_secs(3)).await {
                Heard::Frame(_) => {}
                Heard::Closed(code) => {
                    return Ok((Some(started.elapsed().as_secs_f64() * 1000.0), code));
                }
                Heard::Nothing => return Ok((None, None)),
            }
        }
    })
    .await?;
    let within = latency_ms.is_some_and(|ms| ms <= 1000.0) && code == Some(1008);
    Ok(with_figures(
        common,
        "ws-logout",
        json!({ "closed_after_ms": latency_ms, "close_code": code, "budget_ms": 1000 }),
        within,
    ))
}

/// 50 users in the lobby, reading; one socket sends 2,000 subscribe and
/// unsubscribe toggles of the lobby as fast as it can. Budget: no member
/// closed; the attacker limited.
async fn lobby_toggle(target: &Target) -> Result<Value, String> {
    let mut members = Vec::new();
    for n in 0..50 {
        let (_, token) = user(target, "member").await?;
        let mut socket = open(target, &token).await?;
        subscribe(&mut socket, "lobby").await?;
        members.push(socket);
        eprint!("\r   members: {}/50", n + 1);
    }
    eprintln!();
    let (_, attacker) = user(target, "toggler").await?;
    let (common, (closed_members, frames_seen, limited, attacker_closed)) =
        measured(target, async {
            let readers: Vec<_> = members
                .into_iter()
                .map(|mut socket| {
                    tokio::spawn(async move {
                        let mut seen = 0u64;
                        loop {
                            match hear(&mut socket, Duration::from_secs(3)).await {
                                Heard::Frame(_) => seen += 1,
                                Heard::Closed(code) => return (code.or(Some(0)), seen),
                                Heard::Nothing => return (None, seen),
                            }
                        }
                    })
                })
                .collect();
            let mut socket = open(target, &attacker).await?;
            for n in 0..2_000 {
                let op = if n % 2 == 0 {
                    "subscribe"
                } else {
                    "unsubscribe"
                };
                if send(&mut socket, json!({"op": op, "channel": "lobby"}))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let mut limited = 0u64;
            let mut attacker_closed = None;
            loop {
                match hear(&mut socket, Duration::from_secs(2)).await {
                    Heard::Frame(frame) if frame["code"] == "rate_limited" => limited += 1,
                    Heard::Frame(_) => {}
                    Heard::Closed(code) => {
                        attacker_closed = code;
                        break;
                    }
                    Heard::Nothing => break,
                }
            }
            let mut closed = 0;
            let mut seen = 0;
            for reader in readers {
                let (code, frames) = reader.await.map_err(|e| e.to_string())?;
                closed += usize::from(code.is_some());
                seen += frames;
            }
            Ok((closed, seen, limited, attacker_closed))
        })
        .await?;
    let within = closed_members == 0 && (limited > 0 || attacker_closed == Some(1013));
    Ok(with_figures(
        common,
        "ws-lobby-toggle",
        json!({
            "members": 50, "members_closed": closed_members, "budget_closed": 0,
            "frames_each_member_saw": frames_seen / 50,
            "attacker_rate_limited_errors": limited, "attacker_close_code": attacker_closed,
        }),
        within,
    ))
}

/// Bad words in every field a publisher controls, on both channel kinds:
/// how many frames a second subscriber received with a bad word in them.
async fn unmasked(target: &Target) -> Result<Value, String> {
    const BAD: [&str; 2] = ["fuck", "shit"];
    let (_, author) = user(target, "author").await?;
    let (_, listener_token) = user(target, "listener").await?;
    let story = json!({"title": "Live", "pages": [{"text": "one"}], "genre": "funny", "age_group": "3-5", "status": "published"});
    let (_, created) = rest(target, Method::POST, "/api/stories", &author, Some(story)).await?;
    let id = created["id"].as_i64().ok_or(format!("story: {created}"))?;
    let (_, drawing) = rest(
        target,
        Method::POST,
        "/api/drawings",
        &author,
        Some(json!({"title": "d", "width": 100, "height": 100})),
    )
    .await?;
    let drawing = drawing["id"].as_i64().ok_or("drawing")?;
    let (common, (sent, heard, bad)) = measured(target, async {
        let mut publisher = open(target, &author).await?;
        let mut listener = open(target, &listener_token).await?;
        let story_channel = format!("story:{id}");
        let drawing_channel = format!("drawing:{drawing}");
        subscribe(&mut publisher, &story_channel).await?;
        subscribe(&mut publisher, &drawing_channel).await?;
        subscribe(&mut listener, &story_channel).await?;
        // The author listens on the drawing with a second socket.
        let mut own = open(target, &author).await?;
        subscribe(&mut own, &drawing_channel).await?;
        let attempts = [
            (&story_channel, json!({"type": "sticker", "label": "fuck"})),
            (&story_channel, json!({"type": "cursor", "x": 1, "y": 1, "note": "shit"})),
            (&story_channel, json!({"type": "chat", "text": "you shit"})),
            (&story_channel, json!({"type": "chat", "text": "f.u.c.k"})),
            (&drawing_channel, json!({"type": "chat", "text": "fuuuck"})),
            (&drawing_channel, json!({"type": "stroke", "stroke": {"id": "fuck", "tool": "pen", "color": "#000000", "width": 2, "points": [[1, 1]]}})),
            (&drawing_channel, json!({"type": "undo", "stroke_id": "shit"})),
        ];
        for (channel, data) in &attempts {
            send(
                &mut publisher,
                json!({"op": "publish", "channel": channel, "data": data}),
            )
            .await?;
        }
        let mut heard = 0;
        let mut bad = 0;
        for socket in [&mut listener, &mut own] {
            while let Heard::Frame(frame) = hear(socket, Duration::from_millis(500)).await {
                heard += 1;
                let text = frame.to_string().to_lowercase();
                if BAD.iter().any(|word| text.contains(word)) {
                    bad += 1;
                }
            }
        }
        Ok((attempts.len(), heard, bad))
    })
    .await?;
    Ok(with_figures(
        common,
        "ws-unmasked",
        json!({ "published": sent, "frames_heard": heard, "frames_with_a_bad_word": bad, "budget": 0 }),
        bad == 0,
    ))
}
