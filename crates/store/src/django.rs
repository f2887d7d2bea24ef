//! Users moving in from a Django dump: a batch written in one
//! transaction, each record remembered by its model and primary key.

use crate::users::email_key;
use crate::{Result, Role, Settings, Store, Timestamp, encode_json};

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

impl Store {
    /// Writes a batch of Django users in one transaction; one outcome each.
    pub async fn import_django_users(&self, users: &[DjangoUser]) -> Result<Vec<Imported>> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(users.len());
        for user in users {
            let lowered = user.username.to_lowercase();
            // One round trip: imported before, or a user of that name here.
            let (known, same_name): (Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT (SELECT user_id FROM django_imports WHERE model = $1 AND pk = $2),
                        (SELECT id FROM users WHERE username = $3)",
            )
            .bind(&user.model)
            .bind(user.pk)
            .bind(&lowered)
            .fetch_one(&mut *tx)
            .await?;
            if known.is_some() || same_name.is_some() {
                outcomes.push(Imported::Skipped);
                continue;
            }
            // Renamed when the name breaks the rule; numbered when taken. A
            // name that keeps the rule is free: it was just looked up.
            let base = username_base(&user.username);
            let mut username = base.clone();
            let mut number = 2u32;
            while username != lowered {
                let exists: Option<(i64,)> =
                    sqlx::query_as("SELECT id FROM users WHERE username = $1")
                        .bind(&username)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    break;
                }
                let suffix = number.to_string();
                let room = MAX_USERNAME_CHARS - suffix.len();
                username = format!("{}{suffix}", &base[..base.len().min(room)]);
                number += 1;
            }
            let key = (!user.email.trim().is_empty()).then(|| email_key(&user.email));
            let email_free = match &key {
                Some(key) => {
                    sqlx::query_as::<_, (i64,)>("SELECT id FROM users WHERE email_key = $1")
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_none()
                }
                None => false,
            };
            let (email, key) = if email_free {
                (user.email.trim().to_owned(), key)
            } else {
                (String::new(), None)
            };
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO users (username, email, email_key, password_hash, display_name, bio, role, active, settings, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(&username)
            .bind(&email)
            .bind(key.as_deref())
            .bind(&user.password_hash)
            .bind(&user.display_name)
            .bind(&user.bio)
            .bind(user.role.as_str())
            .bind(i64::from(user.active))
            .bind(encode_json(&user.settings)?)
            .bind(user.created_at.millis())
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO django_imports (model, pk, user_id) VALUES ($1, $2, $3)")
                .bind(&user.model)
                .bind(user.pk)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            outcomes.push(Imported::New {
                renamed: (username != user.username).then_some(username),
                without_email: email.is_empty(),
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }
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
