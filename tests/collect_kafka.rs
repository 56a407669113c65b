//! `ferroflow collect --output kafka` against a real Kafka broker on 127.0.0.1:9092
//! (`scripts/services.sh up kafka`).
//!
//! Every test creates its own topics (`fftest-<pid>-<n>-<what>`, with the partitions it needs)
//! through the admin API and deletes them at the end; the broker is shared, and the topics
//! `netflow`, `ipfix`, `sflow` are never touched.
//!
//! Without a broker the tests that need one print `SKIPPED` and pass, unless
//! `FERROFLOW_REQUIRE_SERVICES` is set (CI sets it after starting the services): then a missing
//! broker is a failure.
//!
//! The throughput measurement is an ignored test:
//! `FF_RATE=<flows/s> FF_SECONDS=<s> cargo test --release --test collect_kafka -- --ignored --nocapture throughput`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::kafka::{self, TopicSpec};
use ferroflow_engine::sink::kafka::rdkafka;
use ferroflow_io::pcap::PcapReader;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use serde_json::Value;

const BROKER: &str = "127.0.0.1:9092";
const WORKERS: usize = 2;

// ---------------------------------------------------------------------------------------------
// the broker, topics, a small executor for the admin API

fn require_services() -> bool {
    std::env::var("FERROFLOW_REQUIRE_SERVICES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether a Kafka broker answers on [`BROKER`]; skips (or fails, when services are required).
fn broker_or_skip(test: &str) -> bool {
    let answers = TcpStream::connect_timeout(&BROKER.parse().unwrap(), Duration::from_secs(2))
        .is_ok()
        && consumer("probe")
            .fetch_metadata(None, Duration::from_secs(5))
            .is_ok();
    if answers {
        return true;
    }
    if require_services() {
        panic!(
            "{test}: no Kafka broker answers on {BROKER} and FERROFLOW_REQUIRE_SERVICES is set \
             (start it with scripts/services.sh up kafka)"
        );
    }
    eprintln!(
        "SKIPPED {test}: no Kafka broker answers on {BROKER} (scripts/services.sh up kafka; \
         FERROFLOW_REQUIRE_SERVICES=1 makes this a failure)"
    );
    false
}

fn consumer(tag: &str) -> BaseConsumer {
    kafka::consumer(BROKER, &format!("fftest-{}-{tag}", std::process::id()), &[])
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Unique name stem for this test's topics and files.
fn stem(tag: &str) -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!(
        "fftest-{}-{}-{}-{tag}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        ms % 1_000_000
    )
}

/// Topics created for one test and deleted when it ends (also when it fails).
struct Topics(Vec<String>);

impl Topics {
    fn create(specs: &[TopicSpec]) -> Topics {
        kafka::create_topics(BROKER, specs, Duration::from_secs(30));
        Topics(specs.iter().map(|s| s.name.clone()).collect())
    }
}

impl Drop for Topics {
    fn drop(&mut self) {
        let names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        kafka::delete(BROKER, &names, &[]);
    }
}

/// A consumed message.
#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
    timestamp_ms: Option<i64>,
    doc: Value,
}

/// Every message of `topics`, from the beginning up to the high watermarks (read first), in
/// partition order.
fn consume_all(topics: &[&str], tag: &str) -> Vec<Msg> {
    let mut out = Vec::new();
    kafka::read_to_end(
        &consumer(tag),
        topics,
        Duration::from_secs(90),
        "consuming",
        |m| {
            let payload = m.payload().expect("message without a value");
            out.push(Msg {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                timestamp_ms: match m.timestamp() {
                    Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
                    Timestamp::NotAvailable => None,
                },
                doc: serde_json::from_slice(payload).expect("message value is not JSON"),
            });
        },
    );
    out.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    out
}

/// Messages in `topic` (sum over partitions of high - low watermarks).
fn count_messages(topic: &str) -> i64 {
    kafka::messages_in(&consumer("count"), &[topic])
}

// ---------------------------------------------------------------------------------------------
// the collector process

struct TempDir(PathBuf);

impl TempDir {
    fn new(stem: &str) -> TempDir {
        let d = std::env::temp_dir().join(stem);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `[output.kafka]` of a test config: topics for netflow (v5 and v9), ipfix and sflow.
fn write_config(
    dir: &Path,
    topics: [&str; 3],
    queue_full: &str,
    properties: &[(&str, &str)],
) -> PathBuf {
    let props: Vec<(String, String)> = properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    kafka::write_collect_config(
        dir,
        None,
        topics,
        &format!("queue_full = \"{queue_full}\"\n"),
        &props,
    )
}

struct Collector {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    listen: SocketAddr,
    metrics: SocketAddr,
}

/// How a collector run ended.
struct Ended {
    status: ExitStatus,
    stderr: String,
}

/// A UDP address on 127.0.0.1 that was free a moment ago (the configuration wants a fixed
/// port; the collector logs the address it bound, which the test reads back).
fn free_udp_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn collect_cmd(config: &Path, brokers: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferroflow"));
    c.args(["collect", "--config"])
        .arg(config)
        .arg("--listen")
        .arg(free_udp_port().to_string())
        .args([
            "--output",
            "kafka",
            "--kafka-brokers",
            brokers,
            "--metrics",
            "127.0.0.1:0",
            "--workers",
            &WORKERS.to_string(),
            "--no-pin",
            "--log-level",
            "info",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Start the collector and wait until it listens; `Err` if it exits first.
fn start_collector(config: &Path, brokers: &str) -> Result<Collector, Ended> {
    let mut child = collect_cmd(config, brokers)
        .spawn()
        .expect("spawn ferroflow");
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let lines = stderr.clone();
    let pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(pipe).lines() {
            let Ok(l) = l else { break };
            if std::env::var_os("FF_TEST_VERBOSE").is_some() {
                eprintln!("  | {l}");
            }
            lines.lock().unwrap().push(l);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (mut listen, mut metrics) = (None, None);
        for l in stderr.lock().unwrap().iter() {
            if let Some(a) = after(l, "listening on ") {
                listen = a.parse::<SocketAddr>().ok();
            }
            if let Some(a) = after(l, "metrics on http://") {
                metrics = a.trim_end_matches("/metrics").parse::<SocketAddr>().ok();
            }
        }
        if let (Some(listen), Some(metrics)) = (listen, metrics) {
            return Ok(Collector {
                child,
                stderr,
                reader: Some(reader),
                listen,
                metrics,
            });
        }
        if let Some(status) = child.try_wait().unwrap() {
            let _ = reader.join();
            let stderr = stderr.lock().unwrap().join("\n");
            return Err(Ended { status, stderr });
        }
        assert!(
            Instant::now() < deadline,
            "collector did not start listening in 60 s:\n{}",
            stderr.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first whitespace-delimited word after `marker` in `line`.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let i = line.find(marker)? + marker.len();
    line[i..].split_whitespace().next()
}

impl Collector {
    /// `/metrics`, each sample summed over its labels.
    fn metrics(&self) -> BTreeMap<String, f64> {
        let mut s = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        let mut out = BTreeMap::new();
        for l in body.lines().filter(|l| l.starts_with("ferroflow_")) {
            let (name, v) = match (l.find(['{', ' ']), l.rsplit_once(' ')) {
                (Some(i), Some((_, v))) => (&l[..i], v),
                _ => continue,
            };
            if let Ok(v) = v.parse::<f64>() {
                *out.entry(name.to_string()).or_insert(0.0) += v;
            }
        }
        out
    }

    /// Wait (bounded) until the collector has received `datagrams` datagrams, its sinks have
    /// taken `docs` documents (or, when `None`, the count stopped moving) and nothing is in
    /// flight. Sink counters are published about once a second, hence the settling.
    fn wait_settled(
        &self,
        datagrams: u64,
        docs: Option<u64>,
        timeout: Duration,
    ) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + timeout;
        let mut last_accepted = f64::NAN;
        loop {
            let m = self.metrics();
            let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
            let accepted = get("ferroflow_sink_accepted_total");
            let enough = match docs {
                Some(d) => accepted >= d as f64,
                None => accepted > 0.0 && accepted == last_accepted,
            };
            if (get("ferroflow_packets_received_total") >= datagrams as f64
                && enough
                && get("ferroflow_sink_in_flight") == 0.0)
                || Instant::now() >= deadline
            {
                return m;
            }
            last_accepted = accepted;
            std::thread::sleep(Duration::from_millis(1500));
        }
    }

    /// SIGTERM, then wait (bounded) for the exit.
    fn stop(mut self) -> Ended {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "collector did not exit 120 s after SIGTERM:\n{}",
                    self.stderr.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stderr = self.stderr.lock().unwrap().join("\n");
        Ended { status, stderr }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // only reached when a test fails before stop(): do not leave the process behind
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `key=value` numbers of the collector's "stopped:" summary line.
fn summary(stderr: &str) -> HashMap<String, u64> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("stopped: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// traffic

/// The UDP datagrams of a capture: (source, payload), in file order.
fn datagrams(path: &Path) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut r = PcapReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(d) = r.next_datagram() {
        let d = d.unwrap();
        out.push((d.src, d.payload.to_vec()));
    }
    out
}

/// What `ferroflow decode` makes of one capture.
fn decode(path: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_ferroflow"))
        .args(["decode", "-q"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "decode {}", path.display());
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// One sending socket per exporter of the captures, on 127.0.0.2.. (distinct exporters for
/// the collector: address and port).
struct Senders {
    socks: Vec<UdpSocket>,
    index: HashMap<(usize, SocketAddr), usize>,
}

impl Senders {
    fn new() -> Senders {
        Senders {
            socks: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The socket standing for exporter `src` of capture `file`.
    fn get(&mut self, file: usize, src: SocketAddr) -> &UdpSocket {
        let n = self.socks.len();
        let i = *self.index.entry((file, src)).or_insert(n);
        if i == n {
            let ip = IpAddr::from([127, 0, 0, 2 + (n % 200) as u8]);
            self.socks
                .push(UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind sender"));
        }
        &self.socks[i]
    }
}

fn observer(doc: &Value) -> SocketAddr {
    let ip: IpAddr = doc["observer"]["ip"].as_str().unwrap().parse().unwrap();
    let port = doc["flow"]["exporter_port"].as_u64().unwrap() as u16;
    SocketAddr::new(ip, port)
}

/// Milliseconds since the epoch of `"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"`.
fn rfc3339_ms(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, mo, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (h, mi, sec) = (n(11, 13), n(14, 16), n(17, 19));
    let frac_ms = if s.as_bytes().get(19) == Some(&b'.') {
        n(20, 23)
    } else {
        0
    };
    // days from civil (Howard Hinnant)
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + frac_ms
}

fn topic_of(doc: &Value, topics: [&str; 3]) -> String {
    match doc["flow"]["protocol"].as_str().unwrap() {
        "netflow_v5" | "netflow_v9" => topics[0].to_string(),
        "ipfix" => topics[1].to_string(),
        "sflow5" => topics[2].to_string(),
        p => panic!("unknown flow.protocol {p}"),
    }
}

/// What may legitimately differ between `decode` and `collect` for the same datagram: the
/// exporter address (the test sends from 127.0.0.x, the capture has the original) and, for
/// sFlow, which carries no clock, the export time (`flow.export_time`, and `@timestamp` when
/// it is the export time): the capture time in `decode`, the receive time in `collect`.
/// Returns the export time removed, if any.
fn normalise(doc: &mut Value, exporter: SocketAddr) -> Option<String> {
    // a capture's records older than the decoder's window have the receive time as
    // @timestamp when replayed live: their own time back
    if let Some(t) = doc
        .get_mut("netflow")
        .and_then(|n| n.as_object_mut())
        .and_then(|n| n.remove("original_timestamp"))
    {
        doc["@timestamp"] = t;
    }
    doc["observer"]["ip"] = Value::String(exporter.ip().to_string());
    doc["flow"]["exporter_port"] = Value::from(exporter.port());
    if doc["flow"]["protocol"] == "sflow5" {
        let t = doc["flow"]
            .as_object_mut()
            .unwrap()
            .remove("export_time")
            .and_then(|v| v.as_str().map(str::to_string));
        if t.is_some() && doc.get("@timestamp").and_then(Value::as_str) == t.as_deref() {
            doc.as_object_mut().unwrap().remove("@timestamp");
        }
        return t;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// the tests

/// Every document `ferroflow decode` finds in the corpus arrives once, in its protocol's topic,
/// with the flow end time as message timestamp and each exporter's documents in send order in
/// one partition.
#[test]
fn corpus_through_kafka_once_in_order() {
    if !broker_or_skip("corpus_through_kafka_once_in_order") {
        return;
    }
    let stem = stem("corpus");
    let names = [
        format!("{stem}-netflow"),
        format!("{stem}-ipfix"),
        format!("{stem}-sflow"),
    ];
    let topics = [names[0].as_str(), names[1].as_str(), names[2].as_str()];
    let specs: Vec<TopicSpec> = names.iter().map(|n| TopicSpec::new(n, 4)).collect();
    let _guard = Topics::create(&specs);
    let dir = TempDir::new(&stem);
    let config = write_config(&dir.0, topics, "block", &[]);

    // expected: decode each capture on its own (each is an independent stream, as each is sent
    // from its own sockets), grouped by exporter in file order
    let files = common::captures();
    let mut expected: HashMap<(usize, SocketAddr), Vec<Value>> = HashMap::new();
    let mut expected_total = 0usize;
    for (i, f) in files.iter().enumerate() {
        for d in decode(f) {
            expected_total += 1;
            expected.entry((i, observer(&d))).or_default().push(d);
        }
    }
    assert!(expected_total > 4000, "corpus too small: {expected_total}");

    let c = start_collector(&config, BROKER)
        .unwrap_or_else(|e| panic!("collector did not start ({}):\n{}", e.status, e.stderr));
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut senders = Senders::new();
    let mut sent = 0u64;
    for (i, f) in files.iter().enumerate() {
        for (src, payload) in datagrams(f) {
            let s = senders.get(i, src);
            s.send_to(&payload, c.listen).expect("send");
            sent += 1;
            if sent % 32 == 0 {
                std::thread::sleep(Duration::from_millis(2)); // well below the socket buffers
            }
        }
    }
    let m = c.wait_settled(sent, Some(expected_total as u64), Duration::from_secs(90));
    let t1 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(
        m.get("ferroflow_socket_drops_total")
            .copied()
            .unwrap_or(0.0),
        0.0,
        "the kernel dropped datagrams: the test sent too fast for this machine"
    );
    let ended = c.stop();
    assert!(
        ended.status.success(),
        "collector exit {}:\n{}",
        ended.status,
        ended.stderr
    );
    let sum = summary(&ended.stderr);
    assert_eq!(sum["packets"], sent, "{}", ended.stderr);
    assert_eq!(sum["delivered"], expected_total as u64, "{}", ended.stderr);
    for k in ["failed", "dropped", "undelivered", "socket_drops"] {
        assert_eq!(sum[k], 0, "{k}:\n{}", ended.stderr);
    }

    let msgs = consume_all(&topics, &stem);
    assert_eq!(
        msgs.len(),
        expected_total,
        "messages in Kafka vs documents decode finds"
    );

    // back from the collector's exporter (sending socket) to the capture's exporter
    let mut origin: HashMap<SocketAddr, (usize, SocketAddr)> = HashMap::new();
    for (&(file, src), &i) in &senders.index {
        origin.insert(senders.socks[i].local_addr().unwrap(), (file, src));
    }
    let mut got: HashMap<(usize, SocketAddr), Vec<Value>> = HashMap::new();
    let mut partition_of: HashMap<(usize, SocketAddr), (String, i32)> = HashMap::new();
    for m in msgs {
        let via = observer(&m.doc);
        let &(file, src) = origin
            .get(&via)
            .unwrap_or_else(|| panic!("document from an exporter the test did not use: {via}"));
        assert_eq!(m.topic, topic_of(&m.doc, topics), "topic of {}", m.doc);
        assert_eq!(m.key.as_deref(), Some(via.ip().to_string().as_str()), "key");
        let ts = m.doc["@timestamp"].as_str().expect("@timestamp");
        assert_eq!(
            m.timestamp_ms,
            Some(rfc3339_ms(ts)),
            "message timestamp vs {ts}"
        );
        // one exporter, one partition (per topic: v9 and IPFIX of one exporter differ)
        let place = (m.topic.clone(), m.partition);
        let key = (file, src);
        match partition_of.get(&key) {
            Some(p) if p.0 == place.0 => {
                assert_eq!(
                    p.1,
                    place.1,
                    "exporter {src} of {} split over partitions",
                    files[file].display()
                )
            }
            _ => {
                partition_of.insert(key, place);
            }
        }
        let mut doc = m.doc;
        if let Some(t) = normalise(&mut doc, src) {
            let ms = rfc3339_ms(&t);
            assert!(
                (t0 - 1000..=t1 + 1000).contains(&ms),
                "sFlow export time {t} is not the receive time"
            );
        }
        got.entry(key).or_default().push(doc);
    }
    let mut mismatched = Vec::new();
    for (key, want) in &mut expected {
        for d in want.iter_mut() {
            normalise(d, key.1);
        }
        let have = got.remove(key).unwrap_or_default();
        if &have != want {
            let first = want
                .iter()
                .zip(&have)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(have.len()));
            mismatched.push(format!(
                "{} exporter {}: decode {} documents, Kafka {}; first difference at #{first}:\n  decode: {}\n  kafka:  {}",
                files[key.0].display(),
                key.1,
                want.len(),
                have.len(),
                want.get(first).map(Value::to_string).unwrap_or_default(),
                have.get(first).map(Value::to_string).unwrap_or_default(),
            ));
        }
    }
    assert!(
        got.is_empty(),
        "documents from unexpected exporters: {:?}",
        got.keys()
    );
    assert!(
        mismatched.is_empty(),
        "{} exporters differ:\n{}",
        mismatched.len(),
        mismatched.join("\n")
    );
    eprintln!(
        "corpus: {} captures, {} exporters, {sent} datagrams, {expected_total} documents, all in Kafka once and in order",
        files.len(),
        senders.socks.len()
    );
}

/// Traffic for the counter tests: the datagrams of one IPFIX capture (templates and data of
/// one exporter), `rounds` times, from one socket; returns (datagrams, documents) sent.
fn send_ipfix_rounds(to: SocketAddr, rounds: usize) -> (u64, u64) {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/corpus/pmacct/402-IPFIXv10-BMP-IPv6-high-availability_traffic-00.pcap",
    );
    let docs = decode(&f).len() as u64;
    let dgs = datagrams(&f);
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    let mut n = 0;
    for _ in 0..rounds {
        for (_, p) in &dgs {
            s.send_to(p, to).unwrap();
            n += 1;
            if n % 32 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    (n, docs * rounds as u64)
}

/// A broker that does not answer: the collector refuses to start, naming the brokers and the
/// topic, within the metadata timeout. (Needs no broker.)
#[test]
fn unreachable_broker_stops_the_start_with_a_clear_message() {
    let stem = stem("nobroker");
    let dir = TempDir::new(&stem);
    let t = format!("{stem}-netflow");
    let config = write_config(&dir.0, [&t, &t, &t], "block", &[]);
    let t0 = Instant::now();
    let e = match start_collector(&config, "127.0.0.1:1") {
        Ok(c) => panic!("started without a broker:\n{}", c.stop().stderr),
        Err(e) => e,
    };
    assert_eq!(e.status.code(), Some(1), "{}", e.stderr);
    assert!(
        e.stderr.contains("127.0.0.1:1") && e.stderr.contains(&t),
        "the error names the brokers and the topic:\n{}",
        e.stderr
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
}

/// A topic that does not exist: a clear error, and the check does not create it.
#[test]
fn missing_topic_stops_the_start_and_is_not_created() {
    if !broker_or_skip("missing_topic_stops_the_start_and_is_not_created") {
        return;
    }
    let stem = stem("missing");
    let present = format!("{stem}-present");
    let absent = format!("{stem}-absent");
    let _guard = Topics::create(&[TopicSpec::new(&present, 2)]);
    let dir = TempDir::new(&stem);
    let config = write_config(&dir.0, [&present, &absent, &present], "block", &[]);
    let e = match start_collector(&config, BROKER) {
        Ok(c) => panic!("started with a missing topic:\n{}", c.stop().stderr),
        Err(e) => e,
    };
    assert_eq!(e.status.code(), Some(1), "{}", e.stderr);
    assert!(
        e.stderr.contains(&absent) && e.stderr.contains("does not exist"),
        "{}",
        e.stderr
    );
    let md = consumer("missing")
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert!(
        md.topics().iter().all(|t| t.name() != absent),
        "the start-up check created topic {absent}"
    );
}

/// queue_full = "drop" with a one-message local queue that lingers: documents are dropped and
/// counted, and Kafka holds exactly the delivered ones.
#[test]
fn full_queue_with_drop_policy_counts_dropped() {
    if !broker_or_skip("full_queue_with_drop_policy_counts_dropped") {
        return;
    }
    let stem = stem("drop");
    let t = format!("{stem}-ipfix");
    let _guard = Topics::create(&[TopicSpec::new(&t, 2)]);
    let dir = TempDir::new(&stem);
    let config = write_config(
        &dir.0,
        [&t, &t, &t],
        "drop",
        &[("queue.buffering.max.messages", "1"), ("linger.ms", "500")],
    );
    let c = start_collector(&config, BROKER).unwrap_or_else(|e| panic!("{}", e.stderr));
    let (dgs, docs) = send_ipfix_rounds(c.listen, 2);
    let m = c.wait_settled(dgs, Some(docs), Duration::from_secs(30));
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
    let (accepted, delivered, dropped, failed) = (
        get("ferroflow_sink_accepted_total"),
        get("ferroflow_sink_delivered_total"),
        get("ferroflow_sink_dropped_total"),
        get("ferroflow_sink_failed_total"),
    );
    assert_eq!(accepted, docs, "{m:?}");
    assert!(dropped > 0, "nothing dropped: {m:?}");
    assert_eq!(failed, 0, "{m:?}");
    assert_eq!(accepted, delivered + dropped, "{m:?}");
    let ended = c.stop();
    assert!(ended.status.success(), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("documents dropped"),
        "a warning says so:\n{}",
        ended.stderr
    );
    let sum = summary(&ended.stderr);
    assert_eq!(sum["dropped"], dropped);
    assert_eq!(
        count_messages(&t) as u64,
        sum["delivered"],
        "Kafka holds the delivered ones"
    );
}

/// queue_full = "block" with a tiny local queue: the workers wait for room, nothing is dropped
/// or lost. The topic has one partition for two workers: they share it, and say so.
#[test]
fn full_queue_with_block_policy_waits_and_loses_nothing() {
    if !broker_or_skip("full_queue_with_block_policy_waits_and_loses_nothing") {
        return;
    }
    let stem = stem("block");
    let t = format!("{stem}-ipfix");
    let _guard = Topics::create(&[TopicSpec::new(&t, 1)]);
    let dir = TempDir::new(&stem);
    let config = write_config(
        &dir.0,
        [&t, &t, &t],
        "block",
        &[("queue.buffering.max.messages", "5"), ("linger.ms", "20")],
    );
    let c = start_collector(&config, BROKER).unwrap_or_else(|e| panic!("{}", e.stderr));
    let (dgs, docs) = send_ipfix_rounds(c.listen, 2);
    let m = c.wait_settled(dgs, Some(docs), Duration::from_secs(90));
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
    assert_eq!(get("ferroflow_sink_accepted_total"), docs, "{m:?}");
    assert_eq!(get("ferroflow_sink_delivered_total"), docs, "{m:?}");
    assert_eq!(get("ferroflow_sink_dropped_total"), 0, "{m:?}");
    assert_eq!(get("ferroflow_sink_failed_total"), 0, "{m:?}");
    assert_eq!(get("ferroflow_socket_drops_total"), 0, "{m:?}");
    let ended = c.stop();
    assert!(ended.status.success(), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("waited for room"),
        "the waits are reported:\n{}",
        ended.stderr
    );
    assert!(
        ended
            .stderr
            .contains("has 1 partition(s) for 2 workers: worker 1 shares partition 0"),
        "{}",
        ended.stderr
    );
    assert_eq!(count_messages(&t) as u64, docs);
}

/// The broker refuses every write (a topic whose largest batch is smaller than one
/// document): the delivery reports fail, the documents are counted `failed` (not delivered,
/// not lost silently) and the exit status says so.
#[test]
fn refused_deliveries_are_counted_failed_and_fail_the_exit() {
    if !broker_or_skip("refused_deliveries_are_counted_failed_and_fail_the_exit") {
        return;
    }
    let stem = stem("refused");
    let t = format!("{stem}-ipfix");
    let _guard = Topics::create(&[TopicSpec::new(&t, 2).set("max.message.bytes", "100")]);
    let dir = TempDir::new(&stem);
    let config = write_config(
        &dir.0,
        [&t, &t, &t],
        "block",
        &[("message.timeout.ms", "3000")],
    );
    let c = start_collector(&config, BROKER).unwrap_or_else(|e| panic!("{}", e.stderr));
    let (dgs, docs) = send_ipfix_rounds(c.listen, 1);
    let m = c.wait_settled(dgs, Some(docs), Duration::from_secs(30));
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
    assert_eq!(get("ferroflow_sink_accepted_total"), docs, "{m:?}");
    assert_eq!(get("ferroflow_sink_failed_total"), docs, "{m:?}");
    assert_eq!(get("ferroflow_sink_delivered_total"), 0, "{m:?}");
    let ended = c.stop();
    assert_eq!(ended.status.code(), Some(1), "{}", ended.stderr);
    assert!(
        ended.stderr.contains(&format!("{docs} documents failed")),
        "{}",
        ended.stderr
    );
    assert!(
        ended.stderr.contains(
            "documents failed (last error: MessageSizeTooLarge (Broker: Message size too large)"
        ),
        "the reason is logged:\n{}",
        ended.stderr
    );
    assert_eq!(count_messages(&t), 0);
}

// ---------------------------------------------------------------------------------------------
// throughput (ignored: a measurement, not a check)

/// Sends a v9/IPFIX capture's data datagrams in a loop at `FF_RATE` flows/s for `FF_SECONDS`,
/// then compares what reached Kafka with what was sent and reports socket drops.
#[test]
#[ignore]
fn throughput() {
    if !broker_or_skip("throughput") {
        return;
    }
    let rate: f64 = std::env::var("FF_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000.0);
    let seconds: f64 = std::env::var("FF_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let partitions: i32 = std::env::var("FF_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let capture = std::env::var("FF_CAPTURE").unwrap_or_else(|_| {
        // NetFlow v9, one datagram with its templates and 21 data records: every datagram
        // decodes on its own, so any number of exporters can replay it
        "tests/fixtures/corpus/akvorado/netflow_data+templates.pcap".into()
    });
    let exporters: u8 = std::env::var("FF_EXPORTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join(&capture);
    let stem = stem("rate");
    let t = format!("{stem}-flows");
    let _guard = Topics::create(&[TopicSpec::new(&t, partitions)]);
    let dir = TempDir::new(&stem);
    let config = write_config(&dir.0, [&t, &t, &t], "block", &[]);

    let dgs = datagrams(&f);
    let docs_all = decode(&f).len();
    let c = start_collector(&config, BROKER).unwrap_or_else(|e| panic!("{}", e.stderr));
    let senders: Vec<UdpSocket> = (0..exporters)
        .map(|i| UdpSocket::bind(SocketAddr::new(IpAddr::from([127, 0, 0, 10 + i]), 0)).unwrap())
        .collect();
    // prime each exporter with the whole capture (templates + data), then measure
    for s in &senders {
        for (_, p) in &dgs {
            s.send_to(p, c.listen).unwrap();
        }
    }
    let primed_docs = (docs_all * senders.len()) as u64;
    let primed_dgs = (dgs.len() * senders.len()) as u64;
    let m = c.wait_settled(primed_dgs, Some(primed_docs), Duration::from_secs(60));
    assert_eq!(
        m.get("ferroflow_sink_delivered_total")
            .copied()
            .unwrap_or(0.0) as u64,
        primed_docs
    );
    // average documents per datagram of the capture (the whole capture is replayed in turn)
    let docs_per_dg = docs_all as f64 / dgs.len() as f64;
    let dgs_per_sec = rate / docs_per_dg;
    // sendmmsg in bursts of at most 64 datagrams from one exporter, exporters in turn
    let mut batch = ferroflow_io::udp::SendBatch::new(64);
    let mut tx: Vec<ferroflow_io::udp::Transmit<'_>> = Vec::with_capacity(64);
    let start = Instant::now();
    let mut sent_dgs = 0u64;
    let mut next = 0usize;
    let mut turn = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        let due = (start.elapsed().as_secs_f64() * dgs_per_sec) as u64;
        if sent_dgs >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let n = (due - sent_dgs).min(64) as usize;
        tx.clear();
        for k in 0..n {
            tx.push(ferroflow_io::udp::Transmit {
                dst: c.listen,
                payload: &dgs[(next + k) % dgs.len()].1,
            });
        }
        let s = &senders[turn % senders.len()];
        turn += 1;
        let done = batch.send(s, &tx).expect("sendmmsg");
        next += done;
        sent_dgs += done as u64;
    }
    let send_secs = start.elapsed().as_secs_f64();
    let m = c.wait_settled(primed_dgs + sent_dgs, None, Duration::from_secs(120));
    let ended = c.stop();
    let sum = summary(&ended.stderr);
    let in_kafka = count_messages(&t) as u64;
    let documents = sum["records"] + sum["counter_samples"];
    let datagrams_total = primed_dgs + sent_dgs;
    let flows_sent = (sent_dgs as f64 * docs_per_dg) as u64;
    eprintln!(
        "throughput: target {rate} flows/s for {seconds} s: sent {sent_dgs} datagrams (~{flows_sent} flows, {:.0} flows/s achieved) in {send_secs:.1} s",
        flows_sent as f64 / send_secs
    );
    eprintln!(
        "  collector: exit {} packets={} documents={documents} delivered={} failed={} dropped={} undelivered={} socket_drops={} (/metrics: {})",
        ended.status,
        sum["packets"],
        sum["delivered"],
        sum["failed"],
        sum["dropped"],
        sum["undelivered"],
        sum["socket_drops"],
        m.get("ferroflow_socket_drops_total").copied().unwrap_or(0.0)
    );
    let lost_dgs = datagrams_total.saturating_sub(sum["packets"]);
    let lost_docs = documents.saturating_sub(in_kafka);
    eprintln!(
        "  kafka: {in_kafka} messages; datagrams lost before decode: {lost_dgs}; documents lost after decode: {lost_docs}"
    );
    let loss =
        lost_dgs > 0 || lost_docs > 0 || sum["socket_drops"] > 0 || in_kafka != sum["delivered"];
    eprintln!("  LOSS={}", if loss { "YES" } else { "none" });
}
