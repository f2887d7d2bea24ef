//! Storage for storybook: the models, the storage error and one SQL store
//! that runs on SQLite and PostgreSQL.
//!
//! Why one store over sqlx's `Any` driver rather than a trait with one
//! implementation per backend: almost every query is the same SQL on both
//! (`$N` placeholders, `RETURNING`, `ON CONFLICT`), so two copies would
//! drift. The few places where the dialects differ (full-text search) ask
//! [`Backend`] which SQL to run. The price is that `Any` only carries
//! integers, floats, strings and bytes: timestamps are stored as
//! milliseconds and flags as integers, and the models convert them.

mod audit;
mod backend;
mod backup;
mod db;
mod django;
mod drawings;
mod error;
mod games;
mod library;
mod migrate;
pub mod models;
mod notifications;
mod reading;
mod reports;
mod reset_codes;
mod search;
mod sql;
mod stories;
mod time;
mod tokens;
mod users;

pub use audit::{AuditAction, AuditEntry, AuditFilter, AuditNote, AuditTarget};
pub use backend::Backend;
pub use backup::{Export, ImportSummary};
pub use db::{PoolSettings, Store};
pub use django::{DjangoUser, Imported, username_base};
pub use drawings::{Drawing, DrawingChanges, StrokePages};
pub use error::StoreError;
pub use games::ScoreEntry;
pub use models::*;
pub use stories::{AdminEdit, StoryUpdate};
pub use time::Timestamp;
pub use users::{NewUser, UserFilter, email_key};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A value as the JSON text a column stores.
pub(crate) fn encode_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))
}

/// A column's JSON text as a value.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(sqlx::Error::Decode(e.into())))
}

/// `NotFound` when an update or delete matched no row.
pub(crate) fn touched_a_row(done: &sqlx::any::AnyQueryResult) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
