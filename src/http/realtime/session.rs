//! What a connection is doing: its user, its channels and their access,
//! its publish rate; and the handling of each client frame (subscribe,
//! unsubscribe, publish, ping), with the access checks that revocation
//! repeats.

use std::time::Instant;

use serde_json::{Value, json};
use storybook_broadcast::{Frame, Join, Member};
use storybook_canvas::{MAX_STROKES, check_stroke};
use storybook_store::{StoreError, User};

use super::{ChannelKind, parse_channel};
use crate::error::ApiError;
use crate::extract::user_for_token_uncached;
use crate::realtime::{ConnHandle, frames};
use crate::state::AppState;

/// One connection's own state, kept in its task.
pub(super) struct Session {
    pub(super) state: AppState,
    pub(super) user: User,
    pub(super) token: Box<str>,
    pub(super) member: Member,
    pub(super) conn: u64,
    pub(super) handle: ConnHandle,
    /// channel name → its kind and, for drawings, the canvas size.
    pub(super) channels: Subscriptions,
    pub(super) bucket: Bucket,
}

/// The channels a connection is subscribed to, with what a publish needs
/// to know of each: a short list (at most `WS_MAX_CHANNELS`, usually one),
/// so a vector searched in order, a third the memory of a hash map's table
/// on each of thousands of connections.
#[derive(Default)]
pub(super) struct Subscriptions(Vec<(Box<str>, ChannelKind, (u32, u32))>);

impl Subscriptions {
    pub(super) fn get(&self, name: &str) -> Option<(ChannelKind, (u32, u32))> {
        self.0
            .iter()
            .find(|(known, _, _)| &**known == name)
            .map(|&(_, kind, canvas)| (kind, canvas))
    }

    pub(super) fn insert(&mut self, name: &str, kind: ChannelKind, canvas: (u32, u32)) {
        match self.0.iter_mut().find(|(known, _, _)| &**known == name) {
            Some((_, known_kind, known_canvas)) => (*known_kind, *known_canvas) = (kind, canvas),
            None => self.0.push((name.into(), kind, canvas)),
        }
    }

    /// Whether it was there.
    pub(super) fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(known, _, _)| &**known != name);
        self.0.len() != before
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _, _)| &**name)
    }
}

/// What reading a channel needs: the canvas size for a drawing, nothing
/// more for the others; or why it may not be read.
pub(super) type Access = Result<(u32, u32), &'static str>;
pub(super) const FORBIDDEN: &str = "forbidden";
pub(super) const NOT_FOUND: &str = "not_found";
pub(super) const UNAVAILABLE: &str = "unavailable";

impl Session {
    pub(super) fn reply(&self, frame: Frame) {
        let stats = self.state.realtime.broker.stats();
        stats.send_or_kick(&self.handle.outbox, frame);
    }

    /// Whether this connection's user may read a channel now: `Err` holds
    /// the reason an `unsubscribed` frame gives, or `unavailable` when the
    /// database did not answer (which revokes nothing). Stories are read
    /// from the database, never this process's read cache: another
    /// process's unpublish is not in it, and neither a subscribe nor a
    /// re-check may let a reader in on a story that is no longer theirs.
    pub(super) async fn access(&self, kind: ChannelKind) -> Access {
        let checked = match kind {
            ChannelKind::Lobby => return Ok((0, 0)),
            ChannelKind::Drawing(id) => {
                crate::http::access::drawable(&self.state.store, id, &self.user)
                    .await
                    .map(|drawing| (drawing.width as u32, drawing.height as u32))
            }
            ChannelKind::Story(id) => {
                // The author and status alone: a subscribe of a crowd reads
                // no story's pages.
                return match self.state.store.story_access(id).await {
                    Ok((author, published))
                        if storybook_store::story_readable(author, published, Some(&self.user)) =>
                    {
                        Ok((0, 0))
                    }
                    Ok(_) => Err(FORBIDDEN),
                    Err(StoreError::NotFound) => Err(NOT_FOUND),
                    Err(_) => Err(UNAVAILABLE),
                };
            }
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
    pub(super) async fn token_works(&mut self) -> bool {
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
    pub(super) async fn check_everything(&mut self) -> bool {
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
    pub(super) async fn check_channel(&mut self, name: &[u8]) {
        let Some(name) = std::str::from_utf8(name).ok() else {
            return;
        };
        let Some((kind, _)) = self.channels.get(name) else {
            return;
        };
        if let Err(reason @ (FORBIDDEN | NOT_FOUND)) = self.access(kind).await {
            self.channels.remove(name);
            self.state
                .realtime
                .broker
                .unsubscribe(name, self.conn)
                .await;
            self.reply(frames::unsubscribed(name, reason));
        }
    }

    pub(super) async fn join(
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

    pub(super) async fn handle_text(&mut self, text: &str) {
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

    pub(super) async fn subscribe(&mut self, name: &str, since: Option<u64>) {
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
        match self.access(kind).await {
            Ok(canvas) => self.join(name, kind, canvas, since).await,
            // Short of the database is not "no such channel" (v1.6).
            Err(UNAVAILABLE) => self.reply(frames::error(
                "busy",
                "the server could not check this channel now; try again",
                Some(name),
            )),
            Err(_) => {
                let what = match kind {
                    ChannelKind::Story(_) => "no such story",
                    _ => "no such drawing",
                };
                self.reply(frames::error("not_found", what, Some(name)));
            }
        }
    }

    pub(super) async fn publish(&mut self, name: &str, data: Value) {
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
    pub(super) async fn drawing_data(
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

    pub(super) async fn may_still_draw(&mut self, id: i64) -> Result<(), (&'static str, String)> {
        match self.access(ChannelKind::Drawing(id)).await {
            Ok(_) => Ok(()),
            Err(UNAVAILABLE) => Err(("unavailable", "try again".to_owned())),
            Err(reason) => {
                let name = format!("drawing:{id}");
                self.check_channel(name.as_bytes()).await;
                Err((reason, "you may no longer draw here".to_owned()))
            }
        }
    }

    pub(super) fn story_data(&self, data: frames::StoryData) -> Outgoing {
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
pub(super) enum Outgoing {
    /// Cursors: not kept in history.
    Volatile(Value),
    Kept(Value),
}

/// A token bucket: `rate` a second, at most `burst` saved up.
pub(super) struct Bucket {
    pub(super) tokens: f64,
    pub(super) rate: f64,
    pub(super) burst: f64,
    pub(super) at: Instant,
}

impl Bucket {
    pub(super) fn take(&mut self) -> bool {
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
