//! Contract section "Notifications": a user's own notifications.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use storybook_store::Store;

use super::{ApiRouter, Doc, PAGE, PAGE_SIZE, ParamKind, QueryParam, page_json};
use crate::error::ApiResult;
use crate::extract::{ApiPath, AuthUser, Query};

const UNREAD: QueryParam = QueryParam::new(
    "unread",
    ParamKind::Boolean,
    "true: only unread ones; false: only read ones",
);

pub fn router() -> ApiRouter {
    ApiRouter::new("notifications")
        .get(
            "/api/notifications",
            list,
            Doc::new("Your notifications, newest first, with unread_count")
                .user()
                .query(&[UNREAD, PAGE, PAGE_SIZE])
                .returns(200, Some("NotificationPage")),
        )
        .post(
            "/api/notifications/{id}/read",
            mark_read,
            Doc::new("Mark one notification read")
                .user()
                .returns(204, None)
                .errors(&[404]),
        )
        .post(
            "/api/notifications/read-all",
            mark_all_read,
            Doc::new("Mark every notification read")
                .user()
                .returns(204, None),
        )
}

/// Notifications: `GET /api/notifications?unread=`.
async fn list(
    State(store): State<Store>,
    AuthUser(user): AuthUser,
    Query(mut params): Query,
) -> ApiResult<Json<Value>> {
    let unread = params.bool("unread");
    let page = params.page();
    params.finish()?;
    let (notifications, unread_count) = store
        .list_notifications(user.id, unread.map(|unread| !unread), page)
        .await?;
    let mut body = page_json(&notifications, page);
    body["unread_count"] = json!(unread_count);
    Ok(Json(body))
}

/// Notifications: `POST /api/notifications/{id}/read`.
async fn mark_read(
    State(store): State<Store>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    store.mark_notification_read(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Notifications: `POST /api/notifications/read-all`.
async fn mark_all_read(
    State(store): State<Store>,
    AuthUser(user): AuthUser,
) -> ApiResult<StatusCode> {
    store.mark_all_notifications_read(user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
