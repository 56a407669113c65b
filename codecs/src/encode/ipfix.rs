//! IPFIX (RFC 7011) writer: a 16-byte message header, template sets (id 2), options template
//! sets (id 3), withdrawals and data sets (id = template id >= 256), with enterprise-specific
//! fields, reduced-size encoding (RFC 7011 6.2) and variable-length fields (RFC 7011 7:
//! a 1-byte length below 255, else 255 and a 2-byte length).
//!
//! ```
//! use ferroflow_codecs::encode::ipfix::{templates, HeaderRepr, Writer};
//! use ferroflow_codecs::encode::FlowRepr;
//!
//! let t = templates::ipv4_basic(256);
//! let flow = FlowRepr { src_addr: "10.0.0.1".parse().unwrap(), ..FlowRepr::default() };
//! let mut buf = Vec::with_capacity(1500);
//! let hdr = HeaderRepr { export_time: 1_700_000_000, sequence: 0, observation_domain: 1 };
//! let mut w = Writer::begin(&mut buf, &hdr);
//! w.template_set(std::slice::from_ref(&t))?;
//! w.begin_data_set(&t)?;
//! w.record_flow(&flow)?;
//! let data_records = w.data_record_count(); // the next message's sequence grows by this
//! let msg = w.finish()?;
//! assert_eq!(usize::from(u16::from_be_bytes([msg[2], msg[3]])), msg.len());
//! assert_eq!(data_records, 1);
//! # Ok::<(), ferroflow_codecs::encode::EncodeError>(())
//! ```

pub use super::common::{
    EncodeError, FieldSpecRepr, FieldValue, FlowRepr, OptionsTemplateRepr, TemplateRepr,
    VARIABLE_LENGTH,
};
use super::common::{Proto, SetWriter};

pub const VERSION: u16 = 10;
pub const HEADER_LEN: usize = 16;
pub const TEMPLATE_SET_ID: u16 = 2;
pub const OPTIONS_TEMPLATE_SET_ID: u16 = 3;

/// The IPFIX message header (the length is filled in by [`Writer::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HeaderRepr {
    /// Seconds since the epoch.
    pub export_time: u32,
    /// Data records sent before this message in this observation domain (RFC 7011 3.1).
    pub sequence: u32,
    pub observation_domain: u32,
}

impl HeaderRepr {
    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[4..8].copy_from_slice(&self.export_time.to_be_bytes());
        b[8..12].copy_from_slice(&self.sequence.to_be_bytes());
        b[12..16].copy_from_slice(&self.observation_domain.to_be_bytes());
        b
    }
}

/// Appends one IPFIX message to a caller's buffer. Sets are not padded by default; see
/// [`Writer::set_padding`]. A failed call leaves the buffer as it was before it.
#[derive(Debug)]
pub struct Writer<'a> {
    inner: SetWriter<'a>,
}

impl<'a> Writer<'a> {
    /// Start a message at the end of `out` (which is not cleared: several messages may share
    /// a buffer).
    pub fn begin(out: &'a mut Vec<u8>, header: &HeaderRepr) -> Self {
        let inner = SetWriter::begin(out, Proto::Ipfix, &header.to_bytes(), 0);
        Writer { inner }
    }

    /// Pad every set closed from now on to a multiple of 4 bytes (RFC 7011 3.3.1), unless a
    /// record of the set could be as short as the padding.
    pub fn set_padding(&mut self, pad: bool) -> &mut Self {
        self.inner.set_padding(pad);
        self
    }

    /// The exporter's boot time in epoch ms (systemInitTimeMilliseconds), the base of
    /// `record_flow`'s flowStartSysUpTime / flowEndSysUpTime (IEs 22 / 21). Default 0.
    pub fn set_system_init_ms(&mut self, ms: u64) -> &mut Self {
        self.inner.boot_ms = ms;
        self
    }

    /// A template set holding `templates` (closes an open data set first).
    pub fn template_set(&mut self, templates: &[TemplateRepr]) -> Result<(), EncodeError> {
        self.inner.template_set(templates)
    }

    /// An options template set holding `templates` (closes an open data set first).
    pub fn options_template_set(
        &mut self,
        templates: &[OptionsTemplateRepr],
    ) -> Result<(), EncodeError> {
        self.inner.options_template_set(templates)
    }

    /// A template set of withdrawal records (template id, field count 0; RFC 7011 8.1).
    /// The id 2 withdraws all templates.
    pub fn template_withdrawal(&mut self, ids: &[u16]) -> Result<(), EncodeError> {
        self.inner.withdrawal(ids, false)
    }

    /// An options template set of withdrawal records. The id 3 withdraws all options
    /// templates.
    pub fn options_template_withdrawal(&mut self, ids: &[u16]) -> Result<(), EncodeError> {
        self.inner.withdrawal(ids, true)
    }

    /// Open a data set for `template` (closes an open data set first).
    pub fn begin_data_set(&mut self, template: &'a TemplateRepr) -> Result<(), EncodeError> {
        self.inner
            .begin_data_set(template.id, &[], &template.fields)
    }

    /// Open a data set for an options template: records carry scope values, then options.
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

    /// One pre-encoded record of exactly the template's record length (fixed-length
    /// templates only; the fast path).
    pub fn record_bytes(&mut self, record: &[u8]) -> Result<(), EncodeError> {
        self.inner.record_bytes(record)
    }

    /// One record filled from `flow` field by field (see [`super::flow_field_value`]).
    /// Enterprise fields have no flow value. Allocation-free.
    pub fn record_flow(&mut self, flow: &FlowRepr) -> Result<(), EncodeError> {
        self.inner.record_flow(flow)
    }

    /// Close the open data set (with padding when enabled). Idempotent.
    pub fn end_data_set(&mut self) -> Result<(), EncodeError> {
        self.inner.end_data_set()
    }

    /// Bytes written so far, header included (to decide when a message is full).
    pub fn message_len(&self) -> usize {
        self.inner.message_len()
    }

    /// Records so far of every kind (template, withdrawal and data records).
    pub fn record_count(&self) -> u32 {
        self.inner.record_count()
    }

    /// Data records so far: what the next message's sequence number adds.
    pub fn data_record_count(&self) -> u32 {
        self.inner.data_record_count()
    }

    /// Close the open set, patch the message length and return the message.
    pub fn finish(self) -> Result<&'a [u8], EncodeError> {
        self.inner.finish()
    }
}

/// Ready-made templates with IANA information elements, as exporters send them.
pub mod templates {
    use super::{FieldSpecRepr as F, FieldValue, OptionsTemplateRepr, TemplateRepr};

    /// IPv4 flows, 70 bytes a record: sourceIPv4Address 8, destinationIPv4Address 12,
    /// sourceTransportPort 7, destinationTransportPort 11, protocolIdentifier 4,
    /// tcpControlBits 6 (1 byte, reduced size), ipClassOfService 5, octetDeltaCount 1 (8),
    /// packetDeltaCount 2 (8), ingressInterface 10, egressInterface 14,
    /// flowStartMilliseconds 152, flowEndMilliseconds 153, bgpSourceAsNumber 16,
    /// bgpDestinationAsNumber 17, sourceIPv4PrefixLength 9, destinationIPv4PrefixLength 13,
    /// ipNextHopIPv4Address 15, flowDirection 61.
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
                F::new(1, 8),
                F::new(2, 8),
                F::new(10, 4),
                F::new(14, 4),
                F::new(152, 8),
                F::new(153, 8),
                F::new(16, 4),
                F::new(17, 4),
                F::new(9, 1),
                F::new(13, 1),
                F::new(15, 4),
                F::new(61, 1),
            ],
        }
    }

    /// [`ipv4_basic`] plus selectorId 302 (2 bytes, reduced size), pointing at
    /// [`sampling_options`] data.
    pub fn ipv4_sampled(id: u16) -> TemplateRepr {
        let mut t = ipv4_basic(id);
        t.fields.push(F::new(302, 2));
        t
    }

    /// IPv6 flows, 106 bytes a record: as [`ipv4_basic`] with sourceIPv6Address 27,
    /// destinationIPv6Address 28, sourceIPv6PrefixLength 29, destinationIPv6PrefixLength 30,
    /// ipNextHopIPv6Address 62.
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
                F::new(1, 8),
                F::new(2, 8),
                F::new(10, 4),
                F::new(14, 4),
                F::new(152, 8),
                F::new(153, 8),
                F::new(16, 4),
                F::new(17, 4),
                F::new(29, 1),
                F::new(30, 1),
                F::new(62, 16),
                F::new(61, 1),
            ],
        }
    }

    /// Sampling options (RFC 5477 / PSAMP): scope selectorId 302 (8), selectorAlgorithm 304
    /// (2), samplingPacketInterval 305 (4), samplingPacketSpace 306 (4). Values:
    /// [`sampling_values`].
    pub fn sampling_options(id: u16) -> OptionsTemplateRepr {
        OptionsTemplateRepr {
            id,
            scope_fields: vec![F::new(302, 8)],
            fields: vec![F::new(304, 2), F::new(305, 4), F::new(306, 4)],
        }
    }

    /// The values of a [`sampling_options`] record: selector id, algorithm (1 systematic
    /// count-based, 3 random n-out-of-N), packets selected, packets skipped.
    pub fn sampling_values(
        selector: u64,
        algorithm: u16,
        interval: u32,
        space: u32,
    ) -> [FieldValue; 4] {
        [
            FieldValue::Unsigned(selector),
            FieldValue::Unsigned(u64::from(algorithm)),
            FieldValue::Unsigned(u64::from(interval)),
            FieldValue::Unsigned(u64::from(space)),
        ]
    }

    /// Sampling options as many routers still send them: scope observationDomainId 149 (4),
    /// samplingInterval 34 (4), samplingAlgorithm 35 (1). Values: [`sampling_legacy_values`].
    pub fn sampling_options_legacy(id: u16) -> OptionsTemplateRepr {
        OptionsTemplateRepr {
            id,
            scope_fields: vec![F::new(149, 4)],
            fields: vec![F::new(34, 4), F::new(35, 1)],
        }
    }

    /// The values of a [`sampling_options_legacy`] record.
    pub fn sampling_legacy_values(domain: u32, interval: u32, algorithm: u8) -> [FieldValue; 3] {
        [
            FieldValue::Unsigned(u64::from(domain)),
            FieldValue::Unsigned(u64::from(interval)),
            FieldValue::Unsigned(u64::from(algorithm)),
        ]
    }

    /// Interface names: scope ingressInterface 10 (4), interfaceName 82 and
    /// interfaceDescription 83, both variable-length. Values: [`interface_values`].
    pub fn interface_options(id: u16) -> OptionsTemplateRepr {
        OptionsTemplateRepr {
            id,
            scope_fields: vec![F::new(10, 4)],
            fields: vec![F::variable(82), F::variable(83)],
        }
    }

    /// The values of an [`interface_options`] record.
    pub fn interface_values(if_index: u32, name: &str, description: &str) -> [FieldValue; 3] {
        [
            FieldValue::Unsigned(u64::from(if_index)),
            FieldValue::Bytes(name.as_bytes().to_vec()),
            FieldValue::Bytes(description.as_bytes().to_vec()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HDR: HeaderRepr = HeaderRepr {
        export_time: 0x6553_f100,
        sequence: 42,
        observation_domain: 1,
    };

    /// Template with a reduced-size field, an enterprise field and a variable-length field;
    /// one data set with two records (short and long variable-length values), computed by
    /// hand.
    #[test]
    fn enterprise_varlen_reduced_exact_bytes() {
        let t = TemplateRepr {
            id: 256,
            fields: vec![
                FieldSpecRepr::new(8, 4),               // sourceIPv4Address
                FieldSpecRepr::new(1, 2),               // octetDeltaCount, reduced to 2 bytes
                FieldSpecRepr::enterprise(1, 29305, 4), // reverse octetDeltaCount, reduced to 4
                FieldSpecRepr::variable(96),            // applicationName
            ],
        };
        let long = vec![b'x'; 300];
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.template_set(std::slice::from_ref(&t)).unwrap();
        w.begin_data_set(&t).unwrap();
        w.record(&[
            FieldValue::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
            FieldValue::Unsigned(1500),
            FieldValue::Unsigned(0x0a0b_0c0d),
            FieldValue::Bytes(b"dns".to_vec()),
        ])
        .unwrap();
        w.record(&[
            FieldValue::Ipv4(Ipv4Addr::new(10, 0, 0, 2)),
            FieldValue::Unsigned(0xffff),
            FieldValue::Unsigned(0),
            FieldValue::Bytes(long.clone()),
        ])
        .unwrap();
        assert_eq!(w.data_record_count(), 2);
        let msg = w.finish().unwrap().to_vec();
        // 16 header + 28 template set + 4 set header + 14 + 313
        assert_eq!(msg.len(), 375);
        #[rustfmt::skip]
        let head: &[u8] = &[
            0x00, 0x0a, 0x01, 0x77, // version 10, length 375
            0x65, 0x53, 0xf1, 0x00, // export time
            0x00, 0x00, 0x00, 0x2a, // sequence 42
            0x00, 0x00, 0x00, 0x01, // observation domain 1
            // template set: id 2, length 4 + 4 + 4 + 4 + 8 + 4 = 28
            0x00, 0x02, 0x00, 0x1c,
            0x01, 0x00, 0x00, 0x04, // template 256, 4 fields
            0x00, 0x08, 0x00, 0x04,
            0x00, 0x01, 0x00, 0x02,
            0x80, 0x01, 0x00, 0x04, 0x00, 0x00, 0x72, 0x79, // E bit + 1, len 4, PEN 29305
            0x00, 0x60, 0xff, 0xff, // 96, variable length
            // data set 256: 4 + (4+2+4+1+3) + (4+2+4+3+300) = 331
            0x01, 0x00, 0x01, 0x4b,
            10, 0, 0, 1, 0x05, 0xdc, 0x0a, 0x0b, 0x0c, 0x0d, 3, b'd', b'n', b's',
            10, 0, 0, 2, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0x01, 0x2c,
        ];
        assert_eq!(&msg[..head.len()], head);
        assert_eq!(&msg[head.len()..], &long[..]);
    }

    #[test]
    fn options_template_withdrawal_and_padding_exact_bytes() {
        let o = templates::sampling_options_legacy(300);
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.set_padding(true);
        w.options_template_set(std::slice::from_ref(&o)).unwrap();
        w.begin_options_data_set(&o).unwrap();
        w.record(&templates::sampling_legacy_values(1, 1000, 1))
            .unwrap();
        w.template_withdrawal(&[256, 257]).unwrap();
        w.options_template_withdrawal(&[3]).unwrap();
        assert_eq!(w.record_count(), 5);
        let msg = w.finish().unwrap().to_vec();
        #[rustfmt::skip]
        let want: &[u8] = &[
            // options template set: id 3, 4 + 6 + 3*4 = 22, padded to 24
            0x00, 0x03, 0x00, 0x18,
            0x01, 0x2c, 0x00, 0x03, 0x00, 0x01, // template 300, 3 fields, 1 scope field
            0x00, 0x95, 0x00, 0x04, // observationDomainId
            0x00, 0x22, 0x00, 0x04, // samplingInterval
            0x00, 0x23, 0x00, 0x01, // samplingAlgorithm
            0x00, 0x00,
            // data set 300: 4 + 9 = 13, padded to 16
            0x01, 0x2c, 0x00, 0x10,
            0, 0, 0, 1, 0, 0, 0x03, 0xe8, 1,
            0, 0, 0,
            // withdrawals: template set with two records, options template set "all"
            0x00, 0x02, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00,
            0x00, 0x03, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00,
        ];
        assert_eq!(&msg[..4], &[0, 10, 0, (HEADER_LEN + want.len()) as u8]);
        assert_eq!(&msg[HEADER_LEN..], want);
    }

    #[test]
    fn no_padding_when_a_record_could_be_taken_for_it() {
        // 2-byte records: padding 2 bytes would read as a record.
        let t = TemplateRepr {
            id: 256,
            fields: vec![FieldSpecRepr::new(7, 2)],
        };
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.set_padding(true);
        w.begin_data_set(&t).unwrap();
        w.record(&[FieldValue::Unsigned(80)]).unwrap();
        let msg = w.finish().unwrap();
        assert_eq!(&msg[HEADER_LEN..], &[1, 0, 0, 6, 0, 80]);
    }

    #[test]
    fn value_errors() {
        let t = TemplateRepr {
            id: 256,
            fields: vec![FieldSpecRepr::variable(82), FieldSpecRepr::new(12, 4)],
        };
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.begin_data_set(&t).unwrap();
        let big = FieldValue::Bytes(vec![0; 65536]);
        assert_eq!(
            w.record(&[big, FieldValue::Ipv4(Ipv4Addr::LOCALHOST)]),
            Err(EncodeError::ValueTooLong { len: 65536 })
        );
        // An IPv6 address in a 4-byte field; a number in a variable-length field.
        assert!(matches!(
            w.record(&[
                FieldValue::Bytes(vec![]),
                FieldValue::Ipv6("::1".parse().unwrap())
            ]),
            Err(EncodeError::ValueMismatch { index: 1, .. })
        ));
        assert!(matches!(
            w.record(&[
                FieldValue::Unsigned(1),
                FieldValue::Ipv4(Ipv4Addr::LOCALHOST)
            ]),
            Err(EncodeError::ValueMismatch { index: 0, .. })
        ));
        assert_eq!(
            w.record_bytes(&[0; 5]),
            Err(EncodeError::State(
                "pre-encoded records need a fixed-length template"
            ))
        );
        assert_eq!(w.message_len(), HEADER_LEN + 4);
        // A message over 65535 bytes is refused record by record.
        let v = FieldValue::Bytes(vec![0; 60_000]);
        let ip = FieldValue::Ipv4(Ipv4Addr::LOCALHOST);
        w.record(&[v.clone(), ip.clone()]).unwrap();
        assert!(matches!(
            w.record(&[v, ip]),
            Err(EncodeError::LengthOverflow { .. })
        ));
        assert_eq!(w.data_record_count(), 1);
        let msg = w.finish().unwrap();
        assert_eq!(msg.len(), HEADER_LEN + 4 + 3 + 60_000 + 4);
    }

    #[test]
    fn bad_templates() {
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        let no_scope = OptionsTemplateRepr {
            id: 300,
            scope_fields: vec![],
            fields: vec![FieldSpecRepr::new(34, 4)],
        };
        assert!(w.options_template_set(&[no_scope]).is_err());
        let zero = TemplateRepr {
            id: 300,
            fields: vec![FieldSpecRepr::new(34, 0)],
        };
        assert!(w.template_set(&[zero]).is_err());
        assert!(w.template_withdrawal(&[3]).is_err());
        assert_eq!(w.message_len(), HEADER_LEN);
    }

    #[test]
    fn ready_made_templates() {
        let f = FlowRepr {
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "2001:db8::2".parse().unwrap(),
            next_hop: "fe80::1".parse().unwrap(),
            octets: u64::MAX,
            ..FlowRepr::default()
        };
        let t4 = templates::ipv4_basic(256);
        let t6 = templates::ipv6_basic(257);
        let ts = templates::ipv4_sampled(258);
        let s = templates::sampling_options(259);
        let i = templates::interface_options(260);
        let mut buf = Vec::new();
        let mut w = Writer::begin(&mut buf, &HDR);
        w.template_set(&[t4.clone(), t6.clone(), ts.clone()])
            .unwrap();
        w.options_template_set(&[s.clone(), i.clone()]).unwrap();
        w.begin_data_set(&t6).unwrap();
        let before = w.message_len();
        w.record_flow(&f).unwrap();
        assert_eq!(w.message_len() - before, 106);
        w.begin_data_set(&t4).unwrap();
        assert!(matches!(
            w.record_flow(&f),
            Err(EncodeError::NoFlowValue { field_id: 8, .. })
        ));
        let f4 = FlowRepr {
            src_addr: "10.0.0.1".parse().unwrap(),
            dst_addr: "10.0.0.2".parse().unwrap(),
            next_hop: "10.0.0.3".parse().unwrap(),
            sampler_id: 7,
            ..f
        };
        let before = w.message_len();
        w.record_flow(&f4).unwrap();
        assert_eq!(w.message_len() - before, 70);
        w.begin_data_set(&ts).unwrap();
        w.record_flow(&f4).unwrap();
        w.begin_options_data_set(&s).unwrap();
        w.record(&templates::sampling_values(7, 3, 1, 99)).unwrap();
        w.begin_options_data_set(&i).unwrap();
        w.record(&templates::interface_values(3, "ge-0/0/1", "uplink"))
            .unwrap();
        assert_eq!(w.data_record_count(), 5);
        w.finish().unwrap();
    }
}
