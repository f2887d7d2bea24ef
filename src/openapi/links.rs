//! Operation ids and the links between operations: which id in an answer
//! leads to which other operation. Generated clients and stateful testers
//! follow them (create a story, then read, like, report it …).

use serde_json::{Map, Value, json};

/// A stable id for an operation from its method and path:
/// `get /api/stories/{id}/games/{kind}` is `get_stories_by_id_games_by_kind`.
pub fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for segment in path.split('/').filter(|s| !s.is_empty() && *s != "api") {
        id.push('_');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(parameter) => {
                id.push_str("by_");
                id.push_str(parameter);
            }
            None => id.extend(
                segment
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
            ),
        }
    }
    id
}

/// Where an answer's `id` (or another field) leads: (method, path, the
/// parameter it fills, the JSON pointer in the answer's body).
type Link = (&'static str, &'static str, &'static str, &'static str);

const STORY_LINKS: &[Link] = &[
    ("get", "/api/stories/{id}", "id", "/id"),
    ("patch", "/api/stories/{id}", "id", "/id"),
    ("delete", "/api/stories/{id}", "id", "/id"),
    ("post", "/api/stories/{id}/like", "id", "/id"),
    ("delete", "/api/stories/{id}/like", "id", "/id"),
    ("put", "/api/stories/{id}/progress", "id", "/id"),
    ("post", "/api/stories/{id}/report", "id", "/id"),
    ("get", "/api/stories/{id}/games", "id", "/id"),
];

const DRAWING_LINKS: &[Link] = &[
    ("get", "/api/drawings/{id}", "id", "/id"),
    ("patch", "/api/drawings/{id}", "id", "/id"),
    ("delete", "/api/drawings/{id}", "id", "/id"),
    ("post", "/api/drawings/{id}/strokes", "id", "/id"),
    ("get", "/api/drawings/{id}/image.png", "id", "/id"),
    // Not to the collaborators: an unknown username is 404 there too, and
    // a follower could not tell it from a missing drawing.
];

const REPORT_LINKS: &[Link] = &[("patch", "/api/admin/reports/{id}", "id", "/id")];

const ACCOUNT_LINKS: &[Link] = &[
    ("get", "/api/users/{username}", "username", "/user/username"),
    ("patch", "/api/admin/users/{id}", "id", "/user/id"),
];

/// The links of an operation's success answer, if it has any.
pub fn from(method: &str, path: &str) -> Option<Value> {
    let links = match (method, path) {
        ("post", "/api/stories" | "/api/stories/generate" | "/api/stories/from-photo") => {
            STORY_LINKS
        }
        ("post", "/api/drawings") => DRAWING_LINKS,
        ("post", "/api/stories/{id}/report") => REPORT_LINKS,
        ("post", "/api/auth/register") => ACCOUNT_LINKS,
        _ => return None,
    };
    let mut described = Map::new();
    for (target_method, target_path, parameter, pointer) in links {
        let target = operation_id(target_method, target_path);
        described.insert(
            target.clone(),
            json!({
                "operationId": target,
                "parameters": { *parameter: format!("$response.body#{pointer}") },
            }),
        );
    }
    Some(Value::Object(described))
}
