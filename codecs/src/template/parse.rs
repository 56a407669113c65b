//! The wire side of templates: template and options template sets, the fields they
//! declare, and the names and setters those fields get.

use std::borrow::Cow;

use super::{Setter, MAX_FIELDS};
use crate::bytes::{be16, be32};
use crate::error::DecodeError;
use crate::ie::{self, IeType, REVERSE_PEN};

/// A field as it appears on the wire, before compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireField {
    pub id: u16,
    pub enterprise: u32,
    pub len: u16,
    pub scope: bool,
}

const V9_SCOPE_NAMES: [&str; 6] = [
    "scope_unknown",
    "scope_system",
    "scope_interface",
    "scope_line_card",
    "scope_cache",
    "scope_template",
];

pub(super) fn base_name(version: u16, f: &WireField) -> (Cow<'static, str>, IeType) {
    if version == 9 && f.scope {
        let n = V9_SCOPE_NAMES.get(usize::from(f.id)).copied();
        return match n {
            Some(n) if f.id != 0 => (Cow::Borrowed(n), IeType::Unsigned64),
            _ => (Cow::Owned(format!("scope_{}", f.id)), IeType::OctetArray),
        };
    }
    if f.enterprise == REVERSE_PEN {
        return match ie::iana(f.id) {
            Some(i) => (Cow::Owned(format!("reverse_{}", i.name)), i.ty),
            None => (
                Cow::Owned(format!("reverse_ie_{}", f.id)),
                IeType::OctetArray,
            ),
        };
    }
    if f.enterprise != 0 {
        return match ie::enterprise(f.enterprise, f.id) {
            Some(i) => (Cow::Borrowed(i.name), i.ty),
            None => (
                Cow::Owned(format!("e{}_{}", f.enterprise, f.id)),
                IeType::OctetArray,
            ),
        };
    }
    let info = if version == 9 {
        ie::netflow_v9(f.id)
    } else {
        ie::iana(f.id)
    };
    match info {
        Some(i) => (Cow::Borrowed(i.name), i.ty),
        None if version == 9 => (Cow::Owned(format!("field_{}", f.id)), IeType::OctetArray),
        None => (Cow::Owned(format!("ie_{}", f.id)), IeType::OctetArray),
    }
}

pub(super) fn setter_for(version: u16, pen: u32, id: u16, scope: bool) -> Setter {
    use Setter::*;
    if scope && version == 9 {
        return None; // v9 scope types (system, interface, ...) are not IEs
    }
    if pen == REVERSE_PEN {
        return match id {
            1 => ReverseBytes,
            2 => ReversePackets,
            6 => ReverseTcpFlags,
            _ => None,
        };
    }
    if pen != 0 {
        return None;
    }
    match id {
        1 => Bytes,
        2 => Packets,
        4 => Protocol,
        5 => Tos,
        6 => TcpFlags,
        7 => SrcPort,
        8 | 27 => SrcAddr,
        9 | 29 => SrcMask,
        10 => InIf,
        11 => DstPort,
        12 | 28 => DstAddr,
        13 | 30 => DstMask,
        14 => OutIf,
        15 | 62 => NextHop,
        16 => SrcAs,
        17 => DstAs,
        18 | 63 => BgpNextHop,
        21 => EndUptime,
        22 => StartUptime,
        32 | 139 => IcmpTypeCode,
        34 => SamplingInterval,
        35 => SamplingAlgorithm,
        48 | 302 => SamplerId,
        50 => SamplerRandomInterval,
        56 => SrcMac,
        58 => Vlan,
        60 => IpVersion,
        61 => Direction,
        70..=79 => MplsLabel,
        80 => DstMac,
        85 => BytesTotal,
        86 => PacketsTotal,
        136 => EndReason,
        150 => StartSeconds,
        151 => EndSeconds,
        152 => StartMillis,
        153 => EndMillis,
        154 => StartMicros,
        155 => EndMicros,
        156 => StartNanos,
        157 => EndNanos,
        158 => StartDeltaMicros,
        159 => EndDeltaMicros,
        160 => SystemInitTime,
        176 | 178 => IcmpType,
        177 | 179 => IcmpCode,
        231 => InitiatorBytes,
        232 => ResponderBytes,
        243 => Dot1qVlan,
        298 => InitiatorPackets,
        299 => ResponderPackets,
        304 => SelectorAlgorithm,
        305 => SamplingPacketInterval,
        306 => SamplingPacketSpace,
        309 => SamplingSize,
        310 => SamplingPopulation,
        _ => None,
    }
}

/// Called with (template id, fields, the template record's wire bytes).
pub type TemplateVisitor<'f> = &'f mut dyn FnMut(u16, &[WireField], &[u8]);

/// Parse the template records of a template set (`options` for options template sets).
/// Calls `f(template_id, fields, wire_bytes)`; a record with no fields is a withdrawal
/// (IPFIX). Stops at the first malformed record, returning its error.
pub fn parse_template_set(
    version: u16,
    options: bool,
    body: &[u8],
    base_offset: usize,
    fields_buf: &mut Vec<WireField>,
    f: TemplateVisitor<'_>,
) -> Result<(), DecodeError> {
    let mut pos = 0usize;
    while body.len() - pos >= 4 {
        let start = pos;
        let tid = be16(body, pos).unwrap_or(0);
        let count = be16(body, pos + 2).unwrap_or(0);
        if tid == 0 && count == 0 {
            break; // padding (zeros) at the end of the set
        }
        pos += 4;
        fields_buf.clear();
        if version == 9 && options {
            // v9 options template: scope length and option length in bytes
            let scope_len = usize::from(count);
            let Some(opt_len) = be16(body, pos) else {
                return Err(DecodeError::truncated(
                    "v9 options template",
                    base_offset + start,
                    6,
                    body.len() - start,
                ));
            };
            pos += 2;
            let opt_len = usize::from(opt_len);
            if scope_len % 4 != 0 || opt_len % 4 != 0 || pos + scope_len + opt_len > body.len() {
                return Err(DecodeError::truncated(
                    "v9 options template fields",
                    base_offset + pos,
                    scope_len + opt_len,
                    body.len() - pos,
                ));
            }
            for i in 0..(scope_len + opt_len) / 4 {
                let p = pos + i * 4;
                fields_buf.push(WireField {
                    id: be16(body, p).unwrap_or(0),
                    enterprise: 0,
                    len: be16(body, p + 2).unwrap_or(0),
                    scope: i < scope_len / 4,
                });
            }
            pos += scope_len + opt_len;
        } else {
            let scope_count = if options && count > 0 {
                let Some(s) = be16(body, pos) else {
                    return Err(DecodeError::truncated(
                        "options template",
                        base_offset + start,
                        6,
                        body.len() - start,
                    ));
                };
                pos += 2;
                s
            } else {
                0
            };
            if usize::from(count) > MAX_FIELDS || scope_count > count {
                return Err(DecodeError::invalid(
                    "template field count",
                    base_offset + start,
                    u64::from(count),
                ));
            }
            for i in 0..count {
                let Some(raw_id) = be16(body, pos) else {
                    return Err(DecodeError::truncated(
                        "template field",
                        base_offset + pos,
                        4,
                        body.len() - pos,
                    ));
                };
                let Some(len) = be16(body, pos + 2) else {
                    return Err(DecodeError::truncated(
                        "template field",
                        base_offset + pos,
                        4,
                        body.len() - pos,
                    ));
                };
                pos += 4;
                let mut enterprise = 0;
                let mut id = raw_id;
                if version == 10 && raw_id & 0x8000 != 0 {
                    let Some(pen) = be32(body, pos) else {
                        return Err(DecodeError::truncated(
                            "enterprise number",
                            base_offset + pos,
                            4,
                            body.len() - pos,
                        ));
                    };
                    enterprise = pen;
                    id = raw_id & 0x7fff;
                    pos += 4;
                }
                fields_buf.push(WireField {
                    id,
                    enterprise,
                    len,
                    scope: i < scope_count,
                });
            }
        }
        if tid < 256 && !(version == 10 && fields_buf.is_empty() && (tid == 2 || tid == 3)) {
            return Err(DecodeError::invalid(
                "template id",
                base_offset + start,
                u64::from(tid),
            ));
        }
        f(tid, fields_buf, &body[start..pos]);
    }
    Ok(())
}
