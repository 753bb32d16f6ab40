//! The inverted-file index (issue 13): deterministic spherical k-means, no
//! empty list, and with `nprobe` = every list exactly the exhaustive
//! `Index` search (asymmetric and Lee) over the same rows and ids, with
//! removals, filters, every backend and thread count.

mod common;

use common::Rng;
use q2key::index::{Filter, Index, IndexThresholds};
use q2key::ivf::format::{header_crc_at, section_count, DESCRIPTOR_LEN, FIELDS_LEN, PREAMBLE_LEN};
use q2key::ivf::kmeans::{train, train_owned, KmeansParams};
use q2key::ivf::{IvfAsymNeighbours, IvfLeeNeighbours};
use q2key::{
    code_width, parallel, random_rotation, Backend, Error, IvfIndex, IvfParams, Kernels, Rotation, Thresholds,
};

/// `rows` vectors around `centres` random directions (a mixture with noise),
/// so that k-means has clusters to find.
fn mixture(rng: &mut Rng, rows: usize, dim: usize, centres: usize) -> Vec<f32> {
    let c: Vec<f32> = (0..centres * dim).map(|_| rng.gaussian() as f32).collect();
    let mut x = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let j = rng.below(centres);
        for d in 0..dim {
            x.push(c[j * dim + d] + 0.6 * rng.gaussian() as f32);
        }
    }
    x
}

fn params(lists: usize, seed: u64) -> IvfParams {
    IvfParams {
        lists: Some(lists),
        points_per_list: Some(32),
        iterations: Some(6),
        seed,
    }
}

/// An IVF index and an exhaustive index over the same rows and ids (shuffled).
fn pair(rng: &mut Rng, rows: usize, dim: usize, lists: usize) -> (IvfIndex, Index, Vec<f32>, Vec<u64>) {
    pair_rotated(rng, rows, dim, lists, None)
}

/// [`pair`] with both indexes' thresholds carrying `rotation` (SPEC §9).
fn pair_rotated(
    rng: &mut Rng,
    rows: usize,
    dim: usize,
    lists: usize,
    rotation: Option<Rotation>,
) -> (IvfIndex, Index, Vec<f32>, Vec<u64>) {
    let x = mixture(rng, rows, dim, 12);
    let mut ids: Vec<u64> = (0..rows as u64).map(|i| 3 * i + 7).collect();
    for i in (1..rows).rev() {
        ids.swap(i, rng.below(i + 1));
    }
    let thresholds = Thresholds::gaussian(dim)
        .unwrap()
        .with_rotation(rotation.clone())
        .unwrap();
    let mut ivf = IvfIndex::new(dim, thresholds).unwrap();
    ivf.train(&x, params(lists, 5)).unwrap();
    // Two batches: adding after training needs no retraining.
    let half = rows / 2 * dim;
    ivf.add(&x[..half], Some(&ids[..rows / 2])).unwrap();
    ivf.add(&x[half..], Some(&ids[rows / 2..])).unwrap();
    let mut flat = Index::new(dim, IndexThresholds::Gaussian, None)
        .unwrap()
        .with_rotation(rotation)
        .unwrap();
    flat.add(&x, Some(&ids)).unwrap();
    (ivf, flat, x, ids)
}

#[test]
fn kmeans_is_deterministic_for_a_seed_and_any_thread_count() {
    let mut rng = Rng::new(1);
    let dim = 24;
    let x = mixture(&mut rng, 3000, dim, 10);
    let p = KmeansParams {
        lists: 17,
        iterations: 5,
        seed: 9,
    };
    let one = parallel::install(Some(1), || train(&x, dim, p)).unwrap().unwrap();
    for threads in [2, 3] {
        let other = parallel::install(Some(threads), || train(&x, dim, p)).unwrap().unwrap();
        assert_eq!(one, other, "threads {threads}");
    }
    let reseeded = train(&x, dim, KmeansParams { seed: 10, ..p }).unwrap();
    assert_ne!(one, reseeded);
    // Unit centroids.
    for c in one.chunks_exact(dim) {
        let n: f64 = c.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        assert!((n - 1.0).abs() < 1e-5, "{n}");
    }
}

#[test]
fn training_on_handed_over_rows_equals_training_on_borrowed_ones() {
    // `train_owned` normalises the caller's rows in place instead of a copy: the same centroids,
    // whether every row trains or a sample is drawn (1 500 rows, 20 lists × 40 or × 100 points).
    let mut rng = Rng::new(4);
    let dim = 16;
    let x = mixture(&mut rng, 1500, dim, 12);
    for per_list in [40, 100] {
        let params = IvfParams {
            lists: Some(20),
            points_per_list: Some(per_list),
            iterations: Some(4),
            seed: 3,
        };
        let mut borrowed = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
        borrowed.train(&x, params).unwrap();
        let mut owned = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
        owned.train_owned(x.clone(), params).unwrap();
        assert_eq!(borrowed.centroids(), owned.centroids(), "points per list {per_list}");
    }
    let mut unit = x.clone();
    unit.truncate(40 * dim);
    let p = KmeansParams {
        lists: 5,
        iterations: 3,
        seed: 1,
    };
    assert_eq!(
        train(&unit, dim, p).unwrap(),
        train_owned(unit.clone(), dim, p).unwrap()
    );
}

#[test]
fn training_leaves_no_list_empty_and_stats_add_up() {
    let mut rng = Rng::new(2);
    let (ivf, _, _, _) = pair(&mut rng, 4000, 32, 40);
    let s = ivf.stats();
    assert_eq!(s.rows, 4000);
    assert_eq!(s.lists, 40);
    assert!(s.min_list > 0, "{s:?}");
    assert!(s.imbalance >= 1.0 && s.imbalance < 40.0, "{s:?}");
    assert!((s.mean_list - 100.0).abs() < 1e-9);
    // Even from duplicated rows (many ties), empty clusters get split.
    let dim = 8;
    let x: Vec<f32> = (0..400).flat_map(|i| [(i % 3) as f32 + 1.0; 8]).collect();
    let c = train(
        &x,
        dim,
        KmeansParams {
            lists: 3,
            iterations: 4,
            seed: 1,
        },
    )
    .unwrap();
    assert_eq!(c.len(), 3 * dim);
}

#[test]
fn nprobe_all_equals_the_exhaustive_asymmetric_search_exactly() {
    let mut rng = Rng::new(3);
    for (rows, dim, lists) in [(1500usize, 19usize, 9usize), (2600, 64, 20)] {
        let (mut ivf, mut flat, x, ids) = pair(&mut rng, rows, dim, lists);
        let queries: Vec<f32> = (0..7 * dim).map(|_| rng.gaussian() as f32).collect();
        let mut queries = queries;
        queries[..dim].fill(0.0); // a zero query: every score 0, ties by id
        queries[dim..2 * dim].copy_from_slice(&x[5 * dim..6 * dim]); // a stored row
        let removed: Vec<u64> = ids.iter().copied().step_by(7).collect();
        for round in 0..2 {
            let allowed: Vec<u64> = ids.iter().copied().filter(|i| i % 5 != 0).collect();
            let mut mask = vec![0u8; 3 * rows + 8];
            for (i, m) in mask.iter_mut().enumerate() {
                *m = (i % 3 != 1) as u8 * (1 + (i % 4) as u8 * 60);
            }
            for filter in [None, Some(Filter::Ids(&allowed)), Some(Filter::Mask(&mask))] {
                for k in [1usize, 10, 100, rows + 5] {
                    let want = flat.search_asym(&queries, k, filter).unwrap();
                    for threads in [1, 2, 3] {
                        for kernels in Backend::supported().into_iter().filter_map(Kernels::for_backend) {
                            let got = parallel::install(Some(threads), || {
                                ivf.search_asym_with(kernels, &queries, k, lists, filter)
                            })
                            .unwrap()
                            .unwrap();
                            assert_eq!(got.columns, want.columns, "k {k}");
                            assert_eq!(got.ids, want.ids, "round {round} k {k} threads {threads}");
                            assert_eq!(got.distances, want.distances);
                        }
                    }
                    // nprobe beyond the lists is clamped.
                    assert_eq!(ivf.search_asym(&queries, k, 10 * lists, filter).unwrap().ids, want.ids);
                }
            }
            let expect = if round == 0 { removed.len() } else { 0 };
            assert_eq!(ivf.remove(&removed).unwrap(), expect);
            assert_eq!(flat.remove(&removed).unwrap(), expect);
            assert_eq!(ivf.len(), flat.len());
        }
        ivf.compact().unwrap();
        let want = flat.search_asym(&queries, 10, None).unwrap();
        assert_eq!(ivf.search_asym(&queries, 10, lists, None).unwrap().ids, want.ids);
    }
}

#[test]
fn nprobe_all_equals_the_exhaustive_lee_search_exactly() {
    let mut rng = Rng::new(4);
    let (rows, dim, lists) = (2000usize, 27usize, 12usize);
    let (mut ivf, mut flat, x, ids) = pair(&mut rng, rows, dim, lists);
    let queries: Vec<f32> = (0..6 * dim).map(|_| rng.gaussian() as f32).collect();
    let mut codes = vec![0u8; 6 * code_width(dim)];
    let (mut keys, mut tr) = (vec![0u64; 6], vec![0u32; 6]);
    q2key::encode(&queries, dim, None, &mut codes, &mut keys, &mut tr).unwrap();
    ivf.remove(&ids[..300]).unwrap();
    flat.remove(&ids[..300]).unwrap();
    let allowed: Vec<u64> = ids.iter().copied().filter(|i| i % 3 == 0).collect();
    for filter in [None, Some(Filter::Ids(&allowed))] {
        for k in [1usize, 10, 3000] {
            let want = flat.search(&codes, k, filter).unwrap();
            for kernels in Backend::supported().into_iter().filter_map(Kernels::for_backend) {
                let got = ivf.search_lee_with(kernels, &codes, None, k, lists, filter).unwrap();
                assert_eq!(got.columns, want.columns);
                assert_eq!(got.ids, want.ids, "k {k}");
                assert_eq!(got.distances, want.distances);
            }
            let floats = ivf.search_lee_floats(&queries, k, lists, filter).unwrap();
            assert_eq!(floats.ids, want.ids);
        }
    }
    let _ = x;
}

#[test]
fn with_rotated_thresholds_nprobe_all_equals_the_rotated_exhaustive_index() {
    // Rows are encoded and float queries scored rotated (SPEC §9), as `Index`
    // does; routing stays on the unrotated vectors.
    let mut rng = Rng::new(13);
    let (rows, dim, lists) = (1800usize, 24usize, 10usize);
    let rotation = random_rotation(dim, 4).unwrap();
    let (mut ivf, flat, x, _) = pair_rotated(&mut rng, rows, dim, lists, Some(rotation));
    let mut queries: Vec<f32> = (0..6 * dim).map(|_| rng.gaussian() as f32).collect();
    queries[..dim].copy_from_slice(&x[9 * dim..10 * dim]);
    let mut codes = vec![0u8; 6 * code_width(dim)];
    let (mut keys, mut tr) = (vec![0u64; 6], vec![0u32; 6]);
    let th = flat.threshold_set().unwrap();
    th.encode(&queries, dim, &mut codes, &mut keys, &mut tr).unwrap();
    for k in [1usize, 10, 200] {
        let want = flat.search_asym(&queries, k, None).unwrap();
        let want_lee = flat.search(&codes, k, None).unwrap();
        for kernels in Backend::supported().into_iter().filter_map(Kernels::for_backend) {
            for threads in [1, 2] {
                let got = parallel::install(Some(threads), || {
                    ivf.search_asym_with(kernels, &queries, k, lists, None)
                })
                .unwrap()
                .unwrap();
                assert_eq!((&got.ids, &got.distances), (&want.ids, &want.distances), "k {k}");
            }
            let lee = ivf.search_lee_with(kernels, &codes, None, k, lists, None).unwrap();
            assert_eq!(
                (&lee.ids, &lee.distances),
                (&want_lee.ids, &want_lee.distances),
                "k {k}"
            );
        }
        let floats = ivf.search_lee_floats(&queries, k, lists, None).unwrap();
        assert_eq!(
            (&floats.ids, &floats.distances),
            (&want_lee.ids, &want_lee.distances),
            "k {k}"
        );
    }
    // The file carries the rotation (format 2): the loaded index answers alike.
    let back = IvfIndex::from_bytes(&ivf.to_bytes().unwrap()).unwrap();
    assert_eq!(answers(&back, &queries), answers(&ivf, &queries));
}

#[test]
fn a_few_probes_find_most_of_the_exhaustive_top_10() {
    let mut rng = Rng::new(5);
    let (ivf, flat, x, _) = pair(&mut rng, 6000, 48, 40);
    let dim = 48;
    // Queries near stored rows (held-in, perturbed).
    let queries: Vec<f32> = x[..50 * dim].iter().map(|&v| v + 0.3 * rng.gaussian() as f32).collect();
    let want = flat.search_asym(&queries, 10, None).unwrap();
    let got = ivf.search_asym(&queries, 10, 8, None).unwrap();
    let mut hits = 0;
    for q in 0..50 {
        let w = &want.ids[q * 10..(q + 1) * 10];
        hits += got.ids[q * 10..(q + 1) * 10].iter().filter(|i| w.contains(i)).count();
    }
    assert!(hits as f64 / 500.0 > 0.8, "recall {}", hits as f64 / 500.0);
}

/// Routing is exact integer arithmetic: every backend and thread count
/// probes the same lists, so a search with few probes (where a different
/// route would change the answer) gives the same answer everywhere.
#[test]
fn few_probes_give_the_same_answer_on_every_backend_and_thread_count() {
    let mut rng = Rng::new(6);
    let (dim, lists) = (96usize, 70usize);
    let (ivf, _, x, _) = pair(&mut rng, 5000, dim, lists);
    let queries: Vec<f32> = x[..40 * dim].iter().map(|&v| v + 0.5 * rng.gaussian() as f32).collect();
    let mut codes = vec![0u8; 40 * code_width(dim)];
    let (mut keys, mut tr) = (vec![0u64; 40], vec![0u32; 40]);
    q2key::encode(&queries, dim, None, &mut codes, &mut keys, &mut tr).unwrap();
    let scalar = Kernels::for_backend(Backend::Scalar).unwrap();
    for nprobe in [1usize, 3] {
        let want = ivf.search_asym_with(scalar, &queries, 10, nprobe, None).unwrap();
        let want_lee = ivf.search_lee_with(scalar, &codes, None, 10, nprobe, None).unwrap();
        for threads in [1, 2] {
            for kernels in Backend::supported().into_iter().filter_map(Kernels::for_backend) {
                let (got, got_lee) = parallel::install(Some(threads), || {
                    (
                        ivf.search_asym_with(kernels, &queries, 10, nprobe, None).unwrap(),
                        ivf.search_lee_with(kernels, &codes, None, 10, nprobe, None).unwrap(),
                    )
                })
                .unwrap();
                assert_eq!(got, want, "{:?} nprobe {nprobe}", kernels.backend);
                assert_eq!(got_lee, want_lee, "{:?} nprobe {nprobe}", kernels.backend);
            }
        }
    }
}

#[test]
fn adds_are_all_or_nothing_and_ids_unique() {
    let mut rng = Rng::new(6);
    let dim = 16;
    let x = mixture(&mut rng, 500, dim, 4);
    let mut ivf = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
    assert!(matches!(ivf.add(&x, None), Err(Error::Value { arg: "index", .. })));
    assert!(matches!(
        ivf.search_asym(&x[..dim], 1, 1, None),
        Err(Error::Value { arg: "index", .. })
    ));
    ivf.train(&x, params(5, 1)).unwrap();
    assert!(ivf.train(&x, params(5, 1)).is_err());
    assert_eq!(ivf.add(&x[..10 * dim], None).unwrap(), (0..10).collect::<Vec<u64>>());
    let dup = ivf.add(&x[..2 * dim], Some(&[100, 3])).unwrap_err();
    assert!(
        matches!(
            dup,
            Error::DuplicateId {
                id: 3,
                row: 1,
                within_batch: false
            }
        ),
        "{dup:?}"
    );
    let dup = ivf.add(&x[..2 * dim], Some(&[100, 100])).unwrap_err();
    assert!(matches!(
        dup,
        Error::DuplicateId {
            id: 100,
            row: 1,
            within_batch: true
        }
    ));
    let mut bad = x[..2 * dim].to_vec();
    bad[dim + 3] = f32::NAN;
    assert!(matches!(
        ivf.add(&bad, None),
        Err(Error::NonFinite {
            arg: "x",
            row: 1,
            col: 3,
            ..
        })
    ));
    assert!(matches!(
        ivf.add(&x[..dim + 1], None),
        Err(Error::Shape { arg: "x", .. })
    ));
    assert_eq!(ivf.len(), 10);
    let before_map = ivf.memory_bytes();
    assert!(ivf.contains(3) && !ivf.contains(100));
    // The id map `contains` built is counted: at least one (id, list, row) entry and control byte per row.
    assert!(ivf.memory_bytes() >= before_map + 17 * ivf.len());
    assert_eq!(ivf.remove(&[3, 3, 999]).unwrap(), 1);
    assert!(!ivf.contains(3));
    // A removed id may be added again; sequential ids continue above every id seen.
    ivf.add(&x[..dim], Some(&[3])).unwrap();
    assert_eq!(ivf.add(&x[..dim], None).unwrap(), vec![10]);
    assert!(matches!(
        ivf.search_asym(&x[..dim], 0, 1, None),
        Err(Error::Value { arg: "k", .. })
    ));
    assert!(matches!(
        ivf.search_asym(&x[..dim], 1, 0, None),
        Err(Error::Value { arg: "nprobe", .. })
    ));
}

#[test]
fn memory_per_row_at_384_dimensions_is_at_most_120_bytes() {
    // Lists of ~790 rows: the default 4·√N lists at N = 10⁷ (a 384-d index of
    // 10⁷ rows is too large for a test; the per-row cost depends on the list size).
    let mut rng = Rng::new(7);
    let dim = 384;
    let (lists, rows) = (24usize, 24 * 790);
    let x = mixture(&mut rng, rows, dim, 30);
    let mut ivf = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
    ivf.train(
        &x,
        IvfParams {
            lists: Some(lists),
            points_per_list: Some(40),
            iterations: Some(3),
            seed: 1,
        },
    )
    .unwrap();
    ivf.add(&x, None).unwrap();
    let per_row = ivf.memory_bytes() as f64 / rows as f64;
    assert!(per_row <= 120.0, "{per_row} bytes per row");
    assert!(per_row >= 96.0 + 8.0 + 4.0, "{per_row}: not counting everything");
}

/// Search results, asymmetric and Lee, of every nprobe up to the lists.
fn answers(ivf: &IvfIndex, queries: &[f32]) -> Vec<(IvfAsymNeighbours, IvfLeeNeighbours)> {
    (1..=ivf.lists())
        .step_by(3)
        .map(|nprobe| {
            let a = ivf.search_asym(queries, 7, nprobe, None).unwrap();
            let l = ivf.search_lee_floats(queries, 7, nprobe, None).unwrap();
            (a, l)
        })
        .collect()
}

#[test]
fn save_load_and_bytes_round_trip_with_and_without_mmap() {
    round_trip_with_and_without_mmap(None, 1);
}

#[test]
fn a_rotated_index_round_trips_in_format_2_with_and_without_mmap() {
    round_trip_with_and_without_mmap(Some(random_rotation(21, 6).unwrap()), 2);
}

/// save→load (read and mapped) and to_bytes→from_bytes of an index whose
/// thresholds carry `rotation` give the same answers and, saved again, the
/// same bytes, in a file of format `version`; corruptions are refused.
fn round_trip_with_and_without_mmap(rotation: Option<Rotation>, version: u32) {
    let mut rng = Rng::new(8);
    let dim = 21;
    let (mut ivf, _, _, ids) = pair_rotated(&mut rng, 900, dim, 7, rotation.clone());
    assert_eq!(ivf.thresholds().rotation(), rotation.as_ref());
    ivf.remove(&ids[..50]).unwrap();
    let queries: Vec<f32> = (0..4 * dim).map(|_| rng.gaussian() as f32).collect();
    let want = answers(&ivf, &queries);
    let bytes = ivf.to_bytes().unwrap();
    assert_eq!(ivf.stats().dead, 0, "to_bytes compacts");
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), version);
    let back = IvfIndex::from_bytes(&bytes).unwrap();
    assert_eq!(answers(&back, &queries), want);
    assert_eq!(back.thresholds().rotation(), rotation.as_ref());
    assert_eq!(back.centroids(), ivf.centroids());
    assert_eq!(back.next_id(), ivf.next_id());
    let dir = std::env::temp_dir().join(format!("q2key-ivf-{}-v{version}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.q2ivf");
    ivf.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    for mmap in [false, true] {
        let mut loaded = IvfIndex::load(&path, mmap).unwrap();
        assert_eq!(loaded.is_mapped(), mmap);
        assert_eq!(loaded.thresholds().rotation(), rotation.as_ref());
        assert_eq!(answers(&loaded, &queries), want);
        assert_eq!(
            loaded.to_bytes().unwrap(),
            bytes,
            "canonical: decode then write gives the same bytes"
        );
        if mmap {
            assert!(matches!(loaded.add(&queries[..dim], None), Err(Error::ReadOnly)));
            assert!(matches!(loaded.remove(&[ids[60]]), Err(Error::ReadOnly)));
            // Saving a mapped index over its own file is safe.
            loaded.save(&path).unwrap();
            assert_eq!(answers(&IvfIndex::load(&path, false).unwrap(), &queries), want);
        }
    }
    // Every single-byte corruption is refused or decodes to the same bytes.
    for at in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5A;
        if let Ok(mut i) = IvfIndex::from_bytes(&bad) {
            assert_eq!(i.to_bytes().unwrap(), bad);
        }
    }
    for cut in [0, 7, 100, bytes.len() - 1] {
        assert!(matches!(IvfIndex::from_bytes(&bytes[..cut]), Err(Error::Format { .. })));
    }
    // An untrained index round-trips too.
    let mut empty = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
    let e = empty.to_bytes().unwrap();
    assert!(!IvfIndex::from_bytes(&e).unwrap().is_trained());
    std::fs::remove_dir_all(&dir).unwrap();
}

mod round_trip {
    use super::{mixture, params, IvfIndex, Thresholds};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// save→load keeps every row, id and answer, for any thresholds kind,
        /// dimension, list count and removals.
        #[test]
        fn bytes_round_trip(dim in 1usize..40, rows in 1usize..300, lists in 1usize..9, seed in 0u64..1000,
                            kind in 0u8..3, drop in 0usize..50) {
            let mut rng = super::Rng::new(seed);
            let x = mixture(&mut rng, rows, dim, 3);
            let th = match kind {
                0 => Thresholds::gaussian(dim).unwrap(),
                1 => Thresholds::global("tau", 0.1, Some(dim)).unwrap(),
                _ => {
                    let cuts: Vec<f64> = (0..3).flat_map(|j| vec![0.1 * (j as f64 - 1.0); dim]).collect();
                    Thresholds::per_dim(&cuts, &[3, dim]).unwrap()
                }
            };
            let mut ivf = IvfIndex::new(dim, th).unwrap();
            let lists = lists.min(rows);
            ivf.train(&x, params(lists, seed)).unwrap();
            let ids = ivf.add(&x, None).unwrap();
            ivf.remove(&ids[..drop.min(rows)]).unwrap();
            let q = &x[..dim];
            let want = (ivf.search_asym(q, 5, lists, None).unwrap(), ivf.search_lee_floats(q, 5, lists, None).unwrap());
            let bytes = ivf.to_bytes().unwrap();
            let mut back = IvfIndex::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back.len(), ivf.len());
            prop_assert_eq!(back.search_asym(q, 5, lists, None).unwrap(), want.0);
            prop_assert_eq!(back.search_lee_floats(q, 5, lists, None).unwrap(), want.1);
            prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        }
    }
}

mod id_map {
    use super::{mixture, params, Error, IvfIndex, Thresholds};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// One step of a sequence: add rows (given ids from a small range, so
    /// duplicates happen, or sequential ones), remove ids, ask `contains`,
    /// compact.
    #[derive(Debug, Clone)]
    enum Op {
        Add { rows: usize, ids: Option<Vec<u64>> },
        Remove(Vec<u64>),
        Contains(u64),
        Compact,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1usize..12, any::<bool>(), prop::collection::vec(0u64..60, 12)).prop_map(|(rows, given, ids)| Op::Add {
                rows,
                ids: given.then(|| ids[..rows].to_vec()),
            }),
            prop::collection::vec(0u64..60, 0..10).prop_map(Op::Remove),
            (0u64..60).prop_map(Op::Contains),
            Just(Op::Compact),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whether the id map is built (by `contains` or `remove`) or not,
        /// adds, duplicate-id rejections, removals, compactions and
        /// `contains` agree with a set of the live ids, and the index's ids
        /// are that set.
        #[test]
        fn ids_follow_a_model(ops in prop::collection::vec(op(), 1..40), seed in 0u64..1000) {
            let dim = 6;
            let mut rng = super::Rng::new(seed);
            let x = mixture(&mut rng, 64, dim, 3);
            let mut ivf = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
            ivf.train(&x, params(4, seed)).unwrap();
            let mut live = BTreeSet::new();
            let mut next = 0u64;
            for op in ops {
                match op {
                    Op::Add { rows, ids } => {
                        let got = ivf.add(&x[..rows * dim], ids.as_deref());
                        let given = ids.clone().unwrap_or_else(|| (next..next + rows as u64).collect());
                        // A repeat within the batch is reported first, then the first stored id.
                        let mut batch = BTreeSet::new();
                        let clash = given
                            .iter()
                            .position(|id| !batch.insert(*id))
                            .or_else(|| given.iter().position(|id| live.contains(id)));
                        match (clash, got) {
                            (None, Ok(added)) => {
                                prop_assert_eq!(&added, &given);
                                live.extend(given.iter().copied());
                                next = next.max(given.iter().max().unwrap() + 1);
                            }
                            (Some(row), Err(Error::DuplicateId { row: r, .. })) => prop_assert_eq!(r, row),
                            (clash, got) => prop_assert!(false, "clash {:?}, add gave {:?}", clash, got),
                        }
                    }
                    Op::Remove(ids) => {
                        let want = ids.iter().collect::<BTreeSet<_>>().iter().filter(|id| live.contains(**id)).count();
                        prop_assert_eq!(ivf.remove(&ids).unwrap(), want);
                        for id in &ids {
                            live.remove(id);
                        }
                    }
                    Op::Contains(id) => prop_assert_eq!(ivf.contains(id), live.contains(&id)),
                    Op::Compact => ivf.compact().unwrap(),
                }
                prop_assert_eq!(ivf.len(), live.len());
            }
            let mut ids = ivf.ids().unwrap();
            ids.sort_unstable();
            prop_assert_eq!(ids, live.into_iter().collect::<Vec<_>>());
        }
    }
}

/// The seeds of the `load_ivf` fuzz target, by file name: small valid files
/// of every threshold kind, with and without a fitted table, with removals,
/// untrained, and (format 2) rotated.
fn ivf_fuzz_seeds() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(11);
    let cases: Vec<(&str, usize, Thresholds, usize, usize)> = vec![
        ("untrained", 5, Thresholds::gaussian(5).unwrap(), 0, 0),
        ("gaussian", 6, Thresholds::gaussian(6).unwrap(), 40, 3),
        ("global", 9, Thresholds::global("tau", 0.2, Some(9)).unwrap(), 70, 4),
        (
            "per_dim",
            3,
            Thresholds::per_dim(&[-0.3, -0.3, -0.3, 0.0, 0.0, 0.0, 0.3, 0.3, 0.3], &[3, 3]).unwrap(),
            33,
            2,
        ),
        (
            "rotated",
            7,
            Thresholds::global("tau", 0.1, Some(7))
                .unwrap()
                .with_rotation(Some(random_rotation(7, 3).unwrap()))
                .unwrap(),
            45,
            3,
        ),
    ];
    let mut seeds = Vec::new();
    for (name, dim, th, rows, lists) in cases {
        for fitted in [false, true] {
            let th = if fitted {
                let sample: Vec<f64> = (0..64 * dim).map(|_| rng.gaussian()).collect();
                th.fit_reconstruction(&sample, dim).unwrap()
            } else {
                th.clone()
            };
            let mut ivf = IvfIndex::new(dim, th).unwrap();
            if rows > 0 {
                let x = mixture(&mut rng, rows, dim, 3);
                ivf.train(&x, params(lists, 1)).unwrap();
                let ids = ivf.add(&x, None).unwrap();
                ivf.remove(&ids[..2]).unwrap();
            }
            let suffix = if fitted { "_fitted" } else { "" };
            seeds.push((format!("{name}{suffix}.q2ivf"), ivf.to_bytes().unwrap()));
        }
    }
    seeds
}

fn ivf_fuzz_seed_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/load_ivf")
}

/// Regenerates the seeds of the `load_ivf` fuzz target ([`ivf_fuzz_seeds`]):
/// `cargo test --test ivf -- --ignored write_ivf_fuzz_seeds`.
#[test]
#[ignore]
fn write_ivf_fuzz_seeds() {
    let dir = ivf_fuzz_seed_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in ivf_fuzz_seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn the_committed_fuzz_seeds_are_what_the_code_writes() {
    // The unrotated seeds were written in format 1 before format 2 existed:
    // an index without a rotation still writes exactly those bytes, and every
    // seed loads and writes back unchanged.
    for (name, bytes) in ivf_fuzz_seeds() {
        let committed = std::fs::read(ivf_fuzz_seed_dir().join(&name)).unwrap();
        assert!(committed == bytes, "{name} differs from the committed seed");
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(version, if name.starts_with("rotated") { 2 } else { 1 }, "{name}");
        let mut back = IvfIndex::from_bytes(&committed).unwrap();
        assert!(
            back.to_bytes().unwrap() == committed,
            "{name} does not write back unchanged"
        );
    }
}

/// `bytes` with every section checksum and the header checksum recomputed.
fn with_fixed_checksums(mut b: Vec<u8>) -> Vec<u8> {
    let sections = section_count(u32::from_le_bytes(b[8..12].try_into().unwrap())).unwrap();
    for i in 0..sections {
        let d = PREAMBLE_LEN + FIELDS_LEN + i * DESCRIPTOR_LEN;
        let offset = u64::from_le_bytes(b[d + 8..d + 16].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(b[d + 16..d + 24].try_into().unwrap()) as usize;
        let crc = crc32c::crc32c(&b[offset..offset + len]);
        b[d + 24..d + 28].copy_from_slice(&crc.to_le_bytes());
    }
    let at = header_crc_at(sections);
    let crc = crc32c::crc32c(&b[..at]);
    b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn a_corrupted_rotation_or_an_unknown_version_is_refused() {
    let mut rng = Rng::new(21);
    let dim = 6;
    let (mut ivf, _, _, _) = pair_rotated(&mut rng, 200, dim, 3, Some(random_rotation(dim, 9).unwrap()));
    let bytes = ivf.to_bytes().unwrap();
    let d = PREAMBLE_LEN + FIELDS_LEN + 6 * DESCRIPTOR_LEN;
    assert_eq!(&bytes[d..d + 4], b"ROTN");
    let rotn = u64::from_le_bytes(bytes[d + 8..d + 16].try_into().unwrap()) as usize;
    assert_eq!(u64::from_le_bytes(bytes[d + 16..d + 24].try_into().unwrap()), 4 * 36);
    let set = |at: usize, v: f32| {
        let mut b = bytes.clone();
        b[rotn + 4 * at..rotn + 4 * at + 4].copy_from_slice(&v.to_le_bytes());
        with_fixed_checksums(b)
    };
    let entry = |at: usize| f32::from_le_bytes(bytes[rotn + 4 * at..rotn + 4 * at + 4].try_into().unwrap());
    let mut zero = bytes.clone();
    zero[rotn..rotn + 4 * 36].fill(0);
    // Not orthogonal (one entry changed, or all zero) or not finite: each
    // refused with the checksums right, so only the rotation check can catch it.
    let bad_ones = [
        set(7, 2.0 * entry(7) + 0.5),
        set(0, f32::NAN),
        set(3, f32::INFINITY),
        with_fixed_checksums(zero),
    ];
    for bad in bad_ones {
        let err = IvfIndex::from_bytes(&bad).unwrap_err();
        assert!(
            matches!(&err, Error::Format { .. }) && err.to_string().contains("corrupted rotation"),
            "{err}"
        );
    }
    // A file without its ROTN section (format 1 header) is refused, not read unrotated.
    let mut v1 = bytes.clone();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert!(matches!(
        IvfIndex::from_bytes(&with_fixed_checksums(v1)),
        Err(Error::Format { .. })
    ));
    for version in [0u32, 3, 99] {
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&version.to_le_bytes());
        let err = IvfIndex::from_bytes(&b).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{version}: {err}");
    }
}

#[test]
fn assign_reserve_add_to_lists_equals_add_and_reserved_lists_do_not_grow() {
    // The streamed build's two passes (route every batch, size every list once, add with the lists
    // found) give the one-pass index byte for byte; after `reserve` adding takes no more memory.
    let mut rng = Rng::new(11);
    let dim = 24;
    let x = mixture(&mut rng, 2000, dim, 10);
    let mut one = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
    one.train(&x, params(9, 5)).unwrap();
    let mut two = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
    two.train(&x, params(9, 5)).unwrap();
    let batches: Vec<&[f32]> = x.chunks(333 * dim).collect();
    let routes: Vec<Vec<u32>> = batches.iter().map(|b| two.assign(b).unwrap()).collect();
    let mut counts = vec![0u64; 9];
    for &l in routes.iter().flatten() {
        counts[l as usize] += 1;
    }
    two.reserve(&counts).unwrap();
    let reserved = two.memory_bytes();
    for (b, r) in batches.iter().zip(&routes) {
        one.add(b, None).unwrap();
        two.add_to_lists(b, None, r).unwrap();
    }
    assert_eq!(two.memory_bytes(), reserved, "a reserved list reallocated");
    assert_eq!(one.memory_bytes(), two.memory_bytes());
    assert_eq!(one.to_bytes().unwrap(), two.to_bytes().unwrap());

    // Bad input fails, naming it, before anything is stored.
    let rows = two.len();
    let err = two.add_to_lists(&x[..3 * dim], None, &[0, 9, 1]).unwrap_err();
    assert_eq!(err.to_string(), "lists: row 1: list 9 is not below the index's 9 lists");
    let err = two.add_to_lists(&x[..3 * dim], None, &[0, 1]).unwrap_err();
    assert!(matches!(err, Error::Shape { arg: "lists", .. }), "{err}");
    let err = two.reserve(&[1; 8]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                arg: "rows_per_list",
                ..
            }
        ),
        "{err}"
    );
    for huge in [u64::MAX, 1 << 62] {
        let err = two.reserve(&[0, 0, huge, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Alloc {
                    arg: "rows_per_list",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(two.len(), rows);
    let untrained = IvfIndex::new(dim, Thresholds::gaussian(dim).unwrap()).unwrap();
    assert!(untrained.assign(&x[..dim]).is_err());
}
