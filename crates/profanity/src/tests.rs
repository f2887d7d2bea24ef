use super::*;

/// `(text, expected canonical words in order)`; empty means clean.
const CASES: &[(&str, &[&str])] = &[
    // plain words, case and inflections
    ("fuck", &["fuck"]),
    ("Fuck this", &["fuck"]),
    ("FUCKING hell", &["fuck"]),
    ("what the fuck?", &["fuck"]),
    ("shit", &["shit"]),
    ("shits and giggles", &["shit"]),
    ("Shitty day", &["shit"]),
    ("you bitch", &["bitch"]),
    ("bitches", &["bitch"]),
    ("an asshole", &["asshole"]),
    ("kiss my ass", &["ass"]),
    ("bastard", &["bastard"]),
    ("cunt", &["cunt"]),
    ("bullshit", &["bullshit"]),
    ("motherfucker", &["motherfucker"]),
    ("fuckers", &["fucker"]),
    ("damn it", &["damn"]),
    ("that's crap", &["crap"]),
    ("you idiot", &["idiot"]),
    ("stupid", &["stupid"]),
    ("shit and fuck", &["shit", "fuck"]),
    // obfuscation
    ("sh1t", &["shit"]),
    ("5h1t", &["shit"]),
    ("$hit", &["shit"]),
    ("sh!t", &["shit"]),
    ("shit!", &["shit"]),
    ("@ss", &["ass"]),
    ("a$$hole", &["asshole"]),
    ("b1tch", &["bitch"]),
    ("fuuuuck", &["fuck"]),
    ("fuckkkk", &["fuck"]),
    ("shiiiit", &["shit"]),
    ("f u c k", &["fuck"]),
    ("f.u.c.k", &["fuck"]),
    ("f-u-c-k you", &["fuck"]),
    ("s h i t happens", &["shit"]),
    ("f_u_c_k", &["fuck"]),
    ("fu\u{200B}ck", &["fuck"]),
    ("fUcK", &["fuck"]),
    ("ＦＵＣＫ", &["fuck"]),
    ("ｓｈｉｔ", &["shit"]),
    ("𝐟𝐮𝐜𝐤", &["fuck"]),
    ("𝓈𝒽𝒾𝓉", &["shit"]),
    ("fúck", &["fuck"]),
    ("ѕһіt", &["shit"]),
    ("fu\u{0301}ck", &["fuck"]),
    ("phuck", &["fuck"]),
    ("wtf", &["wtf"]),
    // innocent words that contain a bad one
    ("Scunthorpe", &[]),
    ("a classic tale", &[]),
    ("the assassin", &[]),
    ("a cocktail party", &[]),
    ("green grass", &[]),
    ("the therapist", &[]),
    ("shiitake mushrooms", &[]),
    ("Hancock and Hitchcock", &[]),
    ("Moby Dick", &[]),
    ("balls of yarn", &[]),
    ("pass the class", &[]),
    ("an assessment", &[]),
    ("assume", &[]),
    ("the bass player", &[]),
    ("a peacock", &[]),
    ("bunches of grapes", &[]),
    ("Sussex", &[]),
    ("cumin", &[]),
    ("hello shell", &[]),
    ("as I said", &[]),
    ("a s a p", &[]),
    ("I am 5 years old", &[]),
    ("mass and glass", &[]),
    ("Essex", &[]),
    ("a pussycat", &[]),
    ("The rabbit hopped into the forest.", &[]),
    ("2024", &[]),
    ("", &[]),
    ("日本語のテキスト", &[]),
    ("Ça va très bien", &[]),
    ("Привет, мир", &[]),
];

#[test]
fn table_of_cases() {
    let filter = Filter::new();
    let mut failures = Vec::new();
    for (text, expected) in CASES {
        let found: Vec<&str> = filter.find(text).iter().map(|m| m.word).collect();
        if found != *expected {
            failures.push(format!("{text:?}: expected {expected:?}, found {found:?}"));
        }
    }
    assert!(CASES.len() >= 60);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn offsets_are_code_points_and_mask_separators() {
    let filter = Filter::new();
    let report = filter.check("Ça f.u.c.k !");
    assert_eq!(
        report.matches,
        vec![Match {
            start: 3,
            end: 10,
            word: "fuck"
        }]
    );
    assert_eq!(report.censored, "Ça ******* !");
}

#[test]
fn censor_keeps_clean_text() {
    let filter = Filter::new();
    assert_eq!(filter.censor("a classic shit"), "a classic ****");
    assert_eq!(filter.censor("ｆｕｃｋ!"), "****!");
    assert!(filter.is_clean("Scunthorpe"));
}

#[test]
fn long_text_is_handled() {
    let filter = Filter::new();
    let text = "a b ".repeat(3000) + "shit";
    let report = filter.check(&text);
    assert_eq!(report.matches.len(), 1);
    assert_eq!(report.censored.chars().count(), text.chars().count());
}
