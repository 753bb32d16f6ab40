//! AVX-512 VNNI routing dot products: one `vpdpbusd` multiplies four
//! dimensions of a query (broadcast) by four of 16 centroids and adds them
//! into each centroid's i32 lane. Four queries × a whole tile of 64
//! centroids per pass (16 accumulators). CPUs without VNNI run the AVX2 kernel.

use super::scalar_route::{assert_route_buffers, query_groups, ROUTE_GROUP, ROUTE_TILE};
use std::arch::x86_64::*;

/// Whether this CPU has AVX-512 VNNI (read once).
fn has_vnni() -> bool {
    static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| std::arch::is_x86_feature_detected!("avx512vnni"))
}

// Safe shim: only reachable through the AVX-512 `KERNELS` table, which
// `Kernels::for_backend` hands out after checking AVX-512F/BW and AVX2.
pub(crate) fn route_dots(queries: &[u8], groups: usize, centroids: &[i8], out: &mut [i32]) {
    if !has_vnni() {
        return super::x86_avx2_route::route_dots(queries, groups, centroids, out);
    }
    let shape = assert_route_buffers(queries.len(), groups, centroids.len(), out.len());
    let padded = shape.tiles * ROUTE_TILE;
    let query_len = ROUTE_GROUP * groups;
    // Tile by tile (4·groups·64 bytes, in L1 at 384 dimensions), each for
    // every query in turn.
    for t in 0..shape.tiles {
        let tile = centroids[t * ROUTE_TILE * query_len..].as_ptr();
        for (q, count, rows) in query_groups(queries, query_len) {
            let dots = out[q * padded + t * ROUTE_TILE..].as_mut_ptr();
            // SAFETY: CPU: AVX-512F and AVX-512 VNNI (`has_vnni` above; this
            // table is only handed out on AVX-512F CPUs); lengths: the first
            // `count` of `rows` point at whole queries of 4·groups bytes,
            // tile t holds 4·groups·64 bytes, and each of the `count`
            // queries' 64 dots of tile t lie inside `out`
            // (`assert_route_buffers` above).
            unsafe {
                match count {
                    1 => dots_tile::<1>(&rows, groups, tile, dots, padded),
                    2 => dots_tile::<2>(&rows, groups, tile, dots, padded),
                    3 => dots_tile::<3>(&rows, groups, tile, dots, padded),
                    _ => dots_tile::<4>(&rows, groups, tile, dots, padded),
                }
            }
        }
    }
}

/// The dots of `Q` queries with the 64 centroids of one tile.
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512 VNNI; `rows[i]` is readable for
/// `4·groups` bytes for each `i < Q`; `tile` is readable for `256·groups`
/// bytes; `out + stride·i` is writable for 64 `i32` for each `i < Q`.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dots_tile<const Q: usize>(rows: &[*const u8], groups: usize, tile: *const i8, out: *mut i32, stride: usize) {
    let mut acc = [[_mm512_setzero_si512(); 4]; Q];
    for g in 0..groups {
        // SAFETY: g < groups: the tile's 256 bytes of group g are in bounds.
        let c: [__m512i; 4] = unsafe {
            let at = tile.add(g * ROUTE_TILE * ROUTE_GROUP) as *const __m512i;
            [
                _mm512_loadu_si512(at),
                _mm512_loadu_si512(at.add(1)),
                _mm512_loadu_si512(at.add(2)),
                _mm512_loadu_si512(at.add(3)),
            ]
        };
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i < Q and g < groups: bytes 4g..4g+4 of query i are in bounds.
            let dims = unsafe { _mm512_set1_epi32(rows[i].add(ROUTE_GROUP * g).cast::<i32>().read_unaligned()) };
            for (a, &c) in acc.iter_mut().zip(&c) {
                *a = _mm512_dpbusd_epi32(*a, dims, c);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (v, a) in acc.iter().enumerate() {
            // SAFETY: query i's 64 dots at out + stride·i are writable; v < 4.
            unsafe { _mm512_storeu_si512(out.add(stride * i + 16 * v) as *mut __m512i, *a) };
        }
    }
}
