//! A minimal MaxMind DB (format 2.0) writer, so tests can build their own small GeoIP / ASN
//! databases (no database is shipped or downloaded). IPv6 tree, IPv4 networks under `::/96`,
//! 32-bit records; values are maps of strings, unsigned integers, doubles and nested maps. Not
//! meant for large databases: every record's data is written out separately.

use std::net::IpAddr;

/// A data value.
#[derive(Clone, Debug)]
pub enum MmdbValue {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    F64(f64),
    Map(Vec<(String, MmdbValue)>),
    Array(Vec<MmdbValue>),
}

impl MmdbValue {
    /// A map from `(key, value)` pairs.
    pub fn map<I: IntoIterator<Item = (&'static str, MmdbValue)>>(items: I) -> MmdbValue {
        MmdbValue::Map(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    pub fn str(s: &str) -> MmdbValue {
        MmdbValue::Str(s.to_string())
    }
}

fn ctrl(out: &mut Vec<u8>, ty: u8, size: usize) {
    let (first, ext): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 285 {
        (29, vec![(size - 29) as u8])
    } else if size < 65_821 {
        let s = size - 285;
        (30, vec![(s >> 8) as u8, s as u8])
    } else {
        let s = size - 65_821;
        (31, vec![(s >> 16) as u8, (s >> 8) as u8, s as u8])
    };
    if ty <= 7 {
        out.push((ty << 5) | first);
    } else {
        out.push(first);
        out.push(ty - 7);
    }
    out.extend_from_slice(&ext);
}

fn uint_bytes(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count();
    b[skip..].to_vec()
}

fn encode(v: &MmdbValue, out: &mut Vec<u8>) {
    match v {
        MmdbValue::Str(s) => {
            ctrl(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        MmdbValue::F64(f) => {
            ctrl(out, 3, 8);
            out.extend_from_slice(&f.to_be_bytes());
        }
        MmdbValue::U16(x) => {
            let b = uint_bytes(u64::from(*x));
            ctrl(out, 5, b.len());
            out.extend_from_slice(&b);
        }
        MmdbValue::U32(x) => {
            let b = uint_bytes(u64::from(*x));
            ctrl(out, 6, b.len());
            out.extend_from_slice(&b);
        }
        MmdbValue::U64(x) => {
            let b = uint_bytes(*x);
            ctrl(out, 9, b.len());
            out.extend_from_slice(&b);
        }
        MmdbValue::Array(a) => {
            ctrl(out, 11, a.len());
            for v in a {
                encode(v, out);
            }
        }
        MmdbValue::Map(m) => {
            ctrl(out, 7, m.len());
            for (k, v) in m {
                encode(&MmdbValue::Str(k.clone()), out);
                encode(v, out);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds a database: `insert` networks, then `build`.
pub struct MmdbWriter {
    database_type: String,
    /// Nodes: [left, right].
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
}

impl MmdbWriter {
    pub fn new(database_type: &str) -> Self {
        MmdbWriter {
            database_type: database_type.to_string(),
            nodes: vec![[Rec::Empty, Rec::Empty]],
            data: Vec::new(),
        }
    }

    /// Maps the network `addr/prefix_len` to `value`. Insert shorter prefixes before the longer
    /// ones inside them.
    pub fn insert(&mut self, addr: IpAddr, prefix_len: u8, value: &MmdbValue) {
        let (bits, len) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 96 + u32::from(prefix_len.min(32))),
            IpAddr::V6(a) => (u128::from(a), u32::from(prefix_len.min(128))),
        };
        let off = self.data.len();
        encode(value, &mut self.data);
        let mut node = 0usize;
        for i in 0..len {
            let bit = ((bits >> (127 - i)) & 1) as usize;
            if i + 1 == len {
                self.nodes[node][bit] = Rec::Data(off);
                return;
            }
            node = match self.nodes[node][bit] {
                Rec::Node(n) => n,
                other => {
                    self.nodes.push([other, other]);
                    let n = self.nodes.len() - 1;
                    self.nodes[node][bit] = Rec::Node(n);
                    n
                }
            };
        }
    }

    /// The database file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let n = self.nodes.len();
        let mut out = Vec::with_capacity(n * 8 + self.data.len() + 256);
        for node in &self.nodes {
            for r in node {
                let v: u32 = match *r {
                    Rec::Empty => n as u32,
                    Rec::Node(i) => i as u32,
                    Rec::Data(off) => (n + 16 + off) as u32,
                };
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let meta = MmdbValue::map([
            ("binary_format_major_version", MmdbValue::U16(2)),
            ("binary_format_minor_version", MmdbValue::U16(0)),
            ("build_epoch", MmdbValue::U64(1_700_000_000)),
            ("database_type", MmdbValue::str(&self.database_type)),
            (
                "description",
                MmdbValue::map([("en", MmdbValue::str("ferroflow test database"))]),
            ),
            ("ip_version", MmdbValue::U16(6)),
            ("languages", MmdbValue::Array(vec![MmdbValue::str("en")])),
            ("node_count", MmdbValue::U32(n as u32)),
            ("record_size", MmdbValue::U16(32)),
        ]);
        let mut m = Vec::new();
        encode(&meta, &mut m);
        out.extend_from_slice(&m);
        out
    }
}
