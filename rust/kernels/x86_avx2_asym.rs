//! AVX2 fast-scan kernel of the asymmetric search: `vpshufb` looks up one
//! nibble of 32 rows in a 16-entry table; the two lookups of a byte add in
//! u8 (entries ≤ 127), sums run in 16-bit lanes (exact over [`U16_BYTES`]
//! code bytes) and widen to 32 bits. Up to [`QUERY_GROUP`] queries share
//! each block load.

use super::scalar_asym::{
    assert_asym_buffers, assert_quantise_buffers, PairProducts, BLOCK_ROWS, LUT_MAX, QUERY_GROUP, U16_BYTES,
};
use std::arch::x86_64::*;

// Safe shim: only reachable through the AVX2 and AVX-512 `KERNELS` tables,
// which `Kernels::for_backend` hands out after checking the CPU has AVX2.
pub(crate) fn asym_scan(luts: &[&[u8]], width: usize, blocks: &[u8], next: &[u8], out: &mut [u32]) {
    let shape = assert_asym_buffers(luts, width, blocks.len(), out.len());
    let rows = shape.blocks * BLOCK_ROWS;
    for (q, group, tables) in query_groups(luts) {
        for j in 0..shape.blocks {
            let block = blocks[j * width * BLOCK_ROWS..].as_ptr();
            let after = if j + 1 < shape.blocks {
                &blocks[(j + 1) * width * BLOCK_ROWS..]
            } else {
                next
            };
            let sums = out[q * rows + j * BLOCK_ROWS..].as_mut_ptr();
            // SAFETY: CPU: AVX2 (this table is only handed out on such a
            // CPU); lengths: the first `group` of `tables` point at tables of
            // 32·width bytes, block j is whole and out holds rows sums per
            // query (`assert_asym_buffers` above), so every access of
            // `scan_block` (those tables, one block, 32 sums per query at
            // stride `rows`) is in bounds.
            unsafe {
                match group {
                    1 => scan_block::<1>(&tables, width, block, after, sums, rows),
                    2 => scan_block::<2>(&tables, width, block, after, sums, rows),
                    3 => scan_block::<3>(&tables, width, block, after, sums, rows),
                    _ => scan_block::<4>(&tables, width, block, after, sums, rows),
                }
            }
        }
    }
}

/// The queries in groups of up to [`QUERY_GROUP`], which the kernels scan
/// together (sharing each block load): each group's first query, its size
/// and its tables' first pointers (the rest null).
pub(crate) fn query_groups<'a>(
    luts: &'a [&[u8]],
) -> impl Iterator<Item = (usize, usize, [*const u8; QUERY_GROUP])> + 'a {
    luts.chunks(QUERY_GROUP).enumerate().map(|(g, group)| {
        let mut tables = [std::ptr::null(); QUERY_GROUP];
        for (t, lut) in tables.iter_mut().zip(group) {
            *t = lut.as_ptr();
        }
        (g * QUERY_GROUP, group.len(), tables)
    })
}

/// The sums of one 32-row block for `Q` queries: query `i`'s tables at
/// `luts[i]`, its 32 sums at `out + stride·i` (the scalar kernel's when every
/// entry is ≤ 127).
///
/// # Safety
/// The CPU supports AVX2; `Q ≤ luts.len()` and `luts[i]` is readable for
/// `32·width` bytes for each `i < Q`; `block` is readable for `32·width`
/// bytes; `out + stride·i` is writable for 32 `u32` for each `i < Q`.
/// `next` (the codes scanned after this block) is only prefetched, never read.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn scan_block<const Q: usize>(
    luts: &[*const u8],
    width: usize,
    block: *const u8,
    next: &[u8],
    out: *mut u32,
    stride: usize,
) {
    let low4 = _mm256_set1_epi8(0x0f);
    let mut b0 = 0;
    while b0 < width {
        let b1 = (b0 + U16_BYTES).min(width);
        // `all` holds Σ(even + 256·odd) mod 2¹⁶ per 16-bit lane, `odd` the
        // exact odd-row sums; the even-row sums are their difference.
        let mut all = [_mm256_setzero_si256(); Q];
        let mut odd = [_mm256_setzero_si256(); Q];
        for b in b0..b1 {
            if b % 2 == 0 {
                // A block is width/2 cache lines: the next one's line b/2 at byte b.
                prefetch_line(next, b / 2);
            }
            // SAFETY: b < width: bytes 32b..32b+32 of `block` are in bounds.
            let v = unsafe { _mm256_loadu_si256(block.add(32 * b) as *const __m256i) };
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            let lo = _mm256_and_si256(v, low4);
            for i in 0..Q {
                // SAFETY: i < Q and b < width: inside query i's 32·width table bytes.
                let (th, tl) = unsafe {
                    let t = luts[i].add(32 * b);
                    (
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t as *const __m128i)),
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(16) as *const __m128i)),
                    )
                };
                let s = _mm256_add_epi8(_mm256_shuffle_epi8(th, hi), _mm256_shuffle_epi8(tl, lo));
                all[i] = _mm256_add_epi16(all[i], s);
                odd[i] = _mm256_add_epi16(odd[i], _mm256_srli_epi16(s, 8));
            }
        }
        for i in 0..Q {
            // SAFETY: CPU: AVX2 (this function's).
            let parts = unsafe { row_sums(all[i], odd[i]) };
            for (p, part) in parts.into_iter().enumerate() {
                // SAFETY: CPU: AVX2 (this function's); query i's 32 sums at
                // out + stride·i are writable (and readable); p < 4.
                unsafe { add_widened(out.add(stride * i + 8 * p), part, b0 == 0) };
            }
        }
        b0 = b1;
    }
}

/// Asks for cache line `line` of `next`, the codes a kernel scans after the
/// ones it is on, if `next` reaches it: a block spans one or two pages and
/// the hardware prefetcher does not cross a page, so an inverted list (and
/// each page of a database) read from memory would otherwise wait on its loads.
#[inline(always)]
pub(crate) fn prefetch_line(next: &[u8], line: usize) {
    if let Some(byte) = next.get(64 * line) {
        // SAFETY: CPU: SSE (part of every x86-64); the address is a byte of
        // `next`, and PREFETCHT0 never faults anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((byte as *const u8).cast::<i8>()) };
    }
}

/// The 32 row sums of one block as four vectors of eight 16-bit sums, rows
/// 0..8, 8..16, 16..24, 24..32, from `all` = Σ(even + 256·odd) mod 2¹⁶ and
/// the exact odd-row sums `odd` of the 16-bit lanes (even = all − 256·odd).
///
/// # Safety
/// The CPU supports AVX2. (No `#[target_feature]`: always inlined into the
/// AVX2 kernels, so the vectors never cross a call.)
#[inline(always)]
pub(crate) unsafe fn row_sums(all: __m256i, odd: __m256i) -> [__m128i; 4] {
    // SAFETY: CPU: AVX2 (the caller's contract); no memory access.
    unsafe {
        let even = _mm256_sub_epi16(all, _mm256_slli_epi16(odd, 8));
        // Per 128-bit lane: unpacklo gives rows 0..8 (lane 1: 16..24), unpackhi 8..16 (24..32).
        let a = _mm256_unpacklo_epi16(even, odd);
        let c = _mm256_unpackhi_epi16(even, odd);
        [
            _mm256_castsi256_si128(a),
            _mm256_castsi256_si128(c),
            _mm256_extracti128_si256(a, 1),
            _mm256_extracti128_si256(c, 1),
        ]
    }
}

/// Widens eight 16-bit sums to u32 and stores them at `at` (`first`) or adds
/// them to the eight u32 there; returns the stored sums. The last step of
/// every fast-scan kernel, which sums a code in runs of 16-bit lanes.
///
/// # Safety
/// The CPU supports AVX2; `at` is writable for 8 `u32`, and readable unless `first`.
/// (No `#[target_feature]`: always inlined into the AVX2 kernels.)
#[inline(always)]
pub(crate) unsafe fn add_widened(at: *mut u32, part: __m128i, first: bool) -> __m256i {
    let at = at as *mut __m256i;
    // SAFETY: CPU: AVX2 (the caller's contract); `at` is readable unless
    // `first`, and writable, for 8 `u32` (the caller's contract).
    unsafe {
        let wide = _mm256_cvtepu16_epi32(part);
        let sum = if first {
            wide
        } else {
            _mm256_add_epi32(_mm256_loadu_si256(at), wide)
        };
        _mm256_storeu_si256(at, sum);
        sum
    }
}

// Safe shim: only reachable through the AVX2 and AVX-512 `KERNELS` tables,
// which `Kernels::for_backend` hands out after checking the CPU has AVX2.
pub(crate) fn quantise_pairs(products: &[PairProducts], mins: &[f64], scale: f64, luts: &mut [u8]) -> f64 {
    assert_quantise_buffers(products, mins, luts);
    // SAFETY: CPU: AVX2 (this table is only handed out on such a CPU);
    // lengths: one minimum and 16 table bytes per pair (asserted above).
    unsafe { quantise_pairs_avx2(products, mins, scale, luts) }
}

/// [`super::scalar_asym::quantise_pairs`] with AVX2: per pair four vectors of four values.
/// Each step is the scalar one's: `_mm256_min_pd(x, top)` gives `top` for a
/// NaN `x` as `f64::min` does, the `max` with −2³¹ makes the truncating
/// conversion saturate as `as i32` does, the signed-then-unsigned packs
/// saturate to 0..=255 as `f64 as u8` does, and the largest miss is a
/// maximum (any order, the same value).
///
/// # Safety
/// The CPU must support AVX2 (the lengths are checked by the zips).
#[target_feature(enable = "avx2")]
unsafe fn quantise_pairs_avx2(products: &[PairProducts], mins: &[f64], scale: f64, luts: &mut [u8]) -> f64 {
    let inv_scale = 1.0 / scale;
    let (inv, half, top) = (
        _mm256_set1_pd(inv_scale),
        _mm256_set1_pd(0.5),
        _mm256_set1_pd(f64::from(LUT_MAX)),
    );
    let (floor, step, sign) = (
        _mm256_set1_pd(f64::from(i32::MIN)),
        _mm256_set1_pd(scale),
        _mm256_set1_pd(-0.0),
    );
    let mut err = 0.0f64;
    for ((p, &lo), lut) in products.iter().zip(mins).zip(luts.chunks_exact_mut(16)) {
        let values = p.values();
        let low = _mm256_set1_pd(lo);
        let mut worst = _mm256_setzero_pd();
        let mut levels = [_mm_setzero_si128(); 4];
        for (c, level) in levels.iter_mut().enumerate() {
            // SAFETY: CPU: none (a load). Lengths: values 4c..4c + 4 of 16.
            let v = unsafe { _mm256_loadu_pd(values.as_ptr().add(4 * c)) };
            let above = _mm256_sub_pd(v, low);
            let x = _mm256_min_pd(_mm256_add_pd(_mm256_mul_pd(above, inv), half), top);
            *level = _mm256_cvttpd_epi32(_mm256_max_pd(x, floor));
            let miss = _mm256_sub_pd(above, _mm256_mul_pd(_mm256_cvtepi32_pd(*level), step));
            worst = _mm256_max_pd(worst, _mm256_andnot_pd(sign, miss));
        }
        let words = _mm_packs_epi32(levels[0], levels[1]);
        let words_hi = _mm_packs_epi32(levels[2], levels[3]);
        // SAFETY: CPU: SSE2 (a store). Lengths: `lut` is a chunk of exactly 16 bytes.
        unsafe { _mm_storeu_si128(lut.as_mut_ptr().cast(), _mm_packus_epi16(words, words_hi)) };
        let pair = _mm_max_pd(_mm256_castpd256_pd128(worst), _mm256_extractf128_pd(worst, 1));
        err += _mm_cvtsd_f64(_mm_max_sd(pair, _mm_unpackhi_pd(pair, pair)));
    }
    err
}
