//! Notifications: written when something happens to a user, read and
//! marked read by that user.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Notification, Page, PageRequest, Result, Store, Timestamp, touched_a_row};

fn notification_from_row(row: &AnyRow) -> Result<Notification> {
    let data: String = row.try_get("data")?;
    Ok(Notification {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        read: row.try_get::<i64, _>("read")? != 0,
        created_at: Timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    pub async fn create_notification(
        &self,
        user_id: i64,
        kind: &str,
        data: &serde_json::Value,
    ) -> Result<Notification> {
        let row = sqlx::query(
            "INSERT INTO notifications (user_id, kind, data, read, created_at) VALUES ($1, $2, $3, 0, $4)
             RETURNING id, kind, data, read, created_at",
        )
        .bind(user_id)
        .bind(kind)
        .bind(data.to_string())
        .bind(Timestamp::now().millis())
        .fetch_one(&self.pool)
        .await?;
        notification_from_row(&row)
    }

    /// A user's notifications, newest first, optionally only (un)read ones,
    /// with the number of unread ones.
    pub async fn list_notifications(
        &self,
        user_id: i64,
        read: Option<bool>,
        page: PageRequest,
    ) -> Result<(Page<Notification>, i64)> {
        let read_flag = read.map(i64::from);
        let condition = "user_id = $1 AND ($2 IS NULL OR read = $2)";
        let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM notifications WHERE {condition}"
        )))
        .bind(user_id)
        .bind(read_flag)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, kind, data, read, created_at FROM notifications WHERE {condition}
             ORDER BY id DESC LIMIT $3 OFFSET $4"
        )))
        .bind(user_id)
        .bind(read_flag)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let (unread,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read = 0")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        let items = rows
            .iter()
            .map(notification_from_row)
            .collect::<Result<_>>()?;
        Ok((Page { items, total }, unread))
    }

    /// Marks one of the user's notifications read; `NotFound` for anyone
    /// else's.
    pub async fn mark_notification_read(&self, user_id: i64, id: i64) -> Result<()> {
        let done = sqlx::query("UPDATE notifications SET read = 1 WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        touched_a_row(&done)?;
        Ok(())
    }

    pub async fn mark_all_notifications_read(&self, user_id: i64) -> Result<()> {
        sqlx::query("UPDATE notifications SET read = 1 WHERE user_id = $1 AND read = 0")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
