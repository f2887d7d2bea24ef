//! `storybook-load http`: named HTTP scenarios against a running server.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;
use storybook_splitmix::SplitMix64;

use crate::client::{Connection, host_of};
use crate::report::{latency_summary, publish};
use crate::rss::{self, Sampler};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `GET /healthz`: the framework's ceiling on this machine.
    Healthz,
    /// Library pages 1–3, newest first.
    Library,
    /// Story details, spread over the whole library.
    Detail,
    /// Search for one common word.
    Search,
    /// Search for two words.
    Search2,
    /// Search for one common word, pages 4–8: past the cached pages, so
    /// every answer is a full-text query (count and ranking included).
    SearchDeep,
    /// Write a story.
    Create,
    /// 50% library, 25% detail, 10% search, 5% two-word search, 5% like, 5% create.
    Mix,
    /// A long run's mix: 70% library, 27% detail, 2% search, 1% create.
    Soak,
}

#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The server's process id, to sample its RSS.
    #[arg(long)]
    pub pid: Option<u32>,
    #[arg(long, value_enum, default_value_t = Scenario::Library)]
    pub scenario: Scenario,
    /// Connections, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds to run (ignored when --requests is given).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Total requests to send instead of a duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Fixed total rate in requests per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Record the server's RSS every this many requests (soak runs).
    #[arg(long)]
    pub rss_every_requests: Option<u64>,
    /// Where to write the JSON report.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A label stored in the report (e.g. "lean sqlite 100k").
    #[arg(long, default_value = "")]
    pub label: String,
    /// Send every request as a signed-in user (a new account).
    #[arg(long)]
    pub signed_in: bool,
}

const WORDS: &[&str] = &[
    "dragon", "forest", "brave", "castle", "moon", "kitten", "ocean", "lantern", "robot", "garden",
    "secret", "owl",
];
const PAIRS: &[&str] = &[
    "brave dragon",
    "golden key",
    "sleepy owl",
    "secret garden",
    "tiny robot",
    "friendly whale",
];

/// What a worker needs to build requests.
struct Shared {
    story_ids: Vec<i64>,
    token: Option<String>,
}

async fn prepare(host: &str, scenario: Scenario, signed_in: bool) -> Result<Shared, String> {
    let mut connection = Connection::open(host).await?;
    let (_, first) = connection
        .json(Method::GET, "/api/stories?page_size=100", None, None)
        .await?;
    let total = first["total"].as_i64().unwrap_or(0).max(0) as usize;
    let mut story_ids: Vec<i64> = Vec::new();
    let pages = total.div_ceil(100).max(1);
    let mut rng = SplitMix64::new(7);
    for _ in 0..10 {
        let page = 1 + rng.below(pages);
        let (_, body) = connection
            .json(
                Method::GET,
                &format!("/api/stories?page_size=100&page={page}"),
                None,
                None,
            )
            .await?;
        story_ids.extend(
            body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["id"].as_i64()),
        );
    }
    story_ids.sort_unstable();
    story_ids.dedup();
    let needs_story = matches!(scenario, Scenario::Detail | Scenario::Mix | Scenario::Soak);
    if needs_story && story_ids.is_empty() {
        return Err("the library is empty: run `storybook seed` first".into());
    }
    let token = if signed_in
        || matches!(scenario, Scenario::Create | Scenario::Mix | Scenario::Soak)
    {
        let name = format!("load{}", std::process::id());
        let body = json!({ "username": name, "email": format!("{name}@example.com"), "password": "password123" });
        let (status, reply) = connection
            .json(Method::POST, "/api/auth/register", None, Some(body))
            .await?;
        if !status.is_success() {
            let login = json!({ "username": name, "password": "password123" });
            let (_, reply) = connection
                .json(Method::POST, "/api/auth/login", None, Some(login))
                .await?;
            reply["token"].as_str().map(str::to_owned)
        } else {
            reply["token"].as_str().map(str::to_owned)
        }
    } else {
        None
    };
    Ok(Shared { story_ids, token })
}

/// The next request of a scenario: method, path, body.
fn next_request(
    scenario: Scenario,
    shared: &Shared,
    rng: &mut SplitMix64,
) -> (Method, String, Option<String>) {
    let story = |rng: &mut SplitMix64| shared.story_ids[rng.below(shared.story_ids.len())];
    let create = || {
        let body = json!({
            "title": "A load test story",
            "pages": [{"text": "The brave fox ran through the forest."}, {"text": "Then it slept under the moon."}],
            "genre": "animals", "age_group": "3-5", "tags": ["load"], "status": "published",
        });
        (
            Method::POST,
            "/api/stories".to_owned(),
            Some(body.to_string()),
        )
    };
    match scenario {
        Scenario::Healthz => (Method::GET, "/healthz".into(), None),
        Scenario::Library => (
            Method::GET,
            format!("/api/stories?page={}", 1 + rng.below(3)),
            None,
        ),
        Scenario::Detail => (Method::GET, format!("/api/stories/{}", story(rng)), None),
        Scenario::Search => (
            Method::GET,
            format!("/api/stories?q={}", WORDS[rng.below(WORDS.len())]),
            None,
        ),
        Scenario::SearchDeep => (
            Method::GET,
            format!(
                "/api/stories?q={}&page={}",
                WORDS[rng.below(WORDS.len())],
                4 + rng.below(5)
            ),
            None,
        ),
        Scenario::Search2 => {
            let pair = PAIRS[rng.below(PAIRS.len())].replace(' ', "%20");
            (Method::GET, format!("/api/stories?q={pair}"), None)
        }
        Scenario::Create => create(),
        Scenario::Soak => match rng.below(100) {
            0..=69 => next_request(Scenario::Library, shared, rng),
            70..=96 => next_request(Scenario::Detail, shared, rng),
            97..=98 => next_request(Scenario::Search, shared, rng),
            _ => create(),
        },
        Scenario::Mix => match rng.below(20) {
            0..=9 => next_request(Scenario::Library, shared, rng),
            10..=14 => next_request(Scenario::Detail, shared, rng),
            15..=16 => next_request(Scenario::Search, shared, rng),
            17 => next_request(Scenario::Search2, shared, rng),
            18 => (
                Method::POST,
                format!("/api/stories/{}/like", story(rng)),
                None,
            ),
            _ => create(),
        },
    }
}

#[derive(Default)]
struct Tally {
    latencies_micros: Vec<u32>,
    errors: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
}

pub async fn run(args: HttpArgs) -> Result<(), String> {
    let host = host_of(&args.url)?;
    let shared = Arc::new(prepare(&host, args.scenario, args.signed_in).await?);
    let rss_before = args.pid.and_then(rss::read).map(|r| r.0);
    let cpu_before = args.pid.and_then(rss::cpu_seconds);
    let sampler = args
        .pid
        .map(|pid| Sampler::start(pid, Duration::from_millis(100)));
    let issued = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let soak_samples: Arc<Mutex<Vec<(u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let limit = args.requests;

    let progress = {
        let completed = completed.clone();
        let pid = args.pid;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let done = completed.load(Ordering::Relaxed);
                let rate = done as f64 / started.elapsed().as_secs_f64();
                let rss = pid.and_then(rss::read).map_or(0, |r| r.0);
                eprint!("\r{done} requests, {rate:.0}/s, server RSS {rss} KiB   ");
            }
        })
    };

    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency.max(1) {
        let (shared, issued, completed, soak_samples) = (
            shared.clone(),
            issued.clone(),
            completed.clone(),
            soak_samples.clone(),
        );
        let (host, scenario, rate, pid, every) = (
            host.clone(),
            args.scenario,
            args.rate,
            args.pid,
            args.rss_every_requests,
        );
        workers.spawn(async move {
            let mut tally = Tally::default();
            let mut rng = SplitMix64::new(worker as u64 * 7919 + 1);
            let mut connection = match Connection::open(&host).await {
                Ok(connection) => connection,
                Err(_) => {
                    tally.errors += 1;
                    return tally;
                }
            };
            loop {
                let ticket = issued.fetch_add(1, Ordering::Relaxed);
                match limit {
                    Some(limit) if ticket >= limit => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(ticket as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let (method, path, body) = next_request(scenario, &shared, &mut rng);
                let sent = Instant::now();
                match connection
                    .send(method, &path, shared.token.as_deref(), body)
                    .await
                {
                    Ok((status, _)) => {
                        tally
                            .latencies_micros
                            .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        *tally.statuses.entry(status.as_u16()).or_default() += 1;
                        if status.is_server_error() || status.as_u16() == 429 {
                            tally.errors += 1;
                        }
                    }
                    Err(_) => {
                        tally.errors += 1;
                        match Connection::open(&host).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => break,
                        }
                    }
                }
                let done = completed.fetch_add(1, Ordering::Relaxed) + 1;
                if let (Some(every), Some(pid)) = (every, pid)
                    && done.is_multiple_of(every)
                    && let Some((rss, _)) = rss::read(pid)
                    && let Ok(mut samples) = soak_samples.lock()
                {
                    samples.push((done, rss));
                }
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(result) = workers.join_next().await {
        let tally = result.map_err(|e| e.to_string())?;
        total.latencies_micros.extend(tally.latencies_micros);
        total.errors += tally.errors;
        for (status, count) in tally.statuses {
            *total.statuses.entry(status).or_default() += count;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    progress.abort();
    eprintln!();
    let cpu_used = args
        .pid
        .and_then(rss::cpu_seconds)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let peak = match sampler {
        Some(sampler) => Some(sampler.finish().await.0),
        None => None,
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = args.pid.and_then(rss::read);
    let requests = total.latencies_micros.len();
    let mut soak = soak_samples.lock().map(|s| s.clone()).unwrap_or_default();
    soak.sort_unstable();
    let report = json!({
        "kind": "http",
        "label": args.label,
        "scenario": args.scenario,
        "concurrency": args.concurrency,
        "seconds": elapsed,
        "requests": requests,
        "errors": total.errors,
        "statuses": total.statuses,
        "requests_per_second": requests as f64 / elapsed,
        "signed_in": args.signed_in,
        // The server's CPU time (user + system, 10 ms ticks) over the run,
        // per answered request.
        "server_cpu_seconds": cpu_used,
        "cpu_us_per_request": cpu_used.map(|cpu| cpu * 1e6 / requests.max(1) as f64),
        "latency_ms": latency_summary(total.latencies_micros),
        "rss_kib": {
            "before": rss_before,
            "peak": peak,
            "after": rss_after.map(|r| r.0),
            "peak_hwm": rss_after.map(|r| r.1),
        },
        "rss_by_requests": soak,
    });
    publish(&report, args.out.as_deref())
}
