//! Frames built for test and benchmark senders and for the pcap writer: Ethernet, an optional
//! 802.1Q tag, IPv4 or IPv6, UDP, with correct checksums.

use std::net::{IpAddr, SocketAddr};

use super::checksum::{internet_checksum, udp_checksum};
use super::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, IPPROTO_UDP};

/// Why a frame could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The source and destination addresses are of different families.
    #[error("source and destination address families differ")]
    MixedFamilies,
    /// The datagram does not fit the IP (or UDP) length field.
    #[error("payload too large for one {0} packet")]
    TooLarge(&'static str),
}

/// The link-layer and IP header fields of a built frame that are not addresses or ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkHeader {
    /// Ethernet source address.
    pub src_mac: [u8; 6],
    /// Ethernet destination address.
    pub dst_mac: [u8; 6],
    /// An 802.1Q tag with this VLAN id (its low 12 bits).
    pub vlan: Option<u16>,
    /// IPv4 identification (IPv6 has none).
    pub ip_id: u16,
}

/// Writes into `out` (cleared first) an Ethernet frame carrying `payload` from `src` to `dst`
/// in UDP over IPv4 or IPv6 (both addresses must be of the same family), with an optional
/// 802.1Q tag, a correct IPv4 header checksum and a correct UDP checksum; DF set, TTL / hop
/// limit 64. On an error `out` is left cleared or partly written.
pub fn try_build_udp_frame(
    out: &mut Vec<u8>,
    link: &LinkHeader,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Result<(), BuildError> {
    out.clear();
    out.extend_from_slice(&link.dst_mac);
    out.extend_from_slice(&link.src_mac);
    if let Some(id) = link.vlan {
        out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        out.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    }
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total =
                u16::try_from(20 + 8 + payload.len()).map_err(|_| BuildError::TooLarge("IPv4"))?;
            out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[4..6].copy_from_slice(&link.ip_id.to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = 64;
            ip[9] = IPPROTO_UDP;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = internet_checksum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen =
                u16::try_from(8 + payload.len()).map_err(|_| BuildError::TooLarge("IPv6"))?;
            out.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&plen.to_be_bytes());
            ip[6] = IPPROTO_UDP;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            out.extend_from_slice(&ip);
        }
        _ => return Err(BuildError::MixedFamilies),
    }
    // fits: checked against the IP length field above
    let udp_len = (8 + payload.len()) as u16;
    let l4 = out.len();
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let mut c = udp_checksum(src.ip(), dst.ip(), &out[l4..]);
    if c == 0 {
        c = 0xffff; // 0 means "no checksum" on the wire
    }
    out[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// [`try_build_udp_frame`] with IPv4 identification 0, for test and benchmark senders.
///
/// # Panics
/// If the families differ or the datagram does not fit the IP length field.
pub fn build_udp_frame(
    out: &mut Vec<u8>,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<u16>,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) {
    let link = LinkHeader {
        src_mac,
        dst_mac,
        vlan,
        ip_id: 0,
    };
    if let Err(e) = try_build_udp_frame(out, &link, src, dst, payload) {
        panic!("build_udp_frame: {src} -> {dst}: {e}");
    }
}
