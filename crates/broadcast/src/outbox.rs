//! A connection's outgoing queue, bounded by frames and by bytes. A full
//! queue refuses the frame; the hub then kicks the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};

use crate::Frame;

/// The sending side, held by the hub for each subscription.
#[derive(Clone)]
pub struct Outbox {
    sender: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
}

struct Shared {
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    kicked: AtomicBool,
    kick: Notify,
}

/// The receiving side, read by the connection's writer.
pub struct OutboxReceiver {
    receiver: mpsc::Receiver<Frame>,
    shared: Arc<Shared>,
}

/// A queue of at most `max_frames` frames and `max_bytes` bytes.
pub fn outbox(max_frames: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let (sender, receiver) = mpsc::channel(max_frames.max(1));
    let shared = Arc::new(Shared {
        queued_bytes: AtomicUsize::new(0),
        max_bytes,
        kicked: AtomicBool::new(false),
        kick: Notify::new(),
    });
    (
        Outbox {
            sender,
            shared: shared.clone(),
        },
        OutboxReceiver { receiver, shared },
    )
}

impl Outbox {
    /// Queues a frame; `false` when the queue is full (by count or bytes).
    /// A connection that is already gone takes the frame silently: it is
    /// leaving, not slow.
    pub fn send(&self, frame: Frame) -> bool {
        if self.sender.is_closed() {
            return true;
        }
        if self.shared.kicked.load(Ordering::Relaxed) {
            return false;
        }
        let size = frame.len();
        if self.shared.queued_bytes.load(Ordering::Relaxed) + size > self.shared.max_bytes {
            return false;
        }
        match self.sender.try_send(frame) {
            Ok(()) => {
                self.shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Like [`send`](Self::send), for frames that may be dropped (cursors):
    /// only queued while the queue is less than half full.
    pub fn offer(&self, frame: Frame) -> bool {
        if self.sender.capacity() * 2 < self.sender.max_capacity()
            || self.shared.queued_bytes.load(Ordering::Relaxed) * 2 > self.shared.max_bytes
        {
            return false;
        }
        self.send(frame)
    }

    /// Marks the connection as too slow; returns true the first time.
    pub fn kick(&self) -> bool {
        let first = !self.shared.kicked.swap(true, Ordering::Relaxed);
        if first {
            self.shared.kick.notify_one();
        }
        first
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
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
        if self.shared.kicked.load(Ordering::Relaxed) {
            return Next::Kicked;
        }
        tokio::select! {
            biased;
            () = self.shared.kick.notified() => Next::Kicked,
            frame = self.receiver.recv() => match frame {
                Some(frame) => {
                    self.shared.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                    Next::Frame(frame)
                }
                None => Next::Closed,
            },
        }
    }
}
