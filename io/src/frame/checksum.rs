//! The Internet checksum (RFC 1071) of IPv4 headers and UDP datagrams.

use std::net::{IpAddr, Ipv6Addr};

use super::IPPROTO_UDP;

/// Ones'-complement sum of `data` (as big-endian 16-bit words, an odd last byte padded with
/// zero) added to `acc`, not folded.
#[inline]
pub(crate) fn sum16(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // add the four 16-bit words of v, carrying in a wide accumulator
        acc += (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff);
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a ones'-complement sum to 16 bits.
pub(crate) fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn pseudo_header_sum(src: IpAddr, dst: IpAddr, udp_len: usize) -> u64 {
    let mut acc = u64::from(IPPROTO_UDP) + udp_len as u64;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(acc, &s.octets());
            acc = sum16(acc, &d.octets());
        }
        _ => {
            acc = sum16(acc, &ip6(src).octets());
            acc = sum16(acc, &ip6(dst).octets());
        }
    }
    acc
}

fn ip6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped(),
        IpAddr::V6(v) => v,
    }
}

/// The ones'-complement of the checksum over the pseudo-header and `segment` (UDP header with
/// its checksum field as found, and payload): 0 when the checksum in `segment` is right.
pub fn udp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    !fold(sum16(pseudo_header_sum(src, dst, segment.len()), segment))
}

/// The Internet checksum of `bytes` (an IPv4 header, an ICMP message), with the checksum
/// field as found: 0 when that field is right; over bytes whose checksum field is 0, the value
/// to put there.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    !fold(sum16(0, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_and_odd_lengths() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2 (folded)
        assert_eq!(
            fold(sum16(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])),
            0xddf2
        );
        // the wide path (8 bytes at a time) and the word path agree, odd byte padded
        let data: Vec<u8> = (0..=255u8).chain(0..13).collect();
        let by_words = data
            .chunks(2)
            .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum::<u64>();
        assert_eq!(fold(sum16(0, &data)), fold(by_words));
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        // a header with its checksum field zeroed, then filled with the computed value
        let mut h = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 0x01, 0xc0, 0xa8, 0,
            0xc7,
        ];
        let c = internet_checksum(&h);
        assert_eq!(c, 0xb861); // the well-known example header's checksum
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet_checksum(&h), 0);
    }
}
