//! Notifications: written to the database first, then pushed to the
//! user's open connections (realtime build). A failure is logged, not
//! returned: the action that caused the notification already happened.

use std::sync::Arc;

use storybook_store::Store;

use crate::events::{Event, Events};

/// Writes notifications and tells the events seam about them.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    events: Arc<dyn Events>,
}

impl Notifier {
    pub fn new(store: Store, events: Arc<dyn Events>) -> Self {
        Self { store, events }
    }

    /// Writes a notification for `user_id` and pushes it to their open
    /// connections.
    pub async fn notify(&self, user_id: i64, kind: &str, data: serde_json::Value) {
        match self.store.create_notification(user_id, kind, &data).await {
            Ok(notification) => {
                let event = Event::Notification {
                    user_id,
                    notification: &notification,
                };
                self.events.send(event).await;
            }
            Err(error) => tracing::error!(%error, user_id, kind, "could not write a notification"),
        }
    }
}
