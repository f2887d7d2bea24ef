//! Presence kept alive and sent: every third of the TTL this process
//! renews its users' entries, a batch of channels per script; every
//! presence interval it sends its members the changes that reached it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::json;

use super::{HEARTBEAT_BATCH, Inner, LocalChannel, lock};
use crate::Member;

/// Renews presence and channel keys for every channel with local
/// subscribers, and retires crashed processes' entries.
pub(super) async fn heartbeat(inner: Weak<Inner>) {
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
                invocation.arg(broker.topic(name)).arg(members.len());
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

impl Inner {
    /// A presence event from a script (`p <count>\n<+|-><member>`): noted
    /// for the channel's next `presence` frame here.
    pub(super) fn presence_event(&self, name: &str, payload: &[u8]) {
        let Some((count, change)) = parse_presence_event(payload) else {
            return;
        };
        let Some((name, channel)) = self
            .channels
            .get(name)
            .map(|c| (c.key().clone(), c.value().clone()))
        else {
            return;
        };
        let mut state = lock(&channel.state);
        state.count = count;
        let state = &mut *state;
        self.presence_queue
            .record(&mut state.batch, &name, &change.0, change.1);
    }

    /// Sends every queued channel its `presence` frame to the members on
    /// this process. The whole list, when a channel is back under the cap,
    /// is read from Redis (outside the channel's lock); whoever changes
    /// while it is read is sent again by where they are, to everyone, in
    /// the frame after.
    pub(super) async fn flush_presence(&self) {
        let queued = self.presence_queue.take();
        let cap = self.limits.presence_list;
        for name in queued {
            let Some(channel) = self.channels.get(&name).map(|c| c.clone()) else {
                continue;
            };
            let needs_list = {
                let state = lock(&channel.state);
                state.batch.needs_list(state.count, cap)
            };
            let everyone = if needs_list {
                Some(self.everyone(&name, &channel).await)
            } else {
                None
            };
            let mut state = lock(&channel.state);
            let state = &mut *state;
            if everyone.is_none() && state.batch.needs_list(state.count, cap) {
                // Back under the cap while this ran: next time, with the list.
                self.presence_queue.again(name.clone());
                continue;
            }
            let count = state.count;
            // The whole list goes out (rather than a count, the channel
            // having gone over the cap again while it was read): who changed
            // meanwhile is sent to everyone again in the frame after.
            let listed = state.batch.needs_list(count, cap);
            let frames = state
                .batch
                .flush(&name, count, cap, || everyone.unwrap_or_default());
            let pending_limit = self.settings.pending_frames;
            for subscriber in state.subscribers.values_mut() {
                let Some(frame) = frames.for_subscriber(subscriber.fresh) else {
                    continue;
                };
                match &mut subscriber.pending {
                    // Still joining: after its answer, and fresh until live.
                    Some(pending) if pending.len() < pending_limit => {
                        pending.push((0, frame.clone()));
                    }
                    Some(_) => self.stats.kick_slow(&subscriber.outbox),
                    None => {
                        subscriber.fresh = listed;
                        if self.stats.send_or_kick(&subscriber.outbox, frame.clone()) {
                            self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }

    /// Everyone on a channel (called when there are at most the list cap),
    /// or, with Redis away, everyone this process knows of.
    async fn everyone(&self, name: &str, channel: &LocalChannel) -> Vec<Member> {
        let mut commands = self.commands.clone();
        let read: Option<Vec<String>> = self
            .call(
                "presence",
                redis::cmd("HVALS")
                    .arg(self.key(name, "members"))
                    .query_async(&mut commands),
            )
            .await;
        match read {
            Some(members) => members
                .iter()
                .filter_map(|m| serde_json::from_str(m).ok())
                .collect(),
            None => lock(&channel.state)
                .users
                .values()
                .map(|(m, _)| m.clone())
                .collect(),
        }
    }
}

/// Reads a presence event: the channel's count and who arrived (`true`) or
/// left.
fn parse_presence_event(payload: &[u8]) -> Option<(usize, (Member, bool))> {
    let rest = payload.strip_prefix(b"p ")?;
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let count = std::str::from_utf8(&rest[..newline]).ok()?.parse().ok()?;
    let (sign, member) = rest[newline + 1..].split_first()?;
    let present = match sign {
        b'+' => true,
        b'-' => false,
        _ => return None,
    };
    Some((count, (serde_json::from_slice(member).ok()?, present)))
}

#[cfg(test)]
mod tests {
    use super::parse_presence_event;

    #[test]
    fn presence_events() {
        let (count, (member, present)) = parse_presence_event(
            br#"p 12
+{"id":3,"username":"a","display_name":"A"}"#,
        )
        .unwrap();
        assert_eq!((count, member.id, present), (12, 3, true));
        assert!(parse_presence_event(b"p 1\n*{}").is_none());
    }
}
