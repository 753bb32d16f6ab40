//! Statistics on transition sequences (SPEC §4–§5), over many sequences at once.
//!
//! A batch of sequences is a [`Rows`]: either equal-length rows of a
//! `(rows, n)` symbol matrix ([`Rows::dense`]) or ragged rows given as flat
//! `values` and `offsets` (row `i` is `values[offsets[i]..offsets[i + 1]]`,
//! [`Rows::ragged`]). Both constructors validate their input (symbols 0..=3,
//! offsets starting at 0, nondecreasing and ending at `values.len()`), so the
//! functions taking a `Rows` only check their output buffers.
//!
//! Every statistic is taken over the run-reduced sequence `R` of a row
//! (reducing is idempotent, so an already reduced row gives the same values):
//!
//! - [`transition_counts`] — `|R|`;
//! - [`transition_density`] — `|R| / n` (`n` the row's length);
//! - [`complement_bigram_frequency`] — the share of `i < |R|−1` with `r[i+1] = θ(r[i])`;
//! - [`hairpin_density`] — the share of `i < |R|−2` with `r[i+1] = θ(r[i])` and `r[i+2] = r[i]`;
//! - [`bigram_counts`] / [`bigram_totals`] — `4×4` counts of `(r[i], r[i+1])` (the diagonal is 0);
//! - [`triplet_counts`] / [`triplet_totals`] — `4×4×4` counts of `(r[i], r[i+1], r[i+2])` (36 admissible cells);
//! - [`run_reduce_rows`] (or [`run_reduce_offsets`] then [`run_reduce_into`] into caller buffers) and
//!   [`reverse_complement`] give ragged or equal-length rows back;
//! - [`key_collisions`] and [`admissible_sequences`] count keys and sequences.
//!
//! Here `θ(s) = s + 2 mod 4`. A ratio whose denominator is 0 — the density of
//! an empty row, the complement bigram frequency of a row with `|R| ≤ 1`, the
//! hairpin density of a row with `|R| ≤ 2` — is NaN.
//!
//! Work is split across row chunks on the current rayon pool; results do not
//! depend on the thread count.
//!
//! ```
//! use q2key::stats::{self, Rows};
//! // Two rows of 8 symbols: R = (A C A B D B) and R = (B).
//! let symbols = [0, 0, 2, 0, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1];
//! let rows = Rows::dense(&symbols, 8)?;
//! let mut hairpins = [0.0; 2];
//! stats::hairpin_density(rows, &mut hairpins)?;
//! assert_eq!(hairpins[0], 0.5); // A C A and B D B among 4 triplets
//! assert!(hairpins[1].is_nan()); // |R| = 1: no triplet
//! let (values, offsets) = stats::run_reduce_rows(rows)?;
//! assert_eq!((values, offsets), (vec![0, 2, 0, 1, 3, 1, 1], vec![0, 6, 7]));
//! # Ok::<(), q2key::Error>(())
//! ```

use crate::check::{check_len, check_rows};
/// The complement and the run reduction the statistics use are the ones of
/// codes and keys (one definition each).
pub use crate::codes::theta;
use crate::codes::validate_symbols;
use crate::error::{Error, Result};
pub use crate::keys::reduced;
use rayon::prelude::*;
use std::ops::Range;

/// Symbols a task handles (rows per task = this over the mean row length).
const SYMBOLS_PER_TASK: usize = 1 << 16;

/// Cells of a bigram table (`4×4`, index `4a + b`).
pub const BIGRAMS: usize = 16;
/// Cells of a triplet table (`4×4×4`, index `16a + 4b + c`).
pub const TRIPLETS: usize = 64;

/// A validated batch of symbol sequences (values 0..=3): equal-length rows or ragged rows.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    values: &'a [u8],
    layout: Layout<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Layout<'a> {
    /// `rows` rows of `n` symbols each.
    Dense { n: usize, rows: usize },
    /// Row `i` is `values[offsets[i]..offsets[i + 1]]`.
    Ragged { offsets: &'a [usize] },
}

impl<'a> Rows<'a> {
    /// The rows of a `(rows, n)` symbol matrix; `n = 0` requires an empty buffer (no rows).
    pub fn dense(symbols: &'a [u8], n: usize) -> Result<Self> {
        let rows = check_rows("symbols", symbols.len(), n)?;
        validate_symbols(symbols, n)?;
        Ok(Rows {
            values: symbols,
            layout: Layout::Dense { n, rows },
        })
    }

    /// Ragged rows: `offsets` has one more element than there are rows,
    /// `offsets[0] = 0`, nondecreasing, and the last offset is `values.len()`.
    /// Empty rows are allowed.
    pub fn ragged(values: &'a [u8], offsets: &'a [usize]) -> Result<Self> {
        validate_offsets(values.len(), offsets)?;
        if let Some(at) = values.iter().position(|&s| s > 3) {
            let row = offsets.partition_point(|&o| o <= at) - 1;
            return Err(Error::Symbol {
                arg: "symbols",
                row,
                col: at - offsets[row],
                value: values[at],
            });
        }
        Ok(Rows {
            values,
            layout: Layout::Ragged { offsets },
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self.layout {
            Layout::Dense { rows, .. } => rows,
            Layout::Ragged { offsets } => offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All symbols, row after row.
    pub fn values(&self) -> &'a [u8] {
        self.values
    }

    /// Where row `i` starts in [`values`](Self::values) (`i ≤ len()`: `start(len())` is the end).
    #[inline]
    fn start(&self, i: usize) -> usize {
        match self.layout {
            Layout::Dense { n, .. } => i * n,
            Layout::Ragged { offsets } => offsets[i],
        }
    }

    /// Row `i` (`i < len()`).
    #[inline]
    pub fn row(&self, i: usize) -> &'a [u8] {
        &self.values[self.start(i)..self.start(i + 1)]
    }

    /// Rows per parallel task: about [`SYMBOLS_PER_TASK`] symbols each.
    fn rows_per_task(&self) -> usize {
        let mean = self.values.len() / self.len().max(1);
        (SYMBOLS_PER_TASK / mean.max(1)).max(1)
    }

    /// The row ranges of the parallel tasks.
    fn tasks(&self) -> impl Iterator<Item = Range<usize>> {
        let (rows, per) = (self.len(), self.rows_per_task());
        (0..rows.div_ceil(per)).map(move |t| t * per..((t + 1) * per).min(rows))
    }
}

/// Checks ragged offsets against a buffer of `len` values.
pub fn validate_offsets(len: usize, offsets: &[usize]) -> Result<()> {
    let Some((&first, _)) = offsets.split_first() else {
        return Err(Error::shape(
            "offsets",
            "at least 1 element (offsets[0] = 0, one more than the rows)",
            "0 elements",
        ));
    };
    if first != 0 {
        return Err(Error::value("offsets", format!("offsets[0] is {first}; it must be 0")));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::value(
            "offsets",
            format!(
                "offsets[{}] = {} is less than offsets[{i}] = {}; offsets must be nondecreasing",
                i + 1,
                offsets[i + 1],
                offsets[i]
            ),
        ));
    }
    let last = offsets[offsets.len() - 1];
    if last != len {
        return Err(Error::shape(
            "offsets",
            format!("a last offset equal to the number of values ({len})"),
            last,
        ));
    }
    Ok(())
}

/// The counts behind the per-row ratios of one sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// `n`, the length of the row.
    pub length: usize,
    /// `|R|`, the length of the run-reduced row.
    pub transitions: usize,
    /// `i < |R| − 1` with `r[i+1] = θ(r[i])`.
    pub complement_bigrams: usize,
    /// `i < |R| − 2` with `r[i+1] = θ(r[i])` and `r[i+2] = r[i]`.
    pub hairpins: usize,
}

impl RowCounts {
    /// Counts of one row (any `u8` values; only the low two bits matter to θ).
    pub fn of(row: &[u8]) -> Self {
        let Some((first, j)) = second_run(row) else {
            return RowCounts {
                length: row.len(),
                transitions: usize::from(!row.is_empty()),
                ..Self::default()
            };
        };
        // `a, b`: the last two elements of R so far (always a ≠ b). Branch-free:
        // a repeated symbol `s == b` matches neither test (θ has no fixed point,
        // and `s == a` would mean `a == b`).
        let (mut a, mut b) = (first, row[j]);
        let (mut transitions, mut complements, mut hairpins) = (2, usize::from(b == theta(a)), 0);
        for &s in &row[j + 1..] {
            let new = s != b;
            transitions += usize::from(new);
            complements += usize::from(s == theta(b));
            hairpins += usize::from(s == a && b == theta(s));
            a = if new { b } else { a };
            b = s;
        }
        RowCounts {
            length: row.len(),
            transitions,
            complement_bigrams: complements,
            hairpins,
        }
    }

    /// `|R| / n` (NaN for an empty row).
    pub fn transition_density(&self) -> f64 {
        ratio(self.transitions, self.length)
    }

    /// Complement bigrams over `|R| − 1` (NaN when `|R| ≤ 1`).
    pub fn complement_bigram_frequency(&self) -> f64 {
        ratio(self.complement_bigrams, self.transitions.saturating_sub(1))
    }

    /// Hairpins over `|R| − 2` (NaN when `|R| ≤ 2`).
    pub fn hairpin_density(&self) -> f64 {
        ratio(self.hairpins, self.transitions.saturating_sub(2))
    }
}

/// `|R|` of one row: 1 plus the places where a symbol differs from the one before.
#[inline]
fn transitions_of(row: &[u8]) -> usize {
    usize::from(!row.is_empty()) + row.windows(2).filter(|w| w[0] != w[1]).count()
}

#[inline]
fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

/// `out[i] = f(row i)` for one value per row, in parallel over row chunks.
fn per_row<T: Send>(rows: Rows<'_>, out: &mut [T], f: impl Fn(&[u8]) -> T + Sync) -> Result<()> {
    check_len("out", out.len(), rows.len())?;
    let per = rows.rows_per_task();
    out.par_chunks_mut(per).enumerate().for_each(|(t, o)| {
        for (i, v) in o.iter_mut().enumerate() {
            *v = f(rows.row(t * per + i));
        }
    });
    Ok(())
}

/// `|R|` of every row into `out` (`rows` elements).
pub fn transition_counts(rows: Rows<'_>, out: &mut [u64]) -> Result<()> {
    per_row(rows, out, |r| transitions_of(r) as u64)
}

/// `|R| / n` of every row into `out` (NaN for an empty ragged row).
pub fn transition_density(rows: Rows<'_>, out: &mut [f64]) -> Result<()> {
    per_row(rows, out, |r| RowCounts::of(r).transition_density())
}

/// The complement bigram frequency of every row into `out` (NaN when `|R| ≤ 1`).
pub fn complement_bigram_frequency(rows: Rows<'_>, out: &mut [f64]) -> Result<()> {
    per_row(rows, out, |r| RowCounts::of(r).complement_bigram_frequency())
}

/// The hairpin density of every row into `out` (NaN when `|R| ≤ 2`).
pub fn hairpin_density(rows: Rows<'_>, out: &mut [f64]) -> Result<()> {
    per_row(rows, out, |r| RowCounts::of(r).hairpin_density())
}

/// The first symbol of a row and the index of the first symbol differing
/// from it (the start of the second run), if there is one.
#[inline]
fn second_run(row: &[u8]) -> Option<(u8, usize)> {
    let &first = row.first()?;
    row.iter().position(|&s| s != first).map(|j| (first, j))
}

/// Adds the bigrams of one row's `R` to a `4×4` table (index `4a + b`): the
/// off-diagonal pairs of the row itself are exactly those of `R`.
fn add_bigrams(row: &[u8], table: &mut [u64]) {
    for w in row.windows(2) {
        table[usize::from(w[0] & 3) * 4 + usize::from(w[1] & 3)] += 1;
    }
    for d in 0..4 {
        table[d * 5] = 0;
    }
}

/// Adds the triplets of one row's `R` to a `4×4×4` table (index `16a + 4b + c`).
fn add_triplets(row: &[u8], table: &mut [u64]) {
    let Some((first, j)) = second_run(row) else {
        return;
    };
    // As in `RowCounts::of`: a repeated symbol adds 0 to a valid cell.
    let (mut a, mut b) = (usize::from(first & 3), usize::from(row[j] & 3));
    for &s in &row[j + 1..] {
        let s = usize::from(s & 3);
        let new = s != b;
        table[a * 16 + b * 4 + s] += u64::from(new);
        a = if new { b } else { a };
        b = s;
    }
}

/// `cells` counts per row into `out` (`rows × cells`, zeroed here).
fn per_row_table(rows: Rows<'_>, out: &mut [u64], cells: usize, add: impl Fn(&[u8], &mut [u64]) + Sync) -> Result<()> {
    check_len("out", out.len(), rows.len().saturating_mul(cells))?;
    let per = rows.rows_per_task();
    out.par_chunks_mut(per * cells).enumerate().for_each(|(t, o)| {
        for (i, table) in o.chunks_exact_mut(cells).enumerate() {
            table.fill(0);
            add(rows.row(t * per + i), table);
        }
    });
    Ok(())
}

/// Counts summed over every row.
fn total_table<const CELLS: usize>(rows: Rows<'_>, add: impl Fn(&[u8], &mut [u64]) + Sync) -> [u64; CELLS] {
    let tasks: Vec<Range<usize>> = rows.tasks().collect();
    tasks
        .into_par_iter()
        .map(|task| {
            let mut table = [0u64; CELLS];
            for i in task {
                add(rows.row(i), &mut table);
            }
            table
        })
        .reduce(
            || [0u64; CELLS],
            |mut x, y| {
                x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
                x
            },
        )
}

/// Per-row bigram counts of `R`: `out` is `rows × 16`, cell `4a + b` counting `(r[i], r[i+1]) = (a, b)`.
pub fn bigram_counts(rows: Rows<'_>, out: &mut [u64]) -> Result<()> {
    per_row_table(rows, out, BIGRAMS, add_bigrams)
}

/// Bigram counts of `R` summed over all rows (cell `4a + b`).
pub fn bigram_totals(rows: Rows<'_>) -> [u64; BIGRAMS] {
    total_table(rows, add_bigrams)
}

/// Per-row triplet counts of `R`: `out` is `rows × 64`, cell `16a + 4b + c`.
pub fn triplet_counts(rows: Rows<'_>, out: &mut [u64]) -> Result<()> {
    per_row_table(rows, out, TRIPLETS, add_triplets)
}

/// Triplet counts of `R` summed over all rows (cell `16a + 4b + c`).
pub fn triplet_totals(rows: Rows<'_>) -> [u64; TRIPLETS] {
    total_table(rows, add_triplets)
}

/// Splits `out` into the pieces `bounds[t]..bounds[t + 1]` (nondecreasing, within `out`).
fn split_at_bounds<'o>(mut out: &'o mut [u8], bounds: &[usize]) -> Vec<&'o mut [u8]> {
    let mut pieces = Vec::with_capacity(bounds.len().saturating_sub(1));
    for w in bounds.windows(2) {
        let (piece, rest) = std::mem::take(&mut out).split_at_mut(w[1] - w[0]);
        pieces.push(piece);
        out = rest;
    }
    pieces
}

/// Runs `f(task rows, out piece)` over the parallel tasks, `out` split where
/// `start(row)` says each task begins; returns the error of the lowest failing task.
fn per_task_output(
    rows: Rows<'_>,
    out: &mut [u8],
    start: impl Fn(usize) -> usize,
    f: impl Fn(Range<usize>, &mut [u8]) -> Result<()> + Sync,
) -> Result<()> {
    let tasks: Vec<Range<usize>> = rows.tasks().collect();
    let mut bounds: Vec<usize> = tasks.iter().map(|t| start(t.start)).collect();
    bounds.push(start(rows.len()));
    let pieces = split_at_bounds(out, &bounds);
    let failure = tasks
        .into_par_iter()
        .zip(pieces)
        .find_map_first(|(task, piece)| f(task, piece).err());
    failure.map_or(Ok(()), Err)
}

/// Pass 1 of run-reduction: `offsets` (`rows + 1` elements) gets the offsets
/// of the reduced rows; returns the total length (`offsets[rows]`).
pub fn run_reduce_offsets(rows: Rows<'_>, offsets: &mut [usize]) -> Result<usize> {
    check_len("offsets", offsets.len(), rows.len() + 1)?;
    offsets[0] = 0;
    per_row(rows, &mut offsets[1..], transitions_of)?;
    let mut total = 0usize;
    for o in offsets.iter_mut() {
        total += *o;
        *o = total;
    }
    Ok(total)
}

/// Pass 2 of run-reduction: writes every reduced row into `values` at the
/// `offsets` [`run_reduce_offsets`] gave. Offsets that do not fit the rows are an error.
pub fn run_reduce_into(rows: Rows<'_>, offsets: &[usize], values: &mut [u8]) -> Result<()> {
    check_len("offsets", offsets.len(), rows.len() + 1)?;
    validate_offsets(values.len(), offsets)?;
    per_task_output(
        rows,
        values,
        |i| offsets[i],
        |task, piece| {
            let base = offsets[task.start];
            for i in task {
                let out = &mut piece[offsets[i] - base..offsets[i + 1] - base];
                let mut written = 0;
                for r in reduced(rows.row(i)) {
                    match out.get_mut(written) {
                        Some(v) => *v = r,
                        None => return Err(wrong_length(i, out.len())),
                    }
                    written += 1;
                }
                if written != out.len() {
                    return Err(wrong_length(i, out.len()));
                }
            }
            Ok(())
        },
    )
}

fn wrong_length(row: usize, len: usize) -> Error {
    Error::value(
        "offsets",
        format!("row {row} is given {len} places, not its run-reduced length (use run_reduce_offsets)"),
    )
}

/// Run-reduces every row: `(values, offsets)` of the reduced rows.
pub fn run_reduce_rows(rows: Rows<'_>) -> Result<(Vec<u8>, Vec<usize>)> {
    let mut offsets = vec![0usize; rows.len() + 1];
    let total = run_reduce_offsets(rows, &mut offsets)?;
    let mut values = vec![0u8; total];
    run_reduce_into(rows, &offsets, &mut values)?;
    Ok((values, offsets))
}

/// Reverse complement of every row: `θ` on each symbol, then the order
/// reversed. `out` has the layout of `rows.values()` (same `n` or same offsets).
pub fn reverse_complement(rows: Rows<'_>, out: &mut [u8]) -> Result<()> {
    check_len("out", out.len(), rows.values().len())?;
    per_task_output(
        rows,
        out,
        |i| rows.start(i),
        |task, piece| {
            let base = rows.start(task.start);
            for i in task {
                let o = &mut piece[rows.start(i) - base..rows.start(i + 1) - base];
                for (v, &s) in o.iter_mut().zip(rows.row(i).iter().rev()) {
                    *v = theta(s);
                }
            }
            Ok(())
        },
    )
}

/// Key collision statistics of a set of keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyCollisions {
    /// `N`, the number of keys.
    pub n: u64,
    /// Distinct key values.
    pub distinct: u64,
    /// Pairs of keys that are equal: `Σ c(c−1)/2` over groups of `c` equal keys.
    pub colliding_pairs: u128,
    /// The birthday expectation for uniform 64-bit keys, `N(N−1)/2^65`.
    pub expected_pairs: f64,
}

/// The birthday expectation `N(N−1)/2^65` of colliding pairs among `N` uniform 64-bit keys.
pub fn birthday_expectation(n: u64) -> f64 {
    let n = n as f64;
    n * (n - 1.0).max(0.0) / 2f64.powi(65)
}

/// Collision statistics of `keys` (sorts a copy; the input is left as it is).
pub fn key_collisions(keys: &[u64]) -> KeyCollisions {
    let mut sorted = keys.to_vec();
    sorted.par_sort_unstable();
    let (mut distinct, mut pairs) = (0u64, 0u128);
    for group in sorted.chunk_by(|a, b| a == b) {
        let c = group.len() as u128;
        distinct += 1;
        pairs += c * (c - 1) / 2;
    }
    let n = keys.len() as u64;
    KeyCollisions {
        n,
        distinct,
        colliding_pairs: pairs,
        expected_pairs: birthday_expectation(n),
    }
}

/// The largest `k` whose [`admissible_sequences`] count fits the `u128` result.
pub const MAX_ADMISSIBLE_K: u32 = 80;

/// The number `4·3^(k−1)` of admissible transition sequences of length `k`
/// (adjacent elements differ); 1 for `k = 0` (the empty sequence). An error
/// when the count does not fit a `u128` (`k >` [`MAX_ADMISSIBLE_K`]).
pub fn admissible_sequences(k: u32) -> Result<u128> {
    if k == 0 {
        return Ok(1);
    }
    // No k in the message: the Python layer saturates larger integers to u32::MAX.
    3u128.checked_pow(k - 1).and_then(|p| p.checked_mul(4)).ok_or_else(|| {
        Error::value(
            "k",
            format!("must be at most {MAX_ADMISSIBLE_K} (4·3^(k−1) must fit 128 bits)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_by_hand() {
        // R = (A, C, A, B, D, B, B→·): A→C complement, C→A complement (hairpin A C A),
        // A→B no, B→D complement, D→B complement (hairpin B D B).
        let c = RowCounts::of(&[0, 0, 2, 0, 1, 3, 3, 1, 1]);
        assert_eq!(c.transitions, 6);
        assert_eq!(c.complement_bigrams, 4);
        assert_eq!(c.hairpins, 2);
        assert_eq!(c.transition_density(), 6.0 / 9.0);
        assert_eq!(c.complement_bigram_frequency(), 4.0 / 5.0);
        assert_eq!(c.hairpin_density(), 2.0 / 4.0);
    }

    #[test]
    fn ratios_with_a_zero_denominator_are_nan() {
        let one = RowCounts::of(&[2, 2, 2]);
        assert_eq!(one.transition_density(), 1.0 / 3.0);
        assert!(one.complement_bigram_frequency().is_nan());
        assert!(one.hairpin_density().is_nan());
        let two = RowCounts::of(&[0, 2]);
        assert_eq!(two.complement_bigram_frequency(), 1.0);
        assert!(two.hairpin_density().is_nan());
        assert!(RowCounts::of(&[]).transition_density().is_nan());
    }

    #[test]
    fn offsets_are_validated() {
        let v = [0u8, 1, 2];
        assert!(Rows::ragged(&v, &[0, 1, 3]).is_ok());
        assert!(Rows::ragged(&[], &[0]).is_ok());
        for bad in [&[][..], &[1, 3], &[0, 2, 1, 3], &[0, 2], &[0, 4]] {
            assert!(Rows::ragged(&v, bad).is_err(), "{bad:?}");
        }
        let err = Rows::ragged(&[0, 1, 3, 0, 9], &[0, 3, 3, 5]).unwrap_err();
        assert!(err.to_string().contains("row 2 column 1 holds 9"), "{err}");
    }

    #[test]
    fn run_reduce_into_rejects_offsets_of_the_wrong_rows() {
        let rows = Rows::dense(&[0, 0, 1, 2, 2, 2], 3).unwrap();
        let (values, offsets) = run_reduce_rows(rows).unwrap();
        assert_eq!(
            (values.as_slice(), offsets.as_slice()),
            (&[0, 1, 2][..], &[0, 2, 3][..])
        );
        let mut out = [0u8; 3];
        assert!(run_reduce_into(rows, &[0, 1, 3], &mut out).is_err());
        assert!(run_reduce_into(rows, &[0, 3, 3], &mut out).is_err());
    }

    #[test]
    fn admissible_counts() {
        assert_eq!(admissible_sequences(0), Ok(1));
        assert_eq!(admissible_sequences(1), Ok(4));
        assert_eq!(admissible_sequences(32), Ok(4 * 3u128.pow(31)));
        assert!(admissible_sequences(80).is_ok());
        assert!(admissible_sequences(81).is_err());
    }

    #[test]
    fn key_collision_groups() {
        let s = key_collisions(&[5, 1, 5, 5, 2, 1]);
        assert_eq!((s.n, s.distinct, s.colliding_pairs), (6, 3, 3 + 1));
        assert_eq!(s.expected_pairs, 30.0 / 2f64.powi(65));
        let empty = key_collisions(&[]);
        assert_eq!(
            (empty.n, empty.distinct, empty.colliding_pairs, empty.expected_pairs),
            (0, 0, 0, 0.0)
        );
    }
}
