//! Who may see and change what: every access rule of stories and
//! drawings, in one place. "Not seen is not found": what a user may not
//! see is `404`, exactly like what does not exist; what they may see but
//! not change is `403`. REST handlers and the realtime layer both ask here.

use std::sync::Arc;

use storybook_store::{Drawing, Store, Story, User};

use crate::cache::{CacheKey, Cached};
use crate::error::{ApiError, ApiResult};
use crate::state::Caches;

/// A story the viewer may see, from the cache when possible; drafts of
/// others are `NotFound`, exactly like missing stories.
pub async fn visible_story(
    store: &Store,
    caches: &Caches,
    id: i64,
    viewer: Option<&User>,
) -> ApiResult<Arc<Story>> {
    let generation = caches.reads.generation();
    let key = CacheKey::Story(id);
    let story = match caches.reads.get(generation, &key) {
        Some(Cached::Story(story)) => story,
        _ => {
            let story = Arc::new(store.story(id).await?);
            caches
                .reads
                .put(generation, key, Cached::Story(story.clone()));
            story
        }
    };
    if story.visible_to(viewer) {
        Ok(story)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A story the user may change: `404` if they cannot see it, `403` if they
/// can see it but not change it.
pub async fn editable_story(
    store: &Store,
    caches: &Caches,
    id: i64,
    user: &User,
) -> ApiResult<Arc<Story>> {
    let story = visible_story(store, caches, id, Some(user)).await?;
    if story.editable_by(user) {
        Ok(story)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Members of a drawing: its owner, its collaborators, and admins.
pub fn is_member(drawing: &Drawing, user: &User) -> bool {
    user.is_admin() || drawing.owner.id == user.id || drawing.collaborator_ids.contains(&user.id)
}

pub fn is_manager(drawing: &Drawing, user: &User) -> bool {
    user.is_admin() || drawing.owner.id == user.id
}

/// A drawing the viewer may see: members, or anyone once a published story
/// shows it. Anything else is `404`, like a missing drawing.
pub async fn visible_drawing(store: &Store, id: i64, viewer: Option<&User>) -> ApiResult<Drawing> {
    let drawing = store.drawing(id).await?;
    if viewer.is_some_and(|user| is_member(&drawing, user)) || store.drawing_is_public(id).await? {
        Ok(drawing)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A drawing the user may draw on (members); `403` if they only see it.
pub async fn drawable(store: &Store, id: i64, user: &User) -> ApiResult<Drawing> {
    let drawing = visible_drawing(store, id, Some(user)).await?;
    if is_member(&drawing, user) {
        Ok(drawing)
    } else {
        Err(ApiError::Forbidden)
    }
}

pub async fn managed(store: &Store, id: i64, user: &User) -> ApiResult<Drawing> {
    let drawing = visible_drawing(store, id, Some(user)).await?;
    if is_manager(&drawing, user) {
        Ok(drawing)
    } else {
        Err(ApiError::Forbidden)
    }
}
