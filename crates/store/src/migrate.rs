//! Embedded migrations: mirrored files in `migrations/sqlite` and
//! `migrations/postgres`, applied in order, each in its own transaction.
//!
//! A small runner of our own instead of `sqlx::migrate!`: the macro needs
//! sqlx's `macros` feature, which compiles SQLite and the PostgreSQL driver
//! a second time for the build host.

use sqlx::{AnyConnection, Connection};

use crate::backend::Backend;
use crate::db::Store;
use crate::{Result, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../../../migrations/postgres/", $name, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_accounts"),
    migration!(2, "0002_library"),
    migration!(3, "0003_creative"),
    migration!(4, "0004_invitations"),
    migration!(5, "0005_audit"),
    migration!(6, "0006_read_counter"),
    migration!(7, "0007_email_key"),
    migration!(8, "0008_reset_codes"),
    migration!(9, "0009_django_imports"),
];

/// The newest schema this build knows: an export's `schema` above it is
/// refused.
pub(crate) const LATEST_SCHEMA: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The migration that adds `users.email_key`, which SQL cannot compute.
const EMAIL_KEY_VERSION: i64 = 7;

impl Store {
    /// Applies every migration not applied yet; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        self.migrate_to(LATEST_SCHEMA).await
    }

    /// The newest migration applied (0 on a database never set up).
    pub(crate) async fn applied_schema(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        let tables = self.backend().table_names(&mut conn).await?;
        if !tables.iter().any(|t| t == "schema_migrations") {
            return Ok(0);
        }
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await?;
        Ok(sqlx::Row::try_get(&row, "version")?)
    }

    /// Applies the migrations up to `schema` not applied yet; returns how
    /// many ran. Any number of processes may run this at once on one
    /// database: the run holds the backend's migration lock (PostgreSQL:
    /// an advisory lock for the whole run; SQLite: its write lock for each
    /// migration, with the check that it is not applied yet inside), so
    /// each migration is applied exactly once and every process starts.
    pub(crate) async fn migrate_to(&self, schema: i64) -> Result<usize> {
        let backend = self.backend();
        let mut conn = self.pool.acquire().await?;
        // A session lock ends with its session: the connection is closed,
        // never handed back to the pool, so a run that fails or is
        // abandoned half-way (its future dropped) cannot leave the lock
        // held by an idle pooled connection. One connection a run.
        conn.close_on_drop();
        backend.lock_migrations(&mut conn).await?;
        let applied = apply(&mut conn, backend, schema).await;
        // Given back at once when the run ends normally; the close above
        // covers the rest.
        let _ = backend.unlock_migrations(&mut conn).await;
        applied
    }
}

/// The bookkeeping table, then each migration up to `schema` not applied
/// yet, each in its own transaction, on the connection that holds the
/// lock.
async fn apply(conn: &mut AnyConnection, backend: Backend, schema: i64) -> Result<usize> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await?;
    let mut applied = 0;
    for migration in MIGRATIONS.iter().take_while(|m| m.version <= schema) {
        let mut tx = conn.begin_with(backend.migration_begin()).await?;
        let done: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        let sql = backend.pick(migration.sqlite, migration.postgres);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migration {
                version: migration.version,
                source,
            })?;
        if migration.version == EMAIL_KEY_VERSION {
            crate::users::rekey_emails(&mut tx).await?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
        applied += 1;
    }
    Ok(applied)
}
