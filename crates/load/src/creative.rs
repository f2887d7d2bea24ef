//! `storybook-load creative`: the creative tools' cost on a running server:
//! PNG renders of a small and of a maximal drawing (10,000 strokes of 2,000
//! points), and one phone-sized photo story, each with the server's peak
//! RSS (reset before each step) and its time.

use std::io::Cursor;
use std::time::Instant;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{Connection, host_of};
use crate::report::publish;
use crate::rss;

#[derive(Debug, clap::Args)]
pub struct CreativeArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The server's process id (its RSS is sampled and its peak reset).
    #[arg(long)]
    pub pid: u32,
    /// A TrueType font for the photo's text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    pub font: String,
    /// Skip the maximal drawing (it takes a minute to upload).
    #[arg(long)]
    pub small_only: bool,
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

fn stroke(id: usize, points: usize, width: f64, height: f64) -> Value {
    let pts: Vec<[f64; 2]> = (0..points)
        .map(|i| {
            let t = i as f64 / points.max(1) as f64;
            let x = width * t;
            let y = height * (0.5 + 0.4 * ((t * 12.0 + id as f64).sin()));
            [x.min(width).round(), y.clamp(0.0, height).round()]
        })
        .collect();
    let colors = ["#e63946", "#457b9d", "#2a9d8f", "#f4a261", "#1d3557"];
    json!({"id": format!("s{id}"), "tool": if id.is_multiple_of(7) { "highlighter" } else { "pen" },
           "color": colors[id % colors.len()], "width": 2 + id % 9, "points": pts})
}

/// Times a PNG render of the drawing and reads the server's peak RSS.
async fn render(
    connection: &mut Connection,
    pid: u32,
    token: &str,
    id: i64,
) -> Result<Value, String> {
    let before = rss::read(pid).map(|r| r.0);
    rss::reset_peak(pid);
    let started = Instant::now();
    let (status, body) = connection
        .send(
            Method::GET,
            &format!("/api/drawings/{id}/image.png"),
            Some(token),
            None,
        )
        .await?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let peak = rss::read(pid).map(|r| r.1);
    Ok(
        json!({"status": status.as_u16(), "ms": elapsed, "png_bytes": body.len(), "rss_before_kib": before, "peak_rss_kib": peak}),
    )
}

fn photo(font_path: &str) -> Result<Vec<u8>, String> {
    // A phone photo: 3024 x 4032 (12 MP), grey paper, a page of text.
    let font_bytes = std::fs::read(font_path).map_err(|e| format!("{font_path}: {e}"))?;
    let font = FontRef::try_from_slice(&font_bytes).map_err(|e| e.to_string())?;
    let scale = PxScale::from(110.0);
    let scaled = font.as_scaled(scale);
    let mut image = image::RgbImage::from_pixel(3024, 4032, image::Rgb([236, 232, 220]));
    let lines = [
        "Once upon a time a little fox",
        "lived by a quiet river.",
        "Every night she counted stars",
        "and dreamed of the moon.",
        "One day a friendly owl said:",
        "come with me, I know the way.",
    ];
    for (row, line) in lines.iter().enumerate() {
        let mut x = 200.0;
        let y = 700.0 + 260.0 * row as f32;
        for c in line.chars() {
            let glyph = scaled.scaled_glyph(c);
            let advance = scaled.h_advance(glyph.id);
            if let Some(outlined) =
                font.outline_glyph(glyph.id.with_scale_and_position(scale, point(x, y)))
            {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    let (px, py) = (
                        bounds.min.x as i64 + i64::from(gx),
                        bounds.min.y as i64 + i64::from(gy),
                    );
                    if px >= 0 && py >= 0 && px < 3024 && py < 4032 {
                        let pixel = image.get_pixel_mut(px as u32, py as u32);
                        for channel in &mut pixel.0 {
                            *channel = (*channel as f32 * (1.0 - coverage * 0.9)) as u8;
                        }
                    }
                });
            }
            x += advance;
        }
    }
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

pub async fn run(args: CreativeArgs) -> Result<(), String> {
    let host = host_of(&args.url)?;
    let mut connection = Connection::open(&host).await?;
    let name = format!("creative{}", std::process::id());
    let (_, reply) = connection
        .json(Method::POST, "/api/auth/register", None, Some(json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"})))
        .await?;
    let token = reply["token"].as_str().ok_or("register failed")?.to_owned();
    let idle_before = rss::read(args.pid).map(|r| r.0);

    let small: Vec<Value> = (0..20).map(|i| stroke(i, 50, 800.0, 600.0)).collect();
    let (_, small_drawing) = connection
        .json(
            Method::POST,
            "/api/drawings",
            Some(&token),
            Some(json!({"title": "small", "width": 800, "height": 600, "strokes": small})),
        )
        .await?;
    let small_id = small_drawing["id"].as_i64().ok_or("create failed")?;
    let small_render = render(&mut connection, args.pid, &token, small_id).await?;

    let maximal_render = if args.small_only {
        Value::Null
    } else {
        let (_, drawing) = connection
            .json(
                Method::POST,
                "/api/drawings",
                Some(&token),
                Some(json!({"title": "maximal", "width": 4096, "height": 4096})),
            )
            .await?;
        let id = drawing["id"].as_i64().ok_or("create failed")?;
        let started = Instant::now();
        for batch in 0..500 {
            let strokes: Vec<Value> = (batch * 20..batch * 20 + 20)
                .map(|i| stroke(i, 2000, 4096.0, 4096.0))
                .collect();
            let (status, body) = connection
                .json(
                    Method::POST,
                    &format!("/api/drawings/{id}/strokes"),
                    Some(&token),
                    Some(json!({"strokes": strokes})),
                )
                .await?;
            if !status.is_success() {
                return Err(format!("append failed: {status} {body}"));
            }
            eprint!("\ruploaded {} strokes", (batch + 1) * 20);
        }
        eprintln!(" in {:.1?}", started.elapsed());
        render(&mut connection, args.pid, &token, id).await?
    };

    let jpeg = photo(&args.font)?;
    let boundary = "storybook-load-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"page.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    rss::reset_peak(args.pid);
    let before = rss::read(args.pid).map(|r| r.0);
    let children = rss::Sampler::children_peak(args.pid);
    let started = Instant::now();
    let (status, reply) = connection
        .send_with_type(
            Method::POST,
            "/api/stories/from-photo",
            Some(&token),
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await?;
    let ocr_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak = rss::read(args.pid).map(|r| r.1);
    let child_peak = Some(children.finish().await.0).filter(|&kib| kib > 0);
    let story: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let report = json!({
        "kind": "creative",
        "idle_rss_kib_before": idle_before,
        "render_small": small_render,
        "render_maximal": maximal_render,
        "ocr": {
            "status": status.as_u16(), "ms": ocr_ms, "jpeg_bytes": jpeg.len(), "pixels": 3024 * 4032,
            "rss_before_kib": before, "peak_rss_kib": peak, "child_peak_rss_kib": child_peak,
            "text": story["pages"][0]["text"],
        },
        "idle_rss_kib_after": rss::read(args.pid).map(|r| r.0),
    });
    publish(&report, args.out.as_deref())
}
