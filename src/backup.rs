//! `storybook export` and `storybook import`: backups on files (or
//! standard output), over the store's export and import. The HTTP export
//! (`GET /api/admin/export`) streams the same lines.

use std::path::{Path, PathBuf};
use std::time::Instant;

use storybook_store::Store;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

/// A backup is written out in pieces of about this size.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Writes a backup to `output` (standard output when `None`) and says
/// what was written. A file is written beside its name and renamed once
/// whole, so a failed backup never passes for a good one.
pub async fn export(store: &Store, output: Option<&Path>) -> Result<String, String> {
    let started = Instant::now();
    let rows = match output {
        None => write_export(store, tokio::io::stdout()).await?.0,
        Some(path) => {
            let partial = partial_name(path);
            let file = tokio::fs::File::create(&partial)
                .await
                .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
            let written = match write_export(store, file).await {
                // Synced before it is renamed into place.
                Ok((rows, file)) => file
                    .sync_all()
                    .await
                    .map(|()| rows)
                    .map_err(|e| format!("cannot write the backup: {e}")),
                Err(error) => Err(error),
            };
            if written.is_err() {
                let _ = tokio::fs::remove_file(&partial).await;
            }
            let rows = written?;
            tokio::fs::rename(&partial, path)
                .await
                .map_err(|e| format!("cannot name the backup {}: {e}", path.display()))?;
            rows
        }
    };
    Ok(format!("exported {rows} rows in {:.1?}", started.elapsed()))
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes the whole backup; the rows written and the writer, flushed.
async fn write_export<W: AsyncWrite + Unpin>(store: &Store, out: W) -> Result<(u64, W), String> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, out);
    let failed = |e: std::io::Error| format!("cannot write the backup: {e}");
    let mut export = store.export().await.map_err(|e| e.to_string())?;
    out.write_all(export.header().as_bytes())
        .await
        .map_err(failed)?;
    let mut page = Vec::new();
    while export
        .next_page(&mut page)
        .await
        .map_err(|e| e.to_string())?
    {
        out.write_all(&page).await.map_err(failed)?;
        page.clear();
    }
    out.flush().await.map_err(failed)?;
    Ok((export.rows(), out.into_inner()))
}

/// Loads a backup file into the (empty) database and says what was loaded.
pub async fn import(store: &Store, file: &Path) -> Result<String, String> {
    let started = Instant::now();
    let opened = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let summary = store
        .import(BufReader::with_capacity(WRITE_BUFFER_BYTES, opened))
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let total: u64 = summary.rows.values().sum();
    let tables: Vec<String> = summary
        .rows
        .iter()
        .map(|(table, rows)| format!("{table} {rows}"))
        .collect();
    let migrated = if summary.schema_to > summary.schema_from {
        format!(
            ", migrated from schema {} to {}",
            summary.schema_from, summary.schema_to
        )
    } else {
        String::new()
    };
    Ok(format!(
        "imported {total} rows in {:.1?} ({}){migrated}",
        started.elapsed(),
        tables.join(", ")
    ))
}
