//! AVX-512 fast-scan kernel of the asymmetric search: two 32-row blocks per
//! zmm (`vpshufb` on 64 bytes needs AVX-512BW), the AVX2 kernel for an odd
//! last block; each pair's scan prefetches the next pair (see
//! [`prefetch_line`]). Same integers as the scalar reference.

use super::scalar_asym::{assert_asym_buffers, BLOCK_ROWS, U16_BYTES};
use super::x86_avx2_asym::{add_widened, prefetch_line, query_groups, scan_block};
use std::arch::x86_64::*;

// Safe shim: only reachable through the AVX-512 `KERNELS` table, which
// `Kernels::for_backend` hands out after checking the CPU has AVX-512F/BW
// (and AVX2).
pub(crate) fn asym_scan(luts: &[&[u8]], width: usize, blocks: &[u8], next: &[u8], out: &mut [u32]) {
    let shape = assert_asym_buffers(luts, width, blocks.len(), out.len());
    let rows = shape.blocks * BLOCK_ROWS;
    let block_len = width * BLOCK_ROWS;
    for (q, group, lut) in query_groups(luts) {
        for p in 0..shape.blocks / 2 {
            let pair = blocks[2 * p * block_len..].as_ptr();
            // The codes after this pair, prefetched while it is scanned.
            let after = if 2 * p + 2 < shape.blocks {
                &blocks[(2 * p + 2) * block_len..]
            } else {
                next
            };
            let sums = out[q * rows + 2 * p * BLOCK_ROWS..].as_mut_ptr();
            // SAFETY: CPU: AVX-512F, AVX-512BW and AVX2 (this table is only
            // handed out on such a CPU); lengths: the first `group` of `lut`
            // point at tables of 32·width bytes, blocks 2p and 2p+1
            // are whole, and each query's 64 sums from row 64p lie inside its
            // `rows` sums (`assert_asym_buffers` above).
            unsafe {
                match group {
                    1 => scan_pair::<1>(&lut, width, pair, after, sums, rows),
                    2 => scan_pair::<2>(&lut, width, pair, after, sums, rows),
                    3 => scan_pair::<3>(&lut, width, pair, after, sums, rows),
                    _ => scan_pair::<4>(&lut, width, pair, after, sums, rows),
                }
            }
        }
        if shape.blocks % 2 == 1 {
            let j = shape.blocks - 1;
            let block = blocks[j * block_len..].as_ptr();
            let sums = out[q * rows + j * BLOCK_ROWS..].as_mut_ptr();
            // SAFETY: CPU: AVX2 (implied by this table); lengths: as above,
            // block j is whole and each query's 32 sums from row 32j are in bounds.
            unsafe {
                match group {
                    1 => scan_block::<1>(&lut, width, block, next, sums, rows),
                    2 => scan_block::<2>(&lut, width, block, next, sums, rows),
                    3 => scan_block::<3>(&lut, width, block, next, sums, rows),
                    _ => scan_block::<4>(&lut, width, block, next, sums, rows),
                }
            }
        }
    }
}

/// The sums of two consecutive 32-row blocks for `Q` queries: query `i`'s
/// tables at `luts[i]`, its 64 sums at `out + stride·i` (the scalar kernel's
/// when every entry is ≤ 127).
///
/// # Safety
/// The CPU supports AVX-512F, AVX-512BW and AVX2; `Q ≤ luts.len()` and
/// `luts[i]` is readable for `32·width` bytes for each `i < Q`; `blocks` is
/// readable for `2·32·width` bytes; `out + stride·i` is writable for 64 `u32`
/// for each `i < Q`. `next` is only prefetched, never read.
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn scan_pair<const Q: usize>(
    luts: &[*const u8],
    width: usize,
    blocks: *const u8,
    next: &[u8],
    out: *mut u32,
    stride: usize,
) {
    let low4 = _mm512_set1_epi8(0x0f);
    let second = 32 * width;
    let mut b0 = 0;
    while b0 < width {
        let b1 = (b0 + U16_BYTES).min(width);
        let mut all = [_mm512_setzero_si512(); Q];
        let mut odd = [_mm512_setzero_si512(); Q];
        for b in b0..b1 {
            // A pair is `width` cache lines: the next one's line b at byte b.
            prefetch_line(next, b);
            // SAFETY: b < width: bytes 32b..32b+32 of both blocks are in bounds.
            let v = unsafe {
                let first = _mm256_loadu_si256(blocks.add(32 * b) as *const __m256i);
                let next = _mm256_loadu_si256(blocks.add(second + 32 * b) as *const __m256i);
                _mm512_inserti64x4(_mm512_castsi256_si512(first), next, 1)
            };
            let hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
            let lo = _mm512_and_si512(v, low4);
            for i in 0..Q {
                // SAFETY: i < Q and b < width: inside query i's 32·width table bytes.
                let (th, tl) = unsafe {
                    let t = luts[i].add(32 * b);
                    (
                        _mm512_broadcast_i32x4(_mm_loadu_si128(t as *const __m128i)),
                        _mm512_broadcast_i32x4(_mm_loadu_si128(t.add(16) as *const __m128i)),
                    )
                };
                let s = _mm512_add_epi8(_mm512_shuffle_epi8(th, hi), _mm512_shuffle_epi8(tl, lo));
                all[i] = _mm512_add_epi16(all[i], s);
                odd[i] = _mm512_add_epi16(odd[i], _mm512_srli_epi16(s, 8));
            }
        }
        for i in 0..Q {
            let even = _mm512_sub_epi16(all[i], _mm512_slli_epi16(odd[i], 8));
            let a = _mm512_unpacklo_epi16(even, odd[i]);
            let c = _mm512_unpackhi_epi16(even, odd[i]);
            // 128-bit lane L of `a` holds rows 16L..16L+8 of the pair's 64, of `c` the next 8.
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
            for (p, part) in parts.into_iter().enumerate() {
                // SAFETY: CPU: AVX2 (this function enables it); query i's 64 sums
                // at out + stride·i are writable (and readable); p < 8.
                unsafe { add_widened(out.add(stride * i + 8 * p), part, b0 == 0) };
            }
        }
        b0 = b1;
    }
}
