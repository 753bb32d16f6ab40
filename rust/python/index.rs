//! `q2key._native.Index`: the core index behind a read/write lock. Every
//! method, getters included, waits for the lock with the GIL released, so
//! searches from many Python threads run in parallel, writers wait only for
//! the lock, and a getter waiting for a long save does not stop other threads.
//!
//! Arrays borrowed from Python stay writable by other Python threads while the
//! GIL is released. Whatever is used as an id, a mask or a length is copied
//! first (a filter, the ids of an add); arrays only read as data (vectors,
//! codes, queries, ids looked up once each) stay borrowed: a concurrent write
//! gives a different but valid answer.

use super::arrays::{matrix, to_matrix, to_vector, vector, with_rows, FloatRows};
use super::errors::{from_err, renamed, Q2KeyError};
use super::run;
use super::thresholds::PyThresholds;
use crate::error::copied;
use crate::index::{Filter, Index};
use crate::search::lee::LeeWeights;
use numpy::ndarray::{ArrayView1, ArrayView2};
use numpy::PyArrayMethods;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

type U64s<'py> = Bound<'py, PyArray1<u64>>;
/// Asymmetric search results: `(distances float32 (Q, k'), ids uint64 (Q, k'))`.
type AsymFound<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<u64>>);

#[pyclass(name = "Index", module = "q2key._native", frozen)]
pub(crate) struct PyIndex {
    inner: RwLock<Index>,
    /// Live zero-copy views of the stored arrays: while any exists, writes
    /// that could move the memory raise `BufferError` (as `bytearray` does).
    views: Arc<AtomicUsize>,
}

/// The base object of a zero-copy view: keeps the index alive and counts the view.
#[pyclass(module = "q2key._native", frozen)]
pub(crate) struct ViewGuard {
    views: Arc<AtomicUsize>,
    _index: Py<PyIndex>,
}

impl Drop for ViewGuard {
    fn drop(&mut self) {
        self.views.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PyIndex {
    fn read(&self) -> PyResult<RwLockReadGuard<'_, Index>> {
        self.inner
            .read()
            .map_err(|_| Q2KeyError::new_err("index: a previous call failed while writing"))
    }

    fn lock_for_write(&self) -> PyResult<RwLockWriteGuard<'_, Index>> {
        self.inner
            .write()
            .map_err(|_| Q2KeyError::new_err("index: a previous call failed while writing"))
    }

    /// The write lock, refused while zero-copy views of the rows are alive.
    fn write(&self) -> PyResult<RwLockWriteGuard<'_, Index>> {
        let guard = self.lock_for_write()?;
        self.check_no_views()?;
        Ok(guard)
    }

    /// Call with the write lock held: views are counted under the read lock,
    /// so none can appear meanwhile.
    fn check_no_views(&self) -> PyResult<()> {
        let live = self.views.load(Ordering::Acquire);
        if live > 0 {
            return Err(PyBufferError::new_err(format!(
                "index: {live} zero-copy view(s) of its arrays are alive; delete them (or copy what you need) \
                 before changing the index"
            )));
        }
        Ok(())
    }

    /// The write lock with removed rows compacted away, so `arrays()` is
    /// `Some` while it is held (however other threads remove meanwhile).
    fn compacted(&self) -> PyResult<RwLockWriteGuard<'_, Index>> {
        let mut guard = self.lock_for_write()?;
        if guard.arrays().is_none() {
            self.check_no_views()?; // none can be alive with removed rows: removing refuses then
            guard.compact().map_err(from_err)?;
        }
        Ok(guard)
    }

    /// The read lock, held with the GIL (to build arrays that borrow the
    /// rows), but waited for without it: a long save or compaction in another
    /// thread must not stop every Python thread.
    fn read_with_gil(&self, py: Python<'_>) -> PyResult<RwLockReadGuard<'_, Index>> {
        loop {
            match self.inner.try_read() {
                Ok(guard) => return Ok(guard),
                Err(std::sync::TryLockError::WouldBlock) => py.detach(|| drop(self.inner.read())),
                Err(std::sync::TryLockError::Poisoned(_)) => return self.read(),
            }
        }
    }

    /// `f` of the index, under the read lock taken with the GIL released.
    fn with_read<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&Index) -> R + Send) -> PyResult<R> {
        py.detach(|| self.read().map(|index| f(&index)))
    }

    /// The write lock for calls that never move the rows of a compact index
    /// (saving and pickling compact only when rows were removed).
    fn write_keeping_rows(&self) -> PyResult<RwLockWriteGuard<'_, Index>> {
        let guard = self.lock_for_write()?;
        if guard.arrays().is_some() {
            return Ok(guard);
        }
        drop(guard);
        self.write()
    }

    fn wrap(index: Index) -> PyIndex {
        PyIndex {
            inner: RwLock::new(index),
            views: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Lock poisoning is reported as a plain value error.
fn to_core(e: PyErr) -> crate::Error {
    crate::Error::value("index", e.to_string())
}

/// Not reached: the rows are read under the lock that compacted them.
fn removed_rows() -> crate::Error {
    crate::Error::value("index", "rows were removed during the call; try again")
}

/// A copy of an optional id array: ids are checked (repeats, presence) and then used.
fn owned_ids(ids: &Option<PyReadonlyArray1<'_, u64>>) -> PyResult<Option<Vec<u64>>> {
    ids.as_ref()
        .map(|i| copied("ids", "a copy of the ids", vector("ids", i)?, 1).map_err(from_err))
        .transpose()
}

/// A search filter copied out of Python's arrays before the GIL is released:
/// the search takes the largest id, then sizes a bitmap by it and sets the
/// ids' bits, so ids another thread rewrites in between would index out of it.
pub(super) enum OwnedFilter {
    Ids(Vec<u64>),
    /// Bytes, non-zero = allowed (a bool mask arrives as its bytes).
    Mask(Vec<u8>),
}

impl OwnedFilter {
    /// The filter from the binding's two optional arrays (ids win when both are given).
    pub(super) fn of(
        ids: &Option<PyReadonlyArray1<'_, u64>>,
        mask: &Option<PyReadonlyArray1<'_, u8>>,
    ) -> PyResult<Option<Self>> {
        fn copy<T: Copy>(values: &[T]) -> PyResult<Vec<T>> {
            copied("filter", "a copy of the filter", values, 1).map_err(from_err)
        }
        if let Some(ids) = ids {
            return Ok(Some(OwnedFilter::Ids(copy(vector("filter", ids)?)?)));
        }
        mask.as_ref()
            .map(|m| Ok(OwnedFilter::Mask(copy(vector("filter", m)?)?)))
            .transpose()
    }

    pub(super) fn as_filter(&self) -> Filter<'_> {
        match self {
            OwnedFilter::Ids(ids) => Filter::Ids(ids),
            OwnedFilter::Mask(mask) => Filter::Mask(mask),
        }
    }
}

#[pymethods]
impl PyIndex {
    /// An empty index for vectors of dimension `dim`, encoding them under
    /// `thresholds` (`None`: the Gaussian rule).
    #[new]
    #[pyo3(signature = (dim, thresholds=None, weights=None))]
    fn new(
        dim: usize,
        thresholds: Option<PyRef<'_, PyThresholds>>,
        weights: Option<(f64, f64, f64)>,
    ) -> PyResult<Self> {
        let dim = crate::check_dim(dim).map_err(from_err)?;
        let table = thresholds.as_deref().and_then(|t| t.0.reconstruction().cloned());
        let rotation = thresholds.as_deref().and_then(|t| t.0.rotation().cloned());
        let thresholds = PyThresholds::rule_for(thresholds.as_deref(), dim, "threshold")?;
        let weights = weights
            .map(|(m, s, b)| LeeWeights::new(m, s, b))
            .transpose()
            .map_err(from_err)?;
        let index = Index::new(dim, thresholds, weights)
            .and_then(|i| i.with_reconstruction(table))
            .and_then(|i| i.with_rotation(rotation))
            .map_err(from_err)?;
        Ok(PyIndex::wrap(index))
    }

    #[getter]
    fn dim(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_read(py, Index::dim)
    }

    #[getter]
    fn width(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_read(py, Index::width)
    }

    #[getter]
    fn mapped(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_read(py, Index::is_mapped)
    }

    /// The thresholds vectors are encoded with, for the index's dimension.
    #[getter]
    fn thresholds(&self, py: Python<'_>) -> PyResult<PyThresholds> {
        self.with_read(py, Index::threshold_set)?
            .map(PyThresholds)
            .map_err(from_err)
    }

    #[getter]
    fn weights(&self, py: Python<'_>) -> PyResult<Option<(f64, f64, f64)>> {
        self.with_read(py, |index| index.weights().map(|w| (w.magnitude, w.sign, w.both)))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_read(py, Index::len)
    }

    fn contains(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        self.with_read(py, |index| index.contains(id))
    }

    /// Encodes float32 or float64 rows `(N, dim)` under the index's thresholds
    /// and stores them; returns their ids.
    #[pyo3(signature = (x, ids=None, threads=None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        x: FloatRows<'py>,
        ids: Option<PyReadonlyArray1<'py, u64>>,
        threads: Option<usize>,
    ) -> PyResult<U64s<'py>> {
        // The vectors are only read as data; the ids, checked for repeats and then
        // stored, are copied so that the check holds for what is stored.
        let rows = x.slice("vectors")?;
        let ids = owned_ids(&ids)?;
        // Encode under the read lock (searches go on), then take the write lock to store.
        let out = py.detach(|| {
            let encoded = run(threads, || {
                let index = self.read().map_err(to_core)?;
                Ok(with_rows!(rows, |x| index.encode_rows(x)))
            })?
            .map_err(|e| renamed(e, "x", "vectors"))?;
            self.write()?.add_encoded(encoded, ids.as_deref()).map_err(from_err)
        })?;
        Ok(to_vector(py, out))
    }

    #[pyo3(signature = (codes, ids=None))]
    fn add_codes<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray2<'py, u8>,
        ids: Option<PyReadonlyArray1<'py, u64>>,
    ) -> PyResult<U64s<'py>> {
        // The codes are only read as data; the ids are copied (see `add`).
        let (data, _, _) = matrix("codes", &codes)?;
        let ids = owned_ids(&ids)?;
        let out = py.detach(|| self.write()?.add_codes(data, ids.as_deref()).map_err(from_err))?;
        Ok(to_vector(py, out))
    }

    fn remove(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, u64>) -> PyResult<usize> {
        // Borrowed: each id is read once, as a key of the id map.
        let ids = vector("ids", &ids)?;
        py.detach(|| self.write()?.remove(ids).map_err(from_err))
    }

    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.write()?.compact().map_err(from_err))
    }

    /// `(distances uint32, weighted float64, ids uint64)`, each `(Q, columns)`;
    /// one of the two distance arrays is empty (`(Q, 0)`) by the index's kind.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (queries, k, filter_ids=None, filter_mask=None, threads=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, u8>,
        k: usize,
        filter_ids: Option<PyReadonlyArray1<'py, u64>>,
        filter_mask: Option<PyReadonlyArray1<'py, u8>>,
        threads: Option<usize>,
    ) -> PyResult<(
        Bound<'py, PyArray2<u32>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<u64>>,
    )> {
        // The queries are only read as data; the filter is copied.
        let (q, nq, _) = matrix("queries", &queries)?;
        let filter = OwnedFilter::of(&filter_ids, &filter_mask)?;
        let found = py.detach(|| {
            run(threads, || {
                let index = self.read().map_err(to_core)?;
                index.search(q, k, filter.as_ref().map(OwnedFilter::as_filter))
            })
        })?;
        let cols = found.columns;
        let plain_cols = if found.weighted.is_empty() { cols } else { 0 };
        Ok((
            to_matrix(py, found.distances, nq, plain_cols)?,
            to_matrix(py, found.weighted, nq, cols - plain_cols)?,
            to_matrix(py, found.ids, nq, cols)?,
        ))
    }

    /// Asymmetric search of float queries (SPEC §8): `(distances float32 =
    /// 1 − cosine, ids uint64)`, each `(Q, columns)`, ascending, ties by id.
    #[pyo3(signature = (queries, k, filter_ids=None, filter_mask=None, threads=None))]
    fn search_asym<'py>(
        &self,
        py: Python<'py>,
        queries: FloatRows<'py>,
        k: usize,
        filter_ids: Option<PyReadonlyArray1<'py, u64>>,
        filter_mask: Option<PyReadonlyArray1<'py, u8>>,
        threads: Option<usize>,
    ) -> PyResult<AsymFound<'py>> {
        let dim = self.with_read(py, Index::dim)?;
        let nq = queries.shape().0;
        let q = super::asym::query_rows(&queries, dim, "queries")?;
        let filter = OwnedFilter::of(&filter_ids, &filter_mask)?;
        let found = py.detach(|| {
            run(threads, || {
                let index = self.read().map_err(to_core)?;
                index.search_asym(&q, k, filter.as_ref().map(OwnedFilter::as_filter))
            })
        })?;
        let cols = found.columns;
        Ok((
            to_matrix(py, found.distances, nq, cols)?,
            to_matrix(py, found.ids, nq, cols)?,
        ))
    }

    /// faiss layout: `(lims int64 (Q + 1,), distances uint32, ids uint64)`.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (queries, radius, filter_ids=None, filter_mask=None, threads=None))]
    fn range_search<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, u8>,
        radius: u32,
        filter_ids: Option<PyReadonlyArray1<'py, u64>>,
        filter_mask: Option<PyReadonlyArray1<'py, u8>>,
        threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<u32>>, U64s<'py>)> {
        let (q, _, _) = matrix("queries", &queries)?;
        let filter = OwnedFilter::of(&filter_ids, &filter_mask)?;
        let found = py.detach(|| {
            run(threads, || {
                let index = self.read().map_err(to_core)?;
                index.range_search(q, radius, filter.as_ref().map(OwnedFilter::as_filter))
            })
        })?;
        let lims = found.lims.iter().map(|&l| l as i64).collect();
        Ok((
            to_vector(py, lims),
            to_vector(py, found.distances),
            to_vector(py, found.ids),
        ))
    }

    fn window<'py>(&self, py: Python<'py>, key: u64, delta: u64) -> PyResult<U64s<'py>> {
        let ids = py.detach(|| self.read().map(|i| i.window(key, delta)))?;
        Ok(to_vector(py, ids))
    }

    fn prefix<'py>(&self, py: Python<'py>, key: u64, depth: u32) -> PyResult<U64s<'py>> {
        let ids = py.detach(|| self.read()?.prefix(key, depth).map_err(from_err))?;
        Ok(to_vector(py, ids))
    }

    fn codes_of<'py>(&self, py: Python<'py>, ids: PyReadonlyArray1<'py, u64>) -> PyResult<Bound<'py, PyArray2<u8>>> {
        // Borrowed: each id is looked up once (an unknown one is an error naming it).
        let ids = vector("ids", &ids)?;
        let (codes, width) = py.detach(|| {
            let index = self.read()?;
            index.codes_of(ids).map(|c| (c, index.width())).map_err(from_err)
        })?;
        to_matrix(py, codes, ids.len(), width)
    }

    /// Copies of the stored `(codes (N, width), keys (N,), ids (N,))`, compacting
    /// first: one state of the index, whatever other threads change meanwhile.
    #[allow(clippy::type_complexity)]
    fn arrays<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyArray2<u8>>, U64s<'py>, U64s<'py>)> {
        let copy = |index: &Index| -> PyResult<_> {
            let width = index.width();
            let (c, k, i) = index.arrays().ok_or_else(|| from_err(removed_rows()))?;
            let arrays = (
                copied("arrays", "a copy of the codes", c, width).map_err(from_err)?,
                copied("arrays", "a copy of the keys", k, 1).map_err(from_err)?,
                copied("arrays", "a copy of the ids", i, 1).map_err(from_err)?,
            );
            Ok((arrays, width))
        };
        let ((codes, keys, ids), width) = py.detach(|| {
            {
                let index = self.read()?;
                if index.arrays().is_some() {
                    return copy(&index); // no removed rows: copied under the read lock
                }
            }
            copy(&*self.compacted()?) // compacted and copied under one write lock
        })?;
        let rows = ids.len();
        Ok((
            to_matrix(py, codes, rows, width)?,
            to_vector(py, keys),
            to_vector(py, ids),
        ))
    }

    /// Zero-copy read-only `(codes (N, width), keys (N,), ids (N,))` of the
    /// stored rows (compacting first if rows were removed). While they live,
    /// writes raise `BufferError`.
    #[allow(clippy::type_complexity)]
    fn views<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyArray2<u8>>, U64s<'py>, U64s<'py>)> {
        let py = slf.py();
        let this = slf.get();
        // The views borrow the rows under the read lock; rows removed since the
        // compaction (by another thread) are compacted again.
        let index = loop {
            let index = this.read_with_gil(py)?;
            if index.arrays().is_some() {
                break index;
            }
            drop(index);
            py.detach(|| this.compacted().map(drop))?;
        };
        let (codes, keys, ids) = index.arrays().ok_or_else(|| from_err(removed_rows()))?;
        let width = index.width();
        let guard = || -> PyResult<Bound<'py, PyAny>> {
            this.views.fetch_add(1, Ordering::AcqRel);
            let g = ViewGuard {
                views: Arc::clone(&this.views),
                _index: slf.clone().unbind(),
            };
            Ok(Bound::new(py, g)?.into_any())
        };
        let rows = ids.len();
        let codes_view =
            ArrayView2::from_shape((rows, width), codes).map_err(|e| Q2KeyError::new_err(e.to_string()))?;
        // SAFETY: the memory lives in this index (or its file map), which each
        // guard keeps alive; no write can move it while a guard exists (see `write`).
        let arrays = unsafe {
            (
                PyArray2::borrow_from_array(&codes_view, guard()?),
                PyArray1::borrow_from_array(&ArrayView1::from(keys), guard()?),
                PyArray1::borrow_from_array(&ArrayView1::from(ids), guard()?),
            )
        };
        arrays.0.readwrite().make_nonwriteable();
        arrays.1.readwrite().make_nonwriteable();
        arrays.2.readwrite().make_nonwriteable();
        Ok(arrays)
    }

    /// `(alive, dead, dim, code_bytes, bytes_per_row, mapped)`.
    fn stats(&self, py: Python<'_>) -> PyResult<(usize, usize, usize, usize, usize, bool)> {
        let s = self.with_read(py, Index::stats)?;
        Ok((s.alive, s.dead, s.dim, s.code_bytes, s.bytes_per_row, s.mapped))
    }

    /// Compacts and saves atomically (takes the write lock: searches wait).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.write_keeping_rows()?.save(&path).map_err(from_err))
    }

    /// The saved file's bytes (compacts first), for pickling.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let bytes = py.detach(|| self.write_keeping_rows()?.to_bytes().map_err(from_err))?;
        Ok(pyo3::types::PyBytes::new(py, &bytes))
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<PyIndex> {
        let index = py.detach(|| Index::from_bytes(data).map_err(from_err))?;
        Ok(PyIndex::wrap(index))
    }

    #[staticmethod]
    #[pyo3(signature = (path, mmap=false))]
    fn load(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<PyIndex> {
        let index = py.detach(|| Index::load(&path, mmap).map_err(from_err))?;
        Ok(PyIndex::wrap(index))
    }
}
