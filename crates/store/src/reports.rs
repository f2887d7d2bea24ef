//! Reports of stories and the moderators' queue; admin totals.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AuditAction, AuditNote};
use crate::stories::{summary_columns, summary_from_row};
use crate::users::user_summary_from_row;
use crate::{
    Page, PageRequest, Report, ReportAction, ReportStatus, Result, Store, StoreError, StoryChanges,
    StoryStatus, Timestamp, Totals,
};

fn report_from_row(row: &AnyRow) -> Result<Report> {
    let status: String = row.try_get("report_status")?;
    let story_id: Option<i64> = row.try_get("report_story_id")?;
    let has_story: Option<i64> = row.try_get("id")?;
    Ok(Report {
        id: row.try_get("report_id")?,
        status: ReportStatus::parse(&status).unwrap_or(ReportStatus::Open),
        reason: row.try_get("reason")?,
        reporter: user_summary_from_row(row, "reporter_")?,
        story_id,
        story: match has_story {
            Some(_) => Some(summary_from_row(row)?),
            None => None,
        },
        action: row.try_get("action")?,
        created_at: Timestamp(row.try_get("report_created_at")?),
        resolved_at: row.try_get::<Option<i64>, _>("resolved_at")?.map(Timestamp),
    })
}

/// Reports with their reporter and (if it still exists) story summary.
fn report_query(condition: &str) -> String {
    format!(
        "SELECT r.id AS report_id, r.status AS report_status, r.story_id AS report_story_id, r.reason, r.action,
                r.created_at AS report_created_at, r.resolved_at,
                ru.id AS reporter_id, ru.username AS reporter_username, ru.display_name AS reporter_display_name,
                {}
         FROM reports r
         JOIN users ru ON ru.id = r.reporter_id
         LEFT JOIN stories s ON s.id = r.story_id
         LEFT JOIN users u ON u.id = s.author_id
         WHERE {condition}",
        summary_columns()
    )
}

impl Store {
    /// Files a report, unless the reporter already filed `per_day` in the
    /// last 24 hours (`RateLimited`, until the oldest of them is a day
    /// old). The reporter's row is locked first, so one user's reports are
    /// counted one at a time and never pass the limit together.
    pub async fn create_report(
        &self,
        story_id: i64,
        reporter_id: i64,
        reason: &str,
        per_day: u32,
    ) -> Result<Report> {
        const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;
        let now = Timestamp::now().millis();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET active = active WHERE id = $1")
            .bind(reporter_id)
            .execute(&mut *tx)
            .await?;
        let (filed, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM reports WHERE reporter_id = $1 AND created_at > $2",
        )
        .bind(reporter_id)
        .bind(now - DAY_MILLIS)
        .fetch_one(&mut *tx)
        .await?;
        if filed >= i64::from(per_day) {
            let wait_millis = oldest.map_or(DAY_MILLIS, |oldest| oldest + DAY_MILLIS - now);
            return Err(StoreError::RateLimited {
                retry_after_secs: u64::try_from(wait_millis)
                    .unwrap_or(0)
                    .div_ceil(1000)
                    .max(1),
            });
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO reports (story_id, reporter_id, reason, status, created_at) VALUES ($1, $2, $3, 'open', $4)
             RETURNING id",
        )
        .bind(story_id)
        .bind(reporter_id)
        .bind(reason)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.report(id).await
    }

    pub async fn report(&self, id: i64) -> Result<Report> {
        let row = sqlx::query(sqlx::AssertSqlSafe(report_query("r.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        report_from_row(&row)
    }

    /// The moderators' queue, oldest first, optionally by status.
    /// Reports, open ones first, then oldest first; `author_id` keeps
    /// those about that user's stories.
    pub async fn list_reports(
        &self,
        status: Option<ReportStatus>,
        author_id: Option<i64>,
        story_id: Option<i64>,
        page: PageRequest,
    ) -> Result<Page<Report>> {
        let status = status.map(ReportStatus::as_str);
        let condition = "($1 IS NULL OR r.status = $1)
             AND ($2 IS NULL OR r.story_id IN (SELECT s.id FROM stories s WHERE s.author_id = $2))
             AND ($3 IS NULL OR r.story_id = $3)";
        let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM reports r WHERE {condition}"
        )))
        .bind(status)
        .bind(author_id)
        .bind(story_id)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{} ORDER BY CASE WHEN r.status = 'open' THEN 0 ELSE 1 END, r.id LIMIT $4 OFFSET $5",
            report_query(condition)
        )))
        .bind(status)
        .bind(author_id)
        .bind(story_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(report_from_row).collect::<Result<_>>()?;
        Ok(Page { items, total })
    }

    /// Resolves or dismisses a report and applies its action to the story,
    /// together or not at all (one transaction). The story is the one the
    /// report names when the transaction runs; if it is already gone, the
    /// action has nothing left to do. Returns the closed report and the id
    /// of the story it named (a deleted story's is no longer in the report).
    pub async fn close_report(
        &self,
        id: i64,
        status: ReportStatus,
        action: ReportAction,
        admin_id: i64,
    ) -> Result<(Report, Option<i64>)> {
        let mut tx = self.pool.begin().await?;
        // Only an open report is closed: the condition is checked by the
        // write itself, so of two admins closing one report at once, the
        // second finds it closed (PostgreSQL re-reads the row after the
        // first commits; SQLite runs one write at a time).
        let done = sqlx::query(
            "UPDATE reports SET status = $2, action = $3, resolved_at = $4 \
             WHERE id = $1 AND status = 'open'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(action.as_str())
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT id FROM reports WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(if exists {
                StoreError::Stale("the report is already closed".into())
            } else {
                StoreError::NotFound
            });
        }
        let story_id: Option<i64> = sqlx::query("SELECT story_id FROM reports WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("story_id")?;
        if let Some(story_id) = story_id {
            match action {
                ReportAction::None => {}
                ReportAction::Unpublish => {
                    let to_draft = StoryChanges {
                        status: Some(StoryStatus::Draft),
                        ..Default::default()
                    };
                    self.update_story_in(&mut tx, story_id, &to_draft).await?;
                }
                ReportAction::Delete => self.delete_story_in(&mut tx, story_id).await?,
            }
        }
        let note = AuditNote {
            admin_id,
            action: match status {
                ReportStatus::Dismissed => AuditAction::ReportDismissed,
                _ => AuditAction::ReportResolved,
            },
            target_id: id,
            detail: serde_json::json!({ "action": action.as_str(), "story_id": story_id }),
        };
        crate::audit::record(&mut tx, &note).await?;
        tx.commit().await?;
        Ok((self.report(id).await?, story_id))
    }

    pub async fn totals(&self) -> Result<Totals> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM users) AS users,
                    (SELECT COUNT(*) FROM stories) AS stories,
                    (SELECT COUNT(*) FROM reports WHERE status = 'open') AS open_reports",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Totals {
            users: row.try_get("users")?,
            stories: row.try_get("stories")?,
            open_reports: row.try_get("open_reports")?,
        })
    }
}
