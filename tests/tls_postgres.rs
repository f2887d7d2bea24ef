//! PostgreSQL over TLS for the commands an admin runs from their machine
//! against a hosted database (`--features tls`; README, "Moving in" and
//! "Backups"). The local PostgreSQL serves TLS with Debian's own
//! certificate, so `sslmode=require` (encrypted, not verified) reaches
//! it. `scripts/test` runs this file in the `tls` build; in the server
//! builds, which have no TLS, the same URL is refused with the command
//! that builds one.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_asks_for_tls_gets_it_or_a_clear_refusal() {
    let Some(url) = common::fresh_postgres_url().await else {
        return;
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let tls_url = format!("{url}{separator}sslmode=require");
    let output = common::process::storybook()
        .arg("migrate")
        .env("DATABASE_URL", &tls_url)
        .output()
        .expect("the storybook binary");
    let error = String::from_utf8_lossy(&output.stderr);
    if cfg!(feature = "tls") {
        assert!(output.status.success(), "{error}");
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&tls_url).await.unwrap();
        let (encrypted,): (bool,) =
            sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(encrypted, "the connection is encrypted");
        pool.close().await;
    } else {
        assert!(!output.status.success());
        assert!(error.contains("--features tls"), "{error}");
    }
}
