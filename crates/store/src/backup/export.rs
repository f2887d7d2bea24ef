//! Writing a backup: one read-only snapshot transaction, each table read
//! in primary-key order by keyset pages, so memory holds one page however
//! big the database is.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::{FORMAT, Header, VERSION, tables_to_carry};
use crate::backend::Backend;
use crate::backend::catalog::{ColumnKind, TableShape};
use crate::sql::placeholders;
use crate::{Result, Store, StoreError, Timestamp};

/// A value as a backup line carries it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Rows read at once, so that a page of the largest rows a table can
/// hold stays within a few MiB, whatever the data: a story at its length
/// limit (50 pages of 5,000 characters, kept as pages and again as body)
/// is up to about 2 MB of text and 4 MB as a line (quotes escaped), so a
/// page of 4 is at most about 8 MB read and 16 MB written; a stroke of
/// 2,000 points is 16 KB, 22 KB as base64. Every other row is small.
fn rows_per_page(table: &str) -> i64 {
    match table {
        "stories" => 4,
        "strokes" => 32,
        _ => 256,
    }
}

/// A table with its two page queries: the first page, and the page after
/// a key.
struct TableReader {
    shape: TableShape,
    first: String,
    next: String,
    limit: i64,
}

impl TableReader {
    fn new(backend: Backend, shape: TableShape) -> Self {
        let columns: Vec<&str> = shape.columns.iter().map(|c| c.name.as_str()).collect();
        let key: Vec<String> = shape
            .key
            .iter()
            .map(|&i| backend.key_order(&shape.columns[i]))
            .collect();
        let limit = rows_per_page(&shape.name);
        let select = format!("SELECT {} FROM {}", columns.join(", "), shape.name);
        let order = format!("ORDER BY {} LIMIT {limit}", key.join(", "));
        Self {
            first: format!("{select} {order}"),
            next: format!(
                "{select} WHERE ({}) > ({}) {order}",
                key.join(", "),
                placeholders(1, key.len())
            ),
            shape,
            limit,
        }
    }
}

/// A backup being written: [`Export::header`], then
/// [`Export::next_page`] until it says there is no more. Holds one
/// database connection (and, on PostgreSQL, one snapshot) until dropped.
pub struct Export {
    tx: Transaction<'static, Any>,
    tables: Vec<TableReader>,
    current: usize,
    /// The key of the last row written from the current table.
    after: Option<Vec<Cell>>,
    header: String,
    rows: u64,
}

impl Store {
    /// Opens the snapshot a backup is read from.
    pub async fn export(&self) -> Result<Export> {
        let backend = self.backend();
        let mut tx = self.pool.begin().await?;
        backend.make_snapshot(&mut tx).await?;
        let schema: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
                .fetch_one(&mut *tx)
                .await?
                .try_get("version")?;
        let present = backend.table_names(&mut tx).await?;
        let mut shapes = Vec::new();
        for name in tables_to_carry(&present)? {
            shapes.push(backend.table_shape(&mut tx, name).await?);
        }
        let sequences = backend
            .last_ids(&mut tx, &shapes.iter().collect::<Vec<_>>())
            .await?;
        let header = Header {
            exported_at: Timestamp::now().to_string(),
            format: FORMAT.to_owned(),
            schema,
            sequences,
            version: VERSION,
        };
        let mut header = serde_json::to_string(&header).map_err(encode_error)?;
        header.push('\n');
        Ok(Export {
            tx,
            tables: shapes
                .into_iter()
                .map(|shape| TableReader::new(backend, shape))
                .collect(),
            current: 0,
            after: None,
            header,
            rows: 0,
        })
    }
}

impl Export {
    /// The first line, newline included.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends the next page of lines to `out`; `false` once every table
    /// has been written (and nothing was appended).
    pub async fn next_page(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        while let Some(table) = self.tables.get(self.current) {
            let rows = match &self.after {
                None => {
                    sqlx::query(AssertSqlSafe(table.first.as_str()))
                        .fetch_all(&mut *self.tx)
                        .await?
                }
                Some(after) => {
                    let mut query = sqlx::query(AssertSqlSafe(table.next.as_str()));
                    for cell in after {
                        query = bind(query, cell);
                    }
                    query.fetch_all(&mut *self.tx).await?
                }
            };
            let mut last = None;
            for row in &rows {
                let cells = read_cells(&table.shape, row)?;
                write_line(out, &table.shape, &cells)?;
                last = Some(cells);
            }
            self.rows += rows.len() as u64;
            match last {
                Some(cells) if rows.len() as i64 == table.limit => {
                    self.after = Some(table.shape.key.iter().map(|&i| cells[i].clone()).collect());
                }
                _ => {
                    self.current += 1;
                    self.after = None;
                }
            }
            if !rows.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn encode_error(error: serde_json::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Encode(error.into()))
}

pub(super) fn bind<'q>(
    query: Query<'q, Any, AnyArguments>,
    cell: &'q Cell,
) -> Query<'q, Any, AnyArguments> {
    match cell {
        Cell::Null => query.bind(None::<i64>),
        Cell::Integer(value) => query.bind(*value),
        Cell::Real(value) => query.bind(*value),
        Cell::Text(value) => query.bind(value.as_str()),
        Cell::Blob(value) => query.bind(value.as_slice()),
    }
}

fn read_cells(shape: &TableShape, row: &AnyRow) -> Result<Vec<Cell>> {
    shape
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let cell = match column.kind {
                ColumnKind::Integer => row.try_get::<Option<i64>, _>(i)?.map(Cell::Integer),
                ColumnKind::Real => row.try_get::<Option<f64>, _>(i)?.map(Cell::Real),
                ColumnKind::Text => row.try_get::<Option<String>, _>(i)?.map(Cell::Text),
                ColumnKind::Blob => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Cell::Blob),
            };
            Ok(cell.unwrap_or(Cell::Null))
        })
        .collect()
}

/// `{"row":{...},"table":"<name>"}` and a newline: keys in name order,
/// the columns already are.
fn write_line(out: &mut Vec<u8>, shape: &TableShape, cells: &[Cell]) -> Result<()> {
    out.extend_from_slice(b"{\"row\":{");
    for (i, (column, cell)) in shape.columns.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &column.name).map_err(encode_error)?;
        out.push(b':');
        match cell {
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Integer(value) => out.extend_from_slice(value.to_string().as_bytes()),
            Cell::Real(value) => serde_json::to_writer(&mut *out, value).map_err(encode_error)?,
            Cell::Text(value) => serde_json::to_writer(&mut *out, value).map_err(encode_error)?,
            Cell::Blob(value) => {
                serde_json::to_writer(&mut *out, &BASE64.encode(value)).map_err(encode_error)?
            }
        }
    }
    out.extend_from_slice(b"},\"table\":");
    serde_json::to_writer(&mut *out, &shape.name).map_err(encode_error)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::catalog::Column;

    #[test]
    fn a_line_has_sorted_keys_and_carries_each_kind() {
        let column = |name: &str, kind| Column {
            name: name.into(),
            kind,
            nullable: true,
        };
        let shape = TableShape {
            name: "strokes".into(),
            columns: vec![
                column("color", ColumnKind::Text),
                column("id", ColumnKind::Integer),
                column("points", ColumnKind::Blob),
                column("tool", ColumnKind::Text),
                column("width", ColumnKind::Real),
            ],
            key: vec![1],
        };
        let cells = [
            Cell::Text("#ff0000 \"red\"".into()),
            Cell::Integer(7),
            Cell::Blob(vec![0, 1, 2, 255]),
            Cell::Null,
            Cell::Real(4.0),
        ];
        let mut out = Vec::new();
        write_line(&mut out, &shape, &cells).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"row\":{\"color\":\"#ff0000 \\\"red\\\"\",\"id\":7,\"points\":\"AAEC/w==\",\
             \"tool\":null,\"width\":4.0},\"table\":\"strokes\"}\n"
        );
        let reader = TableReader::new(Backend::Postgres, shape);
        assert_eq!(reader.limit, 32);
        assert!(
            reader
                .next
                .ends_with("WHERE (id) > ($1) ORDER BY id LIMIT 32")
        );
    }
}
