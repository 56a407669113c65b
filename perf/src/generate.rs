//! Synthetic export traffic at a target rate: NetFlow v5, NetFlow v9, IPFIX or sFlow v5 from
//! many exporters, sent with `sendmmsg` from pinned threads.
//!
//! Every exporter has its own UDP socket (its own source address `127.0.0.x` or source port)
//! and a pool of data packets encoded once at start with the codecs' encoders. A send only
//! patches the header of a pooled packet (sequence number, uptime, export time; for sFlow the
//! flow samples' sequence numbers and sample pools too), so the generator costs little more
//! than the `sendmmsg` itself. Sequence numbers follow each protocol's rule per exporter:
//! v5 counts flows, v9 counts packets, IPFIX counts data records (options records included),
//! sFlow counts datagrams. Templates (v9, IPFIX) go first and again every template interval;
//! with sampling, an options template and its data record go with them.
//!
//! The rate is kept by a token bucket per thread, checked once per batch. The run ends after
//! `count` data packets or `duration`, whichever comes first, or when `stop` is set.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferroflow_codecs::encode::{
    ipfix, netflow5, netflow9, sflow, EncodeError, FieldSpecRepr, FlowRepr, TemplateRepr,
};
use ferroflow_io::udp::{bind_udp, SendBatch, SocketOptions, Transmit};
use serde::Serialize;

use crate::bucket::TokenBucket;
use crate::flows::{self, Rng};

/// The export protocol to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Netflow5,
    Netflow9,
    Ipfix,
    Sflow,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::Netflow5,
        Protocol::Netflow9,
        Protocol::Ipfix,
        Protocol::Sflow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Netflow5 => "netflow5",
            Protocol::Netflow9 => "netflow9",
            Protocol::Ipfix => "ipfix",
            Protocol::Sflow => "sflow",
        }
    }

    /// Records per packet by default: full packets of about 1.3 KB, as busy exporters send.
    pub fn default_flows_per_packet(self) -> usize {
        match self {
            Protocol::Netflow5 => netflow5::MAX_RECORDS,
            Protocol::Netflow9 => 24,
            Protocol::Ipfix => 18,
            Protocol::Sflow => 5,
        }
    }

    /// The decoder's protocol (its name labels `ferroflow_records_total{protocol=...}`).
    pub fn flow_protocol(self) -> ferroflow_codecs::FlowProtocol {
        use ferroflow_codecs::FlowProtocol as F;
        match self {
            Protocol::Netflow5 => F::NetflowV5,
            Protocol::Netflow9 => F::NetflowV9,
            Protocol::Ipfix => F::Ipfix,
            Protocol::Sflow => F::Sflow5,
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "netflow5" | "v5" | "nf5" => Ok(Protocol::Netflow5),
            "netflow9" | "v9" | "nf9" => Ok(Protocol::Netflow9),
            "ipfix" | "v10" => Ok(Protocol::Ipfix),
            "sflow" | "sflow5" => Ok(Protocol::Sflow),
            _ => Err(format!(
                "unknown protocol {s:?} (netflow5, netflow9, ipfix, sflow)"
            )),
        }
    }
}

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the threads can.
    Unlimited,
    /// Packets per second (templates included), across all threads.
    Packets(f64),
    /// Flow records per second, converted to packets with the flows per packet.
    Flows(f64),
}

/// Where the exporters' packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceAddrs {
    /// Exporter `i` sends from 127.0.0.(1 + i mod 254) (IPv4 targets), own port each.
    Distinct,
    /// Every exporter sends from the loopback address of the target's family, own port each.
    Ports,
}

/// A generator run.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub protocol: Protocol,
    pub target: SocketAddr,
    pub rate: Rate,
    /// Stop after this long (always bounded: [`GenConfig::MAX_DURATION`] at most).
    pub duration: Option<Duration>,
    /// Stop after this many data packets (templates not counted).
    pub count: Option<u64>,
    pub flows_per_packet: usize,
    pub exporters: usize,
    /// Index of the first exporter: exporter `i` of this run is exporter `first_exporter + i`
    /// (its address and flows). The bench's flush exporter uses it to send from an address
    /// the measured exporters do not have.
    pub first_exporter: usize,
    pub source_addrs: SourceAddrs,
    /// Fraction of IPv6 flows (0..=1; not for NetFlow v5).
    pub ipv6_fraction: f64,
    /// Templates are sent first and again this often (v9, IPFIX). `None`: only first.
    pub template_interval: Option<Duration>,
    /// 1-in-N sampling: v5 header, v9/IPFIX options data, sFlow sampling rate.
    pub sampling: Option<u32>,
    pub threads: usize,
    /// Pin thread `t` to `pin[t % pin.len()]`.
    pub pin: Vec<usize>,
    /// Packets per `sendmmsg`.
    pub batch: usize,
    pub seed: u64,
    /// Make every flow record distinct: each send rewrites the source address of every
    /// record of a pooled packet from a per-exporter counter (see
    /// [`ExporterPackets::stamp_next`]), so the pool's flows never repeat. Off: the pool's
    /// flows are sent over and over (a few thousand distinct flows per run).
    pub distinct_flows: bool,
    /// Set from outside to end the run early.
    pub stop: Option<Arc<AtomicBool>>,
    /// Live counters for a progress display.
    pub progress: Option<Arc<Progress>>,
}

impl GenConfig {
    /// The longest run, whatever the options.
    pub const MAX_DURATION: Duration = Duration::from_secs(3600);
    /// Most packets per `sendmmsg`.
    pub const MAX_BATCH: usize = 64;

    /// Defaults: unlimited rate for 10 s, the protocol's default flows per packet, one
    /// exporter, one thread, templates every 10 s.
    pub fn new(protocol: Protocol, target: SocketAddr) -> Self {
        GenConfig {
            protocol,
            target,
            rate: Rate::Unlimited,
            duration: None,
            count: None,
            flows_per_packet: protocol.default_flows_per_packet(),
            exporters: 1,
            first_exporter: 0,
            source_addrs: SourceAddrs::Distinct,
            ipv6_fraction: 0.0,
            template_interval: Some(Duration::from_secs(10)),
            sampling: None,
            threads: 1,
            pin: Vec::new(),
            batch: 32,
            seed: 1,
            distinct_flows: false,
            stop: None,
            progress: None,
        }
    }

    /// The run's time bound: `duration`, else 10 s without a count, else the maximum.
    pub fn time_bound(&self) -> Duration {
        match (self.duration, self.count) {
            (Some(d), _) => d.min(Self::MAX_DURATION),
            (None, None) => Duration::from_secs(10),
            (None, Some(_)) => Self::MAX_DURATION,
        }
    }

    /// The packet rate the rate option comes to, if limited.
    pub fn packets_per_s(&self) -> Option<f64> {
        match self.rate {
            Rate::Unlimited => None,
            Rate::Packets(p) => Some(p),
            Rate::Flows(f) => Some(f / self.flows_per_packet.max(1) as f64),
        }
    }

    fn validate(&self) -> Result<(), GenError> {
        let bad = |m: String| Err(GenError::Config(m));
        if self.exporters == 0 || self.threads == 0 {
            return bad("--exporters and --threads must be at least 1".into());
        }
        if self.flows_per_packet == 0 {
            return bad("--flows-per-packet must be at least 1".into());
        }
        if self.protocol == Protocol::Netflow5 && self.flows_per_packet > netflow5::MAX_RECORDS {
            return bad(format!(
                "NetFlow v5 carries at most {} records a packet",
                netflow5::MAX_RECORDS
            ));
        }
        if !(0.0..=1.0).contains(&self.ipv6_fraction) {
            return bad("--ipv6 is a fraction between 0 and 1".into());
        }
        if self.protocol == Protocol::Netflow5 && self.ipv6_fraction > 0.0 {
            return bad("NetFlow v5 has no IPv6 records".into());
        }
        if let Some(p) = self.packets_per_s() {
            if !(p.is_finite() && p > 0.0) {
                return bad("the rate must be positive".into());
            }
        }
        if self.sampling == Some(0) {
            return bad("--sampling must be at least 1".into());
        }
        if self.batch == 0 || self.batch > Self::MAX_BATCH {
            return bad(format!("batch must be 1..={}", Self::MAX_BATCH));
        }
        Ok(())
    }
}

/// Counters updated once per batch while a run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    pub packets: AtomicU64,
    pub flows: AtomicU64,
}

/// Why a run could not start or went wrong.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{0}")]
    Config(String),
    #[error("encoding the packet pool: {0}")]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Socket(#[from] ferroflow_io::udp::IoError),
    #[error("sending to {target}: {source}")]
    Send {
        target: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("spawning a sender thread: {0}")]
    Spawn(std::io::Error),
}

/// What a run sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GenReport {
    pub protocol: String,
    pub target: String,
    pub exporters: usize,
    pub threads: usize,
    pub flows_per_packet: usize,
    /// Every datagram sent, templates included.
    pub packets: u64,
    pub data_packets: u64,
    pub template_packets: u64,
    /// Flow records sent (data records; options records not counted).
    pub flows: u64,
    pub bytes: u64,
    /// Failed `sendmmsg` calls (their packets are lost, their sequence numbers used).
    pub send_errors: u64,
    pub elapsed_s: f64,
    pub packets_per_s: f64,
    pub flows_per_s: f64,
    /// The packet rate asked for (null: unlimited).
    pub target_packets_per_s: Option<f64>,
    /// CPU time of the sender threads (user + system, /proc, 10 ms ticks).
    pub cpu_s: f64,
    pub cpu_us_per_packet: f64,
}

impl GenReport {
    /// Human-readable lines.
    pub fn text(&self) -> String {
        format!(
            "sent {} packets ({} data, {} template) with {} flows, {} bytes, to {} from {} exporters in {:.3} s\n\
             rate: {:.0} packets/s, {:.0} flows/s (target: {}); send errors: {}\n\
             sender CPU: {:.2} s, {:.3} us per packet\n",
            self.packets,
            self.data_packets,
            self.template_packets,
            self.flows,
            self.bytes,
            self.target,
            self.exporters,
            self.elapsed_s,
            self.packets_per_s,
            self.flows_per_s,
            self.target_packets_per_s
                .map_or("unlimited".to_string(), |r| format!("{r:.0} packets/s")),
            self.send_errors,
            self.cpu_s,
            self.cpu_us_per_packet
        )
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The source address of exporter `i` for a target.
pub fn exporter_addr(target: SocketAddr, how: SourceAddrs, i: usize) -> SocketAddr {
    let ip = match (target.ip(), how) {
        (IpAddr::V4(t), SourceAddrs::Distinct) if t.is_loopback() => {
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 254) as u8))
        }
        (IpAddr::V4(_), _) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (IpAddr::V6(_), _) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, 0)
}

const T_V4: u16 = 256;
const T_V6: u16 = 257;
const T_OPTS: u16 = 258;

/// Packets of one exporter: the data pool, the template packet, the sequence state.
#[derive(Debug)]
pub struct ExporterPackets {
    protocol: Protocol,
    /// Pre-encoded data packets.
    pool: Vec<Vec<u8>>,
    pool_flows: Vec<u32>,
    /// sFlow: offsets of the flow samples' sequence numbers in each pool packet.
    sample_offsets: Vec<Vec<usize>>,
    /// With distinct flows: offsets of the last 4 bytes of every record's source address in
    /// each pool packet (empty otherwise).
    key_offsets: Vec<Vec<usize>>,
    distinct: bool,
    /// With distinct flows: the next record's number (per exporter).
    flow_id: u32,
    /// 10.0.0.0/8 for IPv4 sources.
    key_base: u32,
    /// v9 / IPFIX: templates (and options template + data with sampling).
    templates: Option<Vec<u8>>,
    /// IPFIX: options data records in the template packet.
    template_records: u32,
    next: usize,
    /// v5: flows sent; v9: packets sent; IPFIX: data records sent; sFlow: datagrams sent.
    seq: u32,
    sample_seq: u32,
    boot_ms: u64,
    sampling: u32,
}

impl ExporterPackets {
    /// Encodes `pool` data packets for exporter `index` (its address `src` is the sFlow
    /// agent address).
    pub fn build(
        cfg: &GenConfig,
        index: usize,
        src: IpAddr,
        pool: usize,
    ) -> Result<Self, GenError> {
        let now = now_unix_ms();
        let boot_ms = now - 3_600_000;
        let mut rng = Rng::new(cfg.seed ^ (index as u64).wrapping_mul(0x1000_0001));
        let fpp = cfg.flows_per_packet;
        let sampled = cfg.sampling.is_some();
        let sampler_id = u16::from(sampled);
        let rate = cfg.sampling.unwrap_or(1);
        let mut e = ExporterPackets {
            protocol: cfg.protocol,
            pool: Vec::with_capacity(pool),
            pool_flows: Vec::with_capacity(pool),
            sample_offsets: Vec::new(),
            key_offsets: Vec::new(),
            distinct: cfg.distinct_flows,
            flow_id: 0,
            key_base: 0x0a00_0000,
            templates: None,
            template_records: 0,
            next: 0,
            seq: 0,
            sample_seq: 0,
            boot_ms,
            sampling: rate,
        };
        let (t4, t6) = data_templates(cfg.protocol, sampled);
        let mut flows_buf: Vec<FlowRepr> = Vec::with_capacity(fpp);
        let mut v6_done = 0usize;
        for k in 0..pool {
            // IPv6 flows: spread so that every packet is as close to the fraction as can be
            let v6_until = ((k + 1) as f64 * fpp as f64 * cfg.ipv6_fraction).round() as usize;
            let n6 = v6_until.saturating_sub(v6_done).min(fpp);
            v6_done += n6;
            flows_buf.clear();
            for j in 0..fpp {
                flows_buf.push(flows::flow(&mut rng, j >= fpp - n6, now, sampler_id));
            }
            let mut out = Vec::with_capacity(1500);
            match cfg.protocol {
                Protocol::Netflow5 => {
                    let hdr = v5_header(boot_ms, now, 0, index, cfg.sampling);
                    let recs: Vec<_> = flows_buf
                        .iter()
                        .filter_map(|f| netflow5::RecordRepr::from_flow(f, &hdr))
                        .collect();
                    netflow5::emit(&hdr, &recs, &mut out)?;
                }
                Protocol::Netflow9 => {
                    let hdr = netflow9::HeaderRepr {
                        sys_uptime_ms: (now - boot_ms) as u32,
                        unix_secs: (now / 1000) as u32,
                        sequence: 0,
                        source_id: index as u32,
                    };
                    let mut w = netflow9::Writer::begin(&mut out, &hdr);
                    for (t, v6) in [(&t4, false), (&t6, true)] {
                        if flows_buf.iter().any(|f| f.src_addr.is_ipv6() == v6) {
                            w.begin_data_set(t)?;
                            for f in flows_buf.iter().filter(|f| f.src_addr.is_ipv6() == v6) {
                                w.record_flow(f)?;
                            }
                            w.end_data_set()?;
                        }
                    }
                    w.finish()?;
                }
                Protocol::Ipfix => {
                    let hdr = ipfix::HeaderRepr {
                        export_time: (now / 1000) as u32,
                        sequence: 0,
                        observation_domain: 1,
                    };
                    let mut w = ipfix::Writer::begin(&mut out, &hdr);
                    for (t, v6) in [(&t4, false), (&t6, true)] {
                        if flows_buf.iter().any(|f| f.src_addr.is_ipv6() == v6) {
                            w.begin_data_set(t)?;
                            for f in flows_buf.iter().filter(|f| f.src_addr.is_ipv6() == v6) {
                                w.record_flow(f)?;
                            }
                            w.end_data_set()?;
                        }
                    }
                    w.finish()?;
                }
                Protocol::Sflow => {
                    let dg = sflow_datagram(src, index, &flows_buf, rate, (now - boot_ms) as u32);
                    dg.emit(&mut out);
                    e.sample_offsets.push(sflow_sample_offsets(&out));
                }
            }
            if e.distinct {
                e.key_offsets.push(source_offsets(&out, &flows_buf));
            }
            e.pool.push(out);
            e.pool_flows.push(fpp as u32);
        }
        let (templates, template_records) = template_packet(cfg, index, &t4, &t6, now, boot_ms)?;
        e.templates = templates;
        e.template_records = template_records;
        Ok(e)
    }

    pub fn has_templates(&self) -> bool {
        self.templates.is_some()
    }

    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// Stamps the template packet for a send at `now_ms` and returns it.
    pub fn stamp_templates(&mut self, now_ms: u64) -> &[u8] {
        let seq = self.seq;
        let uptime = now_ms.saturating_sub(self.boot_ms) as u32;
        let Some(t) = self.templates.as_mut() else {
            return &[];
        };
        match self.protocol {
            Protocol::Netflow9 => {
                t[4..8].copy_from_slice(&uptime.to_be_bytes());
                t[8..12].copy_from_slice(&((now_ms / 1000) as u32).to_be_bytes());
                t[12..16].copy_from_slice(&seq.to_be_bytes());
                self.seq = seq.wrapping_add(1);
            }
            Protocol::Ipfix => {
                t[4..8].copy_from_slice(&((now_ms / 1000) as u32).to_be_bytes());
                t[8..12].copy_from_slice(&seq.to_be_bytes());
                self.seq = seq.wrapping_add(self.template_records);
            }
            _ => {}
        }
        self.templates.as_deref().unwrap_or(&[])
    }

    /// Stamps the next data packet of the pool for a send at `now_ms`; returns its slot and
    /// the flows in it. The slot's bytes stay valid until the pool wraps around.
    pub fn stamp_next(&mut self, now_ms: u64) -> (usize, u32) {
        let slot = self.next;
        self.next = (self.next + 1) % self.pool.len();
        let flows = self.pool_flows[slot];
        let seq = self.seq;
        let uptime = now_ms.saturating_sub(self.boot_ms) as u32;
        let p = &mut self.pool[slot];
        if self.distinct {
            // every record gets a source address no record of this exporter had before:
            // 10.0.0.0/8 plus the record's number (IPv6: the last 32 bits), distinct for
            // 2^24 records per exporter
            for &o in &self.key_offsets[slot] {
                let id = self.flow_id & 0x00ff_ffff;
                self.flow_id = self.flow_id.wrapping_add(1);
                let v = if o & V6_KEY != 0 {
                    id
                } else {
                    self.key_base | id
                };
                let o = o & !V6_KEY;
                p[o..o + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        match self.protocol {
            Protocol::Netflow5 => {
                p[4..8].copy_from_slice(&uptime.to_be_bytes());
                p[8..12].copy_from_slice(&((now_ms / 1000) as u32).to_be_bytes());
                p[12..16].copy_from_slice(&(((now_ms % 1000) * 1_000_000) as u32).to_be_bytes());
                p[16..20].copy_from_slice(&seq.to_be_bytes());
                self.seq = seq.wrapping_add(flows);
            }
            Protocol::Netflow9 => {
                p[4..8].copy_from_slice(&uptime.to_be_bytes());
                p[8..12].copy_from_slice(&((now_ms / 1000) as u32).to_be_bytes());
                p[12..16].copy_from_slice(&seq.to_be_bytes());
                self.seq = seq.wrapping_add(1);
            }
            Protocol::Ipfix => {
                p[4..8].copy_from_slice(&((now_ms / 1000) as u32).to_be_bytes());
                p[8..12].copy_from_slice(&seq.to_be_bytes());
                self.seq = seq.wrapping_add(flows);
            }
            Protocol::Sflow => {
                let at = sflow_seq_offset(p);
                p[at..at + 4].copy_from_slice(&seq.to_be_bytes());
                p[at + 4..at + 8].copy_from_slice(&uptime.to_be_bytes());
                self.seq = seq.wrapping_add(1);
                for &o in &self.sample_offsets[slot] {
                    let s = self.sample_seq;
                    self.sample_seq = s.wrapping_add(1);
                    p[o..o + 4].copy_from_slice(&s.wrapping_add(1).to_be_bytes());
                    let pool = s.wrapping_add(1).wrapping_mul(self.sampling);
                    p[o + 12..o + 16].copy_from_slice(&pool.to_be_bytes());
                }
            }
        }
        (slot, flows)
    }

    /// The bytes of a pool slot.
    pub fn slot(&self, slot: usize) -> &[u8] {
        &self.pool[slot]
    }
}

/// The v9 / IPFIX packet of templates (and, with sampling, the options template and its
/// data record), with the options data records it holds (IPFIX sequence numbers count them).
fn template_packet(
    cfg: &GenConfig,
    index: usize,
    t4: &TemplateRepr,
    t6: &TemplateRepr,
    now: u64,
    boot_ms: u64,
) -> Result<(Option<Vec<u8>>, u32), GenError> {
    let rate = cfg.sampling.unwrap_or(1);
    let mut out = Vec::with_capacity(512);
    let templates = [t4.clone(), t6.clone()];
    match cfg.protocol {
        Protocol::Netflow9 => {
            let ot = netflow9::templates::sampler_options(T_OPTS);
            let hdr = netflow9::HeaderRepr {
                sys_uptime_ms: (now - boot_ms) as u32,
                unix_secs: (now / 1000) as u32,
                sequence: 0,
                source_id: index as u32,
            };
            let mut w = netflow9::Writer::begin(&mut out, &hdr);
            w.template_set(&templates)?;
            if cfg.sampling.is_some() {
                w.options_template_set(std::slice::from_ref(&ot))?;
                w.begin_options_data_set(&ot)?;
                w.record(&netflow9::templates::sampler_values(
                    index as u32,
                    1,
                    2,
                    rate,
                ))?;
                w.end_data_set()?;
            }
            w.finish()?;
            Ok((Some(out), 0))
        }
        Protocol::Ipfix => {
            let ot = ipfix::templates::sampling_options(T_OPTS);
            let hdr = ipfix::HeaderRepr {
                export_time: (now / 1000) as u32,
                sequence: 0,
                observation_domain: 1,
            };
            let mut w = ipfix::Writer::begin(&mut out, &hdr);
            w.template_set(&templates)?;
            let mut records = 0;
            if cfg.sampling.is_some() {
                w.options_template_set(std::slice::from_ref(&ot))?;
                w.begin_options_data_set(&ot)?;
                w.record(&ipfix::templates::sampling_values(1, 1, 1, rate - 1))?;
                w.end_data_set()?;
                records = 1;
            }
            w.finish()?;
            Ok((Some(out), records))
        }
        _ => Ok((None, 0)),
    }
}

fn v5_header(
    boot_ms: u64,
    now: u64,
    seq: u32,
    index: usize,
    sampling: Option<u32>,
) -> netflow5::HeaderRepr {
    netflow5::HeaderRepr {
        sys_uptime_ms: (now - boot_ms) as u32,
        unix_secs: (now / 1000) as u32,
        unix_nsecs: ((now % 1000) * 1_000_000) as u32,
        flow_sequence: seq,
        engine_type: 0,
        engine_id: (index % 256) as u8,
        // 01: packet interval sampling
        sampling_mode: if sampling.is_some() { 1 } else { 0 },
        sampling_interval: sampling.map_or(0, |r| r.min(0x3fff) as u16),
    }
}

/// The v4 and v6 data templates for a protocol (v9 / IPFIX), with a sampler / selector id
/// field when sampled.
fn data_templates(p: Protocol, sampled: bool) -> (TemplateRepr, TemplateRepr) {
    match p {
        Protocol::Netflow9 => {
            let mut t6 = netflow9::templates::ipv6_basic(T_V6);
            let t4 = if sampled {
                t6.fields.push(FieldSpecRepr::new(48, 1));
                netflow9::templates::ipv4_sampled(T_V4)
            } else {
                netflow9::templates::ipv4_basic(T_V4)
            };
            (t4, t6)
        }
        _ => {
            let mut t6 = ipfix::templates::ipv6_basic(T_V6);
            let t4 = if sampled {
                t6.fields.push(FieldSpecRepr::new(302, 2));
                ipfix::templates::ipv4_sampled(T_V4)
            } else {
                ipfix::templates::ipv4_basic(T_V4)
            };
            (t4, t6)
        }
    }
}

fn sflow_datagram(
    agent: IpAddr,
    index: usize,
    flows: &[FlowRepr],
    rate: u32,
    uptime_ms: u32,
) -> sflow::DatagramRepr {
    let samples = flows
        .iter()
        .map(|f| {
            let addrs = match (f.src_addr, f.dst_addr) {
                (IpAddr::V4(s), IpAddr::V4(d)) => sflow::IpPair::V4(s, d),
                (IpAddr::V6(s), IpAddr::V6(d)) => sflow::IpPair::V6(s, d),
                _ => sflow::IpPair::V4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
            };
            let transport = match f.protocol {
                6 => sflow::TransportRepr::Tcp {
                    src_port: f.src_port,
                    dst_port: f.dst_port,
                    flags: f.tcp_flags,
                },
                17 => sflow::TransportRepr::Udp {
                    src_port: f.src_port,
                    dst_port: f.dst_port,
                },
                _ => sflow::TransportRepr::Icmp {
                    icmp_type: 8,
                    code: 0,
                },
            };
            let len = (f.octets / f.packets.max(1)).clamp(64, 1500) as u16;
            sflow::SampleRepr::Flow(sflow::FlowSampleRepr {
                expanded: false,
                sequence_number: 0,
                source_id_type: 0,
                source_id_index: f.input,
                sampling_rate: rate,
                sample_pool: 0,
                drops: 0,
                input: sflow::Interface {
                    format: 0,
                    value: f.input,
                },
                output: sflow::Interface {
                    format: 0,
                    value: f.output,
                },
                header: Some(sflow::PacketRepr {
                    src_mac: [0x02, 0, 0, 0, 0, (index % 256) as u8],
                    dst_mac: [0x02, 0, 0, 0, 1, 1],
                    vlan: Some(100),
                    vlan_priority: 0,
                    addrs,
                    tos: f.tos,
                    ttl: 64,
                    transport,
                    payload_len: len.saturating_sub(60),
                    max_header_len: 128,
                }),
                switch: None,
                router: Some(sflow::ExtendedRouter {
                    next_hop: Some(f.next_hop),
                    src_mask_len: u32::from(f.src_mask),
                    dst_mask_len: u32::from(f.dst_mask),
                }),
                gateway: Some(sflow::GatewayRepr {
                    next_hop: Some(f.next_hop),
                    as_number: 64500,
                    src_as: f.src_as,
                    src_peer_as: f.src_as,
                    dst_as_path: vec![(2, vec![64501, f.dst_as])],
                    communities: vec![],
                    local_pref: 100,
                }),
            })
        })
        .collect();
    sflow::DatagramRepr {
        agent: Some(agent),
        sub_agent_id: 0,
        sequence_number: 0,
        uptime_ms,
        samples,
    }
}

/// Marks a key offset as the tail of an IPv6 address (no 10/8 prefix written there).
const V6_KEY: usize = 1 << 62;

/// Where each flow's source address sits in an encoded packet: the offset of its last 4
/// bytes (IPv6 ones marked with [`V6_KEY`]). A flow whose address is not found exactly once
/// in the packet is left out (it then repeats with the pool; with random 10/8 and
/// 2001:db8::/32 sources that is rare).
fn source_offsets(packet: &[u8], flows: &[FlowRepr]) -> Vec<usize> {
    let mut v = Vec::with_capacity(flows.len());
    for f in flows {
        let (bytes, tail, mark): (Vec<u8>, usize, usize) = match f.src_addr {
            IpAddr::V4(a) => (a.octets().to_vec(), 0, 0),
            IpAddr::V6(a) => (a.octets().to_vec(), 12, V6_KEY),
        };
        let mut hits = packet
            .windows(bytes.len())
            .enumerate()
            .filter(|(_, w)| *w == &bytes[..])
            .map(|(i, _)| i);
        if let (Some(i), None) = (hits.next(), hits.next()) {
            v.push((i + tail) | mark);
        }
    }
    v
}

/// Offset of the sFlow datagram sequence number (after version, agent and sub-agent id).
fn sflow_seq_offset(dg: &[u8]) -> usize {
    match u32::from_be_bytes([dg[4], dg[5], dg[6], dg[7]]) {
        1 => 16,
        2 => 28,
        _ => 12,
    }
}

/// Offsets of the sequence numbers of the (compact) flow samples of an encoded datagram.
fn sflow_sample_offsets(dg: &[u8]) -> Vec<usize> {
    let be = |o: usize| u32::from_be_bytes([dg[o], dg[o + 1], dg[o + 2], dg[o + 3]]);
    let mut at = sflow_seq_offset(dg) + 8;
    let n = be(at);
    at += 4;
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        if at + 8 > dg.len() {
            break;
        }
        let (format, len) = (be(at), be(at + 4) as usize);
        if format == 1 {
            v.push(at + 8);
        }
        at += 8 + len;
    }
    v
}

/// Reads user + system CPU time of the calling thread from /proc (10 ms ticks).
pub fn thread_cpu_s() -> f64 {
    crate::proc::stat_cpu_s(std::path::Path::new("/proc/thread-self/stat")).unwrap_or(0.0)
}

#[derive(Debug, Default, Clone, Copy)]
struct ThreadReport {
    packets: u64,
    data_packets: u64,
    template_packets: u64,
    flows: u64,
    bytes: u64,
    send_errors: u64,
    cpu_s: f64,
    elapsed: Duration,
}

struct Exporter {
    socket: UdpSocket,
    packets: ExporterPackets,
    next_templates: Option<Instant>,
}

/// Reuses a vector's allocation for a different lifetime (it is emptied first).
fn recycle<'b>(mut v: Vec<Transmit<'_>>) -> Vec<Transmit<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("emptied")).collect()
}

/// Sends until the count, the time bound or the stop flag; returns what it sent.
fn sender(
    cfg: &GenConfig,
    mut exporters: Vec<Exporter>,
    quota: Option<u64>,
    rate: Option<f64>,
    core: Option<usize>,
) -> Result<ThreadReport, GenError> {
    if let Some(c) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let cpu0 = thread_cpu_s();
    let start = Instant::now();
    let deadline = start + cfg.time_bound();
    let mut r = ThreadReport::default();
    let mut batch = SendBatch::new(cfg.batch + 1);
    let mut bucket =
        rate.map(|p| TokenBucket::new(p, TokenBucket::capacity_for(p, cfg.batch), 1.0, start));
    // smallest send worth waking up for: 1 ms of traffic, 1 packet at least
    let min_send = rate.map_or(1, |p| ((p * 0.001) as u64).clamp(1, cfg.batch as u64));
    let mut slots: Vec<usize> = Vec::with_capacity(cfg.batch);
    let mut storage: Vec<Transmit<'static>> = Vec::with_capacity(cfg.batch + 1);
    let mut cur = 0usize;
    let mut consecutive_errors = 0u32;
    let target = cfg.target;
    let stop = cfg.stop.clone();
    loop {
        let now = Instant::now();
        if now >= deadline
            || quota.is_some_and(|q| r.data_packets >= q)
            || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
        {
            break;
        }
        let n_exp = exporters.len();
        let e = &mut exporters[cur];
        let templates_due = e.next_templates.is_some_and(|t| now >= t);
        let mut want = cfg.batch as u64;
        if let Some(q) = quota {
            // a small count is shared by every exporter of the thread, not sent by the first
            want = want.min((q / n_exp as u64).max(1)).min(q - r.data_packets);
        }
        let mut total = want + u64::from(templates_due);
        if let Some(b) = bucket.as_mut() {
            let avail = b.available(now);
            if avail < min_send.min(total) {
                let wait = b.time_until(min_send.min(total), now);
                // short waits: yield (a sleep overshoots by far more than it waits)
                if wait < Duration::from_micros(200) {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(wait.min(deadline.saturating_duration_since(now)));
                }
                continue; // the same exporter's turn again
            }
            total = total.min(avail);
            b.take(total, now);
        }
        cur = (cur + 1) % n_exp;
        let now_ms = now_unix_ms();
        let send_templates = templates_due && total > 0;
        if send_templates {
            e.next_templates = cfg.template_interval.map(|i| now + i);
            e.packets.stamp_templates(now_ms);
        }
        let n_data = total - u64::from(send_templates);
        slots.clear();
        let mut flows = 0u64;
        for _ in 0..n_data {
            let (slot, f) = e.packets.stamp_next(now_ms);
            slots.push(slot);
            flows += u64::from(f);
        }
        let mut tx = recycle(std::mem::take(&mut storage));
        let mut bytes = 0u64;
        if send_templates {
            let t = e.packets.templates.as_deref().unwrap_or(&[]);
            bytes += t.len() as u64;
            tx.push(Transmit {
                dst: target,
                payload: t,
            });
        }
        for &s in &slots {
            let p = e.packets.slot(s);
            bytes += p.len() as u64;
            tx.push(Transmit {
                dst: target,
                payload: p,
            });
        }
        let mut off = 0;
        let mut tries = 0;
        while off < tx.len() && tries < 1000 {
            tries += 1;
            match batch.send(&e.socket, &tx[off..]) {
                Ok(0) => std::thread::yield_now(),
                Ok(n) => {
                    off += n;
                    consecutive_errors = 0;
                }
                Err(err) => {
                    r.send_errors += 1;
                    consecutive_errors += 1;
                    if consecutive_errors > 1000 {
                        return Err(GenError::Send {
                            target,
                            source: err,
                        });
                    }
                    std::thread::sleep(Duration::from_micros(100));
                    off += 1; // that packet is lost; its sequence number is used
                }
            }
        }
        storage = recycle(tx);
        r.packets += total;
        r.data_packets += n_data;
        r.template_packets += u64::from(send_templates);
        r.flows += flows;
        r.bytes += bytes;
        if let Some(p) = &cfg.progress {
            p.packets.fetch_add(total, Ordering::Relaxed);
            p.flows.fetch_add(flows, Ordering::Relaxed);
        }
    }
    r.elapsed = start.elapsed();
    r.cpu_s = thread_cpu_s() - cpu0;
    Ok(r)
}

/// Packets per exporter in the pool: enough for a batch, fewer with many exporters.
fn pool_size(cfg: &GenConfig) -> usize {
    (8192 / cfg.exporters).clamp(cfg.batch.max(8), 64)
}

/// Runs the generator on `cfg.threads` threads and returns what was sent.
pub fn run(cfg: &GenConfig) -> Result<GenReport, GenError> {
    cfg.validate()?;
    let threads = cfg.threads.min(cfg.exporters);
    let pool = pool_size(cfg);
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
    let mut per_thread: Vec<Vec<Exporter>> = (0..threads).map(|_| Vec::new()).collect();
    for i in cfg.first_exporter..cfg.first_exporter + cfg.exporters {
        let src = exporter_addr(cfg.target, cfg.source_addrs, i);
        let sock = bind_udp(src, &opts)?;
        let packets = ExporterPackets::build(cfg, i, src.ip(), pool)?;
        let next_templates = packets.has_templates().then(Instant::now);
        per_thread[i % threads].push(Exporter {
            socket: sock.socket,
            packets,
            next_templates,
        });
    }
    let rate_pp = cfg.packets_per_s();
    let start = Instant::now();
    let results: Vec<Result<ThreadReport, GenError>> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (t, exps) in per_thread.into_iter().enumerate() {
            let quota = cfg
                .count
                .map(|c| c / threads as u64 + u64::from((t as u64) < c % threads as u64));
            let rate = rate_pp.map(|r| r / threads as f64);
            let core = (!cfg.pin.is_empty()).then(|| cfg.pin[t % cfg.pin.len()]);
            let h = std::thread::Builder::new()
                .name(format!("ff-gen-{t}"))
                .spawn_scoped(s, move || sender(cfg, exps, quota, rate, core))
                .map_err(GenError::Spawn);
            handles.push(h);
        }
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(GenError::Config("a sender thread panicked".into()))),
                Err(e) => Err(e),
            })
            .collect()
    });
    let wall = start.elapsed();
    let mut total = ThreadReport::default();
    for r in results {
        let r = r?;
        total.packets += r.packets;
        total.data_packets += r.data_packets;
        total.template_packets += r.template_packets;
        total.flows += r.flows;
        total.bytes += r.bytes;
        total.send_errors += r.send_errors;
        total.cpu_s += r.cpu_s;
        total.elapsed = total.elapsed.max(r.elapsed);
    }
    let secs = total
        .elapsed
        .max(wall.min(total.elapsed))
        .as_secs_f64()
        .max(1e-9);
    Ok(GenReport {
        protocol: cfg.protocol.as_str().to_string(),
        target: cfg.target.to_string(),
        exporters: cfg.exporters,
        threads,
        flows_per_packet: cfg.flows_per_packet,
        packets: total.packets,
        data_packets: total.data_packets,
        template_packets: total.template_packets,
        flows: total.flows,
        bytes: total.bytes,
        send_errors: total.send_errors,
        elapsed_s: secs,
        packets_per_s: total.packets as f64 / secs,
        flows_per_s: total.flows as f64 / secs,
        target_packets_per_s: rate_pp,
        cpu_s: total.cpu_s,
        cpu_us_per_packet: if total.packets > 0 {
            total.cpu_s * 1e6 / total.packets as f64
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests;
