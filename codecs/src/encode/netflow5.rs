//! NetFlow v5 encoder: a 24-byte header and up to 30 fixed 48-byte records.

use std::net::{IpAddr, Ipv4Addr};

use super::common::{EncodeError, FlowRepr};
use crate::netflow5::{HEADER_LEN, RECORD_LEN};

pub const VERSION: u16 = 5;
/// Records one v5 datagram may carry.
pub const MAX_RECORDS: usize = 30;

/// The v5 header (the count is that of the records passed to [`emit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HeaderRepr {
    pub sys_uptime_ms: u32,
    pub unix_secs: u32,
    pub unix_nsecs: u32,
    /// Flows seen before this datagram.
    pub flow_sequence: u32,
    pub engine_type: u8,
    pub engine_id: u8,
    /// Two bits (1: deterministic, 2: random sampling).
    pub sampling_mode: u8,
    /// Fourteen bits; 0 when not sampled.
    pub sampling_interval: u16,
}

impl HeaderRepr {
    /// The exporter's boot time in epoch ms, the base of the records' first/last.
    pub fn boot_ms(&self) -> u64 {
        let export_ms = u64::from(self.unix_secs) * 1000 + u64::from(self.unix_nsecs / 1_000_000);
        export_ms.saturating_sub(u64::from(self.sys_uptime_ms))
    }

    /// The header for `count` records.
    pub fn to_bytes(&self, count: u16) -> Result<[u8; HEADER_LEN], EncodeError> {
        if self.sampling_mode > 3 {
            return Err(EncodeError::InvalidHeader {
                what: "sampling mode",
                value: u64::from(self.sampling_mode),
            });
        }
        if self.sampling_interval > 0x3fff {
            return Err(EncodeError::InvalidHeader {
                what: "sampling interval",
                value: u64::from(self.sampling_interval),
            });
        }
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..4].copy_from_slice(&count.to_be_bytes());
        b[4..8].copy_from_slice(&self.sys_uptime_ms.to_be_bytes());
        b[8..12].copy_from_slice(&self.unix_secs.to_be_bytes());
        b[12..16].copy_from_slice(&self.unix_nsecs.to_be_bytes());
        b[16..20].copy_from_slice(&self.flow_sequence.to_be_bytes());
        b[20] = self.engine_type;
        b[21] = self.engine_id;
        let sampling = u16::from(self.sampling_mode) << 14 | self.sampling_interval;
        b[22..24].copy_from_slice(&sampling.to_be_bytes());
        Ok(b)
    }
}

/// One 48-byte v5 record (the pad bytes are written as zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordRepr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub next_hop: Ipv4Addr,
    pub input: u16,
    pub output: u16,
    pub packets: u32,
    pub octets: u32,
    /// sysUptime at the first and last packet, ms.
    pub first_ms: u32,
    pub last_ms: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub protocol: u8,
    pub tos: u8,
    pub src_as: u16,
    pub dst_as: u16,
    pub src_mask: u8,
    pub dst_mask: u8,
}

impl Default for RecordRepr {
    fn default() -> Self {
        RecordRepr {
            src_addr: Ipv4Addr::UNSPECIFIED,
            dst_addr: Ipv4Addr::UNSPECIFIED,
            next_hop: Ipv4Addr::UNSPECIFIED,
            input: 0,
            output: 0,
            packets: 0,
            octets: 0,
            first_ms: 0,
            last_ms: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            protocol: 0,
            tos: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
        }
    }
}

impl RecordRepr {
    /// The record's 48 bytes.
    #[inline]
    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&self.src_addr.octets());
        b[4..8].copy_from_slice(&self.dst_addr.octets());
        b[8..12].copy_from_slice(&self.next_hop.octets());
        b[12..14].copy_from_slice(&self.input.to_be_bytes());
        b[14..16].copy_from_slice(&self.output.to_be_bytes());
        b[16..20].copy_from_slice(&self.packets.to_be_bytes());
        b[20..24].copy_from_slice(&self.octets.to_be_bytes());
        b[24..28].copy_from_slice(&self.first_ms.to_be_bytes());
        b[28..32].copy_from_slice(&self.last_ms.to_be_bytes());
        b[32..34].copy_from_slice(&self.src_port.to_be_bytes());
        b[34..36].copy_from_slice(&self.dst_port.to_be_bytes());
        b[37] = self.tcp_flags;
        b[38] = self.protocol;
        b[39] = self.tos;
        b[40..42].copy_from_slice(&self.src_as.to_be_bytes());
        b[42..44].copy_from_slice(&self.dst_as.to_be_bytes());
        b[44] = self.src_mask;
        b[45] = self.dst_mask;
        b
    }

    /// A v5 record from an IPv4 flow, times made relative to `header`'s boot time. `None`
    /// for an IPv6 flow. Wider values are truncated to v5's fields (interfaces and AS
    /// numbers to 16 bits, counters to 32, flags to 8), as a v5 exporter would.
    pub fn from_flow(flow: &FlowRepr, header: &HeaderRepr) -> Option<Self> {
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        };
        let boot = header.boot_ms();
        Some(RecordRepr {
            src_addr: v4(flow.src_addr)?,
            dst_addr: v4(flow.dst_addr)?,
            next_hop: v4(flow.next_hop)?,
            input: flow.input as u16,
            output: flow.output as u16,
            packets: flow.packets as u32,
            octets: flow.octets as u32,
            first_ms: flow.start_ms.wrapping_sub(boot) as u32,
            last_ms: flow.end_ms.wrapping_sub(boot) as u32,
            src_port: flow.src_port,
            dst_port: flow.dst_port,
            tcp_flags: flow.tcp_flags as u8,
            protocol: flow.protocol,
            tos: flow.tos,
            src_as: flow.src_as as u16,
            dst_as: flow.dst_as as u16,
            src_mask: flow.src_mask,
            dst_mask: flow.dst_mask,
        })
    }
}

/// Append a v5 datagram with `records` (at most 30) to `out`. On error nothing is written.
pub fn emit(
    header: &HeaderRepr,
    records: &[RecordRepr],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if records.len() > MAX_RECORDS {
        return Err(EncodeError::TooManyRecords {
            count: records.len(),
            max: MAX_RECORDS,
        });
    }
    let hdr = header.to_bytes(records.len() as u16)?;
    out.reserve(HEADER_LEN + records.len() * RECORD_LEN);
    out.extend_from_slice(&hdr);
    for r in records {
        out.extend_from_slice(&r.to_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netflow5::Packet;
    use proptest::prelude::*;

    const HDR: HeaderRepr = HeaderRepr {
        sys_uptime_ms: 0x0001_0000,
        unix_secs: 0x6553_f100,
        unix_nsecs: 0x0000_01f4,
        flow_sequence: 77,
        engine_type: 1,
        engine_id: 2,
        sampling_mode: 1,
        sampling_interval: 100,
    };

    #[test]
    fn one_record_exact_bytes() {
        let r = RecordRepr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(192, 168, 1, 2),
            next_hop: Ipv4Addr::new(10, 0, 0, 254),
            input: 3,
            output: 4,
            packets: 5,
            octets: 1500,
            first_ms: 0x0000_9000,
            last_ms: 0x0000_9500,
            src_port: 443,
            dst_port: 51000,
            tcp_flags: 0x1b,
            protocol: 6,
            tos: 0x20,
            src_as: 65001,
            dst_as: 65002,
            src_mask: 24,
            dst_mask: 16,
        };
        let mut out = Vec::new();
        emit(&HDR, &[r], &mut out).unwrap();
        #[rustfmt::skip]
        let want: &[u8] = &[
            0x00, 0x05, 0x00, 0x01, // version 5, count 1
            0x00, 0x01, 0x00, 0x00, // sys_uptime
            0x65, 0x53, 0xf1, 0x00, // unix_secs
            0x00, 0x00, 0x01, 0xf4, // unix_nsecs
            0x00, 0x00, 0x00, 0x4d, // flow_sequence 77
            0x01, 0x02,             // engine type, id
            0x40, 0x64,             // mode 1, interval 100
            10, 0, 0, 1,
            192, 168, 1, 2,
            10, 0, 0, 254,
            0x00, 0x03, 0x00, 0x04, // input, output
            0x00, 0x00, 0x00, 0x05, // packets
            0x00, 0x00, 0x05, 0xdc, // octets
            0x00, 0x00, 0x90, 0x00, // first
            0x00, 0x00, 0x95, 0x00, // last
            0x01, 0xbb, 0xc7, 0x38, // ports 443, 51000
            0x00, 0x1b, 0x06, 0x20, // pad, flags, protocol, tos
            0xfd, 0xe9, 0xfd, 0xea, // AS 65001, 65002
            24, 16, 0x00, 0x00,     // masks, pad
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn errors() {
        let mut out = vec![1, 2, 3];
        let many = vec![RecordRepr::default(); 31];
        assert_eq!(
            emit(&HDR, &many, &mut out),
            Err(EncodeError::TooManyRecords { count: 31, max: 30 })
        );
        let h = HeaderRepr {
            sampling_interval: 0x4000,
            ..HDR
        };
        assert!(matches!(
            emit(&h, &[], &mut out),
            Err(EncodeError::InvalidHeader { .. })
        ));
        assert_eq!(out, [1, 2, 3]);
        emit(&HDR, &many[..30], &mut out).unwrap();
        assert_eq!(out.len(), 3 + HEADER_LEN + 30 * RECORD_LEN);
    }

    #[test]
    fn from_flow_relative_times() {
        let h = HeaderRepr {
            sys_uptime_ms: 10_000,
            unix_secs: 1_700_000_000,
            unix_nsecs: 0,
            ..HDR
        };
        let f = FlowRepr {
            src_addr: "10.0.0.1".parse().unwrap(),
            start_ms: 1_700_000_000_000 - 2000,
            end_ms: 1_700_000_000_000 - 500,
            input: 70_000,
            ..FlowRepr::default()
        };
        let r = RecordRepr::from_flow(&f, &h).unwrap();
        assert_eq!((r.first_ms, r.last_ms), (8000, 9500));
        assert_eq!(r.input, 70_000u32 as u16);
        let f6 = FlowRepr {
            src_addr: "::1".parse().unwrap(),
            ..f
        };
        assert_eq!(RecordRepr::from_flow(&f6, &h), None);
    }

    fn arb_record() -> impl Strategy<Value = RecordRepr> {
        (
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u16>(),
                any::<u16>(),
            ),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
            (
                any::<u16>(),
                any::<u16>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
            ),
            (any::<u16>(), any::<u16>(), any::<u8>(), any::<u8>()),
        )
            .prop_map(|(a, b, c, d)| RecordRepr {
                src_addr: Ipv4Addr::from(a.0),
                dst_addr: Ipv4Addr::from(a.1),
                next_hop: Ipv4Addr::from(a.2),
                input: a.3,
                output: a.4,
                packets: b.0,
                octets: b.1,
                first_ms: b.2,
                last_ms: b.3,
                src_port: c.0,
                dst_port: c.1,
                tcp_flags: c.2,
                protocol: c.3,
                tos: c.4,
                src_as: d.0,
                dst_as: d.1,
                src_mask: d.2,
                dst_mask: d.3,
            })
    }

    proptest! {
        /// Against the crate's v5 view.
        #[test]
        fn round_trip_through_the_view(
            h in (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u8>(),
                  any::<u8>(), 0u8..4, 0u16..0x4000),
            records in proptest::collection::vec(arb_record(), 0..=30),
        ) {
            let header = HeaderRepr {
                sys_uptime_ms: h.0, unix_secs: h.1, unix_nsecs: h.2, flow_sequence: h.3,
                engine_type: h.4, engine_id: h.5, sampling_mode: h.6, sampling_interval: h.7,
            };
            let mut out = Vec::new();
            emit(&header, &records, &mut out).unwrap();
            let p = Packet::new_checked(&out).unwrap();
            p.check_count().unwrap();
            let back = HeaderRepr {
                sys_uptime_ms: p.sys_uptime_ms(), unix_secs: p.unix_secs(),
                unix_nsecs: p.unix_nsecs(), flow_sequence: p.flow_sequence(),
                engine_type: p.engine_type(), engine_id: p.engine_id(),
                sampling_mode: p.sampling_mode(), sampling_interval: p.sampling_interval(),
            };
            prop_assert_eq!(back, header);
            let got: Vec<RecordRepr> = p.records().map(|r| RecordRepr {
                src_addr: r.src_addr(), dst_addr: r.dst_addr(), next_hop: r.next_hop(),
                input: r.input(), output: r.output(), packets: r.packets(), octets: r.octets(),
                first_ms: r.first_ms(), last_ms: r.last_ms(), src_port: r.src_port(),
                dst_port: r.dst_port(), tcp_flags: r.tcp_flags(), protocol: r.protocol(),
                tos: r.tos(), src_as: r.src_as(), dst_as: r.dst_as(), src_mask: r.src_mask(),
                dst_mask: r.dst_mask(),
            }).collect();
            prop_assert_eq!(got, records);
        }
    }
}
