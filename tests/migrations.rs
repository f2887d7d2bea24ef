//! Contract v1.5, "Deploying": any number of processes starting at once on
//! one database all start, and each migration is applied exactly once
//! (two services of one blueprint starting together do this).

mod common;

use std::process::{Child, Stdio};

use common::TempDir;

const PROCESSES: usize = 4;
const ROUNDS: usize = 4;

fn migrate(database_url: &str) -> Child {
    common::process::storybook()
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the storybook binary")
}

/// Starts [`PROCESSES`] `storybook migrate` at once on a database nothing
/// has set up; each succeeds, and between them each migration ran once.
async fn all_at_once(database_url: &str) {
    let children: Vec<Child> = (0..PROCESSES).map(|_| migrate(database_url)).collect();
    let mut applied = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "a migrate failed: {out}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        applied += out
            .lines()
            .find_map(|line| line.strip_suffix(" migration(s) applied"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("the count of migrations applied: {out}"));
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let versions: Vec<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        applied,
        versions.len(),
        "each migration applied by exactly one process"
    );
    assert!(versions.len() >= 9, "{versions:?}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_on_postgres_each_apply_once() {
    for _ in 0..ROUNDS {
        let Some(url) = common::fresh_postgres_url().await else {
            return;
        };
        all_at_once(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_on_sqlite_each_apply_once() {
    for _ in 0..ROUNDS {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("fresh.db").display());
        all_at_once(&url).await;
    }
}
