//! Helpers shared by the integration tests (`mod common;`): free ports, a collector process,
//! UDP replay of captures from distinct loopback exporters, metrics scraping. Loopback only;
//! every wait is bounded.
//!
//! - [`index`]: the Kafka / OpenSearch side (`ferroflow index`, producing, counting, a
//!   fault-injecting proxy, a private Kafka), for the `index_*`, pipeline, TLS and
//!   `collect_es` tests (`use common::index::*;`);
//! - [`kafka`]: topics made and deleted for one test, reading partitions to their end, the
//!   collector's `[output.kafka]` configuration;
//! - [`private_es`]: a private OpenSearch the tests may stop.
#![allow(dead_code)]

pub mod index;
pub mod kafka;
pub mod private_es;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferroflow_io::pcap::PcapReader;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferroflow")
}

/// The repository (the root package's directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn corpus_dir() -> PathBuf {
    repo().join("tests/fixtures/corpus")
}

pub fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in std::fs::read_dir(corpus_dir()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "pcap") {
                v.push(f);
            }
        }
    }
    v.sort();
    v
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferroflow-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running `ferroflow collect`.
pub struct Collector {
    pub child: Child,
    pub port: u16,
    pub metrics: SocketAddr,
}

impl Collector {
    /// Start with `args` after `collect --listen 127.0.0.1:<port> --metrics 127.0.0.1:<port>`
    /// and wait until /readyz answers 200 (at most 20 s).
    pub fn start(extra: &[&str]) -> Collector {
        let port = free_udp_port();
        let mport = free_tcp_port();
        let metrics: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
        let child = Command::new(bin())
            .args([
                "collect",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--metrics",
                &metrics.to_string(),
                "--no-pin",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferroflow collect");
        let mut c = Collector {
            child,
            port,
            metrics,
        };
        let t0 = Instant::now();
        loop {
            if let Some(st) = c.child.try_wait().unwrap() {
                let mut err = String::new();
                let _ = c.child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("collector exited early ({st}): {err}");
            }
            if http_get(metrics, "/readyz").is_some_and(|(code, _)| code == 200) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "collector not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    pub fn addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    pub fn metric(&self, name: &str) -> u64 {
        scrape(self.metrics, name)
    }

    /// SIGTERM and wait (at most 60 s); returns the exit status and stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let status = sigterm_wait(&mut self.child, Duration::from_secs(60))
            .expect("collector did not stop within 60 s of SIGTERM");
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        (status, err)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET a path from the metrics endpoint: (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Sum of every sample of a metric family (all label sets).
pub fn scrape(addr: SocketAddr, name: &str) -> u64 {
    let Some((_, body)) = http_get(addr, "/metrics") else {
        return 0;
    };
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The UDP datagrams of a capture: (original source, payload).
pub fn datagrams(path: &Path) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut r = PcapReader::open(path).unwrap();
    let mut v = Vec::new();
    while let Some(d) = r.next_datagram() {
        let d = d.unwrap();
        v.push((d.src, d.payload.to_vec()));
    }
    v
}

/// Sends datagrams from one loopback socket per original exporter, bound to distinct
/// addresses `127.<a>.<b>.<n>` so every original exporter stays a distinct exporter.
pub struct Replayer {
    senders: HashMap<SocketAddr, UdpSocket>,
    base: [u8; 2],
}

impl Replayer {
    /// `index` makes the addresses unique per capture (up to 60 000 captures).
    pub fn new(index: usize) -> Self {
        Replayer {
            senders: HashMap::new(),
            base: [1 + (index / 250) as u8, (index % 250) as u8],
        }
    }

    /// The loopback socket standing in for `orig`.
    pub fn sender(&mut self, orig: SocketAddr) -> &UdpSocket {
        let n = self.senders.len();
        let base = self.base;
        self.senders.entry(orig).or_insert_with(|| {
            let ip = format!("127.{}.{}.{}", base[0], base[1], 2 + n);
            UdpSocket::bind(format!("{ip}:0")).expect("bind loopback sender")
        })
    }

    /// Original exporter -> the loopback address it was replayed from.
    pub fn mapping(&self) -> HashMap<SocketAddr, SocketAddr> {
        self.senders
            .iter()
            .map(|(k, s)| (*k, s.local_addr().unwrap()))
            .collect()
    }

    pub fn send(&mut self, orig: SocketAddr, payload: &[u8], to: SocketAddr) {
        self.sender(orig).send_to(payload, to).expect("send");
    }
}

/// Replays `pcaps` to `to`, one capture after the other, each capture's exporters from sockets
/// of their own ([`Replayer`]: captures are independent streams of templates), `gap` between
/// datagrams so the socket buffer never overflows.
pub fn replay_paced(pcaps: &[PathBuf], to: SocketAddr, gap: Duration) {
    for (i, f) in pcaps.iter().enumerate() {
        let mut rp = Replayer::new(i);
        for (src, payload) in datagrams(f) {
            rp.send(src, &payload, to);
            std::thread::sleep(gap);
        }
    }
}

/// SIGTERM `child`, then [`wait_exit`].
pub fn sigterm_wait(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    wait_exit(child, timeout)
}

/// Waits up to `timeout` for `child` to exit: its status, or `None` (the child is then
/// killed).
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Run `ferroflow decode` on one capture: its documents, one JSON value per line.
pub fn decode(path: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(bin())
        .arg("decode")
        .arg("-q")
        .args(extra)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decode {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Read a JSON-lines file.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("bad JSON line in {}: {e}: {l}", path.display()))
        })
        .collect()
}

/// A document of an old capture replayed live has the receive time as `@timestamp` (the
/// decoder's time window, `decoder.max_past_secs`) and its own time in
/// `netflow.original_timestamp`: put that back, to compare it with `ferroflow decode`'s
/// document, whose receive time is the capture time. Returns whether the document had it.
pub fn unclamp(d: &mut serde_json::Value) -> bool {
    let Some(netflow) = d.get_mut("netflow").and_then(|n| n.as_object_mut()) else {
        return false;
    };
    let Some(t) = netflow.remove("original_timestamp") else {
        return false;
    };
    if netflow.is_empty() {
        d.as_object_mut().unwrap().remove("netflow");
    }
    d["@timestamp"] = t;
    true
}
