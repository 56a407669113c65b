//! Community ID flow hashing, version 1 (<https://github.com/corelight/community-id-spec>),
//! seed 0: `"1:" + base64(sha1(seed, saddr, daddr, proto, 0, sport, dport))` with the
//! endpoints ordered so both directions of a flow get the same id.

use std::net::IpAddr;

/// ICMP type -> the type of its reply, for the "two-way" ICMP messages of the spec.
fn icmp4_peer(t: u8) -> Option<u8> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

fn icmp6_peer(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129,
        129 => 128,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        130 => 131,
        131 => 130,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

/// Write the id into `out`; returns its length (30). Addresses of different families give
/// no id (returns 0).
#[allow(clippy::too_many_arguments)]
pub fn v1(
    src: IpAddr,
    dst: IpAddr,
    sport: Option<u16>,
    dport: Option<u16>,
    proto: u8,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    out: &mut [u8; 33],
) -> usize {
    let (mut sp, mut dp) = (sport.unwrap_or(0), dport.unwrap_or(0));
    let mut one_way = false;
    if proto == 1 || proto == 58 {
        if let (Some(t), Some(c)) = (icmp_type, icmp_code) {
            sp = u16::from(t);
            let peer = if proto == 1 {
                icmp4_peer(t)
            } else {
                icmp6_peer(t)
            };
            match peer {
                Some(p) => dp = u16::from(p),
                None => {
                    dp = u16::from(c);
                    one_way = true;
                }
            }
        }
    }
    // the addresses as big-endian numbers: their order is the bytes' order
    let (a, b, v6) = match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), false)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), true),
        _ => return 0,
    };
    let swap = !one_way && (a > b || (a == b && sp > dp));
    let (a, b, sp, dp) = if swap { (b, a, dp, sp) } else { (a, b, sp, dp) };
    let digest = sha1_block(&hash_block(a, b, v6, proto, sp, dp));
    out[0] = b'1';
    out[1] = b':';
    2 + base64(&digest, &mut out[2..])
}

/// The one SHA-1 block (message and padding) of the hash input: seed 0 (two bytes), the two
/// addresses, the protocol, a zero byte, the two ports; 16 bytes for IPv4, 40 for IPv6. Built
/// as four 16-byte words (byte stores into an array that the hash then reads as 16-byte words
/// would stall store forwarding).
fn hash_block(a: u128, b: u128, v6: bool, proto: u8, sp: u16, dp: u16) -> [u8; 64] {
    // protocol, zero, source port, destination port: the input's last six bytes
    let tail = (u128::from(proto) << 40) | (u128::from(sp) << 16) | u128::from(dp);
    let words: [u128; 4] = if v6 {
        [
            a >> 16,
            (a << 112) | (b >> 16),
            (b << 112) | (tail << 64) | (0x80 << 56),
            40 * 8,
        ]
    } else {
        [(a << 80) | (b << 48) | tail, 0x80 << 120, 0, 16 * 8]
    };
    let mut block = [0u8; 64];
    for (chunk, w) in block.chunks_exact_mut(16).zip(words) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    block
}

/// SHA-1 of one padded block: the `sha1` crate's compression function (the CPU's SHA
/// instructions where it has them) without its streaming buffer.
fn sha1_block(block: &[u8; 64]) -> [u8; 20] {
    let mut state = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    sha1::compress(&mut state, &[(*block).into()]);
    let mut digest = [0u8; 20];
    for (chunk, w) in digest.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    digest
}

fn base64(input: &[u8; 20], out: &mut [u8]) -> usize {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut n = 0;
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out[n] = A[(v >> 18) as usize & 63];
        out[n + 1] = A[(v >> 12) as usize & 63];
        out[n + 2] = if chunk.len() > 1 {
            A[(v >> 6) as usize & 63]
        } else {
            b'='
        };
        out[n + 3] = if chunk.len() > 2 {
            A[v as usize & 63]
        } else {
            b'='
        };
        n += 4;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id of `s` -> `d`, protocol `p`; `(a, b)` are the ports, or for ICMP and ICMPv6 the
    /// type and code.
    fn cid(s: &str, d: &str, p: u8, (a, b): (u16, u16)) -> String {
        let icmp = p == 1 || p == 58;
        let (ports, tc) = if icmp {
            ((None, None), (Some(a as u8), Some(b as u8)))
        } else {
            ((Some(a), Some(b)), (None, None))
        };
        let mut out = [0u8; 33];
        let (src, dst) = (s.parse().unwrap(), d.parse().unwrap());
        let n = v1(src, dst, ports.0, ports.1, p, tc.0, tc.1, &mut out);
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    // Test vectors from the community-id-spec baseline (tcp / udp, seed 0).
    #[test]
    fn spec_vectors() {
        assert_eq!(
            cid("128.232.110.120", "66.35.250.204", 6, (34855, 80)),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            cid("66.35.250.204", "128.232.110.120", 6, (80, 34855)),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
    }

    // Computed by the reference Python implementation (PyPI `communityid` 1.5, corelight):
    // IPv4 and IPv6, both directions, equal addresses, SCTP, ICMP two-way and one-way types.
    /// (source, destination, protocol, ports or ICMP type and code, id)
    type Vector = (&'static str, &'static str, u8, (u16, u16), &'static str);

    const REFERENCE: &[Vector] = &[
        (
            "10.0.0.1",
            "10.0.0.2",
            6,
            (1234, 80),
            "1:LzRJKgjvUJlC/VQLtISlfACcEzA=",
        ),
        (
            "172.16.32.201",
            "172.16.32.100",
            17,
            (46086, 53),
            "1:3NQ+f2IICsvUP3F8oQM9Js9FO6Q=",
        ),
        (
            "2001:db8::1",
            "2001:db8::2",
            6,
            (443, 51000),
            "1:2TiKiiiSIuDma9IxOEOpx4wCXWM=",
        ),
        (
            "fe80::1",
            "fe80::1",
            17,
            (5000, 4000),
            "1:SKiIlqQiIu3hIO6W1nIEGcZpp/I=",
        ),
        (
            "192.0.2.7",
            "192.0.2.3",
            132,
            (38412, 38412),
            "1:wyw7EcpArXO5sZZ411VucLdSBhs=",
        ),
        (
            "192.168.0.89",
            "192.168.0.1",
            1,
            (8, 0),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        ),
        (
            "192.168.0.1",
            "192.168.0.89",
            1,
            (0, 0),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        ),
        (
            "10.0.0.1",
            "10.0.0.2",
            1,
            (3, 1),
            "1:gkoOC4ouXvyYq0Ek/WqwbLoqcxM=",
        ),
        (
            "fe80::200:86ff:fe05:80da",
            "fe80::260:97ff:fe07:69ea",
            58,
            (135, 0),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        ),
        (
            "2001:db8::9",
            "2001:db8::1",
            58,
            (1, 4),
            "1:ASui7IJLN62GLqSkUY/QjGQPoxA=",
        ),
    ];

    /// The hash input as the spec lays it out, byte by byte.
    fn input_bytes(a: &[u8], b: &[u8], proto: u8, sp: u16, dp: u16) -> Vec<u8> {
        let mut v = vec![0, 0];
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        v.extend_from_slice(&[proto, 0]);
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
        v
    }

    proptest::proptest! {
        /// The block built from words hashes to what the streaming SHA-1 gives for the input
        /// written byte by byte, for both address families.
        #[test]
        fn hash_block_matches_streaming_sha1(
            a: u128, b: u128, v6: bool, proto: u8, sp: u16, dp: u16,
        ) {
            use sha1::Digest as _;
            let (a, b) = if v6 { (a, b) } else { (a & 0xffff_ffff, b & 0xffff_ffff) };
            let want: [u8; 20] = if v6 {
                sha1::Sha1::digest(input_bytes(&a.to_be_bytes(), &b.to_be_bytes(), proto, sp, dp)).into()
            } else {
                let (a4, b4) = (a as u32, b as u32);
                sha1::Sha1::digest(input_bytes(&a4.to_be_bytes(), &b4.to_be_bytes(), proto, sp, dp)).into()
            };
            proptest::prop_assert_eq!(sha1_block(&hash_block(a, b, v6, proto, sp, dp)), want);
        }
    }

    #[test]
    fn reference_implementation_vectors() {
        for &(s, d, p, ports, want) in REFERENCE {
            let got = cid(s, d, p, ports);
            assert_eq!(got, want, "{s} -> {d} proto {p}");
        }
    }
}
