//! AVX2 kernels: compare masks for the quantiser; the Lee kernels are in
//! `x86_avx2_lee`.

use super::x86_avx2_lee::{lee_pair, lee_rows, lee_tile, lee_tile_hits};
use super::INTERLEAVE;
use super::{assert_encode_buffers, encode_row_cuts, encode_row_with, Backend, Kernels};
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
