//! Thread control: `threads = None` uses rayon's global pool, `Some(n)` a
//! cached pool of exactly `n` threads, so `threads=` means the same on every call.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs `f` on a pool of `threads` threads (`None`: the global pool).
///
/// Pools are cached per calling thread: two callers asking for one thread
/// each get one thread each, instead of queueing on a shared one-thread pool.
pub fn install<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let Some(n) = threads else {
        return Ok(f());
    };
    if n == 0 {
        return Err(Error::value("threads", "must be at least 1 (or None for all cores)"));
    }
    thread_local! {
        static POOLS: RefCell<HashMap<usize, Arc<rayon::ThreadPool>>> = RefCell::default();
    }
    let pool = POOLS.with(|pools| -> Result<Arc<rayon::ThreadPool>> {
        if let Some(p) = pools.borrow().get(&n) {
            return Ok(Arc::clone(p));
        }
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("q2key-{i}"))
            .build()
            .map_err(|e| Error::value("threads", format!("could not start {n} threads: {e}")))?;
        let p = Arc::new(p);
        pools.borrow_mut().insert(n, Arc::clone(&p));
        Ok(p)
    })?;
    Ok(pool.install(f))
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
