//! Turning what a child typed into a full-text query that cannot be a
//! syntax error: only runs of letters and digits survive, each one quoted,
//! and the last one matches as a prefix (search as you type).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_bounded() {
        assert_eq!(terms(&"word ".repeat(100)).len(), MAX_TERMS);
        assert_eq!(terms(&"a".repeat(500))[0].len(), MAX_TERM_CHARS);
    }
}
