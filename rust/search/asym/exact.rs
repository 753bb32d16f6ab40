//! The exact score of SPEC §8 from per-pair tables of the query's products and the codes' squares.

use crate::codes::code_width;
use crate::decode::Reconstruction;
use crate::kernels::scalar_asym::PairProducts;

impl PairProducts {
    #[inline(always)]
    pub(super) fn new(q: &[f32], q_norm: f64, table: &Reconstruction, m: usize) -> PairProducts {
        // One division per dimension (SPEC §8: u = q/‖q‖, then times x̂).
        // (Plain loops, no array `map`: it stays a call in builds without LTO.)
        let products = |d: usize| -> [f64; 4] {
            let u = f64::from(q[d]) / q_norm;
            let mut p = [0.0f64; 4];
            for (g, p) in p.iter_mut().enumerate() {
                *p = u * f64::from(table.of_gray(d, g as u8));
            }
            p
        };
        let dim = table.dim();
        PairProducts {
            first: if 2 * m < dim { products(2 * m) } else { [0.0; 4] },
            second: if 2 * m + 1 < dim {
                Some(products(2 * m + 1))
            } else {
                None
            },
        }
    }
}

/// Per pair of dimensions and Gray nibble, `x̂_2m² + x̂_2m+1²` (f64): the
/// norm's part of SPEC §8's exact score.
pub(crate) fn pair_squares(table: &Reconstruction) -> Vec<f64> {
    let dim = table.dim();
    let pairs = 2 * code_width(dim);
    let mut squares = vec![0.0f64; 16 * pairs];
    for m in 0..pairs {
        for n in 0..16u8 {
            let mut v = 0.0;
            for (j, g) in [(0, n >> 2), (1, n & 3)] {
                let d = 2 * m + j;
                if d < dim {
                    let x = f64::from(table.of_gray(d, g));
                    v += x * x;
                }
            }
            squares[16 * m + n as usize] = v;
        }
    }
    squares
}

/// Per pair of dimensions m (2m, 2m + 1) and 4-bit Gray nibble n, the two
/// f64 terms of SPEC §8's exact score side by side, `[value, square]`: the
/// query's part of the dot product, `u_2m·x̂_2m + u_2m+1·x̂_2m+1` with
/// `u = q/‖q‖` (a dimension past `dim` adds nothing), and the entry of
/// [`pair_squares`] (`squares`). Side by side, each lookup of
/// [`exact_score`] reads one 16-byte entry: one cache line, not one per table.
pub(crate) fn pair_terms(q: &[f32], q_norm: f64, table: &Reconstruction, squares: &[f64]) -> Vec<[f64; 2]> {
    let pairs = 2 * code_width(table.dim());
    let mut terms = Vec::with_capacity(16 * pairs);
    for (m, squares) in squares.chunks_exact(16).take(pairs).enumerate() {
        let values = PairProducts::new(q, q_norm, table, m).values();
        terms.extend(values.iter().zip(squares).map(|(&v, &s)| [v, s]));
    }
    terms
}

/// The exact score of SPEC §8 from the [`pair_terms`]: per pair m the
/// nibble's value and square, summed in f64 into four partial sums by
/// `m mod 4` (each in increasing m), combined as `(S0 + S1) + (S2 + S3)`;
/// `dot / sqrt(squares)`, 0 when the squares sum to 0.
/// (Four independent chains: the sum is latency-bound otherwise.)
#[inline]
pub(crate) fn exact_score(terms: &[[f64; 2]], code: &[u8]) -> f64 {
    exact_score_with(code, |i| terms[i])
}

/// The values half of [`pair_terms`] (`16·m + n`: pair m, nibble n) from
/// the query's [`PairProducts`]: with [`SharedTables`](super::SharedTables)' squares,
/// [`exact_score_of_values`] gives [`exact_score`]'s scores without the
/// interleaved terms (half their bytes to write, for a few rows).
pub(super) fn pair_values(products: &[PairProducts]) -> Vec<f64> {
    let mut values = Vec::with_capacity(16 * products.len());
    for p in products {
        values.extend_from_slice(&p.values());
    }
    values
}

/// [`exact_score`] of the terms [`pair_terms`] would build (the same f64
/// values, summed in the same order: the same score), from [`pair_values`]
/// and [`pair_squares`] side by side.
pub(super) fn exact_score_of_values(values: &[f64], pair_squares: &[f64], code: &[u8]) -> f64 {
    exact_score_with(code, |i| [values[i], pair_squares[i]])
}

/// [`exact_score`] with `term(16·m + n)` giving pair m's `[value, square]` for nibble n.
#[inline(always)]
pub(super) fn exact_score_with(code: &[u8], term: impl Fn(usize) -> [f64; 2]) -> f64 {
    let (mut dot, mut sq) = ([0.0f64; 4], [0.0f64; 4]);
    // Byte b holds pairs 2b (high nibble) and 2b + 1 (low nibble): two bytes, pairs 4c..4c+4.
    let pairs = code.chunks_exact(2);
    let remainder = pairs.remainder();
    for (c, two) in pairs.enumerate() {
        let base = 64 * c;
        let n = [two[0] >> 4, two[0] & 15, two[1] >> 4, two[1] & 15];
        for j in 0..4 {
            let [v, s] = term(base + 16 * j + usize::from(n[j]));
            dot[j] += v;
            sq[j] += s;
        }
    }
    if let [last] = remainder {
        let base = 32 * (code.len() - 1);
        for (j, n) in [last >> 4, last & 15].into_iter().enumerate() {
            let [v, s] = term(base + 16 * j + usize::from(n));
            dot[j] += v;
            sq[j] += s;
        }
    }
    let dot = (dot[0] + dot[1]) + (dot[2] + dot[3]);
    let sq = (sq[0] + sq[1]) + (sq[2] + sq[3]);
    if sq == 0.0 {
        0.0
    } else {
        dot / sq.sqrt()
    }
}
