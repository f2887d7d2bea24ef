use std::collections::HashMap;

use super::*;

const PAGES: &[&str] = &[
    "Once upon a time a brave little fox lived beside a sparkling river. Every morning the fox counted the shiny pebbles.",
    "One day the fox met a friendly owl who knew every star in the sky. The owl told stories about the glowing moon.",
    "Together they followed the river to a hidden garden. There they found a golden lantern and carried it home.",
];

fn always(_: &str) -> bool {
    true
}

fn story() -> Story<'static> {
    Story::new(7, 1, PAGES, &always)
}

#[test]
fn a_real_story_makes_every_kind_with_three_to_ten_questions() {
    let story = story();
    assert_eq!(story.kinds(), Kind::ALL.to_vec());
    for kind in Kind::ALL {
        let game = story.game(kind).unwrap();
        assert!(
            (MIN_QUESTIONS..=MAX_QUESTIONS).contains(&game.questions.len()),
            "{kind:?}"
        );
        let ids: HashSet<&str> = game.questions.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids.len(), game.questions.len(), "ids are unique");
    }
}

#[test]
fn same_version_same_questions_other_version_may_differ() {
    for kind in Kind::ALL {
        assert_eq!(
            story().game(kind),
            story().game(kind),
            "{kind:?} is deterministic"
        );
    }
    let other = Story::new(7, 2, PAGES, &always);
    assert_ne!(story().game(Kind::Scramble), other.game(Kind::Scramble));
}

#[test]
fn quiz_has_one_story_word_and_three_strangers() {
    let game = story().game(Kind::Quiz).unwrap();
    let text = PAGES.join(" ").to_lowercase();
    for question in &game.questions {
        let choices = question.choices.as_ref().unwrap();
        assert_eq!(choices.len(), 4);
        assert_eq!(
            choices.iter().collect::<HashSet<_>>().len(),
            4,
            "never a choice twice"
        );
        let Answer::Word(answer) = &question.answer else {
            panic!()
        };
        assert!(choices.contains(answer));
        let in_story = choices.iter().filter(|c| {
            text.split(|ch: char| !ch.is_alphabetic())
                .any(|w| w == c.as_str())
        });
        assert_eq!(in_story.count(), 1, "{choices:?}");
    }
}

#[test]
fn scramble_is_a_real_anagram() {
    for question in story().game(Kind::Scramble).unwrap().questions {
        let Answer::Word(answer) = &question.answer else {
            panic!()
        };
        let scrambled = question.prompt.rsplit(' ').next().unwrap().to_lowercase();
        assert_ne!(&scrambled, answer);
        let mut a: Vec<char> = scrambled.chars().collect();
        let mut b: Vec<char> = answer.chars().collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        assert!(question.choices.is_none());
    }
}

#[test]
fn fill_blank_hides_the_answer_among_story_words() {
    for question in story().game(Kind::FillBlank).unwrap().questions {
        assert!(question.prompt.contains("____"), "{}", question.prompt);
        let Answer::Word(answer) = &question.answer else {
            panic!()
        };
        let choices = question.choices.unwrap();
        assert_eq!(choices.len(), 4);
        assert_eq!(choices.iter().filter(|c| *c == answer).count(), 1);
        assert_eq!(choices.iter().collect::<HashSet<_>>().len(), 4);
        assert!(
            !question
                .prompt
                .to_lowercase()
                .split(|c: char| !c.is_alphabetic())
                .any(|w| w == answer)
        );
    }
}

#[test]
fn order_is_three_events_shuffled() {
    for question in story().game(Kind::Order).unwrap().questions {
        let Answer::Sequence(right) = &question.answer else {
            panic!()
        };
        let choices = question.choices.unwrap();
        assert_eq!(choices.len(), 3);
        assert_ne!(&choices, right, "shuffled");
        let positions: Vec<usize> = right
            .iter()
            .map(|s| PAGES.join(" ").find(s.as_str()).unwrap())
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "the answer is in story order"
        );
    }
}

#[test]
fn checking_scores_and_reveals_answers() {
    let game = story().game(Kind::FillBlank).unwrap();
    let mut submitted = HashMap::new();
    let Answer::Word(first) = &game.questions[0].answer else {
        panic!()
    };
    submitted.insert(
        "q1".to_owned(),
        Submitted::Word(format!("  {}  ", first.to_uppercase())),
    );
    submitted.insert("q2".to_owned(), Submitted::Word("wrong".into()));
    let score = check(&game, &submitted);
    assert_eq!((score.score, score.total), (1, game.questions.len()));
    assert!(score.results[0].1.correct);
    assert!(!score.results[1].1.correct);
    assert!(!score.results[2].1.correct, "unanswered is wrong");

    let order = story().game(Kind::Order).unwrap();
    let Answer::Sequence(right) = order.questions[0].answer.clone() else {
        panic!()
    };
    let answers = HashMap::from([("q1".to_owned(), Submitted::Sequence(right))]);
    assert_eq!(check(&order, &answers).score, 1);
}

#[test]
fn very_short_stories_make_fewer_kinds_and_never_panic() {
    for pages in [
        &[][..],
        &[""][..],
        &["Hi."][..],
        &["The cat sat."][..],
        &["A big red ball rolled away."][..],
    ] {
        let story = Story::new(1, 1, pages, &always);
        let kinds = story.kinds();
        assert!(!kinds.contains(&Kind::Order), "{pages:?}");
        for kind in Kind::ALL {
            let _ = story.game(kind);
        }
    }
}

#[test]
fn long_words_and_other_scripts_work() {
    let pages = [
        "Der außergewöhnliche Schmetterling flog über die Blumenwiese.",
        "Die Kinder beobachteten den Schmetterling stundenlang im Sonnenschein.",
        "Am Abend schlief der Schmetterling zwischen den Gänseblümchen ein.",
    ];
    let story = Story::new(3, 1, &pages, &always);
    let kinds = story.kinds();
    assert!(
        kinds.contains(&Kind::Scramble) && kinds.contains(&Kind::Order),
        "{kinds:?}"
    );
    let game = story.game(Kind::Scramble).unwrap();
    assert!(game.questions.iter().any(|q| matches!(&q.answer, Answer::Word(w) if w.contains('ß') || w.contains('ä') || w.chars().count() > 12)));
}

#[test]
fn filtered_words_are_never_asked() {
    let pages = [
        "The goblin said a rude word darn and ran away quickly.",
        "Darn, said the troll loudly to everyone.",
        "The goblin laughed at the grumpy troll again.",
    ];
    let allowed = |w: &str| w != "darn";
    let story = Story::new(5, 1, &pages, &allowed);
    for kind in [Kind::Quiz, Kind::Scramble, Kind::FillBlank] {
        if let Some(game) = story.game(kind) {
            for q in game.questions {
                assert_ne!(q.answer, Answer::Word("darn".into()));
                assert!(!q.choices.unwrap_or_default().contains(&"darn".to_owned()));
            }
        }
    }
}
