//! The audit log (contract v1.4): what admins did. Entries are written by
//! the store methods that carry out the actions, inside their transactions,
//! so an action and its record commit or roll back together.

use serde::Serialize;
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use crate::models::{Page, PageRequest, UserSummary};
use crate::sql::Sql;
use crate::users::user_summary_from_row;
use crate::{Result, Store, Timestamp, decode_json, encode_json};

/// What an admin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    ReportResolved,
    ReportDismissed,
    StoryUnpublished,
    StoryUpdated,
    StoryDeleted,
    UserRoleChanged,
    UserDeactivated,
    UserReactivated,
    UserPasswordReset,
    DataExported,
}

impl AuditAction {
    pub const ALL: [Self; 10] = [
        Self::ReportResolved,
        Self::ReportDismissed,
        Self::StoryUnpublished,
        Self::StoryUpdated,
        Self::StoryDeleted,
        Self::UserRoleChanged,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::UserPasswordReset,
        Self::DataExported,
    ];

    /// The actions' names, in the order of [`AuditAction::ALL`] (the
    /// `?action=` filter and the OpenAPI document list these).
    pub const NAMES: [&'static str; 10] = [
        "report_resolved",
        "report_dismissed",
        "story_unpublished",
        "story_updated",
        "story_deleted",
        "user_role_changed",
        "user_deactivated",
        "user_reactivated",
        "user_password_reset",
        "data_exported",
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// What kind of thing the action is done to.
    pub fn target_type(self) -> &'static str {
        match self {
            Self::ReportResolved | Self::ReportDismissed => "report",
            Self::StoryUnpublished | Self::StoryUpdated | Self::StoryDeleted => "story",
            Self::UserRoleChanged
            | Self::UserDeactivated
            | Self::UserReactivated
            | Self::UserPasswordReset => "user",
            Self::DataExported => "database",
        }
    }
}

/// An entry to write: who did what to which thing, and the particulars.
#[derive(Debug, Clone)]
pub struct AuditNote {
    pub admin_id: i64,
    pub action: AuditAction,
    pub target_id: i64,
    /// A JSON object.
    pub detail: Value,
}

/// An entry as the log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub admin: UserSummary,
    pub action: String,
    pub target: AuditTarget,
    pub detail: Value,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditTarget {
    #[serde(rename = "type")]
    pub kind: String,
    /// `None` for the database as a whole (a backup).
    pub id: Option<i64>,
}

/// Which entries the log shows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub admin_id: Option<i64>,
    pub action: Option<AuditAction>,
}

/// Writes an entry inside the action's transaction.
pub(crate) async fn record(tx: &mut Transaction<'_, Any>, note: &AuditNote) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (admin_id, action, target_type, target_id, detail, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(note.admin_id)
    .bind(note.action.as_str())
    .bind(note.action.target_type())
    .bind(note.target_id)
    .bind(encode_json(&note.detail)?)
    .bind(Timestamp::now().millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The whole database has no id: its entries store 0 (the column is not
/// null on every backend) and show `null`.
fn target_from_row(row: &sqlx::any::AnyRow) -> Result<AuditTarget> {
    let kind: String = row.try_get("target_type")?;
    let id: i64 = row.try_get("target_id")?;
    let id = (kind != AuditAction::DataExported.target_type()).then_some(id);
    Ok(AuditTarget { kind, id })
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        admin: user_summary_from_row(row, "admin_")?,
        action: row.try_get("action")?,
        target: target_from_row(row)?,
        detail: decode_json(&row.try_get::<String, _>("detail")?)?,
        created_at: Timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    /// Writes that `admin_id` took a backup, committed before the backup's
    /// snapshot opens (so the backup holds its own entry).
    pub async fn record_export(&self, admin_id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let note = AuditNote {
            admin_id,
            action: AuditAction::DataExported,
            target_id: 0,
            detail: serde_json::json!({}),
        };
        record(&mut tx, &note).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The log, newest first.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let mut sql = Sql::default();
        let mut conditions = Vec::new();
        if let Some(admin_id) = filter.admin_id {
            conditions.push(format!("a.admin_id = {}", sql.int(admin_id)));
        }
        if let Some(action) = filter.action {
            conditions.push(format!("a.action = {}", sql.text_arg(action.as_str())));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let mut count = sql.clone();
        count.text = format!("SELECT COUNT(*) AS total FROM audit_log a{where_clause}");
        let total: i64 = count
            .query()
            .fetch_one(&self.pool)
            .await?
            .try_get("total")?;
        if total == 0 || page.offset() >= total {
            return Ok(Page {
                items: Vec::new(),
                total,
            });
        }
        let limit = sql.int(page.limit());
        let offset = sql.int(page.offset());
        sql.text = format!(
            "SELECT a.id, a.admin_id, u.username AS admin_username,
                    u.display_name AS admin_display_name, a.action, a.target_type,
                    a.target_id, a.detail, a.created_at
             FROM audit_log a JOIN users u ON u.id = a.admin_id{where_clause}
             ORDER BY a.id DESC LIMIT {limit} OFFSET {offset}"
        );
        let rows = sql.query().fetch_all(&self.pool).await?;
        let items = rows.iter().map(entry_from_row).collect::<Result<_>>()?;
        Ok(Page { items, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_themselves_and_their_targets() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
            let serialized = serde_json::to_value(action).unwrap();
            assert_eq!(serialized, action.as_str(), "JSON and SQL use one name");
        }
        assert_eq!(AuditAction::parse("user_deleted"), None);
        let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names, AuditAction::NAMES, "ALL and NAMES in one order");
        assert_eq!(AuditAction::StoryDeleted.target_type(), "story");
        assert_eq!(AuditAction::ReportDismissed.target_type(), "report");
        assert_eq!(AuditAction::UserReactivated.target_type(), "user");
        assert_eq!(AuditAction::DataExported.target_type(), "database");
    }
}
