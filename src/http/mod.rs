//! The HTTP API: one module per section of the contract, each exposing
//! `router()`, merged here. Routes are registered through [`ApiRouter`] so
//! that the OpenAPI document is generated from the same calls that build
//! the router and cannot forget a route.

mod access;
mod accounts;
mod admin;
pub mod console;
mod drawings;
mod games;
mod notifications;
mod profanity;
#[cfg(feature = "realtime")]
pub mod realtime;
mod stories;
pub mod story_input;
mod story_tools;
mod streaming;
mod system;
mod views;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

use crate::state::AppState;

/// Who may call an operation, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (a bad token is still `401`).
    Public,
    /// Any signed-in user.
    User,
    /// Admins only.
    Admin,
}

/// The documentation of one operation.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub summary: &'static str,
    pub access: Access,
    /// Schema name of the JSON request body, if it takes one.
    pub request: Option<&'static str>,
    /// Success status and the schema name of its body (`None`: no body).
    pub status: u16,
    pub response: Option<&'static str>,
    /// How the request body is sent, when it takes one.
    pub request_media: RequestMedia,
    /// The media type of the success body (`application/json` unless said).
    pub response_media: &'static str,
    /// Query parameters it reads.
    pub query: &'static [QueryParam],
    /// Error statuses beyond those implied by access and input.
    pub errors: &'static [u16],
}

/// How an operation's request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestMedia {
    Json,
    /// `multipart/form-data`, its parts described by the body's schema.
    Multipart,
}

/// A query parameter an operation reads, typed as the handler parses it
/// (a value the handler refuses is `422` naming the parameter).
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub kind: ParamKind,
    pub description: &'static str,
}

/// The type of a query parameter.
#[derive(Debug, Clone, Copy)]
pub enum ParamKind {
    /// Free text.
    Text,
    /// A whole number within `minimum..=maximum`.
    Integer { minimum: i64, maximum: i64 },
    /// `true` or `false`.
    Boolean,
    /// One of these words.
    OneOf(&'static [&'static str]),
}

impl QueryParam {
    pub const fn new(name: &'static str, kind: ParamKind, description: &'static str) -> Self {
        Self {
            name,
            kind,
            description,
        }
    }
}

/// `?page=`: 1-based; a page past the end has no items.
pub const PAGE: QueryParam = QueryParam::new(
    "page",
    ParamKind::Integer {
        minimum: 1,
        maximum: crate::validate::MAX_PAGE,
    },
    "1-based page number (default 1); a page past the end is 200 with no items",
);

/// `?page_size=`: 1..100.
pub const PAGE_SIZE: QueryParam = QueryParam::new(
    "page_size",
    ParamKind::Integer {
        minimum: 1,
        maximum: crate::validate::MAX_PAGE_SIZE,
    },
    "items per page (default 20)",
);

impl Doc {
    pub const fn new(summary: &'static str) -> Self {
        Self {
            summary,
            access: Access::Public,
            request: None,
            request_media: RequestMedia::Json,
            response_media: "application/json",
            status: 200,
            response: None,
            query: &[],
            errors: &[],
        }
    }

    pub const fn user(mut self) -> Self {
        self.access = Access::User;
        self
    }

    pub const fn admin(mut self) -> Self {
        self.access = Access::Admin;
        self
    }

    pub const fn body(mut self, schema: &'static str) -> Self {
        self.request = Some(schema);
        self
    }

    /// A `multipart/form-data` body whose parts `schema` describes.
    pub const fn multipart(mut self, schema: &'static str) -> Self {
        self.request = Some(schema);
        self.request_media = RequestMedia::Multipart;
        self
    }

    /// The success body is of this media type instead of JSON.
    pub const fn answers_media(mut self, media_type: &'static str) -> Self {
        self.response_media = media_type;
        self
    }

    pub const fn returns(mut self, status: u16, schema: Option<&'static str>) -> Self {
        self.status = status;
        self.response = schema;
        self
    }

    pub const fn query(mut self, params: &'static [QueryParam]) -> Self {
        self.query = params;
        self
    }

    pub const fn errors(mut self, statuses: &'static [u16]) -> Self {
        self.errors = statuses;
        self
    }
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub doc: Doc,
}

/// A router that records the documentation of every route it gets.
pub struct ApiRouter {
    tag: &'static str,
    router: Router<AppState>,
    operations: Vec<Operation>,
}

macro_rules! verb {
    ($name:ident, $method:literal, $routing:ident) => {
        pub fn $name<H, T>(self, path: &'static str, handler: H, doc: Doc) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add($method, path, $routing(handler), doc)
        }
    };
}

impl ApiRouter {
    /// A router for one section of the contract (`tag` in the document).
    pub fn new(tag: &'static str) -> Self {
        Self {
            tag,
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        route: MethodRouter<AppState>,
        doc: Doc,
    ) -> Self {
        self.router = self.router.route(path, route);
        self.operations.push(Operation {
            method,
            path,
            tag: self.tag,
            doc,
        });
        self
    }

    verb!(get, "get", get);
    verb!(post, "post", post);
    verb!(put, "put", put);
    verb!(patch, "patch", patch);
    verb!(delete, "delete", delete);

    /// A route whose method router carries its own layers (a body limit).
    pub fn route(
        self,
        method: &'static str,
        path: &'static str,
        route: MethodRouter<AppState>,
        doc: Doc,
    ) -> Self {
        self.add(method, path, route, doc)
    }

    pub fn merge(mut self, other: ApiRouter) -> Self {
        self.router = self.router.merge(other.router);
        self.operations.extend(other.operations);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Operation>) {
        (self.router, self.operations)
    }
}

/// Every section's routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new("all")
        .merge(system::router())
        .merge(accounts::router())
        .merge(profanity::router())
        .merge(stories::router())
        .merge(notifications::router())
        .merge(admin::router())
        .merge(console::router())
        .merge(drawings::router())
        .merge(games::router())
        .merge(story_tools::router())
}

/// The id of the user named `username`; `None` when there is none (a
/// filter by an unknown name finds nothing, it is not an error).
pub async fn user_id_named(
    store: &storybook_store::Store,
    username: &str,
) -> crate::error::ApiResult<Option<i64>> {
    match store.user_by_username(&username.to_lowercase()).await {
        Ok(user) => Ok(Some(user.id)),
        Err(storybook_store::StoreError::NotFound) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// The contract's list shape: `{"items", "total", "page", "page_size"}`.
pub fn page_json<T: serde::Serialize>(
    page: &storybook_store::Page<T>,
    request: storybook_store::PageRequest,
) -> serde_json::Value {
    serde_json::json!({
        "items": page.items,
        "total": page.total,
        "page": request.page,
        "page_size": request.page_size,
    })
}
