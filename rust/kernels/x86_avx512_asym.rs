//! AVX-512 fast-scan kernel of the asymmetric search: two 32-row blocks per
//! zmm (`vpshufb` on 64 bytes needs AVX-512BW), the AVX2 kernel for an odd
//! last block. Same integers as the scalar reference.

use super::scalar_asym::{assert_asym_buffers, BLOCK_ROWS, U16_BYTES};
use super::x86_avx2_asym::scan_block;
use std::arch::x86_64::*;

// Safe shim: only reachable through the AVX-512 `KERNELS` table, which
// `Kernels::for_backend` hands out after checking the CPU has AVX-512F/BW
// (and AVX2).
pub(crate) fn asym_scan(luts: &[u8], blocks: &[u8], out: &mut [u32]) {
    let (width, nblocks) = assert_asym_buffers(luts.len(), blocks.len(), out.len());
    let block_len = width * BLOCK_ROWS;
    let pairs = nblocks / 2;
    for p in 0..pairs {
        // SAFETY: CPU: AVX-512F, AVX-512BW and AVX2 (this table is only
        // handed out on such a CPU); lengths: blocks 2p and 2p+1 < nblocks
        // lie inside `blocks` and their 64 sums inside `out` (asserted above).
        unsafe {
            scan_pair(
                luts.as_ptr(),
                width,
                blocks.as_ptr().add(2 * p * block_len),
                out.as_mut_ptr().add(2 * p * BLOCK_ROWS),
            )
        }
    }
    if nblocks % 2 == 1 {
        let j = nblocks - 1;
        // SAFETY: CPU: AVX2 (implied by this table); lengths: block j <
        // nblocks and its 32 sums are in bounds (asserted above).
        unsafe {
            scan_block(
                luts.as_ptr(),
                width,
                blocks.as_ptr().add(j * block_len),
                out.as_mut_ptr().add(j * BLOCK_ROWS),
            )
        }
    }
}

/// The sums of two consecutive 32-row blocks into `out[0..64]`.
///
/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and AVX2; `luts` is readable for
/// `32·width` bytes, `blocks` for `2·32·width` bytes and `out` writable for 64 `u32`.
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn scan_pair(luts: *const u8, width: usize, blocks: *const u8, out: *mut u32) {
    let low4 = _mm512_set1_epi8(0x0f);
    let second = 32 * width;
    let mut total = [_mm256_setzero_si256(); 8];
    let mut b0 = 0;
    while b0 < width {
        let b1 = (b0 + U16_BYTES).min(width);
        let mut all = _mm512_setzero_si512();
        let mut odd = _mm512_setzero_si512();
        for b in b0..b1 {
            // SAFETY: b < width, so bytes 32b..32b+32 of both blocks and of
            // `luts` are in bounds (the caller's contract).
            let (v, th, tl) = unsafe {
                let first = _mm256_loadu_si256(blocks.add(32 * b) as *const __m256i);
                let next = _mm256_loadu_si256(blocks.add(second + 32 * b) as *const __m256i);
                (
                    _mm512_inserti64x4(_mm512_castsi256_si512(first), next, 1),
                    _mm512_broadcast_i32x4(_mm_loadu_si128(luts.add(32 * b) as *const __m128i)),
                    _mm512_broadcast_i32x4(_mm_loadu_si128(luts.add(32 * b + 16) as *const __m128i)),
                )
            };
            let rh = _mm512_shuffle_epi8(th, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
            let rl = _mm512_shuffle_epi8(tl, _mm512_and_si512(v, low4));
            all = _mm512_add_epi16(all, _mm512_add_epi16(rh, rl));
            odd = _mm512_add_epi16(
                odd,
                _mm512_add_epi16(_mm512_srli_epi16(rh, 8), _mm512_srli_epi16(rl, 8)),
            );
        }
        let even = _mm512_sub_epi16(all, _mm512_slli_epi16(odd, 8));
        let a = _mm512_unpacklo_epi16(even, odd);
        let c = _mm512_unpackhi_epi16(even, odd);
        // 128-bit lane L of a: rows 8·(2L) .. of the pair's 64 rows, of c the next 8.
        let parts = [
            _mm512_extracti32x4_epi32(a, 0),
            _mm512_extracti32x4_epi32(c, 0),
            _mm512_extracti32x4_epi32(a, 1),
            _mm512_extracti32x4_epi32(c, 1),
            _mm512_extracti32x4_epi32(a, 2),
            _mm512_extracti32x4_epi32(c, 2),
            _mm512_extracti32x4_epi32(a, 3),
            _mm512_extracti32x4_epi32(c, 3),
        ];
        for (t, p) in total.iter_mut().zip(parts) {
            *t = _mm256_add_epi32(*t, _mm256_cvtepu16_epi32(p));
        }
        b0 = b1;
    }
    for (i, t) in total.into_iter().enumerate() {
        // SAFETY: `out` is writable for 64 u32 (the caller's contract); i < 8.
        unsafe { _mm256_storeu_si256(out.add(8 * i) as *mut __m256i, t) };
    }
}
