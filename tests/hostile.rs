//! Hostile input at the collector: datagrams from outside the exporter allow-list produce
//! nothing but a counter; a template flood from 10,000 spoofed loopback sources stays within
//! the configured state bounds while an allowed exporter's records all arrive.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn v5(seq: u32) -> Vec<u8> {
    let mut b = vec![0u8; 24 + 30 * 48];
    b[1] = 5;
    b[3] = 30;
    b[16..20].copy_from_slice(&seq.to_be_bytes());
    for i in 0..30 {
        b[24 + i * 48 + 38] = 6;
    }
    b
}

/// IPFIX message from one exporter: 16 templates of 64 fields, and a data set for a template
/// it never sends (held until evicted).
fn template_flood(seq: u32) -> Vec<u8> {
    let mut b = vec![0, 10, 0, 0, 0, 0, 0, 1];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    let mut set = Vec::new();
    for t in 0..16u16 {
        set.extend_from_slice(&(256 + t).to_be_bytes());
        set.extend_from_slice(&64u16.to_be_bytes());
        for f in 0..64u16 {
            set.extend_from_slice(&(f + 1).to_be_bytes());
            set.extend_from_slice(&4u16.to_be_bytes());
        }
    }
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&((set.len() + 4) as u16).to_be_bytes());
    b.extend_from_slice(&set);
    let data = vec![0xab; 400];
    b.extend_from_slice(&999u16.to_be_bytes());
    b.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
    b.extend_from_slice(&data);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn datagrams_outside_the_allow_list_only_count() {
    let dir = temp_dir("allow");
    let out = dir.join("out.jsonl");
    let cfg = dir.join("ferroflow.toml");
    std::fs::write(
        &cfg,
        "[decoder]\nallow_exporters = [\"127.0.0.2/32\", \"2001:db8::/32\"]\n",
    )
    .unwrap();
    let c = Collector::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        &format!("file:{}", out.display()),
    ]);
    let allowed = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let denied = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    // the denied exporter's templates must not even create state: send it a template first
    denied.send_to(&template_flood(1), c.addr()).unwrap();
    denied.send_to(&v5(1), c.addr()).unwrap();
    allowed.send_to(&v5(2), c.addr()).unwrap();
    let t0 = Instant::now();
    while c.metric("ferroflow_packets_received_total") < 3 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1200)); // counters are published once a second
    assert_eq!(c.metric("ferroflow_datagrams_not_allowed_total"), 2);
    assert_eq!(
        c.metric("ferroflow_templates_received_total"),
        0,
        "denied exporter created templates"
    );
    assert_eq!(
        c.metric("ferroflow_exporter_packets_total"),
        1,
        "only the allowed exporter has state"
    );
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    let docs = read_jsonl(&out);
    assert_eq!(docs.len(), 30);
    assert!(docs.iter().all(|d| d["observer"]["ip"] == "127.0.0.2"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn template_flood_from_10000_sources_stays_bounded() {
    let dir = temp_dir("flood");
    let out = dir.join("out.jsonl");
    let cfg = dir.join("ferroflow.toml");
    // bounds: 1000 exporters x 16 templates x 64 fields; 2 MiB of held data in total
    std::fs::write(
        &cfg,
        "[decoder]\nmax_exporters = 1000\nmax_templates_per_exporter = 16\nmax_held_bytes_total = \"2MiB\"\n",
    )
    .unwrap();
    let c = Collector::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        &format!("file:{}", out.display()),
    ]);
    let pid = c.child.id();
    let rss_start = rss_kib(pid);
    let good = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let flood = template_flood(1);
    let mut good_sent = 0u32;
    let mut peak = 0;
    for i in 0..10_000u32 {
        // spoofed sources: 10,000 distinct loopback addresses 127.10.x.y
        let src = format!("127.10.{}.{}:0", i / 250, 1 + i % 250);
        let s = std::net::UdpSocket::bind(&src).unwrap();
        s.send_to(&flood, c.addr()).unwrap();
        if i % 100 == 0 {
            good.send_to(&v5(good_sent * 30), c.addr()).unwrap();
            good_sent += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        if i % 250 == 249 {
            // pace the flood: let the collector catch up (this test is about state, not speed)
            let want = u64::from(i + 1 + good_sent);
            let t0 = Instant::now();
            while c.metric("ferroflow_packets_received_total") < want
                && t0.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            peak = peak.max(rss_kib(pid));
        }
    }
    let total = 10_000 + u64::from(good_sent);
    let t0 = Instant::now();
    while c.metric("ferroflow_packets_received_total") < total {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not all datagrams received"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1200));
    peak = peak.max(rss_kib(pid));
    let evicted = c.metric("ferroflow_exporters_evicted_total");
    let held_dropped = c.metric("ferroflow_held_sets_dropped_total");
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    // state for at most 1000 exporters is kept: the other 9,000+ were evicted, oldest first
    assert!(evicted >= 9_000, "exporters evicted: {evicted}");
    assert!(held_dropped > 0);
    // 1000 exporters x 16 templates x 64 fields is ~60 MiB of compiled templates at most; the
    // process stays well under 256 MiB above where it started
    assert!(
        peak < rss_start + 256 * 1024,
        "RSS grew from {rss_start} KiB to {peak} KiB"
    );
    let docs = read_jsonl(&out);
    assert_eq!(
        docs.len() as u32,
        good_sent * 30,
        "allowed exporter's records lost"
    );
    println!("RSS {rss_start} KiB -> peak {peak} KiB; {evicted} exporter states evicted");
    let _ = std::fs::remove_dir_all(dir);
}
