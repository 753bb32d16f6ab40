//! Borrowing numpy arrays as slices and handing Rust buffers back as arrays.

use super::errors::{about, from_err, ShapeError};
use numpy::{Element, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// A zeroed output buffer of `rows × cols` elements, or `MemoryError` naming
/// it ("`arg`: cannot allocate `what` (...)") when the size overflows or cannot
/// be reserved (an abort would take Python down); see [`crate::error::zeroed`].
pub(crate) fn zeroed<T: Clone + Default>(
    arg: &'static str,
    what: &'static str,
    rows: usize,
    cols: usize,
) -> PyResult<Vec<T>> {
    crate::error::zeroed(arg, what, rows, cols).map_err(from_err)
}

/// A contiguous, aligned view of a 2-D array with its shape; anything else
/// is an error naming the argument (the Python layer copies when needed).
pub(crate) fn matrix<'a, T: Element>(arg: &str, a: &'a PyReadonlyArray2<'_, T>) -> PyResult<(&'a [T], usize, usize)> {
    let (rows, cols) = (a.shape()[0], a.shape()[1]);
    let slice = a
        .as_slice()
        .map_err(|_| about::<ShapeError>(arg, "expected a C-contiguous, aligned array".into()))?;
    Ok((slice, rows, cols))
}

pub(crate) fn vector<'a, T: Element>(arg: &str, a: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| about::<ShapeError>(arg, "expected a C-contiguous, aligned array".into()))
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
