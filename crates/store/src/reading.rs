//! What readers do with a story: likes, reads (counted once per reader)
//! and their place in it.

use sqlx::{Any, Row, Transaction};

use crate::sql::Sql;
use crate::stories::{summary_columns, summary_from_row};
use crate::{
    LikeOutcome, Page, PageRequest, Progress, Result, Store, StoreError, StorySummary, Timestamp,
};

impl Store {
    /// Which of `story_ids` the user likes now.
    pub async fn liked_among(&self, user_id: i64, story_ids: &[i64]) -> Result<Vec<i64>> {
        if story_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        let user = sql.int(user_id);
        let placeholders: Vec<String> = story_ids.iter().map(|id| sql.int(*id)).collect();
        sql.text = format!(
            "SELECT story_id FROM likes WHERE user_id = {user} AND active = 1 AND story_id IN ({})",
            placeholders.join(", ")
        );
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("story_id")?)).collect()
    }

    /// The ids of the stories a user likes, at most `limit` of them (ask
    /// for one more than you will keep to know whether there were more).
    pub async fn liked_story_ids(&self, user_id: i64, limit: i64) -> Result<Vec<i64>> {
        let rows =
            sqlx::query("SELECT story_id FROM likes WHERE user_id = $1 AND active = 1 LIMIT $2")
                .bind(user_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get("story_id")?)).collect()
    }

    /// Likes a story (idempotent). Each statement writes before it reads, so
    /// concurrent likes on SQLite wait for the lock instead of failing.
    pub async fn like(&self, user_id: i64, story_id: i64) -> Result<LikeOutcome> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO likes (user_id, story_id, active, created_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (user_id, story_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(story_id)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let reactivated = !inserted
            && sqlx::query(
                "UPDATE likes SET active = 1 WHERE user_id = $1 AND story_id = $2 AND active = 0",
            )
            .bind(user_id)
            .bind(story_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        let likes = add_likes(&mut tx, story_id, i64::from(inserted || reactivated)).await?;
        tx.commit().await?;
        Ok(LikeOutcome {
            likes,
            liked: true,
            first_like: inserted,
        })
    }

    /// Takes a like back (idempotent).
    pub async fn unlike(&self, user_id: i64, story_id: i64) -> Result<LikeOutcome> {
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query(
            "UPDATE likes SET active = 0 WHERE user_id = $1 AND story_id = $2 AND active = 1",
        )
        .bind(user_id)
        .bind(story_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let likes = add_likes(&mut tx, story_id, -(removed as i64)).await?;
        tx.commit().await?;
        Ok(LikeOutcome {
            likes,
            liked: false,
            first_like: false,
        })
    }

    /// Counts a read once per user per story; returns whether it counted.
    pub async fn count_read(&self, user_id: i64, story_id: i64) -> Result<bool> {
        // One statement: the `story_reads_count` trigger (migration 6)
        // bumps the story's counter when the row is new.
        let inserted = sqlx::query(
            "INSERT INTO story_reads (user_id, story_id) VALUES ($1, $2) ON CONFLICT (user_id, story_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(story_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        Ok(inserted)
    }

    /// Whether a user's read of a story is counted already.
    pub async fn has_read(&self, user_id: i64, story_id: i64) -> Result<bool> {
        let found = sqlx::query("SELECT 1 FROM story_reads WHERE user_id = $1 AND story_id = $2")
            .bind(user_id)
            .bind(story_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// The stories a user has read, at most `limit` + 1 of them (more than
    /// `limit` tells the caller the list is not whole).
    pub async fn stories_read_by(&self, user_id: i64, limit: usize) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT story_id FROM story_reads WHERE user_id = $1 LIMIT $2")
                .bind(user_id)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Counts many reads (user, story) at once, each once per user per
    /// story: one transaction of multi-row inserts, which is what makes a
    /// crowd of first reads cheap (one commit, not one each).
    pub async fn count_reads(&self, reads: &[(i64, i64)]) -> Result<()> {
        // Two values a row; SQLite allows 32,766 parameters a statement.
        const ROWS_A_STATEMENT: usize = 500;
        let mut tx = self.pool.begin().await?;
        for chunk in reads.chunks(ROWS_A_STATEMENT) {
            // A story or user deleted since its read was taken is skipped,
            // not a foreign-key failure of the whole batch.
            let text = format!(
                "WITH r(u, s) AS (VALUES {}) \
                 INSERT INTO story_reads (user_id, story_id) SELECT u, s FROM r \
                 WHERE EXISTS (SELECT 1 FROM stories WHERE id = s) AND EXISTS (SELECT 1 FROM users WHERE id = u) \
                 ON CONFLICT (user_id, story_id) DO NOTHING",
                crate::sql::value_rows(chunk.len(), 2)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
            for (user_id, story_id) in chunk {
                query = query.bind(*user_id).bind(*story_id);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the page a reader is on; `completed` once set stays set.
    pub async fn set_progress(
        &self,
        user_id: i64,
        story_id: i64,
        page: i64,
        completed: bool,
    ) -> Result<Progress> {
        let row = sqlx::query(
            "INSERT INTO reading_progress (user_id, story_id, page, completed, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, story_id) DO UPDATE SET
                 page = excluded.page,
                 completed = CASE WHEN reading_progress.completed = 1 OR excluded.completed = 1 THEN 1 ELSE 0 END,
                 updated_at = excluded.updated_at
             RETURNING page, completed, updated_at",
        )
        .bind(user_id)
        .bind(story_id)
        .bind(page)
        .bind(i64::from(completed))
        .bind(Timestamp::now().millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(Progress {
            page: row.try_get("page")?,
            completed: row.try_get::<i64, _>("completed")? != 0,
            updated_at: Timestamp(row.try_get("updated_at")?),
        })
    }

    /// A reader's progress, newest first, over the stories they may still
    /// see (published ones and their own).
    pub async fn reading_list(
        &self,
        user_id: i64,
        page: PageRequest,
    ) -> Result<Page<(StorySummary, Progress)>> {
        let visible = "FROM reading_progress p JOIN stories s ON s.id = p.story_id JOIN users u ON u.id = s.author_id
                       WHERE p.user_id = $1 AND (s.status = 'published' OR s.author_id = $1)";
        let (total,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {visible}")))
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {}, p.page AS progress_page, p.completed AS progress_completed, p.updated_at AS progress_updated_at
             {visible} ORDER BY p.updated_at DESC, s.id DESC LIMIT $2 OFFSET $3",
            summary_columns()
        )))
        .bind(user_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok((
                    summary_from_row(row)?,
                    Progress {
                        page: row.try_get("progress_page")?,
                        completed: row.try_get::<i64, _>("progress_completed")? != 0,
                        updated_at: Timestamp(row.try_get("progress_updated_at")?),
                    },
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Page { items, total })
    }
}

/// Moves a story's like counter by `delta` (atomically, in the caller's
/// transaction) and returns the new count; `NotFound` for no such story.
async fn add_likes(tx: &mut Transaction<'_, Any>, story_id: i64, delta: i64) -> Result<i64> {
    let (likes,): (i64,) =
        sqlx::query_as("UPDATE stories SET likes = likes + $2 WHERE id = $1 RETURNING likes")
            .bind(story_id)
            .bind(delta)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound)?;
    Ok(likes)
}
