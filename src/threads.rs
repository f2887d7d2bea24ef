//! Per-thread state made when a thread starts, not in the middle of a
//! crowd.
//!
//! Some libraries set up state for a thread the first time that thread
//! needs it, and keep it for the thread's life: parking_lot (under
//! dashmap's locks) registers the thread and grows a global table the first
//! time a thread waits on a contended lock, which on an idle server first
//! happens during a burst of connections. Those few blocks then sit among
//! the burst's memory, and glibc can return nothing above the highest live
//! block: measured, two 48-byte blocks and one 1 KiB table kept 40-80 MB
//! resident after 10,000 sockets had closed. Doing that set-up as each
//! worker starts puts it at the bottom of the heap, where it pins nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Tokio's worker count: `TOKIO_WORKER_THREADS` if set (as Tokio reads
/// it), else one per core.
pub fn worker_count() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// A thread-start hook that warms the first `workers` threads Tokio
/// starts (its workers, started when the runtime is built) and the thread
/// that builds the runtime. Blocking-pool threads come and go and take
/// their state with them, so they are left alone.
pub fn warm_up_first(workers: usize) -> impl Fn() + Send + Sync + 'static {
    warm_up_this_thread();
    let remaining = Arc::new(AtomicUsize::new(workers));
    move || {
        let is_worker = remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if is_worker {
            warm_up_this_thread();
        }
    }
}

/// Registers this thread with parking_lot: a wait that times out at once
/// goes through the same set-up as a real one.
fn warm_up_this_thread() {
    let lock = parking_lot::Mutex::new(());
    let never_notified = parking_lot::Condvar::new();
    let mut guard = lock.lock();
    let _ = never_notified.wait_for(&mut guard, Duration::ZERO);
}
