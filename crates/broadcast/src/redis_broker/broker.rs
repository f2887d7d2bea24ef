//! The `Broker` trait over Redis: subscribe (join, history, presence),
//! unsubscribe (leave), publish (one script: offset, history, PUBLISH),
//! volatile frames, signals and user events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{
    Control, LocalChannel, LocalState, LocalSubscriber, RedisBroker, lock, split_at_offset,
};
use crate::{
    Ack, BoxFuture, Broker, Compose, ConnId, Frame, Join, Member, Stats, Subscribed, UserEvent,
    UserEvents,
};

/// What the join script answers: latest offset, epoch, recovered, count,
/// (a sample of) who is here, the replay.
pub(super) type Joined = (u64, String, i64, usize, Vec<String>, Vec<Vec<u8>>);

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
                        fresh: true,
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
                    .arg(inner.limits.presence_list)
                    .arg(inner.new_epoch());
                inner
                    .call("join", invocation.invoke_async(&mut commands))
                    .await
            } else {
                None
            };

            let cap = inner.limits.presence_list;
            let mut state = lock(&channel.state);
            let subscribed = match joined {
                Some((latest, epoch, recovered, count, presence, replay)) => {
                    let epoch = epoch.parse().unwrap_or_default();
                    state.epoch = epoch;
                    if state.count == 0 {
                        // New here: events keep it from now on.
                        state.count = count;
                    }
                    let others: Vec<Member> = presence
                        .iter()
                        .filter_map(|m| serde_json::from_str(m).ok())
                        .collect();
                    Subscribed {
                        offset: latest,
                        epoch,
                        presence: crate::presence::capped_list(&join.member, others.iter(), cap),
                        presence_count: count,
                        recovered: recovered == 1,
                        replay: replay.into_iter().map(Frame::from).collect(),
                    }
                }
                None => {
                    // Redis is away: this process alone, with what it knows.
                    if state.epoch == 0 {
                        state.epoch = inner.new_epoch();
                    }
                    state.count = state.users.len();
                    if first_here {
                        let state = &mut *state;
                        inner
                            .presence_queue
                            .record(&mut state.batch, &name, &join.member, true);
                    }
                    let others = state.users.values().map(|(m, _)| m);
                    Subscribed {
                        offset: state.latest,
                        epoch: state.epoch,
                        presence: crate::presence::capped_list(&join.member, others, cap),
                        presence_count: state.users.len(),
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
            if !delivered {
                inner.stats.kick_slow(&outbox);
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
            let mut commands = inner.commands.clone();
            let mut invocation = inner.scripts.leave.prepare_invoke();
            invocation
                .key(inner.key(channel, "presence"))
                .key(inner.key(channel, "members"))
                .key(inner.key(channel, "counts"))
                .arg(member.id)
                .arg(&inner.process)
                .arg(inner.topic(channel));
            let left: Option<i64> = inner
                .call("leave", invocation.invoke_async(&mut commands))
                .await;
            if left.is_none() && !removed {
                // Redis is away: this process's members hear it alone.
                let name: Arc<str> = Arc::from(channel);
                let mut state = lock(&local.state);
                state.count = state.users.len();
                let state = &mut *state;
                inner
                    .presence_queue
                    .record(&mut state.batch, &name, &member, false);
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
            if subscriber.pending.is_none() {
                inner.stats.send_or_kick(&subscriber.outbox, frame.clone());
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

    fn flush_presence(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.inner.flush_presence())
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
