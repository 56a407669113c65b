use super::*;
use crate::frame::build_udp_frame;

const PKT: u64 = 0x1000_0000;
const CTX: u64 = 0x2000_0000;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Redirect { queue: u64 },
}

/// Runs the generated program on `pkt` the way the kernel would (the subset of eBPF it
/// emits), with ctx->data / data_end as pointers and bpf_redirect_map recorded. Out-of-bounds
/// packet reads panic: the verifier would have refused them, so they must never happen.
fn run(prog: &[u64], pkt: &[u8], queue: u32) -> Verdict {
    let mut r = [0u64; 11];
    r[1] = CTX;
    let mut pc = 0usize;
    let mut redirected = None;
    let load = |addr: u64, n: usize| -> u64 {
        if (CTX..CTX + 24).contains(&addr) {
            return match addr - CTX {
                0 => PKT,
                4 => PKT + pkt.len() as u64,
                16 => u64::from(queue),
                o => panic!("ctx read at {o}"),
            };
        }
        let off = (addr - PKT) as usize;
        let b = pkt
            .get(off..off + n)
            .unwrap_or_else(|| panic!("packet read past the end at {off}+{n}"));
        b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x))
    };
    for _ in 0..10_000 {
        let insn = prog[pc];
        let code = insn as u8;
        let dst = ((insn >> 8) & 0xf) as usize;
        let src = ((insn >> 12) & 0xf) as usize;
        let off = (insn >> 16) as u16 as i16;
        let imm = (insn >> 32) as u32 as i32;
        let immx = imm as i64 as u64;
        pc += 1;
        let jump = |pc: &mut usize, cond: bool| {
            if cond {
                *pc = (*pc as i64 + i64::from(off)) as usize;
            }
        };
        match code {
            LDX_W => r[dst] = load(r[src].wrapping_add(off as i64 as u64), 4),
            LDX_H => r[dst] = load(r[src].wrapping_add(off as i64 as u64), 2),
            LDX_B => r[dst] = load(r[src].wrapping_add(off as i64 as u64), 1),
            MOV64_X => r[dst] = r[src],
            MOV64_K => r[dst] = immx,
            ADD64_K => r[dst] = r[dst].wrapping_add(immx),
            ADD64_X => r[dst] = r[dst].wrapping_add(r[src]),
            AND64_K => r[dst] &= immx,
            LSH64_K => r[dst] <<= imm,
            JA => jump(&mut pc, true),
            JEQ_K => jump(&mut pc, r[dst] == immx),
            JNE_K => jump(&mut pc, r[dst] != immx),
            JGT_X => jump(&mut pc, r[dst] > r[src]),
            JSET_K => jump(&mut pc, r[dst] & immx != 0),
            JNE32_K => jump(&mut pc, r[dst] as u32 != imm as u32),
            LD_IMM64 => {
                assert_eq!(src as u8, PSEUDO_MAP_FD);
                r[dst] = 0xdead_0000 + u64::from(imm as u32);
                pc += 1;
            }
            CALL => {
                assert_eq!(imm, FN_REDIRECT_MAP);
                assert_eq!(r[1], 0xdead_0000 + 77, "the map");
                assert_eq!(r[3], 2, "XDP_PASS when the queue has no socket");
                redirected = Some(r[2]);
                r[0] = 4; // XDP_REDIRECT
                for x in &mut r[1..6] {
                    *x = 0xbad; // clobbered by the call
                }
            }
            EXIT => {
                return match (redirected, r[0]) {
                    (Some(queue), 4) => Verdict::Redirect { queue },
                    (None, 2) => Verdict::Pass,
                    other => panic!("exit with {other:?}"),
                };
            }
            c => panic!("opcode {c:#x} not emulated"),
        }
    }
    panic!("runaway program")
}

fn frame(src: &str, dst: &str, vlan: Option<u16>) -> Vec<u8> {
    let mut f = Vec::new();
    build_udp_frame(
        &mut f,
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        vlan,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        b"hello",
    );
    f
}

#[test]
fn program_redirects_listened_udp_and_passes_the_rest() {
    let listen = ListenSet::new(&[
        "0.0.0.0:2055".parse().unwrap(),
        "198.18.0.2:6343".parse().unwrap(),
        "[2001:db8::2]:4739".parse().unwrap(),
        "[::]:9995".parse().unwrap(),
    ]);
    let prog = xdp_program(&listen, 77).unwrap();
    let cases = [
        ("10.0.0.1:5", "10.0.0.2:2055", None, true),
        ("10.0.0.1:5", "10.0.0.2:2055", Some(7), true),
        ("10.0.0.1:5", "10.0.0.2:22", None, false),
        ("10.0.0.1:5", "198.18.0.2:6343", None, true),
        ("10.0.0.1:5", "198.18.0.3:6343", None, false),
        ("[2001:db8::1]:5", "[2001:db8::2]:4739", None, true),
        ("[2001:db8::1]:5", "[2001:db8::2]:4739", Some(9), true),
        ("[2001:db8::1]:5", "[2001:db8::3]:4739", None, false),
        ("[2001:db8::1]:5", "[2001:db8::3]:9995", None, true),
        ("[2001:db8::1]:5", "[2001:db8::3]:2055", None, false),
    ];
    for (s, d, vlan, want) in cases {
        let f = frame(s, d, vlan);
        let got = run(&prog, &f, 3);
        let expect = if want {
            Verdict::Redirect { queue: 3 }
        } else {
            Verdict::Pass
        };
        assert_eq!(got, expect, "{s} -> {d} vlan {vlan:?}");
    }
    let f = frame("10.0.0.1:5", "10.0.0.2:2055", None);
    // ARP, TCP, fragments pass; a QinQ frame (two tags) is still seen
    let mut arp = f.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(run(&prog, &arp, 0), Verdict::Pass);
    let mut tcp = f.clone();
    tcp[14 + 9] = 6;
    assert_eq!(run(&prog, &tcp, 0), Verdict::Pass);
    let mut frag = f.clone();
    frag[14 + 7] = 1; // offset 8
    assert_eq!(run(&prog, &frag, 0), Verdict::Pass);
    let tagged = frame("10.0.0.1:5", "10.0.0.2:2055", Some(5));
    let mut qinq = tagged[..12].to_vec();
    qinq.extend_from_slice(&[0x88, 0xa8, 0, 1]);
    qinq.extend_from_slice(&tagged[12..]);
    assert_eq!(run(&prog, &qinq, 1), Verdict::Redirect { queue: 1 });
    // IPv4 options: the port is found after IHL * 4 bytes
    let mut opts = f[..14].to_vec();
    opts.push(0x46);
    opts.extend_from_slice(&f[15..34]);
    opts.extend_from_slice(&[1, 1, 1, 0]);
    opts.extend_from_slice(&f[34..]);
    assert_eq!(run(&prog, &opts, 0), Verdict::Redirect { queue: 0 });
}

#[test]
fn program_never_reads_past_the_packet() {
    let listen = ListenSet::new(&[
        "0.0.0.0:2055".parse().unwrap(),
        "[::]:2055".parse().unwrap(),
    ]);
    let prog = xdp_program(&listen, 77).unwrap();
    for f in [
        frame("10.0.0.1:5", "10.0.0.2:2055", Some(3)),
        frame("[2001:db8::1]:5", "[2001:db8::3]:2055", None),
    ] {
        for len in 0..f.len() {
            // every prefix: the bounds checks must stop the program before any read past it
            let _ = run(&prog, &f[..len], 0);
        }
    }
}
