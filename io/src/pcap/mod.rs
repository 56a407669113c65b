//! Capture files: read UDP datagrams out of classic pcap and pcapng files, and write small
//! classic pcap files.
//!
//! The reader loads the whole file into memory and yields [`Datagram`]s that borrow from it, in
//! file order. Both pcap byte orders and both timestamp resolutions (micro- and nanosecond magic)
//! are read; pcapng is read block by block (several sections, several interfaces with their own
//! link types, `if_tsresol` and `if_tsoffset`; enhanced, simple and obsolete packet blocks).
//!
//! Link types: Ethernet (1, with any number up to 8 of 802.1Q / 802.1ad / QinQ tags), Linux
//! cooked SLL (113) and SLL2 (276), raw IP (101, 228 = IPv4, 229 = IPv6) and BSD NULL /
//! loopback (0, 108). Above them IPv4 and IPv6 (extension headers are stepped over) and UDP.
//!
//! What is not yielded is counted in [`PcapStats`], each frame in exactly one bucket:
//! - IP fragments are **not reassembled**: an IPv4 UDP packet with the more-fragments flag or a
//!   non-zero fragment offset, or an IPv6 packet with a non-atomic fragment header followed by
//!   UDP, is skipped and counted in `ip_fragments`.
//! - A frame whose capture ends before its headers or before the lengths they declare (snap
//!   length) is skipped and counted in `truncated`; one whose header fields contradict each
//!   other in `malformed`.
//!
//! File-level problems (not a capture file, a file cut inside a record, a corrupt pcapng block)
//! are [`PcapError`]s naming the file; after one, the reader yields nothing more.
//!
//! The parsing never panics, whatever the bytes (a property test feeds it random input).

mod writer;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::frame::capture::{self, Frame};
pub use writer::Writer;

/// Link-layer header types this module reads (defined with the frame parser).
pub use crate::frame::linktype;

/// A UDP datagram found in a capture, borrowing its payload from the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Capture time, nanoseconds since the Unix epoch (0 for pcapng simple packet blocks,
    /// which carry no timestamp).
    pub ts_ns: u64,
    /// IP source address and UDP source port.
    pub src: SocketAddr,
    /// IP destination address and UDP destination port.
    pub dst: SocketAddr,
    /// The UDP payload (bounded by the UDP length; Ethernet padding is not included).
    pub payload: &'a [u8],
}

/// What the reader has seen so far. Every frame lands in exactly one bucket besides `frames`:
/// `frames == udp + non_udp + ip_fragments + truncated + malformed + unsupported_linktype`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcapStats {
    /// Packet records read (classic records; pcapng enhanced, simple and obsolete packet blocks).
    pub frames: u64,
    /// Whole UDP datagrams yielded.
    pub udp: u64,
    /// Frames that are not UDP over IPv4/IPv6 (ARP, TCP, ICMP, ESP, ...).
    pub non_udp: u64,
    /// UDP packets that are IP fragments (IPv4 more-fragments flag or non-zero offset, IPv6
    /// non-atomic fragment header): skipped, not reassembled.
    pub ip_fragments: u64,
    /// Frames cut short by the capture (snap length) before their headers or declared lengths.
    pub truncated: u64,
    /// Frames whose headers contradict each other (IP version, IHL, UDP length < 8, ...).
    pub malformed: u64,
    /// Frames on an interface whose link type this reader does not decode.
    pub unsupported_linktype: u64,
}

/// A capture file that cannot be read (as opposed to a frame that is skipped and counted).
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be read.
    #[error("cannot read capture file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file starts with neither a pcap magic nor a pcapng section header.
    #[error(
        "{} is not a pcap or pcapng file: it starts with {first_bytes} (expected a pcap magic \
         a1b2c3d4 / a1b23c4d in either byte order, or the pcapng section header 0a0d0d0a)",
        .path.display()
    )]
    NotPcap {
        /// The file.
        path: PathBuf,
        /// Its first bytes in hex, or `(empty file)`.
        first_bytes: String,
    },
    /// The file ends inside a header or a packet record.
    #[error(
        "{} is truncated: the {what} at byte {offset} needs {needed} bytes, only {available} remain",
        .path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read ("file header", "record header", "packet data", "block").
        what: &'static str,
        /// File offset where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A structure inside the file is inconsistent (bad pcapng block length, unknown
    /// interface, record longer than any snap length, ...).
    #[error("{} is corrupt at byte {offset}: {reason}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// File offset of the offending record or block.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The container format of an open capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap format.
    Pcap {
        /// Written big-endian.
        big_endian: bool,
        /// Nanosecond timestamps (magic `a1b23c4d`) rather than microseconds.
        nanos: bool,
        /// The file's link type.
        linktype: u32,
    },
    /// pcapng (byte order may change per section; link type per interface).
    PcapNg,
}

const PCAP_MICROS: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
const PCAP_NANOS: [u8; 4] = [0xa1, 0xb2, 0x3c, 0x4d];
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
/// A classic record longer than this (and than the file's snap length) is corruption, as in
/// libpcap.
const MAX_RECORD_BYTES: u32 = 262_144;

/// Reads UDP datagrams out of a pcap or pcapng file held in memory.
///
/// ```no_run
/// # fn main() -> Result<(), ferroflow_io::pcap::PcapError> {
/// use ferroflow_io::pcap::PcapReader;
/// let mut r = PcapReader::open(std::path::Path::new("netflow.pcap"))?;
/// while let Some(d) = r.next_datagram() {
///     let d = d?;
///     println!("{} -> {}: {} bytes", d.src, d.dst, d.payload.len());
/// }
/// println!("{:?}", r.stats());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PcapReader {
    data: Vec<u8>,
    state: State,
}

#[derive(Debug)]
struct State {
    path: PathBuf,
    format: Format,
    /// Byte order of the classic file or of the current pcapng section.
    big_endian: bool,
    /// Offset of the next record or block.
    pos: usize,
    /// Interfaces of the current pcapng section.
    interfaces: Vec<Interface>,
    stats: PcapStats,
    done: bool,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// `if_tsresol`: high bit clear = 10^-n seconds, set = 2^-n seconds.
    tsresol: u8,
    /// `if_tsoffset`, seconds.
    tsoffset: i64,
}

/// One packet record: its time, link type and the byte range of its captured data.
struct Record {
    ts_ns: u64,
    linktype: u32,
    start: usize,
    end: usize,
}

impl PcapReader {
    /// Reads `path` into memory and parses its file header.
    pub fn open(path: &Path) -> Result<PcapReader, PcapError> {
        let data = std::fs::read(path).map_err(|source| PcapError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, data)
    }

    /// Parses a capture already in memory; `name` is used in error messages.
    pub fn from_bytes(name: impl Into<PathBuf>, data: Vec<u8>) -> Result<PcapReader, PcapError> {
        let path = name.into();
        let mut state = State {
            path,
            format: Format::PcapNg,
            big_endian: false,
            pos: 0,
            interfaces: Vec::new(),
            stats: PcapStats::default(),
            done: false,
        };
        let magic = match data.get(..4) {
            Some(m) => [m[0], m[1], m[2], m[3]],
            None => return Err(not_pcap(&state.path, &data)),
        };
        let mut reversed = magic;
        reversed.reverse();
        if u32::from_be_bytes(magic) == PCAPNG_SHB {
            // Sections are parsed as blocks; check the first one now so a bad file fails early.
            state.section_header(&data)?;
        } else {
            let (big_endian, nanos) = match (magic, reversed) {
                (PCAP_MICROS, _) => (true, false),
                (PCAP_NANOS, _) => (true, true),
                (_, PCAP_MICROS) => (false, false),
                (_, PCAP_NANOS) => (false, true),
                _ => return Err(not_pcap(&state.path, &data)),
            };
            state.big_endian = big_endian;
            if data.len() < 24 {
                return Err(state.truncated("file header", 0, 24, data.len()));
            }
            let snaplen = state.u32_at(&data, 16);
            // The upper bits of the link-type field carry FCS information.
            let linktype = state.u32_at(&data, 20) & 0xffff;
            state.format = Format::Pcap {
                big_endian,
                nanos,
                linktype,
            };
            state.interfaces.push(Interface {
                linktype,
                snaplen,
                tsresol: if nanos { 9 } else { 6 },
                tsoffset: 0,
            });
            state.pos = 24;
        }
        Ok(PcapReader { data, state })
    }

    /// The next UDP datagram, in file order; `None` at the end of the file or after an error.
    /// Frames that are not whole UDP datagrams are skipped and counted in [`PcapReader::stats`].
    pub fn next_datagram(&mut self) -> Option<Result<Datagram<'_>, PcapError>> {
        let data: &[u8] = &self.data;
        let state = &mut self.state;
        // Each turn consumes at least 12 bytes of the file, so this ends.
        loop {
            let rec = match state.next_record(data) {
                None => return None,
                Some(Err(e)) => {
                    state.done = true;
                    return Some(Err(e));
                }
                Some(Ok(r)) => r,
            };
            let s = &mut state.stats;
            s.frames += 1;
            match capture::parse(rec.linktype, &data[rec.start..rec.end]) {
                Frame::Udp { src, dst, payload } => {
                    s.udp += 1;
                    return Some(Ok(Datagram {
                        ts_ns: rec.ts_ns,
                        src,
                        dst,
                        payload,
                    }));
                }
                Frame::NonUdp => s.non_udp += 1,
                Frame::Fragment => s.ip_fragments += 1,
                Frame::Truncated => s.truncated += 1,
                Frame::Malformed => s.malformed += 1,
                Frame::UnsupportedLinkType => s.unsupported_linktype += 1,
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PcapStats {
        self.state.stats
    }

    /// The container format (for pcapng, of the file; link types are per interface).
    pub fn format(&self) -> Format {
        self.state.format
    }

    /// The file name given to [`PcapReader::open`] or [`PcapReader::from_bytes`].
    pub fn path(&self) -> &Path {
        &self.state.path
    }
}

#[cold]
fn not_pcap(path: &Path, data: &[u8]) -> PcapError {
    let first_bytes = if data.is_empty() {
        "(empty file)".to_string()
    } else {
        let hex: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let text: String = data
            .iter()
            .take(8)
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        format!("{} (\"{text}\")", hex.join(" "))
    };
    PcapError::NotPcap {
        path: path.to_path_buf(),
        first_bytes,
    }
}

impl State {
    #[cold]
    fn truncated(
        &self,
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    ) -> PcapError {
        PcapError::Truncated {
            path: self.path.clone(),
            what,
            offset: offset as u64,
            needed: needed as u64,
            available: available as u64,
        }
    }

    #[cold]
    fn corrupt(&self, offset: usize, reason: &'static str) -> PcapError {
        PcapError::Corrupt {
            path: self.path.clone(),
            offset: offset as u64,
            reason,
        }
    }

    /// Reads a u32 in the current byte order; `at + 4` must be in bounds (checked by callers,
    /// and 0 is returned rather than panicking if not).
    #[inline]
    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let Some(s) = b.get(at..at.saturating_add(4)) else {
            return 0;
        };
        let a = [s[0], s[1], s[2], s[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    #[inline]
    fn u16_at(&self, b: &[u8], at: usize) -> u16 {
        let Some(s) = b.get(at..at.saturating_add(2)) else {
            return 0;
        };
        if self.big_endian {
            u16::from_be_bytes([s[0], s[1]])
        } else {
            u16::from_le_bytes([s[0], s[1]])
        }
    }

    fn next_record(&mut self, data: &[u8]) -> Option<Result<Record, PcapError>> {
        if self.done || self.pos >= data.len() {
            return None;
        }
        match self.format {
            Format::Pcap { nanos, .. } => Some(self.classic_record(data, nanos)),
            Format::PcapNg => self.pcapng_record(data),
        }
    }

    fn classic_record(&mut self, data: &[u8], nanos: bool) -> Result<Record, PcapError> {
        let pos = self.pos;
        let left = data.len() - pos;
        if left < 16 {
            return Err(self.truncated("record header", pos, 16, left));
        }
        let secs = u64::from(self.u32_at(data, pos));
        let frac = u64::from(self.u32_at(data, pos + 4));
        let caplen = self.u32_at(data, pos + 8);
        let iface = self.interfaces.first().copied();
        let (linktype, snaplen) = iface.map_or((0, 0), |i| (i.linktype, i.snaplen));
        if caplen > MAX_RECORD_BYTES && caplen > snaplen {
            return Err(self.corrupt(pos, "record length exceeds 256 KiB and the snap length"));
        }
        let caplen = caplen as usize;
        if left - 16 < caplen {
            return Err(self.truncated("packet data", pos + 16, caplen, left - 16));
        }
        self.pos = pos + 16 + caplen;
        let frac_ns = if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        Ok(Record {
            ts_ns: secs.saturating_mul(1_000_000_000).saturating_add(frac_ns),
            linktype,
            start: pos + 16,
            end: pos + 16 + caplen,
        })
    }

    /// Parses the section header block at `self.pos`, sets the byte order, forgets the previous
    /// section's interfaces and moves past it.
    fn section_header(&mut self, data: &[u8]) -> Result<(), PcapError> {
        let pos = self.pos;
        let left = data.len() - pos;
        if left < 12 {
            return Err(self.truncated("pcapng section header", pos, 12, left));
        }
        let bom = [data[pos + 8], data[pos + 9], data[pos + 10], data[pos + 11]];
        self.big_endian = match u32::from_be_bytes(bom) {
            PCAPNG_BOM => true,
            b if b == PCAPNG_BOM.swap_bytes() => false,
            _ => return Err(self.corrupt(pos + 8, "bad pcapng byte-order magic")),
        };
        let len = self.block_len(data, pos, 28)?;
        let major = self.u16_at(data, pos + 12);
        if major != 1 {
            return Err(self.corrupt(pos + 12, "unsupported pcapng major version (not 1)"));
        }
        self.interfaces.clear();
        self.pos = pos + len;
        Ok(())
    }

    /// Checks the total length of the block at `pos` (at least `min`, a multiple of 4, inside
    /// the file, repeated at its end) and returns it.
    fn block_len(&self, data: &[u8], pos: usize, min: usize) -> Result<usize, PcapError> {
        let left = data.len() - pos;
        if left < 8 {
            return Err(self.truncated("pcapng block header", pos, 8, left));
        }
        let len = self.u32_at(data, pos + 4) as usize;
        if len < min || len % 4 != 0 {
            return Err(self.corrupt(pos + 4, "bad pcapng block length"));
        }
        if len > left {
            return Err(self.truncated("pcapng block", pos, len, left));
        }
        if self.u32_at(data, pos + len - 4) as usize != len {
            return Err(self.corrupt(pos + len - 4, "pcapng block trailer length mismatch"));
        }
        Ok(len)
    }

    /// Walks blocks until the next packet block; `None` at the end of the file.
    fn pcapng_record(&mut self, data: &[u8]) -> Option<Result<Record, PcapError>> {
        while self.pos < data.len() {
            let pos = self.pos;
            let left = data.len() - pos;
            if left < 4 {
                return Some(Err(self.truncated("pcapng block header", pos, 8, left)));
            }
            // The section header's type reads the same in both byte orders.
            let raw_type = [data[pos], data[pos + 1], data[pos + 2], data[pos + 3]];
            if u32::from_be_bytes(raw_type) == PCAPNG_SHB {
                if let Err(e) = self.section_header(data) {
                    return Some(Err(e));
                }
                continue;
            }
            let block_type = self.u32_at(data, pos);
            let len = match self.block_len(data, pos, 12) {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            let body = &data[pos + 8..pos + len - 4];
            self.pos = pos + len;
            let rec = match block_type {
                1 => {
                    if let Err(e) = self.interface_description(pos, body) {
                        return Some(Err(e));
                    }
                    continue;
                }
                // Enhanced packet block.
                6 => self.packet(pos, body, 20, |s| {
                    let iface = s.u32_at(body, 0);
                    let ts = (u64::from(s.u32_at(body, 4)) << 32) | u64::from(s.u32_at(body, 8));
                    (iface, Some(ts), s.u32_at(body, 12))
                }),
                // Obsolete packet block.
                2 => self.packet(pos, body, 20, |s| {
                    let iface = u32::from(s.u16_at(body, 0));
                    let ts = (u64::from(s.u32_at(body, 4)) << 32) | u64::from(s.u32_at(body, 8));
                    (iface, Some(ts), s.u32_at(body, 12))
                }),
                // Simple packet block: interface 0, no timestamp, captured length implied.
                3 => self.packet(pos, body, 4, |s| {
                    let orig = s.u32_at(body, 0);
                    let snap = s.interfaces.first().map_or(0, |i| i.snaplen);
                    let room = (body.len() - 4) as u32;
                    let cap = if snap == 0 { orig } else { orig.min(snap) };
                    (0, None, cap.min(room))
                }),
                // Name resolution, statistics, custom, decryption secrets, ...: not packets.
                _ => continue,
            };
            return Some(rec);
        }
        None
    }

    /// Builds the record for a packet block whose fixed fields take `fixed` bytes of `body`;
    /// `fields` reads (interface id, timestamp, captured length) from them.
    fn packet(
        &self,
        pos: usize,
        body: &[u8],
        fixed: usize,
        fields: impl FnOnce(&Self) -> (u32, Option<u64>, u32),
    ) -> Result<Record, PcapError> {
        if body.len() < fixed {
            return Err(self.corrupt(pos, "pcapng packet block too short for its fields"));
        }
        let (iface, ts, caplen) = fields(self);
        let Some(iface) = self.interfaces.get(iface as usize).copied() else {
            return Err(self.corrupt(pos, "packet block names an undeclared interface"));
        };
        let caplen = caplen as usize;
        if caplen > body.len() - fixed {
            return Err(self.corrupt(pos, "packet captured length exceeds its block"));
        }
        let start = pos + 8 + fixed;
        Ok(Record {
            ts_ns: ts.map_or(0, |t| iface.ts_ns(t)),
            linktype: iface.linktype,
            start,
            end: start + caplen,
        })
    }

    fn interface_description(&mut self, pos: usize, body: &[u8]) -> Result<(), PcapError> {
        if body.len() < 8 {
            return Err(self.corrupt(pos, "pcapng interface description block too short"));
        }
        let mut iface = Interface {
            linktype: u32::from(self.u16_at(body, 0)),
            snaplen: self.u32_at(body, 4),
            tsresol: 6,
            tsoffset: 0,
        };
        // Options: code, length, value padded to 4 bytes; stop quietly at anything odd.
        let mut off = 8;
        while off + 4 <= body.len() {
            let code = self.u16_at(body, off);
            let len = usize::from(self.u16_at(body, off + 2));
            let value = match body.get(off + 4..off + 4 + len) {
                Some(v) => v,
                None => break,
            };
            match (code, len) {
                (0, _) => break,
                (9, 1) => iface.tsresol = value[0],
                (14, 8) => {
                    let a: [u8; 8] = [
                        value[0], value[1], value[2], value[3], value[4], value[5], value[6],
                        value[7],
                    ];
                    iface.tsoffset = if self.big_endian {
                        i64::from_be_bytes(a)
                    } else {
                        i64::from_le_bytes(a)
                    };
                }
                _ => {}
            }
            off += 4 + len.div_ceil(4) * 4;
        }
        self.interfaces.push(iface);
        Ok(())
    }
}

impl Interface {
    /// Converts a timestamp in this interface's units to nanoseconds since the epoch,
    /// saturating at the ends of `u64`.
    fn ts_ns(&self, ts: u64) -> u64 {
        let ts = u128::from(ts);
        let exp = u32::from(self.tsresol & 0x7f);
        let ns: u128 = if self.tsresol & 0x80 != 0 {
            // 2^-exp seconds per unit; exp <= 127 and ts * 1e9 < 2^94, so no overflow.
            (ts * 1_000_000_000) >> exp
        } else if exp <= 9 {
            ts * 10u128.pow(9 - exp)
        } else {
            match 10u128.checked_pow(exp - 9) {
                Some(div) => ts / div,
                None => 0,
            }
        };
        let offset = i128::from(self.tsoffset) * 1_000_000_000;
        (ns as i128 + offset).clamp(0, i128::from(u64::MAX)) as u64
    }
}

#[cfg(test)]
mod tests;
