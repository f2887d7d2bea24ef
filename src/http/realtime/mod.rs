//! Contract section "Real time": `GET /ws`, the WebSocket protocol on top
//! of the broadcast hub. Built only with `--features realtime`.
//!
//! Every client frame takes from the connection's rate. What a connection
//! may read follows revocation (contract v1.3): a [`Notify`] on its handle
//! makes it check its token and every channel again (a user's access or
//! tokens changed), a control frame in its queue makes it check one
//! channel (a drawing or story changed), and every `WS_TOKEN_RECHECK_SECS`
//! it checks its token anyway, which catches expiry and any lost event.

mod connection;
mod session;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::extract::user_and_issue_for_token;
use crate::state::AppState;
use connection::{Accepted, connection};

/// The routes below (outside the OpenAPI document's list, which holds the
/// REST routes), for the metrics.
pub const PATHS: [&str; 2] = ["/ws", "/demo"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATHS[0], get(upgrade))
        .route(PATHS[1], get(demo))
}

/// The demo page: plain HTML, CSS and JS inside the binary (no CDN, no
/// build step). Sign in, open or start a drawing, draw together, see who
/// is here, chat.
async fn demo() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../demo/index.html"),
    )
}

/// The token from `?token=` or the `Authorization` header.
fn token_of(request: &Request) -> Option<String> {
    let from_query = request.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "token")
            .map(|(_, value)| value.to_owned())
    });
    from_query.or_else(|| {
        crate::extract::bearer_token(request.headers())
            .ok()
            .flatten()
            .map(str::to_owned)
    })
}

/// Real time: `GET /ws`. A page of an origin that is neither listed in
/// `CORS_ALLOWED_ORIGINS` nor the server's own is refused before the
/// upgrade (`403`), as are a missing or bad token (`401`) and a
/// connection over a limit (`429`).
async fn upgrade(State(state): State<AppState>, request: Request) -> Response {
    if !crate::cors::socket_origin_allowed(&state.limits.cors_allowed_origins, request.headers()) {
        return ApiError::Forbidden.into_response();
    }
    let Some(token) = token_of(&request) else {
        return ApiError::Unauthorized.into_response();
    };
    let (user, issued) = match user_and_issue_for_token(&state, &token).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let token_expires_in = crate::auth::token_expires_in(issued, state.limits.token_ttl_days);
    // The real client, not Render's proxy: the same rule as the REST limits.
    let ip = request
        .extensions()
        .get::<ClientAddr>()
        .map(|client| client.0);
    let slot = match state.realtime.reserve(user.id, ip) {
        Ok(slot) => slot,
        Err(refused) => {
            tracing::debug!(?refused, user = user.id, "websocket refused");
            return ApiError::RateLimited {
                retry_after_secs: 5,
            }
            .into_response();
        }
    };
    let (mut parts, _body) = request.into_parts();
    let token: Box<str> = token.into();
    let upgrade = match <WebSocketUpgrade as FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    {
        Ok(upgrade) => upgrade,
        Err(rejection) => return ApiError::BadRequest(rejection.body_text()).into_response(),
    };
    let settings = &state.realtime.settings;
    upgrade
        .read_buffer_size(settings.ws_buffer_bytes)
        // Each frame is written out at once rather than gathered.
        .write_buffer_size(0)
        .max_write_buffer_size(settings.ws_buffer_bytes.max(settings.ws_max_data_bytes) * 8)
        // Frames a little over the data limit still arrive whole, so the
        // client gets `too_large` rather than a dropped connection.
        .max_message_size(settings.ws_max_data_bytes * 4)
        .max_frame_size(settings.ws_max_data_bytes * 4)
        // One box, so the upgrade's future carries a pointer rather than
        // the state, the user and the slot.
        .on_upgrade({
            let accepted = Box::new(Accepted {
                state,
                user,
                token,
                token_expires_in,
                slot,
            });
            move |socket| connection(accepted, socket)
        })
}

/// A parsed channel name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelKind {
    Lobby,
    Drawing(i64),
    Story(i64),
}

impl ChannelKind {
    /// The drawing's or story's id (0 for the lobby).
    fn id(self) -> i64 {
        match self {
            ChannelKind::Lobby => 0,
            ChannelKind::Drawing(id) | ChannelKind::Story(id) => id,
        }
    }
}

fn parse_channel(name: &str) -> Option<ChannelKind> {
    if name == "lobby" {
        return Some(ChannelKind::Lobby);
    }
    let (kind, id) = name.split_once(':')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 18 {
        return None;
    }
    let id: i64 = id.parse().ok()?;
    match kind {
        "drawing" => Some(ChannelKind::Drawing(id)),
        "story" => Some(ChannelKind::Story(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{ChannelKind, parse_channel};

    #[test]
    fn channel_names() {
        assert_eq!(parse_channel("lobby"), Some(ChannelKind::Lobby));
        assert_eq!(parse_channel("drawing:12"), Some(ChannelKind::Drawing(12)));
        assert_eq!(parse_channel("story:3"), Some(ChannelKind::Story(3)));
        for bad in [
            "",
            "lobby:2",
            "drawing:abc",
            "drawing:",
            "story:-1",
            "chat:1",
            "drawing:1:2",
            "story:99999999999999999999",
        ] {
            assert_eq!(parse_channel(bad), None, "{bad}");
        }
    }
}
