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

/// Segments stroked as one path; see [`Canvas::stroke_pieces`].
const SEGMENTS_PER_PIECE: usize = 32;

/// Drawing stopped because the caller's check said so (its request ended,
/// or its time ran out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// A canvas being drawn at its output size.
pub struct Canvas {
    pixmap: Pixmap,
    background: String,
    transform: Transform,
    scale: f32,
    /// The points of the stroke being drawn that are far enough apart to
    /// matter (kept between strokes to reuse its allocation).
    kept: Vec<[f32; 2]>,
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
            kept: Vec::new(),
        })
    }

    /// Draws one stroke: anti-aliased, round caps and joins; the eraser
    /// paints the background, the highlighter is translucent.
    ///
    /// `keep_going` is asked before each piece of the stroke (a few
    /// milliseconds of drawing at most): the API accepts drawings (10,000
    /// strokes of 2,000 points) that no rasteriser draws in seconds, so the
    /// caller decides when to stop, and the image then shows the drawing
    /// up to there.
    pub fn draw(
        &mut self,
        stroke: &Stroke,
        keep_going: &mut impl FnMut() -> bool,
    ) -> Result<(), Stopped> {
        let color = match stroke.tool {
            Tool::Pen => parse_color(&stroke.color, 255),
            Tool::Eraser => parse_color(&self.background, 255),
            Tool::Highlighter => parse_color(&stroke.color, HIGHLIGHTER_ALPHA),
        };
        let mut paint = Paint::default();
        paint.set_color(color);
        paint.anti_alias = true;
        let [first, rest @ ..] = stroke.points.as_slice() else {
            return Ok(());
        };
        if !keep_going() {
            return Err(Stopped);
        }
        if rest.is_empty() {
            // A single point is a dot as wide as the stroke.
            if let Some(dot) =
                PathBuilder::from_circle(first[0], first[1], (stroke.width as f32 / 2.0).max(0.25))
            {
                self.pixmap
                    .fill_path(&dot, &paint, FillRule::Winding, self.transform, None);
            }
            return Ok(());
        }
        // Points closer than MIN_STEP output pixels to the last one kept
        // change nothing visible at this size; skipping them keeps a dense
        // 2,000-point stroke drawn at a quarter scale cheap.
        let min_step = MIN_STEP / self.scale.max(f32::EPSILON);
        let mut kept = std::mem::take(&mut self.kept);
        kept.clear();
        kept.push(*first);
        for (i, point) in rest.iter().enumerate() {
            let last_kept = kept[kept.len() - 1];
            let (dx, dy) = (point[0] - last_kept[0], point[1] - last_kept[1]);
            if i + 1 == rest.len() || dx * dx + dy * dy >= min_step * min_step {
                kept.push(*point);
            }
        }
        let drawn = self.stroke_pieces(&kept, stroke.width as f32, &paint, keep_going);
        self.kept = kept;
        drawn
    }

    /// Strokes a polyline a piece of [`SEGMENTS_PER_PIECE`] segments at a
    /// time. Filling a path costs about its edges crossing each row, so one
    /// 2,000-segment path whose segments all span the image crossed every
    /// row 4,000 times (1.3 s a stroke); pieces keep that small, and let
    /// drawing stop between them. Each piece ends in a round cap, which is
    /// what a round join draws there.
    fn stroke_pieces(
        &mut self,
        points: &[[f32; 2]],
        width: f32,
        paint: &Paint,
        keep_going: &mut impl FnMut() -> bool,
    ) -> Result<(), Stopped> {
        let line = SkStroke {
            width,
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            ..SkStroke::default()
        };
        let mut start = 0;
        while start + 1 < points.len() {
            if start > 0 && !keep_going() {
                return Err(Stopped);
            }
            let end = (start + SEGMENTS_PER_PIECE).min(points.len() - 1);
            let mut path = PathBuilder::new();
            path.move_to(points[start][0], points[start][1]);
            for point in &points[start + 1..=end] {
                path.line_to(point[0], point[1]);
            }
            // The outline is made here and filled, rather than handed to
            // `stroke_path`: that draws a stroke thinner than one output
            // pixel as a hairline, a pipeline run per pixel, which made a
            // thin full-width zigzag cost 120 ms a stroke against 5 ms.
            if let Some(outline) = path.finish().and_then(|p| p.stroke(&line, self.scale)) {
                self.pixmap
                    .fill_path(&outline, paint, FillRule::Winding, self.transform, None);
            }
            start = end;
        }
        Ok(())
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
        let _ = canvas.draw(stroke, &mut || true);
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
        let draw = |canvas: &mut Canvas, tool, color, points| {
            canvas
                .draw(&stroke(tool, color, 10.0, points), &mut || true)
                .unwrap()
        };
        draw(
            &mut canvas,
            Tool::Pen,
            "#ff0000",
            vec![[10.0, 50.0], [90.0, 50.0]],
        );
        assert_eq!(
            canvas.pixel(25, 25),
            Some([255, 0, 0, 255]),
            "scaled to half size"
        );
        assert_eq!(canvas.pixel(25, 5), Some([255, 255, 255, 255]));
        draw(
            &mut canvas,
            Tool::Eraser,
            "#000000",
            vec![[50.0, 40.0], [50.0, 60.0]],
        );
        assert_eq!(
            canvas.pixel(25, 25),
            Some([255, 255, 255, 255]),
            "the eraser paints the background"
        );
        draw(
            &mut canvas,
            Tool::Highlighter,
            "#0000ff",
            vec![[20.0, 50.0], [30.0, 50.0]],
        );
        let [r, _, b, _] = canvas.pixel(12, 25).unwrap();
        assert!(b > 50 && r > 100, "translucent blue over red: {r} {b}");
        let png = canvas.encode_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn drawing_stops_between_pieces_when_told() {
        // 100 segments: four pieces of at most 32.
        let zigzag: Vec<[f32; 2]> = (0..101)
            .map(|i| [if i % 2 == 0 { 0.0 } else { 99.0 }, i as f32 * 0.9])
            .collect();
        let mut canvas = Canvas::new(100, 100, "#ffffff", None).unwrap();
        let mut asked = 0;
        let mut two_pieces = || {
            asked += 1;
            asked <= 2
        };
        let drawn = canvas.draw(&stroke(Tool::Pen, "#000000", 1.0, zigzag), &mut two_pieces);
        assert_eq!((drawn, asked), (Err(Stopped), 3));
        assert_ne!(
            canvas.pixel(50, 20),
            Some([255, 255, 255, 255]),
            "the first piece is drawn"
        );
        assert_eq!(
            canvas.pixel(50, 80),
            Some([255, 255, 255, 255]),
            "the last is not"
        );
    }
}
