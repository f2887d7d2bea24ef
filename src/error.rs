//! `ApiError`: every way a request can fail, rendered in one place as the
//! contract's error shape `{"error": {"code", "message", "fields"?}}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use storybook_store::StoreError;

/// Field name → why it is wrong (`pages.0.text` → `must be at most 5000 characters`).
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("you may not do this")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// No route has this path (the router's fallback).
    #[error("no such route")]
    NoSuchRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("some fields are not valid")]
    Validation(FieldErrors),
    #[error("some fields contain words that are not allowed")]
    Profanity(FieldErrors),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Well-formed but unusable input with its own code (`no_text`).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A bounded resource is full (`503 busy` with `Retry-After`): answered
    /// at once rather than queued without limit.
    #[error("the server is busy with other {what}; try again shortly")]
    Busy {
        what: &'static str,
        retry_after_secs: u64,
    },
    /// A dependency is down (`code` says which: `database`, `timeout`, …).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// A bug or an infrastructure failure: logged, never described to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// A validation error naming one field.
    pub fn field(name: &str, why: &str) -> Self {
        Self::Validation(FieldErrors::from([(name.to_owned(), why.to_owned())]))
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NoSuchRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::Profanity(_) | Self::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound | Self::NoSuchRoute => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation",
            Self::Profanity(_) => "profanity",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy { .. } => "busy",
            Self::Unavailable { code, .. } | Self::Unprocessable { code, .. } => code,
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(what) => Self::Conflict(format!("{what} is already taken")),
            StoreError::Stale(why) => Self::Conflict(why),
            StoreError::Busy => Self::Busy {
                what: "database connections",
                retry_after_secs: 1,
            },
            StoreError::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
            StoreError::Refused { field, why } => Self::field(field, &why),
            StoreError::Limit(what) => Self::field(&what, "would pass its limit"),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The most fields a validation error names (contract v1.3).
pub const MAX_ERROR_FIELDS: usize = 50;
/// The largest error body, in bytes (contract v1.3).
pub const MAX_ERROR_BYTES: usize = 16 * 1024;
/// Longer field names (an unknown key can be as long as the body) and
/// reasons are cut to this many characters.
const MAX_FIELD_TEXT_CHARS: usize = 100;

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_TEXT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The error object for a validation error: at most [`MAX_ERROR_FIELDS`]
/// fields, fewer if that is what keeps the body under [`MAX_ERROR_BYTES`],
/// and a message that says how many were left out.
fn fields_error(code: &str, message: &str, fields: &FieldErrors) -> serde_json::Value {
    let mut kept: Vec<(String, String)> = fields
        .iter()
        .take(MAX_ERROR_FIELDS)
        .map(|(field, why)| (cut(field), cut(why)))
        .collect();
    loop {
        let left_out = fields.len() - kept.len();
        let message = match left_out {
            0 => message.to_owned(),
            n => format!("{message} ({n} more not listed)"),
        };
        let listed: serde_json::Map<String, serde_json::Value> = kept
            .iter()
            .map(|(field, why)| (field.clone(), json!(why)))
            .collect();
        let error = json!({ "code": code, "message": message, "fields": listed });
        // Room for the `{"error": …}` around it.
        if kept.is_empty() || error.to_string().len() + 16 <= MAX_ERROR_BYTES {
            return error;
        }
        kept.pop();
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = match &self {
            Self::Validation(fields) | Self::Profanity(fields) => {
                fields_error(self.code(), &self.to_string(), fields)
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                json!({ "code": self.code(), "message": self.to_string() })
            }
            _ => json!({ "code": self.code(), "message": self.to_string() }),
        };
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let Self::RateLimited { retry_after_secs }
        | Self::Busy {
            retry_after_secs, ..
        } = self
        {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(error: ApiError) -> (usize, serde_json::Value) {
        let response = error.into_response();
        let bytes = bytes_of(response);
        (bytes.len(), serde_json::from_slice(&bytes).unwrap())
    }

    fn bytes_of(response: Response) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec()
        })
    }

    #[test]
    fn validation_errors_name_at_most_fifty_fields() {
        let fields: FieldErrors = (0..10_000)
            .map(|i| (format!("strokes.{i:05}"), "must be an object".to_owned()))
            .collect();
        let (_, body) = body_of(ApiError::Validation(fields));
        assert_eq!(body["error"]["fields"].as_object().unwrap().len(), 50);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("9950 more")
        );
    }

    #[test]
    fn error_bodies_stay_under_sixteen_kib() {
        // Long unknown keys full of characters JSON escapes six-fold.
        let fields: FieldErrors = (0..50)
            .map(|i| (format!("{i}{}", "\u{1}".repeat(5000)), "\u{2}".repeat(5000)))
            .collect();
        let (bytes, body) = body_of(ApiError::Validation(fields));
        assert!(bytes <= MAX_ERROR_BYTES, "{bytes} bytes");
        assert!(!body["error"]["fields"].as_object().unwrap().is_empty());
    }
}
