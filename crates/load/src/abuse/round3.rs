//! Issue #21's attacks (hostile input, round 3), one function each: the
//! admission's side doors (media types in any case, trees in stroke
//! fields), slow uploads holding the concurrency limit, and requests racing
//! a logout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{Target, measured, register, tally, with_figures};
use crate::client::Connection;
use crate::report::latency_summary;

/// About 1 MiB of `[0,0],` pairs, without the outer brackets.
fn pairs_mib() -> String {
    let mut pairs = "[0,0],".repeat((1024 * 1024 - 4096) / 6);
    pairs.pop();
    pairs
}

/// Sends `count` requests over `parallel` connections with a content type
/// of the caller's; each body from `body(n)`.
async fn flood_typed(
    target: &Target,
    count: usize,
    parallel: usize,
    path: impl Fn(usize) -> String + Send + Sync + 'static,
    token: Option<String>,
    content_type: &'static str,
    body: Arc<String>,
) -> Vec<Result<StatusCode, String>> {
    let next = Arc::new(AtomicU64::new(0));
    let path = Arc::new(path);
    let mut workers = Vec::new();
    for _ in 0..parallel.max(1) {
        let (host, next, path, token, body) = (
            target.host.clone(),
            next.clone(),
            path.clone(),
            token.clone(),
            body.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= count {
                    break;
                }
                // A connection a request: a refused body closes it.
                let sent = async {
                    let mut connection = Connection::open(&host).await?;
                    connection
                        .send_with_type(
                            Method::POST,
                            &path(n),
                            token.as_deref(),
                            content_type,
                            body.as_bytes().to_vec(),
                        )
                        .await
                };
                results.push(sent.await.map(|(status, _)| status));
            }
            results
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap_or_default());
    }
    all
}

/// The issue's memory attacks at once: 60 × 1 MiB to a drawing's strokes
/// (half with a tree in a stroke's `id`, half in an unknown top-level
/// field) and 80 × 1 MiB `[[0,0],…]` bodies to the profanity check and the
/// login typed in mixed case. Budget: peak ≤ 160 MB, ≤ idle + 24 MB 20 s
/// after, and no 500.
pub(super) async fn side_doors(target: &Target) -> Result<Value, String> {
    let mut connection = Connection::open(&target.host).await?;
    let (_, drawing) = connection
        .json(
            Method::POST,
            "/api/drawings",
            Some(&target.token),
            Some(json!({"title": "side doors", "width": 100, "height": 100})),
        )
        .await?;
    let id = drawing["id"].as_i64().ok_or("no drawing made")?;
    let pairs = pairs_mib();
    let in_a_stroke = Arc::new(format!(r#"{{"strokes":[{{"id":[{pairs}]}}]}}"#));
    let in_a_field = Arc::new(format!(r#"{{"extra":[{pairs}],"strokes":[]}}"#));
    let tree = Arc::new(format!("[{pairs}]"));
    let (common, statuses) = measured(target, async {
        let strokes_a = flood_typed(
            target,
            30,
            30,
            move |_| format!("/api/drawings/{id}/strokes"),
            Some(target.token.clone()),
            "application/json",
            in_a_stroke,
        );
        let strokes_b = flood_typed(
            target,
            30,
            30,
            move |_| format!("/api/drawings/{id}/strokes"),
            Some(target.token.clone()),
            "application/json",
            in_a_field,
        );
        let check = flood_typed(
            target,
            40,
            40,
            |_| "/api/profanity/check".to_owned(),
            None,
            "Application/JSON; Charset=UTF-8",
            tree.clone(),
        );
        let login = flood_typed(
            target,
            40,
            40,
            |_| "/api/auth/login".to_owned(),
            None,
            "APPLICATION/JSON",
            tree,
        );
        let (mut a, b, c, d) = tokio::join!(strokes_a, strokes_b, check, login);
        a.extend(b);
        a.extend(c);
        a.extend(d);
        Ok(a)
    })
    .await?;
    let no_500 = statuses.iter().all(|s| match s {
        Ok(code) => !code.is_server_error() || *code == StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => true,
    });
    let peak = common["peak_rss_mb"].as_f64().unwrap_or(f64::MAX);
    let after = common["after_rss_mb"].as_f64().unwrap_or(f64::MAX);
    let idle = common["idle_rss_mb"].as_f64().unwrap_or(0.0);
    let within = no_500 && peak <= 160.0 && after <= idle + 24.0;
    Ok(with_figures(
        common,
        "side-doors",
        json!({ "statuses": tally(&statuses) }),
        within,
    ))
}

/// More slow uploads than the server handles at once (the default 512
/// requests), each declaring 1 MiB and sending 16 bytes, held for 4 s (the
/// abuse server's request time-out is 5);
/// meanwhile `/healthz` must answer 200 and the library `200` or `503
/// busy`, each within 1 s. The probes' latencies are the figures.
pub(super) async fn slow_uploads(target: &Target) -> Result<Value, String> {
    const UPLOADS: usize = 600;
    let (common, (health, library)) = measured(target, async {
        let mut sockets = Vec::with_capacity(UPLOADS);
        for _ in 0..UPLOADS {
            let Ok(mut stream) = tokio::net::TcpStream::connect(&target.host).await else {
                continue;
            };
            let request = format!(
                "POST /api/profanity/check HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"text\": \"aaaa",
                target.host,
                1024 * 1024
            );
            if stream.write_all(request.as_bytes()).await.is_ok() {
                sockets.push(stream);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut health = Vec::new();
        let mut library = Vec::new();
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            for (path, out) in [("/healthz", &mut health), ("/api/stories", &mut library)] {
                let started = Instant::now();
                let answered = async {
                    let mut connection = Connection::open(&target.host).await?;
                    connection.send(Method::GET, path, None, None).await
                };
                let status = match tokio::time::timeout(Duration::from_secs(5), answered).await {
                    Ok(Ok((status, _))) => status.as_u16(),
                    _ => 0,
                };
                out.push((status, started.elapsed().as_micros() as u32));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(sockets);
        Ok((health, library))
    })
    .await?;
    let slowest = |answers: &[(u16, u32)]| answers.iter().map(|(_, us)| *us).max().unwrap_or(0);
    let health_ok = health
        .iter()
        .all(|(status, us)| *status == 200 && *us <= 1_000_000);
    let library_ok = library
        .iter()
        .all(|(status, us)| matches!(status, 200 | 503) && *us <= 1_000_000);
    let statuses = |answers: &[(u16, u32)]| {
        let mut counts = std::collections::BTreeMap::new();
        for (status, _) in answers {
            *counts.entry(status.to_string()).or_insert(0u32) += 1;
        }
        json!(counts)
    };
    let figures = json!({
        "uploads": UPLOADS,
        "healthz": { "statuses": statuses(&health), "slowest_ms": f64::from(slowest(&health)) / 1000.0,
                     "latency_ms": latency_summary(health.iter().map(|(_, us)| *us).collect()) },
        "library": { "statuses": statuses(&library), "slowest_ms": f64::from(slowest(&library)) / 1000.0 },
    });
    // The probe's own /api/me and search may be refused busy while the
    // limit is full: this scenario's budget is the figures above.
    let mut common = common;
    common["probe_within_budget"] = Value::Null;
    Ok(with_figures(
        common,
        "slow-uploads",
        figures,
        health_ok && library_ok,
    ))
}

/// Rounds of the logout race: under the per-address login throttle (20 a
/// minute).
const ROUNDS: u32 = 15;

/// Rounds: a fresh sign-in, 16 clients asking `/api/me` with its token
/// over and over, then a logout; every request sent after the logout was
/// answered must be `401`. Budget: 0 answers `200` after the logout.
pub(super) async fn logout_race(target: &Target) -> Result<Value, String> {
    let name = format!("racer{}", std::process::id());
    let mut connection = Connection::open(&target.host).await?;
    register(&mut connection, &name).await?;
    let (common, (late_ok, late_total)) = measured(target, async {
        let mut late_ok = 0u64;
        let mut late_total = 0u64;
        for _ in 0..ROUNDS {
            let (status, login) = connection
                .json(
                    Method::POST,
                    "/api/auth/login",
                    None,
                    Some(json!({"username": name, "password": "password123"})),
                )
                .await?;
            let token = login["token"]
                .as_str()
                .ok_or(format!("login: {status} {login}"))?
                .to_owned();
            let logged_out = Arc::new(std::sync::OnceLock::<Instant>::new());
            let mut askers = Vec::new();
            for _ in 0..16 {
                let (host, token, logged_out) =
                    (target.host.clone(), token.clone(), logged_out.clone());
                askers.push(tokio::spawn(async move {
                    let mut counts = (0u64, 0u64);
                    let Ok(mut connection) = Connection::open(&host).await else {
                        return counts;
                    };
                    for _ in 0..40 {
                        let sent_after_logout = logged_out.get().is_some();
                        let Ok((status, _)) = connection
                            .send(Method::GET, "/api/me", Some(&token), None)
                            .await
                        else {
                            break;
                        };
                        if sent_after_logout {
                            counts.1 += 1;
                            if status == StatusCode::OK {
                                counts.0 += 1;
                            }
                        }
                    }
                    counts
                }));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut logout = Connection::open(&target.host).await?;
            let (status, _) = logout
                .send(Method::POST, "/api/auth/logout", Some(&token), None)
                .await?;
            if status != StatusCode::NO_CONTENT {
                return Err(format!("logout answered {status}"));
            }
            let _ = logged_out.set(Instant::now());
            for asker in askers {
                let (ok, total) = asker.await.unwrap_or_default();
                late_ok += ok;
                late_total += total;
            }
        }
        Ok((late_ok, late_total))
    })
    .await?;
    Ok(with_figures(
        common,
        "logout-race",
        json!({ "rounds": ROUNDS, "asked_after_logout": late_total, "answered_200_after_logout": late_ok }),
        late_ok == 0,
    ))
}
