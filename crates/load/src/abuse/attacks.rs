//! Issue #12's attacks, one function each: what it sends, and what it
//! reports beside its budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{Target, flood, measured, metric, metrics_text, register, tally, with_figures};
use crate::client::Connection;
use crate::report::latency_summary;
use crate::rss::cpu_seconds;

/// 300 logins with unique ~900 KB usernames: the lock must not keep them.
pub(super) async fn login_keys(target: &Target) -> Result<Value, String> {
    let (common, statuses) = measured(target, async {
        Ok(flood(
            target,
            300,
            8,
            Method::POST,
            |_| "/api/auth/login".to_owned(),
            None,
            |n| {
                Some(
                    json!({"username": format!("{n}{}", "x".repeat(900 * 1024)), "password": "x"})
                        .to_string(),
                )
            },
        )
        .await)
    })
    .await?;
    let statuses = tally(&statuses);
    // 503 busy (no memory for the body) ends with the server closing the
    // connection unread, which the client sees as an error: both refusals.
    let within = statuses.as_object().is_some_and(|s| {
        s.keys()
            .all(|k| ["401", "429", "503", "error"].contains(&k.as_str()))
    });
    Ok(with_figures(
        common,
        "login-keys",
        json!({ "statuses": statuses }),
        within,
    ))
}

/// 40 wrong passwords for one account at once: at most 5 are checked.
pub(super) async fn parallel_guesses(target: &Target) -> Result<Value, String> {
    let mut connection = Connection::open(&target.host).await?;
    let victim = format!("victim{}", std::process::id());
    register(&mut connection, &victim).await?;
    let (common, statuses) = measured(target, async {
        let victim = victim.clone();
        Ok(flood(
            target,
            40,
            40,
            Method::POST,
            |_| "/api/auth/login".to_owned(),
            None,
            move |_| Some(json!({"username": victim, "password": "wrong password"}).to_string()),
        )
        .await)
    })
    .await?;
    let checked = statuses
        .iter()
        .filter(|s| matches!(s, Ok(StatusCode::UNAUTHORIZED)))
        .count();
    Ok(with_figures(
        common,
        "parallel-guesses",
        json!({ "statuses": tally(&statuses), "passwords_checked": checked, "budget": "<= 5" }),
        checked <= 5,
    ))
}

/// A drawing to aim at, with `strokes` strokes of `points` points; `heavy`
/// makes them as dear to draw as any found.
pub(super) async fn drawing(
    target: &Target,
    strokes: usize,
    points: usize,
    width: f64,
    heavy: bool,
) -> Result<i64, String> {
    let mut connection = Connection::open(&target.host).await?;
    let (_, created) = connection
        .json(
            Method::POST,
            "/api/drawings",
            Some(&target.token),
            Some(json!({"title": "target", "width": 1024, "height": 1024})),
        )
        .await?;
    let id = created["id"]
        .as_i64()
        .ok_or(format!("create drawing: {created}"))?;
    let mut made = 0;
    while made < strokes {
        let batch: Vec<Value> = (made..(made + 20).min(strokes))
            .map(|s| {
                let pts: Vec<[u32; 2]> = (0..points)
                    .map(|i| {
                        let i = i as u32;
                        if heavy {
                            // Lines across the whole height at scattered
                            // places: every row crosses all of a stroke's
                            // segments, the dearest shape to fill found.
                            [(i * 37 + s as u32 * 7) % 1024, if i.is_multiple_of(2) { 0 } else { 1024 }]
                        } else {
                            [(i * 7 + s as u32) % 1024, (i * 13) % 1024]
                        }
                    })
                    .collect();
                json!({"id": format!("s{s}"), "tool": "pen", "color": "#222222", "width": width, "points": pts})
            })
            .collect();
        let (status, reply) = connection
            .json(
                Method::POST,
                &format!("/api/drawings/{id}/strokes"),
                Some(&target.token),
                Some(json!({ "strokes": batch })),
            )
            .await?;
        if status != StatusCode::OK {
            return Err(format!("append strokes: {status} {reply}"));
        }
        made += 20;
        eprint!("\r   drawing: {made}/{strokes} strokes");
    }
    eprintln!();
    Ok(id)
}

/// 50 x 1 MiB stroke lists and 30 x 1 MiB texts at once.
pub(super) async fn big_bodies(target: &Target) -> Result<Value, String> {
    let id = drawing(target, 1, 2, 2.0, false).await?;
    // Just under the 1 MiB body limit, so each one is read if admitted.
    let points = "[0,0],".repeat((1024 * 1024 - 1024) / 6);
    let strokes = Arc::new(format!(
        r##"{{"strokes":[{{"id":"big","tool":"pen","color":"#000000","width":1,"points":[{}[0,0]]}}]}}"##,
        points
    ));
    let text = Arc::new(json!({ "text": "a ".repeat(512 * 1024) }).to_string());
    let (common, statuses) = measured(target, async {
        let strokes_flood = flood(
            target,
            50,
            50,
            Method::POST,
            move |_| format!("/api/drawings/{id}/strokes"),
            Some(target.token.clone()),
            move |_| Some(strokes.to_string()),
        );
        let text_flood = flood(
            target,
            30,
            30,
            Method::POST,
            |_| "/api/profanity/check".to_owned(),
            None,
            move |_| Some(text.to_string()),
        );
        let (mut a, b) = tokio::join!(strokes_flood, text_flood);
        a.extend(b);
        Ok(a)
    })
    .await?;
    // Refused (413, 422, 503 busy, or the connection closed after a busy)
    // or taken; never a 500.
    let within = statuses.iter().all(|s| match s {
        Ok(code) => !code.is_server_error() || *code == StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => true,
    });
    Ok(with_figures(
        common,
        "big-bodies",
        json!({ "statuses": tally(&statuses) }),
        within,
    ))
}

/// Six clients ask for a big drawing and never read the answer.
pub(super) async fn stalled_streams(target: &Target) -> Result<Value, String> {
    let id = drawing(target, 400, 2000, 2.0, false).await?;
    let (common, ()) = measured(target, async {
        let mut sockets = Vec::new();
        for _ in 0..6 {
            let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .set_recv_buffer_size(4096)
                .map_err(|e| e.to_string())?;
            let address = target.host.parse().map_err(|e| format!("{e}"))?;
            let mut stream = socket.connect(address).await.map_err(|e| e.to_string())?;
            let request = format!(
                "GET /api/drawings/{id} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
                target.host, target.token
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            sockets.push(stream);
        }
        // Held past the server's stall limit (RESPONSE_STALL_SECS, 10).
        tokio::time::sleep(Duration::from_secs(15)).await;
        drop(sockets);
        Ok(())
    })
    .await?;
    Ok(with_figures(
        common,
        "stalled-streams",
        json!({ "streams": 6, "held_s": 15 }),
        true,
    ))
}

/// Six renders of a heavy drawing that the clients give up on: the
/// server's CPU time after the requests ended, and how long one render
/// takes when waited for.
pub(super) async fn render_timeout(target: &Target) -> Result<Value, String> {
    let id = drawing(target, 200, 2000, 0.5, true).await?;
    let give_up = target.request_timeout + Duration::from_secs(1);
    let (common, (cpu_after, statuses)) = measured(target, async {
        let mut renders = Vec::new();
        for n in 0..6 {
            let (host, token) = (target.host.clone(), target.token.clone());
            renders.push(tokio::spawn(async move {
                let mut connection = Connection::open(&host).await?;
                let path = format!("/api/drawings/{id}/image.png?width={}", 1024 - n);
                match tokio::time::timeout(
                    give_up,
                    connection.send(Method::GET, &path, Some(&token), None),
                )
                .await
                {
                    Ok(result) => result.map(|(status, _)| status),
                    Err(_) => Err("gave up".to_owned()),
                }
            }));
        }
        let mut statuses = Vec::new();
        for render in renders {
            statuses.push(render.await.map_err(|e| e.to_string())?);
        }
        let cpu_before = cpu_seconds(target.pid).unwrap_or(0.0);
        tokio::time::sleep(Duration::from_secs(20)).await;
        let cpu_after = cpu_seconds(target.pid).unwrap_or(0.0) - cpu_before;
        Ok((cpu_after, statuses))
    })
    .await?;
    // One render of the same drawing, waited for (up to the time-out).
    let mut connection = Connection::open(&target.host).await?;
    let started = Instant::now();
    let (status, _) = connection
        .send(
            Method::GET,
            &format!("/api/drawings/{id}/image.png?width=1000"),
            Some(&target.token),
            None,
        )
        .await?;
    let one_render_s = started.elapsed().as_secs_f64();
    Ok(with_figures(
        common,
        "render-timeout",
        json!({
            "statuses": tally(&statuses),
            "cpu_s_in_20_s_after": cpu_after, "budget_cpu_s_after": 2.0,
            "one_render": { "status": status.as_u16(), "seconds": one_render_s, "budget_s": 5.0 },
        }),
        cpu_after <= 2.0 && status == StatusCode::OK && one_render_s <= 5.0,
    ))
}

/// `a a a …` of 1,000 and 10,000 characters: time per check, and growth.
pub(super) async fn profanity(target: &Target) -> Result<Value, String> {
    let mut connection = Connection::open(&target.host).await?;
    let mut medians = Vec::new();
    for length in [1_000usize, 10_000] {
        let text: String = "a ".repeat(length / 2);
        let body = json!({ "text": text }).to_string();
        let mut times = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            let (status, _) = connection
                .send(
                    Method::POST,
                    "/api/profanity/check",
                    None,
                    Some(body.clone()),
                )
                .await?;
            if status != StatusCode::OK {
                return Err(format!("profanity check: {status}"));
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        medians.push(times[times.len() / 2]);
    }
    let (short, long) = (medians[0], medians[1]);
    Ok(json!({
        "scenario": "profanity",
        "figures": { "ms_1000_chars": short, "ms_10000_chars": long, "growth_10x_length": long / short,
                     "budget": "10,000 chars <= 2 ms (round trip), growth linear (about 10x)" },
        "within_budget": long <= 2.0 && long / short <= 15.0,
    }))
}

/// 10,000 empty strokes in a 30 KB body: the error stays small.
pub(super) async fn error_size(target: &Target) -> Result<Value, String> {
    let mut connection = Connection::open(&target.host).await?;
    let strokes = vec![json!({}); 10_000];
    let (status, body) = connection
        .send(
            Method::POST,
            "/api/drawings",
            Some(&target.token),
            Some(
                json!({"title": "t", "width": 100, "height": 100, "strokes": strokes}).to_string(),
            ),
        )
        .await?;
    Ok(json!({
        "scenario": "error-size",
        "figures": { "status": status.as_u16(), "error_bytes": body.len(), "budget_bytes": 16 * 1024 },
        "within_budget": status == StatusCode::UNPROCESSABLE_ENTITY && body.len() <= 16 * 1024,
    }))
}

/// An anonymous crowd reads the library while one signed-in reader opens
/// a new story every 0.5 s: the cache's hit rate over the run.
pub(super) async fn cache_reader(target: &Target) -> Result<Value, String> {
    let mut connection = Connection::open(&target.host).await?;
    let (_, page) = connection
        .json(Method::GET, "/api/stories?page_size=100", None, None)
        .await?;
    let ids: Vec<i64> = page["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|s| s["id"].as_i64()).collect())
        .unwrap_or_default();
    if ids.len() < 40 {
        return Err("cache-reader needs at least 40 published stories (storybook seed)".into());
    }
    let reader = register(&mut connection, &format!("reader{}", std::process::id())).await?;
    let before = metrics_text(&mut connection).await?;
    let crowd_ids = ids[..5].to_vec();
    let crowd = flood(
        target,
        4_000,
        4,
        Method::GET,
        move |n| {
            if n % 2 == 0 {
                format!("/api/stories?page={}", 1 + n % 3)
            } else {
                format!("/api/stories/{}", crowd_ids[n % 5])
            }
        },
        None,
        |_| None,
    );
    let host = target.host.clone();
    let reading = tokio::spawn(async move {
        let mut connection = Connection::open(&host).await?;
        for id in &ids[5..40] {
            connection
                .send(
                    Method::GET,
                    &format!("/api/stories/{id}"),
                    Some(&reader),
                    None,
                )
                .await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok::<(), String>(())
    });
    crowd.await;
    reading.await.map_err(|e| e.to_string())??;
    let after = metrics_text(&mut connection).await?;
    let hits = metric(&after, "cache_hits_total") - metric(&before, "cache_hits_total");
    let misses = metric(&after, "cache_misses_total") - metric(&before, "cache_misses_total");
    let rate = hits / (hits + misses).max(1.0);
    Ok(json!({
        "scenario": "cache-reader",
        "figures": { "hits": hits, "misses": misses, "hit_rate": rate, "budget": ">= 0.90" },
        "within_budget": rate >= 0.90,
    }))
}

/// Eight clients loop a filtered search for 15 s, each on pages past the
/// cached ones (so every search is run); meanwhile a signed-in reader's
/// unrelated request keeps its latency.
pub(super) async fn search_fairness(target: &Target) -> Result<Value, String> {
    let running = Arc::new(AtomicBool::new(true));
    let searches = Arc::new(AtomicU64::new(0));
    let mut searchers = Vec::new();
    for _ in 0..8 {
        let (host, running, searches) = (target.host.clone(), running.clone(), searches.clone());
        searchers.push(tokio::spawn(async move {
            let mut connection = Connection::open(&host).await?;
            let mut page = 4;
            while running.load(Ordering::Relaxed) {
                page = 4 + (page + 7) % 60;
                let path = format!("/api/stories?q=the&genre=fantasy&page={page}");
                let (status, _) = connection.send(Method::GET, &path, None, None).await?;
                if status == StatusCode::OK {
                    searches.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), String>(())
        }));
    }
    let mut connection = Connection::open(&target.host).await?;
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        let asked = Instant::now();
        connection
            .send(Method::GET, "/api/me", Some(&target.token), None)
            .await?;
        latencies.push(asked.elapsed().as_micros() as u32);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(false, Ordering::Relaxed);
    for searcher in searchers {
        searcher.await.map_err(|e| e.to_string())??;
    }
    let per_second = searches.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let summary = latency_summary(latencies);
    let p99 = summary["p99"].as_f64().unwrap_or(f64::MAX);
    Ok(json!({
        "scenario": "search-fairness",
        "figures": { "searches_per_s": per_second, "signed_in_read_ms": summary,
                     "budget": "read p99 <= 50 ms, >= 50 searches/s" },
        "within_budget": p99 <= 50.0 && per_second >= 50.0,
    }))
}
