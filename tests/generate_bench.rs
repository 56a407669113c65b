//! `ferroflow generate` against `ferroflow collect`: every generated flow arrives, for every
//! protocol; `ferroflow bench --json` prints the documented keys. Loopback only, every wait
//! bounded; no timing is asserted.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{bin, temp_dir, Collector};
use serde_json::Value;

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines(path: &std::path::Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

#[test]
fn every_generated_flow_arrives() {
    for proto in ["netflow5", "netflow9", "ipfix", "sflow"] {
        let dir = temp_dir(&format!("generate-{proto}"));
        let out = dir.join("out.jsonl");
        let output = format!("file:{}", out.display());
        let c = Collector::start(&["--output", &output, "--workers", "2"]);
        let to = c.addr().to_string();
        let mut args = vec![
            "generate",
            "--protocol",
            proto,
            "--to",
            &to,
            "--rate",
            "1000",
            "--duration",
            "2",
            "--exporters",
            "3",
            "--sampling",
            "100",
            "--template-interval",
            "0.5",
            "--json",
        ];
        if proto != "netflow5" {
            args.extend(["--ipv6", "0.25"]);
        }
        let o = Command::new(bin()).args(&args).output().unwrap();
        assert!(
            o.status.success(),
            "{proto}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
        let packets = r["packets"].as_u64().unwrap();
        let flows = r["flows"].as_u64().unwrap();
        assert!(packets > 0 && flows > 0, "{proto}: {r}");
        assert_eq!(r["send_errors"].as_u64(), Some(0), "{proto}");
        assert_eq!(r["exporters"].as_u64(), Some(3));
        wait_for(
            &format!("{proto}: {packets} packets received"),
            Duration::from_secs(30),
            || c.metric("ferroflow_packets_received_total") >= packets,
        );
        wait_for(
            &format!("{proto}: {flows} flows delivered"),
            Duration::from_secs(30),
            || c.metric("ferroflow_sink_delivered_total") >= flows,
        );
        assert_eq!(c.metric("ferroflow_sequence_gaps_total"), 0, "{proto}");
        assert_eq!(c.metric("ferroflow_decode_errors_total"), 0, "{proto}");
        assert_eq!(c.metric("ferroflow_template_misses_total"), 0, "{proto}");
        let (status, err) = c.stop();
        assert!(status.success(), "{proto}: {err}");
        assert_eq!(lines(&out), flows, "{proto}: every generated flow, once");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bench_prints_the_documented_json() {
    let dir = temp_dir("bench-json");
    let o = Command::new(bin())
        .args([
            "bench",
            "--protocol",
            "netflow5",
            "--rate",
            "1000",
            "--duration",
            "2",
            "--json",
            "--quiet",
            "--out-dir",
        ])
        .arg(dir.join("report"))
        .arg("--work-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).expect("one JSON object on stdout");
    for k in [
        "offered_packets_per_s",
        "offered_flows_per_s",
        "received_flows_per_s",
        "indexed_flows_per_s",
        "loss_fraction",
        "collector_cpu_s_per_million_flows",
        "flows_per_cpu_second",
        "generator_cpu_s_per_million_flows",
        "latency_p50_s",
        "latency_p99_s",
        "subject",
        "subject_version",
        "machine",
        "trials",
    ] {
        assert!(r.get(k).is_some(), "missing {k}: {r}");
    }
    assert_eq!(r["subject"], "ferroflow");
    assert_eq!(r["protocol"], "netflow5");
    assert_eq!(r["mode"], "rate");
    let t = &r["trials"][0];
    let sent = t["sent_flows"].as_u64().unwrap();
    let indexed = t["indexed_flows"].as_u64().unwrap();
    assert!(sent > 0 && indexed <= sent, "{t}");
    let loss = r["loss_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&loss));
    assert!(t["stages"]["kernel_udp"].is_object());
    assert!(dir.join("report/report.json").is_file());
    assert!(dir.join("report/report.md").is_file());
    let _ = std::fs::remove_dir_all(dir);
}
