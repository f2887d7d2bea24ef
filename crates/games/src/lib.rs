//! Educational games made from a story's own words.
//!
//! The same story version always makes the same questions: everything is
//! drawn from a generator seeded by story id, version and kind. Answers are
//! kept in the [`Game`] and never leave the server until they are checked.
//!
//! - `quiz`: which of four words appears in the story (three are not);
//! - `scramble`: unscramble a word of the story;
//! - `fill_blank`: a sentence of the story with one word missing, four choices;
//! - `order`: three events of the story, to put back in story order.

mod text;
mod words;

use std::collections::{HashMap, HashSet};

use storybook_splitmix::SplitMix64;
use text::{Sentence, sentences, word_key};

/// Most questions a game has.
pub const MAX_QUESTIONS: usize = 10;
/// Fewest questions that make a game; a story that cannot give as many
/// cannot make that kind.
pub const MIN_QUESTIONS: usize = 3;
/// Shortest word (in letters) used as an answer.
const MIN_WORD_LETTERS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Quiz,
    Scramble,
    FillBlank,
    Order,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Quiz, Kind::Scramble, Kind::FillBlank, Kind::Order];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Quiz => "quiz",
            Kind::Scramble => "scramble",
            Kind::FillBlank => "fill_blank",
            Kind::Order => "order",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The right answer to a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Word(String),
    /// For `order`: the choices in story order.
    Sequence(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub prompt: String,
    pub choices: Option<Vec<String>>,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Game {
    pub kind: Kind,
    pub questions: Vec<Question>,
}

/// What a player sent for one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Word(String),
    Sequence(Vec<String>),
}

/// The result of checking one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub correct: bool,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub score: usize,
    pub total: usize,
    /// By question id, in question order.
    pub results: Vec<(String, Marked)>,
}

/// A story's text, prepared once for every kind.
pub struct Story<'a> {
    id: i64,
    version: i64,
    sentences: Vec<Sentence>,
    /// Candidate answer words (lowercased), in order of first appearance.
    words: Vec<String>,
    allowed: &'a dyn Fn(&str) -> bool,
}

impl<'a> Story<'a> {
    /// `allowed` says whether a word may be shown (the profanity filter).
    pub fn new(id: i64, version: i64, pages: &[&str], allowed: &'a dyn Fn(&str) -> bool) -> Self {
        let sentences = sentences(pages);
        let mut seen = HashSet::new();
        let words = sentences
            .iter()
            .flat_map(|s| s.words.iter())
            .map(|w| word_key(w))
            .filter(|w| is_candidate(w) && allowed(w))
            .filter(|w| seen.insert(w.clone()))
            .collect();
        Self {
            id,
            version,
            sentences,
            words,
            allowed,
        }
    }

    /// The kinds this story can make.
    pub fn kinds(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|&k| self.game(k).is_some())
            .collect()
    }

    /// The game of one kind, or `None` when the story is too short for it.
    pub fn game(&self, kind: Kind) -> Option<Game> {
        let mut rng = game_rng(self.id, self.version, kind);
        let questions = match kind {
            Kind::Quiz => self.quiz(&mut rng),
            Kind::Scramble => self.scramble(&mut rng),
            Kind::FillBlank => self.fill_blank(&mut rng),
            Kind::Order => self.order(&mut rng),
        };
        (questions.len() >= MIN_QUESTIONS).then(|| Game {
            kind,
            questions: questions
                .into_iter()
                .take(MAX_QUESTIONS)
                .enumerate()
                .map(|(i, (prompt, choices, answer))| Question {
                    id: format!("q{}", i + 1),
                    prompt,
                    choices,
                    answer,
                })
                .collect(),
        })
    }

    fn quiz(&self, rng: &mut SplitMix64) -> Vec<(String, Option<Vec<String>>, Answer)> {
        let in_story: HashSet<&str> = self
            .sentences
            .iter()
            .flat_map(|s| s.words.iter())
            .map(String::as_str)
            .collect();
        let mut answers = self.words.clone();
        rng.shuffle(&mut answers);
        answers
            .into_iter()
            .filter_map(|answer| {
                let length = answer.chars().count();
                let mut pool: Vec<&str> = words::DISTRACTORS
                    .iter()
                    .copied()
                    .filter(|d| {
                        !in_story.contains(d)
                            && !self.words.iter().any(|w| w == d)
                            && (self.allowed)(d)
                    })
                    .filter(|d| d.chars().count().abs_diff(length) <= 2)
                    .collect();
                if pool.len() < 3 {
                    pool = words::DISTRACTORS
                        .iter()
                        .copied()
                        .filter(|d| !in_story.contains(d))
                        .collect();
                }
                let distractors = rng.sample(&pool, 3);
                if distractors.len() < 3 {
                    return None;
                }
                let mut choices: Vec<String> = distractors.into_iter().map(str::to_owned).collect();
                choices.push(answer.clone());
                rng.shuffle(&mut choices);
                Some((
                    "Which of these words is in the story?".to_owned(),
                    Some(choices),
                    Answer::Word(answer),
                ))
            })
            .collect()
    }

    fn scramble(&self, rng: &mut SplitMix64) -> Vec<(String, Option<Vec<String>>, Answer)> {
        let mut answers = self.words.clone();
        rng.shuffle(&mut answers);
        answers
            .into_iter()
            .filter_map(|answer| {
                let letters: Vec<char> = answer.chars().collect();
                if letters.iter().collect::<HashSet<_>>().len() < 2 {
                    return None;
                }
                let mut scrambled = letters.clone();
                while scrambled == letters {
                    rng.shuffle(&mut scrambled);
                }
                let scrambled: String = scrambled.into_iter().collect();
                Some((
                    format!(
                        "Unscramble this word from the story: {}",
                        scrambled.to_uppercase()
                    ),
                    None,
                    Answer::Word(answer),
                ))
            })
            .collect()
    }

    fn fill_blank(&self, rng: &mut SplitMix64) -> Vec<(String, Option<Vec<String>>, Answer)> {
        if self.words.len() < 4 {
            return Vec::new();
        }
        let mut order: Vec<usize> = (0..self.sentences.len()).collect();
        rng.shuffle(&mut order);
        let mut used = HashSet::new();
        order
            .into_iter()
            .filter_map(|index| {
                let sentence = &self.sentences[index];
                let candidates: Vec<&String> = sentence
                    .words
                    .iter()
                    .filter(|w| {
                        let key = word_key(w);
                        is_candidate(&key) && (self.allowed)(&key) && !used.contains(&key)
                    })
                    .collect();
                let word = (*candidates.get(rng.below(candidates.len().max(1)))?).clone();
                let answer = word_key(&word);
                used.insert(answer.clone());
                let length = answer.chars().count();
                let mut others: Vec<&str> = self
                    .words
                    .iter()
                    .map(String::as_str)
                    .filter(|w| *w != answer && w.chars().count().abs_diff(length) <= 2)
                    .collect();
                if others.len() < 3 {
                    others = self
                        .words
                        .iter()
                        .map(String::as_str)
                        .filter(|w| *w != answer)
                        .collect();
                }
                let mut choices: Vec<String> = rng
                    .sample(&others, 3)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                choices.push(answer.clone());
                rng.shuffle(&mut choices);
                let prompt = text::blank_out(&sentence.text, &word);
                Some((prompt, Some(choices), Answer::Word(answer)))
            })
            .collect()
    }

    fn order(&self, rng: &mut SplitMix64) -> Vec<(String, Option<Vec<String>>, Answer)> {
        let count = self.sentences.len();
        if count < 3 {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        let mut questions = Vec::new();
        // Draw distinct triples; a few more tries than questions is plenty.
        for _ in 0..MAX_QUESTIONS * 4 {
            let mut picked = rng.sample(&(0..count).collect::<Vec<_>>(), 3);
            picked.sort_unstable();
            if !seen.insert(picked.clone()) {
                continue;
            }
            let in_order: Vec<String> = picked
                .iter()
                .map(|&i| self.sentences[i].text.clone())
                .collect();
            if in_order.iter().collect::<HashSet<_>>().len() < 3 {
                continue;
            }
            let mut choices = in_order.clone();
            while choices == in_order {
                rng.shuffle(&mut choices);
            }
            questions.push((
                "Put these events in the order they happen in the story.".to_owned(),
                Some(choices),
                Answer::Sequence(in_order),
            ));
            if questions.len() == MAX_QUESTIONS || seen.len() == combinations_of_three(count) {
                break;
            }
        }
        // A story of only three or four events has too few triples: ask the
        // same events again in another shuffle so it still makes a game.
        let mut arrangements: HashSet<Vec<String>> =
            questions.iter().filter_map(|q| q.1.clone()).collect();
        let mut attempt = 0;
        while !questions.is_empty() && questions.len() < MIN_QUESTIONS && attempt < 50 {
            let (prompt, _, answer) = questions[attempt % questions.len()].clone();
            let Answer::Sequence(in_order) = &answer else {
                break;
            };
            let mut choices = in_order.clone();
            rng.shuffle(&mut choices);
            if choices != *in_order && arrangements.insert(choices.clone()) {
                questions.push((prompt, Some(choices), answer));
            }
            attempt += 1;
        }
        questions
    }
}

fn combinations_of_three(n: usize) -> usize {
    n * n.saturating_sub(1) * n.saturating_sub(2) / 6
}

fn is_candidate(word: &str) -> bool {
    word.chars().count() >= MIN_WORD_LETTERS
        && word.chars().all(char::is_alphabetic)
        && !words::is_stopword(word)
}

/// Marks the submitted answers; a question without an answer is wrong.
pub fn check(game: &Game, submitted: &HashMap<String, Submitted>) -> Score {
    let results: Vec<(String, Marked)> = game
        .questions
        .iter()
        .map(|question| {
            let correct = match (&question.answer, submitted.get(&question.id)) {
                (Answer::Word(right), Some(Submitted::Word(given))) => {
                    word_key(given.trim()) == *right
                }
                (Answer::Sequence(right), Some(Submitted::Sequence(given))) => given == right,
                _ => false,
            };
            (
                question.id.clone(),
                Marked {
                    correct,
                    answer: question.answer.clone(),
                },
            )
        })
        .collect();
    Score {
        score: results.iter().filter(|(_, m)| m.correct).count(),
        total: results.len(),
        results,
    }
}

/// The generator for one game: seeded by story id, version and kind.
fn game_rng(id: i64, version: i64, kind: Kind) -> SplitMix64 {
    let kind_salt = kind
        .as_str()
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    SplitMix64::new(
        (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (version as u64).rotate_left(32)
            ^ kind_salt,
    )
}

#[cfg(test)]
mod tests;
