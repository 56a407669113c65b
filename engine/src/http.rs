//! A small HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz` (loopback by default). Not a
//! general web server: GET only, one request per connection.
//!
//! One thread runs a mio event loop over non-blocking sockets, so no client can hold up another
//! or the accept loop:
//! - every connection has a whole-request deadline ([`ServerOptions::head_timeout`], counted
//!   from accept to the end of the request head; trickling bytes does not extend it) and a
//!   deadline for writing the response ([`ServerOptions::write_timeout`]);
//! - the request head is bounded ([`ServerOptions::max_head_bytes`]; a larger one is answered
//!   431);
//! - at most [`ServerOptions::max_connections`] connections are open. One more closes the
//!   oldest connection still reading its head (a slow client), or, when every connection is
//!   writing a response, is answered 503 and closed at once.
//!
//! A request that arrives whole with its connection (every health checker and Prometheus) is
//! answered in the loop iteration that accepts it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::metrics::Metrics;

/// Limits of the server. The defaults suit a metrics endpoint scraped every few seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Connections open at once (at least 1). Default 64.
    pub max_connections: usize,
    /// From accept to the end of the request head. Default 5 s.
    pub head_timeout: Duration,
    /// From the end of the request head to the last byte of the response. Default 10 s.
    pub write_timeout: Duration,
    /// Largest request head (request line and headers). Default 8 KiB.
    pub max_head_bytes: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 64,
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_head_bytes: 8 * 1024,
        }
    }
}

/// What the server did, for tests and logs.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Responses written whole.
    pub served: AtomicU64,
    /// Connections closed because a deadline passed.
    pub timed_out: AtomicU64,
    /// Connections still reading their head closed to make room for a new one.
    pub evicted: AtomicU64,
    /// New connections answered 503 because every slot was writing a response.
    pub rejected: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

/// A response: status line text (`"200 OK"`), content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: &'static str, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain",
            body: body.into(),
        }
    }
}

/// Answers a GET for a path (without the query string). Runs on the server thread: it must not
/// block.
pub type Handler = Box<dyn FnMut(&str) -> Response + Send>;

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The address bound (the port filled in when 0 was asked for).
    pub local_addr: SocketAddr,
    pub stats: Arc<ServerStats>,
    /// The server thread; it ends within about 100 ms of `stop` being set.
    pub thread: JoinHandle<()>,
}

/// Start the collector's server on `addr`: `/metrics`, `/healthz`, `/readyz`. The thread ends
/// when `stop` is set.
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let handler = Box::new(move |path: &str| match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4",
            body: metrics.render(),
        },
        "/healthz" => Response::text("200 OK", "ok\n"),
        "/readyz" => {
            if metrics.ready.load(Ordering::Relaxed) && !metrics.stopping.load(Ordering::Relaxed) {
                Response::text("200 OK", "ready\n")
            } else {
                Response::text("503 Service Unavailable", "not ready\n")
            }
        }
        _ => Response::text("404 Not Found", "not found\n"),
    });
    let s = start(addr, ServerOptions::default(), "ff-metrics", handler, stop)?;
    Ok((s.local_addr, s.thread))
}

/// Bind `addr` and serve GET requests with `handler` on a thread named `name` until `stop` is
/// set.
pub fn start(
    addr: SocketAddr,
    opts: ServerOptions,
    name: &str,
    handler: Handler,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let poll = Poll::new()?;
    poll.registry().register(
        &mut SourceFd(&listener.as_raw_fd()),
        LISTENER,
        Interest::READABLE,
    )?;
    let stats = Arc::new(ServerStats::default());
    let mut el = EventLoop {
        listener,
        poll,
        opts: ServerOptions {
            max_connections: opts.max_connections.max(1),
            ..opts
        },
        handler,
        stats: stats.clone(),
        conns: Vec::new(),
        accept_pending: true,
    };
    el.conns.resize_with(el.opts.max_connections, || None);
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || el.run(&stop))?;
    Ok(Server {
        local_addr,
        stats,
        thread,
    })
}

const LISTENER: Token = Token(0);
/// Longest sleep in poll, so that `stop` is seen promptly.
const TICK: Duration = Duration::from_millis(100);

enum State {
    /// Reading the request head: the bytes so far.
    Reading(Vec<u8>),
    /// Writing the response: the bytes and how many went out.
    Writing(Vec<u8>, usize),
}

struct Conn {
    stream: TcpStream,
    accepted: Instant,
    deadline: Instant,
    state: State,
}

/// What driving a connection came to.
enum Next {
    /// Waiting for the socket.
    Wait,
    /// Finished or failed: close it.
    Close,
}

struct EventLoop {
    listener: TcpListener,
    poll: Poll,
    opts: ServerOptions,
    handler: Handler,
    stats: Arc<ServerStats>,
    /// Slot `i` is token `i + 1`.
    conns: Vec<Option<Conn>>,
    /// Accept again even without an event (after an accept error such as EMFILE, which leaves
    /// the connection queued without a new edge).
    accept_pending: bool,
}

impl EventLoop {
    fn run(&mut self, stop: &AtomicBool) {
        let mut events = Events::with_capacity(256);
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let timeout = self
                .conns
                .iter()
                .flatten()
                .map(|c| c.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or(TICK)
                .min(TICK);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::warn!("metrics server: poll: {e}");
                    std::thread::sleep(TICK);
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_pending = true,
                    Token(t) => self.drive(t - 1),
                }
            }
            if self.accept_pending {
                self.accept_all();
            }
            self.expire(Instant::now());
        }
        for i in 0..self.conns.len() {
            self.close(i);
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    self.admit(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and the like: try again on the next tick, without spinning
                    tracing::debug!("metrics server: accept: {e}");
                    self.accept_pending = true;
                    return;
                }
            }
        }
    }

    /// Give a new connection a slot (making room if needed) and serve what it already sent.
    fn admit(&mut self, stream: TcpStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let slot = match self.conns.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                // the oldest connection still reading its head gives way
                let oldest = self
                    .conns
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
                    .filter(|(_, c)| matches!(c.state, State::Reading(_)))
                    .min_by_key(|(_, c)| c.accepted)
                    .map(|(i, _)| i);
                match oldest {
                    Some(i) => {
                        self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                        self.close(i);
                        i
                    }
                    None => {
                        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                        let mut stream = stream;
                        // read what already came, so that the close is not a reset
                        let mut sink = [0u8; 1024];
                        for _ in 0..8 {
                            if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                                break;
                            }
                        }
                        let _ = stream.write(&response_bytes(&Response::text(
                            "503 Service Unavailable",
                            "busy\n",
                        )));
                        return;
                    }
                }
            }
        };
        if self
            .poll
            .registry()
            .register(
                &mut SourceFd(&stream.as_raw_fd()),
                Token(slot + 1),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return;
        }
        let now = Instant::now();
        self.conns[slot] = Some(Conn {
            stream,
            accepted: now,
            deadline: now + self.opts.head_timeout,
            state: State::Reading(Vec::new()),
        });
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        self.drive(slot);
    }

    /// Read what the socket has, answer once the head is complete, write what fits.
    fn drive(&mut self, i: usize) {
        let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let next = match &mut c.state {
            State::Reading(buf) => match read_head(&mut c.stream, buf, self.opts.max_head_bytes) {
                Head::Incomplete => Next::Wait,
                Head::Closed => Next::Close,
                Head::Complete => {
                    let resp = answer(buf, &mut self.handler);
                    c.state = State::Writing(response_bytes(&resp), 0);
                    c.deadline = Instant::now() + self.opts.write_timeout;
                    write_out(c, &self.stats)
                }
                Head::TooLarge => {
                    let resp = Response::text("431 Request Header Fields Too Large", "");
                    c.state = State::Writing(response_bytes(&resp), 0);
                    c.deadline = Instant::now() + self.opts.write_timeout;
                    write_out(c, &self.stats)
                }
            },
            State::Writing(..) => write_out(c, &self.stats),
        };
        if let Next::Close = next {
            self.close(i);
        }
    }

    /// Close every connection whose deadline passed.
    fn expire(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let Some(c) = &mut self.conns[i] else {
                continue;
            };
            if c.deadline > now {
                continue;
            }
            self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
            if let State::Reading(_) = c.state {
                let _ = c
                    .stream
                    .write(&response_bytes(&Response::text("408 Request Timeout", "")));
            }
            self.close(i);
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(c) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.stream.as_raw_fd()));
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

enum Head {
    Incomplete,
    Complete,
    TooLarge,
    /// The peer closed or reset before sending anything.
    Closed,
}

/// Read until the socket has nothing more, the head is complete (an empty line), or it is too
/// large. A peer that closes after part of a head is answered on what it sent.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>, max: usize) -> Head {
    let mut chunk = [0u8; 1024];
    loop {
        let want = chunk.len().min(max + 1 - buf.len().min(max));
        match s.read(&mut chunk[..want]) {
            Ok(0) if buf.is_empty() => return Head::Closed,
            Ok(0) => return Head::Complete,
            Ok(n) => {
                let from = buf.len().saturating_sub(3);
                buf.extend_from_slice(&chunk[..n]);
                if head_end(&buf[from..]) {
                    return Head::Complete;
                }
                if buf.len() > max {
                    return Head::TooLarge;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Head::Incomplete,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Head::Closed,
        }
    }
}

fn head_end(b: &[u8]) -> bool {
    b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n")
}

/// The response to a request head.
fn answer(head: &[u8], handler: &mut Handler) -> Response {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match method {
        "GET" => handler(path),
        _ => Response::text("405 Method Not Allowed", "GET only\n"),
    }
}

fn response_bytes(r: &Response) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    out.extend_from_slice(r.body.as_bytes());
    out
}

/// Write what the socket takes; `Close` once all is written (or on error).
fn write_out(c: &mut Conn, stats: &ServerStats) -> Next {
    let State::Writing(out, pos) = &mut c.state else {
        return Next::Wait;
    };
    while *pos < out.len() {
        match c.stream.write(&out[*pos..]) {
            Ok(0) => return Next::Close,
            Ok(n) => *pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Wait,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Next::Close,
        }
    }
    stats.served.fetch_add(1, Ordering::Relaxed);
    let _ = c.stream.shutdown(Shutdown::Write);
    Next::Close
}

#[cfg(test)]
mod tests;
