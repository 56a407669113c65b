//! The receive loop does not allocate: a counting global allocator (this test binary only)
//! sees no allocation across `RecvBatch::recv` calls and reading their results, nor across
//! `SendBatch::send`. Loopback only; bounded in count and time. It counts only on the thread
//! that asked for it: the test harness's own threads may allocate at any time (a loaded CI
//! machine saw 4 such allocations).
#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferroflow_io::udp::{bind_udp, RecvBatch, RecvMode, SendBatch, SocketOptions, Transmit};
use ferroflow_io::Slab;

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

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn recv_and_send_do_not_allocate() {
    let rx = bind_udp("127.0.0.1:0".parse().unwrap(), &SocketOptions::default()).unwrap();
    let tx = bind_udp("127.0.0.1:0".parse().unwrap(), &SocketOptions::default()).unwrap();
    let mut slab = Slab::new(Slab::DEFAULT_SLOTS, Slab::DEFAULT_SLOT_BYTES);
    let mut rb = RecvBatch::new(RecvBatch::DEFAULT_CAPACITY);
    let mut sb = SendBatch::new(64);
    let payload = [0x5au8; 200];
    let msgs = [Transmit {
        dst: rx.local_addr,
        payload: &payload,
    }; 64];
    let start = Instant::now();
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let (mut sent, mut received, mut bytes, mut stamped) = (0usize, 0usize, 0usize, 0usize);
    for _ in 0..20 {
        let target = sent + 64;
        for _ in 0..1000 {
            if sent == target || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            sent += sb.send(&tx.socket, &msgs[64 - (target - sent)..]).unwrap();
        }
        for _ in 0..1000 {
            if received == sent || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            let n = rb
                .recv(&rx.socket, &mut slab, RecvMode::NonBlocking)
                .unwrap();
            for (meta, p) in rb.datagrams(&slab) {
                bytes += p.len();
                stamped += usize::from(meta.ts_ns.is_some());
            }
            let _ = rb.rxq_drops();
            received += n;
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(received, sent, "all datagrams arrived");
    assert_eq!(sent, 20 * 64);
    assert_eq!(bytes, received * payload.len());
    assert_eq!(stamped, received);
    assert_eq!(allocs, 0, "allocations in the send/receive loop");
}
