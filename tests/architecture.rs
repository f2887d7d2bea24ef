//! ARCHITECTURE.md's code map, checked against the code: each rule there
//! that can be read off the source tree is a test here, so the map cannot
//! quietly stop being true. Plain file reading, no parsing crate: the
//! rules are about `use` paths, `Cargo.toml` dependencies and sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(ROOT).join(dir), &mut out);
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The code outside `#[cfg(test)]` modules (which sit at the end of a file
/// here by convention).
fn without_tests(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// The in-house crates a crate's `Cargo.toml` depends on (not dev ones).
fn in_house_dependencies(krate: &str) -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(
        Path::new(ROOT)
            .join("crates")
            .join(krate)
            .join("Cargo.toml"),
    )
    .unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap_or("")
        .split("\n[")
        .next()
        .unwrap_or("");
    dependencies
        .lines()
        .filter_map(|line| line.split('=').next())
        .map(str::trim)
        .filter(|name| name.starts_with("storybook-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn domain_crates_depend_only_on_what_the_map_allows() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("broadcast", &[][..]),
        ("canvas", &["storybook-strokes"][..]),
        ("games", &["storybook-splitmix"][..]),
        ("load", &["storybook-splitmix"][..]),
        ("ocr", &[][..]),
        ("profanity", &[][..]),
        ("splitmix", &[][..]),
        ("store", &["storybook-strokes"][..]),
        ("storygen", &["storybook-splitmix"][..]),
        ("strokes", &[][..]),
    ]);
    let crates: BTreeSet<String> = std::fs::read_dir(Path::new(ROOT).join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for krate in &crates {
        let may = allowed
            .get(krate.as_str())
            .unwrap_or_else(|| panic!("crates/{krate} is not in ARCHITECTURE.md's code map"));
        let uses = in_house_dependencies(krate);
        let extra: Vec<_> = uses.iter().filter(|d| !may.contains(&d.as_str())).collect();
        assert!(
            extra.is_empty(),
            "crates/{krate} may not depend on {extra:?}"
        );
    }
}

#[test]
fn no_web_types_and_no_sql_outside_their_places() {
    for (path, text) in sources("crates") {
        let file = relative(&path);
        let code = without_tests(&text);
        if !file.starts_with("crates/load/") {
            for web in ["axum::", "tower::", "hyper::", "tower_http::"] {
                assert!(
                    !code.contains(web),
                    "{file} uses {web}: domain crates have no web types"
                );
            }
        }
        if !file.starts_with("crates/store/") {
            assert!(
                !code.contains("sqlx::"),
                "{file}: SQL lives in crates/store only"
            );
        }
    }
    for (path, text) in sources("src") {
        assert!(
            !without_tests(&text).contains("sqlx::"),
            "{}: SQL lives in crates/store only",
            relative(&path)
        );
    }
}

/// The module of the binary's library a file is, at the granularity the
/// map uses: `state`, `realtime`, `http::stories`, ...
fn module_of(file: &str) -> Option<String> {
    let inner = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut parts: Vec<&str> = inner.split('/').collect();
    if parts.last() == Some(&"mod") {
        parts.pop();
    }
    match parts.as_slice() {
        ["main"] | ["lib"] => None,
        ["http", section, ..] => Some(format!("http::{section}")),
        ["http"] => Some("http".into()),
        [first, ..] => Some((*first).to_owned()),
        [] => None,
    }
}

/// Which modules each module names (through `crate::` or, inside `http`,
/// `super::`), outside its tests.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources("src");
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(path, _)| module_of(&relative(path)))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let Some(me) = module_of(&relative(path)) else {
            continue;
        };
        let code = without_tests(text);
        let mut named = BTreeSet::new();
        for (prefix, within_http) in [("crate::", false), ("super::", true)] {
            if within_http && !me.starts_with("http::") {
                continue;
            }
            for piece in code.split(prefix).skip(1) {
                let path: String = piece
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut segments = path.split("::").filter(|s| !s.is_empty());
                let target = match (within_http, segments.next(), segments.next()) {
                    (true, Some(section), _) => format!("http::{section}"),
                    (false, Some("http"), Some(section)) => format!("http::{section}"),
                    (false, Some(first), _) => first.to_owned(),
                    _ => continue,
                };
                if target != me && modules.contains(&target) {
                    named.insert(target);
                }
            }
        }
        graph.entry(me).or_default().extend(named);
    }
    graph
}

#[test]
fn no_import_circle_between_modules() {
    let graph = module_graph();
    // Depth-first search for a back edge, reporting the circle found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("an import circle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn handler_modules_use_only_the_shared_http_modules() {
    let shared = [
        "http::access",
        "http::story_input",
        "http::streaming",
        "http::views",
    ];
    for (module, named) in module_graph() {
        if !module.starts_with("http::") || shared.contains(&module.as_str()) {
            continue;
        }
        for other in named.iter().filter(|n| n.starts_with("http::")) {
            assert!(
                shared.contains(&other.as_str()),
                "{module} imports the handler module {other}"
            );
        }
    }
}

#[test]
fn the_inner_modules_never_reach_into_http() {
    // What the map says must never use `http` (the handlers build on these,
    // not the other way round).
    let never = [
        "state",
        "events",
        "realtime",
        "notifications",
        "accounts",
        "auth",
        "cache",
        "token_cache",
        "likes_cache",
        "image_cache",
        "config",
        "extract",
        "validate",
        "error",
    ];
    let graph = module_graph();
    for module in never {
        let named = graph.get(module).cloned().unwrap_or_default();
        let http: Vec<_> = named
            .iter()
            .filter(|n| *n == "http" || n.starts_with("http::"))
            .collect();
        assert!(http.is_empty(), "{module} may not use {http:?}");
    }
    // The document is generated from the routers' registrations and the
    // input limits, nothing else of the handlers.
    let openapi = graph.get("openapi").cloned().unwrap_or_default();
    for named in openapi.iter().filter(|n| n.starts_with("http")) {
        assert!(
            ["http", "http::story_input"].contains(&named.as_str()),
            "openapi may not use {named}"
        );
    }
}

#[test]
fn rest_handlers_are_the_same_in_both_builds() {
    for (path, text) in sources("src/http") {
        let file = relative(&path);
        if file.starts_with("src/http/realtime/") || file == "src/http/mod.rs" {
            continue;
        }
        assert!(
            !text.contains("feature = \"realtime\""),
            "{file}: REST handlers reach the realtime layer through the events seam only"
        );
    }
}

#[test]
fn one_bearer_token_parser() {
    for (path, text) in sources("src") {
        let file = relative(&path);
        let parses = text.contains("eq_ignore_ascii_case(\"bearer\")");
        assert!(
            !parses || file == "src/extract.rs",
            "{file} parses Authorization itself: use extract::bearer_token"
        );
    }
}

#[test]
fn sql_dialects_are_asked_only_in_the_backend_modules() {
    for (path, text) in sources("crates/store/src") {
        let file = relative(&path);
        if file.starts_with("crates/store/src/backend/") {
            continue;
        }
        let code = without_tests(&text);
        for branch in [
            "Backend::Sqlite",
            "Backend::Postgres",
            "== Backend",
            "match self.backend",
        ] {
            assert!(
                !code.contains(branch),
                "{file} branches on the dialect ({branch}): that belongs in crates/store/src/backend/"
            );
        }
    }
}

/// Files that are tables of data rather than code, allowed to be long.
const DATA_TABLES: &[&str] = &[];

#[test]
fn no_file_is_too_long_to_hold_in_ones_head() {
    let mut long = Vec::new();
    for dir in ["src", "crates"] {
        for (path, text) in sources(dir) {
            let file = relative(&path);
            let lines = text.lines().count();
            if lines > 500 && !DATA_TABLES.contains(&file.as_str()) {
                long.push(format!("{file} ({lines} lines)"));
            }
        }
    }
    assert!(long.is_empty(), "over 500 lines: {long:?}");
}
