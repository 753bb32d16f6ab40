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
/// Xᵀ·X̂`. By [`polar_factor_newton`] when `m` is well enough conditioned
/// for it to converge, else by [`polar_factor_jacobi`]; orthogonal for any
/// finite `m` (rank-deficient included).
pub fn polar_factor(m: &[f64], n: usize) -> Vec<f64> {
    polar_factor_newton(m, n)
        .or_else(|| polar_factor_deflated(m, n))
        .unwrap_or_else(|| polar_factor_jacobi(m, n))
}

/// The polar factor of a rank-deficient `m` through a complete orthogonal
/// decomposition (Higham): `m·Π = Q₁·[R₁; 0]` (Householder QR with column
/// pivoting, rank `r` = the diagonal entries above `‖m‖_F·n·ε`, the
/// Jacobi floor), `R₁ᵀ = Z·[S; 0]` (Householder QR), so `m = Q₁·(Sᵀ ⊕ 0)·Zᵀ·Πᵀ`
/// and `Q₁·(polar(Sᵀ) ⊕ I)·Zᵀ·Πᵀ` is a polar factor: [`polar_factor_newton`]
/// on the `r × r` block, the vanishing directions completed by `I`. `None`
/// when `m` has full or zero rank or the block's Newton iteration fails.
fn polar_factor_deflated(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let floor = frobenius(m) * n as f64 * f64::EPSILON;
    let mut r1 = m.to_vec();
    let (q1, perm) = householder_qr(&mut r1, n, true);
    let rank = (0..n).take_while(|&k| r1[k * n + k].abs() > floor).count();
    if rank == 0 || rank == n {
        return None;
    }
    // t = [R₁ᵀ | 0]: the first `rank` rows of R transposed.
    let mut t = vec![0f64; n * n];
    for i in 0..rank {
        for j in i..n {
            t[j * n + i] = r1[i * n + j];
        }
    }
    let (z, _) = householder_qr(&mut t, n, false);
    // Sᵀ: the leading rank × rank block of t (now S) transposed.
    let mut lower = vec![0f64; rank * rank];
    for i in 0..rank {
        for j in i..rank {
            lower[j * rank + i] = t[i * n + j];
        }
    }
    let block = polar_factor_newton(&lower, rank)?;
    let mut c = vec![0f64; n * n];
    for i in 0..n {
        if i < rank {
            c[i * n..i * n + rank].copy_from_slice(&block[i * rank..(i + 1) * rank]);
        } else {
            c[i * n + i] = 1.0;
        }
    }
    let mut qc = vec![0f64; n * n];
    gemm(n, n, n, &q1, (n, 1), &c, &mut qc);
    let zt = transpose(&z, n);
    let mut qczt = vec![0f64; n * n];
    gemm(n, n, n, &qc, (n, 1), &zt, &mut qczt);
    // Times Πᵀ: column k of the product is column perm[k] of the factor.
    let mut out = vec![0f64; n * n];
    for i in 0..n {
        for (k, &p) in perm.iter().enumerate() {
            out[i * n + p] = qczt[i * n + k];
        }
    }
    Some(out)
}

/// Householder QR of `a` (`n × n`, row-major) in place: `a` becomes `R`
/// (exact zeros below the diagonal); returns `Q` (explicit, row-major) and
/// the column order (`a·Π` has column `k` = column `perm[k]` of `a`). With
/// `pivot`, the remaining column of largest norm (the first of equals) goes
/// next, so `|R_kk|` does not increase.
fn householder_qr(a: &mut [f64], n: usize, pivot: bool) -> (Vec<f64>, Vec<usize>) {
    let mut perm: Vec<usize> = (0..n).collect();
    let mut reflectors: Vec<Vec<f64>> = Vec::with_capacity(n);
    for k in 0..n {
        if pivot {
            let mut norms = vec![0f64; n - k];
            for row in a[k * n..].chunks_exact(n) {
                norms.iter_mut().zip(&row[k..]).for_each(|(s, v)| *s += v * v);
            }
            let best = (1..n - k).fold(0, |b, j| if norms[j] > norms[b] { j } else { b }) + k;
            if best != k {
                for row in a.chunks_exact_mut(n) {
                    row.swap(k, best);
                }
                perm.swap(k, best);
            }
        }
        let mut v: Vec<f64> = (k..n).map(|i| a[i * n + k]).collect();
        let norm = frobenius(&v);
        if norm == 0.0 {
            reflectors.push(Vec::new());
            continue;
        }
        let alpha = if v[0] > 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let v_norm = frobenius(&v);
        v.iter_mut().for_each(|x| *x /= v_norm);
        reflect(&mut a[k * n..], n, k, &v);
        a[k * n + k] = alpha;
        for i in k + 1..n {
            a[i * n + k] = 0.0;
        }
        reflectors.push(v);
    }
    // Q = H₀·H₁·…·H_{n−1}, applied to I from the last reflector.
    let mut q = vec![0f64; n * n];
    for i in 0..n {
        q[i * n + i] = 1.0;
    }
    for (k, v) in reflectors.iter().enumerate().rev() {
        if !v.is_empty() {
            reflect(&mut q[k * n..], n, 0, v);
        }
    }
    (q, perm)
}

/// `rows ← (I − 2·v·vᵀ)·rows` for the rows below the reflector's start
/// (`rows` = `v.len()` rows of `n`), columns `from..n`.
fn reflect(rows: &mut [f64], n: usize, from: usize, v: &[f64]) {
    let mut w = vec![0f64; n - from];
    for (row, &vi) in rows.chunks_exact(n).zip(v) {
        w.iter_mut().zip(&row[from..]).for_each(|(s, x)| *s += vi * x);
    }
    for (row, &vi) in rows.chunks_exact_mut(n).zip(v) {
        let f = 2.0 * vi;
        row[from..].iter_mut().zip(&w).for_each(|(x, s)| *x -= f * s);
    }
}

/// Newton steps before giving up (well-conditioned matrices take ~10).
const MAX_NEWTON_STEPS: usize = 30;
/// Frobenius condition number `‖m‖_F·‖m⁻¹‖_F` above which the Newton
/// iteration is not tried (`m` is numerically singular: its vanishing
/// directions need completing). Below, scaled Newton converges to the
/// polar factor even at κ ≈ 1e10 (the bundled MiniLM sample's `Xᵀ·X̂`, whose
/// polar factor is well determined: it depends on `1/(σ_{n−1} + σ_n)`).
const NEWTON_MAX_CONDITION: f64 = 1e15;
/// Relative step `‖X_{k+1} − X_k‖_F / ‖X_{k+1}‖_F` below which the scaling
/// is dropped: near convergence the unscaled step converges quadratically.
const NEWTON_UNSCALED_BELOW: f64 = 1e-2;
/// Relative step at which the iteration stops: the error of the last
/// iterate is about half the square of the step (quadratic convergence).
const NEWTON_TOLERANCE: f64 = 1e-9;
/// Rows of the LU factor one task updates per pivot.
const LU_ROWS: usize = 16;

/// The polar factor of `m` (`n × n`, row-major f64) by the scaled Newton
/// iteration (Higham): `X₀ = m`, `X_{k+1} = ½(ζ_k·X_k + ζ_k⁻¹·X_k⁻ᵀ)` with the
/// Frobenius scaling `ζ_k = (‖X_k⁻¹‖_F / ‖X_k‖_F)^½` until the relative step
/// falls below 1e-2, unscaled after that, stopping when it falls below 1e-9.
/// Inverses by LU with partial pivoting, in parallel over rows with one
/// summation order per element (the same bits on every thread count).
/// `None` when `m` is numerically singular, its condition number exceeds
/// 1e15, or the iteration does not converge in 30 steps.
pub fn polar_factor_newton(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut x = m.to_vec();
    let mut scaled = true;
    for step in 0..MAX_NEWTON_STEPS {
        let inv_t = inverse_transpose(&x, n)?;
        let (size, inv_size) = (frobenius(&x), frobenius(&inv_t));
        if step == 0 && (size * inv_size).partial_cmp(&NEWTON_MAX_CONDITION) != Some(std::cmp::Ordering::Less) {
            return None;
        }
        let zeta = if scaled { (inv_size / size).sqrt() } else { 1.0 };
        let next: Vec<f64> = x
            .par_iter()
            .zip(inv_t.par_iter())
            .map(|(a, b)| 0.5 * (zeta * a + b / zeta))
            .collect();
        let step_size = x.iter().zip(&next).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        let next_size = frobenius(&next);
        x = next;
        if step_size.is_nan() || step_size > NEWTON_UNSCALED_BELOW * next_size {
            continue; // NaN: the step limit ends it
        }
        scaled = false;
        if step_size <= NEWTON_TOLERANCE * next_size {
            return Some(x);
        }
    }
    None
}

fn frobenius(m: &[f64]) -> f64 {
    m.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// `(a⁻¹)ᵀ` of `a` (`n × n`, row-major) by LU with partial pivoting (the
/// first largest pivot); `None` when a pivot is below `n·ε·max|a|`.
fn inverse_transpose(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut lu = a.to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    let tiny = a.iter().fold(0f64, |t, v| t.max(v.abs())) * n as f64 * f64::EPSILON;
    for k in 0..n {
        let p = (k + 1..n).fold(k, |best, i| {
            if lu[i * n + k].abs() > lu[best * n + k].abs() {
                i
            } else {
                best
            }
        });
        let pivot = lu[p * n + k];
        if pivot.is_nan() || pivot.abs() <= tiny {
            return None;
        }
        if p != k {
            let (head, tail) = lu.split_at_mut(p * n);
            head[k * n..][..n].swap_with_slice(&mut tail[..n]);
            perm.swap(p, k);
        }
        let (head, below) = lu.split_at_mut((k + 1) * n);
        let upper = &head[k * n + k + 1..];
        below.par_chunks_mut(LU_ROWS * n).for_each(|rows| {
            for row in rows.chunks_exact_mut(n) {
                let l = row[k] / pivot;
                row[k] = l;
                row[k + 1..].iter_mut().zip(upper).for_each(|(o, u)| *o -= l * u);
            }
        });
    }
    // Row j of a⁻ᵀ is column j of a⁻¹: solve L·U·y = P·e_j, each row of
    // the triangles a dot product with the solution so far.
    let mut out = vec![0f64; n * n];
    out.par_chunks_mut(n).enumerate().for_each(|(j, y)| {
        for i in 0..n {
            let b = if perm[i] == j { 1.0 } else { 0.0 };
            y[i] = b - dot(&lu[i * n..i * n + i], &y[..i]);
        }
        for i in (0..n).rev() {
            let row = &lu[i * n..(i + 1) * n];
            y[i] = (y[i] - dot(&row[i + 1..], &y[i + 1..])) / row[i];
        }
    });
    Some(out)
}

/// `Σ a_i·b_i` in four lanes (a fixed order: the same bits everywhere).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let (xs, ys) = (a.chunks_exact(4), b.chunks_exact(4));
    let (xr, yr) = (xs.remainder(), ys.remainder());
    for (x, y) in xs.zip(ys) {
        for l in 0..4 {
            lanes[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in xr.iter().zip(yr).enumerate() {
        lanes[l] += x * y;
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// The polar factor of `m` by one-sided Jacobi SVD on its columns:
/// singular directions too small to carry a left vector are completed to
/// an orthonormal basis, so the result is orthogonal for any finite `m`
/// (rank-deficient included). Slower than [`polar_factor_newton`].
pub fn polar_factor_jacobi(m: &[f64], n: usize) -> Vec<f64> {
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

/// Rows of the sample per task of [`times`].
const TIMES_ROWS: usize = 256;

/// `out = a·b` for `a` (`m × k`, element `(i, l)` at `i·a_strides.0 +
/// l·a_strides.1`), `b` (`k × n`, row-major) and `out` (`m × n`, row-major),
/// in f64 through `matrixmultiply::dgemm`, single-threaded. Determinism as
/// `ivf::kmeans::dots`: every element is summed over `k` in fixed blocks in
/// increasing order whatever `m` is, so splitting rows over tasks never
/// changes a value on one CPU (across CPUs, FMA or not may change the last bits).
fn gemm(m: usize, k: usize, n: usize, a: &[f64], a_strides: (usize, usize), b: &[f64], out: &mut [f64]) {
    if m == 0 || k == 0 || n == 0 {
        out.fill(0.0);
        return;
    }
    let last_a = (m - 1) * a_strides.0 + (k - 1) * a_strides.1;
    assert!(last_a < a.len() && b.len() == k * n && out.len() == m * n);
    // SAFETY: CPU: none (matrixmultiply detects its own features at run time).
    // Lengths: the largest offset read from `a` is `last_a < a.len()` (checked
    // above); `b` is read as k × n with row stride n, `out` written as m × n
    // with row stride n (lengths checked above); `out` is a distinct borrow.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_strides.0 as isize,
            a_strides.1 as isize,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `x·r` for `x` (`rows × n`) and `r` (`n × n`), both row-major f64, in
/// parallel over fixed blocks of rows (the same bits on every thread count).
pub(crate) fn times(x: &[f64], r: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0f64; x.len()];
    out.par_chunks_mut(TIMES_ROWS * n)
        .zip(x.par_chunks(TIMES_ROWS * n))
        .for_each(|(o, xs)| gemm(xs.len() / n, n, n, xs, (n, 1), r, o));
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

/// `xᵀ·y` (`n × n`) of two `rows × n` matrices: one product per fixed
/// piece of rows (in parallel), the pieces summed in piece order (the same
/// bits on every thread count).
fn cross(x: &[f64], y: &[f64], n: usize) -> Vec<f64> {
    let pieces: Vec<Vec<f64>> = x
        .par_chunks(PIECE_ROWS * n)
        .zip(y.par_chunks(PIECE_ROWS * n))
        .map(|(xs, ys)| {
            let mut m = vec![0f64; n * n];
            gemm(n, xs.len() / n, n, xs, (1, n), ys, &mut m);
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
