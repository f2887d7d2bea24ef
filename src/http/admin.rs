//! Contract sections "Admin" and "Admin console and audit (v1.4)": users,
//! the report queue, every story, the audit log and stats. Every route
//! answers `403` to anyone who is not an admin. The actions write their
//! audit entries in the store, in the action's own transaction.

mod backup;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use storybook_store::{
    AuditAction, AuditFilter, ReportAction, ReportStatus, Role, Store, StoryFilter, StoryStatus,
    UserFilter,
};

use super::views::user_json;
use super::{ApiRouter, Doc, PAGE, PAGE_SIZE, ParamKind, QueryParam, page_json, user_id_named};
use crate::auth::{hash_token, new_reset_code};
use crate::config::Limits;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, Events};
use crate::extract::{AdminUser, ApiPath, JsonFields, Query};
use crate::notifications::Notifier;
use crate::pause::{PausePoint, Pauses};
use crate::process::rss_bytes;
use crate::state::{AppState, Auth, Caches};

const REPORT_STATUSES: &[&str] = &["open", "resolved", "dismissed"];
const USER_SEARCH: QueryParam =
    QueryParam::new("q", ParamKind::Text, "part of a username or email");
const REPORT_STATUS: QueryParam = QueryParam::new(
    "status",
    ParamKind::OneOf(REPORT_STATUSES),
    "only reports in this state",
);

const REPORT_AUTHOR: QueryParam = QueryParam::new(
    "author",
    ParamKind::Text,
    "only reports about this user's stories (a username; an unknown one finds nothing)",
);
const REPORT_STORY: QueryParam = QueryParam::new(
    "story",
    ParamKind::Integer {
        minimum: 1,
        maximum: i64::MAX,
    },
    "only reports about this story (its id)",
);
const STORY_STATUSES: &[&str] = &["draft", "published"];
const STORY_TITLE_SEARCH: QueryParam = QueryParam::new(
    "q",
    ParamKind::Text,
    "part of the title, case-insensitive (drafts included)",
);
const STORY_STATUS: QueryParam = QueryParam::new(
    "status",
    ParamKind::OneOf(STORY_STATUSES),
    "only stories in this state",
);
const STORY_AUTHOR: QueryParam = QueryParam::new(
    "author",
    ParamKind::Text,
    "the author's username (an unknown one finds nothing)",
);
const AUDIT_ADMIN: QueryParam = QueryParam::new(
    "admin",
    ParamKind::Text,
    "only what this admin (a username) did; an unknown one finds nothing",
);
const AUDIT_ACTION: QueryParam = QueryParam::new(
    "action",
    ParamKind::OneOf(&AuditAction::NAMES),
    "only entries of this action",
);

pub fn router() -> ApiRouter {
    ApiRouter::new("admin")
        .get(
            "/api/admin/users",
            users,
            Doc::new("Users, searched by username or email")
                .admin()
                .query(&[USER_SEARCH, PAGE, PAGE_SIZE])
                .returns(200, Some("UserPage")),
        )
        .get(
            "/api/admin/users/{id}",
            user,
            Doc::new("One user as the admin list shows it (email, role, active)")
                .admin()
                .returns(200, Some("AdminUser"))
                .errors(&[404]),
        )
        .post(
            "/api/admin/users/{id}/reset-code",
            reset_code,
            Doc::new("Issue a password reset code for a user (single use, valid RESET_CODE_HOURS, shown only in this answer; replaces their older code); audited as user_password_reset")
                .admin()
                .returns(201, Some("ResetCode"))
                .errors(&[404]),
        )
        .patch(
            "/api/admin/users/{id}",
            update_user,
            Doc::new("Change a user's role or deactivate them (revokes their tokens at once); an admin cannot demote or deactivate themself (422)")
                .admin()
                .body("AdminUserUpdate")
                .returns(200, Some("User"))
                .errors(&[404]),
        )
        .get(
            "/api/admin/reports",
            reports,
            Doc::new("The report queue, open reports first, then oldest first, each with its story summary")
                .admin()
                .query(&[REPORT_STATUS, REPORT_AUTHOR, REPORT_STORY, PAGE, PAGE_SIZE])
                .returns(200, Some("ReportPage")),
        )
        .patch(
            "/api/admin/reports/{id}",
            close_report,
            Doc::new("Resolve or dismiss an open report, optionally unpublishing or deleting the story; notifies the reporter (409 when the report is already closed)")
                .admin()
                .body("ReportDecision")
                .returns(200, Some("Report"))
                .errors(&[404, 409]),
        )
        .get(
            "/api/admin/stories",
            stories,
            Doc::new("Every story, drafts included, newest first, as summaries")
                .admin()
                .query(&[STORY_TITLE_SEARCH, STORY_STATUS, STORY_AUTHOR, PAGE, PAGE_SIZE])
                .returns(200, Some("StoryPage")),
        )
        .get(
            "/api/admin/audit",
            audit,
            Doc::new("What admins did, newest first")
                .admin()
                .query(&[AUDIT_ADMIN, AUDIT_ACTION, PAGE, PAGE_SIZE])
                .returns(200, Some("AuditPage")),
        )
        .get(
            "/api/admin/export",
            backup::export,
            Doc::new("A backup of everything, as JSON Lines (the format of `storybook export`): one at a time (503 busy for a second); audited as data_exported before its snapshot opens; a client that reads nothing for RESPONSE_STALL_SECS is cut off")
                .admin()
                .answers_media("application/x-ndjson")
                .returns(200, None)
                .errors(&[503]),
        )
        .get(
            "/api/admin/stats",
            stats,
            Doc::new("Totals, live RSS and uptime").admin().returns(200, Some("Stats")),
        )
}

/// Admin: `GET /api/admin/users?q=`.
async fn users(
    State(store): State<Store>,
    AdminUser(_admin): AdminUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let query = params.text("q");
    let page = params.page();
    params.finish()?;
    let found = store.list_users(&UserFilter { query }, page).await?;
    let items: Vec<Value> = found.items.iter().map(admin_user_json).collect();
    Ok(Json(
        json!({ "items": items, "total": found.total, "page": page.page, "page_size": page.page_size }),
    ))
}

/// A user as the admin pages show them: everything `/api/me` shows, and
/// whether they are active.
fn admin_user_json(user: &storybook_store::User) -> Value {
    let mut value = user_json(user, true);
    value["active"] = json!(user.active);
    value
}

/// Admin: `GET /api/admin/users/{id}` (contract v1.5).
async fn user(
    State(store): State<Store>,
    AdminUser(_admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    Ok(Json(admin_user_json(&store.user_by_id(id).await?)))
}

/// Admin: `POST /api/admin/users/{id}/reset-code` (contract v1.5).
async fn reset_code(
    State(store): State<Store>,
    State(limits): State<Arc<Limits>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let code = new_reset_code()?;
    let hours = i64::from(limits.reset_code_hours.max(1));
    let expires_at =
        storybook_store::Timestamp(storybook_store::Timestamp::now().millis() + hours * 3_600_000);
    store
        .issue_reset_code(id, &hash_token(&code), expires_at, admin.id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "code": code, "expires_at": expires_at })),
    ))
}

/// Admin: `PATCH /api/admin/users/{id}`.
async fn update_user(
    State(store): State<Store>,
    State(auth): State<Auth>,
    State(events): State<Arc<dyn Events>>,
    State(pauses): State<Arc<Pauses>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    let role = body.optional_string("role");
    let role = match role.as_deref().map(Role::parse) {
        Some(None) => {
            body.reject("role", "must be user or admin");
            None
        }
        Some(role) => role,
        None => None,
    };
    let active = body.optional_bool("active");
    // So the last admin cannot lock everyone out.
    if id == admin.id {
        if role == Some(Role::User) {
            body.reject("role", "you cannot remove your own admin role");
        }
        if active == Some(false) {
            body.reject("active", "you cannot deactivate yourself");
        }
    }
    body.finish()?;
    pauses.reach(PausePoint::AdminUserChange).await;
    let user = store
        .set_role_and_active(id, role, active, Some(admin.id))
        .await?;
    auth.tokens.forget_user(id);
    // Deactivation closes the user's open connections; a role change makes
    // them check what they may still read.
    if active == Some(false) {
        events.send(Event::TokensRevoked { user_id: id }).await;
    }
    if role.is_some() {
        events.send(Event::AccessChanged { user_id: id }).await;
    }
    Ok(Json(admin_user_json(&user)))
}

fn parse_report_status(params: &mut crate::validate::Params) -> Option<ReportStatus> {
    params
        .choice(REPORT_STATUS.name, REPORT_STATUSES)
        .and_then(ReportStatus::parse)
}

/// Admin: `GET /api/admin/reports?status=&author=`.
async fn reports(
    State(store): State<Store>,
    AdminUser(_admin): AdminUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let status = parse_report_status(&mut params);
    let author = params.text(REPORT_AUTHOR.name);
    let story = params.integer(REPORT_STORY.name, 1, i64::MAX);
    let page = params.page();
    params.finish()?;
    let author_id = match &author {
        Some(username) => match user_id_named(&store, username).await? {
            Some(id) => Some(id),
            None => return Ok(empty_page(page)),
        },
        None => None,
    };
    let found = store.list_reports(status, author_id, story, page).await?;
    Ok(Json(page_json(&found, page)))
}

/// Admin: `PATCH /api/admin/reports/{id}`.
async fn close_report(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(notifier): State<Notifier>,
    State(events): State<Arc<dyn Events>>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    let status = match body.required_string("status").as_deref() {
        Some("resolved") => Some(ReportStatus::Resolved),
        Some("dismissed") => Some(ReportStatus::Dismissed),
        Some(_) => {
            body.reject("status", "must be resolved or dismissed");
            None
        }
        None => None,
    };
    let action = match body.optional_string("action") {
        None => Some(ReportAction::None),
        Some(text) => {
            let parsed = ReportAction::parse(&text);
            if parsed.is_none() && !body.has_error("action") {
                body.reject("action", "must be none, unpublish or delete");
            }
            parsed
        }
    };
    body.finish()?;
    let (Some(status), Some(action)) = (status, action) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let (closed, story_id) = store.close_report(id, status, action, admin.id).await?;
    if action != ReportAction::None
        && let Some(story_id) = story_id
    {
        caches.reads.invalidate_story_and_library(story_id);
        let event = Event::StoryChanged {
            story_id,
            drawing_ids: &[],
        };
        events.send(event).await;
    }
    notifier
        .notify(
            closed.reporter.id,
            "report_resolved",
            json!({ "report_id": closed.id, "story_id": story_id, "status": closed.status }),
        )
        .await;
    Ok(Json(json!(closed)))
}

fn empty_page(page: storybook_store::PageRequest) -> Json<Value> {
    Json(json!({ "items": [], "total": 0, "page": page.page, "page_size": page.page_size }))
}

/// Admin: `GET /api/admin/stories?q=&status=&author=`.
async fn stories(
    State(store): State<Store>,
    AdminUser(_admin): AdminUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let title_contains = params.text(STORY_TITLE_SEARCH.name);
    let status = params
        .choice(STORY_STATUS.name, STORY_STATUSES)
        .map(|s| match s {
            "draft" => StoryStatus::Draft,
            _ => StoryStatus::Published,
        });
    let author = params.text(STORY_AUTHOR.name);
    let page = params.page();
    params.finish()?;
    let author_id = match &author {
        Some(username) => match user_id_named(&store, username).await? {
            Some(id) => Some(id),
            None => return Ok(empty_page(page)),
        },
        None => None,
    };
    let filter = StoryFilter {
        title_contains,
        status,
        author_id,
        ..StoryFilter::default()
    };
    let found = store.list_stories(&filter, page).await?;
    Ok(Json(page_json(&found, page)))
}

/// Admin: `GET /api/admin/audit?admin=&action=`.
async fn audit(
    State(store): State<Store>,
    AdminUser(_admin): AdminUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let admin = params.text(AUDIT_ADMIN.name);
    let action = params
        .choice(AUDIT_ACTION.name, &AuditAction::NAMES)
        .and_then(AuditAction::parse);
    let page = params.page();
    params.finish()?;
    let admin_id = match &admin {
        Some(username) => match user_id_named(&store, username).await? {
            Some(id) => Some(id),
            None => return Ok(empty_page(page)),
        },
        None => None,
    };
    let filter = AuditFilter { admin_id, action };
    let found = store.list_audit(&filter, page).await?;
    Ok(Json(page_json(&found, page)))
}

/// Admin: `GET /api/admin/stats`.
async fn stats(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> ApiResult<Json<Value>> {
    let totals = state.store.totals().await?;
    let mut stats = json!({
        "users": totals.users,
        "stories": totals.stories,
        "drawings": state.store.count_drawings().await?,
        "open_reports": totals.open_reports,
        "rss_bytes": rss_bytes(),
        "uptime_s": state.started_at.elapsed().as_secs(),
    });
    if let Some(connections) = state.events.connection_count() {
        stats["connections"] = json!(connections);
    }
    Ok(Json(stats))
}
