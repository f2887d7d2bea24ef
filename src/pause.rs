//! Pause points: named places in a handler where a test holds requests
//! until a number of them have arrived, so a race (two admins demoting
//! each other) happens the same way on every run instead of by luck.
//! Nothing is armed outside tests: a pause point is then one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Barrier;

/// A place that can be paused at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PausePoint {
    /// An admin's change of a user's role or active flag, after the admin
    /// check and before the store's transaction.
    AdminUserChange,
    /// A backup download, holding its slot, before its snapshot opens.
    BackupStarted,
}

/// The armed pause points (at most one barrier each).
#[derive(Default)]
pub struct Pauses {
    armed: AtomicBool,
    barriers: Mutex<HashMap<PausePoint, Arc<Barrier>>>,
}

impl Pauses {
    /// Holds the requests that reach `point` until `parties` of them have.
    pub fn arm(&self, point: PausePoint, parties: usize) {
        let mut barriers = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
        barriers.insert(point, Arc::new(Barrier::new(parties)));
        self.armed.store(true, Ordering::Release);
    }

    /// Waits at `point` if a test armed it.
    pub async fn reach(&self, point: PausePoint) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        let barrier = {
            let barriers = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
            barriers.get(&point).cloned()
        };
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
    }
}
