//! Contract "Accounts": `GET`/`PATCH /api/me/settings`, the signed-in
//! user's preferences (theme, font size, language, notifications).

use axum::Json;
use axum::extract::State;
use storybook_store::{Settings, Store};

use crate::error::ApiResult;
use crate::extract::{AuthUser, JsonFields};
use crate::state::Auth;

/// Accounts: `GET /api/me/settings`.
pub(super) async fn settings(AuthUser(user): AuthUser) -> Json<Settings> {
    Json(user.settings)
}

const THEMES: &[&str] = &["light", "dark", "system"];
const FONT_SIZES: &[&str] = &["small", "medium", "large"];

/// Accounts: `PATCH /api/me/settings`: the keys given change, the rest stay.
pub(super) async fn update_settings(
    State(store): State<Store>,
    State(auth): State<Auth>,
    AuthUser(user): AuthUser,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Settings>> {
    body.deny_unknown(&["theme", "font_size", "language", "notifications"]);
    let mut settings = user.settings.clone();
    for (field, allowed, target) in [
        ("theme", THEMES, &mut settings.theme),
        ("font_size", FONT_SIZES, &mut settings.font_size),
    ] {
        if let Some(value) = body.optional_string(field) {
            if allowed.contains(&value.as_str()) {
                *target = value;
            } else {
                body.reject(field, format!("must be one of: {}", allowed.join(", ")));
            }
        }
    }
    if let Some(language) = body.optional_string("language") {
        if is_language_tag(&language) {
            settings.language = language;
        } else {
            body.reject(
                "language",
                "must be a BCP 47 language tag such as en or pt-BR",
            );
        }
    }
    if let Some(notifications) = body.optional_bool("notifications") {
        settings.notifications = notifications;
    }
    body.finish()?;
    store.set_settings(user.id, &settings).await?;
    auth.tokens.forget_user(user.id);
    Ok(Json(settings))
}

/// A well-formed BCP 47 tag: a 2–3 (or 5–8) letter language, then subtags
/// of 1–8 letters or digits (`en`, `en-GB`, `pt-BR`, `zh-Hant`, `es-419`).
pub fn is_language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    let Some(language) = subtags.next() else {
        return false;
    };
    let language_ok = matches!(language.len(), 2 | 3 | 5..=8)
        && language.bytes().all(|b| b.is_ascii_alphabetic());
    language_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for good in ["en", "en-GB", "pt-BR", "zh-Hant", "es-419", "sr-Latn-RS"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "english-",
            "en_US",
            "en--GB",
            "123",
            "en-toolongsubtag",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
