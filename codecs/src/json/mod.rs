//! JSON encoding straight into a caller's reusable buffer.
//!
//! `encode(&record, &mut buf)` appends one document (no trailing newline) and allocates nothing
//! once `buf` has grown to the size of the largest document: keys are precomputed fragments
//! copied whole, numbers, addresses and times go through hand-written formatters (times through
//! a per-thread cache of the last ones formatted). The document layout is written down in
//! `docs/schema.md`.

use std::cell::Cell;
use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use crate::record::{FlowProtocol, FlowRecord, Raw, RecordKind, SamplingSource, TimeBasis};

mod netflow5;
mod sflow;
pub(crate) mod template;

/// Options of the encoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeOptions {
    /// Leave out the raw `netflow.*` / `sflow.*` elements (ECS fields only).
    pub no_raw: bool,
}

/// Bytes of padding after a padded key fragment: the writer copies `KEY_PAD` bytes in one
/// fixed-size move and keeps the fragment's length of them.
pub const KEY_PAD: usize = 32;

/// A key written as one precomputed fragment `,"name":` (the leading comma is dropped for the
/// first member of an object). Build static ones with `key!("name")`; templates keep one
/// [`KeyBuf`] per field.
#[derive(Debug, Clone, Copy)]
pub struct Key<'k> {
    /// the fragment, followed by [`KEY_PAD`] bytes of padding when it was built padded
    text: &'k [u8],
    /// length of the fragment in `text`
    len: usize,
}

impl<'k> Key<'k> {
    /// `fragment` must be `,"name":` with `name` needing no escaping.
    #[inline]
    pub const fn from_fragment(fragment: &'k str) -> Self {
        Key {
            text: fragment.as_bytes(),
            len: fragment.len(),
        }
    }

    /// `text[..len]` is the fragment `,"name":`; the bytes after it are padding.
    #[inline]
    pub const fn from_padded(text: &'k [u8], len: usize) -> Self {
        Key { text, len }
    }

    /// `,"name":` for a name that needs no escaping (allocates: for keys built once).
    pub fn fragment_for(name: &str) -> Box<str> {
        let mut s = String::with_capacity(name.len() + 4);
        s.push_str(",\"");
        s.push_str(name);
        s.push_str("\":");
        s.into_boxed_str()
    }

    /// The fragment `,"name":`.
    pub fn as_bytes(&self) -> &'k [u8] {
        self.text.get(..self.len).unwrap_or_default()
    }
}

/// An owned key fragment `,"name":` with [`KEY_PAD`] bytes of padding after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBuf {
    text: Box<[u8]>,
    len: usize,
}

impl KeyBuf {
    /// The fragment for a name that needs no escaping (allocates: for keys built once).
    pub fn new(name: &str) -> Self {
        let f = Key::fragment_for(name);
        let mut text = Vec::with_capacity(f.len() + KEY_PAD);
        text.extend_from_slice(f.as_bytes());
        text.resize(f.len() + KEY_PAD, 0);
        KeyBuf {
            text: text.into_boxed_slice(),
            len: f.len(),
        }
    }

    /// The fragment `,"name":`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }

    #[inline]
    pub fn key(&self) -> Key<'_> {
        Key::from_padded(&self.text, self.len)
    }

    /// Bytes of the heap this key holds.
    pub fn heap_bytes(&self) -> usize {
        self.text.len()
    }
}

/// Bytes of a [`WideKey`].
pub const WIDE_KEY: usize = 48;

/// A key fragment `,"name":` of up to [`WIDE_KEY`] bytes kept in place with zeros after it,
/// written with one fixed-size copy (templates' element names are longer than [`KEY_PAD`]
/// allows for more often than the document's own keys).
#[derive(Debug, Clone, Copy)]
pub struct WideKey<'k> {
    text: &'k [u8; WIDE_KEY],
    /// length of the fragment in `text` (at most [`WIDE_KEY`])
    len: usize,
}

impl<'k> WideKey<'k> {
    /// `text[..len]` is the fragment `,"name":`, the bytes after it padding; `len <= WIDE_KEY`.
    #[inline]
    pub fn new(text: &'k [u8; WIDE_KEY], len: usize) -> Self {
        WideKey { text, len }
    }
}

impl JsonKey for WideKey<'_> {
    #[inline]
    fn write_key(self, w: &mut JsonWriter<'_>) {
        put_padded(w.buf, self.text, self.len);
    }
}

/// `fragment` followed by zeros, `N` bytes in all (for `key!`).
#[doc(hidden)]
pub const fn pad_fragment<const N: usize>(fragment: &str) -> [u8; N] {
    let b = fragment.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// `key!("name")`: the [`Key`] `,"name":`, built (padded) at compile time.
macro_rules! key {
    ($name:literal) => {{
        const LEN: usize = concat!(",\"", $name, "\":").len();
        static PADDED: [u8; LEN + $crate::json::KEY_PAD] = $crate::json::pad_fragment::<
            { LEN + $crate::json::KEY_PAD },
        >(concat!(",\"", $name, "\":"));
        $crate::json::Key::from_padded(&PADDED, LEN)
    }};
}
pub(crate) use key;

/// Something [`JsonWriter`] can write as an object key: a plain `&str` (quoted as it is) or a
/// precomputed [`Key`].
pub trait JsonKey {
    fn write_key(self, w: &mut JsonWriter<'_>);
}

impl JsonKey for &str {
    #[inline]
    fn write_key(self, w: &mut JsonWriter<'_>) {
        w.buf.extend_from_slice(b",\"");
        w.buf.extend_from_slice(self.as_bytes());
        w.buf.extend_from_slice(b"\":");
    }
}

impl JsonKey for Key<'_> {
    #[inline]
    fn write_key(self, w: &mut JsonWriter<'_>) {
        // always with the leading comma: the object's closing turns its first one into `{`
        match self.text.first_chunk::<KEY_PAD>() {
            Some(chunk) if self.len <= KEY_PAD => put_padded(w.buf, chunk, self.len),
            _ => w.buf.extend_from_slice(self.as_bytes()),
        }
    }
}

/// Append the first `n` bytes of `chunk` (`n <= N`) with one fixed-size copy.
#[inline(always)]
fn put_padded<const N: usize>(buf: &mut Vec<u8>, chunk: &[u8; N], n: usize) {
    let end = buf.len() + n;
    buf.extend_from_slice(chunk);
    buf.truncate(end);
}

/// `open_at` of an object whose bracket is written already ([`Cursor::begin_object_with`]).
const OPENED: usize = usize::MAX;

/// A streaming JSON writer over a `Vec<u8>`, for up to 32 nesting levels.
///
/// Every member is written with a leading comma (`,"key":value`, array items `,value`), so a
/// member costs no "is this the first?" test; opening an object only notes where its first
/// member will start, and closing it turns that first comma into the `{` (or writes `{` when
/// the object stayed empty).
pub struct JsonWriter<'b> {
    buf: &'b mut Vec<u8>,
    /// per open object/array (by depth): the position of its first member's comma, or
    /// [`OPENED`]
    open_at: [usize; 32],
    depth: u8,
}

impl<'b> JsonWriter<'b> {
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        JsonWriter {
            buf,
            open_at: [OPENED; 32],
            depth: 0,
        }
    }

    #[inline]
    fn sep(&mut self) {
        self.buf.push(b',');
    }

    #[inline]
    fn key(&mut self, key: impl JsonKey) {
        key.write_key(self);
    }

    /// Open an object or array whose bracket is written when it closes.
    #[inline]
    fn open(&mut self) {
        self.push_level(self.buf.len());
    }

    /// One level deeper; `at`: its [`JsonWriter::open_at`].
    #[inline]
    fn push_level(&mut self, at: usize) {
        self.depth = (self.depth + 1).min(31);
        self.open_at[usize::from(self.depth)] = at;
    }

    /// Close the innermost object or array: its first member's comma becomes `open` (or
    /// `open` is written when it has no member), then `close`.
    #[inline]
    fn close(&mut self, open: u8, close: u8) {
        let at = self.open_at[usize::from(self.depth)];
        self.depth = self.depth.saturating_sub(1);
        if at != OPENED {
            match self.buf.get_mut(at) {
                Some(b) => {
                    debug_assert_eq!(*b, b',');
                    *b = open;
                }
                None => self.buf.push(open),
            }
        }
        self.buf.push(close);
    }

    /// `{` of the document itself.
    pub fn begin(&mut self) {
        self.open();
    }

    /// `"key":{`
    #[inline]
    pub fn begin_object(&mut self, key: impl JsonKey) {
        self.key(key);
        self.open();
    }

    /// `"key":[`
    #[inline]
    pub fn begin_array(&mut self, key: impl JsonKey) {
        self.key(key);
        self.open();
    }

    /// `}` (closes the innermost object).
    #[inline]
    pub fn end_object(&mut self) {
        self.close(b'{', b'}');
    }

    /// `]`
    #[inline]
    pub fn end_array(&mut self) {
        self.close(b'[', b']');
    }

    #[inline]
    pub fn u64(&mut self, key: impl JsonKey, v: u64) {
        self.key(key);
        write_u64(self.buf, v);
    }

    #[inline]
    pub fn i64(&mut self, key: impl JsonKey, v: i64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    pub fn f64(&mut self, key: impl JsonKey, v: f64) {
        self.key(key);
        if v.is_finite() {
            let _ = write!(self.buf, "{v}");
        } else {
            self.buf.extend_from_slice(b"null");
        }
    }

    pub fn bool(&mut self, key: impl JsonKey, v: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// A string value known to need no escaping (names, enums).
    #[inline]
    pub fn str_plain(&mut self, key: impl JsonKey, v: &str) {
        self.key(key);
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
    }

    /// A string from the wire: invalid UTF-8 is replaced, control characters and quotes escaped,
    /// trailing NULs (fixed-size string fields) dropped.
    pub fn str_bytes(&mut self, key: impl JsonKey, v: &[u8]) {
        self.key(key);
        let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write_escaped(self.buf, &v[..end]);
    }

    #[inline]
    pub fn ip(&mut self, key: impl JsonKey, v: IpAddr) {
        self.key(key);
        write_ip(self.buf, v);
    }

    /// An IPv4 address from its four bytes.
    #[inline]
    pub fn ipv4(&mut self, key: impl JsonKey, v: [u8; 4]) {
        self.key(key);
        write_ipv4(self.buf, v);
    }

    pub fn mac(&mut self, key: impl JsonKey, m: &[u8; 6]) {
        self.key(key);
        write_mac(self.buf, m);
    }

    /// Lower-case hex of raw bytes (octetArray elements).
    pub fn hex(&mut self, key: impl JsonKey, v: &[u8]) {
        self.key(key);
        self.buf.push(b'"');
        let mut out = [0u8; 64];
        for chunk in v.chunks(32) {
            for (i, &b) in chunk.iter().enumerate() {
                out[2 * i] = HEX[(b >> 4) as usize];
                out[2 * i + 1] = HEX[(b & 15) as usize];
            }
            self.buf.extend_from_slice(&out[..2 * chunk.len()]);
        }
        self.buf.push(b'"');
    }

    /// RFC 3339 UTC time with nanoseconds: `"2024-01-02T03:04:05.123456789Z"`.
    #[inline]
    pub fn time_ns(&mut self, key: impl JsonKey, ns: u64) {
        self.key(key);
        self.buf.extend_from_slice(&rfc3339_cached(ns));
    }

    /// An element of an array of numbers.
    pub fn item_u64(&mut self, v: u64) {
        self.sep();
        write_u64(self.buf, v);
    }

    /// An element of an array of plain strings.
    pub fn item_str_plain(&mut self, v: &str) {
        self.sep();
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
    }

    pub fn buf_len(&self) -> usize {
        self.buf.len()
    }

    /// Members written through a [`Cursor`] over `bound` bytes that the buffer grows by; the
    /// buffer is cut back to what `f` wrote. `f` must stay within `bound`, the fixed-size
    /// copies' padding included (a cursor's write past it panics): callers size it from the
    /// most their members can take (`ECS_MAX`, `raw_ops_bound`), checked by tests.
    #[inline]
    pub(crate) fn with_cursor<R>(
        &mut self,
        bound: usize,
        f: impl FnOnce(&mut Cursor<'_>) -> R,
    ) -> R {
        let start = self.buf.len();
        self.buf.resize(start + bound, 0);
        let mut c = Cursor {
            out: &mut self.buf[start..],
            pos: 0,
            open_at: [OPENED; CURSOR_LEVELS],
            depth: 0,
        };
        let r = f(&mut c);
        let end = start + c.pos;
        self.buf.truncate(end);
        r
    }
}

/// A write position in a stretch of the output grown in advance ([`JsonWriter::with_cursor`]):
/// members written one after another with the position in a register, not the `Vec`'s length
/// loaded, tested against its capacity and stored for every piece.
pub(crate) struct Cursor<'o> {
    out: &'o mut [u8],
    pos: usize,
    /// per object or array opened through the cursor (by depth): as [`JsonWriter::open_at`]
    open_at: [usize; CURSOR_LEVELS],
    depth: usize,
}

/// Levels of nesting a [`Cursor`] tracks (the ECS part of a document nests three deep).
const CURSOR_LEVELS: usize = 4;

impl Cursor<'_> {
    /// The most bytes one value takes, its padding included: a time's 32 (for tests).
    #[cfg(test)]
    const VALUE_MAX: usize = 32;

    /// The first `n` bytes of `chunk` (`n <= N`), with one fixed-size copy.
    #[inline(always)]
    fn put<const N: usize>(&mut self, chunk: &[u8; N], n: usize) {
        self.out[self.pos..self.pos + N].copy_from_slice(chunk);
        self.pos += n;
    }

    /// A key fragment `,"name":` padded to [`WIDE_KEY`] bytes.
    #[inline(always)]
    pub(crate) fn key(&mut self, key: &[u8; WIDE_KEY], len: usize) {
        self.put(key, len.min(WIDE_KEY));
    }

    /// The decimal text of `v`, as [`write_u64`] writes it (24 bytes written at most).
    #[inline(always)]
    pub(crate) fn u64(&mut self, v: u64) {
        if v < 256 {
            let d = DEC[v as usize];
            self.put(&d, usize::from(d[3]));
        } else if v < 100_000_000 {
            self.digits8(v as u32);
        } else if v < 10_000_000_000_000_000 {
            self.digits8((v / 100_000_000) as u32);
            self.put(
                &(digits8((v % 100_000_000) as u32) | ASCII_ZEROS).to_le_bytes(),
                8,
            );
        } else {
            self.digits8((v / 10_000_000_000_000_000) as u32);
            let mid = (v / 100_000_000 % 100_000_000) as u32;
            self.put(&(digits8(mid) | ASCII_ZEROS).to_le_bytes(), 8);
            self.put(
                &(digits8((v % 100_000_000) as u32) | ASCII_ZEROS).to_le_bytes(),
                8,
            );
        }
    }

    /// `0 < v < 100_000_000` without leading zeros.
    #[inline(always)]
    fn digits8(&mut self, v: u32) {
        let d = digits8(v);
        let zeros = d.trailing_zeros() / 8;
        self.put(
            &((d >> (8 * zeros)) | ASCII_ZEROS).to_le_bytes(),
            8 - zeros as usize,
        );
    }

    /// `"a.b.c.d"` (17 bytes written at most, in a 20-byte window), as [`write_ipv4`] writes it.
    #[inline(always)]
    pub(crate) fn ipv4(&mut self, o: [u8; 4]) {
        self.quoted::<20>(|out| put_ipv4(out, 1, o));
    }

    /// A quoted RFC 3339 time, as [`JsonWriter::time_ns`] writes it.
    #[inline(always)]
    pub(crate) fn time_ns(&mut self, ns: u64) {
        self.put(&rfc3339_cached(ns), 32);
    }

    /// Bytes of a length known only when running.
    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    /// `"`, what `fill` writes from `out[1]` on (it returns the position after it), `"`, as
    /// [`write_quoted`] writes them.
    #[inline(always)]
    fn quoted<const N: usize>(&mut self, fill: impl FnOnce(&mut [u8; N]) -> usize) {
        let out = &mut self.out[self.pos..self.pos + N];
        let p = match out.first_chunk_mut::<N>() {
            Some(out) => {
                out[0] = b'"';
                let p = fill(out);
                out[p] = b'"';
                p + 1
            }
            // not reached: the slice is N bytes long
            None => 0,
        };
        self.pos += p;
    }

    /// A [`Key`], as [`JsonKey::write_key`] writes it.
    #[inline(always)]
    fn k(&mut self, key: Key<'_>) {
        match key.text.first_chunk::<KEY_PAD>() {
            Some(chunk) if key.len <= KEY_PAD => self.put(chunk, key.len),
            _ => self.bytes(key.as_bytes()),
        }
    }

    /// The members below: as [`JsonWriter`]'s of the same names write them.
    #[inline(always)]
    fn member_u64(&mut self, key: Key<'_>, v: u64) {
        self.k(key);
        self.u64(v);
    }

    #[inline(always)]
    fn member_time(&mut self, key: Key<'_>, ns: u64) {
        self.k(key);
        self.time_ns(ns);
    }

    #[inline(always)]
    fn member_ip(&mut self, key: Key<'_>, ip: IpAddr) {
        self.k(key);
        match ip {
            IpAddr::V4(a) => self.ipv4(a.octets()),
            IpAddr::V6(a) => self.quoted::<48>(|out| put_ipv6(out, 1, &a)),
        }
    }

    #[inline(always)]
    fn member_quoted<const N: usize>(&mut self, key: Key<'_>, quoted: &[u8; N]) {
        self.k(key);
        self.put(quoted, N);
    }

    #[inline(always)]
    fn member_mac(&mut self, key: Key<'_>, m: &[u8; 6]) {
        self.k(key);
        self.quoted::<20>(|out| put_mac(out, m));
    }

    /// `"key":{`, its bracket written when it closes.
    #[inline(always)]
    fn begin_object(&mut self, key: Key<'_>) {
        self.k(key);
        self.push_level(self.pos);
    }

    /// `"key":{` followed by `members`, a run of members written as they are
    /// (`"a":1,"b":[2]`): static parts of a document in one copy of a size known when
    /// compiling (no call to `memcpy`).
    #[inline(always)]
    fn begin_object_with<const N: usize>(&mut self, key: Key<'_>, members: &[u8; N]) {
        self.k(key);
        self.out[self.pos] = b'{';
        self.pos += 1;
        self.put(members, N);
        self.push_level(OPENED);
    }

    #[inline(always)]
    fn begin_array(&mut self, key: Key<'_>) {
        self.begin_object(key);
    }

    #[inline(always)]
    fn item_u64(&mut self, v: u64) {
        self.out[self.pos] = b',';
        self.pos += 1;
        self.u64(v);
    }

    #[inline(always)]
    fn push_level(&mut self, at: usize) {
        self.depth = (self.depth + 1).min(CURSOR_LEVELS - 1);
        self.open_at[self.depth] = at;
    }

    /// As [`JsonWriter::close`].
    #[inline(always)]
    fn close(&mut self, open: u8, close: u8) {
        let at = self.open_at[self.depth];
        self.depth = self.depth.saturating_sub(1);
        if at != OPENED {
            if at < self.pos {
                self.out[at] = open;
            } else {
                self.out[self.pos] = open;
                self.pos += 1;
            }
        }
        self.out[self.pos] = close;
        self.pos += 1;
    }

    #[inline(always)]
    fn end_object(&mut self) {
        self.close(b'{', b'}');
    }

    #[inline(always)]
    fn end_array(&mut self) {
        self.close(b'[', b']');
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The two decimal digits of every value below 100.
const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// The decimal text of `v` (as `itoa` writes it).
#[inline(always)]
fn write_u64(buf: &mut Vec<u8>, v: u64) {
    // inlined everywhere: the values of one-byte fields (`u64::from(u8)`) then take the table
    // path alone, with no call and no test of the digit count
    if v < 256 {
        put_dec3(buf, v as u8);
    } else if v < 100_000_000 {
        // inline: most numbers of a document (ports, counters, ids) have up to eight digits
        put_digits8(buf, v as u32);
    } else {
        write_u64_long(buf, v);
    }
}

/// The decimal text of a byte value from the [`DEC`] table: one four-byte copy.
#[inline(always)]
fn put_dec3(buf: &mut Vec<u8>, b: u8) {
    let d = DEC[usize::from(b)];
    put_padded(buf, &d, usize::from(d[3]));
}

/// The decimal text of `0 < v < 100_000_000` (no leading zeros).
#[inline(always)]
fn put_digits8(buf: &mut Vec<u8>, v: u32) {
    let d = digits8(v);
    let zeros = d.trailing_zeros() / 8;
    let n = 8 - zeros as usize;
    put_padded(buf, &((d >> (8 * zeros)) | ASCII_ZEROS).to_le_bytes(), n);
}

/// The eight decimal digits of `v < 100_000_000` as the bytes of a little-endian word, the
/// most significant first and each digit as its value (not yet ASCII), computed in a register
/// (digits written one by one to memory and read back as a block stall store forwarding).
#[inline(always)]
fn digits8(v: u32) -> u64 {
    let v = u64::from(v);
    // 32-bit lanes: the upper four digits, the lower four
    let x = (v / 10_000) | ((v % 10_000) << 32);
    // 16-bit lanes: x / 100, x % 100 (x * 10486 >> 20 is x / 100 for x < 10_000)
    let h = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = h | ((x - h * 100) << 16);
    // 8-bit lanes: x / 10, x % 10 (x * 103 >> 10 is x / 10 for x < 100)
    let h = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    h | ((x - h * 10) << 8)
}

const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// [`write_u64`] of `v >= 100_000_000`.
#[inline(never)]
fn write_u64_long(buf: &mut Vec<u8>, v: u64) {
    // the leading digits without their leading zeros (they are > 0), then eight or sixteen
    if v < 10_000_000_000_000_000 {
        put_digits8(buf, (v / 100_000_000) as u32);
    } else {
        put_digits8(buf, (v / 10_000_000_000_000_000) as u32);
        let mid = (v / 100_000_000 % 100_000_000) as u32;
        buf.extend_from_slice(&(digits8(mid) | ASCII_ZEROS).to_le_bytes());
    }
    let low = (v % 100_000_000) as u32;
    buf.extend_from_slice(&(digits8(low) | ASCII_ZEROS).to_le_bytes());
}

/// Decimal text of every byte value: up to three digits, then the digit count.
const DEC: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let v = i as u8;
        t[i] = if v >= 100 {
            [b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10, 3]
        } else if v >= 10 {
            [b'0' + v / 10, b'0' + v % 10, 0, 2]
        } else {
            [b'0' + v, 0, 0, 1]
        };
        i += 1;
    }
    t
};

/// `a.b.c.d` at `out[p..]`; returns the position after it. `out` needs 15 bytes from `p`
/// (16 to write the last octet's three digit slots).
#[inline]
fn put_ipv4(out: &mut [u8], mut p: usize, o: [u8; 4]) -> usize {
    for (i, &b) in o.iter().enumerate() {
        let d = DEC[usize::from(b)];
        out[p..p + 3].copy_from_slice(&d[..3]);
        p += usize::from(d[3]);
        if i < 3 {
            out[p] = b'.';
            p += 1;
        }
    }
    p
}

/// `"a.b.c.d"`, the quotes included.
#[inline]
fn write_ipv4(buf: &mut Vec<u8>, o: [u8; 4]) {
    write_quoted::<20>(buf, |out| put_ipv4(out, 1, o));
}

/// `"`, what `fill` writes from `out[1]` on (it returns the position after it), `"`, written in
/// place: `buf` grows by `N` bytes, `fill` writes into them and `buf` is cut back after the
/// closing quote. (Text built byte by byte in a stack array and then copied out as a block is
/// read back by wide loads that store forwarding cannot serve: a stall on every value.)
#[inline(always)]
fn write_quoted<const N: usize>(buf: &mut Vec<u8>, fill: impl FnOnce(&mut [u8; N]) -> usize) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; N]);
    let end = match buf[start..].first_chunk_mut::<N>() {
        Some(out) => {
            out[0] = b'"';
            let p = fill(out);
            out[p] = b'"';
            start + p + 1
        }
        // not reached: the slice is N bytes long
        None => start,
    };
    buf.truncate(end);
}

/// Lower-case hex of a 16-bit group without leading zeros at `out[p..]`.
#[inline]
fn put_hex16(out: &mut [u8], p: usize, v: u16) -> usize {
    let n = ((16 - v.leading_zeros() as usize).div_ceil(4)).max(1);
    for i in 0..n {
        out[p + i] = HEX[usize::from((v >> (4 * (n - 1 - i))) & 15)];
    }
    p + n
}

/// Groups `segs` joined by `:` at `out[p..]`.
#[inline]
fn put_groups(out: &mut [u8], mut p: usize, segs: &[u16]) -> usize {
    for (i, &s) in segs.iter().enumerate() {
        if i > 0 {
            out[p] = b':';
            p += 1;
        }
        p = put_hex16(out, p, s);
    }
    p
}

/// The text of an IPv6 address as `Ipv6Addr`'s `Display` writes it (RFC 5952: lower case,
/// no leading zeros, the longest run of two or more zero groups, the first of equal runs,
/// shortened to `::`; IPv4-mapped addresses as `::ffff:a.b.c.d`) at `out[p..]`.
/// `out` needs 41 bytes from `p`.
fn put_ipv6(out: &mut [u8], p: usize, a: &Ipv6Addr) -> usize {
    if let Some(v4) = a.to_ipv4_mapped() {
        out[p..p + 7].copy_from_slice(b"::ffff:");
        return put_ipv4(out, p + 7, v4.octets());
    }
    let segs = a.segments();
    // longest run of zero groups, the first of equal ones
    let (mut best_start, mut best_len, mut cur_start, mut cur_len) = (0, 0, 0, 0);
    for (i, &s) in segs.iter().enumerate() {
        if s == 0 {
            if cur_len == 0 {
                cur_start = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best_start = cur_start;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    if best_len > 1 {
        let p = put_groups(out, p, &segs[..best_start]);
        out[p..p + 2].copy_from_slice(b"::");
        put_groups(out, p + 2, &segs[best_start + best_len..])
    } else {
        put_groups(out, p, &segs)
    }
}

/// `"<ipv6>"`, the quotes included.
#[inline]
fn write_ipv6(buf: &mut Vec<u8>, a: &Ipv6Addr) {
    write_quoted::<48>(buf, |out| put_ipv6(out, 1, a));
}

/// An address as its `Display` writes it, quoted.
#[inline]
fn write_ip(buf: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => write_ipv4(buf, a.octets()),
        IpAddr::V6(a) => write_ipv6(buf, &a),
    }
}

fn write_mac(buf: &mut Vec<u8>, m: &[u8; 6]) {
    write_quoted::<20>(buf, |out| put_mac(out, m));
}

/// `aa:bb:cc:dd:ee:ff` at `out[1..]`; returns the position after it.
#[inline(always)]
fn put_mac(out: &mut [u8; 20], m: &[u8; 6]) -> usize {
    for (i, &b) in m.iter().enumerate() {
        out[1 + 3 * i] = HEX[(b >> 4) as usize];
        out[2 + 3 * i] = HEX[(b & 15) as usize];
        out[3 + 3 * i] = b':';
    }
    18
}

fn write_escaped(buf: &mut Vec<u8>, v: &[u8]) {
    buf.push(b'"');
    if v.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        // printable ASCII without quote or backslash: as it is
        buf.extend_from_slice(v);
        buf.push(b'"');
        return;
    }
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '\t' => buf.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(buf, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            buf.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    buf.push(b'"');
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
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
fn minute_prefix(minute: u64) -> [u8; 18] {
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
/// share their minutes, and [`encode`] has no state of its own across documents.
struct MinuteCache {
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
fn minute_prefix_cached(minute: u64) -> [u8; 18] {
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
fn memo<T: Copy, const N: usize>(
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
const TIME_SLOTS: usize = 8;

/// Times formatted last on this thread, each in the slot a hash of its nanoseconds picks: a
/// document repeats its times (`@timestamp` is `event.end`, the raw start / end elements are
/// `event.start` / `event.end`) and the documents of one datagram share `flow.export_time`.
struct TimeCache {
    /// nanoseconds of each entry; `u64::MAX`, whose text the entries start with, for none
    ns: [Cell<u64>; TIME_SLOTS],
    text: [Cell<[u8; 32]>; TIME_SLOTS],
}

/// [`rfc3339`] of `u64::MAX`: what an unused [`TimeCache`] entry holds, so that it is right
/// for the one time it matches.
const MAX_TEXT: [u8; 32] = *b"\"2554-07-21T23:34:33.709551615Z\"";

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
fn time_slot(ns: u64) -> usize {
    // multiplicative hashing: the top bits of the product depend on all bits of `ns`
    ((ns ^ (ns >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - TIME_SLOTS.trailing_zeros()))
        as usize
}

/// [`rfc3339`] through this thread's [`TimeCache`].
#[inline]
fn rfc3339_cached(ns: u64) -> [u8; 32] {
    TIMES
        .try_with(|c| memo(&c.ns, &c.text, time_slot(ns), ns, rfc3339))
        .unwrap_or_else(|_| rfc3339(ns))
}

/// The quoted text [`write_rfc3339`] writes.
#[inline]
fn rfc3339(ns: u64) -> [u8; 32] {
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

/// `network.transport`: the name of IANA protocol `p`, when it has one here.
#[inline]
fn write_transport(c: &mut Cursor<'_>, p: u8) {
    let k = key!("transport");
    match p {
        1 => c.member_quoted(k, b"\"icmp\""),
        2 => c.member_quoted(k, b"\"igmp\""),
        4 => c.member_quoted(k, b"\"ipv4\""),
        6 => c.member_quoted(k, b"\"tcp\""),
        17 => c.member_quoted(k, b"\"udp\""),
        41 => c.member_quoted(k, b"\"ipv6\""),
        47 => c.member_quoted(k, b"\"gre\""),
        50 => c.member_quoted(k, b"\"esp\""),
        51 => c.member_quoted(k, b"\"ah\""),
        58 => c.member_quoted(k, b"\"ipv6-icmp\""),
        89 => c.member_quoted(k, b"\"ospf\""),
        103 => c.member_quoted(k, b"\"pim\""),
        112 => c.member_quoted(k, b"\"vrrp\""),
        132 => c.member_quoted(k, b"\"sctp\""),
        _ => {}
    }
}

/// `flow.time_basis`: [`TimeBasis::as_str`] as a literal (a copy of a known size).
#[inline]
fn write_time_basis(c: &mut Cursor<'_>, tb: TimeBasis) {
    let k = key!("time_basis");
    match tb {
        TimeBasis::Absolute => c.member_quoted(k, b"\"absolute\""),
        TimeBasis::Uptime => c.member_quoted(k, b"\"uptime\""),
        TimeBasis::UptimeUnresolved => c.member_quoted(k, b"\"uptime_unresolved\""),
    }
}

/// `flow.sampling_source`: [`SamplingSource::as_str`] as a literal.
#[inline]
fn write_sampling_source(c: &mut Cursor<'_>, s: SamplingSource) {
    let k = key!("sampling_source");
    match s {
        SamplingSource::V5Header => c.member_quoted(k, b"\"v5_header\""),
        SamplingSource::Record => c.member_quoted(k, b"\"record\""),
        SamplingSource::Options => c.member_quoted(k, b"\"options\""),
        SamplingSource::Sflow => c.member_quoted(k, b"\"sflow\""),
        SamplingSource::Unknown => c.member_quoted(k, b"\"unknown\""),
    }
}

/// The names [`write_transport`] writes (its reference in tests).
#[cfg(test)]
fn transport_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        4 => "ipv4",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        132 => "sctp",
        _ => return None,
    })
}

/// Append `record` as one JSON document to `buf`.
pub fn encode(record: &FlowRecord<'_>, opts: &EncodeOptions, buf: &mut Vec<u8>) {
    let r = record;
    let mut w = JsonWriter::new(buf);
    w.begin();
    // the ECS members through one cursor: their text has a bound
    w.with_cursor(ECS_MAX, |c| ecs(r, c));
    // the record's own time when the decoder replaced it (sFlow's time is the receive time:
    // never replaced)
    let original = r.timestamp_clamp.map(|(t, _)| t);
    if !opts.no_raw {
        match &r.raw {
            Raw::None => write_original(original, &mut w),
            Raw::NetflowV5(rec) => netflow5::write_raw_json(rec, original, &mut w),
            Raw::Template { template, data } => {
                template.write_raw_json_with(data, r.protocol, original, &mut w)
            }
            Raw::Sflow(s) => sflow::write_raw_json(s, &mut w),
        }
    } else {
        write_original(original, &mut w);
    }
    w.end_object();
}

/// `"netflow":{"original_timestamp":...}` alone (no raw members written).
#[cold]
fn write_original(original_ns: Option<u64>, w: &mut JsonWriter<'_>) {
    if let Some(t) = original_ns {
        w.begin_object(key!("netflow"));
        w.time_ns(key!("original_timestamp"), t);
        w.end_object();
    }
}

/// The bytes the ECS members of a document can take (see the test `ecs_bound_holds`).
const ECS_MAX: usize = 1856;

/// The ECS members of [`encode`]'s document (everything but the raw elements).
#[inline]
fn ecs(r: &FlowRecord<'_>, c: &mut Cursor<'_>) {
    if let Some(ts) = r.timestamp_ns() {
        c.member_time(key!("@timestamp"), ts);
    }

    // event (ECS categorisation, as Elastic's NetFlow integration does it)
    match r.kind {
        RecordKind::Flow => {
            if r.protocol == FlowProtocol::Sflow5 {
                c.begin_object_with(
                    key!("event"),
                    br#""kind":"event","category":["network"],"type":["connection"],"action":"sflow_flow""#,
                );
            } else {
                c.begin_object_with(
                    key!("event"),
                    br#""kind":"event","category":["network"],"type":["connection"],"action":"netflow_flow""#,
                );
            }
            if let Some(s) = r.start_ns {
                c.member_time(key!("start"), s);
            }
            if let Some(e) = r.end_ns {
                c.member_time(key!("end"), e);
            }
            if let (Some(s), Some(e)) = (r.start_ns, r.end_ns) {
                if e >= s {
                    c.member_u64(key!("duration"), e - s);
                }
            }
        }
        RecordKind::Counters => {
            c.begin_object_with(
                key!("event"),
                br#""kind":"metric","category":["network"],"type":["info"],"action":"sflow_counters""#,
            );
        }
    }
    c.end_object();

    // observer: the exporter
    c.begin_object(key!("observer"));
    c.member_ip(key!("ip"), r.exporter.ip());
    if let Some(i) = r.in_if {
        c.begin_object(key!("ingress"));
        c.begin_object(key!("interface"));
        c.member_u64(key!("id"), u64::from(i));
        c.end_object();
        c.end_object();
    }
    if let Some(o) = r.out_if {
        c.begin_object(key!("egress"));
        c.begin_object(key!("interface"));
        c.member_u64(key!("id"), u64::from(o));
        c.end_object();
        c.end_object();
    }
    c.end_object();

    if r.kind == RecordKind::Flow {
        endpoint(
            c,
            key!("source"),
            r.src_addr,
            r.src_port,
            r.src_mac,
            r.src_as,
        );
        endpoint(
            c,
            key!("destination"),
            r.dst_addr,
            r.dst_port,
            r.dst_mac,
            r.dst_as,
        );

        c.begin_object(key!("network"));
        if let Some(p) = r.ip_protocol {
            write_transport(c, p);
            c.k(key!("iana_number"));
            c.quoted::<5>(|out| {
                let d = DEC[usize::from(p)];
                out[1..4].copy_from_slice(&d[..3]);
                1 + usize::from(d[3])
            });
        }
        let ipv = r.ip_version.or(match r.src_addr.or(r.dst_addr) {
            Some(IpAddr::V4(_)) => Some(4),
            Some(IpAddr::V6(_)) => Some(6),
            None => None,
        });
        match ipv {
            Some(4) => c.member_quoted(key!("type"), b"\"ipv4\""),
            Some(6) => c.member_quoted(key!("type"), b"\"ipv6\""),
            _ => {}
        }
        if let Some(b) = r.bytes {
            c.member_u64(key!("bytes"), b);
        }
        if let Some(p) = r.packets {
            c.member_u64(key!("packets"), p);
        }
        match r.direction {
            Some(0) => c.member_quoted(key!("direction"), b"\"ingress\""),
            Some(1) => c.member_quoted(key!("direction"), b"\"egress\""),
            _ => {}
        }
        if let Some(v) = r.vlan.or(r.src_vlan) {
            c.begin_object(key!("vlan"));
            c.member_u64(key!("id"), u64::from(v));
            c.end_object();
        }
        if let (Some(s), Some(d), Some(p)) = (r.src_addr, r.dst_addr, r.ip_protocol) {
            c.k(key!("community_id"));
            // the id written in place
            c.quoted::<36>(|out| {
                let n = match out[1..].first_chunk_mut::<33>() {
                    Some(cid) => crate::community_id::v1(
                        s,
                        d,
                        r.src_port,
                        r.dst_port,
                        p,
                        r.icmp_type,
                        r.icmp_code,
                        cid,
                    ),
                    None => 0,
                };
                1 + n.min(33)
            });
        }
        c.end_object();
    }

    // flow: what ECS lacks
    match r.protocol {
        FlowProtocol::NetflowV5 => c.begin_object_with(key!("flow"), br#""protocol":"netflow_v5""#),
        FlowProtocol::NetflowV9 => c.begin_object_with(key!("flow"), br#""protocol":"netflow_v9""#),
        FlowProtocol::Ipfix => c.begin_object_with(key!("flow"), br#""protocol":"ipfix""#),
        FlowProtocol::Sflow5 => c.begin_object_with(key!("flow"), br#""protocol":"sflow5""#),
    }
    c.member_u64(key!("exporter_port"), u64::from(r.exporter.port()));
    if let Some(t) = r.export_time_ns {
        c.member_time(key!("export_time"), t);
    }
    if let Some(s) = r.sequence {
        c.member_u64(key!("sequence"), u64::from(s));
    }
    if let Some(d) = r.domain {
        c.member_u64(key!("domain"), u64::from(d));
    }
    if let Some(t) = r.template_id {
        c.member_u64(key!("template_id"), u64::from(t));
    }
    if let Some(v) = r.ip_version {
        c.member_u64(key!("ip_version"), u64::from(v));
    }
    if let Some(f) = r.tcp_flags {
        c.member_u64(key!("tcp_flags"), u64::from(f));
    }
    if let Some(t) = r.tos {
        c.member_u64(key!("tos"), u64::from(t));
    }
    if let Some(m) = r.src_mask {
        c.member_u64(key!("src_mask"), u64::from(m));
    }
    if let Some(m) = r.dst_mask {
        c.member_u64(key!("dst_mask"), u64::from(m));
    }
    if let Some(n) = r.next_hop {
        c.member_ip(key!("next_hop"), n);
    }
    if let Some(n) = r.bgp_next_hop {
        c.member_ip(key!("bgp_next_hop"), n);
    }
    if let Some(v) = r.src_vlan {
        c.member_u64(key!("src_vlan"), u64::from(v));
    }
    if let Some(v) = r.dst_vlan {
        c.member_u64(key!("dst_vlan"), u64::from(v));
    }
    if let Some(d) = r.direction {
        c.member_u64(key!("direction"), u64::from(d));
    }
    if let Some(e) = r.flow_end_reason {
        c.member_u64(key!("end_reason"), u64::from(e));
    }
    if let Some(t) = r.icmp_type {
        c.member_u64(key!("icmp_type"), u64::from(t));
    }
    if let Some(code) = r.icmp_code {
        c.member_u64(key!("icmp_code"), u64::from(code));
    }
    if !r.mpls.is_empty() {
        c.begin_array(key!("mpls_labels"));
        for &l in r.mpls.as_slice() {
            c.item_u64(u64::from(l));
        }
        c.end_array();
    }
    if r.reverse_bytes.is_some() || r.reverse_packets.is_some() || r.reverse_tcp_flags.is_some() {
        c.begin_object(key!("reverse"));
        if let Some(b) = r.reverse_bytes {
            c.member_u64(key!("bytes"), b);
        }
        if let Some(p) = r.reverse_packets {
            c.member_u64(key!("packets"), p);
        }
        if let Some(f) = r.reverse_tcp_flags {
            c.member_u64(key!("tcp_flags"), u64::from(f));
        }
        c.end_object();
    }
    if let Some(tb) = r.time_basis {
        write_time_basis(c, tb);
    }
    if let Some(s) = r.start_uptime_ms {
        c.member_u64(key!("start_uptime_ms"), s);
    }
    if let Some(e) = r.end_uptime_ms {
        c.member_u64(key!("end_uptime_ms"), e);
    }
    c.member_u64(
        key!("sampling_rate"),
        u64::from(r.sampling_rate.unwrap_or(1)),
    );
    write_sampling_source(c, r.sampling_source.unwrap_or(SamplingSource::Unknown));
    if let Some(s) = r.sampler_id {
        c.member_u64(key!("sampler_id"), s);
    }
    if r.scaled {
        c.member_quoted(key!("scaled"), b"true");
    }
    c.end_object();
}

#[inline(always)]
fn endpoint(
    c: &mut Cursor<'_>,
    name: Key<'_>,
    ip: Option<IpAddr>,
    port: Option<u16>,
    mac: Option<[u8; 6]>,
    asn: Option<u32>,
) {
    if ip.is_none() && port.is_none() && mac.is_none() && asn.is_none() {
        return;
    }
    c.begin_object(name);
    if let Some(ip) = ip {
        c.member_ip(key!("ip"), ip);
    }
    if let Some(p) = port {
        c.member_u64(key!("port"), u64::from(p));
    }
    if let Some(m) = mac {
        c.member_mac(key!("mac"), &m);
    }
    if let Some(a) = asn {
        c.begin_object(key!("as"));
        c.member_u64(key!("number"), u64::from(a));
        c.end_object();
    }
    c.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formatter before the pair table and the minute cache: the reference.
    fn rfc3339_reference(ns: u64) -> [u8; 32] {
        let secs = (ns / 1_000_000_000) as i64;
        let frac = (ns % 1_000_000_000) as u32;
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        let mut out = *b"\"0000-00-00T00:00:00.000000000Z\"";
        let put = |out: &mut [u8; 32], at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut out, 1, y.clamp(0, 9999) as u32, 4);
        put(&mut out, 6, mo, 2);
        put(&mut out, 9, d, 2);
        put(&mut out, 12, sod / 3600, 2);
        put(&mut out, 15, sod / 60 % 60, 2);
        put(&mut out, 18, sod % 60, 2);
        put(&mut out, 21, frac, 9);
        out
    }

    fn t(ns: u64) -> String {
        let mut b = Vec::new();
        write_rfc3339(&mut b, ns);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn rfc3339_text() {
        assert_eq!(t(0), "\"1970-01-01T00:00:00.000000000Z\"");
        assert_eq!(
            t(1_254_722_767_526_084_999),
            "\"2009-10-05T06:06:07.526084999Z\""
        );
        assert_eq!(
            t(951_782_400_000_000_000),
            "\"2000-02-29T00:00:00.000000000Z\""
        );
        assert_eq!(
            t(4_102_444_799_000_000_000),
            "\"2099-12-31T23:59:59.000000000Z\""
        );
    }

    #[test]
    fn escaping() {
        let mut b = Vec::new();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.str_bytes("s", b"a\"b\\c\n\x01\xffz\0\0");
        w.end_object();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["s"], "a\"b\\c\n\u{1}\u{fffd}z");
    }

    #[test]
    fn commas_and_nesting() {
        let mut b = Vec::new();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.u64("a", 1);
        w.begin_object("o");
        w.u64("x", 2);
        w.begin_array("l");
        w.item_u64(1);
        w.item_u64(2);
        w.end_array();
        w.end_object();
        w.bool("z", false);
        w.end_object();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"a":1,"o":{"x":2,"l":[1,2]},"z":false}"#
        );
    }

    fn ip_text(ip: IpAddr) -> String {
        let mut b = Vec::new();
        write_ip(&mut b, ip);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn ip_formatting_matches_std() {
        let cases = [
            "::",
            "::1",
            "1::",
            "::ffff:1.2.3.4",
            "::ffff:0.0.0.0",
            "::ffff:255.255.255.255",
            "::1.2.3.4",
            "::ffff:0:1.2.3.4",
            "64:ff9b::192.0.2.33",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1:0:0:0:1",
            "2001:db8:0:1:1:1:1:1",
            "1:0:0:0:0:0:0:0",
            "0:0:0:0:0:0:0:1",
            "1:0:1:0:1:0:1:0",
            "0:1:0:1:0:1:0:1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::1:2:3:4",
            "0:0:1::",
            "1:2:3:4:5:6:7:8",
            "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "192.168.100.7",
            "1.20.199.255",
        ];
        for c in cases {
            let ip: IpAddr = c.parse().unwrap();
            assert_eq!(ip_text(ip), format!("\"{ip}\""), "{c}");
        }
        for i in 0..=255u8 {
            let ip = IpAddr::from([i, 255 - i, i / 3, i.wrapping_mul(7)]);
            assert_eq!(ip_text(ip), format!("\"{ip}\""));
        }
    }

    /// IPv6 groups drawn mostly from 0 and a few small / large values, so zero runs of every
    /// length and position, IPv4-mapped and IPv4-compatible forms all come up.
    fn group() -> impl proptest::strategy::Strategy<Value = u16> {
        use proptest::prelude::*;
        prop_oneof![
            4 => proptest::strategy::Just(0u16),
            1 => proptest::strategy::Just(0xffffu16),
            1 => proptest::strategy::Just(1u16),
            2 => 0u16..0x10,
            2 => any::<u16>(),
        ]
    }

    /// Start times for the time proptests: 1970, a leap day, today, anywhere, the far future.
    fn time_bases() -> impl proptest::strategy::Strategy<Value = u64> {
        proptest::prop_oneof![
            proptest::strategy::Just(0u64),
            0u64..200_000_000_000_000,
            951_782_400_000_000_000u64..951_868_800_000_000_000,
            1_700_000_000_000_000_000u64..1_700_000_100_000_000_000,
            0u64..u64::MAX,
            proptest::strategy::Just(u64::MAX - 3_600_000_000_000),
        ]
    }

    /// Steps between consecutive times: the same time, the next nanosecond, within the second,
    /// the next second, minute(s), day, within the hour.
    fn time_steps() -> impl proptest::strategy::Strategy<Value = u64> {
        proptest::prop_oneof![
            proptest::strategy::Just(0u64),
            proptest::strategy::Just(1u64),
            0u64..1_000_000_000,
            proptest::strategy::Just(1_000_000_000u64),
            proptest::strategy::Just(60_000_000_000u64),
            proptest::strategy::Just(240_000_000_000u64),
            proptest::strategy::Just(86_400_000_000_000u64),
            0u64..3_600_000_000_000,
        ]
    }

    proptest::proptest! {
        #[test]
        fn ipv6_formatting_matches_std(g in proptest::array::uniform8(group())) {
            let ip = IpAddr::V6(Ipv6Addr::from(g));
            proptest::prop_assert_eq!(ip_text(ip), format!("\"{ip}\""));
        }

        #[test]
        fn ipv6_any_bits_matches_std(bits in proptest::prelude::any::<u128>()) {
            let ip = IpAddr::V6(Ipv6Addr::from(bits));
            proptest::prop_assert_eq!(ip_text(ip), format!("\"{ip}\""));
        }

        #[test]
        fn ipv4_mapped_matches_std(v4 in proptest::prelude::any::<[u8; 4]>(), g5 in group()) {
            let [a, b, c, d] = v4;
            let ip = IpAddr::V6(Ipv6Addr::new(
                0, 0, 0, 0, 0, g5,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
            ));
            proptest::prop_assert_eq!(ip_text(ip), format!("\"{ip}\""));
            let ip4 = IpAddr::from(v4);
            proptest::prop_assert_eq!(ip_text(ip4), format!("\"{ip4}\""));
        }

        #[test]
        fn mac_and_hex(m in proptest::prelude::any::<[u8; 6]>(),
                       v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)) {
            let mut b = Vec::new();
            write_mac(&mut b, &m);
            let want = format!(
                "\"{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\"",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
            proptest::prop_assert_eq!(String::from_utf8(b).unwrap(), want);
            let mut b = Vec::new();
            let mut w = JsonWriter::new(&mut b);
            w.begin();
            w.hex("h", &v);
            w.end_object();
            let hex: String = v.iter().map(|x| format!("{x:02x}")).collect();
            proptest::prop_assert_eq!(String::from_utf8(b).unwrap(), format!("{{\"h\":\"{hex}\"}}"));
        }

        #[test]
        fn strings_escape_like_serde(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let mut b = Vec::new();
            write_escaped(&mut b, &v);
            let back: String = serde_json::from_slice(&b).unwrap();
            proptest::prop_assert_eq!(back, String::from_utf8_lossy(&v).into_owned());
        }

        #[test]
        fn u64_text_matches_itoa_near_powers_of_ten(k in 0u32..20, d in 0u64..3, down in proptest::prelude::any::<bool>()) {
            let p = 10u64.pow(k);
            let v = if down { p.saturating_sub(d) } else { p.saturating_add(d) };
            for v in [v, v.saturating_mul(9), u64::MAX - d] {
                let mut b = Vec::new();
                write_u64(&mut b, v);
                let mut itoa_buf = itoa::Buffer::new();
                proptest::prop_assert_eq!(&b[..], itoa_buf.format(v).as_bytes());
            }
        }

        #[test]
        fn u64_text_matches_itoa(v in proptest::prelude::any::<u64>(), shift in 0u32..64) {
            for v in [v, v >> shift, v % 100_000, v % 1000, v % 100, v % 10] {
                let mut b = Vec::new();
                write_u64(&mut b, v);
                let mut itoa_buf = itoa::Buffer::new();
                proptest::prop_assert_eq!(&b[..], itoa_buf.format(v).as_bytes());
            }
        }

        /// Sequences of nearby and far times (same second, next second, next minute / day, leap
        /// days, 1970, the far future) through the minute cache against the reference formatter.
        #[test]
        fn minute_cache_gives_the_same_text(
            base in time_bases(),
            steps in proptest::collection::vec(time_steps(), 1..20),
            back in proptest::collection::vec(proptest::prelude::any::<bool>(), 20),
        ) {
            use proptest::prelude::*;
            let mut ns = base;
            for (i, d) in steps.into_iter().enumerate() {
                ns = if back[i] { ns.saturating_sub(d) } else { ns.saturating_add(d) };
                prop_assert_eq!(rfc3339(ns), rfc3339_reference(ns), "{}", ns);
                let last = (ns / 1_000_000_000 * 1_000_000_000).saturating_add(999_999_999);
                for n in [ns, ns.saturating_add(1), last, last.saturating_add(1)] {
                    prop_assert_eq!(rfc3339(n), rfc3339_reference(n), "{}", n);
                }
            }
        }

        #[test]
        fn time_cache_gives_the_same_text(a in 0u64..u64::MAX, b in 0u64..u64::MAX, c in 0u64..u64::MAX, d in 0u64..u64::MAX) {
            let mut cached = Vec::new();
            let mut w = JsonWriter::new(&mut cached);
            let mut plain = Vec::new();
            // u64::MAX: the time an unused entry holds
            for ns in [a, b, a, c, b, d, c, a, d, b, a, a, u64::MAX, a, u64::MAX] {
                w.time_ns("t", ns);
                write_rfc3339(&mut plain, ns);
            }
            proptest::prop_assert_eq!(cached.len() > plain.len(), true);
            let text = String::from_utf8(cached).unwrap().replace(",\"t\":", "").replace("\"t\":", "");
            proptest::prop_assert_eq!(text, String::from_utf8(plain).unwrap());
            for ns in [a, b, c] {
                proptest::prop_assert_eq!(rfc3339(ns), rfc3339_reference(ns));
            }
        }
    }

    proptest::proptest! {
        /// Times of consecutive documents (the same time again, the next nanosecond, second,
        /// minute, day; times of earlier documents) through the thread's time cache against the
        /// plain formatter.
        #[test]
        fn time_cache_across_documents(
            base in time_bases(),
            steps in proptest::collection::vec(time_steps(), 1..40),
            back in proptest::collection::vec(proptest::prelude::any::<bool>(), 40),
        ) {
            let mut ns = base;
            let mut seen = Vec::new();
            for (i, d) in steps.into_iter().enumerate() {
                ns = if back[i] { ns.saturating_sub(d) } else { ns.saturating_add(d) };
                seen.push(ns);
                let mut doc = Vec::new();
                let mut w = JsonWriter::new(&mut doc);
                let mut plain = Vec::new();
                for t in [ns, seen[i / 2], ns, seen[0], u64::MAX, ns] {
                    w.time_ns(key!("t"), t);
                    plain.extend_from_slice(b",\"t\":");
                    write_rfc3339(&mut plain, t);
                }
                proptest::prop_assert_eq!(doc, plain);
            }
        }
    }

    /// The widest ECS part there is (every member present, with its longest text, over every
    /// choice of the members that exclude each other) fits in [`ECS_MAX`] with room for the
    /// widest fixed-size write: the cursor never runs past what it was given.
    #[test]
    fn ecs_bound_holds() {
        let wide6 = IpAddr::V6(Ipv6Addr::from(u128::MAX));
        let mut r = FlowRecord::new(
            FlowProtocol::NetflowV9,
            std::net::SocketAddr::new(wide6, u16::MAX),
        );
        r.export_time_ns = Some(u64::MAX);
        r.sequence = Some(u32::MAX);
        r.domain = Some(u32::MAX);
        r.template_id = Some(u16::MAX);
        (r.src_addr, r.dst_addr) = (Some(wide6), Some(wide6));
        (r.src_port, r.dst_port) = (Some(u16::MAX), Some(u16::MAX));
        (r.bytes, r.packets) = (Some(u64::MAX), Some(u64::MAX));
        (r.reverse_bytes, r.reverse_packets) = (Some(u64::MAX), Some(u64::MAX));
        (r.reverse_tcp_flags, r.tcp_flags) = (Some(u16::MAX), Some(u16::MAX));
        r.tos = Some(u8::MAX);
        (r.in_if, r.out_if) = (Some(u32::MAX), Some(u32::MAX));
        (r.src_as, r.dst_as) = (Some(u32::MAX), Some(u32::MAX));
        (r.src_mask, r.dst_mask) = (Some(u8::MAX), Some(u8::MAX));
        (r.next_hop, r.bgp_next_hop) = (Some(wide6), Some(wide6));
        (r.src_mac, r.dst_mac) = (Some([0xff; 6]), Some([0xff; 6]));
        (r.vlan, r.src_vlan, r.dst_vlan) = (Some(u16::MAX), Some(u16::MAX), Some(u16::MAX));
        (r.flow_end_reason, r.icmp_type, r.icmp_code) = (Some(255), Some(255), Some(255));
        for _ in 0..20 {
            r.mpls.push(u32::MAX);
        }
        (r.start_ns, r.end_ns) = (Some(0), Some(u64::MAX));
        (r.start_uptime_ms, r.end_uptime_ms) = (Some(u64::MAX), Some(u64::MAX));
        (r.sampling_rate, r.sampler_id, r.scaled) = (Some(u32::MAX), Some(u64::MAX), true);
        let mut widest = 0;
        let mut doc = Vec::new();
        for kind in [RecordKind::Flow, RecordKind::Counters] {
            for protocol in [FlowProtocol::NetflowV5, FlowProtocol::Sflow5] {
                for p in 0..=255u8 {
                    for direction in [0, 1, 255] {
                        for ip_version in [4, 6, 255] {
                            for tb in [TimeBasis::Absolute, TimeBasis::UptimeUnresolved] {
                                for ss in [SamplingSource::V5Header, SamplingSource::Unknown] {
                                    let r = FlowRecord {
                                        kind,
                                        protocol,
                                        ip_protocol: Some(p),
                                        direction: Some(direction),
                                        ip_version: Some(ip_version),
                                        time_basis: Some(tb),
                                        sampling_source: Some(ss),
                                        ..r
                                    };
                                    doc.clear();
                                    encode(&r, &EncodeOptions::default(), &mut doc);
                                    // the document is `{`, the members after their first comma, `}`
                                    widest = widest.max(doc.len() - 1);
                                }
                            }
                        }
                    }
                }
            }
        }
        // the widest fixed-size write: an IPv6 address's 48 bytes
        assert!(widest + 48 <= ECS_MAX, "{widest} + 48 > {ECS_MAX}");
        // the bound is not far above what it has to hold (a memset of it per document)
        assert!(ECS_MAX < widest + 512, "{widest}");
    }

    #[test]
    fn unused_time_cache_entries_are_right() {
        assert_eq!(MAX_TEXT, rfc3339(u64::MAX));
        assert_eq!(MAX_TEXT, rfc3339_reference(u64::MAX));
        // every slot unused on a new thread
        std::thread::spawn(|| {
            let mut b = Vec::new();
            JsonWriter::new(&mut b).time_ns("t", u64::MAX);
            assert_eq!(&b[5..], &MAX_TEXT[..]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn rfc3339_matches_the_reference_at_edges() {
        let day = 86_400_000_000_000u64;
        let mut cases = vec![
            0,
            1,
            999_999_999,
            1_000_000_000,
            59_999_999_999,
            60_000_000_000,
        ];
        for d in [
            0u64, 58, 59, 60, 365, 789, 790, 11_016, 11_017, 19_722, 47_541, 200_000,
        ] {
            for off in [0, 1, 59_999_999_999, 60_000_000_000, day - 1] {
                cases.push(d * day + off);
            }
        }
        cases.extend([u64::MAX, u64::MAX - 1, u64::MAX / 2]);
        for ns in cases {
            // twice: through a missed and a hit minute cache
            assert_eq!(rfc3339(ns), rfc3339_reference(ns), "{ns}");
            assert_eq!(rfc3339(ns), rfc3339_reference(ns), "{ns}");
        }
    }

    #[test]
    fn u64_text_matches_itoa_on_ranges() {
        let mut itoa_buf = itoa::Buffer::new();
        let mut b = Vec::new();
        let strided = (0..100_000_000u64).step_by(9_973);
        // every digit count's edges
        let edges = (0..20u32).flat_map(|k| {
            let p = 10u64.pow(k);
            p.saturating_sub(2)..=p.saturating_add(2)
        });
        let mut c = Vec::new();
        for v in (0..200_000u64)
            .chain(strided)
            .chain(edges)
            .chain(u64::MAX - 100_000..=u64::MAX)
        {
            b.clear();
            write_u64(&mut b, v);
            assert_eq!(&b[..], itoa_buf.format(v).as_bytes());
            // the cursor's writer, after a byte
            c.clear();
            c.push(b'x');
            JsonWriter::new(&mut c).with_cursor(Cursor::VALUE_MAX, |w| w.u64(v));
            assert_eq!(&c[1..], &b[..], "{v}");
        }
    }

    /// What `write` writes, and what `str_plain` writes for `(key, name)` (nothing for `None`).
    fn written(
        write: impl FnOnce(&mut JsonWriter<'_>),
        plain: Option<(Key<'_>, &str)>,
    ) -> (Vec<u8>, Vec<u8>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write(&mut JsonWriter::new(&mut a));
        if let Some((k, name)) = plain {
            JsonWriter::new(&mut b).str_plain(k, name);
        }
        (a, b)
    }

    #[test]
    fn transport_names_and_fixed_strings() {
        for p in 0..=255u8 {
            let (a, b) = written(
                |w| w.with_cursor(64, |c| write_transport(c, p)),
                transport_name(p).map(|n| (key!("transport"), n)),
            );
            assert_eq!(a, b, "{p}");
        }
        for tb in [
            TimeBasis::Absolute,
            TimeBasis::Uptime,
            TimeBasis::UptimeUnresolved,
        ] {
            let (a, b) = written(
                |w| w.with_cursor(64, |c| write_time_basis(c, tb)),
                Some((key!("time_basis"), tb.as_str())),
            );
            assert_eq!(a, b);
        }
        for s in [
            SamplingSource::V5Header,
            SamplingSource::Record,
            SamplingSource::Options,
            SamplingSource::Sflow,
            SamplingSource::Unknown,
        ] {
            let (a, b) = written(
                |w| w.with_cursor(64, |c| write_sampling_source(c, s)),
                Some((key!("sampling_source"), s.as_str())),
            );
            assert_eq!(a, b);
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        JsonWriter::new(&mut a).with_cursor(64, |c| c.member_quoted(key!("type"), b"\"ipv4\""));
        JsonWriter::new(&mut b).str_plain(key!("type"), "ipv4");
        assert_eq!(a, b);
        // an empty run of members: an object like begin_object's
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut w = JsonWriter::new(&mut a);
        w.begin();
        w.with_cursor(64, |c| {
            c.begin_object_with(key!("o"), b"");
            c.end_object();
        });
        w.end_object();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.begin_object(key!("o"));
        w.end_object();
        w.end_object();
        assert_eq!(a, b);
        assert_eq!(a, br#"{"o":{}}"#);
    }

    #[test]
    fn long_and_unpadded_keys() {
        let long = "k".repeat(70);
        let kb = KeyBuf::new(&long);
        let unpadded = Key::fragment_for("plain");
        let mut a = Vec::new();
        let mut w = JsonWriter::new(&mut a);
        w.begin();
        w.u64(kb.key(), 1);
        w.u64(Key::from_fragment(&unpadded), 2);
        w.begin_object(kb.key());
        w.u64(Key::from_fragment(&unpadded), 3);
        w.u64(kb.key(), u64::MAX);
        w.end_object();
        w.end_object();
        let want = format!(
            r#"{{"{long}":1,"plain":2,"{long}":{{"plain":3,"{long}":18446744073709551615}}}}"#
        );
        assert_eq!(std::str::from_utf8(&a).unwrap(), want);
    }

    #[test]
    fn keys_and_fragments_write_the_same() {
        let mut a = Vec::new();
        let mut w = JsonWriter::new(&mut a);
        w.begin();
        w.u64(key!("a"), 1);
        w.begin_object(key!("o"));
        w.u64(key!("x"), 2);
        w.begin_array(key!("l"));
        w.item_u64(1);
        w.end_array();
        w.end_object();
        w.with_cursor(128, |c| {
            c.begin_object_with(key!("p"), br#""k":"v""#);
            c.member_quoted(key!("z"), b"false");
            c.end_object();
        });
        w.end_object();
        let mut b = Vec::new();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.u64("a", 1);
        w.begin_object("o");
        w.u64("x", 2);
        w.begin_array("l");
        w.item_u64(1);
        w.end_array();
        w.end_object();
        w.begin_object("p");
        w.str_plain("k", "v");
        w.bool("z", false);
        w.end_object();
        w.end_object();
        assert_eq!(a, b);
        assert_eq!(
            std::str::from_utf8(&a).unwrap(),
            r#"{"a":1,"o":{"x":2,"l":[1]},"p":{"k":"v","z":false}}"#
        );
    }
}
