//! Connecting: the backend is chosen by the URL's scheme.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::backend::Backend;
use crate::{Result, StoreError};

/// Pool limits; every one of them is a setting of the binary.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Connections are recycled after this long: hosted PostgreSQL closes
    /// long-lived connections under the app's feet otherwise.
    pub max_lifetime: Duration,
    pub idle_timeout: Duration,
    pub acquire_timeout: Duration,
    /// SQLite's page cache per connection, in KiB (SQLite's own default is
    /// about 2 MiB a connection, which the memory budget cannot afford).
    pub sqlite_cache_kib: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 5,
            max_lifetime: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(1),
            sqlite_cache_kib: 1024,
        }
    }
}

/// The store: a pool and the backend it talks to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self> {
        let store = Self::connect_without_migrating(url, settings).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema.
    pub async fn connect_without_migrating(url: &str, settings: &PoolSettings) -> Result<Self> {
        let backend = Backend::from_url(url)?;
        if backend.asks_for_tls(url) && !cfg!(feature = "tls") {
            return Err(StoreError::TlsNotBuilt);
        }
        sqlx::any::install_default_drivers();
        let url = backend.connect_url(url);
        let options = AnyConnectOptions::from_str(&url)?;
        let session = backend.session_statements(settings);
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .min_connections(0)
            .max_lifetime(settings.max_lifetime)
            .idle_timeout(settings.idle_timeout)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let session = session.clone();
                Box::pin(async move {
                    for statement in session {
                        conn.execute(sqlx::AssertSqlSafe(statement)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Connections open and idle, for `/metrics`.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store {
    /// Runs SQL text as it is. For administration and tests (creating a
    /// schema), never with user input.
    pub async fn execute_raw(&self, sql: &str) -> Result<()> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
