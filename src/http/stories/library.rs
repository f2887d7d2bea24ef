//! The library and the lists (contract "Stories"): published stories
//! filtered, sorted and searched, the reader's own stories and reading
//! list; the cache plumbing that answers the hot pages from kept bytes,
//! and `liked` filled in for a signed-in reader.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use storybook_store::{
    AGE_GROUPS, GENRES, Page, PageRequest, Store, StoryFilter, StorySort, StorySummary, User,
};

use crate::cache::{CacheKey, Cached, Ticket};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, MaybeUser, Query};
use crate::http::{ParamKind, QueryParam, page_json, user_id_named};
use crate::likes_cache::MAX_KEPT_LIKES;
use crate::state::{Caches, Tools};

pub(super) const CACHED_LIBRARY_PAGES: u32 = 3;

/// How far a search's ranked results are kept (#24): its first this many
/// stories, fetched once when a page past the cached ones is asked for,
/// then served as slices until the next write (they are a library entry of
/// the read cache, bounded by its bytes and invalidated with the pages).
const RANKED_WINDOW: u32 = 500;

/// The library's orders; `relevance` needs `q` (without it, `newest`).
pub(super) const SORTS: &[&str] = &["newest", "popular", "title", "relevance"];
pub(super) const SEARCH: QueryParam = QueryParam::new(
    "q",
    ParamKind::Text,
    "full-text search over title, pages and tags, ranked; the last word matches as a prefix",
);
pub(super) const GENRE: QueryParam =
    QueryParam::new("genre", ParamKind::OneOf(GENRES), "only this genre");
pub(super) const AGE_GROUP: QueryParam = QueryParam::new(
    "age_group",
    ParamKind::OneOf(AGE_GROUPS),
    "only this age group",
);
pub(super) const TAG: QueryParam =
    QueryParam::new("tag", ParamKind::Text, "only stories with this tag");
pub(super) const AUTHOR: QueryParam =
    QueryParam::new("author", ParamKind::Text, "only this author's (username)");
pub(super) const SORT: QueryParam = QueryParam::new(
    "sort",
    ParamKind::OneOf(SORTS),
    "newest (default), popular (likes), title (A to Z), relevance (default with q)",
);

/// Fills in `liked` for the viewer.
async fn with_liked(
    store: &Store,
    caches: &Caches,
    viewer: Option<&User>,
    mut items: Vec<StorySummary>,
) -> ApiResult<Vec<StorySummary>> {
    if let Some(user) = viewer {
        let ids: Vec<i64> = items.iter().map(|s| s.id).collect();
        let liked = liked_among(store, caches, user.id, &ids).await?;
        for item in &mut items {
            item.liked = liked.contains(&item.id);
        }
    }
    Ok(items)
}

/// Which of `story_ids` the user likes: from the likes cache, else from
/// the database (keeping the user's whole set when it is small).
pub(super) async fn liked_among(
    store: &Store,
    caches: &Caches,
    user_id: i64,
    story_ids: &[i64],
) -> ApiResult<Vec<i64>> {
    if let Some(liked) = caches.likes.liked_among(user_id, story_ids) {
        return Ok(liked);
    }
    let ticket = caches.likes.ticket();
    let all = store
        .liked_story_ids(user_id, MAX_KEPT_LIKES as i64 + 1)
        .await?;
    if all.len() > MAX_KEPT_LIKES {
        return Ok(store.liked_among(user_id, story_ids).await?);
    }
    let liked = story_ids
        .iter()
        .copied()
        .filter(|id| all.contains(id))
        .collect();
    caches.likes.put(ticket, user_id, all);
    Ok(liked)
}

fn summaries_json(items: Vec<StorySummary>, total: i64, request: PageRequest) -> Value {
    page_json(&Page { items, total }, request)
}

/// A JSON answer from bytes serialised earlier.
pub(super) fn json_body(body: axum::body::Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Serialises `value`, keeps the bytes under `key`, and answers with them.
pub(super) fn cache_body(
    caches: &Caches,
    ticket: Ticket,
    key: CacheKey,
    value: &Value,
) -> ApiResult<Response> {
    let body = axum::body::Bytes::from(serde_json::to_vec(value).map_err(ApiError::internal)?);
    caches.reads.put(ticket, key, Cached::Body(body.clone()));
    Ok(json_body(body))
}

/// A search's page past the cached ones: a slice of the query's ranked
/// window, which is fetched (one ranking of the matches) on the first such
/// page; a page past the window is asked of the database alone.
async fn ranked_page(
    store: &Store,
    caches: &Caches,
    generation: crate::cache::Ticket,
    filter: &StoryFilter,
    page: PageRequest,
) -> ApiResult<Arc<Page<StorySummary>>> {
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let size = page.page_size as usize;
    if offset.saturating_add(size) > RANKED_WINDOW as usize {
        return Ok(Arc::new(store.list_stories(filter, page).await?));
    }
    let key = CacheKey::Library(format!("{filter:?}/ranked"));
    let window = match caches.reads.get(generation, &key) {
        Some(Cached::Library(window)) => window,
        _ => {
            let whole = PageRequest {
                page: 1,
                page_size: RANKED_WINDOW,
            };
            let window = Arc::new(store.list_stories(filter, whole).await?);
            caches
                .reads
                .put(generation, key, Cached::Library(window.clone()));
            window
        }
    };
    let items = window
        .items
        .iter()
        .skip(offset)
        .take(size)
        .cloned()
        .collect();
    Ok(Arc::new(Page {
        items,
        total: window.total,
    }))
}

/// Stories: `GET /api/stories` (the library).
pub(super) async fn library(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    MaybeUser(viewer): MaybeUser,
    Query(mut params): Query,
) -> ApiResult<Response> {
    let query = params.text("q");
    let genre = params.choice("genre", GENRES);
    let age_group = params.choice("age_group", AGE_GROUPS);
    let tag = params.text("tag");
    let author = params.text("author").map(|a| a.to_lowercase());
    let sort = params.choice(SORT.name, SORTS);
    let page = params.page();
    params.finish()?;
    let sort = match sort {
        Some("popular") => StorySort::Popular,
        Some("title") => StorySort::Title,
        Some("relevance") => StorySort::Relevance,
        Some(_) => StorySort::Newest,
        None if query.is_some() => StorySort::Relevance,
        None => StorySort::Newest,
    };
    let author_id = match &author {
        Some(username) => match user_id_named(&store, username).await? {
            Some(id) => Some(id),
            None => return Ok(Json(summaries_json(Vec::new(), 0, page)).into_response()),
        },
        None => None,
    };
    let filter = StoryFilter {
        query: query.clone(),
        genre: genre.map(str::to_owned),
        age_group: age_group.map(str::to_owned),
        tag,
        author_id,
        published_only: true,
        sort: Some(sort),
        ..StoryFilter::default()
    };
    // The first pages of browsing and of each search are the hot reads.
    let cacheable = page.page <= CACHED_LIBRARY_PAGES;
    let described = format!("{filter:?}/{}/{}", page.page, page.page_size);
    let key = CacheKey::Library(described.clone());
    let generation = caches.reads.generation();
    // Anonymous readers (no `liked` to fill in) get the finished bytes.
    let body_key = cacheable.then_some(CacheKey::LibraryBody(described));
    if viewer.is_none()
        && let Some(body_key) = &body_key
        && let Some(Cached::Body(body)) = caches.reads.get(generation, body_key)
    {
        return Ok(json_body(body));
    }
    let found = if cacheable {
        match caches.reads.get(generation, &key) {
            Some(Cached::Library(found)) => Some(found),
            _ => None,
        }
    } else {
        None
    };
    let found = match found {
        Some(found) => found,
        None => {
            // Search has slots of its own: it queues behind other searches
            // (503 busy past its queue), not in front of everything else.
            let _search_slot = match &query {
                Some(_) => Some(tools.searches.acquire().await?),
                None => None,
            };
            let found = match (&query, cacheable) {
                (Some(_), false) => ranked_page(&store, &caches, generation, &filter, page).await?,
                _ => Arc::new(store.list_stories(&filter, page).await?),
            };
            if cacheable {
                caches
                    .reads
                    .put(generation, key, Cached::Library(found.clone()));
            }
            found
        }
    };
    let liked = match &viewer {
        Some(user) => {
            let ids: Vec<i64> = found.items.iter().map(|s| s.id).collect();
            liked_among(&store, &caches, user.id, &ids).await?
        }
        None => Vec::new(),
    };
    // A page on which the reader likes nothing is the anonymous page: the
    // same bytes, serialised once for everyone (issue #14's profile: the
    // JSON was most of a signed-in page once its statements were gone).
    if liked.is_empty()
        && let Some(body_key) = body_key
    {
        if let Some(Cached::Body(body)) = caches.reads.get(generation, &body_key) {
            return Ok(json_body(body));
        }
        let value = summaries_json(found.items.clone(), found.total, page);
        return cache_body(&caches, generation, body_key, &value);
    }
    let mut items = found.items.clone();
    for item in &mut items {
        item.liked = liked.contains(&item.id);
    }
    Ok(Json(summaries_json(items, found.total, page)).into_response())
}

/// Stories: `GET /api/me/stories`.
pub(super) async fn own_stories(
    State(store): State<Store>,
    State(caches): State<Caches>,
    AuthUser(user): AuthUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let page = params.page();
    params.finish()?;
    let filter = StoryFilter {
        author_id: Some(user.id),
        ..StoryFilter::default()
    };
    let found = store.list_stories(&filter, page).await?;
    let items = with_liked(&store, &caches, Some(&user), found.items).await?;
    Ok(Json(summaries_json(items, found.total, page)))
}

/// Stories: `GET /api/me/reading`.
pub(super) async fn reading(
    State(store): State<Store>,
    State(caches): State<Caches>,
    AuthUser(user): AuthUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let page = params.page();
    params.finish()?;
    let found = store.reading_list(user.id, page).await?;
    let (summaries, progress): (Vec<StorySummary>, Vec<_>) = found.items.into_iter().unzip();
    let summaries = with_liked(&store, &caches, Some(&user), summaries).await?;
    let items: Vec<Value> = summaries
        .into_iter()
        .zip(progress)
        .map(|(story, progress)| {
            json!({ "story": story, "page": progress.page, "completed": progress.completed, "updated_at": progress.updated_at })
        })
        .collect();
    Ok(Json(
        json!({ "items": items, "total": found.total, "page": page.page, "page_size": page.page_size }),
    ))
}
