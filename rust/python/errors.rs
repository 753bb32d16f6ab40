//! The exception family: every core error becomes one of these, all
//! subclasses of `ValueError` (dtype problems, raised by the Python layer, of `TypeError`),
//! or a builtin `OSError` / `MemoryError`.

use crate::error::Error;
use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyMemoryError, PyOSError, PyPermissionError, PyTypeError, PyValueError};
use pyo3::PyErr;

create_exception!(
    q2key,
    Q2KeyError,
    PyValueError,
    "Base of the errors q2key raises for bad input values (a ValueError)."
);
create_exception!(q2key, NonFiniteError, Q2KeyError, "An input row holds NaN or ±Inf.");
create_exception!(
    q2key,
    ShapeError,
    Q2KeyError,
    "Array shapes or code widths do not fit together."
);
create_exception!(
    q2key,
    FormatError,
    Q2KeyError,
    "A saved index file is truncated, corrupted, foreign or from a newer format."
);
create_exception!(
    q2key,
    DTypeError,
    PyTypeError,
    "An array has a dtype q2key cannot use (a TypeError)."
);

/// Maps a core error onto its exception class, keeping the message.
pub(crate) fn from_err(err: Error) -> PyErr {
    let msg = err.to_string();
    match err {
        Error::NonFinite { .. } => NonFiniteError::new_err(msg),
        Error::Shape { .. } => ShapeError::new_err(msg),
        Error::Value { .. } | Error::DuplicateId { .. } | Error::UnknownId { .. } | Error::ReadOnly => {
            Q2KeyError::new_err(msg)
        }
        Error::Format { .. } => FormatError::new_err(msg),
        Error::Io { kind, .. } => match kind {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        Error::Alloc { .. } => PyMemoryError::new_err(msg),
    }
}
