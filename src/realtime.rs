//! The realtime layer's state: the broadcast hub, who is connected, and
//! the connection limits. (The WebSocket protocol is `http/realtime.rs`.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use storybook_broadcast::{ConnId, Frame, Hub, Limits, Outbox};
use tokio::sync::Notify;

use crate::config::RealtimeArgs;

/// What the server holds of one open connection, to reach it from outside
/// its task: pushes (notifications) and closing (deactivation).
#[derive(Clone)]
pub struct ConnHandle {
    pub outbox: Outbox,
    /// Notified to close the connection with 1008 (policy).
    pub close: Arc<Notify>,
}

pub struct Realtime {
    pub hub: Hub,
    pub settings: RealtimeArgs,
    /// user id → that user's open connections.
    users: DashMap<i64, HashMap<ConnId, ConnHandle>>,
    per_ip: DashMap<IpAddr, usize>,
    connections: AtomicUsize,
    next_conn: AtomicU64,
}

/// Why a connection was refused before the upgrade.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooManyForUser,
    TooManyForAddress,
    TooManyInAll,
}

/// A reserved connection slot, released when dropped.
pub struct Slot {
    realtime: Arc<Realtime>,
    pub user_id: i64,
    pub conn: ConnId,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let realtime = &self.realtime;
        realtime.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            realtime.per_ip.remove_if_mut(&ip, |_, count| {
                *count -= 1;
                *count == 0
            });
        }
        realtime.users.remove_if_mut(&self.user_id, |_, conns| {
            conns.remove(&self.conn);
            conns.is_empty()
        });
    }
}

impl Realtime {
    pub fn new(settings: RealtimeArgs) -> Self {
        let hub = Hub::new(Limits {
            history_messages: settings.ws_history_messages,
            history_age: Duration::from_secs(settings.ws_history_secs),
            history_bytes: settings.ws_history_bytes,
        });
        Self {
            hub,
            settings,
            users: DashMap::new(),
            per_ip: DashMap::new(),
            connections: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Reserves a slot for a new connection within every limit.
    pub fn reserve(self: &Arc<Self>, user_id: i64, ip: Option<IpAddr>) -> Result<Slot, Refused> {
        let settings = &self.settings;
        if self.connections.fetch_add(1, Ordering::Relaxed) >= settings.ws_max_connections {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::TooManyInAll);
        }
        if let Some(ip) = ip {
            let mut count = self.per_ip.entry(ip).or_insert(0);
            if *count >= settings.ws_max_per_ip {
                drop(count);
                self.connections.fetch_sub(1, Ordering::Relaxed);
                return Err(Refused::TooManyForAddress);
            }
            *count += 1;
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            realtime: self.clone(),
            user_id,
            conn,
            ip,
        };
        // The user limit is checked last: the slot's drop undoes the rest.
        let user_connections = self.users.get(&user_id).map_or(0, |c| c.len());
        if user_connections >= settings.ws_max_per_user {
            return Err(Refused::TooManyForUser);
        }
        Ok(slot)
    }

    /// Makes a connection reachable for pushes and closing.
    pub fn register(&self, slot: &Slot, handle: ConnHandle) {
        self.users
            .entry(slot.user_id)
            .or_default()
            .insert(slot.conn, handle);
    }

    /// Sends a frame to every open connection of a user (notifications).
    pub fn push_to_user(&self, user_id: i64, frame: &Frame) {
        if let Some(conns) = self.users.get(&user_id) {
            for handle in conns.values() {
                if !handle.outbox.send(frame.clone()) && handle.outbox.kick() {
                    self.hub
                        .stats
                        .slow_consumers
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Closes every connection of a user (deactivation).
    pub fn disconnect_user(&self, user_id: i64) {
        if let Some(conns) = self.users.get(&user_id) {
            for handle in conns.values() {
                handle.close.notify_one();
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}
