//! Asymmetric search (SPEC §8): float queries scored against packed codes by
//! the cosine between the query and the code's reconstruction x̂.
//!
//! Two stages. A fast scan sums per query one u8 lookup table per code
//! nibble (two dimensions, 16 entries, indexed by the raw Gray nibble) over
//! the fast-scan block layout; each table entry is off by at most a known
//! amount, so the integer sum brackets every row's exact score between a
//! lower and an upper bound. A row whose upper bound is below the k-th best
//! lower bound cannot be in the top k; every other row is a candidate, and
//! the candidates are re-scored exactly (f64, SPEC §8) and the top k taken by
//! (exact score, tie key). The integers only choose candidates, so the result
//! is the exact top-k on every backend and thread count.

use crate::check::{check_len, check_rows};
use crate::codes::code_width;
use crate::decode::{ByteSquares, Reconstruction};
use crate::error::{with_capacity, Error, Result};
use crate::kernels::scalar_asym::{fast_scan_blocks, PairProducts, BLOCK_ROWS, LUT_MAX, QUERY_GROUP};
use crate::kernels::Kernels;
use crate::keys::check_padding;
use crate::search::{flag_bits, result_columns, RowScope};
use rayon::prelude::*;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

/// Rows laid out and scanned together: 32 blocks, ~96 KB of 384-d codes (stays in L2).
const CHUNK_ROWS: usize = 32 * BLOCK_ROWS;
/// With fewer queries than threads, the rows are split into shards of at
/// least this many rows (a multiple of [`CHUNK_ROWS`]).
const SHARD_MIN_ROWS: usize = 64 * CHUNK_ROWS;
/// Relative slack added to each query's error bound: covers the f32 and f64
/// rounding of the bound computations (each far below 1e-6 relative).
const BOUND_SLACK: f64 = 1e-5;

/// Candidates re-scored exactly by every search so far (for measurements).
static RESCORED: AtomicU64 = AtomicU64::new(0);

/// How many candidate rows asymmetric searches have re-scored exactly since
/// the process started (a measurement aid, not a stable API).
#[doc(hidden)]
pub fn asym_rescored_total() -> u64 {
    RESCORED.load(AtomicOrdering::Relaxed)
}

/// One query prepared for the fast scan.
pub(crate) struct QueryTables {
    /// 32 bytes per code byte: the high-nibble table, then the low-nibble one.
    luts: Vec<u8>,
    /// dot(q/‖q‖, x̂) ≈ bias + scale · sum, off by at most `err`.
    scale: f64,
    bias: f64,
    err: f64,
    /// ‖q‖ in f64 (0: every score is 0).
    norm: f64,
}

impl QueryTables {
    /// A placeholder holding nothing (what a moved-out slot keeps).
    fn none() -> QueryTables {
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
    /// The entries are the [`pair_terms`] values `v` of each pair m quantised
    /// above the pair's minimum `lo_m`; as `v = first + second` (f64 sums of
    /// the two dimensions' products) and rounded addition is monotone in
    /// each operand, `lo_m` and the pair's maximum are the sums of the
    /// products' minima and maxima: found without forming the 16 values.
    pub(crate) fn new(kernels: &Kernels, q: &[f32], table: &Reconstruction) -> QueryTables {
        QueryTables::with_products(kernels, q, table).0
    }

    /// [`QueryTables::new`], and the query's [`PairProducts`] the tables
    /// quantise (empty for a zero query): [`pair_values`] scores
    /// rows exactly from them, without building [`pair_terms`].
    fn with_products(kernels: &Kernels, q: &[f32], table: &Reconstruction) -> (QueryTables, Vec<PairProducts>) {
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
    fn approx(&self, sum: u32) -> f64 {
        self.bias + self.scale * f64::from(sum)
    }
}

/// ‖q‖ in f64, squares summed in dimension order (SPEC §8).
fn query_norm(q: &[f32]) -> f64 {
    q.iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .fold(0.0, |a, b| a + b)
        .sqrt()
}

/// An f64 ordered by `total_cmp` (the bounds are never NaN).
#[derive(Clone, Copy, PartialEq)]
struct Bound(f64);
impl Eq for Bound {}
impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bound {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// What the scan of one query keeps: the `k` largest lower bounds, the
/// k-th best of k exact scores when a scan started from them, and the rows
/// whose upper bound reached the bound when they were seen.
struct Candidates {
    k: usize,
    lower: BinaryHeap<Reverse<Bound>>,
    /// The k-th best exact score of k scored rows (−∞: none scored).
    floor: f64,
    rows: Vec<(u32, f64)>,
}

/// One query's exact score (SPEC §8) of a row, by its number in the scan.
type ExactScore<'s> = dyn FnMut(u32) -> f64 + 's;

/// The largest `k` for which a scan that can score rows exactly starts
/// from k exact scores ([`Candidates::start_from_exact`]) instead of
/// seeding its bound from every row's lower bound: each costs about as
/// much as seeding 20 rows.
const EXACT_START_MAX_K: usize = 32;

impl Candidates {
    fn new(k: usize) -> Self {
        Candidates {
            k,
            lower: BinaryHeap::with_capacity(k + 1),
            floor: f64::NEG_INFINITY,
            rows: Vec::new(),
        }
    }

    /// The larger of the k-th largest lower bound so far (−∞ before k rows
    /// were offered) and the floor: the k-th best exact score is at least
    /// each (both count each row once, and any k rows' k-th best is at most
    /// the k-th best of all).
    #[inline(always)]
    fn bound(&self) -> f64 {
        let lower = if self.lower.len() < self.k {
            f64::NEG_INFINITY
        } else {
            self.lower.peek().map_or(f64::NEG_INFINITY, |b| b.0 .0)
        };
        lower.max(self.floor)
    }

    #[inline]
    fn offer(&mut self, row: u32, lo: f64, hi: f64) {
        if hi < self.bound() {
            return;
        }
        self.rows.push((row, hi));
        if self.lower.len() < self.k {
            self.lower.push(Reverse(Bound(lo)));
        } else if lo > self.bound() {
            self.lower.pop();
            self.lower.push(Reverse(Bound(lo)));
        }
        if self.rows.len() >= 4 * self.k + 4096 {
            self.prune();
        }
    }

    /// The first rows of a scan, before any bound exists: the k largest
    /// lower bounds among them make the bound, then every row whose upper
    /// bound reaches it is kept (each row's lower bound enters once).
    fn seed(&mut self, rows: impl Iterator<Item = (u32, f64, f64)>) {
        let rows: Vec<(u32, f64, f64)> = rows.collect();
        for &(_, lo, _) in &rows {
            if self.lower.len() < self.k {
                self.lower.push(Reverse(Bound(lo)));
            } else if lo > self.bound() {
                self.lower.pop();
                self.lower.push(Reverse(Bound(lo)));
            }
        }
        let bound = self.bound();
        self.rows.extend(
            rows.into_iter()
                .filter(|&(_, _, hi)| hi >= bound)
                .map(|(r, _, hi)| (r, hi)),
        );
    }

    /// Starts the bound from exact scores: `exact(i)` of the k rows `i`
    /// that `allowed` lets through with the largest approximate scores
    /// (`qt`'s approximation of `sums[i]` over `norms[i]`) become the
    /// floor, the k-th best exact score's own lower bound. That is about the
    /// tables' error above the k-th largest lower bound seeding would give
    /// (a lower bound is the approximation less the error), so the scan
    /// offers and keeps about half as many rows, and no row's bounds are
    /// computed before the bound is known. False (nothing done) with fewer
    /// than k rows allowed or k above [`EXACT_START_MAX_K`].
    fn start_from_exact(
        &mut self,
        qt: &QueryTables,
        sums: &[u32],
        norms: &[f32],
        allowed: impl Fn(usize) -> bool,
        mut exact: impl FnMut(usize) -> f64,
    ) -> bool {
        let k = self.k;
        if k == 0 || k > EXACT_START_MAX_K {
            return false;
        }
        // Only which rows are scored depends on these f32 approximations.
        let (scale, bias) = (qt.scale as f32, qt.bias as f32);
        let score = |i: usize| {
            if norms[i] == 0.0 {
                0.0
            } else {
                (sums[i] as f32 * scale + bias) / norms[i]
            }
        };
        // The k best so far, and the worst of them (−∞ until there are k).
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k);
        let mut worst = (f32::NEG_INFINITY, 0usize);
        let worst_of = |best: &[(f32, usize)]| {
            best.iter().enumerate().fold(
                (f32::INFINITY, 0usize),
                |w, (j, &(v, _))| if v < w.0 { (v, j) } else { w },
            )
        };
        for (i, (&sum, &n)) in sums.iter().zip(norms).enumerate() {
            // score > worst without the division (the norm is positive),
            // which most rows fail once k are held.
            let above = if n > 0.0 {
                sum as f32 * scale + bias > worst.0 * n
            } else {
                0.0 > worst.0
            };
            if !above || !allowed(i) {
                continue;
            }
            if best.len() < k {
                best.push((score(i), i));
                if best.len() < k {
                    continue;
                }
            } else {
                best[worst.1] = (score(i), i);
            }
            worst = worst_of(&best);
        }
        if best.len() < k {
            return false;
        }
        self.floor = best.iter().map(|&(_, i)| exact(i)).fold(f64::INFINITY, f64::min);
        true
    }

    /// Drops the rows that can no longer reach the top k.
    fn prune(&mut self) {
        let bound = self.bound();
        self.rows.retain(|&(_, hi)| hi >= bound);
    }

    /// Merges another shard's candidates of the same query.
    fn merge(&mut self, other: Candidates) {
        self.floor = self.floor.max(other.floor);
        for Reverse(b) in other.lower {
            if self.lower.len() < self.k {
                self.lower.push(Reverse(b));
            } else if b.0 > self.bound() {
                self.lower.pop();
                self.lower.push(Reverse(b));
            }
        }
        self.rows.extend(other.rows);
    }
}

/// Codes to search: row-major (`code_width(dim)` bytes a row), or already
/// in the fast-scan layout of [`FastScanCodes`].
#[derive(Clone, Copy)]
pub(crate) enum CodesRef<'a> {
    RowMajor(&'a [u8]),
    FastScan(&'a FastScanCodes),
    /// Bytes in the fast-scan layout (whole blocks), e.g. one inverted list.
    Blocks(&'a [u8], usize),
}

/// Packed codes kept in the fast-scan layout (SPEC §8): byte `b` of 32 rows
/// side by side, `⌈rows/32⌉·32·code_width(dim)` bytes, padding rows zero.
/// Searching them skips the per-search re-layout of row-major codes (which
/// costs about as much as the scan itself for one query); re-ranking reads
/// each candidate's bytes back from the blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct FastScanCodes {
    dim: usize,
    rows: usize,
    blocks: Vec<u8>,
}

impl FastScanCodes {
    /// Lays out `(rows, code_width(dim))` row-major codes.
    pub fn new(codes: &[u8], dim: usize) -> Result<FastScanCodes> {
        crate::encode::quantize::check_dim(dim)?;
        let width = code_width(dim);
        let rows = check_rows("codes", codes.len(), width)?;
        check_padding(codes, dim)?;
        let padded = rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
        let mut blocks = with_capacity("FastScanCodes", "the fast-scan layout", padded, width)?;
        blocks.resize(padded * width, 0);
        fast_scan_blocks(codes, width, &mut blocks);
        Ok(FastScanCodes { dim, rows, blocks })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The layout's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.blocks
    }

    /// Row `row`'s code into `out` (`code_width(dim)` bytes; `row < rows`).
    pub(crate) fn code_into(&self, row: usize, out: &mut [u8]) {
        block_code_into(&self.blocks, row, out);
    }
}

/// Row `row`'s code out of fast-scan `blocks` into `out` (`code_width(dim)`
/// bytes; the row's block must be whole in `blocks`).
pub(crate) fn block_code_into(blocks: &[u8], row: usize, out: &mut [u8]) {
    let width = out.len();
    let block = &blocks[(row / BLOCK_ROWS) * BLOCK_ROWS * width..][..BLOCK_ROWS * width];
    // Every 32nd byte from the row's own (a strided iterator: no bounds check per byte).
    for (o, &v) in out.iter_mut().zip(block[row % BLOCK_ROWS..].iter().step_by(BLOCK_ROWS)) {
        *o = v;
    }
}

/// The rows being searched: their codes, norms and the scope.
struct Database<'a> {
    codes: CodesRef<'a>,
    width: usize,
    rows: usize,
    /// ‖x̂‖ per row as f32 (given, or computed per chunk when `None`).
    norms: Option<&'a [f32]>,
    /// (min, max) of every row's norm, when known (else computed per chunk):
    /// saves reading each chunk's norms before its rows pass the pre-test.
    norm_range: Option<(f32, f32)>,
    squares: &'a ByteSquares,
    /// [`pair_squares`] of the table.
    pair_squares: &'a [f64],
    scope: RowScope<'a>,
    /// Added to every row number offered to the candidates (several
    /// databases feeding one query's candidates number their rows apart).
    base: u32,
}

impl Database<'_> {
    fn allowed(&self, row: usize) -> bool {
        self.scope.mask.is_none_or(|m| m[row / 8] >> (row % 8) & 1 == 1)
    }
    fn key(&self, row: usize) -> u64 {
        self.scope.tie_keys.map_or(row as u64, |k| k[row])
    }

    /// Row `row`'s code: borrowed, or gathered into `buf` (`width` bytes).
    fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8] {
        match self.codes {
            CodesRef::RowMajor(c) => &c[row * self.width..][..self.width],
            CodesRef::FastScan(f) => {
                f.code_into(row, buf);
                buf
            }
            CodesRef::Blocks(b, _) => {
                block_code_into(b, row, buf);
                buf
            }
        }
    }
}

impl PairProducts {
    #[inline(always)]
    fn new(q: &[f32], q_norm: f64, table: &Reconstruction, m: usize) -> PairProducts {
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
/// the query's [`PairProducts`]: with [`SharedTables`]' squares,
/// [`exact_score_of_values`] gives [`exact_score`]'s scores without the
/// interleaved terms (half their bytes to write, for a few rows).
fn pair_values(products: &[PairProducts]) -> Vec<f64> {
    let mut values = Vec::with_capacity(16 * products.len());
    for p in products {
        values.extend_from_slice(&p.values());
    }
    values
}

/// [`exact_score`] of the terms [`pair_terms`] would build (the same f64
/// values, summed in the same order: the same score), from [`pair_values`]
/// and [`pair_squares`] side by side.
fn exact_score_of_values(values: &[f64], pair_squares: &[f64], code: &[u8]) -> f64 {
    exact_score_with(code, |i| [values[i], pair_squares[i]])
}

/// [`exact_score`] with `term(16·m + n)` giving pair m's `[value, square]` for nibble n.
#[inline(always)]
fn exact_score_with(code: &[u8], term: impl Fn(usize) -> [f64; 2]) -> f64 {
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

/// Scans rows `first..last` (`first` a multiple of [`CHUNK_ROWS`]) for every
/// query, offering each row to the query's candidates.
fn scan_rows(
    kernels: &Kernels,
    db: &Database<'_>,
    queries: &[QueryTables],
    first: usize,
    last: usize,
    cands: &mut [Candidates],
) {
    scan_rows_with(
        kernels,
        db,
        queries,
        first,
        last,
        cands,
        &mut ScanBuffers::default(),
        None,
    );
}

/// The working buffers of [`scan_rows_with`], kept between calls that scan
/// many small row sets (the lists of an inverted file) so each call does
/// not allocate and zero them again.
#[derive(Default)]
struct ScanBuffers {
    blocks: Vec<u8>,
    sums: Vec<u32>,
    norms: Vec<f32>,
}

/// [`scan_rows`] with caller-kept buffers; `exact`: for one query, its
/// exact score of a row, to start from ([`Candidates::start_from_exact`]).
#[allow(clippy::too_many_arguments)]
fn scan_rows_with(
    kernels: &Kernels,
    db: &Database<'_>,
    queries: &[QueryTables],
    first: usize,
    last: usize,
    cands: &mut [Candidates],
    buffers: &mut ScanBuffers,
    mut exact: Option<&mut ExactScore<'_>>,
) {
    debug_assert!(exact.is_none() || queries.len() == 1, "an exact scorer is one query's");
    let width = db.width;
    let ScanBuffers { blocks, sums, norms } = buffers;
    // The re-layout buffer of row-major codes only (fast-scan codes are read in place).
    if let CodesRef::RowMajor(_) = db.codes {
        blocks.resize(CHUNK_ROWS * width, 0);
    }
    let chunk_rows = (last - first).min(CHUNK_ROWS).div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
    let group = queries.len().min(QUERY_GROUP);
    // Every buffer is written before it is read in each chunk: no zeroing needed between calls.
    sums.resize(sums.len().max(group * chunk_rows), 0);
    norms.resize(norms.len().max(chunk_rows), 0.0);
    let mut start = first;
    while start < last {
        let end = (start + CHUNK_ROWS).min(last);
        let count = end - start;
        let padded = count.div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
        let chunk_blocks: &[u8] = match db.codes {
            CodesRef::RowMajor(c) => {
                fast_scan_blocks(&c[start * width..end * width], width, &mut blocks[..padded * width]);
                &blocks[..padded * width]
            }
            // `start` is a multiple of 32: the chunk's blocks are whole.
            CodesRef::FastScan(f) => &f.blocks[start * width..][..padded * width],
            CodesRef::Blocks(b, _) => &b[start * width..][..padded * width],
        };
        let norms = match db.norms {
            Some(n) => &n[start..end],
            None => {
                let mut buf = vec![0u8; width];
                for (i, o) in norms[..count].iter_mut().enumerate() {
                    *o = db.squares.norm(db.code(start + i, &mut buf));
                }
                &norms[..count]
            }
        };
        let norm_range = db.norm_range.unwrap_or_else(|| norm_range(norms));
        // The offers read the norms of scattered rows after the scan: ask for
        // them now so they arrive while the kernel runs.
        prefetch(norms);
        let asym_scan = match db.codes {
            CodesRef::Blocks(..) => kernels.asym_scan_lists, // an inverted list
            _ => kernels.asym_scan,
        };
        for (g, group) in queries.chunks(QUERY_GROUP).enumerate() {
            let q0 = g * QUERY_GROUP;
            let sums = &mut sums[..group.len() * padded];
            // Each query's tables where they are (copying them side by side
            // cost 4 % of an inverted file's search, whose queries share sets).
            let mut tables: [&[u8]; QUERY_GROUP] = [&[]; QUERY_GROUP];
            for (t, qt) in tables.iter_mut().zip(group) {
                *t = &qt.luts;
            }
            asym_scan(&tables[..group.len()], width, chunk_blocks, sums);
            for ((qt, c), sums) in group.iter().zip(&mut cands[q0..]).zip(sums.chunks_exact(padded)) {
                if qt.norm == 0.0 {
                    continue; // every score is 0: chosen by key at the end
                }
                offer_chunk(
                    db,
                    qt,
                    c,
                    start,
                    &sums[..count],
                    norms,
                    norm_range,
                    exact.as_deref_mut(),
                );
            }
        }
        start = end;
    }
}

/// (min, max) of `norms` ((+∞, 0) when empty).
pub(crate) fn norm_range(norms: &[f32]) -> (f32, f32) {
    norms
        .iter()
        .fold((f32::INFINITY, 0.0f32), |(lo, hi), &n| (lo.min(n), hi.max(n)))
}

/// Offers the rows `start..start + sums.len()` of one chunk to a query's
/// candidates, given their integer sums, norms and the norms' (min, max);
/// the first chunk starts the bound from `exact` scores when it can.
#[allow(clippy::too_many_arguments)]
fn offer_chunk(
    db: &Database<'_>,
    qt: &QueryTables,
    c: &mut Candidates,
    start: usize,
    sums: &[u32],
    norms: &[f32],
    norm_range: (f32, f32),
    exact: Option<&mut ExactScore<'_>>,
) {
    let bounds = |i: usize| {
        let a = qt.approx(sums[i]);
        let n = f64::from(norms[i]);
        if n == 0.0 {
            (0.0, 0.0)
        } else {
            ((a - qt.err) / n, (a + qt.err) / n)
        }
    };
    if c.bound() == f64::NEG_INFINITY {
        let started = exact.is_some_and(|exact| {
            c.start_from_exact(
                qt,
                sums,
                norms,
                |i| db.allowed(start + i),
                |i| exact(db.base + (start + i) as u32),
            )
        });
        if !started {
            c.seed((0..sums.len()).filter(|&i| db.allowed(start + i)).map(|i| {
                let (lo, hi) = bounds(i);
                (db.base + (start + i) as u32, lo, hi)
            }));
            return;
        }
    }
    // hi ≥ bound ⇔ approx + err ≥ bound·‖x̂‖, in f32 with margins that only
    // let more rows through (a stale bound is lower, too). Sums are < 2³¹.
    let bound = c.bound();
    // An integer pre-test per 16 rows: a row can pass only if its sum
    // reaches what the chunk's smallest (largest, for a negative bound) norm
    // needs; the margins make it looser than the test below.
    let norm = f64::from(if bound >= 0.0 { norm_range.0 } else { norm_range.1 });
    let need = bound * norm;
    let top64 = qt.bias + qt.err;
    let least = ((need - need.abs() * 1e-5 - top64 - top64.abs() * 1e-5) / qt.scale).floor() - 1.0;
    if least >= f64::from(i32::MAX) {
        return; // no row of this chunk can reach the bound
    }
    let least = least.max(-1.0) as i32;
    let bound32 = (bound - 1e-6 * bound.abs()) as f32;
    let (scale, top) = (qt.scale as f32, (qt.bias + qt.err) as f32);
    for (g, group) in sums.chunks(16).enumerate() {
        // Sums are < 2³¹; a fold (no early exit) vectorises.
        if !group.iter().fold(false, |any, &s| any | (s as i32 > least)) {
            continue;
        }
        // The row test as 0/1 bytes (vectorises), then one bit per row:
        // only the rows that pass are visited.
        let mut pass = [0u8; 16];
        for ((p, &s), &n) in pass.iter_mut().zip(group).zip(&norms[16 * g..]) {
            let t = bound32 * n;
            *p = u8::from((s as i32) as f32 * scale + top >= t - t.abs() * 1e-6);
        }
        let mut bits = flag_bits(pass);
        while bits != 0 {
            let i = 16 * g + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if db.allowed(start + i) {
                let (lo, hi) = bounds(i);
                c.offer(db.base + (start + i) as u32, lo, hi);
            }
        }
    }
}

/// How many candidates ahead [`finish`] and [`KeptRows::best`] prefetch a code.
const PREFETCH_AHEAD: usize = 8;

/// Asks for every cache line `items` spans (one address per 48 bytes, and
/// its last byte), so the candidates' scattered codes arrive while earlier
/// ones are scored. A hint only: no effect on any result.
#[inline(always)]
fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(items);
        let first = items.as_ptr().cast::<u8>();
        for off in (0..bytes).step_by(48).chain(bytes.checked_sub(1)) {
            // SAFETY: CPU: SSE (part of every x86-64); PREFETCHT0 never faults,
            // and `off < bytes` keeps the address inside `items` anyway.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(first.add(off).cast::<i8>());
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}

/// What [`finish`] reads of the rows a query's candidates were numbered in.
trait ScannedRows {
    /// Rows numbered `0..rows()`.
    fn rows(&self) -> usize;
    fn allowed(&self, row: usize) -> bool;
    fn key(&self, row: usize) -> u64;
    /// Row `row`'s code: borrowed, or gathered into `buf` (`width` bytes).
    fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8];
    /// A hint that row `row`'s code is read soon.
    fn prefetch(&self, _row: usize) {}
}

impl ScannedRows for Database<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn allowed(&self, row: usize) -> bool {
        Database::allowed(self, row)
    }
    fn key(&self, row: usize) -> u64 {
        Database::key(self, row)
    }
    fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8] {
        Database::code(self, row, buf)
    }
    fn prefetch(&self, row: usize) {
        if let CodesRef::RowMajor(codes) = self.codes {
            prefetch(&codes[row * self.width..][..self.width]);
        }
    }
}

/// The exact top `out.len()` of one query's candidates (or, for a zero
/// query, of every allowed row): writes scores and rows.
#[allow(clippy::too_many_arguments)]
fn finish(
    db: &impl ScannedRows,
    pair_squares: &[f64],
    width: usize,
    table: &Reconstruction,
    q: &[f32],
    qt: &QueryTables,
    mut c: Candidates,
    scores: &mut [f32],
    rows: &mut [i64],
) {
    let mut scored: Vec<(f64, u64, u32)> = if qt.norm == 0.0 {
        (0..db.rows())
            .filter(|&r| db.allowed(r))
            .map(|r| (0.0, db.key(r), r as u32))
            .collect()
    } else {
        c.prune();
        RESCORED.fetch_add(c.rows.len() as u64, AtomicOrdering::Relaxed);
        let terms = pair_terms(q, qt.norm, table, pair_squares);
        c.rows.sort_unstable_by_key(|&(r, _)| r);
        let mut buf = vec![0u8; width];
        (0..c.rows.len())
            .map(|i| {
                if let Some(&(ahead, _)) = c.rows.get(i + PREFETCH_AHEAD) {
                    db.prefetch(ahead as usize);
                }
                let r = c.rows[i].0;
                let score = exact_score(&terms, db.code(r as usize, &mut buf));
                (score, db.key(r as usize), r)
            })
            .collect()
    };
    let order = by_score_then_key;
    let kk = scores.len();
    if scored.len() > kk {
        scored.select_nth_unstable_by(kk - 1, order);
        scored.truncate(kk);
    }
    scored.sort_unstable_by(order);
    for ((s, r), (score, _, row)) in scores.iter_mut().zip(rows.iter_mut()).zip(scored) {
        (*s, *r) = (score as f32, i64::from(row));
    }
}

/// One block set of [`search_asym_lists`]: whole fast-scan blocks of `rows`
/// codes, each row's ‖x̂‖ (as [`crate::row_norms`] computes it) and distinct
/// tie key, and the rows it may return (bit `r % 8` of `mask[r / 8]`; all when `None`).
#[derive(Clone, Copy)]
pub(crate) struct BlockSet<'a> {
    pub blocks: &'a [u8],
    pub rows: usize,
    pub norms: &'a [f32],
    /// [`norm_range`] of `norms`.
    pub norm_range: (f32, f32),
    pub keys: &'a [u64],
    pub mask: Option<&'a [u8]>,
}

/// The per-table values a search over block sets shares between its queries.
#[derive(Debug)]
pub(crate) struct SharedTables {
    squares: ByteSquares,
    pair_squares: Vec<f64>,
}

impl SharedTables {
    pub(crate) fn new(table: &Reconstruction) -> SharedTables {
        SharedTables {
            squares: ByteSquares::new(table),
            pair_squares: pair_squares(table),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        8 * (self.squares.len() + self.pair_squares.capacity())
    }
}

/// Several block sets numbered one after the other.
struct BlockSets<'a> {
    sets: &'a [BlockSet<'a>],
    /// `starts[i]`: the number of set `i`'s first row; one more entry: the total.
    starts: Vec<usize>,
}

impl<'a> BlockSets<'a> {
    /// The sets numbered one after another, in order.
    fn new(sets: &'a [BlockSet<'a>]) -> Self {
        let mut starts = Vec::with_capacity(sets.len() + 1);
        let mut total = 0usize;
        for s in sets {
            starts.push(total);
            total += s.rows;
        }
        starts.push(total);
        BlockSets { sets, starts }
    }

    /// (set, row in it) of a row number.
    fn locate(&self, row: usize) -> (usize, usize) {
        let set = self.starts[..self.sets.len()].partition_point(|&s| s <= row) - 1;
        (set, row - self.starts[set])
    }
}

impl ScannedRows for BlockSets<'_> {
    fn rows(&self) -> usize {
        self.starts[self.sets.len()]
    }
    fn allowed(&self, row: usize) -> bool {
        let (s, r) = self.locate(row);
        self.sets[s].mask.is_none_or(|m| m[r / 8] >> (r % 8) & 1 == 1)
    }
    fn key(&self, row: usize) -> u64 {
        let (s, r) = self.locate(row);
        self.sets[s].keys[r]
    }
    fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8] {
        let (s, r) = self.locate(row);
        block_code_into(self.sets[s].blocks, r, buf);
        buf
    }
}

/// The exact asymmetric top-`k` (SPEC §8) of one finite query `q` among the
/// rows of several block sets, as if they were one database: `(score, set,
/// row)` best first by (score, tie key). The same result as
/// [`search_asym_scoped`] over the sets' rows concatenated with their keys
/// and masks, on every backend. The caller checks the sets' shapes (whole
/// blocks, `rows` norms and keys, `⌈rows/8⌉` mask bytes, norms finite and
/// ≥ 0, fewer than 2³² rows in all).
pub(crate) fn search_asym_lists(
    kernels: &Kernels,
    q: &[f32],
    table: &Reconstruction,
    shared: &SharedTables,
    sets: &[BlockSet<'_>],
    k: usize,
) -> Vec<(f32, usize, usize)> {
    let width = code_width(table.dim());
    let all = BlockSets::new(sets);
    let allowed: usize = sets
        .iter()
        .map(|s| {
            RowScope {
                mask: s.mask,
                tie_keys: None,
            }
            .allowed(s.rows)
        })
        .sum();
    let kk = result_columns(k, allowed);
    if kk == 0 {
        return Vec::new();
    }
    let qt = QueryTables::new(kernels, q, table);
    let mut cands = Candidates::new(kk);
    let mut buffers = ScanBuffers::default();
    if qt.norm != 0.0 {
        for (s, start) in sets.iter().zip(&all.starts) {
            let db = Database {
                codes: CodesRef::Blocks(s.blocks, s.rows),
                width,
                rows: s.rows,
                norms: Some(s.norms),
                norm_range: Some(s.norm_range),
                squares: &shared.squares,
                pair_squares: &shared.pair_squares,
                scope: RowScope {
                    mask: s.mask,
                    tie_keys: Some(s.keys),
                },
                base: *start as u32,
            };
            scan_rows_with(
                kernels,
                &db,
                std::slice::from_ref(&qt),
                0,
                s.rows,
                std::slice::from_mut(&mut cands),
                &mut buffers,
                None,
            );
        }
    }
    let (mut scores, mut rows) = (vec![0f32; kk], vec![0i64; kk]);
    finish(
        &all,
        &shared.pair_squares,
        width,
        table,
        q,
        &qt,
        cands,
        &mut scores,
        &mut rows,
    );
    scores
        .into_iter()
        .zip(rows)
        .map(|(score, row)| {
            let (s, r) = all.locate(row as usize);
            (score, s, r)
        })
        .collect()
}

/// The result order of SPEC §8: score descending (as real numbers: −0 = +0;
/// scores are never NaN), then tie key ascending.
fn by_score_then_key(a: &(f64, u64, u32), b: &(f64, u64, u32)) -> Ordering {
    by_score_then(a.0, b.0, || a.1.cmp(&b.1))
}

/// [`by_score_then_key`] for scores `a` and `b`, with `tie` (the tie keys'
/// order) called only when the scores are equal.
#[inline(always)]
fn by_score_then(a: f64, b: f64, tie: impl FnOnce() -> Ordering) -> Ordering {
    match b.partial_cmp(&a).unwrap_or(Ordering::Equal) {
        Ordering::Equal => tie(),
        unequal => unequal,
    }
}

/// `1 − cosine` of an asymmetric score, rounded to f32: the distance the
/// index and the Python API report (monotone, so the order stays).
pub(crate) fn cosine_distance(score: f32) -> f32 {
    (1.0 - f64::from(score)) as f32
}

/// Checks the queries (finite, `dim` wide) and returns their count.
pub(crate) fn check_queries(queries: &[f32], dim: usize) -> Result<usize> {
    let nq = check_rows("queries", queries.len(), dim)?;
    if let Some(at) = queries.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            arg: "queries",
            row: at / dim,
            col: at % dim,
            value: f64::from(queries[at]),
        });
    }
    Ok(nq)
}

/// Exact top-`k` of each float query among `(rows, code_width(dim))` packed
/// codes by the cosine between the query and the code's reconstruction under
/// `table` (SPEC §8). `norms`: each row's ‖x̂‖ as [`crate::row_norms`] wrote
/// it (computed here when `None`; other values may drop rows from the
/// result, never anything worse). Writes `min(k, rows)` columns per query
/// into `scores` (cosine similarity as f32, best first) and `rows` (ties by
/// lower row) and returns that column count. Codes with nonzero padding
/// bits are an error naming the row.
#[allow(clippy::too_many_arguments)]
pub fn search_asym(
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    search_asym_with(Kernels::active(), queries, codes, dim, table, norms, k, scores, rows)
}

/// [`search_asym`] with the given kernels (for comparing backends).
#[allow(clippy::too_many_arguments)]
pub fn search_asym_with(
    kernels: &Kernels,
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    if table.dim() == dim {
        // (Another dimension is the table's error, reported by the search.)
        check_rows("codes", codes.len(), code_width(dim))?;
        check_padding(codes, dim)?;
    }
    search_asym_scoped(
        kernels,
        queries,
        CodesRef::RowMajor(codes),
        dim,
        table,
        norms,
        k,
        RowScope::default(),
        scores,
        rows,
    )
}

/// [`search_asym`] over codes already in the fast-scan layout (faster for
/// few queries: no per-search re-layout). Same results as [`search_asym`]
/// on the row-major codes.
#[allow(clippy::too_many_arguments)]
pub fn search_asym_fast_scan(
    queries: &[f32],
    codes: &FastScanCodes,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    search_asym_fast_scan_with(Kernels::active(), queries, codes, table, norms, k, scores, rows)
}

/// [`search_asym_fast_scan`] with the given kernels.
#[allow(clippy::too_many_arguments)]
pub fn search_asym_fast_scan_with(
    kernels: &Kernels,
    queries: &[f32],
    codes: &FastScanCodes,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    let dim = table.dim();
    search_asym_scoped(
        kernels,
        queries,
        CodesRef::FastScan(codes),
        dim,
        table,
        norms,
        k,
        RowScope::default(),
        scores,
        rows,
    )
}

/// [`search_asym_with`] restricted to `scope` (allowed rows, tie keys).
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_asym_scoped(
    kernels: &Kernels,
    queries: &[f32],
    codes: CodesRef<'_>,
    dim: usize,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
    scope: RowScope<'_>,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    table.check_dim(dim)?;
    if k == 0 {
        return Err(Error::value("k", "must be at least 1"));
    }
    let width = code_width(dim);
    let nq = check_queries(queries, dim)?;
    let n = match codes {
        CodesRef::RowMajor(c) => check_rows("codes", c.len(), width)?,
        CodesRef::FastScan(f) => {
            if f.dim != dim {
                return Err(Error::shape(
                    "codes",
                    format!("codes of {dim} dimensions"),
                    format!("{} dimensions", f.dim),
                ));
            }
            f.rows
        }
        CodesRef::Blocks(b, rows) => {
            check_len("codes", b.len(), rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * width)?;
            rows
        }
    };
    if n > u32::MAX as usize {
        return Err(Error::shape("codes", "at most 2³² − 1 rows", n));
    }
    if let Some(norms) = norms {
        check_len("norms", norms.len(), n)?;
        if let Some(at) = norms.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::value(
                "norms",
                format!("row {at} holds {}; norms are finite and ≥ 0", norms[at]),
            ));
        }
    }
    if let Some(m) = scope.mask {
        check_len("mask", m.len(), n.div_ceil(8))?;
    }
    if let Some(keys) = scope.tie_keys {
        check_len("keys", keys.len(), n)?;
    }
    let kk = result_columns(k, scope.allowed(n));
    let cells = nq
        .checked_mul(kk)
        .ok_or_else(|| Error::shape("scores", format!("{nq} × {kk} elements"), "no buffer that large"))?;
    check_len("scores", scores.len(), cells)?;
    check_len("indices", rows.len(), cells)?;
    if nq == 0 || kk == 0 {
        return Ok(kk);
    }
    let (squares, pair_squares) = (ByteSquares::new(table), pair_squares(table));
    let db = Database {
        codes,
        width,
        rows: n,
        norms,
        norm_range: None,
        squares: &squares,
        pair_squares: &pair_squares,
        scope,
        base: 0,
    };
    let threads = rayon::current_num_threads().max(1);
    if nq < threads && n >= 2 * SHARD_MIN_ROWS {
        // Few queries, many rows: shard the rows, merge each query's candidates.
        let tables: Vec<QueryTables> = queries
            .chunks_exact(dim)
            .map(|q| QueryTables::new(kernels, q, table))
            .collect();
        let shard = n.div_ceil(threads).max(SHARD_MIN_ROWS).next_multiple_of(CHUNK_ROWS);
        let shards: Vec<Vec<Candidates>> = (0..n.div_ceil(shard))
            .into_par_iter()
            .map(|s| {
                let mut cands: Vec<Candidates> = (0..nq).map(|_| Candidates::new(kk)).collect();
                scan_rows(kernels, &db, &tables, s * shard, ((s + 1) * shard).min(n), &mut cands);
                cands
            })
            .collect();
        let mut merged: Vec<Candidates> = (0..nq).map(|_| Candidates::new(kk)).collect();
        for shard in shards {
            for (m, c) in merged.iter_mut().zip(shard) {
                m.merge(c);
            }
        }
        queries
            .par_chunks_exact(dim)
            .zip(tables.par_iter())
            .zip(merged.into_par_iter())
            .zip(scores.par_chunks_mut(kk).zip(rows.par_chunks_mut(kk)))
            .for_each(|(((q, qt), c), (s, r))| finish(&db, db.pair_squares, width, table, q, qt, c, s, r));
        return Ok(kk);
    }
    let per = nq.div_ceil(threads).clamp(1, 1024);
    queries
        .par_chunks(per * dim)
        .zip(scores.par_chunks_mut(per * kk).zip(rows.par_chunks_mut(per * kk)))
        .for_each(|(chunk, (s, r))| {
            let tables: Vec<QueryTables> = chunk
                .chunks_exact(dim)
                .map(|q| QueryTables::new(kernels, q, table))
                .collect();
            let mut cands: Vec<Candidates> = (0..tables.len()).map(|_| Candidates::new(kk)).collect();
            scan_rows(kernels, &db, &tables, 0, n, &mut cands);
            for ((((q, qt), c), s), r) in chunk
                .chunks_exact(dim)
                .zip(&tables)
                .zip(cands)
                .zip(s.chunks_exact_mut(kk))
                .zip(r.chunks_exact_mut(kk))
            {
                finish(&db, db.pair_squares, width, table, q, qt, c, s, r);
            }
        });
    Ok(kk)
}

/// The two-stage path: re-ranks each query's candidate rows (e.g. a Lee
/// search's top hits) exactly by the asymmetric score of SPEC §8.
/// `candidates` is `(queries, c)` row-major; `-1` entries are skipped,
/// repeated rows count once, other rows must be in `0..rows`. Writes
/// `min(k, c)` columns per query (best first, ties by lower row); columns
/// past a query's distinct candidates get score −∞ and row −1. Returns the
/// column count.
#[allow(clippy::too_many_arguments)]
pub fn rerank_asym(
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    candidates: &[i64],
    k: usize,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    rerank_asym_scoped(queries, codes, dim, table, candidates, k, None, scores, rows)
}

/// [`rerank_asym`] with ties by `tie_keys[row]` (distinct) instead of by row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rerank_asym_scoped(
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    candidates: &[i64],
    k: usize,
    tie_keys: Option<&[u64]>,
    scores: &mut [f32],
    rows: &mut [i64],
) -> Result<usize> {
    table.check_dim(dim)?;
    if k == 0 {
        return Err(Error::value("k", "must be at least 1"));
    }
    let width = code_width(dim);
    let nq = check_queries(queries, dim)?;
    let n = check_rows("codes", codes.len(), width)?;
    check_padding(codes, dim)?;
    if let Some(keys) = tie_keys {
        check_len("keys", keys.len(), n)?;
    }
    let c = if nq == 0 {
        if !candidates.is_empty() {
            return Err(Error::shape(
                "candidates",
                "no candidates for no queries",
                candidates.len(),
            ));
        }
        0
    } else {
        if !candidates.len().is_multiple_of(nq) {
            return Err(Error::shape(
                "candidates",
                format!("{nq} rows of candidates"),
                candidates.len(),
            ));
        }
        candidates.len() / nq
    };
    if let Some(at) = candidates.iter().position(|&r| r < -1 || r >= n as i64) {
        return Err(Error::value(
            "candidates",
            format!(
                "query {} holds row {}; candidates are rows 0..{n} or -1",
                at / c.max(1),
                candidates[at]
            ),
        ));
    }
    let kk = k.min(c);
    let cells = nq * kk; // ≤ candidates.len()
    check_len("scores", scores.len(), cells)?;
    check_len("indices", rows.len(), cells)?;
    if cells == 0 {
        return Ok(kk);
    }
    let key = |r: usize| tie_keys.map_or(r as u64, |k| k[r]);
    let squares = pair_squares(table);
    queries
        .par_chunks_exact(dim)
        .zip(candidates.par_chunks_exact(c))
        .zip(scores.par_chunks_mut(kk).zip(rows.par_chunks_mut(kk)))
        .try_for_each(|((q, cand), (s, r))| -> Result<()> {
            let q_norm = query_norm(q);
            let terms = pair_terms(q, q_norm, table, &squares);
            let mut scored: Vec<(f64, u64, u32)> = with_capacity("rerank_asym", "the candidate scores", c, 1)?;
            let mut distinct: Vec<usize> = cand.iter().filter(|&&r| r >= 0).map(|&r| r as usize).collect();
            distinct.sort_unstable();
            distinct.dedup();
            for row in distinct {
                let code = &codes[row * width..][..width];
                let score = if q_norm == 0.0 { 0.0 } else { exact_score(&terms, code) };
                scored.push((score, key(row), row as u32));
            }
            scored.sort_unstable_by(by_score_then_key);
            s.fill(f32::NEG_INFINITY);
            r.fill(-1);
            for ((s, r), (score, _, row)) in s.iter_mut().zip(r.iter_mut()).zip(scored) {
                (*s, *r) = (score as f32, i64::from(row));
            }
            Ok(())
        })?;
    Ok(kk)
}

/// The candidates of one query of [`search_asym_lists_batch`], each with
/// its code copied out of its set's blocks while they were in cache.
struct KeptRows {
    /// (upper bound, set, row), in the order they were kept.
    rows: Vec<(f64, u32, u32)>,
    /// Their codes, `width` bytes each, in the same order.
    codes: Vec<u8>,
}

/// Rows [`KeptRows`] makes room for at first: a query of an inverted file
/// at 1 M rows keeps ≈ 150 (measured at nprobe 24), so its codes grow by at
/// most one copy, not the eight of doubling from empty (1.5 % of a search).
const KEPT_ROWS_RESERVED: usize = 128;

impl KeptRows {
    fn with_capacity(rows: usize, width: usize) -> KeptRows {
        KeptRows {
            rows: Vec::with_capacity(rows),
            codes: Vec::with_capacity(rows * width),
        }
    }

    /// Moves the rows `c` kept from set `s` whose upper bound still reaches
    /// `c`'s bound here, with their codes, keys and set number.
    fn take(&mut self, c: &mut Candidates, set: &BlockSet<'_>, s: usize, width: usize) {
        let bound = c.bound();
        for &(row, hi) in c.rows.iter().filter(|&&(_, hi)| hi >= bound) {
            let row = row as usize;
            self.rows.push((hi, s as u32, row as u32));
            let at = self.codes.len();
            self.codes.resize(at + width, 0);
            block_code_into(set.blocks, row, &mut self.codes[at..]);
        }
        c.rows.clear();
        if self.rows.len() >= 4 * c.k + 4096 {
            self.prune(c.bound(), width);
        }
    }

    /// Drops the rows whose upper bound is below `bound`.
    fn prune(&mut self, bound: f64, width: usize) {
        let mut kept = 0;
        for i in 0..self.rows.len() {
            if self.rows[i].0 >= bound {
                self.rows[kept] = self.rows[i];
                self.codes.copy_within(i * width..(i + 1) * width, kept * width);
                kept += 1;
            }
        }
        self.rows.truncate(kept);
        self.codes.truncate(kept * width);
    }

    /// The exact top `k` of the rows (SPEC §8, best first by (score, key)):
    /// `(score, set, row)`. Rows are scored by decreasing upper bound until
    /// the next upper bound is below the k-th best exact score so far (no
    /// later row can then reach the top `k`).
    fn best(
        self,
        sets: &[BlockSet<'_>],
        terms: &[[f64; 2]],
        bound: f64,
        k: usize,
        width: usize,
    ) -> Vec<(f32, usize, usize)> {
        let mut order: Vec<usize> = (0..self.rows.len()).filter(|&i| self.rows[i].0 >= bound).collect();
        order.sort_unstable_by(|&a, &b| self.rows[b].0.total_cmp(&self.rows[a].0));
        // The k best so far, the k-th on top.
        let mut best: BinaryHeap<LazyKeyHit<'_>> = BinaryHeap::with_capacity(k + 1);
        let mut rescored = 0u64;
        for (j, &i) in order.iter().enumerate() {
            if let Some(&ahead) = order.get(j + PREFETCH_AHEAD) {
                // The codes were copied while their lists were hot, but a
                // chunk's kept codes outgrow the caches before its re-rank.
                prefetch(&self.codes[ahead * width..][..width]);
            }
            let (hi, s, r) = self.rows[i];
            if best.len() == k && best.peek().is_some_and(|kth| hi < kth.score) {
                break;
            }
            rescored += 1;
            let hit = LazyKeyHit {
                score: exact_score(terms, &self.codes[i * width..][..width]),
                keys: sets[s as usize].keys,
                row: r,
                index: i as u32,
            };
            if best.len() < k {
                best.push(hit);
            } else if best.peek().is_some_and(|kth| hit < *kth) {
                best.pop();
                best.push(hit);
            }
        }
        RESCORED.fetch_add(rescored, AtomicOrdering::Relaxed);
        best.into_sorted_vec()
            .into_iter()
            .map(|hit| {
                let (_, s, r) = self.rows[hit.index as usize];
                (hit.score as f32, s as usize, r as usize)
            })
            .collect()
    }
}

/// A re-ranked row ordered by [`by_score_then_key`] (better first, so a
/// max-heap of them holds the worst on top) that reads its tie key only to
/// break an exact tie of scores: the keys of an inverted file's rows are
/// scattered, one likely cache miss each, and ties are rare.
#[derive(Clone, Copy)]
struct LazyKeyHit<'a> {
    score: f64,
    /// The tie keys of the row's set, and its row there.
    keys: &'a [u64],
    row: u32,
    /// Its place among the kept rows.
    index: u32,
}

impl Ord for LazyKeyHit<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        by_score_then(self.score, other.score, || {
            self.keys[self.row as usize].cmp(&other.keys[other.row as usize])
        })
    }
}
impl PartialOrd for LazyKeyHit<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for LazyKeyHit<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for LazyKeyHit<'_> {}

/// [`search_asym_lists`] for several finite queries (`queries`, `Q × dim`)
/// at once, query `i` over the sets `routes[i]` (numbers into `sets`, each
/// at most once; its nearest first, as the inverted file routes). Each query
/// first scans `routes[i][0]` alone, which sets a bound near its final one
/// (measured: half the rows offered and kept, 1.12× the queries/s at 1 M
/// rows, nprobe 24); then each other set is scanned once for all the
/// queries routed to it, [`QUERY_GROUP`] queries per kernel pass, so its
/// codes are read once per group instead of once per query. Per query, `(score, set, row)`
/// (`set` a number into `sets`), exactly what [`search_asym_lists`] returns
/// over that query's sets: the exact re-rank keeps the true top `k`
/// whatever order the sets are scanned in.
///
/// A candidate's code is copied out of its set's blocks right after the
/// set's scan (while they are in cache), and the candidates are scored
/// exactly at the end, by decreasing upper bound, only until no further one
/// can reach the top `k`.
pub(crate) fn search_asym_lists_batch<'a>(
    kernels: &Kernels,
    queries: &[f32],
    table: &Reconstruction,
    shared: &'a SharedTables,
    sets: &[BlockSet<'a>],
    routes: &[Vec<u32>],
    k: usize,
) -> Vec<Vec<(f32, usize, usize)>> {
    let dim = table.dim();
    let width = code_width(dim);
    let allowed = |s: &BlockSet<'_>| {
        RowScope {
            mask: s.mask,
            tie_keys: None,
        }
        .allowed(s.rows)
    };
    let database = |set: &BlockSet<'a>| Database {
        codes: CodesRef::Blocks(set.blocks, set.rows),
        width,
        rows: set.rows,
        norms: Some(set.norms),
        norm_range: Some(set.norm_range),
        squares: &shared.squares,
        pair_squares: &shared.pair_squares,
        scope: RowScope {
            mask: set.mask,
            tie_keys: Some(set.keys),
        },
        base: 0,
    };
    let mut out: Vec<Vec<(f32, usize, usize)>> = (0..routes.len()).map(|_| Vec::new()).collect();
    let mut tables: Vec<QueryTables> = Vec::with_capacity(routes.len());
    let mut cands: Vec<Candidates> = Vec::with_capacity(routes.len());
    let mut kept: Vec<KeptRows> = (0..routes.len())
        .map(|_| KeptRows::with_capacity(KEPT_ROWS_RESERVED, width))
        .collect();
    let mut buffers = ScanBuffers::default();
    let mut code = vec![0u8; width];
    // Per set, the queries routed to it (compressed rows: `first[s]..first[s + 1]`).
    let mut first = vec![0u32; sets.len() + 1];
    for (i, (q, route)) in queries.chunks_exact(dim).zip(routes).enumerate() {
        let (qt, products) = QueryTables::with_products(kernels, q, table);
        let kk = result_columns(k, route.iter().map(|&s| allowed(&sets[s as usize])).sum());
        let mut c = Candidates::new(kk);
        if qt.norm == 0.0 {
            // Every score is 0, chosen by key among the query's own sets.
            let own: Vec<BlockSet<'_>> = route.iter().map(|&s| sets[s as usize]).collect();
            out[i] = search_asym_lists(kernels, q, table, shared, &own, k)
                .into_iter()
                .map(|(score, s, r)| (score, route[s] as usize, r))
                .collect();
        } else if let Some(&s) = route.first().filter(|_| kk > 0) {
            // The nearest set first, alone, and its best rows scored
            // exactly: the bound that leaves is near the final one, so the
            // shared scans below offer and keep few rows (in set order, a
            // query's nearest set may come last).
            let set = &sets[s as usize];
            if set.rows > 0 {
                let mut values = Vec::new(); // built at the first exact score
                let mut exact = |row: u32| {
                    if values.is_empty() {
                        values = pair_values(&products);
                    }
                    block_code_into(set.blocks, row as usize, &mut code);
                    exact_score_of_values(&values, &shared.pair_squares, &code)
                };
                scan_rows_with(
                    kernels,
                    &database(set),
                    std::slice::from_ref(&qt),
                    0,
                    set.rows,
                    std::slice::from_mut(&mut c),
                    &mut buffers,
                    Some(&mut exact),
                );
                kept[i].take(&mut c, set, s as usize, width);
            }
            for &s in route.iter().skip(1) {
                first[s as usize + 1] += 1;
            }
        }
        tables.push(qt);
        cands.push(c);
    }
    for s in 0..sets.len() {
        first[s + 1] += first[s];
    }
    let mut members = vec![0u32; first[sets.len()] as usize];
    let mut fill = first.clone();
    for (i, route) in routes.iter().enumerate() {
        if tables[i].norm != 0.0 && cands[i].k > 0 {
            for &s in route.iter().skip(1) {
                members[fill[s as usize] as usize] = i as u32;
                fill[s as usize] += 1;
            }
        }
    }
    let (mut group_tables, mut group_cands) = (Vec::new(), Vec::new());
    for (s, set) in sets.iter().enumerate() {
        let routed = &members[first[s] as usize..fill[s] as usize];
        if routed.is_empty() || set.rows == 0 {
            continue;
        }
        // Moved out and back (no copy of the tables): the scan takes contiguous slices.
        group_tables.extend(
            routed
                .iter()
                .map(|&i| std::mem::replace(&mut tables[i as usize], QueryTables::none())),
        );
        group_cands.extend(
            routed
                .iter()
                .map(|&i| std::mem::replace(&mut cands[i as usize], Candidates::new(0))),
        );
        scan_rows_with(
            kernels,
            &database(set),
            &group_tables,
            0,
            set.rows,
            &mut group_cands,
            &mut buffers,
            None,
        );
        for ((&i, qt), mut c) in routed.iter().zip(group_tables.drain(..)).zip(group_cands.drain(..)) {
            kept[i as usize].take(&mut c, set, s, width);
            (tables[i as usize], cands[i as usize]) = (qt, c);
        }
    }
    for (i, (((q, qt), c), kept)) in queries.chunks_exact(dim).zip(tables).zip(cands).zip(kept).enumerate() {
        if qt.norm == 0.0 || c.k == 0 {
            continue;
        }
        let terms = pair_terms(q, qt.norm, table, &shared.pair_squares);
        out[i] = kept.best(sets, &terms, c.bound(), c.k, width);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::pack_row;

    /// The scoped search (mask and tie keys, as the index uses it) equals a
    /// naive brute force over the allowed rows ordered by (score, key).
    #[test]
    fn scoped_search_follows_the_mask_and_the_tie_keys() {
        let mut state = 12345u64;
        let mut next = move |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % n as u64) as usize
        };
        for (dim, n) in [(7usize, 300usize), (16, 1000), (33, 2100)] {
            let width = code_width(dim);
            let values: Vec<f32> = (0..dim)
                .flat_map(|_| {
                    let mut v = [0.0f32, 0.5, 1.0, 0.25].map(|x| x - next(3) as f32 * 0.25);
                    v.sort_by(f32::total_cmp);
                    v
                })
                .collect();
            let table = Reconstruction::new(&values, dim).unwrap();
            let mut codes = vec![0u8; n * width];
            for row in codes.chunks_exact_mut(width) {
                let s: Vec<u8> = (0..dim).map(|_| [1u8, 2][next(2)]).collect();
                pack_row(&s, row);
            }
            let mask: Vec<u8> = (0..n.div_ceil(8)).map(|_| next(256) as u8).collect();
            let mut keys: Vec<u64> = (0..n as u64).map(|i| 7 * i + 3).collect();
            for i in (1..n).rev() {
                keys.swap(i, next(i + 1));
            }
            let nq = 3;
            let queries: Vec<f32> = (0..nq * dim).map(|_| next(5) as f32 - 2.0).collect();
            let scope = RowScope {
                mask: Some(&mask),
                tie_keys: Some(&keys),
            };
            for k in [1usize, 10, 5000] {
                let kk = scoped_columns_for(k, n, scope);
                let (mut s, mut r) = (vec![0f32; nq * kk], vec![0i64; nq * kk]);
                for kernels in crate::Backend::supported().into_iter().filter_map(Kernels::for_backend) {
                    search_asym_scoped(
                        kernels,
                        &queries,
                        CodesRef::RowMajor(&codes),
                        dim,
                        &table,
                        None,
                        k,
                        scope,
                        &mut s,
                        &mut r,
                    )
                    .unwrap();
                    for (qi, q) in queries.chunks_exact(dim).enumerate() {
                        let terms = pair_terms(q, query_norm(q), &table, &pair_squares(&table));
                        let mut want: Vec<(f64, u64, u32)> = (0..n)
                            .filter(|&row| mask[row / 8] >> (row % 8) & 1 == 1)
                            .map(|row| {
                                let score = if query_norm(q) == 0.0 {
                                    0.0
                                } else {
                                    exact_score(&terms, &codes[row * width..][..width])
                                };
                                (score, keys[row], row as u32)
                            })
                            .collect();
                        want.sort_by(by_score_then_key);
                        let want: Vec<i64> = want.iter().take(kk).map(|w| i64::from(w.2)).collect();
                        assert_eq!(&r[qi * kk..(qi + 1) * kk], &want[..], "dim {dim} k {k} query {qi}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The batch search over block sets (each set scanned once for all
        /// its queries, candidates re-ranked by decreasing upper bound) on
        /// any thread count and backend returns for every query exactly
        /// what the one-query search returns over that query's sets: rows
        /// repeated within and across sets (equal scores ordered by key),
        /// masks, a zero query and a query routed nowhere included. The
        /// batch starts each query's bound from exact scores up to
        /// `EXACT_START_MAX_K` and seeds it above; the one-query search
        /// always seeds: `k` spans both.
        #[test]
        fn batch_over_sets_equals_each_query_alone(
            seed in 0u64..1_000_000, dim in 2usize..24, k in 1usize..45,
            masked in proptest::bool::ANY, threads in 1usize..4,
        ) {
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |n: usize| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % n as u64) as usize
            };
            let width = code_width(dim);
            let values: Vec<f32> = (0..dim)
                .flat_map(|_| {
                    let mut v = [-1.0f32, -0.25, 0.25, 1.0].map(|x| x + next(3) as f32 * 0.125);
                    v.sort_by(f32::total_cmp);
                    v
                })
                .collect();
            let table = Reconstruction::new(&values, dim).unwrap();
            let shared = SharedTables::new(&table);
            // 7 sets of 0..150 rows; every third row repeats an earlier code.
            let sizes: Vec<usize> = (0..7).map(|s| if s == 3 { 0 } else { next(150) }).collect();
            let mut codes: Vec<Vec<u8>> = Vec::new();
            for &n in &sizes {
                let mut c = vec![0u8; n * width];
                for r in 0..n {
                    if r % 3 == 2 {
                        c.copy_within((r / 2) * width..(r / 2 + 1) * width, r * width);
                    } else {
                        let signs: Vec<u8> = (0..dim).map(|_| next(4) as u8).collect();
                        pack_row(&signs, &mut c[r * width..(r + 1) * width]);
                    }
                }
                codes.push(c);
            }
            let total: usize = sizes.iter().sum();
            let mut keys: Vec<u64> = (0..total as u64).map(|i| 3 * i + 1).collect();
            for i in (1..total).rev() {
                keys.swap(i, next(i + 1));
            }
            let blocks: Vec<Vec<u8>> = codes
                .iter()
                .zip(&sizes)
                .map(|(c, &n)| {
                    let mut b = vec![0u8; n.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * width];
                    fast_scan_blocks(c, width, &mut b);
                    b
                })
                .collect();
            let norms: Vec<Vec<f32>> = codes
                .iter()
                .map(|c| c.chunks_exact(width).map(|row| shared.squares.norm(row)).collect())
                .collect();
            let masks: Vec<Vec<u8>> = sizes.iter().map(|&n| (0..n.div_ceil(8)).map(|_| next(256) as u8).collect()).collect();
            let mut at = 0;
            let sets: Vec<BlockSet<'_>> = (0..sizes.len())
                .map(|s| {
                    let set = BlockSet {
                        blocks: &blocks[s],
                        rows: sizes[s],
                        norms: &norms[s],
                        norm_range: norm_range(&norms[s]),
                        keys: &keys[at..at + sizes[s]],
                        mask: masked.then_some(&masks[s][..]),
                    };
                    at += sizes[s];
                    set
                })
                .collect();
            let nq = 9;
            let mut queries: Vec<f32> = (0..nq * dim).map(|_| next(9) as f32 - 4.0).collect();
            queries[..dim].fill(0.0);
            let routes: Vec<Vec<u32>> = (0..nq)
                .map(|q| {
                    let mut r: Vec<u32> = (0..7).filter(|_| q != 1 && next(2) == 0).collect();
                    if q % 2 == 0 {
                        r.reverse();
                    }
                    r
                })
                .collect();
            for kernels in crate::Backend::supported().into_iter().filter_map(Kernels::for_backend) {
                let want: Vec<Vec<(f32, usize, usize)>> = queries
                    .chunks_exact(dim)
                    .zip(&routes)
                    .map(|(q, route)| {
                        let own: Vec<BlockSet<'_>> = route.iter().map(|&s| sets[s as usize]).collect();
                        search_asym_lists(kernels, q, &table, &shared, &own, k)
                            .into_iter()
                            .map(|(score, s, r)| (score, route[s] as usize, r))
                            .collect()
                    })
                    .collect();
                let got = crate::parallel::install(Some(threads), || {
                    search_asym_lists_batch(kernels, &queries, &table, &shared, &sets, &routes, k)
                })
                .unwrap();
                for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                    proptest::prop_assert_eq!(
                        g.iter().map(|h| (h.0.to_bits(), h.1, h.2)).collect::<Vec<_>>(),
                        w.iter().map(|h| (h.0.to_bits(), h.1, h.2)).collect::<Vec<_>>(),
                        "query {}", q
                    );
                }
            }
        }
    }

    fn scoped_columns_for(k: usize, n: usize, scope: RowScope<'_>) -> usize {
        crate::search::scoped_columns(k, n, scope)
    }

    /// The tables as first written (every pair's 16 values formed, then
    /// their minima and maxima folded): the bytes and bounds the search
    /// uses must not change (SPEC §8 fixes the quantisation).
    pub(super) fn reference_tables(q: &[f32], table: &Reconstruction) -> (Vec<u8>, [f64; 4]) {
        let width = code_width(table.dim());
        let norm = query_norm(q);
        let mut luts = vec![0u8; 32 * width];
        if norm == 0.0 {
            return (luts, [0.0, 0.0, 0.0, norm]);
        }
        let dim = table.dim();
        let mut values = vec![0.0f64; 32 * width];
        let products = |d: usize| -> [f64; 4] {
            if d >= dim {
                return [0.0; 4];
            }
            let u = f64::from(q[d]) / norm;
            [0u8, 1, 2, 3].map(|g| u * f64::from(table.of_gray(d, g)))
        };
        for (m, out) in values.chunks_exact_mut(16).enumerate() {
            let (first, second) = (products(2 * m), products(2 * m + 1));
            for (n, v) in out.iter_mut().enumerate() {
                *v = if 2 * m + 1 < dim {
                    first[n >> 2] + second[n & 3]
                } else {
                    first[n >> 2]
                };
            }
        }
        let (mut bias, mut range, mut magnitude) = (0.0f64, 0.0f64, 0.0f64);
        let mins: Vec<f64> = values
            .chunks_exact(16)
            .map(|t| {
                let lo = t.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = t.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                range = range.max(hi - lo);
                magnitude += lo.abs().max(hi.abs()) + lo.abs();
                bias += lo;
                lo
            })
            .collect();
        let top = f64::from(LUT_MAX);
        let scale = if range > 0.0 { range / top } else { 1.0 };
        let mut err = 0.0f64;
        for (m, t) in values.chunks_exact(16).enumerate() {
            let mut worst = 0.0f64;
            for (n, &v) in t.iter().enumerate() {
                let level = f64::from(((v - mins[m]) * (1.0 / scale) + 0.5).min(top) as i32);
                luts[16 * m + n] = level as u8;
                worst = worst.max((v - mins[m] - level * scale).abs());
            }
            err += worst;
        }
        magnitude += scale * top * (2 * width) as f64 + err;
        let err = err + BOUND_SLACK * magnitude + f64::MIN_POSITIVE;
        (luts, [scale, bias, err, norm])
    }

    proptest::proptest! {
        /// `flag_bits` sets bit j exactly for the flags that are 1.
        #[test]
        fn flag_bits_has_one_bit_per_set_flag(flags in proptest::array::uniform16(0u8..2)) {
            let bits = flag_bits(flags);
            for (j, &f) in flags.iter().enumerate() {
                proptest::prop_assert_eq!(bits >> j & 1, u32::from(f));
            }
            proptest::prop_assert_eq!(bits >> 16, 0);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The query tables (bytes, scale, bias, error bound) and pair values
        /// are those of the direct computation, bit for bit, for any
        /// dimension (odd ones and a last code byte of padding too), tables
        /// with equal values and zeros, and queries with zeros, repeats and
        /// a wide range of magnitudes.
        #[test]
        fn query_tables_equal_the_direct_computation(
            dim in 1usize..70,
            seed in proptest::prelude::any::<u64>(),
            zero_query in proptest::prelude::any::<bool>(),
        ) {
            let mut state = seed | 1;
            let mut next = move |n: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % n
            };
            let values: Vec<f32> = (0..dim)
                .flat_map(|_| {
                    let mut v = [0u64; 4].map(|_| next(9) as f32 * 0.125 - 0.5);
                    if next(4) == 0 {
                        v = [0.0; 4];
                    }
                    v.sort_by(f32::total_cmp);
                    v
                })
                .collect();
            let table = Reconstruction::new(&values, dim).unwrap();
            let q: Vec<f32> = (0..dim)
                .map(|_| if zero_query { 0.0 } else { (next(21) as f32 - 10.0) * [1e-3f32, 1.0, 7.5e2][next(3) as usize] })
                .collect();
            let (luts, [scale, bias, err, norm]) = reference_tables(&q, &table);
            // Every backend's table quantiser gives the same bytes and bounds.
            for backend in crate::kernels::Backend::supported() {
                let kernels = Kernels::for_backend(backend).unwrap();
                let qt = QueryTables::new(kernels, &q, &table);
                proptest::prop_assert_eq!(&qt.luts, &luts, "{:?}", backend);
                proptest::prop_assert_eq!(
                    [qt.scale, qt.bias, qt.err, qt.norm].map(f64::to_bits),
                    [scale, bias, err, norm].map(f64::to_bits)
                );
            }
            if norm > 0.0 {
                let squares = pair_squares(&table);
                let got = pair_terms(&q, norm, &table, &squares);
                let width = code_width(dim);
                proptest::prop_assert_eq!(got.len(), 32 * width);
                for (m, t) in got.chunks_exact(16).enumerate() {
                    for (n, &[v, square]) in t.iter().enumerate() {
                        proptest::prop_assert_eq!(square.to_bits(), squares[16 * m + n].to_bits());
                        let part = |d: usize, g: usize| {
                            if d < dim { f64::from(q[d]) / norm * f64::from(table.of_gray(d, g as u8)) } else { 0.0 }
                        };
                        let want = if 2 * m + 1 < dim { part(2 * m, n >> 2) + part(2 * m + 1, n & 3) } else { part(2 * m, n >> 2) };
                        proptest::prop_assert_eq!(v.to_bits(), want.to_bits());
                    }
                }
                // The values the first list's exact scores use, with the
                // shared squares, score every code as the terms do.
                let (_, products) = QueryTables::with_products(Kernels::active(), &q, &table);
                let values = pair_values(&products);
                proptest::prop_assert_eq!(values.len(), got.len());
                for _ in 0..8 {
                    let code: Vec<u8> = (0..width).map(|_| next(256) as u8).collect();
                    proptest::prop_assert_eq!(
                        exact_score_of_values(&values, &squares, &code).to_bits(),
                        exact_score(&got, &code).to_bits()
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// An exact start sets the floor to the least exact score of the k
        /// allowed rows of the largest approximations (never a disallowed
        /// row's, so at most the k-th best allowed score: a valid bound), and
        /// refuses (changing nothing) with fewer than k allowed rows, k = 0
        /// or k above `EXACT_START_MAX_K`; zero norms score 0.
        #[test]
        fn an_exact_start_floors_at_the_kth_best_of_the_best_approximations(
            seed in 0u64..1_000_000, rows in 0usize..200, k in 0usize..40, masked in proptest::bool::ANY,
        ) {
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |n: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % n
            };
            // Few distinct sums and norms: ties in both.
            let sums: Vec<u32> = (0..rows).map(|_| next(6) as u32 * 40).collect();
            let norms: Vec<f32> = (0..rows).map(|_| [0.0f32, 0.5, 1.0, 2.0][next(4) as usize]).collect();
            let allowed: Vec<bool> = (0..rows).map(|_| !masked || next(3) != 0).collect();
            let qt = QueryTables { luts: Vec::new(), scale: 0.01, bias: -0.7, err: 0.05, norm: 1.0 };
            let approx = |i: usize| {
                if norms[i] == 0.0 { 0.0 } else { (sums[i] as f32 * qt.scale as f32 + qt.bias as f32) / norms[i] }
            };
            // "Exact" scores near the approximations, deterministic per row.
            let exact = |i: usize| f64::from(approx(i)) + (i % 7) as f64 * 1e-3;
            let mut c = Candidates::new(k);
            let mut scored = Vec::new();
            let started = c.start_from_exact(&qt, &sums, &norms, |i| allowed[i], |i| {
                scored.push(i);
                exact(i)
            });
            let allowed_rows: Vec<usize> = (0..rows).filter(|&i| allowed[i]).collect();
            let can = k > 0 && k <= EXACT_START_MAX_K && allowed_rows.len() >= k;
            proptest::prop_assert_eq!(started, can);
            if !can {
                proptest::prop_assert!(scored.is_empty());
                proptest::prop_assert_eq!(c.floor, f64::NEG_INFINITY);
                return Ok(());
            }
            scored.sort_unstable();
            scored.dedup();
            proptest::prop_assert_eq!(scored.len(), k);
            proptest::prop_assert!(scored.iter().all(|&i| allowed[i]));
            // The k best approximations (any of equal ones): none left out beats one scored.
            let least_scored = scored.iter().map(|&i| approx(i)).fold(f32::INFINITY, f32::min);
            proptest::prop_assert!(allowed_rows.iter().filter(|i| !scored.contains(i)).all(|&i| approx(i) <= least_scored));
            let floor = scored.iter().map(|&i| exact(i)).fold(f64::INFINITY, f64::min);
            proptest::prop_assert_eq!(c.floor.to_bits(), floor.to_bits());
            let mut best: Vec<f64> = allowed_rows.iter().map(|&i| exact(i)).collect();
            best.sort_by(|a, b| b.total_cmp(a));
            proptest::prop_assert!(c.floor <= best[k - 1]);
            proptest::prop_assert_eq!(c.bound().to_bits(), floor.to_bits());
        }
    }
}
