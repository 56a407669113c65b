//! The whole Kafka design with generated traffic: `ferroflow generate` -> `ferroflow collect
//! --output kafka` -> a private Kafka broker that is SIGKILLed and restarted under the collector
//! -> `ferroflow index` -> the OpenSearch of scripts/services.sh. Every flow the collector
//! reports delivered is in Kafka once (the idempotent producer: no duplicates from its retries
//! across the restart) and in the index once; the collector reports nothing failed or lost.

mod common;

use std::process::Command;
use std::time::Duration;

use common::index::*;
use common::kafka;
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
    let c = kafka::consumer(brokers, "fftest-pipeline-count", &[]);
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    kafka::messages_in(&c, &topics)
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
    let config = kafka::write_collect_config(
        &dir,
        Some(&n.brokers),
        [&n.netflow, &n.ipfix, &n.sflow],
        "",
        &[],
    );
    let (mut collector, to) = kafka::start_collector(&config, &dir, 1, "off");

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
