//! `ferroflow collect` end to end on loopback: every corpus capture replayed as UDP gives
//! exactly the documents `ferroflow decode` gives for the same capture; SIGTERM leaves every
//! accepted record in the output file; fuzzed datagrams mixed into good traffic are counted
//! and take nothing good down with them.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Make a document comparable across decode and collect: the exporter is the loopback
/// sender standing in for the original one, and sFlow's export time is the receive time.
fn normalise(mut d: Value, map: &HashMap<SocketAddr, SocketAddr>) -> String {
    // a capture's records older than the decoder's window have the receive time as
    // @timestamp when replayed live: their own time back
    unclamp(&mut d);
    let ip: std::net::IpAddr = d["observer"]["ip"].as_str().unwrap().parse().unwrap();
    let port = d["flow"]["exporter_port"].as_u64().unwrap() as u16;
    if let Some(to) = map.get(&SocketAddr::new(ip, port)) {
        d["observer"]["ip"] = Value::from(to.ip().to_string());
        d["flow"]["exporter_port"] = Value::from(to.port());
    }
    if d["flow"]["protocol"] == "sflow5" {
        d["flow"].as_object_mut().unwrap().remove("export_time");
        if d["event"].get("end").is_none() {
            d.as_object_mut().unwrap().remove("@timestamp");
        }
    }
    d.to_string()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn corpus_replay_gives_what_decode_gives() {
    let dir = temp_dir("e2e");
    let out = dir.join("out.jsonl");
    let c = Collector::start(&[
        "--output",
        &format!("file:{}", out.display()),
        "--workers",
        "1",
    ]);
    let mut expected = Vec::new();
    let mut sent = 0u64;
    for (i, cap) in captures().iter().enumerate() {
        let mut rp = Replayer::new(i);
        for (src, payload) in datagrams(cap) {
            rp.send(src, &payload, c.addr());
            sent += 1;
            if sent % 200 == 0 {
                // stay well below the socket buffer; this test is about correctness
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let map = rp.mapping();
        expected.extend(decode(cap, &[]).into_iter().map(|d| normalise(d, &map)));
    }
    wait_for("all datagrams received", Duration::from_secs(30), || {
        c.metric("ferroflow_packets_received_total") >= sent
    });
    let (status, err) = c.stop();
    assert!(status.success(), "collector failed: {err}");
    let got: Vec<String> = read_jsonl(&out)
        .into_iter()
        .map(|d| normalise(d, &HashMap::new()))
        .collect();
    let mut want_count: HashMap<&str, i64> = HashMap::new();
    for e in &expected {
        *want_count.entry(e).or_default() += 1;
    }
    for g in &got {
        *want_count.entry(g).or_default() -= 1;
    }
    let missing: Vec<_> = want_count.iter().filter(|(_, &n)| n > 0).take(3).collect();
    let extra: Vec<_> = want_count.iter().filter(|(_, &n)| n < 0).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} expected, {} collected\nmissing: {missing:?}\nextra: {extra:?}",
        expected.len(),
        got.len()
    );
    assert!(expected.len() > 4000, "{}", expected.len());
    println!(
        "{sent} datagrams replayed, {} documents, identical to ferroflow decode",
        got.len()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// NetFlow v5 datagram of 30 records, sequence `seq`.
fn v5(seq: u32) -> Vec<u8> {
    let mut b = vec![0u8; 24 + 30 * 48];
    b[1] = 5;
    b[3] = 30;
    b[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
    b[16..20].copy_from_slice(&seq.to_be_bytes());
    for i in 0..30 {
        let r = &mut b[24 + i * 48..][..48];
        r[0..4].copy_from_slice(&seq.to_be_bytes());
        r[4..8].copy_from_slice(&[10, 0, 0, i as u8]);
        r[38] = 17;
    }
    b
}

#[test]
fn sigterm_leaves_every_accepted_record_in_the_file() {
    for split in [false, true] {
        let dir = temp_dir(if split { "sigterm-split" } else { "sigterm" });
        let out = dir.join("out.jsonl");
        let path = format!("file:{}", out.display());
        let mut args = vec!["--output", path.as_str(), "--workers", "2"];
        if split {
            args.push("--split");
        }
        let c = Collector::start(&args);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let n = 2000u32;
        for seq in 0..n {
            sock.send_to(&v5(seq * 30), c.addr()).unwrap();
        }
        // signal at once: what the kernel queued but the workers have not read yet is drained
        let (status, err) = c.stop();
        assert!(status.success(), "collector failed: {err}");
        let docs = read_jsonl(&out);
        let drops: u64 = err
            .split_whitespace()
            .find_map(|w| w.strip_prefix("socket_drops="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert_eq!(drops, 0, "kernel dropped datagrams: {err}");
        assert_eq!(docs.len() as u64, u64::from(n) * 30, "split={split}: {err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Deterministic xorshift: fuzzed datagrams without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn fuzzed_datagrams_are_counted_and_good_records_all_arrive() {
    let dir = temp_dir("fuzz-mix");
    let out = dir.join("out.jsonl");
    let c = Collector::start(&[
        "--output",
        &format!("file:{}", out.display()),
        "--workers",
        "1",
    ]);
    let good_caps: Vec<_> = captures()
        .into_iter()
        .filter(|p| {
            let n = p.to_string_lossy();
            n.contains("pmacct/100-")
                || n.contains("netflow_nfv5")
                || n.contains("tcpdump/sflow_expanded")
        })
        .collect();
    assert_eq!(good_caps.len(), 3);
    let bad = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut expected = Vec::new();
    let mut sent = 0u64;
    let mut bad_sent = 0u64;
    for (i, cap) in good_caps.iter().enumerate() {
        let mut rp = Replayer::new(1000 + i);
        let dgs = datagrams(cap);
        for (src, payload) in &dgs {
            // before each good datagram, a few bad ones from another exporter: random bytes,
            // a corrupted copy of this datagram, a truncated copy
            let mut corrupt = payload.clone();
            for _ in 0..4 {
                let at = (rng.next() as usize) % corrupt.len();
                corrupt[at] ^= (rng.next() as u8) | 1;
            }
            let cut = &payload[..(rng.next() as usize) % payload.len()];
            let random: Vec<u8> = (0..(rng.next() % 1400) as usize)
                .map(|_| rng.next() as u8)
                .collect();
            let mut versioned = random.clone();
            if versioned.len() >= 4 {
                versioned[..2].copy_from_slice(&[0, [5u8, 9, 10][(rng.next() % 3) as usize]]);
            }
            for b in [&corrupt[..], cut, &random, &versioned] {
                bad.send_to(b, c.addr()).unwrap();
                bad_sent += 1;
            }
            rp.send(*src, payload, c.addr());
            sent += 1;
        }
        let map = rp.mapping();
        expected.extend(decode(cap, &[]).into_iter().map(|d| normalise(d, &map)));
    }
    wait_for("all datagrams", Duration::from_secs(30), || {
        c.metric("ferroflow_packets_received_total") >= sent + bad_sent
    });
    std::thread::sleep(Duration::from_millis(1200)); // decode stats are published once a second
    let errors = c.metric("ferroflow_decode_errors_total");
    let bad_exporter_packets = c.metric("ferroflow_exporter_decode_errors_total");
    let (status, err) = c.stop();
    assert!(status.success(), "collector failed: {err}");
    assert!(
        errors > 0 && bad_exporter_packets > 0,
        "no decode errors counted: {err}"
    );
    let bad_addr = bad.local_addr().unwrap();
    let got: Vec<String> = read_jsonl(&out)
        .into_iter()
        .filter(|d| {
            let ip = d["observer"]["ip"].as_str().unwrap();
            let port = d["flow"]["exporter_port"].as_u64().unwrap() as u16;
            !(ip == bad_addr.ip().to_string() && port == bad_addr.port())
        })
        .map(|d| normalise(d, &HashMap::new()))
        .collect();
    let mut count: HashMap<&str, i64> = HashMap::new();
    for e in &expected {
        *count.entry(e).or_default() += 1;
    }
    for g in &got {
        *count.entry(g).or_default() -= 1;
    }
    assert!(
        count.values().all(|&n| n == 0),
        "good records differ: {} expected, {} got",
        expected.len(),
        got.len()
    );
    println!("{sent} good and {bad_sent} bad datagrams: {} good documents, {errors} decode errors counted", got.len());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn listens_on_ipv6_and_ipv4() {
    let dir = temp_dir("v6");
    let out = dir.join("out.jsonl");
    let port = free_udp_port();
    let c = Collector::start(&[
        "--listen",
        &format!("[::1]:{port}"),
        "--output",
        &format!("file:{}", out.display()),
    ]);
    let v6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
    v6.send_to(&v5(1), format!("[::1]:{port}")).unwrap();
    let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    v4.send_to(&v5(2), c.addr()).unwrap();
    wait_for("both datagrams", Duration::from_secs(10), || {
        c.metric("ferroflow_packets_received_total") >= 2
    });
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    let docs = read_jsonl(&out);
    assert_eq!(docs.len(), 60);
    assert_eq!(
        docs.iter().filter(|d| d["observer"]["ip"] == "::1").count(),
        30
    );
    assert_eq!(
        docs.iter()
            .filter(|d| d["observer"]["ip"] == "127.0.0.1")
            .count(),
        30
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sink_write_errors_are_counted_with_the_last_one_and_fail_the_exit() {
    // /dev/full takes the open and refuses every write (ENOSPC)
    let c = Collector::start(&["--output", "file:/dev/full", "--workers", "1"]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..20u32 {
        sock.send_to(&v5(seq * 30), c.addr()).unwrap();
    }
    wait_for("a worker error", Duration::from_secs(20), || {
        c.metric("ferroflow_worker_errors_total") >= 1
    });
    let (_, body) = http_get(c.metrics, "/metrics").expect("metrics");
    let info = body
        .lines()
        .find(|l| l.starts_with("ferroflow_worker_last_error_info{"))
        .unwrap_or_else(|| panic!("no last-error line in:\n{body}"));
    assert!(
        info.starts_with("ferroflow_worker_last_error_info{worker=\"0\",error=\"worker 0: sink: ")
            && info.contains("No space left on device")
            && info.ends_with("} 1"),
        "{info}"
    );
    let (status, err) = c.stop();
    assert!(!status.success(), "exit should fail: {err}");
    assert!(err.contains("No space left on device"), "{err}");
}
