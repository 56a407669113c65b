//! NetFlow v9 / IPFIX templates: parsed from template sets, compiled once into field specs
//! with a precomputed "setter" per field, then used to read data records in place.
//!
//! `parse`: the wire side (template sets, [`WireField`]); `plan`: the compiled fill plan of a
//! fixed-length template; `fill`: reading a data record into a [`FlowRecord`](crate::FlowRecord).

mod fill;
mod parse;
mod plan;
#[cfg(test)]
pub(crate) mod tests;

use std::borrow::Cow;

use crate::bytes::be16;
use crate::error::DecodeError;
use crate::ie::IeType;
use crate::json::template::{json_kind, JsonKind, RawOps};
use crate::json::KeyBuf;

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
    /// How `netflow.*` of a record of a fixed-length template whose keys all fit
    /// [`crate::json::WIDE_KEY`] bytes is written: made and read by [`crate::json`].
    pub(crate) raw_ops: Option<RawOps>,
    /// [`Template::heap_bytes`], measured once when compiled
    heap_bytes: usize,
}

/// What the allocator keeps beside each allocation (glibc malloc: a 8-byte header, 16-byte
/// alignment): counted once per heap block in [`Template::heap_bytes`].
const ALLOC_OVERHEAD: usize = 16;

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
        let raw_ops = if fixed { RawOps::build(&specs) } else { None };
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
            n += block(ops.heap_len());
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
