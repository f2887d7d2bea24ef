//! Drawings without web types: the contract's stroke rules and a renderer
//! to PNG. The stroke model and its stored encoding are `storybook-strokes`
//! (re-exported here), so storage can use them without the rasteriser.

mod draft;
mod render;

pub use draft::{
    PointsDraft, Scalar, StrokeDraft, StrokesDraft, StrokesSeed, check as check_stroke,
};
pub use render::{Canvas, Stopped, output_size, render_png};
use serde_json::Value;
pub use storybook_strokes::*;

/// Reads and checks one stroke from JSON against a canvas of
/// `width` × `height`. Problems are pushed as `(field, why)` with fields
/// named under `prefix` (`strokes.3`).
pub fn parse_stroke(
    value: &Value,
    width: u32,
    height: u32,
    prefix: &str,
    problems: &mut Vec<(String, String)>,
) -> Option<Stroke> {
    draft::check(
        &StrokeDraft::from_value(value),
        width,
        height,
        prefix,
        problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> (Option<Stroke>, Vec<String>) {
        let mut problems = Vec::new();
        let stroke = parse_stroke(&value, 100, 50, "strokes.0", &mut problems);
        (stroke, problems.into_iter().map(|p| p.0).collect())
    }

    #[test]
    fn a_good_stroke() {
        let (stroke, problems) = parse(
            json!({"id": "a", "tool": "pen", "color": "#FF0000", "width": 3, "points": [[0, 0], [100, 50]]}),
        );
        assert!(problems.is_empty());
        let stroke = stroke.unwrap();
        assert_eq!(stroke.color, "#ff0000");
        assert_eq!(stroke.points, vec![[0.0, 0.0], [100.0, 50.0]]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let (stroke, problems) = parse(
            json!({"id": "", "tool": "crayon", "color": "red", "width": 0.1, "points": [[101, 0]]}),
        );
        assert!(stroke.is_none());
        assert_eq!(
            problems,
            [
                "strokes.0.id",
                "strokes.0.tool",
                "strokes.0.color",
                "strokes.0.width",
                "strokes.0.points"
            ]
        );
        let too_many = json!({"id": "x", "tool": "pen", "color": "#000000", "width": 1, "points": vec![[1, 1]; 2001]});
        assert_eq!(parse(too_many).1, ["strokes.0.points"]);
        assert_eq!(parse(json!("nope")).1, ["strokes.0"]);
        let long_id = json!({"id": "i".repeat(65), "tool": "pen", "color": "#000000", "width": 1, "points": [[1, 1]]});
        assert_eq!(parse(long_id).1, ["strokes.0.id"]);
    }
}
