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
//! `READS_USER_LIST` a reader (one with more is marked as such, once, and
//! each story of theirs is looked up; their list is not loaded again).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use storybook_store::{Store, StoreError};

use crate::cache::ReadCache;

/// What this process knows of one reader's reads.
enum Reader {
    /// Every story they have read (in the database or pending).
    Listed(HashSet<i64>),
    /// More than `READS_USER_LIST`: each story is asked of the database.
    TooMany,
}

#[derive(Default)]
struct Ledger {
    /// Reads acknowledged, not yet written.
    pending: HashSet<(i64, i64)>,
    /// Of those, how many each story has.
    pending_per_story: HashMap<i64, u32>,
    known: HashMap<i64, Reader>,
    /// What `known` holds: its listed stories, and one for each reader
    /// with too many.
    known_count: usize,
}

/// Whether a reader read a story, as far as this process knows.
enum Lookup {
    Read,
    Unread,
    /// Nothing known of the reader: load their list.
    Unknown,
    /// A reader with too many to keep: ask about this story.
    Ask,
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
    pub async fn count(&self, store: &Store, user: i64, story: i64) -> Result<(), StoreError> {
        let pair = (user, story);
        let read_before = match self.lookup(pair) {
            Lookup::Read => true,
            Lookup::Unread => false,
            Lookup::Unknown => {
                let list = store.stories_read_by(user, self.max_per_user).await?;
                let read = list.contains(&story);
                self.remember_reader(user, list);
                read
            }
            Lookup::Ask => store.has_read(user, story).await?,
        };
        if read_before {
            return Ok(());
        }
        {
            let mut ledger = self.ledger();
            if ledger.pending.len() < self.max_pending {
                if ledger.pending.insert(pair) {
                    *ledger.pending_per_story.entry(story).or_default() += 1;
                    self.note_read(&mut ledger, pair);
                }
                return Ok(());
            }
        }
        // Full: written now, the old way, rather than held without bound.
        store.count_read(user, story).await?;
        self.note_read(&mut self.ledger(), pair);
        Ok(())
    }

    fn lookup(&self, pair: (i64, i64)) -> Lookup {
        let ledger = self.ledger();
        if ledger.pending.contains(&pair) {
            return Lookup::Read;
        }
        match ledger.known.get(&pair.0) {
            Some(Reader::Listed(read)) if read.contains(&pair.1) => Lookup::Read,
            Some(Reader::Listed(_)) => Lookup::Unread,
            Some(Reader::TooMany) => Lookup::Ask,
            None => Lookup::Unknown,
        }
    }

    /// Keeps a reader's list as loaded (`max_per_user` + 1 stories: too
    /// many to keep).
    fn remember_reader(&self, user: i64, read: Vec<i64>) {
        let reader = if read.len() > self.max_per_user {
            Reader::TooMany
        } else {
            Reader::Listed(read.into_iter().collect())
        };
        let mut ledger = self.ledger();
        let added = known_size(&reader);
        if let Some(before) = ledger.known.insert(user, reader) {
            ledger.known_count -= known_size(&before);
        }
        ledger.known_count += added;
        self.keep_bound(&mut ledger);
    }

    /// Adds a story to a listed reader's list (one past `max_per_user`
    /// makes them a reader with too many).
    fn note_read(&self, ledger: &mut Ledger, (user, story): (i64, i64)) {
        let Some(Reader::Listed(read)) = ledger.known.get_mut(&user) else {
            return;
        };
        if !read.insert(story) {
            return;
        }
        ledger.known_count += 1;
        if read.len() > self.max_per_user {
            ledger.known_count -= read.len() - 1;
            ledger.known.insert(user, Reader::TooMany);
        }
        self.keep_bound(ledger);
    }

    /// Past `max_known`, everything known is forgotten (it is only a
    /// shortcut; the database has it all).
    fn keep_bound(&self, ledger: &mut Ledger) {
        if ledger.known_count > self.max_known {
            ledger.known = HashMap::new();
            ledger.known_count = 0;
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

/// What a reader's entry counts towards `READS_KNOWN`.
fn known_size(reader: &Reader) -> usize {
    match reader {
        Reader::Listed(read) => read.len(),
        Reader::TooMany => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storybook_store::PoolSettings;

    /// The remembered stories stay within `READS_KNOWN` however they come
    /// (loaded lists or reads added since), and a reader past
    /// `READS_USER_LIST` is marked once rather than loaded again.
    #[tokio::test]
    async fn what_is_remembered_stays_bounded() {
        let dir = std::env::temp_dir().join(format!("reads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("reads.db").display());
        let store = Store::connect(&url, &PoolSettings::default())
            .await
            .unwrap();
        let counter = ReadCounter::new(100, 3, 2);
        for story in 1..=3 {
            counter.count(&store, 1, story).await.unwrap();
        }
        {
            let ledger = counter.ledger();
            assert!(matches!(ledger.known.get(&1), Some(Reader::TooMany)));
            assert_eq!(ledger.known_count, 1);
            assert_eq!(ledger.pending.len(), 3);
        }
        assert!(matches!(counter.lookup((1, 9)), Lookup::Ask));
        for user in 2..=5 {
            counter.count(&store, user, 1).await.unwrap();
            assert!(counter.ledger().known_count <= 3);
        }
        assert_eq!(counter.pending_for(1), 5);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
