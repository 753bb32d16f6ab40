//! AVX2 routing dot products: `vpmaddubsw` multiplies four dimensions of a
//! query (broadcast) by four of eight centroids and adds them in pairs
//! (never saturating: see [`super::scalar_route`]), `vpmaddwd` by ones
//! finishes each centroid's four-dimension sum in an i32 lane. Up to four
//! queries share each centroid load.

use super::scalar_route::{assert_route_buffers, query_groups, ROUTE_GROUP, ROUTE_TILE};
use std::arch::x86_64::*;

/// Centroids per pass: two vectors of eight.
const CENTROIDS: usize = 16;

// Safe shim: only reachable through the AVX2 and AVX-512 `KERNELS` tables,
// which `Kernels::for_backend` hands out after checking the CPU has AVX2.
pub(crate) fn route_dots(queries: &[u8], groups: usize, centroids: &[i8], out: &mut [i32]) {
    let shape = assert_route_buffers(queries.len(), groups, centroids.len(), out.len());
    let padded = shape.tiles * ROUTE_TILE;
    let query_len = ROUTE_GROUP * groups;
    // Tile by tile (4·groups·64 bytes, in L1 at 384 dimensions), each for
    // every query in turn.
    for t in 0..shape.tiles {
        for (q, count, rows) in query_groups(queries, query_len) {
            for s in 0..ROUTE_TILE / CENTROIDS {
                let tile = centroids[t * ROUTE_TILE * query_len + s * CENTROIDS * ROUTE_GROUP..].as_ptr();
                let dots = out[q * padded + t * ROUTE_TILE + s * CENTROIDS..].as_mut_ptr();
                // SAFETY: CPU: AVX2 (this table is only handed out on such a
                // CPU); lengths: the first `count` of `rows` point at whole
                // queries of 4·groups bytes, tile t holds 4·groups·64 bytes
                // from which this pass reads 16 centroids' lanes of each group
                // (at stride 256 bytes), and each of the `count` queries' 64
                // dots of tile t lie inside `out` (`assert_route_buffers` above).
                unsafe {
                    match count {
                        1 => dots_16::<1>(&rows, groups, tile, dots, padded),
                        2 => dots_16::<2>(&rows, groups, tile, dots, padded),
                        3 => dots_16::<3>(&rows, groups, tile, dots, padded),
                        _ => dots_16::<4>(&rows, groups, tile, dots, padded),
                    }
                }
            }
        }
    }
}

/// The dots of `Q` queries with 16 consecutive centroids of one tile.
///
/// # Safety
/// The CPU supports AVX2; `rows[i]` is readable for `4·groups` bytes for
/// each `i < Q`; `tile + 256·g` is readable for 64 bytes for each
/// `g < groups`; `out + stride·i` is writable for 16 `i32` for each `i < Q`.
#[target_feature(enable = "avx2")]
unsafe fn dots_16<const Q: usize>(rows: &[*const u8], groups: usize, tile: *const i8, out: *mut i32, stride: usize) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; Q];
    for g in 0..groups {
        // SAFETY: g < groups: the 16 centroids' lanes of group g are in bounds.
        let (c0, c1) = unsafe {
            let at = tile.add(g * ROUTE_TILE * ROUTE_GROUP) as *const __m256i;
            (_mm256_loadu_si256(at), _mm256_loadu_si256(at.add(1)))
        };
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i < Q and g < groups: bytes 4g..4g+4 of query i are in bounds.
            let dims = unsafe { _mm256_set1_epi32(rows[i].add(ROUTE_GROUP * g).cast::<i32>().read_unaligned()) };
            acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(_mm256_maddubs_epi16(dims, c0), ones));
            acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(_mm256_maddubs_epi16(dims, c1), ones));
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        // SAFETY: query i's 16 dots at out + stride·i are writable.
        unsafe {
            let at = out.add(stride * i) as *mut __m256i;
            _mm256_storeu_si256(at, acc[0]);
            _mm256_storeu_si256(at.add(1), acc[1]);
        }
    }
}
