//! The per-record path allocates nothing: decoding a datagram whose templates are known and
//! encoding every record into a reused buffer makes no heap allocation. A counting global
//! allocator proves it. It counts only on the thread that asked for it: the test harness's own
//! threads may allocate at any time (a loaded CI machine saw 4 such allocations).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use ferroflow_codecs::json::{encode, EncodeOptions};
use ferroflow_codecs::{Decoder, DecoderConfig};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn ipfix(sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0, 10, 0, 0];
    b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    for (id, body) in sets {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        b.extend_from_slice(body);
    }
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn template() -> Vec<u8> {
    // IPv6 flow with a variable-length string, a MAC, an MPLS label, ms times, reverse bytes
    let fields: &[(u16, u16)] = &[
        (27, 16),
        (28, 16),
        (7, 2),
        (11, 2),
        (4, 1),
        (6, 2),
        (1, 8),
        (2, 8),
        (10, 4),
        (14, 4),
        (56, 6),
        (70, 3),
        (152, 8),
        (153, 8),
        (82, 65535),
    ];
    let mut b = 300u16.to_be_bytes().to_vec();
    b.extend_from_slice(&((fields.len() + 1) as u16).to_be_bytes());
    for (i, l) in fields {
        b.extend_from_slice(&i.to_be_bytes());
        b.extend_from_slice(&l.to_be_bytes());
    }
    b.extend_from_slice(&[0x80, 0x01, 0, 8, 0, 0, 0x72, 0x79]); // reverse octetDeltaCount
    b
}

fn record(i: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i]);
    b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, i]);
    b.extend_from_slice(&[0xc3, 0x50, 0x01, 0xbb, 6, 0, 0x1b]);
    b.extend_from_slice(&123_456u64.to_be_bytes());
    b.extend_from_slice(&99u64.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 4]);
    b.extend_from_slice(&[0, 0x1b, 0x21, 0x3c, 0x9d, 0xf8, 0x01, 0x23, 0x41]);
    b.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
    b.extend_from_slice(&1_700_000_001_000u64.to_be_bytes());
    b.extend_from_slice(&[5, b'e', b't', b'h', b'"', b'0']);
    b.extend_from_slice(&7u64.to_be_bytes());
    b
}

fn v5() -> Vec<u8> {
    let mut b = vec![0u8; 24 + 30 * 48];
    b[1] = 5;
    b[3] = 30;
    for i in 0..30 {
        let r = &mut b[24 + i * 48..][..48];
        r[0..4].copy_from_slice(&[10, 0, 0, i as u8]);
        r[4..8].copy_from_slice(&[10, 0, 1, i as u8]);
        r[38] = 17;
    }
    b
}

#[test]
fn decode_and_encode_do_not_allocate_per_record() {
    let mut d = Decoder::new(DecoderConfig::default());
    let exporter = "192.0.2.1:4739".parse().unwrap();
    let tpl_msg = ipfix(&[(2, template())]);
    let mut data = Vec::new();
    for i in 0..20 {
        data.extend(record(i));
    }
    let data_msg = ipfix(&[(300, data)]);
    let v5 = v5();
    let opts = EncodeOptions::default();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut docs = 0u64;
    let _ = d.decode(exporter, 1, &tpl_msg, &mut |_| {});
    // warm up: hash maps of the exporter's state exist after the first data packet
    for _ in 0..3 {
        let _ = d.decode(exporter, 2, &data_msg, &mut |r| encode(r, &opts, &mut buf));
        let _ = d.decode(exporter, 2, &v5, &mut |r| encode(r, &opts, &mut buf));
        buf.clear();
    }
    let before = ALLOCS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    for _ in 0..100 {
        let _ = d.decode(exporter, 3, &data_msg, &mut |r| {
            encode(r, &opts, &mut buf);
            docs += 1;
        });
        let _ = d.decode(exporter, 3, &v5, &mut |r| {
            encode(r, &opts, &mut buf);
            docs += 1;
        });
        buf.clear();
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::SeqCst) - before;
    assert_eq!(docs, 100 * 50);
    assert_eq!(d.stats().errors_total(), 0);
    assert_eq!(allocs, 0, "{allocs} allocations for {docs} records");
    // and the documents are what we think they are
    let _ = d.decode(exporter, 4, &data_msg, &mut |r| {
        buf.clear();
        encode(r, &opts, &mut buf);
    });
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["source"]["ip"], "2001:db8::13");
    assert_eq!(v["netflow"]["interface_name"], "eth\"0");
    assert_eq!(v["netflow"]["reverse_octet_delta_count"], 7);
    assert_eq!(v["flow"]["mpls_labels"][0], 0x1234);
    assert_eq!(v["network"]["community_id"].as_str().unwrap().len(), 30);
}
