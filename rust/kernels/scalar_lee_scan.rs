//! Fast-scan Lee distances: the query side ([`LeeTables`]), the kernel
//! signature and its portable reference.
//!
//! The database side is the asymmetric search's fast-scan layout
//! ([`fast_scan_blocks`](super::scalar_asym::fast_scan_blocks): blocks of
//! [`BLOCK_ROWS`] rows, byte `b` of the 32 rows side by side). Codes are Gray
//! coded, so the Lee distance of two codes is the popcount of their XOR, and
//! that of one code byte splits into its two nibbles: per query and code byte
//! two 16-entry tables, `hi[n] = popcount((q >> 4) ^ n)` and
//! `lo[n] = popcount((q & 15) ^ n)`, looked up for 32 rows at once by a byte
//! shuffle. Entries are at most 4, so a byte adds at most 8 and the SIMD
//! kernel sums [`U8_BYTES`] bytes in u8 lanes before widening.

use super::scalar_asym::BLOCK_ROWS;
use std::ops::Range;

/// Largest Lee distance of one code byte (every bit different).
pub(crate) const BYTE_MAX: usize = 8;
/// Code bytes summed in u8 lanes before widening: `31 × 8 = 248 ≤ 255`
/// (32 bytes could reach 256 and wrap).
pub(crate) const U8_BYTES: usize = 31;
const _: () = assert!(U8_BYTES * BYTE_MAX <= u8::MAX as usize && (U8_BYTES + 1) * BYTE_MAX > u8::MAX as usize);
/// Code bytes summed in 16-bit lanes before widening to 32 bits: a whole
/// number of u8 runs with `8 × U16_BYTES < 2¹⁶` (8 184 bytes, 65 472).
pub(crate) const U16_BYTES: usize = U8_BYTES * 264;
const _: () = assert!(U16_BYTES * BYTE_MAX <= u16::MAX as usize);

/// Table bytes per query code byte: the high-nibble table, then the
/// low-nibble table (the AVX2 kernel broadcasts each to both 128-bit lanes;
/// tables stored twice for plain 32-byte loads measured no faster).
pub(crate) const TABLE_BYTES: usize = 32;

/// The Lee lookup tables of a set of query codes, [`TABLE_BYTES`] per code
/// byte: with `t = TABLE_BYTES·(q·width + b)`, `entries[t + n]` =
/// `popcount((byte_b >> 4) ^ n)` and `entries[t + 16 + n]` =
/// `popcount((byte_b & 15) ^ n)`. Built only from codes, so every entry is
/// at most 4 (the kernels rely on it).
#[doc(hidden)]
pub struct LeeTables {
    width: usize,
    codes: Vec<u8>,
    entries: Vec<u8>,
}

impl LeeTables {
    /// The tables of `queries` (row-major codes of `width ≥ 1` bytes).
    pub fn new(queries: &[u8], width: usize) -> Self {
        assert!(
            width >= 1 && queries.len().is_multiple_of(width),
            "LeeTables: queries must be whole codes of width ≥ 1"
        );
        let mut entries = vec![0u8; TABLE_BYTES * queries.len()];
        for (&byte, t) in queries.iter().zip(entries.chunks_exact_mut(TABLE_BYTES)) {
            for (i, e) in t.iter_mut().enumerate() {
                let nibble = if i < TABLE_BYTES / 2 { byte >> 4 } else { byte & 15 };
                *e = (nibble ^ (i % 16) as u8).count_ones() as u8;
            }
        }
        LeeTables {
            width,
            codes: queries.to_vec(),
            entries,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn queries(&self) -> usize {
        self.codes.len() / self.width
    }

    /// The tables of queries `range` (`TABLE_BYTES · width` bytes each).
    pub(crate) fn entries(&self, range: Range<usize>) -> &[u8] {
        &self.entries[TABLE_BYTES * self.width * range.start..TABLE_BYTES * self.width * range.end]
    }

    /// The code of query `q`.
    pub(crate) fn code(&self, q: usize) -> &[u8] {
        &self.codes[q * self.width..][..self.width]
    }
}

/// Lee distances of queries `queries` of `tables` to every row of `blocks`
/// (fast-scan blocks of codes of `tables.width()` bytes):
/// `out[i·rows + r]` for the `i`-th query of the range and row `r`, with
/// `rows = 32 · blocks`. With `hits = Some((bounds, masks))` also sets, per
/// (query, 8-row group), bit `r` of `masks[i·rows/8 + g]` iff row `8g + r`
/// is below `bounds[i]` (as [`LeeTileHits`](super::LeeTileHits) does); then
/// only the flagged rows' distances are promised: the others may be left
/// unwritten (the top-k reads no other).
pub(crate) type LeeScan =
    fn(tables: &LeeTables, queries: Range<usize>, blocks: &[u8], hits: Option<(&[u32], &mut [u8])>, out: &mut [u32]);

/// The shape of one [`LeeScan`] call, as [`assert_lee_scan_buffers`] checked it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeeScanShape {
    pub queries: usize,
    pub blocks: usize,
}

/// The lengths [`LeeScan`] relies on: a query range inside the tables,
/// whole blocks of `32 · width` bytes, sums below 2³¹ (`8 · width`, compared
/// as signed lanes), `out` at least one distance per (query, row) and, with
/// hits, one bound per query and at least one mask per (query, 8-row group).
/// The SIMD kernels read and write through raw pointers, so every shim
/// checks these first.
#[inline(always)]
pub(crate) fn assert_lee_scan_buffers(
    tables: &LeeTables,
    queries: &Range<usize>,
    blocks: &[u8],
    hits: &Option<(&[u32], &mut [u8])>,
    out: &[u32],
) -> LeeScanShape {
    let (blocks, out) = (blocks.len(), out.len());
    let hits = hits.as_ref().map(|(b, m)| (b.len(), m.len()));
    let width = tables.width;
    assert!(
        queries.start <= queries.end && queries.end <= tables.queries(),
        "lee_scan: queries {queries:?} outside the {} tables",
        tables.queries()
    );
    assert!(
        width.checked_mul(BYTE_MAX).is_some_and(|m| m < i32::MAX as usize),
        "lee_scan: width {width} too large"
    );
    let block_len = width * BLOCK_ROWS;
    assert!(
        blocks.is_multiple_of(block_len),
        "lee_scan: {blocks} bytes are not whole blocks of {BLOCK_ROWS} rows × {width} bytes"
    );
    let shape = LeeScanShape {
        queries: queries.len(),
        blocks: blocks / block_len,
    };
    let rows = shape.blocks * BLOCK_ROWS;
    let need = shape
        .queries
        .checked_mul(rows)
        .expect("lee_scan: queries × rows overflows");
    assert!(out >= need, "lee_scan: out holds {out} distances, fewer than {need}");
    if let Some((bounds, masks)) = hits {
        assert_eq!(bounds, shape.queries, "lee_scan: one bound per query");
        assert!(
            masks >= need / 8,
            "lee_scan: hits holds {masks} masks, fewer than {}",
            need / 8
        );
    }
    shape
}

/// The reference kernel: the popcount of each XOR, from the query codes
/// (not the tables), so it checks the tables too.
pub(crate) fn lee_scan(
    tables: &LeeTables,
    queries: Range<usize>,
    blocks: &[u8],
    hits: Option<(&[u32], &mut [u8])>,
    out: &mut [u32],
) {
    let shape = assert_lee_scan_buffers(tables, &queries, blocks, &hits, out);
    let width = tables.width;
    let rows = shape.blocks * BLOCK_ROWS;
    for (i, q) in queries.enumerate() {
        let code = tables.code(q);
        let dists = &mut out[i * rows..][..rows];
        for (block, sums) in blocks
            .chunks_exact(width * BLOCK_ROWS)
            .zip(dists.chunks_exact_mut(BLOCK_ROWS))
        {
            sums.fill(0);
            for (&qb, bytes) in code.iter().zip(block.chunks_exact(BLOCK_ROWS)) {
                for (s, &byte) in sums.iter_mut().zip(bytes) {
                    *s += (qb ^ byte).count_ones();
                }
            }
        }
    }
    if let Some((bounds, masks)) = hits {
        for (i, &bound) in bounds.iter().enumerate() {
            for (g, d) in out[i * rows..][..rows].chunks_exact(8).enumerate() {
                masks[i * rows / 8 + g] = d
                    .iter()
                    .enumerate()
                    .fold(0u8, |m, (r, &v)| m | (u8::from(v < bound) << r));
            }
        }
    }
}
