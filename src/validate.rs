//! Reading and checking request input while collecting *every* problem, so
//! one `422` names all bad fields rather than the first one serde meets.

use std::collections::HashMap;

use serde_json::{Map, Value};
use storybook_profanity::Filter;
use storybook_store::PageRequest;

use crate::error::{ApiError, FieldErrors};

/// A JSON object body being read field by field.
#[derive(Debug)]
pub struct Fields {
    object: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    /// The body must be a JSON object.
    pub fn new(body: Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(object) => Ok(Self {
                object,
                errors: FieldErrors::new(),
            }),
            _ => Err(ApiError::field("body", "must be a JSON object")),
        }
    }

    /// Records a problem with a field (the first one per field is kept).
    pub fn reject(&mut self, field: impl Into<String>, why: impl Into<String>) {
        self.errors
            .entry(field.into())
            .or_insert_with(|| why.into());
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    pub fn contains(&self, field: &str) -> bool {
        self.object.contains_key(field)
    }

    /// A field's raw value, if present, taken out of the body (a tree is
    /// never copied: the body's weight covers one of it).
    pub fn take(&mut self, field: &str) -> Option<Value> {
        self.object.remove(field)
    }

    pub fn required_string(&mut self, field: &str) -> Option<String> {
        match self.object.get(field) {
            None | Some(Value::Null) => {
                self.reject(field, "is required");
                None
            }
            Some(_) => self.optional_string(field),
        }
    }

    /// `None` when absent; a wrong type (null included) is an error.
    pub fn optional_string(&mut self, field: &str) -> Option<String> {
        match self.object.get(field) {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.reject(field, "must be a string");
                None
            }
        }
    }

    pub fn optional_bool(&mut self, field: &str) -> Option<bool> {
        match self.object.get(field) {
            None => None,
            Some(Value::Bool(flag)) => Some(*flag),
            Some(_) => {
                self.reject(field, "must be true or false");
                None
            }
        }
    }

    pub fn required_i64(&mut self, field: &str) -> Option<i64> {
        match self.object.get(field) {
            None | Some(Value::Null) => {
                self.reject(field, "is required");
                None
            }
            Some(_) => self.optional_i64(field),
        }
    }

    pub fn optional_i64(&mut self, field: &str) -> Option<i64> {
        match self.object.get(field) {
            None => None,
            Some(value) => match value.as_i64() {
                Some(number) => Some(number),
                None => {
                    self.reject(field, "must be an integer");
                    None
                }
            },
        }
    }

    /// Every key not in `allowed` is an error.
    pub fn deny_unknown(&mut self, allowed: &[&str]) {
        let unknown: Vec<String> = self
            .object
            .keys()
            .filter(|key| !allowed.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.reject(key, "is not a known field");
        }
    }

    /// `Validation` naming every bad field, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Length in characters (code points), as the contract counts.
pub fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// Checks text that others will see; `Profanity` names each offending field.
pub fn check_profanity<'a>(
    filter: &Filter,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ApiError> {
    let offending: FieldErrors = fields
        .into_iter()
        .filter(|(_, text)| !filter.is_clean(text))
        .map(|(name, _)| {
            (
                name.to_owned(),
                "contains words that are not allowed".to_owned(),
            )
        })
        .collect();
    if offending.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Profanity(offending))
    }
}

/// The largest `?page=` (page numbers are 32-bit in the store).
pub const MAX_PAGE: i64 = u32::MAX as i64;
/// The largest `?page_size=`, as the contract says.
pub const MAX_PAGE_SIZE: i64 = 100;
/// `?page_size=` when it is not given.
pub const DEFAULT_PAGE_SIZE: i64 = 20;

/// Query parameters read one by one, collecting every bad value.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
    errors: FieldErrors,
}

impl Params {
    pub fn new(values: HashMap<String, String>) -> Self {
        Self {
            values,
            errors: FieldErrors::new(),
        }
    }

    /// A non-empty text value.
    pub fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// One of `allowed`, or an error naming the parameter.
    pub fn choice(&mut self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let value = self.values.get(name)?;
        match allowed.iter().find(|a| **a == value) {
            Some(found) => Some(found),
            None => {
                self.errors.insert(
                    name.to_owned(),
                    format!("must be one of: {}", allowed.join(", ")),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, name: &str) -> Option<bool> {
        match self.values.get(name).map(String::as_str) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                self.errors
                    .insert(name.to_owned(), "must be true or false".to_owned());
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.values.get(name)?;
        match value.parse::<i64>() {
            Ok(number) if (min..=max).contains(&number) => Some(number),
            _ => {
                self.errors.insert(
                    name.to_owned(),
                    format!("must be an integer from {min} to {max}"),
                );
                None
            }
        }
    }

    /// `?page=` (≥ 1, default 1) and `?page_size=` (1..100, default 20).
    pub fn page(&mut self) -> PageRequest {
        let page = self.integer("page", 1, MAX_PAGE).unwrap_or(1);
        let page_size = self
            .integer("page_size", 1, MAX_PAGE_SIZE)
            .unwrap_or(DEFAULT_PAGE_SIZE);
        PageRequest {
            page: page as u32,
            page_size: page_size as u32,
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}
