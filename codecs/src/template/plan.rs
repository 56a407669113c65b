//! The compiled fill plan of a fixed-length template: the slot of every value a record
//! sets, read through a fixed-size window.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::fill::{apply_field, ntp_to_ns, Fill, RecordSampling, RecordTimes};
use super::{FieldSpec, Setter};
use crate::record::FlowRecord;

/// Where a field of a fixed-length template sits in every record. `len` 0: not in the
/// template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    off: u16,
    len: u8,
    /// `64 - 8 * len` for a 1- to 8-byte field, else 64: an unsigned value is the 8 bytes at
    /// `off` shifted right by this, and 64 says there is none (one test, not two)
    shift: u8,
}

/// Longest record a plan reads.
const PLAN_MAX_LEN: usize = 512;
/// A plan reads a record through a window: a fixed-size array of the record and the bytes
/// after it, `WINDOW_PAD` bytes longer than the longest record it is for (a power of two), so
/// every slot's load (up to 16 bytes from an offset masked to the record part) is in it with
/// no bounds test. A record is read in place while its set has the window's length from its
/// start on, else from a padded copy. Two windows: 144 bytes for records up to 128 bytes (most
/// templates; only the last records of a set are copied), 528 for the others.
const WINDOW_PAD: usize = 16;
const WINDOW_SMALL: usize = 128 + WINDOW_PAD;
const WINDOW_LARGE: usize = PLAN_MAX_LEN + WINDOW_PAD;

impl Default for Slot {
    /// Not in the template.
    fn default() -> Slot {
        Slot::new(0, 0)
    }
}

impl Slot {
    pub(super) fn new(off: u16, len: u16) -> Slot {
        let len = u8::try_from(len).unwrap_or(0);
        let shift = if (1..=8).contains(&len) {
            64 - 8 * len
        } else {
            64
        };
        Slot { off, len, shift }
    }

    /// The slot's offset in a window of `N` bytes (see [`WINDOW_PAD`]): masked to the window's
    /// record part, which it is in already, so that a read of up to 16 bytes from it is in
    /// the window without a bounds test. The reads below index the window directly, not
    /// through [`crate::bytes::array`]: `o + len` cannot overflow here, and callgrind counts
    /// about 10 fewer instructions a fixed-template record this way (a generic helper in
    /// between costs as much).
    #[inline(always)]
    fn at<const N: usize>(self) -> usize {
        usize::from(self.off) & (N - WINDOW_PAD - 1)
    }

    /// The unsigned value (1 to 8 bytes) when the slot is present: one 8-byte load and a
    /// shift, no dispatch on the length (a jump table per slot was a third of the decode time).
    #[inline(always)]
    fn uint<const N: usize>(self, b: &[u8; N]) -> Option<u64> {
        if self.shift >= 64 {
            return None;
        }
        let o = self.at::<N>();
        let w = <[u8; 8]>::try_from(b.get(o..o + 8)?).ok()?;
        Some(u64::from_be_bytes(w) >> self.shift)
    }

    /// The address (4 or 16 bytes) when the slot is present.
    #[inline(always)]
    fn ip<const N: usize>(self, b: &[u8; N]) -> Option<IpAddr> {
        let o = self.at::<N>();
        match self.len {
            4 => b
                .get(o..o + 4)
                .map(|b| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            16 => b
                .get(o..o + 16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            _ => None,
        }
    }

    /// The MAC address (6 bytes) when the slot is present.
    #[inline(always)]
    fn mac<const N: usize>(self, b: &[u8; N]) -> Option<[u8; 6]> {
        let o = self.at::<N>();
        match self.len {
            6 => b.get(o..o + 6).and_then(|b| b.try_into().ok()),
            _ => None,
        }
    }
}

/// Set `slot` when the template has the value (a plan's value is in every record of the
/// template or in none).
#[inline(always)]
fn set<T>(slot: &mut Option<T>, v: Option<T>) {
    if v.is_some() {
        *slot = v;
    }
}

/// A record copied into a zeroed window of `N` bytes.
fn padded<const N: usize>(r: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    if let Some(to) = b.get_mut(..r.len()) {
        to.copy_from_slice(r);
    }
    b
}

/// Unit of an absolute start / end time element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum TimeUnit {
    #[default]
    Seconds,
    Millis,
    /// NTP 64-bit timestamp (micro- and nanosecond elements)
    Ntp,
}

impl TimeUnit {
    #[inline(always)]
    fn to_ns(self, v: Option<u64>) -> Option<u64> {
        match self {
            TimeUnit::Seconds => v.map(|x| x.saturating_mul(1_000_000_000)),
            TimeUnit::Millis => v.map(|x| x.saturating_mul(1_000_000)),
            TimeUnit::Ntp => v.and_then(ntp_to_ns),
        }
    }
}

/// The decode plan of a fixed-length template, made when it is compiled: for each value the
/// record can set, the offset and length of the one field that sets it. Fields that cannot be
/// read this way (a value set by more than one field, where the order of the fields decides,
/// an unusual length, MPLS label stacks, sampling elements) are kept in `rest`, in template
/// order, and go through the general per-field path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// record length
    pub(super) len: u16,
    pub(super) bytes: Slot,
    pub(super) packets: Slot,
    pub(super) bytes_total: Slot,
    pub(super) packets_total: Slot,
    pub(super) init_bytes: Slot,
    pub(super) init_packets: Slot,
    pub(super) reverse_bytes: Slot,
    pub(super) reverse_packets: Slot,
    pub(super) reverse_tcp_flags: Slot,
    pub(super) src_addr: Slot,
    pub(super) dst_addr: Slot,
    pub(super) src_port: Slot,
    pub(super) dst_port: Slot,
    pub(super) protocol: Slot,
    pub(super) tos: Slot,
    pub(super) tcp_flags: Slot,
    pub(super) in_if: Slot,
    pub(super) out_if: Slot,
    pub(super) src_as: Slot,
    pub(super) dst_as: Slot,
    pub(super) src_mask: Slot,
    pub(super) dst_mask: Slot,
    pub(super) next_hop: Slot,
    pub(super) bgp_next_hop: Slot,
    pub(super) src_mac: Slot,
    pub(super) dst_mac: Slot,
    pub(super) vlan: Slot,
    pub(super) ip_version: Slot,
    pub(super) direction: Slot,
    pub(super) end_reason: Slot,
    pub(super) icmp_type_code: Slot,
    pub(super) icmp_type: Slot,
    pub(super) icmp_code: Slot,
    pub(super) start_uptime: Slot,
    pub(super) end_uptime: Slot,
    pub(super) start_abs: Slot,
    start_unit: TimeUnit,
    pub(super) end_abs: Slot,
    end_unit: TimeUnit,
    pub(super) start_delta: Slot,
    pub(super) end_delta: Slot,
    /// which `S_*` sections (sets of slots) have a slot in the template: `fill` skips a
    /// section none of whose values the template has with one test (most templates have none
    /// of the reverse, layer-2, ICMP or delta-time values, whose 19 slots would otherwise be
    /// tested one by one)
    sections: u8,
    /// (offset, length, setter) of the fields read the general way, in template order
    pub(super) rest: Vec<(u16, u16, Setter)>,
}

/// Sections of [`Plan`] slots, each tested once per record.
///
/// Totals, initiator and reverse counts.
const S_COUNTS: u8 = 1;
/// MAC addresses, VLAN, BGP next hop, end reason: values most templates lack.
const S_RARE: u8 = 2;
/// ICMP type and code.
const S_ICMP: u8 = 4;
/// Uptime-relative times.
const S_UPTIME: u8 = 8;
/// Absolute times.
const S_ABS: u8 = 16;
/// Delta times (microseconds before the export).
const S_DELTA: u8 = 32;

/// The value a setter writes: setters of one group write the same value, so when a template
/// has several fields of one group their order matters and they stay on the general path.
fn setter_group(s: Setter) -> Option<u8> {
    use Setter::*;
    Some(match s {
        Bytes => 0,
        Packets => 1,
        BytesTotal => 2,
        PacketsTotal => 3,
        InitiatorBytes => 4,
        InitiatorPackets => 5,
        ResponderBytes | ReverseBytes => 6,
        ResponderPackets | ReversePackets => 7,
        ReverseTcpFlags => 8,
        SrcAddr => 9,
        DstAddr => 10,
        SrcPort => 11,
        DstPort => 12,
        Protocol => 13,
        Tos => 14,
        TcpFlags => 15,
        InIf => 16,
        OutIf => 17,
        SrcAs => 18,
        DstAs => 19,
        SrcMask => 20,
        DstMask => 21,
        NextHop => 22,
        BgpNextHop => 23,
        SrcMac => 24,
        DstMac => 25,
        Vlan | Dot1qVlan => 26,
        IpVersion => 27,
        Direction => 28,
        EndReason => 29,
        // icmp type + code, icmp type, icmp code: type+code shares a value with either
        IcmpTypeCode | IcmpType | IcmpCode => 30,
        StartUptime => 31,
        EndUptime => 32,
        StartSeconds | StartMillis | StartMicros | StartNanos => 33,
        EndSeconds | EndMillis | EndMicros | EndNanos => 34,
        StartDeltaMicros => 35,
        EndDeltaMicros => 36,
        _ => return Option::None,
    })
}

const GROUPS: usize = 37;

impl Plan {
    /// The plan of a template whose fields all have a fixed length (offsets below 64 KiB).
    pub(super) fn build(fields: &[FieldSpec], len: usize) -> Option<Plan> {
        use Setter::*;
        if len > PLAN_MAX_LEN {
            return Option::None;
        }
        let len = u16::try_from(len).ok()?;
        let mut count = [0u16; GROUPS];
        let (mut icmp_tc, mut icmp_t, mut icmp_c) = (0, 0, 0);
        for f in fields {
            if let Some(g) = setter_group(f.setter) {
                count[usize::from(g)] = count[usize::from(g)].saturating_add(1);
            }
            match f.setter {
                IcmpTypeCode => icmp_tc += 1,
                IcmpType => icmp_t += 1,
                IcmpCode => icmp_c += 1,
                _ => {}
            }
        }
        let mut p = Plan {
            len,
            ..Plan::default()
        };
        let mut off = 0u16;
        for f in fields {
            let flen = f.len;
            let slot = Slot::new(off, flen);
            off = off.checked_add(flen)?;
            if f.setter == None {
                continue;
            }
            // alone in its group (icmp type and code are separate values unless the combined
            // element is there too)
            let alone = match f.setter {
                IcmpTypeCode => icmp_tc == 1 && icmp_t == 0 && icmp_c == 0,
                IcmpType => icmp_t == 1 && icmp_tc == 0,
                IcmpCode => icmp_c == 1 && icmp_tc == 0,
                s => setter_group(s).is_some_and(|g| count[usize::from(g)] == 1),
            };
            let num = (1..=8).contains(&flen);
            let direct = alone
                && match f.setter {
                    SrcAddr | DstAddr | NextHop | BgpNextHop => flen == 4 || flen == 16,
                    SrcMac | DstMac => flen == 6,
                    _ => num,
                };
            let target = if direct {
                match f.setter {
                    Bytes => Some(&mut p.bytes),
                    Packets => Some(&mut p.packets),
                    BytesTotal => Some(&mut p.bytes_total),
                    PacketsTotal => Some(&mut p.packets_total),
                    InitiatorBytes => Some(&mut p.init_bytes),
                    InitiatorPackets => Some(&mut p.init_packets),
                    ResponderBytes | ReverseBytes => Some(&mut p.reverse_bytes),
                    ResponderPackets | ReversePackets => Some(&mut p.reverse_packets),
                    ReverseTcpFlags => Some(&mut p.reverse_tcp_flags),
                    SrcAddr => Some(&mut p.src_addr),
                    DstAddr => Some(&mut p.dst_addr),
                    SrcPort => Some(&mut p.src_port),
                    DstPort => Some(&mut p.dst_port),
                    Protocol => Some(&mut p.protocol),
                    Tos => Some(&mut p.tos),
                    TcpFlags => Some(&mut p.tcp_flags),
                    InIf => Some(&mut p.in_if),
                    OutIf => Some(&mut p.out_if),
                    SrcAs => Some(&mut p.src_as),
                    DstAs => Some(&mut p.dst_as),
                    SrcMask => Some(&mut p.src_mask),
                    DstMask => Some(&mut p.dst_mask),
                    NextHop => Some(&mut p.next_hop),
                    BgpNextHop => Some(&mut p.bgp_next_hop),
                    SrcMac => Some(&mut p.src_mac),
                    DstMac => Some(&mut p.dst_mac),
                    Vlan | Dot1qVlan => Some(&mut p.vlan),
                    IpVersion => Some(&mut p.ip_version),
                    Direction => Some(&mut p.direction),
                    EndReason => Some(&mut p.end_reason),
                    IcmpTypeCode => Some(&mut p.icmp_type_code),
                    IcmpType => Some(&mut p.icmp_type),
                    IcmpCode => Some(&mut p.icmp_code),
                    StartUptime => Some(&mut p.start_uptime),
                    EndUptime => Some(&mut p.end_uptime),
                    StartSeconds | StartMillis | StartMicros | StartNanos => {
                        p.start_unit = match f.setter {
                            StartSeconds => TimeUnit::Seconds,
                            StartMillis => TimeUnit::Millis,
                            _ => TimeUnit::Ntp,
                        };
                        Some(&mut p.start_abs)
                    }
                    EndSeconds | EndMillis | EndMicros | EndNanos => {
                        p.end_unit = match f.setter {
                            EndSeconds => TimeUnit::Seconds,
                            EndMillis => TimeUnit::Millis,
                            _ => TimeUnit::Ntp,
                        };
                        Some(&mut p.end_abs)
                    }
                    StartDeltaMicros => Some(&mut p.start_delta),
                    EndDeltaMicros => Some(&mut p.end_delta),
                    _ => Option::None,
                }
            } else {
                Option::None
            };
            match target {
                Some(t) => *t = slot,
                Option::None => p.rest.push((slot.off, flen, f.setter)),
            }
        }
        p.sections = p.find_sections();
        Some(p)
    }

    /// The `S_*` sections that have a slot in the template.
    fn find_sections(&self) -> u8 {
        let any = |slots: &[Slot]| slots.iter().any(|s| s.len != 0);
        let mut g = 0;
        for (bit, slots) in [
            (
                S_COUNTS,
                &[
                    self.bytes_total,
                    self.packets_total,
                    self.init_bytes,
                    self.init_packets,
                    self.reverse_bytes,
                    self.reverse_packets,
                    self.reverse_tcp_flags,
                ][..],
            ),
            (
                S_RARE,
                &[
                    self.src_mac,
                    self.dst_mac,
                    self.vlan,
                    self.bgp_next_hop,
                    self.end_reason,
                ][..],
            ),
            (
                S_ICMP,
                &[self.icmp_type_code, self.icmp_type, self.icmp_code][..],
            ),
            (S_UPTIME, &[self.start_uptime, self.end_uptime][..]),
            (S_ABS, &[self.start_abs, self.end_abs][..]),
            (S_DELTA, &[self.start_delta, self.end_delta][..]),
        ] {
            if any(slots) {
                g |= bit;
            }
        }
        g
    }

    /// Read one record (`data.len() >= self.len`; `data` may go on past the record, to the
    /// end of its set) into `rec`. A value the plan reads is in every record of the template
    /// or in none, so setting the present ones leaves `rec` right whether it is fresh or the
    /// record this plan filled last (bytes and packets are assigned even when absent, for the
    /// fallback after). Every value the plan reads is alone in its group, so it is set without
    /// the "first one wins" test of the general path (the `rest` fields after it use that test,
    /// so with a `rest` the record must be fresh). The slots of a section the template has no
    /// value of are not looked at. Writes the times to `t` and returns the record's sampling,
    /// with the fallback counts applied, as [`fill_record_in`](super::fill_record_in) does.
    #[inline]
    pub(super) fn fill(
        &self,
        data: &[u8],
        rec: &mut FlowRecord<'_>,
        t: &mut RecordTimes,
    ) -> RecordSampling {
        if usize::from(self.len) + WINDOW_PAD <= WINDOW_SMALL {
            self.fill_in::<WINDOW_SMALL>(data, rec, t)
        } else {
            self.fill_in::<WINDOW_LARGE>(data, rec, t)
        }
    }

    /// [`Plan::fill`] through a window of `N` bytes.
    #[inline(always)]
    fn fill_in<const N: usize>(
        &self,
        data: &[u8],
        rec: &mut FlowRecord<'_>,
        t: &mut RecordTimes,
    ) -> RecordSampling {
        let n = usize::from(self.len);
        let copy: [u8; N];
        let d = match data.first_chunk::<N>() {
            Some(w) => w,
            None => {
                copy = padded(&data[..n.min(data.len())]);
                &copy
            }
        };
        let g = self.sections;
        // assigned even when absent: fill_record falls back to the total or initiator counts
        // when these are None, which a refilled record must be again
        rec.bytes = self.bytes.uint(d);
        rec.packets = self.packets.uint(d);
        set(&mut rec.src_addr, self.src_addr.ip(d));
        set(&mut rec.dst_addr, self.dst_addr.ip(d));
        set(&mut rec.src_port, self.src_port.uint(d).map(|x| x as u16));
        set(&mut rec.dst_port, self.dst_port.uint(d).map(|x| x as u16));
        set(&mut rec.ip_protocol, self.protocol.uint(d).map(|x| x as u8));
        set(&mut rec.tos, self.tos.uint(d).map(|x| x as u8));
        set(&mut rec.tcp_flags, self.tcp_flags.uint(d).map(|x| x as u16));
        set(&mut rec.in_if, self.in_if.uint(d).map(|x| x as u32));
        set(&mut rec.out_if, self.out_if.uint(d).map(|x| x as u32));
        set(&mut rec.src_as, self.src_as.uint(d).map(|x| x as u32));
        set(&mut rec.dst_as, self.dst_as.uint(d).map(|x| x as u32));
        set(&mut rec.src_mask, self.src_mask.uint(d).map(|x| x as u8));
        set(&mut rec.dst_mask, self.dst_mask.uint(d).map(|x| x as u8));
        set(&mut rec.next_hop, self.next_hop.ip(d));
        set(
            &mut rec.ip_version,
            self.ip_version.uint(d).map(|x| x as u8),
        );
        set(&mut rec.direction, self.direction.uint(d).map(|x| x as u8));
        if g & S_RARE != 0 {
            set(&mut rec.src_mac, self.src_mac.mac(d));
            set(&mut rec.dst_mac, self.dst_mac.mac(d));
            set(&mut rec.vlan, self.vlan.uint(d).map(|x| x as u16));
            set(&mut rec.bgp_next_hop, self.bgp_next_hop.ip(d));
            set(
                &mut rec.flow_end_reason,
                self.end_reason.uint(d).map(|x| x as u8),
            );
        }
        if g & S_ICMP != 0 {
            // the combined element is in the plan only when neither of the separate ones is
            let tc = self.icmp_type_code.uint(d);
            set(
                &mut rec.icmp_type,
                tc.map(|x| (x >> 8) as u8)
                    .or(self.icmp_type.uint(d).map(|x| x as u8)),
            );
            set(
                &mut rec.icmp_code,
                tc.map(|x| x as u8)
                    .or(self.icmp_code.uint(d).map(|x| x as u8)),
            );
        }
        *t = RecordTimes::default();
        if g & S_ABS != 0 {
            t.start_abs_ns = self.start_unit.to_ns(self.start_abs.uint(d));
            t.end_abs_ns = self.end_unit.to_ns(self.end_abs.uint(d));
        }
        if g & S_UPTIME != 0 {
            t.start_uptime_ms = self.start_uptime.uint(d);
            t.end_uptime_ms = self.end_uptime.uint(d);
        }
        if g & S_DELTA != 0 {
            t.start_delta_us = self.start_delta.uint(d);
            t.end_delta_us = self.end_delta.uint(d);
        }
        if g & S_COUNTS == 0 && self.rest.is_empty() {
            // nothing to fall back on, no sampling element
            return RecordSampling::default();
        }
        self.fill_rest(d, rec, t)
    }

    /// The counts section and the `rest` fields of one record, then the fallback counts: the
    /// end of `fill` for templates with either. Kept out of `fill` (and not inlined): with it
    /// there, the whole `Fill`, options values included, was built, kept in memory and copied
    /// out for every record, also for the templates with neither.
    #[inline(never)]
    fn fill_rest<const N: usize>(
        &self,
        d: &[u8; N],
        rec: &mut FlowRecord<'_>,
        t: &mut RecordTimes,
    ) -> RecordSampling {
        let mut st = Fill::default();
        if self.sections & S_COUNTS != 0 {
            set(&mut rec.reverse_bytes, self.reverse_bytes.uint(d));
            set(&mut rec.reverse_packets, self.reverse_packets.uint(d));
            set(
                &mut rec.reverse_tcp_flags,
                self.reverse_tcp_flags.uint(d).map(|x| x as u16),
            );
            st.total_bytes = self.bytes_total.uint(d);
            st.total_packets = self.packets_total.uint(d);
            st.init_bytes = self.init_bytes.uint(d);
            st.init_packets = self.init_packets.uint(d);
        }
        for &(off, len, setter) in &self.rest {
            let (o, l) = (usize::from(off), usize::from(len));
            if let Some(v) = d.get(o..o + l) {
                apply_field(setter, v, rec, &mut st, t);
            }
        }
        st.finish(rec)
    }
}
