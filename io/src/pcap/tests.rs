//! Reader tests on captures built in code: classic pcap in both byte orders and resolutions,
//! pcapng (both byte orders, several interfaces, `if_tsresol`, `if_tsoffset`, EPB / SPB / PB),
//! every supported link type, damaged files, and random bytes.

use super::*;
use proptest::prelude::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An Ethernet + IP + UDP frame made by [`Writer`].
fn eth_frame(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.write_udp(0, sa(src), sa(dst), payload).unwrap();
    w.into_inner()[24 + 16..].to_vec()
}

/// The IP packet inside [`eth_frame`].
fn ip_packet(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    eth_frame(src, dst, payload)[14..].to_vec()
}

fn put32(out: &mut Vec<u8>, be: bool, v: u32) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put16(out: &mut Vec<u8>, be: bool, v: u16) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// A classic pcap; timestamps are given as (seconds, fraction in the file's unit).
fn classic(be: bool, nanos: bool, linktype: u32, frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, be, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    put16(&mut out, be, 2);
    put16(&mut out, be, 4);
    put32(&mut out, be, 0);
    put32(&mut out, be, 0);
    put32(&mut out, be, 65_535);
    put32(&mut out, be, linktype);
    for (secs, frac, data) in frames {
        put32(&mut out, be, *secs);
        put32(&mut out, be, *frac);
        put32(&mut out, be, data.len() as u32);
        put32(&mut out, be, data.len() as u32);
        out.extend_from_slice(data);
    }
    out
}

/// A pcapng block: type, length, body padded to 4, length.
fn block(out: &mut Vec<u8>, be: bool, kind: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    put32(out, be, kind);
    put32(out, be, len);
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    put32(out, be, len);
}

fn shb(out: &mut Vec<u8>, be: bool) {
    let mut body = Vec::new();
    put32(&mut body, be, 0x1a2b_3c4d);
    put16(&mut body, be, 1);
    put16(&mut body, be, 0);
    body.extend_from_slice(&[0xff; 8]); // section length: unknown
    block(out, be, 0x0a0d_0d0a, &body);
}

fn idb(out: &mut Vec<u8>, be: bool, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
    let mut body = Vec::new();
    put16(&mut body, be, linktype);
    put16(&mut body, be, 0);
    put32(&mut body, be, 0);
    // An option we do not know, with padding, before the ones we do.
    put16(&mut body, be, 2); // if_name
    put16(&mut body, be, 3);
    body.extend_from_slice(b"et0\0");
    if let Some(r) = tsresol {
        put16(&mut body, be, 9);
        put16(&mut body, be, 1);
        body.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        put16(&mut body, be, 14);
        put16(&mut body, be, 8);
        body.extend_from_slice(&if be { o.to_be_bytes() } else { o.to_le_bytes() });
    }
    put32(&mut body, be, 0); // opt_endofopt
    block(out, be, 1, &body);
}

fn epb(out: &mut Vec<u8>, be: bool, iface: u32, ts: u64, data: &[u8]) {
    let mut body = Vec::new();
    put32(&mut body, be, iface);
    put32(&mut body, be, (ts >> 32) as u32);
    put32(&mut body, be, ts as u32);
    put32(&mut body, be, data.len() as u32);
    put32(&mut body, be, data.len() as u32);
    body.extend_from_slice(data);
    body.resize(body.len().div_ceil(4) * 4, 0);
    block(out, be, 6, &body);
}

fn spb(out: &mut Vec<u8>, be: bool, data: &[u8]) {
    let mut body = Vec::new();
    put32(&mut body, be, data.len() as u32);
    body.extend_from_slice(data);
    block(out, be, 3, &body);
}

/// Drains a reader: (ts, src, dst, payload) of every datagram, the error if any, the stats.
type Drained = (
    Vec<(u64, SocketAddr, SocketAddr, Vec<u8>)>,
    Option<PcapError>,
    PcapStats,
);

fn drain(mut r: PcapReader) -> Drained {
    let mut out = Vec::new();
    let mut err = None;
    for _ in 0..1_000_000 {
        match r.next_datagram() {
            None => break,
            Some(Ok(d)) => out.push((d.ts_ns, d.src, d.dst, d.payload.to_vec())),
            Some(Err(e)) => {
                err = Some(e);
                assert!(r.next_datagram().is_none(), "nothing after an error");
                break;
            }
        }
    }
    (out, err, r.stats())
}

fn check_invariant(s: &PcapStats) {
    assert_eq!(
        s.frames,
        s.udp + s.non_udp + s.ip_fragments + s.truncated + s.malformed + s.unsupported_linktype,
        "{s:?}"
    );
}

#[test]
fn classic_all_byte_orders_and_resolutions() {
    let f1 = eth_frame("192.0.2.1:2055", "192.0.2.2:9995", b"one");
    let f2 = eth_frame("[2001:db8::1]:6343", "[2001:db8::2]:6343", b"two");
    for be in [false, true] {
        for nanos in [false, true] {
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let bytes = classic(be, nanos, 1, &[(10, frac, &f1), (11, 0, &f2)]);
            let r = PcapReader::from_bytes("x.pcap", bytes).unwrap();
            assert_eq!(
                r.format(),
                Format::Pcap {
                    big_endian: be,
                    nanos,
                    linktype: 1
                }
            );
            let (dgs, err, stats) = drain(r);
            assert!(err.is_none());
            let want_ns = if nanos {
                10_123_456_789
            } else {
                10_123_456_000
            };
            assert_eq!(
                dgs,
                vec![
                    (
                        want_ns,
                        sa("192.0.2.1:2055"),
                        sa("192.0.2.2:9995"),
                        b"one".to_vec()
                    ),
                    (
                        11_000_000_000,
                        sa("[2001:db8::1]:6343"),
                        sa("[2001:db8::2]:6343"),
                        b"two".to_vec()
                    ),
                ]
            );
            assert_eq!(stats.frames, 2);
            assert_eq!(stats.udp, 2);
        }
    }
}

#[test]
fn classic_link_types() {
    let ip4 = ip_packet("198.51.100.1:1000", "198.51.100.2:2000", b"payload4");
    let ip6 = ip_packet("[fe80::1]:1000", "[fe80::2]:2000", b"payload6");
    let with_head = |head: &[u8], ip: &[u8]| [head, ip].concat();
    let sll = |proto: [u8; 2]| {
        let mut h = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        h.extend_from_slice(&proto);
        h
    };
    let sll2 = |proto: [u8; 2]| {
        let mut h = proto.to_vec();
        h.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 6, 2, 0, 0, 0, 0, 1, 0]);
        h
    };
    let cases: Vec<(u32, Vec<u8>, Vec<u8>)> = vec![
        (linktype::RAW, ip4.clone(), ip6.clone()),
        (linktype::IPV4, ip4.clone(), ip6.clone()),
        (linktype::IPV6, ip4.clone(), ip6.clone()),
        (
            linktype::LINUX_SLL,
            with_head(&sll([8, 0]), &ip4),
            with_head(&sll([0x86, 0xdd]), &ip6),
        ),
        (
            linktype::LINUX_SLL2,
            with_head(&sll2([8, 0]), &ip4),
            with_head(&sll2([0x86, 0xdd]), &ip6),
        ),
        (
            linktype::NULL,
            with_head(&[2, 0, 0, 0], &ip4),
            with_head(&[30, 0, 0, 0], &ip6),
        ),
        (
            linktype::LOOP,
            with_head(&[0, 0, 0, 2], &ip4),
            with_head(&[0, 0, 0, 24], &ip6),
        ),
    ];
    for (lt, a, b) in cases {
        let bytes = classic(false, false, lt, &[(1, 0, &a), (2, 0, &b)]);
        let (dgs, err, stats) = drain(PcapReader::from_bytes("lt.pcap", bytes).unwrap());
        assert!(err.is_none(), "linktype {lt}");
        assert_eq!(stats.frames, 2, "linktype {lt}");
        check_invariant(&stats);
        let payloads: Vec<&[u8]> = dgs.iter().map(|d| &d.3[..]).collect();
        // Raw IPv4 / IPv6 link types take only their own version.
        let want: Vec<&[u8]> = match lt {
            linktype::IPV4 => vec![b"payload4"],
            linktype::IPV6 => vec![b"payload6"],
            _ => vec![b"payload4", b"payload6"],
        };
        assert_eq!(payloads, want, "linktype {lt}");
        assert_eq!(stats.malformed, 2 - want.len() as u64, "linktype {lt}");
        if let Some(d) = dgs.iter().find(|d| d.3 == b"payload6") {
            assert_eq!((d.1, d.2), (sa("[fe80::1]:1000"), sa("[fe80::2]:2000")));
        }
    }
    // Link-type field with FCS bits set: still Ethernet.
    let f = eth_frame("192.0.2.1:1", "192.0.2.2:2", b"fcs");
    let bytes = classic(false, false, 0x1000_0000 | 1, &[(1, 0, &f)]);
    assert_eq!(
        drain(PcapReader::from_bytes("fcs.pcap", bytes).unwrap())
            .2
            .udp,
        1
    );
    // An unsupported link type is counted per frame, not an error.
    let bytes = classic(false, false, 105, &[(1, 0, &f), (1, 0, &f)]);
    let (dgs, err, stats) = drain(PcapReader::from_bytes("wifi.pcap", bytes).unwrap());
    assert!(dgs.is_empty() && err.is_none());
    assert_eq!(stats.unsupported_linktype, 2);
}

#[test]
fn vlan_fragments_and_non_udp_are_counted() {
    let plain = eth_frame("192.0.2.1:1", "192.0.2.2:2", b"q");
    let tag = |tpid: u16, f: &[u8]| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&tpid.to_be_bytes());
        t.extend_from_slice(&[0, 42]);
        t.extend_from_slice(&f[12..]);
        t
    };
    let dot1q = tag(0x8100, &plain);
    let qinq = tag(0x88a8, &dot1q);
    let mut frag = plain.clone();
    frag[14 + 6] |= 0x20; // more fragments
    let mut tcp = plain.clone();
    tcp[14 + 9] = 6;
    let arp = [&plain[..12], &[0x08, 0x06], &[0u8; 28][..]].concat();
    let short = plain[..30].to_vec();
    let bytes = classic(
        false,
        false,
        1,
        &[
            (1, 0, &dot1q),
            (1, 0, &qinq),
            (1, 0, &frag),
            (1, 0, &tcp),
            (1, 0, &arp),
            (1, 0, &short),
        ],
    );
    let (dgs, err, stats) = drain(PcapReader::from_bytes("mix.pcap", bytes).unwrap());
    assert!(err.is_none());
    assert_eq!(dgs.len(), 2);
    assert!(dgs.iter().all(|d| d.3 == b"q"));
    assert_eq!(
        stats,
        PcapStats {
            frames: 6,
            udp: 2,
            non_udp: 2,
            ip_fragments: 1,
            truncated: 1,
            malformed: 0,
            unsupported_linktype: 0
        }
    );
}

#[test]
fn pcapng_both_byte_orders_interfaces_and_resolutions() {
    let e = eth_frame("192.0.2.10:4739", "192.0.2.20:4739", b"ipfix");
    let raw6 = ip_packet("[2001:db8::a]:2055", "[2001:db8::b]:2055", b"nf9");
    let sll2 = [
        &[0x08, 0x00][..],
        &[0u8; 18],
        &ip_packet("10.1.1.1:6343", "10.1.1.2:6343", b"sflow"),
    ]
    .concat();
    for be in [false, true] {
        let mut f = Vec::new();
        shb(&mut f, be);
        idb(&mut f, be, 1, None, None); // 0: Ethernet, microseconds
        idb(&mut f, be, 101, Some(9), Some(100)); // 1: raw, ns, +100 s
        idb(&mut f, be, 276, Some(0x80 | 10), None); // 2: SLL2, 2^-10 s
        block(&mut f, be, 4, &[0u8; 8]); // name resolution block: skipped
        epb(&mut f, be, 0, 1_700_000_000_123_456, &e);
        epb(&mut f, be, 1, 5_000_000_001, &raw6);
        epb(&mut f, be, 2, 3 * 1024 + 512, &sll2);
        spb(&mut f, be, &e);
        // A second section: interfaces start over.
        shb(&mut f, be);
        idb(&mut f, be, 229, Some(3), None); // raw IPv6, milliseconds
        epb(&mut f, be, 0, 42, &raw6);
        let r = PcapReader::from_bytes("x.pcapng", f).unwrap();
        assert_eq!(r.format(), Format::PcapNg);
        let (dgs, err, stats) = drain(r);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(stats.frames, 5);
        assert_eq!(stats.udp, 5);
        let got: Vec<(u64, &[u8])> = dgs.iter().map(|d| (d.0, &d.3[..])).collect();
        assert_eq!(
            got,
            vec![
                (1_700_000_000_123_456_000, &b"ipfix"[..]),
                (105_000_000_001, b"nf9"),
                (3_500_000_000, b"sflow"),
                (0, b"ipfix"),
                (42_000_000, b"nf9"),
            ]
        );
        assert_eq!(dgs[1].1, sa("[2001:db8::a]:2055"));
        assert_eq!(dgs[2].2, sa("10.1.1.2:6343"));
    }
}

#[test]
fn pcapng_fixture_agrees_with_pcap_parser() {
    // The hand-built fixture is valid pcapng by an independent parser's account.
    use pcap_parser::traits::PcapReaderIterator;
    use pcap_parser::{PcapBlockOwned, PcapNGReader};
    let e = eth_frame("192.0.2.10:4739", "192.0.2.20:4739", b"ipfix");
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, 1, Some(9), None);
    epb(&mut f, false, 0, 7, &e);
    spb(&mut f, false, &e);
    let mut rd = PcapNGReader::new(65536, &f[..]).unwrap();
    let mut packets = 0;
    for _ in 0..100 {
        match rd.next() {
            Ok((n, b)) => {
                match b {
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(p)) => {
                        assert_eq!(p.caplen as usize, e.len());
                        assert_eq!(&p.data[..e.len()], &e[..]);
                        packets += 1;
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::SimplePacket(p)) => {
                        assert_eq!(&p.data[..e.len()], &e[..]);
                        packets += 1;
                    }
                    _ => {}
                }
                rd.consume(n);
            }
            Err(pcap_parser::PcapError::Eof) => break,
            Err(pcap_parser::PcapError::Incomplete(_)) => rd.refill().unwrap(),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(packets, 2);
    assert_eq!(drain(PcapReader::from_bytes("x", f).unwrap()).2.udp, 2);
}

#[test]
fn not_a_capture_names_file_and_bytes() {
    let e = PcapReader::from_bytes("flows.json", b"{\"a\":1}\n".to_vec()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PcapError::NotPcap { .. }));
    assert!(msg.contains("flows.json"), "{msg}");
    assert!(msg.contains("7b 22 61 22"), "{msg}");
    let e = PcapReader::from_bytes("empty.pcap", Vec::new()).unwrap_err();
    assert!(e.to_string().contains("(empty file)"), "{e}");
    let e = PcapReader::open(Path::new("/nonexistent/ferroflow.pcap")).unwrap_err();
    assert!(matches!(e, PcapError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/ferroflow.pcap"), "{e}");
}

#[test]
fn truncated_files_yield_what_is_whole_then_an_error() {
    let f = eth_frame("192.0.2.1:1", "192.0.2.2:2", b"abc");
    let whole = classic(false, false, 1, &[(1, 0, &f), (2, 0, &f)]);
    // Cut inside the second record's data, then inside its header, then in the file header.
    let (dgs, err, _) =
        drain(PcapReader::from_bytes("cut.pcap", whole[..whole.len() - 3].to_vec()).unwrap());
    assert_eq!(dgs.len(), 1);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            PcapError::Truncated {
                what: "packet data",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cut.pcap"));
    let cut = 24 + 16 + f.len() + 7;
    let (dgs, err, _) = drain(PcapReader::from_bytes("cut.pcap", whole[..cut].to_vec()).unwrap());
    assert_eq!(dgs.len(), 1);
    assert!(matches!(
        err,
        Some(PcapError::Truncated {
            what: "record header",
            ..
        })
    ));
    let e = PcapReader::from_bytes("cut.pcap", whole[..10].to_vec()).unwrap_err();
    assert!(
        matches!(
            e,
            PcapError::Truncated {
                what: "file header",
                ..
            }
        ),
        "{e}"
    );
    // pcapng cut inside a block.
    let mut ng = Vec::new();
    shb(&mut ng, false);
    idb(&mut ng, false, 1, None, None);
    epb(&mut ng, false, 0, 1, &f);
    epb(&mut ng, false, 0, 2, &f);
    let (dgs, err, _) =
        drain(PcapReader::from_bytes("cut.pcapng", ng[..ng.len() - 1].to_vec()).unwrap());
    assert_eq!(dgs.len(), 1);
    assert!(matches!(err, Some(PcapError::Truncated { .. })), "{err:?}");
}

#[test]
fn corrupt_pcapng_blocks() {
    let f = eth_frame("192.0.2.1:1", "192.0.2.2:2", b"abc");
    let mut ng = Vec::new();
    shb(&mut ng, false);
    epb(&mut ng, false, 0, 1, &f); // no interface declared
    let (_, err, _) = drain(PcapReader::from_bytes("noif.pcapng", ng).unwrap());
    let err = err.unwrap();
    assert!(err.to_string().contains("undeclared interface"), "{err}");
    let mut ng = Vec::new();
    shb(&mut ng, false);
    ng.extend_from_slice(&[1, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0, 0]);
    let (_, err, _) = drain(PcapReader::from_bytes("len.pcapng", ng).unwrap());
    assert!(matches!(err, Some(PcapError::Corrupt { .. })), "{err:?}");
    let mut ng = Vec::new();
    shb(&mut ng, false);
    ng[8] = 0x11; // byte-order magic
    let e = PcapReader::from_bytes("bom.pcapng", ng).unwrap_err();
    assert!(e.to_string().contains("byte-order magic"), "{e}");
}

#[test]
fn writer_round_trip() {
    let mut w = Writer::new_nanos(Vec::new()).unwrap();
    let mut want = Vec::new();
    for i in 0..50u16 {
        let (src, dst) = if i % 2 == 0 {
            (sa("192.0.2.1:40000"), sa("192.0.2.2:2055"))
        } else {
            (sa("[2001:db8::1]:40000"), sa("[2001:db8::2]:4739"))
        };
        let payload = vec![i as u8; usize::from(i) * 30];
        let ts = 1_700_000_000_000_000_000 + u64::from(i) * 1_001;
        w.write_udp(ts, src, dst, &payload).unwrap();
        want.push((ts, src, dst, payload));
    }
    let bytes = w.into_inner();
    let (dgs, err, stats) = drain(PcapReader::from_bytes("w.pcap", bytes).unwrap());
    assert!(err.is_none());
    assert_eq!(stats.udp, 50);
    assert_eq!(dgs, want);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = PcapReader::from_bytes("random", data) {
            check_invariant(&drain(r).2);
        }
    }

    #[test]
    fn random_frames_under_a_valid_header_never_panic(
        lt in prop::sample::select(vec![0u32, 1, 101, 108, 113, 228, 229, 276, 147]),
        be in any::<bool>(),
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let refs: Vec<(u32, u32, &[u8])> = frames.iter().map(|f| (1, 2, &f[..])).collect();
        let mut bytes = classic(be, false, lt, &refs);
        bytes.extend_from_slice(&tail);
        let (_, _, stats) = drain(PcapReader::from_bytes("r.pcap", bytes).unwrap());
        prop_assert!(stats.frames >= frames.len() as u64);
        check_invariant(&stats);
    }

    #[test]
    fn mutated_captures_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
        ng in any::<bool>(),
    ) {
        let a = eth_frame("192.0.2.1:1", "192.0.2.2:2", b"hello");
        let b = ip_packet("[2001:db8::1]:1", "[2001:db8::2]:2", b"world");
        let mut bytes = if ng {
            let mut f = Vec::new();
            shb(&mut f, false);
            idb(&mut f, false, 1, Some(9), Some(-5));
            idb(&mut f, false, 101, Some(0x8f), None);
            epb(&mut f, false, 0, 99, &a);
            epb(&mut f, false, 1, 99, &b);
            spb(&mut f, false, &a);
            f
        } else {
            classic(true, true, 1, &[(1, 2, &a), (3, 4, &a)])
        };
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(r) = PcapReader::from_bytes("m", bytes) {
            check_invariant(&drain(r).2);
        }
    }
}
