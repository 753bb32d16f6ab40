//! Buffer checks shared by every module that takes flat row-major buffers:
//! one wording for "this buffer does not fit", wherever it is caught.

use crate::error::{Error, Result};

/// Number of rows of a flat buffer of `len` elements with rows of `width`.
pub(crate) fn check_rows(arg: &'static str, len: usize, width: usize) -> Result<usize> {
    if width == 0 {
        return if len == 0 {
            Ok(0)
        } else {
            Err(Error::shape(arg, "a row width of at least 1", "width 0"))
        };
    }
    if !len.is_multiple_of(width) {
        return Err(Error::shape(
            arg,
            format!("a multiple of the row width {width}"),
            format!("{len} elements"),
        ));
    }
    Ok(len / width)
}

/// `got` elements where exactly `expected` are needed.
pub(crate) fn check_len(arg: &'static str, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(Error::shape(arg, format!("{expected} elements"), got));
    }
    Ok(())
}

/// The number of neighbours a search returns: at least 1 (one wording for
/// every search).
pub(crate) fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::value("k", "must be at least 1"));
    }
    Ok(())
}
