//! Hostile input at the collector: datagrams from outside the exporter allow-list produce
//! nothing but a counter; a template flood from 10,000 spoofed loopback sources stays within
//! the configured state bounds while an allowed exporter's records all arrive. At the default
//! caps: a flood of template bytes and of distinct domains keeps the RSS bounded, source-port
//! churn from one address spares another exporter's templates, exporter times outside the
//! window take the receive time, a datagram yields at most so many records.

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

// ---- bounds on per-source state, records and times (issue 16), at the default caps ---------

/// IPFIX message of `n` templates of 64 four-byte fields, ids from `first`, observation
/// domain `domain`.
fn templates(seq: u32, domain: u32, first: u16, n: u16) -> Vec<u8> {
    let mut sets = Vec::new();
    for t in 0..n {
        sets.extend_from_slice(&(first + t).to_be_bytes());
        sets.extend_from_slice(&64u16.to_be_bytes());
        for f in 0..64u16 {
            sets.extend_from_slice(&(f + 1).to_be_bytes());
            sets.extend_from_slice(&4u16.to_be_bytes());
        }
    }
    ipfix_msg(seq, domain, 1_700_000_000, &[(2, sets)])
}

/// IPFIX message with the given sets.
fn ipfix_msg(seq: u32, domain: u32, export_secs: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0, 10, 0, 0];
    b.extend_from_slice(&export_secs.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&domain.to_be_bytes());
    for (id, body) in sets {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        b.extend_from_slice(body);
    }
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}

/// The legitimate exporter's IPFIX template 300: source and destination address, ports,
/// protocol, octets.
fn legit_template() -> Vec<u8> {
    let mut t = 300u16.to_be_bytes().to_vec();
    t.extend_from_slice(&6u16.to_be_bytes());
    for (id, len) in [(8u16, 4u16), (12, 4), (7, 2), (11, 2), (4, 1), (1, 8)] {
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
    }
    t
}

/// `n` records of template 300, numbered from `first` (in the destination port).
fn legit_records(first: u16, n: u16) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        b.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39]);
        b.extend_from_slice(&(first + i).to_be_bytes());
        b.push(6);
        b.extend_from_slice(&1000u64.to_be_bytes());
    }
    b
}

/// CPU time (user + system) the process has used, in microseconds. Printed per datagram by
/// the floods below, for the record (timings are measured by `benches/decode.rs`'s `spoofed`
/// group, not asserted).
fn cpu_us(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the command's closing parenthesis: utime and stime are the 12th and 13th
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000 / hz
}

/// Wait (bounded) until the collector has received `n` datagrams.
fn wait_received(c: &Collector, n: u64, within: Duration) {
    let t0 = Instant::now();
    while c.metric("ferroflow_packets_received_total") < n {
        assert!(t0.elapsed() < within, "not all of {n} datagrams received");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn start_default(out: &std::path::Path) -> Collector {
    Collector::start(&["--output", &format!("file:{}", out.display())])
}

/// Let the once-a-second counters be published.
fn settle() {
    std::thread::sleep(Duration::from_millis(1300));
}

/// 4.2 MB of template sets (64 fields each, new ids every datagram) from three spoofed
/// exporters took the RSS to 710 MB: templates are now bounded by their measured bytes.
#[test]
fn template_bytes_flood_keeps_rss_bounded() {
    let dir = temp_dir("tplbytes");
    let out = dir.join("out.jsonl");
    let c = start_default(&out);
    let pid = c.child.id();
    let rss_start = rss_kib(pid);
    let flooders: Vec<_> = (1..=3)
        .map(|i| std::net::UdpSocket::bind(format!("127.20.0.{i}:0")).unwrap())
        .collect();
    let good = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    good.send_to(
        &ipfix_msg(0, 1, now_secs(), &[(2, legit_template())]),
        c.addr(),
    )
    .unwrap();
    let mut sent = 1u64;
    let mut bytes = 0usize;
    let mut good_records = 0u16;
    let mut peak = 0;
    let mut i = 0u32;
    while bytes < 4_200_000 {
        // 16 new templates per datagram: ids 256.. cycling through 60,000 ids
        let first = 256 + ((i * 16) % 60_000) as u16;
        let pkt = templates(i, 0, first, 16);
        bytes += pkt.len();
        flooders[i as usize % 3].send_to(&pkt, c.addr()).unwrap();
        sent += 1;
        i += 1;
        if i % 50 == 0 {
            let pkt = ipfix_msg(
                u32::from(good_records),
                1,
                now_secs(),
                &[(300, legit_records(good_records, 10))],
            );
            good.send_to(&pkt, c.addr()).unwrap();
            good_records += 10;
            sent += 1;
            wait_received(&c, sent, Duration::from_secs(20));
            peak = peak.max(rss_kib(pid));
        }
    }
    wait_received(&c, sent, Duration::from_secs(30));
    settle();
    peak = peak.max(rss_kib(pid));
    let evicted = c.metric("ferroflow_templates_evicted_total");
    let received = c.metric("ferroflow_templates_received_total");
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    // 16,000+ compiled templates of ~15 KiB each would be ~250 MiB; the state bound is
    // 4 MiB per exporter and 32 MiB per worker
    assert!(
        received >= 16 * u64::from(i),
        "templates received: {received}"
    );
    assert!(
        evicted > received / 2,
        "templates evicted: {evicted} of {received}"
    );
    assert!(
        peak < rss_start + 96 * 1024,
        "RSS grew from {rss_start} KiB to {peak} KiB"
    );
    let docs = read_jsonl(&out);
    assert_eq!(
        docs.len(),
        usize::from(good_records),
        "legitimate records lost"
    );
    println!("{bytes} bytes of templates: RSS {rss_start} KiB -> peak {peak} KiB, {evicted} of {received} templates evicted");
    let _ = std::fs::remove_dir_all(dir);
}

/// Distinct observation domains (each with a sampling table) from a handful of sources:
/// per-exporter domain state is capped and evicted, the RSS stays put.
#[test]
fn distinct_domain_flood_keeps_rss_bounded() {
    let dir = temp_dir("domains");
    let out = dir.join("out.jsonl");
    let c = start_default(&out);
    let pid = c.child.id();
    let flooders: Vec<_> = (1..=4)
        .map(|i| std::net::UdpSocket::bind(format!("127.21.0.{i}:0")).unwrap())
        .collect();
    // options template 256 (scope: observationDomainId; samplerId, samplingInterval) and
    // 64 sampler records per domain
    let mut ot = 256u16.to_be_bytes().to_vec();
    ot.extend_from_slice(&[0, 3, 0, 1, 0, 149, 0, 4, 0, 48, 0, 2, 0, 34, 0, 4]);
    let n = 100_000u32;
    let mut sent = 0u64;
    let mut rss_after_warmup = 0;
    let mut peak = 0;
    for d in 0..n {
        let mut od = Vec::new();
        for sid in 0..64u16 {
            od.extend_from_slice(&d.to_be_bytes());
            od.extend_from_slice(&sid.to_be_bytes());
            od.extend_from_slice(&100u32.to_be_bytes());
        }
        let pkt = ipfix_msg(1, d, now_secs(), &[(3, ot.clone()), (256, od)]);
        flooders[d as usize % 4].send_to(&pkt, c.addr()).unwrap();
        sent += 1;
        if sent % 500 == 0 {
            wait_received(&c, sent, Duration::from_secs(20));
            if sent == 2_000 {
                rss_after_warmup = rss_kib(pid);
            }
            peak = peak.max(rss_kib(pid));
        }
    }
    wait_received(&c, sent, Duration::from_secs(30));
    settle();
    peak = peak.max(rss_kib(pid));
    let evicted = c.metric("ferroflow_domains_evicted_total");
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    // 4 exporters x 64 domains kept (per worker): the rest evicted
    assert!(
        evicted >= u64::from(n) - 2 * 4 * 64,
        "domains evicted: {evicted} of {n}"
    );
    // the state after 2,000 domains is all there is: the other 98,000 add nothing
    assert!(
        peak < rss_after_warmup + 32 * 1024,
        "RSS grew from {rss_after_warmup} KiB (after 2,000 domains) to {peak} KiB"
    );
    println!("{n} domains: RSS {rss_after_warmup} KiB -> peak {peak} KiB, {evicted} evicted");
    let _ = std::fs::remove_dir_all(dir);
}

/// 10,000 source ports from one address (one datagram of templates each) used to evict a
/// legitimate exporter's templates: the address's quota now evicts only its own entries. The
/// legitimate exporter sends its template once, then only data: every record arrives.
#[test]
fn source_port_churn_spares_the_legitimate_exporter() {
    let dir = temp_dir("churn");
    let out = dir.join("out.jsonl");
    let c = start_default(&out);
    let cpu_start = cpu_us(c.child.id());
    let good = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    good.send_to(
        &ipfix_msg(0, 1, now_secs(), &[(2, legit_template())]),
        c.addr(),
    )
    .unwrap();
    let mut sent = 1u64;
    let mut good_records = 0u16;
    let flood = template_flood(1);
    let mut ports = 0u32;
    for p in 20_000u16..30_000 {
        // one datagram per source port of 127.22.0.1
        let Ok(s) = std::net::UdpSocket::bind(("127.22.0.1", p)) else {
            continue;
        };
        s.send_to(&flood, c.addr()).unwrap();
        ports += 1;
        sent += 1;
        if ports % 100 == 0 {
            let pkt = ipfix_msg(
                u32::from(good_records),
                1,
                now_secs(),
                &[(300, legit_records(good_records, 5))],
            );
            good.send_to(&pkt, c.addr()).unwrap();
            good_records += 5;
            sent += 1;
            wait_received(&c, sent, Duration::from_secs(20));
        }
    }
    wait_received(&c, sent, Duration::from_secs(30));
    settle();
    let quota = c.metric("ferroflow_exporters_evicted_ip_quota_total");
    let misses = c.metric("ferroflow_template_misses_total");
    let cpu = cpu_us(c.child.id()) - cpu_start;
    println!(
        "{ports} source ports: {quota} evicted by the quota; collector CPU {} us per datagram (debug build, metrics scrapes included)",
        cpu / sent.max(1)
    );
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    assert!(ports >= 9_000, "only {ports} ports bound");
    // 64 ports per address per worker are kept: the rest evicted by the quota
    assert!(
        quota >= u64::from(ports) - 2 * 64,
        "evicted by the quota: {quota} of {ports}"
    );
    let docs = read_jsonl(&out);
    let from_good = docs
        .iter()
        .filter(|d| d["observer"]["ip"] == "127.0.0.2")
        .count();
    assert_eq!(
        from_good,
        usize::from(good_records),
        "legitimate records lost ({misses} template misses)"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// 200,000 datagrams from distinct sources used to take 40 us each (a linear scan per
/// eviction) and could evict any exporter: at the default caps, 25,000 spoofed sources (more
/// than `max_exporters` per worker) churn the newcomers while an established exporter, idle
/// through the whole flood, keeps its template: its data after the flood all arrives.
#[test]
fn distinct_source_flood_spares_an_established_exporter() {
    let dir = temp_dir("sources");
    let out = dir.join("out.jsonl");
    let c = start_default(&out);
    let pid = c.child.id();
    let good = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    // template and data twice: an established exporter
    let first = ipfix_msg(
        0,
        1,
        now_secs(),
        &[(2, legit_template()), (300, legit_records(0, 5))],
    );
    good.send_to(&first, c.addr()).unwrap();
    let pkt = ipfix_msg(5, 1, now_secs(), &[(300, legit_records(5, 5))]);
    good.send_to(&pkt, c.addr()).unwrap();
    let mut sent = 2u64;
    wait_received(&c, sent, Duration::from_secs(10));
    let cpu_start = cpu_us(pid);
    let rss_start = rss_kib(pid);
    // an empty IPFIX message: state for a new exporter, no document
    let flood = ipfix_msg(1, 0, now_secs(), &[]);
    let n = 25_000u32;
    for i in 0..n {
        let src = format!("127.23.{}.{}:0", i / 250, 1 + i % 250);
        let s = std::net::UdpSocket::bind(&src).unwrap();
        s.send_to(&flood, c.addr()).unwrap();
        sent += 1;
        if i % 250 == 249 {
            wait_received(&c, sent, Duration::from_secs(20));
        }
    }
    wait_received(&c, sent, Duration::from_secs(30));
    let cpu = cpu_us(pid) - cpu_start;
    // after the flood: data only
    let pkt = ipfix_msg(10, 1, now_secs(), &[(300, legit_records(10, 5))]);
    good.send_to(&pkt, c.addr()).unwrap();
    sent += 1;
    wait_received(&c, sent, Duration::from_secs(10));
    settle();
    let evicted = c.metric("ferroflow_exporters_evicted_total");
    let peak = rss_kib(pid);
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    // 10,000 exporters per worker at most: with two workers at least 5,000 evicted
    assert!(evicted >= u64::from(n) - 2 * 10_000, "evicted: {evicted}");
    let docs = read_jsonl(&out);
    let from_good = docs
        .iter()
        .filter(|d| d["observer"]["ip"] == "127.0.0.2")
        .count();
    assert_eq!(from_good, 15, "the established exporter's records lost");
    assert_eq!(docs.len(), 15);
    assert!(
        peak < rss_start + 128 * 1024,
        "RSS grew from {rss_start} KiB to {peak} KiB"
    );
    println!(
        "{n} spoofed sources: {evicted} exporters evicted, RSS {rss_start} -> {peak} KiB, collector CPU {} us per datagram (debug build)",
        cpu / u64::from(n)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Seconds since the epoch now.
fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// One datagram with export times of 1970 and of 2106 used to spread its records over
/// five daily indices: times outside the window take the receive time (one day), the
/// original is kept in `netflow.original_timestamp`, and counted.
#[test]
fn exporter_times_outside_the_window_are_clamped() {
    let dir = temp_dir("clamp");
    let out = dir.join("out.jsonl");
    let c = start_default(&out);
    let s = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let day_before = now_secs();
    // template 301: octets and flowEndSeconds (IE 151)
    let mut t = 301u16.to_be_bytes().to_vec();
    t.extend_from_slice(&[0, 2, 0, 1, 0, 8, 0, 151, 0, 4]);
    let mut data = Vec::new();
    for end in [1u32, 86_400 * 365 * 20, u32::MAX, day_before - 60] {
        data.extend_from_slice(&1000u64.to_be_bytes());
        data.extend_from_slice(&end.to_be_bytes());
    }
    let pkt = ipfix_msg(1, 0, 0, &[(2, t), (301, data)]);
    s.send_to(&pkt, c.addr()).unwrap();
    // v5 with a 2106 header time (uptime-relative times resolve to then)
    let mut v = v5(1);
    v[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    s.send_to(&v, c.addr()).unwrap();
    wait_received(&c, 2, Duration::from_secs(10));
    settle();
    let clamped = c.metric("ferroflow_timestamps_clamped_total");
    let (status, err) = c.stop();
    let day_after = now_secs();
    assert!(status.success(), "{err}");
    let docs = read_jsonl(&out);
    assert_eq!(docs.len(), 4 + 30);
    assert_eq!(clamped, 3 + 30);
    let day = |secs: u32| secs / 86_400;
    let mut days = std::collections::BTreeSet::new();
    for d in &docs {
        let ts = d["@timestamp"].as_str().unwrap();
        days.insert(ts[..10].to_string());
        let original = d["netflow"]
            .get("original_timestamp")
            .and_then(|v| v.as_str());
        let own = d["event"]["end"].as_str().unwrap_or("");
        match original {
            // clamped: the record's own time is kept, @timestamp is today
            Some(o) => {
                assert_eq!(o, own, "{d}");
                assert_ne!(o[..10], ts[..10], "{d}");
            }
            // in the window: untouched
            None => assert_eq!(ts, own, "{d}"),
        }
    }
    // one daily index (two if the test ran across midnight)
    let expect = 1 + usize::from(day(day_before) != day(day_after));
    assert_eq!(days.len(), expect, "{days:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// One datagram of 8,000 one-byte records used to yield 8,000 documents: a datagram yields at
/// most `max_records_per_datagram` (default 1024), and is counted.
#[test]
fn records_per_datagram_are_capped() {
    let dir = temp_dir("reccap");
    let out = dir.join("out.jsonl");
    let c = start_default(&out);
    let s = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    // template 302: protocolIdentifier (1 byte)
    let t = vec![1, 46, 0, 1, 0, 4, 0, 1];
    let pkt = ipfix_msg(1, 0, now_secs(), &[(2, t), (302, vec![17; 8000])]);
    s.send_to(&pkt, c.addr()).unwrap();
    // and a small one after it, whole
    let pkt = ipfix_msg(2, 0, now_secs(), &[(302, vec![6; 10])]);
    s.send_to(&pkt, c.addr()).unwrap();
    wait_received(&c, 2, Duration::from_secs(10));
    settle();
    let capped = c.metric("ferroflow_datagrams_record_capped_total");
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    assert_eq!(capped, 1);
    let docs = read_jsonl(&out);
    assert_eq!(docs.len(), 1024 + 10);
    let _ = std::fs::remove_dir_all(dir);
}

// ---- service-level attacks: health server, port sharing, error logging
//
// The health/metrics server under slow-loris clients and more connections than its cap; a
// second collector on a port already served; decode errors in the log, rate-limited; an OS
// error said once.

/// The metrics server's connection cap (engine::http::ServerOptions::default()).
const HTTP_MAX_CONNECTIONS: usize = 64;

/// Sockets the process has open (`/proc/<pid>/fd` entries that are sockets).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// GET /healthz until it answers 200; how long it took (None: not within `limit`).
fn healthz_within(addr: std::net::SocketAddr, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if http_get(addr, "/healthz").is_some_and(|(code, body)| code == 200 && body == "ok\n") {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn healthz_answers_while_slow_loris_clients_trickle_requests() {
    let dir = temp_dir("loris");
    let c = Collector::start(&["--output", &format!("file:{}", dir.join("out").display())]);
    let addr = c.metrics;
    // 20 clients each send one byte of a request every 1.5 s (a per-read timeout of 2 s never
    // fires); they stop after 15 s at most
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                    return 0;
                };
                let t0 = Instant::now();
                let mut sent = 0;
                for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" {
                    if stop.load(std::sync::atomic::Ordering::Relaxed)
                        || t0.elapsed() > Duration::from_secs(15)
                        || std::io::Write::write_all(&mut s, &[*b]).is_err()
                    {
                        break;
                    }
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(1500));
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // while they hold their connections (the old server served one at a time and blocked)
    for round in 0..4 {
        let took = healthz_within(addr, Duration::from_secs(10));
        assert!(
            took.is_some(),
            "round {round}: /healthz did not answer in 10 s"
        );
        assert_eq!(c.metric("ferroflow_up"), 1);
        std::thread::sleep(Duration::from_millis(1000));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: Vec<usize> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    // the whole-request deadline (5 s) cut them off, or they gave up: no one finished
    assert!(sent.iter().all(|&n| n < 35), "bytes sent: {sent:?}");
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn more_idle_connections_than_the_cap_keep_healthz_answering_and_sockets_bounded() {
    let dir = temp_dir("conncap");
    let c = Collector::start(&["--output", &format!("file:{}", dir.join("out").display())]);
    let pid = c.child.id();
    let before = open_sockets(pid);
    // 200 connections that send one byte and then nothing
    let mut idle = Vec::new();
    for _ in 0..200 {
        let mut s = std::net::TcpStream::connect(c.metrics).unwrap();
        let _ = std::io::Write::write_all(&mut s, b"G");
        idle.push(s);
    }
    let took = healthz_within(c.metrics, Duration::from_secs(10));
    assert!(took.is_some(), "/healthz did not answer in 10 s");
    let during = open_sockets(pid);
    // the server keeps at most its cap open (plus the one being served and a little slack)
    assert!(
        during <= before + HTTP_MAX_CONNECTIONS + 2,
        "sockets: {before} before, {during} with 200 idle clients"
    );
    // the excess was closed by the server: at least 200 - cap clients see EOF or a reset
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 16];
        match std::io::Read::read(s, &mut b) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => {}
        }
    }
    assert!(
        closed >= 200 - HTTP_MAX_CONNECTIONS,
        "only {closed} of 200 idle connections were closed"
    );
    drop(idle);
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `ferroflow collect` on `listen`, metrics off, output to a file in `dir`; extra environment.
fn collect_cmd(listen: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["collect", "--listen", listen, "--no-pin", "--output"])
        .arg(format!("file:{}", dir.join("second.jsonl").display()))
        .env_remove("FERROFLOW_COLLECTOR_ALLOW_SHARED_PORT")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Run a command that must exit within 20 s: (success, stderr).
fn run_to_exit(mut cmd: std::process::Command) -> (bool, String) {
    let mut child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after 20 s (it should have refused to start)");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    (status.success(), err)
}

#[test]
fn a_second_collector_on_a_served_port_is_refused_unless_sharing_is_allowed() {
    let dir = temp_dir("shared");
    let first = Collector::start(&["--output", &format!("file:{}", dir.join("first").display())]);
    let listen = first.addr().to_string();

    // refused, naming the address and the setting; the first one keeps running
    let mut cmd = collect_cmd(&listen, &dir, &[]);
    cmd.args(["--metrics", "off"]);
    let (ok, err) = run_to_exit(cmd);
    assert!(!ok, "second collector started: {err}");
    assert!(err.contains(&listen), "{err}");
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains("collector.allow_shared_port"), "{err}");
    assert_eq!(first.metric("ferroflow_up"), 1);

    // the wildcard address of the same port is refused too
    let any = format!("0.0.0.0:{}", first.port);
    let mut cmd = collect_cmd(&any, &dir, &[]);
    cmd.args(["--metrics", "off"]);
    let (ok, err) = run_to_exit(cmd);
    assert!(!ok && err.contains(&any), "{err}");

    // allowed on purpose: it starts, says so, and joins the port
    let mport = free_tcp_port();
    let maddr: std::net::SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let mut cmd = collect_cmd(
        &listen,
        &dir,
        &[("FERROFLOW_COLLECTOR_ALLOW_SHARED_PORT", "true")],
    );
    cmd.args(["--metrics", &maddr.to_string()]);
    let mut second = cmd.spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(st) = second.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err);
            panic!("second collector with allow_shared_port exited ({st}): {err}");
        }
        if http_get(maddr, "/readyz").is_some_and(|(code, _)| code == 200) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "not ready in 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(second.id() as i32, libc::SIGTERM);
    }
    let t0 = Instant::now();
    while second.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = second.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err);
    let _ = second.wait();
    assert!(err.contains("is shared with another socket"), "{err}");

    let (status, err) = first.stop();
    assert!(status.success(), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_os_error_is_printed_once() {
    let dir = temp_dir("oserr");
    // 192.0.2.1 (TEST-NET-1) is no address of this host: bind fails with EADDRNOTAVAIL
    let mut cmd = collect_cmd("192.0.2.1:2055", &dir, &[]);
    cmd.args(["--metrics", "off"]);
    let (ok, err) = run_to_exit(cmd);
    assert!(!ok, "{err}");
    let os = std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL).to_string();
    assert_eq!(err.matches(&os).count(), 1, "{err}");
    assert!(err.contains("192.0.2.1:2055"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The `key=value` field of a log line.
fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn decode_errors_are_logged_rate_limited_with_kind_offset_and_exporter() {
    let dir = temp_dir("errlog");
    let c = Collector::start(&[
        "--workers",
        "1",
        "--output",
        &format!("file:{}", dir.join("out").display()),
    ]);
    let t_start = Instant::now();
    // exporter A: NetFlow v5 headers that claim 30 records and carry one (truncated after
    // the 24-byte header); exporter B: an unknown version. Each floods for about a second,
    // a pause apart so that each has its own log line.
    let mut truncated = v5(1);
    truncated.truncate(24 + 48);
    let mut bad_version = v5(1);
    bad_version[1] = 77;
    let a = std::net::UdpSocket::bind("127.0.0.7:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.8:0").unwrap();
    let mut sent = 0u64;
    for (sock, payload) in [(&a, &truncated), (&b, &bad_version)] {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(1) {
            for _ in 0..50 {
                sock.send_to(payload, c.addr()).unwrap();
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
    // every datagram seen, and the error counter settled
    let t0 = Instant::now();
    let mut errors = 0;
    loop {
        let received = c.metric("ferroflow_packets_received_total");
        let e = c.metric("ferroflow_decode_errors_total");
        if received + c.metric("ferroflow_socket_drops_total") >= sent && e == errors && e > 0 {
            break;
        }
        errors = e;
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{received} of {sent} received"
        );
        std::thread::sleep(Duration::from_millis(1200));
    }
    let (status, err) = c.stop();
    let elapsed = t_start.elapsed();
    assert!(status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("decode error")).collect();
    // at most one line a second (one worker), however many errors: thousands here
    assert!(sent >= 1000, "sent only {sent}");
    let bound = elapsed.as_secs() as usize + 2;
    assert!(
        !lines.is_empty() && lines.len() <= bound,
        "{} decode error lines in {elapsed:?} for {sent} bad datagrams:\n{err}",
        lines.len()
    );
    // every line names kind, offset and exporter, and counts what it stands for; together
    // they account for every error counted
    let mut logged = 0u64;
    for l in &lines {
        assert!(log_field(l, "kind").is_some(), "{l}");
        assert!(log_field(l, "offset").is_some(), "{l}");
        assert!(log_field(l, "exporter").is_some(), "{l}");
        logged += log_field(l, "errors")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap();
    }
    assert_eq!(
        logged, errors,
        "errors in the log vs ferroflow_decode_errors_total"
    );
    // A's: truncated at the end of the v5 header; B's: unsupported version at offset 0
    let of = |ip: &str| {
        lines
            .iter()
            .find(|l| log_field(l, "exporter").is_some_and(|e| e.starts_with(ip)))
            .unwrap_or_else(|| panic!("no line for exporter {ip}:\n{err}"))
    };
    let la = of("127.0.0.7:");
    assert_eq!(log_field(la, "kind"), Some("truncated"), "{la}");
    assert_eq!(log_field(la, "offset"), Some("24"), "{la}");
    let lb = of("127.0.0.8:");
    assert_eq!(log_field(lb, "kind"), Some("unsupported_version"), "{lb}");
    assert_eq!(log_field(lb, "offset"), Some("0"), "{lb}");
    let _ = std::fs::remove_dir_all(dir);
}
