//! The Redis broker: several server processes share channels, offsets,
//! history and presence through Redis.
//!
//! - **Order and offsets.** A publish is one Lua script: it takes the next
//!   offset, appends to the channel's history (bounded by count, bytes and
//!   age like the memory broker's) and `PUBLISH`es, atomically, so every
//!   process sees every channel in one order.
//! - **Fan-out.** Each process holds one pub/sub connection and subscribes
//!   it once per channel that has a local subscriber (not once per socket);
//!   it delivers what arrives to its local queues, kicking slow ones.
//! - **Presence.** A sorted set per channel holds `user:process` entries
//!   scored by expiry; each process renews its own every third of the TTL,
//!   so a crashed process's users leave within the TTL (45 s by default)
//!   plus one renewal. Joins and leaves are decided inside scripts, so a
//!   user on two processes joins once and leaves once; the scripts publish
//!   them as events (with the channel's count) that every process batches
//!   into its own members' `presence` frames, so a join reaches every
//!   process's members within two intervals.
//! - **Outages.** When Redis stops answering, local sockets keep working on
//!   this process alone (local offsets, no history), `is_healthy` turns
//!   false (`/readyz` says so), and the pub/sub connection is re-made with
//!   back-off; after Redis comes back, presence is renewed by the next
//!   heartbeat and a channel whose history was lost gets a new epoch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use crate::{
    Compose, ConnId, Frame, Limits, Member, Outbox, Stats, UserEvent, UserEvents, epoch_seed,
};

mod broker;
mod listener;
mod presence;
use listener::listen;
use presence::heartbeat;

/// How to reach Redis and how presence is kept there.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Prefix of every key and pub/sub channel, so several deployments
    /// (or tests) can share one Redis.
    pub prefix: String,
    /// How long a presence entry lives without renewal.
    pub presence_ttl: Duration,
    /// How long one Redis command may take before it counts as failed.
    pub timeout: Duration,
    /// Frames held for a connection while its subscribe is in flight.
    pub pending_frames: usize,
    /// Channel subscribe and unsubscribe requests waiting for the pub/sub
    /// connection; a subscribe that finds the queue full is served by this
    /// process alone, like during an outage.
    pub pending_subscriptions: usize,
}

/// Messages to the task that owns the pub/sub connection.
enum Control {
    Listen(Arc<str>, oneshot::Sender<bool>),
    Unlisten(Arc<str>),
}

struct LocalSubscriber {
    member_id: i64,
    outbox: Outbox,
    /// Frames that arrived while the subscribe was in flight, with their
    /// offsets (0: not a history message); `None` once the subscriber is
    /// live.
    pending: Option<Vec<(u64, Frame)>>,
    /// Has had no `presence` frame since it was live (see
    /// [`crate::presence`]).
    fresh: bool,
}

#[derive(Default)]
struct LocalState {
    subscribers: HashMap<ConnId, LocalSubscriber>,
    /// user id → (member, connections here).
    users: HashMap<i64, (Member, usize)>,
    /// The latest offset seen here, for cursors and for outages.
    latest: u64,
    epoch: u64,
    /// Users on the channel across every process, as the last presence
    /// event said.
    count: usize,
    /// Presence changes waiting for the next frame.
    batch: crate::presence::Batch,
}

struct LocalChannel {
    state: Mutex<LocalState>,
    /// The pub/sub connection generation this channel is subscribed on
    /// (0: none yet).
    listening: AtomicU64,
}

struct Scripts {
    publish: redis::Script,
    join: redis::Script,
    leave: redis::Script,
    heartbeat: redis::Script,
}

struct Inner {
    settings: RedisSettings,
    limits: Limits,
    /// This process's name in presence entries and `except` markers.
    process: String,
    client: redis::Client,
    commands: ConnectionManager,
    channels: DashMap<Arc<str>, Arc<LocalChannel>>,
    control: mpsc::Sender<Control>,
    /// Where user events (pushes, disconnects) travel between processes;
    /// made once, as every pub/sub message is compared with it.
    users_topic: String,
    /// Bumped each time the pub/sub connection is (re)made.
    generation: AtomicU64,
    listening: AtomicBool,
    commands_ok: AtomicBool,
    epochs: AtomicU64,
    stats: Stats,
    user_events: OnceLock<UserEvents>,
    presence_queue: crate::presence::FlushQueue,
    scripts: Scripts,
    /// Revocations waiting for Redis to take them.
    retrying: AtomicUsize,
    /// Notified when commands start failing: the pub/sub connection is
    /// made again too, since a dead one is not always noticed (and
    /// `/readyz` would say 200 while nothing arrives).
    pubsub_reset: Arc<tokio::sync::Notify>,
    /// Command failures that asked for a reset, so the listener can tell a
    /// reset asked for after its connection was made from a stale one:
    /// `notify_one` keeps a permit when nobody waits, and a permit left
    /// from the outage would drop the connection made after it, leaving a
    /// window with `/readyz` 200 and nothing subscribed.
    resets: AtomicU64,
}

/// Channels renewed by one heartbeat script.
const HEARTBEAT_BATCH: usize = 256;

/// How long a revocation is retried while Redis does not take it.
const REVOCATION_RETRY: Duration = Duration::from_secs(60);
/// Revocations that may wait for Redis at once.
const REVOCATIONS_RETRYING: usize = 1024;

/// The Redis broker. Cheap to share; its tasks stop when it is dropped.
pub struct RedisBroker {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A script of the broker, with the shared prelude before it.
macro_rules! script {
    ($file:literal) => {
        redis::Script::new(concat!(include_str!("prelude.lua"), include_str!($file)))
    };
}

/// Splits a message at its offset: the frame is composed twice, with 1
/// and 2, and the one byte where they differ is where the offset goes.
/// (Whatever the data holds, only the offset changes between the two.)
fn split_at_offset(compose: Compose<'_>) -> Option<(String, String)> {
    let one = compose(1);
    let two = compose(2);
    if one.len() != two.len() {
        return None;
    }
    let mut differ = one
        .bytes()
        .zip(two.bytes())
        .enumerate()
        .filter(|(_, (a, b))| a != b);
    let (at, _) = differ.next()?;
    if differ.next().is_some() {
        return None;
    }
    Some((one[..at].to_owned(), one[at + 1..].to_owned()))
}

/// Reads the header of a pub/sub payload: `<offset|v> <except>\n<frame>`.
fn parse_payload(payload: &[u8]) -> Option<(Option<u64>, &str, &[u8])> {
    let newline = payload.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&payload[..newline]).ok()?;
    let (offset, except) = header.split_once(' ')?;
    let offset = if offset == "v" {
        None
    } else {
        Some(offset.parse().ok()?)
    };
    Some((offset, except, &payload[newline + 1..]))
}

impl RedisBroker {
    /// Connects lazily: the server starts even while Redis is down, and
    /// reports it through [`is_healthy`](Broker::is_healthy).
    pub fn start(settings: RedisSettings, limits: Limits) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| format!("REDIS_URL is not a Redis address: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        // Bounded: subscribe requests wait their turn rather than pile up.
        let (control, control_receiver) = mpsc::channel(settings.pending_subscriptions.max(1));
        let seed = epoch_seed();
        let inner = Arc::new(Inner {
            process: format!("{seed:x}"),
            users_topic: format!("{}:users", settings.prefix),
            client,
            commands,
            channels: DashMap::new(),
            control,
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            commands_ok: AtomicBool::new(true),
            epochs: AtomicU64::new(seed),
            stats: Stats::default(),
            user_events: OnceLock::new(),
            presence_queue: crate::presence::FlushQueue::default(),
            retrying: AtomicUsize::new(0),
            pubsub_reset: Arc::new(tokio::sync::Notify::new()),
            resets: AtomicU64::new(0),
            scripts: Scripts {
                publish: script!("publish.lua"),
                join: script!("join.lua"),
                leave: script!("leave.lua"),
                heartbeat: script!("heartbeat.lua"),
            },
            settings,
            limits,
        });
        tokio::spawn(listen(Arc::downgrade(&inner), control_receiver));
        tokio::spawn(heartbeat(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }
}

impl Inner {
    fn key(&self, channel: &str, part: &str) -> String {
        format!("{}:c:{channel}:{part}", self.settings.prefix)
    }

    fn topic(&self, channel: &str) -> String {
        format!("{}:c:{channel}", self.settings.prefix)
    }

    fn channel_of_topic<'t>(&self, topic: &'t str) -> Option<&'t str> {
        topic
            .strip_prefix(self.settings.prefix.as_str())?
            .strip_prefix(":c:")
    }

    fn keep_ms(&self) -> u64 {
        self.limits
            .history_age
            .max(self.settings.presence_ttl)
            .as_millis() as u64
    }

    fn new_epoch(&self) -> u64 {
        // JSON numbers above 2^53 lose precision in browsers.
        self.epochs.fetch_add(1, Ordering::Relaxed) & 0x001F_FFFF_FFFF_FFFF
    }

    /// Runs a Redis call with the command time-out, recording whether
    /// Redis answered.
    async fn call<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let result = tokio::time::timeout(self.settings.timeout, call).await;
        match result {
            Ok(Ok(value)) => {
                self.commands_ok.store(true, Ordering::Relaxed);
                Some(value)
            }
            Ok(Err(error)) => {
                if self.commands_ok.swap(false, Ordering::Relaxed) {
                    self.resets.fetch_add(1, Ordering::Relaxed);
                    self.pubsub_reset.notify_one();
                    tracing::warn!(%error, what, "Redis command failed; serving this process's sockets alone");
                }
                None
            }
            Err(_) => {
                if self.commands_ok.swap(false, Ordering::Relaxed) {
                    self.resets.fetch_add(1, Ordering::Relaxed);
                    self.pubsub_reset.notify_one();
                    tracing::warn!(
                        what,
                        "Redis did not answer in time; serving this process's sockets alone"
                    );
                }
                None
            }
        }
    }

    /// Makes sure the pub/sub connection listens to the channel.
    async fn ensure_listening(&self, name: &Arc<str>, channel: &LocalChannel) -> bool {
        if self.listening.load(Ordering::Relaxed)
            && channel.listening.load(Ordering::Relaxed) == self.generation.load(Ordering::Relaxed)
        {
            return true;
        }
        let (answer, answered) = oneshot::channel();
        if self
            .control
            .try_send(Control::Listen(name.clone(), answer))
            .is_err()
        {
            return false;
        }
        matches!(
            tokio::time::timeout(self.settings.timeout, answered).await,
            Ok(Ok(true))
        )
    }

    /// Delivers a frame that came through Redis (or, in an outage, from
    /// this process) to the local subscribers of a channel.
    fn deliver(&self, name: &str, offset: Option<u64>, except: &str, frame: Frame) {
        let Some(channel) = self.channels.get(name).map(|c| c.clone()) else {
            return;
        };
        let except_conn: Option<ConnId> = except
            .split_once('/')
            .filter(|(process, _)| *process == self.process)
            .and_then(|(_, conn)| conn.parse().ok());
        let mut state = lock(&channel.state);
        if let Some(offset) = offset.filter(|&o| o > 0) {
            state.latest = offset;
        }
        let pending_limit = self.settings.pending_frames;
        for (conn, subscriber) in &mut state.subscribers {
            if Some(*conn) == except_conn {
                continue;
            }
            if let Some(pending) = &mut subscriber.pending {
                // Cursors are not held; anything else is, up to a bound.
                if let Some(offset) = offset {
                    if pending.len() < pending_limit {
                        pending.push((offset, frame.clone()));
                    } else {
                        self.stats.kick_slow(&subscriber.outbox);
                    }
                }
                continue;
            }
            let delivered = match offset {
                None => subscriber.outbox.offer(frame.clone()),
                Some(_) => subscriber.outbox.send(frame.clone()),
            };
            if delivered {
                self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
            } else if offset.is_some() {
                self.stats.kick_slow(&subscriber.outbox);
            }
        }
    }

    fn deliver_user_event(&self, payload: &[u8]) {
        let Some(handler) = self.user_events.get() else {
            return;
        };
        let (header, frame) = match payload.iter().position(|&b| b == b'\n') {
            Some(newline) => (&payload[..newline], &payload[newline + 1..]),
            None => (payload, &[][..]),
        };
        let Ok(header) = std::str::from_utf8(header) else {
            return;
        };
        let event = match header.split_once(' ') {
            Some(("p", user)) => user.parse().ok().map(|user_id| UserEvent::Push {
                user_id,
                frame: Frame::copy_from_slice(frame),
            }),
            Some(("r", rest)) => match rest.split_once(' ') {
                Some((_, origin)) if origin == self.process => None,
                Some((user, _)) => user
                    .parse()
                    .ok()
                    .map(|user_id| UserEvent::Recheck { user_id }),
                None => None,
            },
            Some(("c", rest)) => match rest.split_once(' ') {
                Some((_, origin)) if origin == self.process => None,
                Some((channel, _)) => Some(UserEvent::Channel {
                    channel: channel.to_owned(),
                }),
                None => None,
            },
            _ => None,
        };
        if let Some(event) = event {
            handler(event);
        }
    }

    fn deliver_here(&self, event: UserEvent) {
        if let Some(handler) = self.user_events.get() {
            handler(event);
        }
    }

    /// Publishes a user event's payload on the users topic (every process
    /// listens to it); `None` when Redis did not take it.
    async fn publish_to_users(&self, payload: &[u8]) -> Option<i64> {
        let mut commands = self.commands.clone();
        self.call(
            "publish",
            redis::cmd("PUBLISH")
                .arg(&self.users_topic)
                .arg(payload)
                .query_async(&mut commands),
        )
        .await
    }

    /// Publishes a revocation on the users topic, retrying with back-off
    /// for up to [`REVOCATION_RETRY`] while Redis does not take it. At most
    /// [`REVOCATIONS_RETRYING`] wait at once; past that (or that time) the
    /// other processes' periodic token check is what is left.
    fn publish_until_taken(self: &Arc<Self>, payload: String) {
        if self.retrying.fetch_add(1, Ordering::AcqRel) >= REVOCATIONS_RETRYING {
            self.retrying.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("too many revocations waiting for Redis; one dropped");
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut backoff = Duration::from_millis(50);
            loop {
                let sent = inner.publish_to_users(payload.as_bytes()).await;
                if sent.is_some() || started.elapsed() >= REVOCATION_RETRY {
                    if sent.is_none() {
                        tracing::warn!("a revocation did not reach Redis in time");
                    }
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            inner.retrying.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn is_live(&self) -> bool {
        self.listening.load(Ordering::Relaxed) && self.commands_ok.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_payload, split_at_offset};

    #[test]
    fn a_message_splits_at_its_offset_whatever_its_data() {
        let compose = |offset: u64| {
            format!(r#"{{"channel":"c","data":{{"offset":1,"text":"1 2"}},"offset":{offset}}}"#)
        };
        let (before, after) = split_at_offset(&compose).expect("splits");
        assert_eq!(format!("{before}57{after}"), compose(57));
        // A frame with no offset, or two, cannot be split.
        assert!(split_at_offset(&|_| "{}".to_owned()).is_none());
        assert!(split_at_offset(&|o| format!("[{o},{o}]")).is_none());
    }

    #[test]
    fn payload_headers() {
        assert_eq!(
            parse_payload(b"12 -\n{}"),
            Some((Some(12), "-", &b"{}"[..]))
        );
        assert_eq!(
            parse_payload(b"v ab/3\n{\"x\":1}"),
            Some((None, "ab/3", &b"{\"x\":1}"[..]))
        );
        assert_eq!(parse_payload(b"no header"), None);
        assert_eq!(parse_payload(b"x -\n{}"), None);
    }
}
