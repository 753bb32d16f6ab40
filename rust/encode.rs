//! Batch encoding of a row-major `(rows, dim)` matrix into codes, keys and
//! transition counts, one pass per row, in parallel across rows.

use crate::error::{Error, Result};
use crate::gray::{check_len, check_rows, code_width};
use crate::kernels::{EncodeRow, Kernels};
use crate::parallel::for_row_chunks;
use crate::quantize::{resolve_threshold, Element};

/// Element types with an encode kernel.
pub trait EncodeElement: Element {
    fn kernel(kernels: &Kernels) -> EncodeRow<Self>;
}

impl EncodeElement for f32 {
    fn kernel(kernels: &Kernels) -> EncodeRow<f32> {
        kernels.encode_f32
    }
}

impl EncodeElement for f64 {
    fn kernel(kernels: &Kernels) -> EncodeRow<f64> {
        kernels.encode_f64
    }
}

/// Rows per parallel task: about 64 Ki coordinates, enough to amortise scheduling.
fn rows_per_task(dim: usize) -> usize {
    (1 << 16) / dim.max(1)
}

fn non_finite(row: usize, col: usize, x: &[impl Element], dim: usize) -> Error {
    Error::NonFinite {
        arg: "x",
        row,
        col,
        value: x[row * dim + col].to_f64(),
    }
}

/// Encodes `x` (`rows × dim`, row-major) into `codes` (`rows × code_width(dim)`),
/// `keys` and `transitions` (`rows` each). `threshold` is `τ` in units of the
/// normalised vector (`None`: `0.6745/√dim`). Uses the active SIMD kernels and
/// the current rayon pool. On error the outputs are unspecified.
pub fn encode<T: EncodeElement>(
    x: &[T],
    dim: usize,
    threshold: Option<f64>,
    codes: &mut [u8],
    keys: &mut [u64],
    transitions: &mut [u32],
) -> Result<()> {
    encode_with(Kernels::active(), x, dim, threshold, codes, keys, transitions)
}

/// [`encode`] with the given kernels (for comparing backends).
pub fn encode_with<T: EncodeElement>(
    kernels: &Kernels,
    x: &[T],
    dim: usize,
    threshold: Option<f64>,
    codes: &mut [u8],
    keys: &mut [u64],
    transitions: &mut [u32],
) -> Result<()> {
    if dim == 0 {
        return Err(Error::value("x", "vectors need at least one dimension"));
    }
    let tau = resolve_threshold(threshold, dim)?;
    let rows = check_rows("x", x.len(), dim)?;
    let width = code_width(dim);
    check_len("codes", codes.len(), rows * width)?;
    check_len("keys", keys.len(), rows)?;
    check_len("transitions", transitions.len(), rows)?;
    let row_kernel = T::kernel(kernels);
    for_row_chunks(
        rows,
        rows_per_task(dim),
        (codes, width),
        (keys, 1),
        (transitions, 1),
        |first, codes, keys, transitions| {
            for (i, ((code, key), count)) in codes
                .chunks_exact_mut(width)
                .zip(keys.iter_mut())
                .zip(transitions.iter_mut())
                .enumerate()
            {
                let row = first + i;
                let (k, n) =
                    row_kernel(&x[row * dim..][..dim], tau, code).map_err(|col| non_finite(row, col, x, dim))?;
                *key = k;
                *count = n;
            }
            Ok(())
        },
    )
}

/// The Z4 symbols (0 = A … 3 = D) of `x` (`rows × dim`) into `out` (`rows × dim`).
pub fn symbols<T: EncodeElement>(x: &[T], dim: usize, threshold: Option<f64>, out: &mut [u8]) -> Result<()> {
    let rows = check_rows("x", x.len(), dim.max(1))?;
    check_len("out", out.len(), rows * dim)?;
    let mut codes = vec![0u8; rows * code_width(dim)];
    let (mut keys, mut transitions) = (vec![0u64; rows], vec![0u32; rows]);
    encode(x, dim, threshold, &mut codes, &mut keys, &mut transitions)?;
    crate::gray::unpack(&codes, dim, out)
}
