//! Game scores: the best score per user, story and kind, and leaderboards.

use serde::Serialize;
use sqlx::Row;

use crate::users::user_summary_from_row;
use crate::{Result, Store, Timestamp, UserSummary};

#[derive(Debug, Clone, Serialize)]
pub struct ScoreEntry {
    pub user: UserSummary,
    pub score: i64,
    pub total: i64,
    pub at: Timestamp,
}

impl Store {
    /// Keeps `score` if it beats the user's best for this story and kind.
    pub async fn record_score(
        &self,
        user_id: i64,
        story_id: i64,
        kind: &str,
        score: i64,
        total: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO game_scores (user_id, story_id, kind, score, total, at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, story_id, kind) DO UPDATE SET score = excluded.score, total = excluded.total, at = excluded.at
             WHERE excluded.score > game_scores.score",
        )
        .bind(user_id)
        .bind(story_id)
        .bind(kind)
        .bind(score)
        .bind(total)
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The top `limit` best scores, highest first (earliest first on ties).
    pub async fn leaderboard(
        &self,
        story_id: i64,
        kind: &str,
        limit: i64,
    ) -> Result<Vec<ScoreEntry>> {
        let rows = sqlx::query(
            "SELECT g.score, g.total, g.at, u.id, u.username, u.display_name
             FROM game_scores g JOIN users u ON u.id = g.user_id
             WHERE g.story_id = $1 AND g.kind = $2 ORDER BY g.score DESC, g.at ASC LIMIT $3",
        )
        .bind(story_id)
        .bind(kind)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScoreEntry {
                    user: user_summary_from_row(row, "")?,
                    score: row.try_get("score")?,
                    total: row.try_get("total")?,
                    at: Timestamp(row.try_get("at")?),
                })
            })
            .collect()
    }
}
