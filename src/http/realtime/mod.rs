//! Contract section "Real time": `GET /ws`, the WebSocket protocol on top
//! of the broadcast hub. Built only with `--features realtime`.
//!
//! Every client frame takes from the connection's rate. What a connection
//! may read follows revocation (contract v1.3): a [`Notify`] on its handle
//! makes it check its token and every channel again (a user's access or
//! tokens changed), a control frame in its queue makes it check one
//! channel (a drawing or story changed), and every `WS_TOKEN_RECHECK_SECS`
//! it checks its token anyway, which catches expiry and any lost event.

use crate::realtime::frames;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use storybook_broadcast::{CONTROL, Frame, Join, Member, Next, OutboxReceiver, outbox};
use storybook_canvas::{MAX_STROKES, check_stroke};
use storybook_store::{StoreError, User};
use tokio::sync::Notify;

use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::extract::{user_for_token, user_for_token_uncached};
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
        include_str!("../demo/index.html"),
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
    let token: Box<str> = token.into();
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
            let accepted = Box::new(Accepted {
                state,
                user,
                token,
                slot,
            });
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

impl ChannelKind {
    /// The drawing's or story's id (0 for the lobby).
    fn id(self) -> i64 {
        match self {
            ChannelKind::Lobby => 0,
            ChannelKind::Drawing(id) | ChannelKind::Story(id) => id,
        }
    }
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

/// What the upgrade hands the connection's task.
struct Accepted {
    state: AppState,
    user: User,
    /// Kept to check again that it still works.
    token: Box<str>,
    slot: Slot,
}

/// One connection's own state, kept in its task.
struct Session {
    state: AppState,
    user: User,
    token: Box<str>,
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

/// Why a connection's task ends early, with the close frame it sends.
const TOKEN_STOPPED: (u16, &str) = (close_code::POLICY, "token no longer valid");

/// An open connection: everything its task keeps.
struct Live {
    socket: WebSocket,
    session: Session,
    receiver: OutboxReceiver,
    ping: tokio::time::Interval,
    idle: Duration,
    /// Pings until the token is checked again.
    pings_to_token_check: u32,
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
fn connection(accepted: Box<Accepted>, socket: WebSocket) -> impl Future<Output = ()> + Send {
    let Accepted {
        state,
        user,
        token,
        slot,
    } = *accepted;
    let settings = &state.realtime.settings;
    let (outbox, receiver) = outbox(settings.ws_queue_frames, settings.ws_queue_bytes);
    let handle = ConnHandle {
        outbox,
        check: Arc::new(Notify::new()),
    };
    state.realtime.register(&slot, handle.clone());
    let mut ping = tokio::time::interval(Duration::from_secs(settings.ws_ping_secs.max(1)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = Duration::from_secs(settings.ws_idle_secs.max(1));
    let pings_to_token_check = pings_per_token_check(settings);
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
            token,
            member,
            handle,
            channels: Subscriptions::default(),
            bucket,
        },
        receiver,
        ping,
        idle,
        pings_to_token_check,
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
                () = self.session.handle.check.notified() => {
                    // Boxed like a client frame's work: a few queries.
                    if !Box::pin(self.session.check_everything()).await {
                        break Some(TOKEN_STOPPED);
                    }
                }
                next = self.receiver.next() => match next {
                    Next::Frame(frame) => {
                        if frame.first() == Some(&CONTROL) {
                            Box::pin(self.session.check_channel(&frame[1..])).await;
                            continue;
                        }
                        // What is still queued of a channel this connection
                        // left (or lost) is not delivered.
                        if let Some(channel) = frames::channel_of(&frame)
                            && self.session.channels.get(channel).is_none()
                        {
                            continue;
                        }
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
                        Message::Binary(_) => self.session.reply(frames::error("bad_request", "frames are JSON text", None)),
                        Message::Close(_) => break None,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                _ = self.ping.tick() => {
                    if last_seen.elapsed() > self.idle {
                        break Some((close_code::AWAY, "idle"));
                    }
                    self.pings_to_token_check = self.pings_to_token_check.saturating_sub(1);
                    if self.pings_to_token_check == 0 {
                        self.pings_to_token_check = pings_per_token_check(&self.session.state.realtime.settings);
                        if !Box::pin(self.session.token_works()).await {
                            break Some(TOKEN_STOPPED);
                        }
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

/// Pings between two checks of a connection's token: the check runs on the
/// ping's timer, so it costs no timer of its own.
fn pings_per_token_check(settings: &crate::config::RealtimeArgs) -> u32 {
    let per = settings.ws_token_recheck_secs / settings.ws_ping_secs.max(1);
    u32::try_from(per.max(1)).unwrap_or(u32::MAX)
}

fn settings_burst(state: &AppState) -> u32 {
    state.realtime.settings.ws_publish_burst.max(1)
}

/// What reading a channel needs: the canvas size for a drawing, nothing
/// more for the others; or why it may not be read.
type Access = Result<(u32, u32), &'static str>;
const FORBIDDEN: &str = "forbidden";
const NOT_FOUND: &str = "not_found";
const UNAVAILABLE: &str = "unavailable";

/// Whether a check may use this process's read cache (a subscribe) or must
/// read the database (a check after a revocation, which may come from a
/// write on another process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    Cached,
    Database,
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

    /// Whether this connection's user may read a channel now: `Err` holds
    /// the reason an `unsubscribed` frame gives, or `unavailable` when the
    /// database did not answer (which revokes nothing).
    async fn access(&self, kind: ChannelKind, fresh: Freshness) -> Access {
        let checked = match kind {
            ChannelKind::Lobby => return Ok((0, 0)),
            ChannelKind::Drawing(id) => {
                crate::http::access::drawable(&self.state.store, id, &self.user)
                    .await
                    .map(|drawing| (drawing.width as u32, drawing.height as u32))
            }
            // Another process's write is not in this one's read cache: a
            // check after a revocation reads the database.
            ChannelKind::Story(id) if fresh == Freshness::Database => {
                match self.state.store.story(id).await {
                    Ok(story) if story.visible_to(Some(&self.user)) => Ok((0, 0)),
                    Ok(_) => return Err(FORBIDDEN),
                    Err(StoreError::NotFound) => return Err(NOT_FOUND),
                    Err(_) => return Err(UNAVAILABLE),
                }
            }
            ChannelKind::Story(id) => crate::http::access::visible_story(
                &self.state.store,
                &self.state.caches,
                id,
                Some(&self.user),
            )
            .await
            .map(|_| (0, 0)),
        };
        match checked {
            Ok(canvas) => Ok(canvas),
            Err(ApiError::Forbidden) => Err(FORBIDDEN),
            // Hidden from this user is `forbidden`; gone is `not_found`.
            Err(ApiError::NotFound) => {
                let exists = match kind {
                    ChannelKind::Drawing(id) => self.state.store.drawing(id).await.map(|_| ()),
                    _ => self.state.store.story(kind.id()).await.map(|_| ()),
                };
                match exists {
                    Ok(()) => Err(FORBIDDEN),
                    Err(StoreError::NotFound) => Err(NOT_FOUND),
                    Err(_) => Err(UNAVAILABLE),
                }
            }
            Err(_) => Err(UNAVAILABLE),
        }
    }

    /// Whether the token this connection was opened with still works (not
    /// logged out, expired, or its user deactivated); the user is read
    /// again with it, so a role change is seen too. A database that does
    /// not answer is not a reason to close.
    async fn token_works(&mut self) -> bool {
        match user_for_token_uncached(&self.state, &self.token).await {
            Ok(user) => {
                self.user = user;
                true
            }
            Err(ApiError::Unauthorized) => false,
            Err(_) => true,
        }
    }

    /// The user's tokens or access changed: false when the token stopped
    /// working; otherwise every channel is checked again.
    async fn check_everything(&mut self) -> bool {
        if !self.token_works().await {
            return false;
        }
        let names: Vec<Box<str>> = self.channels.names().map(Box::from).collect();
        for name in names {
            self.check_channel(name.as_bytes()).await;
        }
        true
    }

    /// Checks one channel again; when it may no longer be read, leaves it
    /// and says why.
    async fn check_channel(&mut self, name: &[u8]) {
        let Some(name) = std::str::from_utf8(name).ok() else {
            return;
        };
        let Some((kind, _)) = self.channels.get(name) else {
            return;
        };
        if let Err(reason @ (FORBIDDEN | NOT_FOUND)) = self.access(kind, Freshness::Database).await
        {
            self.channels.remove(name);
            self.state
                .realtime
                .broker
                .unsubscribe(name, self.conn)
                .await;
            self.reply(frames::unsubscribed(name, reason));
        }
    }

    async fn join(
        &mut self,
        name: &str,
        kind: ChannelKind,
        canvas: (u32, u32),
        since: Option<u64>,
    ) {
        let ack = |s: &storybook_broadcast::Subscribed| frames::subscribed(name, s);
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
        // Every frame counts, whatever it asks: subscribes and pings cost
        // the server as much as publishes do.
        if !self.bucket.take() {
            return self.reply(frames::error(
                "rate_limited",
                "too many frames; slow down",
                None,
            ));
        }
        let Ok(Value::Object(request)) = serde_json::from_str::<Value>(text) else {
            return self.reply(frames::error(
                "bad_request",
                "frames are JSON objects with an op",
                None,
            ));
        };
        let channel = request.get("channel").and_then(Value::as_str);
        match request.get("op").and_then(Value::as_str) {
            Some("ping") => self.reply(frames::pong()),
            Some("subscribe") => match channel {
                Some(channel) => {
                    let since = request.get("since").and_then(Value::as_u64);
                    self.subscribe(channel, since).await;
                }
                None => self.reply(frames::error(
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
                None => self.reply(frames::error(
                    "bad_request",
                    "publish needs a channel",
                    None,
                )),
            },
            _ => self.reply(frames::error("bad_request", "unknown op", channel)),
        }
    }

    async fn subscribe(&mut self, name: &str, since: Option<u64>) {
        let Some(kind) = parse_channel(name) else {
            return self.reply(frames::error(
                "bad_request",
                "unknown or malformed channel",
                Some(name),
            ));
        };
        if let Some((kind, canvas)) = self.channels.get(name) {
            // Already here: answered again with the current state (and any
            // replay asked for); the broker counts this connection once, so
            // presence does not change and nobody sees a leave or a join.
            return self.join(name, kind, canvas, since).await;
        }
        if self.channels.len() >= self.state.realtime.settings.ws_max_channels {
            return self.reply(frames::error(
                "bad_request",
                "too many channels on this connection",
                Some(name),
            ));
        }
        match self.access(kind, Freshness::Cached).await {
            Ok(canvas) => self.join(name, kind, canvas, since).await,
            Err(_) => {
                let what = match kind {
                    ChannelKind::Story(_) => "no such story",
                    _ => "no such drawing",
                };
                self.reply(frames::error("not_found", what, Some(name)));
            }
        }
    }

    async fn publish(&mut self, name: &str, data: Value) {
        let Some((kind, canvas)) = self.channels.get(name) else {
            return self.reply(frames::error(
                "forbidden",
                "subscribe to a channel before publishing to it",
                Some(name),
            ));
        };
        let max_data_bytes = self.state.realtime.settings.ws_max_data_bytes;
        if data.to_string().len() > max_data_bytes {
            let message = format!("data is larger than {max_data_bytes} bytes");
            return self.reply(frames::error("too_large", &message, Some(name)));
        }
        let outcome = match kind {
            ChannelKind::Lobby => Err(("forbidden", "the lobby is presence only".to_owned())),
            ChannelKind::Drawing(id) => match serde_json::from_value(data) {
                Ok(data) => self.drawing_data(id, canvas, data).await,
                Err(error) => Err(("bad_request", frames::data_problem(&error))),
            },
            ChannelKind::Story(_) => match serde_json::from_value(data) {
                Ok(data) => Ok(self.story_data(data)),
                Err(error) => Err(("bad_request", frames::data_problem(&error))),
            },
        };
        let broker = &self.state.realtime.broker;
        match outcome {
            Err((code, why)) => self.reply(frames::error(code, &why, Some(name))),
            Ok(Outgoing::Volatile(data)) => {
                // Never in history, never a reason to kick anyone.
                let cursor = frames::cursor(name, broker.latest(name), &self.member, &data);
                broker.publish_volatile(name, cursor).await;
            }
            Ok(Outgoing::Kept(data)) => {
                let member = &self.member;
                let compose = |offset: u64| frames::message(name, offset, member, &data);
                broker.publish(name, &compose).await;
            }
        }
    }

    /// Checks, stores and masks what is published on a drawing. A stroke
    /// or an undo is written only if the publisher may still draw here,
    /// checked at that moment: a collaborator removed a millisecond ago
    /// stores nothing, whatever their connection has heard yet.
    async fn drawing_data(
        &mut self,
        id: i64,
        (width, height): (u32, u32),
        data: frames::DrawingData,
    ) -> Result<Outgoing, (&'static str, String)> {
        use frames::DrawingData;
        let profanity = &self.state.tools.profanity;
        match data {
            DrawingData::Cursor { x, y } => Ok(Outgoing::Volatile(
                json!({"type": "cursor", "x": x, "y": y}),
            )),
            DrawingData::Chat { text } => Ok(Outgoing::Kept(
                json!({"type": "chat", "text": profanity.censor(&text)}),
            )),
            DrawingData::Stroke { stroke } => {
                let mut problems = Vec::new();
                let Some(stroke) = check_stroke(&stroke, width, height, "stroke", &mut problems)
                else {
                    let why = problems
                        .first()
                        .map_or("a stroke is required".to_owned(), |(f, w)| {
                            format!("{f} {w}")
                        });
                    return Err(("bad_request", why));
                };
                if !profanity.is_clean(&stroke.id) {
                    return Err(("bad_request", "stroke.id is not allowed".to_owned()));
                }
                self.may_still_draw(id).await?;
                // Saved before it is broadcast: what others see is stored.
                match self
                    .state
                    .store
                    .append_strokes(id, std::slice::from_ref(&stroke), MAX_STROKES as i64)
                    .await
                {
                    Ok(_) => Ok(Outgoing::Kept(json!({"type": "stroke", "stroke": stroke}))),
                    Err(StoreError::Limit(_)) => Err((
                        "bad_request",
                        format!("the drawing has {MAX_STROKES} strokes"),
                    )),
                    Err(StoreError::NotFound) => Err(("not_found", "no such drawing".to_owned())),
                    Err(error) => {
                        tracing::error!(%error, "saving a stroke from a websocket failed");
                        Err(("bad_request", "the stroke could not be saved".to_owned()))
                    }
                }
            }
            DrawingData::Undo { stroke_id } => {
                if !profanity.is_clean(&stroke_id) {
                    return Err(("bad_request", "stroke_id is not allowed".to_owned()));
                }
                self.may_still_draw(id).await?;
                if self
                    .state
                    .store
                    .delete_stroke(id, &stroke_id)
                    .await
                    .is_err()
                {
                    return Err(("not_found", "no such stroke".to_owned()));
                }
                Ok(Outgoing::Kept(
                    json!({"type": "undo", "stroke_id": stroke_id}),
                ))
            }
        }
    }

    async fn may_still_draw(&mut self, id: i64) -> Result<(), (&'static str, String)> {
        match self
            .access(ChannelKind::Drawing(id), Freshness::Database)
            .await
        {
            Ok(_) => Ok(()),
            Err(UNAVAILABLE) => Err(("unavailable", "try again".to_owned())),
            Err(reason) => {
                let name = format!("drawing:{id}");
                self.check_channel(name.as_bytes()).await;
                Err((reason, "you may no longer draw here".to_owned()))
            }
        }
    }

    fn story_data(&self, data: frames::StoryData) -> Outgoing {
        match data {
            frames::StoryData::Cursor { x, y, page } => {
                let mut cursor = json!({"type": "cursor", "x": x, "y": y});
                if let Some(page) = page {
                    cursor["page"] = json!(page);
                }
                Outgoing::Volatile(cursor)
            }
            frames::StoryData::Chat { text } => Outgoing::Kept(
                json!({"type": "chat", "text": self.state.tools.profanity.censor(&text)}),
            ),
        }
    }
}

/// Published data as it goes out: rebuilt from its type, never the
/// client's own JSON.
enum Outgoing {
    /// Cursors: not kept in history.
    Volatile(Value),
    Kept(Value),
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
