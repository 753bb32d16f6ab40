//! The blocked distance engine shared by exact search and the distance matrix:
//! a chunk of queries meets the database one cache-sized block at a time.
//! With a few queries the block is transposed once into 8-row groups so the
//! tile kernel needs no horizontal sums; with many, once into fast-scan
//! blocks of 32 rows for the table-lookup kernel (cheaper per distance, a
//! dearer layout); a lone query uses the row kernel.

use crate::kernels::scalar_asym::{fast_scan_blocks, BLOCK_ROWS};
use crate::kernels::scalar_lee_scan::LeeTables;
use crate::kernels::{code_words, transpose_block, words_per_code, Backend, Kernels};
use crate::search::topk::TopK;
use std::sync::OnceLock;

/// About this many database bytes per block: stays in L2 beside the tile output.
const BLOCK_BYTES: usize = 96 * 1024;
/// Queries per tile-kernel call, bounding the distance buffer.
const TILE_QUERIES: usize = 8;
/// From this many queries in a chunk, the fast-scan layout of each block
/// pays for itself: on AVX2 (Zen 3) the layout costs about 19 ns per row
/// more than the 8-row transpose at 96 B (46 at 256 B) and the scan saves
/// 0.6 ns per distance (1.9 at 256 B) against the tile kernel, so the
/// crossover is 24–32 queries (`lee_scan/layout` in benches/kernels.rs).
pub(crate) const SCAN_MIN_QUERIES: usize = 32;

/// The query count from which `kernels` use the fast scan: [`SCAN_MIN_QUERIES`],
/// unless `Q2KEY_LEE_SCAN_MIN_QUERIES` sets another count (read once; for
/// measuring the crossover and comparing the kernels end to end, like
/// `Q2KEY_AVX2_TILE`). The results are the same either way. The AVX-512
/// backend keeps its VPOPCNTDQ tile kernel (one instruction per 64 bytes)
/// unless the variable is set: on Zen 5, 1 M × 96 B codes and 1 000 queries,
/// the tile search answered 5 550 queries/s and the AVX2 fast scan 1 770.
fn scan_min_queries(kernels: &Kernels) -> usize {
    static MIN: OnceLock<Option<usize>> = OnceLock::new();
    let set = *MIN.get_or_init(|| {
        std::env::var("Q2KEY_LEE_SCAN_MIN_QUERIES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    match (set, kernels.backend) {
        (Some(n), _) => n,
        (None, Backend::Avx512) => usize::MAX,
        (None, _) => SCAN_MIN_QUERIES,
    }
}

/// Rows per database block for codes of `width` bytes (a multiple of 8).
pub(crate) fn block_rows(width: usize) -> usize {
    ((BLOCK_BYTES / width.max(1)).clamp(64, 16 * 1024) / 8) * 8
}

/// A chunk of queries prepared for the tile kernel.
struct Tiles {
    words: usize,
    query_words: Vec<u64>,
    transposed: Vec<u64>,
}

impl Tiles {
    fn new(queries: &[u8], width: usize) -> Self {
        let words = words_per_code(width);
        let nq = queries.len() / width;
        let mut query_words = vec![0u64; nq * words];
        for (q, w) in queries.chunks_exact(width).zip(query_words.chunks_exact_mut(words)) {
            code_words(q, w);
        }
        Tiles {
            words,
            query_words,
            transposed: Vec::new(),
        }
    }

    fn queries(&self, q0: usize, count: usize) -> &[u64] {
        &self.query_words[q0 * self.words..(q0 + count) * self.words]
    }
}

/// A chunk of queries prepared for the fast-scan kernel, and the current
/// block in that layout.
struct Scan {
    tables: LeeTables,
    layout: Vec<u8>,
}

impl Scan {
    fn new(queries: &[u8], width: usize) -> Self {
        Scan {
            tables: LeeTables::new(queries, width),
            layout: Vec::new(),
        }
    }

    /// Lays `block` out as fast-scan blocks; returns its rows padded to 32.
    fn load(&mut self, block: &[u8], width: usize) -> usize {
        let padded = (block.len() / width).div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
        self.layout.resize(padded * width, 0);
        fast_scan_blocks(block, width, &mut self.layout);
        padded
    }
}

/// Database blocks as `(first_row, rows, bytes)`, in increasing row order.
fn blocks(db: &[u8], width: usize) -> impl Iterator<Item = (usize, usize, &[u8])> {
    let per = block_rows(width);
    db.chunks(per * width)
        .enumerate()
        .map(move |(i, b)| (i * per, b.len() / width, b))
}

/// Calls `sink(query_in_chunk, first_row, dists)` for every (query, block)
/// pair. `queries` and `db` are row-major codes of `width ≥ 1` bytes.
pub(crate) fn for_each_block(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    mut sink: impl FnMut(usize, usize, &[u32]),
) {
    let nq = queries.len() / width;
    let mut dists = vec![0u32; TILE_QUERIES.min(nq) * block_rows(width)];
    if nq < 2 {
        for (first, rows, block) in blocks(db, width) {
            for (q, query) in queries.chunks_exact(width).enumerate() {
                (kernels.lee_rows)(query, block, &mut dists[..rows]);
                sink(q, first, &dists[..rows]);
            }
        }
        return;
    }
    if nq >= scan_min_queries(kernels) {
        let mut scan = Scan::new(queries, width);
        dists.resize(TILE_QUERIES.min(nq) * block_rows(width).next_multiple_of(BLOCK_ROWS), 0);
        for (first, rows, block) in blocks(db, width) {
            let padded = scan.load(block, width);
            for q0 in (0..nq).step_by(TILE_QUERIES) {
                let tq = TILE_QUERIES.min(nq - q0);
                let out = &mut dists[..tq * padded];
                (kernels.lee_scan)(&scan.tables, q0..q0 + tq, &scan.layout, None, out);
                for t in 0..tq {
                    sink(q0 + t, first, &out[t * padded..][..rows]);
                }
            }
        }
        return;
    }
    let mut tiles = Tiles::new(queries, width);
    for (first, rows, block) in blocks(db, width) {
        transpose_block(block, width, &mut tiles.transposed);
        let padded = rows.div_ceil(8) * 8;
        for q0 in (0..nq).step_by(TILE_QUERIES) {
            let tq = TILE_QUERIES.min(nq - q0);
            let out = &mut dists[..tq * padded];
            (kernels.lee_tile)(tiles.queries(q0, tq), tiles.words, &tiles.transposed, out);
            for t in 0..tq {
                sink(q0 + t, first, &out[t * padded..][..rows]);
            }
        }
    }
}

/// Offers every database row (allowed by `mask`, whose bit `r % 8` of byte
/// `r / 8` stands for row `r` of `db`) to each query's top-k, in row order.
/// With several queries the tile kernel flags the 8-row groups holding a row
/// below each query's current bound, so most rows never leave registers; the
/// mask clears flags of rows it excludes. `row0` is the database row of
/// `db`'s first row (for sharded searches).
pub(crate) fn top_k_blocks(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    row0: u64,
    mask: Option<&[u8]>,
    tops: &mut [TopK],
) {
    let nq = queries.len() / width;
    if nq < 2 {
        // Blocks start on multiples of 8 rows, so a block's mask starts on a byte.
        for_each_block(kernels, queries, db, width, |q, first, ds| match mask {
            None => tops[q].offer(ds, row0 + first as u64),
            Some(m) => tops[q].offer_hits(
                ds,
                &m[first / 8..][..ds.len().div_ceil(8)],
                ds.len(),
                row0 + first as u64,
            ),
        });
        return;
    }
    // Fast-scan blocks pad the block to a multiple of 32 rows.
    let rows_per_block = block_rows(width).next_multiple_of(BLOCK_ROWS);
    let groups_per_block = rows_per_block / 8;
    let mut dists = vec![0u32; TILE_QUERIES.min(nq) * rows_per_block];
    let mut hits = vec![0u8; TILE_QUERIES.min(nq) * groups_per_block];
    let mut bounds = [0u32; TILE_QUERIES];
    if nq >= scan_min_queries(kernels) {
        let mut scan = Scan::new(queries, width);
        for (first, rows, block) in blocks(db, width) {
            let padded = scan.load(block, width);
            let groups = padded / 8;
            for q0 in (0..nq).step_by(TILE_QUERIES) {
                let tq = TILE_QUERIES.min(nq - q0);
                for (b, top) in bounds.iter_mut().zip(&tops[q0..q0 + tq]) {
                    *b = top.bound();
                }
                let out = &mut dists[..tq * padded];
                let hit = &mut hits[..tq * groups];
                (kernels.lee_scan)(
                    &scan.tables,
                    q0..q0 + tq,
                    &scan.layout,
                    Some((&bounds[..tq], &mut *hit)),
                    out,
                );
                offer_block(&mut tops[q0..q0 + tq], groups, hit, out, mask, first, rows, row0);
            }
        }
        return;
    }
    let mut tiles = Tiles::new(queries, width);
    for (first, rows, block) in blocks(db, width) {
        transpose_block(block, width, &mut tiles.transposed);
        let groups = rows.div_ceil(8);
        for q0 in (0..nq).step_by(TILE_QUERIES) {
            let tq = TILE_QUERIES.min(nq - q0);
            for (b, top) in bounds.iter_mut().zip(&tops[q0..q0 + tq]) {
                *b = top.bound();
            }
            let out = &mut dists[..tq * groups * 8];
            let hit = &mut hits[..tq * groups];
            (kernels.lee_tile_hits)(
                tiles.queries(q0, tq),
                tiles.words,
                &tiles.transposed,
                &bounds[..tq],
                out,
                hit,
            );
            offer_block(&mut tops[q0..q0 + tq], groups, hit, out, mask, first, rows, row0);
        }
    }
}

/// Offers one block's flagged rows to `tops` (the block's queries, in
/// order): `hits` holds `groups` 8-row masks per query and `dists` the
/// matching `8 · groups` distances (rows past `rows` are padding, never
/// offered); `mask` (the whole database's) clears the flags of rows it
/// excludes. `first` is the block's first row in `db`, `row0` `db`'s.
#[allow(clippy::too_many_arguments)]
fn offer_block(
    tops: &mut [TopK],
    groups: usize,
    hits: &mut [u8],
    dists: &[u32],
    mask: Option<&[u8]>,
    first: usize,
    rows: usize,
    row0: u64,
) {
    if let Some(m) = mask {
        // Blocks start on multiples of 8 rows, so a block's mask starts on a byte.
        let allowed = &m[first / 8..][..rows.div_ceil(8)];
        for h in hits.chunks_exact_mut(groups) {
            h.iter_mut().zip(allowed).for_each(|(h, a)| *h &= a);
        }
    }
    for (t, top) in tops.iter_mut().enumerate() {
        let d = &dists[t * groups * 8..][..groups * 8];
        top.offer_hits(d, &hits[t * groups..][..groups], rows, row0 + first as u64);
    }
}
