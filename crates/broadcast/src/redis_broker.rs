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
//!   plus one renewal. Join and leave frames are decided inside scripts, so
//!   a user on two processes joins once and leaves once.
//! - **Outages.** When Redis stops answering, local sockets keep working on
//!   this process alone (local offsets, no history), `is_healthy` turns
//!   false (`/readyz` says so), and the pub/sub connection is re-made with
//!   back-off; after Redis comes back, presence is renewed by the next
//!   heartbeat and a channel whose history was lost gets a new epoch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::{
    Ack, BoxFuture, Broker, Compose, ConnId, Frame, Join, Limits, Member, Outbox, Stats,
    Subscribed, UserEvent, UserEvents, epoch_seed,
};

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
}

#[derive(Default)]
struct LocalState {
    subscribers: HashMap<ConnId, LocalSubscriber>,
    /// user id → (member, connections here).
    users: HashMap<i64, (Member, usize)>,
    /// The latest offset seen here, for cursors and for outages.
    latest: u64,
    epoch: u64,
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
    scripts: Scripts,
    /// Revocations waiting for Redis to take them.
    retrying: AtomicUsize,
    /// Notified when commands start failing: the pub/sub connection is
    /// made again too, since a dead one is not always noticed (and
    /// `/readyz` would say 200 while nothing arrives).
    pubsub_reset: Arc<tokio::sync::Notify>,
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
        redis::Script::new(concat!(
            include_str!("redis_broker/prelude.lua"),
            include_str!(concat!("redis_broker/", $file))
        ))
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
            retrying: AtomicUsize::new(0),
            pubsub_reset: Arc::new(tokio::sync::Notify::new()),
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
                    self.pubsub_reset.notify_one();
                    tracing::warn!(%error, what, "Redis command failed; serving this process's sockets alone");
                }
                None
            }
            Err(_) => {
                if self.commands_ok.swap(false, Ordering::Relaxed) {
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
                    } else if subscriber.outbox.kick() {
                        self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
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
            } else if offset.is_some() && subscriber.outbox.kick() {
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
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

/// The task that owns the pub/sub connection: (re)connects with back-off,
/// subscribes every channel with local subscribers, and hands what arrives
/// to local queues.
async fn listen(inner: Weak<Inner>, mut control: mpsc::Receiver<Control>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(broker) = inner.upgrade() else {
            return;
        };
        let connected =
            tokio::time::timeout(broker.settings.timeout, broker.client.get_async_pubsub()).await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot reach Redis for pub/sub; retrying");
                drop(broker);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(_) => {
                tracing::warn!("Redis pub/sub connection timed out; retrying");
                drop(broker);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let generation = broker.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut topics = vec![broker.users_topic.clone()];
        let names: Vec<Arc<str>> = broker.channels.iter().map(|c| c.key().clone()).collect();
        topics.extend(names.iter().map(|name| broker.topic(name)));
        if !matches!(
            tokio::time::timeout(broker.settings.timeout, sink.subscribe(&topics)).await,
            Ok(Ok(()))
        ) {
            drop(broker);
            tokio::time::sleep(backoff).await;
            continue;
        }
        for name in &names {
            if let Some(channel) = broker.channels.get(name) {
                channel.listening.store(generation, Ordering::Relaxed);
            }
        }
        broker.listening.store(true, Ordering::Relaxed);
        tracing::info!(channels = names.len(), "listening to Redis");
        backoff = Duration::from_millis(100);
        let reset = broker.pubsub_reset.clone();
        drop(broker);

        loop {
            tokio::select! {
                () = reset.notified() => break,
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Some(broker) = inner.upgrade() else { return };
                    let payload = message.get_payload_bytes();
                    let topic = message.get_channel_name();
                    if let Some(name) = broker.channel_of_topic(topic) {
                        if let Some((offset, except, frame)) = parse_payload(payload) {
                            broker.deliver(name, offset, except, Frame::copy_from_slice(frame));
                        }
                    } else if topic == broker.users_topic {
                        broker.deliver_user_event(payload);
                    }
                }
                request = control.recv() => {
                    let Some(request) = request else { return };
                    let Some(broker) = inner.upgrade() else { return };
                    match request {
                        Control::Listen(name, answer) => {
                            let Some(channel) = broker.channels.get(&name).map(|c| c.clone()) else {
                                let _ = answer.send(false);
                                continue;
                            };
                            if channel.listening.load(Ordering::Relaxed) == generation {
                                let _ = answer.send(true);
                                continue;
                            }
                            let done = tokio::time::timeout(
                                broker.settings.timeout,
                                sink.subscribe(broker.topic(&name)),
                            )
                            .await;
                            let ok = matches!(done, Ok(Ok(())));
                            if ok {
                                channel.listening.store(generation, Ordering::Relaxed);
                            }
                            let _ = answer.send(ok);
                        }
                        Control::Unlisten(name) => {
                            // Only if nobody came back meanwhile: requests are
                            // handled in order, so the last one wins.
                            if !broker.channels.contains_key(&name) {
                                let _ = tokio::time::timeout(
                                    broker.settings.timeout,
                                    sink.unsubscribe(broker.topic(&name)),
                                )
                                .await;
                            }
                        }
                    }
                }
            }
        }
        let Some(broker) = inner.upgrade() else {
            return;
        };
        broker.listening.store(false, Ordering::Relaxed);
        tracing::warn!("lost the Redis pub/sub connection; reconnecting");
    }
}

/// Renews presence and channel keys for every channel with local
/// subscribers, and retires crashed processes' entries.
async fn heartbeat(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(broker) => (broker.settings.presence_ttl / 3).max(Duration::from_millis(100)),
        None => return,
    };
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(broker) = inner.upgrade() else {
            return;
        };
        let channels: Vec<(Arc<str>, Vec<Member>)> = broker
            .channels
            .iter()
            .map(|entry| {
                let state = lock(&entry.value().state);
                let members = state.users.values().map(|(m, _)| m.clone()).collect();
                (entry.key().clone(), members)
            })
            .collect();
        // One script per batch of channels, not one per channel: 10,000
        // channels are 40 calls a tick, each short enough not to hold
        // Redis up for long.
        for batch in channels.chunks(HEARTBEAT_BATCH) {
            let mut invocation = broker.scripts.heartbeat.prepare_invoke();
            invocation
                .arg(&broker.process)
                .arg(broker.settings.presence_ttl.as_millis() as u64)
                .arg(broker.keep_ms());
            for (name, members) in batch {
                for part in ["seq", "epoch", "presence", "members", "counts"] {
                    invocation.key(broker.key(name, part));
                }
                invocation
                    .arg(broker.topic(name))
                    .arg(json!(&**name).to_string())
                    .arg(members.len());
                for member in members {
                    invocation.arg(member.id).arg(json!(member).to_string());
                }
            }
            let mut commands = broker.commands.clone();
            let _: Option<i64> = broker
                .call("heartbeat", invocation.invoke_async(&mut commands))
                .await;
        }
    }
}

/// What the join script answers.
type Joined = (u64, String, i64, Vec<String>, Vec<Vec<u8>>);

impl Broker for RedisBroker {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn subscribe<'a>(&'a self, join: Join<'a>, ack: Ack<'a>) -> BoxFuture<'a, Subscribed> {
        Box::pin(async move {
            let inner = &self.inner;
            let name: Arc<str> = Arc::from(join.channel);
            // Attached at once (as pending), under the map's entry lock, so
            // an unsubscribe racing with it cannot free the channel.
            let (channel, first_here) = {
                let entry = inner.channels.entry(name.clone()).or_insert_with(|| {
                    Arc::new(LocalChannel {
                        state: Mutex::new(LocalState::default()),
                        listening: AtomicU64::new(0),
                    })
                });
                let channel = entry.value().clone();
                let mut state = lock(&channel.state);
                let replaced = state.subscribers.insert(
                    join.conn,
                    LocalSubscriber {
                        member_id: join.member.id,
                        outbox: join.outbox.clone(),
                        pending: Some(Vec::new()),
                    },
                );
                let user = state
                    .users
                    .entry(join.member.id)
                    .or_insert_with(|| (join.member.clone(), 0));
                if replaced.is_none() {
                    user.1 += 1;
                }
                let first_here = user.1 == 1 && replaced.is_none();
                drop(state);
                drop(entry);
                (channel, first_here)
            };

            let member_json = json!(join.member).to_string();
            let joined: Option<Joined> = if inner.ensure_listening(&name, &channel).await {
                let join_frame = crate::presence_frame("join", join.channel, &join.member);
                let mut commands = inner.commands.clone();
                let mut invocation = inner.scripts.join.prepare_invoke();
                invocation
                    .key(inner.key(&name, "seq"))
                    .key(inner.key(&name, "epoch"))
                    .key(inner.key(&name, "history"))
                    .key(inner.key(&name, "bytes"))
                    .key(inner.key(&name, "presence"))
                    .key(inner.key(&name, "members"))
                    .key(inner.key(&name, "counts"))
                    .arg(join.member.id)
                    .arg(&inner.process)
                    .arg(&member_json)
                    .arg(inner.settings.presence_ttl.as_millis() as u64)
                    .arg(inner.keep_ms())
                    .arg(inner.limits.history_age.as_millis() as u64)
                    .arg(join.since.map(|s| s.to_string()).unwrap_or_default())
                    .arg(inner.topic(&name))
                    .arg(join_frame)
                    .arg(format!("{}/{}", inner.process, join.conn))
                    .arg(inner.new_epoch());
                inner
                    .call("join", invocation.invoke_async(&mut commands))
                    .await
            } else {
                None
            };

            let mut state = lock(&channel.state);
            let subscribed = match joined {
                Some((latest, epoch, recovered, presence, replay)) => {
                    let epoch = epoch.parse().unwrap_or_default();
                    state.epoch = epoch;
                    let mut presence: Vec<Member> = presence
                        .iter()
                        .filter_map(|m| serde_json::from_str(m).ok())
                        .collect();
                    presence.sort_by_key(|m| m.id);
                    Subscribed {
                        offset: latest,
                        epoch,
                        presence,
                        recovered: recovered == 1,
                        replay: replay.into_iter().map(Frame::from).collect(),
                    }
                }
                None => {
                    // Redis is away: this process alone, with what it knows.
                    if state.epoch == 0 {
                        state.epoch = inner.new_epoch();
                    }
                    if first_here {
                        let frame =
                            Frame::from(crate::presence_frame("join", join.channel, &join.member));
                        for (conn, subscriber) in &state.subscribers {
                            if *conn != join.conn && subscriber.pending.is_none() {
                                subscriber.outbox.send(frame.clone());
                            }
                        }
                    }
                    let mut presence: Vec<Member> =
                        state.users.values().map(|(m, _)| m.clone()).collect();
                    presence.sort_by_key(|m| m.id);
                    Subscribed {
                        offset: state.latest,
                        epoch: state.epoch,
                        presence,
                        recovered: join.since.is_none_or(|s| s == state.latest),
                        replay: Vec::new(),
                    }
                }
            };
            let Some(subscriber) = state.subscribers.get_mut(&join.conn) else {
                return subscribed;
            };
            let pending = subscriber.pending.take().unwrap_or_default();
            let outbox = subscriber.outbox.clone();
            drop(state);
            let mut delivered = outbox.send(ack(&subscribed));
            for frame in &subscribed.replay {
                delivered &= outbox.send(frame.clone());
            }
            for (offset, frame) in pending {
                // What the replay or the answer already covers is dropped.
                if offset == 0 || offset > subscribed.offset {
                    delivered &= outbox.send(frame);
                }
            }
            if !delivered && outbox.kick() {
                inner.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
            subscribed
        })
    }

    fn unsubscribe<'a>(&'a self, channel: &'a str, conn: ConnId) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let inner = &self.inner;
            let Some(local) = inner.channels.get(channel).map(|c| c.clone()) else {
                return;
            };
            let last_here = {
                let mut state = lock(&local.state);
                let Some(subscriber) = state.subscribers.remove(&conn) else {
                    return;
                };
                let user = subscriber.member_id;
                let mut last_here = None;
                if let Some(entry) = state.users.get_mut(&user) {
                    entry.1 -= 1;
                    if entry.1 == 0 {
                        last_here = state.users.remove(&user).map(|(m, _)| m);
                    }
                }
                last_here
            };
            let removed = inner
                .channels
                .remove_if(channel, |_, local| {
                    lock(&local.state).subscribers.is_empty()
                })
                .is_some();
            if removed {
                let _ = inner
                    .control
                    .try_send(Control::Unlisten(Arc::from(channel)));
            }
            let Some(member) = last_here else { return };
            let leave = crate::presence_frame("leave", channel, &member);
            let mut commands = inner.commands.clone();
            let mut invocation = inner.scripts.leave.prepare_invoke();
            invocation
                .key(inner.key(channel, "presence"))
                .key(inner.key(channel, "members"))
                .key(inner.key(channel, "counts"))
                .arg(member.id)
                .arg(&inner.process)
                .arg(inner.topic(channel))
                .arg(&leave);
            let left: Option<i64> = inner
                .call("leave", invocation.invoke_async(&mut commands))
                .await;
            if left.is_none() && !removed {
                inner.deliver(channel, Some(0), "-", Frame::from(leave));
            }
        })
    }

    fn publish<'a>(&'a self, channel: &'a str, compose: Compose<'a>) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async move {
            let inner = &self.inner;
            let local = inner.channels.get(channel).map(|c| c.clone())?;
            inner.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            let (before, after) = split_at_offset(compose)?;
            let mut commands = inner.commands.clone();
            let mut invocation = inner.scripts.publish.prepare_invoke();
            invocation
                .key(inner.key(channel, "seq"))
                .key(inner.key(channel, "epoch"))
                .key(inner.key(channel, "history"))
                .key(inner.key(channel, "bytes"))
                .arg(inner.topic(channel))
                .arg(&before)
                .arg(&after)
                .arg(inner.limits.history_messages)
                .arg(inner.limits.history_bytes)
                .arg(inner.limits.history_age.as_millis() as u64)
                .arg(inner.keep_ms())
                .arg(inner.new_epoch());
            let published: Option<u64> = inner
                .call("publish", invocation.invoke_async(&mut commands))
                .await;
            let listening = inner.listening.load(Ordering::Relaxed)
                && local.listening.load(Ordering::Relaxed)
                    == inner.generation.load(Ordering::Relaxed);
            match published {
                // Delivered here when the pub/sub connection brings it back.
                Some(offset) if listening => Some(offset),
                Some(offset) => {
                    inner.deliver(channel, Some(offset), "-", Frame::from(compose(offset)));
                    Some(offset)
                }
                None => {
                    let offset = lock(&local.state).latest + 1;
                    inner.deliver(channel, Some(offset), "-", Frame::from(compose(offset)));
                    Some(offset)
                }
            }
        })
    }

    fn publish_volatile<'a>(&'a self, channel: &'a str, frame: Frame) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let inner = &self.inner;
            if !inner.channels.contains_key(channel) {
                return;
            }
            inner.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            let mut payload = Vec::with_capacity(frame.len() + 4);
            payload.extend_from_slice(b"v -\n");
            payload.extend_from_slice(&frame);
            let mut commands = inner.commands.clone();
            let sent: Option<i64> = if inner.listening.load(Ordering::Relaxed) {
                inner
                    .call(
                        "publish",
                        redis::cmd("PUBLISH")
                            .arg(inner.topic(channel))
                            .arg(payload)
                            .query_async(&mut commands),
                    )
                    .await
            } else {
                None
            };
            if sent.is_none() {
                inner.deliver(channel, None, "-", frame);
            }
        })
    }

    fn signal(&self, channel: &str, frame: Frame) {
        let inner = &self.inner;
        let Some(channel) = inner.channels.get(channel).map(|c| c.clone()) else {
            return;
        };
        let state = lock(&channel.state);
        for subscriber in state.subscribers.values() {
            // One still joining checked its right as it joined.
            if subscriber.pending.is_none()
                && !subscriber.outbox.send(frame.clone())
                && subscriber.outbox.kick()
            {
                inner.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn latest(&self, channel: &str) -> u64 {
        self.inner
            .channels
            .get(channel)
            .map_or(0, |c| lock(&c.state).latest)
    }

    fn user_event(&self, event: UserEvent) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let inner = &self.inner;
            let process = &inner.process;
            let payload = match &event {
                UserEvent::Push { user_id, frame } => {
                    let mut payload = format!("p {user_id}\n").into_bytes();
                    payload.extend_from_slice(frame);
                    payload
                }
                // Revocations are delivered here at once and sent on to the
                // other processes until Redis takes them (the origin skips
                // its own echo).
                UserEvent::Recheck { user_id } => {
                    inner.deliver_here(event.clone());
                    return inner.publish_until_taken(format!("r {user_id} {process}"));
                }
                UserEvent::Channel { channel } => {
                    inner.deliver_here(event.clone());
                    return inner.publish_until_taken(format!("c {channel} {process}"));
                }
            };
            let sent = inner.publish_to_users(&payload).await;
            // Without the echo from Redis, this process delivers its own.
            if sent.is_none() || !inner.listening.load(Ordering::Relaxed) {
                inner.deliver_here(event);
            }
        })
    }

    fn on_user_event(&self, handler: UserEvents) {
        let _ = self.inner.user_events.set(handler);
    }

    fn sweep(&self) {
        // Redis expires history and presence itself; local channels are
        // freed as their last subscriber leaves, and the table they grew
        // is given back here (see `Hub::sweep`).
        self.inner.channels.shrink_to_fit();
    }

    fn channel_count(&self) -> usize {
        self.inner.channels.len()
    }

    fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    fn is_healthy(&self) -> bool {
        self.inner.is_live()
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
