//! Story reads counted in memory and written in batches (issue #24): a
//! signed-in story detail used to write one row (one SQLite commit) per
//! request, which capped it at a few hundred a second on a tenth of a core.
//!
//! A read is acknowledged once it is in the pending set here; the set is
//! written in one transaction at most every second, before an export's
//! snapshot, and when the server stops (SIGTERM), so an acknowledged read is
//! never lost to a deploy. The database keeps it exactly once per user and
//! story (its primary key); pairs known counted are remembered (bounded) so
//! that a reader coming back costs no database work at all, and a pair not
//! known is looked up with a read, which SQLite serves beside writers.
//!
//! What a story shows is its cached count plus its reads pending here. A
//! request that races a flush can show one count a read behind or ahead
//! for that moment; the next answer is right.
//!
//! Bounds: `READS_PENDING` pending pairs (past it, a read is written at once,
//! the old way), `READS_KNOWN` remembered pairs (past it, forgotten all at
//! once: they are only a shortcut).

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
    /// Pairs known to be in the database.
    known: HashSet<(i64, i64)>,
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
}

impl ReadCounter {
    pub fn new(max_pending: usize, max_known: usize) -> Self {
        Self {
            ledger: Mutex::default(),
            flushing: tokio::sync::Mutex::new(()),
            max_pending: max_pending.max(1),
            max_known: max_known.max(1),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `user`'s read of `story`, exactly once however often they
    /// come back.
    pub async fn count(&self, store: &Store, user: i64, story: i64) -> Result<Read, StoreError> {
        let pair = (user, story);
        {
            let ledger = self.ledger();
            if ledger.known.contains(&pair) || ledger.pending.contains(&pair) {
                return Ok(Read::Again);
            }
        }
        if store.has_read(user, story).await? {
            self.remember(&[pair]);
            return Ok(Read::Again);
        }
        {
            let mut ledger = self.ledger();
            if ledger.pending.len() < self.max_pending {
                if !ledger.pending.insert(pair) {
                    return Ok(Read::Again);
                }
                *ledger.pending_per_story.entry(story).or_default() += 1;
                return Ok(Read::First);
            }
        }
        // Full: written now, the old way, rather than held without bound.
        let counted = store.count_read(user, story).await?;
        self.remember(&[pair]);
        Ok(if counted { Read::First } else { Read::Again })
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

    fn remember(&self, pairs: &[(i64, i64)]) {
        let mut ledger = self.ledger();
        if ledger.known.len() + pairs.len() > self.max_known {
            ledger.known = HashSet::new();
        }
        ledger.known.extend(pairs.iter().copied());
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
        self.remember(&batch);
        Ok(batch.len())
    }
}
