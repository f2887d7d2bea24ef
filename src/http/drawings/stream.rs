//! A drawing's JSON, streamed: strokes read a page at a time (a database
//! connection held only per page) into bounded chunks, so a big drawing
//! costs about a megabyte however many strokes it has, and a reader that
//! stops taking it loses the stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use storybook_store::{Drawing, Store};

use crate::config::Limits;
use crate::metrics::Metrics;

/// Strokes read at once for a drawing's JSON (at most 2,000 points each:
/// about half a MiB decoded).
pub(super) const STROKES_PER_PAGE: i64 = 16;
/// A drawing's JSON goes out in chunks of about this many bytes…
const CHUNK_BYTES: usize = 64 * 1024;
/// …of which at most this many wait for a slow client: with a page of
/// strokes, about 1 MiB in flight per stream.
const CHUNKS_IN_FLIGHT: usize = 4;

/// The drawing with its strokes, streamed: the strokes are read and sent
/// a chunk at a time, so a drawing at the limits never sits in memory.
pub(super) fn drawing_response(
    store: &Store,
    limits: &Arc<Limits>,
    metrics: &Arc<Metrics>,
    drawing: Drawing,
) -> Response {
    let mut head = json!(drawing);
    head.as_object_mut().map(|o| o.remove("stroke_count"));
    let head = head.to_string();
    // `{...,"strokes":[` then the strokes, then `]}`.
    let opening = format!("{},\"strokes\":[", &head[..head.len() - 1]);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let store = store.clone();
    let stall = Duration::from_secs(limits.response_stall_secs.max(1));
    let id = drawing.id;
    let gave_up = Arc::new(AtomicBool::new(false));
    let producer_gave_up = gave_up.clone();
    let metrics = metrics.clone();
    tokio::spawn(async move {
        let finished = stream_strokes(&store, id, opening, &sender, stall).await;
        if !finished {
            // The client stopped reading, or the strokes could not be read:
            // the answer ends as an error, never as a cut-off JSON that
            // looks complete.
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
                    Err(std::io::Error::other("the drawing could not be sent whole")),
                    (receiver, gave_up, true),
                )),
                None => None,
            }
        },
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Writes a drawing's strokes to `sender` as JSON: a page of strokes is
/// read (a database connection held only for that), serialised, and sent
/// in chunks of about [`CHUNK_BYTES`]; at most [`CHUNKS_IN_FLIGHT`] wait
/// for the client. A client that takes none for `stall` ends the stream.
/// Whether the whole drawing was sent.
async fn stream_strokes(
    store: &storybook_store::Store,
    id: i64,
    opening: String,
    sender: &tokio::sync::mpsc::Sender<Bytes>,
    stall: Duration,
) -> bool {
    let send = |chunk: Vec<u8>| async move {
        matches!(
            tokio::time::timeout(stall, sender.send(Bytes::from(chunk))).await,
            Ok(Ok(()))
        )
    };
    let mut chunk = opening.into_bytes();
    let mut pages = store.stroke_pages(id, STROKES_PER_PAGE);
    let mut first = true;
    loop {
        let page = match pages.next_page().await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, drawing = id, "reading strokes failed mid-response");
                return false;
            }
        };
        for stroke in &page {
            if !first {
                chunk.push(b',');
            }
            first = false;
            chunk.extend_from_slice(json!(stroke).to_string().as_bytes());
            if chunk.len() >= CHUNK_BYTES && !send(std::mem::take(&mut chunk)).await {
                return false;
            }
        }
    }
    chunk.extend_from_slice(b"]}");
    send(chunk).await
}
