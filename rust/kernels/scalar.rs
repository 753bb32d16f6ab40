//! The portable reference kernels: every SIMD variant must match these bit for bit.

use super::{
    assert_encode_buffers, assert_lee_pair, assert_lee_rows, assert_tile_buffers, encode_row_cuts, encode_row_with,
    Backend, Kernels,
};
use crate::encode::cuts::quantize_cuts_scalar;
use crate::encode::quantize::{quantize_pack_scalar, sum_of_squares, Element};
use crate::keys::{count_run_starts, gather_run_starts};

pub(crate) static KERNELS: Kernels = Kernels {
    backend: Backend::Scalar,
    encode_f32: encode::<f32>,
    encode_f64: encode::<f64>,
    encode_cuts_f32: encode_cuts,
    encode_cuts_f64: encode_cuts,
    lee_pair: lee_pair_checked,
    lee_rows,
    lee_tile,
    lee_tile_hits,
    asym_scan: super::scalar_asym::asym_scan,
    quantise_pairs: super::scalar_asym::quantise_pairs,
    lee_scan: super::scalar_lee_scan::lee_scan,
    rotate: crate::encode::rotation::rotate_rows_scalar,
    route_dots: super::scalar_route::route_dots,
};

// The entry points check the same lengths as the SIMD shims: safe Rust would
// panic on most mistakes anyway, but some (a short `bounds`) would pass silently.

fn encode<T: Element + std::ops::Neg<Output = T>>(x: &[T], tau: f64, code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), None, code.len());
    encode_row_with(x, tau, code, quantize_pack_scalar)
}

fn encode_cuts<T: Element>(x: &[T], cuts: &[T], code: &mut [u8]) -> Result<(u64, u32), usize> {
    assert_encode_buffers(x.len(), Some(cuts.len()), code.len());
    encode_row_cuts(
        x,
        cuts,
        code,
        sum_of_squares(x),
        quantize_cuts_scalar,
        gather_run_starts,
        count_run_starts,
    )
}

fn lee_pair_checked(a: &[u8], b: &[u8]) -> u32 {
    assert_lee_pair(a.len(), b.len());
    lee_pair(a, b)
}

/// Lee distance over the common length of `a` and `b` (the SIMD kernels'
/// tail; the table's entry point checks the lengths are equal).
#[inline(always)]
pub(crate) fn lee_pair(a: &[u8], b: &[u8]) -> u32 {
    let mut total = 0u32;
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let x = u64::from_le_bytes(x.try_into().unwrap());
        let y = u64::from_le_bytes(y.try_into().unwrap());
        total += (x ^ y).count_ones();
    }
    for (x, y) in ra.iter().zip(rb) {
        total += (x ^ y).count_ones();
    }
    total
}

fn lee_rows(query: &[u8], rows: &[u8], out: &mut [u32]) {
    let width = query.len();
    assert_lee_rows(width, rows.len(), out.len());
    if width == 0 {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(width)) {
        *o = lee_pair(query, row);
    }
}

fn lee_tile(queries: &[u64], words: usize, block: &[u64], out: &mut [u32]) {
    assert_tile_buffers(queries.len(), words, block.len(), out.len(), None);
    let group_len = words * 8;
    let groups = block.len() / group_len;
    let rows = groups * 8;
    for (q, qw) in queries.chunks_exact(words).enumerate() {
        for (g, gb) in block.chunks_exact(group_len).enumerate() {
            let mut acc = [0u32; 8];
            for (w, &word) in qw.iter().enumerate() {
                for (r, a) in acc.iter_mut().enumerate() {
                    *a += (gb[w * 8 + r] ^ word).count_ones();
                }
            }
            out[q * rows + g * 8..][..8].copy_from_slice(&acc);
        }
    }
}

fn lee_tile_hits(queries: &[u64], words: usize, block: &[u64], bounds: &[u32], out: &mut [u32], hits: &mut [u8]) {
    let groups = assert_tile_buffers(
        queries.len(),
        words,
        block.len(),
        out.len(),
        Some((bounds.len(), hits.len())),
    )
    .groups;
    lee_tile(queries, words, block, out);
    for (q, &bound) in bounds.iter().enumerate() {
        for g in 0..groups {
            let d = &out[(q * groups + g) * 8..][..8];
            hits[q * groups + g] = d
                .iter()
                .enumerate()
                .fold(0u8, |m, (r, &v)| m | (u8::from(v < bound) << r));
        }
    }
}
