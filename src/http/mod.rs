//! The HTTP API: one module per section of the contract, each exposing
//! `router()`, merged here. Routes are registered through [`ApiRouter`] so
//! that the OpenAPI document is generated from the same calls that build
//! the router and cannot forget a route.

mod accounts;
mod admin;
mod drawings;
mod games;
mod notifications;
mod stories;
mod story_tools;
pub use accounts::create_admin;
mod profanity;
#[cfg(feature = "realtime")]
pub mod realtime;
mod system;

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
    /// Query parameters it reads.
    pub query: &'static [&'static str],
    /// Error statuses beyond those implied by access and input.
    pub errors: &'static [u16],
}

impl Doc {
    pub const fn new(summary: &'static str) -> Self {
        Self {
            summary,
            access: Access::Public,
            request: None,
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

    pub const fn returns(mut self, status: u16, schema: Option<&'static str>) -> Self {
        self.status = status;
        self.response = schema;
        self
    }

    pub const fn query(mut self, names: &'static [&'static str]) -> Self {
        self.query = names;
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
        .merge(drawings::router())
        .merge(games::router())
        .merge(story_tools::router())
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
