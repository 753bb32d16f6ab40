//! Borrowing numpy arrays as slices and handing Rust buffers back as arrays.

use super::errors::{about, from_err, ShapeError};
use numpy::{Element, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// A float32 or float64 `(N, dim)` matrix: the encoders take either (the
/// Python layer picks float32 when the input converts to it exactly).
#[derive(FromPyObject)]
pub(crate) enum FloatRows<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

/// The rows of a [`FloatRows`] as a slice, to hand the core with the GIL released.
pub(crate) enum FloatSlice<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl<'py> FloatRows<'py> {
    /// `(rows, dim)`.
    pub(crate) fn shape(&self) -> (usize, usize) {
        let shape = match self {
            FloatRows::F32(a) => a.shape(),
            FloatRows::F64(a) => a.shape(),
        };
        (shape[0], shape[1])
    }

    /// The contiguous rows; an error naming `arg` otherwise.
    pub(crate) fn slice(&self, arg: &str) -> PyResult<FloatSlice<'_>> {
        Ok(match self {
            FloatRows::F32(a) => FloatSlice::F32(matrix(arg, a)?.0),
            FloatRows::F64(a) => FloatSlice::F64(matrix(arg, a)?.0),
        })
    }
}

/// `$body` with `$x` bound to the rows of a [`FloatSlice`] in their own
/// element type (the core's encoders are generic over it).
macro_rules! with_rows {
    ($rows:expr, |$x:ident| $body:expr) => {
        match $rows {
            $crate::python::arrays::FloatSlice::F32($x) => $body,
            $crate::python::arrays::FloatSlice::F64($x) => $body,
        }
    };
}
pub(crate) use with_rows;

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
    let not_c = || about::<ShapeError>(arg, "expected a C-contiguous, aligned array".into());
    // `as_slice` also accepts a Fortran-ordered array, whose memory holds
    // the transpose: read as rows it would be silently wrong.
    if !a.is_c_contiguous() {
        return Err(not_c());
    }
    let slice = a.as_slice().map_err(|_| not_c())?;
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
