//! Presence kept alive: every third of the TTL this process renews its
//! users' entries, a batch of channels per script.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::json;

use super::{HEARTBEAT_BATCH, Inner, lock};
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
