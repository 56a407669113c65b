//! A small classic-pcap writer: each payload wrapped in Ethernet + IPv4/IPv6 + UDP.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;

use super::linktype;
use crate::frame::{try_build_udp_frame, LinkHeader};

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const SNAPLEN: u32 = 262_144;
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Writes a classic pcap file (little-endian, link type Ethernet) of UDP datagrams, for tools
/// and tests. IPv4 headers carry a correct header checksum; UDP checksums are computed for both
/// IPv4 and IPv6.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let mut w = ferroflow_io::pcap::Writer::new(Vec::new())?;
/// w.write_udp(1_000_000_000, "192.0.2.1:2055".parse().unwrap(),
///             "192.0.2.2:2055".parse().unwrap(), b"payload")?;
/// let bytes = w.into_inner();
/// assert_eq!(bytes.len(), 24 + 16 + 14 + 20 + 8 + 7);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    nanos: bool,
    /// Frame under construction, reused for every packet.
    frame: Vec<u8>,
    ip_id: u16,
}

impl Writer<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes a microsecond pcap header to it.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        Writer::new(BufWriter::new(file))
    }
}

impl<W: Write> Writer<W> {
    /// Starts a pcap with microsecond timestamps (the most widely readable form).
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_resolution(out, false)
    }

    /// Starts a pcap with nanosecond timestamps (magic `a1b23c4d`).
    pub fn new_nanos(out: W) -> io::Result<Self> {
        Self::with_resolution(out, true)
    }

    fn with_resolution(mut out: W, nanos: bool) -> io::Result<Self> {
        let magic = if nanos { MAGIC_NANOS } else { MAGIC_MICROS };
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&magic.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        hdr[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&linktype::ETHERNET.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(Writer {
            out,
            nanos,
            frame: Vec::with_capacity(14 + 40 + 8 + 65_535),
            ip_id: 0,
        })
    }

    /// Appends one UDP datagram from `src` to `dst` captured at `ts_ns` (nanoseconds since the
    /// Unix epoch; truncated to microseconds in a microsecond file).
    ///
    /// Fails with `InvalidInput` when `src` and `dst` are of different families, the payload
    /// does not fit one IP packet, or the timestamp is past 2106.
    pub fn write_udp(
        &mut self,
        ts_ns: u64,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_string());
        let secs = u32::try_from(ts_ns / 1_000_000_000)
            .map_err(|_| invalid("timestamp does not fit a pcap record (after 2106)"))?;
        let sub_ns = (ts_ns % 1_000_000_000) as u32;
        let frac = if self.nanos { sub_ns } else { sub_ns / 1000 };
        let link = LinkHeader {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            vlan: None,
            ip_id: self.ip_id,
        };
        try_build_udp_frame(&mut self.frame, &link, src, dst, payload)
            .map_err(|e| invalid(&e.to_string()))?;
        if src.is_ipv4() {
            self.ip_id = self.ip_id.wrapping_add(1);
        }
        let f = &self.frame;
        let len = f.len() as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&frac.to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.frame)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Returns the underlying writer (not flushed: call [`Writer::flush`] first if it buffers).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{internet_checksum, udp_checksum};

    #[test]
    fn ipv4_header_and_udp_checksums_verify() {
        let mut w = Writer::new(Vec::new()).unwrap();
        let src: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let dst: SocketAddr = "192.0.2.2:2055".parse().unwrap();
        w.write_udp(1, src, dst, b"odd-length").unwrap();
        let b = w.into_inner();
        let ip = &b[24 + 16 + 14..];
        assert_eq!(internet_checksum(&ip[..20]), 0, "IPv4 header checksum");
        assert_eq!(&ip[4..6], &[0, 0], "first IPv4 identification");
        let udp = &ip[20..];
        assert_eq!(udp_checksum(src.ip(), dst.ip(), udp), 0, "UDP checksum");
        // the identification counts up per IPv4 packet
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write_udp(1, src, dst, b"a").unwrap();
        w.write_udp(1, src, dst, b"b").unwrap();
        let b = w.into_inner();
        let second = &b[24 + (16 + 14 + 20 + 8 + 1) + 16 + 14..];
        assert_eq!(&second[4..6], &[0, 1]);
    }

    #[test]
    fn ipv6_udp_checksum_verifies_and_mixed_families_fail() {
        let mut w = Writer::new_nanos(Vec::new()).unwrap();
        let src: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::2]:2".parse().unwrap();
        w.write_udp(1, src, dst, b"v6").unwrap();
        let v4: SocketAddr = "192.0.2.2:2".parse().unwrap();
        let err = w.write_udp(1, src, v4, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let big = vec![0u8; 65_535];
        assert!(w.write_udp(1, src, dst, &big).is_err());
        let b = w.into_inner();
        let ip = &b[24 + 16 + 14..];
        let udp = &ip[40..];
        assert_eq!(udp_checksum(src.ip(), dst.ip(), udp), 0);
    }
}
