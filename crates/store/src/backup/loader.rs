//! Writing an import's rows: each line is checked against its table's
//! columns (named by its line number when it does not fit), then rows go
//! to the database in multi-row `INSERT`s, a batch at a time, so that an
//! import into a database across the internet costs one round trip per
//! batch rather than per row. A batch the database refuses is replayed a
//! row at a time under a savepoint to name the line it refused.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, AssertSqlSafe};

use super::TABLES;
use super::export::{Cell, bind};
use crate::backend::catalog::{ColumnKind, TableShape};
use crate::backend::{Backend, IndexedText};
use crate::sql::value_rows;
use crate::{Result, StoreError};

/// Rows written by one statement, at most (and at most
/// [`MAX_BATCH_PARAMETERS`] values: both backends cap a statement's).
const MAX_BATCH_ROWS: usize = 200;
const MAX_BATCH_PARAMETERS: usize = 30_000;
/// A batch is written once its text and binary values pass this size.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    table: String,
    row: Map<String, Value>,
}

pub(super) fn at_line(line: u64, why: impl std::fmt::Display) -> StoreError {
    StoreError::Backup(format!("line {line}: {why}"))
}

/// A checked row waiting for its batch.
struct Pending {
    line: u64,
    cells: Vec<Cell>,
}

/// Checks and writes rows as their lines come.
pub(super) struct Loader<'a> {
    backend: Backend,
    shapes: &'a [TableShape],
    /// The table of the last line: tables come in the fixed order.
    current: usize,
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// Rows written, by table.
    pub rows: BTreeMap<String, u64>,
}

impl<'a> Loader<'a> {
    pub fn new(backend: Backend, shapes: &'a [TableShape]) -> Self {
        Self {
            backend,
            shapes,
            current: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            rows: BTreeMap::new(),
        }
    }

    /// Takes one line; writes a batch when one is full.
    pub async fn load(&mut self, conn: &mut AnyConnection, text: &[u8], line: u64) -> Result<()> {
        let parsed: Line = serde_json::from_slice(text)
            .map_err(|e| at_line(line, format!("not a {{\"table\", \"row\"}} line: {e}")))?;
        let index = self
            .shapes
            .iter()
            .position(|s| s.name == parsed.table)
            .ok_or_else(|| {
                at_line(
                    line,
                    if TABLES.contains(&parsed.table.as_str()) {
                        format!("table {} is not in this schema", parsed.table)
                    } else {
                        format!("unknown table {:?}", parsed.table)
                    },
                )
            })?;
        if index < self.current {
            return Err(at_line(
                line,
                format!(
                    "table {} comes after {}: tables are in a fixed order",
                    parsed.table, self.shapes[self.current].name
                ),
            ));
        }
        if index != self.current {
            self.flush(conn).await?;
            self.current = index;
        }
        let cells = cells_of(&self.shapes[index], &parsed.row).map_err(|why| at_line(line, why))?;
        let parameters = (self.pending.len() + 1) * cells.len();
        self.pending_bytes += cells.iter().map(cell_bytes).sum::<usize>();
        self.pending.push(Pending { line, cells });
        if self.pending.len() >= MAX_BATCH_ROWS
            || parameters + self.shapes[index].columns.len() > MAX_BATCH_PARAMETERS
            || self.pending_bytes >= MAX_BATCH_BYTES
        {
            self.flush(conn).await?;
        }
        Ok(())
    }

    /// Writes the rows waiting.
    pub async fn flush(&mut self, conn: &mut AnyConnection) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let shape = &self.shapes[self.current];
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        sqlx::raw_sql("SAVEPOINT import_batch")
            .execute(&mut *conn)
            .await?;
        let rows: Vec<&[Cell]> = pending.iter().map(|p| p.cells.as_slice()).collect();
        match insert(conn, shape, &rows).await {
            Ok(()) => {
                sqlx::raw_sql("RELEASE SAVEPOINT import_batch")
                    .execute(&mut *conn)
                    .await?;
            }
            Err(batch_error) => {
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT import_batch")
                    .execute(&mut *conn)
                    .await?;
                // Row by row, to name the line the database refuses.
                for row in &pending {
                    if let Err(error) = insert(conn, shape, &[row.cells.as_slice()]).await {
                        return Err(at_line(
                            row.line,
                            format!("{} refused the row: {error}", shape.name),
                        ));
                    }
                }
                return Err(at_line(
                    pending[0].line,
                    format!("{} refused the rows from here: {batch_error}", shape.name),
                ));
            }
        }
        if shape.name == "stories" {
            for row in &pending {
                self.index_story(conn, shape, row).await?;
            }
        }
        *self.rows.entry(shape.name.clone()).or_default() += pending.len() as u64;
        Ok(())
    }

    /// Puts a published story in the full-text index (SQLite's is a table
    /// of its own; PostgreSQL's column is generated from the row).
    async fn index_story(
        &self,
        conn: &mut AnyConnection,
        shape: &TableShape,
        row: &Pending,
    ) -> Result<()> {
        let cell = |name: &str| {
            shape
                .columns
                .iter()
                .position(|c| c.name == name)
                .map(|i| &row.cells[i])
        };
        let text = |name: &str| match cell(name) {
            Some(Cell::Text(text)) => text.as_str(),
            _ => "",
        };
        let tags: Vec<String> = serde_json::from_str(text("tags")).map_err(|e| {
            at_line(
                row.line,
                format!("stories.tags is not a JSON list of tags: {e}"),
            )
        })?;
        let id = match cell("id") {
            Some(Cell::Integer(id)) => *id,
            _ => return Err(at_line(row.line, "a story without an id")),
        };
        let story = IndexedText {
            id,
            title: text("title"),
            body: text("body"),
            tags: &tags,
            published: text("status") == "published",
        };
        self.backend.index_text(conn, story).await
    }
}

/// One multi-row `INSERT` of `rows`, columns in name order.
async fn insert(conn: &mut AnyConnection, shape: &TableShape, rows: &[&[Cell]]) -> Result<()> {
    let columns: Vec<&str> = shape.columns.iter().map(|c| c.name.as_str()).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        shape.name,
        columns.join(", "),
        value_rows(rows.len(), columns.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
    for row in rows {
        for (cell, column) in row.iter().zip(&shape.columns) {
            // A null is sent as its column's type: PostgreSQL checks it.
            query = match (cell, column.kind) {
                (Cell::Null, ColumnKind::Text) => query.bind(None::<String>),
                (Cell::Null, ColumnKind::Real) => query.bind(None::<f64>),
                (Cell::Null, ColumnKind::Blob) => query.bind(None::<Vec<u8>>),
                _ => bind(query, cell),
            };
        }
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

fn cell_bytes(cell: &Cell) -> usize {
    match cell {
        Cell::Text(text) => text.len(),
        Cell::Blob(bytes) => bytes.len(),
        _ => 8,
    }
}

/// A row's values in the table's column order, each checked against its
/// column; the error says which column and what it must be.
fn cells_of(
    shape: &TableShape,
    row: &Map<String, Value>,
) -> std::result::Result<Vec<Cell>, String> {
    if let Some(extra) = row
        .keys()
        .find(|k| !shape.columns.iter().any(|c| &c.name == *k))
    {
        return Err(format!("{} has no column {extra:?}", shape.name));
    }
    shape
        .columns
        .iter()
        .map(|column| {
            let value = row.get(&column.name).unwrap_or(&Value::Null);
            let wrong = || {
                let null = if column.nullable { " or null" } else { "" };
                let kind = match column.kind {
                    ColumnKind::Integer => "an integer",
                    ColumnKind::Real => "a number",
                    ColumnKind::Text => "a string",
                    ColumnKind::Blob => "base64 text",
                };
                format!("{}.{} must be {kind}{null}", shape.name, column.name)
            };
            if value.is_null() {
                return if column.nullable {
                    Ok(Cell::Null)
                } else {
                    Err(wrong())
                };
            }
            Ok(match column.kind {
                ColumnKind::Integer => Cell::Integer(value.as_i64().ok_or_else(wrong)?),
                ColumnKind::Real => Cell::Real(value.as_f64().ok_or_else(wrong)?),
                ColumnKind::Text => Cell::Text(value.as_str().ok_or_else(wrong)?.to_owned()),
                ColumnKind::Blob => {
                    let text = value.as_str().ok_or_else(wrong)?;
                    Cell::Blob(BASE64.decode(text).map_err(|_| wrong())?)
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::catalog::Column;

    #[test]
    fn rows_are_checked_column_by_column() {
        let column = |name: &str, kind, nullable| Column {
            name: name.into(),
            kind,
            nullable,
        };
        let shape = TableShape {
            name: "strokes".into(),
            columns: vec![
                column("id", ColumnKind::Integer, false),
                column("points", ColumnKind::Blob, false),
                column("tool", ColumnKind::Text, true),
                column("width", ColumnKind::Real, false),
            ],
            key: vec![0],
        };
        let row = |value: Value| value.as_object().unwrap().clone();
        let cells = cells_of(
            &shape,
            &row(serde_json::json!({"id": 3, "points": "AAEC/w==", "tool": null, "width": 2})),
        )
        .unwrap();
        assert_eq!(
            cells,
            [
                Cell::Integer(3),
                Cell::Blob(vec![0, 1, 2, 255]),
                Cell::Null,
                Cell::Real(2.0)
            ]
        );
        let refused = |value: Value| cells_of(&shape, &row(value)).unwrap_err();
        assert_eq!(
            refused(serde_json::json!({"id": "3", "points": "", "width": 1})),
            "strokes.id must be an integer"
        );
        assert_eq!(
            refused(serde_json::json!({"id": 3, "points": "%%", "width": 1})),
            "strokes.points must be base64 text"
        );
        assert_eq!(
            refused(serde_json::json!({"id": 3, "points": "", "width": null})),
            "strokes.width must be a number"
        );
        assert_eq!(
            refused(serde_json::json!({"id": 3, "points": "", "width": 1, "colour": "red"})),
            "strokes has no column \"colour\""
        );
    }
}
