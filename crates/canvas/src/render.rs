//! Rendering a drawing to PNG with tiny-skia, at the output size (the
//! transform scales the strokes; no full-size canvas is ever allocated).

use tiny_skia::{
    Color, FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke as SkStroke, Transform,
};

use crate::{Stroke, Tool};

/// Largest side of a rendered image.
pub const MAX_OUTPUT_SIDE: u32 = 1024;
/// Smallest step between drawn points, in output pixels.
const MIN_STEP: f32 = 0.75;
/// How opaque the highlighter is.
const HIGHLIGHTER_ALPHA: u8 = 96;

/// The output size for a canvas and an optional requested width: the
/// aspect ratio is kept and neither side exceeds 1024 px (the smaller
/// scale wins).
pub fn output_size(width: u32, height: u32, requested_width: Option<u32>) -> (u32, u32, f32) {
    let wanted = requested_width.unwrap_or(width) as f32;
    let scale = (wanted / width as f32)
        .min(MAX_OUTPUT_SIDE as f32 / width as f32)
        .min(MAX_OUTPUT_SIDE as f32 / height as f32);
    let out_width = ((width as f32 * scale).round() as u32).clamp(1, MAX_OUTPUT_SIDE);
    let out_height = ((height as f32 * scale).round() as u32).clamp(1, MAX_OUTPUT_SIDE);
    (out_width, out_height, scale)
}

fn parse_color(hex: &str, alpha: u8) -> Color {
    let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    Color::from_rgba8(channel(1), channel(3), channel(5), alpha)
}

/// A canvas being drawn at its output size.
pub struct Canvas {
    pixmap: Pixmap,
    background: String,
    transform: Transform,
    scale: f32,
}

impl Canvas {
    /// `None` only if the size is zero (it never is after [`output_size`]).
    pub fn new(
        width: u32,
        height: u32,
        background: &str,
        requested_width: Option<u32>,
    ) -> Option<Self> {
        let (out_width, out_height, scale) = output_size(width, height, requested_width);
        let mut pixmap = Pixmap::new(out_width, out_height)?;
        pixmap.fill(parse_color(background, 255));
        Some(Self {
            pixmap,
            background: background.to_owned(),
            transform: Transform::from_scale(scale, scale),
            scale,
        })
    }

    /// Draws one stroke: anti-aliased, round caps and joins; the eraser
    /// paints the background, the highlighter is translucent.
    pub fn draw(&mut self, stroke: &Stroke) {
        let color = match stroke.tool {
            Tool::Pen => parse_color(&stroke.color, 255),
            Tool::Eraser => parse_color(&self.background, 255),
            Tool::Highlighter => parse_color(&stroke.color, HIGHLIGHTER_ALPHA),
        };
        let mut paint = Paint::default();
        paint.set_color(color);
        paint.anti_alias = true;
        let [first, rest @ ..] = stroke.points.as_slice() else {
            return;
        };
        if rest.is_empty() {
            // A single point is a dot as wide as the stroke.
            if let Some(dot) =
                PathBuilder::from_circle(first[0], first[1], (stroke.width as f32 / 2.0).max(0.25))
            {
                self.pixmap
                    .fill_path(&dot, &paint, FillRule::Winding, self.transform, None);
            }
            return;
        }
        // Points closer than MIN_STEP output pixels to the last one kept
        // change nothing visible at this size; skipping them keeps a dense
        // 2,000-point stroke drawn at a quarter scale cheap.
        let min_step = MIN_STEP / self.scale.max(f32::EPSILON);
        let mut path = PathBuilder::new();
        path.move_to(first[0], first[1]);
        let mut kept = *first;
        for (i, point) in rest.iter().enumerate() {
            let last = i + 1 == rest.len();
            let (dx, dy) = (point[0] - kept[0], point[1] - kept[1]);
            if last || dx * dx + dy * dy >= min_step * min_step {
                path.line_to(point[0], point[1]);
                kept = *point;
            }
        }
        let Some(path) = path.finish() else { return };
        let line = SkStroke {
            width: stroke.width as f32,
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            ..SkStroke::default()
        };
        self.pixmap
            .stroke_path(&path, &paint, &line, self.transform, None);
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// RGBA of one output pixel (for tests).
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        let p = self.pixmap.pixel(x, y)?.demultiply();
        Some([p.red(), p.green(), p.blue(), p.alpha()])
    }

    pub fn encode_png(&self) -> Result<Vec<u8>, String> {
        self.pixmap.encode_png().map_err(|e| e.to_string())
    }
}

/// Renders a whole drawing held in memory (tests and small drawings).
pub fn render_png(
    width: u32,
    height: u32,
    background: &str,
    strokes: &[Stroke],
    requested_width: Option<u32>,
) -> Result<Vec<u8>, String> {
    let mut canvas =
        Canvas::new(width, height, background, requested_width).ok_or("empty canvas")?;
    for stroke in strokes {
        canvas.draw(stroke);
    }
    canvas.encode_png()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stroke(tool: Tool, color: &str, width: f64, points: Vec<[f32; 2]>) -> Stroke {
        Stroke {
            id: "s".into(),
            tool,
            color: color.into(),
            width,
            points,
        }
    }

    #[test]
    fn sizes_keep_the_aspect_and_the_cap() {
        let size = |w, h, requested| {
            let (out_w, out_h, _) = output_size(w, h, requested);
            (out_w, out_h)
        };
        assert_eq!(size(200, 100, None), (200, 100));
        assert_eq!(size(200, 100, Some(100)), (100, 50));
        assert_eq!(size(4096, 2048, None), (1024, 512));
        assert_eq!(
            size(100, 4000, Some(1000)),
            (26, 1024),
            "the smaller scale wins"
        );
    }

    #[test]
    fn a_red_stroke_is_red_where_it_was_drawn() {
        let mut canvas = Canvas::new(100, 100, "#ffffff", Some(50)).unwrap();
        canvas.draw(&stroke(
            Tool::Pen,
            "#ff0000",
            10.0,
            vec![[10.0, 50.0], [90.0, 50.0]],
        ));
        assert_eq!(
            canvas.pixel(25, 25),
            Some([255, 0, 0, 255]),
            "scaled to half size"
        );
        assert_eq!(canvas.pixel(25, 5), Some([255, 255, 255, 255]));
        canvas.draw(&stroke(
            Tool::Eraser,
            "#000000",
            10.0,
            vec![[50.0, 40.0], [50.0, 60.0]],
        ));
        assert_eq!(
            canvas.pixel(25, 25),
            Some([255, 255, 255, 255]),
            "the eraser paints the background"
        );
        canvas.draw(&stroke(
            Tool::Highlighter,
            "#0000ff",
            10.0,
            vec![[20.0, 50.0], [30.0, 50.0]],
        ));
        let [r, _, b, _] = canvas.pixel(12, 25).unwrap();
        assert!(b > 50 && r > 100, "translucent blue over red: {r} {b}");
        let png = canvas.encode_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
