//! Fault tests of `ferroflow index`, each ending with exactly one document per Kafka record in
//! the index:
//!
//! * `sigkill_mid_stream_then_restart` — real: the indexer process is SIGKILLed while it
//!   writes, and restarted.
//! * `es_outage_30s_through_proxy` — simulated: the shared OpenSearch is not stopped (other
//!   engineers use it); a TCP proxy of this test stands between ferroflow and 127.0.0.1:9200 and
//!   refuses connections (and cuts open ones) for 30 s, then answers 503 and 429 itself for a
//!   few seconds each, then passes again.
//! * `mapping_conflict_goes_to_dead_letter_topic` — real: OpenSearch rejects documents whose
//!   `source.ip` is not an IP; they land in the dead-letter topic with the reason, the rest in
//!   the index.
//! * `kafka_broker_restart` — real, on a private broker: a single-node Kafka of this test
//!   (same jars as scripts/services.sh) is SIGKILLed under the running indexer and restarted on
//!   the same data. A proxy in front of the shared broker would not do: clients learn the
//!   advertised address 127.0.0.1:9092 from metadata and bypass it.
//! * `rebalance_while_paused_keeps_consuming` — real: a second indexer joins the group while
//!   the first has paused its partitions for back-pressure (regression: the re-assigned
//!   partitions stayed paused and the index stopped part way).

mod common;

use std::time::{Duration, Instant};

use common::index::*;

#[test]
fn sigkill_mid_stream_then_restart() {
    if !services_up("sigkill_mid_stream_then_restart") {
        return;
    }
    let n = Names::new("sigkill");
    n.create_topics(4);
    let dir = tmpdir("index-sigkill");
    const N: u64 = 30_000;
    produce(&n.brokers, &synthetic_docs(&n, N as usize));
    let mut args = n.index_args();
    args.extend(
        [
            "--es-url",
            ES,
            "--bulk-max-docs",
            "250",
            "--in-flight",
            "2",
            "--threads",
            "2",
        ]
        .map(String::from),
    );
    let mut ix = Indexer::start(&args, &dir.join("index-1.log"));
    // wait until it is well into the stream, then kill it without warning
    let end = Instant::now() + Duration::from_secs(240);
    let mut at_kill = 0;
    while Instant::now() < end {
        at_kill = count(&n.prefix);
        if at_kill >= N / 10 {
            break;
        }
        ix.assert_running();
        std::thread::sleep(Duration::from_millis(100));
    }
    ix.sigkill();
    let after_kill = count(&n.prefix);
    eprintln!("killed at {at_kill} documents ({after_kill} after the kill settled)");
    assert!(
        after_kill > 0 && after_kill < N,
        "kill must be mid-stream: {after_kill} of {N}"
    );

    let metrics = free_addr();
    let mut args2 = args.clone();
    let m = args2.iter().position(|a| a == "--metrics").unwrap();
    args2[m + 1] = metrics.clone();
    let mut ix2 = Indexer::start(&args2, &dir.join("index-2.log"));
    let got = wait_count(&n.prefix, N, Duration::from_secs(300), Some(&mut ix2));
    assert_eq!(got, N, "{}", ix2.log_text());
    // the replay: documents already written came back as 409 and were counted as written
    std::thread::sleep(Duration::from_secs(2));
    let replayed = scrape(&metrics, "ferroflow_index_already_indexed_total").unwrap_or(0);
    let indexed = scrape(&metrics, "ferroflow_index_indexed_total").unwrap_or(0);
    eprintln!("after restart: indexed={indexed} already_indexed (409)={replayed}");
    assert_eq!(count(&n.prefix), N);
    assert!(
        ix2.sigterm().is_some_and(|s| s.success()),
        "{}",
        ix2.log_text()
    );
}

#[test]
fn es_outage_30s_through_proxy() {
    if !services_up("es_outage_30s_through_proxy") {
        return;
    }
    let n = Names::new("outage");
    n.create_topics(4);
    let dir = tmpdir("index-outage");
    let proxy = FaultProxy::start("127.0.0.1:9200");
    let docs = synthetic_docs(&n, 12_000);
    produce(&n.brokers, &docs[..4000]);
    let mut args = n.index_args();
    args.extend(
        [
            "--es-url",
            &proxy.url(),
            "--bulk-max-docs",
            "500",
            "--retry-max-ms",
            "2000",
        ]
        .map(String::from),
    );
    let mut ix = Indexer::start(&args, &dir.join("index.log"));
    assert_eq!(
        wait_count(&n.prefix, 4000, Duration::from_secs(240), Some(&mut ix)),
        4000,
        "{}",
        ix.log_text()
    );

    // outage: connections refused / cut for 30 s while more records arrive
    proxy.set(REFUSE);
    let t0 = Instant::now();
    produce(&n.brokers, &docs[4000..8000]);
    while t0.elapsed() < Duration::from_secs(30) {
        ix.assert_running();
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        count(&n.prefix),
        4000,
        "nothing can arrive during the outage"
    );
    // coming back overloaded: 503 then 429 for the whole request
    proxy.set(ANSWER_503);
    std::thread::sleep(Duration::from_secs(4));
    proxy.set(ANSWER_429);
    produce(&n.brokers, &docs[8000..]);
    std::thread::sleep(Duration::from_secs(4));
    ix.assert_running();
    proxy.set(PASS);
    let got = wait_count(&n.prefix, 12_000, Duration::from_secs(180), Some(&mut ix));
    assert_eq!(got, 12_000, "{}", ix.log_text());
    let log = ix.log_text();
    assert!(log.contains("retrying"), "the outage was seen: {log}");
    assert!(ix.sigterm().is_some_and(|s| s.success()));
}

/// The real thing: a private OpenSearch node is SIGKILLed under the indexer, stays down for
/// 30 s while records keep arriving, and is started again on the same data.
#[test]
fn es_killed_30s_then_restarted() {
    if !services_up("es_killed_30s_then_restarted") {
        return;
    }
    let mut es = match common::private_es::PrivateOpenSearch::new("restart") {
        Ok(e) => e,
        Err(why) => {
            if std::env::var_os("FERROFLOW_REQUIRE_SERVICES").is_some() {
                panic!("es_killed_30s_then_restarted: {why}");
            }
            eprintln!("SKIPPED es_killed_30s_then_restarted: {why}");
            return;
        }
    };
    es.start();
    let n = Names::new("esrestart");
    n.create_topics(2);
    let dir = tmpdir("index-esrestart");
    let docs = synthetic_docs(&n, 9000);
    produce(&n.brokers, &docs[..3000]);
    let mut args = n.index_args();
    args.extend([
        "--es-url".to_string(),
        es.url(),
        "--bulk-max-docs".into(),
        "300".into(),
    ]);
    let mut ix = Indexer::start(&args, &dir.join("index.log"));
    assert_eq!(
        es.wait_count(&n.prefix, 3000, Duration::from_secs(240)),
        3000,
        "{}",
        ix.log_text()
    );
    es.kill();
    produce(&n.brokers, &docs[3000..6000]);
    std::thread::sleep(Duration::from_secs(30));
    ix.assert_running();
    es.start();
    produce(&n.brokers, &docs[6000..]);
    let got = es.wait_count(&n.prefix, 9000, Duration::from_secs(240));
    ix.assert_running();
    assert_eq!(got, 9000, "{}", ix.log_text());
    assert!(
        ix.sigterm().is_some_and(|s| s.success()),
        "{}",
        ix.log_text()
    );
}

#[test]
fn mapping_conflict_goes_to_dead_letter_topic() {
    if !services_up("mapping_conflict_goes_to_dead_letter_topic") {
        return;
    }
    let n = Names::new("dlq");
    n.create_topics(2);
    let dir = tmpdir("index-dlq");
    let mut docs = synthetic_docs(&n, 2000);
    // three documents the mapping cannot take: source.ip is mapped `ip`
    for k in [10usize, 999, 1500] {
        docs[k].json = docs[k].json.replacen(
            r#""source":{"ip":"10."#,
            r#""source":{"ip":"not-an-ip-10."#,
            1,
        );
        assert!(docs[k].json.contains("not-an-ip"));
    }
    produce(&n.brokers, &docs);
    let mut args = n.index_args();
    args.extend(["--es-url", ES, "--bulk-max-docs", "300"].map(String::from));
    let mut ix = Indexer::start(&args, &dir.join("index.log"));
    assert_eq!(
        wait_count(&n.prefix, 1997, Duration::from_secs(240), Some(&mut ix)),
        1997,
        "{}",
        ix.log_text()
    );
    let letters = read_topic(&n.brokers, &n.dlq, 3, Duration::from_secs(60));
    assert_eq!(letters.len(), 3, "{}", ix.log_text());
    for (key, payload, headers) in &letters {
        assert!(
            payload.contains("not-an-ip"),
            "the original document: {payload}"
        );
        let h = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        assert_eq!(h("ferroflow.error.status"), "400");
        assert!(
            h("ferroflow.error.reason").contains("mapper_parsing_exception"),
            "{headers:?}"
        );
        assert!(h("ferroflow.index").starts_with(&n.prefix));
        assert_eq!(
            key,
            &format!(
                "{}-{}-{}",
                h("ferroflow.source.topic"),
                h("ferroflow.source.partition"),
                h("ferroflow.source.offset")
            )
        );
    }
    // the rest was written, the rejected ones are not in the index, and after a restart
    // (same group) nothing is read again: the offsets were committed past them
    ix.sigterm();
    let mut ix2 = Indexer::start(&args, &dir.join("index-2.log"));
    std::thread::sleep(Duration::from_secs(8));
    ix2.assert_running();
    assert_eq!(count(&n.prefix), 1997);
    assert_eq!(
        read_topic(&n.brokers, &n.dlq, 4, Duration::from_secs(5)).len(),
        3
    );
    ix2.sigterm();
}

#[test]
fn kafka_broker_restart() {
    if !services_up("kafka_broker_restart") {
        return;
    }
    let mut k = match PrivateKafka::new("restart") {
        Ok(k) => k,
        Err(why) => {
            if std::env::var_os("FERROFLOW_REQUIRE_SERVICES").is_some() {
                panic!("kafka_broker_restart: {why}");
            }
            eprintln!("SKIPPED kafka_broker_restart: {why}");
            return;
        }
    };
    k.start();
    let n = Names::with_brokers("restart", &k.brokers());
    n.create_topics(2);
    let dir = tmpdir("index-restart");
    let docs = synthetic_docs(&n, 9000);
    produce(&n.brokers, &docs[..3000]);
    let mut args = n.index_args();
    args.extend(["--es-url", ES, "--bulk-max-docs", "300"].map(String::from));
    let mut ix = Indexer::start(&args, &dir.join("index.log"));
    assert_eq!(
        wait_count(&n.prefix, 3000, Duration::from_secs(240), Some(&mut ix)),
        3000,
        "{}",
        ix.log_text()
    );
    // more records, then the broker dies under the indexer
    produce(&n.brokers, &docs[3000..6000]);
    k.kill();
    std::thread::sleep(Duration::from_secs(8));
    ix.assert_running();
    k.start();
    produce(&n.brokers, &docs[6000..]);
    let got = wait_count(&n.prefix, 9000, Duration::from_secs(240), Some(&mut ix));
    assert_eq!(got, 9000, "{}", ix.log_text());
    assert!(
        ix.sigterm().is_some_and(|s| s.success()),
        "{}",
        ix.log_text()
    );
    // topics of the private broker go with it; the index is cleaned by `n`
}

/// Regression: a consumer thread that paused its partitions for back-pressure (every batch in
/// flight, the next one full) is revoked by a rebalance (a second indexer joins the group)
/// and gets partitions back. librdkafka keeps a partition's application pause across
/// unassign / assign, so unless the indexer resumes (or deliberately re-pauses) what it is
/// assigned, those partitions are never fetched again: the index stops part way, silently.
///
/// Indexer A (one thread, one batch in flight, through a proxy answering 503) fills its
/// pipeline and pauses; indexer B joins the same group (straight to OpenSearch); then the
/// proxy passes again. Every record must reach the index.
#[test]
fn rebalance_while_paused_keeps_consuming() {
    if !services_up("rebalance_while_paused_keeps_consuming") {
        return;
    }
    let n = Names::new("rebpause");
    n.create_topics(4);
    let dir = tmpdir("index-rebpause");
    const N: u64 = 6000;
    produce(&n.brokers, &synthetic_docs(&n, N as usize));
    let proxy = FaultProxy::start("127.0.0.1:9200");
    proxy.set(ANSWER_503);

    let with = |extra: &[&str], metrics: &str| {
        let mut a = n.index_args();
        let m = a.iter().position(|x| x == "--metrics").unwrap();
        a[m + 1] = metrics.to_string();
        let l = a.iter().position(|x| x == "--log-level").unwrap();
        a[l + 1] = "info,ferroflow_engine::index=debug".to_string();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let metrics_a = free_addr();
    let url = proxy.url();
    let args_a = with(
        &[
            "--es-url",
            &url,
            "--no-template",
            "--threads",
            "1",
            "--in-flight",
            "1",
            "--bulk-max-docs",
            "200",
            "--retry-max-ms",
            "500",
        ],
        &metrics_a,
    );
    let mut a = Indexer::start(&args_a, &dir.join("index-a.log"));
    // A holds all partitions, its one batch is retried (503) and the next one is full: paused
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        a.assert_running();
        let retried = scrape(&metrics_a, "ferroflow_index_retried_total").unwrap_or(0);
        let in_flight = scrape(&metrics_a, "ferroflow_index_in_flight_batches").unwrap_or(0);
        if retried > 0 && in_flight == 1 {
            break;
        }
        assert!(
            Instant::now() < end,
            "indexer A did not fill its pipeline:\n{}",
            a.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // (the next 200 documents are local by now: the batch fills at once)
    std::thread::sleep(Duration::from_secs(3));

    // B joins the group: A's partitions are revoked while paused, then half come back
    let args_b = with(&["--es-url", ES, "--threads", "1"], "off");
    let mut b = Indexer::start(&args_b, &dir.join("index-b.log"));
    std::thread::sleep(Duration::from_secs(6));
    proxy.set(PASS);

    let got = wait_count(&n.prefix, N, Duration::from_secs(120), Some(&mut a));
    b.assert_running();
    assert_eq!(got, N, "A:\n{}\nB:\n{}", a.log_text(), b.log_text());
    assert!(a.sigterm().is_some_and(|s| s.success()), "{}", a.log_text());
    assert!(b.sigterm().is_some_and(|s| s.success()), "{}", b.log_text());
}
