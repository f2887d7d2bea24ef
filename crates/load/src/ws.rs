//! `storybook-load ws`: N authenticated WebSocket connections over K story
//! channels (from several loopback source addresses), held, then M
//! messages published at a fixed rate; fan-out latency from a timestamp in
//! each message, delivered vs expected, duplicates, gaps, slow-consumer
//! closes, and the server's RSS before, holding, peak, and after.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::abuse::register;
use crate::client::{Connection, host_of};
use crate::report::{latency_summary, publish};
use crate::rss::{self, Sampler};

#[derive(Debug, clap::Args)]
pub struct WsArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    #[arg(long)]
    pub pid: Option<u32>,
    /// Subscribers to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Story channels they spread over.
    #[arg(long, default_value_t = 10)]
    pub channels: usize,
    /// Connections per user account (the server's WS_MAX_PER_USER must allow it).
    #[arg(long, default_value_t = 8)]
    pub per_user: usize,
    /// Loopback source addresses to connect from (127.0.0.1, .2, ...).
    #[arg(long, default_value_t = 0)]
    pub sources: usize,
    /// Connections opened at once while ramping up.
    #[arg(long, default_value_t = 200)]
    pub ramp: usize,
    /// Messages to publish in all (0: only connect, hold and measure).
    #[arg(long, default_value_t = 2000)]
    pub messages: u64,
    /// Messages a second in all, spread over the channels.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds to hold the connections idle before publishing.
    #[arg(long, default_value_t = 3.0)]
    pub hold: f64,
    /// A school morning: every connection joins `lobby` too, before its
    /// story channel (contract v1.6 presence at scale).
    #[arg(long)]
    pub lobby: bool,
    /// cgroup files (`cgroup.procs`, space-separated) to move the server
    /// into once the accounts and stories are made, so that only what is
    /// measured runs under the cap.
    #[arg(long)]
    pub cap_with: Option<String>,
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Default)]
struct Tally {
    latencies_micros: Vec<u32>,
    delivered: u64,
    duplicates: u64,
    gaps: u64,
    kicked: u64,
    /// `presence` frames received, and the shortest time between two on
    /// one channel of one connection (the server promises one an
    /// interval at most).
    presence_frames: u64,
    min_presence_gap_ms: Option<u64>,
    /// `error` frames by code, and refused handshakes by what was said.
    errors: std::collections::BTreeMap<String, u64>,
    refused: std::collections::BTreeMap<String, u64>,
}

/// Opens a socket, trying again (up to 30 times, with a growing pause) when
/// the server says it is busy or over a limit, as the contract's clients do.
async fn open_retrying(
    server: SocketAddr,
    source: IpAddr,
    token: &str,
    refused: &mut std::collections::BTreeMap<String, u64>,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, String> {
    let mut pause = Duration::from_millis(200);
    let mut last = String::new();
    for _ in 0..30 {
        match open(server, source, token).await {
            Ok(socket) => return Ok(socket),
            Err(error) if error.contains("503") || error.contains("429") => {
                let status = if error.contains("503") { "503" } else { "429" };
                *refused.entry(status.to_owned()).or_default() += 1;
                last = error;
                tokio::time::sleep(pause).await;
                pause = (pause * 3 / 2).min(Duration::from_secs(3));
            }
            Err(error) => {
                *refused.entry("other".to_owned()).or_default() += 1;
                return Err(error);
            }
        }
    }
    Err(last)
}

fn config() -> WebSocketConfig {
    // Small buffers: the tool holds thousands of sockets too.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
}

pub(crate) async fn open(
    server: SocketAddr,
    source: IpAddr,
    token: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let url = format!("ws://{server}/ws?token={token}");
    let (socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config()))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    Ok(socket)
}

pub async fn run(args: WsArgs) -> Result<(), String> {
    let host = host_of(&args.url)?;
    let server: SocketAddr = tokio::net::lookup_host(&host)
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut http = Connection::open(&host).await?;
    let run_id = std::process::id();
    // One publisher a channel, when there is something to publish.
    let publishers = if args.messages / args.channels.max(1) as u64 > 0 {
        args.channels
    } else {
        0
    };
    let users = args.connections.div_ceil(args.per_user.max(1)) + publishers;
    eprintln!("registering {users} users...");
    let mut tokens = Vec::with_capacity(users);
    for i in 0..users {
        tokens.push(register(&mut http, &format!("ws{run_id}_{i}")).await?);
    }
    let mut channel_names = Vec::with_capacity(args.channels);
    for i in 0..args.channels {
        let story = json!({"title": format!("Channel {i}"), "pages": [{"text": "Live"}], "genre": "funny", "age_group": "6-8", "status": "published"});
        let (_, reply) = http
            .json(Method::POST, "/api/stories", Some(&tokens[0]), Some(story))
            .await?;
        channel_names.push(format!(
            "story:{}",
            reply["id"].as_i64().ok_or("story not created")?
        ));
    }
    let sources = if args.sources > 0 {
        args.sources
    } else {
        args.connections.div_ceil(900).max(1)
    };
    if let (Some(files), Some(pid)) = (&args.cap_with, args.pid) {
        for file in files.split_whitespace() {
            std::fs::write(file, pid.to_string()).map_err(|e| format!("{file}: {e}"))?;
        }
    }
    let idle_before = args.pid.and_then(rss::read).map(|r| r.0);
    let sampler = args
        .pid
        .map(|pid| Sampler::start(pid, Duration::from_millis(200)));

    // Ramp up the subscribers.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let subscribed = Arc::new(AtomicU64::new(0));
    let delivered_live = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let connect_started = Instant::now();
    let mut readers = Vec::with_capacity(args.connections);
    let permits = Arc::new(tokio::sync::Semaphore::new(args.ramp.max(1)));
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    for i in 0..args.connections {
        let token = tokens[i / args.per_user.max(1)].clone();
        let channel = channel_names[i % args.channels].clone();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % sources) as u8));
        let (tally, subscribed, failed, permits) = (
            tally.clone(),
            subscribed.clone(),
            failed.clone(),
            permits.clone(),
        );
        let delivered_live = delivered_live.clone();
        let mut stop = stop.clone();
        let lobby = args.lobby;
        readers.push(tokio::spawn(async move {
            let mut permit = Some(permits.acquire_owned().await);
            let mut local = Tally::default();
            let mut socket = match open_retrying(server, source, &token, &mut local.refused).await {
                Ok(socket) => socket,
                Err(error) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("\nconnection failed: {error}");
                    }
                    let mut total = tally.lock().await;
                    for (status, n) in local.refused {
                        *total.refused.entry(status).or_default() += n;
                    }
                    return;
                }
            };
            let subscribe = |channel: &str| {
                Message::Text(
                    json!({"op": "subscribe", "channel": channel})
                        .to_string()
                        .into(),
                )
            };
            if lobby && socket.send(subscribe("lobby")).await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if socket.send(subscribe(&channel)).await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let mut last_offset = 0u64;
            let mut last_presence: std::collections::HashMap<String, Instant> =
                std::collections::HashMap::new();
            loop {
                let message = tokio::select! {
                    message = socket.next() => message,
                    _ = stop.changed() => break,
                };
                let Some(Ok(message)) = message else { break };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(frame) => {
                        if frame.is_some_and(|f| u16::from(f.code) == 1013) {
                            local.kicked += 1;
                        }
                        break;
                    }
                    _ => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match frame["op"].as_str() {
                    Some("subscribed") if frame["channel"] != channel.as_str() => {}
                    Some("presence") => {
                        local.presence_frames += 1;
                        let now = Instant::now();
                        let on = frame["channel"].as_str().unwrap_or_default().to_owned();
                        if let Some(before) = last_presence.insert(on, now) {
                            let gap = now.duration_since(before).as_millis() as u64;
                            local.min_presence_gap_ms =
                                Some(local.min_presence_gap_ms.map_or(gap, |m| m.min(gap)));
                        }
                    }
                    Some("error") => {
                        let code = frame["code"].as_str().unwrap_or("?").to_owned();
                        *local.errors.entry(code.clone()).or_default() += 1;
                        // Busy: asked again, as the contract's clients do.
                        if code == "busy"
                            && let Some(on) = frame["channel"].as_str()
                        {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            if socket.send(subscribe(on)).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some("subscribed") => {
                        subscribed.fetch_add(1, Ordering::Relaxed);
                        last_offset = frame["offset"].as_u64().unwrap_or(0);
                        permit.take();
                    }
                    Some("message") => {
                        let offset = frame["offset"].as_u64().unwrap_or(0);
                        if offset <= last_offset {
                            local.duplicates += 1;
                            continue;
                        }
                        if offset > last_offset + 1 {
                            local.gaps += offset - last_offset - 1;
                        }
                        last_offset = offset;
                        local.delivered += 1;
                        delivered_live.fetch_add(1, Ordering::Relaxed);
                        // Chat text "<seq> <sent µs>": the one kept type of
                        // a story channel (contract v1.3).
                        let sent = frame["data"]["text"]
                            .as_str()
                            .and_then(|text| text.split_once(' '))
                            .and_then(|(_, ts)| ts.parse::<u64>().ok());
                        if let Some(sent) = sent {
                            local
                                .latencies_micros
                                .push(now_micros().saturating_sub(sent).min(u64::from(u32::MAX))
                                    as u32);
                        }
                    }
                    _ => {}
                }
            }
            let _ = socket.close(None).await;
            let mut total = tally.lock().await;
            total.latencies_micros.extend(local.latencies_micros);
            total.delivered += local.delivered;
            total.duplicates += local.duplicates;
            total.gaps += local.gaps;
            total.kicked += local.kicked;
            total.presence_frames += local.presence_frames;
            if let Some(gap) = local.min_presence_gap_ms {
                total.min_presence_gap_ms =
                    Some(total.min_presence_gap_ms.map_or(gap, |m| m.min(gap)));
            }
            for (code, n) in local.errors {
                *total.errors.entry(code).or_default() += n;
            }
            for (status, n) in local.refused {
                *total.refused.entry(status).or_default() += n;
            }
        }));
    }
    while (subscribed.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed))
        < args.connections as u64
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        eprint!(
            "\r{} subscribed, {} failed, server RSS {} KiB   ",
            subscribed.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            args.pid.and_then(rss::read).map_or(0, |r| r.0)
        );
        if connect_started.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    eprintln!();
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let holding = args.pid.and_then(rss::read).map(|r| r.0);
    let connected = subscribed.load(Ordering::Relaxed);

    // Publish: one publisher a channel, each at its share of the rate.
    let per_channel_rate = args.rate / args.channels as f64;
    let per_channel_messages = args.messages / args.channels as u64;
    let publish_started = Instant::now();
    let cpu_before = args.pid.and_then(rss::cpu_seconds);
    let mut publishers = Vec::new();
    for (i, channel) in channel_names.iter().enumerate() {
        if per_channel_messages == 0 {
            break;
        }
        let token = tokens[tokens.len() - 1 - i].clone();
        let channel = channel.clone();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % sources) as u8));
        publishers.push(tokio::spawn(async move {
            let mut socket = open(server, source, &token).await?;
            socket
                .send(Message::Text(json!({"op": "subscribe", "channel": channel}).to_string().into()))
                .await
                .map_err(|e| e.to_string())?;
            let (mut sink, mut stream) = socket.split();
            let drain = tokio::spawn(async move { while stream.next().await.is_some() {} });
            let interval = Duration::from_secs_f64(1.0 / per_channel_rate.max(0.001));
            let mut ticker = tokio::time::interval(interval);
            for seq in 0..per_channel_messages {
                ticker.tick().await;
                let data = json!({"op": "publish", "channel": channel, "data": {"type": "chat", "text": format!("{seq} {}", now_micros())}});
                sink.send(Message::Text(data.to_string().into())).await.map_err(|e| e.to_string())?;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            drain.abort();
            Ok::<(), String>(())
        }));
    }
    let mut publish_errors = 0;
    for publisher in publishers {
        if !matches!(publisher.await, Ok(Ok(()))) {
            publish_errors += 1;
        }
    }
    let expected = per_channel_messages * connected;
    // Let the last messages arrive (at most 10 s).
    let wait_started = Instant::now();
    while wait_started.elapsed() < Duration::from_secs(10)
        && delivered_live.load(Ordering::Relaxed) < expected
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_sender.send(true);
    for reader in readers {
        let _ = reader.await;
    }
    let publish_seconds = publish_started.elapsed().as_secs_f64();
    let cpu_used = args
        .pid
        .and_then(rss::cpu_seconds)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let peak = match sampler {
        Some(sampler) => Some(sampler.finish().await.0),
        None => None,
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = args.pid.and_then(rss::read).map(|r| r.0);
    let tally = std::mem::take(&mut *tally.lock().await);
    let per_connection = match (holding, idle_before) {
        (Some(h), Some(i)) if connected > 0 => {
            Some((h.saturating_sub(i) as f64 * 1024.0 / connected as f64).round())
        }
        _ => None,
    };
    let report = json!({
        "kind": "ws",
        "label": args.label,
        "connections": args.connections,
        "connected": connected,
        "failed": failed.load(Ordering::Relaxed),
        "channels": args.channels,
        "sources": sources,
        "connect_seconds": connect_seconds,
        "messages": per_channel_messages * args.channels as u64,
        "rate": args.rate,
        "publish_seconds": publish_seconds,
        "publish_errors": publish_errors,
        "expected": expected,
        "delivered": tally.delivered,
        // The server's CPU time while publishing, per frame delivered.
        "server_cpu_seconds": cpu_used,
        "cpu_us_per_frame": cpu_used.map(|cpu| cpu * 1e6 / tally.delivered.max(1) as f64),
        "duplicates": tally.duplicates,
        "gaps": tally.gaps,
        "slow_consumer_closes": tally.kicked,
        "lobby": args.lobby,
        "presence_frames": tally.presence_frames,
        "min_presence_gap_ms": tally.min_presence_gap_ms,
        "error_frames": tally.errors,
        "refused_handshakes": tally.refused,
        "latency_ms": latency_summary(tally.latencies_micros),
        "rss_kib": {"idle_before": idle_before, "holding": holding, "peak": peak, "after": after},
        "bytes_per_connection": per_connection,
    });
    publish(&report, args.out.as_deref())
}
