//! Memory admission: before a request's body is read, the memory it may
//! grow into is reserved from one process-wide budget
//! (`REQUEST_MEMORY_BUDGET`), and given back when its answer is ready,
//! however the request ends. A request that does not fit is answered
//! `503 busy` at once instead of allocating: a crowd of large bodies costs
//! at most the budget, not their number times their size.
//!
//! What a body may grow into depends on how it is read. A JSON body is
//! parsed into a tree of values before the handlers check it, and a tree
//! takes up to about 48 times the bytes of its text (measured: a 1 MiB
//! `[[0,0],…]` stroke list became a tree of about 47 MiB). The drawing
//! routes read their strokes as drafts instead (points straight into
//! number pairs: at most 16 bytes a point of at least 5 bytes of text, then
//! 8 bytes a point checked), about 4 times the text. Other bodies (the
//! photo upload) are read as bytes and copied once.

use std::sync::Arc;

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::SizeHint;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Bytes of memory a JSON body's parsed tree may take per byte of text.
pub const JSON_EXPANSION: usize = 48;
/// The same for the drawing routes, which read strokes as drafts.
pub const STROKES_EXPANSION: usize = 4;
/// The same for other bodies (read whole, then copied once).
const RAW_EXPANSION: usize = 2;
/// The routes whose JSON bodies are read as stroke drafts.
const STROKE_ROUTES: &[&str] = &["/api/drawings", "/api/drawings/{id}/strokes"];
/// Requests whose weight is below this are let through without a
/// reservation: their cost is covered by the concurrency limit.
const FREE_WEIGHT_BYTES: usize = 64 * 1024;
/// The budget is kept in KiB so that it fits a semaphore's permits.
const UNIT: usize = 1024;

/// The process-wide budget for in-flight request memory.
pub struct MemoryBudget {
    kib: Arc<Semaphore>,
    total_kib: usize,
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> Self {
        let total_kib = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Self {
            kib: Arc::new(Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// Reserves `bytes` now, or `busy` if they are not free. A request
    /// heavier than the whole budget is weighed as the whole budget, so it
    /// runs when nothing else is in flight.
    pub fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let kib = bytes.div_ceil(UNIT).clamp(1, self.total_kib) as u32;
        self.kib
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| ApiError::Busy {
                what: "requests",
                retry_after_secs: 1,
            })
    }

    /// Bytes reserved now (for `/metrics`).
    pub fn in_use_bytes(&self) -> usize {
        (self.total_kib - self.kib.available_permits()) * UNIT
    }
}

/// What a request's body may grow into: its length (exact when declared,
/// else the most it may be) times the expansion of the way it is read
/// (`route`: the matched route's template).
pub fn weight(headers: &HeaderMap, route: &str, body: &SizeHint, largest_body: usize) -> usize {
    let length = body
        .exact()
        .or(body.upper())
        .map_or(largest_body, |n| usize::try_from(n).unwrap_or(usize::MAX))
        .min(largest_body);
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let expansion = match (is_json, STROKE_ROUTES.contains(&route)) {
        (true, true) => STROKES_EXPANSION,
        (true, false) => JSON_EXPANSION,
        (false, _) => RAW_EXPANSION,
    };
    length.saturating_mul(expansion)
}

/// What the middleware needs: the budget, and the largest body any route
/// takes (the photo upload has a limit of its own above the JSON one).
#[derive(Clone)]
pub struct Admission {
    pub memory: Arc<MemoryBudget>,
    pub largest_body: usize,
}

/// The middleware: reserve, run, give back.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let largest_body = admission.largest_body;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or_default();
    let weight = weight(
        request.headers(),
        route,
        &request.body().size_hint(),
        largest_body,
    );
    if weight < FREE_WEIGHT_BYTES {
        return next.run(request).await;
    }
    match admission.memory.reserve(weight) {
        Ok(_reservation) => next.run(request).await,
        Err(busy) => busy.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn json_weighs_its_tree_and_unknown_lengths_their_limit() {
        let json = headers(&[("content-type", "application/json")]);
        let limit = 1 << 20;
        assert_eq!(
            weight(&json, "/api/me", &SizeHint::with_exact(1000), limit),
            48_000
        );
        let strokes = "/api/drawings/{id}/strokes";
        assert_eq!(
            weight(&json, strokes, &SizeHint::with_exact(1000), limit),
            4_000
        );
        let photo = headers(&[("content-type", "multipart/form-data; boundary=x")]);
        assert_eq!(
            weight(
                &photo,
                "/api/stories/from-photo",
                &SizeHint::with_exact(1000),
                limit
            ),
            2_000
        );
        // Chunked: no length known, weighed at the limit.
        assert_eq!(weight(&json, "/api/me", &SizeHint::new(), limit), 48 << 20);
        assert_eq!(
            weight(&json, "/api/me", &SizeHint::with_exact(1 << 40), limit),
            48 << 20
        );
        assert_eq!(
            weight(
                &HeaderMap::new(),
                "/healthz",
                &SizeHint::with_exact(0),
                limit
            ),
            0
        );
    }

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_takes_back_what_ends() {
        let budget = MemoryBudget::new(100 * 1024);
        let first = budget.reserve(60 * 1024).unwrap();
        assert!(matches!(
            budget.reserve(60 * 1024),
            Err(ApiError::Busy { .. })
        ));
        assert_eq!(budget.in_use_bytes(), 60 * 1024);
        drop(first);
        assert!(budget.reserve(60 * 1024).is_ok());
        // Heavier than everything: weighed as everything.
        assert!(budget.reserve(1 << 30).is_ok());
    }
}
