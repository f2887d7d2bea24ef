//! Contract sections "Drawings (canvas)" and "Educational games",
//! black-box on SQLite and PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestApp;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

backend_tests!(
    drawings_collaborators_and_access,
    strokes_are_validated_bounded_and_idempotent,
    png_renders_strokes_with_etags,
    drawings_on_published_stories_are_public,
    games_are_made_checked_and_ranked,
    deleting_a_drawing_detaches_it_from_pages,
);

/// A 1024 × 1024 drawing of `batches` × `per_batch` strokes of 2,000
/// points, `point(i, n, batch)` the i-th point of stroke n of a batch.
async fn full_size_drawing(
    app: &TestApp,
    token: &str,
    batches: usize,
    per_batch: usize,
    point: impl Fn(usize, usize, usize) -> [usize; 2],
) -> i64 {
    let reply = app
        .post(
            "/api/drawings",
            Some(token),
            json!({"title": "Full size", "width": 1024, "height": 1024}),
        )
        .await;
    let id = reply.body["id"].as_i64().unwrap();
    for batch in 0..batches {
        let strokes: Vec<Value> = (0..per_batch)
            .map(|n| {
                let points: Vec<[usize; 2]> = (0..2000).map(|i| point(i, n, batch)).collect();
                stroke(&format!("s{batch}-{n}"), "#123456", json!(points))
            })
            .collect();
        let appended = app
            .post(
                &format!("/api/drawings/{id}/strokes"),
                Some(token),
                json!({"strokes": strokes}),
            )
            .await;
        assert_eq!(appended.status, StatusCode::OK, "{}", appended.body);
    }
    id
}

/// A client that asks for a big drawing and never reads the answer holds
/// no database connection (strokes are read a page at a time) and loses
/// its stream after RESPONSE_STALL_SECS: the answer ends as an error,
/// never as a JSON that looks complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_drawing_streams_hold_no_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::sqlite_with(storybook::config::Limits {
        response_stall_secs: 1,
        ..Default::default()
    })
    .await;
    let token = app.register("hoarder").await;
    // 400 strokes of 2,000 points: about 11 MB of JSON.
    let id = full_size_drawing(&app, &token, 20, 20, |i, n, batch| {
        [(i * 7 + n) % 1024, (i * 13 + batch) % 1024]
    })
    .await;
    let address = app.listen().await;
    // More stalled readers than the pool has connections (5).
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(address).await.unwrap();
        let request = format!(
            "GET /api/drawings/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    // Every stream has started (its first bytes wait in our receive
    // buffer: peeking does not take them, so the stall goes on).
    for stream in &stalled {
        let mut first = [0u8; 1];
        tokio::time::timeout(std::time::Duration::from_secs(60), stream.peek(&mut first))
            .await
            .expect("the stream started")
            .unwrap();
    }
    // The API still answers: nobody is holding the pool.
    let ready = tokio::time::timeout(std::time::Duration::from_secs(3), app.get("/readyz", None))
        .await
        .expect("readyz answers while the streams stall");
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status,
        StatusCode::OK
    );
    // After the stall limit (1 s) each stream is dropped; the server counts
    // them (waited for rather than slept on: on a busy machine a stream may
    // take seconds to fill its buffers).
    let started = std::time::Instant::now();
    while app
        .state
        .metrics
        .streams_cut
        .load(std::sync::atomic::Ordering::Relaxed)
        < 8
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "every stalled stream is dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Reading now reaches the end of what was sent: not a complete drawing.
    for mut stream in stalled {
        let mut received = Vec::new();
        // Generous: the other tests of this file render drawings meanwhile.
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            stream.read_to_end(&mut received),
        )
        .await
        .expect("the server ended the stalled stream");
        let _ = read;
        let tail =
            String::from_utf8_lossy(&received[received.len().saturating_sub(40)..]).into_owned();
        let head = String::from_utf8_lossy(&received[..received.len().min(200)]).into_owned();
        assert!(
            !received.ends_with(b"]}") && !received.ends_with(b"]}\r\n0\r\n\r\n"),
            "{} bytes: {head:?} … {tail:?}",
            received.len()
        );
    }
}

/// A render stops when its request ends (here, at the request time-out),
/// and keeps its slot until it has really stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_stops_when_its_request_ends() {
    let app = TestApp::sqlite_with(storybook::config::Limits {
        request_timeout_secs: 1,
        // More than the drawing below takes, so only the request ends it.
        render_cpu_ms: 60_000,
        ..Default::default()
    })
    .await;
    let token = app.register("zigzag").await;
    // 2,000-point strokes across the whole image at random heights: about
    // 20 ms each to draw, so seconds for a batch.
    let id = full_size_drawing(&app, &token, 45, 10, |i, n, _| {
        [if i % 2 == 0 { 0 } else { 1023 }, (i * 37 + n) % 1024]
    })
    .await;
    let started = std::time::Instant::now();
    let timed_out = app
        .get(&format!("/api/drawings/{id}/image.png"), Some(&token))
        .await;
    assert_eq!(
        (timed_out.status, timed_out.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "timeout")
    );
    // The render held its slot while it ran; it lets go soon after the
    // request ended (1 s), not after the whole drawing (about 7 s here).
    while app.state.tools.renders.admitted() > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "the render is still running {:?} after its request started",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A render that runs out of CPU time is drawn up to there and says so;
/// the image is then kept, so asking again costs no drawing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_stops_at_its_cpu_budget_and_is_kept() {
    let app = TestApp::sqlite_with(storybook::config::Limits {
        render_cpu_ms: 0,
        render_concurrency: 1,
        render_queue: 0,
        ..Default::default()
    })
    .await;
    let token = app.register("budget").await;
    let line = |y: usize| stroke("s", "#ff0000", json!([[0, y], [1000, y]]));
    let reply = app
        .post(
            "/api/drawings",
            Some(&token),
            json!({"title": "Lines", "width": 1000, "height": 100, "strokes": [line(20), line(80)]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let path = format!("/api/drawings/{}/image.png", reply.body["id"]);
    let first = app.send(image_request(&path, &token)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["render-incomplete"], "true");
    let (_, _, bytes) = png(&app, &path, Some(&token), None).await;
    let image = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
    let white = image.pixel(500, 20).unwrap().demultiply();
    assert_eq!(
        (white.red(), white.green(), white.blue()),
        (255, 255, 255),
        "with no time at all, nothing is drawn"
    );
    assert_eq!(app.state.caches.images.stats().0, 1, "the image is kept");

    // With the only render slot taken, a new render is busy at once, but
    // the kept image is still served.
    let _held = app.state.tools.renders.acquire().await.unwrap();
    let other_size = app
        .send(image_request(&format!("{path}?width=500"), &token))
        .await;
    assert_eq!(other_size.status, StatusCode::SERVICE_UNAVAILABLE);
    let again = app.send(image_request(&path, &token)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["render-incomplete"], "true");
}

fn image_request(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn stroke(id: &str, color: &str, points: Value) -> Value {
    json!({"id": id, "tool": "pen", "color": color, "width": 8, "points": points})
}

async fn new_drawing(app: &TestApp, token: &str) -> i64 {
    let reply = app
        .post(
            "/api/drawings",
            Some(token),
            json!({"title": "My castle", "width": 200, "height": 100, "strokes": [stroke("s1", "#ff0000", json!([[10, 50], [190, 50]]))]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

async fn drawings_collaborators_and_access(app: TestApp) {
    let owner = app.register("artist").await;
    let friend = app.register("friend").await;
    let stranger = app.register("stranger").await;
    let id = new_drawing(&app, &owner).await;
    let path = format!("/api/drawings/{id}");
    let drawing = app.get(&path, Some(&owner)).await;
    assert_eq!(drawing.status, StatusCode::OK, "{}", drawing.body);
    assert_eq!(drawing.body["owner"]["username"], "artist");
    assert_eq!(
        (
            drawing.body["width"].as_i64(),
            drawing.body["height"].as_i64()
        ),
        (Some(200), Some(100))
    );
    assert_eq!(drawing.body["background"], "#ffffff");
    assert_eq!(drawing.body["strokes"][0]["id"], "s1");
    assert_eq!(
        drawing.body["strokes"][0]["points"],
        json!([[10.0, 50.0], [190.0, 50.0]])
    );
    assert_eq!(drawing.body["collaborators"], json!([]));
    assert_eq!(
        app.get(&path, Some(&stranger)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&path, None).await.status, StatusCode::NOT_FOUND);

    let collaborators = format!("{path}/collaborators");
    let added = app
        .post(&collaborators, Some(&owner), json!({"username": "FRIEND"}))
        .await;
    assert_eq!(
        (added.status, added.body.clone()),
        (StatusCode::CREATED, json!({"collaborators": ["friend"]}))
    );
    let again = app
        .post(&collaborators, Some(&owner), json!({"username": "friend"}))
        .await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "adding twice is the same 201"
    );
    // Removed and invited again: still one notification (no spam by toggling).
    let removed = app
        .delete(&format!("{collaborators}/friend"), Some(&owner))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let re_added = app
        .post(&collaborators, Some(&owner), json!({"username": "friend"}))
        .await;
    assert_eq!(re_added.status, StatusCode::CREATED);
    let invites = app.get("/api/notifications", Some(&friend)).await;
    assert_eq!(invites.body["total"], 1, "only the first add notifies");
    assert_eq!(invites.body["items"][0]["kind"], "collab_invite");
    assert_eq!(invites.body["items"][0]["data"]["drawing_id"], id);
    assert_eq!(
        invites.body["items"][0]["data"]["user"]["username"],
        "artist"
    );
    assert_eq!(
        app.post(
            &collaborators,
            Some(&owner),
            json!({"username": "nobody_at_all"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(
            &collaborators,
            Some(&friend),
            json!({"username": "stranger"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            &collaborators,
            Some(&stranger),
            json!({"username": "stranger"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(app.get(&path, Some(&friend)).await.status, StatusCode::OK);
    let appended = app
        .post(
            &format!("{path}/strokes"),
            Some(&friend),
            json!({"strokes": [stroke("f1", "#00ff00", json!([[5, 5]]))]}),
        )
        .await;
    assert_eq!(appended.body, json!({"stroke_count": 2}));
    assert_eq!(
        app.delete(&format!("{path}/strokes/f1"), Some(&friend))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("{path}/strokes/f1"), Some(&friend))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&path, Some(&friend), json!({"title": "Ours"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&path, Some(&friend)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            &format!("{path}/strokes"),
            Some(&stranger),
            json!({"strokes": []})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let renamed = app
        .patch(
            &path,
            Some(&owner),
            json!({"title": "Castle at night", "background": "#000033"}),
        )
        .await;
    assert_eq!(
        (
            renamed.body["title"].as_str(),
            renamed.body["background"].as_str()
        ),
        (Some("Castle at night"), Some("#000033"))
    );
    let rude = app
        .patch(&path, Some(&owner), json!({"title": "sh1t castle"}))
        .await;
    assert_eq!(
        (rude.code(), rude.fields()),
        ("profanity", vec!["title".to_owned()])
    );

    let mine = app.get("/api/me/drawings", Some(&friend)).await;
    assert_eq!(mine.body["total"], 1, "shared drawings are listed");
    assert_eq!(mine.body["items"][0]["stroke_count"], 1);
    assert_eq!(
        app.delete(&format!("{collaborators}/friend"), Some(&owner))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("{collaborators}/friend"), Some(&owner))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&path, Some(&friend)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path, Some(&owner)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&path, Some(&owner)).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn strokes_are_validated_bounded_and_idempotent(app: TestApp) {
    let owner = app.register("validating_artist").await;
    let bad = app
        .post(
            "/api/drawings",
            Some(&owner),
            json!({"title": "", "width": 8, "height": 5000, "background": "blue"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.fields(), ["background", "height", "title", "width"]);
    let id = new_drawing(&app, &owner).await;
    let strokes_path = format!("/api/drawings/{id}/strokes");
    let invalid = app
        .post(
            &strokes_path,
            Some(&owner),
            json!({"strokes": [
                stroke("ok", "#000000", json!([[1, 1]])),
                {"id": "x", "tool": "brush", "color": "#000000", "width": 200, "points": [[1, 1]]},
                stroke("far", "#000000", json!([[201, 1]])),
                stroke("", "#000000", json!([])),
            ]}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid.fields(),
        [
            "strokes.1.tool",
            "strokes.1.width",
            "strokes.2.points",
            "strokes.3.id",
            "strokes.3.points"
        ]
    );
    let retry = json!({"strokes": [stroke("a", "#000000", json!([[1, 1]])), stroke("b", "#000000", json!([[2, 2]]))]});
    assert_eq!(
        app.post(&strokes_path, Some(&owner), retry.clone())
            .await
            .body["stroke_count"],
        3
    );
    assert_eq!(
        app.post(&strokes_path, Some(&owner), retry).await.body["stroke_count"],
        3,
        "retries never duplicate"
    );

    let many: Vec<Value> = (0..10_001)
        .map(|i| stroke(&format!("m{i}"), "#000000", json!([[1, 1]])))
        .collect();
    let too_many = app
        .post(&strokes_path, Some(&owner), json!({"strokes": many}))
        .await;
    assert_eq!(
        (too_many.status, too_many.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["strokes".to_owned()])
    );
    let nearly: Vec<Value> = (0..9_997)
        .map(|i| stroke(&format!("n{i}"), "#000000", json!([[1, 1]])))
        .collect();
    assert_eq!(
        app.post(&strokes_path, Some(&owner), json!({"strokes": nearly}))
            .await
            .body["stroke_count"],
        10_000
    );
    let over = app
        .post(
            &strokes_path,
            Some(&owner),
            json!({"strokes": [stroke("last", "#000000", json!([[1, 1]]))]}),
        )
        .await;
    assert_eq!(
        (over.status, over.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["strokes".to_owned()])
    );
    let drawing = app.get(&format!("/api/drawings/{id}"), Some(&owner)).await;
    assert_eq!(
        drawing.body["strokes"].as_array().unwrap().len(),
        10_000,
        "the refused append left nothing behind"
    );
}

async fn png(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    etag: Option<&str>,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(etag) = etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, etag, bytes)
}

async fn png_renders_strokes_with_etags(app: TestApp) {
    let owner = app.register("png_artist").await;
    let id = new_drawing(&app, &owner).await;
    let path = format!("/api/drawings/{id}/image.png");
    let (status, etag, bytes) = png(&app, &path, Some(&owner), None).await;
    assert_eq!(status, StatusCode::OK);
    let image = tiny_skia::Pixmap::decode_png(&bytes).expect("a PNG");
    assert_eq!((image.width(), image.height()), (200, 100));
    let red = image.pixel(100, 50).unwrap().demultiply();
    assert_eq!(
        (red.red(), red.green(), red.blue()),
        (255, 0, 0),
        "a red stroke is red where it was drawn"
    );
    let white = image.pixel(100, 10).unwrap().demultiply();
    assert_eq!((white.red(), white.green(), white.blue()), (255, 255, 255));

    let etag = etag.expect("an ETag");
    let (status, _, body) = png(&app, &path, Some(&owner), Some(&etag)).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, small_etag, bytes) =
        png(&app, &format!("{path}?width=50"), Some(&owner), Some(&etag)).await;
    assert_eq!(status, StatusCode::OK, "another size is another ETag");
    assert_ne!(small_etag.as_deref(), Some(etag.as_str()));
    let small = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
    assert_eq!((small.width(), small.height()), (50, 25));
    app.post(
        &format!("/api/drawings/{id}/strokes"),
        Some(&owner),
        json!({"strokes": [stroke("b", "#0000ff", json!([[100, 0], [100, 100]]))]}),
    )
    .await;
    let (status, changed, _) = png(&app, &path, Some(&owner), Some(&etag)).await;
    assert_eq!(status, StatusCode::OK, "a change makes a new ETag");
    assert_ne!(changed, Some(etag));
    for bad in ["width=15", "width=1025", "width=big"] {
        let reply = app.get(&format!("{path}?{bad}"), Some(&owner)).await;
        assert_eq!(
            (reply.status, reply.fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["width".to_owned()]),
            "{bad}"
        );
    }
    assert_eq!(png(&app, &path, None, None).await.0, StatusCode::NOT_FOUND);
}

async fn drawings_on_published_stories_are_public(app: TestApp) {
    let owner = app.register("illustrator").await;
    let other = app.register("other_writer").await;
    let id = new_drawing(&app, &owner).await;
    let story = json!({"title": "Illustrated", "pages": [{"text": "Look!", "drawing_id": id}], "genre": "funny", "age_group": "3-5", "status": "published"});
    let theirs = app.post("/api/stories", Some(&other), story.clone()).await;
    assert_eq!(
        (theirs.status, theirs.fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["pages.0.drawing_id".to_owned()]
        )
    );
    let created = app.post("/api/stories", Some(&owner), story).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["pages"][0]["drawing_id"], id);
    assert_eq!(
        app.get(&format!("/api/drawings/{id}"), None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        png(&app, &format!("/api/drawings/{id}/image.png"), None, None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        app.patch(
            &format!("/api/drawings/{id}"),
            Some(&other),
            json!({"title": "x"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let story_id = created.body["id"].as_i64().unwrap();
    app.patch(
        &format!("/api/stories/{story_id}"),
        Some(&owner),
        json!({"status": "draft"}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/drawings/{id}"), None).await.status,
        StatusCode::NOT_FOUND
    );
}

const LONG_STORY: &[&str] = &[
    "Once upon a time a brave little fox lived beside a sparkling river. Every morning the fox counted the shiny pebbles on the bank.",
    "One day the fox met a friendly owl who knew every star in the sky. The owl told wonderful stories about the glowing moon.",
    "Together they followed the river to a hidden garden. There they found a golden lantern and carried it home before supper.",
];

async fn games_are_made_checked_and_ranked(app: TestApp) {
    let author = app.register("game_author").await;
    let player = app.register("player_one").await;
    let rival = app.register("player_two").await;
    let pages: Vec<Value> = LONG_STORY.iter().map(|t| json!({"text": t})).collect();
    let story = app
        .post("/api/stories", Some(&author), json!({"title": "Fox and Owl", "pages": pages, "genre": "animals", "age_group": "6-8", "status": "published"}))
        .await;
    let id = story.body["id"].as_i64().unwrap();
    let kinds = app.get(&format!("/api/stories/{id}/games"), None).await;
    assert_eq!(
        kinds.body,
        json!({"kinds": ["quiz", "scramble", "fill_blank", "order"]})
    );

    for kind in ["quiz", "scramble", "fill_blank", "order"] {
        let game = app
            .get(&format!("/api/stories/{id}/games/{kind}"), None)
            .await;
        assert_eq!(game.status, StatusCode::OK, "{kind}");
        assert_eq!(
            (
                game.body["kind"].as_str(),
                game.body["story_id"].as_i64(),
                game.body["version"].as_i64()
            ),
            (Some(kind), Some(id), Some(1))
        );
        let questions = game.body["questions"].as_array().unwrap();
        assert!(
            (3..=10).contains(&questions.len()),
            "{kind}: {}",
            questions.len()
        );
        assert!(
            !game.body.to_string().contains("\"answer"),
            "no answers in a game"
        );
        assert_eq!(
            app.get(&format!("/api/stories/{id}/games/{kind}"), None)
                .await
                .body,
            game.body,
            "same version, same game"
        );
    }
    assert_eq!(
        app.get(&format!("/api/stories/{id}/games/crossword"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let answers = format!("/api/stories/{id}/games/order/answers");
    let blank = app
        .post(
            &answers,
            Some(&player),
            json!({"version": 1, "answers": {}}),
        )
        .await;
    assert_eq!(blank.status, StatusCode::OK, "{}", blank.body);
    assert_eq!(blank.body["score"], 0);
    let total = blank.body["total"].as_i64().unwrap();
    // The results reveal the right answers; playing them scores full marks.
    let right: serde_json::Map<String, Value> = blank.body["results"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(q, r)| (q.clone(), r["answer"].clone()))
        .collect();
    assert!(
        right.values().all(Value::is_array),
        "order answers are arrays"
    );
    let full = app
        .post(
            &answers,
            Some(&player),
            json!({"version": 1, "answers": right}),
        )
        .await;
    assert_eq!(
        (full.body["score"].as_i64(), full.body["total"].as_i64()),
        (Some(total), Some(total))
    );
    assert!(full.body["results"]["q1"]["correct"].as_bool().unwrap());
    app.post(
        &answers,
        Some(&player),
        json!({"version": 1, "answers": {}}),
    )
    .await;
    app.post(
        &answers,
        Some(&rival),
        json!({"version": 1, "answers": {"q1": right["q1"].clone()}}),
    )
    .await;
    let board = app
        .get(&format!("/api/stories/{id}/games/order/leaderboard"), None)
        .await;
    let entries = board.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0]["user"]["username"].as_str(),
            entries[0]["score"].as_i64()
        ),
        (Some("player_one"), Some(total)),
        "the best score is kept"
    );
    assert_eq!(entries[1]["score"], 1);
    assert!(entries[0]["at"].is_string());

    let bad = app
        .post(&answers, Some(&player), json!({"answers": {"q1": 5}}))
        .await;
    assert_eq!(bad.fields(), ["answers.q1", "version"]);
    app.patch(
        &format!("/api/stories/{id}"),
        Some(&author),
        json!({"title": "Fox and Owl, again"}),
    )
    .await;
    let stale = app
        .post(
            &answers,
            Some(&player),
            json!({"version": 1, "answers": {}}),
        )
        .await;
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::CONFLICT, "conflict")
    );
    assert_eq!(
        app.get(&format!("/api/stories/{id}/games/quiz"), None)
            .await
            .body["version"],
        2
    );
    assert_eq!(
        app.post(&answers, None, json!({"version": 2, "answers": {}}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let short = app
        .post("/api/stories", Some(&author), json!({"title": "Tiny", "pages": [{"text": "The cat sat down."}], "genre": "funny", "age_group": "3-5", "status": "published"}))
        .await;
    let short_id = short.body["id"].as_i64().unwrap();
    let short_kinds = app
        .get(&format!("/api/stories/{short_id}/games"), None)
        .await;
    assert!(
        !short_kinds.body["kinds"]
            .as_array()
            .unwrap()
            .contains(&json!("order"))
    );
    assert_eq!(
        app.get(&format!("/api/stories/{short_id}/games/order"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let draft = app
        .post(
            "/api/stories",
            Some(&author),
            json!({"title": "Secret", "pages": pages, "genre": "animals", "age_group": "6-8"}),
        )
        .await;
    let draft_id = draft.body["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/stories/{draft_id}/games"), Some(&player))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &format!("/api/stories/{draft_id}/games/quiz"),
            Some(&author)
        )
        .await
        .status,
        StatusCode::OK
    );
}

/// Contract v1.3: deleting a drawing sets `drawing_id` to null on every
/// page that attached it, so later writes of the story (and an admin's
/// unpublish) keep working.
async fn deleting_a_drawing_detaches_it_from_pages(app: TestApp) {
    let author = app.register("painter").await;
    let admin = app.register_admin("warden").await;
    let drawing = new_drawing(&app, &author).await;
    let story = app
        .post(
            "/api/stories",
            Some(&author),
            json!({"title": "The castle", "genre": "fantasy", "age_group": "6-8", "status": "published",
                   "pages": [{"text": "A castle on a hill.", "drawing_id": drawing}, {"text": "The end."}]}),
        )
        .await;
    assert_eq!(story.status, StatusCode::CREATED, "{}", story.body);
    let story_id = story.body["id"].as_i64().unwrap();
    let report = app
        .post(
            &format!("/api/stories/{story_id}/report"),
            Some(&admin),
            json!({"reason": "check"}),
        )
        .await;
    assert_eq!(report.status, StatusCode::CREATED);

    let deleted = app
        .delete(&format!("/api/drawings/{drawing}"), Some(&author))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let read = app
        .get(&format!("/api/stories/{story_id}"), Some(&author))
        .await;
    assert_eq!(read.body["pages"][0]["drawing_id"], Value::Null);

    let patched = app
        .patch(
            &format!("/api/stories/{story_id}"),
            Some(&author),
            json!({"title": "The old castle"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let resolved = app
        .patch(
            &format!("/api/admin/reports/{}", report.body["id"]),
            Some(&admin),
            json!({"status": "resolved", "action": "unpublish"}),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    let draft = app
        .get(&format!("/api/stories/{story_id}"), Some(&author))
        .await;
    assert_eq!(draft.body["status"], "draft");
}
