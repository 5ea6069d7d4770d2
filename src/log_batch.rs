//! Log lines of the worker threads ([`crate::server::workers`]), written to stderr in
//! batches: a worker keeps its lines until it has nothing left to run (tokio's
//! `on_thread_park`, just before it waits for the next event) or [`FLUSH_AT`] bytes
//! have gathered, then writes them with one `write(2)`. Under load that is one system
//! call for many access lines where it was one per request (issue 21's profile); an
//! idle gate still writes each line at once, since the worker parks right after it.
//!
//! Every other thread (the main runtime, the blocking pool, the CLI) writes its lines
//! straight to stderr as before. A worker's lines are written when it stops, at the
//! latest (thread exit); only a crash of the process can lose the few not yet written.

use std::cell::RefCell;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// A batch is written once it holds this many bytes (about a hundred access lines).
pub const FLUSH_AT: usize = 32 * 1024;

/// Where a batch goes: stderr, or a test's sink.
type Sink = fn(&[u8]);

thread_local! {
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

struct Batch {
    lines: Vec<u8>,
    sink: Sink,
}

impl Batch {
    fn write_out(&mut self) {
        if !self.lines.is_empty() {
            (self.sink)(&self.lines);
            self.lines.clear();
        }
    }
}

impl Drop for Batch {
    /// The thread ends: its last lines are written.
    fn drop(&mut self) {
        self.write_out();
    }
}

fn to_stderr(bytes: &[u8]) {
    // As tracing's own writer: a log that cannot be written is not the request's failure.
    let _ = io::stderr().lock().write_all(bytes);
}

/// Batches this thread's log lines from now on (a worker calls it as it starts).
pub fn enable() {
    enable_with(to_stderr);
}

fn enable_with(sink: Sink) {
    BATCH.with(|b| {
        *b.borrow_mut() = Some(Batch {
            lines: Vec::with_capacity(FLUSH_AT),
            sink,
        });
    });
}

/// Writes this thread's batched lines now (before the worker parks, and as it stops).
pub fn flush() {
    let _ = BATCH.try_with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            if let Some(batch) = b.as_mut() {
                batch.write_out();
            }
        }
    });
}

/// The log writer: a worker's lines join its batch, other threads' go to stderr.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line
    }
}

/// One formatted line (tracing writes each event with one `write_all`).
#[derive(Debug)]
pub struct Line;

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let batched = BATCH
            .try_with(|b| {
                let Ok(mut b) = b.try_borrow_mut() else {
                    return false;
                };
                let Some(batch) = b.as_mut() else {
                    return false;
                };
                batch.lines.extend_from_slice(bytes);
                if batch.lines.len() >= FLUSH_AT {
                    batch.write_out();
                }
                true
            })
            .unwrap_or(false);
        if !batched {
            io::stderr().lock().write_all(bytes)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static WRITTEN: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    fn record(bytes: &[u8]) {
        WRITTEN.lock().expect("test sink").push(bytes.to_vec());
    }

    fn written() -> Vec<Vec<u8>> {
        std::mem::take(&mut *WRITTEN.lock().expect("test sink"))
    }

    #[test]
    fn lines_wait_for_a_flush_a_full_batch_or_the_thread_end() {
        std::thread::spawn(|| {
            enable_with(record);
            Line.write_all(b"one\n").expect("batched");
            Line.write_all(b"two\n").expect("batched");
            assert!(written().is_empty(), "nothing written before a flush");
            flush();
            assert_eq!(
                written(),
                vec![b"one\ntwo\n".to_vec()],
                "one write for both"
            );
            flush();
            assert!(written().is_empty(), "an empty batch writes nothing");

            let long = vec![b'x'; FLUSH_AT];
            Line.write_all(b"head\n").expect("batched");
            Line.write_all(&long).expect("batched");
            let full = written();
            assert_eq!(full.len(), 1, "a full batch is written at once");
            assert_eq!(full[0].len(), FLUSH_AT + 5);

            Line.write_all(b"last\n").expect("batched");
        })
        .join()
        .expect("test thread");
        assert_eq!(
            written(),
            vec![b"last\n".to_vec()],
            "the thread's end writes the rest"
        );
    }
}
