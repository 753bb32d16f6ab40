//! The fast-scan Lee kernel: every backend gives the scalar reference's
//! distances and hit masks, the scalar reference gives the Lee distance, and
//! search through it equals search on the scalar backend and brute force.

mod common;

use common::{database, naive_lee, Rng};
use proptest::prelude::*;
use q2key::parallel::install;
use q2key::{fast_scan_blocks, search_masked_with, search_with, Backend, Kernels, LeeTables};

/// Distances and hit masks of `queries` against `db` on `kernels`, bounds
/// from `bound(query)`.
fn scan(kernels: &Kernels, queries: &[u8], db: &[u8], width: usize, bounds: Option<&[u32]>) -> (Vec<u32>, Vec<u8>) {
    let nq = queries.len() / width;
    let rows = db.len() / width;
    let padded = rows.div_ceil(32) * 32;
    let mut layout = vec![0u8; padded * width];
    fast_scan_blocks(db, width, &mut layout);
    let tables = LeeTables::new(queries, width);
    let mut out = vec![u32::MAX; nq * padded];
    let mut hits = vec![0xa5u8; nq * padded / 8];
    kernels.lee_scan(&tables, 0..nq, &layout, bounds.map(|b| (b, &mut hits[..])), &mut out);
    (out, hits)
}

/// Checks every backend against brute-force Lee distances (rows past `rows`
/// are the zero padding) and masks against `bounds`.
fn check_all_backends(queries: &[u8], db: &[u8], width: usize, bounds: &[u32]) {
    let nq = queries.len() / width;
    let rows = db.len() / width;
    let padded = rows.div_ceil(32) * 32;
    let zero = vec![0u8; width];
    let expected: Vec<u32> = queries
        .chunks_exact(width)
        .flat_map(|q| (0..padded).map(move |r| (q, r)))
        .map(|(q, r)| naive_lee(q, if r < rows { &db[r * width..][..width] } else { &zero }))
        .collect();
    for backend in Backend::supported() {
        let k = Kernels::for_backend(backend).unwrap();
        let (out, _) = scan(k, queries, db, width, None);
        assert_eq!(out, expected, "{backend:?} width {width} rows {rows} queries {nq}");
        // With hits, only the flagged rows' distances are promised.
        let (out, hits) = scan(k, queries, db, width, Some(bounds));
        for (i, &d) in expected.iter().enumerate() {
            let hit = hits[i / 8] >> (i % 8) & 1 == 1;
            let (q, r) = (i / padded, i % padded);
            assert_eq!(hit, d < bounds[q], "{backend:?} width {width} query {q} row {r}");
            if hit {
                assert_eq!(out[i], d, "{backend:?} with hits, width {width} query {q} row {r}");
            }
        }
    }
}

#[test]
fn every_width_and_query_count_matches_brute_force_on_every_backend() {
    let mut rng = Rng::new(15);
    for width in 1..=300usize {
        let nq = 1 + width % 9;
        let rows = [1usize, 31, 32, 33, 70][width % 5];
        let queries = rng.bytes(nq * width);
        let db = rng.bytes(rows * width);
        // Around the mean distance (4·width), so some rows hit and some do not.
        let bounds: Vec<u32> = (0..nq).map(|q| (4 * width + q) as u32).collect();
        check_all_backends(&queries, &db, width, &bounds);
    }
    for nq in 1..=9usize {
        let width = 96;
        let queries = rng.bytes(nq * width);
        let db = rng.bytes(100 * width);
        let bounds: Vec<u32> = (0..nq).map(|q| [0, 1, 380, 384, 390, u32::MAX][q % 6]).collect();
        check_all_backends(&queries, &db, width, &bounds);
    }
}

/// Every bit different: every byte adds 8, the most a u8 lane can take 31
/// times (a 32nd wraps to 0), and long codes cross the u8 and 16-bit
/// widening points (8 184 bytes) with the largest sums, and the last width
/// whose hits come from signed 16-bit sums (4 095 bytes: 32 760).
#[test]
fn codes_with_every_bit_different_give_the_largest_sums() {
    let mut rng = Rng::new(7);
    for width in [
        31usize, 32, 33, 62, 63, 64, 96, 100, 4095, 4096, 4100, 8184, 8185, 8200, 16_500,
    ] {
        let nq = 5;
        let queries = rng.bytes(nq * width);
        // Row r: the complement of query r % nq (distance 8·width), then a row equal to it (0).
        let mut db = Vec::new();
        for r in 0..40 {
            let q = &queries[(r % nq) * width..][..width];
            if r % 2 == 0 {
                db.extend(q.iter().map(|b| !b));
            } else {
                db.extend_from_slice(q);
            }
        }
        let bounds = vec![(8 * width) as u32; nq];
        check_all_backends(&queries, &db, width, &bounds);
        let (out, _) = scan(Kernels::active(), &queries, &db, width, None);
        assert_eq!(out[0], (8 * width) as u32, "width {width}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn scan_matches_brute_force(
        width in 1usize..200,
        nq in 1usize..10,
        rows in 1usize..100,
        seed in any::<u64>(),
        complement in any::<bool>(),
    ) {
        let mut rng = Rng::new(seed);
        let queries = rng.bytes(nq * width);
        let mut db = rng.bytes(rows * width);
        if complement {
            for (r, row) in db.chunks_exact_mut(width).enumerate() {
                for (b, q) in row.iter_mut().zip(&queries[(r % nq) * width..][..width]) {
                    *b = !q ^ ((1 << (r % 8)) * u8::from(r % 3 == 0));
                }
            }
        }
        let bounds: Vec<u32> = (0..nq).map(|_| rng.below(8 * width + 2) as u32).collect();
        check_all_backends(&queries, &db, width, &bounds);
    }
}

/// Search on every backend, with and without a filter, equals the scalar
/// backend and brute force (ties by row), for query counts on both sides of
/// the fast-scan crossover, k above the row count, and several blocks.
#[test]
fn search_through_the_scan_equals_the_scalar_backend_and_brute_force() {
    let scalar = Kernels::for_backend(Backend::Scalar).unwrap();
    let mut rng = Rng::new(3);
    for (width, n) in [(96usize, 3000usize), (5, 9_000), (33, 700), (300, 400)] {
        let db = database(&mut rng, n, width);
        let mask: Vec<u8> = (0..n.div_ceil(8))
            .map(|_| rng.next_u64() as u8 & rng.next_u64() as u8)
            .collect();
        let allowed: Vec<usize> = (0..n).filter(|&r| mask[r / 8] >> (r % 8) & 1 == 1).collect();
        // The engine switches kernels at 32 queries a chunk (two threads: 64 queries).
        for nq in [1usize, 2, 5, 31, 32, 33, 64, 65, 70] {
            // Half the queries repeat database rows (distance-0 ties).
            let mut queries = rng.bytes(nq * width);
            for q in (0..nq).step_by(2) {
                let r = rng.below(n);
                queries[q * width..][..width].copy_from_slice(&db[r * width..][..width]);
            }
            for k in [1usize, 10, n + 5] {
                for masked in [false, true] {
                    let cols = if masked { k.min(allowed.len()) } else { k.min(n) };
                    let run = |kernels: &Kernels| {
                        let (mut d, mut r) = (vec![0u32; nq * cols], vec![0i64; nq * cols]);
                        install(Some(2), || {
                            if masked {
                                search_masked_with(kernels, &queries, &db, width, k, &mask, &mut d, &mut r)
                            } else {
                                search_with(kernels, &queries, &db, width, k, &mut d, &mut r)
                            }
                        })
                        .unwrap()
                        .unwrap();
                        (d, r)
                    };
                    let expected = run(scalar);
                    let mut brute_d = Vec::new();
                    let mut brute_r = Vec::new();
                    for q in queries.chunks_exact(width) {
                        let mut all: Vec<(u32, i64)> = (0..n)
                            .filter(|&r| !masked || allowed.binary_search(&r).is_ok())
                            .map(|r| (naive_lee(q, &db[r * width..][..width]), r as i64))
                            .collect();
                        all.sort_unstable();
                        brute_d.extend(all[..cols].iter().map(|p| p.0));
                        brute_r.extend(all[..cols].iter().map(|p| p.1));
                    }
                    assert_eq!(
                        expected,
                        (brute_d, brute_r),
                        "scalar width {width} nq {nq} k {k} masked {masked}"
                    );
                    for backend in Backend::supported() {
                        let got = run(Kernels::for_backend(backend).unwrap());
                        assert_eq!(got, expected, "{backend:?} width {width} nq {nq} k {k} masked {masked}");
                    }
                }
            }
        }
    }
}

/// The distance matrix runs chunks of up to 64 queries through the same
/// engine: with enough queries a chunk takes the fast-scan path.
#[test]
fn distance_matrix_through_the_scan_equals_brute_force() {
    let mut rng = Rng::new(11);
    for (width, m, n) in [(96usize, 300usize, 1500usize), (7, 130, 70), (300, 70, 40)] {
        let a = rng.bytes(m * width);
        let b = database(&mut rng, n, width);
        let mut out = vec![0u32; m * n];
        install(Some(2), || q2key::lee_matrix(&a, &b, width, &mut out))
            .unwrap()
            .unwrap();
        for (i, q) in a.chunks_exact(width).enumerate() {
            for (j, row) in b.chunks_exact(width).enumerate() {
                assert_eq!(out[i * n + j], naive_lee(q, row), "width {width} query {i} row {j}");
            }
        }
    }
}

/// An index with ids out of order (ties break by id, through the tie keys)
/// and both kinds of filter: every backend equals the scalar one and brute
/// force, with enough queries for the fast-scan path.
#[test]
fn index_search_ties_by_id_and_filters_equal_the_scalar_backend() {
    use q2key::{Filter, Index, IndexThresholds};
    let (dim, width, n, nq) = (384usize, 96usize, 2500usize, 80usize);
    let mut rng = Rng::new(21);
    let codes = database(&mut rng, n, width);
    // Distinct ids in no particular order.
    let mut ids: Vec<u64> = (0..n as u64).map(|i| 7 * i + 3).collect();
    for i in (1..n).rev() {
        ids.swap(i, rng.below(i + 1));
    }
    let mut index = Index::new(dim, IndexThresholds::Gaussian, None).unwrap();
    index.add_codes(&codes, Some(&ids)).unwrap();
    let mut queries = rng.bytes(nq * width);
    for q in (0..nq).step_by(3) {
        let r = rng.below(n);
        queries[q * width..][..width].copy_from_slice(&codes[r * width..][..width]);
    }
    let wanted: Vec<u64> = ids.iter().copied().filter(|id| !id.is_multiple_of(5)).collect();
    let mask: Vec<u8> = (0..=7 * n as u64 + 3).map(|id| u8::from(id % 3 != 1) * 0x80).collect();
    let scalar = Kernels::for_backend(Backend::Scalar).unwrap();
    for k in [1usize, 10, n + 1] {
        for filter in [None, Some(Filter::Ids(&wanted)), Some(Filter::Mask(&mask))] {
            let allowed = |id: u64| match filter {
                None => true,
                Some(Filter::Ids(_)) => !id.is_multiple_of(5),
                Some(Filter::Mask(_)) => id % 3 != 1,
            };
            let run = |kernels: &Kernels| {
                let found = install(Some(2), || index.search_with(kernels, &queries, k, filter))
                    .unwrap()
                    .unwrap();
                (found.columns, found.distances, found.ids)
            };
            let expected = run(scalar);
            let (cols, mut brute_d, mut brute_i) = (expected.0, Vec::new(), Vec::new());
            for q in queries.chunks_exact(width) {
                let mut all: Vec<(u32, u64)> = (0..n)
                    .filter(|&r| allowed(ids[r]))
                    .map(|r| (naive_lee(q, &codes[r * width..][..width]), ids[r]))
                    .collect();
                all.sort_unstable();
                assert_eq!(cols, k.min(all.len()));
                brute_d.extend(all[..cols].iter().map(|p| p.0));
                brute_i.extend(all[..cols].iter().map(|p| p.1));
            }
            assert_eq!((&expected.1, &expected.2), (&brute_d, &brute_i), "scalar k {k}");
            for backend in Backend::supported() {
                assert_eq!(
                    run(Kernels::for_backend(backend).unwrap()),
                    expected,
                    "{backend:?} k {k}"
                );
            }
        }
    }
}

/// Wrong lengths panic before anything is written, on every backend; the
/// exact lengths work.
#[test]
fn short_or_ragged_buffers_panic_without_writing_on_every_backend() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let (width, nq, rows) = (40usize, 5usize, 64usize);
    let mut rng = Rng::new(5);
    let tables = LeeTables::new(&rng.bytes(nq * width), width);
    let mut layout = vec![0u8; rows * width];
    fast_scan_blocks(&rng.bytes(rows * width), width, &mut layout);
    let full = nq * rows;
    // (queries, blocks bytes, out, bounds, hits); None: no hits.
    type Case = (std::ops::Range<usize>, usize, usize, Option<(usize, usize)>);
    let bad: Vec<Case> = vec![
        (0..nq, layout.len(), full - 1, None),
        (0..nq, layout.len(), 0, None),
        (0..nq + 1, layout.len(), full + rows, None),
        (0..nq, layout.len() - 1, full, None),
        (0..nq, layout.len() - 32 * width + 1, full, None),
        (0..nq, layout.len(), full, Some((nq - 1, full / 8))),
        (0..nq, layout.len(), full, Some((nq + 1, full / 8))),
        (0..nq, layout.len(), full, Some((nq, full / 8 - 1))),
    ];
    for backend in Backend::supported() {
        let k = Kernels::for_backend(backend).unwrap();
        for (queries, blocks, out_len, hits) in bad.iter().cloned() {
            let mut out = vec![0xDEAD_BEEFu32; out_len];
            let mut masks = vec![0xa5u8; hits.map_or(0, |h| h.1)];
            let bounds = vec![u32::MAX; hits.map_or(0, |h| h.0)];
            let call = AssertUnwindSafe(|| {
                k.lee_scan(
                    &tables,
                    queries.clone(),
                    &layout[..blocks],
                    hits.map(|_| (&bounds[..], &mut masks[..])),
                    &mut out,
                )
            });
            assert!(
                catch_unwind(call).is_err(),
                "{backend:?} {queries:?} {blocks} {out_len} {hits:?}"
            );
            assert!(
                out.iter().all(|&v| v == 0xDEAD_BEEF),
                "{backend:?} wrote before panicking"
            );
            assert!(
                masks.iter().all(|&v| v == 0xa5),
                "{backend:?} wrote masks before panicking"
            );
        }
        let (mut out, mut masks) = (vec![0u32; full], vec![0u8; full / 8]);
        let bounds = vec![u32::MAX; nq];
        k.lee_scan(&tables, 0..nq, &layout, Some((&bounds, &mut masks)), &mut out);
        assert!(
            masks.iter().all(|&m| m == 0xff),
            "{backend:?}: every row is below u32::MAX"
        );
        k.lee_scan(&tables, 2..4, &layout, None, &mut out[..2 * rows]);
    }
}
