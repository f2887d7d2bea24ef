//! PostgreSQL's side of the dialect: `tsquery` text and the generated
//! `search` column (a GIN index over title, pages and tags).

use super::FullText;

/// Terms hold only letters and digits, so they are safe in a `tsquery`;
/// the last one matches as a prefix.
pub(super) fn full_text_query(terms: &[String]) -> String {
    let last = terms.len() - 1;
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            if i == last {
                format!("{term}:*")
            } else {
                term.clone()
            }
        })
        .collect();
    parts.join(" & ")
}

pub(super) fn full_text(placeholder: &str) -> FullText {
    FullText {
        from: None,
        condition: Some(format!("s.search @@ to_tsquery('english', {placeholder})")),
        rank: format!("ts_rank(s.search, to_tsquery('english', {placeholder})) DESC"),
    }
}
