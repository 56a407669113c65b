//! Lenient readers for a few field types: counts that may be `"auto"`, byte sizes that may
//! carry a unit, lists that may be one comma-separated string, librdkafka property tables.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// Parses a byte size: a plain number of bytes, or a number followed by a unit. `K`, `KiB`,
/// `M`, `MiB`, `G`, `GiB` are powers of 1024; `KB`, `MB`, `GB` powers of 1000; `B` is bytes.
/// Units are case-insensitive and may follow a blank: `32MiB`, `32 MiB`, `512k`.
pub(crate) fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "`{text}` is not a byte size like 33554432 or \"32MiB\""
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is too large for a byte size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is too large for a byte size"))
}

/// A byte size written as an integer or as a string with a unit.
pub(super) fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Int(i64),
        Text(String),
    }
    match Repr::deserialize(d)
        .map_err(|_| D::Error::custom("expected a byte size: 33554432 or \"32MiB\""))?
    {
        Repr::Int(n) => {
            u64::try_from(n).map_err(|_| D::Error::custom(format!("{n} is a negative size")))
        }
        Repr::Text(s) => parse_byte_size(&s).map_err(D::Error::custom),
    }
}

/// Parses a count that may be `auto` (or empty) for "let the core plan decide".
pub(crate) fn parse_auto_count(text: &str) -> Result<Option<usize>, String> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    t.parse::<usize>()
        .map(Some)
        .map_err(|_| format!("`{text}` is not a count or \"auto\""))
}

/// A count written as an integer or `"auto"`.
pub(super) fn auto_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Int(i64),
        Text(String),
    }
    match Repr::deserialize(d).map_err(|_| D::Error::custom("expected a number or \"auto\""))? {
        Repr::Int(n) => usize::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} is negative"))),
        Repr::Text(s) => parse_auto_count(&s).map_err(D::Error::custom),
    }
}

/// Splits a comma-separated list, trimming blanks and dropping empty items.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A list of strings written as an array or as one comma-separated string.
pub(super) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        One(String),
        Many(Vec<String>),
    }
    match Repr::deserialize(d)
        .map_err(|_| D::Error::custom("expected a list of strings or one comma-separated string"))?
    {
        Repr::One(s) => Ok(split_list(&s)),
        Repr::Many(v) => Ok(v),
    }
}

/// librdkafka properties: string values, numbers and booleans are taken as their text. A nested
/// table means the name was not quoted (`linger.ms = 5` is the table `linger` in TOML).
pub(super) fn properties<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, toml::Value>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let text = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Table(_) => {
                return Err(D::Error::custom(format!(
                    "`{k}` is a table: quote librdkafka property names that contain dots, \
                     e.g. \"{k}.ms\" = \"5\""
                )))
            }
            other => {
                return Err(D::Error::custom(format!(
                    "property `{k}`: {} values are not allowed, use a string",
                    other.type_str()
                )))
            }
        };
        out.insert(k, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("33554432"), Ok(32 << 20));
        assert_eq!(parse_byte_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_byte_size("32 mib"), Ok(32 << 20));
        assert_eq!(parse_byte_size("512k"), Ok(512 << 10));
        assert_eq!(parse_byte_size("1G"), Ok(1 << 30));
        assert_eq!(parse_byte_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_byte_size("7B"), Ok(7));
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("32 parsecs").is_err());
        assert!(parse_byte_size("-5").is_err());
        assert!(parse_byte_size("99999999999999999999G").is_err());
        assert!(parse_byte_size("99999999999G").is_err());
    }

    #[test]
    fn auto_counts() {
        assert_eq!(parse_auto_count("auto"), Ok(None));
        assert_eq!(parse_auto_count(""), Ok(None));
        assert_eq!(parse_auto_count(" 4 "), Ok(Some(4)));
        assert!(parse_auto_count("four").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a:1 , b:2,,"), vec!["a:1", "b:2"]);
        assert!(split_list("").is_empty());
    }
}
