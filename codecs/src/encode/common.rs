//! What the NetFlow v9 and IPFIX writers share: the owned template and value representations,
//! the error type, the set/record writer core and the flow-to-field mapping.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Field length that marks a variable-length field (IPFIX, RFC 7011 section 7).
pub const VARIABLE_LENGTH: u16 = 65535;

/// Why something could not be encoded. Nothing in the encoders panics on bad input; the
/// buffer is left as it was before the failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// More records than the format allows in one message (NetFlow v5: 30).
    #[error("too many records: {count} (at most {max})")]
    TooManyRecords { count: usize, max: usize },
    /// A data record with a number of values different from the template's field count.
    #[error("template {template_id} has {expected} fields, got {got} values")]
    ValueCount {
        template_id: u16,
        expected: usize,
        got: usize,
    },
    /// A value that does not fit its field: a number too large for the field length, an
    /// address or byte string of another length, a number in a variable-length field.
    #[error("value {index} does not fit field {field_id} (length {field_len}) of template {template_id}")]
    ValueMismatch {
        template_id: u16,
        index: usize,
        field_id: u16,
        field_len: u16,
    },
    /// A variable-length value longer than 65535 bytes.
    #[error("variable-length value of {len} bytes (at most 65535)")]
    ValueTooLong { len: usize },
    /// A set or message longer than its 16-bit length field can say.
    #[error("{what} of {len} bytes (at most 65535)")]
    LengthOverflow { what: &'static str, len: usize },
    /// A template the protocol cannot carry (reserved id, no fields, a zero-length field,
    /// an enterprise or variable-length field in NetFlow v9, ...).
    #[error("invalid template {template_id}: {reason}")]
    InvalidTemplate {
        template_id: u16,
        reason: &'static str,
    },
    /// A header field out of its range (NetFlow v5 sampling bits).
    #[error("invalid {what}: {value}")]
    InvalidHeader { what: &'static str, value: u64 },
    /// A call out of order (a record with no data set open, a pre-encoded record for a
    /// variable-length template, ...).
    #[error("{0}")]
    State(&'static str),
    /// Something the protocol has no encoding for (template withdrawal in NetFlow v9).
    #[error("{protocol} cannot encode {what}")]
    Unsupported {
        protocol: &'static str,
        what: &'static str,
    },
    /// `record_flow` met a field that [`FlowRepr`] has no value for (or an IPv4 field for an
    /// IPv6 flow and the reverse).
    #[error("flow has no value for field {field_id} (enterprise {enterprise})")]
    NoFlowValue { field_id: u16, enterprise: u32 },
}

/// One field specifier of a template: information element id, enterprise number (IPFIX only)
/// and length in bytes ([`VARIABLE_LENGTH`] for a variable-length IPFIX field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpecRepr {
    pub id: u16,
    pub enterprise: Option<u32>,
    pub len: u16,
}

impl FieldSpecRepr {
    /// An IANA (or NetFlow v9) field of a fixed length.
    pub const fn new(id: u16, len: u16) -> Self {
        FieldSpecRepr {
            id,
            enterprise: None,
            len,
        }
    }

    /// An enterprise-specific IPFIX field.
    pub const fn enterprise(id: u16, enterprise: u32, len: u16) -> Self {
        FieldSpecRepr {
            id,
            enterprise: Some(enterprise),
            len,
        }
    }

    /// A variable-length IPFIX field.
    pub const fn variable(id: u16) -> Self {
        FieldSpecRepr::new(id, VARIABLE_LENGTH)
    }

    pub const fn is_variable(&self) -> bool {
        self.len == VARIABLE_LENGTH
    }
}

/// A (data) template: id (>= 256) and its field specifiers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateRepr {
    pub id: u16,
    pub fields: Vec<FieldSpecRepr>,
}

/// An options template: id (>= 256), scope fields (at least one) and option fields.
/// Its data records carry the scope values first, then the option values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptionsTemplateRepr {
    pub id: u16,
    pub scope_fields: Vec<FieldSpecRepr>,
    pub fields: Vec<FieldSpecRepr>,
}

/// One value of a data record, in template order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldValue {
    /// Big-endian in the field's length (1..=8; reduced-size encoding when shorter than the
    /// type's natural size, RFC 7011 section 6.2). The value must fit.
    Unsigned(u64),
    /// A 4-byte field, or 4 bytes in a variable-length field.
    Ipv4(Ipv4Addr),
    /// A 16-byte field, or 16 bytes in a variable-length field.
    Ipv6(Ipv6Addr),
    /// A 6-byte field, or 6 bytes in a variable-length field.
    Mac([u8; 6]),
    /// Exactly the field's length, or any length up to 65535 in a variable-length field.
    Bytes(Vec<u8>),
}

/// A simple owned flow, for the generator: `record_flow` writes it through any template whose
/// fields it knows (see [`flow_field_value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowRepr {
    pub src_addr: IpAddr,
    pub dst_addr: IpAddr,
    pub next_hop: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub tcp_flags: u16,
    pub tos: u8,
    pub octets: u64,
    pub packets: u64,
    pub input: u32,
    pub output: u32,
    /// Flow start and end, milliseconds since the epoch. Uptime-relative fields (v5, v9
    /// FIRST/LAST_SWITCHED) are derived from the message header.
    pub start_ms: u64,
    pub end_ms: u64,
    pub src_as: u32,
    pub dst_as: u32,
    pub src_mask: u8,
    pub dst_mask: u8,
    /// 0 ingress, 1 egress (IE 61).
    pub direction: u8,
    /// FLOW_SAMPLER_ID (v9 48) / selectorId (IPFIX 302).
    pub sampler_id: u16,
}

impl Default for FlowRepr {
    fn default() -> Self {
        FlowRepr {
            src_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            tcp_flags: 0,
            tos: 0,
            octets: 0,
            packets: 0,
            input: 0,
            output: 0,
            start_ms: 0,
            end_ms: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
            direction: 0,
            sampler_id: 0,
        }
    }
}

/// A value of a flow field, borrowed-free and `Copy` (what `record_flow` writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowValue {
    Unsigned(u64),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

/// The value of IANA field `id` for `flow`, or `None` when the flow has none (IPv4 fields
/// of an IPv6 flow, fields [`FlowRepr`] does not carry). `boot_ms` is the exporter's boot
/// time in epoch milliseconds, for the uptime-relative fields 21/22.
///
/// Known: 1 octets, 2 packets, 4 protocol, 5 tos, 6 tcp flags, 7/11 ports, 8/12 IPv4
/// addresses, 9/13 and 29/30 masks, 10/14 interfaces, 15/62 next hop, 16/17 AS, 21/22
/// uptime ms, 27/28 IPv6 addresses, 48 and 302 sampler id, 60 ip version, 61 direction,
/// 150/151 seconds, 152/153 milliseconds.
#[inline]
pub fn flow_field_value(flow: &FlowRepr, id: u16, boot_ms: u64) -> Option<FlowValue> {
    use FlowValue::Unsigned as U;
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => Some(FlowValue::Ipv4(a)),
        IpAddr::V6(_) => None,
    };
    let v6 = |a: IpAddr| match a {
        IpAddr::V6(a) => Some(FlowValue::Ipv6(a)),
        IpAddr::V4(_) => None,
    };
    let uptime = |ms: u64| U(u64::from(ms.wrapping_sub(boot_ms) as u32));
    Some(match id {
        1 => U(flow.octets),
        2 => U(flow.packets),
        4 => U(u64::from(flow.protocol)),
        5 => U(u64::from(flow.tos)),
        6 => U(u64::from(flow.tcp_flags)),
        7 => U(u64::from(flow.src_port)),
        8 => return v4(flow.src_addr),
        9 | 29 => U(u64::from(flow.src_mask)),
        10 => U(u64::from(flow.input)),
        11 => U(u64::from(flow.dst_port)),
        12 => return v4(flow.dst_addr),
        13 | 30 => U(u64::from(flow.dst_mask)),
        14 => U(u64::from(flow.output)),
        15 => return v4(flow.next_hop),
        16 => U(u64::from(flow.src_as)),
        17 => U(u64::from(flow.dst_as)),
        21 => uptime(flow.end_ms),
        22 => uptime(flow.start_ms),
        27 => return v6(flow.src_addr),
        28 => return v6(flow.dst_addr),
        48 | 302 => U(u64::from(flow.sampler_id)),
        60 => U(if flow.src_addr.is_ipv4() { 4 } else { 6 }),
        61 => U(u64::from(flow.direction)),
        62 => return v6(flow.next_hop),
        150 => U(flow.start_ms / 1000),
        151 => U(flow.end_ms / 1000),
        152 => U(flow.start_ms),
        153 => U(flow.end_ms),
        _ => return None,
    })
}

/// Write `v` big-endian in `len` bytes (1..=8); `false` when it does not fit.
#[inline]
pub(crate) fn put_uint(out: &mut Vec<u8>, v: u64, len: u16) -> bool {
    let len = usize::from(len);
    if len == 0 || len > 8 || (len < 8 && v >> (8 * len) != 0) {
        return false;
    }
    out.extend_from_slice(&v.to_be_bytes()[8 - len..]);
    true
}

/// Write an IPFIX variable-length prefix for `len` bytes.
#[inline]
pub(crate) fn put_varlen_prefix(out: &mut Vec<u8>, len: usize) -> Result<(), EncodeError> {
    if len < 255 {
        out.push(len as u8);
    } else if len <= 65535 {
        out.push(255);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        return Err(EncodeError::ValueTooLong { len });
    }
    Ok(())
}

#[inline]
pub(crate) fn patch_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Which of the two template-based protocols a [`SetWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    V9,
    Ipfix,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::V9 => "netflow v9",
            Proto::Ipfix => "ipfix",
        }
    }
    fn template_set_id(self) -> u16 {
        match self {
            Proto::V9 => 0,
            Proto::Ipfix => 2,
        }
    }
    fn options_set_id(self) -> u16 {
        match self {
            Proto::V9 => 1,
            Proto::Ipfix => 3,
        }
    }
}

/// The fields of the data set being written: scope fields (options templates) then fields.
#[derive(Debug, Clone, Copy)]
struct Layout<'a> {
    template_id: u16,
    scope: &'a [FieldSpecRepr],
    fields: &'a [FieldSpecRepr],
    /// Record length when no field is variable-length.
    fixed_len: Option<usize>,
    /// Smallest possible record length (a variable-length field counts 1).
    min_len: usize,
}

impl<'a> Layout<'a> {
    fn new(template_id: u16, scope: &'a [FieldSpecRepr], fields: &'a [FieldSpecRepr]) -> Self {
        let mut fixed = true;
        let mut min_len = 0usize;
        for f in scope.iter().chain(fields) {
            if f.is_variable() {
                fixed = false;
                min_len += 1;
            } else {
                min_len += usize::from(f.len);
            }
        }
        Layout {
            template_id,
            scope,
            fields,
            fixed_len: fixed.then_some(min_len),
            min_len,
        }
    }

    #[inline]
    fn specs(&self) -> impl Iterator<Item = &'a FieldSpecRepr> + 'a {
        self.scope.iter().chain(self.fields.iter())
    }

    fn count(&self) -> usize {
        self.scope.len() + self.fields.len()
    }
}

/// The writer core shared by [`crate::encode::netflow9::Writer`] and
/// [`crate::encode::ipfix::Writer`]: appends one message to the caller's buffer.
#[derive(Debug)]
pub(crate) struct SetWriter<'a> {
    out: &'a mut Vec<u8>,
    proto: Proto,
    msg_start: usize,
    /// Offset of the open data set's header.
    set_start: Option<usize>,
    layout: Option<Layout<'a>>,
    pad: bool,
    /// Records of every kind (the v9 header count).
    records: u32,
    data_records: u32,
    pub(crate) boot_ms: u64,
}

impl<'a> SetWriter<'a> {
    /// Start a message at the end of `out` with `header` (count/length patched by `finish`).
    pub(crate) fn begin(out: &'a mut Vec<u8>, proto: Proto, header: &[u8], boot_ms: u64) -> Self {
        let msg_start = out.len();
        out.extend_from_slice(header);
        SetWriter {
            out,
            proto,
            msg_start,
            set_start: None,
            layout: None,
            pad: proto == Proto::V9,
            records: 0,
            data_records: 0,
            boot_ms,
        }
    }

    pub(crate) fn set_padding(&mut self, pad: bool) {
        self.pad = pad;
    }

    pub(crate) fn message_len(&self) -> usize {
        self.out.len() - self.msg_start
    }

    pub(crate) fn record_count(&self) -> u32 {
        self.records
    }

    pub(crate) fn data_record_count(&self) -> u32 {
        self.data_records
    }

    /// Close the set that starts at `start`: pad (unless a record of `min_record` bytes could
    /// be mistaken for the padding), check and patch its length.
    fn close_set(&mut self, start: usize, min_record: usize) -> Result<(), EncodeError> {
        let before = self.out.len();
        if self.pad {
            let rem = (self.out.len() - start) % 4;
            if rem != 0 && 4 - rem < min_record {
                self.out.resize(self.out.len() + 4 - rem, 0);
            }
        }
        let len = self.out.len() - start;
        if len > 65535 {
            self.out.truncate(before);
            return Err(EncodeError::LengthOverflow { what: "set", len });
        }
        patch_u16(self.out, start + 2, len as u16);
        Ok(())
    }

    fn check_message_len(&self) -> Result<(), EncodeError> {
        let len = self.message_len();
        if self.proto == Proto::Ipfix && len > 65535 {
            return Err(EncodeError::LengthOverflow {
                what: "ipfix message",
                len,
            });
        }
        Ok(())
    }

    fn open_set(&mut self, id: u16) -> usize {
        let start = self.out.len();
        self.out.extend_from_slice(&id.to_be_bytes());
        self.out.extend_from_slice(&[0, 0]);
        start
    }

    fn check_spec(&self, template_id: u16, f: &FieldSpecRepr) -> Result<(), EncodeError> {
        let bad = |reason| {
            Err(EncodeError::InvalidTemplate {
                template_id,
                reason,
            })
        };
        if f.len == 0 {
            return bad("zero-length field");
        }
        if self.proto == Proto::V9 {
            if f.enterprise.is_some() {
                return bad("enterprise field in netflow v9");
            }
            if f.is_variable() {
                return bad("variable-length field in netflow v9");
            }
        } else if f.id & 0x8000 != 0 {
            return bad("field id above 32767 (the enterprise bit is set by `enterprise`)");
        }
        Ok(())
    }

    fn put_spec(&mut self, f: &FieldSpecRepr) {
        let id = if f.enterprise.is_some() {
            f.id | 0x8000
        } else {
            f.id
        };
        self.out.extend_from_slice(&id.to_be_bytes());
        self.out.extend_from_slice(&f.len.to_be_bytes());
        if let Some(pen) = f.enterprise {
            self.out.extend_from_slice(&pen.to_be_bytes());
        }
    }

    /// Run `body` for a new set of `set_id`; on error the buffer is restored.
    fn with_set(
        &mut self,
        set_id: u16,
        body: impl FnOnce(&mut Self) -> Result<u32, EncodeError>,
    ) -> Result<(), EncodeError> {
        self.end_data_set()?;
        let start = self.open_set(set_id);
        let res = body(self).and_then(|n| {
            // Template records are at least 4 bytes; padding is at most 3.
            self.close_set(start, 4)?;
            self.check_message_len()?;
            Ok(n)
        });
        match res {
            Ok(n) => {
                self.records += n;
                Ok(())
            }
            Err(e) => {
                self.out.truncate(start);
                Err(e)
            }
        }
    }

    pub(crate) fn template_set(&mut self, templates: &[TemplateRepr]) -> Result<(), EncodeError> {
        let set_id = self.proto.template_set_id();
        self.with_set(set_id, |w| {
            for t in templates {
                if t.id < 256 {
                    return Err(EncodeError::InvalidTemplate {
                        template_id: t.id,
                        reason: "template id below 256",
                    });
                }
                if t.fields.is_empty() || t.fields.len() > 65535 {
                    return Err(EncodeError::InvalidTemplate {
                        template_id: t.id,
                        reason: "field count not in 1..=65535",
                    });
                }
                for f in &t.fields {
                    w.check_spec(t.id, f)?;
                }
                w.out.extend_from_slice(&t.id.to_be_bytes());
                w.out
                    .extend_from_slice(&(t.fields.len() as u16).to_be_bytes());
                for f in &t.fields {
                    w.put_spec(f);
                }
            }
            Ok(templates.len() as u32)
        })
    }

    pub(crate) fn options_template_set(
        &mut self,
        templates: &[OptionsTemplateRepr],
    ) -> Result<(), EncodeError> {
        let set_id = self.proto.options_set_id();
        let proto = self.proto;
        self.with_set(set_id, |w| {
            for t in templates {
                let bad = |reason| {
                    Err(EncodeError::InvalidTemplate {
                        template_id: t.id,
                        reason,
                    })
                };
                if t.id < 256 {
                    return bad("template id below 256");
                }
                if t.scope_fields.is_empty() {
                    return bad("options template without scope fields");
                }
                let n = t.scope_fields.len() + t.fields.len();
                if n > 65535 || (proto == Proto::V9 && n * 4 > 65535) {
                    return bad("too many fields");
                }
                for f in t.scope_fields.iter().chain(&t.fields) {
                    w.check_spec(t.id, f)?;
                }
                w.out.extend_from_slice(&t.id.to_be_bytes());
                match proto {
                    // RFC 3954 6.1: option scope length and option length, in bytes.
                    Proto::V9 => {
                        let scope_len = (t.scope_fields.len() * 4) as u16;
                        let opt_len = (t.fields.len() * 4) as u16;
                        w.out.extend_from_slice(&scope_len.to_be_bytes());
                        w.out.extend_from_slice(&opt_len.to_be_bytes());
                    }
                    // RFC 7011 3.4.2.2: field count (all fields), scope field count.
                    Proto::Ipfix => {
                        w.out.extend_from_slice(&(n as u16).to_be_bytes());
                        let scope_n = t.scope_fields.len() as u16;
                        w.out.extend_from_slice(&scope_n.to_be_bytes());
                    }
                }
                for f in t.scope_fields.iter().chain(&t.fields) {
                    w.put_spec(f);
                }
            }
            Ok(templates.len() as u32)
        })
    }

    /// Withdrawal records (template id, field count 0) in a template (`options == false`) or
    /// options template set. IPFIX only; the id of the set itself (2 or 3) withdraws all.
    pub(crate) fn withdrawal(&mut self, ids: &[u16], options: bool) -> Result<(), EncodeError> {
        if self.proto == Proto::V9 {
            return Err(EncodeError::Unsupported {
                protocol: self.proto.name(),
                what: "template withdrawal",
            });
        }
        let set_id = if options {
            self.proto.options_set_id()
        } else {
            self.proto.template_set_id()
        };
        self.with_set(set_id, |w| {
            for &id in ids {
                if id < 256 && id != set_id {
                    return Err(EncodeError::InvalidTemplate {
                        template_id: id,
                        reason: "withdrawal of an id below 256 other than the set id",
                    });
                }
                w.out.extend_from_slice(&id.to_be_bytes());
                w.out.extend_from_slice(&[0, 0]);
            }
            Ok(ids.len() as u32)
        })
    }

    pub(crate) fn begin_data_set(
        &mut self,
        template_id: u16,
        scope: &'a [FieldSpecRepr],
        fields: &'a [FieldSpecRepr],
    ) -> Result<(), EncodeError> {
        self.end_data_set()?;
        if template_id < 256 {
            return Err(EncodeError::InvalidTemplate {
                template_id,
                reason: "data set id below 256",
            });
        }
        let layout = Layout::new(template_id, scope, fields);
        if layout.count() == 0 {
            return Err(EncodeError::InvalidTemplate {
                template_id,
                reason: "template without fields",
            });
        }
        self.set_start = Some(self.open_set(template_id));
        self.layout = Some(layout);
        Ok(())
    }

    /// Close the open data set, if any.
    pub(crate) fn end_data_set(&mut self) -> Result<(), EncodeError> {
        if let (Some(start), Some(layout)) = (self.set_start, self.layout) {
            self.close_set(start, layout.min_len)?;
            self.set_start = None;
            self.layout = None;
        }
        Ok(())
    }

    #[inline]
    fn open_layout(&self) -> Result<(usize, Layout<'a>), EncodeError> {
        match (self.set_start, self.layout) {
            (Some(s), Some(l)) => Ok((s, l)),
            _ => Err(EncodeError::State("no data set is open")),
        }
    }

    /// After a record was appended from `rec_start`: check lengths, count it, or undo it.
    #[inline]
    fn commit_record(&mut self, set_start: usize, rec_start: usize) -> Result<(), EncodeError> {
        let set_len = self.out.len() - set_start;
        let err = if set_len > 65535 {
            Some(EncodeError::LengthOverflow {
                what: "set",
                len: set_len,
            })
        } else {
            self.check_message_len().err()
        };
        if let Some(e) = err {
            self.out.truncate(rec_start);
            return Err(e);
        }
        self.records += 1;
        self.data_records += 1;
        Ok(())
    }

    pub(crate) fn record(&mut self, values: &[FieldValue]) -> Result<(), EncodeError> {
        let (set_start, layout) = self.open_layout()?;
        if values.len() != layout.count() {
            return Err(EncodeError::ValueCount {
                template_id: layout.template_id,
                expected: layout.count(),
                got: values.len(),
            });
        }
        let rec_start = self.out.len();
        for (index, (spec, v)) in layout.specs().zip(values).enumerate() {
            if let Err(e) = put_value(self.out, spec, v) {
                self.out.truncate(rec_start);
                return Err(match e {
                    PutError::TooLong(len) => EncodeError::ValueTooLong { len },
                    PutError::Mismatch => EncodeError::ValueMismatch {
                        template_id: layout.template_id,
                        index,
                        field_id: spec.id,
                        field_len: spec.len,
                    },
                });
            }
        }
        self.commit_record(set_start, rec_start)
    }

    pub(crate) fn record_bytes(&mut self, rec: &[u8]) -> Result<(), EncodeError> {
        let (set_start, layout) = self.open_layout()?;
        match layout.fixed_len {
            Some(n) if n == rec.len() => {}
            Some(_) => return Err(EncodeError::State("pre-encoded record of the wrong length")),
            None => {
                return Err(EncodeError::State(
                    "pre-encoded records need a fixed-length template",
                ))
            }
        }
        let rec_start = self.out.len();
        self.out.extend_from_slice(rec);
        self.commit_record(set_start, rec_start)
    }

    pub(crate) fn record_flow(&mut self, flow: &FlowRepr) -> Result<(), EncodeError> {
        let (set_start, layout) = self.open_layout()?;
        let rec_start = self.out.len();
        let res = match layout.fixed_len {
            // Fast path: size the record once, write each field in place.
            Some(n) => {
                self.out.resize(rec_start + n, 0);
                write_flow_fixed(&mut self.out[rec_start..], &layout, flow, self.boot_ms)
            }
            None => write_flow_var(self.out, &layout, flow, self.boot_ms),
        };
        if let Err(e) = res {
            self.out.truncate(rec_start);
            return Err(e);
        }
        self.commit_record(set_start, rec_start)
    }

    /// Close the open set, patch header bytes 2..4 (v9: record count, IPFIX: message length)
    /// and return the message.
    pub(crate) fn finish(mut self) -> Result<&'a [u8], EncodeError> {
        self.end_data_set()?;
        self.check_message_len()?;
        let v = match self.proto {
            // RFC 3954 5.1: count of all records (template, options and data) in the packet.
            Proto::V9 => u16::try_from(self.records).map_err(|_| EncodeError::TooManyRecords {
                count: self.records as usize,
                max: 65535,
            })?,
            Proto::Ipfix => self.message_len() as u16,
        };
        let start = self.msg_start;
        let out: &'a mut Vec<u8> = self.out;
        patch_u16(out, start + 2, v);
        Ok(&out[start..])
    }
}

enum PutError {
    Mismatch,
    TooLong(usize),
}

#[inline]
fn put_exact(out: &mut Vec<u8>, b: &[u8], len: u16) -> bool {
    if b.len() != usize::from(len) {
        return false;
    }
    out.extend_from_slice(b);
    true
}

#[inline]
fn put_var(out: &mut Vec<u8>, b: &[u8]) -> Result<(), EncodeError> {
    put_varlen_prefix(out, b.len())?;
    out.extend_from_slice(b);
    Ok(())
}

#[inline]
fn put_value(out: &mut Vec<u8>, spec: &FieldSpecRepr, v: &FieldValue) -> Result<(), PutError> {
    let bytes: &[u8] = match v {
        FieldValue::Unsigned(n) => {
            return if !spec.is_variable() && put_uint(out, *n, spec.len) {
                Ok(())
            } else {
                Err(PutError::Mismatch)
            };
        }
        FieldValue::Ipv4(a) => &a.octets(),
        FieldValue::Ipv6(a) => &a.octets(),
        FieldValue::Mac(m) => m,
        FieldValue::Bytes(b) => b,
    };
    if spec.is_variable() {
        put_var(out, bytes).map_err(|_| PutError::TooLong(bytes.len()))
    } else if put_exact(out, bytes, spec.len) {
        Ok(())
    } else {
        Err(PutError::Mismatch)
    }
}

#[inline]
fn flow_value(
    spec: &FieldSpecRepr,
    flow: &FlowRepr,
    boot_ms: u64,
) -> Result<FlowValue, EncodeError> {
    let v = match spec.enterprise {
        None => flow_field_value(flow, spec.id, boot_ms),
        Some(_) => None,
    };
    v.ok_or(EncodeError::NoFlowValue {
        field_id: spec.id,
        enterprise: spec.enterprise.unwrap_or(0),
    })
}

#[cold]
fn flow_mismatch(layout: &Layout<'_>, index: usize, spec: &FieldSpecRepr) -> EncodeError {
    EncodeError::ValueMismatch {
        template_id: layout.template_id,
        index,
        field_id: spec.id,
        field_len: spec.len,
    }
}

/// Write `v` big-endian into all of `dst` (1..=8 bytes); `false` when it does not fit.
#[inline]
fn put_uint_into(dst: &mut [u8], v: u64) -> bool {
    match dst.len() {
        1 => match u8::try_from(v) {
            Ok(x) => dst[0] = x,
            Err(_) => return false,
        },
        2 => match u16::try_from(v) {
            Ok(x) => dst.copy_from_slice(&x.to_be_bytes()),
            Err(_) => return false,
        },
        4 => match u32::try_from(v) {
            Ok(x) => dst.copy_from_slice(&x.to_be_bytes()),
            Err(_) => return false,
        },
        8 => dst.copy_from_slice(&v.to_be_bytes()),
        n @ (3 | 5 | 6 | 7) => {
            if v >> (8 * n) != 0 {
                return false;
            }
            dst.copy_from_slice(&v.to_be_bytes()[8 - n..]);
        }
        _ => return false,
    }
    true
}

/// `record_flow` for a template without variable-length fields: `rec` is the zeroed record.
#[inline]
fn write_flow_fixed(
    rec: &mut [u8],
    layout: &Layout<'_>,
    flow: &FlowRepr,
    boot_ms: u64,
) -> Result<(), EncodeError> {
    let mut at = 0;
    for (index, spec) in layout.specs().enumerate() {
        let len = usize::from(spec.len);
        let dst = &mut rec[at..at + len];
        at += len;
        let ok = match flow_value(spec, flow, boot_ms)? {
            FlowValue::Unsigned(n) => put_uint_into(dst, n),
            FlowValue::Ipv4(a) if len == 4 => {
                dst.copy_from_slice(&a.octets());
                true
            }
            FlowValue::Ipv6(a) if len == 16 => {
                dst.copy_from_slice(&a.octets());
                true
            }
            _ => false,
        };
        if !ok {
            return Err(flow_mismatch(layout, index, spec));
        }
    }
    Ok(())
}

/// `record_flow` for a template with variable-length fields, appended to `out`.
fn write_flow_var(
    out: &mut Vec<u8>,
    layout: &Layout<'_>,
    flow: &FlowRepr,
    boot_ms: u64,
) -> Result<(), EncodeError> {
    for (index, spec) in layout.specs().enumerate() {
        let ok = match (flow_value(spec, flow, boot_ms)?, spec.is_variable()) {
            (FlowValue::Unsigned(n), false) => put_uint(out, n, spec.len),
            (FlowValue::Ipv4(a), false) => put_exact(out, &a.octets(), spec.len),
            (FlowValue::Ipv6(a), false) => put_exact(out, &a.octets(), spec.len),
            (FlowValue::Ipv4(a), true) => put_var(out, &a.octets()).is_ok(),
            (FlowValue::Ipv6(a), true) => put_var(out, &a.octets()).is_ok(),
            (FlowValue::Unsigned(_), true) => false,
        };
        if !ok {
            return Err(flow_mismatch(layout, index, spec));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_uint_reduced_size() {
        let mut b = Vec::new();
        assert!(put_uint(&mut b, 0x0102, 2));
        assert!(put_uint(&mut b, 0x03, 1));
        assert!(put_uint(&mut b, 0x0405, 3));
        assert!(put_uint(&mut b, u64::MAX, 8));
        assert_eq!(
            b,
            [1, 2, 3, 0, 4, 5, 255, 255, 255, 255, 255, 255, 255, 255]
        );
        assert!(!put_uint(&mut b, 256, 1));
        assert!(!put_uint(&mut b, 1, 0));
        assert!(!put_uint(&mut b, 1, 9));
        assert_eq!(b.len(), 14);
    }

    #[test]
    fn varlen_prefix() {
        let mut b = Vec::new();
        put_varlen_prefix(&mut b, 0).unwrap();
        put_varlen_prefix(&mut b, 254).unwrap();
        put_varlen_prefix(&mut b, 255).unwrap();
        put_varlen_prefix(&mut b, 65535).unwrap();
        assert_eq!(b, [0, 254, 255, 0, 255, 255, 255, 255]);
        assert_eq!(
            put_varlen_prefix(&mut b, 65536),
            Err(EncodeError::ValueTooLong { len: 65536 })
        );
    }

    #[test]
    fn flow_values() {
        let f = FlowRepr {
            src_addr: "10.0.0.1".parse().unwrap(),
            start_ms: 1_700_000_000_500,
            end_ms: 1_700_000_001_000,
            ..FlowRepr::default()
        };
        let boot = 1_700_000_000_000;
        assert_eq!(
            flow_field_value(&f, 8, boot),
            Some(FlowValue::Ipv4("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(flow_field_value(&f, 27, boot), None);
        assert_eq!(
            flow_field_value(&f, 22, boot),
            Some(FlowValue::Unsigned(500))
        );
        assert_eq!(
            flow_field_value(&f, 21, boot),
            Some(FlowValue::Unsigned(1000))
        );
        assert_eq!(flow_field_value(&f, 60, boot), Some(FlowValue::Unsigned(4)));
        assert_eq!(flow_field_value(&f, 999, boot), None);
    }
}

/// Round trips through a minimal, test-only v9/IPFIX parser (the crate's decoder is written
/// elsewhere): arbitrary templates, options templates and records, with and without padding.
#[cfg(test)]
mod round_trip {
    use super::*;
    use crate::encode::{ipfix, netflow9};
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy)]
    enum Kind {
        U(u16),
        V4(bool),
        V6(bool),
        Mac(bool),
        Bytes(Option<u16>),
    }

    impl Kind {
        fn len(self) -> u16 {
            let var = |v: bool, n| if v { VARIABLE_LENGTH } else { n };
            match self {
                Kind::U(n) => n,
                Kind::V4(v) => var(v, 4),
                Kind::V6(v) => var(v, 16),
                Kind::Mac(v) => var(v, 6),
                Kind::Bytes(n) => n.unwrap_or(VARIABLE_LENGTH),
            }
        }

        fn value(self) -> BoxedStrategy<FieldValue> {
            match self {
                Kind::U(8) => any::<u64>().prop_map(FieldValue::Unsigned).boxed(),
                Kind::U(n) => (0..1u64 << (8 * n)).prop_map(FieldValue::Unsigned).boxed(),
                Kind::V4(_) => any::<u32>()
                    .prop_map(|a| FieldValue::Ipv4(a.into()))
                    .boxed(),
                Kind::V6(_) => any::<u128>()
                    .prop_map(|a| FieldValue::Ipv6(a.into()))
                    .boxed(),
                Kind::Mac(_) => any::<[u8; 6]>().prop_map(FieldValue::Mac).boxed(),
                Kind::Bytes(Some(n)) => proptest::collection::vec(any::<u8>(), usize::from(n))
                    .prop_map(FieldValue::Bytes)
                    .boxed(),
                Kind::Bytes(None) => prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..20),
                    proptest::collection::vec(any::<u8>(), 250..300),
                ]
                .prop_map(FieldValue::Bytes)
                .boxed(),
            }
        }

        /// Read a value of this kind back from its field bytes.
        fn read(self, b: &[u8]) -> FieldValue {
            match self {
                Kind::U(_) => FieldValue::Unsigned(b.iter().fold(0, |v, &x| v << 8 | u64::from(x))),
                Kind::V4(_) => FieldValue::Ipv4(<[u8; 4]>::try_from(b).unwrap().into()),
                Kind::V6(_) => FieldValue::Ipv6(<[u8; 16]>::try_from(b).unwrap().into()),
                Kind::Mac(_) => FieldValue::Mac(b.try_into().unwrap()),
                Kind::Bytes(_) => FieldValue::Bytes(b.to_vec()),
            }
        }
    }

    fn arb_kind(ipfix: bool) -> impl Strategy<Value = Kind> {
        let var = if ipfix {
            any::<bool>().boxed()
        } else {
            Just(false).boxed()
        };
        prop_oneof![
            (1u16..=8).prop_map(Kind::U),
            var.clone().prop_map(Kind::V4),
            var.clone().prop_map(Kind::V6),
            var.clone().prop_map(Kind::Mac),
            (1u16..12, var).prop_map(|(n, v)| Kind::Bytes((!v).then_some(n))),
        ]
    }

    type Field = (FieldSpecRepr, Kind);

    fn arb_fields(ipfix: bool, n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Field>> {
        let ent = if ipfix {
            proptest::option::of(any::<u32>()).boxed()
        } else {
            Just(None).boxed()
        };
        proptest::collection::vec((1u16..0x8000, ent, arb_kind(ipfix)), n).prop_map(|v| {
            v.into_iter()
                .map(|(id, enterprise, k)| {
                    let spec = FieldSpecRepr {
                        id,
                        enterprise,
                        len: k.len(),
                    };
                    (spec, k)
                })
                .collect()
        })
    }

    fn arb_records(kinds: Vec<Kind>) -> impl Strategy<Value = Vec<Vec<FieldValue>>> {
        let rec: Vec<_> = kinds.iter().map(|k| k.value()).collect();
        proptest::collection::vec(rec, 0..5)
    }

    #[derive(Debug, Clone)]
    struct Case {
        fields: Vec<Field>,
        scope: Vec<Field>,
        options: Vec<Field>,
        records: Vec<Vec<FieldValue>>,
        option_records: Vec<Vec<FieldValue>>,
        pad: bool,
    }

    fn kinds(f: &[Field]) -> Vec<Kind> {
        f.iter().map(|f| f.1).collect()
    }

    fn arb_case(ipfix: bool) -> impl Strategy<Value = Case> {
        (
            arb_fields(ipfix, 1..8),
            arb_fields(ipfix, 1..3),
            arb_fields(ipfix, 0..4),
            any::<bool>(),
        )
            .prop_flat_map(|(fields, scope, options, pad)| {
                let mut ok = kinds(&scope);
                ok.extend(kinds(&options));
                (
                    arb_records(kinds(&fields)),
                    arb_records(ok),
                    Just((fields, scope, options, pad)),
                )
            })
            .prop_map(
                |(records, option_records, (fields, scope, options, pad))| Case {
                    fields,
                    scope,
                    options,
                    records,
                    option_records,
                    pad,
                },
            )
    }

    fn specs(f: &[Field]) -> Vec<FieldSpecRepr> {
        f.iter().map(|f| f.0).collect()
    }

    fn be16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn read_specs(b: &[u8], mut at: usize, n: usize, ipfix: bool) -> (Vec<FieldSpecRepr>, usize) {
        let mut v = Vec::new();
        for _ in 0..n {
            let (id, len) = (be16(b, at), be16(b, at + 2));
            at += 4;
            let enterprise = (ipfix && id & 0x8000 != 0).then(|| {
                at += 4;
                u32::from_be_bytes(b[at - 4..at].try_into().unwrap())
            });
            v.push(FieldSpecRepr {
                id: id & if ipfix { 0x7fff } else { 0xffff },
                enterprise,
                len,
            });
        }
        (v, at)
    }

    /// Data records of a set body, read with `kinds`; checks that what follows is padding:
    /// none without `pad`, else up to a 4-byte boundary unless a record could be that short.
    fn read_records(
        body: &[u8],
        kinds: &[Kind],
        specs: &[FieldSpecRepr],
        pad: bool,
    ) -> Vec<Vec<FieldValue>> {
        let min: usize = specs
            .iter()
            .map(|s| {
                if s.is_variable() {
                    1
                } else {
                    usize::from(s.len)
                }
            })
            .sum();
        let mut out = Vec::new();
        let mut at = 0;
        while body.len() - at >= min {
            let mut rec = Vec::new();
            for (k, s) in kinds.iter().zip(specs) {
                let len = if s.is_variable() {
                    let l = usize::from(body[at]);
                    at += 1;
                    if l == 255 {
                        at += 2;
                        usize::from(be16(body, at - 2))
                    } else {
                        l
                    }
                } else {
                    usize::from(s.len)
                };
                rec.push(k.read(&body[at..at + len]));
                at += len;
            }
            out.push(rec);
        }
        let left = body.len() - at;
        assert!(body[at..].iter().all(|&b| b == 0), "padding not zero");
        if pad {
            let unpadded = (4 + at) % 4;
            let want = if unpadded != 0 && 4 - unpadded < min {
                4 - unpadded
            } else {
                0
            };
            assert_eq!(left, want, "padding");
        } else {
            assert_eq!(left, 0, "padding without set_padding");
        }
        out
    }

    fn check_template_padding(body: &[u8], end: usize, pad: bool) -> Result<(), TestCaseError> {
        prop_assert!(body[end..].iter().all(|&x| x == 0));
        if pad {
            prop_assert_eq!((4 + body.len()) % 4, 0);
            prop_assert!(body.len() - end < 4);
        } else {
            prop_assert_eq!(end, body.len());
        }
        Ok(())
    }

    fn check(c: &Case, ipfix: bool) -> Result<(), TestCaseError> {
        let t = TemplateRepr {
            id: 300,
            fields: specs(&c.fields),
        };
        let o = OptionsTemplateRepr {
            id: 301,
            scope_fields: specs(&c.scope),
            fields: specs(&c.options),
        };
        let mut buf = vec![0xaa]; // the message starts after what the buffer holds
        let msg = if ipfix {
            let h = ipfix::HeaderRepr {
                export_time: 1,
                sequence: 2,
                observation_domain: 3,
            };
            let mut w = ipfix::Writer::begin(&mut buf, &h);
            w.set_padding(c.pad);
            w.template_set(std::slice::from_ref(&t)).unwrap();
            w.options_template_set(std::slice::from_ref(&o)).unwrap();
            w.begin_data_set(&t).unwrap();
            for r in &c.records {
                w.record(r).unwrap();
            }
            w.begin_options_data_set(&o).unwrap();
            for r in &c.option_records {
                w.record(r).unwrap();
            }
            w.finish().unwrap().to_vec()
        } else {
            let h = netflow9::HeaderRepr {
                sys_uptime_ms: 1,
                unix_secs: 2,
                sequence: 3,
                source_id: 4,
            };
            let mut w = netflow9::Writer::begin(&mut buf, &h);
            w.set_padding(c.pad);
            w.template_set(std::slice::from_ref(&t)).unwrap();
            w.options_template_set(std::slice::from_ref(&o)).unwrap();
            w.begin_data_set(&t).unwrap();
            for r in &c.records {
                w.record(r).unwrap();
            }
            w.begin_options_data_set(&o).unwrap();
            for r in &c.option_records {
                w.record(r).unwrap();
            }
            w.finish().unwrap().to_vec()
        };
        prop_assert_eq!(buf.len(), 1 + msg.len());
        let hdr_len = if ipfix { 16 } else { 20 };
        if ipfix {
            prop_assert_eq!(be16(&msg, 0), 10);
            prop_assert_eq!(usize::from(be16(&msg, 2)), msg.len());
        } else {
            prop_assert_eq!(be16(&msg, 0), 9);
            let n = 2 + c.records.len() + c.option_records.len();
            prop_assert_eq!(usize::from(be16(&msg, 2)), n);
        }
        // Walk the sets.
        let mut sets = Vec::new();
        let mut at = hdr_len;
        while at < msg.len() {
            let (id, len) = (be16(&msg, at), usize::from(be16(&msg, at + 2)));
            prop_assert!(len >= 4 && at + len <= msg.len());
            sets.push((id, &msg[at + 4..at + len]));
            at += len;
        }
        prop_assert_eq!(sets.len(), 4);
        let (tid, oid) = if ipfix { (2, 3) } else { (0, 1) };
        // Template set.
        prop_assert_eq!(sets[0].0, tid);
        let b = sets[0].1;
        prop_assert_eq!(be16(b, 0), 300);
        let (fields, end) = read_specs(b, 4, usize::from(be16(b, 2)), ipfix);
        prop_assert_eq!(&fields, &t.fields);
        check_template_padding(b, end, c.pad)?;
        // Options template set.
        prop_assert_eq!(sets[1].0, oid);
        let b = sets[1].1;
        prop_assert_eq!(be16(b, 0), 301);
        let (n_scope, n_opt) = if ipfix {
            let total = usize::from(be16(b, 2));
            let scope = usize::from(be16(b, 4));
            (scope, total - scope)
        } else {
            (usize::from(be16(b, 2)) / 4, usize::from(be16(b, 4)) / 4)
        };
        let (scope, end) = read_specs(b, 6, n_scope, ipfix);
        let (opts, end) = read_specs(b, end, n_opt, ipfix);
        prop_assert_eq!(&scope, &o.scope_fields);
        prop_assert_eq!(&opts, &o.fields);
        check_template_padding(b, end, c.pad)?;
        // Data sets.
        prop_assert_eq!(sets[2].0, 300);
        prop_assert_eq!(
            read_records(sets[2].1, &kinds(&c.fields), &t.fields, c.pad),
            c.records.clone()
        );
        prop_assert_eq!(sets[3].0, 301);
        let mut ok = kinds(&c.scope);
        ok.extend(kinds(&c.options));
        let mut os = o.scope_fields.clone();
        os.extend(&o.fields);
        prop_assert_eq!(
            read_records(sets[3].1, &ok, &os, c.pad),
            c.option_records.clone()
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn ipfix_round_trip(c in arb_case(true)) {
            check(&c, true)?;
        }

        #[test]
        fn netflow9_round_trip(c in arb_case(false)) {
            check(&c, false)?;
        }
    }
}
