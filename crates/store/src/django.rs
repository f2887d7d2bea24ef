//! Users moving in from a Django dump: a batch written in one
//! transaction (a few statements a batch), each record remembered by its
//! model and primary key.

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, AssertSqlSafe};

use crate::sql::{placeholders, value_rows};
use crate::users::email_key;
use crate::{Result, Role, Settings, Store, StoreError, Timestamp, encode_json};

/// Longest username this server takes.
const MAX_USERNAME_CHARS: usize = 30;

/// One Django user, mapped to this server's fields (the caller has checked
/// the record and chosen the display name, role and settings).
#[derive(Debug, Clone)]
pub struct DjangoUser {
    pub model: String,
    pub pk: i64,
    /// As the dump has it; renamed here if it breaks this server's rule or
    /// is taken.
    pub username: String,
    /// Empty when the dump has none.
    pub email: String,
    /// The Django hash, kept as it is (checked at sign-in, then replaced).
    pub password_hash: String,
    pub display_name: String,
    pub bio: String,
    pub role: Role,
    pub active: bool,
    pub settings: Settings,
    pub created_at: Timestamp,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Written; `renamed` holds the new username when it changed, and
    /// `without_email` says the email was blank or already someone's.
    New {
        renamed: Option<String>,
        without_email: bool,
    },
    /// Already here: this record was imported before, or a user of that
    /// username exists.
    Skipped,
}

/// A username as this server's rule wants it: lower-case, `[a-z0-9_]`
/// only, at least 3 and at most 30 characters.
pub fn username_base(name: &str) -> String {
    let mut base: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_USERNAME_CHARS)
        .collect();
    while base.len() < 3 {
        base.push('_');
    }
    base
}

/// A user row to write, with the record it came from.
struct NewRow<'a> {
    user: &'a DjangoUser,
    username: String,
    email: String,
    key: Option<String>,
}

impl Store {
    /// Writes a batch of Django users in one transaction; one outcome each.
    ///
    /// A handful of statements a batch, not several a record: what the
    /// batch needs to know (records imported before, names and addresses
    /// taken) is read first, and the rows are written in two multi-row
    /// statements. Over the internet (an admin's machine to a hosted
    /// database, some 100 ms a round trip) that is the difference between
    /// seconds and the better part of an hour for a school.
    pub async fn import_django_users(&self, users: &[DjangoUser]) -> Result<Vec<Imported>> {
        let mut tx = self.pool.begin().await?;
        let mut known = known_records(&mut tx, users).await?;
        let lowered: Vec<String> = users.iter().map(|u| u.username.to_lowercase()).collect();
        let bases: Vec<String> = users.iter().map(|u| username_base(&u.username)).collect();
        let mut asked: HashSet<String> = lowered.iter().chain(&bases).cloned().collect();
        let mut taken_names = found_among(&mut tx, "username", &asked).await?;
        let keys: Vec<Option<String>> = users
            .iter()
            .map(|u| (!u.email.trim().is_empty()).then(|| email_key(&u.email)))
            .collect();
        let mut taken_keys = found_among(
            &mut tx,
            "email_key",
            &keys.iter().flatten().cloned().collect(),
        )
        .await?;
        let mut outcomes = Vec::with_capacity(users.len());
        let mut rows = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let record = (user.model.clone(), user.pk);
            if known.contains(&record) || taken_names.contains(&lowered[i]) {
                outcomes.push(Imported::Skipped);
                continue;
            }
            known.insert(record);
            // Renamed when the name breaks the rule; numbered when taken. A
            // name that keeps the rule is free: it was just looked up.
            let mut username = bases[i].clone();
            let mut number = 2u32;
            while username != lowered[i] {
                // A numbered name the batch did not read up front is asked
                // once; what the answer finds stays taken for the batch.
                if asked.insert(username.clone()) {
                    let one = HashSet::from([username.clone()]);
                    taken_names.extend(found_among(&mut tx, "username", &one).await?);
                }
                if !taken_names.contains(&username) {
                    break;
                }
                let suffix = number.to_string();
                let room = MAX_USERNAME_CHARS - suffix.len();
                username = format!("{}{suffix}", &bases[i][..bases[i].len().min(room)]);
                number += 1;
            }
            taken_names.insert(username.clone());
            let (email, key) = match &keys[i] {
                Some(key) if taken_keys.insert(key.clone()) => {
                    (user.email.trim().to_owned(), Some(key.clone()))
                }
                _ => (String::new(), None),
            };
            outcomes.push(Imported::New {
                renamed: (username != user.username).then(|| username.clone()),
                without_email: email.is_empty(),
            });
            rows.push(NewRow {
                user,
                username,
                email,
                key,
            });
        }
        insert_rows(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// The batch's records that were imported before.
async fn known_records(
    conn: &mut AnyConnection,
    users: &[DjangoUser],
) -> Result<HashSet<(String, i64)>> {
    let mut known = HashSet::new();
    let models: HashSet<&str> = users.iter().map(|u| u.model.as_str()).collect();
    for model in models {
        let pks: Vec<i64> = users
            .iter()
            .filter(|u| u.model == model)
            .map(|u| u.pk)
            .collect();
        let sql = format!(
            "SELECT pk FROM django_imports WHERE model = $1 AND pk IN ({})",
            placeholders(2, pks.len())
        );
        // Not prepared for reuse, as in `found_among`.
        let mut query = sqlx::query_as::<_, (i64,)>(AssertSqlSafe(sql))
            .persistent(false)
            .bind(model);
        for pk in &pks {
            query = query.bind(*pk);
        }
        for (pk,) in query.fetch_all(&mut *conn).await? {
            known.insert((model.to_owned(), pk));
        }
    }
    Ok(known)
}

/// Which of `values` a user already has in `column` (`username` or
/// `email_key`).
async fn found_among(
    conn: &mut AnyConnection,
    column: &str,
    values: &HashSet<String>,
) -> Result<HashSet<String>> {
    if values.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "SELECT {column} FROM users WHERE {column} IN ({})",
        placeholders(1, values.len())
    );
    // Not prepared for reuse: PostgreSQL would soon plan a reused statement
    // generically, and a generic plan of a long `IN` list scans the whole
    // table (100,000 users went from 10 s to a minute).
    let mut query = sqlx::query_as::<_, (String,)>(AssertSqlSafe(sql)).persistent(false);
    for value in values {
        query = query.bind(value.as_str());
    }
    Ok(query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(v,)| v)
        .collect())
}

/// The new users, then the records they came from, in two statements.
async fn insert_rows(conn: &mut AnyConnection, rows: &[NewRow<'_>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO users (username, email, email_key, password_hash, display_name, bio, role, active, settings, created_at)
         VALUES {} RETURNING id, username",
        value_rows(rows.len(), 10)
    );
    let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(row.username.as_str())
            .bind(row.email.as_str())
            .bind(row.key.as_deref())
            .bind(row.user.password_hash.as_str())
            .bind(row.user.display_name.as_str())
            .bind(row.user.bio.as_str())
            .bind(row.user.role.as_str())
            .bind(i64::from(row.user.active))
            .bind(encode_json(&row.user.settings)?)
            .bind(row.user.created_at.millis());
    }
    // Usernames are unique: each new id is found by its name, whatever
    // order the database returns them in.
    let ids: HashMap<String, i64> = query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, username)| (username, id))
        .collect();
    let sql = format!(
        "INSERT INTO django_imports (model, pk, user_id) VALUES {}",
        value_rows(rows.len(), 3)
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in rows {
        let id = ids
            .get(&row.username)
            .copied()
            .ok_or(StoreError::NotFound)?;
        query = query
            .bind(row.user.model.as_str())
            .bind(row.user.pk)
            .bind(id);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::username_base;

    #[test]
    fn usernames_are_made_to_fit_the_rule() {
        assert_eq!(username_base("Anna.K"), "anna_k");
        assert_eq!(username_base("jo"), "jo_");
        assert_eq!(username_base("Zoë Smith"), "zo__smith");
        assert_eq!(username_base(&"x".repeat(40)).len(), 30);
    }
}
