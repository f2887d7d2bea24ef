//! Story generation behind one trait with two implementations: the
//! built-in generator (offline, deterministic) and an OpenAI-compatible
//! chat-completions client. Neither knows about HTTP routes.

mod builtin;
mod openai;

use std::future::Future;
use std::pin::Pin;

pub use builtin::Builtin;
pub use openai::{OpenAi, OpenAiSettings};

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub prompt: String,
    pub genre: String,
    pub age_group: String,
    pub pages: usize,
}

/// A written story: a title and its pages' text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub title: String,
    pub pages: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The remote model failed, timed out, or answered something unusable.
    #[error("the story generator is unavailable: {0}")]
    Unavailable(String),
}

pub type GenerateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Generated, GenerateError>> + Send + 'a>>;

pub trait Generator: Send + Sync {
    /// `builtin` or `openai`, as `/api/features` reports it.
    fn name(&self) -> &'static str;
    fn generate<'a>(&'a self, request: &'a Request) -> GenerateFuture<'a>;
}
