//! `netflow.*` of a v9 / IPFIX data record, written through its template: each field's
//! [`JsonKind`], decided when the template is compiled, and for a fixed-length template the
//! [`RawOps`] it keeps: every member's key in place and its value's offset, written through one
//! cursor when their text has a bound. The template stores the ops; they are made and read here.

use std::net::{IpAddr, Ipv6Addr};

use super::{Cursor, JsonKey, JsonWriter, WideKey, WIDE_KEY};
use crate::bytes::{array, be16, be32, be64, be_uint};
use crate::ie::IeType;
use crate::record::FlowProtocol;
use crate::template::{ntp_to_ns, FieldSpec, Template, VARLEN};

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

pub(crate) fn json_kind(id: u16, enterprise: u32, len: u16, ty: IeType) -> JsonKind {
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

/// One field of a fixed-length template as [`Template::write_raw_json_with`] writes it: where its
/// value is, how to write it, and its key in place (no pointer to follow, no variable-length
/// test, no position to carry from the field before).
#[derive(Debug, Clone)]
pub(crate) struct RawOp {
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
pub(crate) enum RawKind {
    U8,
    U16,
    U32,
    U64,
    Ipv4,
    DateMillis,
    /// [`write_field`]
    General,
}

/// The compiled `netflow.*` writer of a fixed-length template, which the template keeps:
/// one [`RawOp`] per written field, and the bound of their text when they all have one.
#[derive(Debug, Clone)]
pub(crate) struct RawOps {
    pub(crate) ops: Box<[RawOp]>,
    /// the most bytes `ops` write when none is [`RawKind::General`] (all of them are then
    /// written through one cursor over that many bytes)
    pub(crate) bound: Option<usize>,
}

impl RawOps {
    /// The ops of a fixed-length template's fields; `None` for a variable-length field or a
    /// key longer than [`WIDE_KEY`] bytes.
    pub(crate) fn build(specs: &[FieldSpec]) -> Option<RawOps> {
        let ops = raw_ops(specs)?;
        let bound = raw_ops_bound(&ops);
        Some(RawOps { ops, bound })
    }

    /// The bytes of the ops' heap block.
    pub(crate) fn heap_len(&self) -> usize {
        self.ops.len() * std::mem::size_of::<RawOp>()
    }
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

impl Template {
    /// Write the record's elements as the `"netflow":{...}` object.
    #[cfg(test)]
    pub(crate) fn write_raw_json(&self, data: &[u8], proto: FlowProtocol, w: &mut JsonWriter<'_>) {
        self.write_raw_json_with(data, proto, None, w)
    }

    /// [`Template::write_raw_json_with`], with `netflow.original_timestamp` when the record's own
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
        w.begin_object(super::key!("netflow"));
        match (&self.raw_ops, self.fixed_len) {
            // a whole record (what `records` yields): every op's value is in `data`
            (Some(r), Some(len)) if data.len() >= len => write_ops(&r.ops, r.bound, data, w),
            _ => self.write_raw_fields(data, w),
        }
        if let Some(t) = original_ns {
            w.time_ns(super::key!("original_timestamp"), t);
        }
        w.end_object();
    }

    /// The members of [`Template::write_raw_json_with`] field by field: the general path.
    fn write_raw_fields(&self, data: &[u8], w: &mut JsonWriter<'_>) {
        self.for_each_field(data, |spec, v| {
            write_field(w, spec.key.key(), spec.json, spec.ty, v)
        });
    }
}

/// The members of [`Template::write_raw_json_with`] from a fixed-length template's [`RawOp`]s, as
/// [`Template::write_raw_fields`] writes them; `data` holds the whole record. Without a
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
            RawKind::U8 => array::<1>(data, off).map(|v| w.u64(key, u64::from(v[0]))),
            RawKind::U16 => be16(data, off).map(|v| w.u64(key, u64::from(v))),
            RawKind::U32 => be32(data, off).map(|v| w.u64(key, u64::from(v))),
            RawKind::U64 => be64(data, off).map(|v| w.u64(key, v)),
            RawKind::Ipv4 => array::<4>(data, off).map(|v| w.ipv4(key, v)),
            RawKind::DateMillis => {
                be64(data, off).map(|v| w.time_ns(key, v.saturating_mul(1_000_000)))
            }
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
            let v = array::<1>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(u64::from(v[0]));
        }
        RawKind::U16 => {
            let v = be16(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(u64::from(v));
        }
        RawKind::U32 => {
            let v = be32(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(u64::from(v));
        }
        RawKind::U64 => {
            let v = be64(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.u64(v);
        }
        RawKind::Ipv4 => {
            let v = array::<4>(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.ipv4(v);
        }
        RawKind::DateMillis => {
            let v = be64(data, off)?;
            c.key(&op.key, usize::from(op.key_len));
            c.time_ns(v.saturating_mul(1_000_000));
        }
        // not given to the cursor
        RawKind::General => return None,
    }
    Some(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ie::REVERSE_PEN;
    use crate::template::tests::{picked_fields, wf, PLAN_IES};
    use crate::template::WireField;

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
            if let Some(r) = &mut unbounded.raw_ops {
                r.bound = None;
            }
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
        assert_eq!(t.raw_ops.as_ref().map(|r| r.ops.len()), Some(5));
        assert!(t.raw_ops.as_ref().is_some_and(|r| r.bound.is_some()));
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
