//! Failed sign-ins per client address (contract v1.6): a school signs in
//! from one address, hundreds of children at once, so successes must cost
//! nothing; only failures count.
//!
//! Each address has a level that a failure raises by one and that drains
//! at the quota's rate (`AUTH_ATTEMPTS_PER_MINUTE` a minute). An attempt is
//! let in while one more failure would fit in the quota. governor's limiters cannot be
//! asked without taking from them, so this is its own small leaky bucket.
//! Nothing is held while the password is checked: attempts that race past
//! the check all count when they fail, pushing the level over the quota,
//! and the address then waits for all of them to drain. A burst can pass
//! the quota by the attempts in flight (bounded by the password queue), but
//! over time no address gets more than the quota's rate of guesses.

use std::hash::Hash;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

use crate::error::ApiError;

/// An address's failures, drained since `at`.
#[derive(Debug, Clone, Copy)]
struct Level {
    failures: f64,
    at: Instant,
}

pub struct FailureCount<K: Hash + Eq> {
    levels: DashMap<K, Level>,
    per_minute: f64,
    max_tracked: usize,
}

impl<K: Hash + Eq + Clone> FailureCount<K> {
    pub fn new(per_minute: u32, max_tracked: usize) -> Self {
        Self {
            levels: DashMap::new(),
            per_minute: f64::from(per_minute.max(1)),
            max_tracked: max_tracked.max(1),
        }
    }

    /// The level now, after draining.
    fn drained(&self, level: Level, now: Instant) -> f64 {
        let minutes = now.duration_since(level.at).as_secs_f64() / 60.0;
        (level.failures - minutes * self.per_minute).max(0.0)
    }

    /// Whether `key` may try now; `RateLimited` with the wait until its
    /// level is back under the quota. Takes nothing. While the table is
    /// full of addresses still draining, an address not in it is told to
    /// wait, as its failures could not be counted.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        let now = Instant::now();
        let Some(level) = self.levels.get(key).map(|l| *l) else {
            if self.levels.len() >= self.max_tracked {
                self.drop_drained();
                if self.levels.len() >= self.max_tracked {
                    return Err(ApiError::RateLimited {
                        retry_after_secs: (60.0 / self.per_minute).ceil().max(1.0) as u64,
                    });
                }
            }
            return Ok(());
        };
        let failures = self.drained(level, now);
        // Room for one more failure within the quota.
        if failures + 1.0 <= self.per_minute {
            return Ok(());
        }
        let wait_minutes = (failures - self.per_minute + 1.0) / self.per_minute;
        let wait = Duration::from_secs_f64(wait_minutes * 60.0);
        Err(ApiError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Counts a failure of `key`. When the table is full of addresses with
    /// failures still draining, a new one is not remembered: the table does
    /// not grow, and each address already in it keeps its own count.
    pub fn failed(&self, key: &K) {
        let now = Instant::now();
        if !self.levels.contains_key(key) && self.levels.len() >= self.max_tracked {
            self.drop_drained();
            if self.levels.len() >= self.max_tracked {
                return;
            }
        }
        let mut level = self.levels.entry(key.clone()).or_insert(Level {
            failures: 0.0,
            at: now,
        });
        let failures = self.drained(*level, now);
        *level = Level {
            failures: failures + 1.0,
            at: now,
        };
    }

    /// Forgets addresses that have drained (run by the housekeeping) and
    /// gives back the table.
    pub fn purge_expired(&self) {
        self.drop_drained();
        self.levels.shrink_to_fit();
    }

    /// Forgets addresses that have drained, keeping the table's size: what
    /// a full table does on a request, where giving the table back and
    /// growing it again would be work for nothing.
    fn drop_drained(&self) {
        let now = Instant::now();
        self.levels
            .retain(|_, level| self.drained(*level, now) > 0.0);
    }

    pub fn tracked(&self) -> usize {
        self.levels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn only_failures_count_and_they_drain_at_the_quota() {
        let count = FailureCount::new(3, 100);
        for _ in 0..1_000 {
            assert!(count.check(&1).is_ok(), "trying takes nothing");
        }
        for _ in 0..3 {
            count.check(&1).unwrap();
            count.failed(&1);
        }
        let Err(ApiError::RateLimited { retry_after_secs }) = count.check(&1) else {
            panic!("three failures fill a quota of three");
        };
        assert_eq!(retry_after_secs, 20, "one failure drains in 20 s");
        assert!(count.check(&2).is_ok(), "another address");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(count.check(&1).is_ok());

        // Failures raced past the check all count: the wait grows with them.
        for _ in 0..10 {
            count.failed(&1);
        }
        let Err(ApiError::RateLimited { retry_after_secs }) = count.check(&1) else {
            panic!("over the quota");
        };
        assert!(retry_after_secs >= 200, "{retry_after_secs}");
        tokio::time::advance(Duration::from_secs(600)).await;
        count.purge_expired();
        assert_eq!(count.tracked(), 0, "drained addresses are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_stays_bounded() {
        let count = FailureCount::new(3, 10);
        for key in 0..100 {
            count.failed(&key);
        }
        assert_eq!(count.tracked(), 10);
        assert!(count.check(&5).is_ok(), "one failure is under the quota");
        assert!(
            count.check(&500).is_err(),
            "a newcomer waits while the table is full"
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(count.check(&500).is_ok(), "drained entries make room");
    }
}
