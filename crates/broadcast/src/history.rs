//! A channel's recent messages, bounded by count, age and bytes.

use std::collections::VecDeque;
// tokio's clock: the same as std's, except that tests can pause it.
use tokio::time::Instant;

use crate::{Frame, Limits};

#[derive(Debug)]
struct Entry {
    offset: u64,
    frame: Frame,
    at: Instant,
}

#[derive(Debug)]
pub struct History {
    entries: VecDeque<Entry>,
    bytes: usize,
    latest: u64,
    epoch: u64,
}

impl History {
    pub fn new(epoch: u64) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            latest: 0,
            epoch,
        }
    }

    pub fn latest(&self) -> u64 {
        self.latest
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, offset: u64, frame: Frame, now: Instant, limits: &Limits) {
        self.latest = offset;
        self.bytes += frame.len();
        self.entries.push_back(Entry {
            offset,
            frame,
            at: now,
        });
        while self.entries.len() > limits.history_messages || self.bytes > limits.history_bytes {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.entries.pop_front() {
            self.bytes -= old.frame.len();
        }
    }

    /// Drops what is older than the age limit.
    pub fn expire(&mut self, now: Instant, limits: &Limits) {
        while self
            .entries
            .front()
            .is_some_and(|e| now.duration_since(e.at) >= limits.history_age)
        {
            self.pop_oldest();
        }
    }

    /// The frames after `since`, if every one of them is still here.
    pub fn since(&self, since: u64) -> Option<Vec<Frame>> {
        if since > self.latest {
            return None;
        }
        if since == self.latest {
            return Some(Vec::new());
        }
        let oldest = self.entries.front()?.offset;
        if since + 1 < oldest {
            return None;
        }
        Some(
            self.entries
                .iter()
                .filter(|e| e.offset > since)
                .map(|e| e.frame.clone())
                .collect(),
        )
    }
}
