//! Contract section "Admin": users, the report queue, and stats. Every
//! route answers `403` to anyone who is not an admin.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use storybook_store::{ReportAction, ReportStatus, Role, UserFilter};

use super::accounts::user_json;
use super::{ApiRouter, Doc, PAGE, PAGE_SIZE, ParamKind, QueryParam, page_json};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::extract::{AdminUser, ApiPath, JsonFields, Query};
use crate::process::rss_bytes;
use crate::state::AppState;

const REPORT_STATUSES: &[&str] = &["open", "resolved", "dismissed"];
const USER_SEARCH: QueryParam =
    QueryParam::new("q", ParamKind::Text, "part of a username or email");
const REPORT_STATUS: QueryParam = QueryParam::new(
    "status",
    ParamKind::OneOf(REPORT_STATUSES),
    "only reports in this state",
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
        .patch(
            "/api/admin/users/{id}",
            update_user,
            Doc::new("Change a user's role or deactivate them (revokes their tokens at once)")
                .admin()
                .body("AdminUserUpdate")
                .returns(200, Some("User"))
                .errors(&[404]),
        )
        .get(
            "/api/admin/reports",
            reports,
            Doc::new("The report queue, each with its story summary")
                .admin()
                .query(&[REPORT_STATUS, PAGE, PAGE_SIZE])
                .returns(200, Some("ReportPage")),
        )
        .patch(
            "/api/admin/reports/{id}",
            close_report,
            Doc::new("Resolve or dismiss a report, optionally unpublishing or deleting the story; notifies the reporter")
                .admin()
                .body("ReportDecision")
                .returns(200, Some("Report"))
                .errors(&[404]),
        )
        .get(
            "/api/admin/stats",
            stats,
            Doc::new("Totals, live RSS and uptime").admin().returns(200, Some("Stats")),
        )
}

/// Admin: `GET /api/admin/users?q=`.
async fn users(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let query = params.text("q");
    let page = params.page();
    params.finish()?;
    let found = state.store.list_users(&UserFilter { query }, page).await?;
    let items: Vec<Value> = found
        .items
        .iter()
        .map(|user| {
            let mut value = user_json(user, true);
            value["active"] = json!(user.active);
            value
        })
        .collect();
    Ok(Json(
        json!({ "items": items, "total": found.total, "page": page.page, "page_size": page.page_size }),
    ))
}

/// Admin: `PATCH /api/admin/users/{id}`.
async fn update_user(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
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
    body.finish()?;
    let user = state.store.set_role_and_active(id, role, active).await?;
    state.tokens.forget_user(id);
    // Deactivation closes the user's open connections; a role change makes
    // them check what they may still read.
    if active == Some(false) {
        state
            .events
            .send(Event::TokensRevoked { user_id: id })
            .await;
    }
    if role.is_some() {
        state
            .events
            .send(Event::AccessChanged { user_id: id })
            .await;
    }
    let mut value = user_json(&user, true);
    value["active"] = json!(user.active);
    Ok(Json(value))
}

fn parse_report_status(params: &mut crate::validate::Params) -> Option<ReportStatus> {
    params
        .choice(REPORT_STATUS.name, REPORT_STATUSES)
        .and_then(ReportStatus::parse)
}

/// Admin: `GET /api/admin/reports?status=`.
async fn reports(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let status = parse_report_status(&mut params);
    let page = params.page();
    params.finish()?;
    let found = state.store.list_reports(status, page).await?;
    Ok(Json(page_json(&found, page)))
}

/// Admin: `PATCH /api/admin/reports/{id}`.
async fn close_report(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
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
    let (closed, story_id) = state.store.close_report(id, status, action).await?;
    if action != ReportAction::None
        && let Some(story_id) = story_id
    {
        state.cache.invalidate_story_and_library(story_id);
        let event = Event::StoryChanged {
            story_id,
            drawing_ids: &[],
        };
        state.events.send(event).await;
    }
    state
        .notify(
            closed.reporter.id,
            "report_resolved",
            json!({ "report_id": closed.id, "story_id": story_id, "status": closed.status }),
        )
        .await;
    Ok(Json(json!(closed)))
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
