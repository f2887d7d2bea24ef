//! A small read cache for hot reads: story details and the first pages of
//! the library.
//!
//! Bounded twice, by entries (`CACHE_MAX_ENTRIES`) and by estimated bytes
//! (`CACHE_MAX_BYTES`), because one story may hold 50 pages of 5,000
//! characters; entries also expire after `CACHE_TTL_SECS`.
//!
//! Invalidation is as narrow as the write: a read counted or a like drops
//! that story's entries (and a like the library pages, which show likes);
//! one story's edit drops its entries and the library pages; only a change
//! that shows in many stories (an author's display name) empties
//! everything, by bumping a generation that is part of every key. A reader
//! takes a [`Ticket`] before it reads the database, and what it read is
//! not stored if an invalidation of its key came after the ticket: a read
//! that started before a write never caches what the write replaced. (Our
//! own rather than moka: it has one capacity, not both bounds.)

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// tokio's clock: the same as std's, except that tests can pause it.
use tokio::time::Instant;

use storybook_store::{Page, Story, StorySummary};

/// What is cached under a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    Story(i64),
    /// A canonical description of a library query (filters, sort, page).
    Library(String),
    /// The finished JSON answer for an anonymous reader of a story.
    StoryBody(i64),
    /// The finished JSON answer for an anonymous reader of a library page.
    LibraryBody(String),
}

impl CacheKey {
    /// Bytes the key holds; it is kept twice (the map and the age order),
    /// and a search's key carries the query text, so it counts.
    fn weight(&self) -> usize {
        match self {
            Self::Story(_) | Self::StoryBody(_) => 0,
            Self::Library(text) | Self::LibraryBody(text) => 2 * text.len(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Cached {
    Story(Arc<Story>),
    Library(Arc<Page<StorySummary>>),
    /// Serialised once, sent as is (shared, not copied).
    Body(axum::body::Bytes),
}

impl Cached {
    /// A rough size in bytes: the text it holds plus a fixed overhead.
    fn weight(&self) -> usize {
        const OVERHEAD: usize = 256;
        match self {
            Cached::Story(story) => {
                OVERHEAD
                    + story.title.len()
                    + story.pages.iter().map(|p| p.text.len() + 32).sum::<usize>()
                    + story.tags.iter().map(|t| t.len() + 24).sum::<usize>()
            }
            Cached::Body(body) => OVERHEAD + body.len(),
            Cached::Library(page) => {
                OVERHEAD
                    + page
                        .items
                        .iter()
                        .map(|s| {
                            OVERHEAD
                                + s.title.len()
                                + s.excerpt.len()
                                + s.tags.iter().map(String::len).sum::<usize>()
                        })
                        .sum::<usize>()
            }
        }
    }
}

struct Entry {
    value: Cached,
    weight: usize,
    stored_at: Instant,
}

/// What a reader took before reading the database; it stores what it read
/// under the same ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
    tick: u64,
}

/// Per-story invalidations remembered, to refuse a late store (a reader
/// older than all of them is refused whatever its key).
const INVALIDATIONS_REMEMBERED: usize = 256;

#[derive(Default)]
struct Inner {
    /// Narrow invalidations, newest last: (story id, tick).
    story_invalidations: VecDeque<(i64, u64)>,
    /// The tick of the newest invalidation no longer in the list.
    forgotten_tick: u64,
    /// The tick of the latest invalidation of the library pages.
    library_tick: u64,
    entries: HashMap<(u64, CacheKey), Entry>,
    /// Insertion order, for eviction (oldest first).
    order: VecDeque<(u64, CacheKey)>,
    bytes: usize,
    /// The generation the entries belong to.
    generation: u64,
}

impl Inner {
    /// Entries of older generations can never be read again: drops them.
    fn keep_only(&mut self, generation: u64) {
        if self.generation != generation {
            self.entries.clear();
            self.order.clear();
            self.bytes = 0;
            self.generation = generation;
        }
    }

    /// Drops the entries whose keys `invalidated` picks, and their places in
    /// `order`, which thus never holds more than the entries themselves (a
    /// place left behind would outlive its entry until eviction reached it,
    /// so a stream of invalidations and stores grew `order` unbounded).
    fn remove_where(&mut self, invalidated: impl Fn(&CacheKey) -> bool) {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|(_, key), entry| {
            let keep = !invalidated(key);
            if !keep {
                freed += entry.weight;
            }
            keep
        });
        if self.entries.len() != before {
            self.bytes -= freed;
            self.order.retain(|(_, key)| !invalidated(key));
        }
    }

    /// Whether `key` was invalidated after a reader took `tick`.
    fn invalidated_since(&self, key: &CacheKey, tick: u64) -> bool {
        match key {
            CacheKey::Library(_) | CacheKey::LibraryBody(_) => self.library_tick > tick,
            CacheKey::Story(id) | CacheKey::StoryBody(id) => {
                self.forgotten_tick > tick
                    || self
                        .story_invalidations
                        .iter()
                        .any(|(story, at)| story == id && *at > tick)
            }
        }
    }

    /// Drops the oldest entry; `false` if there was none.
    fn evict_oldest(&mut self) -> bool {
        let Some(oldest) = self.order.pop_front() else {
            return false;
        };
        if let Some(evicted) = self.entries.remove(&oldest) {
            self.bytes -= evicted.weight;
        }
        true
    }
}

pub struct ReadCache {
    inner: Mutex<Inner>,
    generation: AtomicU64,
    /// Counts narrow invalidations; a ticket holds its value.
    tick: AtomicU64,
    max_entries: usize,
    max_bytes: usize,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ReadCache {
    pub fn new(max_entries: usize, max_bytes: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            generation: AtomicU64::new(0),
            tick: AtomicU64::new(0),
            max_entries,
            max_bytes,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The ticket to read under: take it *before* reading the database and
    /// store under the same one.
    pub fn generation(&self) -> Ticket {
        // The tick first: an invalidation between the two loads makes the
        // ticket older than it, never newer.
        let tick = self.tick.load(Ordering::Acquire);
        Ticket {
            generation: self.generation.load(Ordering::Acquire),
            tick,
        }
    }

    /// Forgets everything cached (a change that shows in many stories).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets one story's entries (a read counted, a like, its edit).
    pub fn invalidate_story(&self, id: i64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let tick = self.tick.fetch_add(1, Ordering::AcqRel) + 1;
        inner.remove_where(|key| matches!(key, CacheKey::Story(story) | CacheKey::StoryBody(story) if *story == id));
        if inner.story_invalidations.len() >= INVALIDATIONS_REMEMBERED
            && let Some((_, forgotten)) = inner.story_invalidations.pop_front()
        {
            inner.forgotten_tick = forgotten;
        }
        inner.story_invalidations.push_back((id, tick));
    }

    /// Forgets the library pages (a story appeared, changed or went, or its
    /// likes did).
    pub fn invalidate_library(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let tick = self.tick.fetch_add(1, Ordering::AcqRel) + 1;
        inner.library_tick = tick;
        inner.remove_where(|key| matches!(key, CacheKey::Library(_) | CacheKey::LibraryBody(_)));
    }

    /// One story changed: its entries and the library pages go.
    pub fn invalidate_story_and_library(&self, id: i64) {
        self.invalidate_story(id);
        self.invalidate_library();
    }

    pub fn get(&self, ticket: Ticket, key: &CacheKey) -> Option<Cached> {
        let generation = ticket.generation;
        let found = {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            // (A key of another generation simply is not there.)
            inner
                .entries
                .get(&(generation, key.clone()))
                .filter(|entry| entry.stored_at.elapsed() < self.ttl)
                .map(|entry| entry.value.clone())
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores a value read under `generation`; ignored if a write has
    /// happened since, or if the value alone is over the byte budget.
    pub fn put(&self, ticket: Ticket, key: CacheKey, value: Cached) {
        let generation = ticket.generation;
        if self.max_entries == 0 || generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        let weight = value.weight() + key.weight();
        if weight > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        inner.keep_only(generation);
        if inner.invalidated_since(&key, ticket.tick) {
            return;
        }
        if let Some(old) = inner.entries.remove(&(generation, key.clone())) {
            inner.bytes -= old.weight;
            inner.order.retain(|k| k.1 != key);
        }
        while inner.entries.len() >= self.max_entries || inner.bytes + weight > self.max_bytes {
            if !inner.evict_oldest() {
                break;
            }
        }
        inner.bytes += weight;
        inner.order.push_back((generation, key.clone()));
        inner.entries.insert(
            (generation, key),
            Entry {
                value,
                weight,
                stored_at: Instant::now(),
            },
        );
    }

    /// Drops the entries that have expired or belong to an older generation,
    /// and gives back table space the entries no longer need (a table grown
    /// in a burst is one live block that keeps the allocator from returning
    /// the memory freed around it).
    pub fn purge_expired(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        inner.keep_only(generation);
        // `order` is oldest first, so the expired entries are at its front.
        while let Some(oldest) = inner.order.front() {
            let expired = inner
                .entries
                .get(oldest)
                .is_none_or(|entry| entry.stored_at.elapsed() >= self.ttl);
            if !expired {
                break;
            }
            inner.evict_oldest();
        }
        // An empty cache owns no table at all; a full one keeps what it uses.
        if inner.entries.is_empty() || inner.entries.capacity() > 4 * inner.entries.len().max(8) {
            inner.entries.shrink_to_fit();
            inner.order.shrink_to_fit();
        }
    }

    /// `(entries, bytes, hits, misses)` for `/metrics`.
    pub fn stats(&self) -> (usize, usize, u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (
            inner.entries.len(),
            inner.bytes,
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests;
