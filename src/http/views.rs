//! The contract's JSON shapes that more than one section answers with.

use serde_json::{Value, json};
use storybook_store::{Story, User};

/// A story; `liked` is whether the viewer likes it.
pub fn story_json(story: &Story, liked: bool) -> Value {
    let mut value = json!(story);
    value["liked"] = json!(liked);
    value
}

/// [`story_json`] written straight to bytes, without the tree of values
/// in between (most of a signed-in story's cost once it is cached).
pub fn story_bytes(story: &Story, liked: bool) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        #[serde(flatten)]
        story: &'a Story,
        liked: bool,
    }
    serde_json::to_vec(&Answer { story, liked })
}

/// The user as the API shows it; `email` only for the user themself and admins.
pub fn user_json(user: &User, with_email: bool) -> Value {
    let mut value = json!({
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "bio": user.bio,
        "role": user.role,
        "created_at": user.created_at,
    });
    if with_email {
        // A user who moved in without an address of their own has none.
        value["email"] = if user.email.is_empty() {
            Value::Null
        } else {
            json!(user.email)
        };
    }
    value
}
