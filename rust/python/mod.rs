//! The `q2key._native` extension module: converts arrays, releases the GIL
//! and calls the core. Input normalisation (dtypes, layout, broadcasting)
//! happens in the Python package; here arrays must already be contiguous.

mod arrays;
mod asym;
mod errors;
mod index;
mod ivf;
mod rotation;
mod stats;
mod thresholds;

use crate::error::Error;
use crate::parallel;
use crate::search::lee::LeeWeights;
use arrays::{matrix, to_matrix, to_vector, vector, with_rows, zeroed, FloatRows};
use errors::{from_err, renamed};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use thresholds::PyThresholds;

type Encoded<'py> = (
    Bound<'py, PyArray2<u8>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u32>>,
);
type Keys<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u32>>);
type Neighbours<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray2<i64>>);

/// `f` in a pool of `threads` threads (`None`: the default), with core errors as exceptions.
fn run<R: Send>(threads: Option<usize>, f: impl FnOnce() -> crate::Result<R> + Send) -> PyResult<R> {
    parallel::install(threads, f).and_then(|r| r).map_err(from_err)
}

/// [`run`] for a core encoder, whose input `x` the caller calls `arg`.
fn run_as<R: Send>(threads: Option<usize>, arg: &str, f: impl FnOnce() -> crate::Result<R> + Send) -> PyResult<R> {
    parallel::install(threads, f)
        .map_err(from_err)?
        .map_err(|e| renamed(e, "x", arg))
}

/// Encodes a float32 or float64 matrix: `(codes, keys, transitions)` under
/// `thresholds` (`None`: the Gaussian rule); errors about the rows name `arg`.
#[pyfunction]
#[pyo3(signature = (x, thresholds=None, threads=None, arg="x"))]
fn encode<'py>(
    py: Python<'py>,
    x: FloatRows<'py>,
    thresholds: Option<PyRef<'py, PyThresholds>>,
    threads: Option<usize>,
    arg: &str,
) -> PyResult<Encoded<'py>> {
    let (rows, dim) = x.shape();
    let th = PyThresholds::for_dim(thresholds.as_deref(), dim, "threshold")?;
    let width = crate::code_width(dim);
    let (mut c, mut k, mut t) = (
        zeroed("encode", "the codes output", rows, width)?,
        zeroed("encode", "the keys output", rows, 1)?,
        zeroed("encode", "the transitions output", rows, 1)?,
    );
    let x = x.slice(arg)?;
    py.detach(|| {
        run_as(threads, arg, || {
            with_rows!(x, |x| th.encode(x, dim, &mut c, &mut k, &mut t))
        })
    })?;
    Ok((to_matrix(py, c, rows, width)?, to_vector(py, k), to_vector(py, t)))
}

/// The Z4 symbols `(N, dim)` of a float32 or float64 matrix; like [`encode`].
#[pyfunction]
#[pyo3(signature = (x, thresholds=None, threads=None, arg="x"))]
fn symbols<'py>(
    py: Python<'py>,
    x: FloatRows<'py>,
    thresholds: Option<PyRef<'py, PyThresholds>>,
    threads: Option<usize>,
    arg: &str,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let (rows, dim) = x.shape();
    let th = PyThresholds::for_dim(thresholds.as_deref(), dim, "threshold")?;
    let mut out = zeroed("symbols", "the symbols output", rows, dim)?;
    let x = x.slice(arg)?;
    py.detach(|| run_as(threads, arg, || with_rows!(x, |x| th.symbols(x, dim, &mut out))))?;
    to_matrix(py, out, rows, dim)
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
    check_width(width, dim).map_err(from_err)?;
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
    check_width(width, dim).map_err(from_err)?;
    let mut out = zeroed("complement", "the codes output", rows, width)?;
    py.detach(|| crate::complement(c, dim, &mut out)).map_err(from_err)?;
    to_matrix(py, out, rows, width)
}

fn check_width(width: usize, dim: usize) -> crate::Result<()> {
    if width != crate::code_width(dim) {
        return Err(Error::Shape {
            arg: "codes",
            expected: format!("{} bytes per row for dim={dim}", crate::code_width(dim)),
            got: format!("{width} bytes"),
        });
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

/// Keys and transition counts of `(N, ceil(dim/4))` packed codes (the `q2`
/// pass-through); errors about the codes name `arg`.
#[pyfunction]
#[pyo3(signature = (codes, dim, arg="codes"))]
fn keys_from_codes<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
    dim: usize,
    arg: &str,
) -> PyResult<Keys<'py>> {
    let (c, rows, width) = matrix(arg, &codes)?;
    check_width(width, dim).map_err(|e| renamed(e, "codes", arg))?;
    let (mut keys, mut counts) = (
        zeroed("encode", "the keys output", rows, 1)?,
        zeroed("encode", "the transitions output", rows, 1)?,
    );
    py.detach(|| crate::keys_from_codes(c, dim, &mut keys, &mut counts))
        .map_err(|e| renamed(e, "codes", arg))?;
    Ok((to_vector(py, keys), to_vector(py, counts)))
}

/// Checks `(N, ceil(dim/4))` packed codes: the width, and the padding bits
/// of each row's last byte (zero); errors name `arg`.
#[pyfunction]
#[pyo3(signature = (codes, dim, arg="codes"))]
fn check_codes(py: Python<'_>, codes: PyReadonlyArray2<'_, u8>, dim: usize, arg: &str) -> PyResult<()> {
    let (c, _, width) = matrix(arg, &codes)?;
    let dim = crate::check_dim(dim).map_err(from_err)?;
    check_width(width, dim).map_err(|e| renamed(e, "codes", arg))?;
    py.detach(|| crate::check_padding(c, dim))
        .map_err(|e| renamed(e, "codes", arg))
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

/// The extension module. Every function releases the GIL for its work and
/// holds no Python state of its own, so it runs on free-threaded Python too.
#[pymodule(gil_used = false, module = "q2key")]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::asym::{decode, fit_reconstruction, lloyd_max, rerank_asym, search_asym};
    #[pymodule_export]
    use super::index::{PyIndex, ViewGuard};
    #[pymodule_export]
    use super::ivf::PyIvfIndex;
    #[pymodule_export]
    use super::rotation::fit_rotation;
    #[pymodule_export]
    use super::stats::stats;
    #[pymodule_export]
    use super::thresholds::PyThresholds;
    #[pymodule_export]
    use super::{
        check_codes, check_dim, complement, encode, gaussian_threshold, keys_from_codes, keys_from_symbols, lee_matrix,
        lee_one_to_many, lee_pairwise, pack, run_reduce, search, simd_backend, symbols, unpack, weighted_lee_pairwise,
    };
    #[pymodule_export]
    const MAX_DIM: usize = crate::MAX_DIM;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        // `import q2key._native.stats` looks in sys.modules: a submodule made
        // by the extension is only an attribute until it is registered there.
        let stats = m.getattr("stats")?;
        m.py()
            .import("sys")?
            .getattr("modules")?
            .set_item("q2key._native.stats", stats)
    }
}
