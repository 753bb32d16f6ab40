//! Reconstruction of codes (SPEC §8): a table of four values per dimension,
//! x̂_d(s) for the symbols s = A, B, C, D, its Gaussian default, its fit to a
//! sample (cell means, per-dimension Lloyd–Max), and the decode of packed codes.

use crate::check::{check_len, check_rows};
use crate::codes::{code_width, ungray};
use crate::encode::cuts::DimCuts;
use crate::error::{Error, Result};
use crate::keys::check_padding;
use rayon::prelude::*;

/// Largest magnitude a reconstruction value may have: the values are
/// normalised coordinates (|x̂| ≤ 1 in practice); the bound keeps every sum
/// the fast scan forms far from f32 overflow.
pub const MAX_RECONSTRUCTION: f64 = 1e12;
/// Smallest non-zero magnitude a reconstruction value may have (so that a
/// reconstruction's norm is a normal f32); fitted values below it become 0.
pub const MIN_RECONSTRUCTION: f64 = 1e-12;

/// Per dimension the four reconstruction values x̂_d(A), x̂_d(B), x̂_d(C),
/// x̂_d(D), in Z4 symbol order (not Gray order), as f32.
///
/// Layout: `(dim, 4)` row-major, value of symbol `s` in dimension `d` at
/// `4·d + s`. Every value is finite, 0 or of magnitude in
/// [[`MIN_RECONSTRUCTION`], [`MAX_RECONSTRUCTION`]], and each dimension is
/// monotone: `A ≤ B ≤ C ≤ D` (the cells are ordered, so are their means).
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    dim: usize,
    values: Vec<f32>,
}

impl Reconstruction {
    /// From a `(dim, 4)` row-major array (see the type's layout).
    pub fn new(values: &[f32], dim: usize) -> Result<Reconstruction> {
        Self::from_f64(&values.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), dim)
    }

    /// [`Reconstruction::new`] from f64 values, each rounded to the nearest f32.
    pub fn from_f64(values: &[f64], dim: usize) -> Result<Reconstruction> {
        crate::encode::quantize::check_dim(dim)?;
        check_len("table", values.len(), 4 * dim)?;
        let mut out = crate::error::with_capacity("table", "the reconstruction table", dim, 4)?;
        for (i, &v) in values.iter().enumerate() {
            let (d, s) = (i / 4, i % 4);
            let f = v as f32;
            let mag = f64::from(f).abs();
            if !f.is_finite() || mag > MAX_RECONSTRUCTION || (mag != 0.0 && mag < MIN_RECONSTRUCTION) {
                return Err(Error::value(
                    "table",
                    format!(
                        "dimension {d} symbol {s} holds {v}; reconstruction values are finite, 0 or of magnitude {MIN_RECONSTRUCTION:e}..={MAX_RECONSTRUCTION:e}"
                    ),
                ));
            }
            if s > 0 && f < out[i - 1] {
                return Err(Error::value(
                    "table",
                    format!(
                        "dimension {d} is not monotone (symbol {s} holds {f} < {}); values must satisfy A ≤ B ≤ C ≤ D",
                        out[i - 1]
                    ),
                ));
            }
            out.push(f);
        }
        Ok(Reconstruction { dim, values: out })
    }

    /// The conditional means of the four cells of N(0, 1/dim) cut at −τ, 0, τ
    /// (`tau` ≥ 0 in normalised units, e.g. [`crate::gaussian_threshold`]).
    pub fn gaussian(dim: usize, tau: f64) -> Result<Reconstruction> {
        crate::encode::quantize::check_dim(dim)?;
        let tau = crate::encode::thresholds::check_tau("tau", tau)?;
        // Every dimension has the same cells: their means once, repeated (no cuts array).
        let sigma = 1.0 / (dim as f64).sqrt();
        let c = [-tau, 0.0, tau];
        let means = [0, 1, 2, 3].map(|s| flush_tiny(gaussian_cell_mean(cell_low(&c, s), cell_high(&c, s), sigma)));
        let mut values = crate::error::with_capacity("table", "the reconstruction table", dim, 4)?;
        for _ in 0..dim {
            values.extend_from_slice(&means);
        }
        Self::from_f64(&values, dim)
    }

    /// Per dimension the conditional means of N(0, 1/dim) in that dimension's
    /// cells (what per-dimension cuts without a fitted table get).
    pub fn from_cuts(cuts: &DimCuts) -> Result<Reconstruction> {
        let dim = cuts.dim();
        let sigma = 1.0 / (dim.max(1) as f64).sqrt();
        let mut values = crate::error::with_capacity("table", "the reconstruction table", dim, 4)?;
        for d in 0..dim {
            let c = dim_cuts(cuts, d);
            for s in 0..4 {
                values.push(flush_tiny(gaussian_cell_mean(cell_low(&c, s), cell_high(&c, s), sigma)));
            }
        }
        Self::from_f64(&values, dim)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The table, `(dim, 4)` row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.values
    }

    /// The table's values, `(dim, 4)` row-major (no copy).
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// x̂_d(s) for the symbol `s` (0..=3) of dimension `d`.
    #[inline(always)]
    pub fn value(&self, d: usize, s: u8) -> f32 {
        self.values[4 * d + s as usize]
    }

    /// Value of dimension `d` for the 2-bit Gray code `g`.
    #[inline(always)]
    pub(crate) fn of_gray(&self, d: usize, g: u8) -> f32 {
        self.values[4 * d + ungray(g & 3) as usize]
    }

    /// Checks that the table is for `dim` dimensions.
    pub(crate) fn check_dim(&self, dim: usize) -> Result<()> {
        if self.dim != dim {
            return Err(Error::shape(
                "table",
                format!("a table of {dim} dimensions"),
                format!("{} dimensions", self.dim),
            ));
        }
        Ok(())
    }
}

/// Values below [`MIN_RECONSTRUCTION`] in magnitude become 0.
fn flush_tiny(v: f64) -> f64 {
    if v.abs() < MIN_RECONSTRUCTION {
        0.0
    } else {
        v
    }
}

/// The three cuts (low, mid, high) of dimension `d`.
fn dim_cuts(cuts: &DimCuts, d: usize) -> [f64; 3] {
    let (c, n) = (cuts.as_slice(), cuts.dim());
    [c[d], c[n + d], c[2 * n + d]]
}

/// Lower end of the cell of symbol `s` (−∞ for A).
fn cell_low(c: &[f64; 3], s: usize) -> f64 {
    if s == 0 {
        f64::NEG_INFINITY
    } else {
        c[s - 1]
    }
}

/// Upper end of the cell of symbol `s` (+∞ for D).
fn cell_high(c: &[f64; 3], s: usize) -> f64 {
    if s == 3 {
        f64::INFINITY
    } else {
        c[s]
    }
}

// ---------------------------------------------------------------------------
// The normal distribution, accurate to about 1e-13 relative everywhere.

const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;

/// erf(x) by its Maclaurin series (used for |x| < 2.5: at most ~90 terms).
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum, mut n) = (x, x, 0.0f64);
    loop {
        n += 1.0;
        term *= -x2 / n;
        let add = term / (2.0 * n + 1.0);
        sum += add;
        if add.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    2.0 * FRAC_1_SQRT_PI * sum
}

/// The scaled complementary error function `erfcx(x) = exp(x²)·erfc(x)` for
/// x ≥ 0: the series below 2.5, Lentz's continued fraction above.
pub(crate) fn erfcx(x: f64) -> f64 {
    debug_assert!(x >= 0.0);
    if x < 2.5 {
        return (x * x).exp() * (1.0 - erf_series(x));
    }
    if x > 1e8 {
        return FRAC_1_SQRT_PI / x;
    }
    // erfc(x)·exp(x²)·√π = 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))).
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (x, 0.0f64);
    for n in 1..500 {
        let a = n as f64 / 2.0;
        d = x + a * d;
        d = if d == 0.0 { tiny } else { 1.0 / d };
        c = x + a / c;
        if c == 0.0 {
            c = tiny;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    FRAC_1_SQRT_PI / f
}

/// The error function (for the tests of the series and the tail).
#[cfg(test)]
pub(crate) fn erf(x: f64) -> f64 {
    if x.abs() < 2.5 {
        erf_series(x)
    } else {
        x.signum() * (1.0 - erfc(x.abs()))
    }
}

/// The complementary error function `1 − erf(x)`, accurate in the tail.
pub(crate) fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < 2.5 {
        1.0 - erf_series(x)
    } else {
        (-x * x).exp() * erfcx(x)
    }
}

/// The standard normal CDF Φ(x).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal density φ(x).
fn phi(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Mills ratio `R(t) = (1 − Φ(t))/φ(t)` for t ≥ 0 (`R(∞) = 0`).
fn mills(t: f64) -> f64 {
    if t == f64::INFINITY {
        0.0
    } else {
        (std::f64::consts::PI / 2.0).sqrt() * erfcx(t / std::f64::consts::SQRT_2)
    }
}

/// E[X | lo < X ≤ hi] for X ~ N(0, σ²); `lo` may be −∞ and `hi` +∞.
/// A degenerate cell (hi − lo below 1e-9·σ) gives its midpoint.
pub fn gaussian_cell_mean(lo: f64, hi: f64, sigma: f64) -> f64 {
    let (a, b) = (lo / sigma, hi / sigma);
    if a >= b || (b - a) < 1e-9 {
        return if a.is_finite() { lo } else { hi };
    }
    if b <= 0.0 {
        // Mirror onto the positive side.
        return -gaussian_cell_mean(-hi, -lo, sigma);
    }
    if a >= 0.0 {
        // Both ends ≥ 0: factor φ(a) out of numerator and denominator so
        // far-tail cells do not underflow.
        let r = if b.is_finite() {
            (-(b - a) * (b + a) / 2.0).exp()
        } else {
            0.0
        };
        let den = mills(a) - if r == 0.0 { 0.0 } else { mills(b) * r };
        if den <= 0.0 {
            return (lo + if hi.is_finite() { hi } else { lo }) / 2.0;
        }
        return sigma * (1.0 - r) / den;
    }
    // a < 0 < b: the cell holds a fair share of the mass, no underflow.
    let pa = if a.is_finite() { phi(a) } else { 0.0 };
    let pb = if b.is_finite() { phi(b) } else { 0.0 };
    let qb = if b.is_finite() { phi(b) * mills(b) } else { 0.0 };
    let qa = if a.is_finite() { phi(-a) * mills(-a) } else { 0.0 };
    sigma * (pa - pb) / (1.0 - qb - qa)
}

// ---------------------------------------------------------------------------
// Fitting a table to a sample.

/// The symbol (0..=3) of value `v` under cuts `c` (boundaries to the lower cell, SPEC §1).
#[inline(always)]
fn cell_of(v: f64, c: &[f64; 3]) -> usize {
    (v > c[0]) as usize + (v > c[1]) as usize + (v > c[2]) as usize
}

/// Dimensions one parallel task of [`cell_means`] sums.
const MEAN_DIMS: usize = 32;

/// Per-dimension cell means of a sample: `values` is `(rows, dim)` row-major,
/// already L2-normalised rows (the coordinates the cuts apply to). A cell no
/// value fell in gets the N(0, 1/dim) conditional mean of that cell.
pub fn cell_means(values: &[f64], dim: usize, cuts: &DimCuts) -> Result<Reconstruction> {
    cuts_for(cuts, dim)?;
    let rows = check_rows("values", values.len(), dim)?;
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            arg: "values",
            row: at / dim,
            col: at % dim,
            value: values[at],
        });
    }
    let mut sum = vec![0.0f64; 4 * dim];
    let mut count = vec![0usize; 4 * dim];
    // In parallel over blocks of dimensions; each dimension's sums still run
    // over the rows in order, so the bits do not depend on the thread count.
    sum.par_chunks_mut(4 * MEAN_DIMS)
        .zip(count.par_chunks_mut(4 * MEAN_DIMS))
        .enumerate()
        .for_each(|(block, (sum, count))| {
            let first = block * MEAN_DIMS;
            let cells: Vec<[f64; 3]> = (first..first + sum.len() / 4).map(|d| dim_cuts(cuts, d)).collect();
            for row in values.chunks_exact(dim.max(1)).take(rows) {
                for (j, (&v, c)) in row[first..first + cells.len()].iter().zip(&cells).enumerate() {
                    let s = cell_of(v, c);
                    sum[4 * j + s] += v;
                    count[4 * j + s] += 1;
                }
            }
        });
    let sigma = 1.0 / (dim.max(1) as f64).sqrt();
    let mut table = vec![0.0f64; 4 * dim];
    for d in 0..dim {
        let c = dim_cuts(cuts, d);
        for s in 0..4 {
            let i = 4 * d + s;
            table[i] = flush_tiny(if count[i] == 0 {
                gaussian_cell_mean(cell_low(&c, s), cell_high(&c, s), sigma)
            } else {
                sum[i] / count[i] as f64
            });
        }
    }
    Reconstruction::from_f64(&table, dim)
}

fn cuts_for(cuts: &DimCuts, dim: usize) -> Result<()> {
    if cuts.dim() != dim {
        return Err(Error::shape(
            "cuts",
            format!("cuts for {dim} dimensions"),
            format!("{} dimensions", cuts.dim()),
        ));
    }
    Ok(())
}

/// Per-dimension Lloyd–Max: from `cuts`, alternate cell means
/// ([`cell_means`]) and cuts at the midpoints of neighbouring means, until
/// no cut moves by more than 1e-12 or after `max_iters` rounds. Returns the
/// final cuts and the means of their cells (the reconstruction the cuts'
/// codes decode to). Each round does not increase the sample's squared
/// reconstruction error.
pub fn lloyd_max(values: &[f64], dim: usize, cuts: &DimCuts, max_iters: usize) -> Result<(DimCuts, Reconstruction)> {
    let mut cuts = cuts.clone();
    let mut table = cell_means(values, dim, &cuts)?;
    for _ in 0..max_iters {
        let t = table.as_slice();
        let mut next = vec![0.0f64; 3 * dim];
        for d in 0..dim {
            for j in 0..3 {
                next[j * dim + d] = (f64::from(t[4 * d + j]) + f64::from(t[4 * d + j + 1])) / 2.0;
            }
        }
        let moved = next
            .iter()
            .zip(cuts.as_slice())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        cuts = DimCuts::new(&next, dim)?;
        table = cell_means(values, dim, &cuts)?;
        if moved <= 1e-12 {
            break;
        }
    }
    Ok((cuts, table))
}

/// Mean squared reconstruction error of a sample (`(rows, dim)`, normalised
/// rows) coded with `cuts` and decoded with `table`, per value.
pub fn reconstruction_mse(values: &[f64], dim: usize, cuts: &DimCuts, table: &Reconstruction) -> Result<f64> {
    cuts_for(cuts, dim)?;
    table.check_dim(dim)?;
    let rows = check_rows("values", values.len(), dim)?;
    let mut err = 0.0f64;
    for row in values.chunks_exact(dim.max(1)).take(rows) {
        for (d, &v) in row.iter().enumerate() {
            let s = cell_of(v, &dim_cuts(cuts, d));
            let e = v - f64::from(table.value(d, s as u8));
            err += e * e;
        }
    }
    Ok(if values.is_empty() {
        0.0
    } else {
        err / values.len() as f64
    })
}

/// The largest magnitude in row `r` of `arg`, or the error naming its first
/// NaN or ±Inf (row and column).
fn largest_magnitude<T: Copy + Into<f64>>(arg: &'static str, r: usize, row: &[T]) -> Result<f64> {
    if let Some(c) = row.iter().position(|&v| !v.into().is_finite()) {
        return Err(Error::NonFinite {
            arg,
            row: r,
            col: c,
            value: row[c].into(),
        });
    }
    Ok(row.iter().fold(0.0f64, |m, &v| m.max(v.into().abs())))
}

/// The rows of `x` (`(rows, dim)`, f32 or f64) L2-normalised in f64, for
/// fitting a table ([`cell_means`], [`lloyd_max`]) to raw vectors: a NaN or
/// ±Inf is an error naming `arg`, the row and the column; a zero row stays
/// zero. Rows are scaled by their largest magnitude first, so no finite
/// input overflows or underflows.
pub fn unit_rows<T: Copy + Into<f64>>(arg: &'static str, x: &[T], dim: usize) -> Result<Vec<f64>> {
    let rows = check_rows(arg, x.len(), dim)?;
    let mut out = crate::error::with_capacity(arg, "the normalised rows", rows, dim)?;
    for (r, row) in x.chunks_exact(dim.max(1)).take(rows).enumerate() {
        let top = largest_magnitude(arg, r, row)?;
        if top == 0.0 {
            out.extend(std::iter::repeat_n(0.0, dim));
            continue;
        }
        let norm = row.iter().map(|&v| (v.into() / top).powi(2)).sum::<f64>().sqrt();
        out.extend(row.iter().map(|&v| v.into() / top / norm));
    }
    Ok(out)
}

/// Float queries as f32 for the asymmetric search: f32 as given; f64
/// checked (a NaN or ±Inf is an error naming `arg`, the row and the column)
/// and rounded to f32, a row whose largest magnitude lies outside
/// `[2⁻¹⁰⁰, 2¹⁰⁰]` first scaled by a power of two (exact), so that no finite
/// query overflows to ±Inf or underflows to 0 (only its direction matters).
pub fn f32_queries<T: Copy + Into<f64>>(arg: &'static str, x: &[T], dim: usize) -> Result<Vec<f32>> {
    let rows = check_rows(arg, x.len(), dim)?;
    let mut out = crate::error::with_capacity(arg, "a copy of the queries", rows, dim)?;
    for (r, row) in x.chunks_exact(dim.max(1)).take(rows).enumerate() {
        let top = largest_magnitude(arg, r, row)?;
        let scale = if top != 0.0 && !(2f64.powi(-100)..=2f64.powi(100)).contains(&top) {
            2f64.powi(-(top.log2().floor() as i32))
        } else {
            1.0
        };
        out.extend(row.iter().map(|&v| (v.into() * scale) as f32));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Decoding codes.

/// Reconstructions of `(rows, code_width(dim))` packed codes (SPEC §2) into
/// `out`, `(rows, dim)` row-major f32: `out[r·dim + d] = x̂_d(symbol)`.
/// Codes with nonzero padding bits are an error naming the row.
pub fn decode(codes: &[u8], dim: usize, table: &Reconstruction, out: &mut [f32]) -> Result<()> {
    table.check_dim(dim)?;
    let width = code_width(dim);
    let rows = check_rows("codes", codes.len(), width)?;
    check_len("out", out.len(), rows * dim)?;
    check_padding(codes, dim)?;
    if dim == 0 {
        return Ok(());
    }
    for (code, row) in codes.chunks_exact(width).zip(out.chunks_exact_mut(dim)) {
        decode_row(code, table, row);
    }
    Ok(())
}

/// One code's reconstruction into `out` (`dim` values; `code` holds `code_width(dim)` bytes).
#[inline]
pub(crate) fn decode_row(code: &[u8], table: &Reconstruction, out: &mut [f32]) {
    for (d, o) in out.iter_mut().enumerate() {
        *o = table.of_gray(d, code[d / 4] >> (6 - 2 * (d % 4)));
    }
}

/// The norms ‖x̂‖ of the reconstructions of `(rows, code_width(dim))` codes,
/// rounded to f32, into `out` (one per row). The asymmetric search uses them
/// to bound scores before its exact re-rank; pass it these (or let it
/// compute them). Summed per code byte, in f64.
pub fn row_norms(codes: &[u8], dim: usize, table: &Reconstruction, out: &mut [f32]) -> Result<()> {
    table.check_dim(dim)?;
    let width = code_width(dim);
    let rows = check_rows("codes", codes.len(), width)?;
    check_len("out", out.len(), rows)?;
    check_padding(codes, dim)?;
    if dim == 0 {
        out.fill(0.0);
        return Ok(());
    }
    ByteSquares::new(table).norms(codes, out);
    Ok(())
}

/// Per code byte position, Σ x̂² of its four dimensions for each of the 256 bytes.
#[derive(Debug)]
pub(crate) struct ByteSquares {
    sums: Vec<f64>,
}

impl ByteSquares {
    pub(crate) fn new(table: &Reconstruction) -> Self {
        let dim = table.dim();
        let width = code_width(dim);
        let mut sums = vec![0.0f64; 256 * width];
        for b in 0..width {
            for byte in 0..256usize {
                let mut s = 0.0f64;
                for j in 0..4 {
                    let d = 4 * b + j;
                    if d < dim {
                        let v = f64::from(table.of_gray(d, (byte >> (6 - 2 * j)) as u8));
                        s += v * v;
                    }
                }
                sums[256 * b + byte] = s;
            }
        }
        ByteSquares { sums }
    }

    /// Values held (256 per code byte).
    pub(crate) fn len(&self) -> usize {
        self.sums.len()
    }

    /// [`ByteSquares::norm`] of each code of `codes` (whole codes of this
    /// table's width, as many as `out` holds) into `out`.
    pub(crate) fn norms(&self, codes: &[u8], out: &mut [f32]) {
        let width = self.sums.len() / 256;
        for (code, o) in codes.chunks_exact(width.max(1)).zip(out.iter_mut()) {
            *o = self.norm(code);
        }
    }

    /// ‖x̂‖ of one code, rounded to f32.
    #[inline]
    pub(crate) fn norm(&self, code: &[u8]) -> f32 {
        let s: f64 = code
            .iter()
            .enumerate()
            .map(|(b, &byte)| self.sums[256 * b + byte as usize])
            .sum();
        s.sqrt() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        // Values from Abramowitz & Stegun / mpmath.
        let cases = [
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (-1.5, -0.966_105_146_475_310_7),
        ];
        for (x, want) in cases {
            assert!((erf(x) - want).abs() < 1e-14, "erf({x}) = {}", erf(x));
        }
        let tails = [
            (2.0, 4.677_734_981_047_266e-3),
            (3.0, 2.209_049_699_858_544e-5),
            (5.0, 1.537_459_794_428_035e-12),
            (10.0, 2.088_487_583_762_545e-45),
        ];
        for (x, want) in tails {
            assert!(((erfc(x) - want) / want).abs() < 1e-12, "erfc({x}) = {}", erfc(x));
        }
        assert!((normal_cdf(0.674_489_750_196_081_7) - 0.75).abs() < 1e-14);
    }
}
