//! `q2key._native.stats`: bindings of [`crate::stats`]. Every batch function
//! takes ragged rows as `values` (uint8) and `offsets` (int64, one more than
//! the rows); the Python layer turns an `(N, n)` matrix into
//! `offsets = arange(N + 1) · n`.

use super::arrays::{to_matrix, to_vector, vector, zeroed};
use super::errors::from_err;
use super::run;
use crate::error::Error;
use crate::stats::{self as core, Rows, BIGRAMS, TRIPLETS};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;

type Ragged<'py> = (Bound<'py, PyArray1<u8>>, Bound<'py, PyArray1<i64>>);

/// The submodule (`import q2key._native.stats`; registered in `sys.modules`
/// by the parent's initialiser).
#[pymodule(gil_used = false, module = "q2key._native", submodule)]
pub(crate) mod stats {
    #[pymodule_export]
    use super::{
        admissible_sequences, bigram_counts, bigram_totals, check_offsets, complement_bigram_frequency,
        hairpin_density, key_collisions, reverse_complement, run_reduce, transition_counts, transition_density,
        triplet_counts, triplet_totals,
    };
    #[pymodule_export]
    const MAX_ADMISSIBLE_K: u32 = crate::stats::MAX_ADMISSIBLE_K;
}

/// Offsets as `usize` (a negative one is an error naming it).
fn offsets_of(py: Python<'_>, offsets: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<usize>> {
    let raw = vector("offsets", offsets)?;
    let mut out = zeroed::<usize>("stats", "a copy of the offsets", raw.len(), 1)?;
    py.detach(|| {
        for (i, (o, &v)) in out.iter_mut().zip(raw).enumerate() {
            *o = usize::try_from(v).map_err(|_| Error::value("offsets", format!("offsets[{i}] = {v} is negative")))?;
        }
        Ok(())
    })
    .map_err(from_err)?;
    Ok(out)
}

/// Declares `#[pyfunction] NAME(values, offsets, threads=None)` for each
/// line `fn NAME -> OUTPUT = HELPER(ARGS);`: the rows are checked (with the
/// GIL released, as `Rows::ragged` does), then `HELPER(py, rows, threads, ARGS)`
/// computes the output.
macro_rules! ragged_functions {
    ($($(#[$doc:meta])* fn $name:ident -> $out:ty = $helper:ident($($arg:expr),*);)*) => {$(
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(signature = (values, offsets, threads=None))]
        pub(crate) fn $name<'py>(
            py: Python<'py>,
            values: PyReadonlyArray1<'py, u8>,
            offsets: PyReadonlyArray1<'py, i64>,
            threads: Option<usize>,
        ) -> PyResult<$out> {
            let (values, offsets) = (vector("symbols", &values)?, offsets_of(py, &offsets)?);
            let rows = py.detach(|| Rows::ragged(values, &offsets)).map_err(from_err)?;
            $helper(py, rows, threads, $($arg),*)
        }
    )*};
}

ragged_functions! {
    /// Run-reduces every row: `(values uint8, offsets int64)`.
    fn run_reduce -> Ragged<'py> = reduced();
    /// `|R|` of every row (uint64).
    fn transition_counts -> Bound<'py, PyArray1<u64>> = per_row(core::transition_counts);
    /// `|R| / n` of every row (NaN for an empty row).
    fn transition_density -> Bound<'py, PyArray1<f64>> = per_row(core::transition_density);
    /// Complement bigram frequency of every row (NaN when `|R| ≤ 1`).
    fn complement_bigram_frequency -> Bound<'py, PyArray1<f64>> = per_row(core::complement_bigram_frequency);
    /// Hairpin density of every row (NaN when `|R| ≤ 2`).
    fn hairpin_density -> Bound<'py, PyArray1<f64>> = per_row(core::hairpin_density);
    /// Per-row bigram counts of `R`, `(N, 16)` uint64 (cell `4a + b`).
    fn bigram_counts -> Bound<'py, PyArray2<u64>> = per_row_table(BIGRAMS, core::bigram_counts);
    /// Per-row triplet counts of `R`, `(N, 64)` uint64 (cell `16a + 4b + c`).
    fn triplet_counts -> Bound<'py, PyArray2<u64>> = per_row_table(TRIPLETS, core::triplet_counts);
    /// Bigram counts of `R` summed over all rows, `(16,)` uint64.
    fn bigram_totals -> Bound<'py, PyArray1<u64>> = summed_table(core::bigram_totals);
    /// Triplet counts of `R` summed over all rows, `(64,)` uint64.
    fn triplet_totals -> Bound<'py, PyArray1<u64>> = summed_table(core::triplet_totals);
    /// Reverse complement of every row; the result has the input's offsets.
    fn reverse_complement -> Bound<'py, PyArray1<u8>> = same_shape(core::reverse_complement);
}

/// Checks the offsets of ragged rows of `total` values, as every function here does.
#[pyfunction]
pub(crate) fn check_offsets(py: Python<'_>, offsets: PyReadonlyArray1<'_, i64>, total: usize) -> PyResult<()> {
    let offsets = offsets_of(py, &offsets)?;
    py.detach(|| core::validate_offsets(total, &offsets)).map_err(from_err)
}

fn reduced<'py>(py: Python<'py>, rows: Rows<'_>, threads: Option<usize>) -> PyResult<Ragged<'py>> {
    let mut offsets = zeroed::<usize>("run_reduce", "the offsets output", rows.len() + 1, 1)?;
    let total = py.detach(|| run(threads, || core::run_reduce_offsets(rows, &mut offsets)))?;
    let mut values = zeroed::<u8>("run_reduce", "the values output", total, 1)?;
    let mut offsets64 = zeroed::<i64>("run_reduce", "the offsets output", offsets.len(), 1)?;
    py.detach(|| {
        run(threads, || {
            for (o, &v) in offsets64.iter_mut().zip(&offsets) {
                // Offsets are at most the input length, an isize.
                *o = v as i64;
            }
            core::run_reduce_into(rows, &offsets, &mut values)
        })
    })?;
    Ok((to_vector(py, values), to_vector(py, offsets64)))
}

/// One value per row.
fn per_row<'py, T: numpy::Element + Clone + Default + Send>(
    py: Python<'py>,
    rows: Rows<'_>,
    threads: Option<usize>,
    f: fn(Rows<'_>, &mut [T]) -> crate::Result<()>,
) -> PyResult<Bound<'py, PyArray1<T>>> {
    let mut out = zeroed("stats", "the per-row output", rows.len(), 1)?;
    py.detach(|| run(threads, || f(rows, &mut out)))?;
    Ok(to_vector(py, out))
}

/// A table of `cells` counts per row.
fn per_row_table<'py>(
    py: Python<'py>,
    rows: Rows<'_>,
    threads: Option<usize>,
    cells: usize,
    f: fn(Rows<'_>, &mut [u64]) -> crate::Result<()>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let mut out = zeroed("stats", "the counts output", rows.len(), cells)?;
    py.detach(|| run(threads, || f(rows, &mut out)))?;
    to_matrix(py, out, rows.len(), cells)
}

/// A count table summed over all rows, as a 1-D array of its `N` cells.
fn summed_table<'py, const N: usize>(
    py: Python<'py>,
    rows: Rows<'_>,
    threads: Option<usize>,
    total: fn(Rows<'_>) -> [u64; N],
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let t = py.detach(|| run(threads, || Ok(total(rows))))?;
    Ok(to_vector(py, t.to_vec()))
}

/// One symbol per input symbol (the result has the input's offsets).
fn same_shape<'py>(
    py: Python<'py>,
    rows: Rows<'_>,
    threads: Option<usize>,
    f: fn(Rows<'_>, &mut [u8]) -> crate::Result<()>,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let mut out = zeroed("reverse_complement", "the symbols output", rows.values().len(), 1)?;
    py.detach(|| run(threads, || f(rows, &mut out)))?;
    Ok(to_vector(py, out))
}

/// `(n, distinct, colliding_pairs, expected_pairs)` of a vector of keys.
#[pyfunction]
pub(crate) fn key_collisions(py: Python<'_>, keys: PyReadonlyArray1<'_, u64>) -> PyResult<(u64, u64, u128, f64)> {
    let k = vector("keys", &keys)?;
    let s = py.detach(|| core::key_collisions(k));
    Ok((s.n, s.distinct, s.colliding_pairs, s.expected_pairs))
}

/// `4·3^(k−1)` admissible sequences of length `k`; `k` beyond `u32` saturates
/// (the core's error for `k > MAX_ADMISSIBLE_K` does not quote `k`).
#[pyfunction]
pub(crate) fn admissible_sequences(k: u64) -> PyResult<u128> {
    core::admissible_sequences(u32::try_from(k).unwrap_or(u32::MAX)).map_err(from_err)
}
