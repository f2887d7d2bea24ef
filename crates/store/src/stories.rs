//! Stories: writing them, the library's lists and search, likes, reads and
//! reading progress.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::AuditNote;
use crate::backend::IndexedText;
use crate::sql::Sql;
use crate::{
    LikeOutcome, NewStory, Page, PageRequest, Progress, Result, Store, StoreError, Story,
    StoryChanges, StoryFilter, StoryPage, StorySort, StorySource, StoryStatus, StorySummary,
    Timestamp, UserSummary, decode_json, encode_json, touched_a_row,
};

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
    Ok(UserSummary {
        id: row.try_get("author_id")?,
        username: row.try_get("author_username")?,
        display_name: row.try_get("author_display_name")?,
    })
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
    /// row is written first (taking the write lock, or the row lock on
    /// PostgreSQL) with each absent field left as it is in the database,
    /// then read back for the index. Two concurrent PATCHes of different
    /// fields both take effect, and one that does not send `status` never
    /// writes an old status back over an admin's unpublish. Title or page
    /// changes bump the version (games are made per version).
    /// `audit`, when an admin changes someone else's story, is written in
    /// the same transaction.
    pub async fn update_story(
        &self,
        id: i64,
        changes: &StoryChanges,
        audit: Option<&AuditNote>,
    ) -> Result<Story> {
        let mut tx = self.pool.begin().await?;
        self.update_story_in(&mut tx, id, changes).await?;
        if let Some(note) = audit {
            crate::audit::record(&mut tx, note).await?;
        }
        tx.commit().await?;
        self.story(id).await
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

    /// A page of story summaries: the library (published only), an author's
    /// own list, search. `liked` is left false for the caller to fill.
    pub async fn list_stories(
        &self,
        filter: &StoryFilter,
        page: PageRequest,
    ) -> Result<Page<StorySummary>> {
        let plain_search = filter.published_only
            && filter.genre.is_none()
            && filter.age_group.is_none()
            && filter.tag.is_none()
            && filter.author_id.is_none()
            && filter.status.is_none()
            && filter.title_contains.is_none()
            && matches!(filter.sort, None | Some(StorySort::Relevance));
        if plain_search
            && let Some(query) = &filter.query
            && let Some(found) = self
                .backend()
                .search_library(&self.pool, query, page)
                .await?
        {
            return Ok(found);
        }
        let mut sql = Sql::default();
        let mut conditions: Vec<String> = Vec::new();
        let mut from = String::from("stories s");
        let mut rank = None;
        if let Some(query) = &filter.query {
            let Some(text) = self.backend().full_text_query(query) else {
                return Ok(Page {
                    items: Vec::new(),
                    total: 0,
                });
            };
            let placeholder = sql.text_arg(&text);
            let full_text = self.backend().full_text(&placeholder);
            if let Some(source) = full_text.from {
                from = source;
            }
            conditions.extend(full_text.condition);
            rank = Some(full_text.rank);
        }
        if filter.published_only {
            conditions.push("s.status = 'published'".into());
        }
        if let Some(status) = filter.status {
            conditions.push(format!("s.status = {}", sql.text_arg(status.as_str())));
        }
        if let Some(part) = &filter.title_contains {
            let pattern = crate::users::like_pattern(&part.to_lowercase());
            conditions.push(format!(
                "lower(s.title) LIKE {} ESCAPE '\\'",
                sql.text_arg(&pattern)
            ));
        }
        if let Some(genre) = &filter.genre {
            conditions.push(format!("s.genre = {}", sql.text_arg(genre)));
        }
        if let Some(age_group) = &filter.age_group {
            conditions.push(format!("s.age_group = {}", sql.text_arg(age_group)));
        }
        if let Some(tag) = &filter.tag {
            conditions.push(format!(
                "s.id IN (SELECT t.story_id FROM story_tags t WHERE t.tag = {})",
                sql.text_arg(&tag.to_lowercase())
            ));
        }
        if let Some(author_id) = filter.author_id {
            conditions.push(format!("s.author_id = {}", sql.int(author_id)));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let newest = if filter.published_only {
            "s.published_at DESC, s.id DESC"
        } else {
            "s.created_at DESC, s.id DESC"
        };
        let order = match (filter.sort.unwrap_or(StorySort::Newest), &rank) {
            (StorySort::Relevance, Some(rank)) => format!("{rank}, s.id DESC"),
            (StorySort::Popular, _) => "s.likes DESC, s.id DESC".to_owned(),
            (StorySort::Title, _) => "lower(s.title) ASC, s.id ASC".to_owned(),
            _ => newest.to_owned(),
        };

        let mut count = sql.clone();
        count.text = format!("SELECT COUNT(*) AS total FROM {from}{where_clause}");
        let total: i64 = count
            .query()
            .fetch_one(&self.pool)
            .await?
            .try_get("total")?;
        if total == 0 || page.offset() >= total {
            return Ok(Page {
                items: Vec::new(),
                total,
            });
        }
        let limit = sql.int(page.limit());
        let offset = sql.int(page.offset());
        sql.text = if rank.is_some() {
            format!(
                "SELECT {} FROM {from} JOIN users u ON u.id = s.author_id{where_clause} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
                summary_columns()
            )
        } else {
            // A deep page skips its offset in the ordering's index, reading
            // ids only, and joins just the page's rows: the plain OFFSET
            // built every skipped row (25 ms at page 90 of 100 on 10,000
            // stories, growing with the library).
            format!(
                "SELECT {} FROM (SELECT s.id AS page_id FROM {from}{where_clause} ORDER BY {order} LIMIT {limit} OFFSET {offset}) p
                 JOIN stories s ON s.id = p.page_id JOIN users u ON u.id = s.author_id ORDER BY {order}",
                summary_columns()
            )
        };
        let rows = sql.query().fetch_all(&self.pool).await?;
        let items = rows.iter().map(summary_from_row).collect::<Result<_>>()?;
        Ok(Page { items, total })
    }

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
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO story_reads (user_id, story_id) VALUES ($1, $2) ON CONFLICT (user_id, story_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(story_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            sqlx::query("UPDATE stories SET reads = reads + 1 WHERE id = $1")
                .bind(story_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(inserted)
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
