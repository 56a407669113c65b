//! The seed's Kafka design at its real size, on the cluster of `scripts/services.sh up cluster`:
//! three Kafka brokers (KRaft), topics with 9 partitions, replication factor 3,
//! min.insync.replicas 2, and a two-node OpenSearch cluster (index replicas 1).
//!
//! * the script's topics have that layout, and a replication factor larger than the live
//!   brokers is refused, naming both numbers;
//! * `ferroflow generate` -> `ferroflow collect` (acks=all, idempotent producer) while the leader
//!   broker of a partition is SIGKILLed and restarted: every acknowledged flow is in Kafka once
//!   (read back, counted by its payload, unique per flow with `--distinct-flows`) and in
//!   OpenSearch once;
//! * `ferroflow index` scaled 1 -> 3 -> 9 processes in one group while traffic flows, one of
//!   them SIGKILLed: every flow indexed once;
//! * an OpenSearch data node SIGKILLed under indexing load: nothing lost, nothing doubled.
//!
//! The tests skip, with a message, when the cluster does not answer; with
//! FERROFLOW_REQUIRE_CLUSTER set they fail instead (CI). They run one at a time (they kill
//! members of one shared cluster) and put every killed member back before they return. Figures
//! (records/s, failover times) are printed on stderr as `FIGURE` lines (`--nocapture`).

mod common;

use std::collections::HashSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::index::{bin, count_at, es_at, free_port, repo, stopped_field, tmpdir, Indexer};
use common::kafka::{self, TopicSpec};
use ferroflow_engine::es::EsClient;
use ferroflow_engine::index::dead_letter::block_on;
use ferroflow_engine::index::rdkafka;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use serde_json::Value;

/// One test at a time: they kill members of the same cluster.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cluster's brokers (`scripts/services.sh env`: FERROFLOW_CLUSTER_KAFKA_BROKERS).
fn brokers() -> String {
    std::env::var("FERROFLOW_CLUSTER_KAFKA_BROKERS")
        .unwrap_or_else(|_| "127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292".into())
}

/// The OpenSearch nodes: node 1 (cluster manager + data) and node 2 (data).
fn es_urls() -> [String; 2] {
    let first = std::env::var("FERROFLOW_CLUSTER_ES_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:19200".into());
    let port: u16 = first.rsplit(':').next().unwrap().parse().unwrap();
    let second = format!("{}:{}", &first[..first.rfind(':').unwrap()], port + 1);
    [first, second]
}

fn es1() -> EsClient {
    es_at(&es_urls()[0])
}

/// `true` when every broker and both OpenSearch nodes answer. Otherwise: with
/// FERROFLOW_REQUIRE_CLUSTER set, panics; without, prints why the test is skipped.
fn cluster_up(test: &str) -> bool {
    let tcp = |a: &str| {
        a.parse()
            .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    };
    let mut down = Vec::new();
    for b in brokers().split(',') {
        if !tcp(b) {
            down.push(format!("Kafka {b}"));
        }
    }
    for u in es_urls() {
        let ok = es_at(&u)
            .request("GET", "/", "application/json", None, false)
            .is_ok_and(|r| r.status == 200);
        if !ok {
            down.push(format!("OpenSearch {u}"));
        }
    }
    if down.is_empty() {
        return true;
    }
    let why = format!(
        "{test}: cluster not reachable ({} down); start it with scripts/services.sh up cluster",
        down.join(", ")
    );
    if std::env::var_os("FERROFLOW_REQUIRE_CLUSTER").is_some_and(|v| !v.is_empty()) {
        panic!("{why} (FERROFLOW_REQUIRE_CLUSTER is set)");
    }
    eprintln!("SKIPPED {why}");
    false
}

/// `scripts/services.sh ARGS...`: (success, stderr).
fn services(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let o = Command::new(repo().join("scripts/services.sh"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run scripts/services.sh");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A member SIGKILLed by a test; started again (`services.sh up MEMBER`) when dropped, so that
/// a failing test does not leave the cluster short for the next one.
struct Killed {
    member: String,
    at: Instant,
    restarted: bool,
}

impl Killed {
    fn kill(member: &str) -> Killed {
        let (ok, err) = services(&["kill", member], &[]);
        assert!(ok, "services.sh kill {member}: {err}");
        Killed {
            member: member.to_string(),
            at: Instant::now(),
            restarted: false,
        }
    }

    /// Starts the member again; returns the seconds `up` took (until healthy, topics checked).
    fn restart(&mut self) -> f64 {
        let t = Instant::now();
        let (ok, err) = services(&["up", &self.member], &[]);
        assert!(ok, "services.sh up {}: {err}", self.member);
        self.restarted = true;
        t.elapsed().as_secs_f64()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if !self.restarted {
            let _ = services(&["up", &self.member], &[]);
        }
    }
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap()
}

fn consumer(group: &str) -> BaseConsumer {
    kafka::consumer(&brokers(), group, &[])
}

/// Unique topics, group and index prefix of one test; deleted on drop.
struct Names {
    prefix: String,
    group: String,
    dlq: String,
    netflow: String,
    ipfix: String,
    sflow: String,
}

impl Names {
    fn new(test: &str) -> Names {
        let tag = format!("{}-{test}", std::process::id());
        let n = Names {
            prefix: format!(
                "fftestc{}{}",
                std::process::id(),
                test.replace(['-', '_'], "")
            ),
            group: format!("fftest-{tag}-group"),
            dlq: format!("fftest-{tag}-dead-letter"),
            netflow: format!("fftest-{tag}-netflow"),
            ipfix: format!("fftest-{tag}-ipfix"),
            sflow: format!("fftest-{tag}-sflow"),
        };
        n.cleanup_index();
        n
    }

    fn topics(&self) -> Vec<String> {
        vec![self.netflow.clone(), self.ipfix.clone(), self.sflow.clone()]
    }

    /// The seed's layout: 9 partitions, replication factor 3, min.insync.replicas 2.
    fn create_topics(&self) {
        let mut all = self.topics();
        all.push(self.dlq.clone());
        let specs: Vec<TopicSpec> = all
            .iter()
            .map(|t| {
                TopicSpec::new(t, 9)
                    .replicas(3)
                    .set("min.insync.replicas", "2")
                    .set("retention.ms", "86400000")
            })
            .collect();
        kafka::create_topics(&brokers(), &specs, Duration::from_secs(60));
    }

    fn cleanup_index(&self) {
        for path in [
            format!("/{}-*", self.prefix),
            format!("/_index_template/{}", self.prefix),
        ] {
            let _ = es1().request("DELETE", &path, "application/json", None, false);
        }
    }

    /// `ferroflow index` arguments: both OpenSearch nodes, index replicas 1.
    fn index_args(&self) -> Vec<String> {
        let [a, b] = es_urls();
        [
            "index",
            "--kafka-brokers",
            &brokers(),
            "--topics",
            &self.topics().join(","),
            "--group",
            &self.group,
            "--index-prefix",
            &self.prefix,
            "--dead-letter-topic",
            &self.dlq,
            "--es-url",
            &format!("{a},{b}"),
            "--replicas",
            "1",
            "--refresh-interval",
            "1s",
            "--threads",
            "1",
            "--metrics",
            "off",
            "--log-level",
            "info",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        if std::env::var_os("FERROFLOW_KEEP_TEST_DATA").is_some() {
            return;
        }
        self.cleanup_index();
        let mut all = self.topics();
        all.push(self.dlq.clone());
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        kafka::delete(&brokers(), &names, &[self.group.as_str()]);
    }
}

/// A `ferroflow collect --output kafka` to the cluster (defaults: acks=all, idempotence), its
/// log in `dir`; returns it with its UDP and metrics addresses once it listens.
fn start_collector(n: &Names, dir: &Path) -> (Indexer, String, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = kafka::write_collect_config(
        dir,
        Some(&brokers()),
        [&n.netflow, &n.ipfix, &n.sflow],
        "",
        &[],
    );
    let (c, to) = kafka::start_collector(&config, dir, 2, &metrics);
    (c, to, metrics)
}

/// One metric of `/metrics`, summed over its labels (0 when it does not answer).
fn metric(addr: &str, name: &str) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0.0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// `ferroflow generate` in a thread: distinct IPFIX flows (every record its own source
/// address), two exporters; joins to the number of flows sent.
fn generate(to: &str, flows_per_s: u32, seconds: u32) -> JoinHandle<u64> {
    let to = to.to_string();
    std::thread::spawn(move || {
        let o = Command::new(bin())
            .args([
                "generate",
                "--protocol",
                "ipfix",
                "--to",
                &to,
                "--flow-rate",
                &flows_per_s.to_string(),
                "--duration",
                &seconds.to_string(),
                "--exporters",
                "2",
                "--distinct-flows",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "generate: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
        assert_eq!(r["send_errors"].as_u64(), Some(0), "{r}");
        r["flows"].as_u64().unwrap()
    })
}

/// SIGTERM the collector; checks that it stopped cleanly with nothing failed, dropped or
/// undelivered, and returns the documents Kafka acknowledged. When the kernel dropped no
/// datagram, that is every flow the generator sent.
fn stop_collector(mut c: Indexer, sent: u64) -> u64 {
    let status = c.sigterm().expect("the collector stops");
    let log = c.log_text();
    assert!(status.success(), "{log}");
    let delivered = stopped_field(&log, "delivered").expect("a stopped: line");
    for key in ["failed", "dropped", "undelivered", "decode_errors"] {
        assert_eq!(stopped_field(&log, key), Some(0), "{key}: {log}");
    }
    let drops = stopped_field(&log, "socket_drops").unwrap_or(0);
    assert_eq!(
        stopped_field(&log, "records"),
        Some(delivered),
        "every decoded record acknowledged: {log}"
    );
    if drops == 0 {
        assert_eq!(delivered, sent, "every flow sent acknowledged: {log}");
    } else {
        eprintln!("note: the kernel dropped {drops} datagram(s) of the generator (busy machine)");
        assert!(delivered < sent && delivered > 0, "{log}");
    }
    delivered
}

/// Every message of `topics`, read back from the start: (messages, distinct payloads).
fn read_back(group: &str, topics: &[String]) -> (u64, u64) {
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut total = 0u64;
    kafka::read_to_end(
        &consumer(group),
        &topics,
        Duration::from_secs(180),
        "reading back",
        |m| {
            total += 1;
            seen.insert(m.payload().unwrap_or_default().to_vec());
        },
    );
    (total, seen.len() as u64)
}

/// Broker id leading `partition` of `topic` (-1: none).
fn leader(c: &BaseConsumer, topic: &str, partition: i32) -> i32 {
    c.fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()
        .and_then(|md| {
            md.topics()[0]
                .partitions()
                .iter()
                .find(|p| p.id() == partition)
                .map(|p| p.leader())
        })
        .unwrap_or(-1)
}

/// Waits until `<prefix>-*` holds `want` documents on the cluster (bounded); the count after a
/// moment's wait, to see any surplus. Panics when an indexer died.
fn wait_indexed(prefix: &str, want: u64, timeout: Duration, ix: &mut [Indexer]) -> u64 {
    let c = es1();
    let end = Instant::now() + timeout;
    let mut last = 0;
    while Instant::now() < end {
        last = count_at(&c, prefix);
        if last >= want {
            std::thread::sleep(Duration::from_secs(3));
            return count_at(&c, prefix);
        }
        for i in ix.iter_mut() {
            i.assert_running();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

fn stop_all(ix: Vec<Indexer>) {
    for mut i in ix {
        let s = i.sigterm();
        assert!(s.is_some_and(|s| s.success()), "{}", i.log_text());
    }
}

fn dir(tag: &str) -> PathBuf {
    let d = tmpdir(&format!("cluster-{tag}"));
    for f in ["collect.log", "index.log"] {
        let _ = std::fs::remove_file(d.join(f));
    }
    d
}

#[test]
fn script_topics_have_the_seed_layout_and_too_few_brokers_are_refused() {
    let _g = serial();
    if !cluster_up("script_topics_have_the_seed_layout") {
        return;
    }
    let c = consumer("fftest-cluster-meta");
    for t in ["netflow", "ipfix", "sflow"] {
        let md = c.fetch_metadata(Some(t), Duration::from_secs(10)).unwrap();
        let topic = &md.topics()[0];
        assert!(topic.error().is_none(), "topic {t}: {:?}", topic.error());
        assert_eq!(topic.partitions().len(), 9, "topic {t}: partitions");
        for p in topic.partitions() {
            assert_eq!(p.replicas().len(), 3, "topic {t} partition {}", p.id());
        }
        let res = block_on(admin().describe_configs(
            &[ResourceSpecifier::Topic(t)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        ))
        .unwrap();
        let cfg = res[0].as_ref().unwrap();
        let get = |k: &str| cfg.get(k).and_then(|e| e.value.clone());
        assert_eq!(get("min.insync.replicas").as_deref(), Some("2"), "{t}");
        assert_eq!(get("retention.ms").as_deref(), Some("86400000"), "{t}");
    }

    // a replication factor above the three live brokers: a clear error naming both numbers,
    // and no topic made
    let topic = format!("fftest-{}-rf", std::process::id());
    let (ok, err) = services(
        &["up", "kafka-c1"],
        &[
            ("FERROFLOW_CLUSTER_REPLICATION_FACTOR", "4"),
            ("FERROFLOW_CLUSTER_MIN_INSYNC", "2"),
            ("FERROFLOW_CLUSTER_TOPICS", &topic),
            ("FERROFLOW_CLUSTER_TOPICS_TIMEOUT", "3"),
        ],
    );
    assert!(!ok, "RF 4 on 3 brokers accepted: {err}");
    assert!(
        err.contains("replication factor 4 is larger than the 3 live broker(s)"),
        "{err}"
    );
    let md = c
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert!(
        md.topics()[0].error().is_some(),
        "topic {topic} was created"
    );
    // the cluster is unharmed
    assert!(cluster_up("after the refused topic"));
}

#[test]
fn leader_broker_killed_under_traffic_every_acknowledged_flow_once() {
    let _g = serial();
    if !cluster_up("leader_broker_killed_under_traffic") {
        return;
    }
    let n = Names::new("failover");
    n.create_topics();
    let dir = dir("failover");
    let (collector, to, metrics) = start_collector(&n, &dir);
    let t0 = Instant::now();
    let (rate, seconds) = (1500, 20);
    let gen = generate(&to, rate, seconds);
    std::thread::sleep(Duration::from_secs(6));

    let c = consumer("fftest-cluster-meta");
    let victim = leader(&c, &n.ipfix, 0);
    assert!(victim > 0, "partition 0 of {} has no leader", n.ipfix);
    let led: Vec<i32> = {
        let md = c
            .fetch_metadata(Some(&n.ipfix), Duration::from_secs(5))
            .unwrap();
        md.topics()[0]
            .partitions()
            .iter()
            .filter(|p| p.leader() == victim)
            .map(|p| p.id())
            .collect()
    };
    let before = metric(&metrics, "ferroflow_sink_delivered_total");
    let mut killed = Killed::kill(&format!("kafka-c{victim}"));
    // failover: every partition the victim led has another leader
    let end = Instant::now() + Duration::from_secs(60);
    let failover = loop {
        if led
            .iter()
            .all(|&p| !matches!(leader(&c, &n.ipfix, p), l if l == victim || l < 0))
        {
            break killed.at.elapsed();
        }
        assert!(Instant::now() < end, "no new leader 60 s after the kill");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(6));
    let during = metric(&metrics, "ferroflow_sink_delivered_total");
    assert!(
        during > before,
        "nothing delivered with one broker down ({before} -> {during})"
    );
    let restart = killed.restart();

    let sent = gen.join().unwrap();
    let traffic = t0.elapsed();
    let delivered = stop_collector(collector, sent);
    let (total, distinct) = read_back(&format!("fftest-{}-readback", n.group), &n.topics());
    assert_eq!(total, delivered, "messages in Kafka = flows acknowledged");
    assert_eq!(distinct, total, "a flow in Kafka twice");

    let t1 = Instant::now();
    let mut ix = vec![Indexer::start(&n.index_args(), &dir.join("index.log"))];
    let got = wait_indexed(&n.prefix, delivered, Duration::from_secs(300), &mut ix);
    let indexing = t1.elapsed();
    assert_eq!(got, delivered, "{}", ix[0].log_text());
    stop_all(ix);
    eprintln!(
        "FIGURE failover: {sent} flows sent at {rate}/s for {seconds} s, {delivered} acknowledged \
         ({:.0} records/s through collect -> 3 brokers, the kill and restart included), broker {victim} SIGKILLed: \
         new leaders for its {} partition(s) after {:.2} s, broker back (services.sh up) in {restart:.1} s; \
         Kafka: {total} messages, {distinct} distinct; indexed {got} in {:.1} s ({:.0} docs/s, 1 indexer, 2 nodes, replicas 1)",
        delivered as f64 / traffic.as_secs_f64(),
        led.len(),
        failover.as_secs_f64(),
        indexing.as_secs_f64(),
        got as f64 / indexing.as_secs_f64()
    );
}

#[test]
fn indexers_scaled_1_3_9_with_one_killed_index_every_flow_once() {
    let _g = serial();
    if !cluster_up("indexers_scaled_1_3_9") {
        return;
    }
    let n = Names::new("scale");
    n.create_topics();
    let dir = dir("scale");
    let (collector, to, _metrics) = start_collector(&n, &dir);
    let t0 = Instant::now();
    let gen = generate(&to, 1000, 30);
    let log = |i: usize| dir.join(format!("index-{i}.log"));
    let mut ix = vec![Indexer::start(&n.index_args(), &log(0))];
    // one indexer at work before the group grows (bounded wait)
    let end = Instant::now() + Duration::from_secs(120);
    while count_at(&es1(), &n.prefix) == 0 {
        assert!(
            Instant::now() < end,
            "the first indexer indexed nothing in 120 s"
        );
        ix[0].assert_running();
        std::thread::sleep(Duration::from_millis(300));
    }
    for i in 1..3 {
        ix.push(Indexer::start(&n.index_args(), &log(i)));
    }
    std::thread::sleep(Duration::from_secs(6));
    for i in 3..9 {
        ix.push(Indexer::start(&n.index_args(), &log(i)));
    }
    // nine members in the group, each with a partition of its own
    let c = consumer("fftest-cluster-meta");
    let end = Instant::now() + Duration::from_secs(90);
    let members = loop {
        let m = c
            .fetch_group_list(Some(&n.group), Duration::from_secs(5))
            .ok()
            .and_then(|g| g.groups().first().map(|g| g.members().len()))
            .unwrap_or(0);
        if m == 9 || Instant::now() >= end {
            break m;
        }
        for i in ix.iter_mut() {
            i.assert_running();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(members, 9, "members of group {}", n.group);
    std::thread::sleep(Duration::from_secs(3));
    // one of them dies without a word: its partitions go to the others, from the last offsets
    // committed (what it had indexed past them is indexed again, under the same ids)
    ix.remove(4).sigkill();

    let sent = gen.join().unwrap();
    let traffic = t0.elapsed();
    let delivered = stop_collector(collector, sent);
    let (total, distinct) = read_back(&format!("fftest-{}-readback", n.group), &n.topics());
    assert_eq!(total, delivered, "messages in Kafka = flows acknowledged");
    assert_eq!(distinct, total, "a flow in Kafka twice");
    let got = wait_indexed(&n.prefix, delivered, Duration::from_secs(300), &mut ix);
    let all = t0.elapsed();
    assert_eq!(got, delivered, "{}", ix[0].log_text());
    stop_all(ix);
    eprintln!(
        "FIGURE scale: {sent} flows at 1000/s, {delivered} acknowledged ({:.0} records/s), \
         indexers 1 -> 3 -> 9 (one SIGKILLed), {got} indexed once, all in {:.1} s from the first flow",
        delivered as f64 / traffic.as_secs_f64(),
        all.as_secs_f64()
    );
}

#[test]
fn opensearch_data_node_killed_under_load_loses_nothing() {
    let _g = serial();
    if !cluster_up("opensearch_data_node_killed") {
        return;
    }
    let n = Names::new("osnode");
    n.create_topics();
    let dir = dir("osnode");
    let (collector, to, _metrics) = start_collector(&n, &dir);
    let gen = generate(&to, 1000, 20);
    let log = |i: usize| dir.join(format!("index-{i}.log"));
    let mut ix: Vec<Indexer> = (0..3)
        .map(|i| Indexer::start(&n.index_args(), &log(i)))
        .collect();
    // under load: indexing has begun on both nodes
    let c = es1();
    let end = Instant::now() + Duration::from_secs(120);
    while count_at(&c, &n.prefix) < 3000 {
        assert!(Instant::now() < end, "nothing indexed in 120 s");
        for i in ix.iter_mut() {
            i.assert_running();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let at_kill = count_at(&c, &n.prefix);
    let mut killed = Killed::kill("opensearch-c2");

    let sent = gen.join().unwrap();
    let delivered = stop_collector(collector, sent);
    let got = wait_indexed(&n.prefix, delivered, Duration::from_secs(300), &mut ix);
    let recovered = killed.at.elapsed();
    assert_eq!(got, delivered, "{}", ix[0].log_text());
    assert!(at_kill < delivered, "the node died after all was indexed");
    let restart = killed.restart();
    // the node is back: the replicas fill again (bounded: 8 waits of 20 s), the index still
    // holds each flow once
    let t = Instant::now();
    let mut h = Value::Null;
    for _ in 0..8 {
        if let Ok(r) = c.request(
            "GET",
            &format!(
                "/_cluster/health/{}-*?wait_for_status=green&timeout=20s",
                n.prefix
            ),
            "application/json",
            None,
            false,
        ) {
            h = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            if h["status"] == "green" {
                break;
            }
        }
    }
    assert_eq!(h["status"], "green", "{h}");
    let green = t.elapsed();
    assert_eq!(count_at(&c, &n.prefix), delivered);
    stop_all(ix);
    eprintln!(
        "FIGURE opensearch: data node SIGKILLed at {at_kill} of {delivered} documents (3 indexers), \
         all {got} indexed once {:.1} s after the kill; node back in {restart:.1} s, green {:.1} s later",
        recovered.as_secs_f64(),
        green.as_secs_f64()
    );
}
