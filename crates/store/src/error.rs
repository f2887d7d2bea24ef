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

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut => Self::Busy,
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
