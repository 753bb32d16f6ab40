//! One query's fast-scan lookup tables and the bounds of their integer sums.

use super::BOUND_SLACK;
use crate::codes::code_width;
use crate::decode::Reconstruction;
use crate::kernels::scalar_asym::PairProducts;
use crate::kernels::scalar_asym::LUT_MAX;
use crate::kernels::Kernels;

/// One query prepared for the fast scan.
pub(crate) struct QueryTables {
    /// 32 bytes per code byte: the high-nibble table, then the low-nibble one.
    pub(super) luts: Vec<u8>,
    /// dot(q/‖q‖, x̂) ≈ bias + scale · sum, off by at most `err`.
    pub(super) scale: f64,
    pub(super) bias: f64,
    pub(super) err: f64,
    /// ‖q‖ in f64 (0: every score is 0).
    pub(super) norm: f64,
}

impl QueryTables {
    /// A placeholder holding nothing (what a moved-out slot keeps).
    pub(super) fn none() -> QueryTables {
        QueryTables {
            luts: Vec::new(),
            scale: 0.0,
            bias: 0.0,
            err: 0.0,
            norm: 0.0,
        }
    }

    /// The tables of query `q` (finite, `table.dim()` values).
    ///
    /// The entries are the [`pair_terms`](super::exact::pair_terms) values `v` of each pair m quantised
    /// above the pair's minimum `lo_m`; as `v = first + second` (f64 sums of
    /// the two dimensions' products) and rounded addition is monotone in
    /// each operand, `lo_m` and the pair's maximum are the sums of the
    /// products' minima and maxima: found without forming the 16 values.
    pub(crate) fn new(kernels: &Kernels, q: &[f32], table: &Reconstruction) -> QueryTables {
        QueryTables::with_products(kernels, q, table).0
    }

    /// [`QueryTables::new`], and the query's [`PairProducts`] the tables
    /// quantise (empty for a zero query): [`pair_values`](super::exact::pair_values) scores
    /// rows exactly from them, without building [`pair_terms`](super::exact::pair_terms).
    pub(super) fn with_products(
        kernels: &Kernels,
        q: &[f32],
        table: &Reconstruction,
    ) -> (QueryTables, Vec<PairProducts>) {
        let dim = table.dim();
        let width = code_width(dim);
        let norm = query_norm(q);
        let mut luts = vec![0u8; 32 * width];
        if norm == 0.0 {
            let none = QueryTables {
                luts,
                scale: 0.0,
                bias: 0.0,
                err: 0.0,
                norm,
            };
            return (none, Vec::new());
        }
        let products: Vec<PairProducts> = (0..2 * width).map(|m| PairProducts::new(q, norm, table, m)).collect();
        let (mut bias, mut range, mut magnitude) = (0.0f64, 0.0f64, 0.0f64);
        let mins: Vec<f64> = products
            .iter()
            .map(|p| {
                let (lo, hi) = p.range();
                range = range.max(hi - lo);
                magnitude += lo.abs().max(hi.abs()) + lo.abs();
                bias += lo;
                lo
            })
            .collect();
        let top = f64::from(LUT_MAX);
        let scale = if range > 0.0 { range / top } else { 1.0 };
        let tables = 2 * width;
        let err = (kernels.quantise_pairs)(&products, &mins, scale, &mut luts);
        // The scans rely on it without checking (see `AsymScan`); the quantisers clamp to it.
        debug_assert!(luts.iter().all(|&v| v <= LUT_MAX), "a table entry above LUT_MAX");
        magnitude += scale * top * tables as f64 + err;
        let tables = QueryTables {
            luts,
            scale,
            bias,
            err: err + BOUND_SLACK * magnitude + f64::MIN_POSITIVE,
            norm,
        };
        (tables, products)
    }

    /// The approximate dot(q/‖q‖, x̂) of an integer sum.
    #[inline(always)]
    pub(super) fn approx(&self, sum: u32) -> f64 {
        self.bias + self.scale * f64::from(sum)
    }
}

/// ‖q‖ in f64, squares summed in dimension order (SPEC §8).
pub(super) fn query_norm(q: &[f32]) -> f64 {
    q.iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .fold(0.0, |a, b| a + b)
        .sqrt()
}
