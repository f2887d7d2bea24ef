//! A drawing's input rules: title, background, canvas sides and strokes,
//! each read field by field so every bad field is named.

use storybook_canvas::{
    MAX_SIDE, MAX_STROKES, MIN_SIDE, Stroke, StrokesDraft, check_stroke, is_color,
};

use crate::validate::{Fields, char_len};

const MAX_TITLE_CHARS: usize = 120;
pub(super) fn title_field(body: &mut Fields, required: bool) -> Option<String> {
    let title = if required {
        body.required_string("title")
    } else {
        body.optional_string("title")
    }?;
    let title = title.trim().to_owned();
    if (1..=MAX_TITLE_CHARS).contains(&char_len(&title)) {
        Some(title)
    } else {
        body.reject(
            "title",
            format!("must be 1 to {MAX_TITLE_CHARS} characters"),
        );
        None
    }
}

pub(super) fn background_field(body: &mut Fields) -> Option<String> {
    let background = body.optional_string("background")?;
    if is_color(&background) {
        Some(background.to_ascii_lowercase())
    } else {
        body.reject("background", "must be a colour like #ffffff");
        None
    }
}

/// Reads `strokes` (an array) against a canvas size, naming each bad one.
/// Repeated ids in one request keep the first.
pub(super) fn strokes_field(
    body: &mut Fields,
    strokes: Option<&StrokesDraft>,
    width: u32,
    height: u32,
    required: bool,
) -> Vec<Stroke> {
    let (drafts, count) = match strokes {
        None if !required => return Vec::new(),
        Some(StrokesDraft::Strokes { strokes, count }) => (strokes, *count),
        Some(StrokesDraft::TooLarge) => {
            body.reject(
                "strokes",
                "take more memory than the body's size allows: most are empty or malformed",
            );
            return Vec::new();
        }
        _ => {
            body.reject("strokes", "must be an array of strokes");
            return Vec::new();
        }
    };
    if count > MAX_STROKES {
        body.reject(
            "strokes",
            format!("must have at most {MAX_STROKES} strokes"),
        );
        return Vec::new();
    }
    let mut problems = Vec::new();
    let mut checked: Vec<Stroke> = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.iter().enumerate() {
        if let Some(stroke) = check_stroke(
            draft,
            width,
            height,
            &format!("strokes.{index}"),
            &mut problems,
        ) && !checked.iter().any(|s| s.id == stroke.id)
        {
            checked.push(stroke);
        }
    }
    for (field, why) in problems {
        body.reject(field, why);
    }
    checked
}

pub(super) fn side_field(body: &mut Fields, field: &str) -> Option<u32> {
    let side = body.required_i64(field)?;
    if (i64::from(MIN_SIDE)..=i64::from(MAX_SIDE)).contains(&side) {
        Some(side as u32)
    } else {
        body.reject(
            field,
            format!("must be an integer from {MIN_SIDE} to {MAX_SIDE}"),
        );
        None
    }
}
