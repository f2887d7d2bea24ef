//! Contract section "Profanity": `POST /api/profanity/check`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{ApiRouter, Doc};
use crate::error::ApiResult;
use crate::extract::JsonFields;
use crate::state::Tools;
use crate::validate::char_len;

/// The longest text the check accepts, in characters.
const MAX_TEXT_CHARS: usize = 10_000;

pub fn router() -> ApiRouter {
    ApiRouter::new("profanity").post(
        "/api/profanity/check",
        check,
        Doc::new("Check a text: matches with code-point offsets and the masked text")
            .body("ProfanityCheck")
            .returns(200, Some("ProfanityReport")),
    )
}

/// Profanity: `POST /api/profanity/check`.
async fn check(
    State(tools): State<Tools>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    let text = body.required_string("text");
    if let Some(text) = &text
        && char_len(text) > MAX_TEXT_CHARS
    {
        body.reject(
            "text",
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        );
    }
    body.finish()?;
    let text = text.unwrap_or_default();
    let report = tools.profanity.check(&text);
    let matches: Vec<Value> = report
        .matches
        .iter()
        .map(|m| json!({ "start": m.start, "end": m.end, "word": m.word }))
        .collect();
    Ok(Json(json!({
        "clean": report.is_clean(),
        "censored": report.censored,
        "matches": matches,
    })))
}
