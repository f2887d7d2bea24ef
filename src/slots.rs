//! Bounded admission for costly work (password hashes, renders, searches):
//! a number of slots that run at once and a bounded number of requests
//! that may wait for one. A request that finds the waiting room full is
//! answered `503 busy` at once, instead of queueing without limit or
//! waiting out the request time-out. A slot is held by a guard, so it is
//! given back however the request ends; an owned guard can be moved into
//! a blocking task, so the slot stays taken until the work has stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Seconds a `503 busy` asks the client to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Slots for one kind of work.
pub struct Slots {
    /// What the work is, for the `busy` message.
    what: &'static str,
    running: Arc<Semaphore>,
    /// Requests running or waiting; at most `running + waiting` are admitted.
    admitted: Arc<AtomicUsize>,
    max_admitted: usize,
}

/// One admitted request: its slot (once it has one) and its place.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _admission: Admission,
}

/// A place among the admitted; given back on drop.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    /// `running` at once (at least one) and up to `waiting` more queued.
    pub fn new(what: &'static str, running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        Self {
            what,
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(AtomicUsize::new(0)),
            max_admitted: running + waiting,
        }
    }

    /// Waits for a slot, or answers `busy` at once when the waiting room is
    /// full. Dropping the future (the client went away) leaves the queue.
    pub async fn acquire(&self) -> Result<Slot, ApiError> {
        let admitted = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(self.admitted.clone());
        if admitted >= self.max_admitted {
            return Err(ApiError::Busy {
                what: self.what,
                retry_after_secs: BUSY_RETRY_AFTER_SECS,
            });
        }
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        Ok(Slot {
            _permit: permit,
            _admission: admission,
        })
    }

    /// Requests running or waiting now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_waiting_room_is_busy_at_once_and_slots_come_back() {
        let slots = Arc::new(Slots::new("renders", 1, 1));
        let running = slots.acquire().await.unwrap();
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await.map(drop).is_ok() }
        });
        while slots.admitted() < 2 {
            tokio::task::yield_now().await;
        }
        // One runs and one waits: a third is refused without waiting.
        let Err(ApiError::Busy { .. }) = slots.acquire().await else {
            panic!("expected busy");
        };
        drop(running);
        assert!(waiter.await.unwrap(), "the waiter got the slot");
        assert_eq!(slots.admitted(), 0, "every place given back");
    }

    #[tokio::test]
    async fn an_abandoned_wait_gives_its_place_back() {
        let slots = Slots::new("searches", 1, 1);
        let _running = slots.acquire().await.unwrap();
        let waiting = slots.acquire();
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(10), waiting).await;
        assert!(timed_out.is_err());
        assert_eq!(slots.admitted(), 1);
    }
}
