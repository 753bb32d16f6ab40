//! Exact re-scoring of candidates into the final top k.

use super::candidates::Candidates;
use super::codes::{CodesRef, Database};
use super::exact::{exact_score, pair_squares, pair_terms};
use super::scan::{prefetch, PREFETCH_AHEAD};
use super::tables::{query_norm, QueryTables};
use super::{by_score_then_key, check_queries, RESCORED};
use crate::check::{check_k, check_len, check_rows};
use crate::codes::code_width;
use crate::decode::Reconstruction;
use crate::error::{with_capacity, Error, Result};
use crate::keys::check_padding;
use rayon::prelude::*;
use std::sync::atomic::Ordering as AtomicOrdering;

/// What [`finish`] reads of the rows a query's candidates were numbered in.
pub(super) trait ScannedRows {
    /// Rows numbered `0..rows()`.
    fn rows(&self) -> usize;
    fn allowed(&self, row: usize) -> bool;
    fn key(&self, row: usize) -> u64;
    /// Row `row`'s code: borrowed, or gathered into `buf` (`width` bytes).
    fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8];
    /// A hint that row `row`'s code is read soon.
    fn prefetch(&self, _row: usize) {}
}

impl ScannedRows for Database<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn allowed(&self, row: usize) -> bool {
        Database::allowed(self, row)
    }
    fn key(&self, row: usize) -> u64 {
        Database::key(self, row)
    }
    fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8] {
        Database::code(self, row, buf)
    }
    fn prefetch(&self, row: usize) {
        if let CodesRef::RowMajor(codes) = self.codes {
            prefetch(&codes[row * self.width..][..self.width]);
        }
    }
}

/// The exact top `out.len()` of one query's candidates (or, for a zero
/// query, of every allowed row): writes scores and rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    db: &impl ScannedRows,
    pair_squares: &[f64],
    width: usize,
    table: &Reconstruction,
    q: &[f32],
    qt: &QueryTables,
    mut c: Candidates,
    scores: &mut [f32],
    rows: &mut [i64],
) {
    let mut scored: Vec<(f64, u64, u32)> = if qt.norm == 0.0 {
        (0..db.rows())
            .filter(|&r| db.allowed(r))
            .map(|r| (0.0, db.key(r), r as u32))
            .collect()
    } else {
        c.prune();
        RESCORED.fetch_add(c.rows.len() as u64, AtomicOrdering::Relaxed);
        let terms = pair_terms(q, qt.norm, table, pair_squares);
        c.rows.sort_unstable_by_key(|&(r, _)| r);
        let mut buf = vec![0u8; width];
        (0..c.rows.len())
            .map(|i| {
                if let Some(&(ahead, _)) = c.rows.get(i + PREFETCH_AHEAD) {
                    db.prefetch(ahead as usize);
                }
                let r = c.rows[i].0;
                let score = exact_score(&terms, db.code(r as usize, &mut buf));
                (score, db.key(r as usize), r)
            })
            .collect()
    };
    let order = by_score_then_key;
    let kk = scores.len();
    if scored.len() > kk {
        scored.select_nth_unstable_by(kk - 1, order);
        scored.truncate(kk);
    }
    scored.sort_unstable_by(order);
    for ((s, r), (score, _, row)) in scores.iter_mut().zip(rows.iter_mut()).zip(scored) {
        (*s, *r) = (score as f32, i64::from(row));
    }
}

/// The two-stage path: re-ranks each query's candidate rows (e.g. a Lee
/// search's top hits) exactly by the asymmetric score of SPEC §8.
/// `candidates` is `(queries, c)` row-major; `-1` entries are skipped,
/// repeated rows count once, other rows must be in `0..rows`. Writes
/// `min(k, c)` columns per query (best first, ties by lower row); columns
/// past a query's distinct candidates get score −∞ and row −1. Returns the
/// column count.
#[allow(clippy::too_many_arguments)]
pub fn rerank_asym(
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    candidates: &[i64],
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    table.check_dim(dim)?;
    check_k(k)?;
    let width = code_width(dim);
    let nq = check_queries(queries, dim)?;
    let n = check_rows("codes", codes.len(), width)?;
    check_padding(codes, dim)?;
    let c = if nq == 0 {
        if !candidates.is_empty() {
            return Err(Error::shape(
                "candidates",
                "no candidates for no queries",
                candidates.len(),
            ));
        }
        0
    } else {
        if !candidates.len().is_multiple_of(nq) {
            return Err(Error::shape(
                "candidates",
                format!("{nq} rows of candidates"),
                candidates.len(),
            ));
        }
        candidates.len() / nq
    };
    if let Some(at) = candidates.iter().position(|&r| r < -1 || r >= n as i64) {
        return Err(Error::value(
            "candidates",
            format!(
                "query {} holds row {}; candidates are rows 0..{n} or -1",
                at / c.max(1),
                candidates[at]
            ),
        ));
    }
    let kk = k.min(c);
    let cells = nq * kk; // ≤ candidates.len()
    check_len("scores", scores.len(), cells)?;
    check_len("indices", rows.len(), cells)?;
    if cells == 0 {
        return Ok(kk);
    }
    let squares = pair_squares(table);
    queries
        .par_chunks_exact(dim)
        .zip(candidates.par_chunks_exact(c))
        .zip(scores.par_chunks_mut(kk).zip(rows.par_chunks_mut(kk)))
        .try_for_each(|((q, cand), (s, r))| -> Result<()> {
            let q_norm = query_norm(q);
            let terms = pair_terms(q, q_norm, table, &squares);
            let mut scored: Vec<(f64, u64, u32)> = with_capacity("rerank_asym", "the candidate scores", c, 1)?;
            let mut distinct: Vec<usize> = cand.iter().filter(|&&r| r >= 0).map(|&r| r as usize).collect();
            distinct.sort_unstable();
            distinct.dedup();
            for row in distinct {
                let code = &codes[row * width..][..width];
                let score = if q_norm == 0.0 { 0.0 } else { exact_score(&terms, code) };
                scored.push((score, row as u64, row as u32));
            }
            scored.sort_unstable_by(by_score_then_key);
            s.fill(f32::NEG_INFINITY);
            r.fill(-1);
            for ((s, r), (score, _, row)) in s.iter_mut().zip(r.iter_mut()).zip(scored) {
                (*s, *r) = (score as f32, i64::from(row));
            }
            Ok(())
        })?;
    Ok(kk)
}
