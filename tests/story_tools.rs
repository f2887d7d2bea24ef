//! `POST /api/stories/generate` (built-in, and an OpenAI-compatible server
//! faked on a loopback port with real HTTP) and `POST /api/stories/from-photo`
//! (real Tesseract reading an image this test renders).

mod common;

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestApp;
use serde_json::{Value, json};
use storybook_storygen::{OpenAi, OpenAiSettings};

backend_tests!(
    generate_with_the_builtin_generator,
    photo_stories_read_rendered_text
);

async fn generate_with_the_builtin_generator(app: TestApp) {
    let token = app.register("storyteller").await;
    let reply = app
        .post(
            "/api/stories/generate",
            Some(&token),
            json!({"prompt": "a dragon who loves pancakes"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let story = &reply.body;
    assert_eq!(
        (story["source"].as_str(), story["status"].as_str()),
        (Some("ai"), Some("draft"))
    );
    assert_eq!(
        (story["genre"].as_str(), story["age_group"].as_str()),
        (Some("adventure"), Some("6-8"))
    );
    assert_eq!(story["pages"].as_array().unwrap().len(), 5);
    let text = story["pages"].to_string();
    assert!(
        text.contains("dragon") && text.contains("pancakes"),
        "{text}"
    );
    let again = app
        .post(
            "/api/stories/generate",
            Some(&token),
            json!({"prompt": "a dragon who loves pancakes"}),
        )
        .await;
    assert_eq!(
        again.body["pages"], story["pages"],
        "same input, same story"
    );
    let other = app
        .post(
            "/api/stories/generate",
            Some(&token),
            json!({"prompt": "a shy whale", "genre": "bedtime", "age_group": "3-5", "pages": 2}),
        )
        .await;
    assert_eq!(other.body["pages"].as_array().unwrap().len(), 2);
    assert_ne!(other.body["pages"], story["pages"]);

    let bad = app
        .post(
            "/api/stories/generate",
            Some(&token),
            json!({"prompt": "", "genre": "horror", "age_group": "1-2", "pages": 13}),
        )
        .await;
    assert_eq!(bad.fields(), ["age_group", "genre", "pages", "prompt"]);
    let long = app
        .post(
            "/api/stories/generate",
            Some(&token),
            json!({"prompt": "a".repeat(501)}),
        )
        .await;
    assert_eq!(long.fields(), ["prompt"]);
    let rude = app
        .post(
            "/api/stories/generate",
            Some(&token),
            json!({"prompt": "a sh1t dragon"}),
        )
        .await;
    assert_eq!(
        (rude.code(), rude.fields()),
        ("profanity", vec!["prompt".to_owned()])
    );
    assert_eq!(
        app.post("/api/stories/generate", None, json!({"prompt": "x"}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// A fake OpenAI-compatible server: answers according to the mode in the
/// request's model name (`ok`, `slow`, `error`, `garbage`, `rude`).
async fn fake_openai() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let seen: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let recorded = recorded.clone();
            async move {
                let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                recorded.lock().unwrap().push(json!({"auth": auth, "body": request.clone()}));
                let content = |story: Value| json!({"choices": [{"message": {"role": "assistant", "content": story.to_string()}}]}).to_string();
                match request["model"].as_str().unwrap_or("") {
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        (StatusCode::OK, String::new())
                    }
                    "error" => (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\": \"boom\"}".to_owned()),
                    "garbage" => (StatusCode::OK, "{\"choices\": [{\"message\": {\"content\": \"Once upon a time...\"}}]}".to_owned()),
                    // Past the 64 KiB the test's client reads.
                    "huge" => (StatusCode::OK, content(json!({"title": "Long", "pages": ["word ".repeat(20_000)]}))),
                    "rude" => (StatusCode::OK, content(json!({"title": "Oops", "pages": ["what the fuck"]}))),
                    _ => (StatusCode::OK, content(json!({"title": "The Cloud Kite", "pages": ["A kite flew.", "It found a cloud.", "They played all day."]}))),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/v1"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_with_an_openai_compatible_server() {
    let (base_url, seen) = fake_openai().await;
    let mut app = TestApp::sqlite().await;
    let token = app.register("remote_teller").await;
    let use_model = |app: &mut TestApp, model: &str| {
        let generator = OpenAi::new(OpenAiSettings {
            base_url: base_url.clone(),
            api_key: "test-key".into(),
            model: model.into(),
            timeout: Duration::from_secs(1),
            max_response_bytes: 64 * 1024,
            curl_command: "curl".into(),
            concurrency: 2,
        })
        .unwrap();
        app.reconfigure(|state| state.tools.generator = Arc::new(generator));
    };
    use_model(&mut app, "ok");
    assert_eq!(
        app.get("/api/features", None).await.body["generator"],
        "openai"
    );
    let reply = app
        .post(
            "/api/stories/generate",
            Some(&token),
            // Quotes, a backslash and a line break: the body reaches the
            // model exactly, whatever carries it.
            json!({"prompt": "a \"kite\" \\ called\nSky", "pages": 3}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["title"], "The Cloud Kite");
    assert_eq!(reply.body["pages"][2]["text"], "They played all day.");
    assert_eq!(reply.body["source"], "ai");
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request["auth"], "Bearer test-key");
    assert_eq!(request["body"]["model"], "ok");
    assert!(
        request["body"]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .ends_with("about: a \"kite\" \\ called\nSky")
    );

    for model in ["slow", "error", "garbage", "huge", "rude"] {
        use_model(&mut app, model);
        let started = Instant::now();
        let reply = app
            .post(
                "/api/stories/generate",
                Some(&token),
                json!({"prompt": "a kite"}),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "generator_unavailable"),
            "{model}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{model}: never a hang"
        );
    }
    let mine = app.get("/api/me/stories", Some(&token)).await;
    assert_eq!(mine.body["total"], 1, "failures write nothing");
}

/// Renders lines of text, black on white, with DejaVu Sans.
fn render_text(lines: &[&str]) -> image::GrayImage {
    let font_bytes = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .expect("fonts-dejavu-core is installed (.ci/run installs it)");
    let font = FontRef::try_from_slice(&font_bytes).unwrap();
    let scale = PxScale::from(48.0);
    let scaled = font.as_scaled(scale);
    let mut image =
        image::GrayImage::from_pixel(1000, 90 * lines.len() as u32 + 60, image::Luma([255]));
    for (row, line) in lines.iter().enumerate() {
        let mut x = 40.0;
        let y = 80.0 + 90.0 * row as f32;
        for c in line.chars() {
            let glyph = scaled.scaled_glyph(c);
            let advance = scaled.h_advance(glyph.id);
            let glyph = glyph.id.with_scale_and_position(scale, point(x, y));
            if let Some(outlined) = font.outline_glyph(glyph) {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    let (px, py) = (
                        bounds.min.x as i32 + gx as i32,
                        bounds.min.y as i32 + gy as i32,
                    );
                    if px >= 0
                        && py >= 0
                        && (px as u32) < image.width()
                        && (py as u32) < image.height()
                    {
                        let pixel = image.get_pixel_mut(px as u32, py as u32);
                        pixel.0[0] = pixel.0[0].min((255.0 * (1.0 - coverage)) as u8);
                    }
                });
            }
            x += advance;
        }
    }
    image
}

fn encode(image: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// A JPEG whose pixels are stored turned and whose EXIF says "rotate 90°
/// clockwise to display" (orientation 6), as phones write them.
fn sideways_jpeg(upright: &image::GrayImage) -> Vec<u8> {
    let stored = image::DynamicImage::ImageLuma8(image::imageops::rotate270(upright));
    let jpeg = encode(&stored.to_rgb8().into(), image::ImageFormat::Jpeg);
    // APP1 "Exif\0\0" + little-endian TIFF header + one IFD entry:
    // tag 0x0112 (Orientation), type SHORT, count 1, value 6.
    let mut app1 =
        b"Exif\0\0II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
    let length = (app1.len() + 2) as u16;
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&length.to_be_bytes());
    segment.append(&mut app1);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&segment);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "storybook-test-boundary";
    let mut body = Vec::new();
    for (name, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if content_type.is_empty() {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"page\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(app: &TestApp, token: &str, content_type: &str, body: Vec<u8>) -> common::Reply {
    app.send(
        Request::post("/api/stories/from-photo")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// A PNG with a valid header claiming `width` × `height` and no pixel
/// data: what a decompression bomb looks like before it is decoded.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 0, 0, 0, 0]);
    let crc = chunk.iter().fold(0xFFFF_FFFFu32, |mut crc, &byte| {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
        crc
    }) ^ 0xFFFF_FFFF;
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    bytes.extend_from_slice(&chunk);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

async fn photo_stories_read_rendered_text(mut app: TestApp) {
    let token = app.register("photographer").await;
    assert_eq!(
        app.get("/api/features", None).await.body["ocr"],
        true,
        "tesseract is installed here and in CI"
    );
    let page = render_text(&["The little fox found", "a golden lantern"]);

    let (content_type, body) = multipart(&[
        ("title", "", b"Fox photo"),
        (
            "image",
            "image/png",
            &encode(
                &image::DynamicImage::ImageLuma8(page.clone()),
                image::ImageFormat::Png,
            ),
        ),
    ]);
    let reply = upload(&app, &token, &content_type, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        (reply.body["source"].as_str(), reply.body["status"].as_str()),
        (Some("photo"), Some("draft"))
    );
    assert_eq!(reply.body["title"], "Fox photo");
    let text = reply.body["pages"][0]["text"]
        .as_str()
        .unwrap()
        .to_lowercase();
    for word in ["little", "fox", "found", "golden", "lantern"] {
        assert!(text.contains(word), "{word} in {text:?}");
    }

    let (content_type, body) = multipart(&[("image", "image/jpeg", &sideways_jpeg(&page))]);
    let turned = upload(&app, &token, &content_type, body).await;
    assert_eq!(turned.status, StatusCode::CREATED, "{}", turned.body);
    let text = turned.body["pages"][0]["text"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        text.contains("golden") && text.contains("lantern"),
        "EXIF orientation honoured: {text:?}"
    );

    let blank =
        image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(400, 300, image::Luma([255])));
    let (content_type, body) = multipart(&[(
        "image",
        "image/png",
        &encode(&blank, image::ImageFormat::Png),
    )]);
    let nothing = upload(&app, &token, &content_type, body).await;
    assert_eq!(
        (nothing.status, nothing.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_text")
    );

    let (content_type, body) = multipart(&[("image", "image/png", &png_header_only(6000, 6000))]);
    let bomb = upload(&app, &token, &content_type, body).await;
    assert_eq!(
        (bomb.status, bomb.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "checked from the header"
    );
    let (content_type, body) =
        multipart(&[("image", "image/png", &vec![0u8; 5 * 1024 * 1024 + 1])]);
    assert_eq!(
        upload(&app, &token, &content_type, body).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (content_type, body) = multipart(&[("image", "image/png", b"GIF89a not really a png")]);
    let gif = upload(&app, &token, &content_type, body).await;
    assert_eq!(
        (gif.status, gif.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        "judged by content"
    );
    // A photo whose header is fine and whose data is cut off: the decoder
    // fails in the preparation's process, the answer names the field, and
    // the server carries on.
    let whole = encode(
        &image::DynamicImage::ImageLuma8(page.clone()),
        image::ImageFormat::Png,
    );
    let (content_type, body) = multipart(&[("image", "image/png", &whole[..whole.len() / 3])]);
    let cut = upload(&app, &token, &content_type, body).await;
    assert_eq!(
        (cut.status, cut.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["image".to_owned()]),
        "{}",
        cut.body
    );
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let (content_type, body) = multipart(&[("title", "", b"No image")]);
    let missing = upload(&app, &token, &content_type, body).await;
    assert_eq!(
        (missing.status, missing.fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["image".to_owned()])
    );
    // Only an unknown part: it and the missing image are named together
    // (#21: the unknown part alone was named before).
    let (content_type, body) = multipart(&[("photo", "image/png", b"not the image part")]);
    let unknown = upload(&app, &token, &content_type, body).await;
    assert_eq!(
        (unknown.status, unknown.fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["image".to_owned(), "photo".to_owned()]
        ),
        "{}",
        unknown.body
    );
    let json_body = upload(&app, &token, "application/json", b"{}".to_vec()).await;
    assert_eq!(json_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    app.reconfigure(|state| {
        state.tools.ocr = Arc::new(storybook_ocr::Ocr::new(storybook_ocr::OcrSettings {
            command: "/nonexistent/tesseract".into(),
            ..common::ocr_settings()
        }))
    });
    assert_eq!(app.get("/api/features", None).await.body["ocr"], false);
    let (content_type, body) = multipart(&[(
        "image",
        "image/png",
        &encode(
            &image::DynamicImage::ImageLuma8(page),
            image::ImageFormat::Png,
        ),
    )]);
    let unavailable = upload(&app, &token, &content_type, body).await;
    assert_eq!(
        (unavailable.status, unavailable.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "ocr_unavailable")
    );
    let (content_type, body) = multipart(&[("image", "image/png", &png_header_only(6000, 6000))]);
    assert_eq!(
        upload(&app, &token, &content_type, body).await.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "413 before 503"
    );
}

/// Contract v1.3 (bounded cost): story generation is counted per user;
/// past the hourly quota it is 429 with Retry-After, for that user only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_is_counted_per_user() {
    let app = TestApp::sqlite_with(storybook::config::Limits {
        generations_per_user_per_hour: 2,
        ..Default::default()
    })
    .await;
    let eager = app.register("eager").await;
    let other = app.register("patient").await;
    let prompt = json!({"prompt": "a fox who learns to sing"});
    for _ in 0..2 {
        let made = app
            .post("/api/stories/generate", Some(&eager), prompt.clone())
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }
    let refused = app
        .post("/api/stories/generate", Some(&eager), prompt.clone())
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(refused.headers.contains_key("retry-after"));
    let made = app
        .post("/api/stories/generate", Some(&other), prompt)
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
}
