//! The closing figure (ignored by default; run in release):
//!
//! ```text
//! cargo test --release --test index_bench -- --ignored --nocapture
//! # or, with a release binary already built and a debug test harness:
//! cargo build --release && FERROFLOW_BIN=target/release/ferroflow \
//!     cargo test --test index_bench -- --ignored --nocapture
//! ```
//!
//! In one run, against the local OpenSearch: (1) the best rate a plain bulk client reaches —
//! this test POSTing pre-built `_bulk` bodies of the same documents (5000 per request, `create`
//! with ids, the same index template and the same three indices) from 1, 2 and 4 threads over keep-alive connections; (2)
//! the steady-state rate of `ferroflow index` consuming the same documents from Kafka (the rate
//! between 10% and 90% of the documents indexed, from `_count` polls). Sizes from the
//! environment: FERROFLOW_BENCH_DOCS (default 200000).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::index::*;
use ferroflow_engine::es::{template, TemplateSettings};
use ferroflow_engine::index::rdkafka;

fn install_template(prefix: &str) {
    let t = template::index_template(
        prefix,
        &TemplateSettings {
            replicas: 0,
            refresh_interval: "1s".into(),
            ..Default::default()
        },
        false,
    );
    let (st, r) = es_json(
        "PUT",
        &format!("/_index_template/{prefix}"),
        Some(&t.to_string()),
    );
    assert_eq!(st, 200, "{r}");
}

/// Best docs/s of a plain bulk client, over 1, 2, 4 threads (fresh index each).
fn plain_client(docs: &[Doc], prefix: &str, thread_counts: &[usize]) -> (f64, usize) {
    let mut best = (0.0, 0);
    for &threads in thread_counts {
        let p = format!("{prefix}t{threads}");
        install_template(&p);
        let bodies: Vec<Vec<u8>> = docs
            .chunks(5000)
            .enumerate()
            .map(|(c, chunk)| {
                let mut b = Vec::with_capacity(chunk.len() * 600);
                for (i, d) in chunk.iter().enumerate() {
                    // the same indices ferroflow writes: one per protocol (topic) and day
                    let proto = ["netflow", "ipfix", "sflow"]
                        .into_iter()
                        .find(|x| d.topic.ends_with(x))
                        .unwrap();
                    let day = ms_to_rfc3339(d.ts_ms)[..10].replace('-', ".");
                    b.extend_from_slice(
                        format!(
                            "{{\"create\":{{\"_index\":\"{p}-{proto}-{day}\",\"_id\":\"raw-{c}-{i}\"}}}}\n"
                        )
                        .as_bytes(),
                    );
                    b.extend_from_slice(d.json.as_bytes());
                    b.push(b'\n');
                }
                b
            })
            .collect();
        let bodies = Arc::new(bodies);
        let next = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (bodies, next) = (bodies.clone(), next.clone());
                std::thread::spawn(move || {
                    let c = es();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(b) = bodies.get(i) else { break };
                        let r = c
                            .bulk(b, b.iter().filter(|x| **x == b'\n').count() / 2)
                            .unwrap();
                        assert!(r.is_none(), "plain client: item errors");
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let secs = t0.elapsed().as_secs_f64();
        let rate = docs.len() as f64 / secs;
        assert_eq!(count(&p), docs.len() as u64);
        eprintln!(
            "plain bulk client, {threads} thread(s): {} docs in {secs:.2} s = {rate:.0} docs/s",
            docs.len()
        );
        if rate > best.0 {
            best = (rate, threads);
        }
        let _ = es().request(
            "DELETE",
            &format!("/{p}-*"),
            "application/json",
            None,
            false,
        );
        let _ = es().request(
            "DELETE",
            &format!("/_index_template/{p}"),
            "application/json",
            None,
            false,
        );
    }
    best
}

/// User + system CPU seconds of a process (Linux /proc).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[test]
#[ignore = "benchmark: cargo test --release --test index_bench -- --ignored --nocapture"]
fn indexed_docs_per_second() {
    if !services_up("indexed_docs_per_second") {
        return;
    }
    let total: usize = std::env::var("FERROFLOW_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let n = Names::new("bench");
    n.create_topics(4);
    let dir = tmpdir("index-bench");
    let docs = synthetic_docs(&n, total);
    let bytes: usize = docs.iter().map(|d| d.json.len()).sum();
    eprintln!(
        "{total} documents, {:.0} bytes each on average",
        bytes as f64 / total as f64
    );

    let rounds: usize = std::env::var("FERROFLOW_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    produce(&n.brokers, &docs);
    let mut plain_rates = Vec::new();
    let mut ff_rates = Vec::new();
    for round in 0..rounds {
        // the plain client first (best of 1, 2, 4 threads in the first round, 2 and 4 after)
        let threads: &[usize] = if round == 0 { &[1, 2, 4] } else { &[2, 4] };
        let (best, best_threads) = plain_client(&docs, &format!("{}raw{round}", n.prefix), threads);
        // then ferroflow index over the same documents, from Kafka, in a fresh group and prefix
        let prefix = format!("{}r{round}", n.prefix);
        let group = format!("{}-r{round}", n.group);
        let mut args = n.index_args();
        for (flag, v) in [("--index-prefix", &prefix), ("--group", &group)] {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1] = v.clone();
        }
        args.extend(["--es-url", ES].map(String::from));
        // FERROFLOW_BENCH_ARGS: extra flags for `ferroflow index` ("--threads 1 --in-flight 2")
        if let Ok(extra) = std::env::var("FERROFLOW_BENCH_ARGS") {
            args.extend(extra.split_whitespace().map(String::from));
        }
        let t_start = Instant::now();
        let mut ix = Indexer::start(&args, &dir.join(format!("index-{round}.log")));
        let (lo, hi) = (total as u64 / 10, total as u64 * 9 / 10);
        let mut t_lo = None;
        let mut c_lo = 0;
        let end = Instant::now() + Duration::from_secs(900);
        let (t_hi, c_hi) = loop {
            assert!(Instant::now() < end, "timed out: {}", ix.log_text());
            ix.assert_running();
            let c = count(&prefix);
            let now = Instant::now();
            if t_lo.is_none() && c >= lo {
                t_lo = Some(now);
                c_lo = c;
            }
            if c >= hi {
                break (now, c);
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        let steady = (c_hi - c_lo) as f64 / (t_hi - t_lo.unwrap()).as_secs_f64();
        let got = wait_count(
            &prefix,
            total as u64,
            Duration::from_secs(300),
            Some(&mut ix),
        );
        let all = t_start.elapsed().as_secs_f64();
        assert_eq!(got, total as u64);
        let cpu = cpu_secs(ix.child.id());
        ix.sigterm();
        eprintln!(
            "round {round}: plain bulk client best {best:.0} docs/s ({best_threads} threads); ferroflow index steady state {steady:.0} docs/s (10%..90%), all {total} in {all:.1} s incl. start-up, {} CPU",
            cpu.map_or("?".to_string(), |c| format!("{c:.1} s ({:.1} us/doc)", c * 1e6 / total as f64))
        );
        plain_rates.push(best);
        ff_rates.push(steady);
        let _ = es().request(
            "DELETE",
            &format!("/{prefix}-*"),
            "application/json",
            None,
            false,
        );
        let _ = es().request(
            "DELETE",
            &format!("/_index_template/{prefix}"),
            "application/json",
            None,
            false,
        );
        let opts = rdkafka::admin::AdminOptions::new();
        let _ = ferroflow_engine::index::dead_letter::block_on(
            admin(&n.brokers).delete_groups(&[group.as_str()], &opts),
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (mp, mf) = (median(&mut plain_rates), median(&mut ff_rates));
    eprintln!(
        "median over {rounds} rounds: plain bulk client {mp:.0} docs/s, ferroflow index {mf:.0} docs/s ({:.0}%)",
        100.0 * mf / mp
    );
}
