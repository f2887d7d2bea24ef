//! Extractors whose rejections are `ApiError`s: JSON bodies, path ids,
//! query parameters and the signed-in user. JSON bodies are read in
//! `json_body`, re-exported here.

use std::collections::HashMap;

use axum::extract::{FromRef, FromRequestParts, MatchedPath, Path, RawQuery};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use storybook_store::{StoreError, User};

use crate::auth::{hash_token, tokens_issued_after};
use crate::error::ApiError;
pub use crate::json_body::{JsonBody, JsonFields, JsonWithStrokes, MediaType, read_json};
use crate::state::AppState;
use crate::validate::Params;

/// Path parameters; a value of the wrong type (`/api/stories/abc`) is a
/// `422` naming the parameter.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => match e.into_kind() {
                ErrorKind::ParseErrorAtKey {
                    key, expected_type, ..
                } => Err(ApiError::field(
                    &key,
                    &format!("must be {}", describe_type(expected_type)),
                )),
                // A route with several parameters reports the position of
                // the bad one; the route's template names it.
                ErrorKind::ParseErrorAtIndex {
                    index,
                    expected_type,
                    ..
                } => Err(ApiError::field(
                    parameter_name(parts, index).unwrap_or("id"),
                    &format!("must be {}", describe_type(expected_type)),
                )),
                ErrorKind::ParseError { expected_type, .. } => Err(ApiError::field(
                    parameter_name(parts, 0).unwrap_or("id"),
                    &format!("must be {}", describe_type(expected_type)),
                )),
                ErrorKind::InvalidUtf8InPathParam { key } => {
                    Err(ApiError::field(&key, "must be valid UTF-8"))
                }
                other => Err(ApiError::BadRequest(other.to_string())),
            },
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// The name of the `index`-th `{parameter}` of the route that matched.
fn parameter_name(parts: &Parts, index: usize) -> Option<&str> {
    parts
        .extensions
        .get::<MatchedPath>()?
        .as_str()
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .nth(index)
}

fn describe_type(rust_type: &str) -> &'static str {
    if rust_type.starts_with('i') || rust_type.starts_with('u') {
        "an integer"
    } else {
        "a valid value"
    }
}

/// The query string as [`Params`].
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let values: HashMap<String, String> = raw
            .map(|q| {
                q.split('&')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        (decode_component(key), decode_component(value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self(Params::new(values)))
    }
}

/// Percent-decoding with `+` as space, as forms and browsers send queries.
fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
            {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// The bearer token of a request: `Ok(None)` when there is no
/// `Authorization` header, `Err(Unauthorized)` when it is not a bearer.
/// The one parser of the header: the scheme is case-insensitive, as HTTP
/// says, for the API, `/metrics` and `/ws` alike.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized);
    }
    Ok(Some(token.trim()))
}

/// The signed-in user; a missing or bad token is `401`.
pub struct AuthUser(pub User);

/// The signed-in user if a token was sent. A *bad* token is still `401`:
/// it never silently means "anonymous".
pub struct MaybeUser(pub Option<User>);

/// An admin; others get `403` (and a missing token `401`).
pub struct AdminUser(pub User);

/// The user a token belongs to, looked up once per request (kept for a
/// few seconds in the token cache).
pub(crate) async fn user_for_token(state: &AppState, token: &str) -> Result<User, ApiError> {
    Ok(user_and_issue_for_token(state, token).await?.0)
}

/// [`user_for_token`], with when the token was issued (a socket closes
/// at its token's expiry).
pub(crate) async fn user_and_issue_for_token(
    state: &AppState,
    token: &str,
) -> Result<(User, storybook_store::Timestamp), ApiError> {
    let token_hash = hash_token(token);
    let issued_after = tokens_issued_after(state.limits.token_ttl_days);
    if let Some(found) = state.auth.tokens.get_with_issue(&token_hash, issued_after) {
        return Ok(found);
    }
    let ticket = state.auth.tokens.ticket();
    let (user, issued) = user_for_token_hash(state, &token_hash).await?;
    state
        .auth
        .tokens
        .put(ticket, token_hash, user.clone(), issued);
    Ok((user, issued))
}

/// The user a token belongs to, from the database: for the checks whose
/// point is to see a change at once (an open socket's token).
#[cfg_attr(
    not(feature = "realtime"),
    expect(dead_code, reason = "only sockets check past the cache")
)]
pub(crate) async fn user_for_token_uncached(
    state: &AppState,
    token: &str,
) -> Result<User, ApiError> {
    Ok(user_for_token_hash(state, &hash_token(token)).await?.0)
}

async fn user_for_token_hash(
    state: &AppState,
    token_hash: &str,
) -> Result<(User, storybook_store::Timestamp), ApiError> {
    let issued_after = tokens_issued_after(state.limits.token_ttl_days);
    match state.store.user_by_token(token_hash, issued_after).await {
        Ok(found) => Ok(found),
        Err(StoreError::NotFound) => Err(ApiError::Unauthorized),
        Err(other) => Err(other.into()),
    }
}

impl<S> FromRequestParts<S> for MaybeUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CachedUser>() {
            return Ok(Self(Some(user.0.clone())));
        }
        let Some(token) = bearer_token(&parts.headers)? else {
            return Ok(Self(None));
        };
        let user = user_for_token(&AppState::from_ref(state), token).await?;
        parts.extensions.insert(CachedUser(user.clone()));
        Ok(Self(Some(user)))
    }
}

/// The user found for this request, so a second extractor does not query again.
#[derive(Clone)]
pub(crate) struct CachedUser(pub(crate) User);

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match MaybeUser::from_request_parts(parts, state).await? {
            MaybeUser(Some(user)) => Ok(Self(user)),
            MaybeUser(None) => Err(ApiError::Unauthorized),
        }
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Self(user))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_component;

    #[test]
    fn decodes_queries() {
        assert_eq!(decode_component("a+b%20c"), "a b c");
        assert_eq!(decode_component("100%"), "100%");
        assert_eq!(decode_component("%zz"), "%zz");
        assert_eq!(decode_component("%é1"), "%é1");
        assert_eq!(decode_component("%F0%9F%90%B1"), "🐱");
    }
}
