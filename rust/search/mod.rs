//! Exact k-nearest-neighbour search of packed codes by Lee distance.

pub(crate) mod asym;
pub(crate) mod blocks;
pub(crate) mod lee;
pub(crate) mod topk;

use crate::check::{check_k, check_len, check_rows};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use blocks::top_k_blocks;
use rayon::prelude::*;
use topk::{select_by_counting, TopK};

/// Above this k, selection counts a full distance histogram instead of inserting.
const COUNTING_K: usize = 256;
/// With fewer queries than threads, the database is split into shards of at
/// least this many rows searched in parallel, and the shards' top-k merged.
const SHARD_MIN_ROWS: usize = 32 * 1024;

/// Bit `j` set for each `flags[j]` that is 1 (every flag 0 or 1): a multiply
/// moves the low bit of each of eight bytes into the top byte, in order.
/// (Tests that fill 0/1 flags sixteen at a time vectorise; the rows or
/// lists that pass are then visited by their bits.)
#[inline(always)]
pub(crate) fn flag_bits(flags: [u8; 16]) -> u32 {
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let word = u128::from_le_bytes(flags);
    let [lo, hi] = [word as u64, (word >> 64) as u64].map(|half| (half.wrapping_mul(GATHER) >> 56) as u32);
    lo | hi << 8
}

/// Number of result columns for `k` over `n` database rows: `min(k, n)`.
pub fn result_columns(k: usize, n: usize) -> usize {
    k.min(n)
}

fn queries_per_task(nq: usize) -> usize {
    // One chunk per thread, up to 1024 queries: every chunk transposes each
    // database block once, so a larger chunk spreads that over more queries.
    let threads = rayon::current_num_threads().max(1);
    nq.div_ceil(threads).clamp(1, 1024)
}

/// Exact top-`k` of each query row among the database rows (codes of `width`
/// bytes). Writes `min(k, N)` columns per query into `dist` and `rows`,
/// ascending by distance, ties by lower row; returns that column count.
pub fn search(queries: &[u8], db: &[u8], width: usize, k: usize, dist: &mut [u32], rows: &mut [i64]) -> Result<usize> {
    search_with(Kernels::active(), queries, db, width, k, dist, rows)
}

/// [`search`] with the given kernels (for comparing backends).
pub fn search_with(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    k: usize,
    dist: &mut [u32],
    rows: &mut [i64],
) -> Result<usize> {
    search_rows(kernels, queries, db, width, k, None, None, dist, rows)
}

/// [`search`] among the rows whose bit is set in `mask` (bit `r % 8` of
/// `mask[r / 8]` for row `r`; `⌈N/8⌉` bytes, bits past row N ignored). Writes
/// `min(k, allowed rows)` columns per query and returns that count; the rows
/// are database rows, so the result equals searching the allowed rows
/// gathered in order, with rows renumbered back.
pub fn search_masked(
    queries: &[u8],
    db: &[u8],
    width: usize,
    k: usize,
    mask: &[u8],
    dist: &mut [u32],
    rows: &mut [i64],
) -> Result<usize> {
    search_masked_with(Kernels::active(), queries, db, width, k, mask, dist, rows)
}

/// [`search_masked`] with the given kernels.
#[allow(clippy::too_many_arguments)]
pub fn search_masked_with(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    k: usize,
    mask: &[u8],
    dist: &mut [u32],
    rows: &mut [i64],
) -> Result<usize> {
    search_rows(kernels, queries, db, width, k, Some(mask), None, dist, rows)
}

// The crate's search API for the index (and nothing else outside this
// module): a [`RowScope`] says which rows may be returned and how ties break;
// [`scoped_columns`] sizes the outputs of [`search_scoped`] before it runs.

/// Which database rows a search may return and how equal distances are ordered.
#[derive(Clone, Copy, Default)]
pub(crate) struct RowScope<'a> {
    /// Rows allowed (bit `r % 8` of `mask[r / 8]`, `⌈N/8⌉` bytes); all when `None`.
    pub mask: Option<&'a [u8]>,
    /// Distinct tie-break keys per row (e.g. ids); by row when `None`.
    pub tie_keys: Option<&'a [u64]>,
}

impl RowScope<'_> {
    /// Rows this scope allows among the first `n`.
    pub(crate) fn allowed(&self, n: usize) -> usize {
        self.mask.map_or(n, |m| allowed_rows(m, n))
    }
}

/// Result columns of a search for `k` over `n` rows in `scope`:
/// `min(k, allowed rows)`. The mask must hold `⌈n/8⌉` bytes.
pub(crate) fn scoped_columns(k: usize, n: usize, scope: RowScope<'_>) -> usize {
    result_columns(k, scope.allowed(n))
}

/// [`search_with`] restricted to `scope`; `rows` receives database rows.
/// Checks every buffer like the public entry points.
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_scoped(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    k: usize,
    scope: RowScope<'_>,
    dist: &mut [u32],
    rows: &mut [i64],
) -> Result<usize> {
    search_rows(kernels, queries, db, width, k, scope.mask, scope.tie_keys, dist, rows)
}

/// Rows allowed by `mask` among the first `n` (bits past `n` not counted).
fn allowed_rows(mask: &[u8], n: usize) -> usize {
    let full: usize = mask[..n / 8].iter().map(|b| b.count_ones() as usize).sum();
    let tail = if n.is_multiple_of(8) {
        0
    } else {
        (mask[n / 8] & ((1u8 << (n % 8)) - 1)).count_ones() as usize
    };
    full + tail
}

/// The search behind the public entry points: rows allowed by `mask` (all
/// when `None`), ties broken by `keys[row]` (distinct; by row when `None`).
/// `rows` receives database rows.
#[allow(clippy::too_many_arguments)]
fn search_rows(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    k: usize,
    mask: Option<&[u8]>,
    keys: Option<&[u64]>,
    dist: &mut [u32],
    rows: &mut [i64],
) -> Result<usize> {
    if width == 0 {
        return Err(Error::shape("codes", "a code width of at least 1 byte", "width 0"));
    }
    check_k(k)?;
    let nq = check_rows("queries", queries.len(), width)?;
    let n = check_rows("database", db.len(), width)?;
    let allowed = match mask {
        None => n,
        Some(m) => {
            check_len("mask", m.len(), n.div_ceil(8))?;
            allowed_rows(m, n)
        }
    };
    if let Some(keys) = keys {
        check_len("keys", keys.len(), n)?;
    }
    let kk = result_columns(k, allowed);
    // Q × min(k, N) can pass usize for huge inputs: no output buffer could hold it.
    let cells = nq
        .checked_mul(kk)
        .ok_or_else(|| Error::shape("distances", format!("{nq} × {kk} elements"), "no buffer that large"))?;
    check_len("distances", dist.len(), cells)?;
    check_len("indices", rows.len(), cells)?;
    if nq == 0 || kk == 0 {
        return Ok(kk);
    }
    if kk > COUNTING_K {
        // Rows the mask excludes get a distance past every real one; at least
        // kk rows are allowed, so the cut never reaches it.
        let max_dist = (8 * width) as u32;
        queries
            .par_chunks(width)
            .zip(dist.par_chunks_mut(kk).zip(rows.par_chunks_mut(kk)))
            .for_each_init(
                || vec![0u32; n],
                |all, (q, (d, r))| {
                    (kernels.lee_rows)(q, db, all);
                    if let Some(m) = mask {
                        for (row, v) in all.iter_mut().enumerate() {
                            if m[row / 8] >> (row % 8) & 1 == 0 {
                                *v = max_dist + 1;
                            }
                        }
                    }
                    select_by_counting(all, max_dist + 1, keys, d, r);
                },
            );
        return Ok(kk);
    }
    let threads = rayon::current_num_threads();
    if nq < threads && n >= 2 * SHARD_MIN_ROWS {
        // Shards start on a multiple of 8 rows so each one's mask starts on a byte.
        let shard_rows = n.div_ceil(threads).max(SHARD_MIN_ROWS).next_multiple_of(8);
        search_sharded(kernels, queries, db, width, kk, shard_rows, mask, keys, dist, rows);
        return Ok(kk);
    }
    let per = queries_per_task(nq);
    queries
        .par_chunks(per * width)
        .zip(dist.par_chunks_mut(per * kk).zip(rows.par_chunks_mut(per * kk)))
        .for_each(|(chunk, (d, r))| {
            let mut tops: Vec<TopK> = (0..chunk.len() / width).map(|_| TopK::with_keys(kk, keys)).collect();
            top_k_blocks(kernels, chunk, db, width, 0, mask, &mut tops);
            for ((top, d), r) in tops.iter().zip(d.chunks_exact_mut(kk)).zip(r.chunks_exact_mut(kk)) {
                top.write(d, r);
            }
        });
    Ok(kk)
}

/// Few queries, many rows: each thread takes a shard of the database; the
/// shards' lists merge by (distance, key), so the result is the unsharded one.
#[allow(clippy::too_many_arguments)]
fn search_sharded(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    kk: usize,
    shard_rows: usize,
    mask: Option<&[u8]>,
    keys: Option<&[u64]>,
    dist: &mut [u32],
    rows: &mut [i64],
) {
    let nq = queries.len() / width;
    let shards: Vec<Vec<TopK>> = db
        .par_chunks(shard_rows * width)
        .enumerate()
        .map(|(s, shard)| {
            let first = s * shard_rows;
            let shard_mask = mask.map(|m| &m[first / 8..]);
            let mut tops: Vec<TopK> = (0..nq)
                .map(|_| TopK::with_keys(kk.min(shard.len() / width), keys))
                .collect();
            top_k_blocks(kernels, queries, shard, width, first as u64, shard_mask, &mut tops);
            tops
        })
        .collect();
    for (q, (d, r)) in dist.chunks_exact_mut(kk).zip(rows.chunks_exact_mut(kk)).enumerate() {
        let mut merged: Vec<(u32, u64)> = shards.iter().flat_map(|tops| tops[q].entries()).collect();
        match keys {
            None => merged.sort_unstable(),
            Some(keys) => merged.sort_unstable_by_key(|&(d, row)| (d, keys[row as usize])),
        }
        for ((d, r), (md, mr)) in d.iter_mut().zip(r.iter_mut()).zip(merged) {
            (*d, *r) = (md, mr as i64);
        }
    }
}
