//! The integer dot products that route an inverted file's queries, in the
//! layout the SIMD kernels read, and their portable reference kernel: every
//! variant gives the same integers (exact: no rounding anywhere), so every
//! backend routes a query to the same lists.
//!
//! Centroids are `i8` (−127..=127), queries `u8` (1..=127: a signed level
//! plus 64, the operand order of `vpmaddubsw` and `vpdpbusd`; two products
//! sum to at most 2·127·127 = 32 258, so `vpmaddubsw` never saturates).
//! Dimensions are taken four at a time ("groups", zero-padded), centroids
//! [`ROUTE_TILE`] at a time ("tiles", zero-padded):
//! `centroids[((t·groups + g)·ROUTE_TILE + c)·4 + j]` is dimension `4g + j`
//! of centroid `ROUTE_TILE·t + c`, so one 4-byte lane of a vector holds four
//! dimensions of one centroid and a vector holds consecutive centroids.

/// Centroids per tile of the layout.
pub(crate) const ROUTE_TILE: usize = 64;
/// Dimensions per group of the layout.
pub(crate) const ROUTE_GROUP: usize = 4;

/// `out[q·(ROUTE_TILE·tiles) + c] = Σ_d queries[q·4·groups + d] · centroid(c, d)`
/// for every query `q` (`4·groups` bytes each) and every (padded) centroid
/// `c` of `centroids` (`tiles` tiles of the layout above).
pub(crate) type RouteDots = fn(queries: &[u8], groups: usize, centroids: &[i8], out: &mut [i32]);

/// The shape of one [`RouteDots`] call, as [`assert_route_buffers`] checked it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteShape {
    pub queries: usize,
    pub tiles: usize,
}

/// The lengths [`RouteDots`] relies on: `groups ≥ 1`, whole queries of
/// `4·groups` bytes, whole tiles of `ROUTE_TILE·4·groups` bytes and one
/// output per (query, padded centroid). The SIMD kernels read and write
/// through raw pointers, so every shim checks these first.
pub(crate) fn assert_route_buffers(queries: usize, groups: usize, centroids: usize, out: usize) -> RouteShape {
    assert!(groups >= 1, "route_dots: groups must be at least 1");
    let query_len = groups.checked_mul(ROUTE_GROUP).expect("route_dots: groups overflow");
    let tile_len = query_len.checked_mul(ROUTE_TILE).expect("route_dots: groups overflow");
    assert!(
        queries.is_multiple_of(query_len),
        "route_dots: {queries} query bytes are not whole queries of {query_len}"
    );
    assert!(
        centroids.is_multiple_of(tile_len),
        "route_dots: {centroids} centroid bytes are not whole tiles of {tile_len}"
    );
    let shape = RouteShape {
        queries: queries / query_len,
        tiles: centroids / tile_len,
    };
    let need = shape
        .queries
        .checked_mul(shape.tiles * ROUTE_TILE)
        .expect("route_dots: queries × centroids overflows");
    assert!(out >= need, "route_dots: out holds {out} dots, fewer than {need}");
    shape
}

/// Queries the SIMD routing kernels compute together.
pub(crate) const ROUTE_QUERIES: usize = 4;

/// `queries` (whole queries of `query_len` bytes) in groups of up to
/// [`ROUTE_QUERIES`]: each group's first query, its size and its queries'
/// first pointers (the rest null).
pub(crate) fn query_groups(
    queries: &[u8],
    query_len: usize,
) -> impl Iterator<Item = (usize, usize, [*const u8; ROUTE_QUERIES])> + '_ {
    queries
        .chunks(ROUTE_QUERIES * query_len)
        .enumerate()
        .map(move |(g, group)| {
            let mut rows = [std::ptr::null(); ROUTE_QUERIES];
            for (r, query) in rows.iter_mut().zip(group.chunks_exact(query_len)) {
                *r = query.as_ptr();
            }
            (g * ROUTE_QUERIES, group.len() / query_len, rows)
        })
}

/// The reference [`RouteDots`].
pub(crate) fn route_dots(queries: &[u8], groups: usize, centroids: &[i8], out: &mut [i32]) {
    let shape = assert_route_buffers(queries.len(), groups, centroids.len(), out.len());
    let padded = shape.tiles * ROUTE_TILE;
    for (q, query) in queries.chunks_exact(ROUTE_GROUP * groups).enumerate() {
        for (t, tile) in centroids.chunks_exact(ROUTE_TILE * ROUTE_GROUP * groups).enumerate() {
            for c in 0..ROUTE_TILE {
                let mut dot = 0i32;
                for (g, dims) in query.chunks_exact(ROUTE_GROUP).enumerate() {
                    let lane = &tile[(g * ROUTE_TILE + c) * ROUTE_GROUP..][..ROUTE_GROUP];
                    for (&x, &y) in dims.iter().zip(lane) {
                        // Wrapping, as the SIMD lanes do (the caller keeps dots below 2³¹).
                        dot = dot.wrapping_add(i32::from(x) * i32::from(y));
                    }
                }
                out[q * padded + t * ROUTE_TILE + c] = dot;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Backend, Kernels};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Every backend's routing dots equal a naive sum over the layout's
        /// definition (query groups of every count, several tiles, the
        /// extreme levels ±127 and 127 that a saturating add would clip).
        #[test]
        fn kernels_agree_with_a_naive_sum(
            seed in any::<u64>(),
            groups in prop::sample::select(vec![1usize, 2, 3, 7, 96, 200]),
            tiles in 0usize..3,
            queries in 0usize..7,
            extreme in any::<bool>(),
        ) {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let query_len = ROUTE_GROUP * groups;
            let q: Vec<u8> = (0..queries * query_len)
                .map(|_| if extreme { 127 } else { (next() % 128) as u8 })
                .collect();
            let c: Vec<i8> = (0..tiles * ROUTE_TILE * query_len)
                .map(|_| if extreme { [127i8, -127][(next() % 2) as usize] } else { ((next() % 255) as i16 - 127) as i8 })
                .collect();
            let padded = tiles * ROUTE_TILE;
            let mut want = vec![0i32; queries * padded];
            for (i, w) in want.iter_mut().enumerate() {
                let (qi, centroid) = (i / padded, i % padded);
                let (t, lane) = (centroid / ROUTE_TILE, centroid % ROUTE_TILE);
                *w = (0..query_len)
                    .map(|d| {
                        let level = c[((t * groups + d / ROUTE_GROUP) * ROUTE_TILE + lane) * ROUTE_GROUP + d % ROUTE_GROUP];
                        i32::from(q[qi * query_len + d]) * i32::from(level)
                    })
                    .sum();
            }
            for backend in Backend::supported() {
                let kernels = Kernels::for_backend(backend).unwrap();
                let mut got = vec![7i32; queries * padded];
                kernels.route_dots(&q, groups, &c, &mut got);
                prop_assert_eq!(&got, &want, "{:?}", backend);
            }
        }
    }

    /// Wrong lengths panic in every backend's shim before anything is read.
    #[test]
    fn short_buffers_panic_on_every_backend() {
        for backend in Backend::supported() {
            let kernels = Kernels::for_backend(backend).unwrap();
            let (q, c) = (vec![1u8; 8], vec![1i8; 2 * ROUTE_TILE * 8]);
            for (q, c, out) in [
                (&q[..7], &c[..], 8 * ROUTE_TILE),
                (&q[..], &c[1..], 4 * ROUTE_TILE),
                (&q[..], &c[..], 2 * ROUTE_TILE - 1),
            ] {
                let result = std::panic::catch_unwind(|| {
                    let mut out = vec![0i32; out];
                    kernels.route_dots(q, 2, c, &mut out);
                });
                assert!(result.is_err(), "{backend:?}");
            }
        }
    }
}
