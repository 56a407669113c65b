//! Peer collectors run side by side with ferroflow on the same traffic: goflow2 (JSON lines to
//! a file), pmacct's nfacctd / sfacctd (print plugin, JSON lines to a file) and nfdump's nfcapd /
//! sfcapd (binary nfcapd files). `perf/peers/install.sh` installs them.
//!
//! What a peer "indexed" is counted from what it wrote, after it has been stopped (so every
//! buffer is flushed; pmacct, which strands its last partial buffer, gets a flush from an
//! exporter of its own first, see [`FLUSH_EXPORTER`]): goflow2's lines; the sum of the `flows` counters of pmacct's JSON
//! lines (one line per flow with the key set used here and distinct generated flows; a line
//! that merged several flows counts them all, and the merge is reported); nfdump's flow
//! count of the files nfcapd wrote.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::generate::Protocol;

/// The generator's exporter index of the flush exporter: after a trial, a peer that
/// [strands its tail](PeerKind::strands_tail) gets [`FLUSH_RECORDS`] more flows from this
/// exporter (127.0.0.201 with distinct source addresses), enough to fill its last partial
/// buffers, so that every measured flow reaches its output. The flush exporter's flows are
/// not counted: pmacct's lines carry the exporter (`peer_ip_src`), and those of the flush
/// exporter are left out.
pub const FLUSH_EXPORTER: usize = 200;

/// Flows the flush exporter sends: five of pmacct's 100 KB core-to-plugin buffers (about
/// 190 records each).
pub const FLUSH_RECORDS: u64 = 1000;

/// A peer collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    Goflow2,
    Nfacctd,
    Sfacctd,
    Nfcapd,
}

impl std::str::FromStr for PeerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "goflow2" => Ok(PeerKind::Goflow2),
            "nfacctd" => Ok(PeerKind::Nfacctd),
            "sfacctd" => Ok(PeerKind::Sfacctd),
            "nfcapd" | "sfcapd" => Ok(PeerKind::Nfcapd),
            _ => Err(format!(
                "unknown peer {s:?} (goflow2, nfacctd, sfacctd, nfcapd)"
            )),
        }
    }
}

impl PeerKind {
    pub const ALL: [PeerKind; 4] = [
        PeerKind::Goflow2,
        PeerKind::Nfacctd,
        PeerKind::Sfacctd,
        PeerKind::Nfcapd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Goflow2 => "goflow2",
            PeerKind::Nfacctd => "nfacctd",
            PeerKind::Sfacctd => "sfacctd",
            PeerKind::Nfcapd => "nfcapd",
        }
    }

    /// Whether the peer collects `p`. nfdump's sFlow collector, sfcapd, stands in for nfcapd
    /// where it is installed; Debian's nfdump 1.7.1 is built without it.
    pub fn supports(self, p: Protocol) -> bool {
        match self {
            PeerKind::Goflow2 => true,
            PeerKind::Nfcapd => p != Protocol::Sflow || Self::binary_on_path("sfcapd"),
            PeerKind::Nfacctd => p != Protocol::Sflow,
            PeerKind::Sfacctd => p == Protocol::Sflow,
        }
    }

    /// Whether the peer keeps the tail of what it received in a buffer that only more traffic
    /// pushes out: pmacct's core process hands records to its plugin in `plugin_buffer_size`
    /// chunks, and a partly filled chunk is lost when the daemon stops. The bench sends a
    /// flush (see [`FLUSH_EXPORTER`]) to such a peer before stopping it.
    pub fn strands_tail(self) -> bool {
        matches!(self, PeerKind::Nfacctd | PeerKind::Sfacctd)
    }

    /// The peer that collects `p` in pmacct's family (nfacctd or sfacctd).
    pub fn pmacct_for(p: Protocol) -> PeerKind {
        if p == Protocol::Sflow {
            PeerKind::Sfacctd
        } else {
            PeerKind::Nfacctd
        }
    }

    fn binary_on_path(name: &str) -> bool {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    }

    fn binary_name(self, p: Protocol) -> &'static str {
        match (self, p) {
            (PeerKind::Nfcapd, Protocol::Sflow) => "sfcapd",
            _ => self.name(),
        }
    }

    /// The binary, from PATH or (goflow2) Go's bin directory.
    pub fn binary(self, p: Protocol) -> anyhow::Result<PathBuf> {
        let name = self.binary_name(p);
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        if let Some(g) = std::env::var_os("GOBIN") {
            dirs.push(PathBuf::from(g));
        }
        if let Some(g) = std::env::var_os("GOPATH") {
            dirs.push(PathBuf::from(g).join("bin"));
        }
        if let Some(h) = std::env::var_os("HOME") {
            dirs.push(PathBuf::from(h).join("go/bin"));
        }
        dirs.extend(["/usr/sbin", "/usr/bin", "/root/go/bin"].map(PathBuf::from));
        dirs.into_iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .with_context(|| format!("{name} not found: run perf/peers/install.sh"))
    }

    /// The peer's version, as its own binary (or its package) says.
    pub fn version(self) -> anyhow::Result<String> {
        let p = match self {
            PeerKind::Sfacctd => Protocol::Sflow,
            _ => Protocol::Netflow9,
        };
        let bin = self.binary(p)?;
        let out = |cmd: &mut Command| -> String {
            cmd.output()
                .map(|o| {
                    let mut s = String::from_utf8_lossy(&o.stdout).to_string();
                    s.push_str(&String::from_utf8_lossy(&o.stderr));
                    s
                })
                .unwrap_or_default()
        };
        let v = match self {
            PeerKind::Goflow2 => {
                // `go install` builds leave the version string empty: ask the module info
                let mods = out(Command::new("go").arg("version").arg("-m").arg(&bin));
                let m = mods
                    .lines()
                    .find(|l| l.trim_start().starts_with("mod\t") || l.contains("\tmod\t"))
                    .map(|l| {
                        l.split_whitespace()
                            .skip(1)
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" ")
                    });
                m.unwrap_or_else(|| out(Command::new(&bin).arg("-v")).trim().to_string())
            }
            PeerKind::Nfacctd | PeerKind::Sfacctd => out(Command::new(&bin).arg("-V"))
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string(),
            PeerKind::Nfcapd => out(Command::new(&bin).arg("-V"))
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string(),
        };
        Ok(v)
    }
}

/// A running peer.
pub struct Peer {
    kind: PeerKind,
    protocol: Protocol,
    child: Child,
    dir: PathBuf,
}

impl Peer {
    /// Starts the peer listening on `listen`, writing into `dir`, and waits (bounded) until
    /// its UDP socket is bound.
    pub fn start(
        kind: PeerKind,
        protocol: Protocol,
        listen: SocketAddr,
        dir: &Path,
        workers: usize,
        cores: Option<&str>,
    ) -> anyhow::Result<Peer> {
        if !kind.supports(protocol) {
            bail!("{} does not collect {protocol}", kind.name());
        }
        let bin = kind.binary(protocol)?;
        let out_dir = dir.join("out");
        std::fs::create_dir_all(&out_dir)?;
        // taskset execs the peer: the child's pid is the peer's
        let mut cmd = match cores {
            Some(c) => {
                let mut t = Command::new("taskset");
                t.arg("-c").arg(c).arg(&bin);
                t
            }
            None => Command::new(&bin),
        };
        match kind {
            PeerKind::Goflow2 => {
                let scheme = if protocol == Protocol::Sflow {
                    "sflow"
                } else {
                    "netflow"
                };
                let http = crate::bench::free_tcp_port()?;
                cmd.arg("-listen")
                    .arg(format!(
                        "{scheme}://{}:{}?count={}",
                        listen.ip(),
                        listen.port(),
                        workers.max(1)
                    ))
                    .arg("-transport")
                    .arg("file")
                    .arg("-transport.file")
                    .arg(out_dir.join("flows.json"))
                    .arg("-format")
                    .arg("json")
                    .arg("-loglevel")
                    .arg("error")
                    .arg("-addr")
                    .arg(format!("127.0.0.1:{http}"));
            }
            PeerKind::Nfacctd | PeerKind::Sfacctd => {
                let d = if kind == PeerKind::Nfacctd {
                    "nfacctd"
                } else {
                    "sfacctd"
                };
                let conf = dir.join(format!("{d}.conf"));
                std::fs::write(&conf, pmacct_config(d, listen, &out_dir))?;
                cmd.arg("-f").arg(&conf);
            }
            PeerKind::Nfcapd => {
                cmd.arg("-w")
                    .arg(&out_dir)
                    .arg("-b")
                    .arg(listen.ip().to_string())
                    .arg("-p")
                    .arg(listen.port().to_string())
                    .arg("-t")
                    .arg("3600");
            }
        }
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("peer.stdout"))?)
            .stderr(std::fs::File::create(dir.join("peer.stderr"))?);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                let err = std::fs::read_to_string(dir.join("peer.stderr")).unwrap_or_default();
                let out = std::fs::read_to_string(dir.join("peer.stdout")).unwrap_or_default();
                bail!("{} exited at start ({st}): {err}{out}", kind.name());
            }
            if udp_port_bound(listen.port()) {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not bind {listen} within 20 s", kind.name());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // pmacct binds before its plugins are up
        std::thread::sleep(Duration::from_millis(500));
        Ok(Peer {
            kind,
            protocol,
            child,
            dir: dir.to_path_buf(),
        })
    }

    pub fn kind(&self) -> PeerKind {
        self.kind
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, wait for the exit (bounded), return the CPU seconds it used in all.
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<f64> {
        crate::bench::stop_child(&mut self.child, timeout)
    }

    /// Flows in what the peer wrote (call after [`Peer::stop`]), leaving out what came from
    /// `flush_from`, the flush exporter's address, where the bench sent a flush.
    pub fn count_output(&self, flush_from: Option<std::net::IpAddr>) -> anyhow::Result<u64> {
        let flush_from = flush_from.map(|a| a.to_string());
        let out = self.dir.join("out");
        match self.kind {
            PeerKind::Goflow2 => count_lines(&out.join("flows.json")),
            PeerKind::Nfacctd | PeerKind::Sfacctd => {
                let mut total = PmacctCount::default();
                for e in std::fs::read_dir(&out)? {
                    let p = e?.path();
                    if p.is_file() {
                        let c =
                            pmacct_json_flows(&std::fs::read_to_string(&p)?, flush_from.as_deref());
                        total.lines += c.lines;
                        total.flows += c.flows;
                        total.flush_lines += c.flush_lines;
                    }
                }
                if flush_from.is_some() && total.flush_lines == 0 {
                    // the flush reached no output: the stranded tail may not have either
                    eprintln!(
                        "  {}: none of the flush exporter's flows was written",
                        self.kind.name()
                    );
                }
                if total.lines != total.flows {
                    // a repeated key: pmacct merged flows into one line; they are counted
                    // (the flows counter), but the comparison is no longer per flow
                    eprintln!(
                        "  {}: {} flows in {} lines: some flows were aggregated",
                        self.kind.name(),
                        total.flows,
                        total.lines
                    );
                }
                Ok(total.flows)
            }
            PeerKind::Nfcapd => nfdump_flows(&out, self.protocol),
        }
    }
}

/// A pmacct daemon with one print plugin writing JSON lines, appending every second, with
/// an aggregation key that makes every generated flow its own line (pmacct used as a flow
/// logger, the job ferroflow and goflow2 do): the exporter, the 5-tuple, interfaces, ToS,
/// TCP flags, ASNs, masks and the flow's start and end times, plus `flows`, the count of
/// flows merged into a line (1 when nothing was merged). The generator's distinct flows
/// differ in their source address, so no two of them share a key. The cache has 32 771
/// buckets, about 330 k entries per purge by pmacct's sizing rule (its default, 16 411, is
/// sized for 150 k). The core-to-plugin queue is 100 MB in 100 KB buffers, as pmacct's docs
/// advise for heavy loads (its defaults lost data: "Missing data detected" at 60 k flows/s);
/// the socket buffer is the kernel default, as for the other peers.
fn pmacct_config(daemon: &str, listen: SocketAddr, out: &Path) -> String {
    let keys = if daemon == "sfacctd" {
        // sFlow samples have no flow start / end: the arrival time stands in
        "peer_src_ip, in_iface, out_iface, src_host, dst_host, src_port, dst_port, proto, \
         tos, tcpflags, src_as, dst_as, src_mask, dst_mask, timestamp_arrival, flows"
    } else {
        "peer_src_ip, in_iface, out_iface, src_host, dst_host, src_port, dst_port, proto, \
         tos, tcpflags, src_as, dst_as, src_mask, dst_mask, timestamp_start, timestamp_end, \
         flows"
    };
    format!(
        "daemonize: false\n\
         {daemon}_ip: {ip}\n\
         {daemon}_port: {port}\n\
         {daemon}_time_new: true\n\
         plugins: print[out]\n\
         aggregate[out]: {keys}\n\
         print_output[out]: json\n\
         print_output_file[out]: {file}\n\
         print_output_file_append[out]: true\n\
         print_refresh_time[out]: 1\n\
         print_cache_entries[out]: 32771\n\
         plugin_pipe_size[out]: 102400000\n\
         plugin_buffer_size[out]: 102400\n",
        ip = listen.ip(),
        port = listen.port(),
        file = out.join("flows.json").display()
    )
}

/// What a pmacct output file holds: JSON lines written (aggregates) and the flows they
/// carry (the sum of their `flows` counters; a line without one counts as one flow), and
/// the lines of the flush exporter, which are in neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PmacctCount {
    pub lines: u64,
    pub flows: u64,
    pub flush_lines: u64,
}

/// Counts pmacct's JSON lines output; lines whose `peer_ip_src` is `flush_from` are counted
/// apart.
pub fn pmacct_json_flows(text: &str, flush_from: Option<&str>) -> PmacctCount {
    let mut c = PmacctCount::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if v.get("event_type").and_then(|e| e.as_str()) != Some("purge") {
            continue;
        }
        if flush_from.is_some() && v.get("peer_ip_src").and_then(|e| e.as_str()) == flush_from {
            c.flush_lines += 1;
            continue;
        }
        c.lines += 1;
        // sfacctd leaves the counter at 0 where it does not apply: a line is a sample there
        c.flows += v.get("flows").and_then(|f| f.as_u64()).unwrap_or(1).max(1);
    }
    c
}

/// Newlines in a file, read in blocks.
pub fn count_lines(path: &Path) -> anyhow::Result<u64> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok(n)
}

/// Flows in the nfcapd files of `dir`, as nfdump's statistics (`-I`) count them.
fn nfdump_flows(dir: &Path, _p: Protocol) -> anyhow::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("nfcapd.") && !name.starts_with("sfcapd.") {
            continue;
        }
        let o = Command::new("nfdump")
            .arg("-r")
            .arg(&p)
            .arg("-I")
            .output()
            .context("running nfdump -I")?;
        let text = String::from_utf8_lossy(&o.stdout);
        total += text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "Flows").then(|| v.trim().parse::<u64>().ok())?
            })
            .unwrap_or(0);
    }
    Ok(total)
}

/// Whether something listens on UDP `port` (IPv4 or IPv6), from /proc/net/udp{,6}.
pub fn udp_port_bound(port: u16) -> bool {
    let hex = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|s| {
            s.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&hex))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmacct_json_lines_and_flows_are_counted() {
        let j = r#"{"event_type": "purge", "src_ip": "10.0.0.1", "packets": 10, "flows": 3, "bytes": 1500}
{"event_type": "purge", "src_ip": "10.0.0.2", "packets": 1, "flows": 1, "bytes": 60}

{"event_type": "purge_init", "writer_pid": 12}
{"event_type": "purge", "src_ip": "10.0.0.3", "packets": 1, "bytes": 60}
{"event_type": "purge", "peer_ip_src": "127.0.0.201", "src_ip": "10.0.0.5", "flows": 1}
{"event_type": "purge", "src_ip": "10.0.0.4", "pack"#;
        assert_eq!(
            pmacct_json_flows(j, Some("127.0.0.201")),
            PmacctCount {
                lines: 3,
                flows: 5,
                flush_lines: 1
            }
        );
        assert_eq!(
            pmacct_json_flows(j, None),
            PmacctCount {
                lines: 4,
                flows: 6,
                flush_lines: 0
            }
        );
    }

    #[test]
    fn pmacct_config_logs_per_flow() {
        let c = pmacct_config(
            "nfacctd",
            "127.0.0.1:2055".parse().unwrap(),
            Path::new("/tmp/x"),
        );
        assert!(c.contains("print_output[out]: json"));
        assert!(c.contains("timestamp_start, timestamp_end"));
        assert!(c.contains("peer_src_ip"));
    }

    #[test]
    fn names_and_support() {
        for k in PeerKind::ALL {
            assert_eq!(k.name().parse::<PeerKind>(), Ok(k));
        }
        assert!(!PeerKind::Nfacctd.supports(Protocol::Sflow));
        assert!(PeerKind::Sfacctd.supports(Protocol::Sflow));
        assert_eq!(PeerKind::pmacct_for(Protocol::Ipfix), PeerKind::Nfacctd);
    }

    #[test]
    fn a_bound_port_is_seen() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(udp_port_bound(s.local_addr().unwrap().port()));
    }

    #[test]
    fn lines_are_counted() {
        let d = std::env::temp_dir().join(format!("ff-peers-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("x.json");
        std::fs::write(&f, "{}\n{}\n{}\n").unwrap();
        assert_eq!(count_lines(&f).unwrap(), 3);
        assert_eq!(count_lines(&d.join("missing")).unwrap(), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
