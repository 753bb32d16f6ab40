//! Searching an inverted file: route each query to its `nprobe` nearest
//! lists (largest centroid dot product, ties to the lower list), scan them
//! and merge into one top-k ordered like [`crate::Index`]'s (ties by id).
//!
//! Float queries are scored asymmetrically (SPEC §8) by the fast-scan
//! kernel with its exact re-rank ([`search_asym_lists`]); code queries by
//! Lee distance with the same nibble-lookup kernel: a table per nibble of
//! `4 − Lee(query nibble, row nibble)` (Lee = popcount of the Gray XOR, ≤ 4
//! per nibble), so the kernel's integer sums are exact distances.

use super::kmeans::{dots, normalise_row};
use super::lists::List;
use super::IvfIndex;
use crate::check::check_k;
use crate::code_width;
use crate::error::{with_capacity, zeroed, Error, Result};
use crate::index::Filter;
use crate::kernels::scalar_asym::{first_pair, BLOCK_ROWS};
use crate::kernels::Kernels;
use crate::keys::check_padding;
use crate::search::asym::{check_queries, cosine_distance, search_asym_lists_batch, BlockSet, SharedTables};
use crate::search::{flag_bits, result_columns};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::BinaryHeap;

/// Queries routed together (one matrix product against the centroids), at
/// most: the batch is split evenly over the threads in chunks of at most
/// this many and at least [`MIN_ROUTE_QUERIES`] (each chunk's product packs
/// all the centroids once; 512 measured no faster than 256).
const ROUTE_QUERIES: usize = 256;
const MIN_ROUTE_QUERIES: usize = 64;
/// The fewest queries an asymmetric search task takes (below, a list is
/// rarely shared by two of them).
const MIN_CHUNK_QUERIES: usize = 64;
/// The most: a task holds tables and candidates for each of its queries
/// (≈ 16 KB at 384 dimensions), so a large batch runs in tasks of this many.
const MAX_CHUNK_QUERIES: usize = 1024;
/// Route keys or scores (8 or 4 bytes each) a routing task may hold: at
/// most 32 MB. Caps its queries below [`ROUTE_QUERIES`] only above 16 384 lists.
const ROUTE_KEYS: usize = 1 << 22;

/// Asymmetric results: `queries × columns`, ascending by `1 − cosine`
/// (f32), ties to the lower id; a query whose probed lists hold fewer than
/// `columns` allowed rows has its last columns at distance +∞, id `u64::MAX`.
#[derive(Debug, Clone, PartialEq)]
pub struct IvfAsymNeighbours {
    pub columns: usize,
    pub distances: Vec<f32>,
    pub ids: Vec<u64>,
}

/// Lee results: as [`IvfAsymNeighbours`], distances u32 (missing: `u32::MAX`).
#[derive(Debug, Clone, PartialEq)]
pub struct IvfLeeNeighbours {
    pub columns: usize,
    pub distances: Vec<u32>,
    pub ids: Vec<u64>,
}

/// Per list, the rows a search may return (`None`: all of them).
struct ListMasks<'a>(Vec<Option<Cow<'a, [u8]>>>);

impl<'a> ListMasks<'a> {
    /// Masks for `filter` (alive rows whose id it allows), or each list's alive mask.
    fn new(lists: &'a [List], filter: Option<Filter<'_>>) -> ListMasks<'a> {
        let Some(filter) = filter else {
            return ListMasks(lists.iter().map(|l| l.alive_mask().map(Cow::Borrowed)).collect());
        };
        let wanted: Option<foldhash::HashSet<u64>> = match filter {
            Filter::Ids(ids) => Some(ids.iter().copied().collect()),
            Filter::Mask(_) => None,
        };
        let allows = |id: u64| match filter {
            Filter::Ids(_) => wanted.as_ref().is_some_and(|w| w.contains(&id)),
            Filter::Mask(m) => usize::try_from(id).ok().and_then(|i| m.get(i)).is_some_and(|&b| b != 0),
        };
        ListMasks(
            lists
                .par_iter()
                .map(|l| {
                    let mut bits = vec![0u8; l.rows().div_ceil(8)];
                    for r in (0..l.rows()).filter(|&r| l.is_alive(r) && allows(l.ids[r])) {
                        bits[r / 8] |= 1 << (r % 8);
                    }
                    Some(Cow::Owned(bits))
                })
                .collect(),
        )
    }

    fn get(&self, list: usize) -> Option<&[u8]> {
        self.0[list].as_deref()
    }

    fn allowed(&self, lists: &[List]) -> usize {
        self.0
            .iter()
            .zip(lists)
            .map(|(m, l)| match m {
                None => l.rows(),
                Some(bits) => bits.iter().map(|b| b.count_ones() as usize).sum(),
            })
            .sum()
    }
}

impl IvfIndex {
    /// The `nprobe` nearest lists of each of `queries` (float rows, any
    /// length; routed by their direction): `queries × nprobe` list numbers,
    /// each query's by (routing score descending, list ascending). The
    /// score is the integer dot product of the quantised query and centroid
    /// ([`super::route`]; the same on every backend), or the f32 one above
    /// `ROUTE_MAX_DIM` dimensions.
    fn route(&self, kernels: &Kernels, queries: &[f32], nprobe: usize) -> Result<Vec<Vec<u32>>> {
        let dim = self.dim;
        let lists = self.lists.len();
        let nq = queries.len() / dim.max(1);
        // Every query of a chunk keeps up to min(nprobe, lists) keys (its lists
        // arrive a tile at a time), and float routing holds its scores for
        // every list: at most ROUTE_KEYS a chunk (or one query's, above
        // ROUTE_KEYS lists).
        let chunk = nq
            .div_ceil(rayon::current_num_threads())
            .clamp(MIN_ROUTE_QUERIES, ROUTE_QUERIES)
            .min((ROUTE_KEYS / lists.max(1)).max(1));
        queries
            .par_chunks(chunk * dim)
            .map(|chunk| {
                let nprobe = nprobe.min(lists);
                let mut nearest: Vec<NearestLists> =
                    (0..chunk.len() / dim).map(|_| NearestLists::new(nprobe)).collect();
                match &self.route {
                    Some(table) => {
                        table.for_each_tile(kernels, chunk, |q, first, scores| nearest[q].feed(first, scores))?
                    }
                    None => {
                        let mut unit = chunk.to_vec();
                        unit.chunks_exact_mut(dim).for_each(normalise_row);
                        let mut d = zeroed("queries", "the routing scores", unit.len() / dim, lists)?;
                        dots(&unit, &self.centroids, dim, &mut d);
                        for (n, d) in nearest.iter_mut().zip(d.chunks_exact(lists)) {
                            n.feed(0, d);
                        }
                    }
                }
                Ok(nearest.into_iter().map(NearestLists::finish).collect::<Vec<_>>())
            })
            .collect::<Result<Vec<_>>>()
            .map(|chunks| chunks.into_iter().flatten().collect())
    }

    /// Checks `k` and `nprobe` (clamped to the number of lists) and the output size.
    fn check_search(&self, nq: usize, k: usize, nprobe: usize, allowed: usize) -> Result<(usize, usize)> {
        check_k(k)?;
        if nprobe == 0 {
            return Err(Error::value("nprobe", "must be at least 1"));
        }
        if !self.is_trained() {
            return Err(Error::value("index", "is not trained: call train first"));
        }
        let kk = result_columns(k, allowed);
        nq.checked_mul(kk)
            .filter(|&c| c.checked_mul(12).is_some())
            .ok_or_else(|| Error::shape("k", format!("{nq} × {kk} results"), "no buffer that large"))?;
        Ok((kk, nprobe.min(self.lists.len())))
    }

    /// The asymmetric top-`k` (SPEC §8) of float `queries` (`Q × dim`,
    /// finite) among the rows of each query's `nprobe` nearest lists that
    /// `filter` allows (removed rows never). With `nprobe ≥ lists` this is
    /// exactly [`crate::Index::search_asym`] over the same rows and ids.
    pub fn search_asym(
        &self,
        queries: &[f32],
        k: usize,
        nprobe: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<IvfAsymNeighbours> {
        self.search_asym_with(Kernels::active(), queries, k, nprobe, filter)
    }

    /// [`IvfIndex::search_asym`] with the given kernels.
    pub fn search_asym_with(
        &self,
        kernels: &Kernels,
        queries: &[f32],
        k: usize,
        nprobe: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<IvfAsymNeighbours> {
        let nq = check_queries(queries, self.dim)?;
        let masks = ListMasks::new(&self.lists, filter);
        let (kk, nprobe) = self.check_search(nq, k, nprobe, masks.allowed(&self.lists))?;
        let mut distances = with_capacity("search", "the distances output", nq, kk)?;
        distances.resize(nq * kk, f32::INFINITY);
        let mut ids = with_capacity("search", "the ids output", nq, kk)?;
        ids.resize(nq * kk, u64::MAX);
        if kk == 0 {
            return Ok(IvfAsymNeighbours {
                columns: 0,
                distances,
                ids,
            });
        }
        // Routed by the queries as given (the centroids are unrotated);
        // scored rotated by the thresholds' rotation (SPEC §9), as `Index` scores.
        let routes = self.route(kernels, queries, nprobe)?;
        let rotated = match self.thresholds.rotation() {
            Some(_) => Some(self.thresholds.queries(queries.to_vec(), self.dim)?),
            None => None,
        };
        let shared = self.shared.get_or_init(|| SharedTables::new(&self.table));
        let sets: Vec<BlockSet<'_>> = (0..self.lists.len())
            .into_par_iter()
            .map(|l| self.lists[l].block_set(masks.get(l)))
            .collect();
        let scored = rotated.as_deref().unwrap_or(queries);
        // One task per chunk of queries: each list is scanned once for all
        // the chunk's queries routed to it (fewer, larger chunks share more:
        // one chunk per thread measured 1.06× two at 1 M rows, nprobe 24).
        let chunk = nq
            .div_ceil(rayon::current_num_threads())
            .clamp(MIN_CHUNK_QUERIES, MAX_CHUNK_QUERIES);
        scored
            .par_chunks(chunk * self.dim)
            .zip(routes.par_chunks(chunk))
            .zip(distances.par_chunks_mut(chunk * kk).zip(ids.par_chunks_mut(chunk * kk)))
            .for_each(|((q, routes), (d, i))| {
                let found = search_asym_lists_batch(kernels, q, &self.table, shared, &sets, routes, kk);
                for ((found, d), i) in found.into_iter().zip(d.chunks_mut(kk)).zip(i.chunks_mut(kk)) {
                    for ((d, i), (score, list, row)) in d.iter_mut().zip(i.iter_mut()).zip(found) {
                        *d = cosine_distance(score);
                        *i = self.lists[list].ids[row];
                    }
                }
            });
        Ok(IvfAsymNeighbours {
            columns: kk,
            distances,
            ids,
        })
    }

    /// The Lee top-`k` of code `queries` (`Q × code_width(dim)`, Gray-coded,
    /// padding bits zero) among the rows of each query's `nprobe` nearest
    /// lists that `filter` allows, ascending by distance, ties to the lower
    /// id. A code query is routed by its reconstruction x̂ (SPEC §8); with
    /// `nprobe ≥ lists` this is exactly [`crate::Index::search`].
    pub fn search_lee(
        &self,
        queries: &[u8],
        k: usize,
        nprobe: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<IvfLeeNeighbours> {
        self.search_lee_with(Kernels::active(), queries, None, k, nprobe, filter)
    }

    /// Lee search of float `queries` (`Q × dim`, finite): each is encoded
    /// with the index's thresholds and routed by its own direction.
    pub fn search_lee_floats(
        &self,
        queries: &[f32],
        k: usize,
        nprobe: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<IvfLeeNeighbours> {
        let nq = check_queries(queries, self.dim)?;
        let codes = self.encode(queries, nq)?;
        self.search_lee_with(Kernels::active(), &codes, Some(queries), k, nprobe, filter)
    }

    /// [`IvfIndex::search_lee`] with the given kernels; `floats`: the
    /// queries to route by (their reconstructions when `None`).
    pub fn search_lee_with(
        &self,
        kernels: &Kernels,
        queries: &[u8],
        floats: Option<&[f32]>,
        k: usize,
        nprobe: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<IvfLeeNeighbours> {
        let width = code_width(self.dim);
        let nq = crate::check::check_rows("queries", queries.len(), width)?;
        check_padding(queries, self.dim).map_err(|e| match e {
            Error::Value { reason, .. } => Error::Value { arg: "queries", reason },
            e => e,
        })?;
        let masks = ListMasks::new(&self.lists, filter);
        let (kk, nprobe) = self.check_search(nq, k, nprobe, masks.allowed(&self.lists))?;
        let mut distances = with_capacity("search", "the distances output", nq, kk)?;
        distances.resize(nq * kk, u32::MAX);
        let mut ids = with_capacity("search", "the ids output", nq, kk)?;
        ids.resize(nq * kk, u64::MAX);
        if kk == 0 {
            return Ok(IvfLeeNeighbours {
                columns: 0,
                distances,
                ids,
            });
        }
        let routes = match floats {
            Some(f) => self.route(kernels, f, nprobe)?,
            None => {
                let mut decoded = with_capacity("search", "the decoded queries", nq, self.dim)?;
                decoded.resize(nq * self.dim, 0f32);
                // In the input space (rotated back, SPEC §9), where the centroids are.
                self.thresholds.decode(queries, self.dim, &mut decoded)?;
                self.route(kernels, &decoded, nprobe)?
            }
        };
        queries
            .par_chunks_exact(width)
            .zip(routes.par_iter())
            .zip(distances.par_chunks_mut(kk).zip(ids.par_chunks_mut(kk)))
            .for_each(|((q, route), (d, i))| {
                let found = self.lee_lists(kernels, q, route, &masks, kk);
                for ((d, i), (dist, id)) in d.iter_mut().zip(i.iter_mut()).zip(found) {
                    (*d, *i) = (dist, id);
                }
            });
        Ok(IvfLeeNeighbours {
            columns: kk,
            distances,
            ids,
        })
    }

    /// The `kk` nearest allowed rows of `route`'s lists to code `q`, by (Lee distance, id).
    fn lee_lists(&self, kernels: &Kernels, q: &[u8], route: &[u32], masks: &ListMasks, kk: usize) -> Vec<(u32, u64)> {
        let width = q.len();
        let luts = lee_tables(q);
        let full = 8 * width as u32; // 4 per nibble: the table entries of a zero distance
        let mut best: BinaryHeap<(u32, u64)> = BinaryHeap::with_capacity(kk + 1);
        let mut sums = Vec::new();
        for (i, &l) in route.iter().enumerate() {
            let list = &self.lists[l as usize];
            let rows = list.rows();
            if rows == 0 {
                continue;
            }
            sums.resize(rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS, 0u32);
            // The next list's first blocks, prefetched while this one's last are scanned.
            let next = route
                .get(i + 1)
                .map_or(&[][..], |&n| first_pair(&self.lists[n as usize].blocks, width));
            (kernels.asym_scan)(&[&luts], width, &list.blocks, next, &mut sums);
            let mask = masks.get(l as usize);
            for (r, &s) in sums[..rows].iter().enumerate() {
                if mask.is_some_and(|m| m[r / 8] >> (r % 8) & 1 == 0) {
                    continue;
                }
                let entry = (full - s, list.ids[r]);
                if best.len() < kk {
                    best.push(entry);
                } else if best.peek().is_some_and(|top| entry < *top) {
                    best.pop();
                    best.push(entry);
                }
            }
        }
        best.into_sorted_vec()
    }
}

/// The key ordering lists by (dot product descending, list ascending) as
/// an ascending u64: the dot's bits mapped to an unsigned integer that
/// orders like `f32::total_cmp`, complemented, above the list number.
#[inline(always)]
fn route_key(dot: f32, list: u32) -> u64 {
    let bits = dot.to_bits();
    // Negative: all bits flipped (larger magnitude, smaller); positive: the sign bit set.
    let ordered = bits ^ ((((bits as i32) >> 31) as u32) | 0x8000_0000);
    (u64::from(!ordered) << 32) | u64::from(list)
}

/// The dot of a [`route_key`].
#[inline]
fn route_key_dot(key: u64) -> f32 {
    let ordered = !((key >> 32) as u32);
    // Undoes `route_key`'s map: the sign bit set for positives, all bits flipped for negatives.
    f32::from_bits(if ordered & 0x8000_0000 != 0 {
        ordered ^ 0x8000_0000
    } else {
        !ordered
    })
}

/// The `nprobe` (≥ 1) lists of the largest `dots` (one per list), by (dot
/// descending by `total_cmp`, list ascending): [`NearestLists`] fed once.
#[cfg(test)]
fn nearest_lists(dots: &[f32], nprobe: usize) -> Vec<u32> {
    let mut nearest = NearestLists::new(nprobe.min(dots.len()));
    nearest.feed(0, dots);
    nearest.finish()
}

/// One query's `nprobe` nearest lists, fed the dots of the lists in
/// ascending order in runs of any length (the routing computes them a tile
/// of centroids at a time): the `nprobe` smallest keys so far in a max-heap,
/// the largest on top. Only a dot at or above the top key's dot (or NaN) can
/// have a key below it: a test that vectorises flags those sixteen at a time
/// and only they are visited. Keeping the bar at the current `nprobe`-th best
/// (not refreshing it every few `nprobe` keys, as a buffer cut back by
/// selection did) lets about `nprobe·ln(lists/nprobe)` keys in, a third as
/// many at nprobe 24 of 2 000 lists.
struct NearestLists {
    nprobe: usize,
    kept: BinaryHeap<u64>,
    /// The dot of the top key once `nprobe` are kept (−∞ before).
    floor: f32,
}

impl NearestLists {
    /// For `nprobe` lists (at most the number of lists fed).
    fn new(nprobe: usize) -> NearestLists {
        NearestLists {
            nprobe,
            kept: BinaryHeap::with_capacity(nprobe),
            floor: f32::NEG_INFINITY,
        }
    }

    /// The dots of lists `first..first + dots.len()`.
    fn feed(&mut self, first: usize, dots: &[f32]) {
        if self.nprobe == 0 {
            return;
        }
        for (run, ds) in dots.chunks(16).enumerate() {
            let floor = self.floor;
            let mut pass = [0u8; 16];
            for (p, &d) in pass.iter_mut().zip(ds) {
                *p = u8::from(d >= floor || d.is_nan());
            }
            // A bar raised by this run leaves these a superset.
            let mut bits = flag_bits(pass);
            while bits != 0 {
                let j = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let key = route_key(ds[j], (first + 16 * run + j) as u32);
                if self.kept.len() < self.nprobe {
                    self.kept.push(key);
                    if self.kept.len() < self.nprobe {
                        continue;
                    }
                } else {
                    match self.kept.peek_mut() {
                        Some(mut top) if key < *top => *top = key,
                        _ => continue,
                    }
                }
                self.floor = self.kept.peek().map_or(f32::NEG_INFINITY, |&top| route_key_dot(top));
            }
        }
    }

    /// The lists, nearest first.
    fn finish(self) -> Vec<u32> {
        self.kept.into_sorted_vec().into_iter().map(|k| k as u32).collect()
    }
}

/// Per code byte `b` of query `q`: 16 entries `4 − popcount(hi(q_b) ^ n)`
/// for the high nibble, then 16 for the low one (the asymmetric kernel's
/// table layout); entries ≤ 4.
fn lee_tables(q: &[u8]) -> Vec<u8> {
    let mut luts = vec![0u8; 32 * q.len()];
    for (b, &byte) in q.iter().enumerate() {
        for n in 0..16u8 {
            luts[32 * b + n as usize] = 4 - ((byte >> 4) ^ n).count_ones() as u8;
            luts[32 * b + 16 + n as usize] = 4 - ((byte & 15) ^ n).count_ones() as u8;
        }
    }
    luts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::thresholds::Thresholds;
    use crate::ivf::IvfParams;
    use proptest::prelude::*;

    /// Clustered rows (seeded), every fifth a copy of an earlier row: equal
    /// scores across lists and within one, which only the ids can order.
    fn clustered(seed: u64, rows: usize, dim: usize) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let centres: Vec<f32> = (0..6 * dim).map(|_| 4.0 * next() as f32).collect();
        let mut x = Vec::with_capacity(rows * dim);
        for r in 0..rows {
            if r % 5 == 4 {
                let from = (r / 2) * dim;
                x.extend_from_within(from..from + dim);
                continue;
            }
            let c = ((next() + 0.5) * 6.0) as usize % 6;
            x.extend((0..dim).map(|d| centres[c * dim + d] + next() as f32));
        }
        x
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The route selection equals a full sort by (dot descending by
        /// `total_cmp`, list ascending), for dots with many exact ties,
        /// both zeros, negatives, infinities and NaN, and any `nprobe`; and
        /// `route_key_dot` inverts `route_key`.
        #[test]
        fn nearest_lists_equal_a_full_sort(
            dots in proptest::collection::vec(
                prop_oneof![
                    (-6i32..6).prop_map(|v| v as f32 * 0.25),
                    Just(-0.0f32),
                    Just(f32::INFINITY),
                    Just(f32::NEG_INFINITY),
                    Just(f32::NAN),
                    -1e3f32..1e3,
                ],
                1..300,
            ),
            nprobe in 0usize..320,
        ) {
            let mut order: Vec<u32> = (0..dots.len() as u32).collect();
            order.sort_by(|&a, &b| dots[b as usize].total_cmp(&dots[a as usize]).then(a.cmp(&b)));
            order.truncate(nprobe);
            prop_assert_eq!(&nearest_lists(&dots, nprobe), &order);
            // Fed in runs of any lengths (as the routing feeds tiles), the same lists.
            let mut nearest = NearestLists::new(nprobe.min(dots.len()));
            let mut at = 0;
            while at < dots.len() {
                let run = (1 + (at * 7 + nprobe) % 70).min(dots.len() - at);
                nearest.feed(at, &dots[at..at + run]);
                at += run;
            }
            prop_assert_eq!(nearest.finish(), order);
            for (l, &d) in dots.iter().enumerate() {
                prop_assert_eq!(route_key_dot(route_key(d, l as u32)).to_bits(), d.to_bits());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// With any `nprobe`, each query's answer is the exact top-k (SPEC §8,
        /// ties by id) of the allowed rows of its `nprobe` nearest lists —
        /// the exhaustive index's answer restricted to those rows — padded at
        /// the end, on every thread count: the re-rank that stops at the k-th
        /// exact score misses nothing and keeps ties by id.
        #[test]
        fn few_probes_give_the_exact_top_k_of_the_probed_lists(
            seed in 0u64..10_000, dim in 3usize..40, nprobe in 1usize..9, k in 1usize..45,
            threads in 1usize..4, drop in 0usize..3, filtered in any::<bool>(),
        ) {
            let (rows, lists) = (900usize, 8usize);
            let x = clustered(seed, rows, dim);
            let mut ivf = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
            let params = IvfParams { lists: Some(lists), points_per_list: Some(64), iterations: Some(4), seed };
            ivf.train(&x, params).unwrap();
            let ids = ivf.add(&x, None).unwrap();
            // The reference: the exhaustive index over the same rows and ids (another scan path).
            let mut flat = crate::Index::new(dim, crate::IndexThresholds::Gaussian, None).unwrap();
            flat.add(&x, Some(&ids)).unwrap();
            let removed: Vec<u64> = ids.iter().copied().step_by(11).take(drop * 20).collect();
            ivf.remove(&removed).unwrap();
            flat.remove(&removed).unwrap();
            let allowed: Vec<u64> = ids.iter().copied().filter(|&i| !filtered || i % 3 != 0).collect();
            let filter = filtered.then_some(Filter::Ids(&allowed));
            // Queries: stored rows (exact ties) and new points.
            let mut queries = x[..3 * dim].to_vec();
            queries.extend(clustered(seed + 1, 4, dim));
            let got = crate::parallel::install(Some(threads), || ivf.search_asym(&queries, k, nprobe, filter))
                .unwrap()
                .unwrap();
            let routes = ivf.route(Kernels::active(), &queries, nprobe.min(lists)).unwrap();
            for (i, (q, route)) in queries.chunks_exact(dim).zip(&routes).enumerate() {
                let probed: Vec<u64> = route
                    .iter()
                    .flat_map(|&l| ivf.lists[l as usize].ids.iter().copied())
                    .filter(|id| allowed.contains(id))
                    .collect();
                let want = flat.search_asym(q, k, Some(Filter::Ids(&probed))).unwrap();
                let row = i * got.columns..(i + 1) * got.columns;
                let (d, found) = (&got.distances[row.clone()], &got.ids[row]);
                prop_assert_eq!(&found[..want.columns], &want.ids[..], "query {}", i);
                prop_assert_eq!(&d[..want.columns], &want.distances[..]);
                prop_assert!(found[want.columns..].iter().all(|&id| id == u64::MAX));
                prop_assert!(d[want.columns..].iter().all(|&v| v == f32::INFINITY));
            }
        }
    }
}
