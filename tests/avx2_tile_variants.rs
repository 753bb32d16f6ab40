//! Every AVX2 tile-kernel variant (not only the one the backend picks for a
//! width) equals the scalar reference: distances, and with bounds the hit
//! masks and every flagged row's distance, for every width remainder, query
//! remainder of each variant's query count, and the byte-accumulator flushes
//! (codes whose every bit differs, where the byte counts are largest).
#![cfg(target_arch = "x86_64")]

mod common;

use common::Rng;
use proptest::prelude::*;
use q2key::{code_words, transpose_block, words_per_code, Avx2Tile, Backend, Kernels};

fn scalar() -> &'static Kernels {
    Kernels::for_backend(Backend::Scalar).expect("the scalar backend always runs")
}

/// How the test codes' bytes are drawn.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Random,
    /// Rows all ones, queries all zeros: every bit differs (the largest byte counts).
    Opposite,
    /// Mostly ones in rows and zeros in queries, some random bytes.
    NearOpposite,
}

fn codes(rng: &mut Rng, n: usize, width: usize, fill: Fill, ones: bool) -> Vec<u8> {
    let far = if ones { 0xFF } else { 0x00 };
    match fill {
        Fill::Random => rng.bytes(n * width),
        Fill::Opposite => vec![far; n * width],
        Fill::NearOpposite => (0..n * width)
            .map(|_| if rng.below(8) == 0 { rng.next_u64() as u8 } else { far })
            .collect(),
    }
}

/// Checks every variant against scalar on one tile; returns a description of
/// the first difference.
fn check_tile(rng: &mut Rng, width: usize, nq: usize, rows: usize, fill: Fill) -> Result<(), String> {
    let words = words_per_code(width);
    let queries = codes(rng, nq, width, fill, false);
    let db = codes(rng, rows, width, fill, true);
    let mut qwords = vec![0u64; nq * words];
    for (q, w) in queries.chunks_exact(width).zip(qwords.chunks_exact_mut(words)) {
        code_words(q, w);
    }
    let mut block = Vec::new();
    transpose_block(&db, width, &mut block);
    let groups = rows.div_ceil(8);
    let mut expected = vec![u32::MAX; nq * groups * 8];
    scalar().lee_tile(&qwords, words, &block, &mut expected);
    // Bounds: everything, nothing, around the median, and at a row's distance.
    let bounds: Vec<u32> = (0..nq)
        .map(|q| match q % 4 {
            0 => u32::MAX,
            1 => 0,
            2 => 4 * width as u32,
            _ => expected[q * groups * 8 + rng.below(rows)],
        })
        .collect();
    let (mut expected_hits_d, mut expected_hits) = (vec![0u32; nq * groups * 8], vec![0u8; nq * groups]);
    scalar().lee_tile_hits(
        &qwords,
        words,
        &block,
        &bounds,
        &mut expected_hits_d,
        &mut expected_hits,
    );
    let what = |v: Avx2Tile| format!("{} width {width} queries {nq} rows {rows} {fill:?}", v.name());
    for v in Avx2Tile::ALL {
        let mut got = vec![u32::MAX; nq * groups * 8];
        v.lee_tile(&qwords, words, &block, &mut got);
        if got != expected {
            return Err(format!("lee_tile {}", what(v)));
        }
        let (mut d, mut h) = (vec![u32::MAX; nq * groups * 8], vec![0xEEu8; nq * groups]);
        v.lee_tile_hits(&qwords, words, &block, &bounds, &mut d, &mut h);
        if h != expected_hits {
            return Err(format!("lee_tile_hits masks {} bounds {bounds:?}", what(v)));
        }
        for (i, &dist) in d.iter().enumerate() {
            if expected_hits[i / 8] >> (i % 8) & 1 == 1 && dist != expected[i] {
                return Err(format!("lee_tile_hits distance {} at {i}", what(v)));
            }
        }
    }
    Ok(())
}

fn avx2() -> bool {
    if Backend::Avx2.is_supported() {
        return true;
    }
    eprintln!("skipped: this CPU lacks AVX2 or POPCNT");
    false
}

/// Every width 1..=300 bytes (word counts 1..=38: every remainder of the
/// Harley–Seal four-word steps, below and past the 31-word byte-count run), every
/// query count 1..=9 (every remainder of 2, 3 and 4 queries per call).
#[test]
fn every_variant_matches_scalar_for_every_width_and_query_count() {
    if !avx2() {
        return;
    }
    let mut rng = Rng::new(150);
    for width in 1..=300usize {
        for nq in 1..=9usize {
            let rows = [1usize, 7, 8, 13, 17, 24][(width + nq) % 6];
            let fill = [Fill::Random, Fill::Opposite, Fill::NearOpposite][(width + nq) % 3];
            check_tile(&mut rng, width, nq, rows, fill).unwrap();
        }
    }
}

/// Long codes: several byte-count runs (31 words) and several Harley–Seal
/// runs (31 steps of 4 words = 124 words) per group, at the largest byte counts.
#[test]
fn every_variant_matches_scalar_past_the_byte_counter_flushes() {
    if !avx2() {
        return;
    }
    let mut rng = Rng::new(151);
    for width in [
        248usize, 249, 256, 496, 512, 992, 1016, 1017, 1024, 2040, 2048, 4096, 4100,
    ] {
        for fill in [Fill::Opposite, Fill::NearOpposite, Fill::Random] {
            check_tile(&mut rng, width, 5, 9, fill).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any width, query count, row count and bit density: every variant equals scalar.
    #[test]
    fn every_variant_matches_scalar(
        width in 1usize..=2100,
        nq in 1usize..=9,
        rows in 1usize..=24,
        fill in prop_oneof![Just(Fill::Random), Just(Fill::Opposite), Just(Fill::NearOpposite)],
        seed in any::<u64>(),
    ) {
        prop_assume!(Backend::Avx2.is_supported());
        let mut rng = Rng::new(seed);
        if let Err(e) = check_tile(&mut rng, width, nq, rows, fill) {
            prop_assert!(false, "{}", e);
        }
    }
}
