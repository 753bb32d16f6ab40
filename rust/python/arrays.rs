//! Borrowing numpy arrays as slices and handing Rust buffers back as arrays.

use super::errors::ShapeError;
use numpy::{Element, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;

/// A zeroed output buffer of `rows × cols` elements, or `MemoryError` when the
/// size overflows or cannot be reserved (an abort would take Python down).
pub(crate) fn zeroed<T: Clone + Default>(rows: usize, cols: usize) -> PyResult<Vec<T>> {
    let len = rows.checked_mul(cols).ok_or_else(|| too_big(rows, cols))?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_big(rows, cols))?;
    v.resize(len, T::default());
    Ok(v)
}

fn too_big(rows: usize, cols: usize) -> PyErr {
    PyMemoryError::new_err(format!("cannot allocate an output of {rows} × {cols} elements"))
}

/// A contiguous, aligned view of a 2-D array with its shape; anything else
/// is an error naming the argument (the Python layer copies when needed).
pub(crate) fn matrix<'a, T: Element>(arg: &str, a: &'a PyReadonlyArray2<'_, T>) -> PyResult<(&'a [T], usize, usize)> {
    let (rows, cols) = (a.shape()[0], a.shape()[1]);
    let slice = a
        .as_slice()
        .map_err(|_| ShapeError::new_err(format!("{arg}: expected a C-contiguous, aligned array")))?;
    Ok((slice, rows, cols))
}

pub(crate) fn vector<'a, T: Element>(arg: &str, a: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| ShapeError::new_err(format!("{arg}: expected a C-contiguous, aligned array")))
}

/// A `(rows, cols)` array owning `data` (no copy).
pub(crate) fn to_matrix<T: Element>(
    py: Python<'_>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    PyArray1::from_vec(py, data).reshape([rows, cols])
}

pub(crate) fn to_vector<T: Element>(py: Python<'_>, data: Vec<T>) -> Bound<'_, PyArray1<T>> {
    PyArray1::from_vec(py, data)
}
