//! Users by token hash, for a few seconds: every signed-in request starts
//! by finding its token's user, and on a 0.1 CPU plan that statement (a
//! round trip to the database thread) was a third of a signed-in page.
//!
//! Correct by invalidation, bounded by time: every write to a user or its
//! tokens forgets that user here before it answers (logout, logout-all,
//! password, profile, settings, role, deactivation), and with `REDIS_URL`
//! the same events reach the other processes through the realtime layer.
//! A token expires here when it does in the database (its issue time is
//! kept with it). What no event covers (a write on another process of the
//! lean build, which has no Redis) is seen within `TOKEN_CACHE_SECS`.
//! Sockets check their tokens past the cache. A lookup that read the
//! database is kept only if no user was forgotten since it started (its
//! [`TokenTicket`]): a logout landing between the read and the keeping
//! would otherwise leave the revoked token working for the whole TTL.
//! Bounded by `TOKEN_CACHE_ENTRIES`; 0 turns it off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use storybook_store::{Timestamp, User};

use crate::expiring::{Stamped, is_fresh, make_room, purge};

pub struct TokenCache {
    max_entries: usize,
    ttl: Duration,
    /// token hash → (its user, when the token was issued, when kept).
    entries: Mutex<HashMap<String, Entry>>,
    /// Users forgotten so far: a lookup that started before one is not kept.
    forgets: AtomicU64,
}

/// Taken before a token's user is read from the database; see
/// [`TokenCache::put`].
#[derive(Debug, Clone, Copy)]
pub struct TokenTicket(u64);

type Entry = Stamped<(User, Timestamp)>;

impl TokenCache {
    pub fn new(max_entries: usize, ttl: Duration) -> Self {
        Self {
            max_entries,
            ttl,
            entries: Mutex::default(),
            forgets: AtomicU64::new(0),
        }
    }

    /// Call before reading a token's user from the database.
    pub fn ticket(&self) -> TokenTicket {
        TokenTicket(self.forgets.load(Ordering::Acquire))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept user of a token issued after `issued_after` (so a token
    /// expires here exactly when it does in the database).
    pub fn get(&self, token_hash: &str, issued_after: Timestamp) -> Option<User> {
        self.get_with_issue(token_hash, issued_after)
            .map(|(user, _)| user)
    }

    /// [`TokenCache::get`], with when the token was issued.
    pub fn get_with_issue(
        &self,
        token_hash: &str,
        issued_after: Timestamp,
    ) -> Option<(User, Timestamp)> {
        let entries = self.lock();
        let ((user, issued), at) = entries.get(token_hash)?;
        (is_fresh(at, self.ttl) && *issued > issued_after).then(|| (user.clone(), *issued))
    }

    /// Keeps a token's user read after `ticket` was taken, unless a user
    /// was forgotten since (then the read may predate a revocation).
    pub fn put(&self, ticket: TokenTicket, token_hash: String, user: User, issued: Timestamp) {
        if self.max_entries == 0 {
            return;
        }
        let mut entries = self.lock();
        // Checked under the lock that `forget_user` takes before counting.
        if self.forgets.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        make_room(&mut entries, self.max_entries, self.ttl, &token_hash);
        entries.insert(token_hash, ((user, issued), Instant::now()));
    }

    /// A user or their tokens changed: nothing of theirs is served again.
    pub fn forget_user(&self, user_id: i64) {
        let mut entries = self.lock();
        self.forgets.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, ((user, _), _)| user.id != user_id);
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
    use storybook_store::{Role, Settings};

    fn user(id: i64) -> User {
        User {
            id,
            username: format!("u{id}"),
            email: format!("u{id}@example.com"),
            password_hash: String::new(),
            display_name: format!("U{id}"),
            bio: String::new(),
            role: Role::User,
            active: true,
            settings: Settings::default(),
            created_at: Timestamp(0),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn kept_users_expire_after_the_ttl() {
        let cache = TokenCache::new(10, Duration::from_secs(10));
        cache.put(cache.ticket(), "a".into(), user(1), Timestamp(100));
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(cache.get("a", Timestamp(99)).is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(cache.get("a", Timestamp(99)).is_none(), "looked up again");
        cache.purge_expired();
        assert!(cache.is_empty());
    }

    #[test]
    fn kept_users_are_forgotten_expired_and_bounded() {
        let cache = TokenCache::new(2, Duration::from_secs(60));
        cache.put(cache.ticket(), "a".into(), user(1), Timestamp(100));
        cache.put(cache.ticket(), "b".into(), user(1), Timestamp(100));
        assert_eq!(cache.get("a", Timestamp(99)).map(|u| u.id), Some(1));
        assert!(
            cache.get("a", Timestamp(100)).is_none(),
            "a token issued at or before the cutoff has expired"
        );
        cache.forget_user(1);
        assert!(cache.is_empty());
        for (n, key) in ["c", "d", "e"].into_iter().enumerate() {
            cache.put(cache.ticket(), key.into(), user(n as i64), Timestamp(100));
        }
        assert!(cache.len() <= 2, "bounded: {}", cache.len());
        let off = TokenCache::new(0, Duration::from_secs(60));
        off.put(off.ticket(), "a".into(), user(1), Timestamp(100));
        assert!(off.get("a", Timestamp(0)).is_none());
    }

    /// A lookup that read the database before a logout and keeps its
    /// answer after it is not kept: the revoked token is read again.
    #[test]
    fn a_lookup_that_straddles_a_revocation_is_not_kept() {
        let cache = TokenCache::new(10, Duration::from_secs(60));
        let ticket = cache.ticket();
        // ... the database answers with the user; meanwhile a logout
        // revokes the token and forgets the user ...
        cache.forget_user(1);
        cache.put(ticket, "a".into(), user(1), Timestamp(100));
        assert!(cache.get("a", Timestamp(0)).is_none());
        // Anyone's forgetting counts: a ticket is cheap, a miss is one read.
        let ticket = cache.ticket();
        cache.forget_user(2);
        cache.put(ticket, "a".into(), user(1), Timestamp(100));
        assert!(cache.get("a", Timestamp(0)).is_none());
        cache.put(cache.ticket(), "a".into(), user(1), Timestamp(100));
        assert!(cache.get("a", Timestamp(0)).is_some());
    }
}
