//! The realtime layer's state: the broker, who is connected here, and
//! the connection limits; it is the events seam's implementation. The
//! WebSocket protocol is `http/realtime/`; every frame either side sends
//! is built in `frames`.

pub mod frames;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use storybook_broadcast::{
    Broker, ConnId, Hub, Limits, Outbox, RedisBroker, RedisSettings, UserEvent,
};
use tokio::sync::Notify;

use crate::config::RealtimeArgs;
use crate::events::{BoxFuture, Event, Events};

/// What the server holds of one open connection, to reach it from outside
/// its task: pushes (notifications) and checks (revocations).
#[derive(Clone)]
pub struct ConnHandle {
    pub outbox: Outbox,
    /// Notified to make the connection check its token (closing with 1008
    /// when it stopped working) and every channel it is on.
    pub check: Arc<Notify>,
}

pub struct Realtime {
    /// Channels, history and presence: in memory, or shared through Redis.
    pub broker: Box<dyn Broker>,
    pub settings: RealtimeArgs,
    /// user id → that user's open connections.
    users: DashMap<i64, HashMap<ConnId, ConnHandle>>,
    /// user id → connections reserved, counted from before the upgrade
    /// (registration in `users` comes after it, so concurrent handshakes
    /// would all pass a check of `users`).
    per_user: DashMap<i64, usize>,
    per_ip: DashMap<IpAddr, usize>,
    /// The server's token cache: a user event from another process makes
    /// this one forget that user too.
    tokens: std::sync::OnceLock<Arc<crate::token_cache::TokenCache>>,
    connections: AtomicUsize,
    next_conn: AtomicU64,
}

/// Why a connection was refused before the upgrade.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooManyForUser,
    TooManyForAddress,
    TooManyInAll,
}

/// A reserved connection slot, released when dropped.
pub struct Slot {
    realtime: Arc<Realtime>,
    pub user_id: i64,
    pub conn: ConnId,
    ip: Option<IpAddr>,
    /// Whether the slot is counted in `per_user` (the last of its checks).
    counted_for_user: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let realtime = &self.realtime;
        realtime.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            realtime.per_ip.remove_if_mut(&ip, |_, count| {
                *count -= 1;
                *count == 0
            });
        }
        if self.counted_for_user {
            realtime.per_user.remove_if_mut(&self.user_id, |_, count| {
                *count -= 1;
                *count == 0
            });
        }
        realtime.users.remove_if_mut(&self.user_id, |_, conns| {
            conns.remove(&self.conn);
            conns.is_empty()
        });
    }
}

/// Every `WS_PRESENCE_INTERVAL_MS`, each channel's joins and leaves go out
/// as one `presence` frame; stops with the realtime layer.
async fn send_presence(realtime: Weak<Realtime>) {
    let period = match realtime.upgrade() {
        Some(realtime) => Duration::from_millis(realtime.settings.ws_presence_interval_ms.max(10)),
        None => return,
    };
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(realtime) = realtime.upgrade() else {
            return;
        };
        realtime.broker.flush_presence().await;
    }
}

impl Realtime {
    /// The realtime layer with the broker the settings ask for (Redis when
    /// `REDIS_URL` is set). Fails only on a malformed Redis address; an
    /// unreachable Redis is reported by `/readyz` and retried.
    pub fn new(settings: RealtimeArgs) -> Result<Arc<Self>, String> {
        let limits = Limits {
            history_messages: settings.ws_history_messages,
            history_age: Duration::from_secs(settings.ws_history_secs),
            history_bytes: settings.ws_history_bytes,
            presence_list: settings.ws_presence_list.max(1),
        };
        let broker: Box<dyn Broker> = match &settings.redis_url {
            Some(url) => Box::new(RedisBroker::start(
                RedisSettings {
                    url: url.expose().to_owned(),
                    prefix: settings.redis_prefix.clone(),
                    presence_ttl: Duration::from_secs(settings.redis_presence_ttl_secs.max(1)),
                    timeout: Duration::from_millis(settings.redis_timeout_ms.max(1)),
                    pending_frames: settings.ws_queue_frames,
                    pending_subscriptions: settings.redis_pending_subscriptions,
                },
                limits,
            )?),
            None => Box::new(Hub::new(limits)),
        };
        let realtime = Arc::new(Self {
            broker,
            settings,
            users: DashMap::new(),
            per_ip: DashMap::new(),
            per_user: DashMap::new(),
            tokens: std::sync::OnceLock::new(),
            connections: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
        });
        // User events come back from the broker (through Redis, from any
        // process) to the connections held here.
        let weak: Weak<Self> = Arc::downgrade(&realtime);
        realtime.broker.on_user_event(Arc::new(move |event| {
            if let Some(realtime) = weak.upgrade() {
                realtime.deliver_user_event(event);
            }
        }));
        tokio::spawn(send_presence(Arc::downgrade(&realtime)));
        Ok(realtime)
    }

    /// Reserves a slot for a new connection within every limit.
    pub fn reserve(self: &Arc<Self>, user_id: i64, ip: Option<IpAddr>) -> Result<Slot, Refused> {
        let settings = &self.settings;
        if self.connections.fetch_add(1, Ordering::Relaxed) >= settings.ws_max_connections {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::TooManyInAll);
        }
        if let Some(ip) = ip {
            let mut count = self.per_ip.entry(ip).or_insert(0);
            if *count >= settings.ws_max_per_ip {
                drop(count);
                self.connections.fetch_sub(1, Ordering::Relaxed);
                return Err(Refused::TooManyForAddress);
            }
            *count += 1;
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut slot = Slot {
            realtime: self.clone(),
            user_id,
            conn,
            ip,
            counted_for_user: false,
        };
        // The user limit is checked last: the slot's drop undoes the rest.
        // Checked and counted under the entry's lock, so handshakes at
        // once cannot all pass it.
        let mut reserved = self.per_user.entry(user_id).or_insert(0);
        if *reserved >= settings.ws_max_per_user {
            drop(reserved);
            self.per_user.remove_if(&user_id, |_, count| *count == 0);
            return Err(Refused::TooManyForUser);
        }
        *reserved += 1;
        drop(reserved);
        slot.counted_for_user = true;
        Ok(slot)
    }

    /// Periodic housekeeping: the broker's (expired histories, idle
    /// channels), then the tables of the connection registry, which keep
    /// the size a crowd grew them to (and would pin the freed memory around
    /// them) unless given back.
    pub fn sweep(&self) {
        self.broker.sweep();
        self.users.shrink_to_fit();
        self.per_ip.shrink_to_fit();
        self.per_user.shrink_to_fit();
    }

    /// Which token cache a user event from elsewhere invalidates.
    pub fn share_token_cache(&self, tokens: Arc<crate::token_cache::TokenCache>) {
        let _ = self.tokens.set(tokens);
    }

    /// Makes a connection reachable for pushes and closing.
    pub fn register(&self, slot: &Slot, handle: ConnHandle) {
        self.users
            .entry(slot.user_id)
            .or_default()
            .insert(slot.conn, handle);
    }

    /// A user event that reached this process: acts on the connections here.
    fn deliver_user_event(&self, event: UserEvent) {
        match event {
            UserEvent::Push { user_id, frame } => {
                if let Some(conns) = self.users.get(&user_id) {
                    for handle in conns.values() {
                        self.broker
                            .stats()
                            .send_or_kick(&handle.outbox, frame.clone());
                    }
                }
            }
            UserEvent::Recheck { user_id } => {
                if let Some(tokens) = self.tokens.get() {
                    tokens.forget_user(user_id);
                }
                if let Some(conns) = self.users.get(&user_id) {
                    for handle in conns.values() {
                        handle.check.notify_one();
                    }
                }
            }
            UserEvent::Channel { channel } => {
                self.broker.signal(&channel, frames::recheck(&channel));
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Events for Realtime {
    fn send<'a>(&'a self, event: Event<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let broker = &self.broker;
            match event {
                Event::Notification {
                    user_id,
                    notification,
                } => {
                    let frame = frames::notification(notification);
                    broker.user_event(UserEvent::Push { user_id, frame }).await;
                }
                Event::AccessChanged { user_id } | Event::TokensRevoked { user_id } => {
                    broker.user_event(UserEvent::Recheck { user_id }).await;
                }
                Event::DrawingChanged { drawing_id } => {
                    let channel = format!("drawing:{drawing_id}");
                    broker.user_event(UserEvent::Channel { channel }).await;
                }
                Event::StoryChanged {
                    story_id,
                    drawing_ids,
                } => {
                    let channel = format!("story:{story_id}");
                    broker.user_event(UserEvent::Channel { channel }).await;
                    for drawing_id in drawing_ids {
                        let channel = format!("drawing:{drawing_id}");
                        broker.user_event(UserEvent::Channel { channel }).await;
                    }
                }
            }
        })
    }

    fn broker_name(&self) -> Option<&'static str> {
        Some(self.broker.name())
    }

    fn is_healthy(&self) -> bool {
        self.broker.is_healthy()
    }

    fn connection_count(&self) -> Option<usize> {
        Some(Realtime::connection_count(self))
    }

    fn write_metrics(&self, out: &mut String) {
        use crate::metrics::{counter, gauge};
        let stats = self.broker.stats();
        let count = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        gauge(
            out,
            "ws_connections",
            "Open WebSocket connections.",
            Realtime::connection_count(self),
        );
        gauge(
            out,
            "ws_channels",
            "Channels in memory.",
            self.broker.channel_count(),
        );
        counter(
            out,
            "ws_messages_in_total",
            "Messages published.",
            count(&stats.messages_in),
        );
        counter(
            out,
            "ws_messages_out_total",
            "Frames queued to subscribers.",
            count(&stats.messages_out),
        );
        counter(
            out,
            "ws_slow_consumers_total",
            "Connections closed for reading too slowly.",
            count(&stats.slow_consumers),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-user limit counts a connection from its reservation, before
    /// the upgrade: handshakes at once cannot all pass it.
    #[tokio::test]
    async fn the_user_limit_counts_reservations_not_registrations() {
        let realtime = Realtime::new(RealtimeArgs {
            ws_max_per_user: 2,
            ..RealtimeArgs::default()
        })
        .unwrap();
        let first = realtime.reserve(7, None).unwrap();
        let second = realtime.reserve(7, None).unwrap();
        assert_eq!(
            realtime.reserve(7, None).err(),
            Some(Refused::TooManyForUser),
            "nothing registered yet, and still refused"
        );
        assert!(realtime.reserve(8, None).is_ok(), "another user is not");
        drop(first);
        assert!(
            realtime.reserve(7, None).is_ok(),
            "a slot given back is free"
        );
        drop(second);
        assert_eq!(
            realtime.connections.load(Ordering::Relaxed),
            0,
            "all dropped"
        );
        assert!(realtime.per_user.is_empty());
    }
}
