//! The server against real loopback clients: slow ones, idle ones, too many, oversized heads,
//! clients that never read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{start, Response, Server, ServerOptions};

struct Running {
    server: Option<Server>,
    stop: Arc<AtomicBool>,
}

impl Running {
    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr
    }

    fn stat(&self, f: impl Fn(&super::ServerStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        f(&self.server.as_ref().unwrap().stats).load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.server.take() {
            let _ = s.thread.join();
        }
    }
}

fn run(opts: ServerOptions, big_body: usize) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let server = start(
        "127.0.0.1:0".parse().unwrap(),
        opts,
        "ff-http-test",
        Box::new(move |path: &str| match path {
            "/healthz" => Response::text("200 OK", "ok\n"),
            "/big" => Response::text("200 OK", "x".repeat(big_body)),
            _ => Response::text("404 Not Found", "not found\n"),
        }),
        stop.clone(),
    )
    .unwrap();
    Running {
        server: Some(server),
        stop,
    }
}

/// Send a whole request, read the whole response: (status code, body).
fn get(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn healthz(addr: SocketAddr) -> (u16, String) {
    get(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Wait (at most `limit`) until `f` holds.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

#[test]
fn routes_methods_and_query_strings() {
    let r = run(ServerOptions::default(), 0);
    assert_eq!(healthz(r.addr()), (200, "ok\n".into()));
    assert_eq!(
        get(r.addr(), "GET /healthz?verbose=1 HTTP/1.0\n\n"),
        (200, "ok\n".into())
    );
    assert_eq!(get(r.addr(), "GET /nope HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(get(r.addr(), "POST /healthz HTTP/1.1\r\n\r\n").0, 405);
    assert!(wait_for(Duration::from_secs(5), || r.stat(|s| &s.served) == 4));
    assert!(wait_for(Duration::from_secs(5), || r.stat(|s| &s.open) == 0));
}

#[test]
fn trickling_clients_do_not_block_others_and_are_cut_at_the_deadline() {
    let opts = ServerOptions {
        head_timeout: Duration::from_secs(2),
        ..ServerOptions::default()
    };
    let r = run(opts, 0);
    let addr = r.addr();
    // five clients send one byte of a request every 300 ms: each byte would reset a per-read
    // timeout, but not the whole-request deadline
    let stop = Arc::new(AtomicBool::new(false));
    let trickle: Vec<_> = (0..5)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
                let t0 = Instant::now();
                let mut sent = 0;
                for b in b"GET /healthz HTTP/1.1\r\nHost: a-rather-long-host-name\r\n\r\n" {
                    if stop.load(Ordering::Relaxed) || t0.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    if s.write_all(&[*b]).is_err() {
                        break; // the server closed it
                    }
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(300));
                }
                (sent, t0.elapsed())
            })
        })
        .collect();
    assert!(wait_for(Duration::from_secs(5), || r.stat(|s| &s.open) >= 5));
    // answered while the five are held open
    for _ in 0..3 {
        assert_eq!(healthz(addr), (200, "ok\n".into()));
    }
    assert!(
        r.stat(|s| &s.open) >= 5,
        "the trickling clients are still open"
    );
    // each is closed at its deadline, long before its request would be complete
    assert!(wait_for(Duration::from_secs(10), || r
        .stat(|s| &s.timed_out)
        >= 5));
    stop.store(true, Ordering::Relaxed);
    for t in trickle {
        let (sent, _) = t.join().unwrap();
        assert!(
            sent < 50,
            "a trickling client sent its whole request ({sent} bytes)"
        );
    }
}

#[test]
fn connections_beyond_the_cap_evict_the_oldest_idle_one() {
    let opts = ServerOptions {
        max_connections: 4,
        ..ServerOptions::default()
    };
    let r = run(opts, 0);
    let addr = r.addr();
    // ten clients connect and send nothing
    let idle: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(wait_for(Duration::from_secs(5), || r.stat(|s| &s.accepted) >= 10));
    assert!(r.stat(|s| &s.open) <= 4, "open: {}", r.stat(|s| &s.open));
    assert_eq!(r.stat(|s| &s.evicted), 6);
    assert_eq!(healthz(addr), (200, "ok\n".into()));
    assert!(r.stat(|s| &s.open) <= 4);
    // the first six were closed by the server: they read EOF (or a reset), not a timeout
    for mut s in idle.into_iter().take(6) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(n) => assert_eq!(n, 0, "an evicted connection got data"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
}

#[test]
fn an_oversized_head_gets_431() {
    let r = run(ServerOptions::default(), 0);
    let req = format!(
        "GET /healthz HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let mut s = TcpStream::connect(r.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // the server may close before it read everything: a failed write is fine
    let _ = s.write_all(req.as_bytes());
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&resp)
    );
}

#[test]
fn a_client_that_never_reads_is_cut_at_the_write_deadline_and_a_full_server_answers_503() {
    let opts = ServerOptions {
        max_connections: 1,
        write_timeout: Duration::from_secs(2),
        ..ServerOptions::default()
    };
    // far more than the socket buffers hold
    let r = run(opts, 64 << 20);
    let mut stuck = TcpStream::connect(r.addr()).unwrap();
    stuck.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
    assert!(wait_for(Duration::from_secs(5), || r.stat(|s| &s.open) == 1));
    // the only slot is writing: a new client is answered 503 at once (before it even sends;
    // a request sent meanwhile could turn the close into a reset)
    let mut extra = TcpStream::connect(r.addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut resp = String::new();
    extra.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 503 "), "{resp}");
    assert_eq!(r.stat(|s| &s.rejected), 1);
    // the reader that never reads is dropped at the deadline; then the slot is free again
    assert!(wait_for(Duration::from_secs(10), || r
        .stat(|s| &s.timed_out)
        == 1));
    assert_eq!(healthz(r.addr()), (200, "ok\n".into()));
    assert_eq!(r.stat(|s| &s.served), 1);
    drop(stuck);
}
