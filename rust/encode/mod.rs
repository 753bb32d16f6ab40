//! Batch encoding of a row-major `(rows, dim)` matrix into codes, keys and
//! transition counts, one pass per row, in parallel across rows.

pub(crate) mod cuts;
pub(crate) mod quantize;
pub(crate) mod rotated;
pub(crate) mod rotation;
pub(crate) mod rotation_fit;
pub(crate) mod thresholds;

use crate::check::{check_len, check_rows};
use crate::codes::code_width;
use crate::error::{Error, Result};
use crate::kernels::{EncodeCutsRow, EncodeRow, Kernels};
use crate::parallel::for_row_chunks;
use cuts::{CutElement, DimCuts};
use quantize::{resolve_threshold, Element};

/// Element types with encode kernels (global threshold and per-dimension cuts).
pub trait EncodeElement: CutElement {
    fn kernel(kernels: &Kernels) -> EncodeRow<Self>;
    fn cuts_kernel(kernels: &Kernels) -> EncodeCutsRow<Self>;
}

impl EncodeElement for f32 {
    fn kernel(kernels: &Kernels) -> EncodeRow<f32> {
        kernels.encode_f32
    }
    fn cuts_kernel(kernels: &Kernels) -> EncodeCutsRow<f32> {
        kernels.encode_cuts_f32
    }
}

impl EncodeElement for f64 {
    fn kernel(kernels: &Kernels) -> EncodeRow<f64> {
        kernels.encode_f64
    }
    fn cuts_kernel(kernels: &Kernels) -> EncodeCutsRow<f64> {
        kernels.encode_cuts_f64
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
    let row_kernel = T::kernel(kernels);
    encode_rows(x, dim, codes, keys, transitions, |row, code| row_kernel(row, tau, code))
}

/// Encodes `x` (`rows × dim`, row-major) with per-dimension cuts: like
/// [`encode`], with `cuts.dim()` equal to `dim`.
pub fn encode_cuts<T: EncodeElement>(
    x: &[T],
    dim: usize,
    cuts: &DimCuts,
    codes: &mut [u8],
    keys: &mut [u64],
    transitions: &mut [u32],
) -> Result<()> {
    encode_cuts_with(Kernels::active(), x, dim, cuts, codes, keys, transitions)
}

/// [`encode_cuts`] with the given kernels (for comparing backends).
pub fn encode_cuts_with<T: EncodeElement>(
    kernels: &Kernels,
    x: &[T],
    dim: usize,
    cuts: &DimCuts,
    codes: &mut [u8],
    keys: &mut [u64],
    transitions: &mut [u32],
) -> Result<()> {
    if cuts.dim() != dim {
        return Err(Error::Shape {
            arg: "x",
            expected: format!("{} columns (the thresholds' dimension)", cuts.dim()),
            got: format!("{dim} columns"),
        });
    }
    let (row_kernel, cuts) = (T::cuts_kernel(kernels), cuts.for_element::<T>());
    encode_rows(x, dim, codes, keys, transitions, |row, code| {
        row_kernel(row, cuts, code)
    })
}

/// The batch loop both encoders share: checks the buffers, then encodes row
/// chunks in parallel with `row_kernel(row, code) -> (key, count) | bad column`.
fn encode_rows<T: Element>(
    x: &[T],
    dim: usize,
    codes: &mut [u8],
    keys: &mut [u64],
    transitions: &mut [u32],
    row_kernel: impl Fn(&[T], &mut [u8]) -> std::result::Result<(u64, u32), usize> + Sync,
) -> Result<()> {
    let rows = check_rows("x", x.len(), dim)?;
    let width = code_width(dim);
    check_len("codes", codes.len(), rows * width)?;
    check_len("keys", keys.len(), rows)?;
    check_len("transitions", transitions.len(), rows)?;
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
                let (k, n) = row_kernel(&x[row * dim..][..dim], code).map_err(|col| non_finite(row, col, x, dim))?;
                *key = k;
                *count = n;
            }
            Ok(())
        },
    )
}

/// The Z4 symbols (0 = A … 3 = D) of `x` (`rows × dim`) into `out` (`rows × dim`).
pub fn symbols<T: EncodeElement>(x: &[T], dim: usize, threshold: Option<f64>, out: &mut [u8]) -> Result<()> {
    symbols_via(x, dim, out, |codes, keys, transitions| {
        encode(x, dim, threshold, codes, keys, transitions)
    })
}

/// [`symbols`] with per-dimension cuts.
pub fn symbols_cuts<T: EncodeElement>(x: &[T], dim: usize, cuts: &DimCuts, out: &mut [u8]) -> Result<()> {
    symbols_via(x, dim, out, |codes, keys, transitions| {
        encode_cuts(x, dim, cuts, codes, keys, transitions)
    })
}

fn symbols_via<T: Element>(
    x: &[T],
    dim: usize,
    out: &mut [u8],
    encode: impl FnOnce(&mut [u8], &mut [u64], &mut [u32]) -> Result<()>,
) -> Result<()> {
    let rows = check_rows("x", x.len(), dim.max(1))?;
    check_len("out", out.len(), rows * dim)?;
    let mut codes = vec![0u8; rows * code_width(dim)];
    let (mut keys, mut transitions) = (vec![0u64; rows], vec![0u32; rows]);
    encode(&mut codes, &mut keys, &mut transitions)?;
    crate::codes::unpack(&codes, dim, out)
}
