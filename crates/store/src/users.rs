//! Users: accounts, profiles, settings, and the admin's view of them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AuditAction, AuditNote};
use crate::{
    Page, PageRequest, Result, Role, Settings, Store, StoreError, Timestamp, User, UserSummary,
    touched_a_row,
};

/// What registration stores; the username is already lowercased and the
/// password already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
    pub role: Role,
}

/// The admin's user search: a substring of username or email.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub query: Option<String>,
}

pub(crate) const USER_COLUMNS: &str =
    "id, username, email, password_hash, display_name, bio, role, active, settings, created_at";

pub(crate) fn user_from_row(row: &AnyRow) -> Result<User> {
    let settings: String = row.try_get("settings")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        display_name: row.try_get("display_name")?,
        bio: row.try_get("bio")?,
        role: Role::parse(&role).unwrap_or(Role::User),
        active: row.try_get::<i64, _>("active")? != 0,
        // A damaged settings column falls back to defaults rather than
        // locking the user out.
        settings: serde_json::from_str(&settings).unwrap_or_default(),
        created_at: Timestamp(row.try_get("created_at")?),
    })
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
/// A user's summary from a row whose columns are `{prefix}id`,
/// `{prefix}username` and `{prefix}display_name` (an author, a reporter,
/// an owner, an admin: every list that names people).
pub(crate) fn user_summary_from_row(row: &AnyRow, prefix: &str) -> Result<UserSummary> {
    Ok(UserSummary {
        id: row.try_get(format!("{prefix}id").as_str())?,
        username: row.try_get(format!("{prefix}username").as_str())?,
        display_name: row.try_get(format!("{prefix}display_name").as_str())?,
    })
}

pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The key an email is unique by and looked up by: its NFC form,
/// lower-cased by Unicode's full rules (not SQL's `lower()`, which is
/// ASCII-only in SQLite), so `Élise@…` and `élise@…` are one address.
pub fn email_key(email: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let email = email.trim();
    // ASCII is its own NFC form: most addresses never touch the Unicode
    // tables (whose pages would otherwise stay resident after the first
    // sign-in).
    if email.is_ascii() {
        return email.to_ascii_lowercase();
    }
    email.nfc().collect::<String>().to_lowercase()
}

/// Recomputes every user's `email_key` (the migration that adds it can
/// only fill in SQL's `lower()`). Two addresses that were distinct before
/// but share a key now keep the first by id; the others get their id
/// appended, so they still sign in by username.
pub(crate) async fn rekey_emails(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, email FROM users ORDER BY id")
        .fetch_all(&mut **tx)
        .await?;
    // Cleared first, so no row's old key stands in another's way.
    sqlx::query("UPDATE users SET email_key = NULL")
        .execute(&mut **tx)
        .await?;
    let mut taken = std::collections::HashSet::new();
    for (id, email) in rows {
        let mut key = email_key(&email);
        if !taken.insert(key.clone()) {
            tracing::warn!(
                user_id = id,
                "an email shares its key with an older account"
            );
            key = format!("{key}#{id}");
        }
        sqlx::query("UPDATE users SET email_key = $2 WHERE id = $1")
            .bind(id)
            .bind(&key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Creates a user; `Conflict("username")` or `Conflict("email")` when
    /// either is taken (case-insensitively).
    pub async fn create_user(&self, new: &NewUser) -> Result<User> {
        let key = email_key(&new.email);
        let taken: Option<(String,)> = sqlx::query_as(
            "SELECT CASE WHEN username = $1 THEN 'username' ELSE 'email' END
             FROM users WHERE username = $1 OR email_key = $2 LIMIT 1",
        )
        .bind(&new.username)
        .bind(&key)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((what,)) = taken {
            return Err(StoreError::Conflict(what));
        }
        let now = Timestamp::now();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (username, email, email_key, password_hash, display_name, role, active, settings, created_at)
             VALUES ($1, $2, $7, $3, $4, $5, 1, '{{}}', $6) RETURNING {USER_COLUMNS}"
        )))
        .bind(&new.username)
        .bind(&new.email)
        .bind(&new.password_hash)
        .bind(&new.display_name)
        .bind(new.role.as_str())
        .bind(now.millis())
        .bind(&key)
        .fetch_one(&self.pool)
        .await
        // Two registrations racing past the check above meet the index.
        .map_err(StoreError::unique_as("username or email"))?;
        user_from_row(&row)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<User> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    pub async fn user_by_username(&self, username: &str) -> Result<User> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    /// The user a login names: by username (lowercased by the caller) or by
    /// email's key ([`email_key`]).
    pub async fn user_by_login(&self, login: &str) -> Result<User> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = lower($1) OR email_key = $2
             ORDER BY id LIMIT 1"
        )))
        .bind(login)
        .bind(email_key(login))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    /// Changes the profile fields given; returns the updated user.
    pub async fn update_profile(
        &self,
        id: i64,
        display_name: Option<&str>,
        bio: Option<&str>,
    ) -> Result<User> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE users SET display_name = COALESCE($2, display_name), bio = COALESCE($3, bio)
             WHERE id = $1 RETURNING {USER_COLUMNS}"
        )))
        .bind(id)
        .bind(display_name)
        .bind(bio)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    pub async fn set_settings(&self, id: i64, settings: &Settings) -> Result<()> {
        let json = crate::encode_json(settings)?;
        let done = sqlx::query("UPDATE users SET settings = $2 WHERE id = $1")
            .bind(id)
            .bind(json)
            .execute(&self.pool)
            .await?;
        touched_a_row(&done)?;
        Ok(())
    }

    /// Changes role and/or active flag. Deactivating also revokes every
    /// token of the user; when an admin (`by_admin`) does it, each change
    /// that happened is written to the audit log; all in one transaction.
    pub async fn set_role_and_active(
        &self,
        id: i64,
        role: Option<Role>,
        active: Option<bool>,
        by_admin: Option<i64>,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        // Every active admin's row is locked first (a write: SQLite takes
        // its write lock, PostgreSQL a lock on each row, re-reading any row
        // another transaction changed meanwhile), so two admins demoting
        // each other at once are one after the other, and the second finds
        // it would leave nobody.
        sqlx::query("UPDATE users SET active = active WHERE role = 'admin' AND active = 1")
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("UPDATE users SET active = active WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        touched_a_row(&done)?;
        let before = sqlx::query("SELECT role, active FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let old_role: String = before.try_get("role")?;
        let was_active = before.try_get::<i64, _>("active")? != 0;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE users SET role = COALESCE($2, role), active = COALESCE($3, active)
             WHERE id = $1 RETURNING {USER_COLUMNS}"
        )))
        .bind(id)
        .bind(role.map(Role::as_str))
        .bind(active.map(i64::from))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let (admins_left,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin' AND active = 1")
                .fetch_one(&mut *tx)
                .await?;
        // Only a change of an active admin can leave none (a server that
        // has no admin yet may still deactivate its users).
        if admins_left == 0 && old_role == "admin" && was_active {
            // Dropped without a commit: nothing changed.
            let field = if role == Some(Role::User) && old_role == "admin" {
                "role"
            } else {
                "active"
            };
            return Err(StoreError::Refused {
                field,
                why: "would leave no active admin".into(),
            });
        }
        if active == Some(false) {
            crate::tokens::revoke_tokens(&mut *tx, id, "").await?;
        }
        let user = user_from_row(&row)?;
        let mut notes = Vec::new();
        if let Some(role) = role.filter(|r| r.as_str() != old_role) {
            notes.push((
                AuditAction::UserRoleChanged,
                serde_json::json!({ "username": user.username, "from": old_role, "to": role.as_str() }),
            ));
        }
        let named = serde_json::json!({ "username": user.username });
        match active {
            Some(false) if was_active => notes.push((AuditAction::UserDeactivated, named)),
            Some(true) if !was_active => notes.push((AuditAction::UserReactivated, named)),
            _ => {}
        }
        if let Some(admin_id) = by_admin {
            for (action, detail) in notes {
                let note = AuditNote {
                    admin_id,
                    action,
                    target_id: id,
                    detail,
                };
                crate::audit::record(&mut tx, &note).await?;
            }
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Users for the admin list, oldest first.
    pub async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> Result<Page<User>> {
        let pattern = filter
            .query
            .as_deref()
            .map(|q| like_pattern(&q.to_lowercase()));
        let condition =
            "($1 IS NULL OR username LIKE $1 ESCAPE '\\' OR lower(email) LIKE $1 ESCAPE '\\')";
        let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM users WHERE {condition}"
        )))
        .bind(pattern.as_deref())
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {condition} ORDER BY id LIMIT $2 OFFSET $3"
        )))
        .bind(pattern.as_deref())
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(user_from_row).collect::<Result<_>>()?;
        Ok(Page { items, total })
    }

    pub async fn count_users(&self) -> Result<i64> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod email_key_tests {
    use super::*;
    use crate::PoolSettings;

    #[test]
    fn keys_are_the_nfc_form_lower_cased_fully() {
        assert_eq!(email_key(" Élise@Example.FR "), "élise@example.fr");
        assert_eq!(email_key("E\u{301}lise@example.fr"), "élise@example.fr");
        assert_eq!(email_key("ÅSA@X.SE"), "åsa@x.se");
    }

    /// Addresses registered before the key existed that now share one:
    /// the older keeps it, the newer gets its id appended.
    #[tokio::test]
    async fn rekeying_keeps_the_oldest_of_addresses_that_now_collide() {
        let dir = std::env::temp_dir().join(format!("rekey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("rekey.db").display());
        let store = Store::connect(&url, &PoolSettings::default())
            .await
            .unwrap();
        for (name, email, key) in [("a", "Élise@x.fr", "k1"), ("b", "élise@x.fr", "k2")] {
            sqlx::query(
                "INSERT INTO users (username, email, email_key, password_hash, display_name, created_at)
                 VALUES ($1, $2, $3, '', $1, 0)",
            )
            .bind(name)
            .bind(email)
            .bind(key)
            .execute(&store.pool)
            .await
            .unwrap();
        }
        let mut tx = store.pool.begin().await.unwrap();
        rekey_emails(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        let keys: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, email_key FROM users ORDER BY id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(keys[0].1, "élise@x.fr");
        assert_eq!(keys[1].1, format!("élise@x.fr#{}", keys[1].0));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
