//! Contract section "Stories": writing, the library, search, likes, reads,
//! reading progress and reports. (`generate` and `from-photo` come with
//! the creative tools.)

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use storybook_store::{
    AdminEdit, AuditAction, AuditNote, NewStory, Role, Story, StorySource, StoryStatus, User,
};

use super::access::{editable_story, visible_story};
use super::story_input::{MAX_REASON_CHARS, check_drawings, check_story_profanity, story_fields};
use super::views::story_json;
use super::{ApiRouter, Doc, PAGE, PAGE_SIZE};
use crate::cache::{CacheKey, Cached};
use crate::config::Limits;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, Events};
use crate::extract::{ApiPath, AuthUser, JsonFields, MaybeUser};
use crate::notifications::Notifier;
use crate::state::{Caches, Tools};
use crate::validate::char_len;

mod library;
use library::{
    AGE_GROUP, AUTHOR, GENRE, SEARCH, SORT, TAG, cache_body, json_body, library, liked_among,
    own_stories, reading,
};
use storybook_store::Store;

/// Library pages up to this number are cached (the hot ones).
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
            Doc::new("Report a story you can read to the moderators (at most 20 reports a user in 24 hours; 429 beyond)")
                .user()
                .body("ReportInput")
                .returns(201, Some("ReportCreated"))
                .errors(&[404, 429]),
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
        // Reads not yet written are added to what the database says, so
        // such a story's answer is built rather than the cached bytes.
        let pending = caches.read_counter.pending_for(id);
        if pending > 0 {
            let story = visible_story(&store, &caches, id, None).await?;
            return story_answer(&story, pending, false);
        }
        let generation = caches.reads.generation();
        let body_key = CacheKey::StoryBody(id);
        if let Some(Cached::Body(body)) = caches.reads.get(generation, &body_key) {
            return Ok(json_body(body));
        }
        let story = visible_story(&store, &caches, id, None).await?;
        return cache_body(&caches, generation, body_key, &story_json(&story, false));
    };
    let story = visible_story(&store, &caches, id, Some(&viewer)).await?;
    if viewer.id != story.author.id {
        // Counted in memory, written within a second (read_counter.rs);
        // the story shows the reads not yet written too. Library pages
        // show them once written, up to CACHE_TTL_SECS late.
        caches.read_counter.count(&store, viewer.id, id).await?;
    }
    let liked = !liked_among(&store, &caches, viewer.id, &[id])
        .await?
        .is_empty();
    story_answer(&story, caches.read_counter.pending_for(id), liked)
}

/// A story's answer, with its reads not yet written added (the story is
/// copied only then), written straight to bytes.
fn story_answer(story: &Story, pending_reads: u32, liked: bool) -> ApiResult<Response> {
    let body = if pending_reads == 0 {
        crate::http::views::story_bytes(story, liked)
    } else {
        let mut story = story.clone();
        story.reads += i64::from(pending_reads);
        crate::http::views::story_bytes(&story, liked)
    };
    Ok(library::json_body(body.map_err(ApiError::internal)?.into()))
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
    // The audit's action, and whether readers lose the story, are decided
    // by the store from the row its transaction locked: `before` may be
    // this process's cached copy of a story another process changed.
    let admin_edit = admin_acting_on(&user, &before).map(|admin_id| AdminEdit {
        admin_id,
        detail: json!({ "title": before.title, "author": before.author.username, "fields": changes.named_fields() }),
    });
    let update = store
        .update_story(id, &changes, admin_edit.as_ref())
        .await?;
    let story = update.story;
    if update.changed {
        caches.reads.invalidate_story_and_library(id);
    }
    if update.was_published && story.status != StoryStatus::Published
        || update.changed && changes.pages.is_some()
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
    State(limits): State<Arc<Limits>>,
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
        .create_report(
            id,
            user.id,
            &reason.unwrap_or_default(),
            limits.reports_per_user_per_day,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": report.id, "status": report.status, "created_at": report.created_at })),
    ))
}
