//! Contract section "Drawings (canvas)": drawings, strokes, collaborators,
//! and the server-rendered PNG.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use storybook_canvas::{
    Canvas, MAX_SIDE, MAX_STROKES, MIN_SIDE, Stroke, StrokesDraft, check_stroke, is_color,
    output_size,
};
use storybook_store::{Drawing, DrawingChanges, StoreError};

use super::access::{drawable, managed, visible_drawing};
use super::{ApiRouter, Doc, PAGE, PAGE_SIZE, ParamKind, QueryParam, page_json};
use crate::config::Limits;
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::events::Event;
use crate::events::Events;
use crate::extract::{ApiPath, AuthUser, JsonFields, JsonWithStrokes, MaybeUser, Query};
use crate::image_cache::RenderedImage;
use crate::metrics::Metrics;
use crate::notifications::Notifier;
use crate::state::{Caches, Tools};
use crate::threads::CpuBudget;
use crate::validate::{Fields, char_len, check_profanity};
use storybook_store::Store;

const MAX_TITLE_CHARS: usize = 120;
/// `?width=` of a rendered image, in pixels.
const MIN_IMAGE_WIDTH: i64 = 16;
const MAX_IMAGE_WIDTH: i64 = 1024;
const WIDTH: QueryParam = QueryParam::new(
    "width",
    ParamKind::Integer {
        minimum: MIN_IMAGE_WIDTH,
        maximum: MAX_IMAGE_WIDTH,
    },
    "width of the image in pixels (default the canvas width); the aspect ratio is kept and neither side exceeds 1024",
);
/// Set on a rendered image when drawing it took longer than the render's
/// CPU budget (`RENDER_CPU_MS`): the image shows the drawing up to there.
pub const RENDER_INCOMPLETE: header::HeaderName =
    header::HeaderName::from_static("render-incomplete");
/// Strokes read at once for a drawing's JSON (at most 2,000 points each:
/// about half a MiB decoded).
const STROKES_PER_PAGE: i64 = 16;
/// A drawing's JSON goes out in chunks of about this many bytes…
const CHUNK_BYTES: usize = 64 * 1024;
/// …of which at most this many wait for a slow client: with a page of
/// strokes, about 1 MiB in flight per stream.
const CHUNKS_IN_FLIGHT: usize = 4;

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

fn title_field(body: &mut Fields, required: bool) -> Option<String> {
    let title = if required {
        body.required_string("title")
    } else {
        body.optional_string("title")
    }?;
    let title = title.trim().to_owned();
    if (1..=MAX_TITLE_CHARS).contains(&char_len(&title)) {
        Some(title)
    } else {
        body.reject(
            "title",
            format!("must be 1 to {MAX_TITLE_CHARS} characters"),
        );
        None
    }
}

fn background_field(body: &mut Fields) -> Option<String> {
    let background = body.optional_string("background")?;
    if is_color(&background) {
        Some(background.to_ascii_lowercase())
    } else {
        body.reject("background", "must be a colour like #ffffff");
        None
    }
}

/// Reads `strokes` (an array) against a canvas size, naming each bad one.
/// Repeated ids in one request keep the first.
pub fn strokes_field(
    body: &mut Fields,
    strokes: Option<&StrokesDraft>,
    width: u32,
    height: u32,
    required: bool,
) -> Vec<Stroke> {
    let (drafts, count) = match strokes {
        None if !required => return Vec::new(),
        Some(StrokesDraft::Strokes { strokes, count }) => (strokes, *count),
        _ => {
            body.reject("strokes", "must be an array of strokes");
            return Vec::new();
        }
    };
    if count > MAX_STROKES {
        body.reject(
            "strokes",
            format!("must have at most {MAX_STROKES} strokes"),
        );
        return Vec::new();
    }
    let mut problems = Vec::new();
    let mut checked: Vec<Stroke> = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.iter().enumerate() {
        if let Some(stroke) = check_stroke(
            draft,
            width,
            height,
            &format!("strokes.{index}"),
            &mut problems,
        ) && !checked.iter().any(|s| s.id == stroke.id)
        {
            checked.push(stroke);
        }
    }
    for (field, why) in problems {
        body.reject(field, why);
    }
    checked
}

fn side_field(body: &mut Fields, field: &str) -> Option<u32> {
    let side = body.required_i64(field)?;
    if (i64::from(MIN_SIDE)..=i64::from(MAX_SIDE)).contains(&side) {
        Some(side as u32)
    } else {
        body.reject(
            field,
            format!("must be an integer from {MIN_SIDE} to {MAX_SIDE}"),
        );
        None
    }
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

/// The drawing with its strokes, streamed: the strokes are read and sent
/// a chunk at a time, so a drawing at the limits never sits in memory.
fn drawing_response(
    store: &Store,
    limits: &Arc<Limits>,
    metrics: &Arc<Metrics>,
    drawing: Drawing,
) -> Response {
    let mut head = json!(drawing);
    head.as_object_mut().map(|o| o.remove("stroke_count"));
    let head = head.to_string();
    // `{...,"strokes":[` then the strokes, then `]}`.
    let opening = format!("{},\"strokes\":[", &head[..head.len() - 1]);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let store = store.clone();
    let stall = Duration::from_secs(limits.response_stall_secs.max(1));
    let id = drawing.id;
    let gave_up = Arc::new(AtomicBool::new(false));
    let producer_gave_up = gave_up.clone();
    let metrics = metrics.clone();
    tokio::spawn(async move {
        let finished = stream_strokes(&store, id, opening, &sender, stall).await;
        if !finished {
            // The client stopped reading, or the strokes could not be read:
            // the answer ends as an error, never as a cut-off JSON that
            // looks complete.
            producer_gave_up.store(true, Ordering::Release);
            metrics.streams_cut.fetch_add(1, Ordering::Relaxed);
        }
    });
    let stream = futures_util::stream::unfold(
        (receiver, gave_up, false),
        |(mut receiver, gave_up, ended)| async move {
            if ended {
                return None;
            }
            match receiver.recv().await {
                Some(chunk) => Some((Ok(chunk), (receiver, gave_up, false))),
                None if gave_up.load(Ordering::Acquire) => Some((
                    Err(std::io::Error::other("the drawing could not be sent whole")),
                    (receiver, gave_up, true),
                )),
                None => None,
            }
        },
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Writes a drawing's strokes to `sender` as JSON: a page of strokes is
/// read (a database connection held only for that), serialised, and sent
/// in chunks of about [`CHUNK_BYTES`]; at most [`CHUNKS_IN_FLIGHT`] wait
/// for the client. A client that takes none for `stall` ends the stream.
/// Whether the whole drawing was sent.
async fn stream_strokes(
    store: &storybook_store::Store,
    id: i64,
    opening: String,
    sender: &tokio::sync::mpsc::Sender<Bytes>,
    stall: Duration,
) -> bool {
    let send = |chunk: Vec<u8>| async move {
        matches!(
            tokio::time::timeout(stall, sender.send(Bytes::from(chunk))).await,
            Ok(Ok(()))
        )
    };
    let mut chunk = opening.into_bytes();
    let mut pages = store.stroke_pages(id, STROKES_PER_PAGE);
    let mut first = true;
    loop {
        let page = match pages.next_page().await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, drawing = id, "reading strokes failed mid-response");
                return false;
            }
        };
        for stroke in &page {
            if !first {
                chunk.push(b',');
            }
            first = false;
            chunk.extend_from_slice(json!(stroke).to_string().as_bytes());
            if chunk.len() >= CHUNK_BYTES && !send(std::mem::take(&mut chunk)).await {
                return false;
            }
        }
    }
    chunk.extend_from_slice(b"]}");
    send(chunk).await
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

/// Drawings: `GET /api/drawings/{id}/image.png?width=`.
async fn image(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    MaybeUser(viewer): MaybeUser,
    ApiPath(id): ApiPath<i64>,
    Query(mut params): Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let requested = params
        .integer(WIDTH.name, MIN_IMAGE_WIDTH, MAX_IMAGE_WIDTH)
        .map(|w| w as u32);
    params.finish()?;
    let drawing = visible_drawing(&store, id, viewer.as_ref()).await?;
    let (width, height) = (drawing.width as u32, drawing.height as u32);
    let (out_width, out_height, _) = output_size(width, height, requested);
    let etag = format!(
        "\"d{}-v{}-{out_width}x{out_height}\"",
        drawing.id, drawing.version
    );
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let etag_header = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    let image_headers = |etag: HeaderValue, complete: bool| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        headers.insert(header::ETAG, etag);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if !complete {
            headers.insert(RENDER_INCOMPLETE, HeaderValue::from_static("true"));
        }
        headers
    };
    if let Some(image) = caches.images.get(&etag) {
        return Ok((image_headers(etag_header, image.complete), image.png).into_response());
    }
    let slot = tools.renders.acquire().await?;
    let store = store.clone();
    let background = drawing.background.clone();
    let cpu_budget = tools.render_cpu_budget;
    // When this request ends (answered, timed out, or the client left), the
    // render stops at its next piece of stroke; its slot goes with the
    // blocking task, so it is free only once the drawing has really stopped.
    let request_ended = RequestEnded::new();
    let stop = request_ended.flag();
    // Drawing is CPU work: off the async threads, strokes read a page at a
    // time, with no database connection held while drawing.
    let image = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let handle = tokio::runtime::Handle::current();
        let mut canvas =
            Canvas::new(width, height, &background, requested).ok_or("empty canvas")?;
        let mut cpu = CpuBudget::start(cpu_budget);
        let mut keep_going = || !stop.load(Ordering::Relaxed) && !cpu.spent();
        let mut pages = store.stroke_pages(id, STROKES_PER_PAGE);
        let complete = 'pages: loop {
            if !keep_going() {
                break false;
            }
            let page = handle
                .block_on(pages.next_page())
                .map_err(|e| e.to_string())?;
            if page.is_empty() {
                break true;
            }
            for stroke in &page {
                if canvas.draw(stroke, &mut keep_going).is_err() {
                    break 'pages false;
                }
            }
        };
        if stop.load(Ordering::Relaxed) {
            return Err("the request ended".to_owned());
        }
        Ok(RenderedImage {
            png: Bytes::from(canvas.encode_png()?),
            complete,
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    drop(request_ended);
    if !image.complete {
        tracing::warn!(drawing = id, "render stopped at its CPU budget");
    }
    caches.images.put(&etag, image.clone());
    Ok((image_headers(etag_header, image.complete), image.png).into_response())
}

/// Raises its flag when dropped: the end of a request, however it ends,
/// seen by work that runs outside it.
struct RequestEnded(Arc<AtomicBool>);

impl RequestEnded {
    fn new() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for RequestEnded {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
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
