//! Contract sections "Stories", "Notifications" and "Admin", black-box on
//! SQLite and PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp};
use serde_json::{Value, json};

backend_tests!(
    stories_are_written_read_and_hidden_as_drafts,
    story_validation_names_every_field,
    story_text_passes_the_profanity_filter,
    library_filters_sorts_and_pages,
    search_is_ranked_prefix_aware_and_never_a_syntax_error,
    likes_are_idempotent_and_notify_once,
    concurrent_likes_lose_no_update,
    reads_count_once_per_signed_in_reader,
    reads_are_written_in_batches_once_each,
    search_pages_past_the_cached_ones_come_from_the_ranked_window,
    reading_progress,
    notifications_list_and_mark_read,
    reports_and_moderation,
    admin_users_and_stats,
    no_stale_reads_after_writes,
    patches_change_only_the_fields_they_send,
    a_counted_read_keeps_other_cached_answers,
);

fn story_body(title: &str, status: &str) -> Value {
    json!({
        "title": title,
        "pages": [
            {"text": "Once upon a time a brave little fox lived by the river."},
            {"text": "The fox met a friendly owl who knew every star."},
            {"text": "Together they found the way home before the moon rose."}
        ],
        "genre": "animals",
        "age_group": "3-5",
        "tags": ["Fox", "night"],
        "status": status,
    })
}

async fn create_story(app: &TestApp, token: &str, body: Value) -> Value {
    let reply = app.post("/api/stories", Some(token), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

fn titles(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn stories_are_written_read_and_hidden_as_drafts(app: TestApp) {
    let author = app.register("author_a").await;
    let other = app.register("reader_b").await;
    let admin = app.register_admin("admin_c").await;
    let story = create_story(&app, &author, story_body("The Fox", "draft")).await;
    let id = story["id"].as_i64().unwrap();
    assert_eq!(story["status"], "draft");
    assert_eq!(story["source"], "manual");
    assert_eq!(story["author"]["username"], "author_a");
    assert_eq!(story["pages"][1]["drawing_id"], Value::Null);
    assert_eq!(story["tags"], json!(["Fox", "night"]));
    assert_eq!(
        (
            story["likes"].as_i64(),
            story["reads"].as_i64(),
            story["liked"].as_bool()
        ),
        (Some(0), Some(0), Some(false))
    );
    let path = format!("/api/stories/{id}");

    assert_eq!(app.get(&path, Some(&author)).await.status, StatusCode::OK);
    assert_eq!(app.get(&path, Some(&admin)).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&path, Some(&other)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&path, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.patch(&path, Some(&other), json!({"title": "Mine"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/stories/999999", None).await.status,
        StatusCode::NOT_FOUND
    );
    let bad_id = app.get("/api/stories/abc", None).await;
    assert_eq!(
        (bad_id.status, bad_id.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["id".to_owned()])
    );

    let published = app
        .patch(
            &path,
            Some(&author),
            json!({"status": "published", "title": "The Brave Fox"}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    assert_eq!(published.body["title"], "The Brave Fox");
    let public = app.get(&path, None).await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(public.body["title"], "The Brave Fox");
    assert_eq!(
        app.patch(&path, Some(&other), json!({"title": "Mine"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&path, Some(&other)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.patch(&path, Some(&admin), json!({"genre": "bedtime"}))
            .await
            .body["genre"],
        "bedtime"
    );

    let profile = app.get("/api/users/author_a", None).await;
    assert_eq!(profile.body["stories"], 1);
    let own = app.get("/api/me/stories", Some(&author)).await;
    assert_eq!(own.body["total"], 1);
    assert_eq!(own.body["items"][0]["page_count"], 3);
    assert!(
        own.body["items"][0]["excerpt"]
            .as_str()
            .unwrap()
            .starts_with("Once upon a time")
    );
    assert!(own.body["items"][0].get("pages").is_none());

    assert_eq!(
        app.delete(&path, Some(&author)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&path, Some(&author)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post("/api/stories", None, story_body("x", "draft"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn story_validation_names_every_field(app: TestApp) {
    let token = app.register("validator").await;
    let missing = app.post("/api/stories", Some(&token), json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.fields(), ["age_group", "genre", "pages", "title"]);

    let bad = app
        .post(
            "/api/stories",
            Some(&token),
            json!({
                "title": "t".repeat(121),
                "pages": [{"text": "fine"}, {"text": "x".repeat(5001)}, "not an object", {"text": 5}],
                "genre": "horror",
                "age_group": "13-18",
                "tags": ["ok", "", "t".repeat(31), 7],
                "status": "archived",
            }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.fields(),
        [
            "age_group",
            "genre",
            "pages.1.text",
            "pages.2",
            "pages.3.text",
            "status",
            "tags.1",
            "tags.2",
            "tags.3",
            "title"
        ]
    );
    let too_many = app
        .post(
            "/api/stories",
            Some(&token),
            json!({"title": "t", "pages": vec![json!({"text": "p"}); 51], "genre": "funny", "age_group": "6-8", "tags": vec!["a"; 11]}),
        )
        .await;
    assert_eq!(too_many.fields(), ["pages", "tags"]);
    let none = app
        .post(
            "/api/stories",
            Some(&token),
            json!({"title": "t", "pages": [], "genre": "funny", "age_group": "6-8"}),
        )
        .await;
    assert_eq!(none.fields(), ["pages"]);
    let drawing = app
        .post(
            "/api/stories",
            Some(&token),
            json!({"title": "t", "pages": [{"text": "a", "drawing_id": 12345}], "genre": "funny", "age_group": "6-8"}),
        )
        .await;
    assert_eq!(drawing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(drawing.fields(), ["pages.0.drawing_id"]);
    let exact = app
        .post(
            "/api/stories",
            Some(&token),
            json!({"title": "é".repeat(120), "pages": [{"text": "é".repeat(5000)}], "genre": "funny", "age_group": "9-12"}),
        )
        .await;
    assert_eq!(exact.status, StatusCode::CREATED, "limits count characters");
}

async fn story_text_passes_the_profanity_filter(app: TestApp) {
    let token = app.register("potty_mouth").await;
    let mut body = story_body("A sh1t day", "published");
    body["pages"][1]["text"] = json!("and then f u c k happened");
    body["tags"] = json!(["fine", "bitch"]);
    let reply = app.post("/api/stories", Some(&token), body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "profanity");
    assert_eq!(reply.fields(), ["pages.1.text", "tags.1", "title"]);
    let classic = create_story(
        &app,
        &token,
        story_body("A classic tale from Scunthorpe", "published"),
    )
    .await;
    let rude_patch = app
        .patch(
            &format!("/api/stories/{}", classic["id"]),
            Some(&token),
            json!({"title": "crap"}),
        )
        .await;
    assert_eq!(rude_patch.code(), "profanity");
    // A long story (checked off the async workers) is judged the same.
    let mut long = story_body("A long tale", "published");
    let page = "The fox ran over the hill and far away. ".repeat(100);
    long["pages"] = json!((0..10)
        .map(|n| json!({"text": if n == 7 { format!("{page} what the sh1t") } else { page.clone() }}))
        .collect::<Vec<_>>());
    let reply = app.post("/api/stories", Some(&token), long).await;
    assert_eq!(
        (reply.code(), reply.fields()),
        ("profanity", vec!["pages.7.text".to_owned()])
    );
}

async fn library_filters_sorts_and_pages(app: TestApp) {
    let ann = app.register("ann").await;
    let ben = app.register("ben").await;
    let mut ids = Vec::new();
    for (title, genre, age, tags, by) in [
        ("banana boat", "funny", "3-5", vec!["Boats"], &ann),
        ("Apple tree", "science", "6-8", vec!["trees", "boats"], &ann),
        ("cherry moon", "bedtime", "9-12", vec![], &ben),
    ] {
        let mut body = story_body(title, "published");
        body["genre"] = json!(genre);
        body["age_group"] = json!(age);
        body["tags"] = json!(tags);
        ids.push(create_story(&app, by, body).await["id"].as_i64().unwrap());
    }
    create_story(&app, &ann, story_body("draft zebra", "draft")).await;
    app.post(
        &format!("/api/stories/{}/like", ids[2]),
        Some(&ann),
        json!({}),
    )
    .await;
    app.post(
        &format!("/api/stories/{}/like", ids[2]),
        Some(&ben),
        json!({}),
    )
    .await;
    app.post(
        &format!("/api/stories/{}/like", ids[0]),
        Some(&ben),
        json!({}),
    )
    .await;

    let all = app.get("/api/stories", None).await;
    assert_eq!(
        titles(&all),
        ["cherry moon", "Apple tree", "banana boat"],
        "newest first"
    );
    assert_eq!(
        (
            all.body["total"].as_i64(),
            all.body["page"].as_i64(),
            all.body["page_size"].as_i64()
        ),
        (Some(3), Some(1), Some(20))
    );
    assert_eq!(
        titles(&app.get("/api/stories?sort=popular", None).await),
        ["cherry moon", "banana boat", "Apple tree"]
    );
    assert_eq!(
        titles(&app.get("/api/stories?sort=title", None).await),
        ["Apple tree", "banana boat", "cherry moon"]
    );
    assert_eq!(
        titles(&app.get("/api/stories?sort=relevance", None).await),
        ["cherry moon", "Apple tree", "banana boat"]
    );
    assert_eq!(
        titles(&app.get("/api/stories?genre=funny", None).await),
        ["banana boat"]
    );
    assert_eq!(
        titles(&app.get("/api/stories?age_group=6-8", None).await),
        ["Apple tree"]
    );
    assert_eq!(
        titles(&app.get("/api/stories?tag=BOATS&sort=title", None).await),
        ["Apple tree", "banana boat"]
    );
    assert_eq!(
        titles(&app.get("/api/stories?author=BEN", None).await),
        ["cherry moon"]
    );
    assert_eq!(
        app.get("/api/stories?author=nobody", None).await.body["total"],
        0
    );
    let paged = app.get("/api/stories?page=2&page_size=2", None).await;
    assert_eq!(
        (titles(&paged), paged.body["total"].as_i64()),
        (vec!["banana boat".to_owned()], Some(3))
    );
    let past = app.get("/api/stories?page=9", None).await;
    assert_eq!(
        (past.status, past.body["items"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );

    let liked = app.get("/api/stories", Some(&ben)).await;
    let flags: Vec<bool> = liked.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["liked"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [true, false, true]);

    for (query, field) in [
        ("sort=oldest", "sort"),
        ("genre=horror", "genre"),
        ("age_group=1-2", "age_group"),
        ("page=0", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page=abc", "page"),
    ] {
        let reply = app.get(&format!("/api/stories?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(reply.fields(), [field], "{query}");
    }
}

async fn search_is_ranked_prefix_aware_and_never_a_syntax_error(app: TestApp) {
    let token = app.register("searcher").await;
    let mut in_title = story_body("The Dragon of Glass Mountain", "published");
    in_title["pages"] = json!([{"text": "A quiet tale about a mountain."}]);
    create_story(&app, &token, in_title).await;
    let mut in_pages = story_body("Mountain Picnic", "published");
    in_pages["pages"] =
        json!([{"text": "They packed sandwiches."}, {"text": "A small dragon joined the picnic."}]);
    in_pages["genre"] = json!("funny");
    let picnic = create_story(&app, &token, in_pages).await["id"]
        .as_i64()
        .unwrap();
    let mut in_tags = story_body("Sea Song", "published");
    in_tags["tags"] = json!(["dragonfly"]);
    create_story(&app, &token, in_tags).await;
    create_story(&app, &token, story_body("Secret dragon draft", "draft")).await;

    let dragon = app.get("/api/stories?q=dragon", None).await;
    assert_eq!(dragon.status, StatusCode::OK);
    let found = titles(&dragon);
    assert_eq!(
        found[0], "The Dragon of Glass Mountain",
        "title matches rank first: {found:?}"
    );
    assert!(found.contains(&"Mountain Picnic".to_owned()));
    assert!(
        !found.iter().any(|t| t.contains("draft")),
        "drafts never show in search"
    );
    let prefix = titles(&app.get("/api/stories?q=drag", None).await);
    assert!(
        prefix.contains(&"The Dragon of Glass Mountain".to_owned()) && prefix.len() >= 2,
        "{prefix:?}"
    );
    let two_words = titles(&app.get("/api/stories?q=small%20dragon", None).await);
    assert_eq!(two_words, ["Mountain Picnic"]);
    let filtered = titles(&app.get("/api/stories?q=mountain&genre=funny", None).await);
    assert_eq!(filtered, ["Mountain Picnic"]);
    let by_title = titles(&app.get("/api/stories?q=mountain&sort=title", None).await);
    assert_eq!(
        by_title,
        ["Mountain Picnic", "The Dragon of Glass Mountain"]
    );
    // Unpublishing takes a story out of search at once; publishing puts it back.
    let picnic_path = format!("/api/stories/{picnic}");
    app.patch(&picnic_path, Some(&token), json!({"status": "draft"}))
        .await;
    assert!(
        !titles(&app.get("/api/stories?q=picnic", None).await)
            .contains(&"Mountain Picnic".to_owned())
    );
    app.patch(
        &picnic_path,
        Some(&token),
        json!({"status": "published", "title": "Mountain Feast"}),
    )
    .await;
    assert_eq!(
        titles(&app.get("/api/stories?q=feast", None).await),
        ["Mountain Feast"]
    );
    let by_page_text = titles(&app.get("/api/stories?q=picnic", None).await);
    assert!(
        by_page_text.contains(&"Mountain Feast".to_owned()),
        "page text still matches"
    );
    app.delete(&picnic_path, Some(&token)).await;
    assert_eq!(app.get("/api/stories?q=feast", None).await.body["total"], 0);
    for query in [
        "%22",
        "*",
        "AND",
        "-",
        "%F0%9F%90%89",
        "NOT%20OR",
        "(",
        "dragon%22%20OR%20%22",
        "a:b",
        "%27",
    ] {
        let reply = app.get(&format!("/api/stories?q={query}"), None).await;
        assert_eq!(reply.status, StatusCode::OK, "q={query}: {}", reply.body);
        assert!(reply.body["items"].is_array());
    }
}

async fn likes_are_idempotent_and_notify_once(app: TestApp) {
    let author = app.register("liked_author").await;
    let fan = app.register("fan").await;
    let id = create_story(&app, &author, story_body("Likeable", "published")).await["id"]
        .as_i64()
        .unwrap();
    let like = format!("/api/stories/{id}/like");
    // What the fan likes is kept in memory after their first page: the
    // page must still change the moment they like or unlike.
    let liked_on_library_page = || async {
        let page = app.get("/api/stories", Some(&fan)).await.body;
        let item = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned();
        item.expect("the story is on the first page")["liked"].clone()
    };
    assert_eq!(liked_on_library_page().await, false);
    let first = app.post(&like, Some(&fan), json!({})).await;
    assert_eq!(liked_on_library_page().await, true);
    assert_eq!(
        (first.status, first.body.clone()),
        (StatusCode::OK, json!({"likes": 1, "liked": true}))
    );
    assert_eq!(
        app.post(&like, Some(&fan), json!({})).await.body,
        json!({"likes": 1, "liked": true})
    );
    assert_eq!(
        app.get(&format!("/api/stories/{id}"), Some(&fan))
            .await
            .body["liked"],
        true
    );
    assert_eq!(
        app.delete(&like, Some(&fan)).await.body,
        json!({"likes": 0, "liked": false})
    );
    assert_eq!(liked_on_library_page().await, false);
    assert_eq!(
        app.delete(&like, Some(&fan)).await.body,
        json!({"likes": 0, "liked": false})
    );
    app.post(&like, Some(&fan), json!({})).await;
    app.post(&like, Some(&author), json!({})).await;
    assert_eq!(
        app.get(&format!("/api/stories/{id}"), None).await.body["likes"],
        2
    );

    let notes = app.get("/api/notifications", Some(&author)).await;
    assert_eq!(
        notes.body["total"], 1,
        "one notification: not on a repeat, not for the author's own like"
    );
    let note = &notes.body["items"][0];
    assert_eq!(note["kind"], "like");
    assert_eq!(note["data"]["story_id"], id);
    assert_eq!(note["data"]["user"]["username"], "fan");
    assert_eq!(note["read"], false);

    let draft = create_story(&app, &author, story_body("Hidden", "draft")).await["id"]
        .as_i64()
        .unwrap();
    let hidden = app
        .post(&format!("/api/stories/{draft}/like"), Some(&fan), json!({}))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post(&like, None, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn concurrent_likes_lose_no_update(app: TestApp) {
    let author = app.register("popular_author").await;
    let id = create_story(&app, &author, story_body("Crowd pleaser", "published")).await["id"]
        .as_i64()
        .unwrap();
    let mut tokens = Vec::new();
    for i in 0..16 {
        tokens.push(app.register(&format!("crowd_{i}")).await);
    }
    let like = format!("/api/stories/{id}/like");
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens
        .iter()
        .cloned()
        .chain(std::iter::repeat_n(tokens[0].clone(), 8))
    {
        let router = app.router.clone();
        let like = like.clone();
        tasks.spawn(async move {
            let request = axum::http::Request::post(&like)
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            common::send_to(&router, request).await.status
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let story = app.get(&format!("/api/stories/{id}"), None).await;
    assert_eq!(story.body["likes"], 16, "every distinct like counted once");
    assert_eq!(
        app.get("/api/notifications", Some(&author)).await.body["total"],
        16
    );
}

async fn reads_count_once_per_signed_in_reader(app: TestApp) {
    let author = app.register("read_author").await;
    let reader = app.register("reader").await;
    let id = create_story(&app, &author, story_body("Readable", "published")).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/stories/{id}");
    app.get(&path, None).await;
    app.get(&path, Some(&author)).await;
    assert_eq!(
        app.get(&path, None).await.body["reads"],
        0,
        "anonymous and own reads do not count"
    );
    assert_eq!(app.get(&path, Some(&reader)).await.body["reads"], 1);
    assert_eq!(app.get(&path, Some(&reader)).await.body["reads"], 1);
    assert_eq!(app.get(&path, None).await.body["reads"], 1);
}

/// Reads are counted in memory and written in batches (#24): once each
/// across a write, shown at once, in library pages once written, and a
/// story deleted before its reads are written does not stop the others.
async fn reads_are_written_in_batches_once_each(app: TestApp) {
    let author = app.register("batch_author").await;
    let reader = app.register("batch_reader").await;
    let mut ids = Vec::new();
    for title in ["Kept", "Gone"] {
        let story = create_story(&app, &author, story_body(title, "published")).await;
        ids.push(story["id"].as_i64().unwrap());
    }
    let kept = format!("/api/stories/{}", ids[0]);
    let gone = format!("/api/stories/{}", ids[1]);
    assert_eq!(app.get(&kept, Some(&reader)).await.body["reads"], 1);
    assert_eq!(app.get(&gone, Some(&reader)).await.body["reads"], 1);
    assert_eq!(
        app.delete(&gone, Some(&author)).await.status,
        StatusCode::NO_CONTENT
    );
    app.write_pending_reads().await;
    assert_eq!(
        app.get(&kept, Some(&reader)).await.body["reads"],
        1,
        "once, across the write"
    );
    app.write_pending_reads().await;
    assert_eq!(app.get(&kept, None).await.body["reads"], 1);
    let page = app.get("/api/stories?sort=newest", None).await;
    let listed = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == ids[0])
        .cloned()
        .expect("listed");
    assert_eq!(listed["reads"], 1, "library pages show written reads");
}

/// Pages 4 and on of a search are slices of its kept ranking (#24): the
/// same stories in the same order as the database gives, and a write makes
/// them fresh like the cached pages.
async fn search_pages_past_the_cached_ones_come_from_the_ranked_window(app: TestApp) {
    let author = app.register("zebra_author").await;
    for n in 0..10 {
        create_story(
            &app,
            &author,
            story_body(&format!("Zebra tale {n}"), "published"),
        )
        .await;
    }
    let page = |n: u32| {
        let path = format!("/api/stories?q=zebra&page_size=2&page={n}");
        let app = &app;
        async move { app.get(&path, None).await.body }
    };
    let mut seen = Vec::new();
    for n in 1..=6 {
        let body = page(n).await;
        assert_eq!(body["total"], 10, "page {n}: {body}");
        for item in body["items"].as_array().unwrap() {
            seen.push(item["id"].as_i64().unwrap());
        }
    }
    assert_eq!(seen.len(), 10, "pages 1-5 hold every match once: {seen:?}");
    let mut distinct = seen.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "no story twice: {seen:?}");
    // The same order as one page of everything from the database.
    let whole = app
        .get("/api/stories?q=zebra&page_size=100&page=1", None)
        .await
        .body;
    let ordered: Vec<i64> = whole["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, ordered);
    create_story(&app, &author, story_body("Zebra tale 10", "published")).await;
    assert_eq!(page(5).await["total"], 11, "a write refreshes the ranking");
}

async fn reading_progress(app: TestApp) {
    let author = app.register("progress_author").await;
    let reader = app.register("progress_reader").await;
    let id = create_story(&app, &author, story_body("Three pages", "published")).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/stories/{id}/progress");
    let put = |page: Value| {
        app.call(
            Method::PUT,
            &path,
            Some(&reader),
            Some(json!({ "page": page })),
        )
    };
    let first = put(json!(0)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        (
            first.body["page"].as_i64(),
            first.body["completed"].as_bool()
        ),
        (Some(0), Some(false))
    );
    assert!(first.body["updated_at"].is_string());
    assert_eq!(put(json!(2)).await.body["completed"], true);
    let back = put(json!(1)).await;
    assert_eq!(
        (back.body["page"].as_i64(), back.body["completed"].as_bool()),
        (Some(1), Some(true)),
        "completed stays true"
    );
    for bad in [json!(3), json!(-1), json!("one"), json!(null)] {
        let reply = put(bad.clone()).await;
        assert_eq!(
            (reply.status, reply.fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["page".to_owned()]),
            "{bad}"
        );
    }
    let list = app.get("/api/me/reading", Some(&reader)).await;
    assert_eq!(list.body["total"], 1);
    let item = &list.body["items"][0];
    assert_eq!(
        (item["page"].as_i64(), item["completed"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(item["story"]["title"], "Three pages");
    assert!(item["story"]["excerpt"].is_string());

    app.patch(
        &format!("/api/stories/{id}"),
        Some(&author),
        json!({"status": "draft"}),
    )
    .await;
    assert_eq!(
        app.get("/api/me/reading", Some(&reader)).await.body["total"],
        0,
        "drafts are hidden everywhere"
    );
    assert_eq!(put(json!(0)).await.status, StatusCode::NOT_FOUND);
}

async fn notifications_list_and_mark_read(app: TestApp) {
    let author = app.register("noted").await;
    let id = create_story(&app, &author, story_body("Noted", "published")).await["id"]
        .as_i64()
        .unwrap();
    for i in 0..3 {
        let fan = app.register(&format!("noter_{i}")).await;
        app.post(&format!("/api/stories/{id}/like"), Some(&fan), json!({}))
            .await;
    }
    let all = app.get("/api/notifications", Some(&author)).await;
    assert_eq!(
        (
            all.body["total"].as_i64(),
            all.body["unread_count"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(
        all.body["items"][0]["data"]["user"]["username"], "noter_2",
        "newest first"
    );
    let first_id = all.body["items"][0]["id"].as_i64().unwrap();
    let read = app
        .call(
            Method::POST,
            &format!("/api/notifications/{first_id}/read"),
            Some(&author),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::NO_CONTENT);
    let unread = app
        .get("/api/notifications?unread=true", Some(&author))
        .await;
    assert_eq!(
        (
            unread.body["total"].as_i64(),
            unread.body["unread_count"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(
        app.get("/api/notifications?unread=false", Some(&author))
            .await
            .body["total"],
        1
    );
    let bad = app
        .get("/api/notifications?unread=maybe", Some(&author))
        .await;
    assert_eq!(
        (bad.status, bad.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["unread".to_owned()])
    );

    let stranger = app.register("stranger").await;
    let theirs = app
        .call(
            Method::POST,
            &format!("/api/notifications/{first_id}/read"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let all_read = app
        .call(
            Method::POST,
            "/api/notifications/read-all",
            Some(&author),
            None,
        )
        .await;
    assert_eq!(all_read.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/notifications", Some(&author)).await.body["unread_count"],
        0
    );
    assert_eq!(
        app.get("/api/notifications", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn reports_and_moderation(app: TestApp) {
    let author = app.register("reported").await;
    let reporter = app.register("reporter").await;
    let admin = app.register_admin("moderator").await;
    let first = create_story(&app, &author, story_body("Report me", "published")).await["id"]
        .as_i64()
        .unwrap();
    let second = create_story(&app, &author, story_body("Delete me", "published")).await["id"]
        .as_i64()
        .unwrap();
    let draft = create_story(&app, &author, story_body("Unseen", "draft")).await["id"]
        .as_i64()
        .unwrap();

    let report = app
        .post(
            &format!("/api/stories/{first}/report"),
            Some(&reporter),
            json!({"reason": "scary"}),
        )
        .await;
    assert_eq!(report.status, StatusCode::CREATED);
    assert_eq!(report.body["status"], "open");
    assert!(report.body["id"].is_i64() && report.body["created_at"].is_string());
    let report_id = report.body["id"].as_i64().unwrap();
    let empty = app
        .post(
            &format!("/api/stories/{first}/report"),
            Some(&reporter),
            json!({"reason": ""}),
        )
        .await;
    assert_eq!(empty.fields(), ["reason"]);
    let hidden = app
        .post(
            &format!("/api/stories/{draft}/report"),
            Some(&reporter),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let second_report = app
        .post(
            &format!("/api/stories/{second}/report"),
            Some(&reporter),
            json!({"reason": "rude"}),
        )
        .await;
    let second_report_id = second_report.body["id"].as_i64().unwrap();

    let open = app
        .get("/api/admin/reports?status=open", Some(&admin))
        .await;
    assert_eq!(open.status, StatusCode::OK);
    assert_eq!(open.body["total"], 2);
    assert_eq!(open.body["items"][0]["story"]["title"], "Report me");
    assert_eq!(open.body["items"][0]["reason"], "scary");
    let bad_status = app
        .get("/api/admin/reports?status=closed", Some(&admin))
        .await;
    assert_eq!(bad_status.fields(), ["status"]);
    assert_eq!(
        app.get("/api/admin/reports", Some(&reporter)).await.status,
        StatusCode::FORBIDDEN
    );

    let bad = app
        .patch(
            &format!("/api/admin/reports/{report_id}"),
            Some(&admin),
            json!({"status": "open", "action": "ban"}),
        )
        .await;
    assert_eq!(bad.fields(), ["action", "status"]);
    let resolved = app
        .patch(
            &format!("/api/admin/reports/{report_id}"),
            Some(&admin),
            json!({"status": "resolved", "action": "unpublish"}),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(
        app.get(&format!("/api/stories/{first}"), None).await.status,
        StatusCode::NOT_FOUND,
        "unpublished"
    );
    assert_eq!(
        app.get(&format!("/api/stories/{first}"), Some(&author))
            .await
            .body["status"],
        "draft"
    );

    let deleted = app
        .patch(
            &format!("/api/admin/reports/{second_report_id}"),
            Some(&admin),
            json!({"status": "dismissed", "action": "delete"}),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        app.get(&format!("/api/stories/{second}"), Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let dismissed = app
        .get("/api/admin/reports?status=dismissed", Some(&admin))
        .await;
    assert_eq!(dismissed.body["total"], 1);
    assert!(
        dismissed.body["items"][0]["story"].is_null(),
        "the story is gone, the report stays"
    );

    let notes = app.get("/api/notifications", Some(&reporter)).await;
    assert_eq!(notes.body["total"], 2);
    let kinds: Vec<(&str, &str)> = notes.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap(),
                n["data"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("report_resolved", "dismissed"),
            ("report_resolved", "resolved")
        ]
    );
    assert_eq!(notes.body["items"][1]["data"]["report_id"], report_id);
    assert_eq!(notes.body["items"][1]["data"]["story_id"], first);
    let missing = app
        .patch(
            "/api/admin/reports/99999",
            Some(&admin),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn admin_users_and_stats(app: TestApp) {
    let admin = app.register_admin("chief").await;
    let kid = app.register("kiddo").await;
    let found = app.get("/api/admin/users?q=KIDD", Some(&admin)).await;
    assert_eq!(found.body["total"], 1);
    assert_eq!(found.body["items"][0]["email"], "kiddo@example.com");
    let by_email = app
        .get("/api/admin/users?q=chief%40example", Some(&admin))
        .await;
    assert_eq!(by_email.body["total"], 1);
    let kid_id = found.body["items"][0]["id"].as_i64().unwrap();
    assert_eq!(
        app.get("/api/admin/users", Some(&kid)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/admin/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/admin/stats", Some(&kid)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.patch(
            &format!("/api/admin/users/{kid_id}"),
            Some(&kid),
            json!({"active": false})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let bad = app
        .patch(
            &format!("/api/admin/users/{kid_id}"),
            Some(&admin),
            json!({"role": "god", "active": "no"}),
        )
        .await;
    assert_eq!(bad.fields(), ["active", "role"]);
    let off = app
        .patch(
            &format!("/api/admin/users/{kid_id}"),
            Some(&admin),
            json!({"active": false}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(off.body["active"], false);
    assert_eq!(
        app.get("/api/me", Some(&kid)).await.status,
        StatusCode::UNAUTHORIZED,
        "tokens revoked at once"
    );
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "kiddo", "password": "password123"}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    let on = app
        .patch(
            &format!("/api/admin/users/{kid_id}"),
            Some(&admin),
            json!({"active": true, "role": "admin"}),
        )
        .await;
    assert_eq!(on.body["role"], "admin");
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "kiddo", "password": "password123"}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/admin/stats", login.body["token"].as_str())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.patch(
            "/api/admin/users/99999",
            Some(&admin),
            json!({"active": true})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    create_story(&app, &admin, story_body("Stats", "published")).await;
    let stats = app.get("/api/admin/stats", Some(&admin)).await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(
        (stats.body["users"].as_i64(), stats.body["stories"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(stats.body["open_reports"], 0);
    assert!(stats.body["rss_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(stats.body["uptime_s"].is_u64());
    assert!(stats.body["drawings"].is_i64());
}

async fn no_stale_reads_after_writes(app: TestApp) {
    let token = app.register("cache_writer").await;
    let first = app.get("/api/stories", None).await;
    assert_eq!(first.body["total"], 0);
    let again = app.get("/api/stories", None).await;
    assert_eq!(again.body["total"], 0);
    let story = create_story(&app, &token, story_body("Fresh", "published")).await;
    let id = story["id"].as_i64().unwrap();
    assert_eq!(
        titles(&app.get("/api/stories", None).await),
        ["Fresh"],
        "a new story shows at once"
    );
    let path = format!("/api/stories/{id}");
    assert_eq!(app.get(&path, None).await.body["title"], "Fresh");
    app.patch(&path, Some(&token), json!({"title": "Renamed"}))
        .await;
    assert_eq!(app.get(&path, None).await.body["title"], "Renamed");
    assert_eq!(titles(&app.get("/api/stories", None).await), ["Renamed"]);
    // The author's new display name shows at once in what embeds it.
    app.patch(
        "/api/me",
        Some(&token),
        json!({"display_name": "Cache Writer"}),
    )
    .await;
    assert_eq!(
        app.get(&path, None).await.body["author"]["display_name"],
        "Cache Writer"
    );
    assert_eq!(
        app.get("/api/stories", None).await.body["items"][0]["author"]["display_name"],
        "Cache Writer"
    );
    app.patch(&path, Some(&token), json!({"status": "draft"}))
        .await;
    assert_eq!(app.get(&path, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/stories", None).await.body["total"], 0);
    let metrics = app.get("/metrics", None).await;
    let text = metrics.body.as_str().unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .expect(name)
    };
    assert!(
        value("cache_hits_total") >= 1,
        "the repeated first page was served from the cache"
    );
    assert!(value("cache_misses_total") >= 1);
    assert!(text.contains("cache_entries "));
}

/// Contract v1.3: a PATCH changes only the fields it sends, so concurrent
/// PATCHes of different fields both take effect, and an author's PATCH
/// without `status` does not re-publish what an admin unpublished.
async fn patches_change_only_the_fields_they_send(app: TestApp) {
    let author = app.register("patcher").await;
    let admin = app.register_admin("patchadmin").await;
    let story = create_story(&app, &author, story_body("Round 0", "published")).await;
    let path = format!("/api/stories/{}", story["id"]);
    for round in 1..=5 {
        let title = format!("Round {round}");
        let tag = format!("tag{round}");
        let (by_title, by_tags) = tokio::join!(
            app.patch(&path, Some(&author), json!({"title": title})),
            app.patch(&path, Some(&author), json!({"tags": [tag]})),
        );
        assert_eq!(
            (by_title.status, by_tags.status),
            (StatusCode::OK, StatusCode::OK)
        );
        let now = app.get(&path, Some(&author)).await.body;
        assert_eq!(
            (&now["title"], &now["tags"]),
            (&json!(title), &json!([tag])),
            "round {round}"
        );
    }
    let (unpublished, edited) = tokio::join!(
        app.patch(&path, Some(&admin), json!({"status": "draft"})),
        app.patch(&path, Some(&author), json!({"genre": "funny"})),
    );
    assert_eq!(
        (unpublished.status, edited.status),
        (StatusCode::OK, StatusCode::OK)
    );
    let now = app.get(&path, Some(&author)).await.body;
    assert_eq!(
        (&now["status"], &now["genre"]),
        (&json!("draft"), &json!("funny"))
    );
}

/// Contract v1.3 (fair sharing): a signed-in reader's first read of a
/// story drops only that story's cached answers; the anonymous library
/// page and other stories stay cached.
async fn a_counted_read_keeps_other_cached_answers(app: TestApp) {
    let author = app.register("prolific").await;
    let reader = app.register("bookworm").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let story =
            create_story(&app, &author, story_body(&format!("Tale {n}"), "published")).await;
        ids.push(story["id"].as_i64().unwrap());
    }
    let hits = || async {
        let metrics = app.get("/metrics", None).await;
        let text = metrics.body.as_str().unwrap().to_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("cache_hits_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap()
    };
    app.get("/api/stories", None).await;
    app.get(&format!("/api/stories/{}", ids[1]), None).await;
    let before = hits().await;
    for id in &ids {
        let read = app.get(&format!("/api/stories/{id}"), Some(&reader)).await;
        assert_eq!(read.status, StatusCode::OK);
    }
    let after_reads = hits().await;
    // Reads wait in memory (#24): the library page and the stories are
    // still cached, each story shown with its pending read added.
    app.get("/api/stories", None).await;
    let pending = app.get(&format!("/api/stories/{}", ids[2]), None).await;
    assert_eq!(pending.body["reads"], 1);
    assert_eq!(hits().await, after_reads + 2, "both were hits");
    assert!(after_reads >= before);
    // Once written, only the stories read are read again.
    app.write_pending_reads().await;
    let written = hits().await;
    app.get("/api/stories", None).await;
    app.get(&format!("/api/stories/{}", ids[2]), None).await;
    assert_eq!(
        hits().await,
        written + 1,
        "the page was a hit, story 2 a miss"
    );
    // The counted read shows in the story itself at once.
    let fresh = app.get(&format!("/api/stories/{}", ids[0]), None).await;
    assert_eq!(fresh.body["reads"], 1);
}
