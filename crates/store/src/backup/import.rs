//! Loading a backup into an empty database: the file is read a line at a
//! time (each line bounded), every row written with its own ids in one
//! transaction (`loader`: checked, then batched), triggers held back so
//! that counters load as exported, the full-text index rebuilt as stories
//! arrive, and the tables' sequences set from the header. A backup of an
//! older schema is loaded into that schema and migrated after; a newer
//! one is refused.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::loader::{Loader, at_line};
use super::{FORMAT, Header, VERSION, tables_to_carry};
use crate::{Result, Store, StoreError};

/// The longest line an import reads: a story at its length limit or a
/// stroke of 2,000 points is far below it.
const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// Rows written, by table.
    pub rows: BTreeMap<String, u64>,
    /// The backup's schema, and the schema after the migrations that ran.
    pub schema_from: i64,
    pub schema_to: i64,
}

/// Reads the next line (without its newline) into `buf`; `false` at the
/// end of the file.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    number: u64,
) -> Result<bool> {
    buf.clear();
    let read = (&mut *reader)
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', buf)
        .await
        .map_err(|e| at_line(number, format!("cannot be read: {e}")))?;
    if read as u64 > MAX_LINE_BYTES {
        return Err(at_line(
            number,
            format!("longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(read > 0)
}

impl Store {
    /// Whether the database holds users or stories (an import refuses it).
    async fn holds_accounts_or_stories(&self, present: &[String]) -> Result<bool> {
        for table in ["users", "stories"] {
            if present.iter().any(|p| p == table) {
                let sql = format!("SELECT 1 AS found FROM {table} LIMIT 1");
                let found = sqlx::query(AssertSqlSafe(sql))
                    .fetch_optional(&self.pool)
                    .await?;
                if found.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Loads a backup into this database, which must hold no users and no
    /// stories; on any failure nothing of the backup is left.
    pub async fn import<R: AsyncBufRead + Unpin>(&self, mut reader: R) -> Result<ImportSummary> {
        let mut buf = Vec::new();
        if !read_line(&mut reader, &mut buf, 1).await? {
            return Err(at_line(1, "the file is empty"));
        }
        let header: Header = serde_json::from_slice(&buf)
            .map_err(|e| at_line(1, format!("not a storybook export header: {e}")))?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(at_line(
                1,
                format!(
                    "format {:?} version {} is not {FORMAT:?} version {VERSION}",
                    header.format, header.version
                ),
            ));
        }
        if header.schema > crate::migrate::LATEST_SCHEMA {
            return Err(at_line(
                1,
                format!(
                    "schema {} is newer than this storybook's {}: import it with a newer storybook",
                    header.schema,
                    crate::migrate::LATEST_SCHEMA
                ),
            ));
        }
        let backend = self.backend();
        let present = backend
            .table_names(&mut *self.pool.acquire().await?)
            .await?;
        if self.holds_accounts_or_stories(&present).await? {
            return Err(StoreError::Backup(
                "the database already holds users or stories: import into an empty one".into(),
            ));
        }
        let applied = self.applied_schema().await?;
        if applied > header.schema {
            return Err(StoreError::Backup(format!(
                "the backup is schema {} but this database is already at {applied}: import it \
                 into a database no storybook has set up yet (it is migrated after the import)",
                header.schema
            )));
        }
        self.migrate_to(header.schema).await?;

        let mut tx = self.pool.begin().await?;
        let present = backend.table_names(&mut tx).await?;
        let names = tables_to_carry(&present)?;
        let mut shapes = Vec::new();
        for name in &names {
            shapes.push(backend.table_shape(&mut tx, name).await?);
        }
        let restore = backend.hold_triggers(&mut tx, &names).await?;
        let mut loader = Loader::new(backend, &shapes);
        let mut number = 1;
        loop {
            number += 1;
            if !read_line(&mut reader, &mut buf, number).await? {
                break;
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            loader.load(&mut tx, &buf, number).await?;
        }
        loader.flush(&mut tx).await?;
        for shape in shapes.iter().filter(|s| s.has_id()) {
            let sql = format!("SELECT COALESCE(MAX(id), 0) AS last FROM {}", shape.name);
            let highest: i64 = sqlx::query(AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await?
                .try_get("last")?;
            let issued = header.sequences.get(&shape.name).copied().unwrap_or(0);
            backend
                .set_last_id(&mut tx, &shape.name, issued.max(highest))
                .await?;
        }
        for statement in restore {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.migrate().await?;
        Ok(ImportSummary {
            rows: loader.rows,
            schema_from: header.schema,
            schema_to: self.applied_schema().await?,
        })
    }
}
