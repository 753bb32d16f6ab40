//! Fitting a rotation (SPEC §9): a Haar-random one from a seed, or a learned
//! one — ITQ-style alternation of per-dimension Lloyd–Max on the rotated
//! sample and the orthogonal Procrustes solution (the polar factor of
//! `Xᵀ·X̂`, by one-sided Jacobi SVD in f64). Deterministic for a seed on
//! every thread count: parallel work is split into fixed pieces and summed
//! in a fixed order.

use super::rotation::Rotation;
use super::thresholds::Thresholds;
use crate::check::check_rows;
use crate::decode::{lloyd_max, reconstruction_mse, Reconstruction};
use crate::encode::cuts::DimCuts;
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Rounds of the learned fit when the caller does not say (8 and 20 reach
/// the same recall on the bundled MiniLM data).
pub const DEFAULT_ROUNDS: usize = 8;

/// Lloyd–Max rounds of every fit but the last.
const STEERING_ITERATIONS: usize = 10;
/// Sample rows per piece of `Xᵀ·X̂` (summed in piece order: deterministic).
const PIECE_ROWS: usize = 2048;
/// Columns whose cosine is below this count as orthogonal (the polar
/// factor is then accurate to about this, far below what f32 `R` keeps).
const JACOBI_TOLERANCE: f64 = 1e-12;
/// Jacobi sweeps before giving up on full convergence (it takes ~10).
const MAX_SWEEPS: usize = 40;

/// Which rotation [`fit_rotation`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationKind {
    /// Haar-random from the seed, not adapted to the sample.
    Random,
    /// Haar-random start, then rounds of Lloyd–Max / Procrustes.
    Learned,
}

impl RotationKind {
    /// `"random"` or `"learned"`; errors name `kind`.
    pub fn from_name(name: &str) -> Result<RotationKind> {
        match name {
            "random" => Ok(RotationKind::Random),
            "learned" => Ok(RotationKind::Learned),
            _ => Err(Error::value(
                "kind",
                format!("expected one of 'learned', 'random', got '{name}'"),
            )),
        }
    }
}

/// The result of [`fit_rotation`].
#[derive(Debug, Clone)]
pub struct RotationFit {
    /// Per-dimension cuts and table fitted on the rotated sample, carrying the rotation.
    pub thresholds: Thresholds,
    /// The sample's mean squared reconstruction error after the first
    /// Lloyd–Max and after every learned round (never increasing).
    pub errors: Vec<f64>,
}

/// SplitMix64: a tiny, well-mixed deterministic generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: 53 random bits.
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Two independent standard normals (Box–Muller).
    fn normals(&mut self) -> [f64; 2] {
        let (u, v) = (self.unit(), self.unit());
        let r = (-2.0 * u.ln()).sqrt();
        let a = std::f64::consts::TAU * v;
        [r * a.cos(), r * a.sin()]
    }
}

/// A Haar-random orthogonal `dim × dim` matrix (row-major f64) from `seed`:
/// the Q factor of a Gaussian matrix by twice-repeated modified Gram–Schmidt
/// on its columns (R's diagonal positive: the sign fix that makes Q Haar).
pub fn haar_matrix(dim: usize, seed: u64) -> Result<Vec<f64>> {
    let n = crate::check_dim(dim)?;
    let mut rng = SplitMix(seed);
    // cols[j] is column j of the Gaussian matrix.
    let mut cols = crate::error::zeroed::<f64>("rotation", "the rotation matrix", n, n)?;
    for pair in cols.chunks_mut(2) {
        let z = rng.normals();
        pair.copy_from_slice(&z[..pair.len()]);
    }
    orthonormalise_columns(&mut cols, n);
    Ok(transpose(&cols, n))
}

/// A Haar-random [`Rotation`] of dimension `dim` from `seed`.
pub fn random_rotation(dim: usize, seed: u64) -> Result<Rotation> {
    let m = haar_matrix(dim, seed)?;
    Rotation::from_f64(&m, (dim, dim))
}

/// Modified Gram–Schmidt, twice, over the rows of `cols` (`n` vectors of
/// `n`): a row left without a direction (norm ≤ 1e-9 after projection) is
/// replaced by the first unit vector `e_k` that keeps one.
fn orthonormalise_columns(cols: &mut [f64], n: usize) {
    let mut next_basis = 0;
    for j in 0..n {
        let (done, rest) = cols.split_at_mut(j * n);
        let col = &mut rest[..n];
        loop {
            for _ in 0..2 {
                for q in done.chunks_exact(n) {
                    let d: f64 = q.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
                    col.iter_mut().zip(q).for_each(|(c, a)| *c -= d * a);
                }
            }
            let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 1e-9 {
                col.iter_mut().for_each(|v| *v /= norm);
                break;
            }
            // No direction left: complete the basis from e_0, e_1, ... (finite: n of them span).
            col.fill(0.0);
            col[next_basis % n] = 1.0;
            next_basis += 1;
        }
    }
}

fn transpose(m: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = m[i * n + j];
        }
    }
    t
}

/// The orthogonal polar factor `U·Vᵀ` of `m` (`n × n`, row-major f64),
/// `m = U·Σ·Vᵀ`: the orthogonal `R` minimising `‖X·R − X̂‖_F` when `m =
/// Xᵀ·X̂`. One-sided Jacobi on the columns of `m`; singular directions too
/// small to carry a left vector are completed to an orthonormal basis, so
/// the result is orthogonal for any finite `m` (rank-deficient included).
pub fn polar_factor(m: &[f64], n: usize) -> Vec<f64> {
    // a[j] = column j of m, v[j] = column j of V (starts as I).
    let mut a: Vec<Vec<f64>> = (0..n).map(|j| (0..n).map(|i| m[i * n + j]).collect()).collect();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..n).map(|i| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    // Columns below `floor` are numerically zero: their directions are
    // rounding noise (rotating them would never converge), and their left
    // vectors are completed below instead.
    let floor = m.iter().map(|v| v * v).sum::<f64>().sqrt() * n as f64 * f64::EPSILON;
    // Round-robin pairings: each step rotates n/2 disjoint column pairs in parallel.
    let players = n + n % 2;
    for _ in 0..MAX_SWEEPS {
        let mut rotated = 0usize;
        for step in 0..players.saturating_sub(1) {
            let pairs: Vec<(usize, usize)> = (0..players / 2)
                .map(|k| {
                    let p = if k == 0 { 0 } else { 1 + (step + k - 1) % (players - 1) };
                    let q = 1 + (step + players - 2 - k) % (players - 1);
                    (p.min(q), p.max(q))
                })
                .filter(|&(_, q)| q < n)
                .collect();
            let mut work: Vec<_> = pairs
                .iter()
                .map(|&(p, q)| {
                    let (ap, aq) = (std::mem::take(&mut a[p]), std::mem::take(&mut a[q]));
                    let (vp, vq) = (std::mem::take(&mut v[p]), std::mem::take(&mut v[q]));
                    (ap, aq, vp, vq)
                })
                .collect();
            rotated += work
                .par_iter_mut()
                .map(|(ap, aq, vp, vq)| jacobi_pair(ap, aq, vp, vq, floor) as usize)
                .sum::<usize>();
            for (&(p, q), (ap, aq, vp, vq)) in pairs.iter().zip(work) {
                (a[p], a[q], v[p], v[q]) = (ap, aq, vp, vq);
            }
        }
        if rotated == 0 {
            break;
        }
    }
    let sigma: Vec<f64> = a.iter().map(|c| c.iter().map(|x| x * x).sum::<f64>().sqrt()).collect();
    // Left vectors of the well-determined directions first (largest σ first,
    // ties by index), then the rest completed by Gram–Schmidt.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| sigma[j].total_cmp(&sigma[i]).then(i.cmp(&j)));
    let mut u = vec![0f64; n * n]; // rows: left vectors in `order`
    for (k, &j) in order.iter().enumerate() {
        if sigma[j] > floor {
            u[k * n..][..n]
                .iter_mut()
                .zip(&a[j])
                .for_each(|(o, x)| *o = x / sigma[j]);
        }
    }
    orthonormalise_columns(&mut u, n);
    // R = Σ_k u_k · v_{order[k]}ᵀ.
    let mut r = vec![0f64; n * n];
    r.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for (k, &j) in order.iter().enumerate() {
            let ui = u[k * n + i];
            row.iter_mut().zip(&v[j]).for_each(|(o, vj)| *o += ui * vj);
        }
    });
    r
}

/// One Jacobi rotation making columns `ap`, `aq` orthogonal (applied to `V`
/// too); false when they already are (to working precision) or one of them
/// is numerically zero (norm ≤ `floor`).
fn jacobi_pair(ap: &mut [f64], aq: &mut [f64], vp: &mut [f64], vq: &mut [f64], floor: f64) -> bool {
    // Four lanes per sum (a fixed order, so the same bits everywhere): the
    // dot products are latency-bound otherwise.
    let (mut alpha, mut beta, mut gamma) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
    let (xs, ys) = (ap.chunks_exact(4), aq.chunks_exact(4));
    let (xr, yr) = (xs.remainder(), ys.remainder());
    for (x, y) in xs.zip(ys) {
        for l in 0..4 {
            alpha[l] += x[l] * x[l];
            beta[l] += y[l] * y[l];
            gamma[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in xr.iter().zip(yr).enumerate() {
        alpha[l] += x * x;
        beta[l] += y * y;
        gamma[l] += x * y;
    }
    let total = |v: [f64; 4]| (v[0] + v[1]) + (v[2] + v[3]);
    let (alpha, beta, gamma) = (total(alpha), total(beta), total(gamma));
    let (na, nb) = (alpha.sqrt(), beta.sqrt());
    // Below either bound the pair is orthogonal to working precision: the
    // relative one, or rounding noise of the large columns (~`floor` in
    // absolute terms) that a small column picks up from every rotation.
    if na <= floor || nb <= floor || gamma.abs() <= (JACOBI_TOLERANCE * na * nb).max(floor * (na + nb)) {
        return false;
    }
    let zeta = (beta - alpha) / (2.0 * gamma);
    let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
    let c = 1.0 / (1.0 + t * t).sqrt();
    let s = c * t;
    for (x, y) in ap.iter_mut().zip(aq.iter_mut()).chain(vp.iter_mut().zip(vq.iter_mut())) {
        let (p, q) = (*x, *y);
        *x = c * p - s * q;
        *y = s * p + c * q;
    }
    true
}

/// Rows of the sample that share each loaded row of `R` (or of `Xᵀ·X̂`):
/// the outputs of a block stay in L1 while the matrix streams once per block.
const BLOCK: usize = 8;

/// `x·r` for `x` (`rows × n`) and `r` (`n × n`), both row-major f64; each
/// output summed in increasing `i`.
pub(crate) fn times(x: &[f64], r: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0f64; x.len()];
    out.par_chunks_mut(BLOCK * n)
        .zip(x.par_chunks(BLOCK * n))
        .for_each(|(o, xs)| {
            for (i, ri) in r.chunks_exact(n).enumerate() {
                for (o, row) in o.chunks_exact_mut(n).zip(xs.chunks_exact(n)) {
                    let xi = row[i];
                    o.iter_mut().zip(ri).for_each(|(o, rij)| *o += xi * rij);
                }
            }
        });
    out
}

/// `X̂`: every value of `y` (`rows × n`) replaced by its cell's table value.
fn reconstruct(y: &[f64], n: usize, cuts: &DimCuts, table: &Reconstruction) -> Vec<f64> {
    let c = cuts.as_slice();
    let mut out = vec![0f64; y.len()];
    out.par_chunks_mut(n).zip(y.par_chunks(n)).for_each(|(o, row)| {
        for (d, (o, &v)) in o.iter_mut().zip(row).enumerate() {
            let s = (v > c[d]) as u8 + (v > c[n + d]) as u8 + (v > c[2 * n + d]) as u8;
            *o = f64::from(table.value(d, s));
        }
    });
    out
}

/// `xᵀ·y` (`n × n`) of two `rows × n` matrices, summed over fixed pieces of
/// rows in piece order (the same bits on every thread count); inside a
/// piece, blocks of rows share each loaded row of the output.
fn cross(x: &[f64], y: &[f64], n: usize) -> Vec<f64> {
    let pieces: Vec<Vec<f64>> = x
        .par_chunks(PIECE_ROWS * n)
        .zip(y.par_chunks(PIECE_ROWS * n))
        .map(|(xs, ys)| {
            let mut m = vec![0f64; n * n];
            for (xb, yb) in xs.chunks(BLOCK * n).zip(ys.chunks(BLOCK * n)) {
                for (a, ma) in m.chunks_exact_mut(n).enumerate() {
                    for (xr, yr) in xb.chunks_exact(n).zip(yb.chunks_exact(n)) {
                        let xa = xr[a];
                        ma.iter_mut().zip(yr).for_each(|(o, yv)| *o += xa * yv);
                    }
                }
            }
            m
        })
        .collect();
    let mut m = vec![0f64; n * n];
    for p in pieces {
        m.iter_mut().zip(p).for_each(|(o, v)| *o += v);
    }
    m
}

/// The midpoints of neighbouring table values: the nearest-value cuts.
fn midpoints(table: &Reconstruction, n: usize) -> Result<DimCuts> {
    let t = table.as_slice();
    let mut c = vec![0f64; 3 * n];
    for d in 0..n {
        for j in 0..3 {
            c[j * n + d] = (f64::from(t[4 * d + j]) + f64::from(t[4 * d + j + 1])) / 2.0;
        }
    }
    DimCuts::new(&c, n)
}

/// Fits a rotation and per-dimension thresholds to `values` (`rows × dim`,
/// L2-normalised rows, e.g. [`crate::unit_rows`]): `R` Haar-random from
/// `seed`; Lloyd–Max (at most `iterations` rounds) on `values·R` from
/// `start`'s cuts; then, for [`RotationKind::Learned`], `rounds` times:
/// `R` ← the polar factor of `valuesᵀ·X̂` (X̂ the sample's reconstruction),
/// and Lloyd–Max again from the nearest-value cuts of the last table (so no
/// round increases the reconstruction error).
pub fn fit_rotation(
    values: &[f64],
    dim: usize,
    start: &Thresholds,
    kind: RotationKind,
    rounds: usize,
    seed: u64,
    iterations: usize,
) -> Result<RotationFit> {
    let n = crate::check_dim(dim)?;
    let rows = check_rows("sample", values.len(), n)?;
    if rows == 0 {
        return Err(Error::shape("sample", "at least one row", "0 rows"));
    }
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            arg: "sample",
            row: at / n,
            col: at % n,
            value: values[at],
        });
    }
    let rounds = if kind == RotationKind::Learned { rounds } else { 0 };
    // Lloyd–Max before the last rotation only needs to be good enough to
    // steer the next one (it resumes from where it stopped): a few rounds.
    let steps = |round: usize| {
        if round == rounds {
            iterations
        } else {
            iterations.min(STEERING_ITERATIONS)
        }
    };
    let mut r = haar_matrix(n, seed)?;
    let mut y = times(values, &r, n);
    let (mut cuts, mut table) = lloyd_max(&y, n, &start.dim_cuts(n)?, steps(0))?;
    let mut errors = vec![reconstruction_mse(&y, n, &cuts, &table)?];
    for round in 1..=rounds {
        let target = reconstruct(&y, n, &cuts, &table);
        r = polar_factor(&cross(values, &target, n), n);
        y = times(values, &r, n);
        (cuts, table) = lloyd_max(&y, n, &midpoints(&table, n)?, steps(round))?;
        errors.push(reconstruction_mse(&y, n, &cuts, &table)?);
    }
    let rotation = Rotation::from_f64(&r, (n, n))?;
    let thresholds = Thresholds::per_dim(cuts.as_slice(), &[3, n])?
        .with_reconstruction(table)?
        .with_rotation(Some(rotation))?;
    Ok(RotationFit { thresholds, errors })
}
