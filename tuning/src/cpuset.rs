//! Sets of CPU numbers and the two textual forms Linux uses for them.
//!
//! * CPU lists, as in `/sys/devices/system/cpu/online` or `Cpus_allowed_list`: `0-3,8,10-11`.
//! * Hexadecimal masks, as in `rps_cpus` or `smp_affinity`: `ff`, `00000000,0000ffff` (32-bit
//!   groups separated by commas, most significant first).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Highest CPU number accepted when parsing (Linux's `CONFIG_NR_CPUS` tops out at 8192). It
/// bounds what a typo such as `0-99999999` can allocate.
pub const MAX_CPUS: usize = 8192;

/// An ordered set of CPU numbers (logical CPUs as the kernel numbers them).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet(BTreeSet<usize>);

/// Why a CPU list or mask could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuSetError {
    /// A part of the list is not a number or a `lo-hi` range.
    #[error("`{part}` is not a CPU number or a range like 2-5")]
    BadPart {
        /// The offending part, between commas.
        part: String,
    },
    /// A range whose end is below its start.
    #[error("range {lo}-{hi} ends below its start")]
    Reversed {
        /// Start of the range.
        lo: usize,
        /// End of the range.
        hi: usize,
    },
    /// A CPU number at or above [`MAX_CPUS`].
    #[error("CPU {cpu} is beyond the supported maximum of {max}")]
    TooLarge {
        /// The number given.
        cpu: usize,
        /// [`MAX_CPUS`].
        max: usize,
    },
    /// A hexadecimal mask with a character that is not a hex digit or a comma.
    #[error("`{mask}` is not a hexadecimal CPU mask")]
    BadMask {
        /// The mask text.
        mask: String,
    },
}

impl CpuSet {
    /// The empty set.
    pub fn new() -> Self {
        CpuSet(BTreeSet::new())
    }

    /// Parses a CPU list such as `0-3,8,10-11`. Blanks around parts are ignored and an empty
    /// string is the empty set (the kernel writes an empty line for "none").
    pub fn parse_list(text: &str) -> Result<Self, CpuSetError> {
        let mut set = BTreeSet::new();
        for raw in text.trim().split(',') {
            let part = raw.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(CpuSetError::BadPart {
                    part: raw.to_string(),
                });
            }
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (parse_cpu(a, part)?, parse_cpu(b, part)?),
                None => {
                    let n = parse_cpu(part, part)?;
                    (n, n)
                }
            };
            if hi < lo {
                return Err(CpuSetError::Reversed { lo, hi });
            }
            set.extend(lo..=hi);
        }
        Ok(CpuSet(set))
    }

    /// Parses a hexadecimal CPU mask such as `ff` or `00000000,0000ffff` (with or without a
    /// `0x` prefix). An empty string is the empty set.
    pub fn parse_mask(text: &str) -> Result<Self, CpuSetError> {
        let bad = || CpuSetError::BadMask {
            mask: text.to_string(),
        };
        let t = text.trim();
        let t = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        let mut set = BTreeSet::new();
        // Walk the hex digits from the least significant end; commas only separate groups.
        let mut bit = 0usize;
        for c in t.chars().rev() {
            if c == ',' {
                continue;
            }
            let nibble = c.to_digit(16).ok_or_else(bad)? as usize;
            for i in 0..4 {
                if nibble & (1 << i) != 0 {
                    let cpu = bit + i;
                    if cpu >= MAX_CPUS {
                        return Err(CpuSetError::TooLarge { cpu, max: MAX_CPUS });
                    }
                    set.insert(cpu);
                }
            }
            bit += 4;
        }
        Ok(CpuSet(set))
    }

    /// Builds a set from CPU numbers.
    pub fn from_cpus<I: IntoIterator<Item = usize>>(cpus: I) -> Self {
        CpuSet(cpus.into_iter().collect())
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        self.0.contains(&cpu)
    }

    /// Adds `cpu`; returns whether it was new.
    pub fn insert(&mut self, cpu: usize) -> bool {
        self.0.insert(cpu)
    }

    /// Removes `cpu`; returns whether it was there.
    pub fn remove(&mut self, cpu: usize) -> bool {
        self.0.remove(&cpu)
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CPUs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().copied()
    }

    /// The CPUs in ascending order, as a vector.
    pub fn to_vec(&self) -> Vec<usize> {
        self.iter().collect()
    }

    /// The lowest CPU, if any.
    pub fn first(&self) -> Option<usize> {
        self.0.first().copied()
    }

    /// CPUs in either set.
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        CpuSet(self.0.union(&other.0).copied().collect())
    }

    /// CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        CpuSet(self.0.intersection(&other.0).copied().collect())
    }

    /// CPUs in `self` but not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        CpuSet(self.0.difference(&other.0).copied().collect())
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The hexadecimal mask form (`3`, `ffff0000,00000000`), as `rps_cpus` takes it.
    pub fn to_mask(&self) -> String {
        let Some(max) = self.0.last().copied() else {
            return "0".to_string();
        };
        let words = max / 32 + 1;
        let mut out = String::new();
        for w in (0..words).rev() {
            let mut v: u32 = 0;
            for b in 0..32 {
                if self.contains(w * 32 + b) {
                    v |= 1 << b;
                }
            }
            if w + 1 == words {
                out.push_str(&format!("{v:x}"));
            } else {
                out.push_str(&format!(",{v:08x}"));
            }
        }
        out
    }
}

fn parse_cpu(s: &str, part: &str) -> Result<usize, CpuSetError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CpuSetError::BadPart {
            part: part.to_string(),
        });
    }
    let n: usize = s.parse().map_err(|_| CpuSetError::BadPart {
        part: part.to_string(),
    })?;
    if n >= MAX_CPUS {
        return Err(CpuSetError::TooLarge {
            cpu: n,
            max: MAX_CPUS,
        });
    }
    Ok(n)
}

/// The list form with ranges collapsed: `0-3,8,10-11`; the empty set prints as an empty string.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut it = self.iter().peekable();
        let mut first = true;
        while let Some(lo) = it.next() {
            let mut hi = lo;
            while it.peek() == Some(&(hi + 1)) {
                hi += 1;
                it.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet({self})")
    }
}

impl FromStr for CpuSet {
    type Err = CpuSetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CpuSet::parse_list(s)
    }
}

impl FromIterator<usize> for CpuSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        CpuSet(iter.into_iter().collect())
    }
}

/// Serialized as the list string (`"2-5,8"`).
impl Serialize for CpuSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Accepts either the list string (`"2-5,8"`) or an array of numbers (`[2, 3, 4]`).
impl<'de> Deserialize<'de> for CpuSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            List(Vec<usize>),
        }
        match Repr::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a CPU list like \"2-5,8\" or an array like [2, 3, 4]",
            )
        })? {
            Repr::Text(s) => CpuSet::parse_list(&s).map_err(serde::de::Error::custom),
            Repr::List(v) => {
                if let Some(&cpu) = v.iter().find(|&&c| c >= MAX_CPUS) {
                    return Err(serde::de::Error::custom(CpuSetError::TooLarge {
                        cpu,
                        max: MAX_CPUS,
                    }));
                }
                Ok(CpuSet::from_cpus(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let s = CpuSet::parse_list("0-3,8,10-11").unwrap();
        assert_eq!(s.to_vec(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(s.to_string(), "0-3,8,10-11");
        assert_eq!(CpuSet::parse_list("5\n").unwrap().to_vec(), vec![5]);
        assert_eq!(
            CpuSet::parse_list(" 1 , 3-4 ").unwrap().to_vec(),
            vec![1, 3, 4]
        );
        assert!(CpuSet::parse_list("").unwrap().is_empty());
        assert!(CpuSet::parse_list("\n").unwrap().is_empty());
        assert_eq!(CpuSet::parse_list("3,1,2").unwrap().to_string(), "1-3");
    }

    #[test]
    fn rejects_bad_lists() {
        assert_eq!(
            CpuSet::parse_list("3-1"),
            Err(CpuSetError::Reversed { lo: 3, hi: 1 })
        );
        assert!(matches!(
            CpuSet::parse_list("a"),
            Err(CpuSetError::BadPart { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("1,,2"),
            Err(CpuSetError::BadPart { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("-1"),
            Err(CpuSetError::BadPart { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("1-"),
            Err(CpuSetError::BadPart { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("0-15:2"),
            Err(CpuSetError::BadPart { .. })
        ));
        assert!(matches!(
            CpuSet::parse_list("0-99999999"),
            Err(CpuSetError::TooLarge { .. })
        ));
    }

    #[test]
    fn parses_and_prints_masks() {
        assert!(CpuSet::parse_mask("0").unwrap().is_empty());
        assert!(CpuSet::parse_mask("00000000,00000000").unwrap().is_empty());
        assert_eq!(CpuSet::parse_mask("3\n").unwrap().to_vec(), vec![0, 1]);
        assert_eq!(CpuSet::parse_mask("0x5").unwrap().to_vec(), vec![0, 2]);
        let high = CpuSet::parse_mask("0000ffff,00000000").unwrap();
        assert_eq!(high.to_string(), "32-47");
        assert_eq!(high.to_mask(), "ffff,00000000");
        assert_eq!(CpuSet::from_cpus([0, 1]).to_mask(), "3");
        assert_eq!(CpuSet::new().to_mask(), "0");
        assert!(CpuSet::parse_mask("xyz").is_err());
        let round = CpuSet::parse_list("0-3,40,63").unwrap();
        assert_eq!(CpuSet::parse_mask(&round.to_mask()).unwrap(), round);
    }

    #[test]
    fn set_operations() {
        let a = CpuSet::parse_list("0-7").unwrap();
        let b = CpuSet::parse_list("4-11").unwrap();
        assert_eq!(a.intersection(&b).to_string(), "4-7");
        assert_eq!(a.difference(&b).to_string(), "0-3");
        assert_eq!(a.union(&b).to_string(), "0-11");
        assert!(CpuSet::parse_list("5-6").unwrap().is_subset(&a));
    }
}
