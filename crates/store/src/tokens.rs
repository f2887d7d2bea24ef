//! Bearer tokens, stored only as hashes; the caller hashes them.

use sqlx::{Any, Executor, Row};

use crate::users::{USER_COLUMNS, user_from_row};
use crate::{Result, Store, StoreError, Timestamp, User};

/// Revokes every token of a user but the one whose hash is `keep` (none
/// when it is empty): the one statement behind logging out everywhere, a
/// password change and a deactivation.
pub(crate) async fn revoke_tokens<'e>(
    executor: impl Executor<'e, Database = Any>,
    user_id: i64,
    keep: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM tokens WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(executor)
        .await?;
    Ok(())
}

impl Store {
    /// Stores a new token of the user's and revokes their oldest beyond
    /// the newest `keep` (at least the new one is kept); returns how many
    /// were revoked.
    pub async fn create_token(&self, user_id: i64, token_hash: &str, keep: u32) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash)
            .bind(Timestamp::now().millis())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique_as("token"))?;
        let revoked = sqlx::query(
            "DELETE FROM tokens WHERE user_id = $1 AND id NOT IN \
             (SELECT id FROM tokens WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(user_id)
        .bind(i64::from(keep.max(1)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(revoked)
    }

    /// The active user a token hash belongs to; `NotFound` for an unknown,
    /// revoked or expired token (issued before `issued_after`) and for a
    /// deactivated user.
    /// The active user a token belongs to, with when the token was issued
    /// (a caller that keeps the user knows when it expires).
    pub async fn user_by_token(
        &self,
        token_hash: &str,
        issued_after: Timestamp,
    ) -> Result<(User, Timestamp)> {
        // One statement, not the token's row and then its user: every
        // signed-in request makes it (unless cached), and each statement is
        // a round trip to the database's thread.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM \
             (SELECT user_id, created_at AS token_created_at FROM tokens \
              WHERE token_hash = $1 AND created_at > $2) t, \
             (SELECT {USER_COLUMNS} FROM users WHERE active = 1) u \
             WHERE u.id = t.user_id"
        )))
        .bind(token_hash)
        .bind(issued_after.millis())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let issued = Timestamp(row.try_get("token_created_at")?);
        Ok((user_from_row(&row)?, issued))
    }

    /// Revokes every token of a user.
    pub async fn delete_user_tokens(&self, user_id: i64) -> Result<()> {
        revoke_tokens(&self.pool, user_id, "").await
    }

    /// Sets a new password hash and revokes every other token of the user,
    /// in one transaction: the change and the sign-out happen together.
    pub async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        crate::touched_a_row(&done)?;
        revoke_tokens(&mut *tx, user_id, keep).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a user's password hash by a stronger one of the same
    /// password (a Django hash after its first sign-in here), unless it
    /// changed meanwhile; tokens are untouched. Returns whether it did.
    pub async fn rehash_password(
        &self,
        user_id: i64,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(new_hash)
                .bind(user_id)
                .bind(old_hash)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the tokens issued at or before `cutoff` (they no longer
    /// work); returns how many.
    pub async fn delete_tokens_issued_before(&self, cutoff: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM tokens WHERE created_at <= $1")
            .bind(cutoff.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_token(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
