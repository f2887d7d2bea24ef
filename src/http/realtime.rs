//! Contract section "Real time": `GET /ws`, the WebSocket protocol on top
//! of the broadcast hub. Built only with `--features realtime`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use storybook_broadcast::{Frame, Join, Member, Next, OutboxReceiver, outbox};
use storybook_canvas::{MAX_STROKES, parse_stroke};
use storybook_store::{StoreError, User};
use tokio::sync::Notify;

use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::extract::user_for_token;
use crate::realtime::{ConnHandle, Slot};
use crate::state::AppState;

/// The routes below (outside the OpenAPI document's list, which holds the
/// REST routes), for the metrics.
pub const PATHS: [&str; 2] = ["/ws", "/demo"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATHS[0], get(upgrade))
        .route(PATHS[1], get(demo))
}

/// The demo page: plain HTML, CSS and JS inside the binary (no CDN, no
/// build step). Sign in, open or start a drawing, draw together, see who
/// is here, chat.
async fn demo() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("demo/index.html"),
    )
}

/// The token from `?token=` or the `Authorization` header.
fn token_of(request: &Request) -> Option<String> {
    let from_query = request.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "token")
            .map(|(_, value)| value.to_owned())
    });
    from_query.or_else(|| {
        crate::extract::bearer_token(request.headers())
            .ok()
            .flatten()
            .map(str::to_owned)
    })
}

/// Real time: `GET /ws`. A missing or bad token is refused before the
/// upgrade (`401`); so is a connection over a limit (`429`).
async fn upgrade(State(state): State<AppState>, request: Request) -> Response {
    let Some(token) = token_of(&request) else {
        return ApiError::Unauthorized.into_response();
    };
    let user = match user_for_token(&state, &token).await {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    // The real client, not Render's proxy: the same rule as the REST limits.
    let ip = request
        .extensions()
        .get::<ClientAddr>()
        .map(|client| client.0);
    let slot = match state.realtime.reserve(user.id, ip) {
        Ok(slot) => slot,
        Err(refused) => {
            tracing::debug!(?refused, user = user.id, "websocket refused");
            return ApiError::RateLimited {
                retry_after_secs: 5,
            }
            .into_response();
        }
    };
    let (mut parts, _body) = request.into_parts();
    let upgrade = match <WebSocketUpgrade as FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    {
        Ok(upgrade) => upgrade,
        Err(rejection) => return ApiError::BadRequest(rejection.body_text()).into_response(),
    };
    let settings = &state.realtime.settings;
    upgrade
        .read_buffer_size(settings.ws_buffer_bytes)
        // Each frame is written out at once rather than gathered.
        .write_buffer_size(0)
        .max_write_buffer_size(settings.ws_buffer_bytes.max(settings.ws_max_data_bytes) * 8)
        // Frames a little over the data limit still arrive whole, so the
        // client gets `too_large` rather than a dropped connection.
        .max_message_size(settings.ws_max_data_bytes * 4)
        .max_frame_size(settings.ws_max_data_bytes * 4)
        // One box, so the upgrade's future carries a pointer rather than
        // the state, the user and the slot.
        .on_upgrade({
            let accepted = Box::new((state, user, slot));
            move |socket| connection(accepted, socket)
        })
}

/// A parsed channel name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelKind {
    Lobby,
    Drawing(i64),
    Story(i64),
}

fn parse_channel(name: &str) -> Option<ChannelKind> {
    if name == "lobby" {
        return Some(ChannelKind::Lobby);
    }
    let (kind, id) = name.split_once(':')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 18 {
        return None;
    }
    let id: i64 = id.parse().ok()?;
    match kind {
        "drawing" => Some(ChannelKind::Drawing(id)),
        "story" => Some(ChannelKind::Story(id)),
        _ => None,
    }
}

/// A token bucket: `rate` a second, at most `burst` saved up.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One connection's own state, kept in its task.
struct Session {
    state: AppState,
    user: User,
    member: Member,
    conn: u64,
    handle: ConnHandle,
    /// channel name → its kind and, for drawings, the canvas size.
    channels: Subscriptions,
    bucket: Bucket,
}

/// The channels a connection is subscribed to, with what a publish needs
/// to know of each: a short list (at most `WS_MAX_CHANNELS`, usually one),
/// so a vector searched in order, a third the memory of a hash map's table
/// on each of thousands of connections.
#[derive(Default)]
struct Subscriptions(Vec<(Box<str>, ChannelKind, (u32, u32))>);

impl Subscriptions {
    fn get(&self, name: &str) -> Option<(ChannelKind, (u32, u32))> {
        self.0
            .iter()
            .find(|(known, _, _)| &**known == name)
            .map(|&(_, kind, canvas)| (kind, canvas))
    }

    fn insert(&mut self, name: &str, kind: ChannelKind, canvas: (u32, u32)) {
        match self.0.iter_mut().find(|(known, _, _)| &**known == name) {
            Some((_, known_kind, known_canvas)) => (*known_kind, *known_canvas) = (kind, canvas),
            None => self.0.push((name.into(), kind, canvas)),
        }
    }

    /// Whether it was there.
    fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(known, _, _)| &**known != name);
        self.0.len() != before
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _, _)| &**name)
    }
}

fn frame(value: Value) -> Frame {
    Frame::from(value.to_string())
}

fn error_frame(code: &str, message: &str, channel: Option<&str>) -> Frame {
    let mut value = json!({"op": "error", "code": code, "message": message});
    if let Some(channel) = channel {
        value["channel"] = json!(channel);
    }
    frame(value)
}

/// An open connection: everything its task keeps.
struct Live {
    socket: WebSocket,
    session: Session,
    receiver: OutboxReceiver,
    ping: tokio::time::Interval,
    idle: Duration,
    /// Held for its drop: the connection's place in the limits is given
    /// back when the task ends.
    _slot: Slot,
}

/// Serves one connection in one task: it reads the client's frames,
/// writes what the outbox holds, and pings. One task (not a reader and a
/// writer) and an unsplit socket keep an idle connection small, and so
/// does building everything before the future starts: an `async fn` would
/// keep its arguments and the locals made from them side by side (2.5 KB
/// instead of about 1 KB a connection).
fn connection(
    accepted: Box<(AppState, User, Slot)>,
    socket: WebSocket,
) -> impl Future<Output = ()> + Send {
    let (state, user, slot) = *accepted;
    let settings = &state.realtime.settings;
    let (outbox, receiver) = outbox(settings.ws_queue_frames, settings.ws_queue_bytes);
    let handle = ConnHandle {
        outbox,
        close: Arc::new(Notify::new()),
    };
    state.realtime.register(&slot, handle.clone());
    let mut ping = tokio::time::interval(Duration::from_secs(settings.ws_ping_secs.max(1)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = Duration::from_secs(settings.ws_idle_secs.max(1));
    let member = Member {
        id: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
    };
    let bucket = Bucket {
        tokens: f64::from(settings_burst(&state)),
        rate: f64::from(settings.ws_publish_rate),
        burst: f64::from(settings_burst(&state)),
        at: Instant::now(),
    };
    let mut live = Live {
        socket,
        session: Session {
            conn: slot.conn,
            state,
            user,
            member,
            handle,
            channels: Subscriptions::default(),
            bucket,
        },
        receiver,
        ping,
        idle,
        _slot: slot,
    };
    async move { live.run().await }
}

impl Live {
    /// Sends one message, waiting no longer than the idle time: a write
    /// the client does not take (it stopped reading) is given as long as
    /// silence is, then the connection is dropped.
    async fn send(&mut self, message: Message) -> bool {
        matches!(
            tokio::time::timeout(self.idle, self.socket.send(message)).await,
            Ok(Ok(()))
        )
    }

    async fn run(&mut self) {
        let mut last_seen = Instant::now();
        self.ping.tick().await;
        // Ends with the close frame to send, if any.
        let ending: Option<(u16, &'static str)> = loop {
            tokio::select! {
                () = self.session.handle.close.notified() => {
                    break Some((close_code::POLICY, "account deactivated"));
                }
                next = self.receiver.next() => match next {
                    Next::Frame(frame) => {
                        let Ok(text) = Utf8Bytes::try_from(frame) else { continue };
                        if !self.send(Message::Text(text)).await {
                            break None;
                        }
                    }
                    // A kicked connection gets its 1013 as soon as its
                    // socket takes it.
                    Next::Kicked => break Some((close_code::AGAIN, "too slow")),
                    Next::Closed => break None,
                },
                message = self.socket.recv() => {
                    let Some(Ok(message)) = message else { break None };
                    last_seen = Instant::now();
                    match message {
                        // Boxed: the connection task stays small while it waits, whatever
                        // the size of the work a frame starts.
                        Message::Text(text) => Box::pin(self.session.handle_text(text.as_str())).await,
                        Message::Binary(_) => self.session.reply(error_frame("bad_request", "frames are JSON text", None)),
                        Message::Close(_) => break None,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                _ = self.ping.tick() => {
                    if last_seen.elapsed() > self.idle {
                        break Some((close_code::AWAY, "idle"));
                    }
                    if !self.send(Message::Ping(Default::default())).await {
                        break None;
                    }
                }
            }
        };
        if let Some((code, reason)) = ending {
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            self.send(close).await;
        }
        let session = &self.session;
        for channel in session.channels.names() {
            session
                .state
                .realtime
                .broker
                .unsubscribe(channel, session.conn)
                .await;
        }
    }
}

fn settings_burst(state: &AppState) -> u32 {
    state.realtime.settings.ws_publish_burst.max(1)
}

impl Session {
    fn reply(&self, frame: Frame) {
        if !self.handle.outbox.send(frame) && self.handle.outbox.kick() {
            self.state
                .realtime
                .broker
                .stats()
                .slow_consumers
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn join(
        &mut self,
        name: &str,
        kind: ChannelKind,
        canvas: (u32, u32),
        since: Option<u64>,
    ) {
        let ack = |s: &storybook_broadcast::Subscribed| {
            frame(json!({
                "op": "subscribed", "channel": name, "offset": s.offset, "epoch": s.epoch,
                "presence": s.presence, "recovered": s.recovered,
            }))
        };
        // Known before the broker answers, so a leave on the way out is
        // never missed.
        self.channels.insert(name, kind, canvas);
        let join = Join {
            channel: name,
            conn: self.conn,
            member: self.member.clone(),
            outbox: self.handle.outbox.clone(),
            since,
        };
        self.state.realtime.broker.subscribe(join, &ack).await;
    }

    async fn handle_text(&mut self, text: &str) {
        let Ok(Value::Object(request)) = serde_json::from_str::<Value>(text) else {
            return self.reply(error_frame(
                "bad_request",
                "frames are JSON objects with an op",
                None,
            ));
        };
        let channel = request.get("channel").and_then(Value::as_str);
        match request.get("op").and_then(Value::as_str) {
            Some("ping") => self.reply(frame(json!({"op": "pong"}))),
            Some("subscribe") => match channel {
                Some(channel) => {
                    let since = request.get("since").and_then(Value::as_u64);
                    self.subscribe(channel, since).await;
                }
                None => self.reply(error_frame(
                    "bad_request",
                    "subscribe needs a channel",
                    None,
                )),
            },
            Some("unsubscribe") => {
                if let Some(channel) = channel
                    && self.channels.remove(channel)
                {
                    self.state
                        .realtime
                        .broker
                        .unsubscribe(channel, self.conn)
                        .await;
                }
            }
            Some("publish") => match channel {
                Some(channel) => {
                    let data = request.get("data").cloned().unwrap_or(Value::Null);
                    self.publish(channel, data).await;
                }
                None => self.reply(error_frame("bad_request", "publish needs a channel", None)),
            },
            _ => self.reply(error_frame("bad_request", "unknown op", channel)),
        }
    }

    async fn subscribe(&mut self, name: &str, since: Option<u64>) {
        let Some(kind) = parse_channel(name) else {
            return self.reply(error_frame(
                "bad_request",
                "unknown or malformed channel",
                Some(name),
            ));
        };
        if self.channels.get(name).is_some() {
            // Already here: answer again with the current state.
            self.state
                .realtime
                .broker
                .unsubscribe(name, self.conn)
                .await;
        } else if self.channels.len() >= self.state.realtime.settings.ws_max_channels {
            return self.reply(error_frame(
                "bad_request",
                "too many channels on this connection",
                Some(name),
            ));
        }
        let canvas = match kind {
            ChannelKind::Lobby => (0, 0),
            ChannelKind::Drawing(id) => {
                match super::drawings::drawable(&self.state, id, &self.user).await {
                    Ok(drawing) => (drawing.width as u32, drawing.height as u32),
                    Err(_) => {
                        return self.reply(error_frame("not_found", "no such drawing", Some(name)));
                    }
                }
            }
            ChannelKind::Story(id) => {
                match super::stories::visible_story(&self.state, id, Some(&self.user)).await {
                    Ok(_) => (0, 0),
                    Err(_) => {
                        return self.reply(error_frame("not_found", "no such story", Some(name)));
                    }
                }
            }
        };
        self.join(name, kind, canvas, since).await;
    }

    async fn publish(&mut self, name: &str, mut data: Value) {
        let Some((kind, (width, height))) = self.channels.get(name) else {
            return self.reply(error_frame(
                "forbidden",
                "subscribe to a channel before publishing to it",
                Some(name),
            ));
        };
        if kind == ChannelKind::Lobby {
            return self.reply(error_frame(
                "forbidden",
                "the lobby is presence only",
                Some(name),
            ));
        }
        if !self.bucket.take() {
            return self.reply(error_frame(
                "rate_limited",
                "too many messages; slow down",
                Some(name),
            ));
        }
        if data.to_string().len() > self.state.realtime.settings.ws_max_data_bytes {
            return self.reply(error_frame(
                "too_large",
                "data is larger than 16 KiB",
                Some(name),
            ));
        }
        let kind_of_data = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match (kind, kind_of_data.as_str()) {
            (ChannelKind::Drawing(id), "stroke") => {
                let mut problems = Vec::new();
                let Some(stroke) = data
                    .get("stroke")
                    .and_then(|s| parse_stroke(s, width, height, "stroke", &mut problems))
                else {
                    let why = problems
                        .first()
                        .map_or("a stroke is required".to_owned(), |(f, w)| {
                            format!("{f} {w}")
                        });
                    return self.reply(error_frame("bad_request", &why, Some(name)));
                };
                // Saved before it is broadcast: what others see is stored.
                match self
                    .state
                    .store
                    .append_strokes(id, std::slice::from_ref(&stroke), MAX_STROKES as i64)
                    .await
                {
                    Ok(_) => data["stroke"] = json!(stroke),
                    Err(StoreError::Limit(_)) => {
                        return self.reply(error_frame(
                            "bad_request",
                            "the drawing has 10,000 strokes",
                            Some(name),
                        ));
                    }
                    Err(StoreError::NotFound) => {
                        return self.reply(error_frame("not_found", "no such drawing", Some(name)));
                    }
                    Err(error) => {
                        tracing::error!(%error, "saving a stroke from a websocket failed");
                        return self.reply(error_frame(
                            "bad_request",
                            "the stroke could not be saved",
                            Some(name),
                        ));
                    }
                }
            }
            (ChannelKind::Drawing(id), "undo") => {
                let Some(stroke_id) = data.get("stroke_id").and_then(Value::as_str) else {
                    return self.reply(error_frame(
                        "bad_request",
                        "undo needs a stroke_id",
                        Some(name),
                    ));
                };
                if self.state.store.delete_stroke(id, stroke_id).await.is_err() {
                    return self.reply(error_frame("not_found", "no such stroke", Some(name)));
                }
            }
            (_, "cursor") => {
                // Volatile: never in history, never a reason to kick anyone.
                let broker = &self.state.realtime.broker;
                let cursor = frame(json!({
                    "op": "message", "channel": name, "offset": broker.latest(name), "volatile": true,
                    "from": self.member, "data": data,
                }));
                broker.publish_volatile(name, cursor).await;
                return;
            }
            (_, "chat") => {
                let Some(text) = data.get("text").and_then(Value::as_str) else {
                    return self.reply(error_frame("bad_request", "chat needs a text", Some(name)));
                };
                data["text"] = json!(self.state.profanity.censor(text));
            }
            _ => {}
        }
        let member = &self.member;
        let compose = |offset: u64| {
            json!({"op": "message", "channel": name, "offset": offset, "from": member, "data": data}).to_string()
        };
        self.state.realtime.broker.publish(name, &compose).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{ChannelKind, parse_channel};

    #[test]
    fn channel_names() {
        assert_eq!(parse_channel("lobby"), Some(ChannelKind::Lobby));
        assert_eq!(parse_channel("drawing:12"), Some(ChannelKind::Drawing(12)));
        assert_eq!(parse_channel("story:3"), Some(ChannelKind::Story(3)));
        for bad in [
            "",
            "lobby:2",
            "drawing:abc",
            "drawing:",
            "story:-1",
            "chat:1",
            "drawing:1:2",
            "story:99999999999999999999",
        ] {
            assert_eq!(parse_channel(bad), None, "{bad}");
        }
    }
}
