//! Drawings without web types: the contract's stroke rules, a compact
//! encoding of points, and a renderer to PNG.

mod draft;
mod render;

pub use draft::{PointsDraft, StrokeDraft, StrokesDraft, check as check_stroke};
pub use render::{Canvas, Stopped, output_size, render_png};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MIN_SIDE: u32 = 16;
pub const MAX_SIDE: u32 = 4096;
pub const MAX_STROKES: usize = 10_000;
pub const MAX_POINTS: usize = 2_000;
pub const MAX_STROKE_ID_CHARS: usize = 64;
pub const MIN_WIDTH: f64 = 0.5;
pub const MAX_WIDTH: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Pen,
    Eraser,
    Highlighter,
}

impl Tool {
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Pen => "pen",
            Tool::Eraser => "eraser",
            Tool::Highlighter => "highlighter",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pen" => Some(Tool::Pen),
            "eraser" => Some(Tool::Eraser),
            "highlighter" => Some(Tool::Highlighter),
            _ => None,
        }
    }
}

/// One stroke, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stroke {
    pub id: String,
    pub tool: Tool,
    /// `#rrggbb`, lowercase.
    pub color: String,
    pub width: f64,
    pub points: Vec<[f32; 2]>,
}

/// Whether `text` is a `#rrggbb` colour.
pub fn is_color(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

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

/// Points as stored: little-endian `f32` pairs, 8 bytes a point (JSON
/// would take about twice that).
pub fn encode_points(points: &[[f32; 2]]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(points.len() * 8);
    for [x, y] in points {
        bytes.extend_from_slice(&x.to_le_bytes());
        bytes.extend_from_slice(&y.to_le_bytes());
    }
    bytes
}

pub fn decode_points(bytes: &[u8]) -> Vec<[f32; 2]> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            [
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            ]
        })
        .collect()
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

    #[test]
    fn points_round_trip() {
        let points = vec![[0.5, 1.25], [4096.0, 0.0]];
        assert_eq!(decode_points(&encode_points(&points)), points);
        assert_eq!(encode_points(&points).len(), 16);
    }
}
