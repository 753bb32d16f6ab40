//! AVX2 fast-scan kernel of the asymmetric search: `vpshufb` looks up one
//! nibble of 32 rows in a 16-entry table; sums run in 16-bit lanes (exact
//! over [`U16_BYTES`] code bytes) and widen to 32 bits per chunk.

use super::scalar_asym::{assert_asym_buffers, BLOCK_ROWS, U16_BYTES};
use std::arch::x86_64::*;

// Safe shim: only reachable through the AVX2 and AVX-512 `KERNELS` tables,
// which `Kernels::for_backend` hands out after checking the CPU has AVX2.
pub(crate) fn asym_scan(luts: &[u8], blocks: &[u8], out: &mut [u32]) {
    let (width, nblocks) = assert_asym_buffers(luts.len(), blocks.len(), out.len());
    for j in 0..nblocks {
        // SAFETY: CPU: AVX2 (this table is only handed out on such a CPU);
        // lengths: `luts` holds 32·width bytes, `blocks` nblocks whole blocks
        // of 32·width bytes and `out` at least 32·nblocks sums (asserted
        // above), so block j and its 32 sums are in bounds.
        unsafe {
            scan_block(
                luts.as_ptr(),
                width,
                blocks.as_ptr().add(j * width * BLOCK_ROWS),
                out.as_mut_ptr().add(j * BLOCK_ROWS),
            )
        }
    }
}

/// The sums of one 32-row block into `out[0..32]`.
///
/// # Safety
/// The CPU supports AVX2; `luts` is readable for `32·width` bytes, `block`
/// for `32·width` bytes and `out` writable for 32 `u32`.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn scan_block(luts: *const u8, width: usize, block: *const u8, out: *mut u32) {
    let low4 = _mm256_set1_epi8(0x0f);
    let mut total = [_mm256_setzero_si256(); 4];
    let mut b0 = 0;
    while b0 < width {
        let b1 = (b0 + U16_BYTES).min(width);
        // `all` holds Σ(even + 256·odd) mod 2¹⁶ per 16-bit lane, `odd` the
        // exact odd-row sums; the even-row sums are their difference.
        let mut all = _mm256_setzero_si256();
        let mut odd = _mm256_setzero_si256();
        for b in b0..b1 {
            // SAFETY: b < width, so bytes 32b..32b+32 of `block` and `luts`
            // are in bounds (the caller's contract).
            let (v, th, tl) = unsafe {
                (
                    _mm256_loadu_si256(block.add(32 * b) as *const __m256i),
                    _mm256_broadcastsi128_si256(_mm_loadu_si128(luts.add(32 * b) as *const __m128i)),
                    _mm256_broadcastsi128_si256(_mm_loadu_si128(luts.add(32 * b + 16) as *const __m128i)),
                )
            };
            let rh = _mm256_shuffle_epi8(th, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
            let rl = _mm256_shuffle_epi8(tl, _mm256_and_si256(v, low4));
            all = _mm256_add_epi16(all, _mm256_add_epi16(rh, rl));
            odd = _mm256_add_epi16(
                odd,
                _mm256_add_epi16(_mm256_srli_epi16(rh, 8), _mm256_srli_epi16(rl, 8)),
            );
        }
        let even = _mm256_sub_epi16(all, _mm256_slli_epi16(odd, 8));
        // Per 128-bit lane: unpacklo gives rows 0..8 (lane 1: 16..24), unpackhi 8..16 (24..32).
        let a = _mm256_unpacklo_epi16(even, odd);
        let c = _mm256_unpackhi_epi16(even, odd);
        let parts = [
            _mm256_castsi256_si128(a),
            _mm256_castsi256_si128(c),
            _mm256_extracti128_si256(a, 1),
            _mm256_extracti128_si256(c, 1),
        ];
        for (t, p) in total.iter_mut().zip(parts) {
            *t = _mm256_add_epi32(*t, _mm256_cvtepu16_epi32(p));
        }
        b0 = b1;
    }
    for (i, t) in total.into_iter().enumerate() {
        // SAFETY: `out` is writable for 32 u32 (the caller's contract); i < 4.
        unsafe { _mm256_storeu_si256(out.add(8 * i) as *mut __m256i, t) };
    }
}
