//! Threads kept between calls that share out work by index: the pyramid levels of a detection
//! pass, the faces of a frame. Spawning and joining scoped threads on every call cost 0.33 M of a
//! region pass's 4.76 M Cortex-A72 instructions; a thread pool that spins while idle (rayon) cost
//! as much (BENCHMARKS.md). These threads sleep on a condition variable between calls, and the
//! caller does a share of the work itself.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The task of one call, its lifetime erased: it is only called between [`Pool::run`] posting it
/// and `run` seeing every worker finish with it, while the borrow it came from is alive.
#[derive(Clone, Copy)]
struct Job {
    task: *const (dyn Fn(usize) + Sync),
    n: usize,
}

// SAFETY: the task is `Sync`; the pointer is only dereferenced while `Pool::run` keeps the
// borrowed closure alive (see `Job`).
unsafe impl Send for Job {}

struct State {
    job: Option<Job>,
    /// Counts the jobs posted; a worker runs each once.
    generation: u64,
    /// Workers done with the current job.
    finished: usize,
    panicked: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Workers wait here for a job (or the shutdown).
    wake: Condvar,
    /// `run` waits here for the workers to finish.
    done: Condvar,
    /// The next index of the current job to take.
    next: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Tasks run outside the lock and their panics are caught: a poisoned lock can only come
        // from a panic in this module's own bookkeeping, after which the state is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the job's indices as they are taken until none are left; false if one panicked.
    fn work(&self, job: Job) -> bool {
        // SAFETY: see `Job`: `run` has not returned (it waits for this worker).
        let task = unsafe { &*job.task };
        catch_unwind(AssertUnwindSafe(|| loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= job.n {
                break;
            }
            task(i);
        }))
        .is_ok()
    }
}

/// `workers` threads, plus the calling thread, sharing out the indices of one call at a time.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// One call at a time (a cascade shared by threads that detect at once).
    calls: Mutex<()>,
}

impl Pool {
    pub(crate) fn new(workers: usize) -> Pool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { job: None, generation: 0, finished: 0, panicked: false, shutdown: false }),
            wake: Condvar::new(),
            done: Condvar::new(),
            next: AtomicUsize::new(0),
        });
        let workers = (0..workers)
            .map(|_| {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let mut seen = 0;
                    loop {
                        let job = {
                            let mut st = shared.lock();
                            while st.generation == seen && !st.shutdown {
                                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                            }
                            if st.shutdown {
                                return;
                            }
                            seen = st.generation;
                            st.job.expect("a job comes with its generation")
                        };
                        let ok = shared.work(job);
                        let mut st = shared.lock();
                        st.panicked |= !ok;
                        st.finished += 1;
                        shared.done.notify_one();
                    }
                })
            })
            .collect();
        Pool { shared, workers, calls: Mutex::new(()) }
    }

    /// The threads of the pool, the caller's not counted.
    pub(crate) fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Calls `task(i)` for every `i` in `0..n`, in increasing order of start, on this thread and
    /// the pool's; returns once every call has returned. Panics (then) if one of them panicked.
    pub(crate) fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        let _one = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: only the lifetime is erased; `Wait` below keeps `run` (and so the borrow of
        // `task`) from ending before every worker is done with the job, even if `task` panics on
        // this thread.
        let task: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(task) };
        let job = Job { task, n };
        {
            let mut st = self.shared.lock();
            // Every worker finished the last job before its `run` returned: none reads `next`.
            self.shared.next.store(0, Ordering::Relaxed);
            st.job = Some(job);
            st.generation += 1;
            st.finished = 0;
            st.panicked = false;
        }
        self.shared.wake.notify_all();
        /// Waits for the workers when dropped: on return and on unwinding.
        struct Wait<'a>(&'a Pool);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                let mut st = self.0.shared.lock();
                while st.finished < self.0.workers.len() {
                    st = self.0.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.job = None;
            }
        }
        let wait = Wait(self);
        let ok = self.shared.work(job);
        drop(wait);
        let panicked = std::mem::take(&mut self.shared.lock().panicked);
        // Tasks are this crate's (a pyramid level, a batch of faces): a panic is a bug, not input.
        assert!(ok && !panicked, "a worker thread panicked");
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[test]
    fn every_index_runs_once_per_call_on_several_threads() {
        let pool = Pool::new(3);
        for n in [0, 1, 5, 64] {
            let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            let threads = Mutex::new(std::collections::HashSet::new());
            pool.run(n, &|i| {
                runs[i].fetch_add(1, Ordering::Relaxed);
                threads.lock().unwrap().insert(std::thread::current().id());
                // Long enough that the other threads take indices too.
                std::thread::sleep(std::time::Duration::from_millis(2));
            });
            assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1), "n = {n}");
            if n == 64 {
                assert!(threads.lock().unwrap().len() > 1, "one thread did it all");
            }
        }
    }

    #[test]
    fn a_panicking_task_panics_the_caller_after_the_others_and_the_pool_goes_on() {
        let pool = Pool::new(2);
        let done = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(8, &|i| {
                std::thread::sleep(std::time::Duration::from_millis(1));
                assert!(i != 3, "task 3 fails");
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(r.is_err());
        // Every other index ran (the thread that panicked stops taking indices; the others go
        // on), and the pool still works.
        assert_eq!(done.load(Ordering::Relaxed), 7);
        let again = AtomicUsize::new(0);
        pool.run(10, &|_| {
            again.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(again.load(Ordering::Relaxed), 10);
    }
}
