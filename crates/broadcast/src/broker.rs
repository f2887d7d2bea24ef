//! The one interface the server talks to: a [`Broker`] carries channels,
//! offsets, history and presence, and relays per-user events. Two brokers
//! implement it: the in-memory [`Hub`](crate::Hub) (one process) and
//! [`RedisBroker`](crate::RedisBroker) (several processes sharing Redis).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{ConnId, Frame, Member, Outbox, Stats, Subscribed};

/// A boxed future, so the trait can be used as `dyn Broker`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds the answer to a subscribe from what the broker found; it is
/// queued before the replay and before anything newer.
pub type Ack<'a> = &'a (dyn Fn(&Subscribed) -> Frame + Send + Sync);

/// Builds a history message given its offset.
pub type Compose<'a> = &'a (dyn Fn(u64) -> String + Send + Sync);

/// A connection joining a channel.
pub struct Join<'a> {
    pub channel: &'a str,
    pub conn: ConnId,
    pub member: Member,
    pub outbox: Outbox,
    /// Replay what came after this offset, if the history still has it all.
    pub since: Option<u64>,
}

/// Something that happens to a user wherever their connections are.
#[derive(Debug, Clone)]
pub enum UserEvent {
    /// Deliver this frame to every open connection of the user.
    Push { user_id: i64, frame: Frame },
    /// Every open connection of the user checks its token (closing when
    /// it no longer works) and what it may read.
    Recheck { user_id: i64 },
    /// Every connection on the channel checks whether it may still read
    /// it: each process hands [`CONTROL`]`channel` to its own subscribers
    /// with [`Broker::signal`].
    Channel { channel: String },
}

/// The first byte of a control frame: queued to a connection like any
/// frame, so it arrives in order with them, but read by the connection
/// instead of sent (a frame for the client is JSON, never this byte).
pub const CONTROL: u8 = 0;

/// Where a broker hands the user events that reach this process.
pub type UserEvents = Arc<dyn Fn(UserEvent) + Send + Sync>;

pub trait Broker: Send + Sync {
    /// `"memory"` or `"redis"`, as `/api/features` reports it.
    fn name(&self) -> &'static str;

    /// Joins a channel: queues `ack`, then the replay, then everything
    /// newer, in that order; others see the user join in a `presence` frame
    /// when this is the user's first connection there (across every
    /// process).
    fn subscribe<'a>(&'a self, join: Join<'a>, ack: Ack<'a>) -> BoxFuture<'a, Subscribed>;

    /// Leaves a channel; the user leaves presence when their last
    /// connection there (across every process) goes.
    fn unsubscribe<'a>(&'a self, channel: &'a str, conn: ConnId) -> BoxFuture<'a, ()>;

    /// Publishes a message kept in history; returns its offset, or `None`
    /// when the channel has no subscriber here (nothing to publish to).
    fn publish<'a>(&'a self, channel: &'a str, compose: Compose<'a>) -> BoxFuture<'a, Option<u64>>;

    /// Sends a frame that is never kept (cursors): a full queue just misses
    /// it, and nobody is kicked for it.
    fn publish_volatile<'a>(&'a self, channel: &'a str, frame: Frame) -> BoxFuture<'a, ()>;

    /// Queues `frame` to this process's subscribers of a channel (not in
    /// history, not through Redis), kicking any whose queue is full: a
    /// control frame must not be lost, and a connection that cannot take
    /// one is closed, which revokes everything.
    fn signal(&self, channel: &str, frame: Frame);

    /// The latest offset this process knows for a channel (0 when none).
    fn latest(&self, channel: &str) -> u64;

    /// Relays a user event to the process(es) holding that user's
    /// connections, including this one.
    fn user_event(&self, event: UserEvent) -> BoxFuture<'_, ()>;

    /// Sets where user events that reach this process are delivered.
    fn on_user_event(&self, handler: UserEvents);

    /// Periodic housekeeping: expire histories, free idle channels.
    fn sweep(&self);

    /// Sends each channel with presence changes its batched `presence`
    /// frame (contract v1.6); run every `WS_PRESENCE_INTERVAL_MS`.
    fn flush_presence(&self) -> BoxFuture<'_, ()>;

    /// Channels with state in this process.
    fn channel_count(&self) -> usize;

    fn stats(&self) -> &Stats;

    /// Whether the broker can do everything it promises right now (the
    /// memory broker always can; the Redis one while Redis answers).
    fn is_healthy(&self) -> bool;
}
