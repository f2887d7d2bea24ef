//! Response bodies written by a task of their own, for answers too big to
//! hold (a drawing's strokes, a backup): the task sends chunks through a
//! small channel, so at most [`CHUNKS_IN_FLIGHT`] wait for the client; a
//! client that takes none for `RESPONSE_STALL_SECS` ends the task (and
//! whatever it holds: a database connection, a snapshot, a permit), and
//! so does a client that goes away. A task that cannot finish ends the
//! body with an error, so the client never takes a cut-off answer for a
//! whole one.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};

use crate::metrics::Metrics;

/// How many chunks may wait for a slow client.
const CHUNKS_IN_FLIGHT: usize = 4;

/// The producing task's end of the body.
pub struct ChunkSender {
    sender: tokio::sync::mpsc::Sender<Bytes>,
    stall: Duration,
}

impl ChunkSender {
    /// Sends a chunk; `false` when the client has gone or has taken
    /// nothing for the stall limit (the task should stop).
    pub async fn send(&self, chunk: Vec<u8>) -> bool {
        matches!(
            tokio::time::timeout(self.stall, self.sender.send(Bytes::from(chunk))).await,
            Ok(Ok(()))
        )
    }
}

/// A body fed by `produce`, run as a task; `produce` answers whether it
/// sent the whole answer.
pub fn produced_body<F, Fut>(stall: Duration, metrics: &Arc<Metrics>, produce: F) -> Body
where
    F: FnOnce(ChunkSender) -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let sender = ChunkSender {
        sender,
        stall: stall.max(Duration::from_secs(1)),
    };
    let gave_up = Arc::new(AtomicBool::new(false));
    let producer_gave_up = gave_up.clone();
    let metrics = metrics.clone();
    tokio::spawn(async move {
        if !produce(sender).await {
            producer_gave_up.store(true, Ordering::Release);
            metrics.streams_cut.fetch_add(1, Ordering::Relaxed);
        }
    });
    let stream = futures_util::stream::unfold(
        (receiver, gave_up, false),
        |(mut receiver, gave_up, ended)| async move {
            if ended {
                return None;
            }
            match receiver.recv().await {
                Some(chunk) => Some((Ok(chunk), (receiver, gave_up, false))),
                None if gave_up.load(Ordering::Acquire) => Some((
                    Err(std::io::Error::other("the answer could not be sent whole")),
                    (receiver, gave_up, true),
                )),
                None => None,
            }
        },
    );
    Body::from_stream(stream)
}
