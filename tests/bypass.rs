//! Kernel-bypass inputs end to end, on a veth pair between two network namespaces this test
//! creates (198.18.0.1/30 sender side, 198.18.0.2/30 collector side, unique names per run,
//! removed by a Drop guard even on panic): the corpus captures' UDP payloads and generated
//! NetFlow v5, sent as raw Ethernet frames from the sender namespace, give the same documents
//! with `--input af_packet` and `--input af_xdp` (generic/SKB mode) as with the UDP sockets
//! over the same veth. While AF_XDP is attached, ARP and ICMP still reach the kernel, and a
//! second collector on the same interface is refused with a clear error.
//!
//! Skipped, saying why, where the machine forbids it (not root, no `ip`, no namespaces);
//! with FERROFLOW_REQUIRE_NETNS=1 (CI) a skip is a failure.
//!
//! `cargo test --release --test bypass -- --ignored --nocapture bench_inputs` runs the
//! benchmark of docs/bypass.md.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use ferroflow_io::afpacket::RawSender;
use ferroflow_io::frame::{build_udp_frame, internet_checksum};
use serde_json::Value;

const SENDER_IP: &str = "198.18.0.1";
const COLLECTOR_IP: &str = "198.18.0.2";
const PORT: u16 = 9995;
const METRICS: &str = "127.0.0.1:9108";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Skip (or, under FERROFLOW_REQUIRE_NETNS=1, fail) with a reason.
fn skip(reason: &str) {
    if std::env::var("FERROFLOW_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("FERROFLOW_REQUIRE_NETNS=1 but the test cannot run: {reason}");
    }
    println!("SKIPPED: {reason}");
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn mac_of(ns: &str, dev: &str) -> Result<[u8; 6], String> {
    let out = Command::new("ip")
        .args(["-n", ns, "-br", "link", "show", dev])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text
        .split_whitespace()
        .nth(2)
        .ok_or_else(|| format!("no MAC for {dev}: {text}"))?;
    let mut m = [0u8; 6];
    for (d, h) in m.iter_mut().zip(mac.split(':')) {
        *d = u8::from_str_radix(h, 16).map_err(|e| e.to_string())?;
    }
    Ok(m)
}

/// Two namespaces joined by a veth pair; removed on drop.
struct Veth {
    ns_a: String,
    ns_b: String,
    dev_a: String,
    dev_b: String,
    mac_a: [u8; 6],
    mac_b: [u8; 6],
}

impl Veth {
    /// Creates the pair, or says why it cannot (for [`skip`]).
    fn create() -> Result<Veth, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: network namespaces and AF_PACKET/AF_XDP need root".into());
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return Err("no `ip` command (iproute2)".into());
        }
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns_a = format!("ffbp-a-{tag}");
        let ns_b = format!("ffbp-b-{tag}");
        ip(&["netns", "add", &ns_a]).map_err(|e| format!("netns creation failed: {e}"))?;
        let mut v = Veth {
            ns_a: ns_a.clone(),
            ns_b: ns_b.clone(),
            dev_a: format!("ffa{tag}"),
            dev_b: format!("ffb{tag}"),
            mac_a: [0; 6],
            mac_b: [0; 6],
        };
        // from here on, Drop cleans up whatever was made
        ip(&["netns", "add", &ns_b]).map_err(|e| format!("netns creation failed: {e}"))?;
        let (a, b) = (v.dev_a.clone(), v.dev_b.clone());
        ip(&[
            "link", "add", &a, "netns", &ns_a, "type", "veth", "peer", "name", &b, "netns", &ns_b,
        ])?;
        for (ns, dev, addr) in [(&ns_a, &a, SENDER_IP), (&ns_b, &b, COLLECTOR_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            // a corpus datagram is 1770 bytes: no fragmentation on the veth
            ip(&["-n", ns, "link", "set", dev, "mtu", "9000", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        v.mac_a = mac_of(&ns_a, &a)?;
        v.mac_b = mac_of(&ns_b, &b)?;
        v.static_neighbours()?;
        Ok(v)
    }

    /// Static neighbour entries both ways, so no traffic depends on ARP.
    fn static_neighbours(&self) -> Result<(), String> {
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        ip(&[
            "-n",
            &self.ns_a,
            "neigh",
            "replace",
            COLLECTOR_IP,
            "lladdr",
            &mac(self.mac_b),
            "dev",
            &self.dev_a,
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            &self.ns_b,
            "neigh",
            "replace",
            SENDER_IP,
            "lladdr",
            &mac(self.mac_a),
            "dev",
            &self.dev_b,
            "nud",
            "permanent",
        ])
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // deleting a namespace deletes its end of the veth, and with it the pair
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }
}

/// Runs `f` on a thread that has entered network namespace `ns` (setns affects only the
/// calling thread).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a descriptor we hold open; it changes only this thread's network
        // namespace, which ends with the thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in namespace panicked")
}

/// `ferroflow collect` inside the collector namespace.
struct NsCollector {
    child: Child,
    ns: String,
}

impl NsCollector {
    /// Starts and waits for /readyz (at most 20 s); `Err(stderr)` if it exits first.
    fn start(v: &Veth, out: &Path, args: &[&str], wrapper: &[&str]) -> Result<NsCollector, String> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &v.ns_b])
            .args(wrapper)
            .arg(bin());
        cmd.args([
            "collect",
            "--listen",
            &format!("0.0.0.0:{PORT}"),
            "--metrics",
            METRICS,
            "--no-pin",
            "--output",
            &format!("file:{}", out.display()),
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        let mut c = NsCollector {
            child,
            ns: v.ns_b.clone(),
        };
        let t0 = Instant::now();
        loop {
            if c.child.try_wait().map_err(|e| e.to_string())?.is_some() {
                let mut err = String::new();
                let _ = c.child.stderr.take().unwrap().read_to_string(&mut err);
                return Err(err);
            }
            let ready = in_ns(&c.ns, || {
                http_get(METRICS.parse().unwrap(), "/readyz").is_some_and(|(code, _)| code == 200)
            });
            if ready {
                return Ok(c);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "collector not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metric(&self, name: &'static str) -> u64 {
        in_ns(&self.ns, move || scrape(METRICS.parse().unwrap(), name))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, wait (at most 60 s); exit status and stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child's pid (`ip netns exec` execs the collector).
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no exit 60 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        (status, err)
    }
}

impl Drop for NsCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// NetFlow v5 datagram of 30 records, sequence `seq`.
fn v5(seq: u32, records: usize) -> Vec<u8> {
    let mut b = vec![0u8; 24 + records * 48];
    b[1] = 5;
    b[3] = records as u8;
    b[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
    b[16..20].copy_from_slice(&seq.to_be_bytes());
    for i in 0..records {
        let r = &mut b[24 + i * 48..][..48];
        r[0..4].copy_from_slice(&seq.to_be_bytes());
        r[4..8].copy_from_slice(&[10, 0, 0, i as u8]);
        r[16..20].copy_from_slice(&1u32.to_be_bytes());
        r[38] = 17;
    }
    b
}

/// The test traffic as Ethernet frames from the sender to the collector: every corpus
/// datagram (each original exporter becomes a distinct source port of 198.18.0.1, in a fixed
/// order) and 300 generated NetFlow v5 datagrams.
fn traffic(v: &Veth) -> Vec<Vec<u8>> {
    let dst: SocketAddr = format!("{COLLECTOR_IP}:{PORT}").parse().unwrap();
    let mut ports: HashMap<(usize, SocketAddr), u16> = HashMap::new();
    let mut frames = Vec::new();
    for (i, cap) in captures().iter().enumerate() {
        for (orig, payload) in datagrams(cap) {
            let n = ports.len() as u16;
            let port = *ports.entry((i, orig)).or_insert(20_000 + n);
            let src: SocketAddr = format!("{SENDER_IP}:{port}").parse().unwrap();
            let mut f = Vec::new();
            build_udp_frame(&mut f, v.mac_a, v.mac_b, None, src, dst, &payload);
            frames.push(f);
        }
    }
    let src: SocketAddr = format!("{SENDER_IP}:19999").parse().unwrap();
    for seq in 0..300 {
        let mut f = Vec::new();
        build_udp_frame(&mut f, v.mac_a, v.mac_b, None, src, dst, &v5(seq * 30, 30));
        frames.push(f);
    }
    frames
}

/// Sends `frames` from the sender namespace, paced (this is about correctness), every frame
/// retried until the kernel takes it (bounded).
fn send(v: &Veth, frames: &[Vec<u8>]) {
    let (ns, dev) = (v.ns_a.clone(), v.dev_a.clone());
    let frames = frames.to_vec();
    in_ns(&ns, move || {
        let tx = RawSender::open(&dev, false).unwrap();
        for chunk in frames.chunks(32) {
            let mut refs: Vec<&[u8]> = chunk.iter().map(|f| f.as_slice()).collect();
            for _ in 0..10_000 {
                if refs.is_empty() {
                    break;
                }
                let n = tx.send(&refs).unwrap();
                refs.drain(..n);
                if !refs.is_empty() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            assert!(refs.is_empty(), "the sender's kernel never took the frames");
            // ~10k frames/s: a debug-build collector decodes slower than frames arrive, and
            // AF_XDP's buffer is its RX ring (a few thousand frames), not a 32 MiB socket
            std::thread::sleep(Duration::from_millis(3));
        }
    });
}

/// sFlow's export time is the receive time: take it (and a receive-time @timestamp) out;
/// a replayed capture's records older than the decoder's window have the receive time as
/// @timestamp: put their own time back.
fn normalise(mut d: Value) -> String {
    unclamp(&mut d);
    if d["flow"]["protocol"] == "sflow5" {
        d["flow"].as_object_mut().unwrap().remove("export_time");
        if d["event"].get("end").is_none() {
            d.as_object_mut().unwrap().remove("@timestamp");
        }
    }
    d.to_string()
}

/// Runs one collector over the veth with `args`, sends the traffic, returns its documents
/// (normalised) and stderr.
fn run_collector(v: &Veth, name: &str, frames: &[Vec<u8>], args: &[&str]) -> (Vec<String>, String) {
    let dir = temp_dir(&format!("bypass-{name}-{}", v.dev_b));
    let out = dir.join("out.jsonl");
    let c = NsCollector::start(v, &out, args, &[])
        .unwrap_or_else(|e| panic!("{name}: collector did not start: {e}"));
    send(v, frames);
    let t0 = Instant::now();
    while c.metric("ferroflow_packets_received_total") < frames.len() as u64 {
        if t0.elapsed() > Duration::from_secs(30) {
            break; // compared below, with the counts in the message
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, err) = c.stop();
    assert!(status.success(), "{name}: collector failed: {err}");
    let docs = read_jsonl(&out).into_iter().map(normalise).collect();
    let _ = std::fs::remove_dir_all(dir);
    (docs, err)
}

fn assert_same(reference: &[String], got: &[String], what: &str, log: &str) {
    let mut count: HashMap<&str, i64> = HashMap::new();
    for e in reference {
        *count.entry(e).or_default() += 1;
    }
    for g in got {
        *count.entry(g).or_default() -= 1;
    }
    let missing: Vec<_> = count.iter().filter(|(_, &n)| n > 0).take(3).collect();
    let extra: Vec<_> = count.iter().filter(|(_, &n)| n < 0).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} documents by UDP, {} by {what}\nmissing: {missing:?}\nextra: {extra:?}\nlog: {log}",
        reference.len(),
        got.len()
    );
}

/// One ICMP echo from the current thread's namespace; true if answered within 2 s.
fn ping(dst: [u8; 4], seq: u16) -> bool {
    // SAFETY: plain socket(2); a non-negative result is a descriptor we then own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return false;
    }
    // SAFETY: just created, owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a live timeval of the size passed.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let id = (std::process::id() as u16).wrapping_add(seq);
    let mut msg = [
        8u8, 0, 0, 0, 0, 0, 0, 0, b'f', b'e', b'r', b'r', b'o', b'f', b'l', b'o',
    ];
    msg[4..6].copy_from_slice(&id.to_be_bytes());
    msg[6..8].copy_from_slice(&seq.to_be_bytes());
    let sum = internet_checksum(&msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    // SAFETY: all-zero bytes are a valid sockaddr_in.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_addr.s_addr = u32::from_ne_bytes(dst);
    // SAFETY: `msg` and `sin` are alive for the call, lengths as passed.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return false;
    }
    let mut buf = [0u8; 1500];
    for _ in 0..8 {
        // SAFETY: `buf` is writable for its length during the call.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return false; // timeout
        }
        let ihl = usize::from(buf[0] & 0xf) * 4;
        let icmp = &buf[ihl..n as usize];
        if icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() {
            return true;
        }
    }
    false
}

fn docs_udp(v: &Veth, frames: &[Vec<u8>]) -> Vec<String> {
    let (docs, log) = run_collector(v, "udp", frames, &["--workers", "1"]);
    assert!(
        docs.len() > 4000,
        "UDP reference: only {} documents: {log}",
        docs.len()
    );
    docs
}

#[test]
fn af_packet_gives_what_udp_gives() {
    let v = match Veth::create() {
        Ok(v) => v,
        Err(e) => return skip(&e),
    };
    let frames = traffic(&v);
    let reference = docs_udp(&v, &frames);
    for workers in ["1", "2"] {
        let (docs, log) = run_collector(
            &v,
            "af_packet",
            &frames,
            &[
                "--input",
                "af_packet",
                "--interface",
                &v.dev_b,
                "--workers",
                workers,
            ],
        );
        assert_same(&reference, &docs, "af_packet", &log);
        assert!(log.contains("bad_checksum=0"), "{log}");
        println!(
            "af_packet ({workers} workers): {} frames, {} documents, identical to the UDP path",
            frames.len(),
            docs.len()
        );
    }
}

#[test]
fn af_xdp_gives_what_udp_gives_and_arp_icmp_still_pass() {
    let v = match Veth::create() {
        Ok(v) => v,
        Err(e) => return skip(&e),
    };
    let frames = traffic(&v);
    let reference = docs_udp(&v, &frames);

    let dir = temp_dir(&format!("bypass-xdp-{}", v.dev_b));
    let out = dir.join("out.jsonl");
    let args = [
        "--input",
        "af_xdp",
        "--interface",
        &v.dev_b,
        "--xdp-mode",
        "skb",
        "--workers",
        "1",
    ];
    let c = match NsCollector::start(&v, &out, &args, &[]) {
        Ok(c) => c,
        Err(e) if e.contains("CONFIG_XDP_SOCKETS") => return skip(&e),
        Err(e) => panic!("af_xdp collector did not start: {e}"),
    };
    send(&v, &frames);
    let t0 = Instant::now();
    while c.metric("ferroflow_packets_received_total") < frames.len() as u64
        && t0.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(50));
    }

    // ARP and ICMP still reach the kernel: forget the static entry so the sender must ARP
    ip(&["-n", &v.ns_a, "neigh", "del", COLLECTOR_IP, "dev", &v.dev_a]).unwrap();
    let answered = in_ns(&v.ns_a, || {
        (1..=3).filter(|&s| ping([198, 18, 0, 2], s)).count()
    });
    assert!(
        answered >= 2,
        "ping across the veth: {answered}/3 answered while AF_XDP is attached"
    );
    let neigh = Command::new("ip")
        .args([
            "-n",
            &v.ns_a,
            "neigh",
            "show",
            COLLECTOR_IP,
            "dev",
            &v.dev_a,
        ])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    assert!(neigh.contains("lladdr"), "ARP did not resolve: {neigh:?}");
    println!(
        "ping: {answered}/3 answered, ARP resolved ({}) with AF_XDP attached",
        neigh.trim()
    );

    // a second collector on the same interface is refused clearly (and exits by itself)
    let out2 = dir.join("out2.jsonl");
    let mut second = Command::new("ip")
        .args([
            "netns",
            "exec",
            &v.ns_b,
            bin(),
            "collect",
            "--metrics",
            "off",
            "--no-pin",
        ])
        .args(["--listen", &format!("0.0.0.0:{PORT}")])
        .args(["--output", &format!("file:{}", out2.display())])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t1 = Instant::now();
    let st = loop {
        if let Some(st) = second.try_wait().unwrap() {
            break st;
        }
        if t1.elapsed() > Duration::from_secs(20) {
            let _ = second.kill();
            panic!("a second AF_XDP collector on the same interface kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut e = String::new();
    let _ = second.stderr.take().unwrap().read_to_string(&mut e);
    assert!(
        !st.success() && e.contains("already attached"),
        "unclear error: {st} {e}"
    );
    println!("second collector refused: {}", e.trim());

    let (status, log) = c.stop();
    assert!(status.success(), "af_xdp collector failed: {log}");
    assert!(log.contains("skb mode"), "{log}");
    let docs: Vec<String> = read_jsonl(&out).into_iter().map(normalise).collect();
    assert_same(&reference, &docs, "af_xdp", &log);
    assert!(log.contains("bad_checksum=0"), "{log}");
    println!(
        "af_xdp (skb, copy): {} frames, {} documents, identical to the UDP path",
        frames.len(),
        docs.len()
    );
    // the program went away with the collector
    let link = Command::new("ip")
        .args(["-n", &v.ns_b, "link", "show", &v.dev_b])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout).to_string();
    assert!(
        !link.contains("prog/xdp"),
        "XDP program left attached: {link}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Busy jiffies (all but idle and iowait) of CPU `cpu` from /proc/stat.
fn cpu_busy_jiffies(cpu: usize) -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("cpu{cpu} ")))
        .unwrap_or_else(|| panic!("no cpu{cpu} in /proc/stat"));
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    v.iter().sum::<u64>() - v[3] - v.get(4).copied().unwrap_or(0)
}

/// utime + stime of a process, in jiffies.
fn process_jiffies(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields 14 and 15 of stat; `after` starts at field 3
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

fn pin_current_thread(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it; the call reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The three inputs on the veth: a raw sender pinned to CPU 0 blasts 1400-byte IP packets
/// (NetFlow v5, 28 records) for FERROFLOW_BENCH_SECS (default 5) seconds; RPS steers the
/// collector side's receive processing to CPU 1, where the collector runs (taskset). The
/// collector's allow-list excludes the sender, so each datagram is received and counted but
/// not decoded: the figures are the receive path's. Prints packets/s received and CPU 1's busy
/// time per received packet (softirq + collector), and the collector's own CPU per packet.
#[test]
#[ignore]
fn bench_inputs() {
    let v = match Veth::create() {
        Ok(v) => v,
        Err(e) => return skip(&e),
    };
    let secs: u64 = std::env::var("FERROFLOW_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // MTU 1500: native XDP on a veth refuses jumbo MTUs (ERANGE)
    for (ns, dev) in [(&v.ns_a, &v.dev_a), (&v.ns_b, &v.dev_b)] {
        ip(&["-n", ns, "link", "set", dev, "mtu", "1500"]).unwrap();
    }
    let rps = format!("echo 2 > /sys/class/net/{}/queues/rx-0/rps_cpus", v.dev_b);
    let st = Command::new("ip")
        .args(["netns", "exec", &v.ns_b, "sh", "-c", &rps])
        .status()
        .unwrap();
    assert!(st.success(), "setting RPS");
    let src: SocketAddr = format!("{SENDER_IP}:40000").parse().unwrap();
    let dst: SocketAddr = format!("{COLLECTOR_IP}:{PORT}").parse().unwrap();
    let mut frame = Vec::new();
    build_udp_frame(&mut frame, v.mac_a, v.mac_b, None, src, dst, &v5(1, 28));
    let ip_len = frame.len() - 14;
    let dev = v.dev_b.clone();
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("udp (recvmmsg)", vec![]),
        (
            "af_packet",
            vec!["--input", "af_packet", "--interface", &dev],
        ),
        (
            "af_xdp skb/copy",
            vec![
                "--input",
                "af_xdp",
                "--interface",
                &dev,
                "--xdp-mode",
                "skb",
            ],
        ),
        (
            "af_xdp native/copy",
            vec![
                "--input",
                "af_xdp",
                "--interface",
                &dev,
                "--xdp-mode",
                "native",
            ],
        ),
    ];
    let hz = 100.0; // USER_HZ
    println!(
        "{ip_len}-byte IP packets, {secs} s per input, sender CPU 0, receive (RPS + collector) CPU 1"
    );
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", l.trim());
    }
    println!(
        "{:<20} {:>12} {:>12} {:>8} {:>14} {:>16}",
        "input", "sent pps", "recv pps", "loss", "CPU1 ns/pkt", "collector ns/pkt"
    );
    for (name, extra) in runs {
        let dir = temp_dir(&format!("bench-{}", v.dev_b));
        let mut args = extra.clone();
        args.extend(["--workers", "1", "--log-level", "warn"]);
        let wrapper = [
            "env",
            "FERROFLOW_DECODER_ALLOW_EXPORTERS=192.0.2.1",
            "taskset",
            "-c",
            "1",
        ];
        let c = match NsCollector::start(&v, &dir.join("out.jsonl"), &args, &wrapper) {
            Ok(c) => c,
            Err(e) => {
                println!(
                    "{name:<20} could not start: {}",
                    e.lines().last().unwrap_or("")
                );
                continue;
            }
        };
        let (ns, dev_a, f) = (v.ns_a.clone(), v.dev_a.clone(), frame.clone());
        let sender = std::thread::spawn(move || {
            in_ns(&ns, move || {
                pin_current_thread(0);
                let tx = RawSender::open(&dev_a, true).unwrap();
                let refs: Vec<&[u8]> = (0..RawSender::BATCH).map(|_| f.as_slice()).collect();
                let mut sent = 0u64;
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(secs) {
                    sent += tx.send(&refs).unwrap_or(0) as u64;
                }
                (sent, t0.elapsed())
            })
        });
        std::thread::sleep(Duration::from_millis(500)); // warm-up
        let (p0, c0, j0, t0) = (
            c.metric("ferroflow_packets_received_total"),
            cpu_busy_jiffies(1),
            process_jiffies(c.pid()),
            Instant::now(),
        );
        std::thread::sleep(Duration::from_secs(secs.saturating_sub(1).max(1)));
        let (p1, c1, j1, dt) = (
            c.metric("ferroflow_packets_received_total"),
            cpu_busy_jiffies(1),
            process_jiffies(c.pid()),
            t0.elapsed(),
        );
        let (sent, send_time) = sender.join().unwrap();
        let (status, err) = c.stop();
        assert!(status.success(), "{name}: {err}");
        let got = (p1 - p0).max(1) as f64;
        let recv_pps = got / dt.as_secs_f64();
        let sent_pps = sent as f64 / send_time.as_secs_f64();
        println!(
            "{name:<20} {:>12.0} {:>12.0} {:>7.1}% {:>14.0} {:>16.0}",
            sent_pps,
            recv_pps,
            100.0 * (1.0 - recv_pps / sent_pps).max(0.0),
            (c1 - c0) as f64 / hz * 1e9 / got,
            (j1 - j0) as f64 / hz * 1e9 / got,
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
