//! The index against brute force: search (filters, removed rows, user ids in
//! any order, ties to the lower id), range search, key windows, weighted Lee,
//! all-or-nothing adds, removal and compaction.

mod common;

use common::Rng;
use q2key::index::{Filter, Index, IndexThresholds};
use q2key::{code_width, lee, prefix_range, window_range, Error, LeeWeights};
use std::collections::HashMap;

const DIM: usize = 40; // 10-byte codes: many exact ties among random codes

/// Random codes with zero padding bits.
fn codes(rng: &mut Rng, rows: usize) -> Vec<u8> {
    let mut c = rng.bytes(rows * code_width(DIM));
    // Few distinct codes so keys, windows and distances tie often.
    for b in c.iter_mut() {
        *b &= 0b1111_0101;
    }
    c
}

/// Brute force: (distance, id) of the k best allowed ids.
fn brute(q: &[u8], rows: &HashMap<u64, Vec<u8>>, allowed: impl Fn(u64) -> bool, k: usize) -> Vec<(u32, u64)> {
    let mut all: Vec<(u32, u64)> = rows
        .iter()
        .filter(|(id, _)| allowed(**id))
        .map(|(id, c)| (lee(q, c).unwrap(), *id))
        .collect();
    all.sort_unstable();
    all.truncate(k);
    all
}

fn found(index: &Index, q: &[u8], k: usize, filter: Option<Filter<'_>>) -> Vec<(u32, u64)> {
    let n = index.search(q, k, filter).unwrap();
    n.distances.iter().copied().zip(n.ids.iter().copied()).collect()
}

#[test]
fn search_matches_brute_force_through_adds_removals_filters_and_compaction() {
    let mut rng = Rng::new(41);
    let w = code_width(DIM);
    let mut index = Index::new(DIM, IndexThresholds::Gaussian, None).unwrap();
    let mut stored: HashMap<u64, Vec<u8>> = HashMap::new();
    for round in 0..12 {
        // Alternate sequential ids and user ids in random order (not increasing).
        let batch = codes(&mut rng, 50 + round * 7);
        let rows = batch.len() / w;
        let ids: Vec<u64> = if round % 3 == 1 {
            (0..rows).map(|_| 1_000_000 + rng.next_u64() % 1_000_000_000).collect()
        } else {
            Vec::new()
        };
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        let given =
            (round % 3 == 1 && unique.len() == rows && ids.iter().all(|i| !stored.contains_key(i))).then_some(&ids[..]);
        if round % 3 == 1 && given.is_none() {
            continue;
        }
        let assigned = index.add_codes(&batch, given).unwrap();
        for (i, id) in assigned.iter().enumerate() {
            stored.insert(*id, batch[i * w..(i + 1) * w].to_vec());
        }
        // Remove a random tenth of what is stored.
        let victims: Vec<u64> = stored.keys().copied().filter(|_| rng.below(10) == 0).collect();
        assert_eq!(index.remove(&victims).unwrap(), victims.len());
        for v in &victims {
            stored.remove(v);
        }
        assert_eq!(index.len(), stored.len());
        let queries = codes(&mut rng, 5);
        // Mask bytes: any non-zero byte allows (a numpy bool mask may hold any byte).
        let mask: Vec<u8> = (0..4096)
            .map(|_| if rng.below(3) == 0 { 1 + rng.below(255) as u8 } else { 0 })
            .collect();
        let some_ids: Vec<u64> = stored
            .keys()
            .copied()
            .filter(|_| rng.below(4) == 0)
            .chain([u64::MAX])
            .collect();
        for q in queries.chunks_exact(w) {
            for k in [1usize, 7, 300] {
                assert_eq!(
                    found(&index, q, k, None),
                    brute(q, &stored, |_| true, k),
                    "round {round} k {k}"
                );
                let m = |id: u64| (id as usize) < mask.len() && mask[id as usize] != 0;
                assert_eq!(found(&index, q, k, Some(Filter::Mask(&mask))), brute(q, &stored, m, k));
                let s = |id: u64| some_ids.contains(&id);
                assert_eq!(
                    found(&index, q, k, Some(Filter::Ids(&some_ids))),
                    brute(q, &stored, s, k)
                );
            }
        }
    }
    index.compact().unwrap();
    let q = codes(&mut rng, 1);
    assert_eq!(found(&index, &q, 25, None), brute(&q, &stored, |_| true, 25));
}

#[test]
fn range_search_and_windows_match_brute_force() {
    let mut rng = Rng::new(42);
    let w = code_width(DIM);
    let mut index = Index::new(DIM, IndexThresholds::Global(0.1), None).unwrap();
    let batch = codes(&mut rng, 700);
    let ids: Vec<u64> = (0..700u64).map(|i| (i * 7919) % 1000 + 5).collect(); // distinct, not increasing
    index.add_codes(&batch, Some(&ids)).unwrap();
    index.remove(&ids[..40]).unwrap();
    let alive: Vec<(u64, &[u8])> = ids.iter().copied().zip(batch.chunks_exact(w)).skip(40).collect();
    let queries = codes(&mut rng, 4);
    let r = index.range_search(&queries, 22, None).unwrap();
    for (qi, q) in queries.chunks_exact(w).enumerate() {
        let mut want: Vec<(u32, u64)> = alive
            .iter()
            .map(|(id, c)| (lee(q, c).unwrap(), *id))
            .filter(|(d, _)| *d <= 22)
            .collect();
        want.sort_unstable();
        let got: Vec<(u32, u64)> = (r.lims[qi]..r.lims[qi + 1])
            .map(|i| (r.distances[i], r.ids[i]))
            .collect();
        assert_eq!(got, want);
    }
    let keyed: Vec<(u64, u64)> = alive
        .iter()
        .map(|(id, c)| (q2key::key_and_transitions(c, DIM).0, *id))
        .collect();
    for (key, _) in keyed.iter().take(30) {
        for delta in [0u64, 1 << 40, 1 << 58, u64::MAX] {
            let (lo, hi) = window_range(*key, delta);
            let mut want: Vec<(u64, u64)> = keyed.iter().copied().filter(|(k, _)| (lo..=hi).contains(k)).collect();
            want.sort_unstable();
            assert_eq!(index.window(*key, delta), want.iter().map(|p| p.1).collect::<Vec<_>>());
        }
        for depth in [0u32, 1, 3, 32] {
            let (lo, hi) = prefix_range(*key, depth);
            let mut want: Vec<(u64, u64)> = keyed.iter().copied().filter(|(k, _)| (lo..=hi).contains(k)).collect();
            want.sort_unstable();
            assert_eq!(
                index.prefix(*key, depth).unwrap(),
                want.iter().map(|p| p.1).collect::<Vec<_>>()
            );
        }
    }
    assert!(index.prefix(0, 33).is_err());
}

#[test]
fn weighted_search_ranks_by_weighted_lee_with_ties_by_id() {
    let mut rng = Rng::new(43);
    let w = code_width(DIM);
    let weights = LeeWeights::new(1.0, 3.0, 0.5).unwrap();
    let mut index = Index::new(DIM, IndexThresholds::Gaussian, Some(weights)).unwrap();
    let batch = codes(&mut rng, 400);
    index.add_codes(&batch, None).unwrap();
    let q = codes(&mut rng, 1);
    let n = index.search(&q, 15, None).unwrap();
    let mut want: Vec<(f64, u64)> = batch
        .chunks_exact(w)
        .enumerate()
        .map(|(i, c)| (weights.apply(q2key::lee_counts(&q, c).unwrap()), i as u64))
        .collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    assert!(n.distances.is_empty());
    assert_eq!(n.weighted, want[..15].iter().map(|p| p.0).collect::<Vec<_>>());
    assert_eq!(n.ids, want[..15].iter().map(|p| p.1).collect::<Vec<_>>());
}

#[test]
fn adds_are_all_or_nothing_and_removal_compacts_itself() {
    let mut rng = Rng::new(44);
    let w = code_width(DIM);
    let mut index = Index::new(DIM, IndexThresholds::Gaussian, None).unwrap();
    index.add_codes(&codes(&mut rng, 10), None).unwrap();
    let batch = codes(&mut rng, 3);
    let dup = index.add_codes(&batch, Some(&[100, 101, 100])).unwrap_err();
    assert!(dup.to_string().contains("appears twice"), "{dup}");
    let present = index.add_codes(&batch, Some(&[100, 5, 102])).unwrap_err();
    assert!(present.to_string().contains("id 5"), "{present}");
    // The failed batches left no trace in the id map: their ids are free.
    assert!(!index.contains(100) && !index.contains(101) && index.contains(5));
    assert_eq!(
        index.add_codes(&batch, Some(&[100, 101, 102])).unwrap(),
        vec![100, 101, 102]
    );
    assert_eq!(index.remove(&[100, 101, 102]).unwrap(), 3);
    assert!(matches!(
        index.add_codes(&batch[..w + 3], None),
        Err(Error::Shape { .. })
    ));
    let nan = index.add(&[f32::NAN; DIM], None).unwrap_err();
    assert!(matches!(nan, Error::NonFinite { .. }));
    assert_eq!(index.len(), 10);
    // Sequential ids continue after the largest id seen.
    assert_eq!(
        index.add_codes(&batch, Some(&[500, 3_000, 17])).unwrap(),
        vec![500, 3_000, 17]
    );
    assert_eq!(index.add_codes(&batch[..w], None).unwrap(), vec![3_001]);
    // Removing more than a quarter compacts: no tombstones left.
    let all: Vec<u64> = (0..10).collect();
    assert_eq!(index.remove(&all).unwrap(), 10);
    assert_eq!(index.stats().dead, 0);
    assert_eq!(index.len(), 4);
    assert!(index.arrays().is_some());
    assert_eq!(index.remove(&[123_456]).unwrap(), 0);
    assert!(index.codes_of(&[17]).is_ok() && index.codes_of(&[8]).is_err());
}

/// Which ids a filter allows, as brute force sees it.
type Allowed<'a> = Box<dyn Fn(u64) -> bool + 'a>;

#[test]
fn increasing_ids_with_removed_rows_and_filters_search_through_a_mask() {
    // Sequential ids: removed rows and wide filters are masked in the kernel,
    // narrow ones (for 9 queries, under ≈ 1/4 of the rows) gathered; both exact.
    let mut rng = Rng::new(45);
    let w = code_width(DIM);
    let n = 3_000usize;
    let batch = codes(&mut rng, n);
    let weights = LeeWeights::new(1.0, 3.0, 0.5).unwrap();
    for weighted in [false, true] {
        let mut index = Index::new(DIM, IndexThresholds::Gaussian, weighted.then_some(weights)).unwrap();
        index.add_codes(&batch, None).unwrap();
        let removed: Vec<u64> = (0..n as u64).filter(|i| i % 9 == 4).collect();
        index.remove(&removed).unwrap();
        assert!(
            index.stats().dead > 0,
            "below the compaction threshold: tombstones stay"
        );
        let stored: HashMap<u64, Vec<u8>> = (0..n as u64)
            .filter(|i| i % 9 != 4)
            .map(|i| (i, batch[i as usize * w..][..w].to_vec()))
            .collect();
        let wide_mask: Vec<u8> = (0..n).map(|i| u8::from(i % 3 != 0)).collect();
        let narrow_mask: Vec<u8> = (0..n).map(|i| u8::from(i % 100 == 7)).collect();
        // Sorted (with a repeat and an unknown id) and unsorted id lists take different walks.
        let wide_ids: Vec<u64> = (0..n as u64).filter(|i| i % 2 == 0).chain([99_999, 99_999]).collect();
        let narrow_ids: Vec<u64> = vec![13, 4, 2_999, 1_000, 1_000, 77];
        let filters: [(&str, Option<Filter<'_>>, Allowed<'_>); 5] = [
            ("none", None, Box::new(|_| true)),
            (
                "wide mask",
                Some(Filter::Mask(&wide_mask)),
                Box::new(|i| wide_mask[i as usize] != 0),
            ),
            (
                "narrow mask",
                Some(Filter::Mask(&narrow_mask)),
                Box::new(|i| narrow_mask[i as usize] != 0),
            ),
            (
                "wide ids",
                Some(Filter::Ids(&wide_ids)),
                Box::new(|i| wide_ids.contains(&i)),
            ),
            (
                "narrow ids",
                Some(Filter::Ids(&narrow_ids)),
                Box::new(|i| narrow_ids.contains(&i)),
            ),
        ];
        let queries = codes(&mut rng, 9);
        for (name, filter, allowed) in &filters {
            for k in [1usize, 10, 300] {
                let got = index.search(&queries, k, *filter).unwrap();
                for (qi, q) in queries.chunks_exact(w).enumerate() {
                    let cols = got.columns;
                    let ids = &got.ids[qi * cols..][..cols];
                    if weighted {
                        let mut want: Vec<(f64, u64)> = stored
                            .iter()
                            .filter(|(id, _)| allowed(**id))
                            .map(|(id, c)| (weights.apply(q2key::lee_counts(q, c).unwrap()), *id))
                            .collect();
                        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                        want.truncate(k);
                        assert_eq!(
                            ids,
                            want.iter().map(|p| p.1).collect::<Vec<_>>(),
                            "{name} k {k} weighted"
                        );
                    } else {
                        let want = brute(q, &stored, allowed, k);
                        let pairs: Vec<(u32, u64)> = got.distances[qi * cols..][..cols]
                            .iter()
                            .copied()
                            .zip(ids.iter().copied())
                            .collect();
                        assert_eq!(pairs, want, "{name} k {k} query {qi}");
                    }
                }
            }
            let r = index.range_search(&queries, 14, *filter).unwrap();
            for (qi, q) in queries.chunks_exact(w).enumerate() {
                let mut want: Vec<(u32, u64)> = stored
                    .iter()
                    .filter(|(id, _)| allowed(**id))
                    .map(|(id, c)| (lee(q, c).unwrap(), *id))
                    .filter(|(d, _)| *d <= 14)
                    .collect();
                want.sort_unstable();
                let got: Vec<(u32, u64)> = (r.lims[qi]..r.lims[qi + 1])
                    .map(|i| (r.distances[i], r.ids[i]))
                    .collect();
                assert_eq!(got, want, "{name} range query {qi}");
            }
        }
    }
}

#[test]
fn ids_in_any_order_break_ties_by_id_on_every_kernel_path_and_backend() {
    // Stored order is not id order: the kernel compares (distance, id) itself,
    // through the row kernel (one query), the tile kernel (19 queries), the
    // sharded path (2 queries under 3 threads, over 70 000 rows) and counting (k > 256).
    let mut rng = Rng::new(46);
    let w = code_width(DIM);
    let n = 70_000usize;
    let batch = codes(&mut rng, n);
    let mut ids: Vec<u64> = (0..n as u64).map(|i| i * 5 + 2).collect();
    for i in (1..n).rev() {
        ids.swap(i, rng.below(i + 1));
    }
    let mut index = Index::new(DIM, IndexThresholds::Gaussian, None).unwrap();
    index.add_codes(&batch, Some(&ids)).unwrap();
    let stored: HashMap<u64, Vec<u8>> = ids
        .iter()
        .zip(batch.chunks_exact(w))
        .map(|(&id, c)| (id, c.to_vec()))
        .collect();
    let queries = codes(&mut rng, 19);
    let half: Vec<u8> = (0..n * 5 + 2)
        .map(|i| u8::from(i % 2 == 0) * (1 + (i % 7) as u8))
        .collect();
    // Id lists, unordered: dense ids go through a bitmap, a list holding a huge id through the id map.
    let mut dense_ids: Vec<u64> = ids.iter().copied().filter(|id| id % 3 == 2).collect();
    dense_ids.reverse();
    let sparse_ids: Vec<u64> = dense_ids
        .iter()
        .copied()
        .filter(|id| id.is_multiple_of(4))
        .chain([u64::MAX])
        .collect();
    for kernels in q2key::Backend::supported()
        .into_iter()
        .map(|b| q2key::Kernels::for_backend(b).unwrap())
    {
        for (nq, threads) in [(1usize, 2usize), (19, 2), (2, 3)] {
            for k in [1usize, 10, 300] {
                for (name, filter) in [
                    ("none", None),
                    ("mask", Some(Filter::Mask(&half))),
                    ("dense ids", Some(Filter::Ids(&dense_ids))),
                    ("sparse ids", Some(Filter::Ids(&sparse_ids))),
                ] {
                    let got = q2key::parallel::install(Some(threads), || {
                        index.search_with(kernels, &queries[..nq * w], k, filter)
                    })
                    .unwrap()
                    .unwrap();
                    let allowed = |id: u64| match name {
                        "none" => true,
                        "mask" => half[id as usize] != 0,
                        _ => id % 3 == 2 && (name == "dense ids" || id.is_multiple_of(4)),
                    };
                    for (qi, q) in queries[..nq * w].chunks_exact(w).enumerate() {
                        let want = brute(q, &stored, allowed, k);
                        let c = got.columns;
                        let pairs: Vec<(u32, u64)> = got.distances[qi * c..][..c]
                            .iter()
                            .copied()
                            .zip(got.ids[qi * c..][..c].iter().copied())
                            .collect();
                        assert_eq!(
                            pairs, want,
                            "{:?} nq {nq} threads {threads} k {k} filter {name}",
                            kernels.backend
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_id_map_is_built_on_first_use_and_counted_by_its_capacity() {
    let mut rng = Rng::new(47);
    let mut index = Index::new(DIM, IndexThresholds::Gaussian, None).unwrap();
    assert_eq!(index.stats().bytes_per_row, code_width(DIM) + 17); // empty: no map yet
    index.add_codes(&codes(&mut rng, 100_000), None).unwrap();
    assert_eq!(index.stats().bytes_per_row, code_width(DIM) + 17); // the id map is built on first use
    assert!(index.contains(99_999) && !index.contains(100_000));
    // 100 000 ids need 2^17 buckets of 17 bytes: 22.3 B per row on top of code, key, id and flag.
    assert_eq!(
        index.stats().bytes_per_row,
        code_width(DIM) + 17 + (131_072usize * 17).div_ceil(100_000)
    );
}

#[test]
fn a_loaded_index_builds_its_id_map_when_ids_are_first_needed() {
    let mut rng = Rng::new(48);
    let w = code_width(DIM);
    let mut index = Index::new(DIM, IndexThresholds::Gaussian, None).unwrap();
    let batch = codes(&mut rng, 50);
    let ids: Vec<u64> = (0..50u64).map(|i| 1_000 - 7 * i).collect(); // decreasing
    index.add_codes(&batch, Some(&ids)).unwrap();
    let saved = index.to_bytes().unwrap();
    let loaded = || Index::from_bytes(&saved).unwrap();
    // Sequential adds to a loaded index (no map yet), then id lookups.
    let mut a = loaded();
    assert_eq!(a.add_codes(&batch[..2 * w], None).unwrap(), vec![1_001, 1_002]);
    assert!(a.contains(1_002) && a.contains(1_000) && a.contains(657) && !a.contains(658));
    assert_eq!(
        a.codes_of(&[1_001, 993]).unwrap(),
        [&batch[..w], &batch[w..2 * w]].concat()
    );
    // A repeated id is caught against the stored rows, and the failed add leaves nothing behind.
    let mut b = loaded();
    let err = b.add_codes(&batch[..2 * w], Some(&[5, 993])).unwrap_err();
    assert!(err.to_string().contains("id 993"), "{err}");
    assert!(!b.contains(5));
    // Removal through the map, then compaction (which drops it) and lookups again.
    let mut c = loaded();
    let gone: Vec<u64> = ids.iter().copied().filter(|i| i % 2 == 0).collect();
    assert_eq!(c.remove(&gone).unwrap(), gone.len());
    assert_eq!(c.stats().dead, 0, "half removed: compacted");
    assert!(ids.iter().all(|&i| c.contains(i) == (i % 2 == 1)));
    assert_eq!(c.remove(&gone).unwrap(), 0);
}

#[test]
fn an_index_refuses_weights_whose_largest_distance_overflows() {
    let huge = LeeWeights::new(1e308, 1e308, 1e308).unwrap();
    let err = Index::new(3, IndexThresholds::Gaussian, Some(huge)).unwrap_err();
    assert!(err.to_string().starts_with("weights: "), "{err}");
    assert!(Index::new(1, IndexThresholds::Gaussian, Some(huge)).is_ok());
}

/// Callers can tell an id already stored, an id repeated in a batch, an id not
/// stored and a read-only index apart by variant, and the messages keep the
/// words the Python layer has always shown.
#[test]
fn id_and_read_only_mistakes_are_errors_callers_can_match() {
    let width = code_width(DIM);
    let mut index = Index::new(DIM, IndexThresholds::Gaussian, None).unwrap();
    index.add_codes(&vec![0u8; 2 * width], Some(&[7, 9])).unwrap();

    let err = index.add_codes(&vec![0u8; 2 * width], Some(&[1, 9])).unwrap_err();
    assert_eq!(
        err,
        Error::DuplicateId {
            id: 9,
            row: 1,
            within_batch: false
        }
    );
    assert_eq!(
        err.to_string(),
        "ids: id 9 (row 1 of the batch) is already in the index"
    );

    let err = index.add_codes(&vec![0u8; 3 * width], Some(&[1, 2, 1])).unwrap_err();
    assert_eq!(
        err,
        Error::DuplicateId {
            id: 1,
            row: 2,
            within_batch: true
        }
    );
    assert_eq!(err.to_string(), "ids: id 1 appears twice in the batch (again at row 2)");
    assert_eq!(index.len(), 2, "a failed add stores nothing");

    let err = index.codes_of(&[7, 8]).unwrap_err();
    assert_eq!(err, Error::UnknownId { id: 8, position: 1 });
    assert_eq!(err.to_string(), "ids: id 8 (position 1) is not in the index");

    let dir = std::env::temp_dir().join(format!("q2key-read-only-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.q2k");
    index.save(&path).unwrap();
    let mut mapped = Index::load(&path, true).unwrap();
    assert!(mapped.is_mapped());
    let err = mapped.add_codes(&vec![0u8; width], Some(&[3])).unwrap_err();
    assert_eq!(err, Error::ReadOnly);
    assert!(
        err.to_string()
            .starts_with("index: this index is memory-mapped read-only"),
        "{err}"
    );
    assert_eq!(mapped.remove(&[7]).unwrap_err(), Error::ReadOnly);
    drop(mapped);
    std::fs::remove_dir_all(&dir).unwrap();
}
