//! Contract section "Stories": writing, the library, search, likes, reads,
//! reading progress and reports. (`generate` and `from-photo` come with
//! the creative tools.)

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use storybook_store::{
    AGE_GROUPS, AuditAction, AuditNote, GENRES, NewStory, Page, PageRequest, Role, Story,
    StoryFilter, StorySort, StorySource, StoryStatus, StorySummary, User,
};

use super::access::{editable_story, visible_story};
use super::story_input::{MAX_REASON_CHARS, check_drawings, check_story_profanity, story_fields};
use super::views::story_json;
use super::{ApiRouter, Doc, PAGE, PAGE_SIZE, ParamKind, QueryParam, page_json};
use crate::cache::{CacheKey, Cached, Ticket};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::events::Events;
use crate::extract::{ApiPath, AuthUser, JsonFields, MaybeUser, Query};
use crate::likes_cache::MAX_KEPT_LIKES;
use crate::notifications::Notifier;
use crate::state::{Caches, Tools};
use crate::validate::char_len;
use storybook_store::Store;

/// Library pages up to this number are cached (the hot ones).
const CACHED_LIBRARY_PAGES: u32 = 3;

/// The library's orders; `relevance` needs `q` (without it, `newest`).
const SORTS: &[&str] = &["newest", "popular", "title", "relevance"];
const SEARCH: QueryParam = QueryParam::new(
    "q",
    ParamKind::Text,
    "full-text search over title, pages and tags, ranked; the last word matches as a prefix",
);
const GENRE: QueryParam = QueryParam::new("genre", ParamKind::OneOf(GENRES), "only this genre");
const AGE_GROUP: QueryParam = QueryParam::new(
    "age_group",
    ParamKind::OneOf(AGE_GROUPS),
    "only this age group",
);
const TAG: QueryParam = QueryParam::new("tag", ParamKind::Text, "only stories with this tag");
const AUTHOR: QueryParam =
    QueryParam::new("author", ParamKind::Text, "only this author's (username)");
const SORT: QueryParam = QueryParam::new(
    "sort",
    ParamKind::OneOf(SORTS),
    "newest (default), popular (likes), title (A to Z), relevance (default with q)",
);

pub fn router() -> ApiRouter {
    ApiRouter::new("stories")
        .get(
            "/api/stories",
            library,
            Doc::new("The library: published stories, filtered, searched, sorted, paginated")
                .query(&[SEARCH, GENRE, AGE_GROUP, TAG, AUTHOR, SORT, PAGE, PAGE_SIZE])
                .returns(200, Some("StoryPage")),
        )
        .post(
            "/api/stories",
            create,
            Doc::new("Write a story (draft unless status is published)")
                .user()
                .body("StoryInput")
                .returns(201, Some("Story")),
        )
        .get(
            "/api/stories/{id}",
            detail,
            Doc::new("A story; drafts are 404 to all but their author and admins; counts a signed-in read once")
                .returns(200, Some("Story"))
                .errors(&[404]),
        )
        .patch(
            "/api/stories/{id}",
            update,
            Doc::new("Change a story (author or admin); only the fields sent change")
                .user()
                .body("StoryUpdate")
                .returns(200, Some("Story"))
                .errors(&[403, 404]),
        )
        .delete(
            "/api/stories/{id}",
            remove,
            Doc::new("Delete a story (author or admin)").user().returns(204, None).errors(&[403, 404]),
        )
        .post(
            "/api/stories/{id}/like",
            like,
            Doc::new("Like (idempotent); the first like by a user notifies the author")
                .user()
                .returns(200, Some("Like"))
                .errors(&[404]),
        )
        .delete(
            "/api/stories/{id}/like",
            unlike,
            Doc::new("Take a like back (idempotent)").user().returns(200, Some("Like")).errors(&[404]),
        )
        .put(
            "/api/stories/{id}/progress",
            progress,
            Doc::new("Record the page you are on (0-based); completed once the last page is reached")
                .user()
                .body("ProgressInput")
                .returns(200, Some("Progress"))
                .errors(&[404]),
        )
        .post(
            "/api/stories/{id}/report",
            report,
            Doc::new("Report a story you can read to the moderators")
                .user()
                .body("ReportInput")
                .returns(201, Some("ReportCreated"))
                .errors(&[404]),
        )
        .get(
            "/api/me/stories",
            own_stories,
            Doc::new("Your stories, every status, newest first")
                .user()
                .query(&[PAGE, PAGE_SIZE])
                .returns(200, Some("StoryPage")),
        )
        .get(
            "/api/me/reading",
            reading,
            Doc::new("Your reading progress, newest first")
                .user()
                .query(&[PAGE, PAGE_SIZE])
                .returns(200, Some("ReadingPage")),
        )
}

/// The admin's id when an admin changes a story that is not theirs: such
/// a change goes to the audit log.
fn admin_acting_on(user: &User, story: &Story) -> Option<i64> {
    (user.role == Role::Admin && story.author.id != user.id).then_some(user.id)
}

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
async fn liked_among(
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
fn json_body(body: axum::body::Bytes) -> Response {
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
fn cache_body(
    caches: &Caches,
    ticket: Ticket,
    key: CacheKey,
    value: &Value,
) -> ApiResult<Response> {
    let body = axum::body::Bytes::from(serde_json::to_vec(value).map_err(ApiError::internal)?);
    caches.reads.put(ticket, key, Cached::Body(body.clone()));
    Ok(json_body(body))
}

/// Stories: `GET /api/stories` (the library).
async fn library(
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
        Some(username) => match store.user_by_username(username).await {
            Ok(user) => Some(user.id),
            Err(storybook_store::StoreError::NotFound) => {
                return Ok(Json(summaries_json(Vec::new(), 0, page)).into_response());
            }
            Err(other) => return Err(other.into()),
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
            let found = Arc::new(store.list_stories(&filter, page).await?);
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

/// Stories: `POST /api/stories`.
async fn create(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    AuthUser(user): AuthUser,
    JsonFields(mut body): JsonFields,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let changes = story_fields(&mut body, false);
    body.finish()?;
    check_drawings(&store, user.id, &changes).await?;
    check_story_profanity(&tools, &changes).await?;
    let (Some(title), Some(pages), Some(genre), Some(age_group)) = (
        changes.title,
        changes.pages,
        changes.genre,
        changes.age_group,
    ) else {
        return Err(ApiError::internal("validated story fields missing"));
    };
    let story = store
        .create_story(&NewStory {
            author_id: user.id,
            title,
            pages,
            genre,
            age_group,
            tags: changes.tags.unwrap_or_default(),
            status: changes.status.unwrap_or(StoryStatus::Draft),
            source: StorySource::Manual,
        })
        .await?;
    caches.reads.invalidate_library();
    Ok((StatusCode::CREATED, Json(story_json(&story, false))))
}

/// Stories: `GET /api/stories/{id}`.
async fn detail(
    State(store): State<Store>,
    State(caches): State<Caches>,
    MaybeUser(viewer): MaybeUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    let Some(viewer) = viewer else {
        // Anonymous readers see only published stories and count no read:
        // their answer is the same bytes for everyone until the next write.
        let generation = caches.reads.generation();
        let body_key = CacheKey::StoryBody(id);
        if let Some(Cached::Body(body)) = caches.reads.get(generation, &body_key) {
            return Ok(json_body(body));
        }
        let story = visible_story(&store, &caches, id, None).await?;
        return cache_body(&caches, generation, body_key, &story_json(&story, false));
    };
    let story = visible_story(&store, &caches, id, Some(&viewer)).await?;
    let mut story = Story::clone(&story);
    if viewer.id != story.author.id && store.count_read(viewer.id, id).await? {
        story.reads += 1;
        // Only this story's entries: library pages show its read count up
        // to CACHE_TTL_SECS late, so a crowd of first reads does not empty
        // the cache for everyone.
        caches.reads.invalidate_story(id);
    }
    let liked = !liked_among(&store, &caches, viewer.id, &[id])
        .await?
        .is_empty();
    Ok(Json(story_json(&story, liked)).into_response())
}

/// Stories: `PATCH /api/stories/{id}`.
async fn update(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    State(events): State<Arc<dyn Events>>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    let before = editable_story(&store, &caches, id, &user).await?;
    let changes = story_fields(&mut body, true);
    body.finish()?;
    check_drawings(&store, before.author.id, &changes).await?;
    check_story_profanity(&tools, &changes).await?;
    let unpublished = before.status == StoryStatus::Published
        && changes.status.is_some_and(|s| s != StoryStatus::Published);
    let audit = admin_acting_on(&user, &before).map(|admin_id| AuditNote {
        admin_id,
        action: if unpublished {
            AuditAction::StoryUnpublished
        } else {
            AuditAction::StoryUpdated
        },
        target_id: id,
        detail: json!({ "title": before.title, "author": before.author.username, "fields": changes.named_fields() }),
    });
    let story = store.update_story(id, &changes, audit.as_ref()).await?;
    caches.reads.invalidate_story_and_library(id);
    if before.status == StoryStatus::Published && story.status != StoryStatus::Published
        || changes.pages.is_some()
    {
        // Readers of it, or of a drawing it showed, may have lost the right.
        story_changed(&events, &before).await;
    }
    let liked = !liked_among(&store, &caches, user.id, &[id])
        .await?
        .is_empty();
    Ok(Json(story_json(&story, liked)))
}

/// Stories: `DELETE /api/stories/{id}`.
async fn remove(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(events): State<Arc<dyn Events>>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let story = editable_story(&store, &caches, id, &user).await?;
    let audit = admin_acting_on(&user, &story).map(|admin_id| AuditNote {
        admin_id,
        action: AuditAction::StoryDeleted,
        target_id: id,
        detail: json!({ "title": story.title, "author": story.author.username }),
    });
    store.delete_story(id, audit.as_ref()).await?;
    caches.reads.invalidate_story_and_library(id);
    story_changed(&events, &story).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells the story's channel, and the channels of the drawings it showed,
/// to check who may still read them.
async fn story_changed(events: &Arc<dyn Events>, story: &Story) {
    let drawing_ids: Vec<i64> = story.pages.iter().filter_map(|p| p.drawing_id).collect();
    let event = Event::StoryChanged {
        story_id: story.id,
        drawing_ids: &drawing_ids,
    };
    events.send(event).await;
}

/// Stories: `POST /api/stories/{id}/like`.
async fn like(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(notifier): State<Notifier>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let story = visible_story(&store, &caches, id, Some(&user)).await?;
    let outcome = store.like(user.id, id).await?;
    caches.likes.forget_user(user.id);
    caches.reads.invalidate_story_and_library(id);
    if outcome.first_like && story.author.id != user.id {
        notifier
            .notify(
                story.author.id,
                "like",
                json!({ "story_id": id, "user": user.summary() }),
            )
            .await;
    }
    Ok(Json(
        json!({ "likes": outcome.likes, "liked": outcome.liked }),
    ))
}

/// Stories: `DELETE /api/stories/{id}/like`.
async fn unlike(
    State(store): State<Store>,
    State(caches): State<Caches>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    visible_story(&store, &caches, id, Some(&user)).await?;
    let outcome = store.unlike(user.id, id).await?;
    caches.likes.forget_user(user.id);
    caches.reads.invalidate_story_and_library(id);
    Ok(Json(
        json!({ "likes": outcome.likes, "liked": outcome.liked }),
    ))
}

/// Stories: `PUT /api/stories/{id}/progress`.
async fn progress(
    State(store): State<Store>,
    State(caches): State<Caches>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    let story = visible_story(&store, &caches, id, Some(&user)).await?;
    let page = body.required_i64("page");
    let page_count = story.pages.len() as i64;
    if let Some(page) = page
        && !(0..page_count).contains(&page)
    {
        body.reject("page", format!("must be from 0 to {}", page_count - 1));
    }
    body.finish()?;
    let page = page.unwrap_or_default();
    let progress = store
        .set_progress(user.id, id, page, page == page_count - 1)
        .await?;
    Ok(Json(json!(progress)))
}

/// Stories: `POST /api/stories/{id}/report`.
async fn report(
    State(store): State<Store>,
    State(caches): State<Caches>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<(StatusCode, Json<Value>)> {
    visible_story(&store, &caches, id, Some(&user)).await?;
    let reason = body.required_string("reason").map(|r| r.trim().to_owned());
    if let Some(reason) = &reason
        && !(1..=MAX_REASON_CHARS).contains(&char_len(reason))
    {
        body.reject(
            "reason",
            format!("must be 1 to {MAX_REASON_CHARS} characters"),
        );
    }
    body.finish()?;
    let report = store
        .create_report(id, user.id, &reason.unwrap_or_default())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": report.id, "status": report.status, "created_at": report.created_at })),
    ))
}

/// Stories: `GET /api/me/stories`.
async fn own_stories(
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
async fn reading(
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
