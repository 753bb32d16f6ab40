//! The `q2key._native` extension module: converts arrays, releases the GIL
//! and calls the core. Input normalisation (dtypes, layout, broadcasting)
//! happens in the Python package; here arrays must already be contiguous.

mod arrays;
mod errors;
mod index;
mod stats;

use crate::encode::cuts::DimCuts;
use crate::error::Error;
use crate::search::lee::LeeWeights;
use crate::{encode::EncodeElement, parallel};
use arrays::{matrix, to_matrix, to_vector, vector, zeroed};
use errors::{about, from_err, Q2KeyError, ShapeError};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

type Encoded<'py> = (
    Bound<'py, PyArray2<u8>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u32>>,
);
type Keys<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u32>>);
type Neighbours<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray2<i64>>);

fn run<R: Send>(threads: Option<usize>, f: impl FnOnce() -> crate::Result<R> + Send) -> PyResult<R> {
    parallel::install(threads, f).and_then(|r| r).map_err(from_err)
}

/// The public names of the vectors the Python layer encodes (`encode(x)`,
/// `Index.add(vectors)`, `Index.search(queries)`, `calibrate(sample)`, `Calibrator.update(batch)`).
const VECTOR_ARGS: [&str; 5] = ["x", "vectors", "queries", "sample", "batch"];

/// `name` as one of [`VECTOR_ARGS`] (the core's errors need a `&'static str`).
fn vector_arg(name: &str) -> PyResult<&'static str> {
    VECTOR_ARGS
        .into_iter()
        .find(|a| *a == name)
        .ok_or_else(|| Q2KeyError::new_err(format!("arg: expected one of {VECTOR_ARGS:?}, got {name:?}")))
}

/// A core encoder error under the caller's public parameter name: the core
/// calls its input `x`, the Python entry point may call it `vectors` or `queries`.
pub(crate) fn for_arg(err: Error, arg: &'static str) -> Error {
    match err {
        Error::NonFinite {
            arg: "x",
            row,
            col,
            value,
        } => Error::NonFinite { arg, row, col, value },
        Error::Shape {
            arg: "x",
            expected,
            got,
        } => Error::Shape { arg, expected, got },
        Error::Value { arg: "x", reason } => Error::Value { arg, reason },
        other => other,
    }
}

/// Per-dimension cuts from a `(3, dim)` float64 array, validated.
fn dim_cuts(cuts: Option<PyReadonlyArray2<'_, f64>>, dim: usize) -> PyResult<Option<DimCuts>> {
    let Some(cuts) = cuts else { return Ok(None) };
    let (values, rows, cols) = matrix("cuts", &cuts)?;
    if rows != 3 || cols != dim {
        return Err(about::<ShapeError>(
            "cuts",
            format!("cuts: expected shape (3, {dim}) for vectors of dimension {dim}, got ({rows}, {cols})"),
        ));
    }
    DimCuts::new(values, dim).map(Some).map_err(from_err)
}

fn encode_any<'py, T: EncodeElement + numpy::Element>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, T>,
    threshold: Option<f64>,
    threads: Option<usize>,
    cuts: Option<PyReadonlyArray2<'py, f64>>,
    arg: &str,
) -> PyResult<Encoded<'py>> {
    let arg = vector_arg(arg)?;
    let (data, rows, dim) = matrix(arg, &x)?;
    let cuts = dim_cuts(cuts, dim)?;
    let width = crate::code_width(dim);
    let (mut c, mut k, mut t) = (
        zeroed("encode", "the codes output", rows, width)?,
        zeroed("encode", "the keys output", rows, 1)?,
        zeroed("encode", "the transitions output", rows, 1)?,
    );
    py.detach(|| {
        run(threads, || {
            match &cuts {
                None => crate::encode(data, dim, threshold, &mut c, &mut k, &mut t),
                Some(cuts) => crate::encode_cuts(data, dim, cuts, &mut c, &mut k, &mut t),
            }
            .map_err(|e| for_arg(e, arg))
        })
    })?;
    let (codes, keys, transitions) = (c, k, t);
    Ok((
        to_matrix(py, codes, rows, width)?,
        to_vector(py, keys),
        to_vector(py, transitions),
    ))
}

fn symbols_any<'py, T: EncodeElement + numpy::Element>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, T>,
    threshold: Option<f64>,
    threads: Option<usize>,
    cuts: Option<PyReadonlyArray2<'py, f64>>,
    arg: &str,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let arg = vector_arg(arg)?;
    let (data, rows, dim) = matrix(arg, &x)?;
    let cuts = dim_cuts(cuts, dim)?;
    let mut out = zeroed("symbols", "the symbols output", rows, dim)?;
    py.detach(|| {
        run(threads, || {
            match &cuts {
                None => crate::symbols(data, dim, threshold, &mut out),
                Some(cuts) => crate::symbols_cuts(data, dim, cuts, &mut out),
            }
            .map_err(|e| for_arg(e, arg))
        })
    })?;
    to_matrix(py, out, rows, dim)
}

/// Encodes a float32 matrix: (codes, keys, transitions); `cuts` (3, n) replaces `threshold`.
#[pyfunction]
#[pyo3(signature = (x, threshold=None, threads=None, cuts=None, arg="x"))]
fn encode_f32<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    threshold: Option<f64>,
    threads: Option<usize>,
    cuts: Option<PyReadonlyArray2<'py, f64>>,
    arg: &str,
) -> PyResult<Encoded<'py>> {
    encode_any(py, x, threshold, threads, cuts, arg)
}

/// Encodes a float64 matrix: (codes, keys, transitions); `cuts` (3, n) replaces `threshold`.
#[pyfunction]
#[pyo3(signature = (x, threshold=None, threads=None, cuts=None, arg="x"))]
fn encode_f64<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    threshold: Option<f64>,
    threads: Option<usize>,
    cuts: Option<PyReadonlyArray2<'py, f64>>,
    arg: &str,
) -> PyResult<Encoded<'py>> {
    encode_any(py, x, threshold, threads, cuts, arg)
}

#[pyfunction]
#[pyo3(signature = (x, threshold=None, threads=None, cuts=None, arg="x"))]
fn symbols_f32<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    threshold: Option<f64>,
    threads: Option<usize>,
    cuts: Option<PyReadonlyArray2<'py, f64>>,
    arg: &str,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    symbols_any(py, x, threshold, threads, cuts, arg)
}

#[pyfunction]
#[pyo3(signature = (x, threshold=None, threads=None, cuts=None, arg="x"))]
fn symbols_f64<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    threshold: Option<f64>,
    threads: Option<usize>,
    cuts: Option<PyReadonlyArray2<'py, f64>>,
    arg: &str,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    symbols_any(py, x, threshold, threads, cuts, arg)
}

#[pyfunction]
fn pack<'py>(py: Python<'py>, symbols: PyReadonlyArray2<'py, u8>) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let (s, rows, dim) = matrix("symbols", &symbols)?;
    let width = crate::code_width(dim);
    let mut codes = zeroed("pack", "the codes output", rows, width)?;
    py.detach(|| crate::pack(s, dim, &mut codes)).map_err(from_err)?;
    to_matrix(py, codes, rows, width)
}

#[pyfunction]
fn unpack<'py>(py: Python<'py>, codes: PyReadonlyArray2<'py, u8>, dim: usize) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let (c, rows, width) = matrix("codes", &codes)?;
    check_width(width, dim)?;
    let mut symbols = zeroed("unpack", "the symbols output", rows, dim)?;
    py.detach(|| crate::unpack(c, dim, &mut symbols)).map_err(from_err)?;
    to_matrix(py, symbols, rows, dim)
}

#[pyfunction]
fn complement<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    dim: usize,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let (c, rows, width) = matrix("codes", &codes)?;
    check_width(width, dim)?;
    let mut out = zeroed("complement", "the codes output", rows, width)?;
    py.detach(|| crate::complement(c, dim, &mut out)).map_err(from_err)?;
    to_matrix(py, out, rows, width)
}

fn check_width(width: usize, dim: usize) -> PyResult<()> {
    if width != crate::code_width(dim) {
        return Err(from_err(Error::Shape {
            arg: "codes",
            expected: format!("{} bytes per row for dim={dim}", crate::code_width(dim)),
            got: format!("{width} bytes"),
        }));
    }
    Ok(())
}

#[pyfunction]
fn run_reduce<'py>(py: Python<'py>, symbols: PyReadonlyArray1<'py, u8>) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let s = vector("symbols", &symbols)?;
    crate::validate_symbols(s, s.len()).map_err(from_err)?;
    Ok(to_vector(py, py.detach(|| crate::run_reduce(s))))
}

#[pyfunction]
fn keys_from_symbols<'py>(py: Python<'py>, symbols: PyReadonlyArray2<'py, u8>) -> PyResult<Keys<'py>> {
    let (s, rows, dim) = matrix("symbols", &symbols)?;
    let (mut keys, mut counts) = (
        zeroed("keys_from_symbols", "the keys output", rows, 1)?,
        zeroed("keys_from_symbols", "the transitions output", rows, 1)?,
    );
    py.detach(|| crate::keys_from_symbols(s, dim, &mut keys, &mut counts))
        .map_err(from_err)?;
    Ok((to_vector(py, keys), to_vector(py, counts)))
}

/// Keys and transition counts of `(N, ceil(dim/4))` packed codes (the `q2` pass-through).
#[pyfunction]
fn keys_from_codes<'py>(py: Python<'py>, codes: PyReadonlyArray2<'py, u8>, dim: usize) -> PyResult<Keys<'py>> {
    let (c, rows, width) = matrix("codes", &codes)?;
    check_width(width, dim)?;
    let (mut keys, mut counts) = (
        zeroed("encode", "the keys output", rows, 1)?,
        zeroed("encode", "the transitions output", rows, 1)?,
    );
    py.detach(|| crate::keys_from_codes(c, dim, &mut keys, &mut counts))
        .map_err(from_err)?;
    Ok((to_vector(py, keys), to_vector(py, counts)))
}

#[pyfunction]
fn gaussian_threshold(dim: usize) -> PyResult<f64> {
    crate::gaussian_threshold(dim).map_err(from_err)
}

/// `dim` when it is a usable vector dimension (`1..=MAX_DIM`), else `Q2KeyError` naming `dim`.
#[pyfunction]
fn check_dim(dim: usize) -> PyResult<usize> {
    crate::check_dim(dim).map_err(from_err)
}

/// Row-wise Lee distances of two `(N, B)` code matrices.
#[pyfunction]
fn lee_pairwise<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, u8>,
    b: PyReadonlyArray2<'py, u8>,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let (a, rows, width) = matrix("a", &a)?;
    let (b, _, wb) = matrix("b", &b)?;
    width_match(width, wb)?;
    let mut out = zeroed("lee", "the distances output", rows, 1)?;
    py.detach(|| crate::lee_pairwise(a, b, width, &mut out))
        .map_err(from_err)?;
    Ok(to_vector(py, out))
}

/// Lee distances of one code to every row of a matrix.
#[pyfunction]
fn lee_one_to_many<'py>(
    py: Python<'py>,
    query: PyReadonlyArray1<'py, u8>,
    db: PyReadonlyArray2<'py, u8>,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let q = vector("a", &query)?;
    let (d, rows, width) = matrix("b", &db)?;
    width_match(q.len(), width)?;
    let mut out = zeroed("lee", "the distances output", rows, 1)?;
    py.detach(|| crate::lee_one_to_many(q, d, &mut out)).map_err(from_err)?;
    Ok(to_vector(py, out))
}

#[pyfunction]
#[pyo3(signature = (a, b, threads=None))]
fn lee_matrix<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, u8>,
    b: PyReadonlyArray2<'py, u8>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<u32>>> {
    let (a, m, width) = matrix("a", &a)?;
    let (b, n, wb) = matrix("b", &b)?;
    width_match(width, wb)?;
    let mut out = zeroed("lee_matrix", "the distances output", m, n)?;
    py.detach(|| run(threads, || crate::lee_matrix(a, b, width, &mut out)))?;
    to_matrix(py, out, m, n)
}

#[pyfunction]
fn weighted_lee_pairwise<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, u8>,
    b: PyReadonlyArray2<'py, u8>,
    weights: (f64, f64, f64),
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let w = LeeWeights::new(weights.0, weights.1, weights.2).map_err(from_err)?;
    let (a, rows, width) = matrix("a", &a)?;
    let (b, _, wb) = matrix("b", &b)?;
    width_match(width, wb)?;
    let mut out = zeroed("weighted_lee", "the distances output", rows, 1)?;
    py.detach(|| crate::weighted_lee_pairwise(a, b, width, w, &mut out))
        .map_err(from_err)?;
    Ok(to_vector(py, out))
}

fn width_match(a: usize, b: usize) -> PyResult<()> {
    if a != b {
        return Err(from_err(Error::Shape {
            arg: "b",
            expected: format!("codes {a} bytes wide, like a"),
            got: format!("{b} bytes"),
        }));
    }
    Ok(())
}

/// Exact k-NN: `(distances uint32 (Q, min(k, N)), indices int64 (Q, min(k, N)))`.
#[pyfunction]
#[pyo3(signature = (queries, database, k, threads=None))]
fn search<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, u8>,
    database: PyReadonlyArray2<'py, u8>,
    k: usize,
    threads: Option<usize>,
) -> PyResult<Neighbours<'py>> {
    let (q, nq, width) = matrix("queries", &queries)?;
    let (d, n, wd) = matrix("database", &database)?;
    if width != wd {
        return Err(from_err(Error::Shape {
            arg: "queries",
            expected: format!("codes {wd} bytes wide, like the database"),
            got: format!("{width} bytes"),
        }));
    }
    let cols = crate::search::result_columns(k, n);
    let (mut dist, mut rows) = (
        zeroed("search", "the distances output", nq, cols)?,
        zeroed("search", "the indices output", nq, cols)?,
    );
    py.detach(|| {
        run(threads, || {
            crate::search(q, d, width, k, &mut dist, &mut rows).map(|_| ())
        })
    })?;
    Ok((to_matrix(py, dist, nq, cols)?, to_matrix(py, rows, nq, cols)?))
}

/// The SIMD backend in use.
#[pyfunction]
fn simd_backend() -> &'static str {
    crate::simd_backend()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_DIM", crate::MAX_DIM)?;
    m.add_class::<index::PyIndex>()?;
    m.add_class::<index::ViewGuard>()?;
    m.add_function(wrap_pyfunction!(encode_f32, m)?)?;
    m.add_function(wrap_pyfunction!(encode_f64, m)?)?;
    m.add_function(wrap_pyfunction!(symbols_f32, m)?)?;
    m.add_function(wrap_pyfunction!(symbols_f64, m)?)?;
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(unpack, m)?)?;
    m.add_function(wrap_pyfunction!(complement, m)?)?;
    m.add_function(wrap_pyfunction!(run_reduce, m)?)?;
    m.add_function(wrap_pyfunction!(keys_from_symbols, m)?)?;
    m.add_function(wrap_pyfunction!(keys_from_codes, m)?)?;
    m.add_function(wrap_pyfunction!(gaussian_threshold, m)?)?;
    m.add_function(wrap_pyfunction!(check_dim, m)?)?;
    m.add_function(wrap_pyfunction!(lee_pairwise, m)?)?;
    m.add_function(wrap_pyfunction!(lee_one_to_many, m)?)?;
    m.add_function(wrap_pyfunction!(lee_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(weighted_lee_pairwise, m)?)?;
    m.add_function(wrap_pyfunction!(search, m)?)?;
    m.add_function(wrap_pyfunction!(simd_backend, m)?)?;
    stats::register(m)?;
    Ok(())
}
