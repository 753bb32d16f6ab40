//! Asymmetric search (SPEC §8): float queries scored against packed codes by
//! the cosine between the query and the code's reconstruction x̂.
//!
//! Two stages. A fast scan sums per query one u8 lookup table per code
//! nibble (two dimensions, 16 entries, indexed by the raw Gray nibble) over
//! the fast-scan block layout; each table entry is off by at most a known
//! amount, so the integer sum brackets every row's exact score between a
//! lower and an upper bound. A row whose upper bound is below the k-th best
//! lower bound cannot be in the top k; every other row is a candidate, and
//! the candidates are re-scored exactly (f64, SPEC §8) and the top k taken by
//! (exact score, tie key). The integers only choose candidates, so the result
//! is the exact top-k on every backend and thread count.
//!
//! One stage per file: `tables` (a query's lookup tables and their error),
//! `scan` (integer sums tested against the bound), `candidates` (what a scan
//! keeps), `exact` and `rerank` (the f64 scores and the final top k), `codes`
//! (the rows a search reads), `lists` (an inverted file's block sets); the
//! public entry points and their checks are here.

mod candidates;
mod codes;
mod exact;
mod lists;
mod rerank;
mod scan;
mod tables;

pub use codes::FastScanCodes;
pub(crate) use codes::{block_code_into, CodesRef};
pub(crate) use lists::{search_asym_lists_batch, BlockSet, SharedTables};
pub use rerank::rerank_asym;
pub(crate) use scan::norm_range;

use crate::check::{check_k, check_len, check_rows};
use crate::codes::code_width;
use crate::decode::{ByteSquares, Reconstruction};
use crate::error::{Error, Result};
use crate::kernels::scalar_asym::BLOCK_ROWS;
use crate::kernels::Kernels;
use crate::keys::check_padding;
use crate::search::{result_columns, RowScope};
use candidates::Candidates;
use codes::Database;
use exact::pair_squares;
use rayon::prelude::*;
use rerank::finish;
use scan::scan_rows;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use tables::QueryTables;

/// Rows laid out and scanned together: 32 blocks, ~96 KB of 384-d codes (stays in L2).
const CHUNK_ROWS: usize = 32 * BLOCK_ROWS;
/// With fewer queries than threads, the rows are split into shards of at
/// least this many rows (a multiple of [`CHUNK_ROWS`]).
const SHARD_MIN_ROWS: usize = 64 * CHUNK_ROWS;
/// Relative slack added to each query's error bound: covers the f32 and f64
/// rounding of the bound computations (each far below 1e-6 relative).
const BOUND_SLACK: f64 = 1e-5;

/// Candidates re-scored exactly by every search so far (for measurements).
static RESCORED: AtomicU64 = AtomicU64::new(0);

/// How many candidate rows asymmetric searches have re-scored exactly since
/// the process started (a measurement aid, not a stable API).
#[doc(hidden)]
pub fn asym_rescored_total() -> u64 {
    RESCORED.load(AtomicOrdering::Relaxed)
}

/// The result order of SPEC §8: score descending (as real numbers: −0 = +0;
/// scores are never NaN), then tie key ascending.
fn by_score_then_key(a: &(f64, u64, u32), b: &(f64, u64, u32)) -> Ordering {
    by_score_then(a.0, b.0, || a.1.cmp(&b.1))
}

/// [`by_score_then_key`] for scores `a` and `b`, with `tie` (the tie keys'
/// order) called only when the scores are equal.
#[inline(always)]
fn by_score_then(a: f64, b: f64, tie: impl FnOnce() -> Ordering) -> Ordering {
    match b.partial_cmp(&a).unwrap_or(Ordering::Equal) {
        Ordering::Equal => tie(),
        unequal => unequal,
    }
}

/// `1 − cosine` of an asymmetric score, rounded to f32: the distance the
/// index and the Python API report (monotone, so the order stays).
pub(crate) fn cosine_distance(score: f32) -> f32 {
    (1.0 - f64::from(score)) as f32
}

/// Checks the queries (finite, `dim` wide) and returns their count.
pub(crate) fn check_queries(queries: &[f32], dim: usize) -> Result<usize> {
    let nq = check_rows("queries", queries.len(), dim)?;
    if let Some(at) = queries.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            arg: "queries",
            row: at / dim,
            col: at % dim,
            value: f64::from(queries[at]),
        });
    }
    Ok(nq)
}

/// Exact top-`k` of each float query among `(rows, code_width(dim))` packed
/// codes by the cosine between the query and the code's reconstruction under
/// `table` (SPEC §8). `norms`: each row's ‖x̂‖ as [`crate::row_norms`] wrote
/// it (computed here when `None`; other values may drop rows from the
/// result, never anything worse). Writes `min(k, rows)` columns per query
/// into `scores` (cosine similarity as f32, best first) and `rows` (ties by
/// lower row) and returns that column count. Codes with nonzero padding
/// bits are an error naming the row.
#[allow(clippy::too_many_arguments)]
pub fn search_asym(
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    search_asym_with(Kernels::active(), queries, codes, dim, table, norms, k, scores, rows)
}

/// [`search_asym`] with the given kernels (for comparing backends).
#[allow(clippy::too_many_arguments)]
pub fn search_asym_with(
    kernels: &Kernels,
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    if table.dim() == dim {
        // (Another dimension is the table's error, reported by the search.)
        check_rows("codes", codes.len(), code_width(dim))?;
        check_padding(codes, dim)?;
    }
    search_asym_scoped(
        kernels,
        queries,
        CodesRef::RowMajor(codes),
        dim,
        table,
        norms,
        k,
        RowScope::default(),
        scores,
        rows,
    )
}

/// [`search_asym`] over codes already in the fast-scan layout (faster for
/// few queries: no per-search re-layout). Same results as [`search_asym`]
/// on the row-major codes.
#[allow(clippy::too_many_arguments)]
pub fn search_asym_fast_scan(
    queries: &[f32],
    codes: &FastScanCodes,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    search_asym_fast_scan_with(Kernels::active(), queries, codes, table, norms, k, scores, rows)
}

/// [`search_asym_fast_scan`] with the given kernels.
#[allow(clippy::too_many_arguments)]
pub fn search_asym_fast_scan_with(
    kernels: &Kernels,
    queries: &[f32],
    codes: &FastScanCodes,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    let dim = table.dim();
    search_asym_scoped(
        kernels,
        queries,
        CodesRef::FastScan(codes),
        dim,
        table,
        norms,
        k,
        RowScope::default(),
        scores,
        rows,
    )
}

/// [`search_asym_with`] restricted to `scope` (allowed rows, tie keys).
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_asym_scoped(
    kernels: &Kernels,
    queries: &[f32],
    codes: CodesRef<'_>,
    dim: usize,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scope: RowScope<'_>,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    table.check_dim(dim)?;
    check_k(k)?;
    let width = code_width(dim);
    let nq = check_queries(queries, dim)?;
    let n = match codes {
        CodesRef::RowMajor(c) => check_rows("codes", c.len(), width)?,
        CodesRef::FastScan(f) => {
            if f.dim != dim {
                return Err(Error::shape(
                    "codes",
                    format!("codes of {dim} dimensions"),
                    format!("{} dimensions", f.dim),
                ));
            }
            f.rows
        }
        CodesRef::Blocks(b, rows) => {
            check_len("codes", b.len(), rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * width)?;
            rows
        }
    };
    if n > u32::MAX as usize {
        return Err(Error::shape("codes", "at most 2³² − 1 rows", n));
    }
    if let Some(norms) = norms {
        check_len("norms", norms.len(), n)?;
        if let Some(at) = norms.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::value(
                "norms",
                format!("row {at} holds {}; norms are finite and ≥ 0", norms[at]),
            ));
        }
    }
    if let Some(m) = scope.mask {
        check_len("mask", m.len(), n.div_ceil(8))?;
    }
    if let Some(keys) = scope.tie_keys {
        check_len("keys", keys.len(), n)?;
    }
    let kk = result_columns(k, scope.allowed(n));
    let cells = nq
        .checked_mul(kk)
        .ok_or_else(|| Error::shape("scores", format!("{nq} × {kk} elements"), "no buffer that large"))?;
    check_len("scores", scores.len(), cells)?;
    check_len("indices", rows.len(), cells)?;
    if nq == 0 || kk == 0 {
        return Ok(kk);
    }
    let (squares, pair_squares) = (ByteSquares::new(table), pair_squares(table));
    let db = Database {
        codes,
        width,
        rows: n,
        norms,
        norm_range: None,
        squares: &squares,
        pair_squares: &pair_squares,
        scope,
        base: 0,
        next: &[],
    };
    let threads = rayon::current_num_threads().max(1);
    if nq < threads && n >= 2 * SHARD_MIN_ROWS {
        // Few queries, many rows: shard the rows, merge each query's candidates.
        let tables: Vec<QueryTables> = queries
            .chunks_exact(dim)
            .map(|q| QueryTables::new(kernels, q, table))
            .collect();
        let shard = n.div_ceil(threads).max(SHARD_MIN_ROWS).next_multiple_of(CHUNK_ROWS);
        let shards: Vec<Vec<Candidates>> = (0..n.div_ceil(shard))
            .into_par_iter()
            .map(|s| {
                let mut cands: Vec<Candidates> = (0..nq).map(|_| Candidates::new(kk)).collect();
                scan_rows(kernels, &db, &tables, s * shard, ((s + 1) * shard).min(n), &mut cands);
                cands
            })
            .collect();
        let mut merged: Vec<Candidates> = (0..nq).map(|_| Candidates::new(kk)).collect();
        for shard in shards {
            for (m, c) in merged.iter_mut().zip(shard) {
                m.merge(c);
            }
        }
        queries
            .par_chunks_exact(dim)
            .zip(tables.par_iter())
            .zip(merged.into_par_iter())
            .zip(scores.par_chunks_mut(kk).zip(rows.par_chunks_mut(kk)))
            .for_each(|(((q, qt), c), (s, r))| finish(&db, db.pair_squares, width, table, q, qt, c, s, r));
        return Ok(kk);
    }
    let per = nq.div_ceil(threads).clamp(1, 1024);
    queries
        .par_chunks(per * dim)
        .zip(scores.par_chunks_mut(per * kk).zip(rows.par_chunks_mut(per * kk)))
        .for_each(|(chunk, (s, r))| {
            let tables: Vec<QueryTables> = chunk
                .chunks_exact(dim)
                .map(|q| QueryTables::new(kernels, q, table))
                .collect();
            let mut cands: Vec<Candidates> = (0..tables.len()).map(|_| Candidates::new(kk)).collect();
            scan_rows(kernels, &db, &tables, 0, n, &mut cands);
            for ((((q, qt), c), s), r) in chunk
                .chunks_exact(dim)
                .zip(&tables)
                .zip(cands)
                .zip(s.chunks_exact_mut(kk))
                .zip(r.chunks_exact_mut(kk))
            {
                finish(&db, db.pair_squares, width, table, q, qt, c, s, r);
            }
        });
    Ok(kk)
}

#[cfg(test)]
mod tests;
