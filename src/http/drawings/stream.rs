//! A drawing's JSON, streamed: strokes read a page at a time (a database
//! connection held only per page) into bounded chunks, so a big drawing
//! costs about a megabyte however many strokes it has, and a reader that
//! stops taking it loses the stream.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use storybook_store::{Drawing, Store};

use crate::config::Limits;
use crate::http::streaming::{ChunkSender, produced_body};
use crate::metrics::Metrics;

/// Strokes read at once for a drawing's JSON (at most 2,000 points each:
/// about half a MiB decoded).
pub(super) const STROKES_PER_PAGE: i64 = 16;
/// A drawing's JSON goes out in chunks of about this many bytes, a few of
/// which wait for a slow client (`http::streaming`): with a page of
/// strokes, about 1 MiB in flight per stream.
const CHUNK_BYTES: usize = 64 * 1024;

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
    let store = store.clone();
    let stall = Duration::from_secs(limits.response_stall_secs);
    let id = drawing.id;
    let body = produced_body(stall, metrics, move |sender| async move {
        stream_strokes(&store, id, opening, &sender).await
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Writes a drawing's strokes to `sender` as JSON: a page of strokes is
/// read (a database connection held only for that), serialised, and sent
/// in chunks of about [`CHUNK_BYTES`]. Whether the whole drawing was sent.
async fn stream_strokes(
    store: &storybook_store::Store,
    id: i64,
    opening: String,
    sender: &ChunkSender,
) -> bool {
    let send = |chunk: Vec<u8>| sender.send(chunk);
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
