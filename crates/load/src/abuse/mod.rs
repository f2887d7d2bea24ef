//! `storybook-load abuse`: the attacks of issues #12 and #21 (and, with
//! `--realtime`, those of issue #13 in `abuse_ws.rs`) replayed against a
//! running server, each with its figures beside its budget. While an
//! attack runs, a probe asks for `/readyz`, a signed-in `/api/me` and a
//! search every 200 ms and keeps the slowest answer and any failure; the
//! server's RSS is sampled for the peak and read again after a settling
//! time. Progress goes to standard error; the report (one JSON line per
//! scenario, then a table) to standard output.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Connection, host_of};
use crate::report::{latency_summary, publish};
use crate::rss::{self};

mod attacks;
mod round3;
use attacks::{
    big_bodies, cache_reader, error_size, login_keys, parallel_guesses, profanity, render_timeout,
    search_fairness, stalled_streams,
};
use round3::{logout_race, side_doors, slow_uploads};

/// Every scenario, in the order they run.
const SCENARIOS: &[&str] = &[
    "login-keys",
    "parallel-guesses",
    "big-bodies",
    "stalled-streams",
    "render-timeout",
    "profanity",
    "error-size",
    "cache-reader",
    "search-fairness",
    "side-doors",
    "slow-uploads",
    "logout-race",
];

#[derive(Debug, clap::Args)]
pub struct AbuseArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The server's process id (RSS and CPU time are read from /proc).
    #[arg(long)]
    pub pid: u32,
    /// Scenarios to run (default: all of the REST ones): login-keys,
    /// parallel-guesses, big-bodies, stalled-streams, render-timeout,
    /// profanity, error-size, cache-reader, search-fairness, side-doors,
    /// slow-uploads, logout-race; and against a
    /// realtime build ws-revoked-collaborator, ws-logout, ws-lobby-toggle,
    /// ws-unmasked.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Run the realtime scenarios (the server is a realtime build) instead
    /// of the REST ones, when no --scenario is given.
    #[arg(long)]
    pub realtime: bool,
    /// Seconds to wait after an attack before reading RSS again.
    #[arg(long, default_value_t = 30)]
    pub settle_secs: u64,
    /// The server's request time-out (REQUEST_TIMEOUT_SECS), for the
    /// render scenario's client, which gives up a second later.
    #[arg(long, default_value_t = 5)]
    pub request_timeout_secs: u64,
    /// Write the reports as a JSON array here too.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// What every scenario shares: where the server is and who is signed in.
pub(crate) struct Target {
    pub(crate) host: String,
    pid: u32,
    token: String,
    settle: Duration,
    request_timeout: Duration,
}

pub async fn run(args: AbuseArgs) -> Result<(), String> {
    let host = host_of(&args.url)?;
    let mut connection = Connection::open(&host).await?;
    let token = register(&mut connection, &format!("abuse{}", std::process::id())).await?;
    let target = Target {
        host,
        pid: args.pid,
        token,
        settle: Duration::from_secs(args.settle_secs),
        request_timeout: Duration::from_secs(args.request_timeout_secs),
    };
    let chosen: Vec<&str> = if !args.scenarios.is_empty() {
        args.scenarios.iter().map(String::as_str).collect()
    } else if args.realtime {
        crate::abuse_ws::SCENARIOS.to_vec()
    } else {
        SCENARIOS.to_vec()
    };
    let mut reports = Vec::new();
    for name in chosen {
        eprintln!("== {name}");
        let report = match name {
            "login-keys" => login_keys(&target).await?,
            "parallel-guesses" => parallel_guesses(&target).await?,
            "big-bodies" => big_bodies(&target).await?,
            "stalled-streams" => stalled_streams(&target).await?,
            "render-timeout" => render_timeout(&target).await?,
            "profanity" => profanity(&target).await?,
            "error-size" => error_size(&target).await?,
            "cache-reader" => cache_reader(&target).await?,
            "search-fairness" => search_fairness(&target).await?,
            "side-doors" => side_doors(&target).await?,
            "slow-uploads" => slow_uploads(&target).await?,
            "logout-race" => logout_race(&target).await?,
            realtime if realtime.starts_with("ws-") => {
                crate::abuse_ws::run(&target, realtime).await?
            }
            other => {
                return Err(format!(
                    "no scenario {other}; known: {}",
                    SCENARIOS.join(", ")
                ));
            }
        };
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
        reports.push(report);
    }
    print_table(&reports);
    if let Some(path) = &args.out {
        publish(&json!(reports), Some(path))?;
    }
    Ok(())
}

pub(crate) async fn register(connection: &mut Connection, name: &str) -> Result<String, String> {
    let (status, reply) = connection
        .json(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"})),
        )
        .await?;
    reply["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or(format!("register {name}: {status} {reply}"))
}

fn rss_mb(pid: u32) -> f64 {
    rss::read(pid).map_or(0.0, |(rss, _)| rss as f64 / 1024.0)
}

/// Answers `/readyz`, a signed-in `/api/me` and a search every 200 ms while
/// an attack runs: the slowest answer and how many were not 200.
struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<u32>, u64)>,
}

impl Probe {
    fn start(target: &Target) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (host, token, task_stop) = (target.host.clone(), target.token.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while !task_stop.load(Ordering::Relaxed) {
                for (path, signed_in) in [
                    ("/readyz", false),
                    ("/api/me", true),
                    ("/api/stories?q=dragon", false),
                ] {
                    let started = Instant::now();
                    // A fresh connection each time: the probe must not wait
                    // behind its own earlier request.
                    let answered = async {
                        let mut connection = Connection::open(&host).await?;
                        connection
                            .send(Method::GET, path, signed_in.then_some(token.as_str()), None)
                            .await
                    };
                    match tokio::time::timeout(Duration::from_secs(5), answered).await {
                        Ok(Ok((StatusCode::OK, _))) => {}
                        _ => failures += 1,
                    }
                    latencies.push(started.elapsed().as_micros() as u32);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (latencies, failures)
        });
        Self { stop, task }
    }

    async fn finish(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let (latencies, failures) = self.task.await.unwrap_or_default();
        let slowest = latencies
            .iter()
            .max()
            .map_or(0.0, |m| f64::from(*m) / 1000.0);
        json!({ "requests": latencies.len(), "not_ok": failures, "slowest_ms": slowest,
                "latency_ms": latency_summary(latencies) })
    }
}

/// Runs `attack` with the probe and the RSS sampler, then waits and reads
/// RSS again. The memory budgets: peak <= 160 MB, after <= idle + 16 MB;
/// the probe: every answer 200 within 1 s.
pub(crate) async fn measured<F, T>(target: &Target, attack: F) -> Result<(Value, T), String>
where
    F: std::future::Future<Output = Result<T, String>>,
{
    let idle = rss_mb(target.pid);
    let sampler = rss::Sampler::start(target.pid, Duration::from_millis(20));
    let probe = Probe::start(target);
    let started = Instant::now();
    let outcome = attack.await?;
    let took = started.elapsed().as_secs_f64();
    let probe = probe.finish().await;
    let (peak_kib, _) = sampler.finish().await;
    eprintln!(
        "   attack done in {took:.1} s; settling {} s",
        target.settle.as_secs()
    );
    tokio::time::sleep(target.settle).await;
    let after = rss_mb(target.pid);
    let peak = peak_kib as f64 / 1024.0;
    let memory_ok = peak <= 160.0 && after <= idle + 16.0;
    let probe_ok =
        probe["not_ok"] == 0 && probe["slowest_ms"].as_f64().unwrap_or(f64::MAX) <= 1000.0;
    Ok((
        json!({
            "attack_s": took,
            "idle_rss_mb": idle, "peak_rss_mb": peak, "after_rss_mb": after,
            "memory_within_budget": memory_ok,
            "probe": probe, "probe_within_budget": probe_ok,
        }),
        outcome,
    ))
}

pub(crate) fn with_figures(mut common: Value, name: &str, figures: Value, within: bool) -> Value {
    common["scenario"] = json!(name);
    common["figures"] = figures;
    common["figures_within_budget"] = json!(within);
    common["within_budget"] = json!(
        within && common["memory_within_budget"] != false && common["probe_within_budget"] != false
    );
    common
}

/// Counts statuses of finished requests: `{"200": n, …}`.
fn tally(statuses: &[Result<StatusCode, String>]) -> Value {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        let key = match status {
            Ok(code) => code.as_u16().to_string(),
            Err(_) => "error".to_owned(),
        };
        *counts.entry(key).or_insert(0u32) += 1;
    }
    json!(counts)
}

/// Sends `count` requests over `parallel` connections; each request's body
/// comes from `body(n)`.
async fn flood(
    target: &Target,
    count: usize,
    parallel: usize,
    method: Method,
    path: impl Fn(usize) -> String + Send + Sync + 'static,
    token: Option<String>,
    body: impl Fn(usize) -> Option<String> + Send + Sync + 'static,
) -> Vec<Result<StatusCode, String>> {
    let next = Arc::new(AtomicU64::new(0));
    let (path, body) = (Arc::new(path), Arc::new(body));
    let mut workers = Vec::new();
    for _ in 0..parallel.max(1) {
        let (host, next, path, body, token, method) = (
            target.host.clone(),
            next.clone(),
            path.clone(),
            body.clone(),
            token.clone(),
            method.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut connection = Connection::open(&host).await.ok();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= count {
                    break;
                }
                let Some(open) = connection.as_mut() else {
                    connection = Connection::open(&host).await.ok();
                    results.push(Err("connect".to_owned()));
                    continue;
                };
                let result = open
                    .send(method.clone(), &path(n), token.as_deref(), body(n))
                    .await
                    .map(|(status, _)| status);
                if result.is_err() {
                    // The server closed the connection: open another.
                    connection = Connection::open(&host).await.ok();
                }
                results.push(result);
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

async fn metrics_text(connection: &mut Connection) -> Result<String, String> {
    let (_, body) = connection.send(Method::GET, "/metrics", None, None).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn print_table(reports: &[Value]) {
    println!(
        "\n| scenario | peak RSS MB | after MB (idle) | probe slowest ms / not ok | figures | within budget |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for report in reports {
        let number = |v: &Value| v.as_f64().map_or("–".to_owned(), |n| format!("{n:.1}"));
        println!(
            "| {} | {} | {} ({}) | {} / {} | {} | {} |",
            report["scenario"].as_str().unwrap_or("?"),
            number(&report["peak_rss_mb"]),
            number(&report["after_rss_mb"]),
            number(&report["idle_rss_mb"]),
            number(&report["probe"]["slowest_ms"]),
            report["probe"]["not_ok"],
            report["figures"],
            report["within_budget"],
        );
    }
}
