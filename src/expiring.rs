//! What the short-lived caches (the token cache, the likes cache) share:
//! entries stamped with when they were kept, room made when the map is
//! full, and the housekeeping purge. Each cache keeps its own rules for
//! what is served and when an entry is forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

// tokio's clock: the same as std's, except that tests can pause it.
use tokio::time::Instant;

/// A value and when it was kept.
pub type Stamped<V> = (V, Instant);

/// Whether an entry kept at `at` may still be served.
pub fn is_fresh(at: &Instant, ttl: Duration) -> bool {
    at.elapsed() < ttl
}

/// Before `key` goes in: when the map is full and `key` is new, the stale
/// go first, and if none is, everything (a crowd of new keys is not worth
/// an eviction order).
pub fn make_room<K: Eq + Hash, V>(
    entries: &mut HashMap<K, Stamped<V>>,
    max_entries: usize,
    ttl: Duration,
    key: &K,
) {
    if entries.len() >= max_entries && !entries.contains_key(key) {
        entries.retain(|_, (_, at)| is_fresh(at, ttl));
        if entries.len() >= max_entries {
            entries.clear();
        }
    }
}

/// Housekeeping: drops what has expired and gives back table space.
pub fn purge<K: Eq + Hash, V>(entries: &mut HashMap<K, Stamped<V>>, ttl: Duration) {
    entries.retain(|_, (_, at)| is_fresh(at, ttl));
    if entries.capacity() > 4 * entries.len().max(8) {
        entries.shrink_to_fit();
    }
}
