//! Re-sends the UDP payloads of a capture to a collector at a rate, looping, optionally
//! spread over many source addresses.
//!
//! Each original exporter (source address and port in the capture) gets a sending socket of
//! its own, so its templates and data keep arriving from one source. With `exporters = N`,
//! loop `l` sends original exporter `i`'s datagrams from socket `(i + l * n) mod N` (n:
//! exporters in the capture): later loops look like new exporters, each sending its
//! templates first, as the capture does. Payloads are sent as captured (sequence numbers are
//! not rewritten: a collector sees each loop as an exporter restart or a repeat).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferroflow_io::pcap::PcapReader;
use ferroflow_io::udp::{bind_udp, SendBatch, SocketOptions, Transmit};
use serde::Serialize;

use crate::bucket::TokenBucket;
use crate::generate::{exporter_addr, SourceAddrs};

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub path: PathBuf,
    pub target: SocketAddr,
    /// Packets per second (None: as fast as it goes).
    pub rate: Option<f64>,
    /// Times the capture is sent.
    pub loops: u64,
    /// Sending sockets (None: one per exporter in the capture).
    pub exporters: Option<usize>,
    pub batch: usize,
    pub pin: Option<usize>,
    /// Upper bound on the run.
    pub max_duration: Duration,
    pub stop: Option<Arc<AtomicBool>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    pub file: String,
    pub target: String,
    pub datagrams_in_capture: u64,
    pub exporters_in_capture: usize,
    pub sockets: usize,
    pub loops_done: u64,
    pub packets: u64,
    pub bytes: u64,
    pub send_errors: u64,
    pub elapsed_s: f64,
    pub packets_per_s: f64,
}

impl ReplayReport {
    pub fn text(&self) -> String {
        format!(
            "replayed {} ({} datagrams from {} exporters) {} times to {} from {} sockets: {} packets, {} bytes in {:.3} s ({:.0} packets/s), send errors: {}\n",
            self.file,
            self.datagrams_in_capture,
            self.exporters_in_capture,
            self.loops_done,
            self.target,
            self.sockets,
            self.packets,
            self.bytes,
            self.elapsed_s,
            self.packets_per_s,
            self.send_errors
        )
    }
}

/// Runs the replay.
pub fn run(cfg: &ReplayConfig) -> anyhow::Result<ReplayReport> {
    if cfg.batch == 0 || cfg.batch > 64 {
        bail!("batch must be 1..=64");
    }
    let mut reader =
        PcapReader::open(&cfg.path).with_context(|| format!("opening {}", cfg.path.display()))?;
    let mut sources: HashMap<SocketAddr, usize> = HashMap::new();
    let mut packets: Vec<(usize, Vec<u8>)> = Vec::new();
    while let Some(d) = reader.next_datagram() {
        let d = d?;
        let n = sources.len();
        let i = *sources.entry(d.src).or_insert(n);
        packets.push((i, d.payload.to_vec()));
    }
    if packets.is_empty() {
        bail!("{}: no UDP datagrams", cfg.path.display());
    }
    let n_src = sources.len();
    let n_sock = cfg.exporters.unwrap_or(n_src).max(1);
    let opts = SocketOptions {
        recv_buffer_bytes: None,
        send_buffer_bytes: Some(4 << 20),
        reuse_port: false,
        reuse_address: false,
        nonblocking: false,
        read_timeout: None,
        drop_counter: false,
        timestamps: false,
    };
    let sockets: Vec<UdpSocket> = (0..n_sock)
        .map(|i| {
            bind_udp(exporter_addr(cfg.target, SourceAddrs::Distinct, i), &opts).map(|b| b.socket)
        })
        .collect::<Result<_, _>>()?;
    if let Some(c) = cfg.pin {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let start = Instant::now();
    let deadline = start + cfg.max_duration;
    let mut bucket = cfg
        .rate
        .map(|r| TokenBucket::new(r, TokenBucket::capacity_for(r, cfg.batch), 1.0, start));
    let mut sender = SendBatch::new(cfg.batch);
    let mut r = ReplayReport {
        file: cfg.path.display().to_string(),
        target: cfg.target.to_string(),
        datagrams_in_capture: packets.len() as u64,
        exporters_in_capture: n_src,
        sockets: n_sock,
        ..ReplayReport::default()
    };
    let mut tx: Vec<Transmit<'_>> = Vec::with_capacity(cfg.batch);
    'outer: for l in 0..cfg.loops {
        let mut at = 0;
        while at < packets.len() {
            let now = Instant::now();
            if now >= deadline || cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                break 'outer;
            }
            // a run of datagrams of one exporter, up to a batch
            let src = packets[at].0;
            let mut end = at + 1;
            while end < packets.len() && end - at < cfg.batch && packets[end].0 == src {
                end += 1;
            }
            let mut n = (end - at) as u64;
            if let Some(b) = bucket.as_mut() {
                let avail = b.available(now);
                if avail == 0 {
                    std::thread::sleep(b.time_until(1, now).min(deadline - now));
                    continue;
                }
                n = n.min(avail);
                b.take(n, now);
            }
            let sock = &sockets[(src + l as usize * n_src) % n_sock];
            tx.clear();
            for (_, p) in &packets[at..at + n as usize] {
                r.bytes += p.len() as u64;
                tx.push(Transmit {
                    dst: cfg.target,
                    payload: p,
                });
            }
            let mut off = 0;
            let mut tries = 0;
            while off < tx.len() && tries < 1000 {
                tries += 1;
                match sender.send(sock, &tx[off..]) {
                    Ok(0) => std::thread::yield_now(),
                    Ok(k) => off += k,
                    Err(_) => {
                        r.send_errors += 1;
                        off += 1;
                    }
                }
            }
            r.packets += n;
            at += n as usize;
        }
        r.loops_done = l + 1;
    }
    r.elapsed_s = start.elapsed().as_secs_f64().max(1e-9);
    r.packets_per_s = r.packets as f64 / r.elapsed_s;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_io::pcap::Writer;

    #[test]
    fn loops_and_spreads_over_sockets() {
        let dir = std::env::temp_dir().join(format!("ff-replay-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("two.pcap");
        {
            let mut w = Writer::create(&path).unwrap();
            let a: SocketAddr = "192.0.2.1:2055".parse().unwrap();
            let b: SocketAddr = "192.0.2.2:2055".parse().unwrap();
            let dst: SocketAddr = "192.0.2.9:2055".parse().unwrap();
            for i in 0..5u8 {
                let src = if i % 2 == 0 { a } else { b };
                w.write_udp(u64::from(i) * 1000, src, dst, &[i; 20])
                    .unwrap();
            }
            w.flush().unwrap();
        }
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let cfg = ReplayConfig {
            path: path.clone(),
            target: rx.local_addr().unwrap(),
            rate: Some(10_000.0),
            loops: 3,
            exporters: Some(4),
            batch: 8,
            pin: None,
            max_duration: Duration::from_secs(10),
            stop: None,
        };
        let r = run(&cfg).unwrap();
        assert_eq!(
            (r.packets, r.loops_done, r.exporters_in_capture),
            (15, 3, 2)
        );
        let mut from = std::collections::HashSet::new();
        let mut buf = [0u8; 64];
        for _ in 0..15 {
            let (n, src) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(n, 20);
            from.insert(src);
        }
        assert_eq!(from.len(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
