//! `ferroflow collect --output elasticsearch` (the one-box design: no Kafka) against the real
//! OpenSearch that scripts/services.sh starts: the corpus replayed as UDP ends up as exactly the
//! documents the collector says it delivered, no fewer than `ferroflow decode` finds, with the
//! template's mapping types; a second run into the same indices adds its documents (the ids of
//! two runs never collide); a cluster that does not answer is a clear error at start.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::index::*;

/// Runs a collector writing to `prefix`, replays `pcaps` into it, stops it with SIGTERM and
/// returns its log.
///
/// Before the SIGTERM it waits (bounded) until the index holds `wait_for` documents: a cluster
/// creating dozens of daily indices on a loaded machine can take longer than the collector's
/// 30 s close timeout, and this test is about the documents, not about that race.
fn run_collector(prefix: &str, pcaps: &[std::path::PathBuf], log: &Path, wait_for: u64) -> String {
    run_collector_at(ES, prefix, pcaps, log, true, wait_for)
}

fn run_collector_at(
    url: &str,
    prefix: &str,
    pcaps: &[std::path::PathBuf],
    log: &Path,
    must_succeed: bool,
    wait_for: u64,
) -> String {
    let port = {
        let p = UdpSocket::bind("127.0.0.1:0").unwrap();
        p.local_addr().unwrap().port()
    };
    let mut child = Command::new(bin())
        .args([
            "collect",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--output",
            "elasticsearch",
            "--es-url",
            url,
            "--es-index-prefix",
            prefix,
            "--metrics",
            "off",
            "--workers",
            "1",
            "--no-pin",
        ])
        // small batches: several bulk requests even for this little traffic
        .env("FERROFLOW_OUTPUT_ELASTICSEARCH_MAX_DOCS", "700")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    // up once the template is installed and the socket bound
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("listening on") {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("collector exited at start ({st}): {text}");
        }
        assert!(Instant::now() < end, "collector not up in 60 s: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    common::replay_paced(pcaps, to, Duration::from_micros(200));
    std::thread::sleep(Duration::from_secs(1));
    if wait_for > 0 {
        wait_count(prefix, wait_for, Duration::from_secs(240), None);
    }
    let status = common::sigterm_wait(&mut child, Duration::from_secs(120)).unwrap_or_else(|| {
        panic!(
            "collector did not stop: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(
        status.success(),
        must_succeed,
        "collector exited {status}: {text}"
    );
    text
}

#[test]
fn corpus_to_opensearch_without_kafka() {
    if !services_up("corpus_to_opensearch_without_kafka") {
        return;
    }
    let n = Names::new("direct");
    let dir = tmpdir("collect-es");
    let decoded = corpus_docs(&n).len() as u64;
    let pcaps = captures();

    let log = run_collector(&n.prefix, &pcaps, &dir.join("collect1.log"), decoded);
    let delivered = stopped_field(&log, "delivered").expect("a stopped: line");
    assert_eq!(stopped_field(&log, "failed"), Some(0), "{log}");
    assert_eq!(stopped_field(&log, "dropped"), Some(0), "{log}");
    assert_eq!(stopped_field(&log, "undelivered"), Some(0), "{log}");
    assert!(
        delivered >= decoded,
        "the collector delivered {delivered}, decode finds {decoded}: {log}"
    );
    // delivered means acknowledged by the cluster: visible after a refresh, no waiting
    assert_eq!(count(&n.prefix), delivered, "{log}");

    // the index template's mapping
    let (_, m) = es_json("GET", &format!("/{}-*/_mapping", n.prefix), None);
    let (_, first) = m.as_object().unwrap().iter().next().unwrap();
    let props = &first["mappings"]["properties"];
    assert_eq!(props["source"]["properties"]["ip"]["type"], "ip");
    assert_eq!(props["destination"]["properties"]["port"]["type"], "long");
    assert_eq!(props["@timestamp"]["type"], "date");
    // indices per protocol group
    let (_, cat) = es_json(
        "GET",
        &format!("/_cat/indices/{}-*?format=json", n.prefix),
        None,
    );
    let names: Vec<String> = cat
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_str().unwrap().to_string())
        .collect();
    for proto in ["netflow", "ipfix", "sflow"] {
        assert!(
            names
                .iter()
                .any(|i| i.starts_with(&format!("{}-{proto}-", n.prefix))),
            "an index for {proto} in {names:?}"
        );
    }
    // a search by address and port finds what the corpus has
    let q = r#"{"query":{"bool":{"filter":[{"exists":{"field":"source.ip"}},{"range":{"destination.port":{"gte":0}}}]}}}"#;
    let (st, r) = es_json("POST", &format!("/{}-*/_count", n.prefix), Some(q));
    assert_eq!(st, 200, "{r}");
    assert!(r["count"].as_u64().unwrap() > 0, "{r}");

    // a second run into the same indices adds exactly its own documents
    let one = vec![pcaps[0].clone()];
    let one_decoded = Command::new(bin())
        .arg("decode")
        .arg(&one[0])
        .output()
        .map(|o| o.stdout.iter().filter(|&&b| b == b'\n').count() as u64)
        .unwrap();
    let log2 = run_collector(
        &n.prefix,
        &one,
        &dir.join("collect2.log"),
        delivered + one_decoded,
    );
    let delivered2 = stopped_field(&log2, "delivered").expect("a stopped: line");
    assert!(delivered2 > 0, "{log2}");
    assert_eq!(count(&n.prefix), delivered + delivered2, "{log2}");
}

/// The cluster goes away after the start: SIGTERM still ends the collector within its bounds,
/// and what could not be delivered is reported and makes the exit status non-zero.
#[test]
fn cluster_gone_at_shutdown_is_reported_not_hung() {
    if !services_up("cluster_gone_at_shutdown_is_reported_not_hung") {
        return;
    }
    let n = Names::new("gone");
    let dir = tmpdir("collect-es-gone");
    let proxy = FaultProxy::start("127.0.0.1:9200");
    let url = proxy.url();
    let pcaps = captures();
    // the template goes through, then the proxy refuses everything
    let flip = std::thread::spawn({
        let log = dir.join("collect.log");
        move || {
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end
                && !std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("listening on")
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            proxy.set(REFUSE);
            proxy
        }
    });
    let t0 = Instant::now();
    let log = run_collector_at(
        &url,
        &n.prefix,
        &pcaps[..3],
        &dir.join("collect.log"),
        false,
        0,
    );
    let _proxy = flip.join().unwrap();
    // close timeout 30 s, plus the replay: bounded, not hung
    assert!(t0.elapsed() < Duration::from_secs(150), "{log}");
    let delivered = stopped_field(&log, "delivered").unwrap();
    let failed = stopped_field(&log, "failed").unwrap();
    let undelivered = stopped_field(&log, "undelivered").unwrap();
    assert!(failed + undelivered > 0, "{log}");
    assert_eq!(delivered, 0, "{log}");
    assert!(log.contains("not delivered"), "{log}");
}

#[test]
fn unreachable_cluster_fails_at_start() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let udp = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(bin())
        .args([
            "collect",
            "--listen",
            &udp.to_string(),
            "--output",
            "elasticsearch",
            "--es-url",
            &format!("http://127.0.0.1:{port}"),
            "--metrics",
            "off",
            "--workers",
            "1",
            "--no-pin",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("installing the index template"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
}
