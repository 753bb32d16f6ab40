//! The blocked distance engine shared by exact search and the distance matrix:
//! a chunk of queries meets the database one cache-sized block at a time.
//! With several queries the block is transposed once into 8-row groups so the
//! tile kernel needs no horizontal sums; a lone query uses the row kernel.

use crate::kernels::{code_words, transpose_block, words_per_code, Kernels};

/// About this many database bytes per block: stays in L2 beside the tile output.
const BLOCK_BYTES: usize = 96 * 1024;
/// Queries per tile-kernel call, bounding the distance buffer.
const TILE_QUERIES: usize = 8;

/// Rows per database block for codes of `width` bytes (a multiple of 8).
pub(crate) fn block_rows(width: usize) -> usize {
    ((BLOCK_BYTES / width.max(1)).clamp(64, 16 * 1024) / 8) * 8
}

/// Calls `sink(query_in_chunk, first_row, dists)` for every (query, block) pair,
/// blocks in increasing row order. `queries` and `db` are row-major codes of `width ≥ 1` bytes.
pub(crate) fn for_each_block(
    kernels: &Kernels,
    queries: &[u8],
    db: &[u8],
    width: usize,
    mut sink: impl FnMut(usize, usize, &[u32]),
) {
    let nq = queries.len() / width;
    let n = db.len() / width;
    let rows_per_block = block_rows(width);
    let words = words_per_code(width);
    let tiled = nq >= 2;
    let mut query_words = vec![0u64; if tiled { nq * words } else { 0 }];
    if tiled {
        for (q, w) in queries.chunks_exact(width).zip(query_words.chunks_exact_mut(words)) {
            code_words(q, w);
        }
    }
    let mut transposed = Vec::new();
    let mut dists = vec![0u32; TILE_QUERIES.min(nq) * rows_per_block];
    for first in (0..n).step_by(rows_per_block) {
        let rows = rows_per_block.min(n - first);
        let block = &db[first * width..(first + rows) * width];
        if tiled {
            transpose_block(block, width, &mut transposed);
            let padded = rows.div_ceil(8) * 8;
            for q0 in (0..nq).step_by(TILE_QUERIES) {
                let tq = TILE_QUERIES.min(nq - q0);
                let out = &mut dists[..tq * padded];
                (kernels.lee_tile)(&query_words[q0 * words..(q0 + tq) * words], words, &transposed, out);
                for t in 0..tq {
                    sink(q0 + t, first, &out[t * padded..][..rows]);
                }
            }
        } else {
            for (q, query) in queries.chunks_exact(width).enumerate() {
                let out = &mut dists[..rows];
                (kernels.lee_rows)(query, block, out);
                sink(q, first, out);
            }
        }
    }
}
