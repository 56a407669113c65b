//! The closing figure (ignored by default; run in release):
//!
//! ```text
//! cargo test --release --test index_bench -- --ignored --nocapture
//! ```
//!
//! In one run, against the local OpenSearch: (1) the best rate a plain bulk client reaches —
//! this test POSTing pre-built `_bulk` bodies of the same documents (5000 per request, `create`
//! with ids, the same index template) from 1, 2 and 4 threads over keep-alive connections; (2)
//! the steady-state rate of `ferroflow index` consuming the same documents from Kafka (the rate
//! between 10% and 90% of the documents indexed, from `_count` polls). Sizes from the
//! environment: FERROFLOW_BENCH_DOCS (default 200000).

mod index_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflow_engine::index::{template, TemplateSettings};
use index_common::*;

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
fn plain_client(docs: &[Doc], prefix: &str) -> (f64, usize) {
    let mut best = (0.0, 0);
    for threads in [1usize, 2, 4] {
        let p = format!("{prefix}t{threads}");
        install_template(&p);
        let bodies: Vec<Vec<u8>> = docs
            .chunks(5000)
            .enumerate()
            .map(|(c, chunk)| {
                let mut b = Vec::with_capacity(chunk.len() * 600);
                for (i, d) in chunk.iter().enumerate() {
                    b.extend_from_slice(
                        format!(
                            "{{\"create\":{{\"_index\":\"{p}-netflow-2026.11.25\",\"_id\":\"raw-{c}-{i}\"}}}}\n"
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

    let (best, best_threads) = plain_client(&docs, &format!("{}raw", n.prefix));

    produce(&n.brokers, &docs);
    let mut args = n.index_args();
    args.extend(["--es-url", ES].map(String::from));
    let t_start = Instant::now();
    let mut ix = Indexer::start(&args, &dir.join("index.log"));
    let (lo, hi) = (total as u64 / 10, total as u64 * 9 / 10);
    let mut t_lo = None;
    let mut c_lo = 0;
    let end = Instant::now() + Duration::from_secs(900);
    let (t_hi, c_hi) = loop {
        assert!(Instant::now() < end, "timed out: {}", ix.log_text());
        ix.assert_running();
        let c = count(&n.prefix);
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
        &n.prefix,
        total as u64,
        Duration::from_secs(300),
        Some(&mut ix),
    );
    let all = t_start.elapsed().as_secs_f64();
    assert_eq!(got, total as u64);
    ix.sigterm();
    eprintln!(
        "ferroflow index: steady state {steady:.0} docs/s (10%..90%), all {total} in {all:.1} s including start-up"
    );
    eprintln!(
        "best plain bulk client: {best:.0} docs/s ({best_threads} threads); ferroflow index reaches {:.0}% of it",
        100.0 * steady / best
    );
}
