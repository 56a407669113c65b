//! NetFlow v9 field types that differ from, or are missing in, the IANA registry.

use super::{IeInfo, IeType};

pub(super) static TABLE: &[IeInfo] = &[
    IeInfo {
        id: 23,
        name: "out_bytes",
        ty: IeType::Unsigned64,
    },
    IeInfo {
        id: 24,
        name: "out_pkts",
        ty: IeType::Unsigned64,
    },
];
