//! Strokes as they are read from a request, before they are checked.
//!
//! A body of strokes is mostly points, and a point read as a JSON value is
//! a tree of three allocations: a 1 MiB stroke list became about 47 MiB of
//! small blocks that the allocator then could not give back. A draft reads
//! each stroke's points straight into one vector of number pairs (16 bytes
//! a point) as the JSON is parsed; only the few other fields stay JSON
//! values. Every rule and message stays in [`check`], so a draft read from
//! a body and one made from a JSON value (a realtime publish) are judged
//! alike.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::{
    MAX_POINTS, MAX_STROKE_ID_CHARS, MAX_STROKES, MAX_WIDTH, MIN_WIDTH, Stroke, Tool, is_color,
};

/// One stroke as read: its small fields as they came, its points as pairs.
#[derive(Debug, Clone, PartialEq)]
pub enum StrokeDraft {
    /// The item was not a JSON object.
    NotAnObject,
    Object {
        id: Option<Value>,
        tool: Option<Value>,
        color: Option<Value>,
        width: Option<Value>,
        points: PointsDraft,
    },
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
}

fn pair_of(item: &Value) -> Option<[f64; 2]> {
    let pair = item.as_array().filter(|p| p.len() == 2)?;
    Some([pair[0].as_f64()?, pair[1].as_f64()?])
}

impl StrokeDraft {
    /// A draft of a stroke already parsed as a JSON value.
    pub fn from_value(value: &Value) -> Self {
        let Value::Object(object) = value else {
            return Self::NotAnObject;
        };
        let points = match object.get("points") {
            Some(Value::Array(items)) => PointsDraft::Pairs {
                pairs: items
                    .iter()
                    .take(MAX_POINTS + 1)
                    .filter_map(pair_of)
                    .collect(),
                count: items.len(),
                malformed: items.iter().any(|item| pair_of(item).is_none()),
            },
            _ => PointsDraft::NotAnArray,
        };
        Self::Object {
            id: object.get("id").cloned(),
            tool: object.get("tool").cloned(),
            color: object.get("color").cloned(),
            width: object.get("width").cloned(),
            points,
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
    let StrokeDraft::Object {
        id,
        tool,
        color,
        width: stroke_width,
        points,
    } = draft
    else {
        problems.push((prefix.to_owned(), "must be a stroke object".into()));
        return None;
    };
    let before = problems.len();
    let mut problem = |field: &str, why: String| problems.push((format!("{prefix}.{field}"), why));
    let id = match id {
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_STROKE_ID_CHARS => {
            Some(id.clone())
        }
        _ => {
            problem(
                "id",
                format!("must be a string of 1 to {MAX_STROKE_ID_CHARS} characters"),
            );
            None
        }
    };
    let tool = match tool.as_ref().and_then(Value::as_str).and_then(Tool::parse) {
        Some(tool) => Some(tool),
        None => {
            problem("tool", "must be pen, eraser or highlighter".into());
            None
        }
    };
    let color = match color.as_ref().and_then(Value::as_str) {
        Some(color) if is_color(color) => Some(color.to_ascii_lowercase()),
        _ => {
            problem("color", "must be a colour like #1a2b3c".into());
            None
        }
    };
    let stroke_width = match stroke_width.as_ref().and_then(Value::as_f64) {
        Some(w) if (MIN_WIDTH..=MAX_WIDTH).contains(&w) => Some(w),
        _ => {
            problem(
                "width",
                format!("must be a number from {MIN_WIDTH} to {MAX_WIDTH}"),
            );
            None
        }
    };
    let points = match points {
        PointsDraft::Pairs {
            pairs,
            count,
            malformed,
        } if (1..=MAX_POINTS).contains(count) => {
            let on_canvas = |[x, y]: &[f64; 2]| {
                (0.0..=f64::from(width)).contains(x) && (0.0..=f64::from(height)).contains(y)
            };
            if *malformed || !pairs.iter().all(on_canvas) {
                problem(
                    "points",
                    format!("must be [x, y] pairs with 0 <= x <= {width} and 0 <= y <= {height}"),
                );
                None
            } else {
                Some(pairs.iter().map(|[x, y]| [*x as f32, *y as f32]).collect())
            }
        }
        _ => {
            problem(
                "points",
                format!("must be an array of 1 to {MAX_POINTS} [x, y] points"),
            );
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(Stroke {
        id: id?,
        tool: tool?,
        color: color?,
        width: stroke_width?,
        points: points?,
    })
}

/// Reads any JSON value and drops it: what a draft does with what it does
/// not keep, and with what follows an item it already found wrong.
fn skip_rest<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the visitor methods for every JSON value that is not the one
/// a draft wants, all answering `$other`.
macro_rules! anything_else_is {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

impl<'de> Deserialize<'de> for PointsDraft {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Points;
        impl<'de> Visitor<'de> for Points {
            type Value = PointsDraft;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of [x, y] points")
            }
            anything_else_is!(PointsDraft::NotAnArray);
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map)?;
                Ok(PointsDraft::NotAnArray)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                let mut count = 0;
                let mut malformed = false;
                // A point is a small value, parsed and dropped at once.
                while let Some(item) = seq.next_element::<Value>()? {
                    count += 1;
                    match pair_of(&item) {
                        Some(pair) if pairs.len() <= MAX_POINTS => pairs.push(pair),
                        Some(_) => {}
                        None => malformed = true,
                    }
                }
                Ok(PointsDraft::Pairs {
                    pairs,
                    count,
                    malformed,
                })
            }
        }
        deserializer.deserialize_any(Points)
    }
}

impl<'de> Deserialize<'de> for StrokeDraft {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Draft;
        impl<'de> Visitor<'de> for Draft {
            type Value = StrokeDraft;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a stroke object")
            }
            anything_else_is!(StrokeDraft::NotAnObject);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_rest(seq)?;
                Ok(StrokeDraft::NotAnObject)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut id, mut tool, mut color, mut width) = (None, None, None, None);
                let mut points = PointsDraft::NotAnArray;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => id = Some(map.next_value::<Value>()?),
                        "tool" => tool = Some(map.next_value::<Value>()?),
                        "color" => color = Some(map.next_value::<Value>()?),
                        "width" => width = Some(map.next_value::<Value>()?),
                        "points" => points = map.next_value::<PointsDraft>()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(StrokeDraft::Object {
                    id,
                    tool,
                    color,
                    width,
                    points,
                })
            }
        }
        deserializer.deserialize_any(Draft)
    }
}

impl<'de> Deserialize<'de> for StrokesDraft {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Strokes;
        impl<'de> Visitor<'de> for Strokes {
            type Value = StrokesDraft;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strokes")
            }
            anything_else_is!(StrokesDraft::NotAnArray);
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map)?;
                Ok(StrokesDraft::NotAnArray)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut strokes = Vec::new();
                let mut count = 0;
                while count <= MAX_STROKES {
                    match seq.next_element::<StrokeDraft>()? {
                        Some(stroke) => {
                            strokes.push(stroke);
                            count += 1;
                        }
                        None => return Ok(StrokesDraft::Strokes { strokes, count }),
                    }
                }
                // Too many already: the rest is only counted past.
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(StrokesDraft::Strokes { strokes, count })
            }
        }
        deserializer.deserialize_any(Strokes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A draft read from text and one made from the same JSON value are
    /// the same draft, so both are judged alike.
    #[test]
    fn reading_text_and_converting_a_value_agree() {
        for value in [
            json!({"id": "s1", "tool": "pen", "color": "#FF0000", "width": 4, "points": [[1, 2], [3.5, 4]], "extra": {"a": [1]}}),
            json!({"id": "s2", "points": [[1, 2, 3], "x", [1, 1]]}),
            json!({"points": {"x": 1}}),
            json!([1, 2]),
            json!("stroke"),
            json!({}),
        ] {
            let read: StrokeDraft = serde_json::from_str(&value.to_string()).unwrap();
            assert_eq!(read, StrokeDraft::from_value(&value), "{value}");
        }
    }

    #[test]
    fn check_keeps_the_contract_rules() {
        let mut problems = Vec::new();
        let good = StrokeDraft::from_value(
            &json!({"id": "s1", "tool": "pen", "color": "#FF0000", "width": 4, "points": [[1, 2], [3.5, 4]]}),
        );
        let stroke = check(&good, 10, 10, "strokes.0", &mut problems).unwrap();
        assert_eq!((stroke.color.as_str(), stroke.points.len()), ("#ff0000", 2));
        let off_canvas = StrokeDraft::from_value(
            &json!({"id": "s1", "tool": "pen", "color": "#000000", "width": 4, "points": [[1, 20]]}),
        );
        assert!(check(&off_canvas, 10, 10, "strokes.1", &mut problems).is_none());
        let too_many: Vec<[u32; 2]> = vec![[1, 1]; MAX_POINTS + 1];
        let long = StrokeDraft::from_value(
            &json!({"id": "s1", "tool": "pen", "color": "#000000", "width": 4, "points": too_many}),
        );
        assert!(check(&long, 10, 10, "strokes.2", &mut problems).is_none());
        assert!(
            check(
                &StrokeDraft::NotAnObject,
                10,
                10,
                "strokes.3",
                &mut problems
            )
            .is_none()
        );
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["strokes.1.points", "strokes.2.points", "strokes.3"]
        );
    }

    #[test]
    fn strokes_past_the_limit_are_counted_not_kept() {
        let body = format!("[{}]", vec!["{}"; MAX_STROKES + 50].join(","));
        let StrokesDraft::Strokes { strokes, count } = serde_json::from_str(&body).unwrap() else {
            panic!("an array");
        };
        assert_eq!((strokes.len(), count), (MAX_STROKES + 1, MAX_STROKES + 50));
        let not_array: StrokesDraft = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        assert_eq!(not_array, StrokesDraft::NotAnArray);
    }
}
