//! What a database says about itself, per dialect: its tables, each
//! table's stored columns and primary key, the last id a table issued,
//! and the triggers an import holds back (backups read the schema from
//! here, so a column a migration adds travels with no change to them);
//! and the lock that runs migrations one process at a time.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::Backend;
use crate::{Result, StoreError};

/// The first key of the migrations' advisory lock ("sb" + "mi"); the
/// second is the schema's hash.
const MIGRATION_LOCK: i32 = 0x7362_6d69;

/// How a column's values are carried in a backup line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Integer,
    Real,
    Text,
    /// Base64 in a backup line.
    Blob,
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub kind: ColumnKind,
    pub nullable: bool,
}

/// A table's stored columns (generated ones left out), sorted by name as
/// backup lines write them, and its primary key in key order.
#[derive(Debug, Clone)]
pub(crate) struct TableShape {
    pub name: String,
    pub columns: Vec<Column>,
    /// Indexes into `columns`.
    pub key: Vec<usize>,
}

impl TableShape {
    pub fn has_id(&self) -> bool {
        self.columns.iter().any(|c| c.name == "id")
    }
}

fn unknown_type(table: &str, column: &str, declared: &str) -> StoreError {
    StoreError::Backup(format!(
        "column {table}.{column} has type {declared:?}, which backups do not carry"
    ))
}

/// SQLite's type affinity rules, for the types our migrations declare.
fn sqlite_kind(declared: &str) -> Option<ColumnKind> {
    let declared = declared.to_ascii_uppercase();
    if declared.contains("INT") {
        Some(ColumnKind::Integer)
    } else if ["CHAR", "CLOB", "TEXT"]
        .iter()
        .any(|t| declared.contains(t))
    {
        Some(ColumnKind::Text)
    } else if declared.contains("BLOB") {
        Some(ColumnKind::Blob)
    } else if ["REAL", "FLOA", "DOUB"]
        .iter()
        .any(|t| declared.contains(t))
    {
        Some(ColumnKind::Real)
    } else {
        None
    }
}

fn postgres_kind(data_type: &str) -> Option<ColumnKind> {
    match data_type {
        "bigint" | "integer" | "smallint" => Some(ColumnKind::Integer),
        "text" | "character varying" => Some(ColumnKind::Text),
        "double precision" | "real" => Some(ColumnKind::Real),
        "bytea" => Some(ColumnKind::Blob),
        _ => None,
    }
}

impl Backend {
    /// The names of the database's tables, the dialect's own included.
    pub(crate) async fn table_names(self, conn: &mut AnyConnection) -> Result<Vec<String>> {
        let sql = match self {
            Self::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            Self::Postgres => {
                "SELECT tablename::text AS name FROM pg_tables
                 WHERE schemaname = current_schema() ORDER BY tablename"
            }
        };
        let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| row.try_get("name").map_err(StoreError::from))
            .collect()
    }

    /// A table's stored columns and primary key.
    pub(crate) async fn table_shape(
        self,
        conn: &mut AnyConnection,
        table: &str,
    ) -> Result<TableShape> {
        // (name, kind, nullable, position in the key or 0)
        let mut found: Vec<(String, ColumnKind, bool, i64)> = Vec::new();
        match self {
            Self::Sqlite => {
                let rows = sqlx::query(
                    "SELECT name, type, \"notnull\" AS not_null, pk FROM pragma_table_info($1)",
                )
                .bind(table)
                .fetch_all(&mut *conn)
                .await?;
                for row in rows {
                    let name: String = row.try_get("name")?;
                    let declared: String = row.try_get("type")?;
                    let kind = sqlite_kind(&declared)
                        .ok_or_else(|| unknown_type(table, &name, &declared))?;
                    let not_null: i64 = row.try_get("not_null")?;
                    let key: i64 = row.try_get("pk")?;
                    // A key column is never null, whatever it declares.
                    found.push((name, kind, not_null == 0 && key == 0, key));
                }
            }
            Self::Postgres => {
                let rows = sqlx::query(
                    "SELECT c.column_name::text AS name, c.data_type::text AS data_type,
                            c.is_nullable::text AS nullable, c.is_generated::text AS generated,
                            COALESCE((SELECT k.ordinal_position::bigint
                               FROM information_schema.table_constraints t
                               JOIN information_schema.key_column_usage k
                                 ON k.constraint_name = t.constraint_name
                                AND k.table_schema = t.table_schema
                                AND k.table_name = t.table_name
                              WHERE t.constraint_type = 'PRIMARY KEY'
                                AND t.table_schema = c.table_schema
                                AND t.table_name = c.table_name
                                AND k.column_name = c.column_name), 0) AS pk
                     FROM information_schema.columns c
                     WHERE c.table_schema = current_schema() AND c.table_name = $1",
                )
                .bind(table)
                .fetch_all(&mut *conn)
                .await?;
                for row in rows {
                    let generated: String = row.try_get("generated")?;
                    if generated == "ALWAYS" {
                        continue;
                    }
                    let name: String = row.try_get("name")?;
                    let data_type: String = row.try_get("data_type")?;
                    let kind = postgres_kind(&data_type)
                        .ok_or_else(|| unknown_type(table, &name, &data_type))?;
                    let nullable: String = row.try_get("nullable")?;
                    found.push((name, kind, nullable == "YES", row.try_get("pk")?));
                }
            }
        }
        if found.is_empty() {
            return Err(StoreError::Backup(format!("there is no table {table}")));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut key: Vec<(i64, usize)> = found
            .iter()
            .enumerate()
            .filter(|(_, column)| column.3 > 0)
            .map(|(index, column)| (column.3, index))
            .collect();
        if key.is_empty() {
            return Err(StoreError::Backup(format!(
                "table {table} has no primary key to order its rows by"
            )));
        }
        key.sort();
        Ok(TableShape {
            name: table.to_owned(),
            columns: found
                .into_iter()
                .map(|(name, kind, nullable, _)| Column {
                    name,
                    kind,
                    nullable,
                })
                .collect(),
            key: key.into_iter().map(|(_, index)| index).collect(),
        })
    }

    /// How a key column orders rows: byte by byte on both backends, so
    /// that the same data gives the same lines (PostgreSQL would sort text
    /// by the database's locale otherwise).
    pub(crate) fn key_order(self, column: &Column) -> String {
        match (self, column.kind) {
            (Self::Postgres, ColumnKind::Text) => format!("{} COLLATE \"C\"", column.name),
            _ => column.name.clone(),
        }
    }

    /// Makes the transaction just begun on `conn` read one snapshot to
    /// its end: PostgreSQL must be asked (repeatable read); SQLite's
    /// snapshot is taken by the transaction's first read.
    pub(crate) async fn make_snapshot(self, conn: &mut AnyConnection) -> Result<()> {
        if self == Self::Postgres {
            sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Takes the lock that makes migration runs one at a time. PostgreSQL:
    /// a session advisory lock, per schema (tests and tenants share a
    /// database), held until [`Backend::unlock_migrations`] or the session
    /// ends. SQLite needs none: each migration's transaction takes the
    /// write lock first ([`Backend::migration_begin`]).
    pub(crate) async fn lock_migrations(self, conn: &mut AnyConnection) -> Result<()> {
        if self == Self::Postgres {
            sqlx::query(
                "SELECT 1 AS locked FROM (SELECT pg_advisory_lock($1, hashtext(current_schema()))) l",
            )
            .bind(MIGRATION_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn unlock_migrations(self, conn: &mut AnyConnection) -> Result<()> {
        if self == Self::Postgres {
            sqlx::query(
                "SELECT 1 AS unlocked FROM (SELECT pg_advisory_unlock($1, hashtext(current_schema()))) u",
            )
            .bind(MIGRATION_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// How a migration's transaction begins: SQLite takes its write lock
    /// at once, so that the check "applied yet?" and the migration happen
    /// under it (a deferred transaction would read first and race).
    pub(crate) fn migration_begin(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// The last id each of `tables` issued (0 for none yet): the same id
    /// is never issued twice, deleted rows' ids included.
    pub(crate) async fn last_ids(
        self,
        conn: &mut AnyConnection,
        tables: &[&TableShape],
    ) -> Result<BTreeMap<String, i64>> {
        let mut ids = BTreeMap::new();
        for table in tables.iter().filter(|t| t.has_id()) {
            let sql = match self {
                Self::Sqlite => "SELECT seq AS last FROM sqlite_sequence WHERE name = $1",
                Self::Postgres => {
                    "SELECT pg_sequence_last_value(
                        pg_get_serial_sequence($1, 'id')::regclass) AS last"
                }
            };
            let last: Option<Option<i64>> = sqlx::query(sql)
                .bind(table.name.as_str())
                .fetch_optional(&mut *conn)
                .await?
                .map(|row| row.try_get("last"))
                .transpose()?;
            ids.insert(table.name.clone(), last.flatten().unwrap_or(0));
        }
        Ok(ids)
    }

    /// Makes `last` the last id `table` has issued.
    pub(crate) async fn set_last_id(
        self,
        conn: &mut AnyConnection,
        table: &str,
        last: i64,
    ) -> Result<()> {
        match self {
            Self::Sqlite => {
                let updated = sqlx::query("UPDATE sqlite_sequence SET seq = $2 WHERE name = $1")
                    .bind(table)
                    .bind(last)
                    .execute(&mut *conn)
                    .await?;
                if updated.rows_affected() == 0 {
                    sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2)")
                        .bind(table)
                        .bind(last)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            // A sequence starts at 1: with nothing issued there is nothing to set.
            Self::Postgres if last >= 1 => {
                sqlx::query("SELECT setval(pg_get_serial_sequence($1, 'id'), $2) AS last")
                    .bind(table)
                    .bind(last)
                    .fetch_one(&mut *conn)
                    .await?;
            }
            Self::Postgres => {}
        }
        Ok(())
    }

    /// Stops the triggers on `tables` from firing until the statements
    /// returned are run, in the same transaction: PostgreSQL disables
    /// them; SQLite, which cannot, drops them and is given their own
    /// `CREATE TRIGGER` text back.
    pub(crate) async fn hold_triggers(
        self,
        conn: &mut AnyConnection,
        tables: &[&str],
    ) -> Result<Vec<String>> {
        let mut restore = Vec::new();
        match self {
            Self::Sqlite => {
                let rows = sqlx::query(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
                )
                .fetch_all(&mut *conn)
                .await?;
                for row in rows {
                    let name: String = row.try_get("name")?;
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP TRIGGER \"{name}\"")))
                        .execute(&mut *conn)
                        .await?;
                    restore.push(row.try_get("sql")?);
                }
            }
            Self::Postgres => {
                for table in tables {
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "ALTER TABLE {table} DISABLE TRIGGER USER"
                    )))
                    .execute(&mut *conn)
                    .await?;
                    restore.push(format!("ALTER TABLE {table} ENABLE TRIGGER USER"));
                }
            }
        }
        Ok(restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_to_how_values_travel() {
        assert_eq!(sqlite_kind("INTEGER"), Some(ColumnKind::Integer));
        assert_eq!(sqlite_kind("text"), Some(ColumnKind::Text));
        assert_eq!(sqlite_kind("BLOB"), Some(ColumnKind::Blob));
        assert_eq!(sqlite_kind("REAL"), Some(ColumnKind::Real));
        assert_eq!(sqlite_kind("NUMERIC"), None);
        assert_eq!(postgres_kind("bigint"), Some(ColumnKind::Integer));
        assert_eq!(postgres_kind("double precision"), Some(ColumnKind::Real));
        assert_eq!(postgres_kind("bytea"), Some(ColumnKind::Blob));
        assert_eq!(postgres_kind("tsvector"), None);
        let text = Column {
            name: "tag".into(),
            kind: ColumnKind::Text,
            nullable: false,
        };
        assert_eq!(Backend::Postgres.key_order(&text), "tag COLLATE \"C\"");
        assert_eq!(Backend::Sqlite.key_order(&text), "tag");
    }
}
