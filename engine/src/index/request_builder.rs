//! Builds `_bulk` NDJSON bodies straight from Kafka message bytes (the Vector split's
//! `request_builder`). Per message: one action line
//! `{"create":{"_index":"<name>","_id":"<topic>-<partition>-<offset>"}}` and the document bytes
//! as they came (or as the filtering stage re-encoded them). Nothing is parsed on this path.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use crate::es::naming::{day_of_ms, DailyName, Naming};
use crate::es::BulkItems;

/// One document of a batch: where it came from and where its lines are in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Index into [`Batch::topics`].
    pub topic: u16,
    pub partition: i32,
    pub offset: i64,
    /// The action line and the document line, newlines included.
    pub lines: Range<usize>,
    /// The document alone (no newline).
    pub doc: Range<usize>,
    /// The index name inside the action line.
    pub index: Range<usize>,
}

/// A `_bulk` request body and what is needed to acknowledge it.
#[derive(Debug)]
pub struct Batch {
    pub seq: u64,
    pub topics: Arc<[String]>,
    pub body: Vec<u8>,
    pub items: Vec<Item>,
    /// Messages of the batch that produced no document (empty payloads): their offsets are
    /// committed with the batch.
    pub skipped: u64,
    /// Per (topic, partition): the offset to commit (last offset of the batch + 1).
    pub commit: Vec<(u16, i32, i64)>,
    pub created: Instant,
}

impl Batch {
    pub fn item_id(&self, i: usize) -> String {
        let it = &self.items[i];
        format!(
            "{}-{}-{}",
            self.topics[it.topic as usize], it.partition, it.offset
        )
    }

    pub fn doc(&self, i: usize) -> &[u8] {
        &self.body[self.items[i].doc.clone()]
    }

    pub fn index_name(&self, i: usize) -> &str {
        std::str::from_utf8(&self.body[self.items[i].index.clone()]).unwrap_or("")
    }
}

/// What the delivery loop sends again alone: an item's action and document lines.
impl BulkItems for Batch {
    fn count(&self) -> usize {
        self.items.len()
    }
    fn body(&self) -> &[u8] {
        &self.body
    }
    fn lines(&self, i: usize) -> &[u8] {
        &self.body[self.items[i].lines.clone()]
    }
}

/// The protocol part of an index name, from the topic: the protocol name the topic ends with
/// (`netflow`, `ipfix`, `sflow`; so `fftest-12-netflow` and `netflow` both give `netflow`), else
/// the topic itself, lower-cased, with characters an index name cannot hold replaced by `_`.
pub fn protocol_of_topic(topic: &str) -> String {
    for p in ["netflow", "ipfix", "sflow"] {
        if topic.ends_with(p) {
            return p.to_string();
        }
    }
    topic
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Accumulates messages into a [`Batch`] until a limit is reached.
pub struct RequestBuilder {
    naming: Naming,
    topics: Arc<[String]>,
    protocols: Vec<String>,
    /// Per topic: the index name of the last day, so the name is formatted once a day.
    cache: Vec<DailyName>,
    max_docs: usize,
    max_bytes: usize,
    next_seq: u64,
    cur: Option<Batch>,
}

impl RequestBuilder {
    pub fn new(naming: Naming, topics: Arc<[String]>, max_docs: usize, max_bytes: usize) -> Self {
        let protocols = topics.iter().map(|t| protocol_of_topic(t)).collect();
        let cache = vec![DailyName::default(); topics.len()];
        RequestBuilder {
            naming,
            topics,
            protocols,
            cache,
            max_docs,
            max_bytes,
            next_seq: 0,
            cur: None,
        }
    }

    pub fn topic_index(&self, topic: &str) -> Option<u16> {
        self.topics
            .iter()
            .position(|t| t == topic)
            .map(|i| i as u16)
    }

    /// The index (or data stream) a document of `topic` with timestamp `ts_ms` goes to.
    pub fn index_name(&mut self, topic: u16, ts_ms: i64) -> &str {
        let t = topic as usize;
        self.cache[t].get(&self.naming, &self.protocols[t], day_of_ms(ts_ms))
    }

    fn batch(&mut self) -> &mut Batch {
        if self.cur.is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.cur = Some(Batch {
                seq,
                topics: self.topics.clone(),
                body: Vec::with_capacity(self.max_bytes + self.max_bytes / 8),
                items: Vec::with_capacity(self.max_docs.min(65_536)),
                skipped: 0,
                commit: Vec::new(),
                created: Instant::now(),
            });
        }
        self.cur.as_mut().expect("just created")
    }

    fn note_offset(b: &mut Batch, topic: u16, partition: i32, offset: i64) {
        match b
            .commit
            .iter_mut()
            .find(|(t, p, _)| *t == topic && *p == partition)
        {
            Some(e) => e.2 = e.2.max(offset + 1),
            None => b.commit.push((topic, partition, offset + 1)),
        }
    }

    /// Adds one message whose document is written by `write_doc` (which appends the JSON
    /// document to the body it is given: a copy of the payload, or the enriched document).
    pub fn push_with(
        &mut self,
        topic: u16,
        partition: i32,
        offset: i64,
        ts_ms: i64,
        write_doc: impl FnOnce(&mut Vec<u8>),
    ) {
        let name = self.index_name(topic, ts_ms).to_string();
        let topic_name = self.topics[topic as usize].clone();
        let b = self.batch();
        let start = b.body.len();
        b.body.extend_from_slice(b"{\"create\":{\"_index\":\"");
        let index_start = b.body.len();
        b.body.extend_from_slice(name.as_bytes());
        let index_end = b.body.len();
        b.body.extend_from_slice(b"\",\"_id\":\"");
        b.body.extend_from_slice(topic_name.as_bytes());
        b.body.push(b'-');
        b.body
            .extend_from_slice(itoa::Buffer::new().format(partition).as_bytes());
        b.body.push(b'-');
        b.body
            .extend_from_slice(itoa::Buffer::new().format(offset).as_bytes());
        b.body.extend_from_slice(b"\"}}\n");
        let doc_start = b.body.len();
        write_doc(&mut b.body);
        // NDJSON: a document must be one line
        let doc_end = b.body.len();
        for c in &mut b.body[doc_start..doc_end] {
            if *c == b'\n' || *c == b'\r' {
                *c = b' ';
            }
        }
        b.body.push(b'\n');
        b.items.push(Item {
            topic,
            partition,
            offset,
            lines: start..b.body.len(),
            doc: doc_start..doc_end,
            index: index_start..index_end,
        });
        Self::note_offset(b, topic, partition, offset);
    }

    /// Adds a message's payload as it is.
    pub fn push(&mut self, topic: u16, partition: i32, offset: i64, ts_ms: i64, payload: &[u8]) {
        self.push_with(topic, partition, offset, ts_ms, |body| {
            body.extend_from_slice(trim_ascii(payload))
        });
    }

    /// A message that produces no document (empty payload): committed with the batch.
    pub fn skip(&mut self, topic: u16, partition: i32, offset: i64) {
        let b = self.batch();
        b.skipped += 1;
        Self::note_offset(b, topic, partition, offset);
    }

    pub fn is_empty(&self) -> bool {
        self.cur.is_none()
    }

    pub fn len(&self) -> usize {
        self.cur.as_ref().map_or(0, |b| b.items.len())
    }

    /// A document or byte limit is reached.
    pub fn is_full(&self) -> bool {
        self.cur.as_ref().is_some_and(|b| {
            b.items.len() + b.skipped as usize >= self.max_docs || b.body.len() >= self.max_bytes
        })
    }

    /// When the current batch was started.
    pub fn started(&self) -> Option<Instant> {
        self.cur.as_ref().map(|b| b.created)
    }

    pub fn take(&mut self) -> Option<Batch> {
        self.cur.take()
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(ds: bool) -> RequestBuilder {
        RequestBuilder::new(
            Naming {
                prefix: "ff".into(),
                data_streams: ds,
            },
            vec!["t1-netflow".to_string(), "custom.Topic".to_string()].into(),
            3,
            1 << 20,
        )
    }

    #[test]
    fn action_lines_and_ids() {
        let mut b = builder(false);
        // 2026-11-25T10:00:00Z
        let ts = 1_795_600_800_000;
        b.push(0, 3, 41, ts, b"{\"a\":1}\n");
        b.push(1, 0, 7, 0, b"{\"b\":\n2}");
        assert!(!b.is_full());
        b.skip(0, 3, 42);
        assert!(b.is_full());
        let batch = b.take().unwrap();
        let text = String::from_utf8(batch.body.clone()).unwrap();
        assert_eq!(
            text,
            "{\"create\":{\"_index\":\"ff-netflow-2026.11.25\",\"_id\":\"t1-netflow-3-41\"}}\n{\"a\":1}\n\
             {\"create\":{\"_index\":\"ff-custom_topic-1970.01.01\",\"_id\":\"custom.Topic-0-7\"}}\n{\"b\": 2}\n"
        );
        assert_eq!(batch.doc(1), b"{\"b\": 2}");
        assert_eq!(batch.index_name(0), "ff-netflow-2026.11.25");
        assert_eq!(batch.item_id(1), "custom.Topic-0-7");
        assert_eq!(batch.commit, vec![(0, 3, 43), (1, 0, 8)]);
        assert_eq!(batch.count(), 2);
        assert!(batch
            .lines(1)
            .starts_with(b"{\"create\":{\"_index\":\"ff-custom_topic"));
        assert!(batch.lines(1).ends_with(b"2}\n"));
        assert_eq!(batch.seq, 0);
        assert!(b.is_empty());
    }

    #[test]
    fn data_stream_names() {
        let mut b = builder(true);
        assert_eq!(b.index_name(0, 1_795_600_800_000), "ff-netflow");
    }
}
