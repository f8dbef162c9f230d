//! The set of items waiting for a delayed add: a min-heap on ready time plus an index by item,
//! so that a repeated `add_after` keeps only the earliest time (client-go's `waitingForQueue`).
//!
//! Replacing an item's time leaves its old heap entry behind; entries are matched by a sequence
//! number and stale ones are skipped when they reach the top.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

pub(crate) struct Waiting<T> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    by_seq: HashMap<u64, T>,
    by_item: HashMap<T, (Instant, u64)>,
    next_seq: u64,
}

impl<T: Clone + Eq + Hash> Waiting<T> {
    pub(crate) fn new() -> Self {
        Waiting {
            heap: BinaryHeap::new(),
            by_seq: HashMap::new(),
            by_item: HashMap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `item` at `ready_at` unless it is already scheduled no later. Returns whether
    /// the schedule changed.
    pub(crate) fn insert(&mut self, item: T, ready_at: Instant) -> bool {
        if let Some((existing, old_seq)) = self.by_item.get(&item).copied() {
            if existing <= ready_at {
                return false;
            }
            self.by_seq.remove(&old_seq);
        }
        let seq = self.next_seq;
        // Wrapping is harmless: a u64 sequence never comes back around within one heap's life.
        self.next_seq = self.next_seq.wrapping_add(1);
        self.heap.push(Reverse((ready_at, seq)));
        self.by_seq.insert(seq, item.clone());
        self.by_item.insert(item, (ready_at, seq));
        true
    }

    /// The next item whose time has come, with its ready time, earliest first (ties in insertion
    /// order).
    pub(crate) fn pop_ready(&mut self, now: Instant) -> Option<(T, Instant)> {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(item) = self.by_seq.remove(&seq) {
                self.by_item.remove(&item);
                return Some((item, at));
            }
        }
        None
    }

    /// When the earliest live entry becomes ready.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if self.by_seq.contains_key(&seq) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    pub(crate) fn len(&self) -> usize {
        self.by_item.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_item.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.by_seq.clear();
        self.by_item.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_time_wins_and_order_is_by_time() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = Waiting::new();
        assert!(w.insert("a", ms(30)));
        assert!(w.insert("b", ms(10)));
        assert!(
            !w.insert("a", ms(40)),
            "a later time must not replace an earlier one"
        );
        assert!(w.insert("a", ms(5)), "an earlier time replaces");
        assert!(w.insert("c", ms(10)));
        assert_eq!(w.len(), 3);
        assert_eq!(w.next_deadline(), Some(ms(5)));
        assert_eq!(w.pop_ready(ms(4)), None);
        assert_eq!(w.pop_ready(ms(100)), Some(("a", ms(5))));
        assert_eq!(w.pop_ready(ms(100)), Some(("b", ms(10))));
        assert_eq!(w.pop_ready(ms(100)), Some(("c", ms(10))));
        // The stale a@30 entry is skipped.
        assert_eq!(w.pop_ready(ms(100)), None);
        assert_eq!(w.next_deadline(), None);
        assert!(w.is_empty());
    }

    #[test]
    fn clear_drops_everything() {
        let t0 = Instant::now();
        let mut w = Waiting::new();
        w.insert(1, t0);
        w.clear();
        assert!(w.is_empty());
        assert_eq!(w.pop_ready(t0 + Duration::from_secs(1)), None);
    }
}
