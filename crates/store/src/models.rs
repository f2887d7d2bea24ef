//! The records the store reads and writes. They serialize to the API's
//! JSON as they are, except where the HTTP layer picks which fields to show.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user as stored. `email` and `settings` are shown only to the user
/// themself and to admins; the password hash never leaves the server.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
    pub bio: String,
    pub role: Role,
    pub active: bool,
    pub settings: Settings,
    pub created_at: Timestamp,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The short form used inside other objects (authors, owners, senders).
    pub fn summary(&self) -> UserSummary {
        UserSummary {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
        }
    }
}

/// `{"id", "username", "display_name"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub id: i64,
    pub username: String,
    pub display_name: String,
}

/// A user's preferences. Stored as JSON; missing keys take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub theme: String,
    pub font_size: String,
    pub language: String,
    pub notifications: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            theme: "system".into(),
            font_size: "medium".into(),
            language: "en".into(),
            notifications: true,
        }
    }
}

/// Which slice of a list to read: `page` is 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
}

impl PageRequest {
    pub fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.page_size)
    }

    pub fn limit(self) -> i64 {
        i64::from(self.page_size)
    }
}

/// One page of a list and the total number of items in the whole list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// The genres a story may have.
pub const GENRES: &[&str] = &[
    "adventure",
    "fantasy",
    "animals",
    "science",
    "friendship",
    "mystery",
    "funny",
    "bedtime",
    "other",
];

/// The age groups a story may be for.
pub const AGE_GROUPS: &[&str] = &["3-5", "6-8", "9-12"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoryStatus {
    Draft,
    Published,
}

impl StoryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "draft" => Some(Self::Draft),
            "published" => Some(Self::Published),
            _ => None,
        }
    }
}

/// How a story was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorySource {
    Manual,
    Ai,
    Photo,
}

impl StorySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Ai => "ai",
            Self::Photo => "photo",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "manual" => Some(Self::Manual),
            "ai" => Some(Self::Ai),
            "photo" => Some(Self::Photo),
            _ => None,
        }
    }
}

/// One page: its text and an optional drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoryPage {
    pub text: String,
    pub drawing_id: Option<i64>,
}

/// A whole story. `liked` is per viewer and filled in by the caller.
#[derive(Debug, Clone, Serialize)]
pub struct Story {
    pub id: i64,
    pub title: String,
    pub author: UserSummary,
    pub pages: Vec<StoryPage>,
    pub genre: String,
    pub age_group: String,
    pub tags: Vec<String>,
    pub status: StoryStatus,
    pub source: StorySource,
    pub likes: i64,
    pub reads: i64,
    pub liked: bool,
    #[serde(skip)]
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A story in a list: `pages` replaced by `excerpt` and `page_count`.
#[derive(Debug, Clone, Serialize)]
pub struct StorySummary {
    pub id: i64,
    pub title: String,
    pub author: UserSummary,
    pub excerpt: String,
    pub page_count: i64,
    pub genre: String,
    pub age_group: String,
    pub tags: Vec<String>,
    pub status: StoryStatus,
    pub source: StorySource,
    pub likes: i64,
    pub reads: i64,
    pub liked: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a new story is made of; validated by the caller.
#[derive(Debug, Clone)]
pub struct NewStory {
    pub author_id: i64,
    pub title: String,
    pub pages: Vec<StoryPage>,
    pub genre: String,
    pub age_group: String,
    pub tags: Vec<String>,
    pub status: StoryStatus,
    pub source: StorySource,
}

/// The fields a story update changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct StoryChanges {
    pub title: Option<String>,
    pub pages: Option<Vec<StoryPage>>,
    pub genre: Option<String>,
    pub age_group: Option<String>,
    pub tags: Option<Vec<String>>,
    pub status: Option<StoryStatus>,
}

impl StoryChanges {
    /// The names of the fields this change writes (for the audit log).
    pub fn named_fields(&self) -> Vec<&'static str> {
        [
            ("title", self.title.is_some()),
            ("pages", self.pages.is_some()),
            ("genre", self.genre.is_some()),
            ("age_group", self.age_group.is_some()),
            ("tags", self.tags.is_some()),
            ("status", self.status.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, written)| written.then_some(name))
        .collect()
    }
}

/// The library's orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorySort {
    Newest,
    Popular,
    Title,
    Relevance,
}

/// Which stories a list shows. Library lists set `published_only`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StoryFilter {
    pub query: Option<String>,
    pub genre: Option<String>,
    pub age_group: Option<String>,
    pub tag: Option<String>,
    pub author_id: Option<i64>,
    pub published_only: bool,
    /// Only stories in this state (the admin list).
    pub status: Option<StoryStatus>,
    /// Part of the title, case-insensitive (the admin list's search, which
    /// covers drafts: full-text search indexes published stories only).
    pub title_contains: Option<String>,
    pub sort: Option<StorySort>,
}

/// A reader's place in a story.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub page: i64,
    pub completed: bool,
    pub updated_at: Timestamp,
}

/// Outcome of a like or unlike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikeOutcome {
    pub likes: i64,
    pub liked: bool,
    /// True only for a user's very first like of this story.
    pub first_like: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub data: serde_json::Value,
    pub read: bool,
    pub created_at: Timestamp,
}

/// What a report's resolution does to its story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportAction {
    None,
    /// The story goes back to draft.
    Unpublish,
    Delete,
}

impl ReportAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Unpublish => "unpublish",
            Self::Delete => "delete",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "unpublish" => Some(Self::Unpublish),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Open,
    Resolved,
    Dismissed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            "dismissed" => Some(Self::Dismissed),
            _ => None,
        }
    }
}

/// A report of a story, as the moderators see it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: i64,
    pub status: ReportStatus,
    pub reason: String,
    pub reporter: UserSummary,
    pub story_id: Option<i64>,
    /// `None` once the story is deleted.
    pub story: Option<StorySummary>,
    pub action: Option<String>,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

/// Counts for the admin dashboard.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Totals {
    pub users: i64,
    pub stories: i64,
    pub open_reports: i64,
}

/// The one rule of who reads a story: anyone once it is published, its
/// author and admins always.
pub fn story_readable(author_id: i64, published: bool, viewer: Option<&User>) -> bool {
    published || viewer.is_some_and(|user| user.is_admin() || user.id == author_id)
}

impl Story {
    /// Drafts are seen only by their author and admins.
    pub fn visible_to(&self, viewer: Option<&User>) -> bool {
        story_readable(
            self.author.id,
            self.status == StoryStatus::Published,
            viewer,
        )
    }

    /// Only the author and admins change or delete a story.
    pub fn editable_by(&self, user: &User) -> bool {
        user.is_admin() || user.id == self.author.id
    }
}
