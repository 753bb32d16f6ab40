//! Exact k-NN search and the distance helpers against brute force.

mod common;

use common::{database, naive_lee, Rng};
use q2key::parallel::install;
use q2key::{lee_matrix, lee_one_to_many, lee_pairwise, search};

/// Every database row of each query sorted by (distance, row).
fn brute_sorted(queries: &[u8], db: &[u8], width: usize) -> Vec<Vec<(u32, i64)>> {
    queries
        .chunks_exact(width)
        .map(|q| {
            let mut all: Vec<(u32, i64)> = db
                .chunks_exact(width)
                .enumerate()
                .map(|(i, row)| (naive_lee(q, row), i as i64))
                .collect();
            all.sort_unstable();
            all
        })
        .collect()
}

fn run_search(queries: &[u8], db: &[u8], width: usize, k: usize) -> (usize, Vec<u32>, Vec<i64>) {
    let nq = queries.len() / width;
    let kk = k.min(db.len() / width);
    let (mut d, mut r) = (vec![u32::MAX; nq * kk], vec![-1i64; nq * kk]);
    let cols = search(queries, db, width, k, &mut d, &mut r).unwrap_or_else(|e| panic!("search failed: {e}"));
    (cols, d, r)
}

#[test]
fn search_matches_brute_force() {
    let mut rng = Rng::new(11);
    for width in [1usize, 3, 8, 13, 96, 256] {
        for n in [0usize, 1, 7, 100, 5000] {
            let db = database(&mut rng, n, width);
            for nq in [1usize, 2, 5, 33] {
                let mut queries = rng.bytes(nq * width);
                // Some queries are database rows (distance-0 ties with their copies).
                if n > 0 {
                    for q in (0..nq).step_by(2) {
                        let src = rng.below(n);
                        queries[q * width..(q + 1) * width].copy_from_slice(&db[src * width..(src + 1) * width]);
                    }
                }
                let brute = brute_sorted(&queries, &db, width);
                let mut ks = vec![1usize, 10, n, n + 5, 300];
                ks.sort_unstable();
                ks.dedup();
                for k in ks {
                    if k == 0 {
                        continue;
                    }
                    let kk = k.min(n);
                    let (cols, d, r) = run_search(&queries, &db, width, k);
                    assert_eq!(cols, kk, "width {width} n {n} queries {nq} k {k}: columns");
                    for (q, expected) in brute.iter().enumerate() {
                        let got: Vec<(u32, i64)> = d[q * kk..(q + 1) * kk]
                            .iter()
                            .copied()
                            .zip(r[q * kk..(q + 1) * kk].iter().copied())
                            .collect();
                        assert_eq!(got, expected[..kk], "width {width} n {n} queries {nq} k {k}: query {q}");
                    }
                }
            }
        }
    }
}

#[test]
fn search_is_identical_across_thread_counts() {
    let mut rng = Rng::new(12);
    for width in [1usize, 13, 96] {
        for n in [7usize, 100, 5000] {
            let db = database(&mut rng, n, width);
            for nq in [1usize, 5, 33] {
                let queries = rng.bytes(nq * width);
                for k in [1usize, 10, 300] {
                    let default = run_search(&queries, &db, width, k);
                    let one = install(Some(1), || run_search(&queries, &db, width, k)).unwrap();
                    let two = install(Some(2), || run_search(&queries, &db, width, k)).unwrap();
                    let three = install(Some(3), || run_search(&queries, &db, width, k)).unwrap();
                    let what = format!("width {width} n {n} queries {nq} k {k}");
                    assert_eq!(one, default, "1 thread vs default pool, {what}");
                    assert_eq!(two, default, "2 threads vs default pool, {what}");
                    assert_eq!(three, default, "3 threads vs default pool, {what}");
                }
            }
        }
    }
    assert!(install(Some(0), || ()).is_err(), "zero threads is an error");
    assert_eq!(install(None, || 5).unwrap(), 5);
}

#[test]
fn search_with_all_equal_rows_returns_the_lowest_rows() {
    let width = 5;
    let n = 1000;
    let db = vec![0x3Cu8; n * width];
    let queries = vec![0u8; 3 * width];
    for k in [1usize, 17, 256, 257, 300, 999, 1000, 2000] {
        let (cols, d, r) = run_search(&queries, &db, width, k);
        let kk = k.min(n);
        assert_eq!(cols, kk);
        for q in 0..3 {
            assert!(d[q * kk..(q + 1) * kk].iter().all(|&x| x == 20), "k {k}");
            assert_eq!(
                r[q * kk..(q + 1) * kk],
                (0..kk as i64).collect::<Vec<_>>()[..],
                "k {k} query {q}"
            );
        }
    }
}

#[test]
fn search_rejects_bad_arguments() {
    let width = 4;
    let db = vec![1u8; 10 * width];
    let q = vec![2u8; 2 * width];
    let (mut d, mut r) = (vec![0u32; 2 * 3], vec![0i64; 2 * 3]);
    assert!(search(&q, &db, width, 3, &mut d, &mut r).is_ok());
    // k = 0.
    assert!(search(&q, &db, width, 0, &mut [], &mut []).is_err(), "k = 0");
    // Width 0.
    assert!(search(&[], &[], 0, 1, &mut [], &mut []).is_err(), "width 0");
    // Ragged queries or database.
    assert!(
        search(&q[..7], &db, width, 3, &mut d[..3], &mut r[..3]).is_err(),
        "ragged queries"
    );
    assert!(
        search(&q, &db[..39], width, 3, &mut d, &mut r).is_err(),
        "ragged database"
    );
    // Output buffers of the wrong size.
    assert!(
        search(&q, &db, width, 3, &mut d[..5], &mut r).is_err(),
        "short distances"
    );
    assert!(search(&q, &db, width, 3, &mut d, &mut r[..5]).is_err(), "short indices");
    let (mut d7, mut r7) = (vec![0u32; 7], vec![0i64; 7]);
    assert!(search(&q, &db, width, 3, &mut d7, &mut r7).is_err(), "long outputs");
    // k > N: N columns, and buffers sized for k are rejected.
    let (mut dk, mut rk) = (vec![0u32; 2 * 10], vec![0i64; 2 * 10]);
    assert_eq!(search(&q, &db, width, 15, &mut dk, &mut rk).unwrap(), 10);
    let (mut dk, mut rk) = (vec![0u32; 2 * 15], vec![0i64; 2 * 15]);
    assert!(
        search(&q, &db, width, 15, &mut dk, &mut rk).is_err(),
        "buffers sized for k > N"
    );
    // Empty database: zero columns; no queries: nothing to do.
    assert_eq!(search(&q, &[], width, 5, &mut [], &mut []).unwrap(), 0);
    assert_eq!(search(&[], &db, width, 5, &mut [], &mut []).unwrap(), 5);
    assert_eq!(q2key::result_columns(5, 3), 3);
}

#[test]
fn lee_helpers_match_brute_force() {
    let mut rng = Rng::new(13);
    for width in [1usize, 3, 8, 13, 96, 256] {
        for (m, n) in [(0usize, 0usize), (1, 1), (1, 7), (2, 100), (5, 33), (9, 700), (33, 5)] {
            let a = database(&mut rng, m, width);
            let b = database(&mut rng, n, width);
            // Matrix.
            let mut out = vec![u32::MAX; m * n];
            lee_matrix(&a, &b, width, &mut out).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let expected = naive_lee(&a[i * width..(i + 1) * width], &b[j * width..(j + 1) * width]);
                    assert_eq!(
                        out[i * n + j],
                        expected,
                        "lee_matrix width {width} {m}×{n} at ({i}, {j})"
                    );
                }
            }
            // One to many.
            for (i, query) in a.chunks_exact(width).enumerate() {
                let mut row = vec![u32::MAX; n];
                lee_one_to_many(query, &b, &mut row).unwrap();
                assert_eq!(
                    row[..],
                    out[i * n..(i + 1) * n],
                    "lee_one_to_many width {width} query {i}"
                );
            }
            // Row-wise.
            let rows = m.min(n);
            let (pa, pb) = (&a[..rows * width], &b[..rows * width]);
            let mut pw = vec![u32::MAX; rows];
            lee_pairwise(pa, pb, width, &mut pw).unwrap();
            for (i, &d) in pw.iter().enumerate() {
                assert_eq!(d, out[i * n + i], "lee_pairwise width {width} row {i}");
            }
        }
    }
}

#[test]
fn lee_helpers_on_large_inputs_cross_their_task_boundaries() {
    // More rows than one parallel task (4096) and than one matrix block.
    let mut rng = Rng::new(14);
    let width = 3;
    let n = 9000;
    let a = database(&mut rng, n, width);
    let b = database(&mut rng, n, width);
    let brute: Vec<u32> = a
        .chunks_exact(width)
        .zip(b.chunks_exact(width))
        .map(|(x, y)| naive_lee(x, y))
        .collect();
    let mut pw = vec![0u32; n];
    lee_pairwise(&a, &b, width, &mut pw).unwrap();
    assert_eq!(pw, brute);
    let q = &a[..width];
    let mut row = vec![0u32; n];
    lee_one_to_many(q, &b, &mut row).unwrap();
    let expected: Vec<u32> = b.chunks_exact(width).map(|y| naive_lee(q, y)).collect();
    assert_eq!(row, expected);
    let mut mat = vec![0u32; 3 * n];
    lee_matrix(&a[..3 * width], &b, width, &mut mat).unwrap();
    for i in 0..3 {
        let qi = &a[i * width..(i + 1) * width];
        for (j, y) in b.chunks_exact(width).enumerate() {
            assert_eq!(mat[i * n + j], naive_lee(qi, y), "lee_matrix ({i}, {j})");
        }
    }
}

#[test]
fn lee_helpers_reject_mismatched_buffers() {
    let (a, b) = (vec![0u8; 12], vec![0u8; 8]);
    assert!(q2key::lee(&a[..3], &b[..4]).is_err());
    assert!(q2key::lee_counts(&a[..3], &b[..4]).is_err());
    let mut out = vec![0u32; 6];
    assert!(lee_matrix(&a, &b[..7], 4, &mut out).is_err(), "ragged b");
    assert!(lee_matrix(&a, &b, 4, &mut out[..5]).is_err(), "short out");
    assert!(lee_matrix(&a, &b, 4, &mut out).is_ok());
    assert!(
        lee_pairwise(&a, &b, 4, &mut out[..2]).is_err(),
        "a and b of different sizes"
    );
    assert!(lee_pairwise(&a, &a, 4, &mut out[..2]).is_err(), "short out");
    assert!(lee_pairwise(&a, &a, 5, &mut out[..2]).is_err(), "ragged rows");
    assert!(lee_pairwise(&a, &a, 4, &mut out[..3]).is_ok());
    assert!(
        lee_one_to_many(&a[..4], &b[..7], &mut out[..2]).is_err(),
        "ragged database"
    );
    assert!(lee_one_to_many(&a[..4], &b, &mut out[..3]).is_err(), "long out");
    assert!(lee_one_to_many(&a[..4], &b, &mut out[..2]).is_ok());
}
