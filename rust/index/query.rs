//! Exact k-NN and range search over an index, optionally restricted by a filter.

use super::Index;
use crate::error::{reserve, with_capacity, zeroed, Error, Result};
use crate::kernels::Kernels;
use crate::search::asym::{cosine_distance, search_asym_scoped, CodesRef};
use crate::search::lee::{lee_counts, LeeWeights};
use crate::search::{scoped_columns, search_scoped, RowScope};
use std::borrow::Cow;
use std::sync::Arc;

/// Which ids a search may return.
#[derive(Debug, Clone, Copy)]
pub enum Filter<'a> {
    /// Only these ids (unknown ids are ignored).
    Ids(&'a [u64]),
    /// `mask[id]`: allowed when non-zero; ids beyond the mask are not allowed.
    /// Bytes, not `bool`: a Python bool mask may hold any byte (numpy counts
    /// every non-zero byte as true), and a `bool` other than 0 or 1 is undefined behaviour.
    Mask(&'a [u8]),
}

/// Whether a mask filter allows `id`: its byte is non-zero (ids past the mask are not allowed).
fn mask_allows(mask: &[u8], id: u64) -> bool {
    usize::try_from(id)
        .ok()
        .and_then(|i| mask.get(i))
        .is_some_and(|&b| b != 0)
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

/// Asymmetric search results (SPEC §8): `queries × columns`, ascending by
/// distance `1 − cosine(query, x̂)` (f32), ties to the lower id.
#[derive(Debug, Clone, PartialEq)]
pub struct AsymNeighbours {
    pub columns: usize,
    pub distances: Vec<f32>,
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

/// Copying a stored row out costs about as much as this many
/// query-row distances in the search kernel (measured on the index
/// benchmark: 96-byte rows, gather ≈ 10 ns, tile kernel ≈ 0.3 ns per pair).
const GATHER_COST_IN_DISTANCES: usize = 32;

/// Which stored rows are alive, as the search kernel's mask; built once per change of the rows.
#[derive(Debug)]
pub(crate) struct AliveMask {
    /// Bit `r % 8` of byte `r / 8` set when stored row `r` is alive; `None`: all are.
    bits: Option<Vec<u8>>,
}

/// What one search scans: the stored rows (or a gathered copy of a narrow
/// filter's rows) and the mask of those it may return (`None`: all).
struct Scope<'a> {
    /// `None`: the stored codes and ids.
    gathered: Option<(Vec<u8>, Vec<u64>)>,
    mask: Option<Cow<'a, [u8]>>,
    /// Ties go to the lower id: a key per scanned row unless ids increase with rows.
    keyed: bool,
}

impl Scope<'_> {
    fn allows(&self, row: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| bit(m, row))
    }

    fn codes<'a>(&'a self, index: &'a Index) -> &'a [u8] {
        self.gathered.as_ref().map_or(&index.data().codes, |g| &g.0)
    }

    fn ids<'a>(&'a self, index: &'a Index) -> &'a [u64] {
        self.gathered.as_ref().map_or(&index.data().ids, |g| &g.1)
    }

    /// Tie-break keys for the kernel: the ids, when they do not increase with rows.
    fn keys<'a>(&'a self, index: &'a Index) -> Option<&'a [u64]> {
        self.keyed.then(|| self.ids(index))
    }
}

fn bit(bits: &[u8], row: usize) -> bool {
    bits[row / 8] >> (row % 8) & 1 == 1
}

/// A copy of rows `rows` of `codes` (and of `ids`), in that order.
fn gather(codes: &[u8], width: usize, rows: &[usize], ids: &[u64]) -> (Vec<u8>, Vec<u64>) {
    let mut gathered = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        gathered.extend_from_slice(&codes[r * width..(r + 1) * width]);
    }
    (gathered, rows.iter().map(|&r| ids[r]).collect())
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
    let (byte, b) = (row / 8, 1u8 << (row % 8));
    let was = bits[byte] & b != 0;
    bits[byte] |= b;
    !was
}

impl Index {
    fn alive_mask(&self) -> &AliveMask {
        self.alive_mask.get_or_init(|| {
            let alive = self.alive();
            let mask = (!alive.iter().all(|&a| a)).then(|| {
                let mut bits = vec![0u8; alive.len().div_ceil(8)];
                for (r, _) in alive.iter().enumerate().filter(|(_, &a)| a) {
                    set_bit(&mut bits, r);
                }
                bits
            });
            Arc::new(AliveMask { bits: mask })
        })
    }

    /// The rows a search of `queries` queries scans: the alive stored rows,
    /// narrowed by `filter`. A filter's rows are gathered into a copy when
    /// scanning the rows it excludes for every query would cost more.
    fn scope(&self, filter: Option<Filter<'_>>, queries: usize) -> Scope<'_> {
        let alive_mask = self.alive_mask();
        let keyed = !self.ids_increasing();
        let Some(filter) = filter else {
            return Scope {
                gathered: None,
                mask: alive_mask.bits.as_deref().map(Cow::Borrowed),
                keyed,
            };
        };
        let ids = &self.data().ids;
        let n = ids.len();
        // The allowed stored rows, and the same as a mask.
        let mut mask = vec![0u8; n.div_ceil(8)];
        let mut rows: Vec<usize> = Vec::new();
        let alive = |r: usize| alive_mask.bits.as_ref().is_none_or(|a| bit(a, r));
        match filter {
            Filter::Ids(wanted) if self.ids_increasing() => {
                // Stored ids are sorted: walk them once beside the wanted ids, sorted.
                let sorted: Cow<'_, [u64]> = if wanted.is_sorted() {
                    Cow::Borrowed(wanted)
                } else {
                    let mut v = wanted.to_vec();
                    v.sort_unstable();
                    Cow::Owned(v)
                };
                let mut r = 0;
                for &id in sorted.iter() {
                    r = gallop(ids, r, id);
                    if r == n {
                        break;
                    }
                    if ids[r] == id && alive(r) && set_bit(&mut mask, r) {
                        rows.push(r);
                    }
                }
            }
            Filter::Ids(wanted) => match wanted.iter().max() {
                // Ids below 64 per row (sequential-ish ids): a bitmap over them, at most
                // 8 B per row and cache-resident, then one pass over the stored ids.
                Some(&max) if max / 64 < n as u64 => {
                    let mut wanted_bits = vec![0u8; (max / 8 + 1) as usize];
                    for &id in wanted {
                        set_bit(&mut wanted_bits, id as usize);
                    }
                    for (r, &id) in ids.iter().enumerate() {
                        if id <= max && bit(&wanted_bits, id as usize) && alive(r) {
                            set_bit(&mut mask, r);
                            rows.push(r);
                        }
                    }
                }
                // Sparse ids: one lookup in the id map each.
                _ => {
                    for &id in wanted {
                        if let Some(r) = self.row_of(id) {
                            if alive(r) && set_bit(&mut mask, r) {
                                rows.push(r);
                            }
                        }
                    }
                    rows.sort_unstable(); // gathered in stored order: the codes are read forwards
                }
            },
            Filter::Mask(allowed) => {
                for (r, &id) in ids.iter().enumerate() {
                    if alive(r) && mask_allows(allowed, id) {
                        set_bit(&mut mask, r);
                        rows.push(r);
                    }
                }
            }
        }
        let allowed = rows.len();
        if queries.saturating_mul(n - allowed) > allowed.saturating_mul(GATHER_COST_IN_DISTANCES) {
            return Scope {
                gathered: Some(gather(&self.data().codes, self.width(), &rows, ids)),
                mask: None,
                keyed,
            };
        }
        Scope {
            gathered: None,
            mask: Some(Cow::Owned(mask)),
            keyed,
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
        crate::check::check_k(k)?;
        let scope = self.scope(filter, nq);
        let (codes, ids) = (scope.codes(self), scope.ids(self));
        if let Some(weights) = self.weights() {
            return weighted_search(queries, codes, ids, &scope, width, k, weights);
        }
        let mask = scope.mask.as_deref();
        let cols = scoped_columns(k, ids.len(), RowScope { mask, tie_keys: None });
        // Every output is reserved before the search runs: a request too large fails at once.
        let mut distances = zeroed("search", "the distances output", nq, cols)?;
        let mut rows = zeroed::<i64>("search", "the rows of the result", nq, cols)?;
        let mut found = with_capacity("search", "the ids output", nq, cols)?;
        if cols > 0 {
            let row_scope = RowScope {
                mask,
                tie_keys: scope.keys(self),
            };
            search_scoped(kernels, queries, codes, width, k, row_scope, &mut distances, &mut rows)?;
        }
        // The kernel returns rows of `codes`, which `ids` matches row for row.
        found.extend(rows.iter().map(|&r| ids[r as usize]));
        drop(rows);
        let ids = found;
        Ok(Neighbours {
            columns: cols,
            distances,
            weighted: Vec::new(),
            ids,
        })
    }

    /// The `k` nearest alive rows (allowed by `filter`) of each float query
    /// (`queries × dim`, finite) by asymmetric score (SPEC §8): the cosine
    /// between the query and each row's reconstruction under the index's
    /// table (fitted, else the rule's analytic default). Distances are
    /// `1 − cosine` as f32, ascending; ties to the lower id;
    /// `min(k, allowed rows)` columns. Weights (weighted Lee) do not apply.
    pub fn search_asym(&self, queries: &[f32], k: usize, filter: Option<Filter<'_>>) -> Result<AsymNeighbours> {
        self.search_asym_with(Kernels::active(), queries, k, filter)
    }

    /// [`Index::search_asym`] with the given kernels.
    pub fn search_asym_with(
        &self,
        kernels: &Kernels,
        queries: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<AsymNeighbours> {
        let dim = self.dim();
        let nq = crate::check::check_rows("queries", queries.len(), dim)?;
        crate::check::check_k(k)?;
        let state = self.asym_state()?;
        // Rotated by the thresholds' rotation (SPEC §9) before §8; as given without one.
        let rotated = match self.rotation() {
            Some(_) => Some(self.threshold_set()?.queries(queries.to_vec(), dim)?),
            None => None,
        };
        let queries = rotated.as_deref().unwrap_or(queries);
        let scope = self.scope(filter, nq);
        let (codes, ids) = (scope.codes(self), scope.ids(self));
        let mask = scope.mask.as_deref();
        let cols = scoped_columns(k, ids.len(), RowScope { mask, tie_keys: None });
        let mut scores = zeroed::<f32>("search", "the distances output", nq, cols)?;
        let mut rows = zeroed::<i64>("search", "the rows of the result", nq, cols)?;
        let mut found = with_capacity("search", "the ids output", nq, cols)?;
        if cols > 0 {
            let row_scope = RowScope {
                mask,
                tie_keys: scope.keys(self),
            };
            // Gathered rows have no stored norms: the search computes theirs.
            let norms = scope.gathered.is_none().then_some(&state.norms[..]);
            search_asym_scoped(
                kernels,
                queries,
                CodesRef::RowMajor(codes),
                dim,
                &state.table,
                norms,
                k,
                row_scope,
                &mut scores,
                &mut rows,
            )?;
        } else {
            // No row to score: the queries are still checked.
            crate::search::asym::check_queries(queries, dim)?;
        }
        found.extend(rows.iter().map(|&r| ids[r as usize]));
        for s in &mut scores {
            *s = cosine_distance(*s);
        }
        Ok(AsymNeighbours {
            columns: cols,
            distances: scores,
            ids: found,
        })
    }

    /// Every alive row within Lee distance `radius` (inclusive) of each query.
    pub fn range_search(&self, queries: &[u8], radius: u32, filter: Option<Filter<'_>>) -> Result<RangeResult> {
        let width = self.width();
        let nq = self.check_queries(queries)?;
        let scope = self.scope(filter, nq);
        let (codes, ids) = (scope.codes(self), scope.ids(self));
        let mut lims = with_capacity("range_search", "the lims output", nq + 1, 1)?;
        lims.push(0);
        let mut out = RangeResult {
            lims,
            distances: Vec::new(),
            ids: Vec::new(),
        };
        let mut d = vec![0u32; ids.len()];
        let mut hits: Vec<(u32, u64)> = Vec::new();
        for q in queries.chunks_exact(width) {
            if !d.is_empty() {
                crate::search::lee::lee_one_to_many(q, codes, &mut d)?;
            }
            hits.clear();
            hits.extend(
                d.iter()
                    .zip(ids)
                    .enumerate()
                    .filter(|&(r, (&dist, _))| dist <= radius && scope.allows(r))
                    .map(|(_, (&dist, &id))| (dist, id)),
            );
            hits.sort_unstable(); // (distance, id)
                                  // The output grows with the hits, which only the search finds out: each
                                  // query's hits are reserved before they are appended.
            reserve(&mut out.distances, hits.len(), "range_search", "the distances output")?;
            reserve(&mut out.ids, hits.len(), "range_search", "the ids output")?;
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

/// Weighted Lee: the distance is not a popcount, so rank every allowed row per query.
fn weighted_search(
    queries: &[u8],
    codes: &[u8],
    ids: &[u64],
    scope: &Scope<'_>,
    width: usize,
    k: usize,
    w: LeeWeights,
) -> Result<Neighbours> {
    let mask = scope.mask.as_deref();
    let cols = scoped_columns(k, ids.len(), RowScope { mask, tie_keys: None });
    let nq = queries.len() / width;
    let mut out = Neighbours {
        columns: cols,
        distances: Vec::new(),
        weighted: with_capacity("search", "the distances output", nq, cols)?,
        ids: with_capacity("search", "the ids output", nq, cols)?,
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
    Ok(out)
}
