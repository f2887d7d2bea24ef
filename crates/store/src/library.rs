//! The library's lists: published stories filtered, sorted and searched,
//! an author's own stories, and the admin's list of every story.

use sqlx::Row;

use crate::sql::Sql;
use crate::stories::{summary_columns, summary_from_row};
use crate::{Page, PageRequest, Result, Store, StoryFilter, StorySort, StorySummary};

impl Store {
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
}
