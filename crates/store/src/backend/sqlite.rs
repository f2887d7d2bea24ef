//! SQLite's side of the dialect: connection pragmas, FTS5 queries and the
//! full-text table, which holds published stories only (search is the
//! library's, and a smaller index with no drafts to filter is what keeps
//! it fast).

use sqlx::{AnyConnection, AnyPool};

use super::{FullText, IndexedText};
use crate::models::{Page, PageRequest, StorySummary};
use crate::stories::{summary_columns, summary_from_row};
use crate::{PoolSettings, Result};

pub(super) fn connect_url(url: &str) -> String {
    if url.contains("mode=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

/// WAL lets readers and one writer work at once; NORMAL sync is durable
/// across a process crash; the page cache is bounded (SQLite's default is
/// about 2 MiB a connection, which the memory budget cannot afford).
pub(super) fn session_statements(settings: &PoolSettings) -> Vec<String> {
    vec![
        // First: a process starting beside others (their migrations hold
        // the write lock) waits rather than failing at once.
        "PRAGMA busy_timeout = 5000".into(),
        "PRAGMA journal_mode = WAL".into(),
        "PRAGMA synchronous = NORMAL".into(),
        "PRAGMA foreign_keys = ON".into(),
        format!("PRAGMA cache_size = -{}", settings.sqlite_cache_kib),
    ]
}

/// FTS5: a quoted string is always a plain phrase, never syntax; the last
/// word matches as a prefix (search as you type).
pub(super) fn full_text_query(terms: &[String]) -> String {
    let last = terms.len() - 1;
    let quoted: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            if i == last {
                format!("\"{term}\"*")
            } else {
                format!("\"{term}\"")
            }
        })
        .collect();
    quoted.join(" ")
}

/// The full-text match runs once, as the outer loop (CROSS JOIN fixes the
/// order); title matches weigh most, then tags, then pages.
pub(super) fn full_text(placeholder: &str) -> FullText {
    FullText {
        from: Some(format!(
            "(SELECT rowid AS story_id, bm25(stories_fts, 10.0, 1.0, 5.0) AS fts_rank
              FROM stories_fts WHERE stories_fts MATCH {placeholder}) f
             CROSS JOIN stories s ON s.id = f.story_id"
        )),
        condition: None,
        rank: "f.fts_rank ASC".to_owned(),
    }
}

pub(super) async fn index_text(conn: &mut AnyConnection, story: IndexedText<'_>) -> Result<()> {
    unindex(conn, story.id).await?;
    if story.published {
        sqlx::query("INSERT INTO stories_fts (rowid, title, body, tags) VALUES ($1, $2, $3, $4)")
            .bind(story.id)
            .bind(story.title)
            .bind(story.body)
            .bind(story.tags.join(" "))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn unindex(conn: &mut AnyConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM stories_fts WHERE rowid = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The library searched by relevance alone, the common case: the index
/// holds only published stories, so the count and the ranked page come
/// straight from it and only the page's rows are joined.
pub(super) async fn search_library(
    pool: &AnyPool,
    query: &str,
    page: PageRequest,
) -> Result<Page<StorySummary>> {
    let terms = crate::search::terms(query);
    if terms.is_empty() {
        return Ok(Page {
            items: Vec::new(),
            total: 0,
        });
    }
    let text = full_text_query(&terms);
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM stories_fts WHERE stories_fts MATCH $1")
            .bind(&text)
            .fetch_one(pool)
            .await?;
    if total == 0 || page.offset() >= total {
        return Ok(Page {
            items: Vec::new(),
            total,
        });
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM (
             SELECT rowid AS story_id, bm25(stories_fts, 10.0, 1.0, 5.0) AS fts_rank
             FROM stories_fts WHERE stories_fts MATCH $1
             ORDER BY fts_rank, rowid DESC LIMIT $2 OFFSET $3
         ) f
         CROSS JOIN stories s ON s.id = f.story_id
         JOIN users u ON u.id = s.author_id
         WHERE s.status = 'published'
         ORDER BY f.fts_rank, s.id DESC",
        summary_columns()
    )))
    .bind(&text)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    let items = rows.iter().map(summary_from_row).collect::<Result<_>>()?;
    Ok(Page { items, total })
}
