//! Story reads counted in memory and written in batches (issue #24): a
//! signed-in story detail used to write one row (one SQLite commit) per
//! request, which capped it at a few hundred a second on a tenth of a core.
//!
//! A read is acknowledged once it is in the pending set here; the set is
//! written in one transaction at most every second, before an export's
//! snapshot, and when the server stops (SIGTERM), so an acknowledged read is
//! never lost to a deploy. The database keeps it exactly once per user and
//! story (its primary key). What each recent reader has read is loaded once
//! (one statement) and kept (bounded), so a reader's next stories cost no
//! database work at all; a reader with more than `READS_USER_LIST` stories
//! read is looked up story by story, with a read, which SQLite serves beside
//! writers. With several processes, a read counted by another one is not
//! in this one's lists until the reader's list is loaded again: its story
//! shows one read too many until the next write (a second).
//!
//! What a story shows is its cached count plus its reads pending here. A
//! request that races a flush can show one count a read behind or ahead
//! for that moment; the next answer is right.
//!
//! Bounds: `READS_PENDING` pending pairs (past it, a read is written at once,
//! the old way), `READS_KNOWN` remembered stories over all readers (past it,
//! forgotten all at once: they are only a shortcut), at most
//! `READS_USER_LIST` a reader.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use storybook_store::{Store, StoreError};

use crate::cache::ReadCache;

#[derive(Default)]
struct Ledger {
    /// Reads acknowledged, not yet written.
    pending: HashSet<(i64, i64)>,
    /// Of those, how many each story has.
    pending_per_story: HashMap<i64, u32>,
    /// Readers whose read stories are known: those in the database and
    /// those pending.
    known: HashMap<i64, HashSet<i64>>,
    /// Stories in `known`, over all readers.
    known_count: usize,
}

/// What a signed-in read of a story did to its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The reader had read it before: nothing changes.
    Again,
    /// A first read, now pending: the story shows one more.
    First,
}

pub struct ReadCounter {
    ledger: Mutex<Ledger>,
    /// One flush at a time, so a pair is never written by two at once.
    flushing: tokio::sync::Mutex<()>,
    max_pending: usize,
    max_known: usize,
    max_per_user: usize,
}

impl ReadCounter {
    pub fn new(max_pending: usize, max_known: usize, max_per_user: usize) -> Self {
        Self {
            ledger: Mutex::default(),
            flushing: tokio::sync::Mutex::new(()),
            max_pending: max_pending.max(1),
            max_known: max_known.max(1),
            max_per_user: max_per_user.min(max_known).max(1),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `user`'s read of `story`, exactly once however often they
    /// come back.
    pub async fn count(&self, store: &Store, user: i64, story: i64) -> Result<Read, StoreError> {
        let pair = (user, story);
        let read_before = match self.known_read(pair) {
            Some(read) => read,
            None => {
                let list = store.stories_read_by(user, self.max_per_user).await?;
                if list.len() <= self.max_per_user {
                    self.remember_reader(user, list);
                    self.known_read(pair).unwrap_or(false)
                } else {
                    store.has_read(user, story).await?
                }
            }
        };
        if read_before {
            return Ok(Read::Again);
        }
        {
            let mut ledger = self.ledger();
            if ledger.pending.len() < self.max_pending {
                if !ledger.pending.insert(pair) {
                    return Ok(Read::Again);
                }
                *ledger.pending_per_story.entry(story).or_default() += 1;
                let added = ledger
                    .known
                    .get_mut(&user)
                    .is_some_and(|read| read.insert(story));
                ledger.known_count += usize::from(added);
                return Ok(Read::First);
            }
        }
        // Full: written now, the old way, rather than held without bound.
        let counted = store.count_read(user, story).await?;
        let mut ledger = self.ledger();
        let added = ledger
            .known
            .get_mut(&user)
            .is_some_and(|read| read.insert(story));
        ledger.known_count += usize::from(added);
        Ok(if counted { Read::First } else { Read::Again })
    }

    /// Whether the reader read the story, when this process knows.
    fn known_read(&self, pair: (i64, i64)) -> Option<bool> {
        let ledger = self.ledger();
        if ledger.pending.contains(&pair) {
            return Some(true);
        }
        ledger.known.get(&pair.0).map(|read| read.contains(&pair.1))
    }

    fn remember_reader(&self, user: i64, read: Vec<i64>) {
        let mut ledger = self.ledger();
        if ledger.known_count + read.len() > self.max_known {
            ledger.known = HashMap::new();
            ledger.known_count = 0;
        }
        ledger.known_count += read.len();
        if let Some(before) = ledger.known.insert(user, read.into_iter().collect()) {
            ledger.known_count -= before.len();
        }
    }

    /// Reads of `story` acknowledged but not yet written.
    pub fn pending_for(&self, story: i64) -> u32 {
        self.ledger()
            .pending_per_story
            .get(&story)
            .copied()
            .unwrap_or(0)
    }

    pub fn pending(&self) -> usize {
        self.ledger().pending.len()
    }

    /// Writes every pending read in one transaction, then lets the cached
    /// stories show them from the database. Returns how many were written.
    /// On failure they stay pending, for the next flush.
    pub async fn flush(&self, store: &Store, cache: &ReadCache) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        let batch: Vec<(i64, i64)> = self.ledger().pending.iter().copied().collect();
        if batch.is_empty() {
            return Ok(0);
        }
        store.count_reads(&batch).await?;
        {
            let mut ledger = self.ledger();
            for pair in &batch {
                ledger.pending.remove(pair);
                if let Some(count) = ledger.pending_per_story.get_mut(&pair.1) {
                    *count -= 1;
                    if *count == 0 {
                        ledger.pending_per_story.remove(&pair.1);
                    }
                }
            }
            if ledger.pending.is_empty() {
                // Give back what a crowd grew the tables to.
                ledger.pending.shrink_to_fit();
                ledger.pending_per_story.shrink_to_fit();
            }
            // Under the ledger's lock: a request sees either the pending
            // count or the cache's fresh one, not both left over.
            let stories: HashSet<i64> = batch.iter().map(|pair| pair.1).collect();
            for story in stories {
                cache.invalidate_story(story);
            }
        }
        Ok(batch.len())
    }
}
