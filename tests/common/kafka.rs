//! The Kafka side of the integration tests, written once: topics made for one test (every
//! partition led before it returns) and deleted after it, counting and reading partitions to
//! their end, and the `[output.kafka]` configuration of a collector. Every wait is bounded.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ferroflow_engine::index::dead_letter::block_on;
use ferroflow_engine::index::rdkafka;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// A client configuration for `brokers` with extra librdkafka `props` (TLS, SASL).
pub fn config(brokers: &str, props: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

/// A consumer in `group` that commits nothing (reads are assigned, not subscribed).
pub fn consumer(brokers: &str, group: &str, props: &[(String, String)]) -> BaseConsumer {
    config(brokers, props)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("Kafka consumer")
}

/// A topic to create.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    /// Topic configuration on top of `retention.ms = -1`.
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    /// `partitions` partitions, one replica, no time-based retention: corpus records carry
    /// their capture-era timestamps, which a retention of days would delete at once.
    pub fn new(name: &str, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            partitions,
            replication: 1,
            config: Vec::new(),
        }
    }

    pub fn replicas(mut self, n: i32) -> TopicSpec {
        self.replication = n;
        self
    }

    pub fn set(mut self, key: &str, value: &str) -> TopicSpec {
        self.config.push((key.to_string(), value.to_string()));
        self
    }
}

/// Creates `specs` (one that already exists is kept) and waits, up to `wait`, until each
/// shows all its partitions with a leader.
pub fn create_topics(brokers: &str, specs: &[TopicSpec], wait: Duration) {
    let admin: AdminClient<DefaultClientContext> =
        config(brokers, &[]).create().expect("admin client");
    let new: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|s| {
            let mut t = NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication),
            )
            .set("retention.ms", "-1");
            for (k, v) in &s.config {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in block_on(admin.create_topics(&new, &opts)).expect("create topics") {
        if let Err((t, e)) = r {
            assert!(
                e == RDKafkaErrorCode::TopicAlreadyExists,
                "creating topic {t}: {e}"
            );
        }
    }
    let c = consumer(brokers, "fftest-topic-meta", &[]);
    for s in specs {
        let end = Instant::now() + wait;
        loop {
            let ready = c
                .fetch_metadata(Some(&s.name), Duration::from_secs(5))
                .is_ok_and(|md| {
                    md.topics().iter().any(|t| {
                        t.name() == s.name
                            && t.error().is_none()
                            && t.partitions().len() == s.partitions as usize
                            && t.partitions().iter().all(|p| p.leader() >= 0)
                    })
                });
            if ready {
                break;
            }
            assert!(
                Instant::now() < end,
                "topic {}: not every partition has a leader after {wait:?}",
                s.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Deletes `topics` and consumer `groups`; clean-up, so failures are printed, not raised.
pub fn delete(brokers: &str, topics: &[&str], groups: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = match config(brokers, &[]).create() {
        Ok(a) => a,
        Err(e) => return eprintln!("test clean-up: admin client for {brokers}: {e}"),
    };
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    if !topics.is_empty() {
        match block_on(admin.delete_topics(topics, &opts)) {
            Ok(rs) => {
                for r in rs {
                    if let Err((t, e)) = r {
                        eprintln!("test clean-up: deleting topic {t}: {e}");
                    }
                }
            }
            Err(e) => eprintln!("test clean-up: deleting topics {topics:?}: {e}"),
        }
    }
    if !groups.is_empty() {
        // a group that never committed does not exist: nothing to report
        let _ = block_on(admin.delete_groups(groups, &opts));
    }
}

/// `(partition, low, high)` watermarks of every partition of `topic`.
fn watermarks(c: &BaseConsumer, topic: &str) -> Vec<(i32, i64, i64)> {
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .unwrap_or_else(|| panic!("no metadata for {topic}"));
    t.partitions()
        .iter()
        .map(|p| {
            let (lo, hi) = c
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("watermarks of {topic}/{}: {e}", p.id()));
            (p.id(), lo, hi)
        })
        .collect()
}

/// Messages in `topics`: the sum over their partitions of high - low watermark.
pub fn messages_in(c: &BaseConsumer, topics: &[&str]) -> i64 {
    topics
        .iter()
        .flat_map(|t| watermarks(c, t))
        .map(|(_, lo, hi)| hi - lo)
        .sum()
}

/// Reads every message of `topics` from the low watermark to the high watermark seen at the
/// start, handing each to `f`; panics naming `what` if the partitions are not read to their
/// end within `timeout`. Messages come in partition order, not in a global order.
pub fn read_to_end(
    c: &BaseConsumer,
    topics: &[&str],
    timeout: Duration,
    what: &str,
    mut f: impl FnMut(&BorrowedMessage<'_>),
) {
    let mut tpl = TopicPartitionList::new();
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    for &t in topics {
        for (p, lo, hi) in watermarks(c, t) {
            if hi > lo {
                tpl.add_partition_offset(t, p, Offset::Offset(lo))
                    .expect("partition offset");
                ends.insert((t.to_string(), p), hi);
            }
        }
    }
    if ends.is_empty() {
        return;
    }
    c.assign(&tpl).expect("assign partitions");
    let end = Instant::now() + timeout;
    while !ends.is_empty() {
        assert!(
            Instant::now() < end,
            "{what}: {} partition(s) not read to their end in {timeout:?}: {ends:?}",
            ends.len()
        );
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let k = (m.topic().to_string(), m.partition());
                if ends.get(&k).is_some_and(|&hi| m.offset() + 1 >= hi) {
                    ends.remove(&k);
                }
                f(&m);
            }
            Some(Err(e)) => eprintln!("{what}: {e}"),
            None => {}
        }
    }
}

/// The `[output]` of a `ferroflow collect` to Kafka: `brokers` (None: the default), topics for
/// netflow (v5 and v9), ipfix and sflow, `extra` lines of `[output.kafka]` (e.g.
/// `queue_full = "drop"`) and librdkafka `properties`. Written to `dir/ferroflow.toml`.
pub fn write_collect_config(
    dir: &Path,
    brokers: Option<&str>,
    topics: [&str; 3],
    extra: &str,
    properties: &[(String, String)],
) -> std::path::PathBuf {
    let mut s = String::from("[output]\nkind = \"kafka\"\n\n[output.kafka]\n");
    if let Some(b) = brokers {
        let list: Vec<String> = b.split(',').map(|b| format!("\"{b}\"")).collect();
        s.push_str(&format!("brokers = [{}]\n", list.join(", ")));
    }
    s.push_str(extra);
    s.push_str(&format!(
        "\n[output.kafka.topics]\nnetflow_v5 = \"{0}\"\nnetflow_v9 = \"{0}\"\nipfix = \"{1}\"\n\
         sflow = \"{2}\"\n\n[output.kafka.properties]\n",
        topics[0], topics[1], topics[2]
    ));
    for (k, v) in properties {
        s.push_str(&format!("\"{k}\" = \"{v}\"\n"));
    }
    let p = dir.join("ferroflow.toml");
    std::fs::write(&p, s).unwrap();
    p
}

/// `ferroflow collect --config <config>` on a free loopback UDP port with `workers` workers
/// (unpinned) and metrics on `metrics` (`off` for none), its log in `dir/collect.log`; returns
/// once it listens, with its UDP address.
pub fn start_collector(
    config: &Path,
    dir: &Path,
    workers: usize,
    metrics: &str,
) -> (super::index::Indexer, String) {
    let to = format!("127.0.0.1:{}", super::free_udp_port());
    let args: Vec<String> = [
        "collect",
        "--config",
        &config.display().to_string(),
        "--listen",
        &to,
        "--metrics",
        metrics,
        "--workers",
        &workers.to_string(),
        "--no-pin",
    ]
    .map(String::from)
    .to_vec();
    // `Indexer` runs any subcommand with its log in a file
    let mut c = super::index::Indexer::start(&args, &dir.join("collect.log"));
    let end = Instant::now() + Duration::from_secs(60);
    while !c.log_text().contains("listening on") {
        c.assert_running();
        assert!(Instant::now() < end, "collector not up: {}", c.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    (c, to)
}
