//! Kernel variants and the table of the one chosen at run time.
//!
//! Every variant exposes the same functions (one [`Kernels`] table each);
//! `scalar` is the reference the others are tested against. The x86
//! variants are `#[target_feature]` functions wrapped in safe shims that are
//! only reachable through a [`Kernels`] table built after the CPU was checked.
//!
//! The SIMD kernels read and write through raw pointers, so every shim (the
//! scalar ones too, so that every backend fails alike) first checks the buffer
//! lengths the kernel relies on (`assert_encode_buffers`, `assert_lee_pair`,
//! `assert_lee_rows`, `assert_tile_buffers`, `assert_asym_buffers`,
//! `assert_route_buffers`, ...): a wrong length panics before anything is
//! read or written. One check per call (per row or per tile), never per
//! element. The table's function pointers are
//! crate-private; tests and benchmarks call the same shims through
//! `#[doc(hidden)]` methods of [`Kernels`].

pub(crate) mod scalar;
pub mod scalar_asym;
pub mod scalar_lee_scan;
pub(crate) mod scalar_route;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx2_asym;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx2_lee;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx2_lee_scan;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx2_route;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx512_asym;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_avx512_route;

use crate::encode::cuts::{quantize_cuts_wide, row_scale, RowScale};
use crate::encode::quantize::{fill_all_b, row_threshold_with, sum_of_squares, Element, RowThreshold};
use crate::keys::{count_run_starts, gather_run_starts, key_and_transitions_with};
use std::sync::OnceLock;

/// Encodes one row into `code`; on a NaN/±Inf returns its column.
pub(crate) type EncodeRow<T> = fn(x: &[T], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize>;
/// Encodes one row into `code` with per-dimension cuts (`3 × x.len()`:
/// lows, mids, highs); on a NaN/±Inf returns its column.
pub(crate) type EncodeCutsRow<T> = fn(x: &[T], cuts: &[T], code: &mut [u8]) -> Result<(u64, u32), usize>;
/// Lee distance of two codes of equal length.
pub(crate) type LeePair = fn(a: &[u8], b: &[u8]) -> u32;
/// `out = rows·matrix` by the SPEC §9 rule (`rows`, `out`: `k × dim`; `matrix`: `dim × dim`).
pub(crate) type RotateRows = fn(rows: &[f32], matrix: &[f32], dim: usize, out: &mut [f32]);
/// Lee distances of one code to each row of a row-major block (`out.len()` rows).
pub(crate) type LeeRows = fn(query: &[u8], rows: &[u8], out: &mut [u32]);
/// Lee distances of `queries.len() / words` queries (as little-endian u64
/// words) to a transposed block of 8-row groups; `out` is query-major.
pub(crate) type LeeTile = fn(queries: &[u64], words: usize, block: &[u64], out: &mut [u32]);
/// [`LeeTile`] that also sets, per (query, 8-row group), a bit mask of the
/// rows whose distance is below `bounds[query]`: `hits[q·groups + g]`, bit r
/// for row `8g + r`. Distances of groups without hits may be left unwritten.
pub(crate) type LeeTileHits =
    fn(queries: &[u64], words: usize, block: &[u64], bounds: &[u32], out: &mut [u32], hits: &mut [u8]);

/// What the x86 tile kernels share across their query tiles.
#[cfg(target_arch = "x86_64")]
pub(crate) struct TileArgs<'a> {
    pub queries: &'a [u64],
    pub words: usize,
    pub block: &'a [u64],
    pub groups: usize,
}

/// Per-query bounds and the hit masks to fill, when the caller wants them.
#[cfg(target_arch = "x86_64")]
pub(crate) type Hits<'a> = Option<(&'a [u32], &'a mut [u8])>;

/// Lends `hits` to one tile call.
#[cfg(target_arch = "x86_64")]
pub(crate) fn lend<'b>(hits: &'b mut Hits<'_>) -> Hits<'b> {
    hits.as_mut().map(|(b, h)| (&b[..], &mut h[..]))
}

/// Which kernel family runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    Scalar,
    Avx2,
    Avx512,
}

impl Backend {
    /// The name `q2key.simd_backend()` reports.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512-vpopcntdq",
        }
    }

    pub fn from_name(name: &str) -> Option<Backend> {
        [Backend::Scalar, Backend::Avx2, Backend::Avx512]
            .into_iter()
            .find(|b| b.name() == name || (name == "avx512" && *b == Backend::Avx512))
    }

    /// Whether this CPU can run the backend.
    pub fn is_supported(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("popcnt")
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => {
                Backend::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("bmi2")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best backend this CPU supports.
    pub fn best() -> Backend {
        [Backend::Avx512, Backend::Avx2]
            .into_iter()
            .find(|b| b.is_supported())
            .unwrap_or(Backend::Scalar)
    }

    /// Every backend this CPU can run (for tests and benchmarks).
    pub fn supported() -> Vec<Backend> {
        [Backend::Scalar, Backend::Avx2, Backend::Avx512]
            .into_iter()
            .filter(|b| b.is_supported())
            .collect()
    }
}

/// One backend's kernels (pass to [`encode_with`](crate::encode_with) and
/// the other `*_with` functions to pick a backend).
pub struct Kernels {
    pub backend: Backend,
    pub(crate) encode_f32: EncodeRow<f32>,
    pub(crate) encode_f64: EncodeRow<f64>,
    pub(crate) encode_cuts_f32: EncodeCutsRow<f32>,
    pub(crate) encode_cuts_f64: EncodeCutsRow<f64>,
    pub(crate) lee_pair: LeePair,
    pub(crate) lee_rows: LeeRows,
    pub(crate) lee_tile: LeeTile,
    pub(crate) lee_tile_hits: LeeTileHits,
    pub(crate) asym_scan: scalar_asym::AsymScan,
    pub(crate) quantise_pairs: scalar_asym::QuantisePairs,
    pub(crate) lee_scan: scalar_lee_scan::LeeScan,
    pub(crate) rotate: RotateRows,
    /// The inverted file's routing dot products (exact integers).
    pub(crate) route_dots: scalar_route::RouteDots,
}

/// The kernels one at a time, for the backend tests and benchmarks (not a
/// stable API). Each checks its buffer lengths and panics on a mismatch.
#[doc(hidden)]
impl Kernels {
    pub fn encode_f32(&self, x: &[f32], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
        (self.encode_f32)(x, tau, code)
    }
    pub fn encode_f64(&self, x: &[f64], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
        (self.encode_f64)(x, tau, code)
    }
    pub fn encode_cuts_f32(&self, x: &[f32], cuts: &[f32], code: &mut [u8]) -> Result<(u64, u32), usize> {
        (self.encode_cuts_f32)(x, cuts, code)
    }
    pub fn encode_cuts_f64(&self, x: &[f64], cuts: &[f64], code: &mut [u8]) -> Result<(u64, u32), usize> {
        (self.encode_cuts_f64)(x, cuts, code)
    }
    pub fn lee_pair(&self, a: &[u8], b: &[u8]) -> u32 {
        (self.lee_pair)(a, b)
    }
    pub fn lee_rows(&self, query: &[u8], rows: &[u8], out: &mut [u32]) {
        (self.lee_rows)(query, rows, out)
    }
    pub fn lee_tile(&self, queries: &[u64], words: usize, block: &[u64], out: &mut [u32]) {
        (self.lee_tile)(queries, words, block, out)
    }
    pub fn lee_tile_hits(
        &self,
        queries: &[u64],
        words: usize,
        block: &[u64],
        bounds: &[u32],
        out: &mut [u32],
        hits: &mut [u8],
    ) {
        (self.lee_tile_hits)(queries, words, block, bounds, out, hits)
    }
    /// `luts`: the queries' tables side by side, `32·width` bytes each, every
    /// entry at most 127 (checked: the kernels only check lengths); `next`:
    /// bytes to prefetch after `blocks` (never read).
    pub fn asym_scan(&self, luts: &[u8], width: usize, blocks: &[u8], next: &[u8], out: &mut [u32]) {
        scalar_asym::assert_table_entries(luts);
        let tables: Vec<&[u8]> = luts.chunks(32 * width.max(1)).collect();
        (self.asym_scan)(&tables, width, blocks, next, out)
    }
    /// `queries`: `4·groups` bytes each (every byte ≤ 127); `centroids`:
    /// whole tiles of 64 centroids × `4·groups` i8 in the routing layout.
    pub fn route_dots(&self, queries: &[u8], groups: usize, centroids: &[i8], out: &mut [i32]) {
        assert!(
            queries.iter().all(|&b| b <= 127),
            "route_dots: query bytes must be at most 127"
        );
        (self.route_dots)(queries, groups, centroids, out)
    }
    pub fn lee_scan(
        &self,
        tables: &scalar_lee_scan::LeeTables,
        queries: std::ops::Range<usize>,
        blocks: &[u8],
        hits: Option<(&[u32], &mut [u8])>,
        out: &mut [u32],
    ) {
        (self.lee_scan)(tables, queries, blocks, hits, out)
    }
}

impl Kernels {
    /// The kernels of `backend`, or `None` when this CPU cannot run them.
    pub fn for_backend(backend: Backend) -> Option<&'static Kernels> {
        if !backend.is_supported() {
            return None;
        }
        Some(match backend {
            Backend::Scalar => &scalar::KERNELS,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => &x86_avx2::KERNELS,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => &x86_avx512::KERNELS,
            #[cfg(not(target_arch = "x86_64"))]
            _ => return None,
        })
    }

    /// The kernels in use: the best the CPU supports, chosen once. The
    /// environment variable `Q2KEY_SIMD` (`scalar`, `avx2`, `avx512`) can
    /// lower the choice, for testing and for comparing backends.
    pub fn active() -> &'static Kernels {
        static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();
        ACTIVE.get_or_init(|| {
            let best = Backend::best();
            let chosen = std::env::var("Q2KEY_SIMD")
                .ok()
                .and_then(|name| Backend::from_name(name.trim()))
                .filter(|b| *b <= best && b.is_supported())
                .unwrap_or(best);
            Kernels::for_backend(chosen).unwrap_or(&scalar::KERNELS)
        })
    }
}

/// The row encoder every variant shares: threshold, quantise with the
/// variant's `quantize`, then key and transition count from the packed code.
#[inline(always)]
pub(crate) fn encode_row_with<T: Element>(
    x: &[T],
    tau: f64,
    code: &mut [u8],
    quantize: impl FnOnce(&[T], T, &mut [u8]),
) -> Result<(u64, u32), usize> {
    encode_row_gather(
        x,
        tau,
        code,
        sum_of_squares(x),
        quantize,
        gather_run_starts,
        count_run_starts,
    )
}

/// [`encode_row_with`] with `Σx²` (as [`sum_of_squares`] computes it), the
/// key's run-start gather and the count of the words after the key supplied too.
#[inline(always)]
pub(crate) fn encode_row_gather<T: Element>(
    x: &[T],
    tau: f64,
    code: &mut [u8],
    sum_sq: f64,
    quantize: impl FnOnce(&[T], T, &mut [u8]),
    gather: impl Fn(u64, u64) -> u64,
    count_rest: impl Fn(&[u8], usize, usize, u64) -> u32,
) -> Result<(u64, u32), usize> {
    match row_threshold_with(x, tau, sum_sq) {
        RowThreshold::Cut(t) => quantize(x, t, code),
        RowThreshold::AllZero => fill_all_b(code, x.len()),
        RowThreshold::NonFinite(col) => return Err(col),
    }
    Ok(key_and_transitions_with(code, x.len(), gather, count_rest))
}

/// The per-dimension row encoder every variant shares: scale, quantise with
/// the variant's `quantize(x, 1/‖x‖, cuts, code)` (or the shared wide path),
/// then key and transition count.
#[inline(always)]
pub(crate) fn encode_row_cuts<T: Element>(
    x: &[T],
    cuts: &[T],
    code: &mut [u8],
    sum_sq: f64,
    quantize: impl FnOnce(&[T], T, &[T], &mut [u8]),
    gather: impl Fn(u64, u64) -> u64,
    count_rest: impl Fn(&[u8], usize, usize, u64) -> u32,
) -> Result<(u64, u32), usize> {
    match row_scale(x, sum_sq) {
        RowScale::Multiply(inv) => quantize(x, inv, cuts, code),
        RowScale::Wide => quantize_cuts_wide(x, cuts, code),
        RowScale::AllZero => fill_all_b(code, x.len()),
        RowScale::NonFinite(col) => return Err(col),
    }
    Ok(key_and_transitions_with(code, x.len(), gather, count_rest))
}

/// The buffer sizes every encode kernel relies on: `code` holds at least
/// `code_width(dim)` bytes and `cuts` (if any) exactly `3 × dim` values. The
/// SIMD kernels write `code` and read `cuts` through raw pointers, so every
/// shim checks them (a caller bug, not input: panics).
#[inline(always)]
pub(crate) fn assert_encode_buffers(dim: usize, cuts: Option<usize>, code: usize) {
    assert!(
        code >= crate::code_width(dim),
        "code buffer shorter than code_width(dim)"
    );
    if let Some(c) = cuts {
        assert!(dim.checked_mul(3) == Some(c), "cuts must hold 3 × dim values");
    }
}

/// The lengths [`LeePair`] relies on: two codes of the same width.
#[inline(always)]
pub(crate) fn assert_lee_pair(a: usize, b: usize) {
    assert_eq!(a, b, "lee_pair: codes of different widths");
}

/// The lengths [`LeeRows`] relies on: `rows` holds at least `out` rows of
/// `width` bytes (rows past them are ignored).
#[inline(always)]
pub(crate) fn assert_lee_rows(width: usize, rows: usize, out: usize) {
    assert!(
        width.checked_mul(out).is_some_and(|need| rows >= need),
        "lee_rows: {out} distances need {out} rows of {width} bytes, got {rows} bytes"
    );
}

/// The shape of one tile-kernel call, as [`assert_tile_buffers`] checked it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TileShape {
    /// Queries: `queries.len() / words`.
    pub queries: usize,
    /// 8-row groups: `block.len() / (8 · words)`.
    pub groups: usize,
}

/// The lengths [`LeeTile`] and [`LeeTileHits`] rely on: `words ≥ 1`, whole
/// queries (`queries.len()` a multiple of `words`), whole 8-row groups
/// (`block.len()` a multiple of `8 · words`), `out` at least
/// `queries × groups × 8` distances and, with hits, exactly one bound per
/// query and at least `queries × groups` hit masks. The SIMD tile kernels read
/// and write all of them through raw pointers, so every shim checks them first.
#[inline(always)]
pub(crate) fn assert_tile_buffers(
    queries: usize,
    words: usize,
    block: usize,
    out: usize,
    hits: Option<(usize, usize)>,
) -> TileShape {
    assert!(words >= 1, "lee_tile: words must be at least 1");
    assert!(
        queries.is_multiple_of(words),
        "lee_tile: {queries} query words are not whole queries of {words} words"
    );
    let group_len = words.checked_mul(8).expect("lee_tile: words overflows");
    assert!(
        block.is_multiple_of(group_len),
        "lee_tile: {block} block words are not whole 8-row groups of {words} words"
    );
    let shape = TileShape {
        queries: queries / words,
        groups: block / group_len,
    };
    let cells = shape
        .queries
        .checked_mul(shape.groups)
        .expect("lee_tile: queries × groups overflows");
    assert!(
        cells.checked_mul(8).is_some_and(|need| out >= need),
        "lee_tile: out holds {out} distances, fewer than {} queries × {} rows",
        shape.queries,
        8 * shape.groups
    );
    if let Some((bounds, hits)) = hits {
        assert_eq!(bounds, shape.queries, "lee_tile_hits: one bound per query");
        assert!(
            hits >= cells,
            "lee_tile_hits: hits holds {hits} masks, fewer than {cells}"
        );
    }
    shape
}

/// How far ahead of a row the x86 f32 encoders prefetch: the next row, or as
/// many whole rows as fit in [`PREFETCH_AHEAD_FLOATS`] (rows are contiguous in
/// a batch). A short row is done before a line asked for one row ahead has
/// arrived: at n = 384 one row ahead took 1.1–1.2× the time of 16 KiB ahead.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_distance(n: usize) -> usize {
    n * (PREFETCH_AHEAD_FLOATS / n.max(1)).max(1)
}

/// 16 KiB of f32: a few rows for narrow vectors, the next row for n ≥ 4096.
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD_FLOATS: usize = 4096;

/// Prefetches one cache line of the row [`prefetch_distance`] ahead of the row
/// `x`, `at` floats into it. Both passes over a row call it once per 32
/// coordinates: the norm pass for the first half of the row ahead
/// (`at = i / 2`), the quantiser for the second (`at = n / 2 + i / 2`), so
/// the lines are asked for at an even pace over the whole row. When the
/// quantiser alone asked for the whole next row, two lines per step, its
/// prefetches waited on full fill buffers (59 % of the encode's samples at
/// n = 4096 on an Intel Xeon) and the memory system sat idle during the norm
/// pass; spread, the single-thread encode took 0.61–0.65× the time at n = 4096
/// with AVX2, 0.75× with AVX-512. Prefetches never fault, and the address is
/// only formed with `wrapping_add`, never dereferenced.
///
/// # Safety
/// The CPU supports SSE (every x86-64 CPU does).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn prefetch_row_ahead(x: &[f32], at: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: CPU: SSE, part of x86-64; lengths: prefetches never fault and the
    // address is formed with `wrapping_add`, never dereferenced.
    unsafe {
        let line = x.as_ptr().wrapping_add(prefetch_distance(x.len()) + at);
        _mm_prefetch::<_MM_HINT_T0>(line as *const i8);
    }
}

#[cfg(target_arch = "x86_64")]
/// Byte for a group of four coordinates given their sign bits `h` and
/// near-zero bits `l` (bit j = coordinate j): used by the SIMD quantisers,
/// which get `h` and `l` from compare masks.
pub(crate) static INTERLEAVE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let (h, l) = (i >> 4, i & 15);
        let mut b = 0u8;
        let mut j = 0;
        while j < 4 {
            b |= ((((h >> j) & 1) << 1 | ((l >> j) & 1)) as u8) << (6 - 2 * j);
            j += 1;
        }
        table[i] = b;
        i += 1;
    }
    table
};

/// Number of 64-bit words per code of `width` bytes.
#[inline]
pub const fn words_per_code(width: usize) -> usize {
    width.div_ceil(8)
}

/// One code as little-endian u64 words, zero-padded (the layout `LeeTile` takes).
#[inline]
pub fn code_words(code: &[u8], out: &mut [u64]) {
    for (w, chunk) in out.iter_mut().zip(code.chunks(8)) {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        *w = u64::from_le_bytes(buf);
    }
}

/// Transposes `rows` (row-major, `width` bytes each) into 8-row groups:
/// `out[(g·words + w)·8 + r]` is word `w` of row `8g + r`; missing rows are zero.
pub fn transpose_block(rows: &[u8], width: usize, out: &mut Vec<u64>) {
    let words = words_per_code(width);
    let n = rows.len() / width.max(1);
    let groups = n.div_ceil(8);
    out.clear();
    out.resize(groups * words * 8, 0);
    let full = width / 8;
    for (i, code) in rows.chunks_exact(width.max(1)).enumerate() {
        let base = (i / 8) * words * 8 + i % 8;
        for (w, bytes) in code.chunks_exact(8).enumerate() {
            out[base + w * 8] = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        }
        if full < words {
            let mut buf = [0u8; 8];
            buf[..width - full * 8].copy_from_slice(&code[full * 8..]);
            out[base + full * 8] = u64::from_le_bytes(buf);
        }
    }
}
