//! The one error type of the core. Every fallible public function returns
//! [`Result<T>`]; the Python layer maps each variant onto one exception class.

use std::fmt;

/// What went wrong, with enough context to name the argument, the row and
/// what was expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A NaN or ±Inf in an input vector.
    NonFinite {
        arg: &'static str,
        row: usize,
        col: usize,
        value: f64,
    },
    /// A buffer or array whose length or width does not fit the others.
    Shape {
        arg: &'static str,
        expected: String,
        got: String,
    },
    /// A value outside its domain (a symbol > 3, a negative threshold, k = 0, ...).
    Value { arg: &'static str, reason: String },
    /// A saved index file that is truncated, corrupted, foreign or from a newer format.
    Format { path: String, reason: String },
    /// An operating-system error reading or writing `path` (missing file or
    /// directory, permissions, full disk, ...).
    Io {
        path: String,
        kind: std::io::ErrorKind,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn shape(arg: &'static str, expected: impl fmt::Display, got: impl fmt::Display) -> Self {
        Error::Shape {
            arg,
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    pub(crate) fn value(arg: &'static str, reason: impl Into<String>) -> Self {
        Error::Value {
            arg,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NonFinite { arg, row, col, value } => write!(
                f,
                "{arg}: row {row} has a non-finite value ({value}) at column {col}; inputs must be finite"
            ),
            Error::Shape { arg, expected, got } => {
                write!(f, "{arg}: expected {expected}, got {got}")
            }
            Error::Value { arg, reason } => write!(f, "{arg}: {reason}"),
            Error::Format { path, reason } => write!(f, "{path}: {reason}"),
            Error::Io { path, reason, .. } => write!(f, "{path}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
