//! AVX-512 kernels: VPOPCNTQ for Lee distances (64 bytes per instruction,
//! masked loads for tails) and 16-wide compare masks for the quantiser.

use super::{
    assert_encode_buffers, assert_lee_pair, assert_lee_rows, assert_tile_buffers, encode_row_cuts, encode_row_gather,
    lend, Backend, Hits, Kernels, TileArgs,
};
use super::{prefetch_row_ahead, INTERLEAVE};
use crate::encode::cuts::quantize_cuts_tail;
use crate::encode::quantize::quantize_pack_scalar;
use crate::keys::count_run_starts;
use std::arch::x86_64::*;

pub(crate) static KERNELS: Kernels = Kernels {
    backend: Backend::Avx512,
    encode_f32,
    encode_f64,
    encode_cuts_f32,
    encode_cuts_f64,
    lee_pair,
    lee_rows,
    lee_tile,
    lee_tile_hits,
    asym_scan: super::x86_avx512_asym::asym_scan,
    quantise_pairs: super::x86_avx2_asym::quantise_pairs,
    // AVX-512 CPUs run the AVX2 fast-scan kernel (no wider variant yet).
    lee_scan: super::x86_avx2_lee_scan::lee_scan,
    rotate,
    route_dots: super::x86_avx512_route::route_dots,
};

// Safe shims: only reachable through `KERNELS`, which `Kernels::for_backend`
// hands out after checking AVX-512 F, BW, VL and VPOPCNTDQ, BMI2 and AVX2.
// Each checks the buffer lengths its kernel relies on before calling it.

fn encode_f32(x: &[f32], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), None, code.len());
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: `code` holds `code_width(x.len())` bytes (asserted above).
    unsafe { encode_f32_avx512(x, tau, code) }
}
fn encode_f64(x: &[f64], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), None, code.len());
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: `code` holds `code_width(x.len())` bytes (asserted above).
    unsafe { encode_f64_avx512(x, tau, code) }
}
fn encode_cuts_f32(x: &[f32], cuts: &[f32], code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), Some(cuts.len()), code.len());
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: `code` holds `code_width(x.len())` bytes and `cuts`
    // `3 × x.len()` values (asserted above).
    unsafe { encode_cuts_f32_avx512(x, cuts, code) }
}
fn encode_cuts_f64(x: &[f64], cuts: &[f64], code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), Some(cuts.len()), code.len());
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: `code` holds `code_width(x.len())` bytes and `cuts`
    // `3 × x.len()` values (asserted above).
    unsafe { encode_cuts_f64_avx512(x, cuts, code) }
}
fn lee_pair(a: &[u8], b: &[u8]) -> u32 {
    assert_lee_pair(a.len(), b.len());
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: none needed (the kernel reads the common length of both).
    unsafe { lee_pair_avx512(a, b) }
}
fn lee_rows(query: &[u8], rows: &[u8], out: &mut [u32]) {
    assert_lee_rows(query.len(), rows.len(), out.len());
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: none needed (the kernel reads each row as a subslice).
    unsafe { lee_rows_avx512(query, rows, out) }
}
fn lee_tile(queries: &[u64], words: usize, block: &[u64], out: &mut [u32]) {
    assert_tile_buffers(queries.len(), words, block.len(), out.len(), None);
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: as `assert_tile_buffers` checked just above.
    unsafe { lee_tile_avx512(queries, words, block, None, out) }
}
fn lee_tile_hits(queries: &[u64], words: usize, block: &[u64], bounds: &[u32], out: &mut [u32], hits: &mut [u8]) {
    let lengths = Some((bounds.len(), hits.len()));
    assert_tile_buffers(queries.len(), words, block.len(), out.len(), lengths);
    // SAFETY: CPU: the AVX-512 set this table requires (checked before it is
    // handed out); lengths: as `assert_tile_buffers` checked just above.
    unsafe { lee_tile_avx512(queries, words, block, Some((bounds, hits)), out) }
}

/// # Safety
/// The CPU supports the features enabled here, and `code` holds
/// `code_width(x.len())` bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
unsafe fn encode_f32_avx512(x: &[f32], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    // SAFETY: CPU: every feature the helpers need is enabled here (this
    // function's contract); lengths: the row encoder passes the whole row and
    // `code` (`code_width` bytes), and `count_rest` the code and its dimension.
    unsafe {
        encode_row_gather(
            x,
            tau,
            code,
            sum_of_squares_f32(x),
            |x, t, out| quantize_f32(x, t, out),
            |w, s| pext_pairs(w, s),
            |c, w, d, p| count_rest(c, w, d, p),
        )
    }
}

/// # Safety
/// The CPU supports the features enabled here, and `code` holds
/// `code_width(x.len())` bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
unsafe fn encode_f64_avx512(x: &[f64], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    // SAFETY: CPU: every feature the helpers need is enabled here (this
    // function's contract); lengths: the row encoder passes the whole row and
    // `code` (`code_width` bytes), and `count_rest` the code and its dimension.
    unsafe {
        encode_row_gather(
            x,
            tau,
            code,
            crate::encode::quantize::sum_of_squares(x),
            |x, t, out| quantize_f64(x, t, out),
            |w, s| pext_pairs(w, s),
            |c, w, d, p| count_rest(c, w, d, p),
        )
    }
}

/// # Safety
/// The CPU supports the features enabled here, `code` holds
/// `code_width(x.len())` bytes and `cuts` exactly `3 × x.len()` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
unsafe fn encode_cuts_f32_avx512(x: &[f32], cuts: &[f32], code: &mut [u8]) -> Result<(u64, u32), usize> {
    // SAFETY: CPU: every feature the helpers need is enabled here (this
    // function's contract); lengths: the row encoder passes the whole row,
    // `cuts` (`3 × x.len()`) and `code` (`code_width` bytes).
    unsafe {
        encode_row_cuts(
            x,
            cuts,
            code,
            sum_of_squares_f32(x),
            |x, inv, cuts, out| quantize_cuts_f32(x, inv, cuts, out),
            |w, s| pext_pairs(w, s),
            |c, w, d, p| count_rest(c, w, d, p),
        )
    }
}

/// # Safety
/// The CPU supports the features enabled here, `code` holds
/// `code_width(x.len())` bytes and `cuts` exactly `3 × x.len()` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
unsafe fn encode_cuts_f64_avx512(x: &[f64], cuts: &[f64], code: &mut [u8]) -> Result<(u64, u32), usize> {
    // SAFETY: CPU: every feature the helpers need is enabled here (this
    // function's contract); lengths: the row encoder passes the whole row,
    // `cuts` (`3 × x.len()`) and `code` (`code_width` bytes).
    unsafe {
        encode_row_cuts(
            x,
            cuts,
            code,
            crate::encode::quantize::sum_of_squares(x),
            |x, inv, cuts, out| quantize_cuts_f64(x, inv, cuts, out),
            |w, s| pext_pairs(w, s),
            |c, w, d, p| count_rest(c, w, d, p),
        )
    }
}

/// Σx² of f32 coordinates in four registers of eight f64 lanes: register `q`
/// lane `j` sums coordinates `8q + j`, `8q + j + 32`, … in order, exactly as
/// the portable 32-lane loop does, so the bits match every other backend
/// (with one fused multiply-add per value: an f32's square is exact in f64).
///
/// # Safety
/// The CPU supports AVX-512 F and VL.
#[inline(always)]
unsafe fn sum_of_squares_f32(x: &[f32]) -> f64 {
    // SAFETY: CPU: AVX-512 F and VL (this function's contract); lengths: the
    // loop reads x[i + 8q..][..8] for i + 32 ≤ x.len() (its prefetches of the
    // row ahead never fault), and the tail loads are
    // masked to the `x.len() - i` elements left; the store fills the 8-lane local.
    unsafe {
        let mut acc = [_mm512_setzero_pd(); 4];
        // acc + x·x rounded once: the bits of acc + (x·x), whose product is exact.
        let add_square = |acc: __m512d, v: __m256| {
            let v = _mm512_cvtps_pd(v);
            _mm512_fmadd_pd(v, v, acc)
        };
        let body = x.len() / 32 * 32;
        let mut i = 0;
        while i < body {
            prefetch_row_ahead(x, i / 2);
            for (q, a) in acc.iter_mut().enumerate() {
                *a = add_square(*a, _mm256_loadu_ps(x.as_ptr().add(i + 8 * q)));
            }
            i += 32;
        }
        // The tail: missing lanes load as +0.0, whose square adds +0.0 and leaves
        // a non-negative sum unchanged.
        for a in acc.iter_mut() {
            if i >= x.len() {
                break;
            }
            let left = x.len() - i;
            let mask: __mmask8 = if left >= 8 { 0xff } else { (1u8 << left) - 1 };
            *a = add_square(*a, _mm256_maskz_loadu_ps(mask, x.as_ptr().add(i)));
            i += 8;
        }
        let octet = _mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3]));
        let mut lanes = [0f64; 8];
        _mm512_storeu_pd(lanes.as_mut_ptr(), octet);
        crate::encode::quantize::combine_lanes(lanes)
    }
}

/// The run-start gather of the key in one instruction (fast BMI2 on every
/// CPU with AVX-512 VPOPCNTDQ; the portable loop elsewhere).
///
/// # Safety
/// The CPU supports BMI2.
#[inline(always)]
unsafe fn pext_pairs(word: u64, starts: u64) -> u64 {
    // SAFETY: CPU: BMI2 (this function's contract); lengths: no memory is accessed.
    unsafe { _pext_u64(word, starts | (starts << 1)) }
}

/// Run starts in the words after the key, eight words per step: byte-swap to
/// the big-endian symbol order, pair each word with the one before (`valignq`),
/// and count with VPOPCNTQ; the partial tail goes to the portable count.
///
/// # Safety
/// The CPU supports AVX-512 F, BW and VPOPCNTDQ, and `code` holds at least
/// `code_width(dim)` bytes.
#[inline(always)]
unsafe fn count_rest(code: &[u8], first: usize, dim: usize, prev: u64) -> u32 {
    // SAFETY: CPU: AVX-512 F, BW and VPOPCNTDQ (this function's contract);
    // lengths: the loop reads code[8w..8w + 64] for w + 8 ≤ dim / 32, so within
    // the first dim / 4 ≤ code_width(dim) bytes.
    unsafe {
        let full_words = dim / 32;
        let to_big_endian = _mm512_set_epi64(
            0x08090a0b_0c0d0e0f,
            0x00010203_04050607,
            0x08090a0b_0c0d0e0f,
            0x00010203_04050607,
            0x08090a0b_0c0d0e0f,
            0x00010203_04050607,
            0x08090a0b_0c0d0e0f,
            0x00010203_04050607,
        );
        let low = _mm512_set1_epi64(0x5555_5555_5555_5555);
        let mut before = _mm512_set1_epi64(prev as i64); // lane 7 holds the pair before `first`
        let mut acc = _mm512_setzero_si512();
        let mut w = first;
        while w + 8 <= full_words {
            let words = _mm512_shuffle_epi8(_mm512_loadu_si512(code.as_ptr().add(8 * w) as *const _), to_big_endian);
            let previous = _mm512_alignr_epi64::<7>(words, before);
            let carry = _mm512_slli_epi64::<62>(previous);
            let diff = _mm512_xor_si512(words, _mm512_or_si512(_mm512_srli_epi64::<2>(words), carry));
            let starts = _mm512_and_si512(_mm512_or_si512(diff, _mm512_srli_epi64::<1>(diff)), low);
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(starts));
            before = words;
            w += 8;
        }
        let mut prev = prev;
        if w > first {
            prev = (_mm512_reduce_add_epi64(_mm512_and_si512(
                _mm512_alignr_epi64::<7>(before, before),
                _mm512_setr_epi64(3, 0, 0, 0, 0, 0, 0, 0),
            ))) as u64;
        }
        _mm512_reduce_add_epi64(acc) as u32 + count_run_starts(code, w, dim, prev)
    }
}

/// Thirty-two coordinates → eight code bytes. Each group of four lanes is
/// reversed first, so that compare-mask bit `i` belongs at code bit pair `i`
/// (little-endian): two `pdep`s then interleave sign and near-zero bits.
///
/// # Safety
/// The CPU supports AVX-512 F and BMI2, and `out` holds at least
/// `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_f32(x: &[f32], t: f32, out: &mut [u8]) {
    // SAFETY: CPU: AVX-512 F and BMI2 (this function's contract); lengths: the
    // loop reads x[i..i + 32] for i + 32 ≤ x.len() and writes out[i / 4..][..8];
    // the 16-wide tail reads x[body..][..16] and writes out[body / 4..][..4], all
    // within x and the first x.len() / 4 ≤ code_width bytes of `out`.
    unsafe {
        let (zero, tv, nt) = (_mm512_setzero_ps(), _mm512_set1_ps(t), _mm512_set1_ps(-t));
        let reverse4 = _mm512_setr_epi32(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
        let masks = |v: __m512| {
            let v = _mm512_permutexvar_ps(reverse4, v);
            let h = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, zero);
            let l = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, nt) & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, tv);
            (u64::from(h), u64::from(l))
        };
        let body = x.len() / 32 * 32;
        let mut i = 0;
        while i < body {
            prefetch_row_ahead(x, x.len() / 2 + i / 2);
            let (h0, l0) = masks(_mm512_loadu_ps(x.as_ptr().add(i)));
            let (h1, l1) = masks(_mm512_loadu_ps(x.as_ptr().add(i + 16)));
            let (h, l) = (h0 | h1 << 16, l0 | l1 << 16);
            let bytes = _pdep_u64(h, 0xAAAA_AAAA_AAAA_AAAA) | _pdep_u64(l, 0x5555_5555_5555_5555);
            std::ptr::write_unaligned(out.as_mut_ptr().add(i / 4) as *mut [u8; 8], bytes.to_le_bytes());
            i += 32;
        }
        if x.len() - body >= 16 {
            let (h, l) = masks(_mm512_loadu_ps(x.as_ptr().add(body)));
            let bytes = _pdep_u64(h, 0xAAAA_AAAA) | _pdep_u64(l, 0x5555_5555);
            std::ptr::write_unaligned(
                out.as_mut_ptr().add(body / 4) as *mut [u8; 4],
                (bytes as u32).to_le_bytes(),
            );
            i += 16;
        }
        quantize_pack_scalar(&x[i..], t, &mut out[i / 4..]);
    }
}

/// Reverses the four bit pairs of every byte: `pdep` of unpermuted compare
/// masks puts coordinate `4k + r` at pair `r` of byte `k`; the code wants it
/// at pair `3 − r` (first dimension in the high bits).
#[inline(always)]
fn reverse_pairs_in_bytes(b: u64) -> u64 {
    ((b & 0x0303_0303_0303_0303) << 6)
        | ((b & 0x0c0c_0c0c_0c0c_0c0c) << 2)
        | ((b >> 2) & 0x0c0c_0c0c_0c0c_0c0c)
        | ((b >> 6) & 0x0303_0303_0303_0303)
}

/// Per-dimension cuts, thirty-two coordinates → eight code bytes: `v = x·inv`
/// against each dimension's cuts (loaded in natural order, so the lanes are
/// not permuted), interleaved by `pdep`, pairs reversed per byte.
///
/// # Safety
/// The CPU supports AVX-512 F and BMI2, `cuts` holds `3 × x.len()`
/// values and `out` at least `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_cuts_f32(x: &[f32], inv: f32, cuts: &[f32], out: &mut [u8]) {
    // SAFETY: CPU: AVX-512 F and BMI2 (this function's contract); lengths: the
    // loads read x and each third of `cuts` at i..i + 16 for i + 16 ≤ x.len(); the
    // stores write out[i / 4..][..8] (i + 32 ≤ x.len()) and out[body / 4..][..4]
    // (body + 16 ≤ x.len()), within code_width(x.len()) bytes.
    unsafe {
        let n = x.len();
        let scale = _mm512_set1_ps(inv);
        let (lows, mids, highs) = (cuts.as_ptr(), cuts.as_ptr().add(n), cuts.as_ptr().add(2 * n));
        let masks = |i: usize| {
            let v = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr().add(i)), scale);
            let h = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, _mm512_loadu_ps(mids.add(i)));
            let l = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, _mm512_loadu_ps(lows.add(i)))
                & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, _mm512_loadu_ps(highs.add(i)));
            (u64::from(h), u64::from(l))
        };
        let body = n / 32 * 32;
        let mut i = 0;
        while i < body {
            prefetch_row_ahead(x, x.len() / 2 + i / 2);
            let (h0, l0) = masks(i);
            let (h1, l1) = masks(i + 16);
            let (h, l) = (h0 | h1 << 16, l0 | l1 << 16);
            let bytes =
                reverse_pairs_in_bytes(_pdep_u64(h, 0xAAAA_AAAA_AAAA_AAAA) | _pdep_u64(l, 0x5555_5555_5555_5555));
            std::ptr::write_unaligned(out.as_mut_ptr().add(i / 4) as *mut [u8; 8], bytes.to_le_bytes());
            i += 32;
        }
        if n - body >= 16 {
            let (h, l) = masks(body);
            let bytes = reverse_pairs_in_bytes(_pdep_u64(h, 0xAAAA_AAAA) | _pdep_u64(l, 0x5555_5555));
            std::ptr::write_unaligned(
                out.as_mut_ptr().add(body / 4) as *mut [u8; 4],
                (bytes as u32).to_le_bytes(),
            );
            i += 16;
        }
        quantize_cuts_tail(x, inv, cuts, i, out);
    }
}

/// Per-dimension cuts, eight coordinates → two code bytes.
///
/// # Safety
/// The CPU supports AVX-512 F, `cuts` holds `3 × x.len()` values and
/// `out` at least `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_cuts_f64(x: &[f64], inv: f64, cuts: &[f64], out: &mut [u8]) {
    // SAFETY: CPU: AVX-512 F (this function's contract); lengths: the loop reads x
    // and each third of `cuts` at i..i + 8 for i + 8 ≤ x.len() and writes
    // out[i / 4..][..2], within code_width(x.len()) bytes.
    unsafe {
        let n = x.len();
        let body = n / 8 * 8;
        let scale = _mm512_set1_pd(inv);
        let (lows, mids, highs) = (cuts.as_ptr(), cuts.as_ptr().add(n), cuts.as_ptr().add(2 * n));
        let mut i = 0;
        while i < body {
            let v = _mm512_mul_pd(_mm512_loadu_pd(x.as_ptr().add(i)), scale);
            let h = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, _mm512_loadu_pd(mids.add(i))) as usize;
            let l = (_mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, _mm512_loadu_pd(lows.add(i)))
                & _mm512_cmp_pd_mask::<_CMP_LE_OQ>(v, _mm512_loadu_pd(highs.add(i)))) as usize;
            let dst = out.as_mut_ptr().add(i / 4);
            *dst = INTERLEAVE[(h & 15) << 4 | (l & 15)];
            *dst.add(1) = INTERLEAVE[(h >> 4) << 4 | (l >> 4)];
            i += 8;
        }
        quantize_cuts_tail(x, inv, cuts, body, out);
    }
}

/// Eight coordinates → two code bytes.
///
/// # Safety
/// The CPU supports AVX-512 F and `out` holds at least
/// `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_f64(x: &[f64], t: f64, out: &mut [u8]) {
    // SAFETY: CPU: AVX-512 F (this function's contract); lengths: the loop reads
    // x[i..i + 8] for i + 8 ≤ x.len() and writes out[i / 4..][..2], within
    // code_width(x.len()) bytes.
    unsafe {
        let body = x.len() / 8 * 8;
        let (zero, tv, nt) = (_mm512_setzero_pd(), _mm512_set1_pd(t), _mm512_set1_pd(-t));
        let mut i = 0;
        while i < body {
            let v = _mm512_loadu_pd(x.as_ptr().add(i));
            let h = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, zero) as usize;
            let l = (_mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, nt) & _mm512_cmp_pd_mask::<_CMP_LE_OQ>(v, tv)) as usize;
            let dst = out.as_mut_ptr().add(i / 4);
            *dst = INTERLEAVE[(h & 15) << 4 | (l & 15)];
            *dst.add(1) = INTERLEAVE[(h >> 4) << 4 | (l >> 4)];
            i += 8;
        }
        quantize_pack_scalar(&x[body..], t, &mut out[body / 4..]);
    }
}

/// # Safety
/// The CPU supports AVX-512 F, BW and VPOPCNTDQ.
#[inline(always)]
unsafe fn lee_pair_inline(a: &[u8], b: &[u8]) -> u32 {
    // SAFETY: CPU: AVX-512 F, BW and VPOPCNTDQ (this function's contract);
    // lengths: full loads read 64 bytes at i + 64 ≤ n = min(a.len(), b.len()),
    // the tail loads are masked to the n - i bytes left.
    unsafe {
        let n = a.len().min(b.len());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i + 64 <= n {
            let x = _mm512_loadu_si512(a.as_ptr().add(i) as *const _);
            let y = _mm512_loadu_si512(b.as_ptr().add(i) as *const _);
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
            i += 64;
        }
        if i < n {
            // Masked loads read only the bytes that exist and zero the rest.
            let mask: __mmask64 = (1u64 << (n - i)) - 1;
            let x = _mm512_maskz_loadu_epi8(mask, a.as_ptr().add(i) as *const i8);
            let y = _mm512_maskz_loadu_epi8(mask, b.as_ptr().add(i) as *const i8);
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
        }
        _mm512_reduce_add_epi64(acc) as u32
    }
}

/// # Safety
/// The CPU supports the features enabled here.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
unsafe fn lee_pair_avx512(a: &[u8], b: &[u8]) -> u32 {
    // SAFETY: CPU: the AVX-512 set `lee_pair_inline` needs is enabled here (this
    // function's contract); lengths: none needed.
    unsafe { lee_pair_inline(a, b) }
}

/// # Safety
/// The CPU supports the features enabled here.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
unsafe fn lee_rows_avx512(query: &[u8], rows: &[u8], out: &mut [u32]) {
    // SAFETY: CPU: the AVX-512 set `lee_pair_inline` needs is enabled here (this
    // function's contract); lengths: none needed (each row is a subslice).
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

/// Eight (then four, then one) queries at a time against each 8-row group: one
/// load of the group's word serves several XOR + VPOPCNTQ + add, with no horizontal sums.
///
/// # Safety
/// The CPU supports the features enabled here, and the lengths satisfy
/// [`assert_tile_buffers`](super::assert_tile_buffers) (with `hits`, its bounds and masks).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
unsafe fn lee_tile_avx512(queries: &[u64], words: usize, block: &[u64], mut hits: Hits<'_>, out: &mut [u32]) {
    // SAFETY: CPU: AVX-512 F, VL and VPOPCNTDQ (this function's contract);
    // lengths: `tile` needs q + T ≤ queries.len() / words and the lengths
    // `assert_tile_buffers` checks (this function's contract); the loops keep q + T ≤ nq.
    unsafe {
        let nq = queries.len() / words;
        let args = TileArgs {
            queries,
            words,
            block,
            groups: block.len() / (words * 8),
        };
        let mut q = 0;
        while q + 8 <= nq {
            tile::<8>(&args, q, lend(&mut hits), out);
            q += 8;
        }
        while q + 4 <= nq {
            tile::<4>(&args, q, lend(&mut hits), out);
            q += 4;
        }
        while q < nq {
            tile::<1>(&args, q, lend(&mut hits), out);
            q += 1;
        }
    }
}

/// # Safety
/// The CPU supports AVX-512 F, VL and VPOPCNTDQ, `q0 + T ≤ queries.len() /
/// words`, and the lengths satisfy [`assert_tile_buffers`](super::assert_tile_buffers)
/// for `args` and `out` (and `hits`, when given).
#[inline(always)]
unsafe fn tile<const T: usize>(args: &TileArgs<'_>, q0: usize, mut hits: Hits<'_>, out: &mut [u32]) {
    // SAFETY: CPU: AVX-512 F, VL and VPOPCNTDQ (this function's contract);
    // lengths: for query q0 + t < queries.len() / words and group
    // g < block.len() / (8 · words), it reads queries[(q0 + t) · words + w] and
    // block[(g · words + w) · 8..][..8] (w < words), writes
    // out[(q0 + t) · 8 · groups + 8g..][..8], and reads bounds[q0 + t] and writes
    // hits[(q0 + t) · groups + g]; `assert_tile_buffers` checked all are in bounds.
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
            let mut acc = [_mm512_setzero_si512(); T];
            for w in 0..words {
                let d = _mm512_loadu_si512(gp.add(w * 8) as *const _);
                for (t, a) in acc.iter_mut().enumerate() {
                    let qv = _mm512_set1_epi64(*qp.add(t * words + w) as i64);
                    *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(d, qv)));
                }
            }
            for (t, a) in acc.iter().enumerate() {
                let dst = out.as_mut_ptr().add((q0 + t) * rows + g * 8);
                match hits.as_mut() {
                    Some((bounds, hits)) => {
                        // Search reads distances of flagged groups only: skip the rest's stores.
                        let bound = _mm512_set1_epi64(i64::from(*bounds.get_unchecked(q0 + t)));
                        let mask = _mm512_cmplt_epu64_mask(*a, bound);
                        *hits.get_unchecked_mut((q0 + t) * groups + g) = mask;
                        if mask != 0 {
                            _mm256_storeu_si256(dst as *mut __m256i, _mm512_cvtepi64_epi32(*a));
                        }
                    }
                    None => _mm256_storeu_si256(dst as *mut __m256i, _mm512_cvtepi64_epi32(*a)),
                }
            }
        }
    }
}

fn rotate(rows: &[f32], matrix: &[f32], dim: usize, out: &mut [f32]) {
    // SAFETY: CPU: AVX-512F (this table is only handed out on such a CPU);
    // lengths: none assumed, the body is safe (bounds-checked) Rust.
    unsafe { rotate_avx512f(rows, matrix, dim, out) }
}

/// The SPEC §9 rotation compiled for AVX-512F (plain multiplies and adds: no
/// fused multiply-add, so the bits are the scalar backend's).
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn rotate_avx512f(rows: &[f32], matrix: &[f32], dim: usize, out: &mut [f32]) {
    crate::encode::rotation::rotate_rows(rows, matrix, dim, out)
}

#[cfg(test)]
mod tests {
    /// The register-resident Σx² must give the portable loop's bits for every
    /// length (tail shapes) and dynamic range, or encodes could differ by backend.
    #[test]
    fn sum_of_squares_f32_is_bit_identical_to_the_portable_loop() {
        if super::super::Kernels::for_backend(super::Backend::Avx512).is_none() {
            eprintln!("no AVX-512 VPOPCNTDQ here: nothing to compare");
            return;
        }
        // SAFETY: the backend check above found every feature the function enables.
        crate::encode::quantize::assert_sum_of_squares_f32_matches(|x| unsafe { sum_of_squares_f32_checked(x) });
    }

    /// # Safety
    /// The CPU supports the features enabled here.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt,bmi2")]
    unsafe fn sum_of_squares_f32_checked(x: &[f32]) -> f64 {
        // SAFETY: CPU: AVX-512 F and VL are enabled here (this function's contract);
        // lengths: none needed.
        unsafe { super::sum_of_squares_f32(x) }
    }
}
