//! Spherical k-means (the coarse partition of the inverted file).
//!
//! Rows are normalised to unit length, centroids are renormalised after
//! every update, and a row belongs to the centroid of the largest dot product
//! (ties to the lower centroid). Deterministic: for a seed, the same
//! centroids for every thread count and every q2key backend:
//! - the dot products come from [`dots`], whose per-element summation order
//!   depends only on the dimension (see there), never on how rows are split;
//! - centroid sums are accumulated in f64 per centroid over its rows in row
//!   order (rows are grouped by centroid first), so no partial sums of
//!   thread-dependent chunks are ever merged;
//! - sampling and the split of empty clusters use a seeded generator and
//!   fixed rules.

use crate::error::{with_capacity, zeroed, Error, Result};
use rayon::prelude::*;

/// Rows per parallel task of the assignment: sgemm packs the centroids once
/// per task, so larger tasks amortise it (64 rows: 12 GFLOP/s, 256 rows:
/// 18 GFLOP/s on one AVX2 core at 2 048 centroids × 384-d); a task's dot
/// products (`rows × centroids` f32) are 4 MB at 4 096 centroids.
pub(crate) const ASSIGN_ROWS: usize = 256;
/// The relative perturbation of a split centroid (faiss's `EPS`).
const SPLIT_EPS: f32 = 1.0 / 1024.0;

/// `out[i·cols + j] = dot(a_i, b_j)` for `a` (`rows × dim`) and `b` (`cols ×
/// dim`), row-major, in f32 through `matrixmultiply::sgemm`.
///
/// Determinism: sgemm packs the inner dimension in fixed blocks (`kc`) and
/// sums each output element block by block in increasing order whatever the
/// number of rows or their position, and it runs single-threaded here (the
/// crate's `threading` feature is off), so every element has one summation
/// order for a given `dim` and CPU: splitting rows over threads never changes
/// a value. Across CPUs it may: matrixmultiply picks its micro-kernel at run
/// time (AVX-512F, AVX+FMA, AVX, SSE2 or generic; the AVX-512 one halved the
/// routing's share of an inverted file's search on Zen 5, 14 % → 7 %), and a
/// kernel with FMA rounds once per multiply-add where the others round twice,
/// so two machines, one with and one without FMA, can differ in the last bits
/// of a dot product and so in a near tie of the argmax. Results are identical
/// on one machine for every thread count and q2key backend, which is the
/// promise.
pub(crate) fn dots(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    let rows = a.len() / dim;
    let cols = b.len() / dim;
    // A real check (not debug-only): the unsafe sgemm below writes rows × cols values.
    assert_eq!(out.len(), rows * cols, "dots: output of the wrong length");
    if rows == 0 || cols == 0 {
        return;
    }
    // SAFETY: CPU: none (matrixmultiply detects its own features at run time).
    // Lengths: `a` holds rows × dim values read with row stride dim and column
    // stride 1; `b` is read as the dim × cols matrix bᵀ (row stride 1, column
    // stride dim), cols × dim values; `out` holds rows × cols values (asserted above) written
    // with row stride cols, column stride 1; all three are distinct borrows.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            dim,
            cols,
            1.0,
            a.as_ptr(),
            dim as isize,
            1,
            b.as_ptr(),
            1,
            dim as isize,
            0.0,
            out.as_mut_ptr(),
            cols as isize,
            1,
        );
    }
}

/// A seeded generator (SplitMix64): the same stream on every platform.
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n ≥ 1`; the modulo bias is below 2⁻³² for n < 2³²).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` distinct numbers of `0..n` (`count ≤ n`), ascending: Floyd's
/// algorithm driven by `rng`, so the draw depends only on the seed.
pub(crate) fn sample_distinct(n: usize, count: usize, rng: &mut SplitMix) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    let mut chosen = foldhash::HashSet::default();
    chosen.reserve(count);
    for j in n - count..n {
        let t = rng.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut out: Vec<usize> = chosen.into_iter().collect();
    out.sort_unstable();
    out
}

/// `x` (`rows × dim`) with every row scaled to unit length in f64 and
/// rounded to f32 (a zero row stays zero).
pub(crate) fn normalised(x: &[f32], dim: usize) -> Result<Vec<f32>> {
    let mut out = with_capacity("x", "the normalised training rows", x.len() / dim, dim)?;
    out.extend_from_slice(x);
    out.par_chunks_mut(dim).for_each(normalise_row);
    Ok(out)
}

/// Scales `row` to unit length (norm in f64, squares summed in order).
pub(crate) fn normalise_row(row: &mut [f32]) {
    let norm = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for v in row.iter_mut() {
            *v = (f64::from(*v) / norm) as f32;
        }
    }
}

/// The nearest centroid of each row (largest dot product, ties to the lower
/// centroid) and that dot product; rows in parallel tasks of [`ASSIGN_ROWS`].
pub fn assign(x: &[f32], centroids: &[f32], dim: usize, out: &mut [u32]) -> Result<()> {
    let lists = centroids.len() / dim;
    x.par_chunks(ASSIGN_ROWS * dim)
        .zip(out.par_chunks_mut(ASSIGN_ROWS))
        .try_for_each(|(rows, out)| -> Result<()> {
            let mut d = zeroed("x", "the centroid dot products", out.len(), lists)?;
            dots(rows, centroids, dim, &mut d);
            for (o, row) in out.iter_mut().zip(d.chunks_exact(lists)) {
                *o = argmax(row) as u32;
            }
            Ok(())
        })
}

/// The position of the largest value (the first among equals; NaN never wins).
pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Parameters of [`train`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmeansParams {
    pub lists: usize,
    pub iterations: usize,
    pub seed: u64,
}

/// Spherical k-means of the rows of `x` (`rows × dim`, finite; already a
/// training sample): `lists` unit centroids, `lists × dim` row-major.
/// Initialised with `lists` distinct rows drawn by the seed; an empty
/// cluster after an update takes half of the largest one (ties to the lower
/// list): the largest centroid is copied and both are pushed apart by
/// `±SPLIT_EPS` per coordinate, alternating signs, as faiss does.
pub fn train(x: &[f32], dim: usize, params: KmeansParams) -> Result<Vec<f32>> {
    check_lists(x.len() / dim, params.lists)?;
    let mut copy = with_capacity("x", "the normalised training rows", x.len() / dim, dim)?;
    copy.extend_from_slice(x);
    train_owned(copy, dim, params)
}

/// [`train`] of rows the caller hands over: they are normalised in place, so
/// training holds one copy of the sample, not two.
pub fn train_owned(mut x: Vec<f32>, dim: usize, params: KmeansParams) -> Result<Vec<f32>> {
    let rows = x.len() / dim;
    check_lists(rows, params.lists)?;
    x.par_chunks_mut(dim).for_each(normalise_row);
    let lists = params.lists;
    let mut rng = SplitMix::new(params.seed);
    let mut centroids = with_capacity("lists", "the centroids", lists, dim)?;
    for r in sample_distinct(rows, lists, &mut rng) {
        centroids.extend_from_slice(&x[r * dim..(r + 1) * dim]);
    }
    let mut assignment = zeroed::<u32>("x", "the assignment of the training rows", rows, 1)?;
    for _ in 0..params.iterations {
        assign(&x, &centroids, dim, &mut assignment)?;
        let members = group_by_list(&assignment, lists);
        centroids
            .par_chunks_mut(dim)
            .enumerate()
            .for_each(|(l, c)| update_centroid(&x, dim, &members.rows[members.starts[l]..members.starts[l + 1]], c));
        let mut sizes: Vec<usize> = (0..lists).map(|l| members.starts[l + 1] - members.starts[l]).collect();
        split_empty(&mut centroids, &mut sizes, dim);
    }
    Ok(centroids)
}

/// `lists` is a number of lists that `rows` training rows can train.
fn check_lists(rows: usize, lists: usize) -> Result<()> {
    if lists == 0 {
        return Err(Error::value("lists", "must be at least 1"));
    }
    if lists > rows {
        return Err(Error::value(
            "lists",
            format!("{lists} lists need at least {lists} training rows, got {rows}"),
        ));
    }
    if lists > u32::MAX as usize {
        return Err(Error::value("lists", "must be below 2³²"));
    }
    Ok(())
}

/// Rows grouped by list, each group in row order.
pub(crate) struct Members {
    /// Rows of list `l`: `rows[starts[l]..starts[l + 1]]`.
    pub starts: Vec<usize>,
    pub rows: Vec<u32>,
}

/// A counting sort of the rows by their list.
pub(crate) fn group_by_list(assignment: &[u32], lists: usize) -> Members {
    let mut starts = vec![0usize; lists + 1];
    for &a in assignment {
        starts[a as usize + 1] += 1;
    }
    for l in 0..lists {
        starts[l + 1] += starts[l];
    }
    let mut next = starts.clone();
    let mut rows = vec![0u32; assignment.len()];
    for (r, &a) in assignment.iter().enumerate() {
        rows[next[a as usize]] = r as u32;
        next[a as usize] += 1;
    }
    Members { starts, rows }
}

/// The normalised mean of `members` (f64 sums in row order); unchanged
/// when there are none or they sum to zero.
fn update_centroid(x: &[f32], dim: usize, members: &[u32], c: &mut [f32]) {
    if members.is_empty() {
        return;
    }
    let mut sum = vec![0.0f64; dim];
    for &r in members {
        for (s, &v) in sum.iter_mut().zip(&x[r as usize * dim..][..dim]) {
            *s += f64::from(v);
        }
    }
    let norm = sum.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        for (c, s) in c.iter_mut().zip(&sum) {
            *c = (s / norm) as f32;
        }
    }
}

/// Gives every empty cluster half of the largest one (in list order; ties to
/// the lower list), as faiss does with a deterministic choice.
fn split_empty(centroids: &mut [f32], sizes: &mut [usize], dim: usize) {
    for empty in 0..sizes.len() {
        if sizes[empty] != 0 {
            continue;
        }
        let largest = argmax_usize(sizes);
        if sizes[largest] < 2 {
            return; // nothing left to split
        }
        let (a, b) = (empty.min(largest), empty.max(largest));
        let (lo, hi) = centroids.split_at_mut(b * dim);
        let (from, to) = if largest < empty {
            (&mut lo[a * dim..][..dim], &mut hi[..dim])
        } else {
            (&mut hi[..dim], &mut lo[a * dim..][..dim])
        };
        for (j, (f, t)) in from.iter_mut().zip(to.iter_mut()).enumerate() {
            let up = if j % 2 == 0 { 1.0 + SPLIT_EPS } else { 1.0 - SPLIT_EPS };
            let down = 2.0 - up;
            *t = *f * up;
            *f *= down;
        }
        normalise_row(from);
        normalise_row(to);
        sizes[empty] = sizes[largest] / 2;
        sizes[largest] -= sizes[empty];
    }
}

fn argmax_usize(v: &[usize]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
