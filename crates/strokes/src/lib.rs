//! Strokes as the contract defines them (tool, colour, width, points)
//! and as they are stored (points packed 8 bytes each). No rendering and
//! no web types: storage and the renderer both build on this.

use serde::{Deserialize, Serialize};

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

    #[test]
    fn points_round_trip() {
        let points = vec![[0.5, 1.25], [4096.0, 0.0]];
        assert_eq!(decode_points(&encode_points(&points)), points);
        assert_eq!(encode_points(&points).len(), 16);
    }

    #[test]
    fn colours_are_hash_and_six_hex_digits() {
        assert!(is_color("#a0B1c2"));
        assert!(!is_color("a0b1c2") && !is_color("#a0b1c") && !is_color("#a0b1cg"));
    }
}
