//! Bindings of [`crate::stats`]. Every batch function takes ragged rows as
//! `values` (uint8) and `offsets` (int64, one more than the rows); the Python
//! layer turns an `(N, n)` matrix into `offsets = arange(N + 1) · n`.

use super::arrays::{to_matrix, to_vector, vector, zeroed};
use super::errors::from_err;
use crate::error::Error;
use crate::parallel;
use crate::stats::{self, Rows, BIGRAMS, TRIPLETS};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;

type Ragged<'py> = (Bound<'py, PyArray1<u8>>, Bound<'py, PyArray1<i64>>);

fn run<R: Send>(threads: Option<usize>, f: impl FnOnce() -> crate::Result<R> + Send) -> PyResult<R> {
    parallel::install(threads, f).and_then(|r| r).map_err(from_err)
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

/// The validated rows (the check runs with the GIL released).
fn rows_of<'a>(py: Python<'_>, values: &'a [u8], offsets: &'a [usize]) -> PyResult<Rows<'a>> {
    py.detach(|| Rows::ragged(values, offsets)).map_err(from_err)
}

fn per_row_f64<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
    f: fn(Rows<'_>, &mut [f64]) -> crate::Result<()>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (v, o) = (vector("symbols", &values)?, offsets_of(py, &offsets)?);
    let rows = rows_of(py, v, &o)?;
    let mut out = zeroed("stats", "the per-row output", rows.len(), 1)?;
    py.detach(|| run(threads, || f(rows, &mut out)))?;
    Ok(to_vector(py, out))
}

/// Run-reduces every row: `(values uint8, offsets int64)`.
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_run_reduce<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Ragged<'py>> {
    let (v, o) = (vector("symbols", &values)?, offsets_of(py, &offsets)?);
    let rows = rows_of(py, v, &o)?;
    let mut out_offsets = zeroed::<usize>("run_reduce", "the offsets output", rows.len() + 1, 1)?;
    let total = py.detach(|| run(threads, || stats::run_reduce_offsets(rows, &mut out_offsets)))?;
    let mut out_values = zeroed::<u8>("run_reduce", "the values output", total, 1)?;
    let mut offsets64 = zeroed::<i64>("run_reduce", "the offsets output", out_offsets.len(), 1)?;
    py.detach(|| {
        run(threads, || {
            for (o, &v) in offsets64.iter_mut().zip(&out_offsets) {
                // Offsets are at most the input length, an isize.
                *o = v as i64;
            }
            stats::run_reduce_into(rows, &out_offsets, &mut out_values)
        })
    })?;
    Ok((to_vector(py, out_values), to_vector(py, offsets64)))
}

/// `|R|` of every row (uint64).
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_transition_counts<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let (v, o) = (vector("symbols", &values)?, offsets_of(py, &offsets)?);
    let rows = rows_of(py, v, &o)?;
    let mut out = zeroed("transition_counts", "the counts output", rows.len(), 1)?;
    py.detach(|| run(threads, || stats::transition_counts(rows, &mut out)))?;
    Ok(to_vector(py, out))
}

/// `|R| / n` of every row (NaN for an empty row).
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_transition_density<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    per_row_f64(py, values, offsets, threads, stats::transition_density)
}

/// Complement bigram frequency of every row (NaN when `|R| ≤ 1`).
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_complement_bigram_frequency<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    per_row_f64(py, values, offsets, threads, stats::complement_bigram_frequency)
}

/// Hairpin density of every row (NaN when `|R| ≤ 2`).
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_hairpin_density<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    per_row_f64(py, values, offsets, threads, stats::hairpin_density)
}

fn per_row_table<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
    cells: usize,
    f: fn(Rows<'_>, &mut [u64]) -> crate::Result<()>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let (v, o) = (vector("symbols", &values)?, offsets_of(py, &offsets)?);
    let rows = rows_of(py, v, &o)?;
    let mut out = zeroed("stats", "the counts output", rows.len(), cells)?;
    py.detach(|| run(threads, || f(rows, &mut out)))?;
    to_matrix(py, out, rows.len(), cells)
}

/// A count table summed over all rows, as a 1-D array of its `N` cells.
fn summed_table<'py, const N: usize>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
    total: fn(Rows<'_>) -> [u64; N],
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let (v, o) = (vector("symbols", &values)?, offsets_of(py, &offsets)?);
    let rows = rows_of(py, v, &o)?;
    let t = py.detach(|| run(threads, || Ok(total(rows))))?;
    Ok(to_vector(py, t.to_vec()))
}

/// Per-row bigram counts of `R`, `(N, 16)` uint64 (cell `4a + b`).
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_bigram_counts<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    per_row_table(py, values, offsets, threads, BIGRAMS, stats::bigram_counts)
}

/// Per-row triplet counts of `R`, `(N, 64)` uint64 (cell `16a + 4b + c`).
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_triplet_counts<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    per_row_table(py, values, offsets, threads, TRIPLETS, stats::triplet_counts)
}

/// Bigram counts of `R` summed over all rows, `(16,)` uint64.
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_bigram_totals<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    summed_table(py, values, offsets, threads, stats::bigram_totals)
}

/// Triplet counts of `R` summed over all rows, `(64,)` uint64.
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_triplet_totals<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    summed_table(py, values, offsets, threads, stats::triplet_totals)
}

/// Reverse complement of every row; the result has the input's offsets.
#[pyfunction]
#[pyo3(signature = (values, offsets, threads=None))]
fn stats_reverse_complement<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let (v, o) = (vector("symbols", &values)?, offsets_of(py, &offsets)?);
    let rows = rows_of(py, v, &o)?;
    let mut out = zeroed("reverse_complement", "the symbols output", v.len(), 1)?;
    py.detach(|| run(threads, || stats::reverse_complement(rows, &mut out)))?;
    Ok(to_vector(py, out))
}

/// `(n, distinct, colliding_pairs, expected_pairs)` of a vector of keys.
#[pyfunction]
fn stats_key_collisions(py: Python<'_>, keys: PyReadonlyArray1<'_, u64>) -> PyResult<(u64, u64, u128, f64)> {
    let k = vector("keys", &keys)?;
    let s = py.detach(|| stats::key_collisions(k));
    Ok((s.n, s.distinct, s.colliding_pairs, s.expected_pairs))
}

/// `4·3^(k−1)` admissible sequences of length `k`; `k` beyond `u32` saturates
/// (the core's error for `k > MAX_ADMISSIBLE_K` does not quote `k`).
#[pyfunction]
fn stats_admissible_sequences(k: u64) -> PyResult<u128> {
    stats::admissible_sequences(u32::try_from(k).unwrap_or(u32::MAX)).map_err(from_err)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_ADMISSIBLE_K", stats::MAX_ADMISSIBLE_K)?;
    m.add_function(wrap_pyfunction!(stats_admissible_sequences, m)?)?;
    m.add_function(wrap_pyfunction!(stats_run_reduce, m)?)?;
    m.add_function(wrap_pyfunction!(stats_transition_counts, m)?)?;
    m.add_function(wrap_pyfunction!(stats_transition_density, m)?)?;
    m.add_function(wrap_pyfunction!(stats_complement_bigram_frequency, m)?)?;
    m.add_function(wrap_pyfunction!(stats_hairpin_density, m)?)?;
    m.add_function(wrap_pyfunction!(stats_bigram_counts, m)?)?;
    m.add_function(wrap_pyfunction!(stats_triplet_counts, m)?)?;
    m.add_function(wrap_pyfunction!(stats_bigram_totals, m)?)?;
    m.add_function(wrap_pyfunction!(stats_triplet_totals, m)?)?;
    m.add_function(wrap_pyfunction!(stats_reverse_complement, m)?)?;
    m.add_function(wrap_pyfunction!(stats_key_collisions, m)?)?;
    Ok(())
}
