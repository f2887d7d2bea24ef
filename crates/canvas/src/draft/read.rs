//! Reading drafts from JSON: visitors that keep what a stroke needs and
//! read past everything else without building it.

use std::fmt;
use std::mem::size_of;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{MAX_SCALAR_BYTES, PointsDraft, Scalar, StrokeDraft, StrokeFields, StrokesDraft};
use crate::{MAX_POINTS, MAX_STROKES};

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
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// Implements the visitor methods for arrays and objects, read past
/// without being built and answering `$other`.
macro_rules! trees_are {
    ($other:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_rest(seq)?;
            Ok($other)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            skip_map(map)?;
            Ok($other)
        }
    };
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Small;
        impl<'de> Visitor<'de> for Small {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a text or a number")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Scalar, E> {
                Ok(if text.len() <= MAX_SCALAR_BYTES {
                    Scalar::Text(text.into())
                } else {
                    Scalar::Wrong
                })
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(number as f64))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(number as f64))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(number))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Wrong)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Wrong)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Wrong)
            }
            trees_are!(Scalar::Wrong);
        }
        deserializer.deserialize_any(Small)
    }
}

/// One point: exactly two numbers, or `None` (read past, never built).
struct Point(Option<[f64; 2]>);

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pair;
        impl<'de> Visitor<'de> for Pair {
            type Value = Point;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an [x, y] point")
            }
            anything_else_is!(Point(None));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Point, A::Error> {
                skip_map(map)?;
                Ok(Point(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Point, A::Error> {
                let x = seq.next_element::<Scalar>()?;
                let y = match x {
                    Some(_) => seq.next_element::<Scalar>()?,
                    None => None,
                };
                let more = match y {
                    Some(_) => seq.next_element::<IgnoredAny>()?.is_some(),
                    None => false,
                };
                if more {
                    skip_rest(seq)?;
                }
                Ok(
                    match (
                        x.as_ref().and_then(Scalar::as_f64),
                        y.as_ref().and_then(Scalar::as_f64),
                    ) {
                        (Some(x), Some(y)) if !more => Point(Some([x, y])),
                        _ => Point(None),
                    },
                )
            }
        }
        deserializer.deserialize_any(Pair)
    }
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
                while let Some(Point(point)) = seq.next_element::<Point>()? {
                    count += 1;
                    match point {
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
                let mut fields = StrokeFields::default();
                while let Some(key) = map.next_key::<FieldName>()? {
                    match key {
                        FieldName::Id => fields.id = map.next_value::<Scalar>()?,
                        FieldName::Tool => fields.tool = map.next_value::<Scalar>()?,
                        FieldName::Color => fields.color = map.next_value::<Scalar>()?,
                        FieldName::Width => fields.width = map.next_value::<Scalar>()?,
                        FieldName::Points => fields.points = map.next_value::<PointsDraft>()?,
                        FieldName::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(StrokeDraft::of_fields(fields))
            }
        }
        deserializer.deserialize_any(Draft)
    }
}

/// A stroke object's key, recognised without keeping it.
enum FieldName {
    Id,
    Tool,
    Color,
    Width,
    Points,
    Other,
}

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = FieldName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<FieldName, E> {
                Ok(match name {
                    "id" => FieldName::Id,
                    "tool" => FieldName::Tool,
                    "color" => FieldName::Color,
                    "width" => FieldName::Width,
                    "points" => FieldName::Points,
                    _ => FieldName::Other,
                })
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

/// Reads a body's `strokes` keeping at most `memory_limit` bytes of drafts
/// (their vector's slots included); past it the rest is skipped and the
/// answer is [`StrokesDraft::TooLarge`].
#[derive(Debug, Clone, Copy)]
pub struct StrokesSeed {
    pub memory_limit: usize,
}

impl StrokesSeed {
    /// What keeping every stroke the API accepts may take: the limit for a
    /// draft read from anywhere else than a weighed body.
    pub const UNBOUNDED: Self = Self {
        memory_limit: usize::MAX,
    };
}

impl<'de> Deserialize<'de> for StrokesDraft {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StrokesSeed::UNBOUNDED.deserialize(deserializer)
    }
}

impl<'de> Visitor<'de> for StrokesSeed {
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
        let mut strokes: Vec<StrokeDraft> = Vec::new();
        let mut count = 0;
        // The drafts' heap, their slots aside (charged by capacity).
        let mut held = 0usize;
        while count <= MAX_STROKES {
            let Some(stroke) = seq.next_element::<StrokeDraft>()? else {
                return Ok(StrokesDraft::Strokes { strokes, count });
            };
            held += stroke.heap_bytes();
            strokes.push(stroke);
            count += 1;
            let slots = strokes.capacity() * size_of::<StrokeDraft>();
            if held.saturating_add(slots) > self.memory_limit {
                drop(strokes);
                skip_rest(seq)?;
                return Ok(StrokesDraft::TooLarge);
            }
        }
        // Too many already: the rest is only counted past.
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(StrokesDraft::Strokes { strokes, count })
    }
}

impl<'de> DeserializeSeed<'de> for StrokesSeed {
    type Value = StrokesDraft;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<StrokesDraft, D::Error> {
        deserializer.deserialize_any(self)
    }
}
