//! The Kafka / OpenSearch side of the integration tests (`tests/index_*.rs`, pipeline, TLS,
//! `collect_es`): service checks (skip or fail), unique topics / groups / index prefixes and
//! their cleanup, the corpus as documents, producing into Kafka, running `ferroflow index`,
//! counting in OpenSearch, a fault-injecting TCP proxy and a private Kafka.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflow_engine::es::{EsClient, EsSettings};
use ferroflow_engine::index::rdkafka;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

use super::kafka::{self, TopicSpec};

pub const KAFKA: &str = "127.0.0.1:9092";
pub const ES: &str = "http://127.0.0.1:9200";

/// `true` when Kafka and OpenSearch answer. Otherwise: with FERROFLOW_REQUIRE_SERVICES set,
/// panics; without, prints why the test is skipped and returns `false`.
pub fn services_up(test: &str) -> bool {
    let tcp =
        |a: &str| TcpStream::connect_timeout(&a.parse().unwrap(), Duration::from_secs(2)).is_ok();
    let es_ok = tcp("127.0.0.1:9200")
        && es()
            .request("GET", "/", "application/json", None, false)
            .is_ok_and(|r| r.status == 200);
    let kafka_ok = tcp(KAFKA);
    if es_ok && kafka_ok {
        return true;
    }
    let why = format!(
        "{test}: services not reachable (Kafka {KAFKA}: {}, OpenSearch {ES}: {}); start them with scripts/services.sh up",
        if kafka_ok { "up" } else { "down" },
        if es_ok { "up" } else { "down" }
    );
    if std::env::var_os("FERROFLOW_REQUIRE_SERVICES").is_some_and(|v| !v.is_empty()) {
        panic!("{why} (FERROFLOW_REQUIRE_SERVICES is set)");
    }
    eprintln!("SKIPPED {why}");
    false
}

pub fn es() -> EsClient {
    es_at(ES)
}

pub fn es_at(url: &str) -> EsClient {
    EsClient::new(
        &EsSettings {
            urls: vec![url.to_string()],
            timeout: Duration::from_secs(30),
            ..Default::default()
        },
        2,
    )
    .unwrap()
}

pub fn es_json(method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let r = es()
        .request(
            method,
            path,
            "application/json",
            body.map(str::as_bytes),
            false,
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// Unique names for one test, and their cleanup on drop.
pub struct Names {
    pub tag: String,
    pub prefix: String,
    pub group: String,
    pub dlq: String,
    pub netflow: String,
    pub ipfix: String,
    pub sflow: String,
    pub brokers: String,
}

impl Names {
    pub fn new(test: &str) -> Names {
        Self::with_brokers(test, KAFKA)
    }

    pub fn with_brokers(test: &str, brokers: &str) -> Names {
        let tag = format!("{}-{test}", std::process::id());
        let prefix = format!(
            "fftest{}{}",
            std::process::id(),
            test.replace(['-', '_'], "")
        );
        let n = Names {
            group: format!("fftest-{tag}-group"),
            dlq: format!("fftest-{tag}-dead-letter"),
            netflow: format!("fftest-{tag}-netflow"),
            ipfix: format!("fftest-{tag}-ipfix"),
            sflow: format!("fftest-{tag}-sflow"),
            brokers: brokers.to_string(),
            tag,
            prefix,
        };
        n.cleanup_index();
        n
    }

    pub fn topics(&self) -> Vec<String> {
        vec![self.netflow.clone(), self.ipfix.clone(), self.sflow.clone()]
    }

    /// The flow topics and the dead-letter topic, `partitions` partitions each.
    pub fn create_topics(&self, partitions: i32) {
        let mut all = self.topics();
        all.push(self.dlq.clone());
        let specs: Vec<TopicSpec> = all.iter().map(|t| TopicSpec::new(t, partitions)).collect();
        kafka::create_topics(&self.brokers, &specs, Duration::from_secs(30));
    }

    pub fn cleanup_index(&self) {
        let _ = es().request(
            "DELETE",
            &format!("/{}-*", self.prefix),
            "application/json",
            None,
            false,
        );
        let _ = es().request(
            "DELETE",
            &format!("/_data_stream/{}-*", self.prefix),
            "application/json",
            None,
            false,
        );
        let _ = es().request(
            "DELETE",
            &format!("/_index_template/{}", self.prefix),
            "application/json",
            None,
            false,
        );
    }

    pub fn cleanup_kafka(&self) {
        let mut all = self.topics();
        all.push(self.dlq.clone());
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        kafka::delete(&self.brokers, &names, &[self.group.as_str()]);
    }

    /// Common `ferroflow index` arguments for these names (add `--es-url`).
    pub fn index_args(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "index",
            "--kafka-brokers",
            &self.brokers,
            "--topics",
            &self.topics().join(","),
            "--group",
            &self.group,
            "--index-prefix",
            &self.prefix,
            "--dead-letter-topic",
            &self.dlq,
            "--replicas",
            "0",
            "--refresh-interval",
            "1s",
            "--metrics",
            "off",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("--log-level".into());
        v.push("info".into());
        v
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        if std::env::var_os("FERROFLOW_KEEP_TEST_DATA").is_some() {
            return;
        }
        self.cleanup_index();
        self.cleanup_kafka();
    }
}

pub fn admin(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap()
}

pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000");
    c
}

/// A document for Kafka: topic, message timestamp (ms), JSON line.
#[derive(Clone, Debug)]
pub struct Doc {
    pub topic: String,
    pub ts_ms: i64,
    pub json: String,
}

/// The `ferroflow` binary: `FERROFLOW_BIN` if set (e.g. a release build for the benchmark),
/// else the one cargo built for these tests.
pub fn bin() -> String {
    std::env::var("FERROFLOW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferroflow").to_string())
}

pub use super::repo;

/// Every pcap of the corpus, sorted.
pub use super::captures;

/// `ferroflow decode` of each capture (one file at a time: captures are independent streams),
/// as documents for the topics of `n` (by `flow.protocol`), with `@timestamp` as the Kafka
/// message timestamp. `@timestamp` is the record's own time (see [`super::unclamp`]), as a
/// collector with `decoder.max_past_secs = 0` gives it.
pub fn corpus_docs(n: &Names) -> Vec<Doc> {
    let mut docs = Vec::new();
    for f in captures() {
        let out = Command::new(bin()).arg("decode").arg(&f).output().unwrap();
        assert!(out.status.success(), "decode {}", f.display());
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            if line.trim().is_empty() {
                continue;
            }
            let mut v: Value = serde_json::from_str(line).unwrap();
            // the record's own time, as a collector with `decoder.max_past_secs = 0` gives it
            let json = if super::unclamp(&mut v) {
                v.to_string()
            } else {
                line.to_string()
            };
            let topic = match v["flow"]["protocol"].as_str().unwrap_or("") {
                "ipfix" => &n.ipfix,
                "sflow5" => &n.sflow,
                _ => &n.netflow,
            };
            docs.push(Doc {
                topic: topic.clone(),
                ts_ms: rfc3339_ms(v["@timestamp"].as_str().unwrap_or("")),
                json,
            });
        }
    }
    docs
}

/// Milliseconds of `YYYY-MM-DDTHH:MM:SS[.fff...]Z` (0 when unreadable).
pub fn rfc3339_ms(s: &str) -> i64 {
    let b = s.as_bytes();
    if b.len() < 19 {
        return 0;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap_or(0);
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut ms = (days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000;
    if b.len() > 20 && b[19] == b'.' {
        let frac: String = s[20..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .take(3)
            .collect();
        ms += format!("{frac:0<3}").parse::<i64>().unwrap_or(0);
    }
    ms
}

/// `count` synthetic flow documents (unique 5-tuples), spread over the three topics.
pub fn synthetic_docs(n: &Names, count: usize) -> Vec<Doc> {
    let base_ms = 1_795_600_800_000i64; // 2026-11-25T10:00:00Z
    (0..count)
        .map(|i| {
            let ts = base_ms + (i as i64) * 7;
            let topic = match i % 3 {
                0 => &n.netflow,
                1 => &n.ipfix,
                _ => &n.sflow,
            };
            let json = format!(
                r#"{{"@timestamp":"{}","event":{{"kind":"event","action":"netflow_flow"}},"observer":{{"ip":"192.0.2.1"}},"source":{{"ip":"10.{}.{}.{}","port":{}}},"destination":{{"ip":"198.51.100.{}","port":{}}},"network":{{"transport":"tcp","iana_number":"6","bytes":{},"packets":{}}},"flow":{{"protocol":"ipfix","sampling_rate":1,"seq_test":{i}}}}}"#,
                ms_to_rfc3339(ts),
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255,
                1024 + (i % 60000),
                i % 250,
                [80, 443, 53, 22][i % 4],
                1000 + i,
                1 + i % 10
            );
            Doc {
                topic: topic.clone(),
                ts_ms: ts,
                json,
            }
        })
        .collect()
}

pub fn ms_to_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let (y, m, d) = ferroflow_engine::es::naming::civil_from_days(days);
    let sod = ms.rem_euclid(86_400_000) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}000000Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// Produces `docs` and waits until Kafka acknowledged every one.
pub fn produce(brokers: &str, docs: &[Doc]) {
    let p: ThreadedProducer<DefaultProducerContext> = producer_config(brokers).create().unwrap();
    for d in docs {
        let mut rec = BaseRecord::<(), str>::to(&d.topic)
            .payload(d.json.as_str())
            .timestamp(d.ts_ms);
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(Instant::now() < end, "produce: {e}");
                    rec = r;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    assert_eq!(p.in_flight_count(), 0);
}

/// A `ferroflow index` child; killed (SIGKILL) on drop if still running.
pub struct Indexer {
    pub child: Child,
    pub log: PathBuf,
}

impl Indexer {
    pub fn start(args: &[String], log: &Path) -> Indexer {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        Indexer {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (at most 60 s; then it is killed and this is `None`).
    pub fn sigterm(&mut self) -> Option<std::process::ExitStatus> {
        super::sigterm_wait(&mut self.child, Duration::from_secs(60))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(s)) = self.child.try_wait() {
            panic!("ferroflow index exited ({s}):\n{}", self.log_text());
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Documents in `<prefix>-*` after a refresh.
pub fn count(prefix: &str) -> u64 {
    count_at(&es(), prefix)
}

/// Documents in `<prefix>-*` of the cluster behind `c`, after a refresh (0 when it does not
/// answer).
pub fn count_at(c: &EsClient, prefix: &str) -> u64 {
    let _ = c.request(
        "POST",
        &format!("/{prefix}-*/_refresh"),
        "application/json",
        None,
        false,
    );
    match c.request(
        "GET",
        &format!("/{prefix}-*/_count"),
        "application/json",
        None,
        false,
    ) {
        Ok(r) if r.status == 200 => serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Waits until `<prefix>-*` holds `want` documents (or the time is up); returns the count.
pub fn wait_count(prefix: &str, want: u64, timeout: Duration, ix: Option<&mut Indexer>) -> u64 {
    wait_count_at(&es(), prefix, want, timeout, ix)
}

/// [`wait_count`] on the cluster behind `c`.
pub fn wait_count_at(
    c: &EsClient,
    prefix: &str,
    want: u64,
    timeout: Duration,
    ix: Option<&mut Indexer>,
) -> u64 {
    let end = Instant::now() + timeout;
    let mut ix = ix;
    let mut last = 0;
    while Instant::now() < end {
        last = count_at(c, prefix);
        if last >= want {
            // stay a moment: more than `want` would show up now
            std::thread::sleep(Duration::from_millis(1500));
            return count_at(c, prefix);
        }
        if let Some(i) = ix.as_deref_mut() {
            i.assert_running();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

/// A `key=value` number of the collector's closing `stopped:` log line.
pub fn stopped_field(log: &str, key: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("stopped:"))?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

/// Modes of [`FaultProxy`].
pub const PASS: u8 = 0;
/// Refuse: accept and close at once, and cut the connections open now.
pub const REFUSE: u8 = 1;
/// Answer every request with `503 Service Unavailable` itself.
pub const ANSWER_503: u8 = 2;
/// Answer every request with `429 Too Many Requests` itself.
pub const ANSWER_429: u8 = 3;

/// A TCP proxy on 127.0.0.1:<ephemeral> to `upstream` whose behaviour can be switched, to
/// simulate a server outage without stopping the shared server.
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub mode: Arc<AtomicU8>,
    /// Bumped on every mode change: connection threads started under an older epoch close.
    epoch: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    pub connections: Arc<AtomicU64>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let epoch = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let upstream: SocketAddr = upstream.parse().unwrap();
        let (m, e, s, c) = (
            mode.clone(),
            epoch.clone(),
            stop.clone(),
            connections.clone(),
        );
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((client, _)) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        let _ = client.set_nonblocking(false);
                        match m.load(Ordering::Relaxed) {
                            REFUSE => {
                                let _ = client.shutdown(Shutdown::Both);
                            }
                            ANSWER_503 | ANSWER_429 => {
                                let code = m.load(Ordering::Relaxed);
                                std::thread::spawn(move || answer(client, code));
                            }
                            _ => {
                                let my_epoch = e.load(Ordering::Relaxed);
                                let (e2, s2) = (e.clone(), s.clone());
                                std::thread::spawn(move || {
                                    pipe(client, upstream, my_epoch, e2, s2)
                                });
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FaultProxy {
            addr,
            mode,
            epoch,
            stop,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads one HTTP request (headers + Content-Length body) and answers `code` with a
/// connection close.
fn answer(mut c: TcpStream, code: u8) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let mut need: Option<usize> = None;
    for _ in 0..100_000 {
        match c.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
        if need.is_none() {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                need = Some(p + 4 + len);
            }
        }
        if need.is_some_and(|n| buf.len() >= n) {
            break;
        }
    }
    let (status, body) = if code == ANSWER_429 {
        (
            "429 Too Many Requests",
            r#"{"error":"injected 429","status":429}"#,
        )
    } else {
        (
            "503 Service Unavailable",
            r#"{"error":"injected 503","status":503}"#,
        )
    };
    let _ = write!(
        c,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = c.flush();
    let _ = c.shutdown(Shutdown::Both);
}

fn pipe(
    client: TcpStream,
    upstream: SocketAddr,
    epoch: u64,
    cur: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let pairs = [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server.try_clone().unwrap(), client.try_clone().unwrap()),
    ];
    let mut hs = Vec::new();
    for (mut from, mut to) in pairs {
        let (cur, stop) = (cur.clone(), stop.clone());
        hs.push(std::thread::spawn(move || {
            let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
            let mut buf = vec![0u8; 65536];
            loop {
                if cur.load(Ordering::Relaxed) != epoch || stop.load(Ordering::Relaxed) {
                    break;
                }
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }));
    }
    for h in hs {
        let _ = h.join();
    }
}

/// A message read back: key, payload, headers.
pub type Letter = (String, String, Vec<(String, String)>);

/// Reads the dead-letter topic from the beginning until `want` messages (or the time is up):
/// (key, payload, headers).
pub fn read_topic(brokers: &str, topic: &str, want: usize, timeout: Duration) -> Vec<Letter> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let end = Instant::now() + timeout;
    while out.len() < want && Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let mut hs = Vec::new();
            if let Some(h) = m.headers() {
                for i in 0..h.count() {
                    let x = h.get(i);
                    hs.push((
                        x.key.to_string(),
                        String::from_utf8_lossy(x.value.unwrap_or(&[])).into_owned(),
                    ));
                }
            }
            out.push((
                String::from_utf8_lossy(m.key().unwrap_or(&[])).into_owned(),
                String::from_utf8_lossy(m.payload().unwrap_or(&[])).into_owned(),
                hs,
            ));
        }
    }
    out
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferroflow-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A private single-node Kafka (KRaft) for tests that restart the broker: the shared one on
/// 9092 is never stopped. Uses the jars `scripts/services.sh` fetched into
/// `<repo>/.cache/maven/kafka` (or `$FERROFLOW_CACHE_DIR/maven/kafka`).
pub struct PrivateKafka {
    pub port: u16,
    pub controller_port: u16,
    pub dir: PathBuf,
    cp: String,
    child: Option<Child>,
}

/// A free TCP port on 127.0.0.1.
pub use super::free_tcp_port as free_port;

impl PrivateKafka {
    /// `Err(reason)` when Java or the Kafka jars are not there.
    pub fn new(tag: &str) -> Result<PrivateKafka, String> {
        let cache = std::env::var_os("FERROFLOW_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".cache"));
        let libs = cache.join("maven/kafka/libs");
        let has_jars = std::fs::read_dir(&libs)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13"))
            })
            .unwrap_or(false);
        if !has_jars {
            return Err(format!(
                "no Kafka jars in {} (scripts/services.sh up fetches them)",
                libs.display()
            ));
        }
        if Command::new("java").arg("-version").output().is_err() {
            return Err("no java on PATH".into());
        }
        let dir = tmpdir(&format!("kafka-{tag}"));
        let _ = std::fs::remove_dir_all(dir.join("data"));
        let (port, controller_port) = (free_port(), free_port());
        let props = format!(
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{controller_port}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\ncontroller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\nlistener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs={}\nnum.partitions=2\ndefault.replication.factor=1\nmin.insync.replicas=1\n\
             offsets.topic.replication.factor=1\noffsets.topic.num.partitions=2\n\
             transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\nauto.create.topics.enable=true\n\
             num.network.threads=1\nnum.io.threads=2\nnum.recovery.threads.per.data.dir=1\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("server.properties"), props).unwrap();
        std::fs::write(
            dir.join("log4j2.properties"),
            "status = warn\nappender.f.type = File\nappender.f.name = F\nappender.f.fileName = ${sys:kafka.logs.dir}/server.log\n\
             appender.f.layout.type = PatternLayout\nappender.f.layout.pattern = [%d] %p %m (%c)%n\n\
             rootLogger.level = INFO\nrootLogger.appenderRef.f.ref = F\n",
        )
        .unwrap();
        let cp = format!("{}/*", libs.display());
        let out = Command::new("java")
            .args([
                "-cp",
                &cp,
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                "ZmZ0ZXN0LWNsdXN0ZXIxMQ",
                "--config",
            ])
            .arg(dir.join("server.properties"))
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            // a dynamic quorum wants --standalone
            let out2 = Command::new("java")
                .args([
                    "-cp",
                    &cp,
                    "kafka.tools.StorageTool",
                    "format",
                    "--cluster-id",
                    "ZmZ0ZXN0LWNsdXN0ZXIxMQ",
                    "--standalone",
                    "--config",
                ])
                .arg(dir.join("server.properties"))
                .output()
                .map_err(|e| e.to_string())?;
            if !out2.status.success() {
                return Err(format!(
                    "kafka-storage format failed: {}{}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out2.stderr)
                ));
            }
        }
        Ok(PrivateKafka {
            port,
            controller_port,
            dir,
            cp,
            child: None,
        })
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker and waits (bounded) until it answers metadata requests.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stdout.log"))
            .unwrap();
        let child = Command::new("java")
            .args([
                "-Xms128m",
                "-Xmx384m",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            ))
            .arg(format!("-Dkafka.logs.dir={}", self.dir.display()))
            .args(["-cp", &self.cp, "kafka.Kafka"])
            .arg(self.dir.join("server.properties"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let p: ThreadedProducer<DefaultProducerContext> =
            producer_config(&self.brokers()).create().unwrap();
        let end = Instant::now() + Duration::from_secs(180);
        while Instant::now() < end {
            if p.client()
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok_and(|m| !m.brokers().is_empty())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "private Kafka did not start: {}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// SIGKILL: the broker dies without a controlled shutdown.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// GET /metrics of a `ferroflow index` and the value of one un-labelled metric.
pub fn scrape(addr: &str, name: &str) -> Option<u64> {
    let mut s = TcpStream::connect(addr).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}
