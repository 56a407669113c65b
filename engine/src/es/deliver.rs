//! The one delivery loop of a `_bulk` batch, shared by `ferroflow index` and the collector's
//! direct sink, with the Vector rules: a 200 whose body says `"errors":true` is read item by
//! item; items answered 429 or 5xx, and every item of a request that failed as a whole with a
//! retryable error (transport, 429, 5xx, ...: [`BulkError::is_retryable`]), are sent again after
//! a backoff, alone, under the same `_id`s; a 413 splits the request in halves; any other error
//! is final. What the loop learns goes to the caller's [`Report`]: counts, and the items
//! rejected for good (the indexer writes them to its dead-letter topic, the direct sink counts
//! and logs them).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::client::{BulkError, EsClient, ItemOutcome};
use super::retry::{sleep_unless, Backoff};

/// A `_bulk` body whose items (action line and document, newlines included) can be sent alone.
pub trait BulkItems {
    /// Items in the body.
    fn count(&self) -> usize;
    /// The whole body.
    fn body(&self) -> &[u8];
    /// The lines of item `i`.
    fn lines(&self, i: usize) -> &[u8];
}

/// An item the cluster rejected for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its position in the batch.
    pub item: usize,
    /// The item's HTTP status, or the request's (0 when it had none: a transport error).
    pub status: u16,
    /// The item's `error` object as JSON, or the request's error.
    pub reason: String,
}

/// What the caller does with what the loop learns.
pub trait Report {
    /// A bulk request of `items` items and `bytes` bytes is about to be sent.
    fn sent(&mut self, _items: usize, _bytes: usize) {}
    /// Its answer (or its failure) came after `elapsed`.
    fn answered(&mut self, _elapsed: Duration) {}
    /// `n` items were written (2xx).
    fn written(&mut self, n: u64);
    /// `n` items were already there (409 on `create`: a replay).
    fn already_written(&mut self, n: u64);
    /// A request failed as a whole (413, transport, error status).
    fn request_failed(&mut self) {}
    /// `n` items will be sent again after the backoff.
    fn retrying(&mut self, _n: u64) {}
    /// Items rejected for good. An error (the dead-letter topic did not take them) is logged
    /// and the same items are handed over again after the backoff, until the abandon flag.
    fn rejected(&mut self, items: &[Rejected], log: &mut RateLimited) -> Result<(), String>;
}

/// Logs at most once per interval, counting what it held back.
#[derive(Debug)]
pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Default for RateLimited {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimited {
    /// At most one line per 5 s.
    pub fn new() -> Self {
        Self::every(Duration::from_secs(5))
    }

    /// At most one line per `every`.
    pub fn every(every: Duration) -> Self {
        RateLimited {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log now, `n` lines were held back since the last one.
    pub fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// What one sender thread keeps between batches: the buffer of retried subsets and the rate
/// limit of its warnings.
#[derive(Debug)]
pub struct BulkSender {
    scratch: Vec<u8>,
    /// The rate limit of the loop's warnings, also handed to [`Report::rejected`].
    pub log: RateLimited,
    /// Put before the loop's warnings (`"worker 3: "`); may be empty.
    label: String,
}

impl BulkSender {
    pub fn new(label: impl Into<String>, log: RateLimited) -> Self {
        BulkSender {
            scratch: Vec::new(),
            log,
            label: label.into(),
        }
    }

    /// Delivers `batch`: returns `true` once every item is written, already there, or
    /// rejected for good and taken by [`Report::rejected`]; `false` when `abandon` was raised
    /// first (what is not reported written is not delivered).
    pub fn deliver(
        &mut self,
        client: &EsClient,
        batch: &impl BulkItems,
        backoff: &mut Backoff,
        abandon: &AtomicBool,
        report: &mut impl Report,
    ) -> bool {
        let n = batch.count();
        if n == 0 {
            return true;
        }
        let label = self.label.as_str();
        let mut queue: VecDeque<Vec<usize>> = VecDeque::from([(0..n).collect::<Vec<_>>()]);
        while let Some(chunk) = queue.pop_front() {
            if abandon.load(Ordering::Relaxed) {
                return false;
            }
            let body: &[u8] = if chunk.len() == n {
                batch.body()
            } else {
                self.scratch.clear();
                for &i in &chunk {
                    self.scratch.extend_from_slice(batch.lines(i));
                }
                &self.scratch
            };
            report.sent(chunk.len(), body.len());
            let t0 = Instant::now();
            let res = client.bulk(body, chunk.len());
            report.answered(t0.elapsed());
            let mut retry = Vec::new();
            let mut rejected: Vec<Rejected> = Vec::new();
            match res {
                Ok(None) => report.written(chunk.len() as u64),
                Ok(Some(outcomes)) => {
                    let (mut written, mut already) = (0, 0);
                    for (k, o) in outcomes.into_iter().enumerate() {
                        let item = chunk[k];
                        match o {
                            ItemOutcome::Written => written += 1,
                            ItemOutcome::AlreadyWritten => already += 1,
                            ItemOutcome::Retry { .. } => retry.push(item),
                            ItemOutcome::Rejected { status, reason } => rejected.push(Rejected {
                                item,
                                status,
                                reason,
                            }),
                        }
                    }
                    report.written(written);
                    report.already_written(already);
                }
                Err(BulkError::Status { status: 413, .. }) if chunk.len() > 1 => {
                    // too large: send it in halves, one after the other
                    report.request_failed();
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    queue.push_front(b.to_vec());
                    queue.push_front(a.to_vec());
                    continue;
                }
                Err(e) if e.is_retryable() => {
                    report.request_failed();
                    if let Some(s) = self.log.ready() {
                        tracing::warn!(
                            "{label}bulk request of {} documents failed, retrying: {e} ({s} similar suppressed)",
                            chunk.len()
                        );
                    }
                    retry = chunk;
                }
                Err(e) => {
                    report.request_failed();
                    let status = match &e {
                        BulkError::Status { status, .. } => *status,
                        _ => 0,
                    };
                    tracing::warn!(
                        "{label}bulk request of {} documents rejected as a whole: {e}",
                        chunk.len()
                    );
                    let reason = e.to_string();
                    rejected = chunk
                        .iter()
                        .map(|&item| Rejected {
                            item,
                            status,
                            reason: reason.clone(),
                        })
                        .collect();
                }
            }
            if !rejected.is_empty() {
                while let Err(e) = report.rejected(&rejected, &mut self.log) {
                    if let Some(s) = self.log.ready() {
                        tracing::warn!("{label}{e}; retrying ({s} similar suppressed)");
                    }
                    if !sleep_unless(backoff.next_delay(), abandon) {
                        return false;
                    }
                }
            }
            if !retry.is_empty() {
                report.retrying(retry.len() as u64);
                if !sleep_unless(backoff.next_delay(), abandon) {
                    return false;
                }
                queue.push_front(retry);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::testing::{bulk_server, items_response};
    use crate::es::{EsSettings, RetryPolicy};

    /// Items `{"n":i}` with ids `d<i>`.
    struct Items {
        body: Vec<u8>,
        ends: Vec<usize>,
    }

    impl Items {
        fn new(n: usize) -> Items {
            let mut body = Vec::new();
            let mut ends = Vec::new();
            for i in 0..n {
                body.extend_from_slice(
                    format!(
                        "{{\"create\":{{\"_index\":\"t\",\"_id\":\"d{i}\"}}}}\n{{\"n\":{i}}}\n"
                    )
                    .as_bytes(),
                );
                ends.push(body.len());
            }
            Items { body, ends }
        }
    }

    impl BulkItems for Items {
        fn count(&self) -> usize {
            self.ends.len()
        }
        fn body(&self) -> &[u8] {
            &self.body
        }
        fn lines(&self, i: usize) -> &[u8] {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.body[start..self.ends[i]]
        }
    }

    /// Records every call; `fail_rejected` times the rejected items are refused first.
    #[derive(Default)]
    struct Rec {
        sent: Vec<(usize, usize)>,
        written: u64,
        already: u64,
        failed_requests: u64,
        retried: u64,
        rejected: Vec<Rejected>,
        fail_rejected: u32,
    }

    impl Report for Rec {
        fn sent(&mut self, items: usize, bytes: usize) {
            self.sent.push((items, bytes));
        }
        fn written(&mut self, n: u64) {
            self.written += n;
        }
        fn already_written(&mut self, n: u64) {
            self.already += n;
        }
        fn request_failed(&mut self) {
            self.failed_requests += 1;
        }
        fn retrying(&mut self, n: u64) {
            self.retried += n;
        }
        fn rejected(&mut self, items: &[Rejected], _: &mut RateLimited) -> Result<(), String> {
            if self.fail_rejected > 0 {
                self.fail_rejected -= 1;
                return Err("dead letters not taken".into());
            }
            self.rejected.extend_from_slice(items);
            Ok(())
        }
    }

    /// Delivers `n` items to `url` (1 to 5 ms between attempts) unless `stop` is raised.
    fn run(url: &str, n: usize, stop: &AtomicBool, rec: &mut Rec) -> bool {
        let es = EsSettings {
            urls: vec![url.to_string()],
            ..Default::default()
        };
        let policy = RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        };
        let mut s = BulkSender::new("worker 0: ", RateLimited::new());
        let client = EsClient::new(&es, 1).unwrap();
        let mut backoff = Backoff::new(policy, 1);
        s.deliver(&client, &Items::new(n), &mut backoff, stop, rec)
    }

    #[test]
    fn only_failed_items_are_sent_again() {
        let (url, seen) = bulk_server(vec![
            (200, items_response(&[409, 503, 201, 400, 429])),
            (502, "{}".into()),
            (200, items_response(&[429, 201])),
        ]);
        let mut rec = Rec {
            fail_rejected: 2,
            ..Default::default()
        };
        assert!(run(&url, 5, &AtomicBool::new(false), &mut rec));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[0].lines().count(), 10);
        // attempt 2 (whole-request 502) and 3: items 1 and 4 only
        for s in &seen[1..3] {
            assert!(s.contains("\"d1\"") && s.contains("\"d4\""), "{s}");
            assert_eq!(s.lines().count(), 4);
        }
        // attempt 4: item 1 only (item 4 was created in attempt 3)
        assert!(seen[3].contains("\"d1\"") && seen[3].lines().count() == 2);
        assert_eq!(rec.sent.len(), 4);
        assert_eq!(rec.sent[0], (5, Items::new(5).body.len()));
        assert_eq!((rec.written, rec.already), (3, 1));
        assert_eq!(rec.retried, 2 + 2 + 1);
        assert_eq!(rec.failed_requests, 1);
        // refused twice by the caller, then taken: once
        assert_eq!(rec.rejected.len(), 1);
        assert_eq!((rec.rejected[0].item, rec.rejected[0].status), (3, 400));
        assert!(rec.rejected[0].reason.contains("e400"));
    }

    #[test]
    fn too_large_is_split_and_a_final_4xx_rejects_the_request() {
        let (url, seen) = bulk_server(vec![
            (413, "too large".into()),
            (200, r#"{"errors":false}"#.into()),
            (400, r#"{"error":"bad request"}"#.into()),
        ]);
        let mut rec = Rec::default();
        assert!(run(&url, 4, &AtomicBool::new(false), &mut rec));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].lines().count(), 4); // first half
        assert_eq!(seen[2].lines().count(), 4); // second half, rejected as a whole
        assert_eq!(rec.written, 2);
        assert_eq!(rec.failed_requests, 2);
        let items: Vec<(usize, u16)> = rec.rejected.iter().map(|r| (r.item, r.status)).collect();
        assert_eq!(items, vec![(2, 400), (3, 400)]);
    }

    #[test]
    fn abandon_stops_retrying_and_reports_undelivered() {
        let (url, seen) = bulk_server(vec![(503, "{}".into()); 1000]);
        let mut rec = Rec::default();
        // raised before: nothing is sent; an empty batch is delivered at once
        assert!(!run(&url, 2, &AtomicBool::new(true), &mut rec));
        assert!(seen.lock().unwrap().is_empty());
        assert!(run(&url, 0, &AtomicBool::new(true), &mut rec));
        // raised while the cluster answers 503: the retries stop
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let raise = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            raise.store(true, Ordering::Relaxed);
        });
        assert!(!run(&url, 2, &stop, &mut rec));
        t.join().unwrap();
        assert_eq!(rec.written, 0);
        assert!(rec.retried >= 2, "{}", rec.retried);
    }

    #[test]
    fn rate_limit_counts_what_it_held_back() {
        let mut r = RateLimited::every(Duration::from_secs(60));
        assert_eq!(r.ready(), Some(0));
        assert_eq!(r.ready(), None);
        assert_eq!(r.ready(), None);
        let mut r2 = RateLimited::every(Duration::ZERO);
        assert_eq!(r2.ready(), Some(0));
        assert_eq!(r2.ready(), Some(0));
    }
}
