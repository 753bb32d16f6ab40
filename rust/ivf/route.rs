//! Routing a query by integer dot products with quantised centroids.
//!
//! Routing needs the order of the centroids by dot product with the query,
//! not the dot products themselves. Each centroid is stored as `i8` levels
//! `c'ᵢ = round(127·cᵢ / max|c|)` with its scale `max|c| / 127`, each query as
//! levels `q'ᵢ = round(63·qᵢ / max|q|)` (the query's own scale is the same for
//! every centroid, so it never changes the order), and a centroid's score is
//! the exact integer `Σ q'ᵢ·c'ᵢ` times its scale (one f32 product).
//!
//! - **The same lists on every CPU**: the integer sums are exact on every
//!   backend (the float product of an f32 matrix product depends on the
//!   kernel's summation order, so near-ties could route differently).
//! - **Cheaper**: at 2 000 lists × 384 dimensions the f32 product (at the
//!   FMA peak) took 9–11 % of an inverted-file search; `vpdpbusd` does four
//!   times the multiply-adds of an f32 FMA per instruction.
//! - **Close to the float order**: on 1 000 held-out MiniLM queries and
//!   2 000 spherical k-means centroids, 99.3 % of the 24 lists routed to are
//!   those of the f32 dot products (the others sit at the cut-off).
//!
//! Dimensions above [`ROUTE_MAX_DIM`] would overflow the i32 sums; there
//! the index routes by f32 dot products (none of the above holds).

use crate::error::{with_capacity, Result};
use crate::kernels::scalar_route::{ROUTE_GROUP, ROUTE_TILE};
use crate::kernels::Kernels;

/// The largest dimension routed by integers: `127·127·dim < 2³¹`.
pub(crate) const ROUTE_MAX_DIM: usize = 131_072;
/// Query levels: −63..=63, stored plus [`QUERY_OFFSET`] (1..=127, unsigned).
const QUERY_LEVELS: f64 = 63.0;
const QUERY_OFFSET: i32 = 64;
/// Centroid levels: −127..=127.
const CENTROID_LEVELS: f64 = 127.0;

/// The quantised centroids of an inverted file, in the kernels' layout.
#[derive(Debug, Clone)]
pub(crate) struct RouteTable {
    dim: usize,
    groups: usize,
    lists: usize,
    centroids: Vec<i8>,
    /// Per centroid: `max|c| / 127` (0 for a zero centroid).
    scales: Vec<f32>,
    /// Per centroid: `64·Σ c'ᵢ`, the part of a raw kernel sum due to the queries' offset.
    offsets: Vec<i32>,
}

impl RouteTable {
    /// The table of `centroids` (`lists × dim`, finite), or `None` above
    /// [`ROUTE_MAX_DIM`] dimensions.
    pub(crate) fn new(centroids: &[f32], dim: usize) -> Result<Option<RouteTable>> {
        if dim > ROUTE_MAX_DIM || dim == 0 {
            return Ok(None);
        }
        let lists = centroids.len() / dim;
        let groups = dim.div_ceil(ROUTE_GROUP);
        let tiles = lists.div_ceil(ROUTE_TILE);
        let mut packed = with_capacity(
            "centroids",
            "the routing table",
            tiles * ROUTE_TILE,
            groups * ROUTE_GROUP,
        )?;
        packed.resize(tiles * ROUTE_TILE * groups * ROUTE_GROUP, 0i8);
        let (mut scales, mut offsets) = (Vec::with_capacity(lists), Vec::with_capacity(lists));
        for (l, c) in centroids.chunks_exact(dim).enumerate() {
            let top = f64::from(c.iter().fold(0f32, |m, &v| m.max(v.abs())));
            let step = if top > 0.0 { CENTROID_LEVELS / top } else { 0.0 };
            let (tile, lane) = (l / ROUTE_TILE, l % ROUTE_TILE);
            let mut sum = 0i32;
            for (d, &v) in c.iter().enumerate() {
                let level = level(f64::from(v) * step, CENTROID_LEVELS) as i8;
                let (g, j) = (d / ROUTE_GROUP, d % ROUTE_GROUP);
                packed[((tile * groups + g) * ROUTE_TILE + lane) * ROUTE_GROUP + j] = level;
                sum += i32::from(level);
            }
            scales.push((top / CENTROID_LEVELS) as f32);
            offsets.push(QUERY_OFFSET * sum);
        }
        Ok(Some(RouteTable {
            dim,
            groups,
            lists,
            centroids: packed,
            scales,
            offsets,
        }))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.centroids.capacity() + 4 * self.scales.capacity() + 4 * self.offsets.capacity()
    }

    /// Calls `each(query, first, scores)` with the routing scores of each
    /// of `queries` (`rows × dim`, finite) with the centroids
    /// `first..first + scores.len()`, a tile of 64 centroids at a time in
    /// ascending order (every query per tile: only `rows × 64` dot products
    /// are ever held, where the scores of every list took megabytes that
    /// were allocated and paged in again by each search).
    pub(crate) fn for_each_tile(
        &self,
        kernels: &Kernels,
        queries: &[f32],
        mut each: impl FnMut(usize, usize, &[f32]),
    ) -> Result<()> {
        let rows = queries.len() / self.dim;
        let query_len = self.groups * ROUTE_GROUP;
        let mut levels = with_capacity("queries", "the routing levels", rows, query_len)?;
        levels.resize(rows * query_len, 0u8);
        for (q, l) in queries.chunks_exact(self.dim).zip(levels.chunks_exact_mut(query_len)) {
            query_levels(q, l);
        }
        let mut dots = with_capacity("queries", "the routing dot products", rows, ROUTE_TILE)?;
        dots.resize(rows * ROUTE_TILE, 0i32);
        let mut scores = [0f32; ROUTE_TILE];
        for (t, tile) in self.centroids.chunks_exact(ROUTE_TILE * query_len).enumerate() {
            (kernels.route_dots)(&levels, self.groups, tile, &mut dots);
            let first = t * ROUTE_TILE;
            let count = ROUTE_TILE.min(self.lists - first);
            let (offsets, scales) = (&self.offsets[first..][..count], &self.scales[first..][..count]);
            for (q, dots) in dots.chunks_exact(ROUTE_TILE).enumerate() {
                for (((o, &d), &offset), &scale) in scores.iter_mut().zip(dots).zip(offsets).zip(scales) {
                    // Exact in i32 (|Σ q'·c'| ≤ 63·127·dim) and in f32 below 2²⁴.
                    *o = d.wrapping_sub(offset) as f32 * scale;
                }
                each(q, first, &scores[..count]);
            }
        }
        Ok(())
    }
}

/// `x` rounded half away from zero, clamped to `±top`: `f64::round`,
/// without its libm call (the x86-64 baseline has no rounding instruction;
/// the call took 1 % of a search): `as` truncates. (Unlike `round`, the sum
/// rounds 0.5 − 2⁻⁵⁴ up; the levels only have to be the same everywhere.)
#[inline]
fn level(x: f64, top: f64) -> i32 {
    (x + 0.5f64.copysign(x)).clamp(-top, top) as i32
}

/// A query's levels plus 64 (1..=127; all 64 for a zero query), zero-padded
/// to whole groups (a padding byte meets a zero centroid level).
fn query_levels(q: &[f32], out: &mut [u8]) {
    // In f64: 63 / max|q| stays finite for the smallest f32.
    let top = f64::from(q.iter().fold(0f32, |m, &v| m.max(v.abs())));
    let step = if top > 0.0 { QUERY_LEVELS / top } else { 0.0 };
    for (o, &v) in out.iter_mut().zip(q) {
        let level = level(f64::from(v) * step, QUERY_LEVELS);
        *o = (level + QUERY_OFFSET) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Backend;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// A route score is the exact integer dot of the levels times the
        /// centroid's scale, on every backend; levels stay in range.
        #[test]
        fn scores_are_exact_integer_dots_of_the_levels_on_every_backend(
            seed in any::<u64>(), dim in 1usize..300, lists in 1usize..140, rows in 1usize..6,
        ) {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            };
            let centroids: Vec<f32> = (0..lists * dim).map(|_| next() as f32).collect();
            let mut queries: Vec<f32> = (0..rows * dim).map(|_| (next() * 1e3) as f32).collect();
            queries[..dim].fill(0.0); // a zero query
            let table = RouteTable::new(&centroids, dim).unwrap().unwrap();
            let mut want = Vec::new();
            for q in queries.chunks_exact(dim) {
                let mut levels = vec![0u8; table.groups * ROUTE_GROUP];
                query_levels(q, &mut levels);
                prop_assert!(levels[..dim].iter().all(|&l| (1..=127).contains(&l)));
                prop_assert!(levels[dim..].iter().all(|&l| l == 0));
                for c in centroids.chunks_exact(dim) {
                    let top = f64::from(c.iter().fold(0f32, |m, &v| m.max(v.abs())));
                    let dot: i64 = (0..dim)
                        .map(|d| {
                            let level = i64::from(level(f64::from(c[d]) * (127.0 / top), 127.0));
                            (i64::from(levels[d]) - 64) * level
                        })
                        .sum();
                    want.push(dot as f32 * (top / 127.0) as f32);
                }
            }
            prop_assert!(want[..lists].iter().all(|&s| s == 0.0));
            for backend in Backend::supported() {
                let kernels = Kernels::for_backend(backend).unwrap();
                let mut got = vec![f32::NAN; rows * lists];
                table
                    .for_each_tile(kernels, &queries, |q, first, s| {
                        got[q * lists + first..][..s.len()].copy_from_slice(s)
                    })
                    .unwrap();
                prop_assert_eq!(&got, &want, "{:?}", backend);
            }
        }
    }

    /// `level` is `f64::round`, clamped, on quarters, halves and near-halves.
    #[test]
    fn level_rounds_half_away_from_zero_and_clamps() {
        for i in -1000..=1000 {
            for x in [i as f64 * 0.25, i as f64 * 0.25 + 1e-9, i as f64 * 0.25 - 1e-9] {
                assert_eq!(level(x, 63.0), x.round().clamp(-63.0, 63.0) as i32, "{x}");
            }
        }
    }

    /// Dimensions whose integer sums could pass 2³¹ get no table (float routing).
    #[test]
    fn no_table_above_the_largest_exact_dimension() {
        assert!(RouteTable::new(&[0.5f32; 2 * ROUTE_MAX_DIM], ROUTE_MAX_DIM)
            .unwrap()
            .is_some());
        assert!(RouteTable::new(&[0.5f32; ROUTE_MAX_DIM + 1], ROUTE_MAX_DIM + 1)
            .unwrap()
            .is_none());
        assert!(127 * 127 * ROUTE_MAX_DIM < i32::MAX as usize);
    }
}
