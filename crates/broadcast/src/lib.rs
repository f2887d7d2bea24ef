//! The broadcast layer: channels created on first subscribe and freed when
//! the last subscriber has left and their history has expired.
//!
//! Every channel keeps a ring of its recent messages, bounded three ways:
//! by count (`history_messages`, 100), by age (`history_age`, 60 s) and by
//! bytes (`history_bytes`), so no traffic can grow a channel past its
//! budget. Offsets increase by one per message; each channel has an
//! `epoch` drawn when it is created, so a client that comes back after the
//! channel (or the process) was gone can tell its history is not the one it
//! knew. Subscribers are bounded queues ([`Outbox`]): a subscriber that
//! cannot keep up is *kicked* (the connection closes it with 1013), never
//! buffered without limit. Frames are serialised once and shared.

mod broker;
mod history;
mod outbox;
mod presence;
mod redis_broker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

// tokio's clock: the same as std's, except that tests can pause it.
use tokio::time::Instant;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

pub use broker::{Ack, BoxFuture, Broker, CONTROL, Compose, Join, UserEvent, UserEvents};
pub use history::History;
pub use outbox::{Next, Outbox, OutboxReceiver, outbox};
pub use redis_broker::{RedisBroker, RedisSettings};

/// A frame as sent on the wire: JSON text, serialised once and shared by
/// reference count with every subscriber.
pub type Frame = bytes::Bytes;

/// Identifies one connection within this process.
pub type ConnId = u64;

/// A user as frames show them: `{"id", "username", "display_name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: i64,
    pub username: String,
    pub display_name: String,
}

/// The broadcast layer's bounds; every one is a setting of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub history_messages: usize,
    pub history_age: Duration,
    pub history_bytes: usize,
    /// Most users a `subscribed` frame lists, and most a channel may have
    /// for its `presence` frames to list changes (over it they carry the
    /// count alone).
    pub presence_list: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            history_messages: 100,
            history_age: Duration::from_secs(60),
            history_bytes: 256 * 1024,
            presence_list: 100,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub slow_consumers: AtomicU64,
}

impl Stats {
    /// A consumer that did not take what it was sent is closed (1013, by
    /// its connection task) and counted, once however often it is kicked.
    pub fn kick_slow(&self, outbox: &Outbox) {
        if outbox.kick() {
            self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `frame`, or kicks a consumer too slow to take it; whether it
    /// was queued.
    pub fn send_or_kick(&self, outbox: &Outbox, frame: Frame) -> bool {
        let queued = outbox.send(frame);
        if !queued {
            self.kick_slow(outbox);
        }
        queued
    }
}

struct Subscriber {
    member: Member,
    outbox: Outbox,
    /// Subscribed since the channel's last `presence` frame.
    fresh: bool,
}

struct ChannelState {
    name: Arc<str>,
    history: History,
    subscribers: HashMap<ConnId, Subscriber>,
    /// user id → connections of that user here (presence counts users once).
    presence: HashMap<i64, (Member, usize)>,
    /// Joins and leaves waiting for the next `presence` frame.
    batch: presence::Batch,
}

/// What a subscriber learns when it joins a channel.
#[derive(Debug)]
pub struct Subscribed {
    pub offset: u64,
    pub epoch: u64,
    /// At most `presence_list` users, the subscriber included.
    pub presence: Vec<Member>,
    /// How many distinct users are on the channel.
    pub presence_count: usize,
    pub recovered: bool,
    pub replay: Vec<Frame>,
}

/// The memory broker: every channel lives in this process.
pub struct Hub {
    channels: DashMap<Arc<str>, Arc<Mutex<ChannelState>>>,
    limits: Limits,
    epochs: AtomicU64,
    pub stats: Stats,
    user_events: OnceLock<UserEvents>,
    presence_queue: presence::FlushQueue,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A process-unique, hard-to-guess starting point for epochs.
pub(crate) fn epoch_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id()).rotate_left(32)) & 0x001F_FFFF_FFFF_FFFF
}

impl Hub {
    pub fn new(limits: Limits) -> Self {
        Self {
            channels: DashMap::new(),
            limits,
            epochs: AtomicU64::new(epoch_seed()),
            stats: Stats::default(),
            user_events: OnceLock::new(),
            presence_queue: presence::FlushQueue::default(),
        }
    }

    fn channel(&self, name: &str) -> Arc<Mutex<ChannelState>> {
        if let Some(channel) = self.channels.get(name) {
            return channel.clone();
        }
        let name: Arc<str> = Arc::from(name);
        self.channels
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Mutex::new(ChannelState {
                    name,
                    // JSON numbers above 2^53 lose precision in browsers.
                    history: History::new(
                        self.epochs.fetch_add(1, Ordering::Relaxed) & 0x001F_FFFF_FFFF_FFFF,
                    ),
                    subscribers: HashMap::new(),
                    presence: HashMap::new(),
                    batch: presence::Batch::default(),
                }))
            })
            .clone()
    }

    /// Joins a channel. With `since`, the messages after it are replayed if
    /// the history still holds all of them (`recovered`); otherwise nothing
    /// is replayed and the client reloads over REST. Others see the user
    /// join in the next `presence` frame when this is the user's first
    /// connection on the channel.
    ///
    /// `ack` makes the subscriber's answer; it is queued, then the replay,
    /// before the subscriber can receive anything newer: order is exact.
    pub fn subscribe_with_ack(
        &self,
        name: &str,
        conn: ConnId,
        member: Member,
        outbox: Outbox,
        since: Option<u64>,
        ack: impl FnOnce(&Subscribed) -> Frame,
    ) -> Subscribed {
        let channel = self.channel(name);
        let mut state = lock(&channel);
        let subscribed = self.join(&mut state, conn, member, outbox.clone(), since);
        let mut delivered = outbox.send(ack(&subscribed));
        for frame in &subscribed.replay {
            delivered &= outbox.send(frame.clone());
        }
        if !delivered {
            self.stats.kick_slow(&outbox);
        }
        subscribed
    }

    /// [`subscribe_with_ack`](Self::subscribe_with_ack) without an answer.
    pub fn subscribe(
        &self,
        name: &str,
        conn: ConnId,
        member: Member,
        outbox: Outbox,
        since: Option<u64>,
    ) -> Subscribed {
        let channel = self.channel(name);
        let mut state = lock(&channel);
        self.join(&mut state, conn, member, outbox, since)
    }

    fn join(
        &self,
        state: &mut ChannelState,
        conn: ConnId,
        member: Member,
        outbox: Outbox,
        since: Option<u64>,
    ) -> Subscribed {
        state.history.expire(Instant::now(), &self.limits);
        let (recovered, replay) = match since {
            Some(since) => match state.history.since(since) {
                Some(frames) => (true, frames),
                None => (false, Vec::new()),
            },
            None => (true, Vec::new()),
        };
        let entry = state
            .presence
            .entry(member.id)
            .or_insert_with(|| (member.clone(), 0));
        entry.1 += 1;
        let first = entry.1 == 1;
        let replaced = state.subscribers.insert(
            conn,
            Subscriber {
                member: member.clone(),
                outbox,
                fresh: true,
            },
        );
        if replaced.is_some() {
            // Subscribing twice on one connection counts once.
            if let Some(entry) = state.presence.get_mut(&member.id) {
                entry.1 -= 1;
            }
        } else if first {
            self.record_presence(state, &member, true);
        }
        let others = state.presence.values().map(|(m, _)| m);
        Subscribed {
            offset: state.history.latest(),
            epoch: state.history.epoch(),
            presence: presence::capped_list(&member, others, self.limits.presence_list),
            presence_count: state.presence.len(),
            recovered,
            replay,
        }
    }

    /// Leaves a channel; the user leaves presence when their last
    /// connection there goes. Returns whether the connection was subscribed.
    pub fn unsubscribe(&self, name: &str, conn: ConnId) -> bool {
        let Some(channel) = self.channels.get(name).map(|c| c.clone()) else {
            return false;
        };
        let mut state = lock(&channel);
        let Some(subscriber) = state.subscribers.remove(&conn) else {
            return false;
        };
        let user = subscriber.member.id;
        let last = match state.presence.get_mut(&user) {
            Some(entry) => {
                entry.1 -= 1;
                entry.1 == 0
            }
            None => false,
        };
        if last {
            state.presence.remove(&user);
            self.record_presence(&mut state, &subscriber.member, false);
        }
        let empty = state.subscribers.is_empty();
        drop(state);
        if empty {
            self.free_if_idle(name);
        }
        true
    }

    /// Publishes a message kept in history: `frame` is given the offset.
    /// Returns the offset, or `None` when the channel does not exist.
    pub fn publish(&self, name: &str, frame: impl FnOnce(u64) -> String) -> Option<u64> {
        let channel = self.channels.get(name).map(|c| c.clone())?;
        let mut state = lock(&channel);
        let now = Instant::now();
        state.history.expire(now, &self.limits);
        let offset = state.history.latest() + 1;
        let frame = Frame::from(frame(offset));
        state.history.push(offset, frame.clone(), now, &self.limits);
        self.stats.messages_in.fetch_add(1, Ordering::Relaxed);
        self.fan_out(&state, &frame);
        Some(offset)
    }

    /// The latest offset of a channel (0 when it has none).
    pub fn latest(&self, name: &str) -> u64 {
        self.channels
            .get(name)
            .map_or(0, |c| lock(&c).history.latest())
    }

    /// Sends a frame that is never kept (cursors): a full queue just misses
    /// it; nobody is kicked for a cursor.
    pub fn publish_volatile(&self, name: &str, frame: &Frame) {
        let Some(channel) = self.channels.get(name).map(|c| c.clone()) else {
            return;
        };
        let state = lock(&channel);
        self.stats.messages_in.fetch_add(1, Ordering::Relaxed);
        for subscriber in state.subscribers.values() {
            if subscriber.outbox.offer(frame.clone()) {
                self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Delivers to every subscriber; kicks those whose queue is full.
    fn fan_out(&self, state: &ChannelState, frame: &Frame) {
        for subscriber in state.subscribers.values() {
            if self.stats.send_or_kick(&subscriber.outbox, frame.clone()) {
                self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Frees the channel if nobody is subscribed and its history expired.
    fn free_if_idle(&self, name: &str) {
        let now = Instant::now();
        self.channels.remove_if(name, |_, channel| {
            let mut state = lock(channel);
            state.history.expire(now, &self.limits);
            state.subscribers.is_empty() && state.history.is_empty()
        });
    }

    /// Expires histories everywhere and frees idle channels (run every few
    /// seconds).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.channels.retain(|_, channel| {
            let mut state = lock(channel);
            state.history.expire(now, &self.limits);
            !(state.subscribers.is_empty() && state.history.is_empty())
        });
        // A map keeps the table it grew to. A table left from a crowd is
        // one live block among the crowd's freed memory, and the allocator
        // can give back nothing above it: give the table back instead.
        self.channels.shrink_to_fit();
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
}

impl Broker for Hub {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn subscribe<'a>(&'a self, join: Join<'a>, ack: Ack<'a>) -> BoxFuture<'a, Subscribed> {
        let subscribed = self.subscribe_with_ack(
            join.channel,
            join.conn,
            join.member,
            join.outbox,
            join.since,
            ack,
        );
        Box::pin(std::future::ready(subscribed))
    }

    fn unsubscribe<'a>(&'a self, channel: &'a str, conn: ConnId) -> BoxFuture<'a, ()> {
        Hub::unsubscribe(self, channel, conn);
        Box::pin(std::future::ready(()))
    }

    fn publish<'a>(&'a self, channel: &'a str, compose: Compose<'a>) -> BoxFuture<'a, Option<u64>> {
        Box::pin(std::future::ready(Hub::publish(self, channel, compose)))
    }

    fn publish_volatile<'a>(&'a self, channel: &'a str, frame: Frame) -> BoxFuture<'a, ()> {
        Hub::publish_volatile(self, channel, &frame);
        Box::pin(std::future::ready(()))
    }

    fn signal(&self, channel: &str, frame: Frame) {
        let Some(channel) = self.channels.get(channel).map(|c| c.clone()) else {
            return;
        };
        let state = lock(&channel);
        self.fan_out(&state, &frame);
    }

    fn latest(&self, channel: &str) -> u64 {
        Hub::latest(self, channel)
    }

    fn user_event(&self, event: UserEvent) -> BoxFuture<'_, ()> {
        if let Some(handler) = self.user_events.get() {
            handler(event);
        }
        Box::pin(std::future::ready(()))
    }

    fn on_user_event(&self, handler: UserEvents) {
        let _ = self.user_events.set(handler);
    }

    fn sweep(&self) {
        Hub::sweep(self);
    }

    fn flush_presence(&self) -> BoxFuture<'_, ()> {
        Hub::flush_presence(self);
        Box::pin(std::future::ready(()))
    }

    fn channel_count(&self) -> usize {
        Hub::channel_count(self)
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn is_healthy(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
