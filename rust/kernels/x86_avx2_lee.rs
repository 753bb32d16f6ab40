//! AVX2 Lee kernels: the nibble-table popcount (Muła et al.) and scalar
//! `popcnt`, in the tile variants measured for issue 15.
//!
//! The tile kernels differ only in how they count the bits of `query ^ row`
//! words of an 8-row group (`transpose_block` layout):
//! - [`Avx2Tile::SadPerWord`]: `vpshufb` byte counts summed into u64 lanes
//!   (`vpsadbw`) after every word;
//! - [`Avx2Tile::ByteAcc2`]/[`ByteAcc3`](Avx2Tile::ByteAcc3)/[`ByteAcc4`](Avx2Tile::ByteAcc4):
//!   byte counts added as bytes over up to [`BYTE_ACC_WORDS`] words, one `vpsadbw`
//!   per run (2, 3 or 4 queries share each loaded block word);
//! - [`Avx2Tile::Scalar`]: scalar `popcnt` per 64-bit word, the eight rows interleaved;
//! - [`Avx2Tile::Hybrid2`]/[`Hybrid3`](Avx2Tile::Hybrid3): 2 or 3 queries on
//!   the vector pipes (as `ByteAcc`) and one more query with scalar `popcnt` on
//!   the integer pipes, in the same loop, so both port families are busy;
//! - [`Avx2Tile::HarleySeal`]: carry-save (Harley–Seal) accumulation of four
//!   words at a time per query, one byte-count lookup per four words.
//!
//! Which one runs is chosen per code width by [`Avx2Tile::for_words`].

use super::{assert_lee_pair, assert_lee_rows, assert_tile_buffers, lend, Backend, Hits, TileArgs};
use std::arch::x86_64::*;

/// Words whose byte counts (at most 8 per byte and word) can be added as bytes
/// before a byte may overflow: 31 × 8 = 248 ≤ 255 < 32 × 8.
pub const BYTE_ACC_WORDS: usize = 255 / 8;

/// Harley–Seal steps (four words each) whose "fours" byte counts (at most 8 per
/// byte and step) can be added as bytes before one may overflow: 31.
const HS_ACC_STEPS: usize = 255 / 8;

/// The AVX2 tile-kernel variants (module docs). Public, hidden, so that the
/// equivalence tests and the benchmarks reach every one of them.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Avx2Tile {
    SadPerWord,
    ByteAcc2,
    ByteAcc3,
    ByteAcc4,
    Scalar,
    Hybrid2,
    Hybrid3,
    HarleySeal,
}

#[doc(hidden)]
impl Avx2Tile {
    pub const ALL: [Avx2Tile; 8] = [
        Avx2Tile::SadPerWord,
        Avx2Tile::ByteAcc2,
        Avx2Tile::ByteAcc3,
        Avx2Tile::ByteAcc4,
        Avx2Tile::Scalar,
        Avx2Tile::Hybrid2,
        Avx2Tile::Hybrid3,
        Avx2Tile::HarleySeal,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Avx2Tile::SadPerWord => "sad_per_word",
            Avx2Tile::ByteAcc2 => "byte_acc2",
            Avx2Tile::ByteAcc3 => "byte_acc3",
            Avx2Tile::ByteAcc4 => "byte_acc4",
            Avx2Tile::Scalar => "scalar_popcnt",
            Avx2Tile::Hybrid2 => "hybrid2v1s",
            Avx2Tile::Hybrid3 => "hybrid3v1s",
            Avx2Tile::HarleySeal => "harley_seal",
        }
    }

    /// The variant the AVX2 backend runs for codes of `words` 64-bit words:
    /// the fastest measured on an AMD EPYC (Zen 3, AVX2 only; benches/README.md,
    /// "AVX2 tile variants"). Up to 128-byte codes four queries share each
    /// loaded block word (the per-group overhead weighs most there); past
    /// that two queries did as well or better. The hybrid and Harley–Seal
    /// variants were not faster at any width measured (32–512 B).
    pub const fn for_words(words: usize) -> Avx2Tile {
        if words <= 16 {
            Avx2Tile::ByteAcc4
        } else {
            Avx2Tile::ByteAcc2
        }
    }

    /// The `lee_tile` kernel with this variant. Panics when the CPU
    /// lacks AVX2 or POPCNT, or on the lengths `assert_tile_buffers` rejects.
    pub fn lee_tile(self, queries: &[u64], words: usize, block: &[u64], out: &mut [u32]) {
        assert!(
            Backend::Avx2.is_supported(),
            "the AVX2 tile kernels need AVX2 and POPCNT"
        );
        assert_tile_buffers(queries.len(), words, block.len(), out.len(), None);
        // SAFETY: CPU: AVX2 and POPCNT (asserted above); lengths: as
        // `assert_tile_buffers` checked just above.
        unsafe { lee_tile_avx2(self, queries, words, block, None, out) }
    }

    /// The `lee_tile_hits` kernel with this variant. Panics as [`Self::lee_tile`].
    pub fn lee_tile_hits(
        self,
        queries: &[u64],
        words: usize,
        block: &[u64],
        bounds: &[u32],
        out: &mut [u32],
        hits: &mut [u8],
    ) {
        assert!(
            Backend::Avx2.is_supported(),
            "the AVX2 tile kernels need AVX2 and POPCNT"
        );
        let lengths = Some((bounds.len(), hits.len()));
        assert_tile_buffers(queries.len(), words, block.len(), out.len(), lengths);
        // SAFETY: CPU: AVX2 and POPCNT (asserted above); lengths: as
        // `assert_tile_buffers` checked just above.
        unsafe { lee_tile_avx2(self, queries, words, block, Some((bounds, hits)), out) }
    }
}

/// The variant the AVX2 table runs for codes of `words` words: the per-width
/// choice, unless `Q2KEY_AVX2_TILE` names a variant (read once; for comparing
/// the variants end to end, e.g. in the Python search benchmark).
fn chosen_variant(words: usize) -> Avx2Tile {
    static FORCED: std::sync::OnceLock<Option<Avx2Tile>> = std::sync::OnceLock::new();
    let forced = FORCED.get_or_init(|| {
        let name = std::env::var("Q2KEY_AVX2_TILE").ok()?;
        Avx2Tile::ALL.into_iter().find(|v| v.name() == name.trim())
    });
    forced.unwrap_or(Avx2Tile::for_words(words))
}

// Safe shims of the AVX2 table: only reachable through `x86_avx2::KERNELS`,
// which `Kernels::for_backend` hands out after checking the CPU supports AVX2
// and POPCNT. Each checks the buffer lengths its kernel relies on first.

pub(crate) fn lee_pair(a: &[u8], b: &[u8]) -> u32 {
    assert_lee_pair(a.len(), b.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: none needed (the kernel reads the common length of both).
    unsafe { lee_pair_avx2(a, b) }
}

pub(crate) fn lee_rows(query: &[u8], rows: &[u8], out: &mut [u32]) {
    assert_lee_rows(query.len(), rows.len(), out.len());
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: none needed (the kernel reads each row as a subslice).
    unsafe { lee_rows_avx2(query, rows, out) }
}

pub(crate) fn lee_tile(queries: &[u64], words: usize, block: &[u64], out: &mut [u32]) {
    assert_tile_buffers(queries.len(), words, block.len(), out.len(), None);
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: as `assert_tile_buffers` checked just above.
    unsafe { lee_tile_avx2(chosen_variant(words), queries, words, block, None, out) }
}

pub(crate) fn lee_tile_hits(
    queries: &[u64],
    words: usize,
    block: &[u64],
    bounds: &[u32],
    out: &mut [u32],
    hits: &mut [u8],
) {
    let lengths = Some((bounds.len(), hits.len()));
    assert_tile_buffers(queries.len(), words, block.len(), out.len(), lengths);
    let variant = chosen_variant(words);
    // SAFETY: CPU: AVX2 and POPCNT (this table is only handed out on such a
    // CPU); lengths: as `assert_tile_buffers` checked just above.
    unsafe { lee_tile_avx2(variant, queries, words, block, Some((bounds, hits)), out) }
}

/// Per-byte popcount of 32 bytes via two 16-entry nibble tables.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn popcount_bytes(v: __m256i) -> __m256i {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: no memory is accessed.
    unsafe {
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let lo = _mm256_and_si256(v, low);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
        _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi))
    }
}

/// Sums of each 8-byte lane of bytes (`vpsadbw` against zero).
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn sum_u64_lanes(bytes: __m256i) -> __m256i {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: no memory is accessed.
    unsafe { _mm256_sad_epu8(bytes, _mm256_setzero_si256()) }
}

/// Popcounts of each 64-bit lane.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn popcount_u64_lanes(v: __m256i) -> __m256i {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: no memory is accessed.
    unsafe { sum_u64_lanes(popcount_bytes(v)) }
}

/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn hsum_u64(v: __m256i) -> u64 {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the store writes
    // 32 bytes into the 32-byte local `lanes`.
    unsafe {
        let mut lanes = [0u64; 4];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v);
        lanes[0] + lanes[1] + lanes[2] + lanes[3]
    }
}

/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn lee_pair_inline(a: &[u8], b: &[u8]) -> u32 {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the loop reads
    // 32 bytes at i of `a` and `b` for i + 32 ≤ n = min(a.len(), b.len()).
    unsafe {
        let n = a.len().min(b.len());
        let body = n / 32 * 32;
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i < body {
            let x = _mm256_loadu_si256(a.as_ptr().add(i) as *const __m256i);
            let y = _mm256_loadu_si256(b.as_ptr().add(i) as *const __m256i);
            acc = _mm256_add_epi64(acc, popcount_u64_lanes(_mm256_xor_si256(x, y)));
            i += 32;
        }
        hsum_u64(acc) as u32 + super::scalar::lee_pair(&a[body..n], &b[body..n])
    }
}

/// # Safety
/// The CPU supports AVX2 and POPCNT.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn lee_pair_avx2(a: &[u8], b: &[u8]) -> u32 {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: none needed.
    unsafe { lee_pair_inline(a, b) }
}

/// # Safety
/// The CPU supports AVX2 and POPCNT.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn lee_rows_avx2(query: &[u8], rows: &[u8], out: &mut [u32]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: none needed (each
    // row is a subslice of `rows`).
    unsafe {
        let width = query.len();
        if width == 0 {
            out.fill(0);
            return;
        }
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(width)) {
            *o = lee_pair_inline(query, row);
        }
    }
}

/// Runs `variant` over every query of the tile: its widest query count while
/// enough queries remain, then narrower ones of the same family.
///
/// # Safety
/// The CPU supports AVX2 and POPCNT, and the lengths satisfy
/// [`assert_tile_buffers`](super::assert_tile_buffers) (with `hits`, its bounds and masks).
#[target_feature(enable = "avx2,popcnt")]
unsafe fn lee_tile_avx2(
    variant: Avx2Tile,
    queries: &[u64],
    words: usize,
    block: &[u64],
    mut hits: Hits<'_>,
    out: &mut [u32],
) {
    // SAFETY: CPU: AVX2 and POPCNT (this function's contract); lengths: every
    // tile function needs q + (its query count) ≤ queries.len() / words and the
    // lengths `assert_tile_buffers` checks (this function's contract); each
    // loop below only calls a tile of T queries at q while q + T ≤ nq.
    unsafe {
        let nq = queries.len() / words;
        let args = TileArgs {
            queries,
            words,
            block,
            groups: block.len() / (words * 8),
        };
        let mut q = 0;
        macro_rules! run {
            ($t:expr, $call:expr) => {
                while nq - q >= $t {
                    $call(&args, q, lend(&mut hits), out);
                    q += $t;
                }
            };
        }
        match variant {
            Avx2Tile::SadPerWord => {
                run!(2, tile_sad_per_word::<2>);
                run!(1, tile_sad_per_word::<1>);
            }
            Avx2Tile::ByteAcc2 => {}
            Avx2Tile::ByteAcc3 => run!(3, tile_hybrid::<3, false>),
            Avx2Tile::ByteAcc4 => run!(4, tile_hybrid::<4, false>),
            Avx2Tile::Scalar => run!(1, tile_hybrid::<0, true>),
            Avx2Tile::Hybrid2 => run!(3, tile_hybrid::<2, true>),
            Avx2Tile::Hybrid3 => run!(4, tile_hybrid::<3, true>),
            Avx2Tile::HarleySeal => {
                run!(2, tile_harley_seal::<2>);
                run!(1, tile_harley_seal::<1>);
            }
        }
        // What remains (and all of ByteAcc2): byte accumulation, 2 then 1 queries.
        run!(2, tile_hybrid::<2, false>);
        run!(1, tile_hybrid::<1, false>);
    }
}

/// Writes the eight distances of group `g` for query `q` (four rows in each of
/// `lo` and `hi`, as u64 lanes) and, with `hits`, its mask of rows below the
/// query's bound.
///
/// # Safety
/// The CPU supports AVX2, and `q`, `g` address a cell of the tile whose
/// lengths [`assert_tile_buffers`](super::assert_tile_buffers) checked
/// (`out[(q · groups + g) · 8..][..8]`, `bounds[q]`, `hits[q · groups + g]`).
#[inline(always)]
unsafe fn store_lanes(
    lo: __m256i,
    hi: __m256i,
    q: usize,
    g: usize,
    groups: usize,
    hits: &mut Hits<'_>,
    out: &mut [u32],
) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: the stores write
    // the 64-byte local `lanes`, and `out`, `bounds`, `hits` are indexed within
    // the cells this function's contract names.
    unsafe {
        let mut lanes = [0u64; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, lo);
        _mm256_storeu_si256(lanes.as_mut_ptr().add(4) as *mut __m256i, hi);
        let dst = out.as_mut_ptr().add((q * groups + g) * 8);
        for (r, &v) in lanes.iter().enumerate() {
            *dst.add(r) = v as u32;
        }
        if let Some((bounds, hits)) = hits.as_mut() {
            // Distances and bounds are below 2^32, so the signed 64-bit compare is exact.
            let bound = _mm256_set1_epi64x(i64::from(*bounds.get_unchecked(q)));
            let lo_hit = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(bound, lo)));
            let hi_hit = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(bound, hi)));
            *hits.get_unchecked_mut(q * groups + g) = (lo_hit | (hi_hit << 4)) as u8;
        }
    }
}

/// [`store_lanes`] for eight distances counted in general-purpose registers.
///
/// # Safety
/// As [`store_lanes`] (no CPU feature needed).
#[inline(always)]
unsafe fn store_scalar(d: &[u64; 8], q: usize, g: usize, groups: usize, hits: &mut Hits<'_>, out: &mut [u32]) {
    // SAFETY: lengths: `out`, `bounds`, `hits` are indexed within the cells
    // this function's contract names.
    unsafe {
        let dst = out.as_mut_ptr().add((q * groups + g) * 8);
        for (r, &v) in d.iter().enumerate() {
            *dst.add(r) = v as u32;
        }
        if let Some((bounds, hits)) = hits.as_mut() {
            let bound = u64::from(*bounds.get_unchecked(q));
            let mask = d
                .iter()
                .enumerate()
                .fold(0u8, |m, (r, &v)| m | (u8::from(v < bound) << r));
            *hits.get_unchecked_mut(q * groups + g) = mask;
        }
    }
}

/// `T` queries at a time against each 8-row group (two ymm of four rows),
/// byte counts summed into u64 lanes after every word.
///
/// # Safety
/// The CPU supports AVX2, `q0 + T ≤ queries.len() / words`, and the
/// lengths satisfy [`assert_tile_buffers`](super::assert_tile_buffers) for
/// `args` and `out` (and `hits`, when given).
#[inline(always)]
unsafe fn tile_sad_per_word<const T: usize>(args: &TileArgs<'_>, q0: usize, mut hits: Hits<'_>, out: &mut [u32]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: for query
    // q0 + t < queries.len() / words and group g < block.len() / (8 · words), it
    // reads queries[(q0 + t) · words + w] and block[(g · words + w) · 8..][..8]
    // (w < words), and `store_lanes` writes that query's cell of group g;
    // `assert_tile_buffers` checked that all of these are in bounds.
    unsafe {
        let TileArgs {
            queries,
            words,
            block,
            groups,
        } = *args;
        let qp = queries.as_ptr().add(q0 * words);
        for g in 0..groups {
            let gp = block.as_ptr().add(g * words * 8);
            let mut lo = [_mm256_setzero_si256(); T];
            let mut hi = [_mm256_setzero_si256(); T];
            for w in 0..words {
                let d_lo = _mm256_loadu_si256(gp.add(w * 8) as *const __m256i);
                let d_hi = _mm256_loadu_si256(gp.add(w * 8 + 4) as *const __m256i);
                for t in 0..T {
                    let qv = _mm256_set1_epi64x(*qp.add(t * words + w) as i64);
                    lo[t] = _mm256_add_epi64(lo[t], popcount_u64_lanes(_mm256_xor_si256(d_lo, qv)));
                    hi[t] = _mm256_add_epi64(hi[t], popcount_u64_lanes(_mm256_xor_si256(d_hi, qv)));
                }
            }
            for t in 0..T {
                store_lanes(lo[t], hi[t], q0 + t, g, groups, &mut hits, out);
            }
        }
    }
}

/// `V` queries on the vector pipes, byte counts added as bytes over runs of
/// [`BYTE_ACC_WORDS`] words (one `vpsadbw` per run), and, with `SCALAR`, one
/// more query (query `q0 + V`) with scalar `popcnt` over the same words, the
/// eight rows interleaved, so the integer pipes work beside the vector ones.
///
/// # Safety
/// The CPU supports AVX2 and POPCNT, `q0 + V + SCALAR ≤ queries.len() / words`,
/// and the lengths satisfy [`assert_tile_buffers`](super::assert_tile_buffers)
/// for `args` and `out` (and `hits`, when given).
#[inline(always)]
unsafe fn tile_hybrid<const V: usize, const SCALAR: bool>(
    args: &TileArgs<'_>,
    q0: usize,
    mut hits: Hits<'_>,
    out: &mut [u32],
) {
    // SAFETY: CPU: AVX2 and POPCNT (this function's contract); lengths: for
    // query q0 + t (t < V + SCALAR, so q0 + t < queries.len() / words) and group
    // g < block.len() / (8 · words), it reads queries[(q0 + t) · words + w] and
    // block[(g · words + w) · 8..][..8] (w < words), and the stores write that
    // query's cell of group g; `assert_tile_buffers` checked that all of these
    // are in bounds.
    unsafe {
        let TileArgs {
            queries,
            words,
            block,
            groups,
        } = *args;
        let qp = queries.as_ptr().add(q0 * words);
        let sp = qp.add(V * words);
        for g in 0..groups {
            let gp = block.as_ptr().add(g * words * 8);
            let mut lo = [_mm256_setzero_si256(); V];
            let mut hi = [_mm256_setzero_si256(); V];
            let mut scalar = [0u64; 8];
            let mut w = 0;
            while w < words {
                let run_end = words.min(w + BYTE_ACC_WORDS);
                let mut lo_bytes = [_mm256_setzero_si256(); V];
                let mut hi_bytes = [_mm256_setzero_si256(); V];
                while w < run_end {
                    let row = gp.add(w * 8);
                    if V > 0 {
                        let d_lo = _mm256_loadu_si256(row as *const __m256i);
                        let d_hi = _mm256_loadu_si256(row.add(4) as *const __m256i);
                        for t in 0..V {
                            let qv = _mm256_set1_epi64x(*qp.add(t * words + w) as i64);
                            lo_bytes[t] = _mm256_add_epi8(lo_bytes[t], popcount_bytes(_mm256_xor_si256(d_lo, qv)));
                            hi_bytes[t] = _mm256_add_epi8(hi_bytes[t], popcount_bytes(_mm256_xor_si256(d_hi, qv)));
                        }
                    }
                    if SCALAR {
                        popcnt_rows(row, *sp.add(w), &mut scalar);
                    }
                    w += 1;
                }
                for t in 0..V {
                    lo[t] = _mm256_add_epi64(lo[t], sum_u64_lanes(lo_bytes[t]));
                    hi[t] = _mm256_add_epi64(hi[t], sum_u64_lanes(hi_bytes[t]));
                }
            }
            for t in 0..V {
                store_lanes(lo[t], hi[t], q0 + t, g, groups, &mut hits, out);
            }
            if SCALAR {
                store_scalar(&scalar, q0 + V, g, groups, &mut hits, out);
            }
        }
    }
}

/// Adds `popcount(row[r] ^ q)` to `acc[r]` for the eight rows of one
/// transposed word, with scalar `popcnt` in inline assembly: opaque to LLVM,
/// which otherwise turns the eight counts into vector code (measured: it
/// did), taking them off the integer pipes this is meant to keep busy.
///
/// # Safety
/// The CPU supports POPCNT, and `row[..8]` is readable.
#[inline(always)]
unsafe fn popcnt_rows(row: *const u64, q: u64, acc: &mut [u64; 8]) {
    // SAFETY: CPU: POPCNT (this function's contract); lengths: reads the eight
    // words row[0..8] (this function's contract), writes only registers.
    unsafe {
        std::arch::asm!(
            "mov {t}, {q}", "xor {t}, qword ptr [{p}]", "popcnt {t}, {t}", "add {a0}, {t}",
            "mov {t}, {q}", "xor {t}, qword ptr [{p} + 8]", "popcnt {t}, {t}", "add {a1}, {t}",
            "mov {t}, {q}", "xor {t}, qword ptr [{p} + 16]", "popcnt {t}, {t}", "add {a2}, {t}",
            "mov {t}, {q}", "xor {t}, qword ptr [{p} + 24]", "popcnt {t}, {t}", "add {a3}, {t}",
            "mov {t}, {q}", "xor {t}, qword ptr [{p} + 32]", "popcnt {t}, {t}", "add {a4}, {t}",
            "mov {t}, {q}", "xor {t}, qword ptr [{p} + 40]", "popcnt {t}, {t}", "add {a5}, {t}",
            "mov {t}, {q}", "xor {t}, qword ptr [{p} + 48]", "popcnt {t}, {t}", "add {a6}, {t}",
            "mov {t}, {q}", "xor {t}, qword ptr [{p} + 56]", "popcnt {t}, {t}", "add {a7}, {t}",
            p = in(reg) row,
            q = in(reg) q,
            t = out(reg) _,
            a0 = inout(reg) acc[0],
            a1 = inout(reg) acc[1],
            a2 = inout(reg) acc[2],
            a3 = inout(reg) acc[3],
            a4 = inout(reg) acc[4],
            a5 = inout(reg) acc[5],
            a6 = inout(reg) acc[6],
            a7 = inout(reg) acc[7],
            options(pure, readonly, nostack),
        );
    }
}

/// Carry-save adder: `(carry, sum)` of three bit vectors.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn csa(a: __m256i, b: __m256i, c: __m256i) -> (__m256i, __m256i) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: no memory is accessed.
    unsafe {
        let u = _mm256_xor_si256(a, b);
        let carry = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
        (carry, _mm256_xor_si256(u, c))
    }
}

/// Word `w` of Harley–Seal stream `s` of a group: block words of rows
/// `4(s % 2)..+4` XOR word `w` of query `s / 2` (from `qp`).
///
/// # Safety
/// The CPU supports AVX2; `gp[w · 8 + 4(s % 2)..][..4]` and `qp[(s / 2) · words + w]` are readable.
#[inline(always)]
unsafe fn stream_word(gp: *const u64, qp: *const u64, words: usize, s: usize, w: usize) -> __m256i {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: reads exactly the
    // four block words and one query word this function's contract names.
    unsafe {
        let d = _mm256_loadu_si256(gp.add(w * 8 + 4 * (s % 2)) as *const __m256i);
        _mm256_xor_si256(d, _mm256_set1_epi64x(*qp.add((s / 2) * words + w) as i64))
    }
}

/// `T` queries at a time, Harley–Seal over the words of each (query, four
/// rows) stream: four words enter a carry-save tree (ones, twos) and only its
/// "fours" output is counted, one lookup per four words; the ones, twos and
/// the last `words % 4` words are counted once at the end of the group.
///
/// # Safety
/// The CPU supports AVX2, `q0 + T ≤ queries.len() / words`, and the
/// lengths satisfy [`assert_tile_buffers`](super::assert_tile_buffers) for
/// `args` and `out` (and `hits`, when given).
#[inline(always)]
unsafe fn tile_harley_seal<const T: usize>(args: &TileArgs<'_>, q0: usize, mut hits: Hits<'_>, out: &mut [u32]) {
    // SAFETY: CPU: AVX2 (this function's contract); lengths: for query
    // q0 + t < queries.len() / words and group g < block.len() / (8 · words), it
    // reads queries[(q0 + t) · words + w] and block[(g · words + w) · 8 + 4h..][..4]
    // (w < words, h < 2), and `store_lanes` writes that query's cell of group g;
    // `assert_tile_buffers` checked that all of these are in bounds.
    unsafe {
        let TileArgs {
            queries,
            words,
            block,
            groups,
        } = *args;
        let qp = queries.as_ptr().add(q0 * words);
        let zero = _mm256_setzero_si256();
        let steps = words / 4;
        // Stream s = 2t + h: query q0 + t against rows 4h..4h + 4 of the group.
        let x = |gp: *const u64, s: usize, w: usize| stream_word(gp, qp, words, s, w);
        for g in 0..groups {
            let gp = block.as_ptr().add(g * words * 8);
            let mut ones = [[zero; 2]; T];
            let mut twos = [[zero; 2]; T];
            let mut fours = [[zero; 2]; T];
            let mut step = 0;
            while step < steps {
                let run_end = steps.min(step + HS_ACC_STEPS);
                let mut four_bytes = [[zero; 2]; T];
                while step < run_end {
                    let w = step * 4;
                    for t in 0..T {
                        for h in 0..2 {
                            let s = 2 * t + h;
                            let (twos_a, o) = csa(ones[t][h], x(gp, s, w), x(gp, s, w + 1));
                            let (twos_b, o) = csa(o, x(gp, s, w + 2), x(gp, s, w + 3));
                            let (f, tw) = csa(twos[t][h], twos_a, twos_b);
                            ones[t][h] = o;
                            twos[t][h] = tw;
                            four_bytes[t][h] = _mm256_add_epi8(four_bytes[t][h], popcount_bytes(f));
                        }
                    }
                    step += 1;
                }
                for t in 0..T {
                    for h in 0..2 {
                        fours[t][h] = _mm256_add_epi64(fours[t][h], sum_u64_lanes(four_bytes[t][h]));
                    }
                }
            }
            for t in 0..T {
                let mut total = [zero; 2];
                for h in 0..2 {
                    let s = 2 * t + h;
                    // ones (≤ 8 per byte) plus up to 3 tail words (≤ 24): fits a byte.
                    let mut ones_bytes = popcount_bytes(ones[t][h]);
                    for w in steps * 4..words {
                        ones_bytes = _mm256_add_epi8(ones_bytes, popcount_bytes(x(gp, s, w)));
                    }
                    let twos_count = sum_u64_lanes(popcount_bytes(twos[t][h]));
                    total[h] = _mm256_add_epi64(
                        _mm256_add_epi64(_mm256_slli_epi64::<2>(fours[t][h]), _mm256_slli_epi64::<1>(twos_count)),
                        sum_u64_lanes(ones_bytes),
                    );
                }
                store_lanes(total[0], total[1], q0 + t, g, groups, &mut hits, out);
            }
        }
    }
}
