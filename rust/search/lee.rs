//! Lee distances between packed codes: one-to-one, row-wise, one-to-many,
//! many-to-many, and the weighted Lee distance (SPEC §3).

use crate::check::{check_len, check_rows};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::search::blocks::for_each_block;
use rayon::prelude::*;

/// Rows per parallel task for the row-wise kernels.
const ROWS_PER_TASK: usize = 4096;

/// Codes have at least one byte (a dimension of at least 1).
fn check_width(width: usize) -> Result<()> {
    if width == 0 {
        return Err(Error::shape("a", "codes of at least 1 byte", "width 0"));
    }
    Ok(())
}

fn check_same_width(a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::shape(
            "b",
            format!("codes of {a} bytes, like a"),
            format!("{b} bytes"),
        ));
    }
    Ok(())
}

/// Lee distance `popcount(a XOR b)` of two codes of equal length.
pub fn lee(a: &[u8], b: &[u8]) -> Result<u32> {
    check_same_width(a.len(), b.len())?;
    Ok((Kernels::active().lee_pair)(a, b))
}

/// Row-wise distances: `out[i] = lee(a[i], b[i])` for `rows × width` codes.
pub fn lee_pairwise(a: &[u8], b: &[u8], width: usize, out: &mut [u32]) -> Result<()> {
    check_width(width)?;
    let rows = check_rows("a", a.len(), width)?;
    check_len("b", b.len(), a.len())?;
    check_len("out", out.len(), rows)?;
    let pair = Kernels::active().lee_pair;
    out.par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(|(t, o)| {
        let first = t * ROWS_PER_TASK;
        for (i, d) in o.iter_mut().enumerate() {
            let r = (first + i) * width;
            *d = pair(&a[r..r + width], &b[r..r + width]);
        }
    });
    Ok(())
}

/// One-to-many: `out[i] = lee(query, db[i])`.
pub fn lee_one_to_many(query: &[u8], db: &[u8], out: &mut [u32]) -> Result<()> {
    let width = query.len();
    check_width(width)?;
    let rows = check_rows("b", db.len(), width)?;
    check_len("out", out.len(), rows)?;
    let kernel = Kernels::active().lee_rows;
    out.par_chunks_mut(ROWS_PER_TASK)
        .zip(db.par_chunks(ROWS_PER_TASK * width))
        .for_each(|(o, block)| kernel(query, block, o));
    Ok(())
}

/// Many-to-many: `out[i·N + j] = lee(a[i], b[j])` for `a` of `M` rows and `b` of `N` rows.
pub fn lee_matrix(a: &[u8], b: &[u8], width: usize, out: &mut [u32]) -> Result<()> {
    check_width(width)?;
    let m = check_rows("a", a.len(), width)?;
    let n = check_rows("b", b.len(), width)?;
    let cells = m
        .checked_mul(n)
        .ok_or_else(|| Error::shape("out", format!("{m} × {n} elements"), "no buffer that large"))?;
    check_len("out", out.len(), cells)?;
    if n == 0 || m == 0 {
        return Ok(());
    }
    let kernels = Kernels::active();
    let per = m.div_ceil(rayon::current_num_threads() * 4).clamp(1, 64);
    a.par_chunks(per * width)
        .zip(out.par_chunks_mut(per * n))
        .for_each(|(chunk, o)| {
            for_each_block(kernels, chunk, b, width, |q, first, ds| {
                o[q * n + first..][..ds.len()].copy_from_slice(ds);
            })
        });
    Ok(())
}

/// What changed between two codes, per dimension: only the magnitude class
/// (low bit), only the sign (high bit), or both (the complement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeeCounts {
    pub magnitude: u32,
    pub sign: u32,
    pub both: u32,
}

impl LeeCounts {
    /// Plain Lee distance: `magnitude + sign + 2·both`.
    pub fn lee(self) -> u32 {
        self.magnitude + self.sign + 2 * self.both
    }
}

/// Counts of magnitude-only, sign-only and both-bit changes between two codes.
pub fn lee_counts(a: &[u8], b: &[u8]) -> Result<LeeCounts> {
    check_same_width(a.len(), b.len())?;
    Ok(counts_unchecked(a, b))
}

#[inline]
fn counts_unchecked(a: &[u8], b: &[u8]) -> LeeCounts {
    const LOW: u64 = 0x5555_5555_5555_5555;
    let mut c = LeeCounts::default();
    for (x, y) in a.chunks(8).zip(b.chunks(8)) {
        let (mut wa, mut wb) = ([0u8; 8], [0u8; 8]);
        wa[..x.len()].copy_from_slice(x);
        wb[..y.len()].copy_from_slice(y);
        let diff = u64::from_le_bytes(wa) ^ u64::from_le_bytes(wb);
        let low = diff & LOW;
        let high = (diff >> 1) & LOW;
        c.magnitude += (low & !high).count_ones();
        c.sign += (high & !low).count_ones();
        c.both += (low & high).count_ones();
    }
    c
}

/// Weights of the weighted Lee distance: `w_mag·#magnitude + w_sign·#sign + w_both·#both`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeeWeights {
    pub magnitude: f64,
    pub sign: f64,
    pub both: f64,
}

impl LeeWeights {
    /// `(1, 1, 2)`: plain Lee distance.
    pub const PLAIN: LeeWeights = LeeWeights {
        magnitude: 1.0,
        sign: 1.0,
        both: 2.0,
    };

    pub fn new(magnitude: f64, sign: f64, both: f64) -> Result<Self> {
        for (name, w) in [("w_mag", magnitude), ("w_sign", sign), ("w_both", both)] {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::value(
                    "weights",
                    format!("{name} must be a finite number ≥ 0, got {w}"),
                ));
            }
        }
        Ok(LeeWeights { magnitude, sign, both })
    }

    /// These weights, when the largest weighted distance between codes of
    /// `dims` dimensions (every dimension changed by the heaviest kind) is
    /// finite; otherwise sums overflow to `inf`, equal distances tie, and a
    /// ranking falls back to id order without a word.
    pub fn check_dims(self, dims: usize) -> Result<Self> {
        let heaviest = self.magnitude.max(self.sign).max(self.both);
        let largest = heaviest * dims as f64;
        if !largest.is_finite() {
            return Err(Error::value(
                "weights",
                format!(
                    "the largest distance over {dims} dimensions ({dims} × {heaviest:e}) overflows to inf; \
                     scale the weights down (only their ratios matter)"
                ),
            ));
        }
        Ok(self)
    }

    #[inline]
    pub fn apply(self, c: LeeCounts) -> f64 {
        self.magnitude * f64::from(c.magnitude) + self.sign * f64::from(c.sign) + self.both * f64::from(c.both)
    }
}

/// Row-wise weighted Lee distances of `rows × width` codes.
pub fn weighted_lee_pairwise(a: &[u8], b: &[u8], width: usize, weights: LeeWeights, out: &mut [f64]) -> Result<()> {
    check_width(width)?;
    weights.check_dims(4 * width)?;
    let rows = check_rows("a", a.len(), width)?;
    check_len("b", b.len(), a.len())?;
    check_len("out", out.len(), rows)?;
    out.par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(|(t, o)| {
        let first = t * ROWS_PER_TASK;
        for (i, d) in o.iter_mut().enumerate() {
            let r = (first + i) * width;
            *d = weights.apply(counts_unchecked(&a[r..r + width], &b[r..r + width]));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_whose_largest_distance_overflows_are_refused() {
        let huge = LeeWeights::new(1e308, 1e308, 1e308).unwrap();
        let err = huge.check_dims(3).unwrap_err();
        assert!(matches!(err, Error::Value { arg: "weights", .. }), "{err:?}");
        assert!(huge.check_dims(1).is_ok(), "one dimension of 1e308 is finite");
        // The heaviest weight decides, whichever kind of change it weights.
        for w in [(0.0, 0.0, 1e308), (1e308, 0.0, 0.0), (0.0, 1e308, 1.0)] {
            let w = LeeWeights::new(w.0, w.1, w.2).unwrap();
            assert!(w.check_dims(2).is_err(), "{w:?}");
        }
        // Every distance of accepted weights is finite, the largest included.
        let w = LeeWeights::new(1e300, 2e300, 3e300).unwrap().check_dims(64).unwrap();
        let largest = LeeCounts {
            magnitude: 0,
            sign: 0,
            both: 64,
        };
        assert!(w.apply(largest).is_finite());
        let (a, b) = ([0u8; 1], [0xffu8; 1]);
        let mut out = [0.0];
        assert!(weighted_lee_pairwise(&a, &b, 1, huge, &mut out).is_err());
        weighted_lee_pairwise(&a, &b, 1, w, &mut out).unwrap();
        assert_eq!(out[0], 4.0 * 3e300);
    }
}
