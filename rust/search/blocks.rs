//! The blocked distance engine shared by exact search and the distance matrix:
//! a chunk of queries meets the database one cache-sized block at a time.
//! With several queries the block is transposed once into 8-row groups so the
//! tile kernel needs no horizontal sums; a lone query uses the row kernel.

use crate::kernels::{code_words, transpose_block, words_per_code, Kernels};
use crate::search::topk::TopK;

/// About this many database bytes per block: stays in L2 beside the tile output.
const BLOCK_BYTES: usize = 96 * 1024;
/// Queries per tile-kernel call, bounding the distance buffer.
const TILE_QUERIES: usize = 8;

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
    let rows_per_block = block_rows(width);
    let groups_per_block = rows_per_block / 8;
    let mut dists = vec![0u32; TILE_QUERIES.min(nq) * rows_per_block];
    let mut hits = vec![0u8; TILE_QUERIES.min(nq) * groups_per_block];
    let mut bounds = [0u32; TILE_QUERIES];
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
            if let Some(m) = mask {
                let allowed = &m[first / 8..][..groups];
                for h in hit.chunks_exact_mut(groups) {
                    h.iter_mut().zip(allowed).for_each(|(h, a)| *h &= a);
                }
            }
            for t in 0..tq {
                let d = &out[t * groups * 8..][..groups * 8];
                tops[q0 + t].offer_hits(d, &hit[t * groups..][..groups], rows, row0 + first as u64);
            }
        }
    }
}
