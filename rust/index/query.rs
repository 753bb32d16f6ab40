//! Exact k-NN and range search over an index, optionally restricted by a filter.

use super::Index;
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::lee::{lee_counts, LeeWeights};
use crate::search::{allowed_rows, result_columns, search_masked_with, search_with};
use std::borrow::Cow;
use std::sync::Arc;

/// Which ids a search may return.
#[derive(Debug, Clone, Copy)]
pub enum Filter<'a> {
    /// Only these ids (unknown ids are ignored).
    Ids(&'a [u64]),
    /// `mask[id]`: allowed when true; ids beyond the mask are not allowed.
    Mask(&'a [bool]),
}

impl Filter<'_> {
    fn allows(&self, id: u64) -> bool {
        match self {
            Filter::Ids(_) => unreachable!("id lists are resolved to rows first"),
            Filter::Mask(m) => usize::try_from(id)
                .ok()
                .and_then(|i| m.get(i))
                .copied()
                .unwrap_or(false),
        }
    }
}

/// Search results: `queries × columns`, best first, ties to the lower id.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub columns: usize,
    /// Plain Lee distances (an index without weights).
    pub distances: Vec<u32>,
    /// Weighted Lee distances (an index with weights); empty otherwise.
    pub weighted: Vec<f64>,
    pub ids: Vec<u64>,
}

/// Range search results in faiss's layout: the hits of query `q` are
/// `lims[q]..lims[q + 1]`, ordered by (distance, id).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeResult {
    pub lims: Vec<usize>,
    pub distances: Vec<u32>,
    pub ids: Vec<u64>,
}

/// Copying a row out of the view costs about as much as this many
/// query-row distances in the search kernel (measured on the index
/// benchmark: 96-byte rows, gather ≈ 10 ns, tile kernel ≈ 0.3 ns per pair).
const GATHER_COST_IN_DISTANCES: usize = 32;

/// The rows searches look at, in id order: their codes (borrowed when they
/// are the stored rows in order) and ids, and which of them are alive (`None`:
/// all). Built once per change of the rows.
#[derive(Debug)]
pub(crate) struct View {
    /// `None`: the stored codes as they are.
    codes: Option<Vec<u8>>,
    /// `None`: the stored ids as they are.
    ids: Option<Vec<u64>>,
    /// Bit `r % 8` of byte `r / 8` set when view row `r` is alive.
    alive: Option<Vec<u8>>,
}

impl View {
    fn codes<'a>(&'a self, index: &'a Index) -> &'a [u8] {
        self.codes.as_deref().unwrap_or(&index.data().codes)
    }

    fn ids<'a>(&'a self, index: &'a Index) -> &'a [u64] {
        self.ids.as_deref().unwrap_or(&index.data().ids)
    }
}

/// What one search scans: a view and the mask of its rows it may return
/// (`None`: every row of the view).
struct Scope<'a> {
    view: Cow<'a, View>,
    mask: Option<Cow<'a, [u8]>>,
}

impl Scope<'_> {
    fn allows(&self, row: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[row / 8] >> (row % 8) & 1 == 1)
    }
}

/// A view of rows `rows` of `codes` (and of `ids`), in that order.
fn gather(codes: &[u8], width: usize, rows: &[usize], ids: &[u64]) -> View {
    let mut gathered = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        gathered.extend_from_slice(&codes[r * width..(r + 1) * width]);
    }
    View {
        codes: Some(gathered),
        ids: Some(rows.iter().map(|&r| ids[r]).collect()),
        alive: None,
    }
}

/// The first index `i ≥ from` with `v[i] ≥ x` in sorted `v` (or `v.len()`):
/// O(log(i − from)), so a walk over sorted targets costs O(len + targets).
fn gallop(v: &[u64], from: usize, x: u64) -> usize {
    let (mut lo, mut hi, mut step) = (from, from, 1);
    while hi < v.len() && v[hi] < x {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    let hi = hi.min(v.len());
    lo + v[lo..hi].partition_point(|&y| y < x)
}

/// Sets bit `row`; true when it was clear.
fn set_bit(bits: &mut [u8], row: usize) -> bool {
    let (byte, bit) = (row / 8, 1u8 << (row % 8));
    let was = bits[byte] & bit != 0;
    bits[byte] |= bit;
    !was
}

impl Index {
    /// The view of every alive row. With increasing ids it is the stored rows
    /// themselves (removed ones masked out); otherwise the alive rows' codes
    /// gathered in id order, so the kernel's "ties to the lower row" is "ties
    /// to the lower id".
    fn build_view(&self) -> View {
        let data = self.data();
        let alive = self.alive();
        if self.ids_increasing() {
            let mask = (!alive.iter().all(|&a| a)).then(|| {
                let mut bits = vec![0u8; alive.len().div_ceil(8)];
                alive.iter().enumerate().filter(|(_, &a)| a).for_each(|(r, _)| {
                    set_bit(&mut bits, r);
                });
                bits
            });
            return View {
                codes: None,
                ids: None,
                alive: mask,
            };
        }
        let mut rows: Vec<usize> = (0..data.ids.len()).filter(|&r| alive[r]).collect();
        rows.sort_unstable_by_key(|&r| data.ids[r]);
        gather(&data.codes, self.width(), &rows, &data.ids)
    }

    fn view(&self) -> &View {
        self.view.get_or_init(|| Arc::new(self.build_view()))
    }

    /// The view and mask a search of `queries` queries scans: the alive rows,
    /// narrowed by `filter`. A filter's rows are gathered into a copy when
    /// scanning the rows it excludes for every query would cost more.
    fn scope(&self, filter: Option<Filter<'_>>, queries: usize) -> Scope<'_> {
        let view = self.view();
        let Some(filter) = filter else {
            return Scope {
                view: Cow::Borrowed(view),
                mask: view.alive.as_deref().map(Cow::Borrowed),
            };
        };
        let view_ids = view.ids(self);
        let n = view_ids.len();
        // The allowed view rows, increasing, and the same as a mask.
        let mut mask = vec![0u8; n.div_ceil(8)];
        let mut rows: Vec<usize> = Vec::new();
        let alive = |r: usize| view.alive.as_ref().is_none_or(|a| a[r / 8] >> (r % 8) & 1 == 1);
        match filter {
            Filter::Ids(ids) => {
                // View ids are sorted and distinct (ids increase, or the view is
                // sorted by id): walk them once beside the filter's ids, sorted.
                let sorted: Cow<'_, [u64]> = if ids.is_sorted() {
                    Cow::Borrowed(ids)
                } else {
                    let mut v = ids.to_vec();
                    v.sort_unstable();
                    Cow::Owned(v)
                };
                let mut r = 0;
                for &id in sorted.iter() {
                    r = gallop(view_ids, r, id);
                    if r == n {
                        break;
                    }
                    if view_ids[r] == id && alive(r) && set_bit(&mut mask, r) {
                        rows.push(r);
                    }
                }
            }
            Filter::Mask(_) => {
                for (r, &id) in view_ids.iter().enumerate() {
                    if alive(r) && filter.allows(id) {
                        set_bit(&mut mask, r);
                        rows.push(r);
                    }
                }
            }
        }
        let allowed = rows.len();
        if queries.saturating_mul(n - allowed) > allowed.saturating_mul(GATHER_COST_IN_DISTANCES) {
            return Scope {
                view: Cow::Owned(gather(view.codes(self), self.width(), &rows, view_ids)),
                mask: None,
            };
        }
        Scope {
            view: Cow::Borrowed(view),
            mask: Some(Cow::Owned(mask)),
        }
    }

    /// The `k` nearest alive rows (allowed by `filter`) of each query code,
    /// by Lee distance (weighted when the index has weights); ties to the
    /// lower id. `min(k, allowed rows)` columns.
    pub fn search(&self, queries: &[u8], k: usize, filter: Option<Filter<'_>>) -> Result<Neighbours> {
        self.search_with(Kernels::active(), queries, k, filter)
    }

    /// [`Index::search`] with the given kernels.
    pub fn search_with(
        &self,
        kernels: &Kernels,
        queries: &[u8],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<Neighbours> {
        let width = self.width();
        let nq = self.check_queries(queries)?;
        if k == 0 {
            return Err(Error::value("k", "must be at least 1"));
        }
        let scope = self.scope(filter, nq);
        let (codes, view_ids) = (scope.view.codes(self), scope.view.ids(self));
        if let Some(weights) = self.weights() {
            return Ok(weighted_search(queries, codes, view_ids, &scope, width, k, weights));
        }
        let cols = match &scope.mask {
            None => result_columns(k, view_ids.len()),
            Some(m) => result_columns(k, allowed_rows(m, view_ids.len())),
        };
        let (mut distances, mut rows) = (vec![0u32; nq * cols], vec![0i64; nq * cols]);
        if cols > 0 {
            match &scope.mask {
                None => search_with(kernels, queries, codes, width, k, &mut distances, &mut rows)?,
                Some(m) => search_masked_with(kernels, queries, codes, width, k, m, &mut distances, &mut rows)?,
            };
        }
        let ids = rows.iter().map(|&r| view_ids[r as usize]).collect();
        Ok(Neighbours {
            columns: cols,
            distances,
            weighted: Vec::new(),
            ids,
        })
    }

    /// Every alive row within Lee distance `radius` (inclusive) of each query.
    pub fn range_search(&self, queries: &[u8], radius: u32, filter: Option<Filter<'_>>) -> Result<RangeResult> {
        let width = self.width();
        let nq = self.check_queries(queries)?;
        let scope = self.scope(filter, nq);
        let (codes, view_ids) = (scope.view.codes(self), scope.view.ids(self));
        let mut out = RangeResult {
            lims: vec![0],
            distances: Vec::new(),
            ids: Vec::new(),
        };
        let mut d = vec![0u32; view_ids.len()];
        for q in queries.chunks_exact(width) {
            if !d.is_empty() {
                crate::lee::lee_one_to_many(q, codes, &mut d)?;
            }
            // View rows are in id order: a stable sort by distance gives (distance, id).
            let mut hits: Vec<(u32, u64)> = d
                .iter()
                .zip(view_ids)
                .enumerate()
                .filter(|&(r, (&dist, _))| dist <= radius && scope.allows(r))
                .map(|(_, (&dist, &id))| (dist, id))
                .collect();
            hits.sort_by_key(|&(dist, _)| dist);
            out.distances.extend(hits.iter().map(|h| h.0));
            out.ids.extend(hits.iter().map(|h| h.1));
            out.lims.push(out.ids.len());
        }
        Ok(out)
    }

    fn check_queries(&self, queries: &[u8]) -> Result<usize> {
        let width = self.width();
        if !queries.len().is_multiple_of(width) {
            return Err(Error::shape(
                "queries",
                format!("codes of {width} bytes (dimension {})", self.dim()),
                format!("{} bytes", queries.len()),
            ));
        }
        Ok(queries.len() / width)
    }
}

impl Clone for View {
    fn clone(&self) -> View {
        View {
            codes: self.codes.clone(),
            ids: self.ids.clone(),
            alive: self.alive.clone(),
        }
    }
}

/// Weighted Lee: the distance is not a popcount, so rank every allowed row per query.
fn weighted_search(
    queries: &[u8],
    codes: &[u8],
    ids: &[u64],
    scope: &Scope<'_>,
    width: usize,
    k: usize,
    w: LeeWeights,
) -> Neighbours {
    let allowed = scope.mask.as_ref().map_or(ids.len(), |m| allowed_rows(m, ids.len()));
    let cols = result_columns(k, allowed);
    let mut out = Neighbours {
        columns: cols,
        distances: Vec::new(),
        weighted: Vec::with_capacity(queries.len() / width * cols),
        ids: Vec::with_capacity(queries.len() / width * cols),
    };
    let mut scored: Vec<(f64, u64)> = Vec::with_capacity(ids.len());
    for q in queries.chunks_exact(width) {
        scored.clear();
        for (r, (row, &id)) in codes.chunks_exact(width).zip(ids).enumerate() {
            if scope.allows(r) {
                let counts = lee_counts(q, row).unwrap_or_default();
                scored.push((w.apply(counts), id));
            }
        }
        let by = |a: &(f64, u64), b: &(f64, u64)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if cols < scored.len() {
            scored.select_nth_unstable_by(cols, by);
        }
        let top = &mut scored[..cols];
        top.sort_unstable_by(by);
        out.weighted.extend(top.iter().map(|t| t.0));
        out.ids.extend(top.iter().map(|t| t.1));
    }
    out
}
