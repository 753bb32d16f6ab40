//! Asymmetric scoring (SPEC §8) for Python: decode, search and re-rank of
//! float queries against packed codes, and fitting reconstruction tables.
//! Distances are `1 − cosine(query, x̂)` as float32, ascending (ties by row),
//! so that smaller is nearer as for Lee distances.

use super::arrays::{matrix, to_matrix, zeroed, FloatRows, FloatSlice};
use super::errors::{about, from_err, renamed, ShapeError};
use super::thresholds::PyThresholds;
use super::{check_width, run};
use crate::decode::Reconstruction;
use crate::encode::thresholds::Thresholds;
use crate::search::asym::cosine_distance;
use numpy::{PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

pub(crate) type Scored<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<i64>>);

/// The rows of `x` as f32 queries (copied: another Python thread may write
/// the array while the GIL is released), checked to be `dim` wide; errors name `arg`.
pub(crate) fn query_rows(x: &FloatRows<'_>, dim: usize, arg: &str) -> PyResult<Vec<f32>> {
    let (_, width) = x.shape();
    if width != dim {
        return Err(about::<ShapeError>(
            arg,
            format!("{arg}: expected vectors of dimension {dim}, got {width}"),
        ));
    }
    let copied = match x.slice(arg)? {
        FloatSlice::F32(q) => crate::f32_queries("queries", q, dim),
        FloatSlice::F64(q) => crate::f32_queries("queries", q, dim),
    };
    copied.map_err(|e| renamed(e, "queries", arg))
}

/// The thresholds (`None`: the Gaussian rule) and their table in effect
/// for `dim`; errors name `threshold`.
fn table_of(thresholds: Option<&PyThresholds>, dim: usize) -> PyResult<(Thresholds, Reconstruction)> {
    let dim = crate::check_dim(dim).map_err(from_err)?;
    let th = PyThresholds::for_dim(thresholds, dim, "threshold")?;
    let table = th.table_for(dim).map_err(from_err)?;
    Ok((th, table))
}

/// `(distances, rows)` as arrays, scores turned into `1 − cosine`.
fn scored<'py>(py: Python<'py>, mut scores: Vec<f32>, rows: Vec<i64>, nq: usize, cols: usize) -> PyResult<Scored<'py>> {
    for s in &mut scores {
        *s = cosine_distance(*s);
    }
    Ok((to_matrix(py, scores, nq, cols)?, to_matrix(py, rows, nq, cols)?))
}

/// Reconstructions `(N, dim)` float32 of `(N, ceil(dim/4))` codes under the
/// thresholds' table in effect (`None`: the Gaussian rule's), rotated back
/// to the input space when the thresholds carry a rotation (SPEC §9).
#[pyfunction]
#[pyo3(signature = (codes, dim, thresholds=None))]
pub(crate) fn decode<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    dim: usize,
    thresholds: Option<PyRef<'py, PyThresholds>>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (c, rows, width) = matrix("codes", &codes)?;
    check_width(width, dim).map_err(from_err)?;
    let (th, _) = table_of(thresholds.as_deref(), dim)?; // sized by `dim`: after the codes confirm it
    let mut out = zeroed("decode", "the reconstructions output", rows, dim)?;
    py.detach(|| th.decode(c, dim, &mut out)).map_err(from_err)?;
    to_matrix(py, out, rows, dim)
}

/// Exact top-`k` of each float query among the codes by asymmetric score:
/// `(distances float32 (Q, min(k, N)) = 1 − cosine, rows int64)`; errors
/// about the queries name `arg`.
#[pyfunction]
#[pyo3(signature = (queries, codes, dim, thresholds, k, threads=None, arg="queries"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_asym<'py>(
    py: Python<'py>,
    queries: FloatRows<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    dim: usize,
    thresholds: Option<PyRef<'py, PyThresholds>>,
    k: usize,
    threads: Option<usize>,
    arg: &str,
) -> PyResult<Scored<'py>> {
    let (c, n, width) = matrix("codes", &codes)?;
    check_width(width, dim).map_err(from_err)?;
    let (th, table) = table_of(thresholds.as_deref(), dim)?;
    let nq = queries.shape().0;
    let cols = crate::result_columns(k, n);
    let (mut scores, mut rows) = (
        zeroed("search", "the distances output", nq, cols)?,
        zeroed("search", "the indices output", nq, cols)?,
    );
    let q = query_rows(&queries, dim, arg)?;
    py.detach(|| {
        run(threads, || {
            let q = th.queries(q, dim)?; // rotated (SPEC §9) before §8
            crate::search_asym(&q, c, dim, &table, None, k, &mut scores, &mut rows).map(drop)
        })
    })?;
    scored(py, scores, rows, nq, cols)
}

/// Re-ranks each query's candidate rows `(Q, C)` (`-1` skipped, repeats once)
/// by asymmetric score: `(distances float32 (Q, min(k, C)), rows int64)`;
/// columns past a query's distinct candidates hold `inf` and `-1`.
#[pyfunction]
#[pyo3(signature = (queries, codes, candidates, dim, thresholds, k, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn rerank_asym<'py>(
    py: Python<'py>,
    queries: FloatRows<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    candidates: PyReadonlyArray2<'py, i64>,
    dim: usize,
    thresholds: Option<PyRef<'py, PyThresholds>>,
    k: usize,
    threads: Option<usize>,
) -> PyResult<Scored<'py>> {
    let (c, _, width) = matrix("codes", &codes)?;
    check_width(width, dim).map_err(from_err)?;
    let (th, table) = table_of(thresholds.as_deref(), dim)?;
    let (cand, cq, cc) = matrix("candidates", &candidates)?;
    let nq = queries.shape().0;
    if cq != nq {
        return Err(about::<ShapeError>(
            "candidates",
            format!("candidates: expected {nq} rows (one per query), got {cq}"),
        ));
    }
    // Candidates index the codes: copied, so the check holds for what is used.
    let cand = crate::error::copied("candidates", "a copy of the candidates", cand, 1).map_err(from_err)?;
    let cols = k.min(cc);
    let (mut scores, mut rows) = (
        zeroed("rerank", "the distances output", nq, cols)?,
        zeroed("rerank", "the indices output", nq, cols)?,
    );
    let q = query_rows(&queries, dim, "queries")?;
    py.detach(|| {
        run(threads, || {
            let q = th.queries(q, dim)?; // rotated (SPEC §9) before §8
            crate::rerank_asym(&q, c, dim, &table, &cand, k, &mut scores, &mut rows).map(drop)
        })
    })?;
    scored(py, scores, rows, nq, cols)
}

/// The sample's rows normalised in f64; errors name `sample`.
pub(crate) fn unit_sample(sample: &FloatRows<'_>) -> PyResult<(Vec<f64>, usize)> {
    let (_, dim) = sample.shape();
    let values = match sample.slice("sample")? {
        FloatSlice::F32(x) => crate::unit_rows("sample", x, dim),
        FloatSlice::F64(x) => crate::unit_rows("sample", x, dim),
    };
    Ok((values.map_err(from_err)?, dim))
}

/// The thresholds (`None`: Gaussian) for a sample of dimension `dim`.
pub(crate) fn thresholds_for(thresholds: Option<&PyThresholds>, dim: usize) -> PyResult<Thresholds> {
    match thresholds {
        Some(t) => Ok(t.0.clone()),
        None => Thresholds::gaussian(dim).map_err(from_err),
    }
}

/// The thresholds carrying the table of their cells' means over the
/// sample's normalised rows (SPEC §8 "Fitted").
#[pyfunction]
#[pyo3(signature = (sample, thresholds=None))]
pub(crate) fn fit_reconstruction<'py>(
    py: Python<'py>,
    sample: FloatRows<'py>,
    thresholds: Option<PyRef<'py, PyThresholds>>,
) -> PyResult<PyThresholds> {
    let th = thresholds_for(thresholds.as_deref(), sample.shape().1)?;
    let (values, dim) = unit_sample(&sample)?;
    let fitted = py.detach(|| th.fit_reconstruction(&values, dim)).map_err(from_err)?;
    Ok(PyThresholds(fitted))
}

/// Per-dimension Lloyd–Max from the thresholds' cuts over the sample's
/// normalised rows: per-dimension cuts carrying their cells' means.
#[pyfunction]
#[pyo3(signature = (sample, thresholds=None, iterations=100))]
pub(crate) fn lloyd_max<'py>(
    py: Python<'py>,
    sample: FloatRows<'py>,
    thresholds: Option<PyRef<'py, PyThresholds>>,
    iterations: usize,
) -> PyResult<PyThresholds> {
    let th = thresholds_for(thresholds.as_deref(), sample.shape().1)?;
    let (values, dim) = unit_sample(&sample)?;
    let fitted = py.detach(|| th.lloyd_max(&values, dim, iterations)).map_err(from_err)?;
    Ok(PyThresholds(fitted))
}
