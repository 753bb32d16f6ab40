//! AVX2 fast-scan Lee kernel: per code byte of 32 rows, the nibbles are split
//! once for a group of queries, then each query adds its two `vpshufb`
//! lookups (entries ≤ 4) into u8 lanes for [`U8_BYTES`] bytes, 16-bit lanes
//! for [`U16_BYTES`] bytes, then 32-bit sums. With bounds, the sums are
//! compared in registers and give the per-8-row hit masks the top-k reads.

use super::scalar_asym::BLOCK_ROWS;
use super::scalar_lee_scan::{assert_lee_scan_buffers, LeeTables, BYTE_MAX, TABLE_BYTES, U16_BYTES, U8_BYTES};
use super::x86_avx2_asym::{add_widened, row_sums};
use std::arch::x86_64::*;
use std::ops::Range;

/// Queries scanned together: each shares one block load and nibble split.
/// With [`SCAN_BLOCKS`] = 2 the inner loop ([`lookups_4x2`]) holds 8
/// accumulators, the mask, 4 nibble vectors and 3 temporaries: all 16 ymm
/// registers. (Eight queries on one block, 35 vector operations per code
/// byte instead of 38, ran 10 % faster on hot data but 5–7 % slower in the
/// search on Zen 3.)
pub(crate) const SCAN_GROUP: usize = 4;
/// 32-row blocks scanned together: each table load serves all of them.
pub(crate) const SCAN_BLOCKS: usize = 2;

// Safe shim: only reachable through the AVX2 and AVX-512 `KERNELS` tables,
// which `Kernels::for_backend` hands out after checking the CPU has AVX2.
pub(crate) fn lee_scan(
    tables: &LeeTables,
    queries: Range<usize>,
    blocks: &[u8],
    mut hits: Option<(&[u32], &mut [u8])>,
    out: &mut [u32],
) {
    let shape = assert_lee_scan_buffers(tables, &queries, blocks, &hits, out);
    let width = tables.width();
    let rows = shape.blocks * BLOCK_ROWS;
    let mut i = 0;
    while i < shape.queries {
        let group = SCAN_GROUP.min(shape.queries - i);
        let q = queries.start + i;
        let luts = tables.entries(q..q + group).as_ptr();
        // Sums are below 2³¹ (asserted), so a bound clamped to i32::MAX
        // admits the same rows when compared as signed lanes.
        let mut bounds = [0i32; SCAN_GROUP];
        if let Some((b, _)) = &hits {
            for (s, &b) in bounds.iter_mut().zip(&b[i..i + group]) {
                *s = b.min(i32::MAX as u32) as i32;
            }
        }
        let mut j = 0;
        while j < shape.blocks {
            let pair = SCAN_BLOCKS.min(shape.blocks - j);
            let block = blocks[j * width * BLOCK_ROWS..].as_ptr();
            let sums = out[i * rows + j * BLOCK_ROWS..].as_mut_ptr();
            let masks = match &mut hits {
                Some((_, m)) => m[i * rows / 8 + j * BLOCK_ROWS / 8..].as_mut_ptr(),
                None => std::ptr::null_mut(),
            };
            let dst = Sums {
                out: sums,
                stride: rows,
                masks,
            };
            // SAFETY: CPU: AVX2 (this table is only handed out on such a
            // CPU); lengths: queries q..q+group have TABLE_BYTES·width table
            // bytes each (`entries`), entries ≤ 4 (built by `LeeTables::new`),
            // blocks j..j+pair are whole, out holds `rows` sums per query of
            // the range and, with hits, masks holds rows/8 masks per query
            // (`assert_lee_scan_buffers` above), so every access of
            // `scan_blocks` (the tables of `group` queries, `pair` blocks,
            // 32·pair sums and 4·pair masks per query at strides rows and
            // rows/8) is in bounds.
            unsafe {
                match (group, pair) {
                    (1, 1) => scan_blocks::<1, 1>(luts, width, block, &bounds, dst),
                    (2, 1) => scan_blocks::<2, 1>(luts, width, block, &bounds, dst),
                    (3, 1) => scan_blocks::<3, 1>(luts, width, block, &bounds, dst),
                    (_, 1) => scan_blocks::<SCAN_GROUP, 1>(luts, width, block, &bounds, dst),
                    (1, _) => scan_blocks::<1, SCAN_BLOCKS>(luts, width, block, &bounds, dst),
                    (2, _) => scan_blocks::<2, SCAN_BLOCKS>(luts, width, block, &bounds, dst),
                    (3, _) => scan_blocks::<3, SCAN_BLOCKS>(luts, width, block, &bounds, dst),
                    _ => scan_blocks::<SCAN_GROUP, SCAN_BLOCKS>(luts, width, block, &bounds, dst),
                }
            }
            j += pair;
        }
        i += group;
    }
}

/// Where one block's results go: query `i`'s 32 sums at `out + stride·i`,
/// its 4 masks at `masks + (stride/8)·i` (none when `masks` is null).
#[derive(Clone, Copy)]
struct Sums {
    out: *mut u32,
    stride: usize,
    masks: *mut u8,
}

/// The Lee distances of `B` consecutive 32-row blocks to `Q` queries, whose
/// tables are at `luts + TABLE_BYTES·width·i`; with masks, row `r` of query
/// `i` is flagged iff its distance is below `bounds[i]`. Each table load
/// serves the `B` blocks.
///
/// # Safety
/// The CPU supports AVX2; `luts` is readable for `Q·TABLE_BYTES·width`
/// bytes, every entry ≤ 4; `block` is readable for `B·32·width` bytes; for
/// each `i < Q`, `dst.out + dst.stride·i` is writable for `32·B` `u32` and,
/// unless `dst.masks` is null, `dst.masks + (dst.stride/8)·i` for `4·B` bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn scan_blocks<const Q: usize, const B: usize>(
    luts: *const u8,
    width: usize,
    block: *const u8,
    bounds: &[i32],
    dst: Sums,
) {
    let mut b0 = 0;
    while b0 < width {
        let b1 = (b0 + U16_BYTES).min(width);
        // `all` holds Σ(even + 256·odd) mod 2¹⁶ per 16-bit lane, `odd` the
        // exact odd-row sums; the even-row sums are their difference.
        let mut all = [[_mm256_setzero_si256(); B]; Q];
        let mut odd = [[_mm256_setzero_si256(); B]; Q];
        // SAFETY: CPU: AVX2 (this function's); b0 < b1 ≤ width and
        // b1 - b0 ≤ U16_BYTES, so bytes b0..b1 of the B blocks and of the Q
        // queries' tables are in bounds (this function's contract).
        unsafe { add_u16_sums(luts, width, block, b0..b1, &mut all, &mut odd) };
        if b0 == 0 && b1 == width && !dst.masks.is_null() && width * BYTE_MAX <= i16::MAX as usize {
            // SAFETY: CPU: AVX2 (this function's); the pointers as in the
            // contract of this function (the caller's).
            unsafe { hits_from_u16(&all, &odd, bounds, dst) };
            return;
        }
        for i in 0..Q {
            let bound = _mm256_set1_epi32(bounds[i]);
            for k in 0..B {
                // SAFETY: CPU: AVX2 (this function's).
                let parts = unsafe { row_sums(all[i][k], odd[i][k]) };
                for (p, part) in parts.into_iter().enumerate() {
                    // SAFETY: CPU: AVX2 (this function's); query i's 32·B sums at
                    // out + stride·i are writable (and readable), and unless null
                    // its 4·B masks at masks + (stride/8)·i; k < B, p < 4.
                    unsafe {
                        let sum = add_widened(dst.out.add(dst.stride * i + 32 * k + 8 * p), part, b0 == 0);
                        if b1 == width && !dst.masks.is_null() {
                            let below = _mm256_cmpgt_epi32(bound, sum);
                            *dst.masks.add(dst.stride / 8 * i + 4 * k + p) =
                                _mm256_movemask_ps(_mm256_castsi256_ps(below)) as u8;
                        }
                    }
                }
            }
        }
        b0 = b1;
    }
}

/// The hit masks of `Q` queries × `B` blocks straight from the 16-bit sums of
/// a code that fits them as signed lanes (`8·width ≤ 32 767`): one compare
/// per parity, one blend, one byte mask for 32 rows. Sums are widened and
/// stored only for the blocks with a hit, which is all the top-k reads (once
/// a list is full almost no block has one); the other blocks' sums are left
/// as they were.
///
/// # Safety
/// The CPU supports AVX2; `all`/`odd` are [`scan_blocks`]'s sums of a whole
/// code with `8·width ≤ 32 767`; `bounds` holds `Q` bounds; for each
/// `i < Q`, `dst.out + dst.stride·i` is writable for `32·B` `u32` and
/// `dst.masks + (dst.stride/8)·i` (not null) for `4·B` bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn hits_from_u16<const Q: usize, const B: usize>(
    all: &[[__m256i; B]; Q],
    odd: &[[__m256i; B]; Q],
    bounds: &[i32],
    dst: Sums,
) {
    // 16-bit lane j of a block holds rows 2j (even, low byte of `all`) and 2j + 1
    // (`odd`), so taking the even compare's low byte and the odd one's high byte
    // puts row r's flag in byte r: `movemask` gives the block's four mask bytes.
    let odd_bytes = _mm256_set1_epi16(0xff00u16 as i16);
    for i in 0..Q {
        // Sums are at most 32 767, so a bound clamped to that admits the same rows.
        let bound = _mm256_set1_epi16(bounds[i].min(i16::MAX as i32) as i16);
        for k in 0..B {
            let even = _mm256_sub_epi16(all[i][k], _mm256_slli_epi16(odd[i][k], 8));
            let below = _mm256_blendv_epi8(
                _mm256_cmpgt_epi16(bound, even),
                _mm256_cmpgt_epi16(bound, odd[i][k]),
                odd_bytes,
            );
            let bits = _mm256_movemask_epi8(below) as u32;
            // SAFETY: query i's 4·B masks at masks + (stride/8)·i are writable
            // (this function's contract) and k < B: 4 bytes at 4k.
            unsafe {
                std::ptr::write_unaligned(dst.masks.add(dst.stride / 8 * i + 4 * k) as *mut u32, bits.to_le());
            }
            if bits != 0 {
                // SAFETY: CPU: AVX2 (this function's).
                let parts = unsafe { row_sums(all[i][k], odd[i][k]) };
                for (p, part) in parts.into_iter().enumerate() {
                    // SAFETY: query i's 32·B sums at out + stride·i are writable
                    // (this function's contract); k < B, p < 4.
                    unsafe { add_widened(dst.out.add(dst.stride * i + 32 * k + 8 * p), part, true) };
                }
            }
        }
    }
}

/// Adds the Lee sums of code bytes `bytes` (at most [`U16_BYTES`]) of `B`
/// blocks for `Q` queries into the 16-bit `all`/`odd` sums of
/// [`scan_blocks`], summing each run of [`U8_BYTES`] bytes in u8 lanes first.
/// The full group (4 queries × 2 blocks) runs [`lookups_4x2`], runs and all;
/// partial groups, which have registers to spare, the same steps in
/// intrinsics.
///
/// # Safety
/// The CPU supports AVX2; `bytes` is non-empty, at most [`U16_BYTES`] long
/// and ends at most at `width`; `luts` and `block` are readable as in
/// [`scan_blocks`].
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn add_u16_sums<const Q: usize, const B: usize>(
    luts: *const u8,
    width: usize,
    block: *const u8,
    bytes: Range<usize>,
    all: &mut [[__m256i; B]; Q],
    odd: &mut [[__m256i; B]; Q],
) {
    let block_len = BLOCK_ROWS * width;
    let stride = TABLE_BYTES * width;
    if let (Ok(all8), Ok(odd8), 2) = (
        <&mut [__m256i; 8]>::try_from(all.as_flattened_mut()),
        <&mut [__m256i; 8]>::try_from(odd.as_flattened_mut()),
        B,
    ) {
        // SAFETY: CPU: AVX2 (this function's); Q·B = 8 with B = 2 is 4
        // queries; blocks 0 and 1 from byte `bytes.start` and the 4 tables
        // from that byte are readable for `bytes.len() ≥ 1` bytes (this
        // function's contract).
        unsafe {
            lookups_4x2(
                all8,
                odd8,
                block.add(32 * bytes.start),
                block.add(block_len + 32 * bytes.start),
                luts.add(TABLE_BYTES * bytes.start),
                stride,
                bytes.len(),
            )
        };
        return;
    }
    let mut r0 = bytes.start;
    while r0 < bytes.end {
        let r1 = (r0 + U8_BYTES).min(bytes.end);
        let mut acc = [[_mm256_setzero_si256(); B]; Q];
        // SAFETY: CPU: AVX2 (this function's); r0 < r1 ≤ bytes.end ≤ width
        // (this function's contract).
        unsafe { add_lookups(luts, width, block, r0..r1, &mut acc) };
        for i in 0..Q {
            for k in 0..B {
                all[i][k] = _mm256_add_epi16(all[i][k], acc[i][k]);
                odd[i][k] = _mm256_add_epi16(odd[i][k], _mm256_srli_epi16(acc[i][k], 8));
            }
        }
        r0 = r1;
    }
}

/// Adds the table lookups of code bytes `bytes` of `B` blocks for `Q`
/// queries into `acc` (u8 lanes: at most [`U8_BYTES`] bytes).
///
/// # Safety
/// The CPU supports AVX2; `bytes` is non-empty and ends at most at `width`;
/// `luts` and `block` are readable as in [`scan_blocks`].
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn add_lookups<const Q: usize, const B: usize>(
    luts: *const u8,
    width: usize,
    block: *const u8,
    bytes: Range<usize>,
    acc: &mut [[__m256i; B]; Q],
) {
    let block_len = BLOCK_ROWS * width;
    let stride = TABLE_BYTES * width;
    let low4 = _mm256_set1_epi8(0x0f);
    for b in bytes {
        let mut hi = [_mm256_setzero_si256(); B];
        let mut lo = [_mm256_setzero_si256(); B];
        for k in 0..B {
            // SAFETY: k < B and b < width: bytes 32b..32b+32 of block k are in bounds.
            let v = unsafe { _mm256_loadu_si256(block.add(k * block_len + 32 * b) as *const __m256i) };
            hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            lo[k] = _mm256_and_si256(v, low4);
        }
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: i < Q and b < width: inside query i's TABLE_BYTES·width table bytes.
            let t = unsafe { luts.add(stride * i + TABLE_BYTES * b) };
            // SAFETY: as above, t..t+TABLE_BYTES is query i's table of byte b.
            let (th, tl) = unsafe {
                (
                    _mm256_broadcastsi128_si256(_mm_loadu_si128(t as *const __m128i)),
                    _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(TABLE_BYTES / 2) as *const __m128i)),
                )
            };
            for k in 0..B {
                a[k] = _mm256_add_epi8(a[k], _mm256_shuffle_epi8(th, hi[k]));
                a[k] = _mm256_add_epi8(a[k], _mm256_shuffle_epi8(tl, lo[k]));
            }
        }
    }
}

/// [`add_u16_sums`] for 4 queries × 2 blocks, `n` code bytes, in assembly
/// so that every build keeps the 8 u8 accumulators in registers: they, the
/// mask, 4 nibble vectors and 3 temporaries take the 16 ymm registers.
/// Written with intrinsics, the register allocator spilled one accumulator
/// in some builds (the wheel, not `cargo build`), which then made a
/// store-load round trip per code byte: 5–7 % of the search. Each run of
/// [`U8_BYTES`] bytes ends by adding its u8 sums into `all` and their odd
/// bytes into `odd` (16-bit lanes, in memory) straight from the registers.
///
/// # Safety
/// The CPU supports AVX2; `1 ≤ n ≤ U16_BYTES`; `block0` and `block1` are
/// readable for `32·n` bytes, and so is `luts + stride·i` for each query
/// `i < 4`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn lookups_4x2(
    all: &mut [__m256i; 8],
    odd: &mut [__m256i; 8],
    block0: *const u8,
    block1: *const u8,
    luts: *const u8,
    stride: usize,
    n: usize,
) {
    let low4 = _mm256_set1_epi8(0x0f);
    // SAFETY: CPU: AVX2 (this function's); reads only 32 bytes per step of
    // each block and 2 × 16 bytes per step of each query's table, n ≥ 1
    // steps (this function's contract); writes only `all` and `odd` (8 ymm
    // each, through their own pointers), keeps the stack.
    unsafe {
        std::arch::asm!(
            "3:",
            "mov {r}, {run}",
            "cmp {n}, {r}",
            "cmovb {r}, {n}",
            "sub {n}, {r}",
            "vpxor {a0}, {a0}, {a0}",
            "vpxor {a1}, {a1}, {a1}",
            "vpxor {a2}, {a2}, {a2}",
            "vpxor {a3}, {a3}, {a3}",
            "vpxor {a4}, {a4}, {a4}",
            "vpxor {a5}, {a5}, {a5}",
            "vpxor {a6}, {a6}, {a6}",
            "vpxor {a7}, {a7}, {a7}",
            // The order of LLVM's own schedule for this loop (from a build where
            // it kept the accumulators in registers); 3 temporaries, and hi0's
            // register takes the last table once hi0 is used.
            ".p2align 6",
            "2:",
            "vmovdqu {lo0}, ymmword ptr [{p0}]",
            "vpsrlw {hi0}, {lo0}, 4",
            "vmovdqu {lo1}, ymmword ptr [{p1}]",
            "vbroadcasti128 {z}, xmmword ptr [{q}]",
            "vpsrlw {hi1}, {lo1}, 4",
            "vpand {hi0}, {hi0}, {m}",
            "vbroadcasti128 {x}, xmmword ptr [{q} + 16]",
            "vpand {lo0}, {lo0}, {m}",
            "vpshufb {y}, {x}, {lo0}",
            "vpaddb {y}, {a0}, {y}",
            "vpshufb {a0}, {z}, {hi0}",
            "vpand {hi1}, {hi1}, {m}",
            "vpshufb {z}, {z}, {hi1}",
            "vpaddb {a0}, {a0}, {y}",
            "vpand {lo1}, {lo1}, {m}",
            "vpshufb {x}, {x}, {lo1}",
            "vpaddb {x}, {a1}, {x}",
            "vpaddb {a1}, {z}, {x}",
            "vbroadcasti128 {x}, xmmword ptr [{q} + {st}]",
            "vbroadcasti128 {y}, xmmword ptr [{q} + {st} + 16]",
            "vpshufb {z}, {y}, {lo0}",
            "vpaddb {a2}, {z}, {a2}",
            "vpshufb {z}, {x}, {hi0}",
            "vpshufb {x}, {x}, {hi1}",
            "vpaddb {a2}, {a2}, {z}",
            "vpshufb {y}, {y}, {lo1}",
            "vpaddb {y}, {y}, {a3}",
            "vpaddb {a3}, {y}, {x}",
            "vbroadcasti128 {x}, xmmword ptr [{q} + 2*{st}]",
            "vbroadcasti128 {y}, xmmword ptr [{q} + 2*{st} + 16]",
            "vpshufb {z}, {y}, {lo0}",
            "vpaddb {a4}, {z}, {a4}",
            "vpshufb {z}, {x}, {hi0}",
            "vpaddb {a4}, {z}, {a4}",
            "vpshufb {y}, {y}, {lo1}",
            "vpaddb {y}, {y}, {a5}",
            "vpshufb {x}, {x}, {hi1}",
            "vpaddb {a5}, {y}, {x}",
            "vbroadcasti128 {x}, xmmword ptr [{q} + {st3}]",
            "vpshufb {y}, {x}, {hi0}",
            "vpaddb {y}, {y}, {a6}",
            "vpshufb {x}, {x}, {hi1}",
            "vbroadcasti128 {hi0}, xmmword ptr [{q} + {st3} + 16]",
            "vpaddb {x}, {x}, {a7}",
            "vpshufb {a7}, {hi0}, {lo0}",
            "vpaddb {a6}, {a7}, {y}",
            "vpshufb {y}, {hi0}, {lo1}",
            "vpaddb {a7}, {y}, {x}",
            "add {q}, 32",
            "add {p0}, 32",
            "add {p1}, 32",
            "dec {r}",
            "jnz 2b",
            // The run's u8 sums into the 16-bit sums: all += acc, odd += acc >> 8.
            "vpaddw {x}, {a0}, ymmword ptr [{all} + 0]",
            "vmovdqu ymmword ptr [{all} + 0], {x}",
            "vpsrlw {a0}, {a0}, 8",
            "vpaddw {a0}, {a0}, ymmword ptr [{odd} + 0]",
            "vmovdqu ymmword ptr [{odd} + 0], {a0}",
            "vpaddw {x}, {a1}, ymmword ptr [{all} + 32]",
            "vmovdqu ymmword ptr [{all} + 32], {x}",
            "vpsrlw {a1}, {a1}, 8",
            "vpaddw {a1}, {a1}, ymmword ptr [{odd} + 32]",
            "vmovdqu ymmword ptr [{odd} + 32], {a1}",
            "vpaddw {x}, {a2}, ymmword ptr [{all} + 64]",
            "vmovdqu ymmword ptr [{all} + 64], {x}",
            "vpsrlw {a2}, {a2}, 8",
            "vpaddw {a2}, {a2}, ymmword ptr [{odd} + 64]",
            "vmovdqu ymmword ptr [{odd} + 64], {a2}",
            "vpaddw {x}, {a3}, ymmword ptr [{all} + 96]",
            "vmovdqu ymmword ptr [{all} + 96], {x}",
            "vpsrlw {a3}, {a3}, 8",
            "vpaddw {a3}, {a3}, ymmword ptr [{odd} + 96]",
            "vmovdqu ymmword ptr [{odd} + 96], {a3}",
            "vpaddw {x}, {a4}, ymmword ptr [{all} + 128]",
            "vmovdqu ymmword ptr [{all} + 128], {x}",
            "vpsrlw {a4}, {a4}, 8",
            "vpaddw {a4}, {a4}, ymmword ptr [{odd} + 128]",
            "vmovdqu ymmword ptr [{odd} + 128], {a4}",
            "vpaddw {x}, {a5}, ymmword ptr [{all} + 160]",
            "vmovdqu ymmword ptr [{all} + 160], {x}",
            "vpsrlw {a5}, {a5}, 8",
            "vpaddw {a5}, {a5}, ymmword ptr [{odd} + 160]",
            "vmovdqu ymmword ptr [{odd} + 160], {a5}",
            "vpaddw {x}, {a6}, ymmword ptr [{all} + 192]",
            "vmovdqu ymmword ptr [{all} + 192], {x}",
            "vpsrlw {a6}, {a6}, 8",
            "vpaddw {a6}, {a6}, ymmword ptr [{odd} + 192]",
            "vmovdqu ymmword ptr [{odd} + 192], {a6}",
            "vpaddw {x}, {a7}, ymmword ptr [{all} + 224]",
            "vmovdqu ymmword ptr [{all} + 224], {x}",
            "vpsrlw {a7}, {a7}, 8",
            "vpaddw {a7}, {a7}, ymmword ptr [{odd} + 224]",
            "vmovdqu ymmword ptr [{odd} + 224], {a7}",
            "test {n}, {n}",
            "jnz 3b",
            p0 = inout(reg) block0 => _,
            p1 = inout(reg) block1 => _,
            q = inout(reg) luts => _,
            n = inout(reg) n => _,
            r = out(reg) _,
            run = const U8_BYTES,
            st = in(reg) stride,
            st3 = in(reg) 3 * stride,
            all = in(reg) all.as_mut_ptr(),
            odd = in(reg) odd.as_mut_ptr(),
            m = in(ymm_reg) low4,
            a0 = out(ymm_reg) _,
            a1 = out(ymm_reg) _,
            a2 = out(ymm_reg) _,
            a3 = out(ymm_reg) _,
            a4 = out(ymm_reg) _,
            a5 = out(ymm_reg) _,
            a6 = out(ymm_reg) _,
            a7 = out(ymm_reg) _,
            lo0 = out(ymm_reg) _,
            lo1 = out(ymm_reg) _,
            hi0 = out(ymm_reg) _,
            hi1 = out(ymm_reg) _,
            x = out(ymm_reg) _,
            y = out(ymm_reg) _,
            z = out(ymm_reg) _,
            options(nostack),
        );
    }
}
