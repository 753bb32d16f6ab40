//! Thresholds and the scalar quantiser: one vector → Z4 symbols → packed Gray
//! code (SPEC §1).
//!
//! Instead of dividing by the norm we compare each raw coordinate with
//! `t = τ·‖x‖`; that is the same test and keeps scale invariance exact for
//! power-of-two scalings. The norm is accumulated in f64 in 32 lanes with a
//! fixed combination order, so every backend gets the same bits.

use crate::error::{Error, Result};

/// The reference design's quartile constant (`Φ⁻¹(3/4) ≈ 0.67449`, rounded as the reference kernel does).
pub const GAUSSIAN_QUARTILE: f64 = 0.6745;

/// The largest vector dimension: a row's transition count (at most `dim`) is
/// a `u32` in the encoder's output and in saved indexes.
pub const MAX_DIM: usize = u32::MAX as usize;

/// `dim` when it is a usable vector dimension, `1..=MAX_DIM`; an error naming `dim` otherwise.
pub fn check_dim(dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::value("dim", "must be at least 1"));
    }
    if dim > MAX_DIM {
        // No value in the message: the Python layer saturates larger integers to usize::MAX.
        return Err(Error::value(
            "dim",
            format!("must be at most {MAX_DIM} (transition counts are 32-bit)"),
        ));
    }
    Ok(dim)
}

/// The default threshold `0.6745 / √dim` for unit vectors of `dim` roughly i.i.d. coordinates.
pub fn gaussian_threshold(dim: usize) -> Result<f64> {
    let dim = check_dim(dim)?;
    Ok(GAUSSIAN_QUARTILE / (dim as f64).sqrt())
}

/// Checks a user threshold, or picks the Gaussian one when `None`.
pub fn resolve_threshold(threshold: Option<f64>, dim: usize) -> Result<f64> {
    match threshold {
        None => gaussian_threshold(dim),
        Some(t) => crate::encode::thresholds::check_tau("threshold", t),
    }
}

/// A float element type the encoder accepts.
pub trait Element: Copy + PartialOrd + std::ops::Mul<Output = Self> + Send + Sync + 'static {
    const ZERO: Self;
    /// Finite, nonzero and not subnormal.
    fn is_normal(self) -> bool;
    fn to_f64(self) -> f64;
    /// Rounds a threshold to the element type for the comparisons.
    fn from_f64(v: f64) -> Self;
    /// Whether `Σx²` accumulated in f64 can overflow or underflow for this type.
    const NEEDS_NORM_RESCUE: bool;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn is_normal(self) -> bool {
        f32::is_normal(self)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    // f32² spans 1e-90 … 1e77 in f64: neither overflows nor underflows.
    const NEEDS_NORM_RESCUE: bool = false;
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn is_normal(self) -> bool {
        f64::is_normal(self)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    const NEEDS_NORM_RESCUE: bool = true;
}

/// Independent f64 accumulators of `Σx²`: coordinate `i` goes to lane `i % 32`.
/// Thirty-two lanes = four 8-lane registers, so the add latency is hidden.
pub(crate) const NORM_LANES: usize = 32;

/// Σx² in f64, [`NORM_LANES`] independent lanes combined in a fixed order
/// (vectorises without reassociation, so it is bit-identical on every backend).
#[inline(always)]
pub(crate) fn sum_of_squares<T: Element>(x: &[T]) -> f64 {
    sum_of_squares_by(x, T::to_f64)
}

/// Σf(x)² in the same lane order as [`sum_of_squares`], so a rescaled row's
/// norm is exactly the scaled norm.
#[inline(always)]
pub(crate) fn sum_of_squares_by<T: Element>(x: &[T], f: impl Fn(T) -> f64) -> f64 {
    let mut acc = [0f64; NORM_LANES];
    let chunks = x.chunks_exact(NORM_LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..NORM_LANES {
            let v = f(c[j]);
            acc[j] += v * v;
        }
    }
    finish_sum_of_squares(acc, rest, f)
}

/// The end of [`sum_of_squares_by`] given its lanes after the whole 32-value
/// chunks: adds the squares of the `rest` (fewer than 32 values, value `j` to
/// lane `j`) and combines the lanes in the fixed order. SIMD backends that
/// keep the lanes in registers store them and call this.
#[inline(always)]
pub(crate) fn finish_sum_of_squares<T: Element>(mut acc: [f64; NORM_LANES], rest: &[T], f: impl Fn(T) -> f64) -> f64 {
    for (a, &v) in acc.iter_mut().zip(rest) {
        let v = f(v);
        *a += v * v;
    }
    let mut octet = [0f64; 8];
    for (j, o) in octet.iter_mut().enumerate() {
        *o = (acc[j] + acc[j + 8]) + (acc[j + 16] + acc[j + 24]);
    }
    combine_lanes(octet)
}

/// The fixed final combination of the lanes once the four 8-lane groups are
/// added lane-wise as `(g0 + g1) + (g2 + g3)` (SIMD backends that keep the
/// groups in registers do that add, store the eight lanes and call this).
#[inline(always)]
pub(crate) fn combine_lanes(acc: [f64; 8]) -> f64 {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// `v · 2^k` without intermediate overflow of the factor.
pub(crate) fn scale_pow2(mut v: f64, mut k: i32) -> f64 {
    while k != 0 {
        let step = k.clamp(-1000, 1000);
        v *= f64::powi(2.0, step);
        k -= step;
    }
    v
}

/// What the per-row threshold computation found.
pub(crate) enum RowThreshold<T> {
    /// Compare coordinates with `±t`.
    Cut(T),
    /// The all-zero vector: every symbol is B.
    AllZero,
    /// A NaN or ±Inf at this column.
    NonFinite(usize),
}

/// The absolute cut `t = τ·‖x‖` of one row, computed without overflow or underflow.
#[cfg(test)]
pub(crate) fn row_threshold<T: Element>(x: &[T], tau: f64) -> RowThreshold<T> {
    row_threshold_with(x, tau, sum_of_squares(x))
}

/// [`row_threshold`] given `Σx²` as [`sum_of_squares`] computes it.
#[inline(always)]
pub(crate) fn row_threshold_with<T: Element>(x: &[T], tau: f64, s: f64) -> RowThreshold<T> {
    if s.is_finite() && (s >= f64::MIN_POSITIVE || !T::NEEDS_NORM_RESCUE) {
        if s == 0.0 {
            return RowThreshold::AllZero;
        }
        return RowThreshold::Cut(T::from_f64(tau * s.sqrt()));
    }
    rescue_threshold(x, tau, s)
}

/// Slow path: a non-finite input, or an f64 row whose Σx² over- or underflows.
/// Rescale by a power of two (exact), so scale invariance still holds.
#[cold]
#[inline(never)]
fn rescue_threshold<T: Element>(x: &[T], tau: f64, s: f64) -> RowThreshold<T> {
    if let Some(col) = x.iter().position(|v| !v.to_f64().is_finite()) {
        return RowThreshold::NonFinite(col);
    }
    debug_assert!(!s.is_nan());
    let max = x.iter().fold(0f64, |m, v| m.max(v.to_f64().abs()));
    if max == 0.0 {
        return RowThreshold::AllZero;
    }
    // Bring the largest magnitude near 1: 2^-e with e its binary exponent.
    let e = max.log2().floor() as i32;
    let scaled = sum_of_squares_by(x, |v| scale_pow2(v.to_f64(), -e));
    RowThreshold::Cut(T::from_f64(scale_pow2(tau * scaled.sqrt(), e)))
}

/// The 2-bit Gray code of one coordinate against the cut `t ≥ 0`:
/// high bit = sign (`x > 0`), low bit = near zero (`−t < x ≤ t`).
#[inline(always)]
pub(crate) fn gray_of<T: Element>(v: T, neg_t: T, t: T) -> u8 {
    let high = (v > T::ZERO) as u8;
    let low = ((v > neg_t) & (v <= t)) as u8;
    (high << 1) | low
}

/// Scalar quantise-and-pack of `x` into `out` (`ceil(len/4)` bytes), padding zero.
#[inline(always)]
pub(crate) fn quantize_pack_scalar<T: Element + std::ops::Neg<Output = T>>(x: &[T], t: T, out: &mut [u8]) {
    let neg_t = -t;
    for (byte, chunk) in out.iter_mut().zip(x.chunks(4)) {
        let mut b = 0u8;
        for (j, &v) in chunk.iter().enumerate() {
            b |= gray_of(v, neg_t, t) << (6 - 2 * j);
        }
        *byte = b;
    }
}

/// Asserts that `simd` gives [`sum_of_squares`]'s bits for every length up
/// to 300 (every tail shape) and three dynamic ranges (values up to 2^±60),
/// or encodes could differ by backend. For the SIMD backends' own tests.
#[cfg(test)]
pub(crate) fn assert_sum_of_squares_f32_matches(simd: impl Fn(&[f32]) -> f64) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for len in 0..=300usize {
        for spread in [0i32, 8, 60] {
            let x: Vec<f32> = (0..len)
                .map(|_| {
                    let r = next();
                    let mantissa = (r >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    let exponent = (r % (2 * spread as u64 + 1)) as i32 - spread;
                    mantissa * 2f32.powi(exponent)
                })
                .collect();
            let (got, want) = (simd(&x), sum_of_squares(&x));
            assert_eq!(got.to_bits(), want.to_bits(), "len {len} spread {spread}");
        }
    }
}

/// Fills a code with all-B symbols (Gray `01`), padding zero.
pub(crate) fn fill_all_b(out: &mut [u8], dim: usize) {
    out.fill(0b0101_0101);
    if let Some(last) = out.last_mut() {
        *last &= crate::codes::last_byte_mask(dim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_are_one_to_max_dim() {
        assert_eq!(check_dim(1), Ok(1));
        assert_eq!(check_dim(MAX_DIM), Ok(MAX_DIM));
        for bad in [0, MAX_DIM + 1, usize::MAX] {
            let err = check_dim(bad).unwrap_err();
            assert!(matches!(err, Error::Value { arg: "dim", .. }), "{err}");
            assert!(gaussian_threshold(bad).is_err());
        }
        assert_eq!(
            check_dim(usize::MAX).unwrap_err().to_string(),
            format!("dim: must be at most {MAX_DIM} (transition counts are 32-bit)")
        );
    }

    #[test]
    fn cells_follow_the_spec_table_with_boundaries_in_the_lower_cell() {
        let t = 0.5f32;
        let cases = [
            (-0.7, 0b00),
            (-0.5, 0b00),
            (-0.2, 0b01),
            (0.0, 0b01),
            (-0.0, 0b01),
            (0.2, 0b11),
            (0.5, 0b11),
            (0.9, 0b10),
        ];
        for (v, g) in cases {
            assert_eq!(gray_of(v, -t, t), g, "v = {v}");
        }
    }

    #[test]
    fn f64_rows_that_overflow_or_underflow_the_norm_keep_their_code() {
        let base = [3.0f64, -1.0, 0.25, -0.125, 2.0, 0.0, -7.0, 0.5];
        let code = |x: &[f64]| match row_threshold(x, 0.3) {
            RowThreshold::Cut(t) => {
                let mut out = [0u8; 2];
                quantize_pack_scalar(x, t, &mut out);
                out
            }
            _ => panic!("expected a cut"),
        };
        let reference = code(&base);
        for k in [-1070, -600, -200, 200, 600, 1000] {
            let scaled: Vec<f64> = base.iter().map(|v| scale_pow2(*v, k)).collect();
            assert_eq!(code(&scaled), reference, "scale 2^{k}");
        }
    }

    #[test]
    fn non_finite_is_reported_with_its_column() {
        assert!(matches!(
            row_threshold(&[1.0f32, f32::NAN], 0.5),
            RowThreshold::NonFinite(1)
        ));
        assert!(matches!(
            row_threshold(&[f64::NEG_INFINITY], 0.5),
            RowThreshold::NonFinite(0)
        ));
        assert!(matches!(row_threshold(&[0.0f32, -0.0], 0.5), RowThreshold::AllZero));
    }
}
