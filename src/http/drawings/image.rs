//! `GET /api/drawings/{id}/image.png`: the drawing rendered at the output
//! size, off the async threads, bounded in time and CPU, kept by ETag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use storybook_canvas::{Canvas, output_size};
use storybook_store::Store;

use super::stream::STROKES_PER_PAGE;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, MaybeUser, Query};
use crate::http::access::visible_drawing;
use crate::http::{ParamKind, QueryParam};
use crate::image_cache::RenderedImage;
use crate::state::{Caches, Tools};
use crate::threads::CpuBudget;

/// `?width=` of a rendered image, in pixels.
const MIN_IMAGE_WIDTH: i64 = 16;
const MAX_IMAGE_WIDTH: i64 = 1024;
pub(super) const WIDTH: QueryParam = QueryParam::new(
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
/// Drawings: `GET /api/drawings/{id}/image.png?width=`.
pub(super) async fn image(
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
