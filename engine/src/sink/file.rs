//! JSON lines to stdout or a file: the embedded default. Each worker fills its own buffer and
//! appends it to the shared writer once per batch (one lock per batch, never per record).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroflow_codecs::FlowRecord;

use super::{Sink, SinkCounters, SinkError, SinkFactory};

/// Buffered bytes after which a worker writes before the batch ends.
const FLUSH_BYTES: usize = 1 << 20;

enum Target {
    Stdout(std::io::Stdout),
    File(File, PathBuf),
}

impl Target {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Target::Stdout(s) => {
                let mut l = s.lock();
                l.write_all(b)?;
                l.flush()
            }
            Target::File(f, _) => f.write_all(b),
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        match self {
            Target::Stdout(s) => s.lock().flush(),
            Target::File(f, _) => f.sync_data(),
        }
    }

    fn name(&self) -> String {
        match self {
            Target::Stdout(_) => "stdout".into(),
            Target::File(_, p) => p.display().to_string(),
        }
    }
}

/// Factory of [`LineSink`]s sharing one output.
pub struct LinesFactory {
    target: Arc<Mutex<Target>>,
}

impl LinesFactory {
    pub fn stdout() -> Self {
        LinesFactory {
            target: Arc::new(Mutex::new(Target::Stdout(std::io::stdout()))),
        }
    }

    /// Append to `path` (created if missing).
    pub fn file(path: &Path) -> Result<Self, SinkError> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| SinkError::Io {
                what: format!("opening output file {}", path.display()),
                source: e,
            })?;
        Ok(LinesFactory {
            target: Arc::new(Mutex::new(Target::File(f, path.to_path_buf()))),
        })
    }
}

impl SinkFactory for LinesFactory {
    fn make(&self, _worker: usize, _workers: usize) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(LineSink {
            target: self.target.clone(),
            buf: Vec::with_capacity(FLUSH_BYTES + 64 * 1024),
            pending: 0,
            counters: SinkCounters::default(),
            latencies: Vec::with_capacity(1024),
            pending_recv: Vec::with_capacity(1024),
        }))
    }

    fn finish(&self) -> Result<(), SinkError> {
        let mut t = self.target.lock().unwrap_or_else(|p| p.into_inner());
        let name = t.name();
        t.sync().map_err(|e| SinkError::Io {
            what: format!("syncing {name}"),
            source: e,
        })
    }
}

/// One worker's line writer.
pub struct LineSink {
    target: Arc<Mutex<Target>>,
    buf: Vec<u8>,
    pending: u64,
    counters: SinkCounters,
    /// receive times of the documents in `buf` (sampled: at most 1024 per flush)
    pending_recv: Vec<u64>,
    latencies: Vec<u64>,
}

impl LineSink {
    fn write_out(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = {
            let mut t = self.target.lock().unwrap_or_else(|p| p.into_inner());
            t.write_all(&self.buf).map_err(|e| SinkError::Io {
                what: format!("writing {}", t.name()),
                source: e,
            })
        };
        match r {
            Ok(()) => {
                self.counters.delivered += self.pending;
                let now = crate::now_ns();
                for &t in &self.pending_recv {
                    if self.latencies.len() < self.latencies.capacity() {
                        self.latencies.push(now.saturating_sub(t));
                    }
                }
            }
            Err(_) => self.counters.failed += self.pending,
        }
        self.counters.in_flight = 0;
        self.pending = 0;
        self.pending_recv.clear();
        self.buf.clear();
        r
    }
}

impl Sink for LineSink {
    #[inline]
    fn write(
        &mut self,
        _record: &FlowRecord<'_>,
        doc: &[u8],
        recv_ns: u64,
    ) -> Result<(), SinkError> {
        self.buf.extend_from_slice(doc);
        self.buf.push(b'\n');
        self.pending += 1;
        self.counters.accepted += 1;
        self.counters.in_flight += 1;
        if self.pending_recv.len() < self.pending_recv.capacity() {
            self.pending_recv.push(recv_ns);
        }
        if self.buf.len() >= FLUSH_BYTES {
            self.write_out()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), SinkError> {
        self.write_out()
    }

    fn close(&mut self, _timeout: Duration) -> Result<(), SinkError> {
        self.write_out()
    }

    fn counters(&self) -> SinkCounters {
        self.counters
    }

    fn drain_latencies(&mut self, f: &mut dyn FnMut(u64)) {
        for &l in &self.latencies {
            f(l);
        }
        self.latencies.clear();
    }
}
