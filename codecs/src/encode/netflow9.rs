//! NetFlow v9 (RFC 3954) writer: a 20-byte header, template FlowSets (id 0), options template
//! FlowSets (id 1) and data FlowSets (id = template id >= 256).
//!
//! ```
//! use ferroflow_codecs::encode::netflow9::{templates, HeaderRepr, Writer};
//! use ferroflow_codecs::encode::FlowRepr;
//!
//! let t = templates::ipv4_basic(256);
//! let flow = FlowRepr { src_addr: "10.0.0.1".parse().unwrap(), ..FlowRepr::default() };
//! let mut buf = Vec::with_capacity(1500);
//! let hdr = HeaderRepr { sys_uptime_ms: 60_000, unix_secs: 1_700_000_000, sequence: 1, source_id: 7 };
//! let mut w = Writer::begin(&mut buf, &hdr);
//! w.template_set(std::slice::from_ref(&t))?;
//! w.begin_data_set(&t)?;
//! w.record_flow(&flow)?;
//! let msg = w.finish()?;
//! assert_eq!(&msg[0..4], &[0, 9, 0, 2]); // version 9, two records (template + data)
//! # Ok::<(), ferroflow_codecs::encode::EncodeError>(())
//! ```

pub use super::common::{
    EncodeError, FieldSpecRepr, FieldValue, FlowRepr, OptionsTemplateRepr, TemplateRepr,
};
use super::common::{Proto, SetWriter};

pub const VERSION: u16 = 9;
pub const HEADER_LEN: usize = 20;
/// FlowSet id of template FlowSets.
pub const TEMPLATE_SET_ID: u16 = 0;
/// FlowSet id of options template FlowSets.
pub const OPTIONS_TEMPLATE_SET_ID: u16 = 1;

/// The v9 packet header (the count is filled in by [`Writer::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HeaderRepr {
    pub sys_uptime_ms: u32,
    pub unix_secs: u32,
    /// Incremented per export packet (RFC 3954 5.1).
    pub sequence: u32,
    pub source_id: u32,
}

impl HeaderRepr {
    /// The exporter's boot time in epoch ms, the base of FIRST/LAST_SWITCHED.
    pub fn boot_ms(&self) -> u64 {
        (u64::from(self.unix_secs) * 1000).saturating_sub(u64::from(self.sys_uptime_ms))
    }

    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[4..8].copy_from_slice(&self.sys_uptime_ms.to_be_bytes());
        b[8..12].copy_from_slice(&self.unix_secs.to_be_bytes());
        b[12..16].copy_from_slice(&self.sequence.to_be_bytes());
        b[16..20].copy_from_slice(&self.source_id.to_be_bytes());
        b
    }
}

/// Appends one v9 export packet to a caller's buffer. Sets are padded to 4 bytes by default
/// (RFC 3954 5.3 "SHOULD"); see [`Writer::set_padding`]. A failed call leaves the buffer as it
/// was before it, so the writer can go on.
#[derive(Debug)]
pub struct Writer<'a> {
    inner: SetWriter<'a>,
}

impl<'a> Writer<'a> {
    /// Start a packet at the end of `out` (which is not cleared: several packets may share a
    /// buffer).
    pub fn begin(out: &'a mut Vec<u8>, header: &HeaderRepr) -> Self {
        let inner = SetWriter::begin(out, Proto::V9, &header.to_bytes(), header.boot_ms());
        Writer { inner }
    }

    /// Pad every set closed from now on to a multiple of 4 bytes (when a record is longer
    /// than the padding, so that no decoder can take the padding for a record).
    pub fn set_padding(&mut self, pad: bool) -> &mut Self {
        self.inner.set_padding(pad);
        self
    }

    /// A template FlowSet holding `templates` (closes an open data set first).
    pub fn template_set(&mut self, templates: &[TemplateRepr]) -> Result<(), EncodeError> {
        self.inner.template_set(templates)
    }

    /// An options template FlowSet holding `templates` (closes an open data set first).
    pub fn options_template_set(
        &mut self,
        templates: &[OptionsTemplateRepr],
    ) -> Result<(), EncodeError> {
        self.inner.options_template_set(templates)
    }

    /// NetFlow v9 has no template withdrawal: always [`EncodeError::Unsupported`].
    pub fn template_withdrawal(&mut self, ids: &[u16]) -> Result<(), EncodeError> {
        self.inner.withdrawal(ids, false)
    }

    /// Open a data FlowSet for `template` (closes an open data set first).
    pub fn begin_data_set(&mut self, template: &'a TemplateRepr) -> Result<(), EncodeError> {
        self.inner
            .begin_data_set(template.id, &[], &template.fields)
    }

    /// Open a data FlowSet for an options template: records carry scope values, then options.
    pub fn begin_options_data_set(
        &mut self,
        template: &'a OptionsTemplateRepr,
    ) -> Result<(), EncodeError> {
        self.inner
            .begin_data_set(template.id, &template.scope_fields, &template.fields)
    }

    /// One data record, one value per field in template order.
    pub fn record(&mut self, values: &[FieldValue]) -> Result<(), EncodeError> {
        self.inner.record(values)
    }

    /// One pre-encoded record of exactly the template's record length (the fast path).
    pub fn record_bytes(&mut self, record: &[u8]) -> Result<(), EncodeError> {
        self.inner.record_bytes(record)
    }

    /// One record filled from `flow` field by field (see [`super::flow_field_value`]);
    /// FIRST/LAST_SWITCHED are relative to the header's boot time. Allocation-free.
    pub fn record_flow(&mut self, flow: &FlowRepr) -> Result<(), EncodeError> {
        self.inner.record_flow(flow)
    }

    /// Close the open data FlowSet (with padding when enabled). Idempotent.
    pub fn end_data_set(&mut self) -> Result<(), EncodeError> {
        self.inner.end_data_set()
    }

    /// Bytes written so far, header included (to decide when a packet is full).
    pub fn message_len(&self) -> usize {
        self.inner.message_len()
    }

    /// Records so far: template, options template and data records (the header count).
    pub fn record_count(&self) -> u32 {
        self.inner.record_count()
    }

    /// Data records so far.
    pub fn data_record_count(&self) -> u32 {
        self.inner.data_record_count()
    }

    /// Close the open set, patch the header count and return the packet.
    pub fn finish(self) -> Result<&'a [u8], EncodeError> {
        self.inner.finish()
    }
}

/// Ready-made templates as routers export them. Field types (RFC 3954 section 8): IN_BYTES 1,
/// IN_PKTS 2, PROTOCOL 4, SRC_TOS 5, TCP_FLAGS 6, L4_SRC_PORT 7, IPV4_SRC_ADDR 8, SRC_MASK 9,
/// INPUT_SNMP 10, L4_DST_PORT 11, IPV4_DST_ADDR 12, DST_MASK 13, OUTPUT_SNMP 14,
/// IPV4_NEXT_HOP 15, SRC_AS 16, DST_AS 17, LAST_SWITCHED 21, FIRST_SWITCHED 22,
/// IPV6_SRC_ADDR 27, IPV6_DST_ADDR 28, IPV6_SRC_MASK 29, IPV6_DST_MASK 30,
/// SAMPLING_INTERVAL 34, SAMPLING_ALGORITHM 35, FLOW_SAMPLER_ID 48, FLOW_SAMPLER_MODE 49,
/// FLOW_SAMPLER_RANDOM_INTERVAL 50, DIRECTION 61, IPV6_NEXT_HOP 62.
pub mod templates {
    use super::{FieldSpecRepr as F, FieldValue, OptionsTemplateRepr, TemplateRepr};

    /// Options scope field type "System" (RFC 3954 6.1).
    pub const SCOPE_SYSTEM: u16 = 1;
    /// Options scope field type "Interface".
    pub const SCOPE_INTERFACE: u16 = 2;

    /// IPv4 flows: addresses, ports, protocol, flags, ToS, 4-byte counters, interfaces,
    /// uptime timestamps, AS numbers, masks, next hop, direction. 54 bytes a record.
    pub fn ipv4_basic(id: u16) -> TemplateRepr {
        TemplateRepr {
            id,
            fields: vec![
                F::new(8, 4),
                F::new(12, 4),
                F::new(7, 2),
                F::new(11, 2),
                F::new(4, 1),
                F::new(6, 1),
                F::new(5, 1),
                F::new(1, 4),
                F::new(2, 4),
                F::new(10, 4),
                F::new(14, 4),
                F::new(22, 4),
                F::new(21, 4),
                F::new(16, 4),
                F::new(17, 4),
                F::new(9, 1),
                F::new(13, 1),
                F::new(15, 4),
                F::new(61, 1),
            ],
        }
    }

    /// [`ipv4_basic`] plus FLOW_SAMPLER_ID (1 byte), pointing at [`sampler_options`] data.
    pub fn ipv4_sampled(id: u16) -> TemplateRepr {
        let mut t = ipv4_basic(id);
        t.fields.push(F::new(48, 1));
        t
    }

    /// IPv6 flows: as [`ipv4_basic`] with 16-byte addresses and next hop. 90 bytes a record.
    pub fn ipv6_basic(id: u16) -> TemplateRepr {
        TemplateRepr {
            id,
            fields: vec![
                F::new(27, 16),
                F::new(28, 16),
                F::new(7, 2),
                F::new(11, 2),
                F::new(4, 1),
                F::new(6, 1),
                F::new(5, 1),
                F::new(1, 4),
                F::new(2, 4),
                F::new(10, 4),
                F::new(14, 4),
                F::new(22, 4),
                F::new(21, 4),
                F::new(16, 4),
                F::new(17, 4),
                F::new(29, 1),
                F::new(30, 1),
                F::new(62, 16),
                F::new(61, 1),
            ],
        }
    }

    /// Sampling options: scope System (4 bytes), SAMPLING_INTERVAL (4), SAMPLING_ALGORITHM
    /// (1: 1 deterministic, 2 random). Values: [`sampling_values`].
    pub fn sampling_options(id: u16) -> OptionsTemplateRepr {
        OptionsTemplateRepr {
            id,
            scope_fields: vec![F::new(SCOPE_SYSTEM, 4)],
            fields: vec![F::new(34, 4), F::new(35, 1)],
        }
    }

    /// The values of a [`sampling_options`] record.
    pub fn sampling_values(system: u32, interval: u32, algorithm: u8) -> [FieldValue; 3] {
        [
            FieldValue::Unsigned(u64::from(system)),
            FieldValue::Unsigned(u64::from(interval)),
            FieldValue::Unsigned(u64::from(algorithm)),
        ]
    }

    /// Flow sampler options (Cisco NetFlow v9 "sampler" table): scope System (4 bytes),
    /// FLOW_SAMPLER_ID (1), FLOW_SAMPLER_MODE (1), FLOW_SAMPLER_RANDOM_INTERVAL (4).
    /// Values: [`sampler_values`].
    pub fn sampler_options(id: u16) -> OptionsTemplateRepr {
        OptionsTemplateRepr {
            id,
            scope_fields: vec![F::new(SCOPE_SYSTEM, 4)],
            fields: vec![F::new(48, 1), F::new(49, 1), F::new(50, 4)],
        }
    }

    /// The values of a [`sampler_options`] record.
    pub fn sampler_values(system: u32, sampler_id: u8, mode: u8, interval: u32) -> [FieldValue; 4] {
        [
            FieldValue::Unsigned(u64::from(system)),
            FieldValue::Unsigned(u64::from(sampler_id)),
            FieldValue::Unsigned(u64::from(mode)),
            FieldValue::Unsigned(u64::from(interval)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HDR: HeaderRepr = HeaderRepr {
        sys_uptime_ms: 0x0001_0000,
        unix_secs: 0x6553_f100,
        sequence: 7,
        source_id: 0x0102_0304,
    };

    fn small_template() -> TemplateRepr {
        TemplateRepr {
            id: 256,
            fields: vec![
                FieldSpecRepr::new(8, 4), // IPV4_SRC_ADDR
                FieldSpecRepr::new(7, 2), // L4_SRC_PORT
                FieldSpecRepr::new(4, 1), // PROTOCOL
                FieldSpecRepr::new(1, 4), // IN_BYTES
            ],
        }
    }

    /// A template FlowSet and a data FlowSet with two records, computed by hand.
    #[test]
    fn template_and_data_exact_bytes() {
        let t = small_template();
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.template_set(std::slice::from_ref(&t)).unwrap();
        w.begin_data_set(&t).unwrap();
        w.record(&[
            FieldValue::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
            FieldValue::Unsigned(443),
            FieldValue::Unsigned(6),
            FieldValue::Unsigned(1500),
        ])
        .unwrap();
        w.record(&[
            FieldValue::Ipv4(Ipv4Addr::new(192, 168, 1, 2)),
            FieldValue::Unsigned(53),
            FieldValue::Unsigned(17),
            FieldValue::Unsigned(0x0102_0304),
        ])
        .unwrap();
        assert_eq!(w.record_count(), 3);
        let msg = w.finish().unwrap().to_vec();
        #[rustfmt::skip]
        let want: &[u8] = &[
            // header: version 9, count 3 (1 template + 2 data records)
            0x00, 0x09, 0x00, 0x03,
            0x00, 0x01, 0x00, 0x00, // sys_uptime
            0x65, 0x53, 0xf1, 0x00, // unix_secs
            0x00, 0x00, 0x00, 0x07, // sequence
            0x01, 0x02, 0x03, 0x04, // source id
            // template FlowSet: id 0, length 4 + 4 + 4*4 = 24 (already aligned)
            0x00, 0x00, 0x00, 0x18,
            0x01, 0x00, 0x00, 0x04, // template 256, 4 fields
            0x00, 0x08, 0x00, 0x04,
            0x00, 0x07, 0x00, 0x02,
            0x00, 0x04, 0x00, 0x01,
            0x00, 0x01, 0x00, 0x04,
            // data FlowSet 256: 4 + 2*11 = 26, padded to 28
            0x01, 0x00, 0x00, 0x1c,
            10, 0, 0, 1, 0x01, 0xbb, 6, 0x00, 0x00, 0x05, 0xdc,
            192, 168, 1, 2, 0x00, 0x35, 17, 0x01, 0x02, 0x03, 0x04,
            0x00, 0x00,
        ];
        assert_eq!(msg, want);
    }

    #[test]
    fn options_template_and_data_exact_bytes() {
        let t = templates::sampling_options(300);
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.options_template_set(std::slice::from_ref(&t)).unwrap();
        w.begin_options_data_set(&t).unwrap();
        w.record(&templates::sampling_values(1, 100, 2)).unwrap();
        let msg = w.finish().unwrap().to_vec();
        #[rustfmt::skip]
        let want: &[u8] = &[
            // options template FlowSet: id 1, 4 + 6 + 3*4 = 22, padded to 24
            0x00, 0x01, 0x00, 0x18,
            0x01, 0x2c, 0x00, 0x04, 0x00, 0x08, // template 300, scope 4 bytes, options 8 bytes
            0x00, 0x01, 0x00, 0x04, // System, 4
            0x00, 0x22, 0x00, 0x04, // SAMPLING_INTERVAL, 4
            0x00, 0x23, 0x00, 0x01, // SAMPLING_ALGORITHM, 1
            0x00, 0x00,
            // data FlowSet 300: 4 + 9 = 13, padded to 16
            0x01, 0x2c, 0x00, 0x10,
            0, 0, 0, 1, 0, 0, 0, 100, 2,
            0, 0, 0,
        ];
        assert_eq!(&msg[..4], &[0, 9, 0, 2]);
        assert_eq!(&msg[HEADER_LEN..], want);
    }

    #[test]
    fn no_padding_when_disabled() {
        let t = small_template();
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.set_padding(false);
        w.begin_data_set(&t).unwrap();
        w.record_bytes(&[0; 11]).unwrap();
        let msg = w.finish().unwrap();
        assert_eq!(msg.len(), HEADER_LEN + 15);
        assert_eq!(&msg[HEADER_LEN..HEADER_LEN + 4], &[1, 0, 0, 15]);
    }

    #[test]
    fn v9_rejects_what_it_cannot_carry() {
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        let ent = TemplateRepr {
            id: 256,
            fields: vec![FieldSpecRepr::enterprise(1, 9, 4)],
        };
        assert!(matches!(
            w.template_set(&[ent]),
            Err(EncodeError::InvalidTemplate {
                template_id: 256,
                ..
            })
        ));
        let var = TemplateRepr {
            id: 257,
            fields: vec![FieldSpecRepr::variable(82)],
        };
        assert!(matches!(
            w.template_set(&[var]),
            Err(EncodeError::InvalidTemplate {
                template_id: 257,
                ..
            })
        ));
        assert!(matches!(
            w.template_withdrawal(&[256]),
            Err(EncodeError::Unsupported { .. })
        ));
        let low = TemplateRepr {
            id: 255,
            fields: vec![FieldSpecRepr::new(1, 4)],
        };
        assert!(w.template_set(&[low]).is_err());
        // Nothing was left behind by the failed calls.
        assert_eq!(w.message_len(), HEADER_LEN);
        assert_eq!(w.finish().unwrap(), &HDR.to_bytes()[..]);
    }

    #[test]
    fn value_errors_leave_the_record_out() {
        let t = small_template();
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        assert_eq!(
            w.record(&[]),
            Err(EncodeError::State("no data set is open"))
        );
        w.begin_data_set(&t).unwrap();
        assert_eq!(
            w.record(&[FieldValue::Unsigned(1)]),
            Err(EncodeError::ValueCount {
                template_id: 256,
                expected: 4,
                got: 1
            })
        );
        // 70000 does not fit L4_SRC_PORT's 2 bytes.
        let vals = [
            FieldValue::Ipv4(Ipv4Addr::LOCALHOST),
            FieldValue::Unsigned(70_000),
            FieldValue::Unsigned(6),
            FieldValue::Unsigned(1),
        ];
        assert_eq!(
            w.record(&vals),
            Err(EncodeError::ValueMismatch {
                template_id: 256,
                index: 1,
                field_id: 7,
                field_len: 2
            })
        );
        assert!(w.record_bytes(&[0; 10]).is_err());
        assert_eq!(w.data_record_count(), 0);
        assert_eq!(w.message_len(), HEADER_LEN + 4);
    }

    #[test]
    fn record_flow_matches_record() {
        let t = templates::ipv4_sampled(260);
        let flow = FlowRepr {
            src_addr: "10.1.2.3".parse().unwrap(),
            dst_addr: "10.3.2.1".parse().unwrap(),
            next_hop: "10.0.0.254".parse().unwrap(),
            src_port: 1234,
            dst_port: 80,
            protocol: 6,
            tcp_flags: 0x1b,
            tos: 0x20,
            octets: 123_456,
            packets: 100,
            input: 3,
            output: 4,
            start_ms: HDR.boot_ms() + 1000,
            end_ms: HDR.boot_ms() + 2000,
            src_as: 65001,
            dst_as: 65002,
            src_mask: 24,
            dst_mask: 16,
            direction: 1,
            sampler_id: 2,
        };
        let u = |v: u64| FieldValue::Unsigned(v);
        let vals = [
            FieldValue::Ipv4("10.1.2.3".parse().unwrap()),
            FieldValue::Ipv4("10.3.2.1".parse().unwrap()),
            u(1234),
            u(80),
            u(6),
            u(0x1b),
            u(0x20),
            u(123_456),
            u(100),
            u(3),
            u(4),
            u(1000),
            u(2000),
            u(65001),
            u(65002),
            u(24),
            u(16),
            FieldValue::Ipv4("10.0.0.254".parse().unwrap()),
            u(1),
            u(2),
        ];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut w = Writer::begin(&mut a, &HDR);
        w.begin_data_set(&t).unwrap();
        w.record_flow(&flow).unwrap();
        w.finish().unwrap();
        let mut w = Writer::begin(&mut b, &HDR);
        w.begin_data_set(&t).unwrap();
        w.record(&vals).unwrap();
        w.finish().unwrap();
        assert_eq!(a, b);
        // An IPv6 flow has no IPV4_SRC_ADDR.
        let mut w = Writer::begin(&mut a, &HDR);
        w.begin_data_set(&t).unwrap();
        let v6 = FlowRepr {
            src_addr: "::1".parse().unwrap(),
            ..flow
        };
        assert_eq!(
            w.record_flow(&v6),
            Err(EncodeError::NoFlowValue {
                field_id: 8,
                enterprise: 0
            })
        );
    }

    #[test]
    fn several_packets_share_a_buffer() {
        let t = small_template();
        let mut buf = Vec::new();
        for seq in 0..3 {
            let h = HeaderRepr {
                sequence: seq,
                ..HDR
            };
            let mut w = Writer::begin(&mut buf, &h);
            w.begin_data_set(&t).unwrap();
            w.record_bytes(&[1; 11]).unwrap();
            w.finish().unwrap();
        }
        assert_eq!(buf.len(), 3 * (HEADER_LEN + 16));
        assert_eq!(&buf[HEADER_LEN + 16..][12..16], &[0, 0, 0, 1]);
    }
}
