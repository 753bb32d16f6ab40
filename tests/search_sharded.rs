//! Few queries against a large database take the sharded path (each thread a
//! slice of the rows, lists merged): the answer must equal brute force and
//! the single-thread, unsharded search, ties included.

mod common;

use common::Rng;
use q2key::parallel::install;

fn brute(q: &[u8], db: &[u8], width: usize, k: usize) -> Vec<(u32, i64)> {
    let mut all: Vec<(u32, i64)> = db
        .chunks_exact(width)
        .enumerate()
        .map(|(i, row)| (q.iter().zip(row).map(|(a, b)| (a ^ b).count_ones()).sum(), i as i64))
        .collect();
    all.sort();
    all.truncate(k);
    all
}

#[test]
fn sharded_search_equals_brute_force_and_the_unsharded_path() {
    let mut rng = Rng::new(7);
    for width in [8usize, 96] {
        let n = 150_000;
        let mut db = rng.bytes(n * width);
        let queries = rng.bytes(2 * width);
        // Copies of query 0 spread over every shard, and a near-copy: exact ties across shard boundaries.
        for &row in &[149_999usize, 3, 40_000, 75_000, 75_001, 120_000] {
            db[row * width..(row + 1) * width].copy_from_slice(&queries[..width]);
        }
        db[60_000 * width] = queries[0] ^ 1;
        for k in [1usize, 5, 10, 64] {
            let run = |threads: usize| {
                let (mut d, mut r) = (vec![0u32; 2 * k], vec![0i64; 2 * k]);
                install(Some(threads), || {
                    q2key::search(&queries, &db, width, k, &mut d, &mut r).unwrap()
                })
                .unwrap();
                (d, r)
            };
            let (d3, r3) = run(3); // 2 queries < 3 threads: sharded
            let (d1, r1) = run(1); // unsharded
            assert_eq!((&d3, &r3), (&d1, &r1), "width {width} k {k}");
            for q in 0..2 {
                let expected = brute(&queries[q * width..][..width], &db, width, k);
                let got: Vec<(u32, i64)> = d3[q * k..][..k]
                    .iter()
                    .copied()
                    .zip(r3[q * k..][..k].iter().copied())
                    .collect();
                assert_eq!(got, expected, "width {width} k {k} query {q}");
            }
            if k >= 6 {
                assert_eq!(&r3[..6], &[3, 40_000, 75_000, 75_001, 120_000, 149_999]);
            }
        }
    }
}
