//! The fast-scan layout of the asymmetric search (SPEC §8) and its portable
//! reference kernel: every SIMD variant gives the same integers.
//!
//! Codes are laid out in blocks of [`BLOCK_ROWS`] rows: byte `b` of the 32
//! rows side by side, `blocks[(j·width + b)·32 + r]` = byte `b` of row
//! `32j + r` (missing rows zero), so one 32-byte load holds one code byte of
//! 32 rows and a byte shuffle looks up a nibble of each in a 16-entry table.
//! The lookup tables are one per nibble: `luts[16·(2b) + n]` for the high
//! nibble `n` of byte `b`, `luts[16·(2b + 1) + n]` for its low nibble, u8.

/// Rows per fast-scan block.
pub(crate) const BLOCK_ROWS: usize = 32;
/// Code bytes summed in 16-bit lanes before widening: 2 tables per byte,
/// 256 × 255 = 65 280 < 2¹⁶, so a 16-bit sum over this many bytes is exact.
pub(crate) const U16_BYTES: usize = 128;

/// Sums, for each row of `blocks` (the fast-scan layout of codes of
/// `width = luts.len() / 32` bytes), the table entries of its nibbles:
/// `out[row] = Σ_b luts[16·2b + hi(byte_b)] + luts[16·(2b+1) + lo(byte_b)]`.
pub(crate) type AsymScan = fn(luts: &[u8], blocks: &[u8], out: &mut [u32]);

/// The lengths [`AsymScan`] relies on: `luts` holds 32 bytes per code byte
/// (width ≥ 1), `blocks` whole blocks of that width and `out` at least one
/// sum per block row. Returns (width, blocks). The SIMD kernels read and
/// write through raw pointers, so every shim checks these first.
#[inline(always)]
pub(crate) fn assert_asym_buffers(luts: usize, blocks: usize, out: usize) -> (usize, usize) {
    assert!(
        luts >= 32 && luts.is_multiple_of(32),
        "asym_scan: luts must hold 32 bytes per code byte, got {luts}"
    );
    let width = luts / 32;
    let block_len = width * BLOCK_ROWS;
    assert!(
        blocks.is_multiple_of(block_len),
        "asym_scan: {blocks} bytes are not whole blocks of {BLOCK_ROWS} rows × {width} bytes"
    );
    let nblocks = blocks / block_len;
    assert!(
        out >= nblocks * BLOCK_ROWS,
        "asym_scan: out holds {out} sums, fewer than {} rows",
        nblocks * BLOCK_ROWS
    );
    (width, nblocks)
}

/// The reference kernel.
pub(crate) fn asym_scan(luts: &[u8], blocks: &[u8], out: &mut [u32]) {
    let (width, nblocks) = assert_asym_buffers(luts.len(), blocks.len(), out.len());
    for j in 0..nblocks {
        let block = &blocks[j * width * BLOCK_ROWS..][..width * BLOCK_ROWS];
        let sums = &mut out[j * BLOCK_ROWS..][..BLOCK_ROWS];
        sums.fill(0);
        for (b, bytes) in block.chunks_exact(BLOCK_ROWS).enumerate() {
            let (hi, lo) = (&luts[32 * b..][..16], &luts[32 * b + 16..][..16]);
            for (s, &byte) in sums.iter_mut().zip(bytes) {
                *s += u32::from(hi[usize::from(byte >> 4)]) + u32::from(lo[usize::from(byte & 15)]);
            }
        }
    }
}

/// Lays `rows` (row-major codes of `width` bytes) out as fast-scan blocks
/// into `out` (`⌈rows/32⌉ · 32 · width` bytes; rows past the last are zero).
pub(crate) fn fast_scan_blocks(codes: &[u8], width: usize, out: &mut [u8]) {
    let rows = codes.len() / width;
    debug_assert_eq!(out.len(), rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * width);
    for (block, chunk) in out
        .chunks_exact_mut(width * BLOCK_ROWS)
        .zip(codes.chunks(width * BLOCK_ROWS))
    {
        let n = chunk.len() / width;
        if n < BLOCK_ROWS {
            block.fill(0);
        }
        for (r, code) in chunk.chunks_exact(width).enumerate() {
            for (b, &byte) in code.iter().enumerate() {
                block[b * BLOCK_ROWS + r] = byte;
            }
        }
    }
}
