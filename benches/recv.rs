//! The receive loop on loopback: what `recvmmsg` (ferroflow_io::udp::RecvBatch, 64 a call,
//! the collector's batch) costs per datagram against a plain `recv_from` loop.
//!
//! - `recv_drain/*`: a sender fills the socket's receive queue with FILL datagrams (not
//!   timed), then one thread drains it (timed): the raw drain cost per packet, the floor
//!   under the collector's receive path.
//! - `recv_drain/recvmmsg_64_runtime`: the same, timed by the thread's run time (schedstat)
//!   rather than the wall clock, so time the thread spends preempted is not counted.
//! - `recv_stream/*`: a sender thread sends without pause while one thread receives
//!   (blocking, MSG_WAITFORONE / a blocking recv_from): datagrams per second one thread takes
//!   from a live stream (the sender's speed can be the limit; drops are not counted).
//!
//! Datagrams are 1464 bytes, a full NetFlow v5 export packet (30 records).
//!
//! ```text
//! cargo bench --bench recv
//! ```

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferroflow_io::udp::{bind_udp, RecvBatch, RecvMode, SendBatch, SocketOptions, Transmit};
use ferroflow_io::Slab;

const PAYLOAD: usize = 1464;
const FILL: usize = 4096;

fn receiver(nonblocking: bool) -> UdpSocket {
    let opts = SocketOptions {
        // room for FILL datagrams (about 2.3 KB of kernel memory each); forced past
        // rmem_max when running as root
        recv_buffer_bytes: Some(64 << 20),
        reuse_port: false,
        reuse_address: false,
        nonblocking,
        read_timeout: (!nonblocking).then(|| Duration::from_millis(200)),
        ..SocketOptions::default()
    };
    bind_udp("127.0.0.1:0".parse().unwrap(), &opts)
        .expect("bind receiver")
        .socket
}

fn sender() -> UdpSocket {
    let opts = SocketOptions {
        send_buffer_bytes: Some(4 << 20),
        reuse_port: false,
        reuse_address: false,
        nonblocking: false,
        drop_counter: false,
        timestamps: false,
        ..SocketOptions::default()
    };
    bind_udp("127.0.0.1:0".parse().unwrap(), &opts)
        .expect("bind sender")
        .socket
}

/// Sends `n` datagrams to `rx` in sendmmsg batches of 64; returns how many went.
fn fill(tx: &UdpSocket, batch: &mut SendBatch, rx: &UdpSocket, payload: &[u8], n: usize) -> usize {
    let dst = rx.local_addr().unwrap();
    let msgs: Vec<Transmit<'_>> = (0..64).map(|_| Transmit { dst, payload }).collect();
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(64);
        match batch.send(tx, &msgs[..k]) {
            Ok(0) | Err(_) => break,
            Ok(s) => sent += s,
        }
    }
    sent
}

/// Drains with recvmmsg until the queue is empty; returns the datagrams received.
fn drain_mmsg(rx: &UdpSocket, batch: &mut RecvBatch, slab: &mut Slab) -> usize {
    let mut got = 0;
    loop {
        let n = batch
            .recv(rx, slab, RecvMode::NonBlocking)
            .expect("recvmmsg");
        if n == 0 {
            return got;
        }
        // touch what the collector would read: the sender and the first bytes
        for (meta, p) in batch.datagrams(slab) {
            std::hint::black_box((meta.src, p[0]));
        }
        got += n;
    }
}

/// Drains with recv_from until the queue is empty.
fn drain_plain(rx: &UdpSocket, buf: &mut [u8]) -> usize {
    let mut got = 0;
    loop {
        match rx.recv_from(buf) {
            Ok((n, src)) => {
                std::hint::black_box((src, buf[0], n));
                got += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return got,
            Err(e) => panic!("recv_from: {e}"),
        }
    }
}

fn bench_drain(c: &mut Criterion) {
    let payload = vec![0x5au8; PAYLOAD];
    let rx = receiver(true);
    let tx = sender();
    let mut sb = SendBatch::new(64);
    let mut slab = Slab::new(RecvBatch::DEFAULT_CAPACITY, Slab::DEFAULT_SLOT_BYTES);
    let mut rb = RecvBatch::new(RecvBatch::DEFAULT_CAPACITY);
    // how many datagrams the receive queue holds (FILL as root, where SO_RCVBUFFORCE works;
    // fewer under a small net.core.rmem_max): each round fills it that far
    fill(&tx, &mut sb, &rx, &payload, FILL);
    let fill_n = drain_mmsg(&rx, &mut rb, &mut slab);
    assert!(
        fill_n >= 64,
        "the receive queue holds only {fill_n} datagrams"
    );
    if fill_n < FILL {
        eprintln!("recv_drain: the receive queue holds {fill_n} datagrams, not {FILL}");
    }
    let mut g = c.benchmark_group("recv_drain");
    g.throughput(Throughput::Elements(fill_n as u64));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("recvmmsg_64", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                fill(&tx, &mut sb, &rx, &payload, fill_n);
                let s = Instant::now();
                let n = drain_mmsg(&rx, &mut rb, &mut slab);
                t += s.elapsed();
                debug_assert_eq!(n, fill_n);
            }
            t
        })
    });
    // the same drain, timed by the thread's run time (schedstat) instead of the wall clock:
    // what a preempting neighbour on a shared machine does not inflate, and the measure
    // `ferroflow bench --receive-only --drain` uses for the collector's receive path
    g.bench_function("recvmmsg_64_runtime", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                fill(&tx, &mut sb, &rx, &payload, fill_n);
                let s = thread_run_ns();
                let n = drain_mmsg(&rx, &mut rb, &mut slab);
                t += Duration::from_nanos(thread_run_ns().saturating_sub(s));
                debug_assert_eq!(n, fill_n);
            }
            t
        })
    });
    let mut buf = vec![0u8; Slab::DEFAULT_SLOT_BYTES];
    g.bench_function("recv_from", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                fill(&tx, &mut sb, &rx, &payload, fill_n);
                let s = Instant::now();
                let n = drain_plain(&rx, &mut buf);
                t += s.elapsed();
                debug_assert_eq!(n, fill_n);
            }
            t
        })
    });
    g.finish();
}

/// Run time of the calling thread so far, ns (/proc/thread-self/schedstat).
fn thread_run_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A sender thread that sends to `dst` until `stop`, bounded to 10 minutes.
fn spawn_sender(dst: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let cores = core_ids();
        if cores.len() > 1 {
            core_affinity::set_for_current(cores[1]);
        }
        let tx = sender();
        let payload = vec![0x5au8; PAYLOAD];
        let msgs: Vec<Transmit<'_>> = (0..64)
            .map(|_| Transmit {
                dst,
                payload: &payload,
            })
            .collect();
        let mut sb = SendBatch::new(64);
        let end = Instant::now() + Duration::from_secs(600);
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            let _ = sb.send(&tx, &msgs);
        }
    })
}

fn core_ids() -> Vec<core_affinity::CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

fn bench_stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("recv_stream");
    const N: u64 = 1024;
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    let cores = core_ids();
    if let Some(c0) = cores.first() {
        core_affinity::set_for_current(*c0);
    }
    {
        let rx = receiver(false);
        let stop = Arc::new(AtomicBool::new(false));
        let h = spawn_sender(rx.local_addr().unwrap(), stop.clone());
        let mut slab = Slab::new(RecvBatch::DEFAULT_CAPACITY, Slab::DEFAULT_SLOT_BYTES);
        let mut rb = RecvBatch::new(RecvBatch::DEFAULT_CAPACITY);
        g.bench_function("recvmmsg_64", |b| {
            b.iter_custom(|iters| {
                let s = Instant::now();
                let mut got = 0u64;
                while got < iters * N {
                    got += rb
                        .recv(&rx, &mut slab, RecvMode::WaitForOne)
                        .expect("recvmmsg") as u64;
                }
                s.elapsed()
            })
        });
        stop.store(true, Ordering::Relaxed);
        let _ = h.join();
    }
    {
        let rx = receiver(false);
        let stop = Arc::new(AtomicBool::new(false));
        let h = spawn_sender(rx.local_addr().unwrap(), stop.clone());
        let mut buf = vec![0u8; Slab::DEFAULT_SLOT_BYTES];
        g.bench_function("recv_from", |b| {
            b.iter_custom(|iters| {
                let s = Instant::now();
                for _ in 0..iters * N {
                    std::hint::black_box(rx.recv_from(&mut buf).expect("recv_from"));
                }
                s.elapsed()
            })
        });
        stop.store(true, Ordering::Relaxed);
        let _ = h.join();
    }
    g.finish();
}

criterion_group!(benches, bench_drain, bench_stream);
criterion_main!(benches);
