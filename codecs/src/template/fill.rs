//! Reading one data record into a [`FlowRecord`]: the general field-by-field path, the
//! record's times and sampling values, and options records.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Setter, Template};
use crate::bytes::be_uint;
use crate::record::FlowRecord;

/// NTP 64-bit timestamp (seconds since 1900 . fraction) to Unix nanoseconds.
#[inline]
pub fn ntp_to_ns(v: u64) -> Option<u64> {
    let secs = (v >> 32).checked_sub(2_208_988_800)?;
    let frac = ((v & 0xffff_ffff) * 1_000_000_000) >> 32;
    Some(secs * 1_000_000_000 + frac)
}

/// Values of an options record that the decoder keeps (sampling, system init time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptionValues {
    pub sampler_id: Option<u64>,
    pub sampling_interval: Option<u64>,
    pub sampling_algorithm: Option<u64>,
    pub sampler_random_interval: Option<u64>,
    pub selector_algorithm: Option<u64>,
    pub packet_interval: Option<u64>,
    pub packet_space: Option<u64>,
    pub sampling_size: Option<u64>,
    pub sampling_population: Option<u64>,
    pub system_init_ms: Option<u64>,
}

impl OptionValues {
    /// The 1-in-N rate these values describe, as RFC 7014 / RFC 5476 define it.
    pub fn rate(&self) -> Option<u64> {
        let nz = |v: Option<u64>| v.filter(|&x| x > 0);
        if let Some(iv) = nz(self.sampling_interval) {
            return Some(iv);
        }
        if let (Some(pop), Some(size)) = (nz(self.sampling_population), nz(self.sampling_size)) {
            if matches!(self.selector_algorithm, Some(3 | 4)) || self.packet_interval.is_none() {
                return Some(pop / size);
            }
        }
        if let Some(pi) = nz(self.packet_interval) {
            // (both are exporter-supplied 64-bit values: the sum may not fit)
            return Some(pi.saturating_add(self.packet_space.unwrap_or(0)) / pi);
        }
        nz(self.sampler_random_interval)
    }
}

/// Read the options values of one options data record.
pub fn read_options(tpl: &Template, data: &[u8]) -> OptionValues {
    let mut o = OptionValues::default();
    tpl.for_each_field(data, |spec, v| {
        if v.is_empty() || v.len() > 8 {
            return;
        }
        let x = be_uint(v);
        match spec.setter {
            Setter::SamplerId => o.sampler_id = Some(x),
            Setter::SamplingInterval => o.sampling_interval = Some(x),
            Setter::SamplingAlgorithm => o.sampling_algorithm = Some(x),
            Setter::SamplerRandomInterval => o.sampler_random_interval = Some(x),
            Setter::SelectorAlgorithm => o.selector_algorithm = Some(x),
            Setter::SamplingPacketInterval => o.packet_interval = Some(x),
            Setter::SamplingPacketSpace => o.packet_space = Some(x),
            Setter::SamplingSize => o.sampling_size = Some(x),
            Setter::SamplingPopulation => o.sampling_population = Some(x),
            Setter::SystemInitTime if v.len() == 8 => o.system_init_ms = Some(x),
            _ => {}
        }
    });
    o
}

/// What a flow record's own sampling elements say: the 1-in-N rate
/// ([`OptionValues::rate`]) and the sampler they name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSampling {
    pub rate: Option<u64>,
    pub sampler_id: Option<u64>,
}

/// Times read from a record, resolved by the decoder (which knows the header and the
/// exporter's systemInitTime).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordTimes {
    pub start_abs_ns: Option<u64>,
    pub end_abs_ns: Option<u64>,
    pub start_uptime_ms: Option<u64>,
    pub end_uptime_ms: Option<u64>,
    pub start_delta_us: Option<u64>,
    pub end_delta_us: Option<u64>,
}

#[inline]
fn ip_of(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// The first value of a field wins (a template may carry an element twice, e.g. inner and
/// outer headers of a tunnel: the first is the one tshark and most collectors report).
#[inline]
fn first<T>(slot: &mut Option<T>, v: Option<T>) {
    if slot.is_none() {
        *slot = v;
    }
}

/// Addresses, when a template carries both IPv4 and IPv6 elements of one role: a specified
/// address beats an unspecified one (exporters zero the unused family), then IPv4 beats IPv6
/// (in SRv6 / IPv6-tunnel records the IPv4 elements are the inner flow, the IPv6 ones the
/// transport), then the first one wins.
#[inline]
fn pick_addr(slot: &mut Option<IpAddr>, v: Option<IpAddr>) {
    match (*slot, v) {
        (None, v) => *slot = v,
        (Some(old), Some(new)) => {
            let better = (old.is_unspecified() && !new.is_unspecified())
                || (old.is_unspecified() == new.is_unspecified() && old.is_ipv6() && new.is_ipv4());
            if better {
                *slot = Some(new);
            }
        }
        _ => {}
    }
}

#[inline]
fn mac_of(v: &[u8]) -> Option<[u8; 6]> {
    v.try_into().ok()
}

/// What the fields of one record set besides `rec` and its times: sampling values (`None`
/// when the record has no sampling element, which keeps them out of the per-record work),
/// fallback counts.
#[derive(Default)]
pub(super) struct Fill {
    pub(super) o: Option<OptionValues>,
    pub(super) total_bytes: Option<u64>,
    pub(super) total_packets: Option<u64>,
    pub(super) init_bytes: Option<u64>,
    pub(super) init_packets: Option<u64>,
}

/// Apply one field's value (the general path: any setter, any length).
#[inline]
pub(super) fn apply_field(
    setter: Setter,
    v: &[u8],
    rec: &mut FlowRecord<'_>,
    st: &mut Fill,
    t: &mut RecordTimes,
) {
    use Setter::*;
    if setter == None {
        return;
    }
    let n = || {
        if v.len() <= 8 {
            Some(be_uint(v))
        } else {
            Option::None
        }
    };
    match setter {
        None => {}
        Bytes => first(&mut rec.bytes, n()),
        Packets => first(&mut rec.packets, n()),
        BytesTotal => st.total_bytes = n(),
        PacketsTotal => st.total_packets = n(),
        InitiatorBytes => st.init_bytes = n(),
        InitiatorPackets => st.init_packets = n(),
        ResponderBytes | ReverseBytes => first(&mut rec.reverse_bytes, n()),
        ResponderPackets | ReversePackets => first(&mut rec.reverse_packets, n()),
        ReverseTcpFlags => first(&mut rec.reverse_tcp_flags, n().map(|x| x as u16)),
        SrcAddr => pick_addr(&mut rec.src_addr, ip_of(v)),
        DstAddr => pick_addr(&mut rec.dst_addr, ip_of(v)),
        SrcPort => first(&mut rec.src_port, n().map(|x| x as u16)),
        DstPort => first(&mut rec.dst_port, n().map(|x| x as u16)),
        Protocol => first(&mut rec.ip_protocol, n().map(|x| x as u8)),
        Tos => first(&mut rec.tos, n().map(|x| x as u8)),
        TcpFlags => first(&mut rec.tcp_flags, n().map(|x| x as u16)),
        InIf => first(&mut rec.in_if, n().map(|x| x as u32)),
        OutIf => first(&mut rec.out_if, n().map(|x| x as u32)),
        SrcAs => first(&mut rec.src_as, n().map(|x| x as u32)),
        DstAs => first(&mut rec.dst_as, n().map(|x| x as u32)),
        SrcMask => first(&mut rec.src_mask, n().map(|x| x as u8)),
        DstMask => first(&mut rec.dst_mask, n().map(|x| x as u8)),
        NextHop => pick_addr(&mut rec.next_hop, ip_of(v)),
        BgpNextHop => pick_addr(&mut rec.bgp_next_hop, ip_of(v)),
        SrcMac => first(&mut rec.src_mac, mac_of(v)),
        DstMac => first(&mut rec.dst_mac, mac_of(v)),
        Vlan => first(&mut rec.vlan, n().map(|x| x as u16)),
        Dot1qVlan => first(&mut rec.vlan, n().map(|x| x as u16)),
        IpVersion => first(&mut rec.ip_version, n().map(|x| x as u8)),
        Direction => first(&mut rec.direction, n().map(|x| x as u8)),
        EndReason => first(&mut rec.flow_end_reason, n().map(|x| x as u8)),
        IcmpTypeCode => {
            if let Some(x) = n() {
                first(&mut rec.icmp_type, Some((x >> 8) as u8));
                first(&mut rec.icmp_code, Some(x as u8));
            }
        }
        IcmpType => first(&mut rec.icmp_type, n().map(|x| x as u8)),
        IcmpCode => first(&mut rec.icmp_code, n().map(|x| x as u8)),
        MplsLabel => {
            if v.len() >= 3 {
                rec.mpls.push(
                    (u32::from(v[0]) << 12) | (u32::from(v[1]) << 4) | (u32::from(v[2]) >> 4),
                );
            }
        }
        StartUptime => t.start_uptime_ms = n(),
        EndUptime => t.end_uptime_ms = n(),
        StartSeconds => t.start_abs_ns = n().map(|x| x.saturating_mul(1_000_000_000)),
        EndSeconds => t.end_abs_ns = n().map(|x| x.saturating_mul(1_000_000_000)),
        StartMillis => t.start_abs_ns = n().map(|x| x.saturating_mul(1_000_000)),
        EndMillis => t.end_abs_ns = n().map(|x| x.saturating_mul(1_000_000)),
        StartMicros | StartNanos => t.start_abs_ns = n().and_then(ntp_to_ns),
        EndMicros | EndNanos => t.end_abs_ns = n().and_then(ntp_to_ns),
        StartDeltaMicros => t.start_delta_us = n(),
        EndDeltaMicros => t.end_delta_us = n(),
        SamplingInterval
        | SamplingAlgorithm
        | SamplerId
        | SamplerRandomInterval
        | SelectorAlgorithm
        | SamplingPacketInterval
        | SamplingPacketSpace
        | SamplingSize
        | SamplingPopulation
        | SystemInitTime => {
            let o = st.o.get_or_insert_with(OptionValues::default);
            let slot = match setter {
                SamplingInterval => &mut o.sampling_interval,
                SamplingAlgorithm => &mut o.sampling_algorithm,
                SamplerId => &mut o.sampler_id,
                SamplerRandomInterval => &mut o.sampler_random_interval,
                SelectorAlgorithm => &mut o.selector_algorithm,
                SamplingPacketInterval => &mut o.packet_interval,
                SamplingPacketSpace => &mut o.packet_space,
                SamplingSize => &mut o.sampling_size,
                SamplingPopulation => &mut o.sampling_population,
                _ => &mut o.system_init_ms,
            };
            *slot = n();
        }
    }
}

/// Fill `rec` from one data record; returns the times and the record's own sampling values.
/// `rec` is a fresh record (`FlowRecord::new` plus the header fields): none of the values a
/// data record sets is there yet. When [`Template::refills_record`] holds, `rec` may also be
/// the record this function last filled from a record of the same template: every value a
/// record of it sets is then set again.
///
/// Fixed-length templates go through their compiled [`Plan`](super::Plan): the offset of
/// every field the record reads is known, so a record is a fixed sequence of loads (a conditional per slot,
/// taken the same way for every record of the template) instead of a dispatch per field.
/// Other templates (variable-length fields) are read field by field.
#[inline]
pub fn fill_record(
    tpl: &Template,
    data: &[u8],
    rec: &mut FlowRecord<'_>,
) -> (RecordTimes, RecordSampling) {
    let mut t = RecordTimes::default();
    let o = fill_record_in(tpl, data, data.len(), rec, &mut t);
    (t, o)
}

/// [`fill_record`] of the record of `len` bytes that starts `tail`, the rest of its data set
/// ([`Records::tail`](super::Records::tail)): a fixed-length record is read in place while the
/// set has its plan's window (144 or 528 bytes) from the record's start on. The times are written to `t`
/// (every one of them, whatever was there): returned, they were built in one place and copied
/// with 16-byte moves out of 8-byte stores, a store-forwarding stall that was a seventh of
/// fixed-length v9 decoding.
#[inline]
pub fn fill_record_in(
    tpl: &Template,
    tail: &[u8],
    len: usize,
    rec: &mut FlowRecord<'_>,
    t: &mut RecordTimes,
) -> RecordSampling {
    let data = &tail[..len.min(tail.len())];
    match &tpl.plan {
        Some(p) if data.len() >= usize::from(p.len) => p.fill(tail, rec, t),
        _ => {
            *t = RecordTimes::default();
            let mut st = Fill::default();
            tpl.for_each_field(data, |spec, v| apply_field(spec.setter, v, rec, &mut st, t));
            st.finish(rec)
        }
    }
}

impl Fill {
    /// The fallback counts applied to `rec`; the record's sampling.
    #[inline]
    pub(super) fn finish(self, rec: &mut FlowRecord<'_>) -> RecordSampling {
        // delta count, else total count (IE 85/86), else NSEL initiator count
        if rec.bytes.is_none() {
            rec.bytes = self.total_bytes.or(self.init_bytes);
        }
        if rec.packets.is_none() {
            rec.packets = self.total_packets.or(self.init_packets);
        }
        self.o
            .as_ref()
            .map_or(RecordSampling::default(), |o| RecordSampling {
                rate: o.rate(),
                sampler_id: o.sampler_id,
            })
    }
}
