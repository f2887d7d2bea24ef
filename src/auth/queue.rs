//! The password-hashing queue, admitting by expected wait: every check or
//! hash is estimated (Argon2id by the average of the last ones, PBKDF2 by
//! its rounds times the average cost of a round), and a request whose turn
//! would come later than half the request time-out is answered `503 busy`
//! with `Retry-After` at once, instead of waiting and timing out. A class
//! signing in for the first time after moving in (a million PBKDF2 rounds
//! each) gets quick answers that say when to come back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::error::ApiError;
use crate::slots::{Slot, Slots};

/// What a turn will do, for its estimate.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    Argon2,
    Pbkdf2 { rounds: u32 },
}

/// The running averages and the work admitted but not done.
struct Estimates {
    /// Microseconds of an Argon2id hash or check.
    argon2_us: AtomicU64,
    /// Picoseconds of one PBKDF2 round.
    pbkdf2_round_ps: AtomicU64,
    /// Microseconds of work admitted and not yet done.
    queued_us: AtomicU64,
}

/// Each new measurement weighs this fraction (1/8) of the average.
const NEW_SAMPLE_SHIFT: u32 = 3;

impl Estimates {
    fn of(&self, work: Work) -> u64 {
        match work {
            Work::Argon2 => self.argon2_us.load(Ordering::Relaxed),
            Work::Pbkdf2 { rounds } => {
                u64::from(rounds).saturating_mul(self.pbkdf2_round_ps.load(Ordering::Relaxed))
                    / 1_000_000
            }
        }
    }

    fn learn(&self, work: Work, took: Duration) {
        let (average, sample) = match work {
            Work::Argon2 => (&self.argon2_us, took.as_micros() as u64),
            Work::Pbkdf2 { rounds } => (
                &self.pbkdf2_round_ps,
                (took.as_nanos() as u64).saturating_mul(1000) / u64::from(rounds.max(1)),
            ),
        };
        let old = average.load(Ordering::Relaxed);
        let new = old - (old >> NEW_SAMPLE_SHIFT) + (sample >> NEW_SAMPLE_SHIFT);
        average.store(new.max(1), Ordering::Relaxed);
    }
}

pub struct HashQueue {
    slots: Slots,
    concurrency: u64,
    max_wait_us: u64,
    estimates: Arc<Estimates>,
}

/// An admitted request's turn: its slot, and its share of the queued work
/// (given back when the turn ends, however it ends).
pub struct Turn {
    _slot: Slot,
    work: Work,
    estimate_us: u64,
    estimates: Arc<Estimates>,
    started: Instant,
}

impl Turn {
    /// The work is done: its time teaches the estimates.
    pub fn finish(self) {
        self.estimates.learn(self.work, self.started.elapsed());
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.estimates
            .queued_us
            .fetch_sub(self.estimate_us, Ordering::AcqRel);
    }
}

impl HashQueue {
    pub fn new(limits: &Limits) -> Self {
        Self {
            slots: Slots::new(
                "password checks",
                limits.password_hash_concurrency,
                limits.password_hash_queue,
            ),
            concurrency: limits.password_hash_concurrency.max(1) as u64,
            max_wait_us: limits.request_timeout_secs.max(1) * 1_000_000 / 2,
            estimates: Arc::new(Estimates {
                // Starting guesses, about this machine's release build;
                // the first few turns correct them.
                argon2_us: AtomicU64::new(50_000),
                pbkdf2_round_ps: AtomicU64::new(260_000),
                queued_us: AtomicU64::new(0),
            }),
        }
    }

    /// A turn for `work`: `busy` at once if the work already admitted
    /// would keep it waiting past half the request time-out, or if the
    /// waiting room is full; else it waits for its slot.
    pub async fn enter(&self, work: Work) -> Result<Turn, ApiError> {
        let estimate_us = self.estimates.of(work);
        let ahead_us = self
            .estimates
            .queued_us
            .fetch_add(estimate_us, Ordering::AcqRel);
        let turn_share = ahead_us / self.concurrency;
        if turn_share > self.max_wait_us {
            self.estimates
                .queued_us
                .fetch_sub(estimate_us, Ordering::AcqRel);
            return Err(ApiError::Busy {
                what: "password checks",
                retry_after_secs: turn_share.div_ceil(1_000_000).max(1),
            });
        }
        let pending = Pending {
            estimates: &self.estimates,
            estimate_us,
        };
        let slot = self.slots.acquire().await?;
        std::mem::forget(pending);
        Ok(Turn {
            _slot: slot,
            work,
            estimate_us,
            estimates: self.estimates.clone(),
            started: Instant::now(),
        })
    }

    /// Microseconds of work admitted and not yet done (for tests).
    pub fn queued_us(&self) -> u64 {
        self.estimates.queued_us.load(Ordering::Acquire)
    }
}

/// While a request waits for its slot: its estimate is given back if it
/// leaves (refused, or the client went away).
struct Pending<'a> {
    estimates: &'a Estimates,
    estimate_us: u64,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.estimates
            .queued_us
            .fetch_sub(self.estimate_us, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(timeout_secs: u64) -> HashQueue {
        HashQueue::new(&Limits {
            request_timeout_secs: timeout_secs,
            password_hash_concurrency: 1,
            password_hash_queue: 32,
            ..Limits::default()
        })
    }

    /// Turns are refused by expected wait, long before the waiting room is
    /// full, and what leaves gives its estimate back.
    #[tokio::test]
    async fn a_turn_that_would_wait_past_half_the_time_out_is_busy_at_once() {
        // 2 s time-out: at most 1 s of work ahead. A million PBKDF2 rounds
        // is guessed at 0.26 s.
        let queue = std::sync::Arc::new(queue(2));
        let million = Work::Pbkdf2 { rounds: 1_000_000 };
        let running = queue.enter(million).await.unwrap();
        assert_eq!(queue.queued_us(), 260_000);
        // Three more wait with at most 1 s of work ahead of them (0.26,
        // 0.52, 0.78 s); the next would wait 1.04 s.
        let mut admitted = Vec::new();
        for _ in 0..3 {
            let queue = queue.clone();
            admitted.push(tokio::spawn(
                async move { queue.enter(million).await.map(drop) },
            ));
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        let Err(ApiError::Busy {
            retry_after_secs, ..
        }) = queue.enter(million).await
        else {
            panic!("expected busy");
        };
        assert_eq!(retry_after_secs, 2);
        drop(running);
        for task in admitted {
            task.await.unwrap().unwrap();
        }
        assert_eq!(queue.queued_us(), 0, "every estimate given back");
    }

    #[test]
    fn estimates_learn_from_what_turns_took() {
        let estimates = Estimates {
            argon2_us: AtomicU64::new(80_000),
            pbkdf2_round_ps: AtomicU64::new(260_000),
            queued_us: AtomicU64::new(0),
        };
        for _ in 0..64 {
            estimates.learn(Work::Argon2, Duration::from_millis(40));
            estimates.learn(Work::Pbkdf2 { rounds: 1_000 }, Duration::from_micros(100));
        }
        assert!((39_000..=41_000).contains(&estimates.of(Work::Argon2)));
        assert!((99_000..=101_000).contains(&estimates.of(Work::Pbkdf2 { rounds: 1_000_000 })));
    }
}
