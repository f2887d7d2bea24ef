//! Turning what a child typed into a full-text query that cannot be a
//! syntax error: only runs of letters and digits survive, each one quoted,
//! and the last one matches as a prefix (search as you type).

use crate::Backend;

/// Most words of a query that are searched.
const MAX_TERMS: usize = 16;
/// Longest word searched, in characters.
const MAX_TERM_CHARS: usize = 64;

/// The words of a query, lowercased.
pub(crate) fn terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_TERMS)
        .map(|word| {
            word.chars()
                .take(MAX_TERM_CHARS)
                .collect::<String>()
                .to_lowercase()
        })
        .collect()
}

/// The query in the backend's full-text syntax, or `None` when nothing
/// searchable is left (`"`, `*`, `-`, an emoji): such a query matches nothing.
pub(crate) fn full_text_query(backend: Backend, query: &str) -> Option<String> {
    let terms = terms(query);
    let last = terms.len().checked_sub(1)?;
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| match backend {
            // FTS5: a quoted string is always a plain phrase, never syntax.
            Backend::Sqlite if i == last => format!("\"{term}\"*"),
            Backend::Sqlite => format!("\"{term}\""),
            // tsquery: terms hold only letters and digits, so they are safe.
            Backend::Postgres if i == last => format!("{term}:*"),
            Backend::Postgres => term.clone(),
        })
        .collect();
    Some(match backend {
        Backend::Sqlite => parts.join(" "),
        Backend::Postgres => parts.join(" & "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_and_operators_are_plain_words_or_nothing() {
        assert_eq!(full_text_query(Backend::Sqlite, "\""), None);
        assert_eq!(full_text_query(Backend::Sqlite, "*"), None);
        assert_eq!(full_text_query(Backend::Sqlite, "-"), None);
        assert_eq!(full_text_query(Backend::Sqlite, "🐉"), None);
        assert_eq!(
            full_text_query(Backend::Sqlite, "AND"),
            Some("\"and\"*".into())
        );
        assert_eq!(
            full_text_query(Backend::Sqlite, "brave \"drag"),
            Some("\"brave\" \"drag\"*".into())
        );
        assert_eq!(
            full_text_query(Backend::Postgres, "Brave dra"),
            Some("brave & dra:*".into())
        );
        assert_eq!(
            full_text_query(Backend::Postgres, "it's"),
            Some("it & s:*".into())
        );
    }

    #[test]
    fn terms_are_bounded() {
        assert_eq!(terms(&"word ".repeat(100)).len(), MAX_TERMS);
        assert_eq!(terms(&"a".repeat(500))[0].len(), MAX_TERM_CHARS);
    }
}
