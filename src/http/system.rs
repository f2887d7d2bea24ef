//! Contract section "System": health, readiness, features, metrics.
//! (`/api/openapi.json` is added in `app()`, once every route is known.)

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use storybook_store::Store;

use super::{ApiRouter, Doc};
use crate::error::ApiError;
use crate::events::Events;
use crate::extract::bearer_token;
use crate::metrics::{counter, gauge};
use crate::process::rss_bytes;
use crate::state::{AppState, Tools};

pub fn router() -> ApiRouter {
    ApiRouter::new("system")
        .get(
            "/healthz",
            healthz,
            Doc::new("Liveness: 200 while the process is up").returns(200, Some("Health")),
        )
        .get(
            "/readyz",
            readyz,
            Doc::new("Readiness: 200 when the database (and Redis, when set) answer, else 503")
                .returns(200, Some("Health"))
                .errors(&[503]),
        )
        .get(
            "/api/features",
            features,
            Doc::new("What this build and configuration offer").returns(200, Some("Features")),
        )
        .get(
            "/metrics",
            metrics,
            Doc::new("Prometheus metrics (needs METRICS_TOKEN as bearer when set)")
                .answers_media("text/plain")
                .returns(200, None)
                .errors(&[401]),
        )
}

/// System: `GET /healthz`.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// System: `GET /readyz`.
async fn readyz(
    State(store): State<Store>,
    State(events): State<Arc<dyn Events>>,
) -> Result<Json<Value>, ApiError> {
    if !store.ping().await {
        return Err(ApiError::Unavailable {
            code: "unavailable",
            message: "the database is not answering".into(),
        });
    }
    // With Redis, this process alone still serves its own sockets, but
    // other processes' users are out of reach: not ready.
    if !events.is_healthy() {
        return Err(ApiError::Unavailable {
            code: "unavailable",
            message: "Redis is not answering; realtime is limited to this process".into(),
        });
    }
    Ok(Json(json!({ "status": "ok" })))
}

/// System: `GET /api/features`.
async fn features(
    State(store): State<Store>,
    State(tools): State<Tools>,
    State(events): State<Arc<dyn Events>>,
) -> Json<Value> {
    let realtime = events.broker_name().is_some();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "realtime": realtime,
        "ocr": tools.ocr.available(),
        "generator": tools.generator.name(),
        "database": store.backend().name(),
        "broker": events.broker_name(),
    }))
}

/// System: `GET /metrics`, Prometheus text.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = &state.metrics_token {
        let sent = bearer_token(&headers).ok().flatten();
        if !sent.is_some_and(|sent| expected.matches(sent)) {
            return Err(ApiError::Unauthorized);
        }
    }
    let mut out = String::with_capacity(8 * 1024);
    state.metrics.render(&mut out);
    gauge(
        &mut out,
        "process_resident_memory_bytes",
        "Resident set size.",
        rss_bytes(),
    );
    gauge(
        &mut out,
        "process_uptime_seconds",
        "Seconds since the server started.",
        state.started_at.elapsed().as_secs(),
    );
    let (size, idle) = state.store.pool_stats();
    gauge(
        &mut out,
        "db_pool_connections",
        "Open database connections.",
        size,
    );
    gauge(
        &mut out,
        "db_pool_idle_connections",
        "Idle database connections.",
        idle,
    );
    let (images, image_bytes) = state.caches.images.stats();
    gauge(
        &mut out,
        "render_cache_images",
        "Rendered PNGs kept by ETag.",
        images,
    );
    gauge(
        &mut out,
        "render_cache_bytes",
        "Bytes of rendered PNGs kept.",
        image_bytes,
    );
    let (entries, bytes, hits, misses) = state.caches.reads.stats();
    gauge(
        &mut out,
        "cache_entries",
        "Entries in the read cache.",
        entries,
    );
    gauge(
        &mut out,
        "cache_bytes",
        "Estimated bytes in the read cache.",
        bytes,
    );
    counter(
        &mut out,
        "cache_hits_total",
        "Reads served from the cache.",
        hits,
    );
    counter(
        &mut out,
        "cache_misses_total",
        "Reads the cache could not serve.",
        misses,
    );
    state.events.write_metrics(&mut out);
    gauge(
        &mut out,
        "login_throttle_tracked_accounts",
        "Accounts with recent failed logins remembered.",
        state.auth.login_throttle.tracked(),
    );
    counter(
        &mut out,
        "streams_cut_total",
        "Streamed answers dropped because the client stopped reading.",
        state
            .metrics
            .streams_cut
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "auth_throttle_tracked_addresses",
        "Client addresses with recent registrations or logins remembered.",
        state.auth.address_throttles.tracked(),
    );
    gauge(
        &mut out,
        "request_memory_reserved_bytes",
        "Memory reserved by the requests in flight for their bodies.",
        state.memory.in_use_bytes(),
    );
    for (name, slots) in [
        ("renders", &state.tools.renders),
        ("searches", &state.tools.searches),
    ] {
        gauge(
            &mut out,
            &format!("{name}_admitted"),
            "Requests running or waiting for a slot.",
            slots.admitted(),
        );
    }
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
