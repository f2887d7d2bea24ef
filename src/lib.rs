#![recursion_limit = "256"]
//! The storybook server as a library: `app(state)` builds the router and
//! `serve` runs it, so `main.rs` stays thin and tests reuse both.

pub mod accounts;
pub mod admission;
pub mod allocator;
pub mod auth;
pub mod backup;
pub mod bounded_json;
pub mod cache;
pub mod client_addr;
pub mod commands;
pub mod config;
pub mod cors;
pub mod django_import;
pub mod error;
pub mod events;
pub mod expiring;
pub mod extract;
pub mod http;
pub mod image_cache;
pub mod json_body;
pub mod likes_cache;
pub mod logging;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod pause;
pub mod process;
pub mod read_counter;
#[cfg(feature = "realtime")]
pub mod realtime;
pub mod seed;
pub mod shutdown;
pub mod slots;
pub mod state;
pub mod threads;
pub mod token_cache;
pub mod validate;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use crate::error::ApiError;
pub use crate::state::AppState;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (router, operations) = http::routes().into_parts();
    let document = std::sync::Arc::new(openapi::Served::new(operations.clone()));
    let limits = state.limits.clone();
    #[cfg(feature = "realtime")]
    let router = router.merge(http::realtime::router());
    let router = router.merge(http::console::assets());
    #[cfg(feature = "realtime")]
    let undocumented = http::realtime::PATHS.iter().copied();
    #[cfg(not(feature = "realtime"))]
    let undocumented = std::iter::empty();
    let undocumented = undocumented.chain([http::console::ASSET_PATH]);
    state.metrics.prepare(
        operations
            .iter()
            .map(|operation| operation.path)
            .chain([openapi::DOCUMENT_PATH])
            .chain(undocumented),
    );
    router
        .route(
            openapi::DOCUMENT_PATH,
            get(move |headers: axum::http::HeaderMap| {
                let document = document.clone();
                async move { document.answer(&headers) }
            }),
        )
        .fallback(|| async { ApiError::NoSuchRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            state.memory.clone(),
            admission::admit,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), check_token))
        .layer(middleware::from_fn_with_state(
            Arc::new(limits.trusted_proxies.clone()),
            client_addr::remember,
        ))
        .layer(middleware::from_fn_with_state(
            admission::RequestSlots::new(limits.max_concurrent_requests),
            admission::limit_concurrency,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(
            limits.cors_allowed_origins.clone(),
            cors::cors,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Seconds between two rounds of housekeeping.
const HOUSEKEEPING_SECS: u64 = 5;
/// Expired tokens are deleted every this many rounds (10 minutes): they
/// already stop working at their expiry; this only keeps the table small.
const EXPIRED_TOKENS_EVERY_TICKS: u64 = 120;

/// Starts the server's periodic housekeeping, every few seconds: expired
/// read-cache entries, login-throttle and per-address entries are dropped, expired tokens
/// deleted (every 10 minutes), and (realtime) channel histories expire
/// and idle channels are freed. Nothing a burst left behind stays resident
/// until the next request happens to touch it.
pub fn start_background_tasks(state: &AppState) {
    let cache = state.caches.reads.clone();
    let login_throttle = state.auth.login_throttle.clone();
    let address_throttles = state.auth.address_throttles.clone();
    let generation_quota = state.tools.generation_quota.clone();
    let tokens = state.auth.tokens.clone();
    let likes = state.caches.likes.clone();
    let store = state.store.clone();
    let token_ttl_days = state.limits.token_ttl_days;
    #[cfg(feature = "realtime")]
    let realtime = state.realtime.clone();
    tokio::spawn(write_reads(
        state.store.clone(),
        state.caches.clone(),
        Duration::from_millis(state.limits.reads_write_ms.max(10)),
    ));
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(HOUSEKEEPING_SECS));
        let mut ticks: u64 = 0;
        loop {
            every.tick().await;
            cache.purge_expired();
            login_throttle.purge_expired();
            address_throttles.purge_expired();
            generation_quota.purge_expired();
            tokens.purge_expired();
            likes.purge_expired();
            if ticks.is_multiple_of(EXPIRED_TOKENS_EVERY_TICKS) {
                let cutoff = auth::tokens_issued_after(token_ttl_days);
                if let Err(error) = store.delete_tokens_issued_before(cutoff).await {
                    tracing::warn!(%error, "could not delete expired tokens");
                }
            }
            ticks += 1;
            #[cfg(feature = "realtime")]
            realtime.sweep();
        }
    });
}

/// Writes the reads counted in memory every `READS_WRITE_MS` (see
/// `read_counter`).
async fn write_reads(store: storybook_store::Store, caches: state::Caches, period: Duration) {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = caches.read_counter.flush(&store, &caches.reads).await {
            tracing::warn!(%error, "pending reads not written; trying again");
        }
    }
}

/// A bad token is `401` on every `/api` route, public ones included; a good
/// one is looked up once here and handed to the extractors.
async fn check_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api")
        || !request.headers().contains_key(header::AUTHORIZATION)
    {
        return next.run(request).await;
    }
    // The extractor does the work (and keeps the user for the handler's
    // own extractor); here only its refusal matters.
    let (mut parts, body) = request.into_parts();
    match extract::MaybeUser::from_request_parts(&mut parts, &state).await {
        Ok(_) => next.run(Request::from_parts(parts, body)).await,
        Err(error) => error.into_response(),
    }
}

/// Answers `503 timeout` when a request takes longer than the limit.
async fn time_limit(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let limit = Duration::from_secs(state.limits.request_timeout_secs.max(1));
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable {
            code: "timeout",
            message: "the request took too long".into(),
        }
        .into_response(),
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish
/// for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let stopping = Arc::new(tokio::sync::Notify::new());
    let stopping_signal = stopping.clone();
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        stopping_signal.notify_one();
    });
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server.into_future() => result,
        () = deadline => {
            tracing::warn!(?grace, "in-flight requests did not finish in time; exiting");
            Ok(())
        }
    }
}
