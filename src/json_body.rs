//! JSON request bodies: the media type, the memory each way of reading a
//! body is weighed at, and the readers themselves (a bounded tree for
//! [`JsonFields`], drafts for [`JsonWithStrokes`]).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use storybook_canvas::{StrokesDraft, StrokesSeed};

use crate::admission::{self, Admitted};
use crate::bounded_json::TreeError;
use crate::error::ApiError;
use crate::validate::Fields;

/// A way of reading a JSON body: what it builds, and what that may weigh.
/// The weight is charged to the request's share of the memory budget
/// before the parse starts, and the parse is given the same number as its
/// limit, so what a body is weighed at and what it may build cannot
/// disagree.
pub trait JsonBody: Sized {
    /// Bytes the parse may take per byte of text.
    const EXPANSION: usize;
    /// Bytes the parse may take whatever the text's length (a small body's
    /// fixed costs: a map node, a vector's first slots).
    const FLOOR: usize = 64 * 1024;

    /// What a body of `length` bytes is weighed at while it is parsed.
    fn weight(length: usize) -> usize {
        length
            .saturating_mul(Self::EXPANSION)
            .saturating_add(Self::FLOOR)
    }

    /// Parses `text`, building at most about `memory_limit` bytes.
    fn parse(text: &[u8], memory_limit: usize) -> Result<Self, ApiError>;
}

/// A JSON object body, read as [`Fields`] so handlers can name every bad
/// field. Malformed JSON or a non-JSON content type is `400`; XML and
/// form bodies are `415`; over the body limit is `413`, and so is a body
/// whose tree would take more memory than its weight.
pub struct JsonFields(pub Fields);

/// The tree's own limit is part of the weight: the rest is serde_json's
/// scratch buffer for escaped text (up to twice the longest text) and the
/// handlers' copies of the strings they keep (at most the text once).
const TREE_SHARE_OF_WEIGHT: usize = 12;

impl JsonBody for JsonFields {
    const EXPANSION: usize = 16;

    fn parse(text: &[u8], memory_limit: usize) -> Result<Self, ApiError> {
        let tree_limit = memory_limit / Self::EXPANSION * TREE_SHARE_OF_WEIGHT;
        match crate::bounded_json::parse(text, tree_limit) {
            Ok(value) => Ok(Self(Fields::new(value)?)),
            Err(TreeError::TooLarge) => Err(ApiError::PayloadTooLarge),
            Err(TreeError::Malformed(e)) => Err(malformed(e)),
        }
    }
}

fn malformed(error: serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!("malformed JSON: {error}"))
}

impl<S: Send + Sync> FromRequest<S> for JsonFields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json::<Self, S>(req, state).await
    }
}

/// A JSON object body whose `strokes` are read as drafts (points straight
/// into number pairs, never a tree of values) and whose other fields are
/// read as scalars (arrays and objects there are read past, never built):
/// the drawing routes, where a body is mostly points.
pub struct JsonWithStrokes(pub Fields, pub Option<StrokesDraft>);

/// Other fields a drawing body keeps: more than the routes read, so an
/// unknown one is still named; the rest are counted past.
const MAX_OTHER_FIELDS: usize = 32;

/// A drawing body's field other than `strokes`: a scalar as a JSON value,
/// or an empty array standing for whatever tree came (every such field
/// takes a scalar, so the handler refuses it by its type).
struct OtherField(Value);

impl<'de> Deserialize<'de> for OtherField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Other;
        impl<'de> Visitor<'de> for Other {
            type Value = OtherField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OtherField, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(OtherField(Value::Array(Vec::new())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OtherField, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OtherField(Value::Array(Vec::new())))
            }
            fn visit_bool<E: serde::de::Error>(self, flag: bool) -> Result<OtherField, E> {
                Ok(OtherField(Value::Bool(flag)))
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<OtherField, E> {
                Ok(OtherField(Value::from(number)))
            }
            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<OtherField, E> {
                Ok(OtherField(Value::from(number)))
            }
            fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<OtherField, E> {
                Ok(OtherField(Value::from(number)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<OtherField, E> {
                Ok(OtherField(Value::String(text.to_owned())))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<OtherField, E> {
                Ok(OtherField(Value::Null))
            }
        }
        deserializer.deserialize_any(Other)
    }
}

/// What [`JsonWithStrokes`] reads: the other fields, and the strokes.
enum StrokesBody {
    NotAnObject,
    Object {
        fields: Map<String, Value>,
        strokes: Option<StrokesDraft>,
        /// Other fields past [`MAX_OTHER_FIELDS`], counted and dropped.
        dropped: usize,
    },
}

/// Reads a [`StrokesBody`] whose drafts keep at most `strokes_limit` bytes.
struct StrokesBodySeed {
    strokes_limit: usize,
}

impl<'de> DeserializeSeed<'de> for StrokesBodySeed {
    type Value = StrokesBody;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<StrokesBody, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrokesBodySeed {
    type Value = StrokesBody;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        let mut strokes = None;
        let mut dropped = 0;
        while let Some(key) = map.next_key::<String>()? {
            if key == "strokes" {
                let seed = StrokesSeed {
                    memory_limit: self.strokes_limit,
                };
                strokes = Some(map.next_value_seed(seed)?);
            } else if fields.len() < MAX_OTHER_FIELDS || fields.contains_key(&key) {
                fields.insert(key, map.next_value::<OtherField>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
                dropped += 1;
            }
        }
        Ok(StrokesBody::Object {
            fields,
            strokes,
            dropped,
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(StrokesBody::NotAnObject)
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(StrokesBody::NotAnObject)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(StrokesBody::NotAnObject)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(StrokesBody::NotAnObject)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(StrokesBody::NotAnObject)
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(StrokesBody::NotAnObject)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(StrokesBody::NotAnObject)
    }
}

/// The drafts' own limit is part of the weight: the rest is the checked
/// strokes the handler makes of them (8 bytes a point of at least 6 bytes
/// of text) and the other fields' few values.
const DRAFTS_SHARE_OF_WEIGHT: usize = 6;

impl JsonBody for JsonWithStrokes {
    /// A point is at least 6 bytes of text (`[0,0],`) and 16 bytes as a
    /// pair, 32 while its vector grows: about 5.3 times its text.
    const EXPANSION: usize = 8;
    /// Room for every stroke the API takes as a wrong one (a body of
    /// `MAX_STROKES` `{}` is 30 KB of text and 16 bytes a stroke, twice
    /// while the vector grows), so such a body is answered naming 50 of
    /// them rather than as too large.
    const FLOOR: usize = 512 * 1024;

    fn parse(text: &[u8], memory_limit: usize) -> Result<Self, ApiError> {
        let seed = StrokesBodySeed {
            strokes_limit: memory_limit / Self::EXPANSION * DRAFTS_SHARE_OF_WEIGHT,
        };
        let mut json = serde_json::Deserializer::from_slice(text);
        let body = seed
            .deserialize(&mut json)
            .and_then(|body| json.end().map(|()| body))
            .map_err(malformed)?;
        match body {
            StrokesBody::Object {
                fields,
                strokes,
                dropped,
            } => {
                let mut fields = Fields::new(Value::Object(fields))?;
                if dropped > 0 {
                    fields.reject(
                        "body",
                        format!("has {dropped} more fields than any drawing route reads"),
                    );
                }
                Ok(Self(fields, strokes))
            }
            StrokesBody::NotAnObject => Err(ApiError::field("body", "must be a JSON object")),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonWithStrokes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json::<Self, S>(req, state).await
    }
}

/// What a request's `Content-Type` says about its body, compared without
/// regard to case (`Application/JSON; Charset=UTF-8` is JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaType {
    Json,
    /// XML, a form or multipart: a body in another media type (`415`).
    Other(String),
    /// Missing, or not a media type a body of this API uses (`400`).
    Unknown,
}

impl MediaType {
    pub fn of(headers: &HeaderMap) -> Self {
        let essence = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        if essence == "application/json" || essence.ends_with("+json") {
            Self::Json
        } else if essence.contains("xml")
            || essence == "application/x-www-form-urlencoded"
            || essence.starts_with("multipart/")
        {
            Self::Other(essence)
        } else {
            Self::Unknown
        }
    }
}

/// Reads a JSON body after checking its media type: its bytes are
/// metered as they arrive, then the parse's weight is charged, then it is
/// parsed within that weight.
pub async fn read_json<T: JsonBody, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, ApiError> {
    match MediaType::of(req.headers()) {
        MediaType::Json => {}
        MediaType::Other(essence) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected application/json, got {essence}"
            )));
        }
        MediaType::Unknown => {
            return Err(ApiError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ));
        }
    }
    let admitted = Admitted::of(&req)?;
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|rejection| admission::read_error(&admitted, body_rejection(rejection)))?;
    let weight = T::weight(bytes.len());
    admitted.charge(weight)?;
    T::parse(&bytes, weight)
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}
