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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// Threads that may wait on parking_lot at once (Tokio's workers, the
/// threads rendering drawings and hashing passwords, sqlx's) that its table
/// is sized for at start-up.
const THREADS_PARKING_AT_ONCE: usize = 11;

/// Grows parking_lot's global table now rather than later. It grows (and
/// keeps the old one) when more threads than ever before have waited on a
/// lock, for instance the first time a drawing renders while the workers
/// are busy: the new table would then be a live block above whatever that
/// moment allocated. Short-lived threads that each wait once, all alive at
/// the same time, grow it to its final size here, at the bottom of the heap.
pub fn presize_parking_lot() {
    // Every thread stays until all that started have registered.
    let gate = Gate::default();
    std::thread::scope(|scope| {
        let mut started = 0;
        for _ in 0..THREADS_PARKING_AT_ONCE {
            let gate = &gate;
            let spawned = std::thread::Builder::new()
                .stack_size(16 * 1024)
                .spawn_scoped(scope, move || {
                    warm_up_this_thread();
                    gate.update(|count| count.registered += 1);
                    gate.wait_until(|count| count.released);
                });
            // A thread that cannot start leaves the table to grow later.
            started += usize::from(spawned.is_ok());
        }
        gate.wait_until(|count| count.registered >= started);
        gate.update(|count| count.released = true);
    });
}

#[derive(Default)]
struct Count {
    registered: usize,
    released: bool,
}

/// A count threads change and wait on.
#[derive(Default)]
struct Gate {
    count: Mutex<Count>,
    changed: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Count> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Count)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }

    fn wait_until(&self, done: impl Fn(&Count) -> bool) {
        let mut count = self.lock();
        while !done(&count) {
            count = self.changed.wait(count).unwrap_or_else(|e| e.into_inner());
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

/// CPU time the calling thread may spend, counted in the thread's own CPU
/// time (`/proc/thread-self/schedstat`), so that work sharing the CPU (two
/// renders at once, or a 0.1 CPU plan) is not cut short for time it spent
/// waiting. Where that file cannot be read, wall time counts instead.
pub struct CpuBudget {
    budget: Duration,
    started_cpu: Option<Duration>,
    started: Instant,
    /// The clock file is read at most every [`CpuBudget::CHECK_EVERY`].
    next_check: Instant,
    spent: bool,
}

impl CpuBudget {
    const CHECK_EVERY: Duration = Duration::from_millis(5);

    pub fn start(budget: Duration) -> Self {
        let started = Instant::now();
        Self {
            budget,
            started_cpu: thread_cpu_time(),
            started,
            next_check: started,
            spent: false,
        }
    }

    /// Whether the budget is used up; cheap enough to ask often.
    pub fn spent(&mut self) -> bool {
        if self.spent {
            return true;
        }
        let now = Instant::now();
        if now < self.next_check {
            return false;
        }
        self.next_check = now + Self::CHECK_EVERY;
        let used = match (self.started_cpu, thread_cpu_time()) {
            (Some(started), Some(now_cpu)) => now_cpu.saturating_sub(started),
            _ => now - self.started,
        };
        self.spent = used >= self.budget;
        self.spent
    }
}

/// The calling thread's CPU time: the first field of its schedstat, in
/// nanoseconds.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_budget_counts_work_not_sleep() {
        let mut budget = CpuBudget::start(Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!budget.spent(), "sleeping uses no CPU");
        let busy_until = Instant::now() + Duration::from_millis(200);
        let mut spins = 0u64;
        while !budget.spent() {
            spins = spins.wrapping_add(1);
            assert!(Instant::now() < busy_until, "never spent");
        }
        assert!(spins > 0);
    }
}
