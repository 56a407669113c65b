//! NetFlow v9 / IPFIX templates: parsed from template sets, compiled once into field specs
//! with a precomputed "setter" per field, then used to read data records in place.
//!
//! `parse`: the wire side (template sets, [`WireField`]); `plan`: the compiled fill plan of a
//! fixed-length template; `fill`: reading a data record into a [`FlowRecord`].

mod fill;
mod parse;
mod plan;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

use crate::error::{be16, be32, be_uint, DecodeError};
use crate::ie::IeType;
use crate::json::{Cursor, JsonKey, JsonWriter, KeyBuf, WideKey, WIDE_KEY};
use crate::record::FlowProtocol;

pub use fill::{
    fill_record, fill_record_in, ntp_to_ns, read_options, OptionValues, RecordSampling, RecordTimes,
};
use parse::{base_name, setter_for};
pub use parse::{parse_template_set, TemplateVisitor, WireField};
pub(crate) use plan::Plan;

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
