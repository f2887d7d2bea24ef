//! The one seam between the REST side and the realtime layer. Handlers
//! tell open connections through it that something changed: a notification was written, a user's access or
//! tokens changed, a drawing or a story stopped being what a channel of it
//! was opened for. Handlers call it in every build; the lean build's
//! [`NoEvents`] drops everything (there are no connections to tell), and
//! the realtime build's `Realtime` turns each event into revocations and
//! pushes, on every process when `REDIS_URL` is set. The system routes
//! read the layer's health and figures through it too, so no handler
//! needs to know which build it is in.

use std::future::Future;
use std::pin::Pin;

use storybook_store::Notification;

/// A boxed future, so [`Events`] can be used as `dyn Events`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something open connections must hear.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Written for `user_id`; pushed to their open connections.
    Notification {
        user_id: i64,
        notification: &'a Notification,
    },
    /// What `user_id` may read changed (removed as a collaborator, role
    /// changed): their connections check each channel again.
    AccessChanged { user_id: i64 },
    /// Tokens of `user_id` stopped working (logout, logout-all, password
    /// change, deactivation): their connections check their token, and
    /// close with 1008 when it no longer works.
    TokensRevoked { user_id: i64 },
    /// A drawing was deleted: whoever is on its channel checks it again.
    DrawingChanged { drawing_id: i64 },
    /// A story was deleted or changed (back to draft): whoever is on its
    /// channel, or on the channel of a drawing it showed, checks again.
    StoryChanged {
        story_id: i64,
        drawing_ids: &'a [i64],
    },
}

pub trait Events: Send + Sync {
    /// Acts on an event. Never fails the caller: the change that caused it
    /// has happened; what cannot be delivered now is retried or caught by
    /// the periodic check (see the realtime implementation).
    fn send<'a>(&'a self, event: Event<'a>) -> BoxFuture<'a, ()>;

    /// Which broker carries the realtime layer (`/api/features`), if any.
    fn broker_name(&self) -> Option<&'static str> {
        None
    }

    /// Whether the realtime layer can do all it promises (`/readyz`).
    fn is_healthy(&self) -> bool {
        true
    }

    /// Open connections (`/api/admin/stats`), if this build has any.
    fn connection_count(&self) -> Option<usize> {
        None
    }

    /// Appends the realtime layer's figures to `/metrics`.
    fn write_metrics(&self, _out: &mut String) {}
}

/// The lean build's events: nobody is connected to hear them.
pub struct NoEvents;

impl Events for NoEvents {
    fn send<'a>(&'a self, _event: Event<'a>) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
}
