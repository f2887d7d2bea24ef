//! Backups, and moving between databases: [`Export`] writes every table
//! as JSON Lines from one consistent snapshot, a page at a time;
//! [`Store::import`](crate::Store::import) loads such a file into an empty
//! database of either backend in one transaction.
//!
//! The format is the contract's ("Backups and moving between databases"):
//! a header line, then one `{"row": {...}, "table": "<name>"}` line per
//! row, tables in [`TABLES`] order, rows by primary key, keys sorted.
//! `row` holds the table's stored columns as the database names them:
//! integers and reals as numbers, text as strings, binary as base64. The
//! columns are read from the database's own catalog, so a migration that
//! adds a column needs no change here; a migration that adds a table must
//! place it in [`TABLES`] or [`LEFT_OUT`], or every export refuses to run.

mod export;
mod import;
mod loader;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use export::Export;
pub use import::ImportSummary;

/// The header's `format`.
pub const FORMAT: &str = "storybook-export";
/// The header's `version`: the layout of the lines, not the schema.
pub const VERSION: i64 = 1;

/// Every table a backup carries, each after the tables it refers to.
const TABLES: &[&str] = &[
    "users",
    "django_imports",
    "stories",
    "story_tags",
    "drawings",
    "strokes",
    "drawing_collaborators",
    "drawing_invitations",
    "story_drawings",
    "likes",
    "story_reads",
    "reading_progress",
    "game_scores",
    "notifications",
    "reports",
    "audit_log",
];

/// Tables left out on purpose: secrets of the moment (tokens, reset
/// codes: after an import everyone signs in again) and the schema's own
/// bookkeeping (the header's `schema` says it).
const LEFT_OUT: &[&str] = &["tokens", "reset_codes", "schema_migrations"];

/// Tables the database keeps for itself or derives: SQLite's own
/// (`sqlite_sequence` becomes the header's `sequences`) and the full-text
/// index with its shadow tables, which an import rebuilds.
const DERIVED_PREFIXES: &[&str] = &["sqlite_", "stories_fts"];

/// The first line of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    // In name order: the keys of every line are sorted.
    pub exported_at: String,
    pub format: String,
    pub schema: i64,
    /// The last id each table issued, so an import never issues a deleted
    /// row's id again.
    pub sequences: BTreeMap<String, i64>,
    pub version: i64,
}

/// Which of the database's tables a backup carries, in [`TABLES`] order;
/// a table that is in no list is an error, so that a table added later
/// is never silently left behind.
fn tables_to_carry(present: &[String]) -> crate::Result<Vec<&'static str>> {
    for name in present {
        let known = TABLES.contains(&name.as_str())
            || LEFT_OUT.contains(&name.as_str())
            || DERIVED_PREFIXES.iter().any(|p| name.starts_with(p));
        if !known {
            return Err(crate::StoreError::Backup(format!(
                "table {name} is not known to backups: add it to TABLES or LEFT_OUT in \
                 crates/store/src/backup/mod.rs"
            )));
        }
    }
    Ok(TABLES
        .iter()
        .copied()
        .filter(|t| present.iter().any(|p| p == t))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_carried_left_out_or_derived() {
        let present: Vec<String> = ["audit_log", "users", "tokens", "stories_fts_idx", "stories"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            tables_to_carry(&present).unwrap(),
            ["users", "stories", "audit_log"],
            "in the fixed order, whatever the catalog's"
        );
        let unknown = [present, vec!["stickers".to_owned()]].concat();
        let error = tables_to_carry(&unknown).unwrap_err().to_string();
        assert!(error.contains("stickers"), "{error}");
    }
}
