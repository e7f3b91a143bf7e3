//! A generic bounded worker pool: named `std::thread`s that each own their mutable
//! inference state, fed by one bounded queue.
//!
//! Why not the async executor: whisper.cpp and ORT calls block for seconds and take
//! `&mut` state (DESIGN §4). Why bounded: every queue in Ember is sized by config and a
//! full queue is an immediate `Overloaded` (429), never unbounded growth.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Why a job could not be queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    /// Every slot of the queue is taken: the caller answers 429.
    #[error("the {pool} queue is full ({capacity} jobs waiting)")]
    Full { pool: String, capacity: usize },
    /// All workers have exited (shutdown or a failed start).
    #[error("the {pool} workers are not running")]
    Closed { pool: String },
}

/// Counters a pool exposes for logs, health and admission decisions.
#[derive(Debug, Default)]
pub struct PoolStats {
    queued: AtomicUsize,
    running: AtomicUsize,
    panicked: AtomicUsize,
}

impl PoolStats {
    /// Jobs waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
    /// Jobs being processed right now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }
    /// Jobs whose handler panicked (the worker survived).
    pub fn panicked(&self) -> usize {
        self.panicked.load(Ordering::Relaxed)
    }
}

/// A fixed set of worker threads with a bounded job queue.
pub struct WorkerPool<J: Send + 'static> {
    name: String,
    capacity: usize,
    sender: SyncSender<J>,
    stats: Arc<PoolStats>,
    handles: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static> WorkerPool<J> {
    /// Starts `workers` threads named `{name}-{i}`. Each builds its own state with
    /// `make_state(i)` (on its own thread, so non-`Send` setup is fine) and then runs
    /// `handle(&mut state, job)` for every job. A panicking job is counted and the worker
    /// carries on: the job's reply channel is dropped, which its caller sees as a failure.
    pub fn spawn<S, F, H>(
        name: &str,
        workers: usize,
        capacity: usize,
        make_state: F,
        handle: H,
    ) -> std::io::Result<Self>
    where
        F: Fn(usize) -> S + Send + Sync + 'static,
        H: Fn(&mut S, J) + Send + Sync + 'static,
    {
        let (sender, receiver) = sync_channel::<J>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let stats = Arc::new(PoolStats::default());
        let make_state = Arc::new(make_state);
        let handle = Arc::new(handle);
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let stats = Arc::clone(&stats);
            let make_state = Arc::clone(&make_state);
            let handle = Arc::clone(&handle);
            let thread_name = format!("{name}-{index}");
            handles.push(
                std::thread::Builder::new()
                    .name(thread_name)
                    .spawn(move || {
                        let mut state = make_state(index);
                        worker_loop(&receiver, &stats, |job| handle(&mut state, job));
                    })?,
            );
        }
        Ok(Self {
            name: name.to_string(),
            capacity,
            sender,
            stats,
            handles,
        })
    }

    /// Queues a job without blocking; a full queue is an error, not a wait.
    pub fn try_submit(&self, job: J) -> Result<(), SubmitError> {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                Err(match error {
                    TrySendError::Full(_) => SubmitError::Full {
                        pool: self.name.clone(),
                        capacity: self.capacity,
                    },
                    TrySendError::Disconnected(_) => SubmitError::Closed {
                        pool: self.name.clone(),
                    },
                })
            }
        }
    }

    /// Live counters of this pool.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.handles.len()
    }
}

/// Takes jobs until every sender is gone, isolating panics per job.
fn worker_loop<J>(receiver: &Mutex<Receiver<J>>, stats: &PoolStats, mut run: impl FnMut(J)) {
    loop {
        let next = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else { return };
        stats.queued.fetch_sub(1, Ordering::Relaxed);
        stats.running.fetch_add(1, Ordering::Relaxed);
        if catch_unwind(AssertUnwindSafe(|| run(job))).is_err() {
            stats.panicked.fetch_add(1, Ordering::Relaxed);
            tracing::error!(thread = ?std::thread::current().name(), "worker job panicked");
        }
        stats.running.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn runs_jobs_with_per_worker_state() {
        let (tx, rx) = channel();
        let pool = WorkerPool::spawn(
            "t",
            2,
            8,
            |i| i * 100,
            move |state: &mut usize, job: u32| {
                *state += 1;
                tx.send((job, *state)).unwrap();
            },
        )
        .unwrap();
        for j in 0..6 {
            pool.try_submit(j).unwrap();
        }
        let mut got: Vec<u32> = (0..6)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap().0)
            .collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(pool.workers(), 2);
    }

    #[test]
    fn full_queue_is_rejected_not_blocked() {
        let (gate_tx, gate_rx) = channel::<()>();
        let gate = Mutex::new(gate_rx);
        let pool = WorkerPool::spawn(
            "busy",
            1,
            1,
            |_| (),
            move |_: &mut (), _job: u32| {
                let _ = gate.lock().unwrap().recv();
            },
        )
        .unwrap();
        pool.try_submit(1).unwrap();
        // Wait until the worker picked job 1, so the queue slot is free again.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.stats().running() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        pool.try_submit(2).unwrap();
        let err = pool.try_submit(3).unwrap_err();
        assert_eq!(
            err,
            SubmitError::Full {
                pool: "busy".into(),
                capacity: 1
            }
        );
        assert_eq!(pool.stats().queued(), 1);
        gate_tx.send(()).unwrap();
        gate_tx.send(()).unwrap();
    }

    #[test]
    fn panicking_job_does_not_kill_the_worker() {
        let (tx, rx) = channel();
        let pool = WorkerPool::spawn(
            "panicky",
            1,
            4,
            |_| (),
            move |_: &mut (), job: u32| {
                if job == 0 {
                    panic!("boom");
                }
                tx.send(job).unwrap();
            },
        )
        .unwrap();
        pool.try_submit(0).unwrap();
        pool.try_submit(7).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        assert_eq!(pool.stats().panicked(), 1);
    }
}
