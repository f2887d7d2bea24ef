//! Contract "Admin console and audit (v1.4)": `GET /admin`, the moderators'
//! console. Three files (HTML, CSS, JavaScript) compiled into the binary
//! and served as they are: no build step, no cookies (the page keeps the
//! admin's bearer token in `sessionStorage` and calls the public API with
//! it, so there is no CSRF surface). The bytes sit in the binary's
//! read-only data and are only paged in when served, so idle memory does
//! not change.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiRouter, Doc};
use crate::error::ApiError;
use crate::state::AppState;

/// The console page's path.
pub const PAGE_PATH: &str = "/admin";
/// Its scripts and styles (one route, so one metrics label).
pub const ASSET_PATH: &str = "/admin/{file}";

/// No inline script or style, nothing from elsewhere; drawings are shown
/// from `blob:` URLs (they are fetched with the bearer token); no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// One file of the console, with its validator.
struct Asset {
    bytes: &'static str,
    media_type: &'static str,
    etag: &'static str,
}

/// FNV-1a over the file, at compile time: the ETag changes exactly when
/// the file does.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `"` + 16 hex digits + `"`, built at compile time.
const fn etag_bytes(bytes: &[u8]) -> [u8; 18] {
    let hash = fnv1a(bytes);
    let digits = b"0123456789abcdef";
    let mut tag = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        tag[1 + i] = digits[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    tag
}

macro_rules! asset {
    ($file:literal, $media_type:literal) => {{
        const BYTES: &str = include_str!($file);
        const TAG: [u8; 18] = etag_bytes(BYTES.as_bytes());
        Asset {
            bytes: BYTES,
            media_type: $media_type,
            etag: match std::str::from_utf8(&TAG) {
                Ok(tag) => tag,
                Err(_) => panic!("an ETag is ASCII"),
            },
        }
    }};
}

const PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");
const SCRIPT: Asset = asset!("console.js", "text/javascript; charset=utf-8");
const STYLE: Asset = asset!("console.css", "text/css; charset=utf-8");

/// `GET /admin`, documented with the API.
pub fn router() -> ApiRouter {
    ApiRouter::new("admin").get(
        PAGE_PATH,
        page,
        Doc::new("The moderators' console: an HTML page that signs in with an admin account and uses the admin API")
            .answers_media("text/html"),
    )
}

/// The console's files (not API operations, so not in the document).
pub fn assets() -> Router<AppState> {
    Router::new().route(ASSET_PATH, get(asset))
}

async fn page(headers: HeaderMap) -> Response {
    serve(&PAGE, &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match file.as_str() {
        "console.js" => serve(&SCRIPT, &headers),
        "console.css" => serve(&STYLE, &headers),
        _ => ApiError::NotFound.into_response(),
    }
}

/// The file, or `304` when the client holds this version; either way with
/// the headers that keep the console out of frames and scripts out of it.
/// `no-cache` means "revalidate": a deploy is seen on the next load, and
/// an unchanged file costs a `304`.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == asset.etag
        });
    let headers = [
        (header::ETAG, HeaderValue::from_static(asset.etag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.media_type),
    );
    (headers, [content_type], asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_hex_and_differ_per_file() {
        for asset in [&PAGE, &SCRIPT, &STYLE] {
            assert_eq!(asset.etag.len(), 18);
            assert!(asset.etag.starts_with('"') && asset.etag.ends_with('"'));
            assert!(asset.etag[1..17].chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_ne!(PAGE.etag, SCRIPT.etag);
        assert_ne!(SCRIPT.etag, STYLE.etag);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(
            fnv1a(b"a"),
            0xaf63_dc4c_8601_ec8c,
            "the published FNV-1a value"
        );
    }
}
