//! Worker threads: one current-thread tokio runtime per core. The accept loop hands each
//! connection to the workers in turn; the connection, its requests and their registry
//! connections (one upstream pool per worker, [`crate::proxy::upstream`]) then stay on
//! that thread, so a request's hand-offs between tasks wake no other thread (issue 21's
//! profile: the kernel's wake-ups were half of the gate's time on the work-stealing
//! runtime).

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

/// Work for a worker, run inside its runtime (so it may `tokio::spawn` there).
pub type Job = Box<dyn FnOnce() + Send>;

/// How long a stopping worker waits for its blocking tasks (a password check is at most
/// about 100 ms).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

thread_local! {
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The number of workers: one per CPU this process may run on, at most 64.
pub fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .clamp(1, 64)
    })
}

/// The worker this thread is, if it is one.
pub fn current() -> Option<usize> {
    INDEX.with(Cell::get)
}

/// The running workers; dropping it stops them (their connections end).
pub struct Workers {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl Workers {
    /// Starts [`count`] workers.
    pub fn start() -> std::io::Result<Workers> {
        let mut workers = Workers {
            senders: Vec::new(),
            threads: Vec::new(),
            next: 0,
        };
        for index in 0..count() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                // Nothing left to run: the access lines gathered meanwhile go out.
                .on_thread_park(crate::log_batch::flush)
                .build()?;
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let thread = std::thread::Builder::new()
                .name(format!("gate-worker-{index}"))
                .spawn(move || {
                    INDEX.with(|i| i.set(Some(index)));
                    crate::log_batch::enable();
                    runtime.block_on(async move {
                        while let Some(job) = rx.recv().await {
                            job();
                        }
                    });
                    runtime.shutdown_timeout(SHUTDOWN_WAIT);
                    crate::log_batch::flush();
                })?;
            workers.senders.push(tx);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Gives `job` to the next worker in turn; `Err(job)` if none takes work any more.
    pub fn hand(&mut self, mut job: Job) -> Result<(), Job> {
        for _ in 0..self.senders.len() {
            let i = self.next;
            self.next = (i + 1) % self.senders.len();
            match self.senders[i].send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        Err(job)
    }

    /// Stops the workers (their remaining connections are dropped) and waits for them.
    pub async fn stop(self) {
        let Workers {
            senders, threads, ..
        } = self;
        drop(senders);
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    tracing::error!("a worker thread panicked");
                }
            }
        });
        let _ = joined.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_workers_in_turn() {
        let mut workers = Workers::start().expect("workers start");
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..count() * 2 {
            let tx = tx.clone();
            let job: Job = Box::new(move || {
                let on = current();
                // A job runs inside its worker's runtime: it can spawn there.
                tokio::spawn(async move {
                    let _ = tx.send((on, current()));
                });
            });
            assert!(workers.hand(job).is_ok());
        }
        drop(tx);
        let mut seen = vec![0; count()];
        while let Some((ran, spawned)) = rx.recv().await {
            let ran = ran.expect("a job runs on a worker");
            assert_eq!(Some(ran), spawned, "a spawned task stays on its worker");
            seen[ran] += 1;
        }
        assert_eq!(seen, vec![2; count()], "each worker got its turn");
        assert_eq!(current(), None, "the test's own thread is no worker");
        workers.stop().await;
    }
}
