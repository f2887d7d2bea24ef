//! `GET /api/admin/export` (contract v1.5, "Backups and moving between
//! databases"): the backup `storybook export` writes, streamed to an
//! admin, for hosts with no shell. One at a time; audited before the
//! snapshot opens; the snapshot and its connection are held only while
//! the client keeps reading (`http::streaming`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use storybook_store::{Export, Store, Timestamp};

use crate::config::Limits;
use crate::error::ApiResult;
use crate::extract::AdminUser;
use crate::http::streaming::{ChunkSender, produced_body};
use crate::metrics::Metrics;
use crate::pause::{PausePoint, Pauses};
use crate::state::Tools;
use axum::extract::State;

/// Pages of lines are sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

/// Admin: `GET /api/admin/export`.
pub(super) async fn export(
    State(store): State<Store>,
    State(tools): State<Tools>,
    State(limits): State<Arc<Limits>>,
    State(metrics): State<Arc<Metrics>>,
    State(pauses): State<Arc<Pauses>>,
    State(caches): State<crate::state::Caches>,
    AdminUser(admin): AdminUser,
) -> ApiResult<Response> {
    let slot = tools.backups.acquire().await?;
    // Reads acknowledged before the export are in its snapshot.
    caches.read_counter.flush(&store, &caches.reads).await?;
    store.record_export(admin.id).await?;
    pauses.reach(PausePoint::BackupStarted).await;
    let export = store.export().await?;
    let stall = Duration::from_secs(limits.response_stall_secs);
    let body = produced_body(stall, &metrics, move |sender| async move {
        let _slot = slot;
        send_export(export, &sender).await
    });
    let date = &Timestamp::now().to_string()[..10];
    let disposition = format!("attachment; filename=\"storybook-{date}.jsonl\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(crate::error::ApiError::internal)?,
            ),
        ],
        body,
    )
        .into_response())
}

/// Sends the whole backup; whether it was sent whole.
async fn send_export(mut export: Export, sender: &ChunkSender) -> bool {
    let mut chunk = export.header().as_bytes().to_vec();
    loop {
        match export.next_page(&mut chunk).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                tracing::error!(%error, "reading the backup failed mid-response");
                return false;
            }
        }
        if chunk.len() >= CHUNK_BYTES && !sender.send(std::mem::take(&mut chunk)).await {
            return false;
        }
    }
    sender.send(chunk).await
}
