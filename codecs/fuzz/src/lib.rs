//! The fuzz harness of ferroflow-codecs: how a fuzz input becomes datagrams, the decoder
//! settings, and the checks made on what comes out.
//!
//! Shared by the cargo-fuzz targets (`fuzz_targets/*.rs`), the `seed` example (which writes the
//! seed corpora in the formats read here) and `codecs/tests/fuzz_regressions.rs` (which includes
//! this file with `#[path]` to replay saved crash inputs under `cargo test`). It depends on
//! nothing but `ferroflow_codecs` and `std` for that reason.
//!
//! # Input formats
//!
//! - `decode_any`: the input is one datagram, decoded as it is by a fresh [`Decoder`].
//! - `netflow_v5`: one datagram whose first two bytes are forced to version 5.
//! - `sflow`: one datagram whose first four bytes are forced to the sFlow version 5.
//! - `netflow_v9_sequence` / `ipfix_sequence`: a *sequence* fed to one decoder in order, so
//!   that templates (and options data) learned from earlier datagrams are used by later ones:
//!
//!   ```text
//!   config: u8                    bit 0 scale_sampling, bit 1 tight bounds, bit 2 JSON no_raw
//!   then, up to MAX_DATAGRAMS times:
//!     len: u16 (big-endian)       datagram length (the rest of the input if it is shorter)
//!     meta: u8                    bits 0-1 exporter (one of four), bits 2-6 seconds to advance
//!                                 the clock before this datagram, bit 7 keep the IPFIX
//!                                 message length as it is (else it is set to `len`)
//!     payload: [u8; len]          its version field is forced to 9 or 10
//!   ```
//!
//!   With the tight bounds the decoder keeps 8 templates per exporter, 2 exporters, 512 held
//!   bytes per exporter and 1024 in total, holds data 20 s and templates 40 s, so eviction and
//!   expiry run within a few datagrams. The clock starts at [`START_NS`].
//!
//! # Checks (beyond "no panic, no hang")
//!
//! Every record is encoded to JSON (the raw `netflow.*` part included unless config bit 2), and
//! the document must be valid UTF-8. Records of a forced protocol must carry that protocol. The
//! records the closure saw must equal the decoder's own record counters, errors returned must
//! have been counted, and the decoder must stay within its configured bounds (exporters, held
//! bytes, templates per exporter).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ferroflow_codecs::json::{encode, EncodeOptions};
use ferroflow_codecs::{Decoder, DecoderConfig, FlowProtocol, FlowRecord};

/// The decoder clock at the first datagram (ns since the epoch): 2023-11-14.
pub const START_NS: u64 = 1_700_000_000_000_000_000;

/// Datagrams read from one sequence input at most (the rest of the input is ignored).
pub const MAX_DATAGRAMS: usize = 64;

/// Config bits of a sequence input.
pub mod config {
    pub const SCALE_SAMPLING: u8 = 1;
    pub const TIGHT_BOUNDS: u8 = 2;
    pub const NO_RAW: u8 = 4;
}

/// Meta bits of one datagram of a sequence input.
pub mod meta {
    pub const EXPORTER_MASK: u8 = 0b11;
    pub const ADVANCE_SHIFT: u8 = 2;
    pub const ADVANCE_MASK: u8 = 0b1_1111;
    pub const KEEP_LENGTH: u8 = 0x80;
}

/// The fuzz targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    DecodeAny,
    NetflowV5,
    NetflowV9Sequence,
    IpfixSequence,
    Sflow,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::DecodeAny,
        Target::NetflowV5,
        Target::NetflowV9Sequence,
        Target::IpfixSequence,
        Target::Sflow,
    ];

    /// The cargo-fuzz target name (and corpus / regressions folder).
    pub fn name(self) -> &'static str {
        match self {
            Target::DecodeAny => "decode_any",
            Target::NetflowV5 => "netflow_v5",
            Target::NetflowV9Sequence => "netflow_v9_sequence",
            Target::IpfixSequence => "ipfix_sequence",
            Target::Sflow => "sflow",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Run one fuzz input through this target's harness.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::DecodeAny => decode_any(data),
            Target::NetflowV5 => netflow_v5(data),
            Target::NetflowV9Sequence => sequence(9, data),
            Target::IpfixSequence => sequence(10, data),
            Target::Sflow => sflow(data),
        }
    }
}

/// The four exporters a sequence input may name (two ports of one address: two transport
/// sessions; another address; an IPv6 one).
pub fn exporter(index: u8) -> SocketAddr {
    match index & meta::EXPORTER_MASK {
        0 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 2055),
        1 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 2056),
        2 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 4739),
        _ => SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            4739,
        ),
    }
}

/// The decoder settings of a sequence input's config byte.
pub fn decoder_config(config: u8) -> DecoderConfig {
    let mut cfg = DecoderConfig {
        scale_sampling: config & config::SCALE_SAMPLING != 0,
        ..DecoderConfig::default()
    };
    if config & config::TIGHT_BOUNDS != 0 {
        cfg.max_templates_per_exporter = 8;
        cfg.max_exporters = 2;
        cfg.max_held_bytes_per_exporter = 512;
        cfg.max_held_bytes_total = 1024;
        cfg.max_hold_ms = 20_000;
        cfg.template_timeout_ms = 40_000;
    }
    cfg
}

/// Receives the records: encodes each to JSON and checks what can be checked cheaply.
struct Sink {
    buf: Vec<u8>,
    opts: EncodeOptions,
    expect: Option<FlowProtocol>,
    records: u64,
}

impl Sink {
    fn new(expect: Option<FlowProtocol>, no_raw: bool) -> Sink {
        Sink {
            buf: Vec::with_capacity(4096),
            opts: EncodeOptions { no_raw },
            expect,
            records: 0,
        }
    }

    fn record(&mut self, r: &FlowRecord<'_>) {
        self.records += 1;
        if let Some(p) = self.expect {
            assert_eq!(r.protocol, p, "record of another protocol");
        }
        self.buf.clear();
        encode(r, &self.opts, &mut self.buf);
        assert!(
            std::str::from_utf8(&self.buf).is_ok(),
            "JSON document is not UTF-8: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }
}

/// Decode one datagram with `d`, checking the counters against what the closure saw.
fn decode_checked(
    d: &mut Decoder,
    sink: &mut Sink,
    errors_returned: &mut u64,
    exporter: SocketAddr,
    now_ns: u64,
    payload: &[u8],
) {
    if d.decode(exporter, now_ns, payload, &mut |r| sink.record(r))
        .is_err()
    {
        *errors_returned += 1;
    }
    let s = d.stats();
    assert_eq!(
        sink.records,
        s.records_total() + s.counter_samples,
        "records seen by the caller differ from the decoder's counters"
    );
    assert!(
        s.errors_total() >= *errors_returned,
        "an error was returned but not counted"
    );
}

/// Bounds the decoder promises to keep.
fn check_bounds(d: &Decoder) {
    let cfg = d.config();
    assert!(d.exporters() <= cfg.max_exporters.max(1), "max_exporters");
    assert!(
        d.held_bytes() <= cfg.max_held_bytes_total,
        "max_held_bytes_total"
    );
    assert!(
        d.held_bytes() <= cfg.max_held_bytes_per_exporter * d.exporters(),
        "max_held_bytes_per_exporter"
    );
    assert!(
        d.templates() <= cfg.max_templates_per_exporter.max(1) * d.exporters(),
        "max_templates_per_exporter"
    );
}

/// `decode_any`: one datagram through a fresh decoder, as it is.
pub fn decode_any(data: &[u8]) {
    let mut d = Decoder::new(DecoderConfig::default());
    let mut sink = Sink::new(None, false);
    let mut errs = 0;
    decode_checked(&mut d, &mut sink, &mut errs, exporter(0), START_NS, data);
    check_bounds(&d);
}

/// `prefix` followed by `data` without its first `prefix.len()` bytes: the input's own
/// version field replaced, every other byte kept at its offset.
fn forced(prefix: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prefix.len() + data.len());
    v.extend_from_slice(prefix);
    v.extend_from_slice(data.get(prefix.len()..).unwrap_or(&[]));
    v
}

/// `netflow_v5`: one datagram, version forced to 5.
pub fn netflow_v5(data: &[u8]) {
    let payload = forced(&[0, 5], data);
    let mut d = Decoder::new(DecoderConfig::default());
    let mut sink = Sink::new(Some(FlowProtocol::NetflowV5), false);
    let mut errs = 0;
    decode_checked(
        &mut d,
        &mut sink,
        &mut errs,
        exporter(0),
        START_NS,
        &payload,
    );
    check_bounds(&d);
}

/// `sflow`: one datagram, version forced to sFlow 5 (a 32-bit field).
pub fn sflow(data: &[u8]) {
    let payload = forced(&[0, 0, 0, 5], data);
    let mut d = Decoder::new(DecoderConfig::default());
    let mut sink = Sink::new(Some(FlowProtocol::Sflow5), false);
    let mut errs = 0;
    decode_checked(
        &mut d,
        &mut sink,
        &mut errs,
        exporter(0),
        START_NS,
        &payload,
    );
    check_bounds(&d);
}

/// One datagram of a sequence input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    pub meta: u8,
    pub payload: &'a [u8],
}

/// Split a sequence input into its config byte and datagrams (see the module docs).
pub fn split_sequence(data: &[u8]) -> (u8, Vec<Step<'_>>) {
    let Some((&config, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut steps = Vec::new();
    while !rest.is_empty() && steps.len() < MAX_DATAGRAMS {
        if rest.len() < 3 {
            // too short for a datagram header: the tail is one (tiny) datagram
            steps.push(Step {
                meta: 0,
                payload: rest,
            });
            break;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let meta = rest[2];
        rest = &rest[3..];
        let n = len.min(rest.len());
        steps.push(Step {
            meta,
            payload: &rest[..n],
        });
        rest = &rest[n..];
    }
    (config, steps)
}

/// Write a sequence input (the inverse of [`split_sequence`] for datagrams of at most 65535
/// bytes; longer ones are cut).
pub fn write_sequence(config: u8, steps: &[Step<'_>], out: &mut Vec<u8>) {
    out.push(config);
    for s in steps {
        let p = &s.payload[..s.payload.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.push(s.meta);
        out.extend_from_slice(p);
    }
}

/// `netflow_v9_sequence` (`version` 9) / `ipfix_sequence` (10): several datagrams through one
/// decoder.
pub fn sequence(version: u16, data: &[u8]) {
    let (config, steps) = split_sequence(data);
    let mut d = Decoder::new(decoder_config(config));
    let expect = if version == 9 {
        FlowProtocol::NetflowV9
    } else {
        FlowProtocol::Ipfix
    };
    let mut sink = Sink::new(Some(expect), config & config::NO_RAW != 0);
    let mut errs = 0;
    let mut now_ns = START_NS;
    let mut payload = Vec::with_capacity(2048);
    for s in &steps {
        let advance_s = u64::from((s.meta >> meta::ADVANCE_SHIFT) & meta::ADVANCE_MASK);
        now_ns += advance_s * 1_000_000_000;
        payload.clear();
        payload.extend_from_slice(s.payload);
        if payload.len() >= 2 {
            payload[0..2].copy_from_slice(&version.to_be_bytes());
        }
        if version == 10 && payload.len() >= 4 && s.meta & meta::KEEP_LENGTH == 0 {
            let len = payload.len().min(usize::from(u16::MAX)) as u16;
            payload[2..4].copy_from_slice(&len.to_be_bytes());
        }
        decode_checked(
            &mut d,
            &mut sink,
            &mut errs,
            exporter(s.meta),
            now_ns,
            &payload,
        );
        check_bounds(&d);
    }
    // the collector calls this once a second
    d.expire(now_ns + 3_600 * 1_000_000_000);
    check_bounds(&d);
    assert_eq!(d.held_sets_pending(), 0, "held data survived expiry");
    assert_eq!(d.held_bytes(), 0, "held bytes survived expiry");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_round_trip() {
        let a = [0u8, 9, 1, 2, 3];
        let b = [0u8, 9];
        let steps = [
            Step {
                meta: 5,
                payload: &a,
            },
            Step {
                meta: 0x80,
                payload: &b,
            },
        ];
        let mut out = Vec::new();
        write_sequence(3, &steps, &mut out);
        assert_eq!(split_sequence(&out), (3, steps.to_vec()));
    }
}
