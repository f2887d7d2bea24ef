//! What differs between SQLite and PostgreSQL, in one place. Each dialect
//! has its module; `Backend`'s methods are the only code that tells them
//! apart, so the SQL elsewhere in the store is the same on both
//! (`$N` placeholders, `RETURNING`, `ON CONFLICT`).

pub(crate) mod catalog;
mod postgres;
mod sqlite;

use sqlx::{AnyConnection, AnyPool};

use crate::models::{Page, PageRequest, StorySummary};
use crate::{PoolSettings, Result, StoreError};

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend for a database URL, or `UnsupportedScheme`.
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(StoreError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// The name `/api/features` reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How a full-text query joins the library's query: a source to select
/// from (replacing `stories s`), a condition, and the ranking order.
pub(crate) struct FullText {
    pub from: Option<String>,
    pub condition: Option<String>,
    pub rank: String,
}

impl Backend {
    /// The URL to connect with (SQLite creates its file on first run
    /// unless the URL says otherwise).
    pub(crate) fn connect_url(self, url: &str) -> String {
        match self {
            Self::Sqlite => sqlite::connect_url(url),
            Self::Postgres => url.to_owned(),
        }
    }

    /// Whether the URL insists on TLS (PostgreSQL's `sslmode` of
    /// `require`, `verify-ca` or `verify-full`; the default, `prefer`,
    /// does without when TLS is not built in).
    pub(crate) fn asks_for_tls(self, url: &str) -> bool {
        self == Self::Postgres
            && ["require", "verify-ca", "verify-full"]
                .iter()
                .any(|mode| url.contains(&format!("sslmode={mode}")))
    }

    /// Statements every new connection runs first.
    pub(crate) fn session_statements(self, settings: &PoolSettings) -> Vec<String> {
        match self {
            Self::Sqlite => sqlite::session_statements(settings),
            Self::Postgres => Vec::new(),
        }
    }

    /// Of a migration's two scripts, this dialect's.
    pub(crate) fn pick<'a>(self, sqlite: &'a str, postgres: &'a str) -> &'a str {
        match self {
            Self::Sqlite => sqlite,
            Self::Postgres => postgres,
        }
    }

    /// What a child typed, in this dialect's full-text syntax; `None` when
    /// nothing searchable is left (such a query matches nothing).
    pub(crate) fn full_text_query(self, query: &str) -> Option<String> {
        let terms = crate::search::terms(query);
        if terms.is_empty() {
            return None;
        }
        Some(match self {
            Self::Sqlite => sqlite::full_text_query(&terms),
            Self::Postgres => postgres::full_text_query(&terms),
        })
    }

    /// The full-text part of a library query whose query text is bound at
    /// `placeholder`.
    pub(crate) fn full_text(self, placeholder: &str) -> FullText {
        match self {
            Self::Sqlite => sqlite::full_text(placeholder),
            Self::Postgres => postgres::full_text(placeholder),
        }
    }

    /// Keeps a story's text in the full-text index (or takes it out when
    /// it is not published). PostgreSQL's search column is generated from
    /// the row, so there is nothing to do there.
    pub(crate) async fn index_text(
        self,
        conn: &mut AnyConnection,
        story: IndexedText<'_>,
    ) -> Result<()> {
        match self {
            Self::Sqlite => sqlite::index_text(conn, story).await,
            Self::Postgres => Ok(()),
        }
    }

    /// Takes a deleted story out of the full-text index.
    pub(crate) async fn unindex(self, conn: &mut AnyConnection, id: i64) -> Result<()> {
        match self {
            Self::Sqlite => sqlite::unindex(conn, id).await,
            Self::Postgres => Ok(()),
        }
    }

    /// The library searched by relevance alone, when this dialect has a
    /// faster way than the general query (`None`: use that).
    pub(crate) async fn search_library(
        self,
        pool: &AnyPool,
        query: &str,
        page: PageRequest,
    ) -> Result<Option<Page<StorySummary>>> {
        match self {
            Self::Sqlite => sqlite::search_library(pool, query, page).await.map(Some),
            Self::Postgres => Ok(None),
        }
    }
}

/// A story's searchable text.
pub(crate) struct IndexedText<'a> {
    pub id: i64,
    pub title: &'a str,
    pub body: &'a str,
    pub tags: &'a [String],
    pub published: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_text_queries_are_plain_words_or_nothing() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for nothing in ["\"", "*", "-", "🐉", "  "] {
                assert_eq!(backend.full_text_query(nothing), None, "{nothing:?}");
            }
        }
        let sqlite = |q| Backend::Sqlite.full_text_query(q);
        assert_eq!(
            sqlite("AND"),
            Some("\"and\"*".into()),
            "an operator is a word"
        );
        assert_eq!(sqlite("brave \"drag"), Some("\"brave\" \"drag\"*".into()));
        let postgres = |q| Backend::Postgres.full_text_query(q);
        assert_eq!(postgres("Brave dra"), Some("brave & dra:*".into()));
        assert_eq!(postgres("it's"), Some("it & s:*".into()));
    }

    #[test]
    fn each_dialect_joins_the_library_query_its_own_way() {
        let sqlite = Backend::Sqlite.full_text("$1");
        assert!(
            sqlite
                .from
                .is_some_and(|f| f.contains("stories_fts MATCH $1"))
        );
        assert!(sqlite.condition.is_none());
        let postgres = Backend::Postgres.full_text("$1");
        assert!(postgres.from.is_none());
        assert!(
            postgres
                .condition
                .is_some_and(|c| c.contains("to_tsquery('english', $1)"))
        );
        assert_eq!(Backend::Sqlite.pick("a", "b"), "a");
        assert_eq!(Backend::Postgres.pick("a", "b"), "b");
    }

    #[test]
    fn connections_are_set_up_per_dialect() {
        assert_eq!(
            Backend::from_url("postgresql://x").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://x").is_err());
        assert_eq!(
            Backend::Sqlite.connect_url("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            Backend::Sqlite.connect_url("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        let settings = PoolSettings::default();
        assert!(
            Backend::Sqlite
                .session_statements(&settings)
                .iter()
                .any(|s| s == "PRAGMA cache_size = -1024")
        );
        assert!(Backend::Postgres.session_statements(&settings).is_empty());
    }
}
