//! The whole Kafka design with generated traffic: `ferroflow generate` -> `ferroflow collect
//! --output kafka` -> a private Kafka broker that is SIGKILLed and restarted under the collector
//! -> `ferroflow index` -> the OpenSearch of scripts/services.sh. Every flow the collector
//! reports delivered is in Kafka once (the idempotent producer: no duplicates from its retries
//! across the restart) and in the index once; the collector reports nothing failed or lost.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use common::index::*;
use serde_json::Value;

/// `ferroflow generate` at 1500 flows/s; the flows it sent.
fn generate(proto: &str, to: &str, seconds: &str) -> u64 {
    let o = Command::new(bin())
        .args([
            "generate",
            "--protocol",
            proto,
            "--to",
            to,
            "--flow-rate",
            "1500",
            "--duration",
            seconds,
            "--exporters",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "generate {proto}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(r["send_errors"].as_u64(), Some(0), "{r}");
    r["flows"].as_u64().unwrap()
}

fn kafka_messages(brokers: &str, topics: &[String]) -> i64 {
    use ferroflow_engine::index::rdkafka::consumer::{BaseConsumer, Consumer};
    use ferroflow_engine::index::rdkafka::ClientConfig;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "fftest-pipeline-count")
        .create()
        .unwrap();
    let mut total = 0;
    for t in topics {
        let md = c.fetch_metadata(Some(t), Duration::from_secs(10)).unwrap();
        for p in md.topics()[0].partitions() {
            let (lo, hi) = c
                .fetch_watermarks(t, p.id(), Duration::from_secs(10))
                .unwrap();
            total += hi - lo;
        }
    }
    total
}

#[test]
fn generated_traffic_through_a_broker_restart_lands_once() {
    if !services_up("generated_traffic_through_a_broker_restart_lands_once") {
        return;
    }
    let mut k = match PrivateKafka::new("pipeline") {
        Ok(k) => k,
        Err(why) => {
            if std::env::var_os("FERROFLOW_REQUIRE_SERVICES").is_some() {
                panic!("pipeline: {why}");
            }
            eprintln!("SKIPPED pipeline: {why}");
            return;
        }
    };
    k.start();
    let n = Names::with_brokers("pipeline", &k.brokers());
    n.create_topics(2);
    let dir = tmpdir("pipeline");
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let to = format!("127.0.0.1:{port}");
    let config = dir.join("collect.toml");
    std::fs::write(
        &config,
        format!(
            "[output]\nkind = \"kafka\"\n[output.kafka]\nbrokers = [\"{}\"]\n\
             [output.kafka.topics]\nnetflow_v5 = \"{nf}\"\nnetflow_v9 = \"{nf}\"\nipfix = \"{ix}\"\nsflow = \"{sf}\"\n",
            n.brokers,
            nf = n.netflow,
            ix = n.ipfix,
            sf = n.sflow
        ),
    )
    .unwrap();
    let args: Vec<String> = [
        "collect",
        "--config",
        &config.display().to_string(),
        "--listen",
        &to,
        "--metrics",
        "off",
        "--workers",
        "1",
        "--no-pin",
    ]
    .map(String::from)
    .to_vec();
    // `Indexer` runs any subcommand with its log in a file
    let mut collector = Indexer::start(&args, &dir.join("collect.log"));
    let end = Instant::now() + Duration::from_secs(60);
    while !collector.log_text().contains("listening on") {
        collector.assert_running();
        assert!(
            Instant::now() < end,
            "collector not up: {}",
            collector.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut sent = generate("ipfix", &to, "2");
    // the broker dies under the collector: the producer keeps what it accepted and retries
    k.kill();
    sent += generate("netflow9", &to, "2");
    std::thread::sleep(Duration::from_secs(2));
    collector.assert_running();
    k.start();
    sent += generate("netflow5", &to, "2");
    sent += generate("sflow", &to, "1");

    let status = collector.sigterm().expect("the collector stops");
    let log = collector.log_text();
    assert!(status.success(), "{log}");
    let delivered = stopped_field(&log, "delivered").expect("a stopped: line");
    for key in [
        "failed",
        "dropped",
        "undelivered",
        "socket_drops",
        "decode_errors",
    ] {
        assert_eq!(stopped_field(&log, key), Some(0), "{key}: {log}");
    }
    assert!(
        delivered >= sent,
        "delivered {delivered} of {sent} flows: {log}"
    );
    assert_eq!(
        kafka_messages(&n.brokers, &n.topics()),
        delivered as i64,
        "messages in Kafka = documents acknowledged"
    );

    let mut iargs = n.index_args();
    iargs.extend(["--es-url".to_string(), ES.to_string()]);
    let mut ix = Indexer::start(&iargs, &dir.join("index.log"));
    let got = wait_count(
        &n.prefix,
        delivered,
        Duration::from_secs(240),
        Some(&mut ix),
    );
    assert_eq!(got, delivered, "{}", ix.log_text());
    assert!(
        ix.sigterm().is_some_and(|s| s.success()),
        "{}",
        ix.log_text()
    );
}
