//! Contract section "Stories", the two tools that write a story for the
//! child: `POST /api/stories/generate` and `POST /api/stories/from-photo`.

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use storybook_ocr::OcrError;
use storybook_store::{
    AGE_GROUPS, GENRES, NewStory, Store, StoryChanges, StoryPage, StorySource, StoryStatus,
};
use storybook_storygen::Request as GenerateRequest;

use super::story_input::{MAX_TITLE_CHARS, check_story_profanity, paginate};
use super::views::story_json;
use super::{ApiRouter, Doc};
use crate::admission::{self, Admitted};
use crate::error::{ApiError, ApiResult, FieldErrors};
use crate::extract::{AuthUser, JsonFields};
use crate::state::{Caches, Tools};
use crate::validate::{char_len, check_profanity};

const MAX_PROMPT_CHARS: usize = 500;
/// Room for the multipart framing and a title around the image.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router() -> ApiRouter {
    ApiRouter::new("stories")
        .post(
            "/api/stories/generate",
            generate,
            Doc::new(
                "Write a draft story from a prompt (source ai); 503 generator_unavailable when the remote \
                 model fails; 429 past GENERATIONS_PER_USER_PER_HOUR",
            )
            .user()
            .body("GenerateInput")
            .returns(201, Some("Story"))
            .errors(&[429, 503]),
        )
        .route(
            "post",
            "/api/stories/from-photo",
            // The upload limit is the photo's, not the 1 MiB JSON limit.
            post(from_photo).layer(DefaultBodyLimit::max(5 * 1024 * 1024 + MULTIPART_OVERHEAD)),
            Doc::new(
                "Multipart `image` (PNG or JPEG, <= 5 MiB, <= 25 megapixels) and optional `title`: a draft story of the \
                 recognised text (source photo). 413 too large, 415 not PNG/JPEG, 503 ocr_unavailable, 422 no_text",
            )
            .user()
            .multipart("PhotoInput")
            .returns(201, Some("Story"))
            .errors(&[413, 415, 422, 503]),
        )
}

/// Stories: `POST /api/stories/generate`.
async fn generate(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    AuthUser(user): AuthUser,
    JsonFields(mut body): JsonFields,
) -> ApiResult<(StatusCode, Json<Value>)> {
    tools.generation_quota.check(user.id)?;
    let prompt = body.required_string("prompt").map(|p| p.trim().to_owned());
    if let Some(prompt) = &prompt
        && !(1..=MAX_PROMPT_CHARS).contains(&char_len(prompt))
    {
        body.reject(
            "prompt",
            format!("must be 1 to {MAX_PROMPT_CHARS} characters"),
        );
    }
    let mut choice =
        |field: &str, allowed: &[&str], default: &str| match body.optional_string(field) {
            None => default.to_owned(),
            Some(value) if allowed.contains(&value.as_str()) => value,
            Some(_) => {
                body.reject(field, format!("must be one of: {}", allowed.join(", ")));
                default.to_owned()
            }
        };
    let genre = choice("genre", GENRES, "adventure");
    let age_group = choice("age_group", AGE_GROUPS, "6-8");
    let pages = body.optional_i64("pages").unwrap_or(5);
    if !body.has_error("pages") && !(1..=12).contains(&pages) {
        body.reject("pages", "must be an integer from 1 to 12");
    }
    body.finish()?;
    let prompt = prompt.unwrap_or_default();
    check_profanity(&tools.profanity, [("prompt", prompt.as_str())])?;
    let request = GenerateRequest {
        prompt,
        genre: genre.clone(),
        age_group: age_group.clone(),
        pages: pages as usize,
    };
    let generated = tools.generator.generate(&request).await.map_err(|error| {
        tracing::warn!(%error, generator = tools.generator.name(), "story generation failed");
        ApiError::Unavailable {
            code: "generator_unavailable",
            message: "the story generator is not available right now; try again later".into(),
        }
    })?;
    let pages: Vec<StoryPage> = generated
        .pages
        .into_iter()
        .map(|text| StoryPage {
            text,
            drawing_id: None,
        })
        .collect();
    let changes = StoryChanges {
        title: Some(generated.title.clone()),
        pages: Some(pages.clone()),
        ..StoryChanges::default()
    };
    // A model can say anything: its words pass the same filter as a child's.
    if check_story_profanity(&tools, &changes).await.is_err() {
        return Err(ApiError::Unavailable {
            code: "generator_unavailable",
            message: "the generated story did not pass the word filter; try another prompt".into(),
        });
    }
    let story = store
        .create_story(&NewStory {
            author_id: user.id,
            title: generated.title,
            pages,
            genre,
            age_group,
            tags: Vec::new(),
            status: StoryStatus::Draft,
            source: StorySource::Ai,
        })
        .await?;
    caches.reads.invalidate_library();
    Ok((StatusCode::CREATED, Json(story_json(&story, false))))
}

/// Unknown parts named in one answer; more are read past.
const MAX_NAMED_PARTS: usize = 50;

/// Reads the multipart form: the image (bounded) and an optional title.
async fn read_form(
    request: Request,
    max_image_bytes: usize,
) -> ApiResult<(Option<Vec<u8>>, Option<String>, FieldErrors)> {
    // The upload is metered as it arrives: past the memory budget, a
    // failed read means `busy`.
    let admitted = Admitted::of(&request)?;
    let mut form = Multipart::from_request(request, &()).await.map_err(|_| {
        ApiError::UnsupportedMediaType("expected multipart/form-data with an image part".into())
    })?;
    let mut image = None;
    let mut title = None;
    let mut unknown = FieldErrors::new();
    let too_large = |e: axum::extract::multipart::MultipartError| {
        let otherwise = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(e.body_text())
        };
        admission::read_error(&admitted, otherwise)
    };
    while let Some(mut field) = form.next_field().await.map_err(too_large)? {
        match field.name() {
            Some("image") => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(too_large)? {
                    if bytes.len() + chunk.len() > max_image_bytes {
                        return Err(ApiError::PayloadTooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                image = Some(bytes);
            }
            Some("title") => {
                let text = field.text().await.map_err(too_large)?;
                title = Some(text.trim().to_owned());
            }
            // Like an unknown JSON field elsewhere, an unknown part is
            // refused rather than silently dropped (its bytes are read
            // past, never kept), and named with every other bad field.
            other => {
                let name = other.filter(|n| !n.is_empty()).unwrap_or("part");
                if unknown.len() < MAX_NAMED_PARTS {
                    unknown.insert(
                        name.to_owned(),
                        "is not a known part (expected image and title)".to_owned(),
                    );
                }
                while field.chunk().await.map_err(too_large)?.is_some() {}
            }
        }
    }
    Ok((image, title, unknown))
}

/// Stories: `POST /api/stories/from-photo`.
async fn from_photo(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    AuthUser(user): AuthUser,
    request: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (image, title, mut bad) = read_form(request, tools.ocr.max_bytes()).await?;
    let image = image.filter(|i| !i.is_empty());
    if image.is_none() {
        bad.insert("image".into(), "is required: a PNG or JPEG file".into());
    }
    let (Some(image), true) = (image, bad.is_empty()) else {
        return Err(ApiError::Validation(bad));
    };
    let title = title
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "My photo story".to_owned());
    if char_len(&title) > MAX_TITLE_CHARS {
        let why = format!("must be at most {MAX_TITLE_CHARS} characters");
        return Err(ApiError::field("title", &why));
    }
    check_profanity(&tools.profanity, [("title", title.as_str())])?;
    // The contract's order: 413, then 415, then 503, then 422.
    storybook_ocr::check(&image, tools.ocr.max_pixels()).map_err(ocr_error)?;
    let text = tools.ocr.recognize(image).await.map_err(ocr_error)?;
    let pages = paginate(&text);
    if pages.is_empty() {
        return Err(ocr_error(OcrError::NoText));
    }
    let changes = StoryChanges {
        pages: Some(pages.clone()),
        ..StoryChanges::default()
    };
    check_story_profanity(&tools, &changes).await?;
    let story = store
        .create_story(&NewStory {
            author_id: user.id,
            title,
            pages,
            genre: "other".into(),
            age_group: "6-8".into(),
            tags: Vec::new(),
            status: StoryStatus::Draft,
            source: StorySource::Photo,
        })
        .await?;
    caches.reads.invalidate_library();
    Ok((StatusCode::CREATED, Json(story_json(&story, false))))
}

fn ocr_error(error: OcrError) -> ApiError {
    match error {
        OcrError::TooManyPixels(_) => ApiError::PayloadTooLarge,
        OcrError::UnsupportedFormat => {
            ApiError::UnsupportedMediaType("the image must be PNG or JPEG".into())
        }
        OcrError::Unavailable => ApiError::Unavailable {
            code: "ocr_unavailable",
            message: "text recognition is not available on this server".into(),
        },
        OcrError::NoText => ApiError::Unprocessable {
            code: "no_text",
            message: "no text was recognised in the image".into(),
        },
        OcrError::BadImage(why) => ApiError::field("image", &format!("could not be read: {why}")),
        OcrError::Failed(why) => {
            tracing::warn!(%why, "text recognition failed");
            ApiError::Unavailable {
                code: "ocr_unavailable",
                message: "text recognition failed; try again".into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::paginate;

    #[test]
    fn pages_gather_paragraphs_and_split_long_ones() {
        assert_eq!(paginate("One.\n\nTwo.").len(), 1);
        let long = "a".repeat(12_000);
        let pages = paginate(&long);
        assert_eq!(pages.len(), 3);
        assert!(pages.iter().all(|p| p.text.chars().count() <= 5_000));
        assert!(paginate("   ").is_empty());
    }
}
