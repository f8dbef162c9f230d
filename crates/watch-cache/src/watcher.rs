//! One client's watch on the cache (upstream's `cacheWatcher`): a stream that turns the shared
//! changes queued to it into the events this client sees, applying its filter the way upstream
//! does, and suppressing bookmarks that would tell it nothing.
//!
//! Filtering happens here, on the consumer's side, rather than in the dispatcher: the dispatcher
//! then does the same cheap work (a prefix check and an `Arc` clone) for every watcher, and the
//! cost of a selector is paid by the client that asked for it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::cache::{Change, Item};
use crate::Shared;

/// Decides whether a watcher (or a list) sees an object: label and field selectors, evaluated on
/// the decoded object.
pub type Filter<T> = Arc<dyn Fn(&T) -> bool + Send + Sync>;

/// A filter that lets every object through.
pub fn everything<T>() -> Filter<T> {
    Arc::new(|_: &T| true)
}

/// What a watcher yields. The `u64` is the revision the event carries (the `resourceVersion` the
/// apiserver writes into the object, or into the bookmark).
#[derive(Debug)]
pub enum Event<T> {
    /// The object was created, or started matching the filter.
    Added(Arc<T>, u64),
    /// The object changed and matched the filter before and after.
    Modified(Arc<T>, u64),
    /// The object was deleted, or stopped matching the filter. The object is its last state that
    /// matched (as upstream sends it) and the revision is that of the delete or update: the
    /// apiserver must write that revision into the object's `resourceVersion`.
    Deleted(Arc<T>, u64),
    /// Everything up to this revision has been sent.
    Bookmark(u64),
    /// The synthetic `Added` events of `Start::Now { initial_events: true, .. }` are complete; the
    /// state they describe is at this revision (a bookmark annotated `k8s.io/initial-events-end`).
    InitialEventsEnd(u64),
}

impl<T> Event<T> {
    /// The revision the event carries.
    pub fn revision(&self) -> u64 {
        match self {
            Event::Added(_, r)
            | Event::Modified(_, r)
            | Event::Deleted(_, r)
            | Event::Bookmark(r)
            | Event::InitialEventsEnd(r) => *r,
        }
    }
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        match self {
            Event::Added(o, r) => Event::Added(o.clone(), *r),
            Event::Modified(o, r) => Event::Modified(o.clone(), *r),
            Event::Deleted(o, r) => Event::Deleted(o.clone(), *r),
            Event::Bookmark(r) => Event::Bookmark(*r),
            Event::InitialEventsEnd(r) => Event::InitialEventsEnd(*r),
        }
    }
}

/// A watch on the cache. The stream ends when the cache closes the watcher (its queue filled up,
/// the cache re-listed, or the cache stopped); the client then watches again from the last
/// revision it saw. Dropping it unregisters it.
pub struct Watcher<T> {
    id: u64,
    shared: Weak<Shared<T>>,
    /// Replayed or synthetic events, sent before anything from `queue`.
    initial: VecDeque<Item<T>>,
    queue: mpsc::Receiver<Item<T>>,
    view: View<T>,
}

impl<T> Watcher<T> {
    pub(crate) fn new(
        id: u64,
        shared: Weak<Shared<T>>,
        initial: VecDeque<Item<T>>,
        queue: mpsc::Receiver<Item<T>>,
        view: View<T>,
    ) -> Self {
        Watcher {
            id,
            shared,
            initial,
            queue,
            view,
        }
    }
}

impl<T> Stream for Watcher<T> {
    type Item = Event<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<T>>> {
        let this = &mut *self;
        loop {
            let item = match this.initial.pop_front() {
                Some(item) => item,
                None => match this.queue.poll_recv(cx) {
                    Poll::Ready(Some(item)) => item,
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => return Poll::Pending,
                },
            };
            if let Some(event) = this.view.convert(item) {
                return Poll::Ready(Some(event));
            }
        }
    }
}

impl<T> Drop for Watcher<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.unregister(self.id);
        }
    }
}

/// One watcher's view of the shared changes: its filter and what it has sent so far.
pub(crate) struct View<T> {
    filter: Filter<T>,
    bookmarks: bool,
    /// Changes at or below this revision were already covered when the watch started.
    after: u64,
    /// The revision of the last event or bookmark sent.
    last: u64,
    /// Whether an event went out since the last bookmark tick: if so, and the revision did not
    /// move, a bookmark would tell the client nothing new.
    sent_since_tick: bool,
}

impl<T> View<T> {
    pub(crate) fn new(filter: Filter<T>, bookmarks: bool, after: u64) -> Self {
        View {
            filter,
            bookmarks,
            after,
            last: after,
            sent_since_tick: false,
        }
    }

    fn matches(&self, object: &Option<Arc<T>>) -> bool {
        object
            .as_deref()
            .is_some_and(|object| (self.filter)(object))
    }

    fn convert(&mut self, item: Item<T>) -> Option<Event<T>> {
        let event = match item {
            Item::Change(change) => {
                let event = self.convert_change(&change)?;
                self.last = self.last.max(change.revision);
                event
            }
            Item::Initial(object, revision) => {
                if !(self.filter)(&object) {
                    return None;
                }
                Event::Added(object, revision)
            }
            Item::InitialEnd(revision) => Event::InitialEventsEnd(revision),
            Item::Bookmark(revision) => {
                let idle = !self.sent_since_tick;
                self.sent_since_tick = false;
                if !self.bookmarks || revision < self.last || !(idle || revision > self.last) {
                    return None;
                }
                self.last = revision;
                return Some(Event::Bookmark(revision));
            }
        };
        self.sent_since_tick = true;
        Some(event)
    }

    /// Upstream's `convertToWatchEvent`: an update that makes the object match is an `Added`, one
    /// that makes it stop matching is a `Deleted` carrying the state that matched.
    fn convert_change(&mut self, change: &Change<T>) -> Option<Event<T>> {
        if change.revision <= self.after {
            return None;
        }
        let now = self.matches(&change.current);
        let before = self.matches(&change.prev);
        match (&change.current, &change.prev, now, before) {
            (Some(current), _, true, false) => Some(Event::Added(current.clone(), change.revision)),
            (Some(current), _, true, true) => {
                Some(Event::Modified(current.clone(), change.revision))
            }
            (_, Some(prev), false, true) => Some(Event::Deleted(prev.clone(), change.revision)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Pod {
        app: &'static str,
    }

    /// The name only documents the table; the filter looks at `app`.
    fn pod(_name: &'static str, app: &'static str) -> Option<Arc<Pod>> {
        Some(Arc::new(Pod { app }))
    }

    fn change(revision: u64, prev: Option<Arc<Pod>>, current: Option<Arc<Pod>>) -> Item<Pod> {
        Item::Change(Arc::new(Change {
            key: "/pods/ns/a".into(),
            revision,
            current,
            prev,
        }))
    }

    fn app_web() -> Filter<Pod> {
        Arc::new(|p: &Pod| p.app == "web")
    }

    /// Renders an event as (type, app of the object, revision) for table comparison.
    fn shape(event: Option<Event<Pod>>) -> Option<(&'static str, &'static str, u64)> {
        event.map(|e| match e {
            Event::Added(o, r) => ("ADDED", o.app, r),
            Event::Modified(o, r) => ("MODIFIED", o.app, r),
            Event::Deleted(o, r) => ("DELETED", o.app, r),
            Event::Bookmark(r) => ("BOOKMARK", "", r),
            Event::InitialEventsEnd(r) => ("INITIAL_END", "", r),
        })
    }

    #[test]
    fn filter_transitions_follow_upstream() {
        type Case = (
            &'static str,
            Option<Arc<Pod>>,
            Option<Arc<Pod>>,
            Option<(&'static str, &'static str, u64)>,
        );
        let cases: Vec<Case> = vec![
            (
                "create matching",
                None,
                pod("a", "web"),
                Some(("ADDED", "web", 5)),
            ),
            ("create not matching", None, pod("a", "db"), None),
            (
                "update both match",
                pod("a", "web"),
                pod("a", "web"),
                Some(("MODIFIED", "web", 5)),
            ),
            (
                "starts matching",
                pod("a", "db"),
                pod("a", "web"),
                Some(("ADDED", "web", 5)),
            ),
            // Upstream sends the last matching state, at the revision of the update.
            (
                "stops matching",
                pod("a", "web"),
                pod("a", "db"),
                Some(("DELETED", "web", 5)),
            ),
            ("update neither", pod("a", "db"), pod("a", "db"), None),
            (
                "delete matching",
                pod("a", "web"),
                None,
                Some(("DELETED", "web", 5)),
            ),
            ("delete not matching", pod("a", "db"), None, None),
        ];
        for (name, prev, current, want) in cases {
            let mut view = View::new(app_web(), false, 4);
            assert_eq!(
                shape(view.convert(change(5, prev, current))),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn changes_already_covered_by_the_start_are_skipped() {
        let mut view = View::new(everything(), false, 7);
        assert!(view.convert(change(7, None, pod("a", "x"))).is_none());
        assert!(view.convert(change(8, None, pod("a", "x"))).is_some());
    }

    #[test]
    fn initial_events_are_filtered_and_the_end_marker_always_passes() {
        let mut view = View::new(app_web(), false, 9);
        let web = Item::Initial(Arc::new(Pod { app: "web" }), 3);
        let db = Item::Initial(Arc::new(Pod { app: "db" }), 4);
        assert_eq!(shape(view.convert(web)), Some(("ADDED", "web", 3)));
        assert!(view.convert(db).is_none());
        assert_eq!(
            shape(view.convert(Item::InitialEnd(9))),
            Some(("INITIAL_END", "", 9))
        );
    }

    #[test]
    fn bookmarks_only_when_asked_and_when_they_say_something() {
        let mut off: View<Pod> = View::new(everything(), false, 5);
        assert!(off.convert(Item::Bookmark(5)).is_none());

        let mut view = View::new(everything(), true, 5);
        // Idle since the watch started: a keep-alive bookmark at the same revision.
        assert_eq!(
            shape(view.convert(Item::Bookmark(5))),
            Some(("BOOKMARK", "", 5))
        );
        // An event went out at 6 and nothing moved since: nothing new to say.
        assert!(view.convert(change(6, None, pod("a", "x"))).is_some());
        assert!(view.convert(Item::Bookmark(6)).is_none());
        // A sent event at 10, then one filtered out at 11: the bookmark at 11 is news.
        let mut web = View::new(app_web(), true, 9);
        assert!(web.convert(change(10, None, pod("a", "web"))).is_some());
        assert!(web.convert(change(11, None, pod("b", "db"))).is_none());
        assert_eq!(
            shape(web.convert(Item::Bookmark(11))),
            Some(("BOOKMARK", "", 11))
        );
        // Idle again: keep-alive.
        assert_eq!(
            shape(view.convert(Item::Bookmark(6))),
            Some(("BOOKMARK", "", 6))
        );
        // Events it filtered out (or other keys) moved the revision: say so.
        assert!(view.convert(change(7, None, pod("a", "x"))).is_some());
        assert_eq!(
            shape(view.convert(Item::Bookmark(9))),
            Some(("BOOKMARK", "", 9))
        );
    }

    #[test]
    fn bookmarks_below_a_future_start_are_not_sent() {
        let mut view: View<Pod> = View::new(everything(), true, 50);
        assert!(view.convert(Item::Bookmark(40)).is_none());
    }

    #[test]
    fn a_watcher_filtering_everything_still_advances_by_bookmarks() {
        let mut view = View::new(Arc::new(|_: &Pod| false), true, 1);
        assert!(view.convert(change(2, None, pod("a", "x"))).is_none());
        assert_eq!(
            shape(view.convert(Item::Bookmark(2))),
            Some(("BOOKMARK", "", 2))
        );
        assert_eq!(view.last, 2);
    }
}
