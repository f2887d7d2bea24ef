//! The pub/sub side: one connection per process, subscribed once per channel
//! that has a local subscriber, delivering what arrives to the local queues
//! and re-made with back-off when Redis goes away.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Control, Inner, parse_payload};
use crate::Frame;

/// The task that owns the pub/sub connection: (re)connects with back-off,
/// subscribes every channel with local subscribers, and hands what arrives
/// to local queues.
pub(super) async fn listen(inner: Weak<Inner>, mut control: mpsc::Receiver<Control>) {
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
        // Resets asked for before this connection was made are done.
        let resets_seen = broker.resets.load(Ordering::Relaxed);
        drop(broker);

        loop {
            tokio::select! {
                () = reset.notified() => {
                    let Some(broker) = inner.upgrade() else { return };
                    if broker.resets.load(Ordering::Relaxed) != resets_seen {
                        break;
                    }
                }
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Some(broker) = inner.upgrade() else { return };
                    let payload = message.get_payload_bytes();
                    let topic = message.get_channel_name();
                    if let Some(name) = broker.channel_of_topic(topic) {
                        if payload.starts_with(b"p ") {
                            broker.presence_event(name, payload);
                        } else if let Some((offset, except, frame)) = parse_payload(payload) {
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
