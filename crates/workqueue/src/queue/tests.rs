//! Deterministic queue tests on tokio's paused clock: de-duplication, one worker per key,
//! delayed adds, rate-limited adds, shutdown and drain, metrics.

use std::time::Duration;

use metrics::Registry;
use tokio::time::{advance, Instant};

use super::*;
use crate::rate_limiter::ItemExponentialFailureRateLimiter;

fn queue(registry: &Registry) -> Queue<&'static str> {
    Queue::with_rate_limiter(
        "test",
        ItemExponentialFailureRateLimiter::new(Duration::from_millis(5), Duration::from_secs(1)),
        registry,
    )
}

/// Whether `get` returns within `d` of (paused, auto-advancing) time.
async fn get_within(q: &Queue<&'static str>, d: Duration) -> Option<Option<&'static str>> {
    tokio::time::timeout(d, q.get()).await.ok()
}

/// Lets spawned tasks run without moving the paused clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn adds_are_deduplicated_and_fifo() {
    let q = queue(&Registry::new());
    for k in ["a", "b", "a", "c", "b"] {
        q.add(k);
    }
    assert_eq!(q.len(), 3);
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    assert_eq!(q.get().await, Some("c"));
    assert!(q.is_empty());
}

#[tokio::test(start_paused = true)]
async fn key_being_processed_is_requeued_only_at_done() {
    let q = queue(&Registry::new());
    q.add("a");
    assert_eq!(q.get().await, Some("a"));
    q.add("a");
    q.add("a");
    assert_eq!(q.len(), 0, "a is being processed: not handed out again yet");
    assert_eq!(get_within(&q, Duration::from_secs(10)).await, None);
    q.done(&"a");
    assert_eq!(q.len(), 1, "added while processing: exactly one re-queue");
    assert_eq!(q.get().await, Some("a"));
    q.done(&"a");
    assert!(q.is_empty());
    assert_eq!(get_within(&q, Duration::from_secs(10)).await, None);
}

#[tokio::test(start_paused = true)]
async fn done_without_get_changes_nothing() {
    let q = queue(&Registry::new());
    q.add("a");
    q.done(&"a");
    q.done(&"zz");
    assert_eq!(q.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn waiting_get_is_woken_by_add() {
    let q = queue(&Registry::new());
    let getter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    settle().await;
    assert!(!getter.is_finished());
    q.add("x");
    assert_eq!(getter.await.ok(), Some(Some("x")));
}

#[tokio::test(start_paused = true)]
async fn add_after_hands_out_in_ready_order_not_before_time() {
    let q = queue(&Registry::new());
    let start = Instant::now();
    q.add_after("a", Duration::from_millis(30));
    q.add_after("b", Duration::from_millis(10));
    q.add_after("c", Duration::from_millis(20));
    assert_eq!(q.len(), 0, "nothing is ready yet");
    for (want, at) in [("b", 10), ("c", 20), ("a", 30)] {
        assert_eq!(q.get().await, Some(want));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(at),
            "{want} handed out on time"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn add_after_keeps_the_earliest_time() {
    let q = queue(&Registry::new());
    let start = Instant::now();
    q.add_after("a", Duration::from_millis(50));
    q.add_after("a", Duration::from_millis(10));
    q.add_after("a", Duration::from_millis(100));
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(start.elapsed(), Duration::from_millis(10));
    q.done(&"a");
    // The later schedules were merged into the earliest one: no second run.
    assert_eq!(get_within(&q, Duration::from_secs(1)).await, None);
}

#[tokio::test(start_paused = true)]
async fn add_after_zero_is_an_immediate_add() {
    let q = queue(&Registry::new());
    q.add_after("a", Duration::ZERO);
    assert_eq!(q.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn delayed_item_becomes_ready_in_len_and_orders_before_later_adds() {
    let q = queue(&Registry::new());
    q.add_after("late", Duration::from_millis(10));
    advance(Duration::from_millis(20)).await;
    q.add("now");
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().await, Some("late"));
    assert_eq!(q.get().await, Some("now"));
}

#[tokio::test(start_paused = true)]
async fn delayed_add_while_processing_requeues_at_done() {
    let q = queue(&Registry::new());
    q.add("a");
    assert_eq!(q.get().await, Some("a"));
    q.add_after("a", Duration::from_millis(10));
    advance(Duration::from_millis(20)).await;
    assert_eq!(q.len(), 0);
    q.done(&"a");
    assert_eq!(q.get().await, Some("a"));
}

#[tokio::test(start_paused = true)]
async fn many_sleeping_getters_all_get_delayed_items() {
    let q = queue(&Registry::new());
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        })
        .collect();
    settle().await;
    q.add_after("a", Duration::from_millis(10));
    q.add_after("b", Duration::from_millis(20));
    q.add("c");
    let mut got = Vec::new();
    for g in getters {
        let joined = tokio::time::timeout(Duration::from_secs(1), g).await;
        if let Ok(Ok(Some(k))) = joined {
            got.push(k);
        }
    }
    got.sort_unstable();
    assert_eq!(got, vec!["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_backoff_grows_and_resets_after_forget() {
    let q = queue(&Registry::new());
    let mut delays = Vec::new();
    for _ in 0..4 {
        let start = Instant::now();
        q.add_rate_limited("a");
        assert_eq!(q.get().await, Some("a"));
        delays.push(start.elapsed());
        q.done(&"a");
    }
    let ms = Duration::from_millis;
    assert_eq!(delays, vec![ms(5), ms(10), ms(20), ms(40)]);
    assert_eq!(q.num_requeues(&"a"), 4);
    q.forget(&"a");
    assert_eq!(q.num_requeues(&"a"), 0);
    let start = Instant::now();
    q.add_rate_limited("a");
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(start.elapsed(), ms(5));
}

#[tokio::test(start_paused = true)]
async fn shut_down_wakes_every_waiter_and_ignores_adds() {
    let q = queue(&Registry::new());
    let getters: Vec<_> = (0..5)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        })
        .collect();
    settle().await;
    q.add_after("delayed", Duration::from_millis(10));
    q.shut_down();
    assert!(q.is_shutting_down());
    let before = Instant::now();
    for g in getters {
        assert_eq!(g.await.ok(), Some(None));
    }
    assert_eq!(
        before.elapsed(),
        Duration::ZERO,
        "all waiters return at once"
    );
    q.add("x");
    q.add_after("y", Duration::ZERO);
    q.add_rate_limited("z");
    assert_eq!(q.len(), 0);
    assert_eq!(q.get().await, None);
    assert_eq!(get_within(&q, Duration::from_secs(1)).await, Some(None));
}

#[tokio::test(start_paused = true)]
async fn items_queued_before_shutdown_are_still_handed_out() {
    let q = queue(&Registry::new());
    q.add("a");
    q.add("b");
    q.shut_down();
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    assert_eq!(q.get().await, None);
}

#[tokio::test(start_paused = true)]
async fn shut_down_with_drain_waits_for_done() {
    let q = queue(&Registry::new());
    q.add("a");
    q.add("b");
    let a = q.get().await;
    let b = q.get().await;
    assert_eq!((a, b), (Some("a"), Some("b")));
    let drain = tokio::spawn({
        let q = q.clone();
        async move { q.shut_down_with_drain().await }
    });
    settle().await;
    advance(Duration::from_secs(60)).await;
    settle().await;
    assert!(!drain.is_finished(), "a and b are still being processed");
    q.add("c");
    assert_eq!(q.len(), 0, "adds are ignored while draining");
    q.done(&"a");
    settle().await;
    assert!(!drain.is_finished(), "b is still being processed");
    q.done(&"b");
    assert!(tokio::time::timeout(Duration::from_secs(1), drain)
        .await
        .is_ok());
    assert_eq!(q.get().await, None);
}

#[tokio::test(start_paused = true)]
async fn shut_down_with_drain_returns_at_once_when_idle() {
    let q = queue(&Registry::new());
    let waiter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    settle().await;
    q.shut_down_with_drain().await;
    assert_eq!(waiter.await.ok(), Some(None));
}

#[tokio::test(start_paused = true)]
async fn shut_down_ends_a_drain_early() {
    let q = queue(&Registry::new());
    q.add("a");
    assert_eq!(q.get().await, Some("a"));
    let drain = tokio::spawn({
        let q = q.clone();
        async move { q.shut_down_with_drain().await }
    });
    settle().await;
    assert!(!drain.is_finished());
    q.shut_down();
    assert!(tokio::time::timeout(Duration::from_secs(1), drain)
        .await
        .is_ok());
}

#[tokio::test(start_paused = true)]
async fn cancelled_get_does_not_lose_a_wakeup() {
    let q = queue(&Registry::new());
    let cancelled = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    let survivor = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    settle().await;
    cancelled.abort();
    q.add("a");
    let got = tokio::time::timeout(Duration::from_secs(1), survivor).await;
    assert_eq!(got.ok().and_then(Result::ok), Some(Some("a")));
}

#[tokio::test(start_paused = true)]
async fn metrics_follow_client_go() {
    let r = Registry::new();
    let q = queue(&r);
    q.add("a");
    q.add("b");
    q.add("a");
    advance(Duration::from_millis(3)).await;
    assert_eq!(q.get().await, Some("a"));
    advance(Duration::from_millis(7)).await;
    q.add_after("c", Duration::from_millis(1));
    let text = r.render();
    assert!(
        text.contains("workqueue_adds_total{name=\"test\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_depth{name=\"test\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_retries_total{name=\"test\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_queue_duration_seconds_bucket{name=\"test\",le=\"0.001\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_queue_duration_seconds_bucket{name=\"test\",le=\"0.01\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_queue_duration_seconds_sum{name=\"test\"} 0.003\n"),
        "{text}"
    );
    q.add("z");
    assert!(
        r.render()
            .contains("workqueue_unfinished_work_seconds{name=\"test\"} 0\n"),
        "refreshed on get/done only"
    );
    q.done(&"a");
    let text = r.render();
    assert!(
        text.contains("workqueue_work_duration_seconds_count{name=\"test\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_work_duration_seconds_sum{name=\"test\"} 0.007\n"),
        "{text}"
    );
    assert!(text.contains("workqueue_longest_running_processor_seconds{name=\"test\"} 0\n"));
    for name in [
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "workqueue_retries_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
}

#[tokio::test(start_paused = true)]
async fn unfinished_work_gauges_track_running_items() {
    let r = Registry::new();
    let q = queue(&r);
    q.add("a");
    q.add("b");
    assert_eq!(q.get().await, Some("a"));
    advance(Duration::from_secs(2)).await;
    assert_eq!(q.get().await, Some("b"));
    let text = r.render();
    assert!(
        text.contains("workqueue_unfinished_work_seconds{name=\"test\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_longest_running_processor_seconds{name=\"test\"} 2\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn unnamed_queue_has_no_metrics() {
    let r = Registry::new();
    let q = Queue::with_rate_limiter(
        "",
        ItemExponentialFailureRateLimiter::new(Duration::from_millis(1), Duration::from_secs(1)),
        &r,
    );
    q.add(1u32);
    assert_eq!(r.render(), "");
}

#[test]
fn queue_is_built_outside_a_runtime() {
    let q: Queue<String> = Queue::new("workqueue_unit_outside_runtime");
    q.add("a".to_string());
    q.add_after("b".to_string(), Duration::from_millis(1));
    assert_eq!(q.len(), 1);
    assert!(metrics::global()
        .render()
        .contains("workqueue_adds_total{name=\"workqueue_unit_outside_runtime\"} 1\n"));
}
