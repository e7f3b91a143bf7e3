//! A generic bounded worker pool: named `std::thread`s that each own their mutable
//! inference state, fed by one bounded queue.
//!
//! Why not the async executor: whisper.cpp and ORT calls block for seconds and take
//! `&mut` state (DESIGN §4). Why bounded: every queue in Ember is sized by config and a
//! full queue is an immediate `Overloaded` (429), never unbounded growth.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Lowers the calling thread to the lowest CPU priority (Linux: nice 19). The chat,
/// embedding and image workers call it: when the cores are contended, the ASR threads
/// that serve live streams get nearly all of them, so a busy chat model cannot push a
/// live caption late. Failure (e.g. no permission) is logged and ignored.
pub fn lower_thread_priority() {
    if let Err(error) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::debug!(?error, "could not lower the worker thread's priority");
    }
}

/// Live-audio decodes (stream partials and finals) running right now, process-wide.
static LIVE_DECODES: AtomicUsize = AtomicUsize::new(0);
/// The longest one background step waits for live decodes to finish: background work
/// slows down under live load but never stops.
const MAX_YIELD: std::time::Duration = std::time::Duration::from_millis(100);

/// Marks a live decode as running until dropped (held by the ASR worker).
pub struct LiveDecode(());

impl LiveDecode {
    pub fn start() -> Self {
        LIVE_DECODES.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for LiveDecode {
    fn drop(&mut self) {
        LIVE_DECODES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Called by background workers (chat, embeddings, images) between steps: while a
/// live decode runs, wait (up to [`MAX_YIELD`]) so it has the cores to itself. Nice
/// 19 alone left live finals 1.8x slower under a chat + embedding load on 2 cores
/// (hyper-threads and caches are shared whatever the priority).
pub fn yield_to_live_audio() {
    let started = std::time::Instant::now();
    while LIVE_DECODES.load(Ordering::Relaxed) > 0 && started.elapsed() < MAX_YIELD {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

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

impl SubmitError {
    /// For engines with their own bounded channel instead of a [`WorkerPool`]: a
    /// failed `try_send` on a queue of `capacity`, named `pool`.
    pub fn from_try_send<T>(
        error: std::sync::mpsc::TrySendError<T>,
        pool: &str,
        capacity: usize,
    ) -> Self {
        match error {
            std::sync::mpsc::TrySendError::Full(_) => SubmitError::Full {
                pool: pool.to_string(),
                capacity,
            },
            std::sync::mpsc::TrySendError::Disconnected(_) => SubmitError::Closed {
                pool: pool.to_string(),
            },
        }
    }
}

/// Which lane a job waits in. Workers take the highest waiting lane first: a live
/// stream's final never queues behind other streams' partial hypotheses, and no live
/// decode queues behind a long upload's windows (realtime jobs take priority in the
/// shared workers). Each lane has its own capacity, so one kind of load cannot fill
/// another's lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Uploads and CLI jobs.
    #[default]
    Batch,
    /// Live-stream partial hypotheses.
    Partial,
    /// Live-stream finals (and decodes a client is waiting on).
    Realtime,
}

/// Counters a pool exposes for logs, health and admission decisions.
#[derive(Debug, Default)]
pub struct PoolStats {
    queued: AtomicUsize,
    running: AtomicUsize,
    panicked: AtomicUsize,
}

impl PoolStats {
    /// Jobs waiting in the queue (both lanes).
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

/// The two bounded lanes behind one lock; `closed` wakes the workers for shutdown.
struct Lanes<J> {
    realtime: VecDeque<J>,
    partial: VecDeque<J>,
    batch: VecDeque<J>,
    closed: bool,
}

/// The queue shared by the submitters and the workers.
struct JobQueue<J> {
    lanes: Mutex<Lanes<J>>,
    ready: Condvar,
}

impl<J> JobQueue<J> {
    fn lock(&self) -> MutexGuard<'_, Lanes<J>> {
        // A panic never happens while the lock is held (jobs run outside it), so a
        // poisoned lock still guards consistent lanes.
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// A fixed set of worker threads with a bounded job queue of two priority lanes.
pub struct WorkerPool<J: Send + 'static> {
    name: String,
    capacity: usize,
    queue: Arc<JobQueue<J>>,
    stats: Arc<PoolStats>,
    handles: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static> WorkerPool<J> {
    /// Starts `workers` threads named `{name}-{i}`. Each builds its own state with
    /// `make_state(i)` (on its own thread, so non-`Send` setup is fine) and then runs
    /// `handle(&mut state, job)` for every job. A panicking job is counted and the worker
    /// carries on: the job's reply channel is dropped, which its caller sees as a failure.
    /// `capacity` bounds each lane.
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
        let queue = Arc::new(JobQueue {
            lanes: Mutex::new(Lanes {
                realtime: VecDeque::new(),
                partial: VecDeque::new(),
                batch: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        let stats = Arc::new(PoolStats::default());
        let make_state = Arc::new(make_state);
        let handle = Arc::new(handle);
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers.max(1) {
            let worker_queue = Arc::clone(&queue);
            let stats = Arc::clone(&stats);
            let make_state = Arc::clone(&make_state);
            let handle = Arc::clone(&handle);
            let thread_name = format!("{name}-{index}");
            let spawned = std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || {
                    let mut state = make_state(index);
                    worker_loop(&worker_queue, &stats, |job| handle(&mut state, job));
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    queue.close();
                    return Err(e);
                }
            }
        }
        Ok(Self {
            name: name.to_string(),
            capacity: capacity.max(1),
            queue,
            stats,
            handles,
        })
    }

    /// Queues a batch job without blocking; a full lane is an error, not a wait.
    pub fn try_submit(&self, job: J) -> Result<(), SubmitError> {
        self.try_submit_with(Priority::Batch, job)
    }

    /// Queues a job in the given lane without blocking.
    pub fn try_submit_with(&self, priority: Priority, job: J) -> Result<(), SubmitError> {
        let mut lanes = self.queue.lock();
        if lanes.closed {
            return Err(SubmitError::Closed {
                pool: self.name.clone(),
            });
        }
        let lane = match priority {
            Priority::Realtime => &mut lanes.realtime,
            Priority::Partial => &mut lanes.partial,
            Priority::Batch => &mut lanes.batch,
        };
        if lane.len() >= self.capacity {
            return Err(SubmitError::Full {
                pool: self.name.clone(),
                capacity: self.capacity,
            });
        }
        lane.push_back(job);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        drop(lanes);
        self.queue.ready.notify_one();
        Ok(())
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

impl<J: Send + 'static> Drop for WorkerPool<J> {
    /// Lets the workers finish the queued jobs and exit; does not join them (a decode may
    /// take seconds and dropping happens on shutdown paths).
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Takes jobs (realtime, then partial, then batch) until the pool closes and the lanes are empty,
/// isolating panics per job.
fn worker_loop<J>(queue: &JobQueue<J>, stats: &PoolStats, mut run: impl FnMut(J)) {
    loop {
        let job = {
            let mut lanes = queue.lock();
            loop {
                if let Some(job) = lanes
                    .realtime
                    .pop_front()
                    .or_else(|| lanes.partial.pop_front())
                    .or_else(|| lanes.batch.pop_front())
                {
                    break job;
                }
                if lanes.closed {
                    return;
                }
                lanes = queue.ready.wait(lanes).unwrap_or_else(|p| p.into_inner());
            }
        };
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

    #[test]
    fn realtime_jobs_overtake_waiting_batch_jobs() {
        let (tx, rx) = channel();
        let (gate_tx, gate_rx) = channel::<()>();
        let gate = Mutex::new(gate_rx);
        let pool = WorkerPool::spawn(
            "prio",
            1,
            4,
            |_| (),
            move |_: &mut (), job: u32| {
                if job == 0 {
                    let _ = gate.lock().unwrap().recv();
                }
                tx.send(job).unwrap();
            },
        )
        .unwrap();
        pool.try_submit(0).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.stats().running() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        pool.try_submit(1).unwrap();
        pool.try_submit(2).unwrap();
        pool.try_submit_with(Priority::Partial, 4).unwrap();
        pool.try_submit_with(Priority::Realtime, 3).unwrap();
        gate_tx.send(()).unwrap();
        let order: Vec<u32> = (0..5)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(order, vec![0, 3, 4, 1, 2]);
    }
}
