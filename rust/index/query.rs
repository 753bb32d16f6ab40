//! Exact k-NN and range search over an index, optionally restricted by a filter.

use super::Index;
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::lee::{lee_counts, LeeWeights};
use crate::search::{result_columns, search_with};
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

/// The rows a search looks at, in id order: their codes (borrowed when they
/// are all the stored rows in order) and their ids.
#[derive(Debug)]
pub(crate) struct View {
    /// `None`: the stored codes as they are.
    codes: Option<Vec<u8>>,
    ids: Vec<u64>,
}

impl View {
    fn codes<'a>(&'a self, index: &'a Index) -> &'a [u8] {
        self.codes.as_deref().unwrap_or(&index.data().codes)
    }
}

impl Index {
    /// The rows `keep(row)` allows, ordered by id, codes gathered unless they
    /// are exactly the stored rows in order.
    fn build_view(&self, keep: impl Fn(usize) -> bool) -> View {
        let data = self.data();
        let mut rows: Vec<usize> = (0..data.ids.len()).filter(|&r| keep(r)).collect();
        if !self.ids_increasing() {
            rows.sort_unstable_by_key(|&r| data.ids[r]);
        }
        let ids = rows.iter().map(|&r| data.ids[r]).collect();
        if rows.len() == data.ids.len() && rows.iter().enumerate().all(|(i, &r)| i == r) {
            return View { codes: None, ids };
        }
        let width = self.width();
        let mut codes = Vec::with_capacity(rows.len() * width);
        for r in rows {
            codes.extend_from_slice(&data.codes[r * width..(r + 1) * width]);
        }
        View {
            codes: Some(codes),
            ids,
        }
    }

    fn view_for(&self, filter: Option<Filter<'_>>) -> Cow<'_, View> {
        let alive = self.alive();
        match filter {
            None => {
                let v = self.view.get_or_init(|| Arc::new(self.build_view(|r| alive[r])));
                Cow::Borrowed(v.as_ref())
            }
            Some(Filter::Ids(ids)) => {
                let mut allowed = vec![false; alive.len()];
                for &id in ids {
                    if let Some(r) = self.row_of(id) {
                        allowed[r] = true;
                    }
                }
                Cow::Owned(self.build_view(|r| allowed[r]))
            }
            Some(f) => {
                let data_ids = &self.data().ids;
                Cow::Owned(self.build_view(|r| alive[r] && f.allows(data_ids[r])))
            }
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
        let view = self.view_for(filter);
        let codes = view.codes(self);
        if let Some(weights) = self.weights() {
            return Ok(weighted_search(queries, codes, &view.ids, width, k, weights));
        }
        let cols = result_columns(k, view.ids.len());
        let (mut distances, mut rows) = (vec![0u32; nq * cols], vec![0i64; nq * cols]);
        if cols > 0 {
            search_with(kernels, queries, codes, width, k, &mut distances, &mut rows)?;
        }
        let ids = rows.iter().map(|&r| view.ids[r as usize]).collect();
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
        self.check_queries(queries)?;
        let view = self.view_for(filter);
        let codes = view.codes(self);
        let mut out = RangeResult {
            lims: vec![0],
            distances: Vec::new(),
            ids: Vec::new(),
        };
        let mut d = vec![0u32; view.ids.len()];
        for q in queries.chunks_exact(width) {
            if !d.is_empty() {
                crate::lee::lee_one_to_many(q, codes, &mut d)?;
            }
            // View rows are in id order: a stable sort by distance gives (distance, id).
            let mut hits: Vec<(u32, u64)> = d
                .iter()
                .zip(&view.ids)
                .filter(|(&dist, _)| dist <= radius)
                .map(|(&dist, &id)| (dist, id))
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
        }
    }
}

/// Weighted Lee: the distance is not a popcount, so rank every row per query.
fn weighted_search(queries: &[u8], codes: &[u8], ids: &[u64], width: usize, k: usize, w: LeeWeights) -> Neighbours {
    let cols = result_columns(k, ids.len());
    let mut out = Neighbours {
        columns: cols,
        distances: Vec::new(),
        weighted: Vec::with_capacity(queries.len() / width * cols),
        ids: Vec::with_capacity(queries.len() / width * cols),
    };
    let mut scored: Vec<(f64, u64)> = Vec::with_capacity(ids.len());
    for q in queries.chunks_exact(width) {
        scored.clear();
        for (row, &id) in codes.chunks_exact(width).zip(ids) {
            let counts = lee_counts(q, row).unwrap_or_default();
            scored.push((w.apply(counts), id));
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
