//! Which stories a user likes, for a few seconds: a signed-in library page
//! is the cached anonymous page plus `liked` for its twenty ids, and on a
//! 0.1 CPU plan the statement that found those (a round trip to the
//! database thread) was most of the page's cost (issue #14's profile).
//!
//! Correct by invalidation, bounded by time and size: a like or unlike
//! forgets that user here before it answers, and a set read from the
//! database while a like was being written is not kept (`writes` says one
//! happened). A like written by another process is seen within
//! `LIKES_CACHE_SECS`. At most `LIKES_CACHE_USERS` users are kept, each
//! with at most `MAX_KEPT_LIKES` ids (a user who likes more is asked of the
//! database each time); 0 users turns it off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::expiring::{Stamped, is_fresh, make_room, purge};

/// Liked ids kept per user: 2 KiB at most, so the whole cache stays under
/// 2 MiB at the default 1,000 users.
pub const MAX_KEPT_LIKES: usize = 256;

pub struct LikesCache {
    max_users: usize,
    ttl: Duration,
    /// user id → (their liked story ids, sorted; when read).
    entries: Mutex<HashMap<i64, Entry>>,
    /// Likes and unlikes written so far: a set read across one is stale.
    writes: AtomicU64,
}

/// A user's liked ids, sorted, and when they were read.
type Entry = Stamped<Box<[i64]>>;

/// Taken before the database is asked, given back to `put`.
#[derive(Clone, Copy)]
pub struct ReadTicket(u64);

impl LikesCache {
    pub fn new(max_users: usize, ttl: Duration) -> Self {
        Self {
            max_users,
            ttl,
            entries: Mutex::default(),
            writes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Which of `story_ids` the user likes, when their set is kept.
    pub fn liked_among(&self, user_id: i64, story_ids: &[i64]) -> Option<Vec<i64>> {
        let entries = self.lock();
        let (liked, at) = entries.get(&user_id)?;
        if !is_fresh(at, self.ttl) {
            return None;
        }
        Some(
            story_ids
                .iter()
                .copied()
                .filter(|id| liked.binary_search(id).is_ok())
                .collect(),
        )
    }

    /// Call before reading a user's likes from the database.
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(self.writes.load(Ordering::Acquire))
    }

    /// Keeps a user's whole set of liked ids, read after `ticket` was
    /// taken; a set larger than `MAX_KEPT_LIKES` is not kept.
    pub fn put(&self, ticket: ReadTicket, user_id: i64, mut liked: Vec<i64>) {
        if self.max_users == 0 || liked.len() > MAX_KEPT_LIKES {
            return;
        }
        liked.sort_unstable();
        let mut entries = self.lock();
        // Checked under the lock that `forget_user` takes after counting.
        if self.writes.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        make_room(&mut entries, self.max_users, self.ttl, &user_id);
        entries.insert(user_id, (liked.into_boxed_slice(), Instant::now()));
    }

    /// The user liked or unliked something: their set is read again.
    pub fn forget_user(&self, user_id: i64) {
        let mut entries = self.lock();
        self.writes.fetch_add(1, Ordering::AcqRel);
        entries.remove(&user_id);
    }

    /// Housekeeping: drops what has expired and gives back table space.
    pub fn purge_expired(&self) {
        purge(&mut self.lock(), self.ttl);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_sets_answer_and_are_forgotten_on_a_like() {
        let cache = LikesCache::new(10, Duration::from_secs(60));
        assert_eq!(cache.liked_among(1, &[1, 2]), None, "nothing kept yet");
        let ticket = cache.ticket();
        cache.put(ticket, 1, vec![9, 2, 5]);
        assert_eq!(cache.liked_among(1, &[1, 2, 3, 5]), Some(vec![2, 5]));
        cache.forget_user(1);
        assert_eq!(cache.liked_among(1, &[2]), None);
    }

    #[test]
    fn a_set_read_across_a_like_is_not_kept() {
        let cache = LikesCache::new(10, Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.forget_user(2); // a like by anyone, written during the read
        cache.put(ticket, 1, vec![1]);
        assert!(cache.is_empty());
        cache.put(cache.ticket(), 1, vec![1]);
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn kept_sets_expire() {
        let cache = LikesCache::new(2, Duration::from_secs(10));
        cache.put(cache.ticket(), 1, vec![1]);
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(cache.liked_among(1, &[1]), Some(vec![1]));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.liked_among(1, &[1]), None, "read again after the TTL");
        cache.purge_expired();
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded_by_users_and_ids() {
        let cache = LikesCache::new(2, Duration::from_secs(60));
        cache.put(cache.ticket(), 1, vec![]);
        cache.put(cache.ticket(), 2, vec![]);
        cache.put(cache.ticket(), 3, vec![]);
        assert!(cache.len() <= 2, "never more users than the bound");
        cache.put(cache.ticket(), 4, (0..=MAX_KEPT_LIKES as i64).collect());
        assert_eq!(cache.liked_among(4, &[0]), None, "too many likes to keep");

        let off = LikesCache::new(0, Duration::from_secs(60));
        off.put(off.ticket(), 1, vec![1]);
        assert!(off.is_empty());
    }
}
