//! Information elements: the IANA IPFIX registry, NetFlow v9 field types and the enterprise
//! elements we know. Looked up when a template is compiled, never per record.

mod iana;
mod v9;

/// Abstract data types of RFC 7012 section 3.1 (plus the list types of RFC 6313).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IeType {
    OctetArray,
    Unsigned8,
    Unsigned16,
    Unsigned32,
    Unsigned64,
    Signed8,
    Signed16,
    Signed32,
    Signed64,
    Float32,
    Float64,
    Boolean,
    MacAddress,
    String,
    DateTimeSeconds,
    DateTimeMilliseconds,
    DateTimeMicroseconds,
    DateTimeNanoseconds,
    Ipv4Address,
    Ipv6Address,
    BasicList,
    SubTemplateList,
    SubTemplateMultiList,
}

/// One registry entry. `name` is the IANA name in snake_case (`octet_delta_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IeInfo {
    pub id: u16,
    pub name: &'static str,
    pub ty: IeType,
}

/// IANA element `id` (enterprise 0). `None` for unassigned ids.
pub fn iana(id: u16) -> Option<&'static IeInfo> {
    lookup(iana::TABLE, id)
}

/// NetFlow v9 field type `id` (RFC 3954 section 8 and the vendor types seen in the field).
/// Types 1..=127 share their numbering with IPFIX; for those the IANA name is used unless v9
/// defines the number differently.
pub fn netflow_v9(id: u16) -> Option<&'static IeInfo> {
    lookup(v9::TABLE, id).or_else(|| iana(id))
}

/// Private enterprise number of the IPFIX reverse information elements (RFC 5103).
pub const REVERSE_PEN: u32 = 29305;

/// Elements of private enterprises we know by name. Reverse elements (PEN 29305) are not
/// listed: they are `reverse_` + the IANA name of the same id.
pub fn enterprise(pen: u32, id: u16) -> Option<&'static IeInfo> {
    let _ = (pen, id);
    None
}

fn lookup(table: &'static [IeInfo], id: u16) -> Option<&'static IeInfo> {
    table
        .binary_search_by_key(&id, |e| e.id)
        .ok()
        .map(|i| &table[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for t in [iana::TABLE, v9::TABLE] {
            for w in t.windows(2) {
                assert!(w[0].id < w[1].id, "{} before {}", w[0].id, w[1].id);
            }
        }
    }

    #[test]
    fn well_known_elements() {
        let e = iana(1).unwrap();
        assert_eq!((e.name, e.ty), ("octet_delta_count", IeType::Unsigned64));
        assert_eq!(iana(8).unwrap().ty, IeType::Ipv4Address);
        assert_eq!(iana(27).unwrap().name, "source_ipv6_address");
        assert_eq!(iana(152).unwrap().ty, IeType::DateTimeMilliseconds);
        assert_eq!(netflow_v9(1).unwrap().name, "octet_delta_count");
    }
}
