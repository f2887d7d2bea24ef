//! Drawings: the canvas, its strokes (packed points), collaborators, and
//! whether a published story shows it.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use storybook_strokes::{Stroke, Tool, decode_points, encode_points};

use crate::users::user_summary_from_row;
use crate::{Page, PageRequest, Result, Store, StoreError, Timestamp, UserSummary, touched_a_row};

/// A drawing without its strokes (they can be many; they are read or
/// streamed separately).
#[derive(Debug, Clone, Serialize)]
pub struct Drawing {
    pub id: i64,
    pub owner: UserSummary,
    pub title: String,
    pub width: i64,
    pub height: i64,
    pub background: String,
    pub stroke_count: i64,
    #[serde(skip)]
    pub version: i64,
    /// Usernames.
    pub collaborators: Vec<String>,
    #[serde(skip)]
    pub collaborator_ids: Vec<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Owner-only changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct DrawingChanges {
    pub title: Option<String>,
    pub background: Option<String>,
}

const DRAWING_COLUMNS: &str = "d.id, d.title, d.width, d.height, d.background, d.stroke_count, d.version, \
     d.created_at, d.updated_at, u.id AS owner_id, u.username AS owner_username, u.display_name AS owner_display_name";

fn drawing_from_row(row: &AnyRow) -> Result<Drawing> {
    Ok(Drawing {
        id: row.try_get("id")?,
        owner: user_summary_from_row(row, "owner_")?,
        title: row.try_get("title")?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        background: row.try_get("background")?,
        stroke_count: row.try_get("stroke_count")?,
        version: row.try_get("version")?,
        collaborators: Vec::new(),
        collaborator_ids: Vec::new(),
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

fn stroke_from_row(row: &AnyRow) -> Result<Stroke> {
    let tool: String = row.try_get("tool")?;
    let points: Vec<u8> = row.try_get("points")?;
    Ok(Stroke {
        id: row.try_get("stroke_id")?,
        tool: Tool::parse(&tool).unwrap_or(Tool::Pen),
        color: row.try_get("color")?,
        width: row.try_get("width")?,
        points: decode_points(&points),
    })
}

impl Store {
    pub async fn create_drawing(
        &self,
        owner_id: i64,
        title: &str,
        width: i64,
        height: i64,
        background: &str,
        strokes: &[Stroke],
    ) -> Result<Drawing> {
        let now = Timestamp::now().millis();
        let mut tx = self.pool.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO drawings (owner_id, title, width, height, background, stroke_count, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, 1, $6, $6) RETURNING id",
        )
        .bind(owner_id)
        .bind(title)
        .bind(width)
        .bind(height)
        .bind(background)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let added = insert_strokes(&mut tx, id, strokes).await?;
        sqlx::query("UPDATE drawings SET stroke_count = $2 WHERE id = $1")
            .bind(id)
            .bind(added)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.drawing(id).await
    }

    /// A drawing with its collaborators; visibility is the caller's rule.
    pub async fn drawing(&self, id: i64) -> Result<Drawing> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DRAWING_COLUMNS} FROM drawings d JOIN users u ON u.id = d.owner_id WHERE d.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let mut drawing = drawing_from_row(&row)?;
        let rows = sqlx::query(
            "SELECT u.id, u.username FROM drawing_collaborators c JOIN users u ON u.id = c.user_id
             WHERE c.drawing_id = $1 ORDER BY c.created_at, u.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            drawing.collaborator_ids.push(row.try_get("id")?);
            drawing.collaborators.push(row.try_get("username")?);
        }
        Ok(drawing)
    }

    /// Every stroke in drawing order (for the JSON answer).
    pub async fn strokes(&self, drawing_id: i64) -> Result<Vec<Stroke>> {
        let rows = sqlx::query(
            "SELECT stroke_id, tool, color, width, points FROM strokes WHERE drawing_id = $1 ORDER BY id",
        )
        .bind(drawing_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stroke_from_row).collect()
    }

    /// A drawing's strokes in drawing order, `per_page` at a time.
    pub fn stroke_pages(&self, drawing_id: i64, per_page: i64) -> StrokePages<'_> {
        StrokePages {
            store: self,
            drawing_id,
            per_page,
            after: 0,
        }
    }

    pub async fn update_drawing(&self, id: i64, changes: &DrawingChanges) -> Result<Drawing> {
        let done = sqlx::query(
            "UPDATE drawings SET title = COALESCE($2, title), background = COALESCE($3, background),
                    version = version + 1, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(changes.title.as_deref())
        .bind(changes.background.as_deref())
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await?;
        touched_a_row(&done)?;
        self.drawing(id).await
    }

    /// Appends strokes, skipping ids already present (retries are no-ops).
    /// `Limit("strokes")` when the drawing would pass `max_strokes`.
    pub async fn append_strokes(
        &self,
        id: i64,
        strokes: &[Stroke],
        max_strokes: i64,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        // Lock the drawing first (write before read) so concurrent appends
        // count one after the other.
        let touched =
            sqlx::query("UPDATE drawings SET version = version + 1, updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(Timestamp::now().millis())
                .execute(&mut *tx)
                .await?;
        touched_a_row(&touched)?;
        let added = insert_strokes(&mut tx, id, strokes).await?;
        let (count,): (i64,) =
            sqlx::query_as("UPDATE drawings SET stroke_count = stroke_count + $2 WHERE id = $1 RETURNING stroke_count")
                .bind(id)
                .bind(added)
                .fetch_one(&mut *tx)
                .await?;
        if count > max_strokes {
            tx.rollback().await?;
            return Err(StoreError::Limit("strokes".into()));
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Undoes one stroke; `NotFound` when it is not in the drawing.
    pub async fn delete_stroke(&self, id: i64, stroke_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM strokes WHERE drawing_id = $1 AND stroke_id = $2")
            .bind(id)
            .bind(stroke_id)
            .execute(&mut *tx)
            .await?;
        touched_a_row(&done)?;
        sqlx::query(
            "UPDATE drawings SET stroke_count = stroke_count - 1, version = version + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a drawing. Every story page that attached it gets
    /// `drawing_id: null` in the same transaction (a page left pointing at
    /// a missing drawing made every later write of its story fail). Returns
    /// the ids of the stories whose pages changed.
    pub async fn delete_drawing(&self, id: i64) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        // The stories are locked before their pages are read (a write:
        // SQLite's write lock, PostgreSQL's row locks), so a page edit
        // committed meanwhile is read and kept, not written over with the
        // pages as they were.
        sqlx::query(
            "UPDATE stories SET pages = pages
             WHERE id IN (SELECT story_id FROM story_drawings WHERE drawing_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let attached = sqlx::query(
            "SELECT s.id, s.pages FROM stories s JOIN story_drawings sd ON sd.story_id = s.id
             WHERE sd.drawing_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let mut changed = Vec::with_capacity(attached.len());
        for row in attached {
            let story_id: i64 = row.try_get("id")?;
            let pages_json: String = row.try_get("pages")?;
            let pages = detach_drawing(&pages_json, id)?;
            sqlx::query("UPDATE stories SET pages = $1 WHERE id = $2")
                .bind(pages)
                .bind(story_id)
                .execute(&mut *tx)
                .await?;
            changed.push(story_id);
        }
        // Strokes, collaborators and the story links go with it (cascade).
        let done = sqlx::query("DELETE FROM drawings WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        touched_a_row(&done)?;
        tx.commit().await?;
        Ok(changed)
    }

    /// Adds a collaborator; returns whether this is the first time they
    /// were ever invited to this drawing (removing them and adding them
    /// again is not a new invitation).
    pub async fn add_collaborator(&self, id: i64, user_id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO drawing_collaborators (drawing_id, user_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (drawing_id, user_id) DO NOTHING",
        )
        .bind(id)
        .bind(user_id)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        let invited = sqlx::query(
            "INSERT INTO drawing_invitations (drawing_id, user_id) VALUES ($1, $2)
             ON CONFLICT (drawing_id, user_id) DO NOTHING",
        )
        .bind(id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(invited.rows_affected() == 1)
    }

    pub async fn remove_collaborator(&self, id: i64, user_id: i64) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM drawing_collaborators WHERE drawing_id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        touched_a_row(&done)?;
        Ok(())
    }

    /// Whether a published story shows this drawing (then anyone may see it).
    pub async fn drawing_is_public(&self, id: i64) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM story_drawings sd JOIN stories s ON s.id = sd.story_id
             WHERE sd.drawing_id = $1 AND s.status = 'published' LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The owner of a drawing, if it exists.
    pub async fn drawing_owner(&self, id: i64) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT owner_id FROM drawings WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Drawings a user owns or collaborates on, newest first.
    pub async fn list_user_drawings(
        &self,
        user_id: i64,
        page: PageRequest,
    ) -> Result<Page<Drawing>> {
        let visible = "d.owner_id = $1 OR d.id IN (SELECT drawing_id FROM drawing_collaborators WHERE user_id = $1)";
        let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM drawings d WHERE {visible}"
        )))
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT d.id FROM drawings d WHERE {visible} ORDER BY d.id DESC LIMIT $2 OFFSET $3"
        )))
        .bind(user_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.drawing(row.try_get("id")?).await?);
        }
        Ok(Page { items, total })
    }

    pub async fn count_drawings(&self) -> Result<i64> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM drawings")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }
}

async fn insert_strokes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    strokes: &[Stroke],
) -> Result<i64> {
    let mut added = 0;
    for stroke in strokes {
        let done = sqlx::query(
            "INSERT INTO strokes (drawing_id, stroke_id, tool, color, width, points) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (drawing_id, stroke_id) DO NOTHING",
        )
        .bind(id)
        .bind(&stroke.id)
        .bind(stroke.tool.as_str())
        .bind(&stroke.color)
        .bind(stroke.width)
        .bind(encode_points(&stroke.points))
        .execute(&mut **tx)
        .await?;
        added += done.rows_affected() as i64;
    }
    Ok(added)
}

/// Reads a drawing's strokes a page at a time. A database connection is
/// held only while a page is read: a caller that works between pages
/// (drawing, or waiting for a slow client) keeps none from everyone else.
pub struct StrokePages<'a> {
    store: &'a Store,
    drawing_id: i64,
    per_page: i64,
    /// The position of the last stroke read (0: none yet).
    after: i64,
}

impl StrokePages<'_> {
    /// The next page; empty once every stroke has been read.
    pub async fn next_page(&mut self) -> Result<Vec<Stroke>> {
        let rows = sqlx::query(
            "SELECT id, stroke_id, tool, color, width, points FROM strokes
             WHERE drawing_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(self.drawing_id)
        .bind(self.after)
        .bind(self.per_page)
        .fetch_all(&self.store.pool)
        .await?;
        if let Some(last) = rows.last() {
            self.after = last.try_get("id")?;
        }
        rows.iter().map(stroke_from_row).collect()
    }
}

/// A story's pages (as stored, JSON) with every `drawing_id` equal to
/// `drawing_id` set to null.
fn detach_drawing(pages_json: &str, drawing_id: i64) -> Result<String> {
    let mut pages: Vec<crate::StoryPage> = crate::decode_json(pages_json)?;
    for page in &mut pages {
        if page.drawing_id == Some(drawing_id) {
            page.drawing_id = None;
        }
    }
    crate::encode_json(&pages)
}

#[cfg(test)]
mod detach_tests {
    use super::detach_drawing;

    #[test]
    fn only_the_deleted_drawing_is_detached() {
        let pages = r#"[{"text":"a","drawing_id":7},{"text":"b","drawing_id":8},{"text":"c","drawing_id":null}]"#;
        let detached: serde_json::Value =
            serde_json::from_str(&detach_drawing(pages, 7).unwrap()).unwrap();
        let ids: Vec<_> = detached
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["drawing_id"].clone())
            .collect();
        assert_eq!(
            ids,
            [
                serde_json::Value::Null,
                serde_json::json!(8),
                serde_json::Value::Null
            ]
        );
    }
}
