//! The dead-letter topic: documents the cluster rejected for good (a 4xx other than 409 and
//! 429, e.g. a mapping conflict). The message is the original document, unchanged, keyed by its
//! `_id`; headers carry the reason, so a fixed pipeline can replay the payloads as they are:
//!
//! | header | value |
//! |---|---|
//! | `ferroflow.error.status` | the item's HTTP status (`400`) |
//! | `ferroflow.error.reason` | the item's `error` object as JSON (type, reason, caused_by) |
//! | `ferroflow.source.topic` / `.partition` / `.offset` | where the document was read |
//! | `ferroflow.index` | the index it was meant for |
//!
//! A send counts only when Kafka acknowledged it (acks=all, idempotent producer); the batch's
//! offsets are committed after that.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Runs a future to completion on this thread (the futures here are rdkafka delivery reports,
/// completed by librdkafka's own thread).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// One rejected document.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub id: &'a str,
    pub index: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub status: u16,
    pub reason: &'a str,
    pub doc: &'a [u8],
}

/// Why dead letters could not be written (retryable: the batch waits and tries again).
#[derive(Debug, thiserror::Error)]
#[error("dead-letter topic {topic}: {message}")]
pub struct DeadLetterError {
    pub topic: String,
    pub message: String,
}

impl DeadLetterError {
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Where dead letters go (the Kafka topic; tests use an in-memory one).
pub trait DeadLetterSink: Send + Sync {
    fn topic(&self) -> &str;
    /// Writes every letter; returns once all are durable.
    fn send_all(&self, letters: &[DeadLetter<'_>]) -> Result<(), DeadLetterError>;
}

impl DeadLetterSink for DeadLetterProducer {
    fn topic(&self) -> &str {
        DeadLetterProducer::topic(self)
    }
    fn send_all(&self, letters: &[DeadLetter<'_>]) -> Result<(), DeadLetterError> {
        DeadLetterProducer::send_all(self, letters)
    }
}

/// Producer of the dead-letter topic, shared by the sender threads.
pub struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterProducer {
    pub fn new(
        brokers: &str,
        topic: &str,
        extra: &[(String, String)],
    ) -> Result<Self, DeadLetterError> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5");
        for (k, v) in extra {
            cfg.set(k, v);
        }
        let producer = cfg.create().map_err(|e| DeadLetterError {
            topic: topic.to_string(),
            message: e.to_string(),
        })?;
        Ok(DeadLetterProducer {
            producer,
            topic: topic.to_string(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends every letter and waits until Kafka acknowledged all of them.
    pub fn send_all(&self, letters: &[DeadLetter<'_>]) -> Result<(), DeadLetterError> {
        let err = |m: String| DeadLetterError {
            topic: self.topic.clone(),
            message: m,
        };
        let mut pending = Vec::with_capacity(letters.len());
        for l in letters {
            let status = l.status.to_string();
            let partition = l.partition.to_string();
            let offset = l.offset.to_string();
            let headers = OwnedHeaders::new_with_capacity(6)
                .insert(Header {
                    key: "ferroflow.error.status",
                    value: Some(status.as_str()),
                })
                .insert(Header {
                    key: "ferroflow.error.reason",
                    value: Some(l.reason),
                })
                .insert(Header {
                    key: "ferroflow.source.topic",
                    value: Some(l.topic),
                })
                .insert(Header {
                    key: "ferroflow.source.partition",
                    value: Some(partition.as_str()),
                })
                .insert(Header {
                    key: "ferroflow.source.offset",
                    value: Some(offset.as_str()),
                })
                .insert(Header {
                    key: "ferroflow.index",
                    value: Some(l.index),
                });
            let rec = FutureRecord::to(&self.topic)
                .key(l.id)
                .payload(l.doc)
                .headers(headers);
            match self.producer.send_result(rec) {
                Ok(f) => pending.push(f),
                Err((e, _)) => return Err(err(format!("enqueue: {e}"))),
            }
        }
        for f in pending {
            match block_on(f) {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(err(format!("delivery: {e}"))),
                Err(_) => return Err(err("producer closed".to_string())),
            }
        }
        Ok(())
    }
}
