//! Loopback tests (127.0.0.1 and ::1 only). Every loop is bounded in count and in time.

use super::*;
use std::collections::HashSet;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const LIMIT: Duration = Duration::from_secs(10);

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn bind(addr: &str, opts: &SocketOptions) -> BoundSocket {
    bind_udp(addr.parse().unwrap(), opts).unwrap()
}

/// Sends all of `msgs` from `fd`, retrying partial sends; bounded.
fn send_all(batch: &mut SendBatch, fd: impl AsFd, msgs: &[Transmit<'_>]) {
    let start = Instant::now();
    let mut done = 0;
    for _ in 0..100_000 {
        if done == msgs.len() {
            return;
        }
        assert!(start.elapsed() < LIMIT, "send timed out after {done}");
        done += batch.send(fd.as_fd(), &msgs[done..]).unwrap();
    }
    panic!("send did not finish: {done} of {}", msgs.len());
}

/// Receives until `want` datagrams arrived; returns (meta, payload) of each and the largest
/// batch seen.
fn recv_n(
    batch: &mut RecvBatch,
    slab: &mut Slab,
    fd: impl AsFd,
    want: usize,
) -> (Vec<(RecvMeta, Vec<u8>)>, usize) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut largest = 0;
    for _ in 0..1_000_000 {
        if got.len() >= want || start.elapsed() > LIMIT {
            break;
        }
        let n = batch.recv(fd.as_fd(), slab, RecvMode::NonBlocking).unwrap();
        assert_eq!(n, batch.len());
        largest = largest.max(n);
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        got.extend(batch.datagrams(slab).map(|(m, p)| (m, p.to_vec())));
    }
    (got, largest)
}

fn payload(i: usize) -> Vec<u8> {
    let mut p = (i as u32).to_be_bytes().to_vec();
    p.extend(std::iter::repeat_n(i as u8, i % 300));
    p
}

#[test]
fn loopback_batches_v4_and_v6() {
    for ip in ["127.0.0.1", "[::1]"] {
        let rx = bind(&format!("{ip}:0"), &SocketOptions::default());
        let tx = bind(&format!("{ip}:0"), &SocketOptions::default());
        assert!(rx.timestamps && rx.drop_counter, "options on loopback");
        assert_ne!(rx.local_addr.port(), 0);
        let mut sb = SendBatch::new(64);
        let mut rb = RecvBatch::new(RecvBatch::DEFAULT_CAPACITY);
        let mut slab = Slab::new(Slab::DEFAULT_SLOTS, 2048);
        let before = now_ns();
        let payloads: Vec<Vec<u8>> = (0..512).map(payload).collect();
        let mut largest = 0;
        let mut received = Vec::new();
        // 64 at a time, so the default receive buffer never overflows.
        for chunk in payloads.chunks(64) {
            let msgs: Vec<Transmit<'_>> = chunk
                .iter()
                .map(|p| Transmit {
                    dst: rx.local_addr,
                    payload: p,
                })
                .collect();
            send_all(&mut sb, &tx.socket, &msgs);
            let (got, l) = recv_n(&mut rb, &mut slab, &rx.socket, chunk.len());
            largest = largest.max(l);
            received.extend(got);
        }
        let after = now_ns();
        assert_eq!(received.len(), payloads.len(), "{ip}");
        for (i, (meta, p)) in received.iter().enumerate() {
            assert_eq!(p, &payloads[i], "{ip} datagram {i}");
            assert_eq!(meta.len, payloads[i].len());
            assert_eq!(meta.src, tx.local_addr);
            assert!(!meta.truncated);
            let ts = meta.ts_ns.expect("kernel timestamp");
            assert!(
                ts + 1_000_000_000 >= before && ts <= after + 1_000_000_000,
                "{ts}"
            );
        }
        assert!(largest > 1, "recvmmsg returned batches (largest {largest})");
        // Nothing left: a non-blocking receive says 0 at once.
        assert_eq!(
            rb.recv(&rx.socket, &mut slab, RecvMode::NonBlocking)
                .unwrap(),
            0
        );
        assert!(rb.is_empty());
    }
}

#[test]
fn oversized_datagram_is_flagged_truncated() {
    let rx = bind("127.0.0.1:0", &SocketOptions::default());
    let tx = bind("127.0.0.1:0", &SocketOptions::default());
    let big: Vec<u8> = (0..100u8).collect();
    let mut sb = SendBatch::new(4);
    let small = [7u8; 10];
    let msgs = [
        Transmit {
            dst: rx.local_addr,
            payload: &big,
        },
        Transmit {
            dst: rx.local_addr,
            payload: &small,
        },
    ];
    send_all(&mut sb, &tx.socket, &msgs);
    let mut slab = Slab::new(8, 64);
    let mut rb = RecvBatch::new(8);
    let (got, _) = recv_n(&mut rb, &mut slab, &rx.socket, 2);
    assert_eq!(got.len(), 2);
    assert!(got[0].0.truncated);
    assert_eq!(got[0].0.len, 64);
    assert_eq!(got[0].1, &big[..64]);
    assert!(!got[1].0.truncated);
    assert_eq!(got[1].1, small);
}

#[test]
fn reuse_port_lets_workers_share_a_port() {
    for ip in ["127.0.0.1", "[::1]"] {
        let a = bind(&format!("{ip}:0"), &SocketOptions::default());
        let b =
            bind_udp(a.local_addr, &SocketOptions::default()).expect("second SO_REUSEPORT bind");
        assert_eq!(a.local_addr, b.local_addr);
        // Without SO_REUSEPORT or SO_REUSEADDR the port is taken, and the error says where.
        let lone = SocketOptions {
            reuse_port: false,
            reuse_address: false,
            ..SocketOptions::default()
        };
        let e = bind_udp(a.local_addr, &lone).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&a.local_addr.to_string()) && msg.contains("bind"),
            "{msg}"
        );
    }
}

#[test]
fn send_from_many_sockets_with_one_batch() {
    let rx = bind("[::1]:0", &SocketOptions::default());
    let txs: Vec<BoundSocket> = (0..3)
        .map(|_| bind("[::1]:0", &SocketOptions::default()))
        .collect();
    let mut sb = SendBatch::new(16);
    let p = payload(5);
    let msgs = vec![
        Transmit {
            dst: rx.local_addr,
            payload: &p,
        };
        10
    ];
    for tx in &txs {
        send_all(&mut sb, &tx.socket, &msgs);
    }
    let mut slab = Slab::new(64, 512);
    let mut rb = RecvBatch::new(64);
    let (got, _) = recv_n(&mut rb, &mut slab, &rx.socket, 30);
    assert_eq!(got.len(), 30);
    let srcs: HashSet<SocketAddr> = got.iter().map(|(m, _)| m.src).collect();
    let want: HashSet<SocketAddr> = txs.iter().map(|t| t.local_addr).collect();
    assert_eq!(srcs, want);
}

#[test]
fn wait_for_one_returns_early_and_times_out() {
    let opts = SocketOptions {
        nonblocking: false,
        read_timeout: Some(Duration::from_millis(200)),
        ..SocketOptions::default()
    };
    let rx = bind("127.0.0.1:0", &opts);
    let tx = bind("127.0.0.1:0", &SocketOptions::default());
    let mut sb = SendBatch::new(4);
    let p = [1u8; 32];
    let msgs = [Transmit {
        dst: rx.local_addr,
        payload: &p,
    }; 3];
    send_all(&mut sb, &tx.socket, &msgs);
    std::thread::sleep(Duration::from_millis(20));
    let mut slab = Slab::new(64, 128);
    let mut rb = RecvBatch::new(64);
    let start = Instant::now();
    // Three queued, batch of 64: WAITFORONE returns what is there instead of waiting for 64.
    let n = rb
        .recv(&rx.socket, &mut slab, RecvMode::WaitForOne)
        .unwrap();
    assert_eq!(n, 3);
    assert!(
        start.elapsed() < Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    // Nothing queued: the read timeout ends the wait with Ok(0).
    let start = Instant::now();
    assert_eq!(
        rb.recv(&rx.socket, &mut slab, RecvMode::WaitForOne)
            .unwrap(),
        0
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < LIMIT,
        "{waited:?}"
    );
}

#[test]
fn rxq_ovfl_counts_drops() {
    let opts = SocketOptions {
        recv_buffer_bytes: Some(4096),
        ..SocketOptions::default()
    };
    let rx = bind("127.0.0.1:0", &opts);
    assert!(rx.drop_counter);
    let tx = bind("127.0.0.1:0", &SocketOptions::default());
    let p = [0xabu8; 1000];
    let blast = vec![
        Transmit {
            dst: rx.local_addr,
            payload: &p,
        };
        64
    ];
    let mut sb = SendBatch::new(64);
    // Fill the tiny buffer far past full without reading.
    for _ in 0..8 {
        send_all(&mut sb, &tx.socket, &blast);
    }
    let mut slab = Slab::new(64, 2048);
    let mut rb = RecvBatch::new(64);
    // The counter rides on datagrams queued after the drops: drain, send one more, repeat.
    let start = Instant::now();
    let mut drops = None;
    for _ in 0..200 {
        if drops.is_some() || start.elapsed() > LIMIT {
            break;
        }
        for _ in 0..1000 {
            let n = rb
                .recv(&rx.socket, &mut slab, RecvMode::NonBlocking)
                .unwrap();
            drops = drops.or(rb.rxq_drops());
            if n == 0 {
                break;
            }
        }
        send_all(&mut sb, &tx.socket, &blast[..1]);
        std::thread::sleep(Duration::from_millis(2));
    }
    let drops = drops.expect("SO_RXQ_OVFL reported drops");
    assert!(drops > 0 && drops <= 8 * 64, "{drops}");
}

#[test]
fn recv_buffer_is_reported() {
    let r = bind(
        "127.0.0.1:0",
        &SocketOptions {
            recv_buffer_bytes: Some(256 << 10),
            ..SocketOptions::default()
        },
    )
    .recv_buffer;
    assert_eq!(r.requested, Some(256 << 10));
    assert!(r.granted > 0);
    // Far past any rmem_max default: either forced (CAP_NET_ADMIN) or reported short.
    let huge = bind(
        "127.0.0.1:0",
        &SocketOptions {
            recv_buffer_bytes: Some(1 << 30),
            ..SocketOptions::default()
        },
    )
    .recv_buffer;
    assert!(huge.forced || huge.is_short(), "{huge:?}");
    if huge.forced {
        assert!(huge.granted >= 1 << 30, "{huge:?}");
    }
    let none = bind("127.0.0.1:0", &SocketOptions::default()).recv_buffer;
    assert!(!none.is_short() && !none.forced && none.requested.is_none());
}

#[test]
fn empty_and_zero_sized_inputs() {
    let rx = bind("127.0.0.1:0", &SocketOptions::default());
    let mut sb = SendBatch::new(0);
    let p = [0u8; 1];
    let m = [Transmit {
        dst: rx.local_addr,
        payload: &p,
    }];
    assert_eq!(sb.send(&rx.socket, &m).unwrap(), 0);
    let mut rb = RecvBatch::new(0);
    let mut slab = Slab::new(1, 1);
    assert_eq!(
        rb.recv(&rx.socket, &mut slab, RecvMode::NonBlocking)
            .unwrap(),
        0
    );
}

#[test]
fn addr_in_use_sees_a_reuse_port_group_and_plain_sockets() {
    let worker = SocketOptions {
        reuse_address: false,
        ..SocketOptions::default()
    };
    // a worker's SO_REUSEPORT socket holds the port: a second group member would bind silently
    let a = bind("127.0.0.1:0", &worker);
    assert!(addr_in_use(a.local_addr).unwrap());
    let joined = bind(&a.local_addr.to_string(), &worker);
    assert_eq!(joined.local_addr, a.local_addr);
    // the wildcard address of the same port is taken too
    let any = SocketAddr::from(([0, 0, 0, 0], a.local_addr.port()));
    assert!(addr_in_use(any).unwrap());
    // a socket without SO_REUSEPORT
    let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(addr_in_use(plain.local_addr().unwrap()).unwrap());
    // free once closed; port 0 is never in use
    let port = plain.local_addr().unwrap();
    drop(plain);
    assert!(!addr_in_use(port).unwrap());
    assert!(!addr_in_use("127.0.0.1:0".parse().unwrap()).unwrap());
    // IPv6 loopback, when the host has it
    if let Ok(s) = UdpSocket::bind("[::1]:0") {
        assert!(addr_in_use(s.local_addr().unwrap()).unwrap());
    }
}
