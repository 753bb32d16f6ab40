//! Every kernel entry point, on every backend this CPU runs, checks the buffer
//! lengths it relies on: a short `out`, `hits`, `bounds`, `code`, `cuts`,
//! `rows` or a ragged `queries`/`block` panics before anything is written
//! (the SIMD kernels write through raw pointers; unchecked, a one-element
//! `out` corrupted the heap), and every consistent shape matches the scalar
//! reference.

mod common;

use common::Rng;
use proptest::prelude::*;
use q2key::{code_width, Backend, Kernels};
use q2key::{code_words, transpose_block, words_per_code};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

fn backends() -> Vec<&'static Kernels> {
    Backend::supported()
        .into_iter()
        .map(|b| Kernels::for_backend(b).expect("a supported backend has kernels"))
        .collect()
}

/// Whether `call` panicked; the expected panics' messages are not printed.
fn panics<R>(call: impl FnOnce() -> R) -> bool {
    thread_local! {
        static EXPECTING_PANIC: Cell<bool> = const { Cell::new(false) };
    }
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTING_PANIC.with(Cell::get) {
                default(info);
            }
        }));
    });
    EXPECTING_PANIC.with(|e| e.set(true));
    let panicked = catch_unwind(AssertUnwindSafe(call)).is_err();
    EXPECTING_PANIC.with(|e| e.set(false));
    panicked
}

const SENTINEL_U32: u32 = 0xDEAD_BEEF;
const SENTINEL_U8: u8 = 0xA5;

/// A tile problem: `nq` queries and `n` rows of `width`-byte codes.
struct Tile {
    words: usize,
    queries: Vec<u64>,
    block: Vec<u64>,
    nq: usize,
    groups: usize,
}

impl Tile {
    fn new(rng: &mut Rng, nq: usize, n: usize, width: usize) -> Tile {
        let words = words_per_code(width);
        let mut queries = vec![0u64; nq * words];
        for q in queries.chunks_exact_mut(words) {
            code_words(&rng.bytes(width), q);
        }
        let mut block = Vec::new();
        transpose_block(&rng.bytes(n * width), width, &mut block);
        Tile {
            words,
            queries,
            block,
            nq,
            groups: n.div_ceil(8),
        }
    }

    fn cells(&self) -> usize {
        self.nq * self.groups
    }
}

/// `lee_tile` with `out_len` distances; `None` if it panicked, which must
/// leave `out` as it was.
fn tile(k: &Kernels, t: &Tile, queries: &[u64], block: &[u64], out_len: usize) -> Option<Vec<u32>> {
    let mut out = vec![SENTINEL_U32; out_len];
    if panics(|| k.lee_tile(queries, t.words, block, &mut out)) {
        assert!(
            out.iter().all(|&d| d == SENTINEL_U32),
            "{:?} lee_tile wrote before panicking",
            k.backend
        );
        return None;
    }
    Some(out)
}

/// `lee_tile_hits` with the given buffer lengths; `None` if it panicked, which
/// must leave `out` and `hits` as they were.
fn tile_hits(k: &Kernels, t: &Tile, bounds: &[u32], out_len: usize, hits_len: usize) -> Option<(Vec<u32>, Vec<u8>)> {
    let mut out = vec![SENTINEL_U32; out_len];
    let mut hits = vec![SENTINEL_U8; hits_len];
    if panics(|| k.lee_tile_hits(&t.queries, t.words, &t.block, bounds, &mut out, &mut hits)) {
        assert!(
            out.iter().all(|&d| d == SENTINEL_U32) && hits.iter().all(|&h| h == SENTINEL_U8),
            "{:?} lee_tile_hits wrote before panicking",
            k.backend
        );
        return None;
    }
    Some((out, hits))
}

#[test]
fn short_tile_buffers_panic_without_writing_on_every_backend() {
    let mut rng = Rng::new(21);
    // 40-byte codes (5 words), 5 queries (the AVX2 pair and single tiles, the
    // AVX-512 four- and one-query tiles), 16 rows: 2 groups.
    let t = Tile::new(&mut rng, 5, 16, 40);
    let full = t.cells() * 8;
    let bounds = vec![u32::MAX; t.nq];
    for k in backends() {
        let b = k.backend;
        for out_len in [0, 1, 8, full - 1] {
            assert!(
                tile(k, &t, &t.queries, &t.block, out_len).is_none(),
                "{b:?} lee_tile out {out_len}"
            );
            assert!(
                tile_hits(k, &t, &bounds, out_len, t.cells()).is_none(),
                "{b:?} lee_tile_hits out {out_len}"
            );
        }
        for hits_len in [0, 1, t.cells() - 1] {
            assert!(
                tile_hits(k, &t, &bounds, full, hits_len).is_none(),
                "{b:?} lee_tile_hits hits {hits_len}"
            );
        }
        for bounds_len in [0, 1, t.nq - 1, t.nq + 1] {
            let bounds = vec![u32::MAX; bounds_len];
            assert!(
                tile_hits(k, &t, &bounds, full, t.cells()).is_none(),
                "{b:?} lee_tile_hits bounds {bounds_len}"
            );
        }
        let ragged_queries = &t.queries[..t.queries.len() - 1];
        assert!(
            tile(k, &t, ragged_queries, &t.block, full).is_none(),
            "{b:?} ragged queries"
        );
        let ragged_block = &t.block[..t.block.len() - 1];
        assert!(
            tile(k, &t, &t.queries, ragged_block, full).is_none(),
            "{b:?} ragged block"
        );
        let mut out = vec![0u32; full];
        assert!(panics(|| k.lee_tile(&[], 0, &[], &mut out)), "{b:?} words 0");
        // The exact lengths work.
        assert!(
            tile(k, &t, &t.queries, &t.block, full).is_some(),
            "{b:?} lee_tile exact"
        );
        assert!(
            tile_hits(k, &t, &bounds, full, t.cells()).is_some(),
            "{b:?} lee_tile_hits exact"
        );
    }
}

#[test]
fn short_encode_and_distance_buffers_panic_without_writing_on_every_backend() {
    let mut rng = Rng::new(22);
    // Long enough for every SIMD main loop and tail.
    let dim = 203;
    let width = code_width(dim);
    let x: Vec<f64> = (0..dim).map(|_| rng.gaussian()).collect();
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let cuts: Vec<f64> = (0..3 * dim).map(|i| [-0.05, 0.0, 0.05][i / dim]).collect();
    let cuts_f: Vec<f32> = cuts.iter().map(|&v| v as f32).collect();
    for k in backends() {
        let b = k.backend;
        for code_len in [0, 1, width - 1] {
            let mut code = vec![SENTINEL_U8; code_len];
            assert!(
                panics(|| k.encode_f32(&xf, 0.1, &mut code)),
                "{b:?} encode_f32 code {code_len}"
            );
            assert!(
                panics(|| k.encode_f64(&x, 0.1, &mut code)),
                "{b:?} encode_f64 code {code_len}"
            );
            assert!(
                panics(|| k.encode_cuts_f32(&xf, &cuts_f, &mut code)),
                "{b:?} encode_cuts_f32 code {code_len}"
            );
            assert!(
                panics(|| k.encode_cuts_f64(&x, &cuts, &mut code)),
                "{b:?} encode_cuts_f64 code {code_len}"
            );
            assert!(
                code.iter().all(|&c| c == SENTINEL_U8),
                "{b:?} encode wrote before panicking"
            );
        }
        let mut code = vec![0u8; width];
        for cuts_len in [0, 1, 3 * dim - 1] {
            assert!(
                panics(|| k.encode_cuts_f32(&xf, &cuts_f[..cuts_len], &mut code)),
                "{b:?} encode_cuts_f32 cuts {cuts_len}"
            );
            assert!(
                panics(|| k.encode_cuts_f64(&x, &cuts[..cuts_len], &mut code)),
                "{b:?} encode_cuts_f64 cuts {cuts_len}"
            );
        }
        let (a, c) = (rng.bytes(width), rng.bytes(width));
        assert!(panics(|| k.lee_pair(&a, &c[..width - 1])), "{b:?} lee_pair");
        let rows = rng.bytes(4 * width);
        let mut out = vec![SENTINEL_U32; 4];
        assert!(
            panics(|| k.lee_rows(&a, &rows[..4 * width - 1], &mut out)),
            "{b:?} lee_rows rows"
        );
        assert!(
            out.iter().all(|&d| d == SENTINEL_U32),
            "{b:?} lee_rows wrote before panicking"
        );
    }
}

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg(200))]

    /// The law for any buffer lengths: a tile call either panics without
    /// writing (lengths inconsistent) or, on every backend, returns the scalar
    /// distances and hit masks (consistent: `out ≥ queries × rows`, one bound
    /// per query, `hits ≥ queries × groups`).
    #[test]
    fn a_tile_call_panics_or_matches_scalar(
        seed in any::<u64>(),
        nq in 1usize..10,
        n in 1usize..40,
        width in 1usize..70,
        out_delta in -9isize..3,
        hits_delta in -3isize..3,
        bounds_delta in -2isize..2,
    ) {
        let mut rng = Rng::new(seed);
        let t = Tile::new(&mut rng, nq, n, width);
        let out_len = (t.cells() * 8).saturating_add_signed(out_delta);
        let hits_len = t.cells().saturating_add_signed(hits_delta);
        let bounds: Vec<u32> = (0..nq.saturating_add_signed(bounds_delta))
            .map(|_| rng.below(8 * width + 2) as u32)
            .collect();
        let tile_ok = out_len >= t.cells() * 8;
        let hits_ok = tile_ok && hits_len >= t.cells() && bounds.len() == nq;
        let scalar = Kernels::for_backend(Backend::Scalar).expect("scalar runs");
        let expected = tile(scalar, &t, &t.queries, &t.block, out_len);
        let expected_hits = tile_hits(scalar, &t, &bounds, out_len, hits_len);
        prop_assert_eq!(expected.is_some(), tile_ok);
        prop_assert_eq!(expected_hits.is_some(), hits_ok);
        for k in backends() {
            prop_assert_eq!(&tile(k, &t, &t.queries, &t.block, out_len), &expected, "{:?} lee_tile", k.backend);
            let got = tile_hits(k, &t, &bounds, out_len, hits_len);
            prop_assert_eq!(got.is_some(), hits_ok, "{:?} lee_tile_hits", k.backend);
            if let (Some((_, hits)), Some((_, want))) = (&got, &expected_hits) {
                prop_assert_eq!(hits, want, "{:?} lee_tile_hits masks", k.backend);
            }
        }
    }
}
