use sqlx::Row;
use std::time::Instant;
#[tokio::main]
async fn main() {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect("sqlite:///tmp/seed100k.db")
        .await
        .unwrap();
    let queries: Vec<String> = std::env::args().skip(1).collect();
    for q in queries {
        for _ in 0..3 {
            let t = Instant::now();
            let rows = sqlx::query(sqlx::AssertSqlSafe(q.clone()))
                .fetch_all(&pool)
                .await
                .unwrap();
            let first: Option<i64> = rows.first().and_then(|r| r.try_get::<i64, _>(0).ok());
            println!(
                "{:8.2} ms rows={} first={:?} {}",
                t.elapsed().as_secs_f64() * 1000.0,
                rows.len(),
                first,
                &q[..q.len().min(100)]
            );
        }
    }
}
