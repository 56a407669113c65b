//! The JSON writer: [`JsonWriter`] over a caller's buffer, [`Cursor`] for runs of members
//! whose text has a bound, and keys as precomputed fragments ([`Key`], [`KeyBuf`],
//! [`WideKey`], the `key!` macro).

use std::io::Write as _;
use std::net::IpAddr;

use super::text::{
    digits8, put_ipv4, put_ipv6, put_mac, put_padded, write_escaped, write_ip, write_ipv4,
    write_mac, write_u64, ASCII_ZEROS, DEC, HEX,
};
use super::time::rfc3339_cached;

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

/// `open_at` of an object whose bracket is written already ([`Cursor::begin_object_with`]).
pub(super) const OPENED: usize = usize::MAX;

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
    pub(super) fn sep(&mut self) {
        self.buf.push(b',');
    }

    #[inline]
    pub(super) fn key(&mut self, key: impl JsonKey) {
        key.write_key(self);
    }

    /// Open an object or array whose bracket is written when it closes.
    #[inline]
    pub(super) fn open(&mut self) {
        self.push_level(self.buf.len());
    }

    /// One level deeper; `at`: its [`JsonWriter::open_at`].
    #[inline]
    pub(super) fn push_level(&mut self, at: usize) {
        self.depth = (self.depth + 1).min(31);
        self.open_at[usize::from(self.depth)] = at;
    }

    /// Close the innermost object or array: its first member's comma becomes `open` (or
    /// `open` is written when it has no member), then `close`.
    #[inline]
    pub(super) fn close(&mut self, open: u8, close: u8) {
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
pub(super) const CURSOR_LEVELS: usize = 4;

impl Cursor<'_> {
    /// The most bytes one value takes, its padding included: a time's 32 (for tests).
    #[cfg(test)]
    pub(super) const VALUE_MAX: usize = 32;

    /// The first `n` bytes of `chunk` (`n <= N`), with one fixed-size copy.
    #[inline(always)]
    pub(super) fn put<const N: usize>(&mut self, chunk: &[u8; N], n: usize) {
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
    pub(super) fn digits8(&mut self, v: u32) {
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
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    /// `"`, what `fill` writes from `out[1]` on (it returns the position after it), `"`, as
    /// [`write_quoted`](super::text::write_quoted) writes them.
    #[inline(always)]
    pub(super) fn quoted<const N: usize>(&mut self, fill: impl FnOnce(&mut [u8; N]) -> usize) {
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
    pub(super) fn k(&mut self, key: Key<'_>) {
        match key.text.first_chunk::<KEY_PAD>() {
            Some(chunk) if key.len <= KEY_PAD => self.put(chunk, key.len),
            _ => self.bytes(key.as_bytes()),
        }
    }

    /// The members below: as [`JsonWriter`]'s of the same names write them.
    #[inline(always)]
    pub(super) fn member_u64(&mut self, key: Key<'_>, v: u64) {
        self.k(key);
        self.u64(v);
    }

    #[inline(always)]
    pub(super) fn member_time(&mut self, key: Key<'_>, ns: u64) {
        self.k(key);
        self.time_ns(ns);
    }

    #[inline(always)]
    pub(super) fn member_ip(&mut self, key: Key<'_>, ip: IpAddr) {
        self.k(key);
        match ip {
            IpAddr::V4(a) => self.ipv4(a.octets()),
            IpAddr::V6(a) => self.quoted::<48>(|out| put_ipv6(out, 1, &a)),
        }
    }

    #[inline(always)]
    pub(super) fn member_quoted<const N: usize>(&mut self, key: Key<'_>, quoted: &[u8; N]) {
        self.k(key);
        self.put(quoted, N);
    }

    #[inline(always)]
    pub(super) fn member_mac(&mut self, key: Key<'_>, m: &[u8; 6]) {
        self.k(key);
        self.quoted::<20>(|out| put_mac(out, m));
    }

    /// `"key":{`, its bracket written when it closes.
    #[inline(always)]
    pub(super) fn begin_object(&mut self, key: Key<'_>) {
        self.k(key);
        self.push_level(self.pos);
    }

    /// `"key":{` followed by `members`, a run of members written as they are
    /// (`"a":1,"b":[2]`): static parts of a document in one copy of a size known when
    /// compiling (no call to `memcpy`).
    #[inline(always)]
    pub(super) fn begin_object_with<const N: usize>(&mut self, key: Key<'_>, members: &[u8; N]) {
        self.k(key);
        self.out[self.pos] = b'{';
        self.pos += 1;
        self.put(members, N);
        self.push_level(OPENED);
    }

    #[inline(always)]
    pub(super) fn begin_array(&mut self, key: Key<'_>) {
        self.begin_object(key);
    }

    #[inline(always)]
    pub(super) fn item_u64(&mut self, v: u64) {
        self.out[self.pos] = b',';
        self.pos += 1;
        self.u64(v);
    }

    #[inline(always)]
    pub(super) fn push_level(&mut self, at: usize) {
        self.depth = (self.depth + 1).min(CURSOR_LEVELS - 1);
        self.open_at[self.depth] = at;
    }

    /// As [`JsonWriter::close`].
    #[inline(always)]
    pub(super) fn close(&mut self, open: u8, close: u8) {
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
    pub(super) fn end_object(&mut self) {
        self.close(b'{', b'}');
    }

    #[inline(always)]
    pub(super) fn end_array(&mut self) {
        self.close(b'[', b']');
    }
}
