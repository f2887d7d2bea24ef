//! Password reset codes: issued by an admin (audited in the same
//! transaction), used once by the user with a new password.

use crate::audit::{AuditAction, AuditNote};
use crate::{Result, Store, StoreError, Timestamp};

impl Store {
    /// Stores a code's hash for `user_id`, replacing any older one, and
    /// audits it as `user_password_reset` by `admin_id` (the code itself
    /// is never written anywhere). `NotFound` for an unknown user.
    pub async fn issue_reset_code(
        &self,
        user_id: i64,
        code_hash: &str,
        expires_at: Timestamp,
        admin_id: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let (username,): (String,) = sqlx::query_as("SELECT username FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        sqlx::query(
            "INSERT INTO reset_codes (user_id, code_hash, expires_at, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET code_hash = $2, expires_at = $3, created_at = $4",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(expires_at.millis())
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        let note = AuditNote {
            admin_id,
            action: AuditAction::UserPasswordReset,
            target_id: user_id,
            detail: serde_json::json!({ "username": username }),
        };
        crate::audit::record(&mut tx, &note).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether `code_hash` is the user's unexpired code (nothing is used
    /// up: a caller checks before paying for a password hash).
    pub async fn reset_code_matches(&self, user_id: i64, code_hash: &str) -> Result<bool> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT user_id FROM reset_codes WHERE user_id = $1 AND code_hash = $2 AND expires_at > $3",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(Timestamp::now().millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Uses the user's code if it is `code_hash` and has not expired: in
    /// one transaction the code is deleted, the password set and every
    /// token revoked. Returns whether the code was good; a wrong one
    /// changes nothing.
    pub async fn reset_password(
        &self,
        user_id: i64,
        code_hash: &str,
        password_hash: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "DELETE FROM reset_codes WHERE user_id = $1 AND code_hash = $2 AND expires_at > $3",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        crate::tokens::revoke_tokens(&mut *tx, user_id, "").await?;
        tx.commit().await?;
        Ok(true)
    }
}
