//! A small builder for SQL whose conditions depend on the request: it
//! numbers `$N` placeholders as values are added, so filters combine freely
//! on both backends.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    pub text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// Adds a value and returns its placeholder (`$3`).
    pub fn arg(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    pub fn int(&mut self, value: i64) -> String {
        self.arg(Arg::Int(value))
    }

    pub fn text_arg(&mut self, value: &str) -> String {
        self.arg(Arg::Text(value.to_owned()))
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.as_str()));
        for arg in &self.args {
            query = match arg {
                Arg::Int(value) => query.bind(*value),
                Arg::Text(value) => query.bind(value.as_str()),
            };
        }
        query
    }
}

/// `$first, $first+1, …` for `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $width), ($width+1, …), …`: the `VALUES` of a multi-row
/// `INSERT` of `rows` rows.
pub(crate) fn value_rows(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(value_rows(2, 2), "($1, $2), ($3, $4)");
    }
}
