//! Text of numbers, IPv4 / IPv6 and MAC addresses, hex and escaped strings, written with
//! hand-written formatters into fixed-size chunks or the buffer.

use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr};

/// Append the first `n` bytes of `chunk` (`n <= N`) with one fixed-size copy.
#[inline(always)]
pub(super) fn put_padded<const N: usize>(buf: &mut Vec<u8>, chunk: &[u8; N], n: usize) {
    let end = buf.len() + n;
    buf.extend_from_slice(chunk);
    buf.truncate(end);
}

pub(super) const HEX: &[u8; 16] = b"0123456789abcdef";

/// The two decimal digits of every value below 100.
pub(super) const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// The decimal text of `v` (as `itoa` writes it).
#[inline(always)]
pub(super) fn write_u64(buf: &mut Vec<u8>, v: u64) {
    // inlined everywhere: the values of one-byte fields (`u64::from(u8)`) then take the table
    // path alone, with no call and no test of the digit count
    if v < 256 {
        put_dec3(buf, v as u8);
    } else if v < 100_000_000 {
        // inline: most numbers of a document (ports, counters, ids) have up to eight digits
        put_digits8(buf, v as u32);
    } else {
        write_u64_long(buf, v);
    }
}

/// The decimal text of a byte value from the [`DEC`] table: one four-byte copy.
#[inline(always)]
pub(super) fn put_dec3(buf: &mut Vec<u8>, b: u8) {
    let d = DEC[usize::from(b)];
    put_padded(buf, &d, usize::from(d[3]));
}

/// The decimal text of `0 < v < 100_000_000` (no leading zeros).
#[inline(always)]
pub(super) fn put_digits8(buf: &mut Vec<u8>, v: u32) {
    let d = digits8(v);
    let zeros = d.trailing_zeros() / 8;
    let n = 8 - zeros as usize;
    put_padded(buf, &((d >> (8 * zeros)) | ASCII_ZEROS).to_le_bytes(), n);
}

/// The eight decimal digits of `v < 100_000_000` as the bytes of a little-endian word, the
/// most significant first and each digit as its value (not yet ASCII), computed in a register
/// (digits written one by one to memory and read back as a block stall store forwarding).
#[inline(always)]
pub(super) fn digits8(v: u32) -> u64 {
    let v = u64::from(v);
    // 32-bit lanes: the upper four digits, the lower four
    let x = (v / 10_000) | ((v % 10_000) << 32);
    // 16-bit lanes: x / 100, x % 100 (x * 10486 >> 20 is x / 100 for x < 10_000)
    let h = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = h | ((x - h * 100) << 16);
    // 8-bit lanes: x / 10, x % 10 (x * 103 >> 10 is x / 10 for x < 100)
    let h = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    h | ((x - h * 10) << 8)
}

pub(super) const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// [`write_u64`] of `v >= 100_000_000`.
#[inline(never)]
pub(super) fn write_u64_long(buf: &mut Vec<u8>, v: u64) {
    // the leading digits without their leading zeros (they are > 0), then eight or sixteen
    if v < 10_000_000_000_000_000 {
        put_digits8(buf, (v / 100_000_000) as u32);
    } else {
        put_digits8(buf, (v / 10_000_000_000_000_000) as u32);
        let mid = (v / 100_000_000 % 100_000_000) as u32;
        buf.extend_from_slice(&(digits8(mid) | ASCII_ZEROS).to_le_bytes());
    }
    let low = (v % 100_000_000) as u32;
    buf.extend_from_slice(&(digits8(low) | ASCII_ZEROS).to_le_bytes());
}

/// Decimal text of every byte value: up to three digits, then the digit count.
pub(super) const DEC: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let v = i as u8;
        t[i] = if v >= 100 {
            [b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10, 3]
        } else if v >= 10 {
            [b'0' + v / 10, b'0' + v % 10, 0, 2]
        } else {
            [b'0' + v, 0, 0, 1]
        };
        i += 1;
    }
    t
};

/// `a.b.c.d` at `out[p..]`; returns the position after it. `out` needs 15 bytes from `p`
/// (16 to write the last octet's three digit slots).
#[inline]
pub(super) fn put_ipv4(out: &mut [u8], mut p: usize, o: [u8; 4]) -> usize {
    for (i, &b) in o.iter().enumerate() {
        let d = DEC[usize::from(b)];
        out[p..p + 3].copy_from_slice(&d[..3]);
        p += usize::from(d[3]);
        if i < 3 {
            out[p] = b'.';
            p += 1;
        }
    }
    p
}

/// `"a.b.c.d"`, the quotes included.
#[inline]
pub(super) fn write_ipv4(buf: &mut Vec<u8>, o: [u8; 4]) {
    write_quoted::<20>(buf, |out| put_ipv4(out, 1, o));
}

/// `"`, what `fill` writes from `out[1]` on (it returns the position after it), `"`, written in
/// place: `buf` grows by `N` bytes, `fill` writes into them and `buf` is cut back after the
/// closing quote. (Text built byte by byte in a stack array and then copied out as a block is
/// read back by wide loads that store forwarding cannot serve: a stall on every value.)
#[inline(always)]
pub(super) fn write_quoted<const N: usize>(
    buf: &mut Vec<u8>,
    fill: impl FnOnce(&mut [u8; N]) -> usize,
) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; N]);
    let end = match buf[start..].first_chunk_mut::<N>() {
        Some(out) => {
            out[0] = b'"';
            let p = fill(out);
            out[p] = b'"';
            start + p + 1
        }
        // not reached: the slice is N bytes long
        None => start,
    };
    buf.truncate(end);
}

/// Lower-case hex of a 16-bit group without leading zeros at `out[p..]`.
#[inline]
pub(super) fn put_hex16(out: &mut [u8], p: usize, v: u16) -> usize {
    let n = ((16 - v.leading_zeros() as usize).div_ceil(4)).max(1);
    for i in 0..n {
        out[p + i] = HEX[usize::from((v >> (4 * (n - 1 - i))) & 15)];
    }
    p + n
}

/// Groups `segs` joined by `:` at `out[p..]`.
#[inline]
pub(super) fn put_groups(out: &mut [u8], mut p: usize, segs: &[u16]) -> usize {
    for (i, &s) in segs.iter().enumerate() {
        if i > 0 {
            out[p] = b':';
            p += 1;
        }
        p = put_hex16(out, p, s);
    }
    p
}

/// The text of an IPv6 address as `Ipv6Addr`'s `Display` writes it (RFC 5952: lower case,
/// no leading zeros, the longest run of two or more zero groups, the first of equal runs,
/// shortened to `::`; IPv4-mapped addresses as `::ffff:a.b.c.d`) at `out[p..]`.
/// `out` needs 41 bytes from `p`.
pub(super) fn put_ipv6(out: &mut [u8], p: usize, a: &Ipv6Addr) -> usize {
    if let Some(v4) = a.to_ipv4_mapped() {
        out[p..p + 7].copy_from_slice(b"::ffff:");
        return put_ipv4(out, p + 7, v4.octets());
    }
    let segs = a.segments();
    // longest run of zero groups, the first of equal ones
    let (mut best_start, mut best_len, mut cur_start, mut cur_len) = (0, 0, 0, 0);
    for (i, &s) in segs.iter().enumerate() {
        if s == 0 {
            if cur_len == 0 {
                cur_start = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best_start = cur_start;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    if best_len > 1 {
        let p = put_groups(out, p, &segs[..best_start]);
        out[p..p + 2].copy_from_slice(b"::");
        put_groups(out, p + 2, &segs[best_start + best_len..])
    } else {
        put_groups(out, p, &segs)
    }
}

/// `"<ipv6>"`, the quotes included.
#[inline]
pub(super) fn write_ipv6(buf: &mut Vec<u8>, a: &Ipv6Addr) {
    write_quoted::<48>(buf, |out| put_ipv6(out, 1, a));
}

/// An address as its `Display` writes it, quoted.
#[inline]
pub(super) fn write_ip(buf: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => write_ipv4(buf, a.octets()),
        IpAddr::V6(a) => write_ipv6(buf, &a),
    }
}

pub(super) fn write_mac(buf: &mut Vec<u8>, m: &[u8; 6]) {
    write_quoted::<20>(buf, |out| put_mac(out, m));
}

/// `aa:bb:cc:dd:ee:ff` at `out[1..]`; returns the position after it.
#[inline(always)]
pub(super) fn put_mac(out: &mut [u8; 20], m: &[u8; 6]) -> usize {
    for (i, &b) in m.iter().enumerate() {
        out[1 + 3 * i] = HEX[(b >> 4) as usize];
        out[2 + 3 * i] = HEX[(b & 15) as usize];
        out[3 + 3 * i] = b':';
    }
    18
}

pub(super) fn write_escaped(buf: &mut Vec<u8>, v: &[u8]) {
    buf.push(b'"');
    if v.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        // printable ASCII without quote or backslash: as it is
        buf.extend_from_slice(v);
        buf.push(b'"');
        return;
    }
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '\t' => buf.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(buf, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            buf.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    buf.push(b'"');
}
