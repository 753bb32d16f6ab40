//! The one error type of the core. Every fallible public function returns
//! [`Result<T>`]; the Python layer maps each variant onto one exception class.

use std::fmt;

/// What went wrong, with enough context to name the argument, the row and
/// what was expected. Mistakes a caller may want to tell apart (an id already
/// stored, an id not stored, a read-only index) have variants of their own;
/// new variants may be added, so matches need a wildcard arm.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
        /// The operating system's error number, when the OS reported one.
        errno: Option<i32>,
    },
    /// An output whose size (set by the request: queries × k, hits, rows ×
    /// columns, ...) overflows or cannot be allocated.
    Alloc {
        /// The function, as the caller knows it (`search`, `lee_matrix`, ...).
        arg: &'static str,
        /// The output, e.g. "the distances output".
        what: &'static str,
        /// Its size, e.g. "30000 × 1000000 uint32 = 120 GB".
        size: String,
    },
    /// `Index::add` given an id the index already holds, or the same id twice
    /// in one batch (the argument is `ids`; nothing was added).
    DuplicateId {
        id: u64,
        /// The row of the batch holding the repeated id.
        row: usize,
        /// True when the id repeats within the batch, false when it is
        /// already stored in the index.
        within_batch: bool,
    },
    /// An id the index does not hold (e.g. `Index::codes_of`; the argument is `ids`).
    UnknownId {
        id: u64,
        /// Its position in the caller's list of ids.
        position: usize,
    },
    /// A change (add, remove, compact, ...) to an index memory-mapped read-only.
    ReadOnly,
    /// Thresholds made for vectors of one dimension used on vectors of
    /// another (the argument is `threshold`).
    ThresholdDim { thresholds: usize, vectors: usize },
    /// A symbol outside 0..=3 at `row`, `col` of the symbol array `arg`.
    Symbol {
        arg: &'static str,
        row: usize,
        col: usize,
        value: u8,
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

impl Error {
    /// An operating-system error `e` while doing `what` to `path`.
    pub(crate) fn io(path: &str, what: &str, e: &std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            kind: e.kind(),
            reason: format!("{what}: {e}"),
            errno: e.raw_os_error(),
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
            Error::Alloc { arg, what, size } => write!(f, "{arg}: cannot allocate {what} ({size})"),
            Error::DuplicateId {
                id,
                row,
                within_batch: true,
            } => write!(f, "ids: id {id} appears twice in the batch (again at row {row})"),
            Error::DuplicateId {
                id,
                row,
                within_batch: false,
            } => write!(f, "ids: id {id} (row {row} of the batch) is already in the index"),
            Error::UnknownId { id, position } => write!(f, "ids: id {id} (position {position}) is not in the index"),
            Error::Symbol { arg, row, col, value } => write!(
                f,
                "{arg}: row {row} column {col} holds {value}; symbols are 0 (A), 1 (B), 2 (C) or 3 (D)"
            ),
            Error::ThresholdDim { thresholds, vectors } => write!(
                f,
                "threshold: thresholds are for dimension {thresholds}, the vectors have {vectors}"
            ),
            Error::ReadOnly => write!(
                f,
                "index: this index is memory-mapped read-only (loaded with mmap=True); load it without mmap to change it"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// A zeroed buffer of `rows × cols` elements for an output whose size comes
/// from the caller's request, or [`Error::Alloc`] naming it when the size
/// overflows or the memory cannot be reserved: the infallible `vec!` would
/// abort the process (and a Python interpreter with it).
pub(crate) fn zeroed<T: Clone + Default>(
    arg: &'static str,
    what: &'static str,
    rows: usize,
    cols: usize,
) -> Result<Vec<T>> {
    let mut v = with_capacity(arg, what, rows, cols)?;
    v.resize(rows * cols, T::default()); // checked by `with_capacity`
    Ok(v)
}

/// An empty buffer with room for exactly `rows × cols` elements; see [`zeroed`].
pub(crate) fn with_capacity<T>(arg: &'static str, what: &'static str, rows: usize, cols: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    let len = rows
        .checked_mul(cols)
        .ok_or_else(|| alloc_error::<T>(arg, what, rows, cols))?;
    v.try_reserve_exact(len)
        .map_err(|_| alloc_error::<T>(arg, what, rows, cols))?;
    Ok(v)
}

/// A copy of `data`, rows of `cols` elements (e.g. an index's rows handed to
/// the caller), or [`Error::Alloc`]; see [`zeroed`]. Only the bindings copy
/// borrowed arrays.
#[cfg(feature = "python")]
pub(crate) fn copied<T: Copy>(arg: &'static str, what: &'static str, data: &[T], cols: usize) -> Result<Vec<T>> {
    let cols = cols.max(1);
    let mut v = with_capacity(arg, what, data.len().div_ceil(cols), cols)?;
    v.extend_from_slice(data);
    Ok(v)
}

/// Makes room for `more` elements at the end of `v` (an output that grows
/// with the results, e.g. range-search hits), or [`Error::Alloc`].
pub(crate) fn reserve<T>(v: &mut Vec<T>, more: usize, arg: &'static str, what: &'static str) -> Result<()> {
    v.try_reserve(more).map_err(|_| {
        let wanted = v.len().saturating_add(more);
        Error::Alloc {
            arg,
            what,
            size: format!(
                "more than {wanted} {} = {}",
                element_name::<T>(),
                bytes(wanted, std::mem::size_of::<T>())
            ),
        }
    })
}

pub(crate) fn alloc_error<T>(arg: &'static str, what: &'static str, rows: usize, cols: usize) -> Error {
    let size = match rows.checked_mul(cols) {
        Some(len) => bytes(len, std::mem::size_of::<T>()),
        None => "more than 2^64 elements".to_string(),
    };
    Error::Alloc {
        arg,
        what,
        size: format!("{rows} × {cols} {} = {size}", element_name::<T>()),
    }
}

/// `len` elements of `size` bytes, in decimal units.
fn bytes(len: usize, size: usize) -> String {
    let total = len as f64 * size as f64;
    let (value, unit) = [(1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
        .into_iter()
        .find(|&(scale, _)| total >= scale)
        .map_or((total, "bytes"), |(scale, unit)| (total / scale, unit));
    if unit == "bytes" {
        format!("{total} bytes")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// numpy's name of an element type (`uint32`, `float64`, ...).
fn element_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name {
        "u8" => "uint8",
        "u32" => "uint32",
        "u64" => "uint64",
        "i64" => "int64",
        "f32" => "float32",
        "f64" => "float64",
        "usize" => "uint64",
        _ => name.rsplit("::").next().unwrap_or(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unallocatable_output_is_an_error_naming_it() {
        // Overflowing the element count, and a count past isize::MAX bytes: both refused without allocating.
        for (rows, cols) in [(usize::MAX, 2), (1 << 40, 1 << 20)] {
            let err = zeroed::<u32>("search", "the distances output", rows, cols).unwrap_err();
            assert!(matches!(err, Error::Alloc { arg: "search", .. }), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with("search: cannot allocate the distances output ("),
                "{msg}"
            );
            assert!(msg.contains(&format!("{rows} × {cols} uint32")), "{msg}");
        }
        let err = alloc_error::<u32>("search", "the distances output", 30_000, 1_000_000);
        assert_eq!(
            err.to_string(),
            "search: cannot allocate the distances output (30000 × 1000000 uint32 = 120.0 GB)"
        );
    }

    #[test]
    fn allocatable_outputs_are_zeroed_to_size() {
        let v = zeroed::<u64>("f", "the output", 3, 5).unwrap();
        assert_eq!(v, vec![0u64; 15]);
        assert!(zeroed::<u8>("f", "the output", 0, usize::MAX).unwrap().is_empty());
        let mut grow: Vec<u32> = Vec::new();
        reserve(&mut grow, 10, "f", "the hits").unwrap();
        assert!(grow.capacity() >= 10);
        let err = reserve(&mut grow, usize::MAX, "range_search", "the hits output").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("range_search: cannot allocate the hits output (more than"),
            "{err}"
        );
    }
}
