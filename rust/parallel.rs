//! Thread control: `threads = None` uses rayon's global pool, `Some(n)` a
//! pool of exactly `n` threads, so `threads=` means the same on every call.
//!
//! Pools of `n` threads are leased: a call takes an idle pool of its size (or
//! builds one) for itself alone and returns it when done, so two callers
//! asking for one thread each get one thread each instead of queueing on a
//! shared pool. Idle pools are kept, most recently returned first, up to
//! [`MAX_IDLE_THREADS`] threads in total; older ones are dropped (their
//! threads exit), so any mix of `threads=` values leaves a bounded number of
//! threads behind.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::sync::Mutex;

/// The most threads one call may ask for with `threads=`.
///
/// A fixed number, so that the same call is accepted on every machine: far
/// above the useful count on common hardware (the work is memory-bound well
/// before that), and cheap to start (a few milliseconds), while a typo such as
/// `threads=2**63` fails at once instead of spawning threads until the system
/// runs out. `threads=None` uses every core whatever their number.
pub const MAX_THREADS: usize = 256;

/// The most threads kept alive in idle pools between calls: one pool of
/// [`MAX_THREADS`] fits, so any single size a program keeps using stays cached.
pub const MAX_IDLE_THREADS: usize = MAX_THREADS;

/// Idle pools, least recently returned first.
static IDLE: Mutex<Vec<rayon::ThreadPool>> = Mutex::new(Vec::new());

/// Runs `f` on a pool of `threads` threads (`None`: the global pool).
///
/// `threads` must be in `1..=MAX_THREADS` (a `Value` error naming `threads`
/// otherwise, before any thread starts).
pub fn install<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let Some(n) = threads else {
        return Ok(f());
    };
    if n == 0 {
        return Err(Error::value("threads", "must be at least 1 (or None for all cores)"));
    }
    if n > MAX_THREADS {
        return Err(Error::value(
            "threads",
            format!("must be at most {MAX_THREADS} (or None for all cores), got {n}"),
        ));
    }
    let lease = Lease::take(n)?;
    Ok(lease.pool().install(f))
}

/// A pool of one size held by one call; returned to the idle list on drop
/// (also when the work panics).
struct Lease(Option<rayon::ThreadPool>);

impl Lease {
    /// The most recently returned idle pool of `n` threads, or a new one.
    fn take(n: usize) -> Result<Lease> {
        let idle = {
            let mut pools = lock_idle();
            let found = pools.iter().rposition(|p| p.current_num_threads() == n);
            found.map(|i| pools.remove(i))
        };
        let pool = match idle {
            Some(p) => p,
            None => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("q2key-{i}"))
                .build()
                .map_err(|e| Error::value("threads", format!("could not start {n} threads: {e}")))?,
        };
        Ok(Lease(Some(pool)))
    }

    fn pool(&self) -> &rayon::ThreadPool {
        self.0.as_ref().expect("a lease holds its pool until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(pool) = self.0.take() else { return };
        let evicted = {
            let mut pools = lock_idle();
            pools.push(pool);
            let mut total: usize = pools.iter().map(rayon::ThreadPool::current_num_threads).sum();
            let mut cut = 0;
            while total > MAX_IDLE_THREADS {
                total -= pools[cut].current_num_threads();
                cut += 1;
            }
            pools.drain(..cut).collect::<Vec<_>>()
        };
        // Dropped outside the lock: a pool's drop only tells its threads to exit.
        drop(evicted);
    }
}

/// The idle list; a panic while it was held cannot leave it inconsistent
/// (every update is a single push, remove or drain), so poisoning is ignored.
fn lock_idle() -> std::sync::MutexGuard<'static, Vec<rayon::ThreadPool>> {
    IDLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `work(first_row, rows_in, rows_out)` over row chunks of two row-major
/// outputs, in parallel when there is enough work. Returns the error of the
/// lowest failing chunk, so the reported row does not depend on scheduling.
pub(crate) fn for_row_chunks<A: Send, B: Send, C: Send>(
    rows: usize,
    rows_per_task: usize,
    (a, a_width): (&mut [A], usize),
    (b, b_width): (&mut [B], usize),
    (c, c_width): (&mut [C], usize),
    work: impl Fn(usize, &mut [A], &mut [B], &mut [C]) -> Result<()> + Sync,
) -> Result<()> {
    let per = rows_per_task.max(1);
    if rows <= per {
        return work(0, a, b, c);
    }
    let failure = a
        .par_chunks_mut(per * a_width)
        .zip(b.par_chunks_mut(per * b_width))
        .zip(c.par_chunks_mut(per * c_width))
        .enumerate()
        .find_map_first(|(i, ((a, b), c))| work(i * per, a, b, c).err());
    failure.map_or(Ok(()), Err)
}
