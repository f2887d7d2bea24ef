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
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
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
            StoreError::Limit(what) => Self::field(&what, "would pass its limit"),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        match &self {
            Self::Validation(fields) | Self::Profanity(fields) => {
                error["fields"] = json!(fields);
            }
            Self::Internal(cause) => tracing::error!(%cause, "internal error"),
            _ => {}
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
