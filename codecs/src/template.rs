//! NetFlow v9 / IPFIX templates: parsed from template sets, compiled once into field specs
//! with a precomputed "setter" per field, then used to read data records in place.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{be16, be32, be_uint, DecodeError};
use crate::ie::{self, IeType, REVERSE_PEN};
use crate::json::{Cursor, JsonKey, JsonWriter, KeyBuf, WideKey, WIDE_KEY};
use crate::record::{FlowProtocol, FlowRecord};

/// Field length meaning "variable length" (RFC 7011 section 7).
pub const VARLEN: u16 = 65535;

/// Most fields a template may have: more is treated as hostile.
pub const MAX_FIELDS: usize = 1024;

/// What a field sets in the record. Decided once, when the template is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setter {
    None,
    Bytes,
    Packets,
    BytesTotal,
    PacketsTotal,
    InitiatorBytes,
    InitiatorPackets,
    ResponderBytes,
    ResponderPackets,
    ReverseBytes,
    ReversePackets,
    ReverseTcpFlags,
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Tos,
    TcpFlags,
    InIf,
    OutIf,
    SrcAs,
    DstAs,
    SrcMask,
    DstMask,
    NextHop,
    BgpNextHop,
    SrcMac,
    DstMac,
    Vlan,
    Dot1qVlan,
    IpVersion,
    Direction,
    EndReason,
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    MplsLabel,
    StartUptime,
    EndUptime,
    StartSeconds,
    EndSeconds,
    StartMillis,
    EndMillis,
    StartMicros,
    EndMicros,
    StartNanos,
    EndNanos,
    StartDeltaMicros,
    EndDeltaMicros,
    // sampling and options
    SamplingInterval,
    SamplingAlgorithm,
    SamplerId,
    SamplerRandomInterval,
    SelectorAlgorithm,
    SamplingPacketInterval,
    SamplingPacketSpace,
    SamplingSize,
    SamplingPopulation,
    SystemInitTime,
}

fn setter_for(version: u16, pen: u32, id: u16, scope: bool) -> Setter {
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

/// One compiled field of a template.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub id: u16,
    /// Private enterprise number; 0 for IANA elements and all v9 fields.
    pub enterprise: u32,
    /// Wire length, or [`VARLEN`].
    pub len: u16,
    pub ty: IeType,
    pub setter: Setter,
    /// JSON key under `netflow.` (unique within the template).
    pub name: Cow<'static, str>,
    /// Part of the options scope.
    pub scope: bool,
    /// `,"name":`: the key as the JSON writer copies it.
    pub(crate) key: KeyBuf,
    /// How the value is written under `netflow.*`.
    pub(crate) json: JsonKind,
}

/// How a field's value is written in JSON, decided from its type and length when the
/// template is compiled (variable-length fields: when the record is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    /// paddingOctets: not written
    Skip,
    Unsigned,
    Signed,
    Bool,
    Float32,
    Float64,
    Ipv4,
    Ipv6,
    Mac,
    Str,
    DateSeconds,
    DateMillis,
    DateNtp,
    Hex,
    /// variable length: by type and the length of each value
    Dynamic,
}

fn json_kind(id: u16, enterprise: u32, len: u16, ty: IeType) -> JsonKind {
    use IeType::*;
    if id == 210 && enterprise == 0 {
        return JsonKind::Skip; // paddingOctets
    }
    if len == VARLEN {
        return JsonKind::Dynamic;
    }
    let len = usize::from(len);
    match ty {
        Unsigned8 | Unsigned16 | Unsigned32 | Unsigned64 if len <= 8 => JsonKind::Unsigned,
        Signed8 | Signed16 | Signed32 | Signed64 if len != 0 && len <= 8 => JsonKind::Signed,
        Boolean if len == 1 => JsonKind::Bool,
        Float32 if len == 4 => JsonKind::Float32,
        Float64 if len == 8 => JsonKind::Float64,
        Ipv4Address if len == 4 => JsonKind::Ipv4,
        Ipv6Address if len == 16 => JsonKind::Ipv6,
        MacAddress if len == 6 => JsonKind::Mac,
        String => JsonKind::Str,
        DateTimeSeconds if len == 4 => JsonKind::DateSeconds,
        DateTimeMilliseconds if len == 8 => JsonKind::DateMillis,
        DateTimeMicroseconds | DateTimeNanoseconds if len == 8 => JsonKind::DateNtp,
        _ => JsonKind::Hex,
    }
}

/// A compiled template or options template.
#[derive(Debug, Clone)]
pub struct Template {
    pub id: u16,
    /// 9 or 10.
    pub version: u16,
    pub is_options: bool,
    pub scope_count: u16,
    pub fields: Vec<FieldSpec>,
    /// Record length when every field has a fixed length.
    pub fixed_len: Option<usize>,
    /// Smallest possible record (variable-length fields counted as one byte).
    pub min_len: usize,
    /// The raw template record as received (for persistence and change detection).
    pub wire: Vec<u8>,
    /// Decode plan of a fixed-length template.
    pub(crate) plan: Option<Plan>,
    /// How [`Template::write_raw_json`] writes a record of a fixed-length template whose keys
    /// all fit [`WIDE_KEY`] bytes.
    raw_ops: Option<Box<[RawOp]>>,
    /// the most bytes `raw_ops` write when none is [`RawKind::General`] (all of them are
    /// then written through one cursor over that many bytes)
    raw_ops_bound: Option<usize>,
    /// [`Template::heap_bytes`], measured once when compiled
    heap_bytes: usize,
}

/// What the allocator keeps beside each allocation (glibc malloc: a 8-byte header, 16-byte
/// alignment): counted once per heap block in [`Template::heap_bytes`].
const ALLOC_OVERHEAD: usize = 16;

/// One field of a fixed-length template as [`Template::write_raw_json`] writes it: where its
/// value is, how to write it, and its key in place (no pointer to follow, no variable-length
/// test, no position to carry from the field before).
#[derive(Debug, Clone)]
struct RawOp {
    /// `,"name":` and zeros
    key: [u8; WIDE_KEY],
    key_len: u8,
    kind: RawKind,
    json: JsonKind,
    ty: IeType,
    len: u16,
    /// where the value starts in the record
    off: u32,
}

/// The kinds a [`RawOp`] writes with the value's length known, and the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawKind {
    U8,
    U16,
    U32,
    U64,
    Ipv4,
    DateMillis,
    /// [`write_field`]
    General,
}

/// The [`RawOp`]s of a fixed-length template's fields (paddingOctets left out: they write
/// nothing); `None` for a variable-length field or a key longer than [`WIDE_KEY`] bytes.
fn raw_ops(specs: &[FieldSpec]) -> Option<Box<[RawOp]>> {
    let mut ops = Vec::with_capacity(specs.len());
    let mut off = 0usize;
    for s in specs {
        if s.len == VARLEN {
            return None;
        }
        let kind = match (s.json, s.len) {
            (JsonKind::Skip, _) => None,
            (JsonKind::Unsigned, 1) => Some(RawKind::U8),
            (JsonKind::Unsigned, 2) => Some(RawKind::U16),
            (JsonKind::Unsigned, 4) => Some(RawKind::U32),
            (JsonKind::Unsigned, 8) => Some(RawKind::U64),
            (JsonKind::Ipv4, 4) => Some(RawKind::Ipv4),
            (JsonKind::DateMillis, 8) => Some(RawKind::DateMillis),
            _ => Some(RawKind::General),
        };
        if let Some(kind) = kind {
            let fragment = s.key.as_str().as_bytes();
            let mut key = [0u8; WIDE_KEY];
            key.get_mut(..fragment.len())?.copy_from_slice(fragment);
            ops.push(RawOp {
                key,
                key_len: fragment.len() as u8,
                kind,
                json: s.json,
                ty: s.ty,
                len: s.len,
                off: u32::try_from(off).ok()?,
            });
        }
        off += usize::from(s.len);
    }
    Some(ops.into_boxed_slice())
}

/// The first `N` bytes at `off` of `data`.
#[inline(always)]
fn bytes_at<const N: usize>(data: &[u8], off: usize) -> Option<[u8; N]> {
    data.get(off..off + N)?.try_into().ok()
}

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

fn base_name(version: u16, f: &WireField) -> (Cow<'static, str>, IeType) {
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

impl Template {
    /// Compile wire fields into a template. `wire` is kept for persistence.
    pub fn compile(
        version: u16,
        id: u16,
        is_options: bool,
        fields: &[WireField],
        wire: &[u8],
    ) -> Result<Template, DecodeError> {
        if fields.len() > MAX_FIELDS {
            return Err(DecodeError::invalid(
                "template field count",
                0,
                fields.len() as u64,
            ));
        }
        let mut specs: Vec<FieldSpec> = Vec::with_capacity(fields.len());
        let mut fixed = true;
        let mut len = 0usize;
        let mut min_len = 0usize;
        // names used so far, and the next suffix to try per base name: O(n) for n fields even
        // when a hostile template repeats one element a thousand times
        let mut used: std::collections::HashSet<String> =
            std::collections::HashSet::with_capacity(fields.len());
        let mut next_suffix: std::collections::HashMap<String, u32> =
            std::collections::HashMap::new();
        for f in fields {
            let (mut name, ty) = base_name(version, f);
            // duplicate element in one template: suffix _2, _3 ...
            if used.contains(name.as_ref()) {
                let n = next_suffix.entry(name.to_string()).or_insert(2);
                loop {
                    let cand = format!("{name}_{n}");
                    *n += 1;
                    if !used.contains(&cand) {
                        name = Cow::Owned(cand);
                        break;
                    }
                }
            }
            used.insert(name.to_string());
            if f.len == VARLEN {
                // RFC 3954 has no variable-length fields, but H3C and others send them with the
                // IPFIX encoding: accept them in v9 too
                fixed = false;
                min_len += 1;
            } else {
                len += usize::from(f.len);
                min_len += usize::from(f.len);
            }
            specs.push(FieldSpec {
                id: f.id,
                enterprise: f.enterprise,
                len: f.len,
                ty,
                setter: setter_for(version, f.enterprise, f.id, f.scope),
                key: KeyBuf::new(&name),
                json: json_kind(f.id, f.enterprise, f.len, ty),
                name,
                scope: f.scope,
            });
        }
        if min_len == 0 {
            return Err(DecodeError::invalid("template record length", 0, 0));
        }
        let plan = if fixed && !is_options {
            Plan::build(&specs, len)
        } else {
            None
        };
        let raw_ops = if fixed { raw_ops(&specs) } else { None };
        let raw_ops_bound = raw_ops.as_deref().and_then(raw_ops_bound);
        let mut t = Template {
            id,
            version,
            is_options,
            scope_count: fields.iter().filter(|f| f.scope).count() as u16,
            fields: specs,
            fixed_len: fixed.then_some(len),
            min_len,
            wire: wire.to_vec(),
            plan,
            raw_ops,
            raw_ops_bound,
            heap_bytes: 0,
        };
        t.heap_bytes = t.measure();
        Ok(t)
    }

    /// The memory this template takes: its own size plus every heap block it holds (the
    /// field specs, their owned names and key fragments, the wire bytes, the plan's general
    /// fields, the raw ops), each with the allocator's overhead. What the decoder's state
    /// budgets count; measured once at compile time.
    #[inline]
    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes
    }

    fn measure(&self) -> usize {
        use std::mem::size_of;
        let block = |bytes: usize| {
            if bytes == 0 {
                0
            } else {
                bytes + ALLOC_OVERHEAD
            }
        };
        let mut n = size_of::<Template>();
        n += block(self.fields.capacity() * size_of::<FieldSpec>());
        for f in &self.fields {
            if let Cow::Owned(name) = &f.name {
                n += block(name.capacity());
            }
            n += block(f.key.heap_bytes());
        }
        n += block(self.wire.capacity());
        if let Some(p) = &self.plan {
            n += block(p.rest.capacity() * size_of::<(u16, u16, Setter)>());
        }
        if let Some(ops) = &self.raw_ops {
            n += block(ops.len() * size_of::<RawOp>());
        }
        n
    }

    /// Whether [`fill_record`] sets the same values for every record of this template, so one
    /// `FlowRecord` can be filled again for each record of a data set instead of built anew:
    /// a fixed-length template whose every field goes through its plan.
    #[inline]
    pub fn refills_record(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| p.rest.is_empty())
    }

    /// Split a data set body into records. Trailing bytes shorter than the minimal record are
    /// padding (RFC 7011 3.3.1); a variable-length field that overruns the set is an error and
    /// ends the iteration.
    pub fn records<'a>(&'a self, body: &'a [u8]) -> Records<'a> {
        Records {
            tpl: self,
            body,
            pos: 0,
            start: 0,
            done: false,
        }
    }

    /// Visit each field of one record with its value bytes.
    #[inline]
    pub fn for_each_field<'d>(&self, data: &'d [u8], mut f: impl FnMut(&FieldSpec, &'d [u8])) {
        let mut pos = 0usize;
        for spec in &self.fields {
            let (start, len) = if spec.len == VARLEN {
                match varlen_at(data, pos) {
                    Some((hdr, l)) => (pos + hdr, l),
                    None => return,
                }
            } else {
                (pos, usize::from(spec.len))
            };
            let Some(v) = data.get(start..start + len) else {
                return;
            };
            f(spec, v);
            pos = start + len;
        }
    }

    /// Write the record's elements as the `"netflow":{...}` object.
    #[cfg(test)]
    pub(crate) fn write_raw_json(&self, data: &[u8], proto: FlowProtocol, w: &mut JsonWriter<'_>) {
        self.write_raw_json_with(data, proto, None, w)
    }

    /// [`Template::write_raw_json`], with `netflow.original_timestamp` when the record's own
    /// time was replaced by the receive time (`original_ns`).
    #[inline]
    pub(crate) fn write_raw_json_with(
        &self,
        data: &[u8],
        proto: FlowProtocol,
        original_ns: Option<u64>,
        w: &mut JsonWriter<'_>,
    ) {
        let _ = proto;
        w.begin_object(crate::json::key!("netflow"));
        match (&self.raw_ops, self.fixed_len) {
            // a whole record (what `records` yields): every op's value is in `data`
            (Some(ops), Some(len)) if data.len() >= len => {
                write_ops(ops, self.raw_ops_bound, data, w)
            }
            _ => self.write_fields(data, w),
        }
        if let Some(t) = original_ns {
            w.time_ns(crate::json::key!("original_timestamp"), t);
        }
        w.end_object();
    }

    /// The members of [`Template::write_raw_json`] field by field: the general path.
    fn write_fields(&self, data: &[u8], w: &mut JsonWriter<'_>) {
        self.for_each_field(data, |spec, v| {
            write_field(w, spec.key.key(), spec.json, spec.ty, v)
        });
    }
}

/// The members of [`Template::write_raw_json`] from a fixed-length template's [`RawOp`]s, as
/// [`Template::write_fields`] writes them; `data` holds the whole record. Without a
/// [`RawKind::General`] op, every member's text has a bound and all go through one
/// [`Cursor`].
#[inline]
fn write_ops(ops: &[RawOp], bound: Option<usize>, data: &[u8], w: &mut JsonWriter<'_>) {
    if let Some(bound) = bound {
        w.with_cursor(bound, |c| {
            for op in ops {
                if write_op_bounded(op, data, c).is_none() {
                    return;
                }
            }
        });
        return;
    }
    for op in ops {
        let key = WideKey::new(&op.key, usize::from(op.key_len));
        let off = op.off as usize;
        // the `None`s cannot happen with the whole record; they end the object like a short
        // record ends `for_each_field`
        let done = match op.kind {
            RawKind::U8 => bytes_at::<1>(data, off).map(|v| w.u64(key, u64::from(v[0]))),
            RawKind::U16 => {
                bytes_at::<2>(data, off).map(|v| w.u64(key, u64::from(u16::from_be_bytes(v))))
            }
            RawKind::U32 => {
                bytes_at::<4>(data, off).map(|v| w.u64(key, u64::from(u32::from_be_bytes(v))))
            }
            RawKind::U64 => bytes_at::<8>(data, off).map(|v| w.u64(key, u64::from_be_bytes(v))),
            RawKind::Ipv4 => bytes_at::<4>(data, off).map(|v| w.ipv4(key, v)),
            RawKind::DateMillis => bytes_at::<8>(data, off)
                .map(|v| w.time_ns(key, u64::from_be_bytes(v).saturating_mul(1_000_000))),
            RawKind::General => data
                .get(off..off + usize::from(op.len))
                .map(|v| write_field(w, key, op.json, op.ty, v)),
        };
        if done.is_none() {
            return;
        }
    }
}

/// The bytes [`write_ops`] needs for `ops` through a cursor: what each op's key and value can
/// take, and room for the widest fixed-size write (a key's [`WIDE_KEY`] bytes) after them;
/// `None` when an op is [`RawKind::General`].
fn raw_ops_bound(ops: &[RawOp]) -> Option<usize> {
    let mut n = WIDE_KEY;
    for op in ops {
        n += usize::from(op.key_len)
            + match op.kind {
                RawKind::U8 => 3,
                RawKind::U16 => 5,
                RawKind::U32 => 10,
                RawKind::U64 => 20,
                // `"255.255.255.255"`
                RawKind::Ipv4 => 17,
                RawKind::DateMillis => 32,
                RawKind::General => return None,
            };
    }
    Some(n)
}

/// One member of a [`RawOp`] that is not [`RawKind::General`], through the cursor; `None`
/// when the value is not in `data` (nothing written then).
#[inline(always)]
fn write_op_bounded(op: &RawOp, data: &[u8], c: &mut Cursor<'_>) -> Option<()> {
    let off = op.off as usize;
    match op.kind {
        RawKind::U8 => {
            let v = bytes_at::<1>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(u64::from(v[0]));
        }
        RawKind::U16 => {
            let v = bytes_at::<2>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(u64::from(u16::from_be_bytes(v)));
        }
        RawKind::U32 => {
            let v = bytes_at::<4>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(u64::from(u32::from_be_bytes(v)));
        }
        RawKind::U64 => {
            let v = bytes_at::<8>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(u64::from_be_bytes(v));
        }
        RawKind::Ipv4 => {
            let v = bytes_at::<4>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.ipv4(v);
        }
        RawKind::DateMillis => {
            let v = bytes_at::<8>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.time_ns(u64::from_be_bytes(v).saturating_mul(1_000_000));
        }
        // not given to the cursor
        RawKind::General => return None,
    }
    Some(())
}

/// `(header length, value length)` of a variable-length field at `pos`.
#[inline]
fn varlen_at(data: &[u8], pos: usize) -> Option<(usize, usize)> {
    let first = *data.get(pos)?;
    if first < 255 {
        Some((1, usize::from(first)))
    } else {
        Some((3, usize::from(be16(data, pos + 1)?)))
    }
}

/// Iterator over the records of a data set.
pub struct Records<'a> {
    tpl: &'a Template,
    body: &'a [u8],
    pos: usize,
    /// where the record last returned starts
    start: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// The set's bytes from the start of the record last returned to the end of the set.
    #[inline]
    pub fn tail(&self) -> &'a [u8] {
        self.body.get(self.start..).unwrap_or(&[])
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<&'a [u8], DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.body.len() - self.pos;
        if rest < self.tpl.min_len {
            self.done = true;
            return None;
        }
        let len = match self.tpl.fixed_len {
            Some(l) => l,
            None => {
                let mut p = self.pos;
                for spec in &self.tpl.fields {
                    if spec.len == VARLEN {
                        match varlen_at(self.body, p) {
                            Some((h, l)) => p += h + l,
                            None => {
                                p = usize::MAX;
                                break;
                            }
                        }
                    } else {
                        p += usize::from(spec.len);
                    }
                    if p > self.body.len() {
                        break;
                    }
                }
                if p > self.body.len() {
                    self.done = true;
                    // all-padding tail (zeros) is not an error
                    if self.body[self.pos..].iter().all(|&b| b == 0) {
                        return None;
                    }
                    return Some(Err(DecodeError::truncated(
                        "variable-length record",
                        self.pos,
                        p.saturating_sub(self.pos).min(u16::MAX as usize),
                        rest,
                    )));
                }
                p - self.pos
            }
        };
        let rec = &self.body[self.pos..self.pos + len];
        self.start = self.pos;
        self.pos += len;
        Some(Ok(rec))
    }
}

/// Write one value as its compiled [`JsonKind`] says (`v` has the field's length).
#[inline]
fn write_field(w: &mut JsonWriter<'_>, key: impl JsonKey, kind: JsonKind, ty: IeType, v: &[u8]) {
    match kind {
        JsonKind::Skip => {}
        JsonKind::Unsigned => w.u64(key, be_uint(v)),
        JsonKind::Ipv4 => match <[u8; 4]>::try_from(v) {
            Ok(a) => w.ipv4(key, a),
            Err(_) => write_value(w, key, ty, v),
        },
        JsonKind::DateMillis => w.time_ns(key, be_uint(v).saturating_mul(1_000_000)),
        // the others are rare enough for the general path
        _ => write_value(w, key, ty, v),
    }
}

fn write_value(w: &mut JsonWriter<'_>, key: impl JsonKey, ty: IeType, v: &[u8]) {
    use IeType::*;
    match ty {
        Unsigned8 | Unsigned16 | Unsigned32 | Unsigned64 if v.len() <= 8 => w.u64(key, be_uint(v)),
        Signed8 | Signed16 | Signed32 | Signed64 if !v.is_empty() && v.len() <= 8 => {
            let shift = 64 - 8 * v.len() as u32;
            w.i64(key, ((be_uint(v) << shift) as i64) >> shift)
        }
        Boolean if v.len() == 1 => w.bool(key, v[0] == 1),
        Float32 if v.len() == 4 => w.f64(key, f64::from(f32::from_bits(be32(v, 0).unwrap_or(0)))),
        Float64 if v.len() == 8 => w.f64(key, f64::from_bits(be_uint(v))),
        Ipv4Address if v.len() == 4 => w.ipv4(key, [v[0], v[1], v[2], v[3]]),
        Ipv6Address if v.len() == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            w.ip(key, IpAddr::V6(Ipv6Addr::from(a)))
        }
        MacAddress if v.len() == 6 => {
            let mut m = [0u8; 6];
            m.copy_from_slice(v);
            w.mac(key, &m)
        }
        String => w.str_bytes(key, v),
        DateTimeSeconds if v.len() == 4 => w.time_ns(key, be_uint(v) * 1_000_000_000),
        DateTimeMilliseconds if v.len() == 8 => {
            w.time_ns(key, be_uint(v).saturating_mul(1_000_000))
        }
        DateTimeMicroseconds | DateTimeNanoseconds if v.len() == 8 => match ntp_to_ns(be_uint(v)) {
            Some(ns) => w.time_ns(key, ns),
            None => w.u64(key, be_uint(v)),
        },
        _ => w.hex(key, v),
    }
}

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
struct Fill {
    o: Option<OptionValues>,
    total_bytes: Option<u64>,
    total_packets: Option<u64>,
    init_bytes: Option<u64>,
    init_packets: Option<u64>,
}

/// Apply one field's value (the general path: any setter, any length).
#[inline]
fn apply_field(
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
/// Fixed-length templates go through their compiled [`Plan`]: the offset of every field the
/// record reads is known, so a record is a fixed sequence of loads (a conditional per slot,
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
/// ([`Records::tail`]): a fixed-length record is read in place while the set has its plan's
/// window (144 or 528 bytes) from the record's start on. The times are written to `t`
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
    fn finish(self, rec: &mut FlowRecord<'_>) -> RecordSampling {
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
    fn new(off: u16, len: u16) -> Slot {
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
    /// the window without a bounds test.
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
    len: u16,
    bytes: Slot,
    packets: Slot,
    bytes_total: Slot,
    packets_total: Slot,
    init_bytes: Slot,
    init_packets: Slot,
    reverse_bytes: Slot,
    reverse_packets: Slot,
    reverse_tcp_flags: Slot,
    src_addr: Slot,
    dst_addr: Slot,
    src_port: Slot,
    dst_port: Slot,
    protocol: Slot,
    tos: Slot,
    tcp_flags: Slot,
    in_if: Slot,
    out_if: Slot,
    src_as: Slot,
    dst_as: Slot,
    src_mask: Slot,
    dst_mask: Slot,
    next_hop: Slot,
    bgp_next_hop: Slot,
    src_mac: Slot,
    dst_mac: Slot,
    vlan: Slot,
    ip_version: Slot,
    direction: Slot,
    end_reason: Slot,
    icmp_type_code: Slot,
    icmp_type: Slot,
    icmp_code: Slot,
    start_uptime: Slot,
    end_uptime: Slot,
    start_abs: Slot,
    start_unit: TimeUnit,
    end_abs: Slot,
    end_unit: TimeUnit,
    start_delta: Slot,
    end_delta: Slot,
    /// which `S_*` sections (sets of slots) have a slot in the template: `fill` skips a
    /// section none of whose values the template has with one test (most templates have none
    /// of the reverse, layer-2, ICMP or delta-time values, whose 19 slots would otherwise be
    /// tested one by one)
    sections: u8,
    /// (offset, length, setter) of the fields read the general way, in template order
    rest: Vec<(u16, u16, Setter)>,
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
    fn build(fields: &[FieldSpec], len: usize) -> Option<Plan> {
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
    /// with the fallback counts applied, as [`fill_record_in`] does.
    #[inline]
    fn fill(&self, data: &[u8], rec: &mut FlowRecord<'_>, t: &mut RecordTimes) -> RecordSampling {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(id: u16, len: u16) -> WireField {
        WireField {
            id,
            enterprise: 0,
            len,
            scope: false,
        }
    }

    /// `{"netflow":{...}}` of one record, through the template's ops when it has them.
    fn raw_json(t: &Template, data: &[u8]) -> String {
        let mut b = Vec::new();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        t.write_raw_json(data, FlowProtocol::Ipfix, &mut w);
        w.end_object();
        String::from_utf8(b).unwrap()
    }

    proptest::proptest! {
        /// The raw members from a fixed-length template's ops are the ones the field-by-field
        /// path writes, for random templates (duplicates, odd lengths, padding, reverse and
        /// unknown enterprise elements) and random record bytes, whole and cut short.
        #[test]
        fn raw_ops_write_what_fields_write(
            picks in proptest::collection::vec((0usize..PLAN_IES.len(), 0usize..6, 0u8..8), 1..30),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 600),
            version in proptest::sample::select(vec![9u16, 10]),
            cut in 0usize..600,
        ) {
            let fields = picked_fields(&picks, version);
            let Ok(t) = Template::compile(version, 256, false, &fields, &[]) else {
                return Ok(());
            };
            let len = t.fixed_len.unwrap();
            let mut general = t.clone();
            general.raw_ops = None;
            // the ops one by one, not through the cursor
            let mut unbounded = t.clone();
            unbounded.raw_ops_bound = None;
            for data in [&bytes[..len], &bytes[..cut.min(len)]] {
                let want = raw_json(&general, data);
                proptest::prop_assert_eq!(&raw_json(&t, data), &want);
                proptest::prop_assert_eq!(raw_json(&unbounded, data), want);
            }
        }
    }

    #[test]
    fn raw_ops_only_for_fixed_lengths_and_short_keys() {
        let basic = [
            wf(8, 4),
            wf(7, 2),
            wf(4, 1),
            wf(1, 8),
            wf(152, 8),
            wf(210, 3),
        ];
        let t = Template::compile(10, 256, false, &basic, &[]).unwrap();
        // paddingOctets writes nothing: no op; every op's text has a bound
        assert_eq!(t.raw_ops.as_ref().map(|o| o.len()), Some(5));
        assert!(t.raw_ops_bound.is_some());
        let data: Vec<u8> = (1..=t.fixed_len.unwrap() as u8).collect();
        let mut start = Vec::new();
        crate::json::write_rfc3339(
            &mut start,
            u64::from_be_bytes([16, 17, 18, 19, 20, 21, 22, 23]).saturating_mul(1_000_000),
        );
        assert_eq!(
            raw_json(&t, &data),
            format!(
                r#"{{"netflow":{{"source_ipv4_address":"1.2.3.4","source_transport_port":1286,"protocol_identifier":7,"octet_delta_count":{},"flow_start_milliseconds":{}}}}}"#,
                u64::from_be_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
                String::from_utf8(start).unwrap()
            )
        );
        // destinationIPv4PrefixLength: a key longer than the document's own padded keys
        let t = Template::compile(10, 256, false, &[wf(13, 1)], &[]).unwrap();
        assert!(t.raw_ops.is_some());
        assert_eq!(
            raw_json(&t, &[24]),
            r#"{"netflow":{"destination_ipv4_prefix_length":24}}"#
        );
        // a variable-length field; a key longer than the padded copy
        let var = [wf(8, 4), wf(82, VARLEN)];
        assert!(Template::compile(10, 256, false, &var, &[])
            .unwrap()
            .raw_ops
            .is_none());
        let long = [WireField {
            id: 381,
            enterprise: REVERSE_PEN,
            len: 4,
            scope: false,
        }];
        let t = Template::compile(10, 256, false, &long, &[]).unwrap();
        assert!(t.raw_ops.is_none());
        assert_eq!(
            raw_json(&t, &[0, 0, 1, 0]),
            r#"{"netflow":{"reverse_distinct_count_of_destination_ipv4_address":256}}"#
        );
    }

    #[test]
    fn compile_fixed_and_variable() {
        let t = Template::compile(10, 256, false, &[wf(8, 4), wf(12, 4), wf(1, 8)], &[]).unwrap();
        assert_eq!(t.fixed_len, Some(16));
        assert_eq!(t.fields[0].setter, Setter::SrcAddr);
        assert_eq!(t.fields[2].name, "octet_delta_count");
        let v = Template::compile(10, 257, false, &[wf(8, 4), wf(82, VARLEN)], &[]).unwrap();
        assert_eq!(v.fixed_len, None);
        assert_eq!(v.min_len, 5);
        assert!(Template::compile(10, 257, false, &[], &[]).is_err());
    }

    #[test]
    fn duplicate_names_get_suffixes() {
        let t = Template::compile(10, 256, false, &[wf(1, 4), wf(1, 4), wf(1, 4)], &[]).unwrap();
        let names: Vec<_> = t.fields.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "octet_delta_count",
                "octet_delta_count_2",
                "octet_delta_count_3"
            ]
        );
    }

    #[test]
    fn variable_length_records_and_padding() {
        let t = Template::compile(10, 256, false, &[wf(4, 1), wf(82, VARLEN)], &[]).unwrap();
        // record 1: proto 6, "ab"; record 2: proto 17, 255-escaped length 3 "xyz"; 2 bytes pad
        let body = [6, 2, b'a', b'b', 17, 255, 0, 3, b'x', b'y', b'z', 0];
        let recs: Vec<_> = t.records(&body).collect();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[0].unwrap(), &[6, 2, b'a', b'b']);
        assert_eq!(recs[1].unwrap(), &[17, 255, 0, 3, b'x', b'y', b'z']);
        // overrun: declared 9 bytes, 2 present
        let bad = [6, 9, b'a', b'b'];
        let recs: Vec<_> = t.records(&bad).collect();
        assert!(matches!(recs[..], [Err(DecodeError::Truncated { .. })]));
    }

    #[test]
    fn fill_record_reads_fields() {
        let t = Template::compile(
            10,
            256,
            false,
            &[
                wf(8, 4),
                wf(12, 4),
                wf(7, 2),
                wf(11, 2),
                wf(4, 1),
                wf(2, 4),
                wf(85, 8),
                wf(152, 8),
                wf(70, 3),
            ],
            &[],
        )
        .unwrap();
        let mut d = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0x1f, 0x90, 6, 0, 0, 0, 9];
        d.extend_from_slice(&1000u64.to_be_bytes());
        d.extend_from_slice(&1_700_000_000_123u64.to_be_bytes());
        d.extend_from_slice(&[0x01, 0x23, 0x41]); // label 0x01234, exp 0, bottom of stack
        let mut rec = FlowRecord::new(FlowProtocol::Ipfix, "127.0.0.1:1".parse().unwrap());
        let (times, _) = fill_record(&t, &d, &mut rec);
        assert_eq!(rec.src_addr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(rec.dst_port, Some(8080));
        assert_eq!(rec.packets, Some(9));
        assert_eq!(rec.bytes, Some(1000), "octetTotalCount when no delta count");
        assert_eq!(times.start_abs_ns, Some(1_700_000_000_123_000_000));
        assert_eq!(rec.mpls.as_slice(), &[0x01234]);
    }

    #[test]
    fn ntp_times() {
        // 2024-01-01T00:00:00Z = 1704067200 unix = 3913056000 NTP; fraction 0.5
        let v = (3_913_056_000u64 << 32) | 0x8000_0000;
        assert_eq!(ntp_to_ns(v), Some(1_704_067_200_500_000_000));
        assert_eq!(ntp_to_ns(5 << 32), None);
    }

    #[test]
    fn sampling_rate_rules() {
        let o = OptionValues {
            sampling_interval: Some(100),
            ..Default::default()
        };
        assert_eq!(o.rate(), Some(100));
        let o = OptionValues {
            sampling_population: Some(1000),
            sampling_size: Some(10),
            selector_algorithm: Some(3),
            ..Default::default()
        };
        assert_eq!(o.rate(), Some(100));
        let o = OptionValues {
            packet_interval: Some(1),
            packet_space: Some(99),
            ..Default::default()
        };
        assert_eq!(o.rate(), Some(100));
        let o = OptionValues {
            sampler_random_interval: Some(512),
            ..Default::default()
        };
        assert_eq!(o.rate(), Some(512));
        assert_eq!(OptionValues::default().rate(), None);
        // exporter-supplied extremes: no overflow (it panicked with overflow checks on)
        let o = OptionValues {
            packet_interval: Some(u64::MAX),
            packet_space: Some(u64::MAX),
            ..Default::default()
        };
        assert_eq!(o.rate(), Some(1));
        let o = OptionValues {
            packet_interval: Some(2),
            packet_space: Some(u64::MAX),
            ..Default::default()
        };
        assert_eq!(o.rate(), Some(u64::MAX / 2));
    }

    #[test]
    fn heap_bytes_grow_with_the_fields() {
        let wire = |n: u16| -> Vec<WireField> {
            (0..n)
                .map(|i| WireField {
                    id: 1 + i,
                    enterprise: 0,
                    len: 4,
                    scope: false,
                })
                .collect()
        };
        let small = Template::compile(10, 256, false, &wire(2), &[0; 12]).unwrap();
        let big = Template::compile(10, 257, false, &wire(64), &[0; 260]).unwrap();
        // at least the field specs, their keys and the wire bytes
        let floor = |t: &Template, n: usize| {
            std::mem::size_of::<Template>()
                + n * (std::mem::size_of::<FieldSpec>() + crate::json::KEY_PAD)
                + t.wire.len()
        };
        assert!(
            small.heap_bytes() >= floor(&small, 2),
            "{}",
            small.heap_bytes()
        );
        assert!(big.heap_bytes() >= floor(&big, 64), "{}", big.heap_bytes());
        assert!(big.heap_bytes() > 20 * small.heap_bytes() / 2);
    }

    #[test]
    fn template_sets_parse() {
        // IPFIX: template 256 with 2 fields, one enterprise; then a withdrawal of 257; padding
        let mut b = vec![1, 0, 0, 2, 0, 8, 0, 4];
        b.extend_from_slice(&[0x80, 0x01, 0, 8, 0, 0, 0x72, 0x79]); // reverse octetDeltaCount
        b.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        let mut seen = Vec::new();
        let mut fb = Vec::new();
        parse_template_set(10, false, &b, 0, &mut fb, &mut |tid, f, _| {
            seen.push((tid, f.to_vec()))
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].1[1].enterprise, REVERSE_PEN);
        assert!(seen[1].1.is_empty());
        let t = Template::compile(10, 256, false, &seen[0].1, &[]).unwrap();
        assert_eq!(t.fields[1].name, "reverse_octet_delta_count");
        assert_eq!(t.fields[1].setter, Setter::ReverseBytes);
        // truncated field list
        let bad = [1, 0, 0, 3, 0, 8, 0, 4];
        assert!(parse_template_set(10, false, &bad, 0, &mut fb, &mut |_, _, _| {}).is_err());
        // v9 options template: scope system(1) len 4, options 34 len 4, 48 len 1
        let o = [1, 0, 0, 4, 0, 8, 0, 1, 0, 4, 0, 34, 0, 4, 0, 48, 0, 1];
        let mut got = Vec::new();
        parse_template_set(9, true, &o, 0, &mut fb, &mut |tid, f, _| {
            got.push((tid, f.to_vec()))
        })
        .unwrap();
        assert_eq!(got[0].0, 256);
        assert_eq!(got[0].1.len(), 3);
        assert!(got[0].1[0].scope && !got[0].1[1].scope);
        let t = Template::compile(9, 256, true, &got[0].1, &[]).unwrap();
        assert_eq!(t.fields[0].name, "scope_system");
        assert_eq!(t.fields[1].setter, Setter::SamplingInterval);
    }

    /// Template fields from proptest picks (an element of [`PLAN_IES`], one of its lengths, and
    /// for IPFIX 0: the reverse element, 1: an unknown enterprise's, else the IANA one).
    fn picked_fields(picks: &[(usize, usize, u8)], version: u16) -> Vec<WireField> {
        picks
            .iter()
            .map(|&(i, l, e)| {
                let (id, lens) = PLAN_IES[i];
                WireField {
                    id,
                    enterprise: match e {
                        0 if version == 10 => REVERSE_PEN,
                        1 if version == 10 => 4_294_967_295,
                        _ => 0,
                    },
                    len: lens[l % lens.len()],
                    scope: false,
                }
            })
            .collect()
    }

    /// Elements (IPFIX id, usual lengths) the plan has slots for, plus some it leaves to the
    /// general path (MPLS, sampling, enterprise-free unknowns, padding).
    const PLAN_IES: &[(u16, &[u16])] = &[
        (1, &[1, 2, 4, 8, 0, 9]),
        (2, &[4, 8]),
        (4, &[1, 2]),
        (5, &[1]),
        (6, &[1, 2]),
        (7, &[2]),
        (8, &[4, 3]),
        (9, &[1]),
        (10, &[2, 4]),
        (11, &[2]),
        (12, &[4]),
        (13, &[1]),
        (14, &[4]),
        (15, &[4]),
        (16, &[2, 4]),
        (17, &[4]),
        (18, &[4]),
        (21, &[4, 8]),
        (22, &[4, 8]),
        (27, &[16]),
        (28, &[16, 4]),
        (32, &[2]),
        (34, &[4]),
        (48, &[1, 2]),
        (56, &[6, 5]),
        (58, &[2]),
        (60, &[1]),
        (61, &[1]),
        (62, &[16]),
        (63, &[16]),
        (70, &[3, 4]),
        (71, &[3]),
        (80, &[6]),
        (85, &[8]),
        (86, &[8]),
        (136, &[1]),
        (139, &[2]),
        (150, &[4]),
        (151, &[4]),
        (152, &[8]),
        (153, &[8]),
        (154, &[8]),
        (156, &[8]),
        (157, &[8]),
        (158, &[4]),
        (159, &[4]),
        (176, &[1]),
        (177, &[1]),
        (178, &[1]),
        (210, &[3]),
        (231, &[8]),
        (232, &[8]),
        (243, &[2]),
        (298, &[8]),
        (299, &[8]),
        (302, &[2]),
        (305, &[4]),
        (306, &[4]),
        (999, &[4]),
    ];

    proptest::proptest! {
        /// The compiled plan reads exactly what the field-by-field path reads, for random
        /// fixed-length templates (duplicates, odd lengths, reverse elements included) and
        /// random record bytes.
        #[test]
        fn plan_matches_field_by_field(
            picks in proptest::collection::vec((0usize..PLAN_IES.len(), 0usize..6, proptest::bool::weighted(0.1)), 1..30),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 600),
            other in proptest::collection::vec(proptest::prelude::any::<u8>(), 600),
            version in proptest::sample::select(vec![9u16, 10]),
            preset in proptest::bool::ANY,
        ) {
            let picks: Vec<(usize, usize, u8)> =
                picks.iter().map(|&(i, l, rev)| (i, l, if rev { 0 } else { 2 })).collect();
            let fields = picked_fields(&picks, version);
            let Ok(t) = Template::compile(version, 256, false, &fields, &[]) else {
                return Ok(());
            };
            proptest::prop_assert!(t.plan.is_some());
            let mut generic = t.clone();
            generic.plan = None;
            let data = &bytes[..t.fixed_len.unwrap()];
            let exporter = "127.0.0.1:1".parse().unwrap();
            let mut a = FlowRecord::new(FlowProtocol::Ipfix, exporter);
            // what the decoder sets before: the header's fields (fill_record's contract: the
            // values a data record sets are not there yet)
            if preset {
                a.export_time_ns = Some(7);
                a.sequence = Some(8);
                a.domain = Some(9);
                a.template_id = Some(256);
            }
            let (fresh, mut b, mut refilled) = (a, a, a);
            let (ta, oa) = fill_record(&t, data, &mut a);
            let (tb, ob) = fill_record(&generic, data, &mut b);
            proptest::prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            proptest::prop_assert_eq!(format!("{ta:?}"), format!("{tb:?}"));
            proptest::prop_assert_eq!(oa, ob);
            // read in place, the rest of the bytes after it (as the decoder does while 8 bytes
            // of the set follow the record)
            let mut inplace = fresh;
            // times written over whatever was there
            let all_set = RecordTimes {
                start_abs_ns: Some(1),
                end_abs_ns: Some(2),
                start_uptime_ms: Some(3),
                end_uptime_ms: Some(4),
                start_delta_us: Some(5),
                end_delta_us: Some(6),
            };
            let mut ti = all_set;
            let oi = fill_record_in(&t, &bytes, data.len(), &mut inplace, &mut ti);
            proptest::prop_assert_eq!(format!("{inplace:?}"), format!("{a:?}"));
            proptest::prop_assert_eq!(format!("{ti:?}"), format!("{ta:?}"));
            proptest::prop_assert_eq!(oi, oa);
            // the general path too writes every time over what was there
            let (mut g, mut tg) = (fresh, all_set);
            fill_record_in(&generic, &bytes, data.len(), &mut g, &mut tg);
            proptest::prop_assert_eq!(format!("{tg:?}"), format!("{ta:?}"));
            // a record filled before from other bytes, filled again: the same as a fresh one
            if t.refills_record() {
                fill_record(&t, &other[..data.len()], &mut refilled);
                let (tr, or) = fill_record(&t, data, &mut refilled);
                proptest::prop_assert_eq!(format!("{refilled:?}"), format!("{a:?}"));
                proptest::prop_assert_eq!(format!("{tr:?}"), format!("{ta:?}"));
                proptest::prop_assert_eq!(or, oa);
            }
            // a short slice (not what the decoder passes) takes the general path
            let (tc, _) = fill_record(&t, &data[..data.len() - 1], &mut FlowRecord::new(FlowProtocol::Ipfix, exporter));
            let (td, _) = fill_record(&generic, &data[..data.len() - 1], &mut FlowRecord::new(FlowProtocol::Ipfix, exporter));
            proptest::prop_assert_eq!(format!("{tc:?}"), format!("{td:?}"));
        }
    }

    #[test]
    fn plan_only_for_fixed_length_flow_templates() {
        let t = Template::compile(10, 256, false, &[wf(8, 4), wf(1, 8)], &[]).unwrap();
        let p = t.plan.as_ref().unwrap();
        assert_eq!(p.src_addr, Slot::new(0, 4));
        assert_eq!(p.bytes, Slot::new(4, 8));
        assert!(p.rest.is_empty());
        // a duplicate goes to the general path, both fields, in order
        let t = Template::compile(10, 256, false, &[wf(8, 4), wf(1, 8), wf(8, 4)], &[]).unwrap();
        let p = t.plan.as_ref().unwrap();
        assert_eq!(p.src_addr, Slot::default());
        assert_eq!(
            p.rest,
            vec![(0, 4, Setter::SrcAddr), (12, 4, Setter::SrcAddr)]
        );
        let v = Template::compile(10, 257, false, &[wf(8, 4), wf(82, VARLEN)], &[]).unwrap();
        assert!(v.plan.is_none());
        let o = Template::compile(10, 258, true, &[wf(34, 4)], &[]).unwrap();
        assert!(o.plan.is_none());
    }

    #[test]
    fn raw_json_keys_and_kinds() {
        let t = Template::compile(
            10,
            256,
            false,
            &[
                wf(8, 4),
                wf(210, 2),
                wf(1, 8),
                wf(152, 8),
                wf(27, 16),
                wf(82, VARLEN),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(t.fields[0].key.as_str(), r#","source_ipv4_address":"#);
        assert_eq!(t.fields[0].json, JsonKind::Ipv4);
        assert_eq!(t.fields[1].json, JsonKind::Skip);
        assert_eq!(t.fields[2].json, JsonKind::Unsigned);
        assert_eq!(t.fields[3].json, JsonKind::DateMillis);
        assert_eq!(t.fields[4].json, JsonKind::Ipv6);
        assert_eq!(t.fields[5].json, JsonKind::Dynamic);
        let mut d = vec![10, 0, 0, 1, 0, 0];
        d.extend_from_slice(&1000u64.to_be_bytes());
        d.extend_from_slice(&1_700_000_000_123u64.to_be_bytes());
        d.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        d.extend_from_slice(&[2, b'a', b'b']);
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out);
        w.begin();
        t.write_raw_json(&d, FlowProtocol::Ipfix, &mut w);
        w.end_object();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"netflow":{"source_ipv4_address":"10.0.0.1","octet_delta_count":1000,"flow_start_milliseconds":"2023-11-14T22:13:20.123000000Z","source_ipv6_address":"2001:db8::1","interface_name":"ab"}}"#
        );
    }
}
