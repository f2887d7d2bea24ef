//! Cutting a story into sentences and words, in any script.

#[derive(Debug, Clone)]
pub(crate) struct Sentence {
    pub text: String,
    /// Its words as written (letters only).
    pub words: Vec<String>,
}

/// How words are compared: lowercased.
pub(crate) fn word_key(word: &str) -> String {
    word.to_lowercase()
}

fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sentences end at `.`, `!`, `?` (and their full-width forms) or at the
/// end of a page; a sentence needs at least three words.
pub(crate) fn sentences(pages: &[&str]) -> Vec<Sentence> {
    let mut out = Vec::new();
    for page in pages {
        let mut current = String::new();
        let mut chars = page.chars().peekable();
        while let Some(c) = chars.next() {
            current.push(c);
            let ends = matches!(c, '.' | '!' | '?' | '。' | '！' | '？')
                && chars
                    .peek()
                    .is_none_or(|next| next.is_whitespace() || *next == '"' || *next == '”');
            if ends {
                while let Some(&quote) = chars.peek() {
                    if quote == '"' || quote == '”' {
                        current.push(quote);
                        chars.next();
                    } else {
                        break;
                    }
                }
                push_sentence(&mut out, &current);
                current.clear();
            }
        }
        push_sentence(&mut out, &current);
    }
    out
}

fn push_sentence(out: &mut Vec<Sentence>, text: &str) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let words = words_of(&text);
    if words.len() >= 3 {
        out.push(Sentence { text, words });
    }
}

/// The sentence with the first whole-word occurrence of `word` replaced by
/// a blank.
pub(crate) fn blank_out(sentence: &str, word: &str) -> String {
    let mut start = 0;
    while let Some(found) = sentence[start..].find(word) {
        let at = start + found;
        let end = at + word.len();
        let before_ok = sentence[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphabetic());
        let after_ok = sentence[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphabetic());
        if before_ok && after_ok {
            return format!("{}____{}", &sentence[..at], &sentence[end..]);
        }
        start = end;
    }
    sentence.to_owned()
}
