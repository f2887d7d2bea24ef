//! A connection's outgoing queue, bounded by frames and by bytes. A full
//! queue refuses the frame; the hub then kicks the connection.
//!
//! A plain `VecDeque` behind a mutex rather than a channel: an idle
//! connection's queue owns no heap memory at all (a tokio channel
//! allocates a block of 32 slots up front), and a queue that grew in a
//! burst gives its memory back once drained. Thousands of idle sockets are
//! the common case.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::Frame;

/// The sending side, held by the hub for each subscription.
pub struct Outbox {
    shared: Arc<Shared>,
}

struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    max_frames: usize,
    max_bytes: usize,
    kicked: AtomicBool,
    receiver_gone: AtomicBool,
    /// Live `Outbox` handles; the receiver ends when it reaches zero.
    senders: AtomicUsize,
    /// Wakes the receiver: a frame, a kick, or the last sender gone.
    wake: Notify,
}

/// The receiving side, read by the connection's writer.
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// A queue of at most `max_frames` frames and `max_bytes` bytes.
pub fn outbox(max_frames: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            frames: VecDeque::new(),
            bytes: 0,
        }),
        max_frames: max_frames.max(1),
        max_bytes,
        kicked: AtomicBool::new(false),
        receiver_gone: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        wake: Notify::new(),
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReceiver { shared },
    )
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.wake.notify_one();
        }
    }
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the frame if the queue is below the given share of its
    /// bounds (1/1 for frames that matter, 1/2 for droppable ones).
    fn push(&self, frame: Frame, divisor: usize) -> bool {
        let size = frame.len();
        let mut queue = self.queue();
        if (queue.frames.len() + 1) * divisor > self.max_frames
            || (queue.bytes + size) * divisor > self.max_bytes
        {
            return false;
        }
        queue.frames.push_back(frame);
        queue.bytes += size;
        drop(queue);
        self.wake.notify_one();
        true
    }
}

impl Outbox {
    /// Queues a frame; `false` when the queue is full (by count or bytes).
    /// A connection that is already gone takes the frame silently: it is
    /// leaving, not slow.
    pub fn send(&self, frame: Frame) -> bool {
        if self.is_closed() {
            return true;
        }
        if self.shared.kicked.load(Ordering::Relaxed) {
            return false;
        }
        self.shared.push(frame, 1)
    }

    /// Like [`send`](Self::send), for frames that may be dropped (cursors):
    /// only queued while the queue is at most half full.
    pub fn offer(&self, frame: Frame) -> bool {
        if self.is_closed() || self.shared.kicked.load(Ordering::Relaxed) {
            return false;
        }
        self.shared.push(frame, 2)
    }

    /// Marks the connection as too slow; returns true the first time.
    pub fn kick(&self) -> bool {
        let first = !self.shared.kicked.swap(true, Ordering::Relaxed);
        if first {
            self.shared.wake.notify_one();
        }
        first
    }

    pub fn is_closed(&self) -> bool {
        self.shared.receiver_gone.load(Ordering::Relaxed)
    }
}

/// What the writer gets next.
pub enum Next {
    Frame(Frame),
    /// The connection was too slow: close it with 1013.
    Kicked,
    /// Every sender is gone.
    Closed,
}

impl OutboxReceiver {
    pub async fn next(&mut self) -> Next {
        let shared = &self.shared;
        loop {
            if shared.kicked.load(Ordering::Relaxed) {
                return Next::Kicked;
            }
            {
                let mut queue = shared.queue();
                if let Some(frame) = queue.frames.pop_front() {
                    queue.bytes -= frame.len();
                    // A drained queue owns nothing: most connections are
                    // idle between messages, and 10,000 kept buffers of
                    // four frames are 1.4 MB. Refilling costs one small
                    // allocation per burst.
                    if queue.frames.is_empty() {
                        queue.frames = VecDeque::new();
                    }
                    return Next::Frame(frame);
                }
            }
            if shared.senders.load(Ordering::Acquire) == 0 {
                return Next::Closed;
            }
            // `notify_one` leaves a permit when nobody waits, so a frame
            // queued between the check above and this wait is not missed.
            shared.wake.notified().await;
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Relaxed);
        // Frames nobody will read are freed now, not when the last
        // sender goes.
        let mut queue = self.shared.queue();
        queue.frames = VecDeque::new();
        queue.bytes = 0;
    }
}
