//! Presence batched per channel (contract v1.6): joins and leaves are
//! collected between ticks of `WS_PRESENCE_INTERVAL_MS` and sent as one
//! `presence` frame with the net changes, so a lobby of a whole school costs
//! one frame per member per interval however many arrive, not one per
//! arrival. Both brokers keep a [`Batch`] per channel and share the rules
//! here; the memory broker knows every member, the Redis one learns the
//! changes (and the count) from events its scripts publish.
//!
//! **Net changes and newcomers.** A user who came and went within one
//! interval is in neither list, as the contract says. That is right for a
//! member who was there at the previous frame, but not for one who
//! subscribed in between: its `subscribed` list was taken mid-interval, so a
//! user who left before it and came back after (or came before and left
//! after) would never be corrected. Such *fresh* subscribers get a second
//! frame in which every user whose presence changed at all is listed by
//! where they are now; set operations make the repeats harmless.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::{ChannelState, Frame, Hub, Member, lock};

/// A user whose presence changed since the channel's last frame.
struct Change {
    member: Member,
    /// Present at the last frame.
    was: bool,
    /// Present now.
    now: bool,
}

/// One channel's presence changes since its last `presence` frame.
#[derive(Default)]
pub(crate) struct Batch {
    changes: HashMap<i64, Change>,
    /// The last frame carried only a count: the channel was over the list
    /// cap, so members' lists stopped and the next listed frame is whole.
    counting: bool,
    /// The count the last frame carried.
    sent_count: usize,
    /// Waiting in the broker's queue of channels to flush.
    queued: bool,
}

/// What a flush sends.
pub(crate) struct Frames {
    /// For members who have been here since the last frame (`None`: nothing).
    pub settled: Option<Frame>,
    /// For those who subscribed since (see the module's notes).
    pub fresh: Option<Frame>,
}

impl Frames {
    /// The frame a subscriber gets.
    pub fn for_subscriber(&self, fresh: bool) -> Option<&Frame> {
        if fresh {
            self.fresh.as_ref()
        } else {
            self.settled.as_ref()
        }
    }
}

impl Batch {
    /// Records that a user arrived (`present`) or left. Returns true when
    /// the channel must be put in the broker's queue to flush (once per
    /// interval).
    pub fn record(&mut self, member: &Member, present: bool) -> bool {
        match self.changes.entry(member.id) {
            Entry::Occupied(mut change) => change.get_mut().now = present,
            Entry::Vacant(slot) => {
                slot.insert(Change {
                    member: member.clone(),
                    was: !present,
                    now: present,
                });
            }
        }
        !std::mem::replace(&mut self.queued, true)
    }

    /// Whether the next flush, with this many present, sends the whole list
    /// (the channel is back under the cap after a count-only frame): the
    /// Redis broker then reads it first.
    pub fn needs_list(&self, count: usize, cap: usize) -> bool {
        self.counting && count <= cap
    }

    /// The frames for the changes since the last flush, and forgets them.
    /// `everyone` is called only when [`needs_list`](Self::needs_list).
    pub fn flush(
        &mut self,
        channel: &str,
        count: usize,
        cap: usize,
        everyone: impl FnOnce() -> Vec<Member>,
    ) -> Frames {
        self.queued = false;
        let changes = std::mem::take(&mut self.changes);
        if count > cap {
            let unchanged = self.counting && self.sent_count == count;
            self.counting = true;
            self.sent_count = count;
            if unchanged {
                return Frames::none();
            }
            let frame = changes_frame(channel, count, &[], &[]);
            return Frames::same(frame);
        }
        if self.counting {
            self.counting = false;
            self.sent_count = count;
            let mut users = everyone();
            users.sort_by_key(|m| m.id);
            let frame =
                json!({"op": "presence", "channel": channel, "count": count, "presence": users});
            return Frames::same(Frame::from(frame.to_string()));
        }
        self.sent_count = count;
        let (mut joins, mut leaves, mut back, mut passed) = (vec![], vec![], vec![], vec![]);
        for change in changes.into_values() {
            match (change.was, change.now) {
                (false, true) => joins.push(change.member),
                (true, false) => leaves.push(change.member),
                (true, true) => back.push(change.member),
                (false, false) => passed.push(change.member),
            }
        }
        let settled = (!joins.is_empty() || !leaves.is_empty())
            .then(|| changes_frame(channel, count, &joins, &leaves));
        let fresh = if back.is_empty() && passed.is_empty() {
            settled.clone()
        } else {
            joins.append(&mut back);
            leaves.append(&mut passed);
            Some(changes_frame(channel, count, &joins, &leaves))
        };
        Frames { settled, fresh }
    }
}

impl Frames {
    fn none() -> Self {
        Self {
            settled: None,
            fresh: None,
        }
    }

    fn same(frame: Frame) -> Self {
        Self {
            settled: Some(frame.clone()),
            fresh: Some(frame),
        }
    }
}

/// The channels with presence changes waiting for the next flush, one
/// per broker. Each is in it at most once (its batch knows it is queued),
/// so it is never longer than the broker's map of channels.
#[derive(Default)]
pub(crate) struct FlushQueue(Mutex<Vec<Arc<str>>>);

impl FlushQueue {
    /// Notes a user's arrival (`present`) or departure in a channel's
    /// batch, queueing the channel on its first change of the interval.
    pub fn record(&self, batch: &mut Batch, name: &Arc<str>, member: &Member, present: bool) {
        if batch.record(member, present) {
            self.again(name.clone());
        }
    }

    /// The channels to flush now; the queue starts again empty.
    pub fn take(&self) -> Vec<Arc<str>> {
        std::mem::take(&mut *lock(&self.0))
    }

    /// Queues a channel whose batch is still waiting (not flushed).
    pub fn again(&self, name: Arc<str>) {
        lock(&self.0).push(name);
    }
}

impl Hub {
    /// Notes a user's arrival or departure for the channel's next frame.
    pub(crate) fn record_presence(&self, state: &mut ChannelState, member: &Member, present: bool) {
        self.presence_queue
            .record(&mut state.batch, &state.name, member, present);
    }

    /// Sends every queued channel its `presence` frame (run every
    /// `WS_PRESENCE_INTERVAL_MS`): one frame, encoded once, to each member.
    pub fn flush_presence(&self) {
        let queued = self.presence_queue.take();
        for name in queued {
            let Some(channel) = self.channels.get(&name).map(|c| c.clone()) else {
                continue;
            };
            let mut state = lock(&channel);
            let state = &mut *state;
            let count = state.presence.len();
            let presence = &state.presence;
            let frames = state
                .batch
                .flush(&name, count, self.limits.presence_list, || {
                    presence.values().map(|(m, _)| m.clone()).collect()
                });
            for subscriber in state.subscribers.values_mut() {
                let fresh = std::mem::replace(&mut subscriber.fresh, false);
                if let Some(frame) = frames.for_subscriber(fresh)
                    && self.stats.send_or_kick(&subscriber.outbox, frame.clone())
                {
                    self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A `presence` frame of net changes (both lists empty when the channel is
/// counted, not listed). Built with `json!`, whose sorted keys put
/// `channel` first like every frame about a channel.
fn changes_frame(channel: &str, count: usize, joins: &[Member], leaves: &[Member]) -> Frame {
    let mut joins: Vec<&Member> = joins.iter().collect();
    let mut leaves: Vec<&Member> = leaves.iter().collect();
    joins.sort_by_key(|m| m.id);
    leaves.sort_by_key(|m| m.id);
    let frame = json!({
        "op": "presence", "channel": channel, "count": count, "joins": joins, "leaves": leaves,
    });
    Frame::from(frame.to_string())
}

/// The `presence` list of a `subscribed` frame: the subscriber and at most
/// `cap - 1` others, sorted by id, taken without looking at the rest, so a
/// subscribe costs the same in a lobby of ten and one of ten thousand.
pub(crate) fn capped_list<'a>(
    me: &Member,
    others: impl Iterator<Item = &'a Member>,
    cap: usize,
) -> Vec<Member> {
    let mut list = vec![me.clone()];
    list.extend(
        others
            .filter(|m| m.id != me.id)
            .take(cap.saturating_sub(1))
            .cloned(),
    );
    list.truncate(cap.max(1));
    list.sort_by_key(|m| m.id);
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn user(id: i64) -> Member {
        Member {
            id,
            username: format!("u{id}"),
            display_name: format!("U{id}"),
        }
    }

    fn ids(frame: &Frame, list: &str) -> Vec<i64> {
        let value: Value = serde_json::from_slice(frame).unwrap();
        value[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn net_changes_leave_out_who_came_and_went_except_for_newcomers() {
        let mut batch = Batch::default();
        assert!(batch.record(&user(1), true), "first change queues");
        assert!(!batch.record(&user(2), true), "queued once");
        batch.record(&user(2), false); // came and went
        batch.record(&user(3), false); // was here, left
        let frames = batch.flush("lobby", 1, 100, Vec::new);
        let settled = frames.settled.expect("a change");
        assert!(settled.starts_with(b"{\"channel\":\"lobby\""));
        assert_eq!(ids(&settled, "joins"), [1]);
        assert_eq!(ids(&settled, "leaves"), [3]);
        let fresh = frames.fresh.unwrap();
        assert_eq!(ids(&fresh, "leaves"), [2, 3], "newcomers hear who passed");

        // Left and came back: nothing for those who saw them before.
        batch.record(&user(1), false);
        batch.record(&user(1), true);
        let frames = batch.flush("lobby", 1, 100, Vec::new);
        assert!(frames.settled.is_none());
        assert_eq!(ids(&frames.fresh.unwrap(), "joins"), [1]);
    }

    #[test]
    fn over_the_cap_counts_then_lists_everyone_once_back() {
        let mut batch = Batch::default();
        batch.record(&user(1), true);
        let frames = batch.flush("lobby", 3, 2, || unreachable!());
        let value: Value = serde_json::from_slice(&frames.settled.unwrap()).unwrap();
        assert_eq!(
            (
                value["count"].as_u64(),
                value["joins"].as_array().map(Vec::len)
            ),
            (Some(3), Some(0))
        );
        batch.record(&user(4), true);
        batch.record(&user(5), false);
        assert!(
            batch
                .flush("lobby", 3, 2, || unreachable!())
                .settled
                .is_none(),
            "the same count is not sent again"
        );
        batch.record(&user(1), false);
        assert!(batch.needs_list(2, 2));
        let frames = batch.flush("lobby", 2, 2, || vec![user(9), user(4)]);
        assert_eq!(ids(frames.settled.as_ref().unwrap(), "presence"), [4, 9]);
        batch.record(&user(9), false);
        let frames = batch.flush("lobby", 1, 2, || unreachable!());
        assert_eq!(ids(&frames.settled.unwrap(), "leaves"), [9], "lists resume");
    }

    #[test]
    fn the_subscribed_list_is_capped_and_includes_the_subscriber() {
        let others: Vec<Member> = (1..=10).map(user).collect();
        let list = capped_list(&user(7), others.iter(), 3);
        assert_eq!(list.len(), 3);
        assert!(list.iter().any(|m| m.id == 7));
        assert!(list.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(capped_list(&user(7), others.iter(), 0).len(), 1);
    }
}
