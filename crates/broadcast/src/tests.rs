use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn member(id: i64) -> Member {
    Member {
        id,
        username: format!("user{id}"),
        display_name: format!("User {id}"),
    }
}

fn frame(offset: u64) -> String {
    format!("{{\"op\":\"message\",\"offset\":{offset}}}")
}

async fn drain(receiver: &mut OutboxReceiver) -> Vec<String> {
    let mut frames = Vec::new();
    while let Ok(next) = tokio::time::timeout(Duration::from_millis(10), receiver.next()).await {
        match next {
            Next::Frame(f) => frames.push(String::from_utf8_lossy(&f).into_owned()),
            _ => break,
        }
    }
    frames
}

#[test]
fn history_is_bounded_by_count_bytes_and_age() {
    let limits = Limits {
        history_messages: 3,
        history_age: Duration::from_secs(60),
        history_bytes: 1_000,
        presence_list: 100,
    };
    let start = Instant::now();
    let mut history = History::new(7);
    for offset in 1..=5 {
        history.push(offset, Frame::from(frame(offset)), start, &limits);
    }
    assert_eq!((history.len(), history.latest()), (3, 5));
    assert_eq!(
        history.since(2).unwrap().len(),
        3,
        "offsets 3..=5 are all here"
    );
    assert!(
        history.since(1).is_none(),
        "offset 2 was dropped: not recoverable"
    );
    assert_eq!(history.since(5).unwrap().len(), 0);
    assert!(
        history.since(9).is_none(),
        "an offset from the future is another epoch's"
    );

    let big = "x".repeat(400);
    for offset in 6..=8 {
        history.push(offset, Frame::from(big.clone()), start, &limits);
    }
    assert!(
        history.bytes() <= 1_000 && history.len() == 2,
        "the byte cap wins over the count"
    );

    history.expire(start + Duration::from_secs(61), &limits);
    assert!(history.is_empty());
    assert_eq!(history.latest(), 8, "offsets never go back");
}

#[tokio::test]
async fn publish_fans_out_with_offsets_and_presence_counts_users_once() {
    let hub = Hub::new(Limits::default());
    let (a, mut a_rx) = outbox(16, 1 << 20);
    let (b1, mut b1_rx) = outbox(16, 1 << 20);
    let (b2, mut b2_rx) = outbox(16, 1 << 20);
    let joined = hub.subscribe("story:1", 1, member(1), a, None);
    assert_eq!(
        (joined.offset, joined.recovered, joined.presence.len()),
        (0, true, 1)
    );
    hub.subscribe("story:1", 2, member(2), b1, None);
    let second_tab = hub.subscribe("story:1", 3, member(2), b2, None);
    assert_eq!(
        second_tab.presence.len(),
        2,
        "a user with two tabs is there once"
    );
    assert!(
        drain(&mut a_rx).await.is_empty(),
        "joins wait for the presence interval"
    );
    hub.flush_presence();
    let a_frames = drain(&mut a_rx).await;
    assert_eq!(
        a_frames.len(),
        1,
        "one presence frame, user 2 in it once: {a_frames:?}"
    );
    let presence: serde_json::Value = serde_json::from_str(&a_frames[0]).unwrap();
    assert_eq!(
        (presence["op"].as_str(), presence["count"].as_u64()),
        (Some("presence"), Some(2))
    );
    let joins: Vec<i64> = presence["joins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(joins, [1, 2], "both arrived in this interval");
    drain(&mut b1_rx).await;
    drain(&mut b2_rx).await;

    assert_eq!(hub.publish("story:1", frame), Some(1));
    assert_eq!(hub.publish("story:1", frame), Some(2));
    assert_eq!(drain(&mut a_rx).await, [frame(1), frame(2)]);
    assert_eq!(drain(&mut b1_rx).await.last().unwrap(), &frame(2));
    assert_eq!(drain(&mut b2_rx).await.len(), 2);

    assert!(hub.unsubscribe("story:1", 3));
    hub.flush_presence();
    assert!(
        drain(&mut a_rx).await.is_empty(),
        "no leave while the user's other tab is there"
    );
    hub.unsubscribe("story:1", 2);
    hub.flush_presence();
    let leave = drain(&mut a_rx).await;
    assert_eq!(leave.len(), 1);
    let leave: serde_json::Value = serde_json::from_str(&leave[0]).unwrap();
    assert_eq!(leave["leaves"][0]["id"], 2);
    assert_eq!(leave["count"], 1);
    assert_eq!(hub.publish("nowhere", frame), None);
}

#[tokio::test]
async fn recovery_replays_what_was_missed() {
    let hub = Hub::new(Limits::default());
    let (a, _a_rx) = outbox(256, 1 << 20);
    hub.subscribe("drawing:9", 1, member(1), a, None);
    for _ in 0..5 {
        hub.publish("drawing:9", frame);
    }
    let (b, _b_rx) = outbox(16, 1 << 20);
    let back = hub.subscribe("drawing:9", 2, member(2), b, Some(3));
    assert!(back.recovered);
    assert_eq!(
        back.replay
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>(),
        [frame(4), frame(5)]
    );
    assert_eq!(back.offset, 5);
    let (c, _c_rx) = outbox(16, 1 << 20);
    let lost = hub.subscribe("drawing:9", 3, member(3), c, Some(50));
    assert!(!lost.recovered && lost.replay.is_empty());
}

#[tokio::test]
async fn a_slow_consumer_is_kicked_not_buffered() {
    let hub = Hub::new(Limits::default());
    let (slow, mut slow_rx) = outbox(4, 1 << 20);
    let (fast, mut fast_rx) = outbox(64, 1 << 20);
    hub.subscribe("story:2", 1, member(1), slow, None);
    hub.subscribe("story:2", 2, member(2), fast, None);
    drain(&mut slow_rx).await;
    for _ in 0..10 {
        hub.publish("story:2", frame);
    }
    assert!(matches!(slow_rx.next().await, Next::Kicked));
    assert_eq!(
        hub.stats
            .slow_consumers
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        drain(&mut fast_rx).await.len(),
        10,
        "others are not held back"
    );

    let (small, mut small_rx) = outbox(1000, 100);
    hub.subscribe("story:3", 3, member(3), small, None);
    hub.publish("story:3", |_| "y".repeat(60));
    hub.publish("story:3", |_| "y".repeat(60));
    assert!(
        matches!(small_rx.next().await, Next::Kicked),
        "the byte bound kicks too"
    );
}

#[tokio::test]
async fn volatile_frames_are_dropped_not_kicked() {
    let hub = Hub::new(Limits::default());
    let (slow, mut slow_rx) = outbox(4, 1 << 20);
    hub.subscribe("drawing:1", 1, member(1), slow, None);
    let cursor = Frame::from_static(b"{\"op\":\"message\",\"data\":{\"type\":\"cursor\"}}");
    for _ in 0..20 {
        hub.publish_volatile("drawing:1", &cursor);
    }
    let frames = drain(&mut slow_rx).await;
    assert!(!frames.is_empty() && frames.len() <= 4, "{}", frames.len());
    assert_eq!(
        hub.stats
            .slow_consumers
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn channels_are_freed_when_empty_and_expired() {
    let hub = Hub::new(Limits {
        history_age: Duration::from_secs(60),
        ..Limits::default()
    });
    let (a, _rx) = outbox(16, 1 << 20);
    hub.subscribe("story:5", 1, member(1), a.clone(), None);
    hub.publish("story:5", frame);
    hub.unsubscribe("story:5", 1);
    assert_eq!(hub.channel_count(), 1, "history still fresh");
    tokio::time::advance(Duration::from_secs(59)).await;
    hub.sweep();
    assert_eq!(hub.channel_count(), 1, "a second short of the age");
    tokio::time::advance(Duration::from_secs(1)).await;
    hub.sweep();
    assert_eq!(hub.channel_count(), 0);
    let back = hub.subscribe("story:5", 1, member(1), a, Some(1));
    assert!(!back.recovered, "a new channel is a new epoch");
    hub.unsubscribe("story:5", 1);
    assert_eq!(
        hub.channel_count(),
        0,
        "empty and no history: freed at once"
    );
}

#[tokio::test]
async fn a_lobby_over_the_cap_costs_one_small_frame_a_member_an_interval() {
    let hub = Hub::new(Limits {
        presence_list: 10,
        ..Limits::default()
    });
    let mut receivers = Vec::new();
    for id in 1..=50 {
        let (tx, rx) = outbox(16, 1 << 20);
        let joined = hub.subscribe("lobby", id as u64, member(id), tx, None);
        assert!(joined.presence.len() <= 10, "the subscribed list is capped");
        assert!(
            joined.presence.iter().any(|m| m.id == id),
            "yourself included"
        );
        assert_eq!(joined.presence_count, id as usize);
        receivers.push(rx);
    }
    hub.flush_presence();
    for rx in &mut receivers {
        let frames = drain(rx).await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        let frame: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
        assert_eq!(frame["count"], 50);
        assert_eq!(frame["joins"], serde_json::json!([]), "counted, not listed");
        assert!(frames[0].len() < 100);
    }
    // Back under the cap: everyone listed once, then changes again.
    for id in 11..=50 {
        hub.unsubscribe("lobby", id as u64);
    }
    hub.flush_presence();
    let frames = drain(&mut receivers[0]).await;
    let frame: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(frame["presence"].as_array().unwrap().len(), 10);
    hub.unsubscribe("lobby", 10);
    hub.flush_presence();
    let frames = drain(&mut receivers[0]).await;
    let frame: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(frame["leaves"][0]["id"], 10);
}
