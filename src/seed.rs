//! `storybook seed`: fills a database with realistic, varied stories so
//! lists and search can be measured at 10k and 100k stories.
//!
//! Deterministic for a given `--seed`: the same command makes the same
//! library (SplitMix64, the same generator the games use).

/// The password of every seeded user (a load tool signs in with it).
pub const SEED_PASSWORD: &str = "password123";

use storybook_splitmix::SplitMix64;
use storybook_store::{
    AGE_GROUPS, GENRES, NewStory, NewUser, Role, Store, StoryPage, StorySource, StoryStatus,
};

/// Skewed towards small numbers: most stories have few likes.
fn skewed(rng: &mut SplitMix64, max: usize) -> usize {
    let a = rng.below(max + 1);
    let b = rng.below(max + 1);
    a.min(b) * rng.below(2)
}

const NAMES: &[&str] = &[
    "Mia", "Leo", "Ava", "Noah", "Zara", "Omar", "Lily", "Finn", "Ruby", "Kai", "Nora", "Eli",
    "Ivy", "Theo", "Luna", "Max", "Ada", "Sam", "Priya", "Jonah", "Amara", "Hugo", "Chloe", "Ravi",
    "Sofia", "Mateo", "Yuki", "Aisha", "Ben", "Clara", "Dev", "Elsa", "Felix", "Greta", "Hana",
    "Isaac", "Jade", "Kofi", "Lena", "Milo", "Nadia", "Oscar", "Pia", "Quinn", "Rosa", "Tariq",
    "Uma", "Vera", "Wes", "Xena", "Yara", "Zane",
];
const CREATURES: &[&str] = &[
    "fox",
    "owl",
    "dragon",
    "rabbit",
    "bear",
    "robot",
    "unicorn",
    "turtle",
    "whale",
    "kitten",
    "penguin",
    "giraffe",
    "hedgehog",
    "octopus",
    "badger",
    "squirrel",
    "dinosaur",
    "mouse",
    "lion",
    "parrot",
    "beaver",
    "camel",
    "dolphin",
    "eagle",
    "ferret",
    "goose",
    "hamster",
    "iguana",
    "jellyfish",
    "koala",
    "lemur",
    "moose",
    "narwhal",
    "otter",
    "panda",
    "quokka",
    "raccoon",
    "seal",
    "tiger",
    "walrus",
    "yak",
    "zebra",
    "crab",
    "frog",
    "goat",
    "heron",
    "llama",
    "mole",
    "newt",
    "puffin",
    "snail",
    "sloth",
    "toad",
    "wombat",
    "lobster",
    "bat",
];
const ADJECTIVES: &[&str] = &[
    "brave",
    "tiny",
    "sleepy",
    "curious",
    "clever",
    "gentle",
    "silly",
    "shiny",
    "secret",
    "friendly",
    "noisy",
    "golden",
    "lonely",
    "happy",
    "mysterious",
    "enormous",
    "quiet",
    "speedy",
    "kind",
    "sparkly",
    "fuzzy",
    "grumpy",
    "polite",
    "wobbly",
    "bouncy",
    "chilly",
    "dusty",
    "fancy",
    "glowing",
    "humble",
    "icy",
    "jolly",
    "lucky",
    "muddy",
    "nimble",
    "patient",
    "proud",
    "rusty",
    "shy",
    "sticky",
    "stripy",
    "sunny",
    "tall",
    "tidy",
    "velvet",
    "wise",
    "wild",
    "zany",
    "crooked",
    "dizzy",
    "fluffy",
    "giant",
    "hungry",
    "invisible",
    "merry",
    "spotted",
];
const PLACES: &[&str] = &[
    "forest",
    "castle",
    "ocean",
    "mountain",
    "village",
    "garden",
    "island",
    "cave",
    "desert",
    "library",
    "meadow",
    "river",
    "moon",
    "treehouse",
    "lighthouse",
    "jungle",
    "bakery",
    "museum",
    "volcano",
    "harbour",
    "orchard",
    "swamp",
    "canyon",
    "glacier",
    "farm",
    "market",
    "station",
    "playground",
    "attic",
    "cellar",
    "bridge",
    "tower",
    "pond",
    "beach",
    "valley",
    "hill",
    "city",
    "zoo",
    "circus",
    "school",
    "cottage",
    "palace",
    "workshop",
    "greenhouse",
    "observatory",
    "reef",
    "tunnel",
    "windmill",
    "waterfall",
    "igloo",
    "barn",
];
const THINGS: &[&str] = &[
    "map",
    "key",
    "lantern",
    "star",
    "drum",
    "kite",
    "crown",
    "compass",
    "seed",
    "feather",
    "shell",
    "clock",
    "book",
    "balloon",
    "telescope",
    "blanket",
    "cookie",
    "rocket",
    "umbrella",
    "pebble",
    "acorn",
    "bell",
    "boot",
    "button",
    "candle",
    "carrot",
    "coin",
    "cup",
    "flag",
    "flute",
    "glove",
    "hat",
    "jar",
    "ladder",
    "leaf",
    "marble",
    "mirror",
    "mitten",
    "necklace",
    "paintbrush",
    "pillow",
    "puzzle",
    "quilt",
    "ribbon",
    "ring",
    "rope",
    "scarf",
    "sock",
    "spoon",
    "teapot",
    "ticket",
    "trumpet",
    "wagon",
    "whistle",
    "yoyo",
];
const VERBS: &[&str] = &[
    "found",
    "chased",
    "followed",
    "built",
    "painted",
    "shared",
    "lost",
    "carried",
    "discovered",
    "fixed",
    "hid",
    "planted",
    "opened",
    "borrowed",
    "watched",
    "counted",
    "helped",
    "rescued",
    "visited",
    "tickled",
    "thanked",
    "invited",
    "greeted",
    "mended",
    "polished",
    "decorated",
    "wrapped",
    "measured",
    "sketched",
    "guarded",
    "returned",
];
const FEELINGS: &[&str] = &[
    "happy",
    "proud",
    "scared",
    "surprised",
    "excited",
    "sleepy",
    "calm",
    "grateful",
    "cheerful",
    "nervous",
    "curious",
    "hopeful",
    "puzzled",
    "relieved",
    "silly",
    "cozy",
];
const TAGS: &[&str] = &[
    "dragons",
    "friendship",
    "space",
    "animals",
    "magic",
    "school",
    "family",
    "bedtime",
    "ocean",
    "robots",
    "music",
    "seasons",
    "pirates",
    "dinosaurs",
    "princess",
    "science",
    "nature",
    "courage",
    "food",
    "sports",
    "weather",
    "trains",
    "birthday",
    "winter",
    "summer",
    "garden",
    "cats",
    "dogs",
    "kindness",
    "adventure",
    "fairytale",
];

fn sentence(rng: &mut SplitMix64, hero: &str, creature: &str) -> String {
    let adjective = rng.pick(ADJECTIVES);
    let place = rng.pick(PLACES);
    let thing = rng.pick(THINGS);
    let verb = rng.pick(VERBS);
    let feeling = rng.pick(FEELINGS);
    match rng.below(8) {
        0 => format!("One morning {hero} {verb} a {adjective} {thing} near the {place}."),
        1 => format!("The {creature} felt {feeling} when it saw the {thing}."),
        2 => format!("\"Look!\" said {hero}. \"The {place} is {adjective} today.\""),
        3 => format!("Together they {verb} the {adjective} {creature} all the way to the {place}."),
        4 => format!("Nobody in the {place} had ever seen such a {adjective} {thing}."),
        5 => format!("{hero} and the {creature} {verb} a {thing} and felt {feeling}."),
        6 => format!("At the edge of the {place}, a {adjective} {creature} was waiting."),
        _ => format!(
            "When the sun went down, the {thing} began to glow, and everyone felt {feeling}."
        ),
    }
}

fn title(rng: &mut SplitMix64, hero: &str, creature: &str) -> String {
    let adjective = rng.pick(ADJECTIVES);
    let place = rng.pick(PLACES);
    let thing = rng.pick(THINGS);
    let mut title = match rng.below(5) {
        0 => format!("The {adjective} {creature}"),
        1 => format!("{hero} and the {adjective} {thing}"),
        2 => format!("A {thing} in the {place}"),
        3 => format!("How the {creature} found the {place}"),
        _ => format!("The {creature} who lost a {thing}"),
    };
    if let Some(first) = title.get(..1) {
        title = first.to_uppercase() + &title[1..];
    }
    title
}

/// Adds `users` readers and `stories` stories (with likes). Returns how
/// many stories were written.
pub async fn seed(
    store: &Store,
    stories: usize,
    users: usize,
    seed: u64,
    password_hash: String,
) -> Result<usize, String> {
    let mut rng = SplitMix64::new(seed);
    let run = format!("{:x}", storybook_store::Timestamp::now().millis() % 0xFFFFF);
    let mut user_ids = Vec::with_capacity(users.max(1));
    for i in 0..users.max(1) {
        let username = format!("seed{run}_{i}");
        let user = store
            .create_user(&NewUser {
                email: format!("{username}@example.com"),
                display_name: format!(
                    "{} {}",
                    rng.pick(NAMES),
                    rng.pick(&["A.", "B.", "C.", "D.", "E."])
                ),
                username,
                password_hash: password_hash.clone(),
                role: Role::User,
            })
            .await
            .map_err(|e| e.to_string())?;
        user_ids.push(user.id);
    }
    for n in 0..stories {
        let hero = rng.pick(NAMES);
        let creature = rng.pick(CREATURES);
        let page_count = 1 + rng.below(8);
        let pages = (0..page_count)
            .map(|_| {
                let sentences = 2 + rng.below(4);
                let text = (0..sentences)
                    .map(|_| sentence(&mut rng, hero, creature))
                    .collect::<Vec<_>>()
                    .join(" ");
                StoryPage {
                    text,
                    drawing_id: None,
                }
            })
            .collect();
        let mut tags: Vec<String> = (0..rng.below(5))
            .map(|_| rng.pick(TAGS).to_owned())
            .collect();
        tags.sort();
        tags.dedup();
        let author = user_ids[rng.below(user_ids.len())];
        let story = store
            .create_story(&NewStory {
                author_id: author,
                title: title(&mut rng, hero, creature),
                pages,
                genre: rng.pick(GENRES).to_owned(),
                age_group: rng.pick(AGE_GROUPS).to_owned(),
                tags,
                status: if rng.below(10) == 0 {
                    StoryStatus::Draft
                } else {
                    StoryStatus::Published
                },
                source: StorySource::Manual,
            })
            .await
            .map_err(|e| e.to_string())?;
        if story.status == StoryStatus::Published {
            let likes = skewed(&mut rng, user_ids.len().min(12));
            for _ in 0..likes {
                let fan = user_ids[rng.below(user_ids.len())];
                store.like(fan, story.id).await.map_err(|e| e.to_string())?;
            }
        }
        if (n + 1).is_multiple_of(5_000) {
            eprintln!("seeded {} of {stories} stories", n + 1);
        }
    }
    Ok(stories)
}
