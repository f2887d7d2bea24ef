//! Strokes as they are read from a request, before they are checked.
//!
//! A body of strokes is mostly points, and a point read as a JSON value is
//! a tree of three allocations: a 1 MiB stroke list became about 47 MiB of
//! small blocks that the allocator then could not give back. A draft reads
//! each stroke's points straight into one vector of number pairs, and its
//! small fields (`id`, `tool`, `color`, `width`) into [`Scalar`]s: a text,
//! a number, or "wrong", where whatever else came (an array, an object) is
//! skipped without being built. What a draft keeps is charged against a
//! memory limit as it is read ([`StrokesSeed`]): past it, the rest of the
//! strokes is skipped and the draft says so, so no shape of body builds
//! more than its route reserved. Every rule and message stays in
//! [`check`], so a draft read from a body and one read from a JSON value (a
//! realtime publish) are judged alike.

use std::mem::size_of;

use serde::Deserialize;
use serde_json::Value;

use crate::{MAX_POINTS, MAX_STROKE_ID_CHARS, MAX_WIDTH, MIN_WIDTH, Stroke, Tool, is_color};

/// Longest text a stroke's small field keeps, in bytes: more than any of
/// them accepts (an id is at most 64 characters), so a longer one is
/// judged wrong without being copied.
const MAX_SCALAR_BYTES: usize = 4 * MAX_STROKE_ID_CHARS;

/// A small field as read: never a tree.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Scalar {
    /// The field was not there.
    #[default]
    Missing,
    Text(Box<str>),
    Number(f64),
    /// Anything else (an array, an object, `null`, `true`, a text too long
    /// for any stroke field): read past without being kept.
    Wrong,
}

impl Scalar {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(number) => Some(*number),
            _ => None,
        }
    }

    /// Heap bytes it holds.
    fn heap_bytes(&self) -> usize {
        self.as_str().map_or(0, str::len)
    }
}

/// One stroke as read. A stroke that is wrong whatever the canvas (a bad
/// id, tool, colour or width, points that are not 1 to `MAX_POINTS`
/// pairs) is kept only as the list of what is wrong with it, so a body of
/// ten thousand `{}` keeps 16 bytes a stroke, not a draft each.
#[derive(Debug, Clone, PartialEq)]
pub enum StrokeDraft {
    /// The item was not a JSON object.
    NotAnObject,
    /// An object that cannot be a stroke: which of its fields are wrong,
    /// and where its points lie (so an off-canvas point is still named).
    Wrong(Faults, Extent),
    /// An object whose fields may make a stroke on some canvas.
    Object(Box<StrokeFields>),
}

/// A stroke object's fields as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StrokeFields {
    pub id: Scalar,
    pub tool: Scalar,
    pub color: Scalar,
    pub width: Scalar,
    pub points: PointsDraft,
}

/// The smallest and largest x and y of a stroke's points: all a wrong
/// stroke keeps of them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extent {
    min: [f32; 2],
    max: [f32; 2],
}

impl Extent {
    fn of(pairs: &[[f64; 2]]) -> Self {
        let mut extent = Self {
            min: [f32::MAX; 2],
            max: [f32::MIN; 2],
        };
        for [x, y] in pairs {
            let (x, y) = (*x as f32, *y as f32);
            extent.min = [extent.min[0].min(x), extent.min[1].min(y)];
            extent.max = [extent.max[0].max(x), extent.max[1].max(y)];
        }
        extent
    }

    fn on(self, width: u32, height: u32) -> bool {
        self.min[0] >= 0.0
            && self.min[1] >= 0.0
            && self.max[0] <= width as f32
            && self.max[1] <= height as f32
    }
}

/// Which fields of a stroke are wrong whatever the canvas (one bit each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults(u8);

impl Faults {
    const ID: u8 = 1;
    const TOOL: u8 = 2;
    const COLOR: u8 = 4;
    const WIDTH: u8 = 8;
    /// Not an array of 1 to `MAX_POINTS` items.
    const POINTS_COUNT: u8 = 16;
    /// An item that is not two numbers.
    const POINTS_SHAPE: u8 = 32;

    fn has(self, fault: u8) -> bool {
        self.0 & fault != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Pushes each fault as `(field, why)` under `prefix`, with the
    /// messages `check` gives.
    fn report(
        self,
        extent: Extent,
        width: u32,
        height: u32,
        prefix: &str,
        problems: &mut Vec<(String, String)>,
    ) {
        let mut problem =
            |field: &str, why: String| problems.push((format!("{prefix}.{field}"), why));
        if self.has(Self::ID) {
            problem(
                "id",
                format!("must be a string of 1 to {MAX_STROKE_ID_CHARS} characters"),
            );
        }
        if self.has(Self::TOOL) {
            problem("tool", "must be pen, eraser or highlighter".into());
        }
        if self.has(Self::COLOR) {
            problem("color", "must be a colour like #1a2b3c".into());
        }
        if self.has(Self::WIDTH) {
            problem(
                "width",
                format!("must be a number from {MIN_WIDTH} to {MAX_WIDTH}"),
            );
        }
        if self.has(Self::POINTS_COUNT) {
            problem(
                "points",
                format!("must be an array of 1 to {MAX_POINTS} [x, y] points"),
            );
        } else if self.has(Self::POINTS_SHAPE) || !extent.on(width, height) {
            problem("points", off_canvas(width, height));
        }
    }
}

fn off_canvas(width: u32, height: u32) -> String {
    format!("must be [x, y] pairs with 0 <= x <= {width} and 0 <= y <= {height}")
}

impl StrokeFields {
    /// What is wrong with these fields whatever the canvas.
    pub fn faults(&self) -> Faults {
        let mut faults = 0;
        if !matches!(&self.id, Scalar::Text(id) if !id.is_empty() && id.chars().count() <= MAX_STROKE_ID_CHARS)
        {
            faults |= Faults::ID;
        }
        if self.tool.as_str().and_then(Tool::parse).is_none() {
            faults |= Faults::TOOL;
        }
        if !self.color.as_str().is_some_and(is_color) {
            faults |= Faults::COLOR;
        }
        if !self
            .width
            .as_f64()
            .is_some_and(|w| (MIN_WIDTH..=MAX_WIDTH).contains(&w))
        {
            faults |= Faults::WIDTH;
        }
        match &self.points {
            PointsDraft::Pairs {
                count, malformed, ..
            } if (1..=MAX_POINTS).contains(count) => {
                if *malformed {
                    faults |= Faults::POINTS_SHAPE;
                }
            }
            _ => faults |= Faults::POINTS_COUNT,
        }
        Faults(faults)
    }

    /// Heap bytes it holds.
    fn heap_bytes(&self) -> usize {
        let pairs = match &self.points {
            PointsDraft::Pairs { pairs, .. } => pairs.capacity() * size_of::<[f64; 2]>(),
            PointsDraft::NotAnArray => 0,
        };
        self.id.heap_bytes()
            + self.tool.heap_bytes()
            + self.color.heap_bytes()
            + self.width.heap_bytes()
            + pairs
    }
}

/// A stroke's `points` as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PointsDraft {
    /// Absent, or not an array.
    #[default]
    NotAnArray,
    Pairs {
        /// At most `MAX_POINTS` + 1 are kept: one more says "too many".
        pairs: Vec<[f64; 2]>,
        /// How many items the array had.
        count: usize,
        /// Whether an item was not two numbers.
        malformed: bool,
    },
}

/// A body's `strokes` as read.
#[derive(Debug, Clone, PartialEq)]
pub enum StrokesDraft {
    NotAnArray,
    /// At most `MAX_STROKES` + 1 are kept; `count` says how many there were.
    Strokes {
        strokes: Vec<StrokeDraft>,
        count: usize,
    },
    /// Keeping the strokes would have taken more memory than the read was
    /// allowed (only a body of mostly empty or malformed strokes does).
    TooLarge,
}

impl StrokeDraft {
    /// A draft of a stroke already parsed as a JSON value.
    pub fn from_value(value: &Value) -> Self {
        Self::deserialize(value).unwrap_or(Self::NotAnObject)
    }

    /// The draft of an object's fields: only its faults if it has any.
    pub fn of_fields(fields: StrokeFields) -> Self {
        let faults = fields.faults();
        if faults.is_empty() {
            return Self::Object(Box::new(fields));
        }
        let extent = match &fields.points {
            PointsDraft::Pairs { pairs, .. } => Extent::of(pairs),
            PointsDraft::NotAnArray => Extent::default(),
        };
        Self::Wrong(faults, extent)
    }

    /// Bytes of heap this draft holds (its slot in a vector aside).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::NotAnObject | Self::Wrong(..) => 0,
            Self::Object(fields) => size_of::<StrokeFields>() + fields.heap_bytes(),
        }
    }
}

/// Checks one stroke against a canvas of `width` × `height`. Problems are
/// pushed as `(field, why)` with fields named under `prefix` (`strokes.3`).
pub fn check(
    draft: &StrokeDraft,
    width: u32,
    height: u32,
    prefix: &str,
    problems: &mut Vec<(String, String)>,
) -> Option<Stroke> {
    let fields = match draft {
        StrokeDraft::NotAnObject => {
            problems.push((prefix.to_owned(), "must be a stroke object".into()));
            return None;
        }
        StrokeDraft::Wrong(faults, extent) => {
            faults.report(*extent, width, height, prefix, problems);
            return None;
        }
        StrokeDraft::Object(fields) => fields,
    };
    let PointsDraft::Pairs { pairs, .. } = &fields.points else {
        return None;
    };
    let faults = fields.faults();
    if !faults.is_empty() {
        faults.report(Extent::of(pairs), width, height, prefix, problems);
        return None;
    }
    let on_canvas = |[x, y]: &[f64; 2]| {
        (0.0..=f64::from(width)).contains(x) && (0.0..=f64::from(height)).contains(y)
    };
    if !pairs.iter().all(on_canvas) {
        problems.push((format!("{prefix}.points"), off_canvas(width, height)));
        return None;
    }
    Some(Stroke {
        id: fields.id.as_str()?.to_owned(),
        tool: fields.tool.as_str().and_then(Tool::parse)?,
        color: fields.color.as_str()?.to_ascii_lowercase(),
        width: fields.width.as_f64()?,
        points: pairs.iter().map(|[x, y]| [*x as f32, *y as f32]).collect(),
    })
}

mod read;

pub use read::StrokesSeed;

#[cfg(test)]
mod tests;
