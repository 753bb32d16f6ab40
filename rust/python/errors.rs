//! The exception family, defined in Python (`q2key._errors`) so that errors
//! found in Rust and in Python are the same classes with the same attributes:
//! `.arg` (the public parameter), `.row` and `.col` (where in that array).
//! Every core error becomes one of them, or a builtin `OSError` / `MemoryError`.

use crate::error::Error;
use pyo3::exceptions::{PyFileNotFoundError, PyMemoryError, PyOSError, PyPermissionError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use pyo3::{import_exception, PyTypeInfo};

import_exception!(q2key._errors, Q2KeyError);
import_exception!(q2key._errors, NonFiniteError);
import_exception!(q2key._errors, ShapeError);
import_exception!(q2key._errors, FormatError);
import_exception!(q2key._errors, DTypeError);

/// Where an error is: the public parameter, and the row and column of that array.
#[derive(Default)]
pub(crate) struct Location<'a> {
    pub arg: Option<&'a str>,
    pub row: Option<usize>,
    pub col: Option<usize>,
}

impl<'a> Location<'a> {
    pub(crate) fn arg(arg: &'a str) -> Self {
        Location {
            arg: Some(arg),
            ..Self::default()
        }
    }
}

/// An instance of the q2key exception `T` with `message` (which starts
/// with `"<arg>: "` when `arg` is known) and its location attributes.
pub(crate) fn located<T: PyTypeInfo>(message: String, at: Location<'_>) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let kwargs = PyDict::new(py);
            kwargs.set_item("arg", at.arg)?;
            kwargs.set_item("row", at.row)?;
            kwargs.set_item("col", at.col)?;
            let ty: Bound<'_, PyType> = T::type_object(py);
            Ok(PyErr::from_value(ty.call((message,), Some(&kwargs))?))
        };
        // Building the exception fails only if q2key._errors cannot be
        // imported or the interpreter is out of memory: raise that instead.
        build().unwrap_or_else(|e| e)
    })
}

/// A q2key error of class `T` about the public parameter `arg`.
pub(crate) fn about<T: PyTypeInfo>(arg: &str, message: String) -> PyErr {
    located::<T>(message, Location::arg(arg))
}

/// Maps a core error onto its exception class, keeping the message and
/// setting `.arg`, `.row` and `.col` from the variant.
pub(crate) fn from_err(err: Error) -> PyErr {
    raise(err, None)
}

/// [`from_err`] for a core function whose parameter `from` the caller
/// exposes as `to` (the core calls its vectors `x`; `Index.add` says
/// `vectors`, the CLI `--thresholds`): an error about `from` names `to`.
pub(crate) fn renamed(err: Error, from: &str, to: &str) -> PyErr {
    raise(err, Some((from, to)))
}

fn raise(err: Error, rename: Option<(&str, &str)>) -> PyErr {
    let mut msg = err.to_string();
    let arg = |core: &'static str| -> &str {
        match rename {
            Some((from, to)) if from == core => to,
            _ => core,
        }
    };
    if let Some(core) = core_arg(&err) {
        let to = arg(core);
        if to != core {
            if let Some(rest) = msg.strip_prefix(core).and_then(|m| m.strip_prefix(": ")) {
                msg = format!("{to}: {rest}");
            }
        }
    }
    match err {
        Error::NonFinite { arg: a, row, col, .. } => located::<NonFiniteError>(
            msg,
            Location {
                arg: Some(arg(a)),
                row: Some(row),
                col: Some(col),
            },
        ),
        Error::Symbol { arg: a, row, col, .. } => located::<Q2KeyError>(
            msg,
            Location {
                arg: Some(arg(a)),
                row: Some(row),
                col: Some(col),
            },
        ),
        Error::Shape { arg: a, .. } => about::<ShapeError>(arg(a), msg),
        Error::ThresholdDim { .. } => about::<ShapeError>(arg("threshold"), msg),
        Error::Value { arg: a, .. } => about::<Q2KeyError>(arg(a), msg),
        Error::DuplicateId { row, .. } => located::<Q2KeyError>(
            msg,
            Location {
                arg: Some("ids"),
                row: Some(row),
                col: None,
            },
        ),
        Error::UnknownId { position, .. } => located::<Q2KeyError>(
            msg,
            Location {
                arg: Some("ids"),
                row: Some(position),
                col: None,
            },
        ),
        Error::ReadOnly => located::<Q2KeyError>(msg, Location::default()),
        // `Index::from_bytes` names its input `data`, the public parameter; other
        // format errors name a file, which is no parameter.
        Error::Format { ref path, .. } if path == "data" => about::<FormatError>("data", msg),
        Error::Format { .. } => located::<FormatError>(msg, Location::default()),
        Error::Io { kind, errno, .. } => os_error(kind, msg, errno),
        Error::Alloc { .. } => PyMemoryError::new_err(msg),
    }
}

/// The parameter an error's message starts with, for the variants that name one.
fn core_arg(err: &Error) -> Option<&'static str> {
    match err {
        Error::NonFinite { arg, .. }
        | Error::Shape { arg, .. }
        | Error::Value { arg, .. }
        | Error::Symbol { arg, .. } => Some(arg),
        Error::ThresholdDim { .. } => Some("threshold"),
        _ => None,
    }
}

/// The `OSError` subclass for `kind`, with q2key's message and the OS's
/// error number as `errno` (`os.strerror(e.errno)` gives the OS's words), so
/// callers can restate it without reading the message. `strerror` and
/// `filename` stay unset: setting them makes `str(e)` Python's
/// `"[Errno N] words: 'path'"`, which drops what q2key was doing.
fn os_error(kind: std::io::ErrorKind, msg: String, errno: Option<i32>) -> PyErr {
    let err = match kind {
        std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
        _ => PyOSError::new_err(msg),
    };
    if let Some(errno) = errno {
        Python::attach(|py| {
            // Only an interpreter out of memory fails to set an attribute; the
            // error keeps its message then.
            let _ = err.value(py).setattr("errno", errno);
        });
    }
    err
}
