//! `q2key._native.IvfIndex`: the inverted-file index (rust/ivf) behind a
//! read/write lock, every call waiting for it and working with the GIL
//! released. Every array borrowed from Python is copied before the GIL is
//! released (another Python thread may write it meanwhile).

use super::arrays::{matrix, to_matrix, to_vector, vector, FloatRows};
use super::asym::query_rows;
use super::errors::{from_err, Q2KeyError};
use super::index::OwnedFilter;
use super::thresholds::PyThresholds;
use super::{run, run_as};
use crate::error::copied;
use crate::index::Filter;
use crate::ivf::{IvfIndex, IvfParams};
use crate::Thresholds;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard};

type Found<'py, D> = (Bound<'py, PyArray2<D>>, Bound<'py, PyArray2<u64>>);

#[pyclass(name = "IvfIndex", module = "q2key._native", frozen)]
pub(crate) struct PyIvfIndex {
    inner: RwLock<IvfIndex>,
}

fn poisoned() -> PyErr {
    Q2KeyError::new_err("index: a previous call failed while writing")
}

/// [`poisoned`] as a core error (raised from inside a detached call).
fn poisoned_core() -> crate::Error {
    crate::Error::value("index", "a previous call failed while writing")
}

impl PyIvfIndex {
    fn wrap(index: IvfIndex) -> PyIvfIndex {
        PyIvfIndex {
            inner: RwLock::new(index),
        }
    }

    fn read(&self) -> PyResult<RwLockReadGuard<'_, IvfIndex>> {
        self.inner.read().map_err(|_| poisoned())
    }

    fn with_read<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&IvfIndex) -> R + Send) -> PyResult<R> {
        py.detach(|| self.read().map(|index| f(&index)))
    }

    /// Float rows (float32 or float64, `dim` wide) copied as f32; errors name `arg`.
    fn floats(&self, py: Python<'_>, x: &FloatRows<'_>, arg: &str) -> PyResult<Vec<f32>> {
        let dim = self.with_read(py, IvfIndex::dim)?;
        query_rows(x, dim, arg)
    }

    /// One search of `nq` queries: the filter copied, then `search` run on
    /// the index under its read lock with the GIL released; its `(distances,
    /// ids, columns)` returned as two `(nq, columns)` matrices.
    fn searched<'py, D: numpy::Element + Send>(
        &self,
        py: Python<'py>,
        nq: usize,
        filter_ids: Option<PyReadonlyArray1<'py, u64>>,
        filter_mask: Option<PyReadonlyArray1<'py, u8>>,
        threads: Option<usize>,
        search: impl FnOnce(&IvfIndex, Option<Filter<'_>>) -> crate::Result<(Vec<D>, Vec<u64>, usize)> + Send,
    ) -> PyResult<Found<'py, D>> {
        let filter = OwnedFilter::of(&filter_ids, &filter_mask)?;
        let (distances, ids, columns) = py.detach(|| {
            run(threads, || {
                let index = self.inner.read().map_err(|_| poisoned_core())?;
                search(&index, filter.as_ref().map(OwnedFilter::as_filter))
            })
        })?;
        Ok((to_matrix(py, distances, nq, columns)?, to_matrix(py, ids, nq, columns)?))
    }
}

#[pymethods]
impl PyIvfIndex {
    /// An empty, untrained index for vectors of dimension `dim` encoded
    /// under `thresholds` (`None`: the Gaussian rule).
    #[new]
    #[pyo3(signature = (dim, thresholds=None))]
    fn new(dim: usize, thresholds: Option<PyRef<'_, PyThresholds>>) -> PyResult<PyIvfIndex> {
        let dim = crate::check_dim(dim).map_err(from_err)?;
        let th = match thresholds {
            Some(t) => t.0.clone(),
            None => Thresholds::gaussian(dim).map_err(from_err)?,
        };
        Ok(PyIvfIndex::wrap(IvfIndex::new(dim, th).map_err(from_err)?))
    }

    /// Trains the centroids (spherical k-means) on a sample of `x`.
    #[pyo3(signature = (x, lists=None, points_per_list=None, iterations=None, seed=0, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn train(
        &self,
        py: Python<'_>,
        x: FloatRows<'_>,
        lists: Option<usize>,
        points_per_list: Option<usize>,
        iterations: Option<usize>,
        seed: u64,
        threads: Option<usize>,
    ) -> PyResult<()> {
        let x = self.floats(py, &x, "vectors")?;
        let params = IvfParams {
            lists,
            points_per_list,
            iterations,
            seed,
        };
        // `x` is this call's own copy (the GIL is released below): training normalises it in place.
        py.detach(|| {
            run_as(threads, "vectors", || {
                core_write(self, |index| index.train_owned(x, params))
            })
        })
    }

    /// Encodes and adds float rows `x` under `ids` (sequential when None),
    /// each to its nearest list, or to `lists[r]` (from `assign`) when
    /// given; all-or-nothing. Returns the ids (uint64).
    #[pyo3(signature = (x, ids=None, threads=None, lists=None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        x: FloatRows<'py>,
        ids: Option<PyReadonlyArray1<'py, u64>>,
        threads: Option<usize>,
        lists: Option<PyReadonlyArray1<'py, u32>>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let x = self.floats(py, &x, "vectors")?;
        let ids = ids
            .as_ref()
            .map(|i| copied("ids", "a copy of the ids", vector("ids", i)?, 1).map_err(from_err))
            .transpose()?;
        let lists = lists
            .as_ref()
            .map(|l| copied("lists", "a copy of the lists", vector("lists", l)?, 1).map_err(from_err))
            .transpose()?;
        let added = py.detach(|| {
            run_as(threads, "vectors", || {
                core_write(self, |index| match &lists {
                    Some(lists) => index.add_to_lists(&x, ids.as_deref(), lists),
                    None => index.add(&x, ids.as_deref()),
                })
            })
        })?;
        Ok(to_vector(py, added))
    }

    /// The list `add` would put each float row of `x` in (uint32).
    #[pyo3(signature = (x, threads=None))]
    fn assign<'py>(
        &self,
        py: Python<'py>,
        x: FloatRows<'py>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let x = self.floats(py, &x, "vectors")?;
        let lists = py.detach(|| {
            run_as(threads, "vectors", || {
                let index = self.inner.read().map_err(|_| poisoned_core())?;
                index.assign(&x)
            })
        })?;
        Ok(to_vector(py, lists))
    }

    /// Makes room for `rows_per_list[l]` more rows in each list `l`.
    fn reserve(&self, py: Python<'_>, rows_per_list: PyReadonlyArray1<'_, u64>) -> PyResult<()> {
        let counts = copied(
            "rows_per_list",
            "a copy of the counts",
            vector("rows_per_list", &rows_per_list)?,
            1,
        )
        .map_err(from_err)?;
        py.detach(|| run(None, || core_write(self, |index| index.reserve(&counts))))
    }

    /// Asymmetric search of float queries (SPEC §8) in their `nprobe`
    /// nearest lists: `(distances float32 = 1 − cosine, ids uint64)`, each
    /// `(Q, columns)`, ascending, ties by id; missing: `inf`, `2**64 − 1`.
    #[pyo3(signature = (queries, k, nprobe, filter_ids=None, filter_mask=None, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn search_asym<'py>(
        &self,
        py: Python<'py>,
        queries: FloatRows<'py>,
        k: usize,
        nprobe: usize,
        filter_ids: Option<PyReadonlyArray1<'py, u64>>,
        filter_mask: Option<PyReadonlyArray1<'py, u8>>,
        threads: Option<usize>,
    ) -> PyResult<Found<'py, f32>> {
        let nq = queries.shape().0;
        let q = self.floats(py, &queries, "queries")?;
        self.searched(py, nq, filter_ids, filter_mask, threads, |index, filter| {
            let found = index.search_asym(&q, k, nprobe, filter)?;
            Ok((found.distances, found.ids, found.columns))
        })
    }

    /// Lee search of code queries (uint8, `(Q, code_width(dim))`, routed by
    /// their reconstructions): `(distances uint32, ids uint64)`; missing:
    /// `2**32 − 1`, `2**64 − 1`.
    #[pyo3(signature = (queries, k, nprobe, filter_ids=None, filter_mask=None, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn search_lee<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, u8>,
        k: usize,
        nprobe: usize,
        filter_ids: Option<PyReadonlyArray1<'py, u64>>,
        filter_mask: Option<PyReadonlyArray1<'py, u8>>,
        threads: Option<usize>,
    ) -> PyResult<Found<'py, u32>> {
        let (q, nq, _) = matrix("queries", &queries)?;
        let q = copied("queries", "a copy of the queries", q, 1).map_err(from_err)?;
        self.searched(py, nq, filter_ids, filter_mask, threads, |index, filter| {
            let found = index.search_lee(&q, k, nprobe, filter)?;
            Ok((found.distances, found.ids, found.columns))
        })
    }

    /// Lee search of float queries: each encoded with the index's
    /// thresholds and routed by its own direction; as `search_lee`.
    #[pyo3(signature = (queries, k, nprobe, filter_ids=None, filter_mask=None, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn search_lee_floats<'py>(
        &self,
        py: Python<'py>,
        queries: FloatRows<'py>,
        k: usize,
        nprobe: usize,
        filter_ids: Option<PyReadonlyArray1<'py, u64>>,
        filter_mask: Option<PyReadonlyArray1<'py, u8>>,
        threads: Option<usize>,
    ) -> PyResult<Found<'py, u32>> {
        let nq = queries.shape().0;
        let q = self.floats(py, &queries, "queries")?;
        self.searched(py, nq, filter_ids, filter_mask, threads, |index, filter| {
            let found = index.search_lee_floats(&q, k, nprobe, filter)?;
            Ok((found.distances, found.ids, found.columns))
        })
    }

    /// Removes the rows of `ids` (unknown ids ignored); returns how many.
    #[pyo3(signature = (ids, threads=None))]
    fn remove(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, u64>, threads: Option<usize>) -> PyResult<usize> {
        let ids = copied("ids", "a copy of the ids", vector("ids", &ids)?, 1).map_err(from_err)?;
        py.detach(|| run(threads, || core_write(self, |index| index.remove(&ids))))
    }

    /// Drops removed rows and frees their memory.
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| run(None, || core_write(self, IvfIndex::compact)))
    }

    /// `(rows, dead, lists, min_list, max_list, mean_list, imbalance, memory_bytes, mapped)`.
    #[allow(clippy::type_complexity)]
    fn stats(&self, py: Python<'_>) -> PyResult<(usize, usize, usize, usize, usize, f64, f64, usize, bool)> {
        let s = self.with_read(py, IvfIndex::stats)?;
        Ok((
            s.rows,
            s.dead,
            s.lists,
            s.min_list,
            s.max_list,
            s.mean_list,
            s.imbalance,
            s.memory_bytes,
            s.mapped,
        ))
    }

    #[getter]
    fn dim(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_read(py, IvfIndex::dim)
    }

    #[getter]
    fn lists(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_read(py, IvfIndex::lists)
    }

    #[getter]
    fn is_trained(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_read(py, IvfIndex::is_trained)
    }

    #[getter]
    fn next_id(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_read(py, IvfIndex::next_id)
    }

    #[getter]
    fn mapped(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_read(py, IvfIndex::is_mapped)
    }

    #[getter]
    fn thresholds(&self, py: Python<'_>) -> PyResult<PyThresholds> {
        self.with_read(py, |i| PyThresholds(i.thresholds().clone()))
    }

    /// The centroids, float32 `(lists, dim)` (a copy).
    fn centroids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (c, lists, dim) = self.with_read(py, |i| (i.centroids().to_vec(), i.lists(), i.dim()))?;
        to_matrix(py, c, lists, dim)
    }

    /// The live ids (uint64) in storage order: list by list, rows in order.
    fn ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let ids = self.with_read(py, IvfIndex::ids)?.map_err(from_err)?;
        Ok(to_vector(py, ids))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_read(py, IvfIndex::len)
    }

    fn contains(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        self.with_read(py, |i| i.contains(id))
    }

    /// Compacts and saves atomically (takes the write lock: searches wait).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| run(None, || core_write(self, |index| index.save(&path))))
    }

    /// The saved file's bytes (compacts first), for pickling.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py.detach(|| run(None, || core_write(self, IvfIndex::to_bytes)))?;
        Ok(PyBytes::new(py, &bytes))
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<PyIvfIndex> {
        let data = data.to_vec();
        let index = py.detach(|| run(None, || IvfIndex::from_bytes(&data)))?;
        Ok(PyIvfIndex::wrap(index))
    }

    #[staticmethod]
    #[pyo3(signature = (path, mmap=false))]
    fn load(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<PyIvfIndex> {
        let index = py.detach(|| run(None, || IvfIndex::load(&path, mmap)))?;
        Ok(PyIvfIndex::wrap(index))
    }
}

/// `f` of the index under the write lock (called with the GIL released).
fn core_write<R>(index: &PyIvfIndex, f: impl FnOnce(&mut IvfIndex) -> crate::Result<R>) -> crate::Result<R> {
    let mut guard = index.inner.write().map_err(|_| poisoned_core())?;
    f(&mut guard)
}
