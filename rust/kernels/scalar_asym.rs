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
/// Largest table entry: the two nibble lookups of a code byte sum exactly in
/// one u8 lane (2 × 127 = 254).
pub(crate) const LUT_MAX: u8 = 127;
const _: () = assert!((LUT_MAX as u16 + 1).is_power_of_two());
/// Code bytes summed in 16-bit lanes before widening: 256 × 254 = 65 024 <
/// 2¹⁶, so a 16-bit sum over this many bytes is exact.
pub(crate) const U16_BYTES: usize = 256;
/// Queries the SIMD kernels scan together (sharing each block load).
pub(crate) const QUERY_GROUP: usize = 4;

/// Sums, for each query `q` (its table `luts[q]`, `32·width` bytes) and each
/// row of `blocks` (the fast-scan layout of codes of `width` bytes), the
/// query's table entries of the row's nibbles:
/// `out[q·rows + row] = Σ_b luts[q][32b + hi(byte_b)] + luts[q][32b + 16 + lo(byte_b)]`
/// with `rows = 32 · blocks`. Entries must be at most [`LUT_MAX`] for every
/// backend to give these sums (the SIMD kernels add two entries in one byte,
/// which wraps above it; no memory is at stake): the quantiser and the Lee
/// tables make them so, and [`crate::Kernels::asym_scan`], the entry for tables
/// from elsewhere, checks them ([`assert_table_entries`]). Each query's table
/// is its own slice, so a caller scanning a set for some of its queries
/// passes theirs without copying them side by side. `next`: the codes the
/// caller scans after `blocks` (any length, often empty), which the SIMD
/// kernels prefetch while they scan the last of `blocks` and never read.
pub(crate) type AsymScan = fn(luts: &[&[u8]], width: usize, blocks: &[u8], next: &[u8], out: &mut [u32]);

/// The shape of one [`AsymScan`] call, as [`assert_asym_buffers`] checked it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanShape {
    pub queries: usize,
    pub blocks: usize,
}

/// The lengths [`AsymScan`] relies on: `width ≥ 1`, tables of `32·width`
/// bytes, whole blocks of `32·width` bytes and `out` at least one sum per
/// (query, row). The SIMD kernels read and write through raw pointers, so
/// every shim checks these first. The entries are not read here: checking
/// them on every call (an inverted list is scanned once per few queries)
/// cost 2–4 % of an inverted file's search; see [`AsymScan`].
#[inline(always)]
pub(crate) fn assert_asym_buffers(luts: &[&[u8]], width: usize, blocks: usize, out: usize) -> ScanShape {
    assert!(width >= 1, "asym_scan: width must be at least 1");
    let lut_len = width.checked_mul(32).expect("asym_scan: width overflows");
    for lut in luts {
        assert_eq!(
            lut.len(),
            lut_len,
            "asym_scan: a table of {} bytes, not {lut_len}",
            lut.len()
        );
    }
    let block_len = lut_len; // 32 rows × width bytes
    assert!(
        blocks.is_multiple_of(block_len),
        "asym_scan: {blocks} bytes are not whole blocks of {BLOCK_ROWS} rows × {width} bytes"
    );
    let shape = ScanShape {
        queries: luts.len(),
        blocks: blocks / block_len,
    };
    let need = shape
        .queries
        .checked_mul(shape.blocks * BLOCK_ROWS)
        .expect("asym_scan: queries × rows overflows");
    assert!(out >= need, "asym_scan: out holds {out} sums, fewer than {need}");
    shape
}

/// Panics unless every table entry is at most [`LUT_MAX`] (see [`AsymScan`]).
pub(crate) fn assert_table_entries(luts: &[u8]) {
    // An OR over every entry (vectorises, no early exit): LUT_MAX + 1 is a power of two.
    assert!(
        luts.iter().fold(0u8, |acc, &v| acc | v) <= LUT_MAX,
        "asym_scan: table entries must be at most {LUT_MAX}"
    );
}

/// The first two blocks of fast-scan codes (fewer if there are fewer): as
/// far as an [`AsymScan`] kernel prefetches its `next` codes.
pub(crate) fn first_pair(blocks: &[u8], width: usize) -> &[u8] {
    &blocks[..blocks.len().min(2 * BLOCK_ROWS * width)]
}

/// The reference kernel (it prefetches nothing).
pub(crate) fn asym_scan(luts: &[&[u8]], width: usize, blocks: &[u8], _next: &[u8], out: &mut [u32]) {
    let shape = assert_asym_buffers(luts, width, blocks.len(), out.len());
    let rows = shape.blocks * BLOCK_ROWS;
    for (lut, out) in luts.iter().zip(out.chunks_exact_mut(rows.max(1))) {
        for (block, sums) in blocks
            .chunks_exact(width * BLOCK_ROWS)
            .zip(out.chunks_exact_mut(BLOCK_ROWS))
        {
            sums.fill(0);
            for (b, bytes) in block.chunks_exact(BLOCK_ROWS).enumerate() {
                let (hi, lo) = (&lut[32 * b..][..16], &lut[32 * b + 16..][..16]);
                for (s, &byte) in sums.iter_mut().zip(bytes) {
                    *s += u32::from(hi[usize::from(byte >> 4)]) + u32::from(lo[usize::from(byte & 15)]);
                }
            }
        }
    }
}

/// Lays `codes` (row-major, `width ≥ 1` bytes each) out as fast-scan blocks
/// into `out` (`⌈rows/32⌉ · 32 · width` bytes; rows past the last are zero).
/// For the benchmarks and tests (not a stable API).
#[doc(hidden)]
pub fn fast_scan_blocks(codes: &[u8], width: usize, out: &mut [u8]) {
    let rows = codes.len() / width;
    assert_eq!(
        out.len(),
        rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * width,
        "fast_scan_blocks: out must hold ⌈rows/32⌉·32·width bytes"
    );
    for (block, chunk) in out
        .chunks_exact_mut(width * BLOCK_ROWS)
        .zip(codes.chunks(width * BLOCK_ROWS))
    {
        let n = chunk.len() / width;
        if n < BLOCK_ROWS {
            block.fill(0);
        }
        let full = width / 8;
        // Whole 8-row × 8-byte tiles: transpose in u64 words.
        for r0 in (0..n - n % 8).step_by(8) {
            for w in 0..full {
                let mut tile = [0u64; 8];
                for (i, t) in tile.iter_mut().enumerate() {
                    let at = (r0 + i) * width + 8 * w;
                    *t = u64::from_le_bytes(chunk[at..at + 8].try_into().unwrap_or([0; 8]));
                }
                let tile = transpose_8x8(tile);
                for (j, t) in tile.iter().enumerate() {
                    let at = (8 * w + j) * BLOCK_ROWS + r0;
                    // An array store, not `copy_from_slice` (a memmove call when not inlined).
                    if let Some(dst) = block.get_mut(at..at + 8).and_then(|d| <&mut [u8; 8]>::try_from(d).ok()) {
                        *dst = t.to_le_bytes();
                    }
                }
            }
        }
        // The rest byte by byte: trailing bytes of each row, trailing rows.
        for (r, code) in chunk.chunks_exact(width).enumerate() {
            let from = if r < n - n % 8 { 8 * full } else { 0 };
            for (b, &byte) in code.iter().enumerate().skip(from) {
                block[b * BLOCK_ROWS + r] = byte;
            }
        }
    }
}

/// Transposes an 8 × 8 byte matrix held as 8 little-endian words: byte `j`
/// of word `i` moves to byte `i` of word `j`. Swaps 4×4 blocks, then 2×2,
/// then single bytes, each a masked exchange; written out so the words stay
/// in registers.
#[inline(always)]
fn transpose_8x8(m: [u64; 8]) -> [u64; 8] {
    #[inline(always)]
    fn exchange(a: u64, b: u64, shift: u32, mask: u64) -> (u64, u64) {
        let t = ((a >> shift) ^ b) & mask;
        (a ^ (t << shift), b ^ t)
    }
    let [m0, m1, m2, m3, m4, m5, m6, m7] = m;
    const M32: u64 = 0x0000_0000_FFFF_FFFF;
    const M16: u64 = 0x0000_FFFF_0000_FFFF;
    const M8: u64 = 0x00FF_00FF_00FF_00FF;
    let (m0, m4) = exchange(m0, m4, 32, M32);
    let (m1, m5) = exchange(m1, m5, 32, M32);
    let (m2, m6) = exchange(m2, m6, 32, M32);
    let (m3, m7) = exchange(m3, m7, 32, M32);
    let (m0, m2) = exchange(m0, m2, 16, M16);
    let (m1, m3) = exchange(m1, m3, 16, M16);
    let (m4, m6) = exchange(m4, m6, 16, M16);
    let (m5, m7) = exchange(m5, m7, 16, M16);
    let (m0, m1) = exchange(m0, m1, 8, M8);
    let (m2, m3) = exchange(m2, m3, 8, M8);
    let (m4, m5) = exchange(m4, m5, 8, M8);
    let (m6, m7) = exchange(m6, m7, 8, M8);
    [m0, m1, m2, m3, m4, m5, m6, m7]
}

/// The products `u_d·x̂_d(g)` (f64, `u = q/‖q‖`, per Gray code g) of the
/// two dimensions of pair m (2m, 2m + 1); a dimension past `dim` has none.
/// (Built by `PairProducts::new` in `search::asym`, from the query and the
/// reconstruction table.)
#[derive(Clone, Copy)]
pub(crate) struct PairProducts {
    pub(crate) first: [f64; 4],
    /// `None` when 2m + 1 is past `dim` (the pair's value is `first` alone).
    pub(crate) second: Option<[f64; 4]>,
}

impl PairProducts {
    /// The pair's 16 values by nibble `n`: `first[n >> 2] + second[n & 3]`.
    #[inline(always)]
    pub(crate) fn values(&self) -> [f64; 16] {
        let mut v = [0.0f64; 16];
        match self.second {
            Some(s) => {
                for (n, v) in v.iter_mut().enumerate() {
                    *v = self.first[n >> 2] + s[n & 3];
                }
            }
            None => {
                for (n, v) in v.iter_mut().enumerate() {
                    *v = self.first[n >> 2];
                }
            }
        }
        v
    }

    /// The smallest and largest of [`PairProducts::values`]: rounded addition
    /// is monotone in each operand, so they are the sums of the extremes.
    #[inline(always)]
    pub(crate) fn range(&self) -> (f64, f64) {
        let lo = |p: &[f64; 4]| p.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = |p: &[f64; 4]| p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match &self.second {
            Some(s) => (lo(&self.first) + lo(s), hi(&self.first) + hi(s)),
            None => (lo(&self.first), hi(&self.first)),
        }
    }
}

/// Quantises query tables: see [`quantise_pairs`].
pub(crate) type QuantisePairs = fn(products: &[PairProducts], mins: &[f64], scale: f64, luts: &mut [u8]) -> f64;

/// The lengths [`QuantisePairs`] relies on: one minimum and 16 table bytes per pair.
pub(crate) fn assert_quantise_buffers(products: &[PairProducts], mins: &[f64], luts: &[u8]) {
    assert!(
        mins.len() == products.len() && Some(luts.len()) == products.len().checked_mul(16),
        "quantise_pairs: {} pairs need {} minima and 16 table bytes each, got {} and {}",
        products.len(),
        products.len(),
        mins.len(),
        luts.len()
    );
}

/// Fills the tables `luts` (16 bytes per pair) of the pairs' `products`
/// above their minima `mins`, in steps of `scale`, and returns the sum over
/// pairs (in order) of each pair's largest miss `|v − lo − level·scale|`.
/// Every SIMD variant gives the same bytes and sum (the same IEEE
/// operations, unfused).
pub(crate) fn quantise_pairs(products: &[PairProducts], mins: &[f64], scale: f64, luts: &mut [u8]) -> f64 {
    assert_quantise_buffers(products, mins, luts);
    let top = f64::from(LUT_MAX);
    let inv_scale = 1.0 / scale;
    let mut err = 0.0f64;
    for ((p, &lo), lut) in products.iter().zip(mins).zip(luts.chunks_exact_mut(16)) {
        let mut worst = 0.0f64;
        for (&v, l) in p.values().iter().zip(lut.iter_mut()) {
            // Round half up by truncation (v ≥ lo): `f64::round` is a libm call on baseline x86-64.
            // Any level works (its error is measured just below): multiply, don't divide.
            // (Clamped before the conversion: the same level as clamping after.)
            let level = f64::from(((v - lo) * inv_scale + 0.5).min(top) as i32);
            *l = level as u8;
            worst = worst.max((v - lo - level * scale).abs());
        }
        err += worst;
    }
    err
}
