//! Contract section "Drawings (canvas)": drawings, strokes, collaborators,
//! and the server-rendered PNG.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use storybook_canvas::MAX_STROKES;
use storybook_store::{DrawingChanges, Store, StoreError};

use super::access::{drawable, managed, visible_drawing};
use super::{ApiRouter, Doc, PAGE, PAGE_SIZE, page_json};
use crate::config::Limits;
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::events::{Event, Events};
use crate::extract::{ApiPath, AuthUser, JsonFields, JsonWithStrokes, MaybeUser, Query};
use crate::metrics::Metrics;
use crate::notifications::Notifier;
use crate::state::{Caches, Tools};
use crate::validate::check_profanity;

mod image;
mod input;
mod stream;
use image::{WIDTH, image};
use input::{background_field, side_field, strokes_field, title_field};
use stream::drawing_response;

pub fn router() -> ApiRouter {
    ApiRouter::new("drawings")
        .post(
            "/api/drawings",
            create,
            Doc::new("Start a drawing (16–4096 px a side), optionally with strokes")
                .user()
                .body("DrawingInput")
                .returns(201, Some("Drawing")),
        )
        .get(
            "/api/drawings/{id}",
            detail,
            Doc::new("A drawing with its strokes: owner, collaborators, admins, or anyone when a published story shows it")
                .returns(200, Some("Drawing"))
                .errors(&[404]),
        )
        .patch(
            "/api/drawings/{id}",
            update,
            Doc::new("Change title or background (owner or admin)")
                .user()
                .body("DrawingUpdate")
                .returns(200, Some("Drawing"))
                .errors(&[403, 404]),
        )
        .delete(
            "/api/drawings/{id}",
            remove,
            Doc::new("Delete a drawing (owner or admin)").user().returns(204, None).errors(&[403, 404]),
        )
        .post(
            "/api/drawings/{id}/strokes",
            append,
            Doc::new("Append strokes; a stroke id already present is ignored (idempotent retries)")
                .user()
                .body("StrokesInput")
                .returns(200, Some("StrokeCount"))
                .errors(&[403, 404]),
        )
        .delete(
            "/api/drawings/{id}/strokes/{stroke_id}",
            undo,
            Doc::new("Undo one stroke").user().returns(204, None).errors(&[403, 404]),
        )
        .get(
            "/api/drawings/{id}/image.png",
            image,
            Doc::new("The drawing rendered to PNG; ?width= 16–1024 keeps the aspect, neither side over 1024; ETag and 304")
                .query(&[WIDTH])
                .answers_media("image/png")
                .returns(200, None)
                .errors(&[304, 404]),
        )
        .post(
            "/api/drawings/{id}/collaborators",
            add_collaborator,
            Doc::new("Invite a collaborator (owner or admin); idempotent; the first invite notifies them")
                .user()
                .body("CollaboratorInput")
                .returns(201, Some("Collaborators"))
                .errors(&[403, 404]),
        )
        .delete(
            "/api/drawings/{id}/collaborators/{username}",
            remove_collaborator,
            Doc::new("Remove a collaborator (owner or admin)").user().returns(204, None).errors(&[403, 404]),
        )
        .get(
            "/api/me/drawings",
            mine,
            Doc::new("Drawings you own or collaborate on, newest first (without strokes; with stroke_count)")
                .user()
                .query(&[PAGE, PAGE_SIZE])
                .returns(200, Some("DrawingPage")),
        )
}

/// Drawings: `POST /api/drawings`.
async fn create(
    State(store): State<Store>,
    State(tools): State<Tools>,
    State(limits): State<Arc<Limits>>,
    State(metrics): State<Arc<Metrics>>,
    AuthUser(user): AuthUser,
    JsonWithStrokes(mut body, strokes): JsonWithStrokes,
) -> ApiResult<(StatusCode, Response)> {
    let title = title_field(&mut body, true);
    let width = side_field(&mut body, "width");
    let height = side_field(&mut body, "height");
    let background = background_field(&mut body).unwrap_or_else(|| "#ffffff".to_owned());
    let strokes = match (width, height) {
        (Some(width), Some(height)) => {
            strokes_field(&mut body, strokes.as_ref(), width, height, false)
        }
        _ => Vec::new(),
    };
    body.finish()?;
    let (Some(title), Some(width), Some(height)) = (title, width, height) else {
        return Err(ApiError::internal("validated drawing fields missing"));
    };
    check_profanity(&tools.profanity, [("title", title.as_str())])?;
    let drawing = store
        .create_drawing(
            user.id,
            &title,
            i64::from(width),
            i64::from(height),
            &background,
            &strokes,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        drawing_response(&store, &limits, &metrics, drawing),
    ))
}

/// Drawings: `GET /api/drawings/{id}`.
async fn detail(
    State(store): State<Store>,
    State(limits): State<Arc<Limits>>,
    State(metrics): State<Arc<Metrics>>,
    MaybeUser(viewer): MaybeUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    let drawing = visible_drawing(&store, id, viewer.as_ref()).await?;
    Ok(drawing_response(&store, &limits, &metrics, drawing))
}

/// Drawings: `PATCH /api/drawings/{id}`.
async fn update(
    State(store): State<Store>,
    State(tools): State<Tools>,
    State(limits): State<Arc<Limits>>,
    State(metrics): State<Arc<Metrics>>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Response> {
    managed(&store, id, &user).await?;
    let title = title_field(&mut body, false);
    let background = background_field(&mut body);
    body.finish()?;
    if let Some(title) = &title {
        check_profanity(&tools.profanity, [("title", title.as_str())])?;
    }
    let drawing = store
        .update_drawing(id, &DrawingChanges { title, background })
        .await?;
    Ok(drawing_response(&store, &limits, &metrics, drawing))
}

/// Drawings: `DELETE /api/drawings/{id}`.
async fn remove(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(events): State<Arc<dyn Events>>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    managed(&store, id, &user).await?;
    // The pages that attached it no longer do; cached copies are stale.
    for story in store.delete_drawing(id).await? {
        caches.reads.invalidate_story(story);
    }
    events.send(Event::DrawingChanged { drawing_id: id }).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Drawings: `POST /api/drawings/{id}/strokes`.
async fn append(
    State(store): State<Store>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    JsonWithStrokes(mut body, strokes): JsonWithStrokes,
) -> ApiResult<Json<Value>> {
    let drawing = drawable(&store, id, &user).await?;
    let (width, height) = (drawing.width as u32, drawing.height as u32);
    let strokes = strokes_field(&mut body, strokes.as_ref(), width, height, true);
    body.finish()?;
    let count = store
        .append_strokes(id, &strokes, MAX_STROKES as i64)
        .await?;
    Ok(Json(json!({ "stroke_count": count })))
}

/// Drawings: `DELETE /api/drawings/{id}/strokes/{stroke_id}`.
async fn undo(
    State(store): State<Store>,
    AuthUser(user): AuthUser,
    ApiPath((id, stroke_id)): ApiPath<(i64, String)>,
) -> ApiResult<StatusCode> {
    drawable(&store, id, &user).await?;
    store.delete_stroke(id, &stroke_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Drawings: `POST /api/drawings/{id}/collaborators`.
async fn add_collaborator(
    State(store): State<Store>,
    State(notifier): State<Notifier>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let drawing = managed(&store, id, &user).await?;
    let username = body
        .required_string("username")
        .map(|u| u.trim().to_lowercase());
    body.finish()?;
    let username = username.unwrap_or_default();
    let invited = match store.user_by_username(&username).await {
        Ok(invited) if invited.active => invited,
        Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::NotFound),
        Err(other) => return Err(other.into()),
    };
    if invited.id == drawing.owner.id {
        return Err(ApiError::Validation(FieldErrors::from([(
            "username".to_owned(),
            "is the drawing's owner".to_owned(),
        )])));
    }
    if store.add_collaborator(id, invited.id).await? {
        notifier
            .notify(
                invited.id,
                "collab_invite",
                json!({ "drawing_id": id, "user": user.summary() }),
            )
            .await;
    }
    let drawing = store.drawing(id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "collaborators": drawing.collaborators })),
    ))
}

/// Drawings: `DELETE /api/drawings/{id}/collaborators/{username}`.
async fn remove_collaborator(
    State(store): State<Store>,
    State(events): State<Arc<dyn Events>>,
    AuthUser(user): AuthUser,
    ApiPath((id, username)): ApiPath<(i64, String)>,
) -> ApiResult<StatusCode> {
    managed(&store, id, &user).await?;
    let removed = store.user_by_username(&username.to_lowercase()).await?;
    store.remove_collaborator(id, removed.id).await?;
    let event = Event::AccessChanged {
        user_id: removed.id,
    };
    events.send(event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Drawings: `GET /api/me/drawings`.
async fn mine(
    State(store): State<Store>,
    AuthUser(user): AuthUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let page = params.page();
    params.finish()?;
    let found = store.list_user_drawings(user.id, page).await?;
    Ok(Json(page_json(&found, page)))
}
