//! An orthogonal rotation applied to unit vectors before they are quantised
//! (SPEC §9): `y = v·R` with `v` the row L2-normalised as in §1 and rounded
//! to f32, every `y_j` its own f32 chain summed in increasing `i` (no fused
//! multiply-add), so a scalar loop and any SIMD width over `j` agree bit for bit.
//!
//! The product is computed in row chunks (in parallel) and, inside a chunk,
//! column tiles of `R` small enough for L1 times blocks of rows whose
//! accumulators stay in registers: each loaded tile row of `R` serves
//! several input rows. The fitting lives in `rotation_fit.rs`.

use crate::check::check_rows;
use crate::encode::quantize::{sum_of_squares_by, Element};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use rayon::prelude::*;
use std::sync::Arc;

/// The largest `max |RᵀR − I|` (computed in f64) a rotation may have.
pub const ORTHOGONALITY_TOLERANCE: f64 = 1e-4;

/// Output columns per tile: one 64-byte cache line of `R` per input coordinate.
const TILE: usize = 16;
/// Input rows whose tile accumulators are kept in registers together: with
/// AVX2, 5 rows × 2 vectors of accumulators, 2 of the tile row, a broadcast
/// and a product fit the 16 registers (6 rows spilled two accumulators to
/// the stack, a store-to-load chain per step: 1.6× slower).
const BLOCK_ROWS: usize = 5;
/// Rows one parallel task normalises and rotates (about 256 KiB of f32 at 384-d).
const CHUNK_ROWS: usize = 192;

/// A validated orthogonal `dim × dim` matrix, row-major f32 (cheap to clone).
#[derive(Clone, PartialEq)]
pub struct Rotation {
    dim: usize,
    matrix: Arc<[f32]>,
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rotation({} × {})", self.dim, self.dim)
    }
}

impl Rotation {
    /// `R` from row-major `values` of `shape` (`rows`, `cols`): square, finite
    /// and orthogonal within [`ORTHOGONALITY_TOLERANCE`]; errors name `rotation`.
    pub fn new(values: &[f32], shape: (usize, usize)) -> Result<Rotation> {
        let (rows, cols) = shape;
        Rotation::check_shape(shape, values.len())?;
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                arg: "rotation",
                row: at / cols,
                col: at % cols,
                value: f64::from(values[at]),
            });
        }
        let deviation = orthogonality_error(values, rows);
        if deviation.is_nan() || deviation > ORTHOGONALITY_TOLERANCE {
            return Err(Error::value(
                "rotation",
                format!("must be orthogonal: max |RᵀR − I| is {deviation:e}, above {ORTHOGONALITY_TOLERANCE:e}"),
            ));
        }
        Ok(Rotation {
            dim: rows,
            matrix: values.into(),
        })
    }

    /// The shape error [`Rotation::new`] gives for `shape` holding `len`
    /// values, checked alone (before a caller copies the values).
    pub fn check_shape(shape: (usize, usize), len: usize) -> Result<usize> {
        let (rows, cols) = shape;
        if rows != cols || rows == 0 || rows.checked_mul(cols) != Some(len) {
            return Err(Error::shape(
                "rotation",
                "a square (dim, dim) orthogonal matrix with dim ≥ 1",
                format!("({rows}, {cols})"),
            ));
        }
        crate::check_dim(rows)
    }

    /// `R` from f64 values, rounded to f32, then validated as [`Rotation::new`].
    pub fn from_f64(values: &[f64], shape: (usize, usize)) -> Result<Rotation> {
        let rounded: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Rotation::new(&rounded, shape)
    }

    /// The identity of dimension `dim`.
    pub fn identity(dim: usize) -> Result<Rotation> {
        let dim = crate::check_dim(dim)?;
        let mut m = crate::error::zeroed("rotation", "the rotation matrix", dim, dim)?;
        for i in 0..dim {
            m[i * dim + i] = 1.0;
        }
        Rotation::new(&m, (dim, dim))
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `R`, row-major: `R[i][j]` at `i·dim + j`.
    pub fn as_slice(&self) -> &[f32] {
        &self.matrix
    }

    /// `Rᵀ` as a rotation (exactly orthogonal when `R` is, so not re-checked).
    pub fn transpose(&self) -> Rotation {
        let n = self.dim;
        let mut t = vec![0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                t[j * n + i] = self.matrix[i * n + j];
            }
        }
        Rotation {
            dim: n,
            matrix: t.into(),
        }
    }

    /// The rotated unit rows of `x` (`rows × dim`, f32 or f64): each row
    /// L2-normalised (SPEC §9), rounded to f32 and multiplied by `R`, into
    /// `out` (`rows × dim`). A NaN or ±Inf is an error naming `x`, the row
    /// (counted from `first_row`) and the column. Active kernels, rayon pool.
    pub fn apply<T: Element>(&self, x: &[T], first_row: usize, out: &mut [f32]) -> Result<()> {
        self.apply_with(Kernels::active(), x, first_row, out)
    }

    /// [`Rotation::apply`] with the given kernels (for comparing backends).
    pub fn apply_with<T: Element>(&self, kernels: &Kernels, x: &[T], first_row: usize, out: &mut [f32]) -> Result<()> {
        let dim = self.dim;
        let rows = check_rows("x", x.len(), dim)?;
        crate::check::check_len("out", out.len(), rows * dim)?;
        let m = &self.matrix[..];
        x.par_chunks(CHUNK_ROWS * dim)
            .zip(out.par_chunks_mut(CHUNK_ROWS * dim))
            .enumerate()
            .try_for_each(|(c, (x, out))| {
                let mut unit = vec![0f32; x.len()];
                for (r, (row, v)) in x.chunks_exact(dim).zip(unit.chunks_exact_mut(dim)).enumerate() {
                    unit_row(row, v).map_err(|col| Error::NonFinite {
                        arg: "x",
                        row: first_row + c * CHUNK_ROWS + r,
                        col,
                        value: row[col].to_f64(),
                    })?;
                }
                (kernels.rotate)(&unit, m, dim, out);
                Ok(())
            })
    }

    /// `y·Rᵀ` of the rows of `y` (`rows × dim`, f32, not normalised): back
    /// from the rotated space to the input space, by the same summation rule
    /// applied to `Rᵀ`.
    pub fn apply_transpose(&self, y: &[f32], out: &mut [f32]) -> Result<()> {
        let dim = self.dim;
        let rows = check_rows("x", y.len(), dim)?;
        crate::check::check_len("out", out.len(), rows * dim)?;
        let t = self.transpose();
        let kernels = Kernels::active();
        y.par_chunks(CHUNK_ROWS * dim)
            .zip(out.par_chunks_mut(CHUNK_ROWS * dim))
            .for_each(|(y, out)| (kernels.rotate)(y, &t.matrix, dim, out));
        Ok(())
    }
}

/// `max |RᵀR − I|` of a row-major `n × n` matrix, in f64.
pub(crate) fn orthogonality_error(m: &[f32], n: usize) -> f64 {
    (0..n)
        .into_par_iter()
        .map(|a| {
            let mut dots = vec![0f64; n];
            for i in 0..n {
                let ra = f64::from(m[i * n + a]);
                for (d, &v) in dots.iter_mut().zip(&m[i * n..][..n]) {
                    *d += ra * f64::from(v);
                }
            }
            dots.iter()
                .enumerate()
                .map(|(b, &d)| (d - if a == b { 1.0 } else { 0.0 }).abs())
                .fold(
                    0.0f64,
                    |m, e| if e.is_nan() || m.is_nan() { f64::NAN } else { m.max(e) },
                )
        })
        .reduce(
            || 0.0,
            |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) },
        )
}

/// `v = x/‖x‖` (SPEC §9) rounded to f32 into `out`: the row divided by its
/// largest magnitude `m` in f64 (so no finite row overflows or underflows),
/// then by the f64 norm of that (squares summed in the encoder's 32-lane
/// order); a zero row stays zero. `Err(col)` of the first NaN or ±Inf.
pub(crate) fn unit_row<T: Element>(x: &[T], out: &mut [f32]) -> std::result::Result<(), usize> {
    let mut top = 0.0f64;
    for (c, &v) in x.iter().enumerate() {
        let v = v.to_f64();
        if !v.is_finite() {
            return Err(c);
        }
        top = top.max(v.abs());
    }
    if top == 0.0 {
        out.fill(0.0);
        return Ok(());
    }
    let norm = sum_of_squares_by(x, |v| v.to_f64() / top).sqrt();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v.to_f64() / top / norm) as f32;
    }
    Ok(())
}

/// `out[r][j] = Σ_i rows[r][i]·matrix[i][j]` (SPEC §9 order) for `rows`
/// and `out` of `k × dim` values and a `dim × dim` matrix. Safe Rust; the
/// SIMD backends compile this same body with their target features.
#[inline(always)]
pub(crate) fn rotate_rows(rows: &[f32], matrix: &[f32], dim: usize, out: &mut [f32]) {
    assert!(dim > 0 && matrix.len() == dim * dim && rows.len() == out.len() && rows.len().is_multiple_of(dim));
    let tiles = dim / TILE;
    // The tile's columns of every matrix row, contiguous: read in place, rows
    // `dim` floats apart map to a few cache sets (at 384-d, 8 of L1's 64) and
    // the tile keeps missing L1; copied, its `dim × TILE` floats stay there.
    let mut slab = vec![0f32; if tiles > 0 { dim * TILE } else { 0 }];
    for t in 0..tiles {
        let j0 = t * TILE;
        for (s, r) in slab.chunks_exact_mut(TILE).zip(matrix.chunks_exact(dim)) {
            s.copy_from_slice(&r[j0..j0 + TILE]);
        }
        let mut blocks = rows.chunks_exact(BLOCK_ROWS * dim);
        let mut outs = out.chunks_exact_mut(BLOCK_ROWS * dim);
        for (x, o) in (&mut blocks).zip(&mut outs) {
            tile_block(x, &slab, dim, j0, o);
        }
        for (x, o) in blocks
            .remainder()
            .chunks_exact(dim)
            .zip(outs.into_remainder().chunks_exact_mut(dim))
        {
            tile_row(x, &slab, j0, o);
        }
    }
    // Columns past the last whole tile: one chain each, the same order.
    for (x, o) in rows.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        for (j, o) in o.iter_mut().enumerate().skip(tiles * TILE) {
            let mut acc = 0f32;
            for (i, &v) in x.iter().enumerate() {
                acc += v * matrix[i * dim + j];
            }
            *o = acc;
        }
    }
}

/// `acc[t] += s·r[t]` over one tile: separate multiply and add (SPEC §9).
macro_rules! axpy {
    ($acc:ident, $s:expr, $r:ident) => {
        for t in 0..TILE {
            $acc[t] += $s * $r[t];
        }
    };
}

/// Columns `j0..j0+TILE` of [`BLOCK_ROWS`] rows from the tile's `slab`
/// (`dim × TILE`, the matrix's columns `j0..j0+TILE`): one accumulator
/// array per row, each a separate local so that all of them live in
/// registers, and each loaded tile row of the matrix used by every row of the block.
#[inline(always)]
fn tile_block(x: &[f32], slab: &[f32], dim: usize, j0: usize, out: &mut [f32]) {
    // Plain index loops over slices of known length (no nested iterator
    // adapters): they compile to the register loop even without LTO.
    let row = |b: usize| &x[b * dim..(b + 1) * dim];
    let (x0, x1, x2, x3, x4) = (row(0), row(1), row(2), row(3), row(4));
    let slab = &slab[..dim * TILE];
    let mut a = [[0f32; TILE]; BLOCK_ROWS];
    let [a0, a1, a2, a3, a4] = &mut a;
    let (mut b0, mut b1, mut b2, mut b3, mut b4) = (*a0, *a1, *a2, *a3, *a4);
    for i in 0..dim {
        let r = &slab[i * TILE..i * TILE + TILE];
        axpy!(b0, x0[i], r);
        axpy!(b1, x1[i], r);
        axpy!(b2, x2[i], r);
        axpy!(b3, x3[i], r);
        axpy!(b4, x4[i], r);
    }
    for (b, acc) in [b0, b1, b2, b3, b4].iter().enumerate() {
        out[b * dim + j0..][..TILE].copy_from_slice(acc);
    }
}

/// [`tile_block`] for one row (the rows past the last whole block).
#[inline(always)]
fn tile_row(x: &[f32], slab: &[f32], j0: usize, out: &mut [f32]) {
    let mut acc = [0f32; TILE];
    for (i, &s) in x.iter().enumerate() {
        let r = &slab[i * TILE..i * TILE + TILE];
        axpy!(acc, s, r);
    }
    out[j0..j0 + TILE].copy_from_slice(&acc);
}

/// The scalar backend's rotation kernel.
pub(crate) fn rotate_rows_scalar(rows: &[f32], matrix: &[f32], dim: usize, out: &mut [f32]) {
    rotate_rows(rows, matrix, dim, out)
}
