//! End to end against the real services: corpus traffic -> (`ferroflow collect --output kafka`
//! when this build has the Kafka sink, else `ferroflow decode` + a producer in this test) ->
//! Kafka -> `ferroflow index` -> OpenSearch. The index must hold exactly one document per record
//! sent, searchable by source.ip / destination.port, with the template's mapping types.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::index::*;
use serde_json::Value;

/// Replays the corpus to a `ferroflow collect --output kafka` writing to `n`'s topics; returns
/// the number of documents it delivered, or `None` (with the reason) when this build's collector
/// cannot write to Kafka.
fn via_collector(n: &Names, expected: usize, dir: &std::path::Path) -> Result<u64, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = {
        let p = UdpSocket::bind("127.0.0.1:0").unwrap();
        p.local_addr().unwrap().port()
    };
    let log = dir.join("collect.log");
    let mut child = Command::new(bin())
        .args([
            "collect",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--output",
            "kafka",
            "--kafka-brokers",
            &n.brokers,
            "--metrics",
            "off",
            "--workers",
            "1",
            "--no-pin",
        ])
        .env("FERROFLOW_OUTPUT_KAFKA_TOPICS_NETFLOW_V5", &n.netflow)
        .env("FERROFLOW_OUTPUT_KAFKA_TOPICS_NETFLOW_V9", &n.netflow)
        .env("FERROFLOW_OUTPUT_KAFKA_TOPICS_IPFIX", &n.ipfix)
        .env("FERROFLOW_OUTPUT_KAFKA_TOPICS_SFLOW", &n.sflow)
        // the captures are years old: keep their own times (the daily indices are compared
        // with `ferroflow decode`'s), not the receive time the decoder's window would give
        .env("FERROFLOW_DECODER_MAX_PAST_SECS", "0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(1500));
    if let Ok(Some(st)) = child.try_wait() {
        return Err(format!(
            "ferroflow collect --output kafka exited at start ({st}): {}",
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    common::replay_paced(&captures(), to, Duration::from_micros(200));
    drop(sock);
    std::thread::sleep(Duration::from_secs(2));
    let Some(status) = common::sigterm_wait(&mut child, Duration::from_secs(60)) else {
        return Err("collector did not stop".into());
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let delivered = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("delivered="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if !status.success() {
        return Err(format!("collector exited {status}: {}", text.trim()));
    }
    eprintln!("collector delivered {delivered} documents ({expected} decoded from the corpus)");
    Ok(delivered)
}

#[test]
fn corpus_to_opensearch_exactly_once() {
    if !services_up("corpus_to_opensearch_exactly_once") {
        return;
    }
    let n = Names::new("e2e");
    n.create_topics(4);
    let dir = tmpdir("index-e2e");
    let docs = corpus_docs(&n);
    assert!(docs.len() > 1000, "corpus gave {} documents", docs.len());

    let sent = match via_collector(&n, docs.len(), &dir) {
        Ok(k) if k > 0 => {
            eprintln!("path: ferroflow collect --output kafka");
            k
        }
        other => {
            let why = match other {
                Err(e) => e,
                _ => "the collector delivered nothing".to_string(),
            };
            eprintln!(
                "NOTE: using `ferroflow decode` + an rdkafka producer in the test instead of the collector ({why})"
            );
            // the collector delivered nothing to these topics (it did not start, or wrote
            // nothing): produce into them. (Deleting and re-creating them is no option: Kafka
            // deletes asynchronously, and a pending deletion would take the new records along.)
            produce(&n.brokers, &docs);
            docs.len() as u64
        }
    };

    let mut args = n.index_args();
    args.extend([
        "--es-url".into(),
        ES.into(),
        "--bulk-max-docs".into(),
        "500".into(),
    ]);
    let mut ix = Indexer::start(&args, &dir.join("index.log"));
    let got = wait_count(&n.prefix, sent, Duration::from_secs(180), Some(&mut ix));
    assert_eq!(got, sent, "documents in {}-*\n{}", n.prefix, ix.log_text());

    // per index: names from the message timestamps, per protocol
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
    for name in &names {
        let rest = name.strip_prefix(&format!("{}-", n.prefix)).unwrap();
        let (proto, date) = rest.split_once('-').unwrap();
        assert!(["netflow", "ipfix", "sflow"].contains(&proto), "{name}");
        assert_eq!(date.len(), 10, "{name}");
        assert_eq!(&date[4..5], ".");
    }
    // documents per day index = documents of that protocol and day. sFlow carries no time of
    // its own: its `@timestamp` is the receive time (the capture's time for `ferroflow decode`,
    // today's for the collector), so its indices are compared as one total.
    let day_index = |proto: &str, day: &str| {
        if proto == "sflow" {
            format!("{}-sflow-*", n.prefix)
        } else {
            format!("{}-{proto}-{day}", n.prefix)
        }
    };
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for d in &docs {
        let proto = ["netflow", "ipfix", "sflow"]
            .into_iter()
            .find(|p| d.topic.ends_with(p))
            .unwrap();
        let day = ms_to_rfc3339(d.ts_ms)[..10].replace('-', ".");
        *want.entry(day_index(proto, &day)).or_default() += 1;
    }
    if sent == docs.len() as u64 {
        let mut have: BTreeMap<String, u64> = BTreeMap::new();
        for name in &names {
            let rest = name.strip_prefix(&format!("{}-", n.prefix)).unwrap();
            let (proto, day) = rest.split_once('-').unwrap();
            let (_, c) = es_json("GET", &format!("/{name}/_count"), None);
            *have.entry(day_index(proto, day)).or_default() += c["count"].as_u64().unwrap();
        }
        assert_eq!(have, want);
    } else {
        eprintln!(
            "NOTE: per-day counts not compared: the collector delivered {sent} of {} decoded",
            docs.len()
        );
    }

    // mapping types
    let (_, m) = es_json("GET", &format!("/{}-*/_mapping", n.prefix), None);
    let (_, first) = m.as_object().unwrap().iter().next().unwrap();
    let props = &first["mappings"]["properties"];
    assert_eq!(props["source"]["properties"]["ip"]["type"], "ip");
    assert_eq!(props["destination"]["properties"]["port"]["type"], "long");
    assert_eq!(props["@timestamp"]["type"], "date");
    assert_eq!(
        props["network"]["properties"]["transport"]["type"],
        "keyword"
    );
    assert_eq!(props["observer"]["properties"]["ip"]["type"], "ip");
    // a netflow.* address through the dynamic template
    let any_nf_ip = m.as_object().unwrap().values().any(|ix| {
        ix["mappings"]["properties"]["netflow"]["properties"]["source_ipv4_address"]["type"] == "ip"
    });
    assert!(
        any_nf_ip,
        "netflow.source_ipv4_address mapped as ip somewhere"
    );

    // search by source.ip (a term on an ip field, and a CIDR) and destination.port
    let sample = docs
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(&d.json).ok())
        .find(|v| v["source"]["ip"].is_string() && v["destination"]["port"].is_u64())
        .unwrap();
    let sip = sample["source"]["ip"].as_str().unwrap().to_string();
    let dport = sample["destination"]["port"].as_u64().unwrap();
    let expect = docs
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(&d.json).ok())
        .filter(|v| v["source"]["ip"] == sip.as_str() && v["destination"]["port"] == dport)
        .count() as u64;
    let q = format!(
        r#"{{"query":{{"bool":{{"filter":[{{"term":{{"source.ip":"{sip}"}}}},{{"term":{{"destination.port":{dport}}}}}]}}}}}}"#
    );
    let (st, r) = es_json("POST", &format!("/{}-*/_count", n.prefix), Some(&q));
    assert_eq!(st, 200, "{r}");
    if sent == docs.len() as u64 {
        assert_eq!(
            r["count"].as_u64().unwrap(),
            expect,
            "search {sip} -> :{dport}"
        );
    } else {
        assert!(r["count"].as_u64().unwrap() >= 1);
    }
    if sip.contains('.') {
        let net = format!(
            "{}.0.0/16",
            sip.split('.').take(2).collect::<Vec<_>>().join(".")
        );
        let q = format!(r#"{{"query":{{"term":{{"source.ip":"{net}"}}}}}}"#);
        let (st, r) = es_json("POST", &format!("/{}-*/_count", n.prefix), Some(&q));
        assert_eq!(st, 200, "{r}");
        assert!(r["count"].as_u64().unwrap() >= expect.max(1), "CIDR {net}");
    }
    // a range on destination.port works only on a numeric field
    let q = r#"{"query":{"range":{"destination.port":{"gte":0,"lte":1023}}}}"#;
    let (st, _) = es_json("POST", &format!("/{}-*/_count", n.prefix), Some(q));
    assert_eq!(st, 200);

    // SIGTERM: a clean stop
    let st = ix.sigterm().expect("index stops on SIGTERM");
    assert!(st.success(), "{}", ix.log_text());
    assert!(ix.log_text().contains("stopped: consumed="));
}

/// The same documents with `--enrich`: the added fields land, mapped.
#[test]
fn enrich_stage_fields_are_indexed() {
    if !services_up("enrich_stage_fields_are_indexed") {
        return;
    }
    use ferroflow_engine::index::enrich::mmdb_writer::{MmdbValue, MmdbWriter};
    let n = Names::new("enrich");
    n.create_topics(2);
    let dir = tmpdir("index-enrich");
    let mut city = MmdbWriter::new("GeoLite2-City");
    city.insert(
        "10.0.0.0".parse().unwrap(),
        8,
        &MmdbValue::map([
            (
                "country",
                MmdbValue::map([("iso_code", MmdbValue::str("SE"))]),
            ),
            (
                "location",
                MmdbValue::map([
                    ("latitude", MmdbValue::F64(59.33)),
                    ("longitude", MmdbValue::F64(18.07)),
                ]),
            ),
        ]),
    );
    let mut asn = MmdbWriter::new("GeoLite2-ASN");
    asn.insert(
        "198.51.100.0".parse().unwrap(),
        24,
        &MmdbValue::map([
            ("autonomous_system_number", MmdbValue::U32(64511)),
            ("autonomous_system_organization", MmdbValue::str("Test AS")),
        ]),
    );
    std::fs::write(dir.join("city.mmdb"), city.build()).unwrap();
    std::fs::write(dir.join("asn.mmdb"), asn.build()).unwrap();
    std::fs::write(dir.join("ifs.json"), r#"{"192.0.2.1":{"5":"ge-0/0/5"}}"#).unwrap();
    let mut docs = synthetic_docs(&n, 300);
    for d in &mut docs {
        d.json = d.json.replacen(
            r#""observer":{"ip":"192.0.2.1"}"#,
            r#""observer":{"ip":"192.0.2.1","ingress":{"interface":{"id":5}}}"#,
            1,
        );
    }
    produce(&n.brokers, &docs);
    let mut args = n.index_args();
    args.extend(
        [
            "--es-url",
            ES,
            "--enrich",
            "--geoip-db",
            dir.join("city.mmdb").to_str().unwrap(),
            "--asn-db",
            dir.join("asn.mmdb").to_str().unwrap(),
            "--interface-names",
            dir.join("ifs.json").to_str().unwrap(),
        ]
        .map(String::from),
    );
    let mut ix = Indexer::start(&args, &dir.join("index.log"));
    assert_eq!(
        wait_count(&n.prefix, 300, Duration::from_secs(240), Some(&mut ix)),
        300,
        "{}",
        ix.log_text()
    );
    let count_q = |q: &str| -> u64 {
        let (st, r) = es_json("POST", &format!("/{}-*/_count", n.prefix), Some(q));
        assert_eq!(st, 200, "{q}: {r}");
        r["count"].as_u64().unwrap()
    };
    assert_eq!(
        count_q(r#"{"query":{"term":{"source.geo.country_iso_code":"SE"}}}"#),
        300
    );
    assert_eq!(
        count_q(r#"{"query":{"term":{"destination.as.number":64511}}}"#),
        300
    );
    assert_eq!(
        count_q(r#"{"query":{"term":{"observer.ingress.interface.name":"ge-0/0/5"}}}"#),
        300
    );
    assert_eq!(
        count_q(r#"{"query":{"term":{"network.protocol":"https"}}}"#),
        75
    );
    assert_eq!(
        count_q(
            r#"{"query":{"geo_distance":{"distance":"10km","source.geo.location":{"lat":59.33,"lon":18.07}}}}"#
        ),
        300
    );
    ix.sigterm();
}

/// `--gzip`: the cluster accepts gzip-compressed `_bulk` bodies from the client.
#[test]
fn gzip_bulk_bodies_are_accepted() {
    if !services_up("gzip_bulk_bodies_are_accepted") {
        return;
    }
    use ferroflow_engine::es::{EsClient, EsSettings};
    let n = Names::new("gzip");
    let c = EsClient::new(
        &EsSettings {
            urls: vec![ES.to_string()],
            gzip: true,
            ..Default::default()
        },
        1,
    )
    .unwrap();
    let idx = format!("{}-netflow-2026.11.25", n.prefix);
    let mut body = String::new();
    for i in 0..50 {
        body.push_str(&format!(
            "{{\"create\":{{\"_index\":\"{idx}\",\"_id\":\"g-{i}\"}}}}\n{{\"source\":{{\"port\":{i}}}}}\n"
        ));
    }
    assert_eq!(c.bulk(body.as_bytes(), 50).unwrap(), None);
    assert_eq!(count(&n.prefix), 50);
    // the same ids again: 409 for each, reported item by item
    let again = c.bulk(body.as_bytes(), 50).unwrap().expect("errors:true");
    assert!(again
        .iter()
        .all(|o| *o == ferroflow_engine::es::ItemOutcome::AlreadyWritten));
}
