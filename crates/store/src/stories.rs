//! Stories: writing them, the library's lists and search, likes, reads and
//! reading progress.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{AuditAction, AuditNote};
use crate::backend::IndexedText;
use crate::users::user_summary_from_row;
use crate::{
    NewStory, Result, Store, StoreError, Story, StoryChanges, StoryPage, StorySource, StoryStatus,
    StorySummary, Timestamp, UserSummary, decode_json, encode_json, touched_a_row,
};

/// An admin changing someone else's story: who, and what the audit entry
/// says of it (its action is the store's to decide).
#[derive(Debug, Clone)]
pub struct AdminEdit {
    pub admin_id: i64,
    pub detail: serde_json::Value,
}

/// What [`Store::update_story`] did.
#[derive(Debug)]
pub struct StoryUpdate {
    pub story: Story,
    /// Whether the story was published when the change took its lock.
    pub was_published: bool,
    /// Whether anything was written.
    pub changed: bool,
}

/// Longest excerpt of page one in a summary, in characters.
const EXCERPT_CHARS: usize = 200;

const AUTHOR_COLUMNS: &str =
    "u.id AS author_id, u.username AS author_username, u.display_name AS author_display_name";
const COMMON_COLUMNS: &str = "s.id, s.title, s.genre, s.age_group, s.tags, s.status, s.source, s.likes, \
     s.reads, s.version, s.created_at, s.updated_at";

fn story_columns() -> String {
    format!("{COMMON_COLUMNS}, s.pages, {AUTHOR_COLUMNS}")
}

pub(crate) fn summary_columns() -> String {
    format!("{COMMON_COLUMNS}, s.excerpt, s.page_count, {AUTHOR_COLUMNS}")
}

fn author_from_row(row: &AnyRow) -> Result<UserSummary> {
    user_summary_from_row(row, "author_")
}

fn status_from(text: &str) -> Result<StoryStatus> {
    StoryStatus::parse(text)
        .ok_or_else(|| StoreError::Database(sqlx::Error::Decode("unknown story status".into())))
}

fn source_from(text: &str) -> Result<StorySource> {
    StorySource::parse(text)
        .ok_or_else(|| StoreError::Database(sqlx::Error::Decode("unknown story source".into())))
}

fn story_from_row(row: &AnyRow) -> Result<Story> {
    Ok(Story {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        author: author_from_row(row)?,
        pages: decode_json(&row.try_get::<String, _>("pages")?)?,
        genre: row.try_get("genre")?,
        age_group: row.try_get("age_group")?,
        tags: decode_json(&row.try_get::<String, _>("tags")?)?,
        status: status_from(&row.try_get::<String, _>("status")?)?,
        source: source_from(&row.try_get::<String, _>("source")?)?,
        likes: row.try_get("likes")?,
        reads: row.try_get("reads")?,
        liked: false,
        version: row.try_get("version")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

pub(crate) fn summary_from_row(row: &AnyRow) -> Result<StorySummary> {
    Ok(StorySummary {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        author: author_from_row(row)?,
        excerpt: row.try_get("excerpt")?,
        page_count: row.try_get("page_count")?,
        genre: row.try_get("genre")?,
        age_group: row.try_get("age_group")?,
        tags: decode_json(&row.try_get::<String, _>("tags")?)?,
        status: status_from(&row.try_get::<String, _>("status")?)?,
        source: source_from(&row.try_get::<String, _>("source")?)?,
        likes: row.try_get("likes")?,
        reads: row.try_get("reads")?,
        liked: false,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

/// What the search index and the tag and drawing tables hold of a story.
struct Indexed<'a> {
    id: i64,
    title: &'a str,
    body: &'a str,
    tags: &'a [String],
    status: StoryStatus,
    pages: &'a [StoryPage],
}

/// The columns derived from a story's pages.
struct PageColumns {
    pages_json: String,
    body: String,
    excerpt: String,
}

fn page_columns(pages: &[StoryPage]) -> Result<PageColumns> {
    Ok(PageColumns {
        pages_json: encode_json(pages)?,
        body: pages
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n"),
        excerpt: pages
            .first()
            .map(|p| p.text.chars().take(EXCERPT_CHARS).collect())
            .unwrap_or_default(),
    })
}

impl Store {
    /// Writes a story's tags and (on SQLite) its full-text row, replacing
    /// what was there. Only published stories are in the SQLite full-text
    /// index: search is the library's, and a smaller index with no drafts
    /// to filter out is what keeps search fast. PostgreSQL's search column
    /// is generated.
    async fn index_story(&self, tx: &mut Transaction<'_, Any>, story: Indexed<'_>) -> Result<()> {
        let Indexed {
            id,
            title,
            body,
            tags,
            status,
            pages,
        } = story;
        sqlx::query("DELETE FROM story_tags WHERE story_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        let mut lowered: Vec<String> = tags.iter().map(|t| t.to_lowercase()).collect();
        lowered.sort();
        lowered.dedup();
        for tag in &lowered {
            sqlx::query("INSERT INTO story_tags (story_id, tag) VALUES ($1, $2)")
                .bind(id)
                .bind(tag)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("DELETE FROM story_drawings WHERE story_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        let mut drawing_ids: Vec<i64> = pages.iter().filter_map(|p| p.drawing_id).collect();
        drawing_ids.sort_unstable();
        drawing_ids.dedup();
        for drawing_id in drawing_ids {
            sqlx::query("INSERT INTO story_drawings (story_id, drawing_id) VALUES ($1, $2)")
                .bind(id)
                .bind(drawing_id)
                .execute(&mut **tx)
                .await?;
        }
        let text = IndexedText {
            id,
            title,
            body,
            tags,
            published: status == StoryStatus::Published,
        };
        self.backend().index_text(tx, text).await
    }

    pub async fn create_story(&self, new: &NewStory) -> Result<Story> {
        let derived = page_columns(&new.pages)?;
        let tags_json = encode_json(&new.tags)?;
        let now = Timestamp::now().millis();
        let published_at = (new.status == StoryStatus::Published).then_some(now);
        let mut tx = self.pool.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO stories (author_id, title, pages, body, excerpt, page_count, genre, age_group, tags,
                                  status, source, created_at, updated_at, published_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13) RETURNING id",
        )
        .bind(new.author_id)
        .bind(&new.title)
        .bind(&derived.pages_json)
        .bind(&derived.body)
        .bind(&derived.excerpt)
        .bind(new.pages.len() as i64)
        .bind(&new.genre)
        .bind(&new.age_group)
        .bind(&tags_json)
        .bind(new.status.as_str())
        .bind(new.source.as_str())
        .bind(now)
        .bind(published_at)
        .fetch_one(&mut *tx)
        .await?;
        self.index_story(
            &mut tx,
            Indexed {
                id,
                title: &new.title,
                body: &derived.body,
                tags: &new.tags,
                status: new.status,
                pages: &new.pages,
            },
        )
        .await?;
        tx.commit().await?;
        self.story(id).await
    }

    /// A story by id, whatever its status; visibility is the caller's rule.
    /// Who may read a story, from the database and nothing else: its author
    /// and whether it is published. What a socket's subscribe asks (fresh,
    /// never cached), without reading the story's pages.
    pub async fn story_access(&self, id: i64) -> Result<(i64, bool)> {
        let (author_id, status): (i64, String) =
            sqlx::query_as("SELECT author_id, status FROM stories WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        Ok((author_id, status_from(&status)? == StoryStatus::Published))
    }

    pub async fn story(&self, id: i64) -> Result<Story> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM stories s JOIN users u ON u.id = s.author_id WHERE s.id = $1",
            story_columns()
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        story_from_row(&row)
    }

    /// Changes only the fields `changes` carries, in one transaction: the
    /// row is locked first (a write: SQLite's write lock, PostgreSQL's row
    /// lock), read, then written with each absent field left as it is in
    /// the database and read back for the index. Two concurrent PATCHes
    /// of different fields both take effect, and one that does not send
    /// `status` never writes an old status back over an admin's unpublish.
    /// Title or page changes bump the version (games are made per
    /// version). A change that changes nothing writes nothing: no audit
    /// entry, `updated_at` as it was. `admin`, when an admin changes
    /// someone else's story, is audited in the same transaction, as
    /// `story_unpublished` or `story_updated` by the row read under the
    /// lock (never by a cached copy another process may have outdated).
    pub async fn update_story(
        &self,
        id: i64,
        changes: &StoryChanges,
        admin: Option<&AdminEdit>,
    ) -> Result<StoryUpdate> {
        let mut tx = self.pool.begin().await?;
        let locked = sqlx::query("UPDATE stories SET status = status WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        touched_a_row(&locked)?;
        let row = sqlx::query(
            "SELECT title, pages, genre, age_group, tags, status FROM stories WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let was = status_from(&row.try_get::<String, _>("status")?)?;
        let differs = |field: &str, new: Option<&str>| -> Result<bool> {
            Ok(match new {
                Some(new) => row.try_get::<String, _>(field)? != new,
                None => false,
            })
        };
        let pages_differ = match &changes.pages {
            Some(pages) => {
                decode_json::<Vec<StoryPage>>(&row.try_get::<String, _>("pages")?)? != *pages
            }
            None => false,
        };
        let tags_differ = match &changes.tags {
            Some(tags) => decode_json::<Vec<String>>(&row.try_get::<String, _>("tags")?)? != *tags,
            None => false,
        };
        let changed = differs("title", changes.title.as_deref())?
            || pages_differ
            || differs("genre", changes.genre.as_deref())?
            || differs("age_group", changes.age_group.as_deref())?
            || tags_differ
            || changes.status.is_some_and(|status| status != was);
        let was_published = was == StoryStatus::Published;
        if !changed {
            // Dropped without a commit: nothing written.
            drop(tx);
            return Ok(StoryUpdate {
                story: self.story(id).await?,
                was_published,
                changed: false,
            });
        }
        self.update_story_in(&mut tx, id, changes).await?;
        if let Some(admin) = admin {
            let unpublished =
                was_published && changes.status.is_some_and(|s| s != StoryStatus::Published);
            let note = AuditNote {
                admin_id: admin.admin_id,
                action: if unpublished {
                    AuditAction::StoryUnpublished
                } else {
                    AuditAction::StoryUpdated
                },
                target_id: id,
                detail: admin.detail.clone(),
            };
            crate::audit::record(&mut tx, &note).await?;
        }
        tx.commit().await?;
        Ok(StoryUpdate {
            story: self.story(id).await?,
            was_published,
            changed: true,
        })
    }

    /// [`Store::update_story`]'s writes, inside the caller's transaction
    /// (a report's resolution unpublishes its story in the same one).
    pub(crate) async fn update_story_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: i64,
        changes: &StoryChanges,
    ) -> Result<()> {
        let page_columns = changes.pages.as_deref().map(page_columns).transpose()?;
        let tags_json = changes.tags.as_deref().map(encode_json).transpose()?;
        let now = Timestamp::now().millis();
        // In SET, every column on the right is the row's old value.
        let done = sqlx::query(
            "UPDATE stories SET
                version = version + CASE WHEN COALESCE($2, title) <> title
                                          OR COALESCE($3, pages) <> pages THEN 1 ELSE 0 END,
                title = COALESCE($2, title), pages = COALESCE($3, pages),
                body = COALESCE($4, body), excerpt = COALESCE($5, excerpt),
                page_count = COALESCE($6, page_count), genre = COALESCE($7, genre),
                age_group = COALESCE($8, age_group), tags = COALESCE($9, tags),
                status = COALESCE($10, status), updated_at = $11,
                published_at = CASE WHEN COALESCE($10, status) = 'published'
                                    THEN COALESCE(published_at, $11) ELSE published_at END
             WHERE id = $1",
        )
        .bind(id)
        .bind(changes.title.as_deref())
        .bind(page_columns.as_ref().map(|d| d.pages_json.as_str()))
        .bind(page_columns.as_ref().map(|d| d.body.as_str()))
        .bind(page_columns.as_ref().map(|d| d.excerpt.as_str()))
        .bind(changes.pages.as_ref().map(|pages| pages.len() as i64))
        .bind(changes.genre.as_deref())
        .bind(changes.age_group.as_deref())
        .bind(tags_json.as_deref())
        .bind(changes.status.map(StoryStatus::as_str))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        touched_a_row(&done)?;
        let row = sqlx::query("SELECT title, pages, body, tags, status FROM stories WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        let title: String = row.try_get("title")?;
        let pages: Vec<StoryPage> = decode_json(&row.try_get::<String, _>("pages")?)?;
        let body: String = row.try_get("body")?;
        let tags: Vec<String> = decode_json(&row.try_get::<String, _>("tags")?)?;
        let status = status_from(&row.try_get::<String, _>("status")?)?;
        self.index_story(
            tx,
            Indexed {
                id,
                title: &title,
                body: &body,
                tags: &tags,
                status,
                pages: &pages,
            },
        )
        .await
    }

    /// Deletes a story; `audit` as in [`Store::update_story`].
    pub async fn delete_story(&self, id: i64, audit: Option<&AuditNote>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.delete_story_in(&mut tx, id).await?;
        if let Some(note) = audit {
            crate::audit::record(&mut tx, note).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::delete_story`] inside the caller's transaction.
    pub(crate) async fn delete_story_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: i64,
    ) -> Result<()> {
        let done = sqlx::query("DELETE FROM stories WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        touched_a_row(&done)?;
        self.backend().unindex(tx, id).await
    }

    /// Published stories by a user, for the public profile.
    pub async fn count_published_stories(&self, user_id: i64) -> Result<i64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM stories WHERE author_id = $1 AND status = 'published'",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str, drawing_id: Option<i64>) -> StoryPage {
        StoryPage {
            text: text.to_owned(),
            drawing_id,
        }
    }

    #[test]
    fn page_columns_hold_the_text_the_index_and_lists_use() {
        let long = "é".repeat(EXCERPT_CHARS + 50);
        let derived = page_columns(&[page(&long, Some(7)), page("The end.", None)]).unwrap();
        assert_eq!(
            derived.body,
            format!("{long}\n\nThe end."),
            "every page, for search"
        );
        assert_eq!(
            derived.excerpt.chars().count(),
            EXCERPT_CHARS,
            "cut by characters, not bytes"
        );
        let pages: Vec<StoryPage> = decode_json(&derived.pages_json).unwrap();
        assert_eq!(pages[0].drawing_id, Some(7));
        assert_eq!(page_columns(&[]).unwrap().excerpt, "");
    }

    #[test]
    fn stored_words_map_back_or_fail_loudly() {
        assert_eq!(status_from("draft").unwrap(), StoryStatus::Draft);
        assert_eq!(source_from("photo").unwrap(), StorySource::Photo);
        assert!(
            status_from("hidden").is_err(),
            "a bad row is an error, not a default"
        );
        assert!(source_from("").is_err());
    }
}
