//! What a story may be made of (contract "Stories"): the limits, defined
//! once and used by the validation here, the OpenAPI document and the
//! error messages; a story body read field by field; the profanity and
//! drawing checks; and recognised text split into pages.

use serde_json::Value;
use storybook_store::{AGE_GROUPS, GENRES, Store, StoryChanges, StoryPage, StoryStatus};

use crate::error::{ApiError, ApiResult};
use crate::state::Tools;
use crate::validate::{Fields, char_len, check_profanity};

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_PAGES: usize = 50;
pub const MAX_PAGE_CHARS: usize = 5_000;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 30;
pub const MAX_REASON_CHARS: usize = 500;

/// The writable fields of a story, read from a body. With `partial`, every
/// field is optional (PATCH); otherwise title, pages, genre and age_group
/// are required.
pub fn story_fields(body: &mut Fields, partial: bool) -> StoryChanges {
    let title = if partial {
        body.optional_string("title")
    } else {
        body.required_string("title")
    };
    let title = title.map(|t| t.trim().to_owned());
    if let Some(title) = &title
        && !(1..=MAX_TITLE_CHARS).contains(&char_len(title))
    {
        body.reject(
            "title",
            format!("must be 1 to {MAX_TITLE_CHARS} characters"),
        );
    }
    let pages = read_pages(body, partial);
    let mut choice = |field: &str, allowed: &[&str], required: bool| {
        let value = if required {
            body.required_string(field)
        } else {
            body.optional_string(field)
        }?;
        if allowed.contains(&value.as_str()) {
            Some(value)
        } else {
            body.reject(field, format!("must be one of: {}", allowed.join(", ")));
            None
        }
    };
    let genre = choice("genre", GENRES, !partial);
    let age_group = choice("age_group", AGE_GROUPS, !partial);
    let status =
        choice("status", &["draft", "published"], false).and_then(|s| StoryStatus::parse(&s));
    let tags = read_tags(body);
    StoryChanges {
        title,
        pages,
        genre,
        age_group,
        tags,
        status,
    }
}

fn read_pages(body: &mut Fields, partial: bool) -> Option<Vec<StoryPage>> {
    let raw = body.take("pages");
    let items = match raw {
        None if partial => return None,
        None | Some(Value::Null) => {
            body.reject("pages", "is required");
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            body.reject("pages", "must be an array of pages");
            return None;
        }
    };
    if !(1..=MAX_PAGES).contains(&items.len()) {
        body.reject("pages", format!("must have 1 to {MAX_PAGES} pages"));
        return None;
    }
    let mut pages = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(page) = item else {
            body.reject(format!("pages.{index}"), "must be an object with text");
            continue;
        };
        let text = match page.get("text") {
            Some(Value::String(text)) if char_len(text) <= MAX_PAGE_CHARS => Some(text.clone()),
            Some(Value::String(_)) => {
                body.reject(
                    format!("pages.{index}.text"),
                    format!("must be at most {MAX_PAGE_CHARS} characters"),
                );
                None
            }
            None | Some(Value::Null) => {
                body.reject(format!("pages.{index}.text"), "is required");
                None
            }
            Some(_) => {
                body.reject(format!("pages.{index}.text"), "must be a string");
                None
            }
        };
        let drawing_id = match page.get("drawing_id") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_i64() {
                Some(id) => Some(id),
                None => {
                    body.reject(
                        format!("pages.{index}.drawing_id"),
                        "must be an integer or null",
                    );
                    None
                }
            },
        };
        if let Some(text) = text {
            pages.push(StoryPage { text, drawing_id });
        }
    }
    (pages.len() == items.len()).then_some(pages)
}

fn read_tags(body: &mut Fields) -> Option<Vec<String>> {
    let items = match body.take("tags")? {
        Value::Array(items) => items,
        _ => {
            body.reject("tags", "must be an array of strings");
            return None;
        }
    };
    if items.len() > MAX_TAGS {
        body.reject("tags", format!("must have at most {MAX_TAGS} tags"));
        return None;
    }
    let mut tags = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match item.as_str().map(str::trim) {
            Some(tag) if (1..=MAX_TAG_CHARS).contains(&char_len(tag)) => tags.push(tag.to_owned()),
            Some(_) => body.reject(
                format!("tags.{index}"),
                format!("must be 1 to {MAX_TAG_CHARS} characters"),
            ),
            None => body.reject(format!("tags.{index}"), "must be a string"),
        }
    }
    (tags.len() == items.len()).then_some(tags)
}

/// A story with more text than this (in bytes) is checked for profanity on
/// the blocking pool: the matcher is linear, but a 50-page story is tens of
/// milliseconds of CPU that must not hold an async worker.
const BLOCKING_CHECK_BYTES: usize = 16 * 1024;

/// Profanity over every field others will see, named as the contract
/// names them (`title`, `pages.2.text`, `tags.0`).
pub async fn check_story_profanity(tools: &Tools, changes: &StoryChanges) -> ApiResult<()> {
    let mut fields: Vec<(String, &str)> = Vec::new();
    if let Some(title) = &changes.title {
        fields.push(("title".into(), title));
    }
    for (index, page) in changes.pages.iter().flatten().enumerate() {
        fields.push((format!("pages.{index}.text"), &page.text));
    }
    for (index, tag) in changes.tags.iter().flatten().enumerate() {
        fields.push((format!("tags.{index}"), tag));
    }
    if fields.iter().map(|(_, text)| text.len()).sum::<usize>() <= BLOCKING_CHECK_BYTES {
        return check_profanity(
            &tools.profanity,
            fields.iter().map(|(name, text)| (name.as_str(), *text)),
        );
    }
    let owned: Vec<(String, String)> = fields
        .into_iter()
        .map(|(name, text)| (name, text.to_owned()))
        .collect();
    let filter = tools.profanity.clone();
    tokio::task::spawn_blocking(move || {
        check_profanity(
            &filter,
            owned
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
        )
    })
    .await
    .map_err(ApiError::internal)?
}

/// A page may only attach a drawing the story's author owns.
pub async fn check_drawings(
    store: &Store,
    author_id: i64,
    changes: &StoryChanges,
) -> ApiResult<()> {
    let mut fields = crate::error::FieldErrors::new();
    for (index, page) in changes.pages.iter().flatten().enumerate() {
        if let Some(drawing_id) = page.drawing_id
            && store.drawing_owner(drawing_id).await? != Some(author_id)
        {
            fields.insert(
                format!("pages.{index}.drawing_id"),
                "must be a drawing that the story's author owns".into(),
            );
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(fields))
    }
}

/// Recognised text as pages: paragraphs gathered up to the page limit.
pub fn paginate(text: &str) -> Vec<StoryPage> {
    let mut pages: Vec<String> = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut rest = paragraph.trim();
        while !rest.is_empty() {
            let fits = match pages.last() {
                Some(last) => char_len(last) + 2 + char_len(rest) <= MAX_PAGE_CHARS,
                None => false,
            };
            if fits && let Some(last) = pages.last_mut() {
                last.push_str("\n\n");
                last.push_str(rest);
                break;
            }
            let cut = rest
                .char_indices()
                .nth(MAX_PAGE_CHARS)
                .map_or(rest.len(), |(i, _)| i);
            pages.push(rest[..cut].to_owned());
            rest = rest[cut..].trim_start();
        }
    }
    pages.truncate(MAX_PAGES);
    pages
        .into_iter()
        .map(|text| StoryPage {
            text,
            drawing_id: None,
        })
        .collect()
}
