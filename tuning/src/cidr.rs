//! IP networks in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) and the exporter allow-list
//! built from them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 or IPv6 network: an address and a prefix length. The address is stored with its host
/// bits cleared, so `10.1.2.3/8` and `10.0.0.0/8` are the same network.
///
/// A bare address (`192.0.2.7`, `2001:db8::1`) is accepted as a host route (`/32`, `/128`).
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`) given to [`Cidr::contains`] is matched as
/// the IPv4 address it carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("`{text}` is not an IP address or network like 10.0.0.0/8 or 2001:db8::/32")]
    BadAddress {
        /// The whole input.
        text: String,
    },
    /// The part after `/` is not a number.
    #[error("`{text}`: the prefix length after `/` is not a number")]
    BadPrefix {
        /// The whole input.
        text: String,
    },
    /// The prefix length is longer than the address.
    #[error("`{text}`: prefix length {prefix} is longer than {max}")]
    PrefixTooLong {
        /// The whole input.
        text: String,
        /// The prefix length given.
        prefix: u32,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

impl Cidr {
    /// Builds a network from an address and a prefix length, clearing the host bits.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(CidrError::PrefixTooLong {
                text: format!("{addr}/{prefix}"),
                prefix: prefix.into(),
                max,
            });
        }
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Parses `addr/len` or a bare address.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let t = text.trim();
        let (a, p) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| CidrError::BadAddress {
            text: text.to_string(),
        })?;
        let max = max_prefix(addr);
        let prefix = match p {
            None => max,
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(CidrError::BadPrefix {
                        text: text.to_string(),
                    });
                }
                let n: u32 = p.parse().map_err(|_| CidrError::BadPrefix {
                    text: text.to_string(),
                })?;
                if n > u32::from(max) {
                    return Err(CidrError::PrefixTooLong {
                        text: text.to_string(),
                        prefix: n,
                        max,
                    });
                }
                n as u8
            }
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this network. IPv4 networks never contain IPv6 addresses and the
    /// other way round, except that an IPv4-mapped IPv6 address is looked at as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The exporters whose packets the collector accepts: a list of networks, where the empty list
/// means "every exporter".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AllowList(Vec<Cidr>);

impl AllowList {
    /// A list of networks; empty means "allow all".
    pub fn new(nets: Vec<Cidr>) -> Self {
        AllowList(nets)
    }

    /// Parses every entry; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, CidrError> {
        entries
            .iter()
            .map(|s| Cidr::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList)
    }

    /// Whether an exporter at `ip` is allowed: true when the list is empty or any network
    /// contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|n| n.contains(ip))
    }

    /// Whether the list is empty (everything allowed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The networks.
    pub fn networks(&self) -> &[Cidr] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_v4_and_v6() {
        let n = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        let h = Cidr::parse("192.0.2.7").unwrap();
        assert_eq!(h.prefix(), 32);
        assert!(h.contains(ip("192.0.2.7")));
        assert!(!h.contains(ip("192.0.2.8")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(!n.contains(ip("2001:db8::1")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert_eq!(Cidr::parse("2001:db8::1").unwrap().prefix(), 128);
    }

    #[test]
    fn mapped_v6_is_matched_as_v4() {
        let n = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(n.contains(ip("::ffff:192.0.2.9")));
    }

    #[test]
    fn odd_prefixes() {
        let n = Cidr::parse("172.16.0.0/12").unwrap();
        assert!(n.contains(ip("172.31.255.255")));
        assert!(!n.contains(ip("172.32.0.0")));
        let n = Cidr::parse("2001:db8:abcd:12::/63").unwrap();
        assert!(n.contains(ip("2001:db8:abcd:13::1")));
        assert!(!n.contains(ip("2001:db8:abcd:14::1")));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            Cidr::parse("10.0.0.0/33"),
            Err(CidrError::PrefixTooLong { .. })
        ));
        assert!(matches!(
            Cidr::parse("::/129"),
            Err(CidrError::PrefixTooLong { .. })
        ));
        assert!(matches!(
            Cidr::parse("10.0.0/8"),
            Err(CidrError::BadAddress { .. })
        ));
        assert!(matches!(
            Cidr::parse("10.0.0.0/"),
            Err(CidrError::BadPrefix { .. })
        ));
        assert!(matches!(
            Cidr::parse("10.0.0.0/-1"),
            Err(CidrError::BadPrefix { .. })
        ));
        assert!(matches!(
            Cidr::parse("10.0.0.0/8/9"),
            Err(CidrError::BadPrefix { .. })
        ));
        assert!(matches!(
            Cidr::parse("host.example/8"),
            Err(CidrError::BadAddress { .. })
        ));
        assert!(matches!(Cidr::parse(""), Err(CidrError::BadAddress { .. })));
        let e = Cidr::parse("10.0.0.0/33").unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/33") && e.contains("33"), "{e}");
    }

    #[test]
    fn allow_list() {
        let empty = AllowList::default();
        assert!(empty.contains(ip("198.51.100.1")));
        let l = AllowList::parse(&["10.0.0.0/8", "2001:db8::/32"]).unwrap();
        assert!(l.contains(ip("10.9.9.9")));
        assert!(l.contains(ip("2001:db8::9")));
        assert!(!l.contains(ip("198.51.100.1")));
        assert!(AllowList::parse(&["10.0.0.0/8", "nope"]).is_err());
    }
}
