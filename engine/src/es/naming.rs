//! Index names: `<prefix>-<group>-YYYY.MM.DD` by the day of the document's timestamp (or the
//! data stream `<prefix>-<group>`), formatted once per group and day. The day arithmetic is
//! here too: the day of a document's leading `@timestamp`, and calendar dates of day numbers.

use std::ops::Range;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// How documents are named and where they go.
#[derive(Clone, Debug)]
pub struct Naming {
    pub prefix: String,
    pub data_streams: bool,
}

impl Naming {
    /// The index (or data stream) of documents of `group` (`netflow`, ...) on day `day`
    /// (days since 1970-01-01).
    pub fn name(&self, group: &str, day: i64) -> String {
        if self.data_streams {
            return format!("{}-{group}", self.prefix);
        }
        let (y, m, d) = civil_from_days(day);
        format!(
            "{}-{group}-{:04}.{:02}.{:02}",
            self.prefix,
            y.clamp(0, 9999),
            m,
            d
        )
    }
}

/// One group's index name, formatted again only when the day changes.
#[derive(Clone, Debug, Default)]
pub struct DailyName(Option<(i64, String)>);

impl DailyName {
    /// The name of `group`'s documents on day `day`.
    pub fn get(&mut self, naming: &Naming, group: &str, day: i64) -> &str {
        if self.0.as_ref().is_none_or(|(d, _)| *d != day) {
            self.0 = Some((day, naming.name(group, day)));
        }
        self.0.as_ref().map(|(_, n)| n.as_str()).unwrap_or("")
    }
}

/// The day number (since 1970-01-01) of a time in milliseconds since the epoch.
pub fn day_of_ms(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// The day number of a time in nanoseconds since the epoch.
pub fn day_of_ns(ns: u64) -> i64 {
    (ns / 1_000_000_000 / 86_400) as i64
}

/// `(year, month, day)` of a day number since 1970-01-01 (proleptic Gregorian): the
/// encoder's, which writes the documents' dates.
pub use ferroflow_codecs::json::civil_from_days;

/// The day number since 1970-01-01 of a date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch of a document's leading `{"@timestamp":"YYYY-MM-DDT..."`, the
/// way the collector writes it (day precision is all an index name needs). `None` if the
/// document does not start that way.
pub fn leading_timestamp_day_ms(doc: &[u8]) -> Option<i64> {
    let rest = doc.strip_prefix(b"{\"@timestamp\":\"")?;
    let d = rest.get(..10)?;
    if d[4] != b'-' || d[7] != b'-' {
        return None;
    }
    let num = |r: Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &b in &d[r] {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(b - b'0');
        }
        Some(v)
    };
    let (y, m, day) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(y, m, day) * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_timestamp() {
        let d = br#"{"@timestamp":"2026-11-25T10:00:00.000000000Z","x":1}"#;
        assert_eq!(leading_timestamp_day_ms(d), Some(1_795_564_800_000));
        assert_eq!(leading_timestamp_day_ms(br#"{"x":1}"#), None);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn daily_names_and_data_streams() {
        let daily = Naming {
            prefix: "ff".into(),
            data_streams: false,
        };
        let mut n = DailyName::default();
        // 2026-11-25T10:00:00Z, in ms and in ns: the same day
        let day = day_of_ms(1_795_600_800_000);
        assert_eq!(day, day_of_ns(1_795_600_800_000_000_000));
        assert_eq!(n.get(&daily, "netflow", day), "ff-netflow-2026.11.25");
        assert_eq!(n.get(&daily, "netflow", day + 7), "ff-netflow-2026.12.02");
        assert_eq!(day_of_ms(-1), -1);
        let streams = Naming {
            prefix: "ff".into(),
            data_streams: true,
        };
        assert_eq!(streams.name("sflow", day), "ff-sflow");
    }
}
