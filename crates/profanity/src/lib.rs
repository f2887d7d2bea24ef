//! A compact profanity matcher for text that children write and read.
//!
//! Why our own and not a crate: the well-kept crate we measured (rustrict)
//! costs about 19 MB of RSS for its trie, twice the whole server's idle
//! budget, and still flags innocent words the contract names. This matcher
//! keeps a few hundred bytes of patterns and works on whole words:
//!
//! 1. every character is folded to what it looks like (`ｆ`, `𝐟`, `f` and the
//!    Cyrillic `а` become ASCII letters; `1`, `!`, `$`, `@`, … are read as
//!    the letters they stand for inside a word; zero-width characters vanish);
//! 2. the text is cut into words, and runs of single letters split by short
//!    separators (`f u c k`, `f.u.c.k`) are joined into one word;
//! 3. a word matches when it *starts* with a bad word (each letter may be
//!    repeated: `fuuuck`) and what follows is a known ending (`-s`, `-ing`,
//!    `-head`, …). Words that merely contain one (`Scunthorpe`, `classic`,
//!    `assassin`, `cocktail`, `grass`, `therapist`) stay clean.
//!
//! Offsets are Unicode code points, `end` exclusive, as the API reports them.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// A letter never found in a pattern: stands for a non-Latin letter or a
/// digit that reads as no letter, so the word continues but cannot match.
mod words;
use words::{ENDINGS, WORDS};

const OPAQUE: char = '\u{0}';

/// Longest separator between two single letters that still joins them
/// (`f . u` joins; a sentence break of many characters does not).
const MAX_JOIN_GAP: usize = 3;

/// One bad word found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Code-point offset of the first masked character.
    pub start: usize,
    /// Code-point offset just past the last masked character.
    pub end: usize,
    /// The canonical bad word (`fuck` for `f.u.c.k`).
    pub word: &'static str,
}

/// The result of checking a text: its matches and the masked text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub matches: Vec<Match>,
    pub censored: String,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.matches.is_empty()
    }
}

/// A bad word as runs of letters: `ass` is `[(a, 1), (s, 2)]`, and a word
/// matches when it has the same letters with at least as many of each.
#[derive(Debug)]
struct Pattern {
    runs: Vec<(char, usize)>,
    word: &'static str,
}

/// The matcher: build it once at start-up and share it.
#[derive(Debug)]
pub struct Filter {
    /// Longest first, so `fuckers` reports `fucker`, not `fuck`.
    patterns: Vec<Pattern>,
}

impl Default for Filter {
    fn default() -> Self {
        Self::new()
    }
}

/// How one character of the input reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Glyph {
    /// A letter (folded to ASCII lowercase, or `OPAQUE`).
    Letter(char),
    /// A digit or symbol that reads as a letter inside a word (`1` → `i`).
    Leet(char),
    /// Invisible inside a word (zero-width space, soft hyphen, accents).
    Ignorable,
    /// Anything that ends a word.
    Separator,
}

/// A word of the input: its folded letters and, for each, the code-point
/// index it came from.
#[derive(Debug, Default)]
struct Word {
    letters: Vec<char>,
    positions: Vec<usize>,
    /// Whether a real letter (not only digits or symbols) is in it.
    has_letter: bool,
}

impl Filter {
    pub fn new() -> Self {
        let mut patterns: Vec<Pattern> = WORDS
            .iter()
            .map(|(spelling, word)| Pattern {
                runs: runs(&spelling.chars().collect::<Vec<_>>()),
                word,
            })
            .collect();
        patterns.sort_by_key(|p| std::cmp::Reverse(p.runs.iter().map(|r| r.1).sum::<usize>()));
        Self { patterns }
    }

    /// Finds every bad word in `text`, in order.
    pub fn find(&self, text: &str) -> Vec<Match> {
        let chars: Vec<char> = text.chars().collect();
        let words = split_words(&chars);
        let mut matches = Vec::new();
        let mut single_letters: Vec<&Word> = Vec::new();
        for (index, word) in words.iter().enumerate() {
            let joinable = word.letters.len() == 1
                && single_letters
                    .last()
                    .is_none_or(|prev| word.positions[0] - prev.positions[0] - 1 <= MAX_JOIN_GAP);
            if joinable {
                single_letters.push(word);
            } else {
                self.match_joined(&single_letters, &mut matches);
                single_letters.clear();
                if word.letters.len() == 1 {
                    single_letters.push(word);
                }
            }
            if word.letters.len() > 1
                && word.has_letter
                && let Some(found) = self.match_word(&word.letters)
            {
                matches.push(Match {
                    start: word.positions[0],
                    end: word.positions[word.positions.len() - 1] + 1,
                    word: found,
                });
            }
            if index + 1 == words.len() {
                self.match_joined(&single_letters, &mut matches);
            }
        }
        matches.sort_by_key(|m| m.start);
        matches
    }

    /// Checks `text` and masks every matched span with `*`.
    pub fn check(&self, text: &str) -> Report {
        let matches = self.find(text);
        let censored = mask(text, &matches);
        Report { matches, censored }
    }

    /// The text with every matched character, separators included, as `*`.
    pub fn censor(&self, text: &str) -> String {
        mask(text, &self.find(text))
    }

    pub fn is_clean(&self, text: &str) -> bool {
        self.find(text).is_empty()
    }

    /// The canonical bad word that `letters` (a whole word) is, if any.
    fn match_word(&self, letters: &[char]) -> Option<&'static str> {
        let word_runs = runs(letters);
        self.patterns
            .iter()
            .find(|p| {
                ending_after(&word_runs, &p.runs).is_some_and(|e| ENDINGS.contains(&e.as_str()))
            })
            .map(|p| p.word)
    }

    /// Single letters spread out with separators (`f u c k`): every letter
    /// is its own word, so a bad word may start and end at any of them.
    fn match_joined(&self, letters: &[&Word], matches: &mut Vec<Match>) {
        if letters.len() < 2 {
            return;
        }
        let joined: Vec<char> = letters.iter().map(|w| w.letters[0]).collect();
        let repeats = repeat_lengths(&joined);
        let mut start = 0;
        while start < joined.len() {
            let found = self.patterns.iter().find_map(|p| {
                prefix_length(&joined, &repeats, start, &p.runs).map(|len| (len, p.word))
            });
            match found {
                Some((len, word)) => {
                    matches.push(Match {
                        start: letters[start].positions[0],
                        end: letters[start + len - 1].positions[0] + 1,
                        word,
                    });
                    start += len;
                }
                None => start += 1,
            }
        }
    }
}

/// Collapses repeated letters into `(letter, count)` runs.
fn runs(letters: &[char]) -> Vec<(char, usize)> {
    let mut out: Vec<(char, usize)> = Vec::new();
    for &c in letters {
        match out.last_mut() {
            Some((last, count)) if *last == c => *count += 1,
            _ => out.push((c, 1)),
        }
    }
    out
}

/// When `word` starts with `pattern` (same letters, each run at least as
/// long), the letters that follow it.
fn ending_after(word: &[(char, usize)], pattern: &[(char, usize)]) -> Option<String> {
    if word.len() < pattern.len() {
        return None;
    }
    let starts = word
        .iter()
        .zip(pattern)
        .all(|(w, p)| w.0 == p.0 && w.1 >= p.1);
    if !starts {
        return None;
    }
    let rest = &word[pattern.len()..];
    Some(
        rest.iter()
            .flat_map(|&(c, n)| std::iter::repeat_n(c, n))
            .collect(),
    )
}

/// For each position, how many times its letter repeats from there on
/// (`aab` → `[2, 1, 1]`): computed once, so matching at every start costs
/// the pattern's length, not the run's (a run of ten thousand `a`s made
/// every start rescan it, quadratic in the text).
fn repeat_lengths(letters: &[char]) -> Vec<usize> {
    let mut lengths = vec![1; letters.len()];
    for i in (0..letters.len().saturating_sub(1)).rev() {
        if letters[i] == letters[i + 1] {
            lengths[i] = lengths[i + 1] + 1;
        }
    }
    lengths
}

/// How many letters from `start` spell `pattern` (each run greedy), if
/// they do. `repeats` is [`repeat_lengths`] of `letters`.
fn prefix_length(
    letters: &[char],
    repeats: &[usize],
    start: usize,
    pattern: &[(char, usize)],
) -> Option<usize> {
    let mut at = start;
    for &(c, needed) in pattern {
        if letters.get(at) != Some(&c) || repeats[at] < needed {
            return None;
        }
        at += repeats[at];
    }
    Some(at - start)
}

/// The text with every character of a match as `*`, in one pass (matches
/// are sorted by start and may overlap).
fn mask(text: &str, matches: &[Match]) -> String {
    let mut masked_until = 0;
    let mut next = matches.iter().peekable();
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            while let Some(m) = next.next_if(|m| m.start <= i) {
                masked_until = masked_until.max(m.end);
            }
            if i < masked_until { '*' } else { c }
        })
        .collect()
}

/// Cuts the text into words of folded letters.
fn split_words(chars: &[char]) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current = Word::default();
    for (index, &c) in chars.iter().enumerate() {
        match glyph(c) {
            Glyph::Letter(l) => {
                current.letters.push(l);
                current.positions.push(index);
                current.has_letter = true;
            }
            Glyph::Leet(l) => {
                current.letters.push(l);
                current.positions.push(index);
            }
            Glyph::Ignorable => {}
            Glyph::Separator => finish_word(&mut current, &mut words),
        }
    }
    finish_word(&mut current, &mut words);
    words
}

fn finish_word(current: &mut Word, words: &mut Vec<Word>) {
    let mut word = std::mem::take(current);
    // A trailing `!` ends a sentence ("shit!"); only inside a word is it an `i`.
    while word.letters.last() == Some(&LEET_BANG) {
        word.letters.pop();
        word.positions.pop();
    }
    for letter in &mut word.letters {
        if *letter == LEET_BANG {
            *letter = 'i';
        }
    }
    if !word.letters.is_empty() && (word.has_letter || word.letters.len() > 1) {
        words.push(word);
    }
}

/// `!` inside a word reads as `i`; kept distinct until the word is finished
/// so that a trailing one can be dropped as punctuation.
const LEET_BANG: char = '\u{1}';

/// How a character reads: folded to an ASCII lowercase letter where it looks
/// like one.
fn glyph(c: char) -> Glyph {
    if c.is_ascii_alphabetic() {
        return Glyph::Letter(c.to_ascii_lowercase());
    }
    if let Some(l) = leet(c) {
        return Glyph::Leet(l);
    }
    if c.is_ascii() {
        return if c.is_ascii_digit() {
            Glyph::Leet(OPAQUE)
        } else {
            Glyph::Separator
        };
    }
    if matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    ) || is_combining_mark(c)
    {
        return Glyph::Ignorable;
    }
    if let Some(l) = look_alike(c) {
        return Glyph::Letter(l);
    }
    // Compatibility decomposition turns full-width, mathematical, circled
    // and accented letters into plain ones (`ｆ`, `𝐟`, `é` → `f`, `f`, `e`).
    let mut folded = None;
    let mut extra = false;
    decompose_compatible(c, |d| {
        if is_combining_mark(d) {
            return;
        }
        if folded.is_none() {
            folded = Some(d);
        } else {
            extra = true;
        }
    });
    match folded {
        Some(d) if !extra && d.is_ascii_alphabetic() => Glyph::Letter(d.to_ascii_lowercase()),
        Some(d) if !extra && d != c => match leet(d) {
            Some(l) => Glyph::Leet(l),
            None if d.is_ascii_digit() => Glyph::Leet(OPAQUE),
            None => glyph_of_other(c),
        },
        _ => glyph_of_other(c),
    }
}

fn glyph_of_other(c: char) -> Glyph {
    if c.is_alphanumeric() {
        Glyph::Letter(OPAQUE)
    } else {
        Glyph::Separator
    }
}

/// Digits and symbols that stand for letters inside a word.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        '!' => LEET_BANG,
        _ => return None,
    })
}

/// Letters of other scripts that look like Latin ones and that compatibility
/// decomposition leaves alone (Cyrillic `а`, Greek `ο`, `ƒ`).
fn look_alike(c: char) -> Option<char> {
    let lower = c.to_lowercase().next().unwrap_or(c);
    Some(match lower {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ς' => 'c',
        'ԁ' => 'd',
        'е' | 'ε' | 'ё' => 'e',
        'ƒ' => 'f',
        'һ' | 'н' => 'h',
        'і' | 'ι' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'п' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' | 'μ' => 'u',
        'ν' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
