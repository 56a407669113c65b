//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::bytes::{be16, be32};
use crate::error::DecodeError;
use crate::record::{FlowProtocol, FlowRecord, Raw, SamplingSource, TimeBasis};

pub const HEADER_LEN: usize = 24;
pub const RECORD_LEN: usize = 48;

mod field {
    pub const VERSION: usize = 0;
    pub const COUNT: usize = 2;
    pub const SYS_UPTIME: usize = 4;
    pub const UNIX_SECS: usize = 8;
    pub const UNIX_NSECS: usize = 12;
    pub const SEQUENCE: usize = 16;
    pub const ENGINE_TYPE: usize = 20;
    pub const ENGINE_ID: usize = 21;
    pub const SAMPLING: usize = 22;
}

/// A checked view of a NetFlow v5 datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Check the header; records are bounded by the datagram length.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::truncated(
                "netflow v5 header",
                0,
                HEADER_LEN,
                buf.len(),
            ));
        }
        let version = be16(buf, field::VERSION).unwrap_or(0);
        if version != 5 {
            return Err(DecodeError::UnsupportedVersion {
                version: u32::from(version),
            });
        }
        Ok(Packet { buf })
    }

    #[inline]
    fn u32_at(&self, off: usize) -> u32 {
        be32(self.buf, off).unwrap_or(0)
    }

    pub fn count(&self) -> u16 {
        be16(self.buf, field::COUNT).unwrap_or(0)
    }
    pub fn sys_uptime_ms(&self) -> u32 {
        self.u32_at(field::SYS_UPTIME)
    }
    pub fn unix_secs(&self) -> u32 {
        self.u32_at(field::UNIX_SECS)
    }
    pub fn unix_nsecs(&self) -> u32 {
        self.u32_at(field::UNIX_NSECS)
    }
    pub fn flow_sequence(&self) -> u32 {
        self.u32_at(field::SEQUENCE)
    }
    pub fn engine_type(&self) -> u8 {
        self.buf[field::ENGINE_TYPE]
    }
    pub fn engine_id(&self) -> u8 {
        self.buf[field::ENGINE_ID]
    }
    /// Sampling mode (top two bits of the sampling field).
    pub fn sampling_mode(&self) -> u8 {
        (be16(self.buf, field::SAMPLING).unwrap_or(0) >> 14) as u8
    }
    /// Sampling interval (low 14 bits); 0 when not sampled.
    pub fn sampling_interval(&self) -> u16 {
        be16(self.buf, field::SAMPLING).unwrap_or(0) & 0x3fff
    }
    /// Export time, nanoseconds since the epoch.
    pub fn export_time_ns(&self) -> u64 {
        u64::from(self.unix_secs()) * 1_000_000_000 + u64::from(self.unix_nsecs())
    }

    /// Records actually present: `min(count, what the datagram holds)`.
    pub fn records(&self) -> impl Iterator<Item = Record<'a>> + 'a {
        let n = usize::from(self.count()).min((self.buf.len() - HEADER_LEN) / RECORD_LEN);
        let body = &self.buf[HEADER_LEN..HEADER_LEN + n * RECORD_LEN];
        body.chunks_exact(RECORD_LEN)
            .filter_map(|b| b.try_into().ok().map(Record::new))
    }

    /// Error when the header claims more records than the datagram holds.
    pub fn check_count(&self) -> Result<(), DecodeError> {
        let need = HEADER_LEN + usize::from(self.count()) * RECORD_LEN;
        if need > self.buf.len() {
            return Err(DecodeError::truncated(
                "netflow v5 records",
                HEADER_LEN,
                need,
                self.buf.len(),
            ));
        }
        Ok(())
    }
}

/// A 48-byte v5 record: every accessor reads at a fixed offset of the array, in bounds by
/// its type (no test, no panic).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    buf: &'a [u8; RECORD_LEN],
}

impl<'a> Record<'a> {
    /// The record of these 48 bytes.
    #[inline]
    pub fn new(buf: &'a [u8; RECORD_LEN]) -> Self {
        Record { buf }
    }
    #[inline]
    fn u16_at(&self, o: usize) -> u16 {
        // a constant offset into the array: no test left after inlining
        be16(self.buf, o).unwrap_or(0)
    }
    #[inline]
    fn u32_at(&self, o: usize) -> u32 {
        be32(self.buf, o).unwrap_or(0)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.u32_at(0))
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.u32_at(4))
    }
    pub fn next_hop(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.u32_at(8))
    }
    pub fn input(&self) -> u16 {
        self.u16_at(12)
    }
    pub fn output(&self) -> u16 {
        self.u16_at(14)
    }
    pub fn packets(&self) -> u32 {
        self.u32_at(16)
    }
    pub fn octets(&self) -> u32 {
        self.u32_at(20)
    }
    pub fn first_ms(&self) -> u32 {
        self.u32_at(24)
    }
    pub fn last_ms(&self) -> u32 {
        self.u32_at(28)
    }
    pub fn src_port(&self) -> u16 {
        self.u16_at(32)
    }
    pub fn dst_port(&self) -> u16 {
        self.u16_at(34)
    }
    pub fn tcp_flags(&self) -> u8 {
        self.buf[37]
    }
    pub fn protocol(&self) -> u8 {
        self.buf[38]
    }
    pub fn tos(&self) -> u8 {
        self.buf[39]
    }
    pub fn src_as(&self) -> u16 {
        self.u16_at(40)
    }
    pub fn dst_as(&self) -> u16 {
        self.u16_at(42)
    }
    pub fn src_mask(&self) -> u8 {
        self.buf[44]
    }
    pub fn dst_mask(&self) -> u8 {
        self.buf[45]
    }
    pub fn as_bytes(&self) -> &'a [u8; RECORD_LEN] {
        self.buf
    }
}

/// Uptime-relative milliseconds to epoch nanoseconds, given the header's export time and uptime.
#[inline]
pub(crate) fn uptime_to_ns(export_ns: u64, uptime_ms: u32, at_ms: u32) -> u64 {
    let boot = export_ns as i128 - i128::from(uptime_ms) * 1_000_000;
    (boot + i128::from(at_ms) * 1_000_000).max(0) as u64
}

/// Decode a v5 datagram, calling `f` for each record. Returns the header error when the
/// count claims more records than present (those present are still decoded).
pub fn decode<'a>(
    exporter: SocketAddr,
    buf: &'a [u8],
    f: &mut dyn FnMut(&FlowRecord<'a>),
) -> Result<usize, DecodeError> {
    let p = Packet::new_checked(buf)?;
    let export_ns = p.export_time_ns();
    let uptime = p.sys_uptime_ms();
    let rate = p.sampling_interval();
    let mut n = 0;
    for r in p.records() {
        let mut rec = FlowRecord::new(FlowProtocol::NetflowV5, exporter);
        rec.export_time_ns = Some(export_ns);
        rec.sequence = Some(p.flow_sequence());
        rec.domain = Some(u32::from(p.engine_type()) << 8 | u32::from(p.engine_id()));
        rec.src_addr = Some(IpAddr::V4(r.src_addr()));
        rec.dst_addr = Some(IpAddr::V4(r.dst_addr()));
        rec.next_hop = Some(IpAddr::V4(r.next_hop()));
        rec.in_if = Some(u32::from(r.input()));
        rec.out_if = Some(u32::from(r.output()));
        rec.packets = Some(u64::from(r.packets()));
        rec.bytes = Some(u64::from(r.octets()));
        rec.start_ns = Some(uptime_to_ns(export_ns, uptime, r.first_ms()));
        rec.end_ns = Some(uptime_to_ns(export_ns, uptime, r.last_ms()));
        rec.time_basis = Some(TimeBasis::Uptime);
        rec.src_port = Some(r.src_port());
        rec.dst_port = Some(r.dst_port());
        rec.tcp_flags = Some(u16::from(r.tcp_flags()));
        rec.ip_protocol = Some(r.protocol());
        rec.ip_version = Some(4);
        rec.tos = Some(r.tos());
        rec.src_as = Some(u32::from(r.src_as()));
        rec.dst_as = Some(u32::from(r.dst_as()));
        rec.src_mask = Some(r.src_mask());
        rec.dst_mask = Some(r.dst_mask());
        if rate > 0 {
            rec.sampling_rate = Some(u32::from(rate));
            rec.sampling_source = Some(SamplingSource::V5Header);
        }
        rec.raw = Raw::NetflowV5(r.as_bytes());
        f(&rec);
        n += 1;
    }
    p.check_count()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(count: u16, records: usize) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + records * RECORD_LEN];
        b[0..2].copy_from_slice(&5u16.to_be_bytes());
        b[2..4].copy_from_slice(&count.to_be_bytes());
        b[4..8].copy_from_slice(&10_000u32.to_be_bytes()); // uptime 10 s
        b[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
        b[12..16].copy_from_slice(&500u32.to_be_bytes());
        b[16..20].copy_from_slice(&77u32.to_be_bytes());
        b[20] = 1;
        b[21] = 2;
        b[22..24].copy_from_slice(&(0x4000u16 | 100).to_be_bytes());
        for i in 0..records {
            let r = &mut b[HEADER_LEN + i * RECORD_LEN..][..RECORD_LEN];
            r[0..4].copy_from_slice(&[10, 0, 0, 1]);
            r[4..8].copy_from_slice(&[192, 168, 1, i as u8]);
            r[12..14].copy_from_slice(&3u16.to_be_bytes());
            r[16..20].copy_from_slice(&5u32.to_be_bytes());
            r[20..24].copy_from_slice(&1500u32.to_be_bytes());
            r[24..28].copy_from_slice(&9_000u32.to_be_bytes());
            r[28..32].copy_from_slice(&9_500u32.to_be_bytes());
            r[32..34].copy_from_slice(&443u16.to_be_bytes());
            r[34..36].copy_from_slice(&51000u16.to_be_bytes());
            r[37] = 0x1b;
            r[38] = 6;
            r[40..42].copy_from_slice(&65001u16.to_be_bytes());
            r[44] = 24;
        }
        b
    }

    fn collect(buf: &[u8]) -> (Vec<FlowRecord<'_>>, Result<usize, DecodeError>) {
        let mut v = Vec::new();
        let r = decode("127.0.0.1:9995".parse().unwrap(), buf, &mut |r| v.push(*r));
        (v, r)
    }

    #[test]
    fn decodes_records() {
        let b = packet(2, 2);
        let (v, r) = collect(&b);
        assert_eq!(r, Ok(2));
        assert_eq!(v.len(), 2);
        let r0 = &v[0];
        assert_eq!(r0.src_addr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r0.dst_addr, Some("192.168.1.0".parse().unwrap()));
        assert_eq!(r0.bytes, Some(1500));
        assert_eq!(r0.packets, Some(5));
        assert_eq!(r0.src_port, Some(443));
        assert_eq!(r0.tcp_flags, Some(0x1b));
        assert_eq!(r0.src_as, Some(65001));
        assert_eq!(r0.sampling_rate, Some(100));
        assert_eq!(r0.sequence, Some(77));
        // boot = 1_700_000_000.0000005 - 10 s; first = boot + 9 s
        assert_eq!(r0.start_ns, Some(1_699_999_999_000_000_500));
        assert_eq!(r0.end_ns, Some(1_699_999_999_500_000_500));
    }

    #[test]
    fn count_larger_than_datagram_decodes_what_is_there() {
        let b = packet(5, 2);
        let (v, r) = collect(&b);
        assert_eq!(v.len(), 2);
        assert!(matches!(r, Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn short_header_and_wrong_version() {
        assert!(matches!(
            collect(&[0, 5, 0]).1,
            Err(DecodeError::Truncated { .. })
        ));
        let mut b = packet(1, 1);
        b[1] = 7;
        assert_eq!(
            collect(&b).1,
            Err(DecodeError::UnsupportedVersion { version: 7 })
        );
    }
}
