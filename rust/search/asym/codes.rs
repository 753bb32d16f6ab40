//! The codes a search reads: row-major, fast-scan blocks, or an inverted list's blocks.

use crate::check::check_rows;
use crate::codes::code_width;
use crate::decode::ByteSquares;
use crate::error::{with_capacity, Result};
use crate::kernels::scalar_asym::{fast_scan_blocks, BLOCK_ROWS};
use crate::keys::check_padding;
use crate::search::RowScope;

/// Codes to search: row-major (`code_width(dim)` bytes a row), or already
/// in the fast-scan layout of [`FastScanCodes`].
#[derive(Clone, Copy)]
pub(crate) enum CodesRef<'a> {
    RowMajor(&'a [u8]),
    FastScan(&'a FastScanCodes),
    /// Bytes in the fast-scan layout (whole blocks), e.g. one inverted list.
    Blocks(&'a [u8], usize),
}

/// Packed codes kept in the fast-scan layout (SPEC §8): byte `b` of 32 rows
/// side by side, `⌈rows/32⌉·32·code_width(dim)` bytes, padding rows zero.
/// Searching them skips the per-search re-layout of row-major codes (which
/// costs about as much as the scan itself for one query); re-ranking reads
/// each candidate's bytes back from the blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct FastScanCodes {
    pub(super) dim: usize,
    pub(super) rows: usize,
    pub(super) blocks: Vec<u8>,
}

impl FastScanCodes {
    /// Lays out `(rows, code_width(dim))` row-major codes.
    pub fn new(codes: &[u8], dim: usize) -> Result<FastScanCodes> {
        crate::encode::quantize::check_dim(dim)?;
        let width = code_width(dim);
        let rows = check_rows("codes", codes.len(), width)?;
        check_padding(codes, dim)?;
        let padded = rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
        let mut blocks = with_capacity("FastScanCodes", "the fast-scan layout", padded, width)?;
        blocks.resize(padded * width, 0);
        fast_scan_blocks(codes, width, &mut blocks);
        Ok(FastScanCodes { dim, rows, blocks })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The layout's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.blocks
    }

    /// Row `row`'s code into `out` (`code_width(dim)` bytes; `row < rows`).
    pub(crate) fn code_into(&self, row: usize, out: &mut [u8]) {
        block_code_into(&self.blocks, row, out);
    }
}

/// Row `row`'s code out of fast-scan `blocks` into `out` (`code_width(dim)`
/// bytes; the row's block must be whole in `blocks`).
pub(crate) fn block_code_into(blocks: &[u8], row: usize, out: &mut [u8]) {
    let width = out.len();
    let block = &blocks[(row / BLOCK_ROWS) * BLOCK_ROWS * width..][..BLOCK_ROWS * width];
    // Every 32nd byte from the row's own (a strided iterator: no bounds check per byte).
    for (o, &v) in out.iter_mut().zip(block[row % BLOCK_ROWS..].iter().step_by(BLOCK_ROWS)) {
        *o = v;
    }
}

/// The rows being searched: their codes, norms and the scope.
pub(super) struct Database<'a> {
    pub(super) codes: CodesRef<'a>,
    pub(super) width: usize,
    pub(super) rows: usize,
    /// ‖x̂‖ per row as f32 (given, or computed per chunk when `None`).
    pub(super) norms: Option<&'a [f32]>,
    /// (min, max) of every row's norm, when known (else computed per chunk):
    /// saves reading each chunk's norms before its rows pass the pre-test.
    pub(super) norm_range: Option<(f32, f32)>,
    pub(super) squares: &'a ByteSquares,
    /// [`pair_squares`](super::exact::pair_squares) of the table.
    pub(super) pair_squares: &'a [f64],
    pub(super) scope: RowScope<'a>,
    /// Added to every row number offered to the candidates (several
    /// databases feeding one query's candidates number their rows apart).
    pub(super) base: u32,
    /// Codes the caller scans after this database's (e.g. the next inverted
    /// list's first blocks): prefetched while the last blocks are scanned.
    pub(super) next: &'a [u8],
}

impl Database<'_> {
    pub(super) fn allowed(&self, row: usize) -> bool {
        self.scope.mask.is_none_or(|m| m[row / 8] >> (row % 8) & 1 == 1)
    }
    pub(super) fn key(&self, row: usize) -> u64 {
        self.scope.tie_keys.map_or(row as u64, |k| k[row])
    }

    /// Row `row`'s code: borrowed, or gathered into `buf` (`width` bytes).
    pub(super) fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8] {
        match self.codes {
            CodesRef::RowMajor(c) => &c[row * self.width..][..self.width],
            CodesRef::FastScan(f) => {
                f.code_into(row, buf);
                buf
            }
            CodesRef::Blocks(b, _) => {
                block_code_into(b, row, buf);
                buf
            }
        }
    }
}
