//! AVX2 kernels: compare masks for the quantiser; the Lee kernels are in
//! `x86_avx2_lee`.

use super::x86_avx2_lee::{lee_pair, lee_rows, lee_tile, lee_tile_hits};
use super::{assert_encode_buffers, encode_row_cuts, encode_row_gather, Backend, Kernels};
use super::{prefetch_row_ahead, INTERLEAVE};
use crate::encode::cuts::quantize_cuts_tail;
use crate::encode::quantize::{finish_sum_of_squares, quantize_pack_scalar, sum_of_squares, NORM_LANES};
use crate::keys::{count_run_starts, gather_run_starts_bytewise};
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
    quantise_pairs: super::x86_avx2_asym::quantise_pairs,
    lee_scan: super::x86_avx2_lee_scan::lee_scan,
    rotate,
    route_dots: super::x86_avx2_route::route_dots,
};

// Safe shims: only reachable through `KERNELS`, which `Kernels::for_backend`
// hands out after checking the CPU supports AVX2, FMA and POPCNT. Each checks the
// buffer lengths its kernel relies on before calling it.

fn encode_f32(x: &[f32], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), None, code.len());
    // SAFETY: CPU: AVX2, FMA and POPCNT (this table is only handed out on such a
    // CPU), BMI2 for the `pext` twin (`fast_pext` checked it); lengths: `code`
    // holds `code_width(x.len())` bytes (asserted above).
    unsafe {
        if fast_pext() {
            encode_f32_avx2_pext(x, tau, code)
        } else {
            encode_f32_avx2(x, tau, code)
        }
    }
}
fn encode_f64(x: &[f64], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), None, code.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU), BMI2 for the `pext` twin (`fast_pext` checked it); lengths: `code`
    // holds `code_width(x.len())` bytes (asserted above).
    unsafe {
        if fast_pext() {
            encode_f64_avx2_pext(x, tau, code)
        } else {
            encode_f64_avx2(x, tau, code)
        }
    }
}
fn encode_cuts_f32(x: &[f32], cuts: &[f32], code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), Some(cuts.len()), code.len());
    // SAFETY: CPU: AVX2, FMA and POPCNT (this table is only handed out on such a
    // CPU), BMI2 for the `pext` twin (`fast_pext` checked it); lengths: `code`
    // holds `code_width(x.len())` bytes and `cuts` `3 × x.len()` values (asserted above).
    unsafe {
        if fast_pext() {
            encode_cuts_f32_avx2_pext(x, cuts, code)
        } else {
            encode_cuts_f32_avx2(x, cuts, code)
        }
    }
}
fn encode_cuts_f64(x: &[f64], cuts: &[f64], code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), Some(cuts.len()), code.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU), BMI2 for the `pext` twin (`fast_pext` checked it); lengths: `code`
    // holds `code_width(x.len())` bytes and `cuts` `3 × x.len()` values (asserted above).
    unsafe {
        if fast_pext() {
            encode_cuts_f64_avx2_pext(x, cuts, code)
        } else {
            encode_cuts_f64_avx2(x, cuts, code)
        }
    }
}

/// Whether BMI2 `pext` is present and fast, so the key's run-start gather is
/// one instruction: on Intel CPUs and on AMD from Zen 3 (family 19h). AMD's
/// Zen 1 and 2 (and Hygon's Zen-based CPUs) microcode it at hundreds of
/// cycles, where the table-driven bytewise gather wins. Read once. On Zen 5
/// with `Q2KEY_SIMD=avx2`, `pext` made the whole encode of 100 000 rows of
/// 384 dimensions 1.12–1.18× faster (8.8–9.1 → 7.7–8.1 ms).
fn fast_pext() -> bool {
    static FAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FAST.get_or_init(|| {
        if !std::arch::is_x86_feature_detected!("bmi2") {
            return false;
        }
        let vendor = __cpuid(0);
        let vendor: Vec<u8> = [vendor.ebx, vendor.edx, vendor.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        let eax = __cpuid(1).eax;
        let (base, extended) = ((eax >> 8) & 0xf, (eax >> 20) & 0xff);
        let family = if base == 0xf { base + extended } else { base };
        match &vendor[..] {
            b"GenuineIntel" => true,
            b"AuthenticAMD" => family >= 0x19,
            _ => false,
        }
    })
}

/// Defines a row encoder twice over one body: `$bytewise` gathers the key's
/// run starts with the portable table loop, `$pext` (which also enables BMI2)
/// with one `pext`; the two give the same bits (`gather_run_starts_bytewise`
/// is `pext` by definition). `$gather` names the gather closure in the body.
/// The row encoders hand the shared one closures, never bare function items:
/// a closure defined in a `#[target_feature]` function inherits its features
/// and is inlined, while a function item passed as `impl Fn` runs through a
/// call shim compiled without them (the key's `count_ones` became a software
/// popcount, a fifth of the encode time at n = 1024).
macro_rules! row_encoder_with_both_gathers {
    (
        $(#[$attr:meta])*
        fn $bytewise:ident / $pext:ident ($($arg:ident: $ty:ty),* $(,)?),
        features $features:literal / $features_pext:literal,
        |$gather:ident| $body:block
    ) => {
        $(#[$attr])*
        #[target_feature(enable = $features)]
        #[allow(clippy::redundant_closure, reason = "closures keep the target features")]
        unsafe fn $bytewise($($arg: $ty),*) -> Result<(u64, u32), usize> {
            let $gather = |w: u64, s: u64| gather_run_starts_bytewise(w, s);
            $body
        }
        $(#[$attr])*
        /// (This twin also needs BMI2.)
        #[target_feature(enable = $features_pext)]
        #[allow(clippy::redundant_closure, reason = "closures keep the target features")]
        unsafe fn $pext($($arg: $ty),*) -> Result<(u64, u32), usize> {
            let $gather = |w: u64, s: u64| _pext_u64(w, s | (s << 1));
            $body
        }
    };
}

row_encoder_with_both_gathers! {
    /// # Safety
    /// The CPU supports AVX2, FMA and POPCNT, and `code` holds `code_width(x.len())` bytes.
    fn encode_f32_avx2 / encode_f32_avx2_pext(x: &[f32], tau: f64, code: &mut [u8]),
    features "avx2,fma,popcnt" / "avx2,fma,popcnt,bmi2",
    |gather| {
        // SAFETY: CPU: AVX2, FMA and POPCNT (this function's contract); lengths: the row
        // encoder hands `quantize_f32` the whole row and `code`, which holds
        // `code_width` bytes.
        unsafe {
            encode_row_gather(
                x,
                tau,
                code,
                sum_of_squares_f32(x),
                |x, t, out| quantize_f32(x, t, out),
                gather,
                |c, w, d, p| count_run_starts(c, w, d, p),
            )
        }
    }
}

row_encoder_with_both_gathers! {
    /// # Safety
    /// The CPU supports AVX2 and POPCNT, and `code` holds `code_width(x.len())` bytes.
    fn encode_f64_avx2 / encode_f64_avx2_pext(x: &[f64], tau: f64, code: &mut [u8]),
    features "avx2,popcnt" / "avx2,popcnt,bmi2",
    |gather| {
        // SAFETY: CPU: AVX2 (this function's contract); lengths: the row encoder
        // hands `quantize_f64` the whole row and `code`, which holds `code_width` bytes.
        encode_row_gather(
            x,
            tau,
            code,
            sum_of_squares(x),
            |x, t, out| unsafe { quantize_f64(x, t, out) },
            gather,
            |c, w, d, p| count_run_starts(c, w, d, p),
        )
    }
}

row_encoder_with_both_gathers! {
    /// # Safety
    /// The CPU supports AVX2, FMA and POPCNT, `code` holds `code_width(x.len())`
    /// bytes and `cuts` exactly `3 × x.len()` values.
    fn encode_cuts_f32_avx2 / encode_cuts_f32_avx2_pext(x: &[f32], cuts: &[f32], code: &mut [u8]),
    features "avx2,fma,popcnt" / "avx2,fma,popcnt,bmi2",
    |gather| {
        // SAFETY: CPU: AVX2 and FMA (this function's contract); lengths: the row encoder
        // passes the whole row, `cuts` (`3 × x.len()`) and `code` (`code_width` bytes).
        unsafe {
            encode_row_cuts(
                x,
                cuts,
                code,
                sum_of_squares_f32(x),
                |x, inv, cuts, out| quantize_cuts_f32(x, inv, cuts, out),
                gather,
                |c, w, d, p| count_run_starts(c, w, d, p),
            )
        }
    }
}

row_encoder_with_both_gathers! {
    /// # Safety
    /// The CPU supports AVX2 and POPCNT, `code` holds `code_width(x.len())` bytes
    /// and `cuts` exactly `3 × x.len()` values.
    fn encode_cuts_f64_avx2 / encode_cuts_f64_avx2_pext(x: &[f64], cuts: &[f64], code: &mut [u8]),
    features "avx2,popcnt" / "avx2,popcnt,bmi2",
    |gather| {
        encode_row_cuts(
            x,
            cuts,
            code,
            sum_of_squares(x),
            // SAFETY: CPU: AVX2 (this function's contract); lengths: the row
            // encoder passes the whole row, `cuts` (`3 × x.len()`) and `code`.
            |x, inv, cuts, out| unsafe { quantize_cuts_f64(x, inv, cuts, out) },
            gather,
            |c, w, d, p| count_run_starts(c, w, d, p),
        )
    }
}

/// Σx² of f32 coordinates in eight registers of four f64 lanes: register `q`
/// lane `j` sums coordinates `4q + j`, `4q + j + 32`, … in order, exactly as
/// the portable 32-lane loop does, so the bits match every other backend. An
/// f32's square is exact in f64, so one fused multiply-add (one rounding of
/// `acc + x·x`) gives the bits of the loop's multiply then add.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[inline(always)]
unsafe fn sum_of_squares_f32(x: &[f32]) -> f64 {
    // SAFETY: CPU: AVX2 and FMA (this function's contract); lengths: the loop reads
    // x[i + 4q..][..4] (q < 8) for i + 32 ≤ x.len() (its prefetches of the row
    // ahead never fault), and the stores fill the 32-lane local `lanes`, 4 lanes
    // per register.
    unsafe {
        let mut acc = [_mm256_setzero_pd(); NORM_LANES / 4];
        let body = x.len() / NORM_LANES * NORM_LANES;
        let p = x.as_ptr();
        let mut i = 0;
        while i < body {
            prefetch_row_ahead(x, i / 2);
            for (q, a) in acc.iter_mut().enumerate() {
                let v = _mm256_cvtps_pd(_mm_loadu_ps(p.add(i + 4 * q)));
                *a = _mm256_fmadd_pd(v, v, *a);
            }
            i += NORM_LANES;
        }
        let mut lanes = [0f64; NORM_LANES];
        for (q, a) in acc.iter().enumerate() {
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4 * q), *a);
        }
        finish_sum_of_squares(lanes, &x[body..], f64::from)
    }
}

/// Sixteen coordinates' compare masks → four code bytes (little-endian in the
/// result), without tables or `pdep` (slow on AMD before Zen 3): `h0`/`l0` are
/// the sign and near-zero masks (all-ones lanes) of coordinates 0–7, `h1`/`l1`
/// of 8–15. Two saturating packs bring all 64 mask bytes into one register,
/// a dword permute gathers each group of eight coordinates into one 128-bit
/// lane (`h` of 0–3, `l` of 0–3, `h` of 4–7, `l` of 4–7), a byte shuffle puts
/// each code bit's mask byte at that bit's position, and `vpmovmskb` reads them.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn pack_masks16(h0: __m256, l0: __m256, h1: __m256, l1: __m256) -> u32 {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: no memory is accessed.
    unsafe {
        let (h0, l0, h1, l1) = (
            _mm256_castps_si256(h0),
            _mm256_castps_si256(l0),
            _mm256_castps_si256(h1),
            _mm256_castps_si256(l1),
        );
        // Lane 0: h 0–3, h 8–11, l 0–3, l 8–11; lane 1: the same of 4–7 and 12–15.
        let bytes = _mm256_packs_epi16(_mm256_packs_epi32(h0, h1), _mm256_packs_epi32(l0, l1));
        let grouped = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
        // Code byte bit 7 − 2j is h of coordinate j, bit 6 − 2j its l; `vpmovmskb` reads bit b from byte b.
        let order = _mm256_setr_epi8(
            7, 3, 6, 2, 5, 1, 4, 0, 15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0, 15, 11, 14, 10, 13, 9, 12, 8,
        );
        _mm256_movemask_epi8(_mm256_shuffle_epi8(grouped, order)) as u32
    }
}

/// Writes the four code bytes of sixteen coordinates from the `(h, l)`
/// masks of their two halves (see [`pack_masks16`]).
///
/// # Safety
/// The CPU supports AVX2 and `dst` is valid for writing four bytes.
#[inline(always)]
unsafe fn store16(dst: *mut u8, (h0, l0): (__m256, __m256), (h1, l1): (__m256, __m256)) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: `dst` is valid for
    // four bytes (this function's contract).
    unsafe { std::ptr::write_unaligned(dst as *mut [u8; 4], pack_masks16(h0, l0, h1, l1).to_le_bytes()) }
}

// The mask makers are small structs with `#[inline(always)]` methods, not
// closures: a closure does not inherit its function's target features, so its
// intrinsics would be calls instead of instructions.

/// The `(h, l)` masks of eight coordinates of one row (a Gaussian or a cuts rule).
trait RowMasks {
    /// Masks of coordinates `i..i + 8`.
    ///
    /// # Safety
    /// The CPU supports AVX2 and the row's buffers are valid for reading f32 `i..i + 8`.
    unsafe fn at(&self, i: usize) -> (__m256, __m256);
}

/// Packs the row's first `n / 16 · 16` coordinates into `dst` (32 per step,
/// then 16, prefetching the second half of the row ahead); returns where the
/// tail starts.
///
/// # Safety
/// The CPU supports AVX2, `masks` reads coordinates `0..n` (`n = x.len()`),
/// and `dst` is valid for writing `n / 4` bytes.
#[inline(always)]
unsafe fn pack_body(masks: &impl RowMasks, x: &[f32], dst: *mut u8) -> usize {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: each step reads
    // coordinates i..i + 16 (or i..i + 32) with i + 16 ≤ n (or i + 32 ≤ n) and
    // writes dst[i / 4..][..4] (or [..8]), within the n / 4 bytes of `dst`.
    unsafe {
        let n = x.len();
        let mut i = 0;
        while i + 32 <= n {
            prefetch_row_ahead(x, x.len() / 2 + i / 2);
            store16(dst.add(i / 4), masks.at(i), masks.at(i + 8));
            store16(dst.add(i / 4 + 4), masks.at(i + 16), masks.at(i + 24));
            i += 32;
        }
        if i + 16 <= n {
            store16(dst.add(i / 4), masks.at(i), masks.at(i + 8));
            i += 16;
        }
        i
    }
}

/// The sign and near-zero masks of a row against `0` and `±t`.
struct GaussianMasks {
    x: *const f32,
    zero: __m256,
    t: __m256,
    neg_t: __m256,
}

impl RowMasks for GaussianMasks {
    /// Masks of coordinates `i..i + 8`.
    ///
    /// # Safety
    /// The CPU supports AVX2 and `x` is valid for reading f32 `i..i + 8`.
    #[inline(always)]
    unsafe fn at(&self, i: usize) -> (__m256, __m256) {
        // SAFETY: CPU: AVX2 (this function's contract); lengths: x[i..i + 8] is
        // readable (this function's contract).
        unsafe {
            let v = _mm256_loadu_ps(self.x.add(i));
            let h = _mm256_cmp_ps::<_CMP_GT_OQ>(v, self.zero);
            let l = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(v, self.neg_t),
                _mm256_cmp_ps::<_CMP_LE_OQ>(v, self.t),
            );
            (h, l)
        }
    }
}

/// The cell masks of a row scaled by `1/‖x‖` against per-dimension cuts.
struct CutMasks {
    x: *const f32,
    scale: __m256,
    lows: *const f32,
    mids: *const f32,
    highs: *const f32,
}

impl RowMasks for CutMasks {
    /// Masks of coordinates `i..i + 8`: `v = x·scale` above the mid cut, and
    /// above the low and at most the high cut.
    ///
    /// # Safety
    /// The CPU supports AVX2, and `x`, `lows`, `mids` and `highs` are each
    /// valid for reading f32 `i..i + 8`.
    #[inline(always)]
    unsafe fn at(&self, i: usize) -> (__m256, __m256) {
        // SAFETY: CPU: AVX2 (this function's contract); lengths: each pointer
        // is readable at i..i + 8 (this function's contract).
        unsafe {
            let v = _mm256_mul_ps(_mm256_loadu_ps(self.x.add(i)), self.scale);
            let h = _mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_loadu_ps(self.mids.add(i)));
            let l = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_loadu_ps(self.lows.add(i))),
                _mm256_cmp_ps::<_CMP_LE_OQ>(v, _mm256_loadu_ps(self.highs.add(i))),
            );
            (h, l)
        }
    }
}

/// Per-dimension cuts, thirty-two coordinates → eight code bytes per step
/// (then sixteen → four): `v = x·inv`, the mid-cut mask and the low/high-cut
/// mask, packed by [`pack_masks16`]; the row ahead is prefetched meanwhile.
///
/// # Safety
/// The CPU supports AVX2, `cuts` holds `3 × x.len()` values and `out`
/// at least `code_width(x.len())` bytes.
#[inline(always)]
unsafe fn quantize_cuts_f32(x: &[f32], inv: f32, cuts: &[f32], out: &mut [u8]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the steps read x
    // and each third of `cuts` at i..i + 16 for i + 16 ≤ x.len() and write
    // out[i / 4..][..4], within the first x.len() / 4 ≤ code_width(x.len()) bytes.
    unsafe {
        let n = x.len();
        let dst = out.as_mut_ptr();
        let masks = CutMasks {
            x: x.as_ptr(),
            scale: _mm256_set1_ps(inv),
            lows: cuts.as_ptr(),
            mids: cuts.as_ptr().add(n),
            highs: cuts.as_ptr().add(2 * n),
        };
        let i = pack_body(&masks, x, dst);
        quantize_cuts_tail(x, inv, cuts, i, out);
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

/// Thirty-two coordinates → eight code bytes per step (then sixteen → four):
/// sign and near-zero masks packed by [`pack_masks16`]; the row ahead is
/// prefetched meanwhile.
///
/// # Safety
/// The CPU supports AVX2 and `out` holds at least `code_width(x.len())` bytes.
#[inline(always)]
pub(crate) unsafe fn quantize_f32(x: &[f32], t: f32, out: &mut [u8]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the steps read
    // x[i..i + 16] for i + 16 ≤ x.len() and write out[i / 4..][..4], within the
    // first x.len() / 4 ≤ code_width(x.len()) bytes.
    unsafe {
        let dst = out.as_mut_ptr();
        let masks = GaussianMasks {
            x: x.as_ptr(),
            zero: _mm256_setzero_ps(),
            t: _mm256_set1_ps(t),
            neg_t: _mm256_set1_ps(-t),
        };
        let i = pack_body(&masks, x, dst);
        quantize_pack_scalar(&x[i..], t, &mut out[i / 4..]);
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

#[cfg(test)]
mod tests {
    /// The register-resident Σx² (fused multiply-adds) must give the portable
    /// loop's bits for every length and dynamic range.
    #[test]
    fn sum_of_squares_f32_is_bit_identical_to_the_portable_loop() {
        if super::super::Kernels::for_backend(super::Backend::Avx2).is_none() {
            eprintln!("no AVX2 and FMA here: nothing to compare");
            return;
        }
        // SAFETY: the backend check above found every feature the function enables.
        crate::encode::quantize::assert_sum_of_squares_f32_matches(|x| unsafe { sum_of_squares_f32_checked(x) });
    }

    /// Both key gathers of each AVX2 row encoder (the CPU picks one at run
    /// time, so the backend tests see only one) give the scalar backend's
    /// code, key and transition count, on rows whose runs put the key's end
    /// anywhere, with the global cut and with per-dimension cuts, f32 and f64.
    #[test]
    fn both_key_gathers_match_scalar() {
        if super::super::Kernels::for_backend(super::Backend::Avx2).is_none()
            || !std::arch::is_x86_feature_detected!("bmi2")
        {
            eprintln!("no AVX2, FMA and BMI2 here: nothing to compare");
            return;
        }
        let scalar = super::super::Kernels::for_backend(super::Backend::Scalar).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for dim in [1usize, 3, 31, 32, 33, 64, 65, 100, 255, 384, 700] {
            for _ in 0..40 {
                let levels = [-1.0f64, -0.05, 0.05, 1.0];
                let (mut x64, mut left, mut level) = (Vec::with_capacity(dim), 0, 0.0);
                while x64.len() < dim {
                    if left == 0 {
                        (left, level) = (1 + next(40), levels[next(4) as usize]);
                    }
                    x64.push(level + (next(1000) as f64 - 500.0) * 1e-5);
                    left -= 1;
                }
                let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
                let tau = 0.5 / (dim as f64).sqrt();
                let mut cuts64 = vec![0.0; 3 * dim];
                for d in 0..dim {
                    let mut c = [-tau, (next(100) as f64 - 50.0) * tau / 500.0, tau]
                        .map(|v| v * (0.5 + next(100) as f64 / 100.0));
                    c.sort_by(f64::total_cmp);
                    for (k, v) in c.into_iter().enumerate() {
                        cuts64[k * dim + d] = v;
                    }
                }
                let cuts32: Vec<f32> = cuts64.iter().map(|&c| c as f32).collect();
                let width = crate::codes::code_width(dim);
                let (mut want, mut got) = (vec![0u8; width], vec![0u8; width]);
                type Twins<X> = [unsafe fn(&[X], f64, &mut [u8]) -> Result<(u64, u32), usize>; 2];
                type CutTwins<X> = [unsafe fn(&[X], &[X], &mut [u8]) -> Result<(u64, u32), usize>; 2];
                let global32: Twins<f32> = [super::encode_f32_avx2, super::encode_f32_avx2_pext];
                let global64: Twins<f64> = [super::encode_f64_avx2, super::encode_f64_avx2_pext];
                let cuts_f32: CutTwins<f32> = [super::encode_cuts_f32_avx2, super::encode_cuts_f32_avx2_pext];
                let cuts_f64: CutTwins<f64> = [super::encode_cuts_f64_avx2, super::encode_cuts_f64_avx2_pext];
                let expected = scalar.encode_f32(&x32, tau, &mut want);
                for f in global32 {
                    got.fill(0xAA);
                    // SAFETY: the checks above found AVX2, FMA, POPCNT and BMI2; `got`
                    // holds code_width(dim) bytes, the cuts 3·dim values (so below too).
                    assert_eq!(unsafe { f(&x32, tau, &mut got) }, expected, "f32 dim {dim}");
                    assert_eq!(got, want, "f32 dim {dim}");
                }
                let expected = scalar.encode_f64(&x64, tau, &mut want);
                for f in global64 {
                    got.fill(0xAA);
                    // SAFETY: as above.
                    assert_eq!(unsafe { f(&x64, tau, &mut got) }, expected, "f64 dim {dim}");
                    assert_eq!(got, want, "f64 dim {dim}");
                }
                let expected = scalar.encode_cuts_f32(&x32, &cuts32, &mut want);
                for f in cuts_f32 {
                    got.fill(0xAA);
                    // SAFETY: as above.
                    assert_eq!(unsafe { f(&x32, &cuts32, &mut got) }, expected, "cuts f32 dim {dim}");
                    assert_eq!(got, want, "cuts f32 dim {dim}");
                }
                let expected = scalar.encode_cuts_f64(&x64, &cuts64, &mut want);
                for f in cuts_f64 {
                    got.fill(0xAA);
                    // SAFETY: as above.
                    assert_eq!(unsafe { f(&x64, &cuts64, &mut got) }, expected, "cuts f64 dim {dim}");
                    assert_eq!(got, want, "cuts f64 dim {dim}");
                }
            }
        }
    }

    /// # Safety
    /// The CPU supports the features enabled here.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sum_of_squares_f32_checked(x: &[f32]) -> f64 {
        // SAFETY: CPU: AVX2 and FMA are enabled here (this function's contract);
        // lengths: none needed.
        unsafe { super::sum_of_squares_f32(x) }
    }
}
