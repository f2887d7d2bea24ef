//! The storage layer's one error type.

/// What can go wrong in storage, in the terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit; the text names what was taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row is no longer in the state the write needs (a report that
    /// is not open any more); the text says what.
    #[error("stale: {0}")]
    Stale(String),
    /// A rule of the data refused the write: `field` is the input it
    /// names, `why` the rule (the last active admin stays one).
    #[error("refused: {field} {why}")]
    Refused { field: &'static str, why: String },
    /// A per-user allowance is used up until `retry_after_secs` from now.
    #[error("rate limited for {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A write would pass a limit (`what` names it, e.g. `strokes`).
    #[error("limit reached: {0}")]
    Limit(String),
    /// The database URL names a backend we do not have.
    #[error("unsupported database URL scheme {0:?}: use sqlite: or postgres:")]
    UnsupportedScheme(String),
    /// The database URL asks for TLS (`sslmode=require`, `verify-ca`,
    /// `verify-full`) and this build has none.
    #[error(
        "the database URL asks for TLS, which this build does not have: build with \
         `cargo build --release --features tls` (for the commands run from your machine)"
    )]
    TlsNotBuilt,
    #[error("migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    /// No connection came free within the pool's acquire time: the
    /// database is short, not broken (`503 busy`, never `500`).
    #[error("no database connection came free in time")]
    Busy,
    /// A backup could not be written or read; the text says why (and, for
    /// an import, at which line).
    #[error("{0}")]
    Backup(String),
    /// Anything else the driver reports; never shown to clients.
    #[error(transparent)]
    Database(sqlx::Error),
}

/// Database error codes that mean "short of something for now", not "broken":
/// SQLite's busy and locked (with their extended codes: a writer that waited
/// out `busy_timeout` behind another, as under CPU starvation) and
/// PostgreSQL's too many connections, insufficient resources, out of
/// memory, starting or stopping, lock not available, statement time-out,
/// serialisation failure and deadlock. SQLite's codes are numbers and
/// PostgreSQL's five-character SQLSTATEs, so one list serves both.
const SHORT_OF_RESOURCES: &[&str] = &[
    "5", "6", "261", "262", "517", "518", "773", // SQLite
    "53000", "53200", "53300", "57P03", "55P03", "57014", "40001", "40P01", // PostgreSQL
];

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // Contract v1.6: a short resource is `busy`, never `500`.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_) => Self::Busy,
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|code| SHORT_OF_RESOURCES.contains(&code.as_ref())) =>
            {
                Self::Busy
            }
            other => Self::Database(other),
        }
    }
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, else wraps it.
    /// SQLite cannot name the constraint, so the caller says what was taken.
    pub(crate) fn unique_as(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(what.to_owned())
            }
            _ => StoreError::from(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{PoolSettings, Store, StoreError};

    /// A writer that waits out `busy_timeout` behind another (what CPU
    /// starvation does to SQLite) is `Busy`, not a broken database.
    #[tokio::test]
    async fn a_database_locked_for_too_long_is_busy() {
        let dir = std::env::temp_dir().join(format!("busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("busy.db").display());
        let store = Store::connect(&url, &PoolSettings::default())
            .await
            .unwrap();
        let mut holder = store.pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *holder)
            .await
            .unwrap();
        let mut waiter = store.pool.acquire().await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 20")
            .execute(&mut *waiter)
            .await
            .unwrap();
        let error = sqlx::query("DELETE FROM users")
            .execute(&mut *waiter)
            .await
            .expect_err("the write lock is held");
        assert!(
            matches!(StoreError::from(error), StoreError::Busy),
            "SQLite's busy is Busy"
        );
        sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
        drop((holder, waiter, store));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
