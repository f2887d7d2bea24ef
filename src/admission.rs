//! Memory admission: the memory a request's body grows into is reserved
//! from one process-wide budget (`REQUEST_MEMORY_BUDGET`) before it is
//! allocated, and given back when its answer is ready, however the request
//! ends. A request that does not fit is answered `503 busy` at once instead
//! of allocating: a crowd of large bodies costs at most the budget, not
//! their number times their size.
//!
//! The weight is a property of the parser, not of the headers. The
//! middleware only meters the body as its bytes arrive
//! ([`RECEIVE_EXPANSION`] a byte: the chunks, then their copy into one
//! buffer), so a slow upload holds what it has sent, never what it
//! declared. The extractor that parses a body charges what its parser may
//! build before it starts ([`Admitted::charge`]), and the parser is given
//! that same number as its limit (`extract::JsonBody`), so the two cannot
//! disagree.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Bytes of memory a body takes while it arrives, per byte of it: the
/// chunks as they came, then their copy into one contiguous buffer (or, for
/// an upload, the growing vector of its file).
pub const RECEIVE_EXPANSION: usize = 2;
/// A request whose weight stays below this takes no reservation: its cost
/// is covered by the concurrency limit.
pub const FREE_WEIGHT_BYTES: usize = 64 * 1024;
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

    /// Reserves `bytes` now, or `busy` if they are not free.
    pub fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        self.reserve_kib(bytes.div_ceil(UNIT))
    }

    fn reserve_kib(&self, kib: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let kib = u32::try_from(kib.max(1)).unwrap_or(u32::MAX);
        self.kib
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| busy())
    }

    /// Bytes reserved now (for `/metrics`).
    pub fn in_use_bytes(&self) -> usize {
        (self.total_kib - self.kib.available_permits()) * UNIT
    }
}

fn busy() -> ApiError {
    ApiError::Busy {
        what: "requests",
        retry_after_secs: 1,
    }
}

/// One request's share of the budget, in its extensions: grown by the
/// metered body as bytes arrive and by the extractor before it parses,
/// given back when the last holder (the middleware, the body, the
/// request) lets go of it.
pub struct Admitted {
    budget: Arc<MemoryBudget>,
    /// Everything this request has been weighed at, the free part included.
    weighed: AtomicUsize,
    /// The permits for the part past [`FREE_WEIGHT_BYTES`], merged.
    held: Mutex<Option<OwnedSemaphorePermit>>,
    /// Whether a charge was refused (the body reader then says `busy`).
    refused: AtomicBool,
}

impl Admitted {
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Self {
            budget,
            weighed: AtomicUsize::new(0),
            held: Mutex::new(None),
            refused: AtomicBool::new(false),
        }
    }

    /// The share of the request that carries `request`, if the admission
    /// layer put one there (every route of `app()` has one).
    pub fn of(request: &Request) -> Result<Arc<Self>, ApiError> {
        request
            .extensions()
            .get::<Arc<Self>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a body was read outside the admission layer"))
    }

    /// Adds `bytes` to the request's weight, reserving what passes the
    /// free allowance; `busy` when the budget cannot give it.
    pub fn charge(&self, bytes: usize) -> Result<(), ApiError> {
        let before = self.weighed.fetch_add(bytes, Ordering::Relaxed);
        let after = before.saturating_add(bytes);
        let kib = |weight: usize| weight.saturating_sub(FREE_WEIGHT_BYTES).div_ceil(UNIT);
        let more = kib(after) - kib(before);
        if more == 0 {
            return Ok(());
        }
        match self.budget.reserve_kib(more) {
            Ok(permit) => {
                let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                match held.as_mut() {
                    Some(all) => all.merge(permit),
                    None => *held = Some(permit),
                }
                Ok(())
            }
            Err(busy) => {
                self.refused.store(true, Ordering::Relaxed);
                Err(busy)
            }
        }
    }

    /// Everything the request has been weighed at so far.
    pub fn weight(&self) -> usize {
        self.weighed.load(Ordering::Relaxed)
    }

    /// `busy` if a charge was refused: what a failed body read means then.
    pub fn refusal(&self) -> Option<ApiError> {
        self.refused.load(Ordering::Relaxed).then(busy)
    }
}

/// A request body that charges its request's share for each chunk before
/// handing it on; past the budget it ends in an error (and the reader asks
/// [`Admitted::refusal`] what to answer).
struct Metered {
    inner: Body,
    admitted: Arc<Admitted>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request memory budget is full")]
struct BudgetFull;

impl HttpBody for Metered {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
            && let Some(data) = data
            && this
                .admitted
                .charge(data.len().saturating_mul(RECEIVE_EXPANSION))
                .is_err()
        {
            return Poll::Ready(Some(Err(axum::Error::new(BudgetFull))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The middleware: give the request its share, meter its body, run it,
/// give the share back when the answer is ready (or the request is
/// dropped).
pub async fn admit(
    State(budget): State<Arc<MemoryBudget>>,
    request: Request,
    next: Next,
) -> Response {
    let admitted = Arc::new(Admitted::new(budget));
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(admitted.clone());
    let body = Body::new(Metered {
        inner: body,
        admitted: admitted.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    drop(admitted);
    response
}

/// The requests handled at once (`MAX_CONCURRENT_REQUESTS`). A request
/// past the limit is answered `503 busy` with `Retry-After` at once: a
/// queue here would make every client wait behind the slowest (six slow
/// uploads held `/healthz` for ten seconds). The probes are never counted
/// nor refused, so a full server still says it is alive.
#[derive(Clone)]
pub struct RequestSlots(Arc<Semaphore>);

/// Paths outside the limit: the probes a host or balancer polls.
const PROBES: &[&str] = &["/healthz", "/readyz"];

impl RequestSlots {
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(Semaphore::new(slots.max(1))))
    }
}

/// The middleware: a slot for the request's whole life, or `busy` now.
pub async fn limit_concurrency(
    State(slots): State<RequestSlots>,
    request: Request,
    next: Next,
) -> Response {
    if PROBES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match slots.0.clone().try_acquire_owned() {
        Ok(_slot) => next.run(request).await,
        Err(_) => ApiError::Busy {
            what: "requests",
            retry_after_secs: 1,
        }
        .into_response(),
    }
}

/// A refusal of the body's reader as the contract's error: `busy` when the
/// budget refused, else what the reader said.
pub fn read_error(admitted: &Admitted, otherwise: ApiError) -> ApiError {
    admitted.refusal().unwrap_or(otherwise)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    /// A share is charged in steps, free up to the allowance, and given
    /// back whole when dropped; a refused charge is remembered.
    #[test]
    fn a_share_grows_as_charged_and_is_given_back_whole() {
        let budget = Arc::new(MemoryBudget::new(1024 * 1024));
        let share = Admitted::new(budget.clone());
        share.charge(FREE_WEIGHT_BYTES).unwrap();
        assert_eq!(budget.in_use_bytes(), 0, "the allowance is free");
        for _ in 0..100 {
            share.charge(1000).unwrap();
        }
        assert_eq!(budget.in_use_bytes(), 98 * 1024, "100,000 bytes in KiB");
        assert_eq!(share.weight(), FREE_WEIGHT_BYTES + 100_000);
        assert!(share.refusal().is_none());
        assert!(matches!(share.charge(1 << 20), Err(ApiError::Busy { .. })));
        assert!(share.refusal().is_some());
        drop(share);
        assert_eq!(budget.in_use_bytes(), 0);
    }
}
