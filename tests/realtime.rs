//! Contract section "Real time", over real sockets on a port-0 listener
//! (built with `--features realtime`).
#![cfg(feature = "realtime")]

mod common;

use std::time::Duration;

use common::TestApp;
use common::ws::{
    Broker, connect, generous, next, next_op, published_story, send, start, story_channel,
    subscribe, subscribed,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use storybook::config::RealtimeArgs;
use tokio_tungstenite::tungstenite::Message;

broker_tests!(
    bad_tokens_are_refused_before_the_upgrade,
    presence_in_the_lobby_and_on_channels_counts_users_once,
    a_channel_over_the_presence_list_cap_sends_counts,
    messages_chat_and_permissions,
    strokes_are_saved_then_broadcast_and_cursors_are_volatile,
    recovery_and_the_history_cap,
    rate_limit_per_connection,
    a_slow_reader_is_closed_with_1013,
    notifications_are_pushed_and_deactivation_disconnects,
    channels_are_freed_when_everyone_leaves
);

async fn bad_tokens_are_refused_before_the_upgrade(broker: Broker) {
    let (_app, address) = start(&broker, RealtimeArgs::default()).await;
    for url in [
        format!("ws://{address}/ws?token=nope"),
        format!("ws://{address}/ws"),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401)
            }
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
    }
}

async fn presence_in_the_lobby_and_on_channels_counts_users_once(broker: Broker) {
    let (app, address) = start(&broker, RealtimeArgs::default()).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mut a = connect(address, &alice).await;
    let lobby = subscribe(&mut a, "lobby", None).await;
    assert_eq!(
        lobby["presence"][0]["username"], "alice",
        "yourself included"
    );
    assert_eq!(lobby["presence_count"], 1);
    // Alice's own arrival comes in the first batch (she was fresh in it).
    let first = next_op(&mut a, "presence").await;
    assert_eq!(usernames(&first["joins"]), ["alice"]);

    // Bob arrives, and Carol comes and goes within one interval: one
    // frame with Bob alone (the contract's net changes).
    let mut b1 = connect(address, &bob).await;
    subscribe(&mut b1, "lobby", None).await;
    let mut c = connect(address, &carol).await;
    subscribe(&mut c, "lobby", None).await;
    drop(c);
    let batch = next_op(&mut a, "presence").await;
    assert_eq!(batch["channel"], "lobby");
    let joins = usernames(&batch["joins"]);
    assert!(joins.contains(&"bob"), "{batch}");
    if joins.contains(&"carol") {
        // The interval's tick fell between Carol's arrival and departure
        // (the exact came-and-went rule is checked in the broadcast
        // crate's tests): then she leaves in the next frame.
        let next = next_op(&mut a, "presence").await;
        assert_eq!(usernames(&next["leaves"]), ["carol"], "{next}");
    } else {
        assert_eq!(joins, ["bob"], "came and went: in neither list: {batch}");
        assert_eq!(batch["leaves"], json!([]), "{batch}");
        assert_eq!(batch["count"], 2);
    }

    let channel = story_channel(&app, &alice).await;
    subscribe(&mut a, &channel, None).await;
    subscribe(&mut b1, &channel, None).await;
    let joined = next_op(&mut a, "presence").await;
    assert_eq!(joined["channel"], channel);
    assert_eq!(joined["count"], 2);
    let mut b2 = connect(address, &bob).await;
    let second = subscribe(&mut b2, &channel, None).await;
    assert_eq!(
        (
            second["presence"].as_array().unwrap().len(),
            second["presence_count"].as_u64()
        ),
        (2, Some(2)),
        "two users, one with two tabs"
    );
    drop(b2);
    // Two intervals go by with nothing for Bob's second tab.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    send(&mut a, json!({"op": "ping"})).await;
    assert_eq!(
        next(&mut a).await.unwrap()["op"],
        "pong",
        "no presence change for bob's second tab"
    );
    drop(b1);
    let left = next_op(&mut a, "presence").await;
    assert_eq!(usernames(&left["leaves"]), ["bob"]);
    assert_eq!(left["count"], 1);
}

async fn a_channel_over_the_presence_list_cap_sends_counts(broker: Broker) {
    let settings = RealtimeArgs {
        ws_presence_list: 2,
        ws_presence_interval_ms: 200,
        ..RealtimeArgs::default()
    };
    let (app, address) = start(&broker, settings).await;
    let mut sockets = Vec::new();
    for name in ["ann", "ben", "cat", "dan"] {
        let token = app.register(name).await;
        let mut socket = connect(address, &token).await;
        let joined = subscribe(&mut socket, "lobby", None).await;
        let listed = usernames(&joined["presence"]);
        assert!(listed.len() <= 2 && listed.contains(&name), "{joined}");
        assert_eq!(joined["presence_count"], sockets.len() + 1);
        sockets.push(socket);
    }
    // Over the cap: the count alone, however many arrived.
    let ann = &mut sockets[0];
    let counted = loop {
        let frame = next_op(ann, "presence").await;
        if frame["count"] == 4 {
            break frame;
        }
    };
    assert_eq!(
        (&counted["joins"], &counted["leaves"]),
        (&json!([]), &json!([]))
    );
    // Back to the cap: the whole list once, then changes again.
    sockets.truncate(2);
    // The two may leave in different intervals: a count of 3 comes first.
    let listed = loop {
        let frame = next_op(&mut sockets[0], "presence").await;
        if frame["count"] == 2 {
            break frame;
        }
        assert_eq!(frame["count"], 3, "{frame}");
    };
    assert_eq!(usernames(&listed["presence"]), ["ann", "ben"], "{listed}");
    assert!(listed.get("joins").is_none(), "{listed}");
    sockets.truncate(1);
    let left = next_op(&mut sockets[0], "presence").await;
    assert_eq!(usernames(&left["leaves"]), ["ben"], "{left}");
}

fn usernames(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .expect("a list of users")
        .iter()
        .map(|user| user["username"].as_str().unwrap())
        .collect()
}

async fn messages_chat_and_permissions(broker: Broker) {
    let (app, address) = start(&broker, RealtimeArgs::default()).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let story = published_story(&app, &alice).await;
    let draft = app
        .post("/api/stories", Some(&alice), json!({"title": "Secret", "pages": [{"text": "x"}], "genre": "funny", "age_group": "3-5"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let drawing = app
        .post(
            "/api/drawings",
            Some(&alice),
            json!({"title": "Mine", "width": 100, "height": 100}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let mut a = connect(address, &alice).await;
    let mut b = connect(address, &bob).await;
    let channel = format!("story:{story}");
    assert_eq!(subscribe(&mut a, &channel, None).await["offset"], 0);
    subscribe(&mut b, &channel, None).await;
    send(&mut b, json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": "what the f.u.c.k"}})).await;
    for socket in [&mut a, &mut b] {
        let message = next_op(socket, "message").await;
        assert_eq!(message["offset"], 1);
        assert_eq!(message["from"]["username"], "bob");
        assert_eq!(
            message["data"]["text"], "what the *******",
            "chat is masked"
        );
    }

    let errors = [
        (
            json!({"op": "publish", "channel": "lobby", "data": {}}),
            "forbidden",
        ),
        (
            json!({"op": "publish", "channel": format!("story:{draft}"), "data": {}}),
            "forbidden",
        ),
        (
            json!({"op": "subscribe", "channel": format!("story:{draft}")}),
            "not_found",
        ),
        (
            json!({"op": "subscribe", "channel": format!("drawing:{drawing}")}),
            "not_found",
        ),
        (
            json!({"op": "subscribe", "channel": "drawing:999999"}),
            "not_found",
        ),
        (
            json!({"op": "subscribe", "channel": "drawing:abc"}),
            "bad_request",
        ),
        (
            json!({"op": "subscribe", "channel": "lobby:2"}),
            "bad_request",
        ),
        (json!({"op": "subscribe", "channel": ""}), "bad_request"),
        (
            json!({"op": "subscribe", "channel": "chat:1"}),
            "bad_request",
        ),
        (json!({"op": "dance"}), "bad_request"),
        (
            json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": "x".repeat(17 * 1024)}}),
            "too_large",
        ),
    ];
    for (request, code) in errors {
        send(&mut b, request.clone()).await;
        let error = next_op(&mut b, "error").await;
        assert_eq!(error["code"], code, "{request}");
    }
    b.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(next_op(&mut b, "error").await["code"], "bad_request");
}

async fn strokes_are_saved_then_broadcast_and_cursors_are_volatile(broker: Broker) {
    let (app, address) = start(&broker, RealtimeArgs::default()).await;
    let owner = app.register("owner").await;
    let friend = app.register("friend").await;
    let drawing = app
        .post(
            "/api/drawings",
            Some(&owner),
            json!({"title": "Together", "width": 100, "height": 100}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/drawings/{drawing}/collaborators"),
        Some(&owner),
        json!({"username": "friend"}),
    )
    .await;
    let channel = format!("drawing:{drawing}");
    let mut o = connect(address, &owner).await;
    let mut f = connect(address, &friend).await;
    subscribe(&mut o, &channel, None).await;
    subscribe(&mut f, &channel, None).await;
    let stroke = json!({"id": "w1", "tool": "pen", "color": "#FF0000", "width": 4, "points": [[1, 1], [50, 50]]});
    send(
        &mut f,
        json!({"op": "publish", "channel": channel, "data": {"type": "stroke", "stroke": stroke}}),
    )
    .await;
    let message = next_op(&mut o, "message").await;
    assert_eq!(
        (
            message["offset"].as_u64(),
            message["data"]["stroke"]["color"].as_str()
        ),
        (Some(1), Some("#ff0000"))
    );
    let saved = app
        .get(&format!("/api/drawings/{drawing}"), Some(&owner))
        .await;
    assert_eq!(
        saved.body["strokes"][0]["id"], "w1",
        "saved before it was broadcast"
    );

    let bad =
        json!({"id": "w2", "tool": "pen", "color": "#000000", "width": 4, "points": [[500, 1]]});
    send(
        &mut f,
        json!({"op": "publish", "channel": channel, "data": {"type": "stroke", "stroke": bad}}),
    )
    .await;
    assert_eq!(next_op(&mut f, "error").await["code"], "bad_request");
    send(
        &mut o,
        json!({"op": "publish", "channel": channel, "data": {"type": "cursor", "x": 3, "y": 4}}),
    )
    .await;
    let cursor = next_op(&mut f, "message").await;
    assert_eq!(
        (
            cursor["data"]["type"].as_str(),
            cursor["volatile"].as_bool()
        ),
        (Some("cursor"), Some(true))
    );
    send(
        &mut o,
        json!({"op": "publish", "channel": channel, "data": {"type": "undo", "stroke_id": "w1"}}),
    )
    .await;
    let undo = next_op(&mut f, "message").await;
    assert_eq!(
        (undo["offset"].as_u64(), undo["data"]["type"].as_str()),
        (Some(2), Some("undo")),
        "cursors take no offset"
    );
    let after = app
        .get(&format!("/api/drawings/{drawing}"), Some(&owner))
        .await;
    assert_eq!(after.body["strokes"], json!([]));

    // A late joiner reads REST, then subscribes from the offset it saw.
    let mut late = connect(address, &friend).await;
    let replay = subscribe(&mut late, &channel, Some(0)).await;
    assert_eq!(
        (replay["recovered"].as_bool(), replay["offset"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(next_op(&mut late, "message").await["offset"], 1);
    assert_eq!(next_op(&mut late, "message").await["offset"], 2);
}

async fn recovery_and_the_history_cap(broker: Broker) {
    let (app, address) = start(&broker, generous()).await;
    let alice = app.register("alice").await;
    let channel = story_channel(&app, &alice).await;
    let mut a = subscribed(address, &alice, &channel).await;
    for i in 0..120 {
        send(
            &mut a,
            json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": format!("{i}")}}),
        )
        .await;
    }
    for _ in 0..120 {
        next_op(&mut a, "message").await;
    }
    let mut b = connect(address, &alice).await;
    let recovered = subscribe(&mut b, &channel, Some(115)).await;
    assert_eq!(
        (
            recovered["recovered"].as_bool(),
            recovered["offset"].as_u64()
        ),
        (Some(true), Some(120))
    );
    let replayed: Vec<u64> = {
        let mut offsets = Vec::new();
        for _ in 0..5 {
            offsets.push(next_op(&mut b, "message").await["offset"].as_u64().unwrap());
        }
        offsets
    };
    assert_eq!(replayed, [116, 117, 118, 119, 120]);
    let mut c = connect(address, &alice).await;
    let lost = subscribe(&mut c, &channel, Some(5)).await;
    assert_eq!(
        lost["recovered"], false,
        "only the last 100 messages are kept"
    );
    send(&mut c, json!({"op": "ping"})).await;
    assert_eq!(
        next(&mut c).await.unwrap()["op"],
        "pong",
        "nothing was replayed"
    );
    let mut d = connect(address, &alice).await;
    assert_eq!(
        subscribe(&mut d, &channel, Some(20)).await["recovered"],
        true,
        "offsets 21..=120 are the last 100"
    );
    let metrics = app.get("/metrics", None).await;
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("ws_connections 4"), "{text}");
    assert!(text.contains("ws_channels "));
}

async fn rate_limit_per_connection(broker: Broker) {
    // A burst of 60 as by default, refilled at 2 a second so the time the
    // 70 publishes take (longer through Redis) barely adds to it.
    let (app, address) = start(
        &broker,
        RealtimeArgs {
            ws_publish_rate: 2,
            ..RealtimeArgs::default()
        },
    )
    .await;
    let alice = app.register("alice").await;
    let channel = story_channel(&app, &alice).await;
    let mut a = subscribed(address, &alice, &channel).await;
    let started = std::time::Instant::now();
    for i in 0..70 {
        send(
            &mut a,
            json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": format!("{i}")}}),
        )
        .await;
    }
    let mut limited = 0;
    let mut delivered = 0;
    while let Some(frame) = next(&mut a).await {
        match frame["op"].as_str() {
            Some("error") if frame["code"] == "rate_limited" => limited += 1,
            Some("message") => delivered += 1,
            _ => {}
        }
        if limited + delivered == 70 {
            break;
        }
    }
    // At most the burst plus what refilled while they were handled; every
    // frame counts, so the subscribe took one of the 60.
    let refilled = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    assert!(
        (59..=59 + refilled).contains(&delivered),
        "burst of 60 less the subscribe (+{refilled} refilled): {delivered}"
    );
    assert_eq!(limited + delivered, 70);
}

async fn a_slow_reader_is_closed_with_1013(broker: Broker) {
    let (app, address) = start(
        &broker,
        RealtimeArgs {
            ws_queue_frames: 32,
            ws_queue_bytes: 1024 * 1024,
            ..generous()
        },
    )
    .await;
    let alice = app.register("alice").await;
    let channel = story_channel(&app, &alice).await;
    let mut slow = subscribed(address, &alice, &channel).await;
    let fast = subscribed(address, &alice, &channel).await;
    let (mut fast_sink, mut fast_stream) = fast.split();
    // The publisher keeps reading; the slow reader reads nothing while
    // 12 MB are published at it.
    let reader = tokio::spawn(async move { while fast_stream.next().await.is_some() {} });
    let big = "x".repeat(15 * 1024);
    for i in 0..800 {
        let data = json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": format!("{i} {big}")}});
        if fast_sink
            .send(Message::Text(data.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let mut code = None;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(5), slow.next()).await {
        if let Ok(Message::Close(Some(close))) = frame {
            code = Some(u16::from(close.code));
            break;
        }
    }
    assert_eq!(code, Some(1013), "closed as too slow, not buffered");
    reader.abort();
    let metrics = app.get("/metrics", None).await;
    assert!(
        !metrics
            .body
            .as_str()
            .unwrap()
            .contains("ws_slow_consumers_total 0")
    );
}

async fn notifications_are_pushed_and_deactivation_disconnects(broker: Broker) {
    let (app, address) = start(&broker, RealtimeArgs::default()).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let admin = app.register_admin("root_admin").await;
    let story = published_story(&app, &alice).await;
    let mut a1 = connect(address, &alice).await;
    let mut a2 = connect(address, &alice).await;
    subscribe(&mut a1, "lobby", None).await;
    subscribe(&mut a2, "lobby", None).await;
    app.post(&format!("/api/stories/{story}/like"), Some(&bob), json!({}))
        .await;
    for socket in [&mut a1, &mut a2] {
        let pushed = next_op(socket, "notification").await;
        assert_eq!(pushed["notification"]["kind"], "like");
        assert_eq!(pushed["notification"]["data"]["user"]["username"], "bob");
    }
    let alice_id = app.get("/api/me", Some(&alice)).await.body["id"]
        .as_i64()
        .unwrap();
    app.patch(
        &format!("/api/admin/users/{alice_id}"),
        Some(&admin),
        json!({"active": false}),
    )
    .await;
    let mut code = None;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(3), a1.next()).await {
        if let Ok(Message::Close(Some(close))) = frame {
            code = Some(u16::from(close.code));
            break;
        }
    }
    assert_eq!(code, Some(1008), "a deactivated user's sockets are closed");
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{address}/ws?token={alice}"))
            .await
            .is_err()
    );
}

async fn channels_are_freed_when_everyone_leaves(broker: Broker) {
    let (app, address) = start(
        &broker,
        RealtimeArgs {
            ws_history_secs: 1,
            ..RealtimeArgs::default()
        },
    )
    .await;
    let alice = app.register("alice").await;
    let channel = story_channel(&app, &alice).await;
    let mut a = subscribed(address, &alice, &channel).await;
    send(
        &mut a,
        json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": "hello"}}),
    )
    .await;
    next_op(&mut a, "message").await;
    assert_eq!(app.state.realtime.broker.channel_count(), 1, "the story");
    drop(a);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.state.realtime.broker.sweep();
    assert_eq!(
        app.state.realtime.broker.channel_count(),
        0,
        "the channel map is empty"
    );
    assert_eq!(app.state.realtime.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_is_served_from_the_binary() {
    let app = TestApp::sqlite().await;
    let reply = app.get("/demo", None).await;
    assert_eq!(reply.status, axum::http::StatusCode::OK);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = reply.body.as_str().unwrap();
    assert!(page.contains("/ws?token=") && page.contains("/api/auth/login"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing loaded from elsewhere"
    );
}
