//! Per-dimension thresholds (SPEC §6): three cut points per dimension, in
//! units of the normalised vector, replacing `−τ`, `0` and `τ`.
//!
//! A row is normalised by multiplying with `1/‖x‖` (one multiply per
//! coordinate) and compared with the cuts of each dimension. The fast path
//! multiplies in the element type; rows whose `1/‖x‖` is not a normal number
//! of that type (norms near the type's limits) take one scalar f64 path that
//! every backend shares, so all backends give the same bits.

use crate::encode::quantize::{sum_of_squares_by, Element};
use crate::error::{Error, Result};

/// Validated per-dimension cut points of one dimension `dim`: `lows`, `mids`,
/// `highs` (each `dim` long) with `low ≤ mid ≤ high`, all finite. Symbol of
/// `v = x/‖x‖` in dimension `d`: A if `v ≤ low`, B if `v ≤ mid`, C if
/// `v ≤ high`, else D (boundaries belong to the lower cell, as in SPEC §1).
#[derive(Debug, Clone, PartialEq)]
pub struct DimCuts {
    dim: usize,
    f64: Vec<f64>,
    f32: Vec<f32>,
}

impl DimCuts {
    /// From a row-major `(3, dim)` array: lows, then mids, then highs.
    pub fn new(cuts: &[f64], dim: usize) -> Result<DimCuts> {
        if dim == 0 {
            return Err(Error::value("cuts", "need at least one dimension"));
        }
        if cuts.len() != 3 * dim {
            return Err(Error::Shape {
                arg: "cuts",
                expected: format!("(3, {dim}) = {} values", 3 * dim),
                got: format!("{} values", cuts.len()),
            });
        }
        if let Some(i) = cuts.iter().position(|c| !c.is_finite()) {
            return Err(Error::value(
                "cuts",
                format!(
                    "cut {} of dimension {} is {}; cuts must be finite",
                    i / dim,
                    i % dim,
                    cuts[i]
                ),
            ));
        }
        for d in 0..dim {
            let (lo, mid, hi) = (cuts[d], cuts[dim + d], cuts[2 * dim + d]);
            if !(lo <= mid && mid <= hi) {
                return Err(Error::value(
                    "cuts",
                    format!("dimension {d}: need low ≤ mid ≤ high, got ({lo:?}, {mid:?}, {hi:?})"),
                ));
            }
        }
        // Rounding to f32 is monotone, so the f32 cuts stay ordered.
        let f32 = cuts.iter().map(|&c| c as f32).collect();
        Ok(DimCuts {
            dim,
            f64: cuts.to_vec(),
            f32,
        })
    }

    /// `(−τ, 0, τ)` in every dimension: the global rule as per-dimension cuts.
    pub fn uniform(tau: f64, dim: usize) -> Result<DimCuts> {
        let mut cuts = vec![0.0; 3 * dim];
        cuts[..dim].fill(-tau);
        cuts[2 * dim..].fill(tau);
        DimCuts::new(&cuts, dim)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The cuts as given: `(3, dim)` row-major.
    pub fn as_slice(&self) -> &[f64] {
        &self.f64
    }

    /// The cuts in the element type the kernels compare in.
    pub(crate) fn for_element<T: CutElement>(&self) -> &[T] {
        T::cuts(self)
    }
}

/// Element types with cut arrays of their own type.
pub trait CutElement: Element {
    fn cuts(c: &DimCuts) -> &[Self];
}

impl CutElement for f32 {
    fn cuts(c: &DimCuts) -> &[f32] {
        &c.f32
    }
}

impl CutElement for f64 {
    fn cuts(c: &DimCuts) -> &[f64] {
        &c.f64
    }
}

/// How a row is normalised before the cuts apply.
pub(crate) enum RowScale<T> {
    /// Multiply by this normal, finite `1/‖x‖`.
    Multiply(T),
    /// `1/‖x‖` is not a normal `T`: take [`quantize_cuts_wide`].
    Wide,
    /// The all-zero vector: every symbol is B (SPEC §1).
    AllZero,
    /// A NaN or ±Inf at this column.
    NonFinite(usize),
}

/// The row's scale from `Σx²` as [`crate::encode::quantize::sum_of_squares`] computes it.
#[inline(always)]
pub(crate) fn row_scale<T: Element>(x: &[T], sum_sq: f64) -> RowScale<T> {
    if !sum_sq.is_finite() {
        // Σx² of finite f64 values can overflow: that is a wide row, not an error.
        return match x.iter().position(|v| !v.to_f64().is_finite()) {
            Some(col) => RowScale::NonFinite(col),
            None => RowScale::Wide,
        };
    }
    if sum_sq == 0.0 {
        // Σx² of tiny f64 values can underflow to 0 while the row is not zero.
        return if x.iter().all(|v| v.to_f64() == 0.0) {
            RowScale::AllZero
        } else {
            RowScale::Wide
        };
    }
    let inv = T::from_f64(1.0 / sum_sq.sqrt());
    if inv.is_normal() && sum_sq >= f64::MIN_POSITIVE {
        RowScale::Multiply(inv)
    } else {
        RowScale::Wide
    }
}

/// The portable quantiser: `v = x·inv` in `T`, cut per dimension.
#[inline(always)]
pub(crate) fn quantize_cuts_scalar<T: Element>(x: &[T], inv: T, cuts: &[T], out: &mut [u8]) {
    quantize_cuts_tail(x, inv, cuts, 0, out);
}

/// [`quantize_cuts_scalar`] from dimension `from` (a multiple of 4) on: the
/// SIMD quantisers' tails.
#[inline(always)]
pub(crate) fn quantize_cuts_tail<T: Element>(x: &[T], inv: T, cuts: &[T], from: usize, out: &mut [u8]) {
    let n = x.len();
    let (lows, rest) = cuts.split_at(n);
    let (mids, highs) = rest.split_at(n);
    pack_cells(from, n, out, |d| {
        let v = x[d] * inv;
        (v > mids[d], v > lows[d] && v <= highs[d])
    });
}

/// Rows whose `1/‖x‖` is not a normal `T`: scale by the power of two of the
/// largest magnitude (exact), normalise and compare in f64. Shared by every
/// backend, so all give the same bits.
#[cold]
#[inline(never)]
pub(crate) fn quantize_cuts_wide<T: Element>(x: &[T], cuts: &[T], out: &mut [u8]) {
    let n = x.len();
    let max = x.iter().fold(0f64, |m, v| m.max(v.to_f64().abs()));
    let e = max.log2().floor() as i32;
    let scale = |v: T| crate::encode::quantize::scale_pow2(v.to_f64(), -e);
    let inv = 1.0 / sum_of_squares_by(x, scale).sqrt();
    pack_cells(0, n, out, |d| {
        let v = scale(x[d]) * inv;
        let (lo, mid, hi) = (cuts[d].to_f64(), cuts[n + d].to_f64(), cuts[2 * n + d].to_f64());
        (v > mid, v > lo && v <= hi)
    });
}

/// Packs the Gray symbols of dimensions `from..n` (`from` a multiple of 4)
/// given each dimension's (high bit, low bit); padding bits are zero.
#[inline(always)]
fn pack_cells(from: usize, n: usize, out: &mut [u8], cell: impl Fn(usize) -> (bool, bool)) {
    debug_assert_eq!(from % 4, 0);
    for (k, byte) in out[..n.div_ceil(4)].iter_mut().enumerate().skip(from / 4) {
        let mut b = 0u8;
        for j in 0..4.min(n - 4 * k) {
            let (h, l) = cell(4 * k + j);
            b |= ((h as u8) << 1 | l as u8) << (6 - 2 * j);
        }
        *byte = b;
    }
}
