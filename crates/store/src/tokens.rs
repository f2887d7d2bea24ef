//! Bearer tokens, stored only as hashes; the caller hashes them.

use sqlx::Row;

use crate::{Result, Store, StoreError, Timestamp, User};

impl Store {
    pub async fn create_token(&self, user_id: i64, token_hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash)
            .bind(Timestamp::now().millis())
            .execute(&self.pool)
            .await
            .map_err(StoreError::unique_as("token"))?;
        Ok(())
    }

    /// The active user a token hash belongs to; `NotFound` for an unknown
    /// or revoked token and for a deactivated user.
    pub async fn user_by_token(&self, token_hash: &str) -> Result<User> {
        let row = sqlx::query("SELECT user_id FROM tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let user = self.user_by_id(row.try_get("user_id")?).await?;
        if !user.active {
            return Err(StoreError::NotFound);
        }
        Ok(user)
    }

    pub async fn delete_token(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
