//! Masked search equals searching the allowed rows gathered in order (rows
//! renumbered back), on every backend and path: one query (row kernel), many
//! queries (tile kernel with hit flags), few queries over many rows (sharded),
//! and k above the counting threshold.

mod common;

use common::Rng;
use q2key::parallel::install;
use q2key::search_masked_with;
use q2key::{Backend, Kernels};

fn codes(rows: usize, width: usize, rng: &mut Rng) -> Vec<u8> {
    // Few distinct bytes: many equal distances, so ties decide.
    (0..rows * width).map(|_| rng.below(4) as u8).collect()
}

fn backends() -> Vec<&'static Kernels> {
    Backend::supported()
        .into_iter()
        .map(|b| Kernels::for_backend(b).expect("a supported backend has kernels"))
        .collect()
}

/// The expected answer: the allowed rows gathered, searched by brute force, rows mapped back.
fn gathered_brute(q: &[u8], db: &[u8], width: usize, k: usize, allowed: &[usize]) -> Vec<(u32, i64)> {
    let mut all: Vec<(u32, i64)> = allowed
        .iter()
        .map(|&r| {
            let row = &db[r * width..(r + 1) * width];
            (q.iter().zip(row).map(|(a, b)| (a ^ b).count_ones()).sum(), r as i64)
        })
        .collect();
    all.sort();
    all.truncate(k);
    all
}

fn check(kernels: &Kernels, queries: &[u8], db: &[u8], width: usize, k: usize, keep: &[bool], what: &str) {
    let n = db.len() / width;
    let nq = queries.len() / width;
    let mut mask = vec![0u8; n.div_ceil(8)];
    // Bits past row n must be ignored: set them all.
    if !n.is_multiple_of(8) {
        mask[n / 8] = !0u8 << (n % 8);
    }
    let allowed: Vec<usize> = (0..n).filter(|&r| keep[r]).collect();
    for &r in &allowed {
        mask[r / 8] |= 1 << (r % 8);
    }
    let cols = k.min(allowed.len());
    let (mut d, mut r) = (vec![0u32; nq * cols], vec![0i64; nq * cols]);
    let got_cols = search_masked_with(kernels, queries, db, width, k, &mask, &mut d, &mut r).unwrap();
    assert_eq!(got_cols, cols, "{what}");
    for q in 0..nq {
        let expected = gathered_brute(&queries[q * width..][..width], db, width, k, &allowed);
        let got: Vec<(u32, i64)> = d[q * cols..][..cols]
            .iter()
            .copied()
            .zip(r[q * cols..][..cols].iter().copied())
            .collect();
        assert_eq!(got, expected, "{what} query {q}");
    }
}

#[test]
fn masked_search_equals_the_gathered_rows_on_every_path_and_backend() {
    let mut rng = Rng::new(3);
    for width in [5usize, 96] {
        let n = 3_001;
        let db = codes(n, width, &mut rng);
        let queries = codes(19, width, &mut rng);
        for (name, every) in [("all", 1usize), ("half", 2), ("a seventh", 7), ("one row in 500", 500)] {
            let keep: Vec<bool> = (0..n).map(|r| (r * 7919 + 13) % every == 0).collect();
            for kernels in backends() {
                for k in [1usize, 10, 300, 5_000] {
                    let what = format!("{:?} width {width} {name} k {k}", kernels.backend);
                    check(
                        kernels,
                        &queries[..width],
                        &db,
                        width,
                        k,
                        &keep,
                        &format!("{what} one query"),
                    );
                    check(kernels, &queries, &db, width, k, &keep, &format!("{what} 19 queries"));
                }
            }
        }
    }
}

#[test]
fn masked_search_through_shards_equals_the_gathered_rows() {
    let mut rng = Rng::new(11);
    let (n, width) = (150_003usize, 16usize);
    let db = codes(n, width, &mut rng);
    let queries = codes(2, width, &mut rng);
    let keep: Vec<bool> = (0..n).map(|r| r % 3 != 1 && r != 75_000).collect();
    for kernels in backends() {
        for threads in [1usize, 3] {
            // Two queries below three threads: the database is split into shards.
            install(Some(threads), || {
                check(
                    kernels,
                    &queries,
                    &db,
                    width,
                    10,
                    &keep,
                    &format!("{:?} {threads} threads", kernels.backend),
                )
            })
            .unwrap();
        }
    }
}

#[test]
fn a_mask_of_the_wrong_length_is_an_error() {
    let db = vec![0u8; 10 * 4];
    let (mut d, mut r) = (vec![0u32; 1], vec![0i64; 1]);
    let kernels = Kernels::active();
    let err = search_masked_with(kernels, &db[..4], &db, 4, 1, &[0xff], &mut d, &mut r).unwrap_err();
    assert!(err.to_string().contains("mask"), "{err}");
    // Nothing allowed: no columns.
    assert_eq!(
        q2key::search_masked(&db[..4], &db, 4, 1, &[0, 0], &mut [], &mut []).unwrap(),
        0
    );
}
