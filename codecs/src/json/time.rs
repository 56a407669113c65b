//! RFC 3339 times (`"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"`) from Unix nanoseconds, through
//! per-thread caches of the minutes and times formatted last.

use std::cell::Cell;

use super::text::{digits8, ASCII_ZEROS, PAIRS};

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian: Howard Hinnant's
/// `civil_from_days`.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"` for `ns` nanoseconds since the epoch.
pub fn write_rfc3339(buf: &mut Vec<u8>, ns: u64) {
    buf.extend_from_slice(&rfc3339(ns));
}

/// `"YYYY-MM-DDTHH:MM:` of the minute `minute` (minutes since the epoch).
pub(super) fn minute_prefix(minute: u64) -> [u8; 18] {
    let (y, mo, d) = civil_from_days((minute / 1440) as i64);
    let mod_ = (minute % 1440) as usize;
    let y = y.clamp(0, 9999) as usize;
    let mut out = *b"\"0000-00-00T00:00:";
    out[1..3].copy_from_slice(&PAIRS[y / 100]);
    out[3..5].copy_from_slice(&PAIRS[y % 100]);
    out[6..8].copy_from_slice(&PAIRS[mo as usize]);
    out[9..11].copy_from_slice(&PAIRS[d as usize]);
    out[12..14].copy_from_slice(&PAIRS[mod_ / 60]);
    out[15..17].copy_from_slice(&PAIRS[mod_ % 60]);
    out
}

/// Minutes formatted last on this thread, by minute mod 4: documents of one datagram mostly
/// share their minutes, and [`encode`](super::encode) has no state of its own across documents.
pub(super) struct MinuteCache {
    /// minute since the epoch of each entry; `u64::MAX` for none
    minute: [Cell<u64>; 4],
    text: [Cell<[u8; 18]>; 4],
}

thread_local! {
    static MINUTES: MinuteCache = const {
        MinuteCache {
            minute: [const { Cell::new(u64::MAX) }; 4],
            text: [const { Cell::new([0; 18]) }; 4],
        }
    };
}

/// [`minute_prefix`] through this thread's [`MinuteCache`].
#[inline]
pub(super) fn minute_prefix_cached(minute: u64) -> [u8; 18] {
    MINUTES
        .try_with(|c| {
            memo(
                &c.minute,
                &c.text,
                (minute % 4) as usize,
                minute,
                minute_prefix,
            )
        })
        .unwrap_or_else(|_| minute_prefix(minute))
}

/// The value of key `k` from entry `i` (mod `N`) of a per-thread memo of `N` keys and values;
/// when the entry holds another key, `f(k)`, kept there in its place.
#[inline(always)]
pub(super) fn memo<T: Copy, const N: usize>(
    keys: &[Cell<u64>; N],
    values: &[Cell<T>; N],
    i: usize,
    k: u64,
    f: impl FnOnce(u64) -> T,
) -> T {
    let i = i % N;
    if keys[i].get() == k {
        values[i].get()
    } else {
        let v = f(k);
        keys[i].set(k);
        values[i].set(v);
        v
    }
}

/// Entries of the [`TimeCache`] (a power of two).
pub(super) const TIME_SLOTS: usize = 8;

/// Times formatted last on this thread, each in the slot a hash of its nanoseconds picks: a
/// document repeats its times (`@timestamp` is `event.end`, the raw start / end elements are
/// `event.start` / `event.end`) and the documents of one datagram share `flow.export_time`.
pub(super) struct TimeCache {
    /// nanoseconds of each entry; `u64::MAX`, whose text the entries start with, for none
    ns: [Cell<u64>; TIME_SLOTS],
    text: [Cell<[u8; 32]>; TIME_SLOTS],
}

/// [`rfc3339`] of `u64::MAX`: what an unused [`TimeCache`] entry holds, so that it is right
/// for the one time it matches.
pub(super) const MAX_TEXT: [u8; 32] = *b"\"2554-07-21T23:34:33.709551615Z\"";

thread_local! {
    static TIMES: TimeCache = const {
        TimeCache {
            ns: [const { Cell::new(u64::MAX) }; TIME_SLOTS],
            text: [const { Cell::new(MAX_TEXT) }; TIME_SLOTS],
        }
    };
}

/// The [`TimeCache`] slot of `ns`.
#[inline(always)]
pub(super) fn time_slot(ns: u64) -> usize {
    // multiplicative hashing: the top bits of the product depend on all bits of `ns`
    ((ns ^ (ns >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - TIME_SLOTS.trailing_zeros()))
        as usize
}

/// [`rfc3339`] through this thread's [`TimeCache`].
#[inline]
pub(super) fn rfc3339_cached(ns: u64) -> [u8; 32] {
    TIMES
        .try_with(|c| memo(&c.ns, &c.text, time_slot(ns), ns, rfc3339))
        .unwrap_or_else(|_| rfc3339(ns))
}

/// The quoted text [`write_rfc3339`] writes.
#[inline]
pub(super) fn rfc3339(ns: u64) -> [u8; 32] {
    let secs = ns / 1_000_000_000;
    let frac = (ns % 1_000_000_000) as u32;
    let prefix = minute_prefix_cached(secs / 60);
    let s = PAIRS[(secs % 60) as usize];
    // the last 16 bytes `M:SS.nnnnnnnnnZ"` as one little-endian word, the fraction's last
    // eight digits from `digits8` (no table look-up, no division per digit pair)
    let tail = u128::from(prefix[16])
        | u128::from(prefix[17]) << 8
        | u128::from(s[0]) << 16
        | u128::from(s[1]) << 24
        | u128::from(b'.') << 32
        | u128::from(b'0' + (frac / 100_000_000) as u8) << 40
        | u128::from(digits8(frac % 100_000_000) | ASCII_ZEROS) << 48
        | u128::from(b'Z') << 112
        | u128::from(b'"') << 120;
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&prefix[..16]);
    out[16..].copy_from_slice(&tail.to_le_bytes());
    out
}
