//! AVX2 kernels: compare masks for the quantiser, the nibble-table popcount
//! (Muła et al.) for Lee distances.

use super::INTERLEAVE;
use super::{
    assert_encode_buffers, assert_lee_pair, assert_lee_rows, assert_tile_buffers, encode_row_cuts, encode_row_with,
    lend, Backend, Hits, Kernels, TileArgs,
};
use crate::encode::cuts::quantize_cuts_tail;
use crate::encode::quantize::quantize_pack_scalar;
use crate::encode::quantize::sum_of_squares;
use crate::keys::{count_run_starts, gather_run_starts};
use std::arch::x86_64::*;

pub(crate) static KERNELS: Kernels = Kernels {
    backend: Backend::Avx2,
    encode_f32,
    encode_f64,
    encode_cuts_f32,
    encode_cuts_f64,
    lee_pair,
    lee_rows,
    lee_tile,
    lee_tile_hits,
    asym_scan: super::x86_avx2_asym::asym_scan,
    rotate,
};

// Safe shims: only reachable through `KERNELS`, which `Kernels::for_backend`
// hands out after checking the CPU supports AVX2 and POPCNT. Each checks the
// buffer lengths its kernel relies on before calling it.

fn encode_f32(x: &[f32], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), None, code.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: `code` holds `code_width(x.len())` bytes (asserted above).
    unsafe { encode_f32_avx2(x, tau, code) }
}
fn encode_f64(x: &[f64], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), None, code.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: `code` holds `code_width(x.len())` bytes (asserted above).
    unsafe { encode_f64_avx2(x, tau, code) }
}
fn encode_cuts_f32(x: &[f32], cuts: &[f32], code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), Some(cuts.len()), code.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: `code` holds `code_width(x.len())` bytes and `cuts`
    // `3 × x.len()` values (asserted above).
    unsafe { encode_cuts_f32_avx2(x, cuts, code) }
}
fn encode_cuts_f64(x: &[f64], cuts: &[f64], code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), Some(cuts.len()), code.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: `code` holds `code_width(x.len())` bytes and `cuts`
    // `3 × x.len()` values (asserted above).
    unsafe { encode_cuts_f64_avx2(x, cuts, code) }
}
fn lee_pair(a: &[u8], b: &[u8]) -> u32 {
    assert_lee_pair(a.len(), b.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: none needed (the kernel reads the common length of both).
    unsafe { lee_pair_avx2(a, b) }
}
fn lee_rows(query: &[u8], rows: &[u8], out: &mut [u32]) {
    assert_lee_rows(query.len(), rows.len(), out.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: none needed (the kernel reads each row as a subslice).
    unsafe { lee_rows_avx2(query, rows, out) }
}
fn lee_tile(queries: &[u64], words: usize, block: &[u64], out: &mut [u32]) {
    assert_tile_buffers(queries.len(), words, block.len(), out.len(), None);
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: as `assert_tile_buffers` checked just above.
    unsafe { lee_tile_avx2(queries, words, block, None, out) }
}
fn lee_tile_hits(queries: &[u64], words: usize, block: &[u64], bounds: &[u32], out: &mut [u32], hits: &mut [u8]) {
    let lengths = Some((bounds.len(), hits.len()));
    assert_tile_buffers(queries.len(), words, block.len(), out.len(), lengths);
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: as `assert_tile_buffers` checked just above.
    unsafe { lee_tile_avx2(queries, words, block, Some((bounds, hits)), out) }
}

/// # Safety
/// The CPU supports AVX2 and POPCNT, and `code` holds `code_width(x.len())` bytes.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn encode_f32_avx2(x: &[f32], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the row encoder
    // hands `quantize_f32` the whole row and `code`, which holds `code_width` bytes.
    encode_row_with(x, tau, code, |x, t, out| unsafe { quantize_f32(x, t, out) })
}

/// # Safety
/// The CPU supports AVX2 and POPCNT, and `code` holds `code_width(x.len())` bytes.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn encode_f64_avx2(x: &[f64], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the row encoder
    // hands `quantize_f64` the whole row and `code`, which holds `code_width` bytes.
    encode_row_with(x, tau, code, |x, t, out| unsafe { quantize_f64(x, t, out) })
}

/// # Safety
/// The CPU supports AVX2 and POPCNT, `code` holds `code_width(x.len())` bytes
/// and `cuts` exactly `3 × x.len()` values.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn encode_cuts_f32_avx2(x: &[f32], cuts: &[f32], code: &mut [u8]) -> Result<(u64, u32), usize> {
    let sum_sq = sum_of_squares(x);
    encode_row_cuts(
        x,
        cuts,
        code,
        sum_sq,
        // SAFETY: CPU: AVX2 (this function's contract); lengths: the row
        // encoder passes the whole row, `cuts` (`3 × x.len()`) and `code`.
        |x, inv, cuts, out| unsafe { quantize_cuts_f32(x, inv, cuts, out) },
        gather_run_starts,
        count_run_starts,
    )
}

/// # Safety
/// The CPU supports AVX2 and POPCNT, `code` holds `code_width(x.len())` bytes
/// and `cuts` exactly `3 × x.len()` values.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn encode_cuts_f64_avx2(x: &[f64], cuts: &[f64], code: &mut [u8]) -> Result<(u64, u32), usize> {
    let sum_sq = sum_of_squares(x);
    encode_row_cuts(
        x,
        cuts,
        code,
        sum_sq,
        // SAFETY: CPU: AVX2 (this function's contract); lengths: the row
        // encoder passes the whole row, `cuts` (`3 × x.len()`) and `code`.
        |x, inv, cuts, out| unsafe { quantize_cuts_f64(x, inv, cuts, out) },
        gather_run_starts,
        count_run_starts,
    )
}

/// Per-dimension cuts, eight coordinates → two code bytes: `v = x·inv`, the
/// mid-cut mask and the low/high-cut mask, then a table.
///
/// # Safety
/// The CPU supports AVX2, `cuts` holds `3 × x.len()` values and `out`
/// at least `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_cuts_f32(x: &[f32], inv: f32, cuts: &[f32], out: &mut [u8]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the loop reads
    // x[i..i + 8] and each third of `cuts` at i..i + 8 for i + 8 ≤ x.len(), and
    // writes out[i / 4..i / 4 + 2], within code_width(x.len()) bytes.
    unsafe {
        let n = x.len();
        let body = n / 8 * 8;
        let scale = _mm256_set1_ps(inv);
        let (lows, mids, highs) = (cuts.as_ptr(), cuts.as_ptr().add(n), cuts.as_ptr().add(2 * n));
        let mut i = 0;
        while i < body {
            let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), scale);
            let h = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_loadu_ps(mids.add(i)))) as usize;
            let near = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_loadu_ps(lows.add(i))),
                _mm256_cmp_ps::<_CMP_LE_OQ>(v, _mm256_loadu_ps(highs.add(i))),
            );
            let l = _mm256_movemask_ps(near) as usize;
            *out.get_unchecked_mut(i / 4) = INTERLEAVE[(h & 15) << 4 | (l & 15)];
            *out.get_unchecked_mut(i / 4 + 1) = INTERLEAVE[(h >> 4) << 4 | (l >> 4)];
            i += 8;
        }
        quantize_cuts_tail(x, inv, cuts, body, out);
    }
}

/// # Safety
/// The CPU supports AVX2, `cuts` holds `3 × x.len()` values and `out`
/// at least `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_cuts_f64(x: &[f64], inv: f64, cuts: &[f64], out: &mut [u8]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the loop reads
    // x[i..i + 4] and each third of `cuts` at i..i + 4 for i + 4 ≤ x.len(), and
    // writes out[i / 4], within code_width(x.len()) bytes.
    unsafe {
        let n = x.len();
        let body = n / 4 * 4;
        let scale = _mm256_set1_pd(inv);
        let (lows, mids, highs) = (cuts.as_ptr(), cuts.as_ptr().add(n), cuts.as_ptr().add(2 * n));
        let mut i = 0;
        while i < body {
            let v = _mm256_mul_pd(_mm256_loadu_pd(x.as_ptr().add(i)), scale);
            let h = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(v, _mm256_loadu_pd(mids.add(i)))) as usize;
            let near = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(v, _mm256_loadu_pd(lows.add(i))),
                _mm256_cmp_pd::<_CMP_LE_OQ>(v, _mm256_loadu_pd(highs.add(i))),
            );
            let l = _mm256_movemask_pd(near) as usize;
            *out.get_unchecked_mut(i / 4) = INTERLEAVE[h << 4 | l];
            i += 4;
        }
        quantize_cuts_tail(x, inv, cuts, body, out);
    }
}

/// Eight coordinates → two code bytes: sign mask and near-zero mask, then a table.
///
/// # Safety
/// The CPU supports AVX2 and `out` holds at least `code_width(x.len())` bytes.
#[inline(always)]
pub(crate) unsafe fn quantize_f32(x: &[f32], t: f32, out: &mut [u8]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the loop reads
    // x[i..i + 8] for i + 8 ≤ x.len() and writes out[i / 4..i / 4 + 2], within
    // code_width(x.len()) bytes.
    unsafe {
        let body = x.len() / 8 * 8;
        let (zero, tv, nt) = (_mm256_setzero_ps(), _mm256_set1_ps(t), _mm256_set1_ps(-t));
        let mut i = 0;
        while i < body {
            let v = _mm256_loadu_ps(x.as_ptr().add(i));
            let h = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, zero)) as usize;
            let near = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, nt), _mm256_cmp_ps::<_CMP_LE_OQ>(v, tv));
            let l = _mm256_movemask_ps(near) as usize;
            *out.get_unchecked_mut(i / 4) = INTERLEAVE[(h & 15) << 4 | (l & 15)];
            *out.get_unchecked_mut(i / 4 + 1) = INTERLEAVE[(h >> 4) << 4 | (l >> 4)];
            i += 8;
        }
        quantize_pack_scalar(&x[body..], t, &mut out[body / 4..]);
    }
}

/// # Safety
/// The CPU supports AVX2 and `out` holds at least `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_f64(x: &[f64], t: f64, out: &mut [u8]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the loop reads
    // x[i..i + 4] for i + 4 ≤ x.len() and writes out[i / 4], within
    // code_width(x.len()) bytes.
    unsafe {
        let body = x.len() / 4 * 4;
        let (zero, tv, nt) = (_mm256_setzero_pd(), _mm256_set1_pd(t), _mm256_set1_pd(-t));
        let mut i = 0;
        while i < body {
            let v = _mm256_loadu_pd(x.as_ptr().add(i));
            let h = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(v, zero)) as usize;
            let near = _mm256_and_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(v, nt), _mm256_cmp_pd::<_CMP_LE_OQ>(v, tv));
            let l = _mm256_movemask_pd(near) as usize;
            *out.get_unchecked_mut(i / 4) = INTERLEAVE[h << 4 | l];
            i += 4;
        }
        quantize_pack_scalar(&x[body..], t, &mut out[body / 4..]);
    }
}

/// Per-byte popcount of 32 bytes via two 16-entry nibble tables.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn popcount_bytes(v: __m256i) -> __m256i {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: no memory is accessed.
    unsafe {
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let lo = _mm256_and_si256(v, low);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
        _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi))
    }
}

/// Sums of each 8-byte lane of per-byte counts.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn popcount_u64_lanes(v: __m256i) -> __m256i {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: no memory is accessed.
    unsafe { _mm256_sad_epu8(popcount_bytes(v), _mm256_setzero_si256()) }
}

/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn hsum_u64(v: __m256i) -> u64 {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the store writes
    // 32 bytes into the 32-byte local `lanes`.
    unsafe {
        let mut lanes = [0u64; 4];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v);
        lanes[0] + lanes[1] + lanes[2] + lanes[3]
    }
}

/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn lee_pair_inline(a: &[u8], b: &[u8]) -> u32 {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the loop reads
    // 32 bytes at i of `a` and `b` for i + 32 ≤ n = min(a.len(), b.len()).
    unsafe {
        let n = a.len().min(b.len());
        let body = n / 32 * 32;
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i < body {
            let x = _mm256_loadu_si256(a.as_ptr().add(i) as *const __m256i);
            let y = _mm256_loadu_si256(b.as_ptr().add(i) as *const __m256i);
            acc = _mm256_add_epi64(acc, popcount_u64_lanes(_mm256_xor_si256(x, y)));
            i += 32;
        }
        hsum_u64(acc) as u32 + super::scalar::lee_pair(&a[body..n], &b[body..n])
    }
}

/// # Safety
/// The CPU supports AVX2 and POPCNT.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn lee_pair_avx2(a: &[u8], b: &[u8]) -> u32 {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: none needed.
    unsafe { lee_pair_inline(a, b) }
}

/// # Safety
/// The CPU supports AVX2 and POPCNT.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn lee_rows_avx2(query: &[u8], rows: &[u8], out: &mut [u32]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: none needed (each
    // row is a subslice of `rows`).
    unsafe {
        let width = query.len();
        if width == 0 {
            out.fill(0);
            return;
        }
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(width)) {
            *o = lee_pair_inline(query, row);
        }
    }
}

/// Two queries at a time against each 8-row group (two ymm of four rows).
///
/// # Safety
/// The CPU supports AVX2 and POPCNT, and the lengths satisfy
/// [`assert_tile_buffers`](super::assert_tile_buffers) (with `hits`, its bounds and masks).
#[target_feature(enable = "avx2,popcnt")]
unsafe fn lee_tile_avx2(queries: &[u64], words: usize, block: &[u64], mut hits: Hits<'_>, out: &mut [u32]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: `tile` needs
    // q + T ≤ queries.len() / words and the lengths `assert_tile_buffers`
    // checks (this function's contract); the loops keep q + T ≤ nq.
    unsafe {
        let nq = queries.len() / words;
        let args = TileArgs {
            queries,
            words,
            block,
            groups: block.len() / (words * 8),
        };
        let mut q = 0;
        while q + 2 <= nq {
            tile::<2>(&args, q, lend(&mut hits), out);
            q += 2;
        }
        if q < nq {
            tile::<1>(&args, q, lend(&mut hits), out);
        }
    }
}

/// # Safety
/// The CPU supports AVX2, `q0 + T ≤ queries.len() / words`, and the
/// lengths satisfy [`assert_tile_buffers`](super::assert_tile_buffers) for
/// `args` and `out` (and `hits`, when given).
#[inline(always)]
unsafe fn tile<const T: usize>(args: &TileArgs<'_>, q0: usize, mut hits: Hits<'_>, out: &mut [u32]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: for query
    // q0 + t < queries.len() / words and group g < block.len() / (8 · words), it
    // reads queries[(q0 + t) · words + w] and block[(g · words + w) · 8..][..8]
    // (w < words), writes out[(q0 + t) · 8 · groups + 8g..][..8], and reads
    // bounds[q0 + t] and writes hits[(q0 + t) · groups + g]; `assert_tile_buffers`
    // checked that all of these are in bounds.
    unsafe {
        let TileArgs {
            queries,
            words,
            block,
            groups,
        } = *args;
        let rows = groups * 8;
        let qp = queries.as_ptr().add(q0 * words);
        for g in 0..groups {
            let gp = block.as_ptr().add(g * words * 8);
            let mut lo = [_mm256_setzero_si256(); T];
            let mut hi = [_mm256_setzero_si256(); T];
            for w in 0..words {
                let d_lo = _mm256_loadu_si256(gp.add(w * 8) as *const __m256i);
                let d_hi = _mm256_loadu_si256(gp.add(w * 8 + 4) as *const __m256i);
                for t in 0..T {
                    let qv = _mm256_set1_epi64x(*qp.add(t * words + w) as i64);
                    lo[t] = _mm256_add_epi64(lo[t], popcount_u64_lanes(_mm256_xor_si256(d_lo, qv)));
                    hi[t] = _mm256_add_epi64(hi[t], popcount_u64_lanes(_mm256_xor_si256(d_hi, qv)));
                }
            }
            for t in 0..T {
                let mut lanes = [0u64; 8];
                _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, lo[t]);
                _mm256_storeu_si256(lanes.as_mut_ptr().add(4) as *mut __m256i, hi[t]);
                let dst = out.as_mut_ptr().add((q0 + t) * rows + g * 8);
                for (r, &v) in lanes.iter().enumerate() {
                    *dst.add(r) = v as u32;
                }
                if let Some((bounds, hits)) = hits.as_mut() {
                    // Distances and bounds are below 2^32, so the signed 64-bit compare is exact.
                    let bound = _mm256_set1_epi64x(i64::from(*bounds.get_unchecked(q0 + t)));
                    let lo_hit = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(bound, lo[t])));
                    let hi_hit = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(bound, hi[t])));
                    *hits.get_unchecked_mut((q0 + t) * groups + g) = (lo_hit | (hi_hit << 4)) as u8;
                }
            }
        }
    }
}

fn rotate(rows: &[f32], matrix: &[f32], dim: usize, out: &mut [f32]) {
    // SAFETY: CPU: AVX2 (this table is only handed out on such a CPU);
    // lengths: none assumed, the body is safe (bounds-checked) Rust.
    unsafe { rotate_avx2(rows, matrix, dim, out) }
}

/// The SPEC §9 rotation compiled for AVX2 (plain multiplies and adds: no
/// fused multiply-add, so the bits are the scalar backend's).
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn rotate_avx2(rows: &[f32], matrix: &[f32], dim: usize, out: &mut [f32]) {
    crate::encode::rotation::rotate_rows(rows, matrix, dim, out)
}
