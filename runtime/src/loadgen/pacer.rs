//! The rate limit: an open-loop schedule. The request that starts after `n`
//! spans is due `n / rate` seconds after the start, whichever task sends it
//! and however long earlier requests took, so a slow reply does not lower
//! the offered rate (no coordinated omission). A task that falls behind
//! sends at once until it is back on schedule.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    start: Instant,
    /// Spans per second; `None` sends as fast as the server answers.
    rate: Option<f64>,
}

impl Pacer {
    /// `spans_per_sec` of 0 (or less, or not finite) means unlimited.
    pub fn new(start: Instant, spans_per_sec: f64) -> Pacer {
        let rate = (spans_per_sec.is_finite() && spans_per_sec > 0.0).then_some(spans_per_sec);
        Pacer { start, rate }
    }

    /// When the request that follows `spans_before` spans is due.
    pub fn due(&self, spans_before: u64) -> Instant {
        match self.rate {
            Some(rate) => self.start + Duration::from_secs_f64(spans_before as f64 / rate),
            None => self.start,
        }
    }

    /// Waits until that request is due.
    pub async fn wait(&self, spans_before: u64) {
        tokio::time::sleep_until(self.due(spans_before)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn the_schedule_spaces_spans_by_the_rate() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 2_000.0);
        assert_eq!(pacer.due(0), start);
        assert_eq!(pacer.due(2_000), start + Duration::from_secs(1));
        assert_eq!(pacer.due(500), start + Duration::from_millis(250));
        let unlimited = Pacer::new(start, 0.0);
        assert_eq!(unlimited.due(1_000_000), start);
    }

    /// Four tasks share one schedule, as the load generator's do, for 0.6 s
    /// at 10,000 spans/s in batches of 50: the spans sent stay within 10% of
    /// 6,000 (never more than one batch early, a little late on a busy machine).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tasks_sharing_the_schedule_keep_the_rate() {
        const BATCH: u64 = 50;
        let start = Instant::now();
        let pacer = Pacer::new(start, 10_000.0);
        let end = start + Duration::from_millis(600);
        let next_request = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (next_request, sent) = (next_request.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let index = next_request.fetch_add(1, Ordering::Relaxed);
                    if pacer.due(index * BATCH) >= end {
                        break;
                    }
                    pacer.wait(index * BATCH).await;
                    sent.fetch_add(BATCH, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let elapsed = start.elapsed().as_secs_f64();
        let sent = sent.load(Ordering::Relaxed);
        assert_eq!(sent, 6_000, "every request due before the end was sent");
        let rate = sent as f64 / elapsed;
        assert!((9_000.0..=10_100.0).contains(&rate), "{rate} spans/s over {elapsed} s");
    }
}
