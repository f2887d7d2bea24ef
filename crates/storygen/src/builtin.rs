//! The built-in generator: a small story grammar. The prompt's own words
//! become the hero and the things the story is about; the genre picks the
//! setting, the trouble and the ending; the age group picks how long and
//! how rich the sentences are. The same input always gives the same story.

use storybook_splitmix::SplitMix64;

use crate::{GenerateFuture, Generated, Generator, Request};

#[derive(Debug, Default, Clone, Copy)]
pub struct Builtin;

impl Generator for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn generate<'a>(&'a self, request: &'a Request) -> GenerateFuture<'a> {
        Box::pin(async move { Ok(write(request)) })
    }
}

/// Words of a prompt that carry no subject.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "about",
    "who", "that", "which", "is", "are", "was", "were", "be", "it", "its", "story", "tale",
    "write", "tell", "me", "please", "my", "our", "some", "very", "from", "into", "by", "as",
    "has", "have", "had", "this", "what", "when", "where", "how", "why", "can", "could", "would",
    "should", "make", "makes", "made", "i", "we", "you", "he", "she", "they", "his", "her",
    // Verbs and feelings a prompt uses around its subjects.
    "love", "loves", "loved", "like", "likes", "liked", "want", "wants", "wanted", "find", "finds",
    "found", "learn", "learns", "learned", "goes", "went", "gets", "got", "lives", "lived",
    "afraid", "scared", "needs", "becomes", "became", "tries", "tried", "cannot", "never",
    "always", "not", "does", "did",
];

const NAMES: &[&str] = &[
    "Pip", "Luna", "Milo", "Tilly", "Otto", "Nell", "Bram", "Ivy", "Juno", "Finn", "Rosie", "Kit",
    "Wren", "Ollie",
];

struct Genre {
    settings: &'static [&'static str],
    troubles: &'static [&'static str],
    helpers: &'static [&'static str],
    endings: &'static [&'static str],
}

fn genre(name: &str) -> Genre {
    match name {
        "fantasy" => Genre {
            settings: &[
                "an enchanted forest",
                "a castle in the clouds",
                "a valley of singing stones",
            ],
            troubles: &[
                "a spell had turned the river to glass",
                "the magic lantern had gone dark",
                "a grumpy troll guarded the only bridge",
            ],
            helpers: &[
                "a wise old wizard",
                "a tiny fairy with silver wings",
                "a talking map",
            ],
            endings: &[
                "the magic came back, brighter than ever",
                "everyone in the kingdom cheered",
                "the spell melted away like snow in spring",
            ],
        },
        "animals" => Genre {
            settings: &[
                "a busy meadow",
                "the edge of a sleepy pond",
                "a tall green jungle",
            ],
            troubles: &[
                "the berries had all disappeared",
                "a storm had scattered every nest",
                "the little ones could not find their way home",
            ],
            helpers: &[
                "a clever crow",
                "a patient tortoise",
                "a family of friendly rabbits",
            ],
            endings: &[
                "all the animals shared a great feast",
                "the meadow was full of happy chatter again",
                "everyone curled up safe and warm",
            ],
        },
        "science" => Genre {
            settings: &[
                "a bright laboratory",
                "a rocket on the launch pad",
                "a garden full of experiments",
            ],
            troubles: &[
                "the robot had forgotten how to count",
                "the seeds would not sprout",
                "the telescope showed a mysterious blinking light",
            ],
            helpers: &[
                "a curious scientist",
                "a humming robot",
                "a book full of diagrams",
            ],
            endings: &[
                "the experiment worked at last",
                "they wrote down everything they had learned",
                "the mystery turned out to be a shooting star",
            ],
        },
        "friendship" => Genre {
            settings: &[
                "a small town by the sea",
                "the school playground",
                "a street full of colourful houses",
            ],
            troubles: &[
                "two friends had stopped talking to each other",
                "a new neighbour felt lonely",
                "a treasured kite was broken",
            ],
            helpers: &[
                "a kind teacher",
                "a grandmother who told good stories",
                "a dog who loved everyone",
            ],
            endings: &[
                "they promised to always listen to each other",
                "the new neighbour became the best of friends",
                "they laughed until the sun went down",
            ],
        },
        "mystery" => Genre {
            settings: &[
                "a creaky old house",
                "a foggy harbour",
                "a library full of secret doors",
            ],
            troubles: &[
                "the golden key had vanished",
                "strange footprints appeared every night",
                "a letter arrived with no name on it",
            ],
            helpers: &[
                "a sharp-eyed detective cat",
                "a librarian who noticed everything",
                "a magnifying glass",
            ],
            endings: &[
                "the last clue made everything clear",
                "the missing key was found in the most surprising place",
                "the secret turned out to be a lovely surprise",
            ],
        },
        "funny" => Genre {
            settings: &[
                "a very wobbly town",
                "a bakery where the cakes could talk",
                "a zoo where the animals ran the show",
            ],
            troubles: &[
                "every hat in town had blown away",
                "the pancakes would not stop flipping",
                "the penguin had borrowed the zookeeper's glasses",
            ],
            helpers: &[
                "a giggling giraffe",
                "a chef with an enormous moustache",
                "a parrot who told terrible jokes",
            ],
            endings: &[
                "everyone laughed so hard they had hiccups",
                "the town decided silly days were the best days",
                "the pancakes finally landed on every plate",
            ],
        },
        "bedtime" => Genre {
            settings: &[
                "a quiet bedroom under the stars",
                "a sleepy village",
                "a soft cloud drifting over the hills",
            ],
            troubles: &[
                "the moon could not find its way",
                "a little star was too shy to shine",
                "sleep had wandered off somewhere",
            ],
            helpers: &[
                "a gentle night owl",
                "a warm, humming breeze",
                "a lullaby carried by the wind",
            ],
            endings: &[
                "everyone drifted into sweet dreams",
                "the stars twinkled goodnight",
                "the whole world grew calm and cosy",
            ],
        },
        "adventure" => Genre {
            settings: &[
                "a wild mountain path",
                "an island nobody had mapped",
                "a jungle full of hidden ruins",
            ],
            troubles: &[
                "the bridge across the canyon had fallen",
                "the treasure map was torn in two",
                "a storm blew the boat off course",
            ],
            helpers: &[
                "a brave explorer",
                "a compass that always pointed home",
                "a friendly mountain goat",
            ],
            endings: &[
                "they came home with a story to tell forever",
                "the treasure was shared with everyone",
                "they planned their next adventure that very night",
            ],
        },
        _ => Genre {
            settings: &[
                "a little house at the end of the lane",
                "a busy market square",
                "a garden behind a blue gate",
            ],
            troubles: &[
                "something important had gone missing",
                "nobody knew what to do next",
                "a big change was coming",
            ],
            helpers: &[
                "a thoughtful friend",
                "a helpful neighbour",
                "a surprising new idea",
            ],
            endings: &[
                "everything turned out better than expected",
                "they were proud of what they had done",
                "it became their favourite day of all",
            ],
        },
    }
}

/// Deterministic choices: FNV-1a over the input seeds SplitMix64.
fn dice(request: &Request) -> SplitMix64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!(
        "{}|{}|{}|{}",
        request.prompt.to_lowercase(),
        request.genre,
        request.age_group,
        request.pages
    )
    .bytes()
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    SplitMix64::new(hash)
}

/// The subject words of a prompt, in order.
fn subjects(prompt: &str) -> Vec<String> {
    prompt
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .map(|w| w.trim_matches('-').to_lowercase())
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
        .take(6)
        .collect()
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

pub(crate) fn write(request: &Request) -> Generated {
    let mut dice = dice(request);
    let words = subjects(&request.prompt);
    let genre = genre(&request.genre);
    let name = dice.pick(NAMES);
    let hero_kind = words
        .first()
        .cloned()
        .unwrap_or_else(|| "little explorer".to_owned());
    let hero = format!("{name} the {hero_kind}");
    // The last subject is what the story is about; one between, if any,
    // is something found along the way.
    let wish = if words.len() >= 2 {
        words.last().cloned()
    } else {
        None
    }
    .unwrap_or_else(|| "something wonderful".to_owned());
    let extra = if words.len() >= 3 {
        words.get(1).cloned()
    } else {
        None
    };
    let setting = dice.pick(genre.settings);
    let trouble = dice.pick(genre.troubles);
    let helper = dice.pick(genre.helpers);
    let ending = dice.pick(genre.endings);
    let pages = request.pages.clamp(1, 12);
    let (young, old) = (request.age_group == "3-5", request.age_group == "9-12");

    let opening = if young {
        vec![
            format!("This is {hero}."),
            format!("{name} lived in {setting}."),
            format!("{name} loved {wish}."),
        ]
    } else if old {
        vec![
            format!(
                "In {setting} there lived {hero}, who could never stop wondering about {wish}."
            ),
            format!(
                "Most days were ordinary, but {name} had a feeling that today would be different."
            ),
            extra.as_ref().map_or_else(
                || format!("Even the wind seemed to whisper {name}'s name."),
                |extra| format!("After all, everyone said that {extra} was only a legend."),
            ),
        ]
    } else {
        vec![
            format!("Once upon a time, in {setting}, there lived {hero}."),
            format!("{name} dreamed about {wish} every single day."),
            "One morning, something unusual happened.".to_owned(),
        ]
    };
    let problem = if young {
        vec![
            format!("Oh no! {}.", capitalise(trouble)),
            format!("{name} felt worried."),
        ]
    } else {
        vec![
            format!("But then {name} discovered that {trouble}."),
            format!("\"What shall I do?\" {name} asked, looking all around."),
            if old {
                format!(
                    "It would take courage, patience and a good plan to set things right, and {name} was not sure of any of them."
                )
            } else {
                format!("{name} took a deep breath and decided to help.")
            },
        ]
    };
    let middles = [
        format!("Along the way, {name} met {helper}."),
        format!("\"I can help you,\" said {helper}."),
        format!("Together they searched high and low for {wish}."),
        extra.as_ref().map_or_else(
            || format!("{name} tried once, and then tried again."),
            |extra| format!("They even found {extra} hiding where nobody had looked."),
        ),
        format!("{name} remembered to be kind, even when it was hard."),
        "Step by step, the path became clearer.".to_owned(),
        "They shared a snack and laughed about the journey so far.".to_owned(),
        format!("The more they worked together, the braver {name} felt."),
    ];
    let closing = if young {
        vec![
            format!("In the end, {ending}."),
            format!("{name} smiled a big smile. The end."),
        ]
    } else {
        vec![
            format!("At last, {ending}."),
            format!("{name} thanked {helper} and hurried home with a heart full of joy."),
            if old {
                format!(
                    "And whenever anyone asked about {wish}, {name} would smile and say that the best discoveries are the ones you share."
                )
            } else {
                "And that is how an ordinary day became an extraordinary one.".to_owned()
            },
        ]
    };

    let per_page = if young {
        2
    } else if old {
        4
    } else {
        3
    };
    let mut text: Vec<String> = Vec::new();
    for page in 0..pages {
        let sentences: Vec<String> = if page == 0 {
            opening.iter().take(per_page.max(2)).cloned().collect()
        } else if page + 1 == pages {
            closing.iter().take(per_page.max(2)).cloned().collect()
        } else if page == 1 {
            problem.iter().take(per_page).cloned().collect()
        } else {
            (0..per_page)
                .map(|_| middles[dice.below(middles.len())].clone())
                .collect()
        };
        text.push(sentences.join(" "));
    }
    if pages == 1 {
        text[0] = format!("{} {} {}", opening[0], problem[0], closing[0]);
    }
    let title = match dice.below(3) {
        0 => format!("{name} and the {}", capitalise(&wish)),
        1 => format!(
            "The {} of {}",
            capitalise(&request.genre.replace("other", "story")),
            hero
        ),
        _ => format!("{hero} Finds {}", capitalise(&wish)),
    };
    Generated {
        title: title.chars().take(120).collect(),
        pages: text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &str, genre: &str, age: &str, pages: usize) -> Request {
        Request {
            prompt: prompt.into(),
            genre: genre.into(),
            age_group: age.into(),
            pages,
        }
    }

    #[test]
    fn uses_the_prompt_and_the_page_count() {
        let story = write(&request("a dragon who loves pancakes", "funny", "6-8", 5));
        assert_eq!(story.pages.len(), 5);
        let text = story.pages.join(" ");
        assert!(
            text.contains("dragon") && text.contains("pancakes"),
            "{text}"
        );
        assert!(story.pages.iter().all(|p| !p.is_empty() && p.len() < 5000));
        assert!(!story.title.is_empty() && story.title.chars().count() <= 120);
    }

    #[test]
    fn deterministic_and_varied() {
        let a = write(&request("a brave robot", "science", "9-12", 4));
        assert_eq!(a, write(&request("a brave robot", "science", "9-12", 4)));
        assert_ne!(a, write(&request("a shy whale", "bedtime", "9-12", 4)));
        assert_ne!(a, write(&request("a brave robot", "mystery", "9-12", 4)));
    }

    #[test]
    fn age_groups_change_the_writing() {
        let young = write(&request("a kitten", "animals", "3-5", 3))
            .pages
            .join(" ");
        let old = write(&request("a kitten", "animals", "9-12", 3))
            .pages
            .join(" ");
        assert!(old.len() > young.len() * 3 / 2, "{young}\n{old}");
    }

    #[test]
    fn every_size_and_genre_works() {
        for genre in [
            "adventure",
            "fantasy",
            "animals",
            "science",
            "friendship",
            "mystery",
            "funny",
            "bedtime",
            "other",
        ] {
            for pages in [1, 2, 3, 12] {
                let story = write(&request("!!!", genre, "6-8", pages));
                assert_eq!(story.pages.len(), pages);
            }
        }
    }
}
