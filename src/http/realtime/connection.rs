//! One WebSocket connection's task: it reads the client's frames, writes
//! what the connection's outbox holds, pings, and closes with the right
//! code (1008 when its token stops working, 1013 when it was too slow).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use storybook_broadcast::{CONTROL, Member, Next, OutboxReceiver, outbox};
use storybook_store::User;
use tokio::sync::Notify;

use super::session::{Bucket, Session, Subscriptions};
use crate::realtime::{ConnHandle, Slot, frames};
use crate::state::AppState;

/// What the upgrade hands the connection's task.
pub(super) struct Accepted {
    pub(super) state: AppState,
    pub(super) user: User,
    /// Kept to check again that it still works.
    pub(super) token: Box<str>,
    /// When the token expires: the socket closes with 1008 then.
    pub(super) token_expires_in: Duration,
    pub(super) slot: Slot,
}

/// Why a connection's task ends early, with the close frame it sends.
pub(super) const TOKEN_STOPPED: (u16, &str) = (close_code::POLICY, "token no longer valid");

/// An open connection: everything its task keeps.
pub(super) struct Live {
    pub(super) socket: WebSocket,
    pub(super) session: Session,
    pub(super) receiver: OutboxReceiver,
    pub(super) ping: tokio::time::Interval,
    pub(super) idle: Duration,
    /// Pings until the token is checked again.
    pub(super) pings_to_token_check: u32,
    /// Fires at the token's expiry (boxed: a timer is larger than the
    /// pointer the idle connection keeps).
    pub(super) token_expiry: Pin<Box<tokio::time::Sleep>>,
    /// Held for its drop: the connection's place in the limits is given
    /// back when the task ends.
    pub(super) _slot: Slot,
}

/// Serves one connection in one task: it reads the client's frames,
/// writes what the outbox holds, and pings. One task (not a reader and a
/// writer) and an unsplit socket keep an idle connection small, and so
/// does building everything before the future starts: an `async fn` would
/// keep its arguments and the locals made from them side by side (2.5 KB
/// instead of about 1 KB a connection).
pub(super) fn connection(
    accepted: Box<Accepted>,
    socket: WebSocket,
) -> impl Future<Output = ()> + Send {
    let Accepted {
        state,
        user,
        token,
        token_expires_in,
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
        token_expiry: Box::pin(tokio::time::sleep(token_expires_in)),
        _slot: slot,
    };
    async move { live.run().await }
}

impl Live {
    /// Sends one message, waiting no longer than the idle time: a write
    /// the client does not take (it stopped reading) is given as long as
    /// silence is, then the connection is dropped.
    pub(super) async fn send(&mut self, message: Message) -> bool {
        matches!(
            tokio::time::timeout(self.idle, self.socket.send(message)).await,
            Ok(Ok(()))
        )
    }

    pub(super) async fn run(&mut self) {
        let mut last_seen = Instant::now();
        self.ping.tick().await;
        // Ends with the close frame to send, if any.
        let ending: Option<(u16, &'static str)> = loop {
            tokio::select! {
                () = &mut self.token_expiry => break Some(TOKEN_STOPPED),
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
pub(super) fn pings_per_token_check(settings: &crate::config::RealtimeArgs) -> u32 {
    let per = settings.ws_token_recheck_secs / settings.ws_ping_secs.max(1);
    u32::try_from(per.max(1)).unwrap_or(u32::MAX)
}

pub(super) fn settings_burst(state: &AppState) -> u32 {
    state.realtime.settings.ws_publish_burst.max(1)
}
