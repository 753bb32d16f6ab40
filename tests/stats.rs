//! Transition statistics (SPEC §4–§5) against deliberately naive references.

mod common;

use common::Rng;
use proptest::prelude::*;
use q2key::stats::{self, KeyCollisions, Rows};

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- references: vectors and index loops, nothing shared with the crate ----

fn ref_reduce(s: &[u8]) -> Vec<u8> {
    let mut r: Vec<u8> = Vec::new();
    for &x in s {
        if r.is_empty() || r[r.len() - 1] != x {
            r.push(x);
        }
    }
    r
}

fn ref_theta(s: u8) -> u8 {
    (s + 2) % 4
}

fn ref_share(hits: usize, den: usize) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        hits as f64 / den as f64
    }
}

fn ref_complement_bigram(s: &[u8]) -> f64 {
    let r = ref_reduce(s);
    let den = r.len().saturating_sub(1);
    ref_share((0..den).filter(|&i| r[i + 1] == ref_theta(r[i])).count(), den)
}

fn ref_hairpin(s: &[u8]) -> f64 {
    let r = ref_reduce(s);
    let den = r.len().saturating_sub(2);
    ref_share(
        (0..den)
            .filter(|&i| r[i + 1] == ref_theta(r[i]) && r[i + 2] == r[i])
            .count(),
        den,
    )
}

fn ref_bigrams(s: &[u8]) -> Vec<u64> {
    let r = ref_reduce(s);
    let mut t = vec![0u64; 16];
    for i in 0..r.len().saturating_sub(1) {
        t[usize::from(r[i]) * 4 + usize::from(r[i + 1])] += 1;
    }
    t
}

fn ref_triplets(s: &[u8]) -> Vec<u64> {
    let r = ref_reduce(s);
    let mut t = vec![0u64; 64];
    for i in 0..r.len().saturating_sub(2) {
        t[usize::from(r[i]) * 16 + usize::from(r[i + 1]) * 4 + usize::from(r[i + 2])] += 1;
    }
    t
}

fn ref_reverse_complement(s: &[u8]) -> Vec<u8> {
    s.iter().rev().map(|&x| ref_theta(x)).collect()
}

fn ref_collisions(keys: &[u64]) -> (u64, u64, u128) {
    let mut pairs = 0u128;
    let mut distinct = 0u64;
    for i in 0..keys.len() {
        if !keys[..i].contains(&keys[i]) {
            distinct += 1;
        }
        pairs += keys[..i].iter().filter(|&&k| k == keys[i]).count() as u128;
    }
    (keys.len() as u64, distinct, pairs)
}

fn same_f64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

/// Ragged rows (some empty, some with long runs) as (values, offsets, rows).
fn ragged(max_rows: usize) -> impl Strategy<Value = (Vec<u8>, Vec<usize>, Vec<Vec<u8>>)> {
    let row = prop::collection::vec((0u8..4, 1usize..5), 0..12).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(s, n)| std::iter::repeat_n(s, n))
            .collect::<Vec<u8>>()
    });
    prop::collection::vec(row, 0..max_rows).prop_map(|rows| {
        let mut offsets = vec![0usize];
        let mut values = Vec::new();
        for r in &rows {
            values.extend_from_slice(r);
            offsets.push(values.len());
        }
        (values, offsets, rows)
    })
}

/// A dense (rows, n) matrix as (flat, n, rows).
fn dense(max_rows: usize, max_n: usize) -> impl Strategy<Value = (Vec<u8>, usize, Vec<Vec<u8>>)> {
    (1..max_n, 0..max_rows).prop_flat_map(|(n, rows)| {
        prop::collection::vec(prop::collection::vec(0u8..4, n), rows).prop_map(move |rs| (rs.concat(), n, rs))
    })
}

fn check_all(rows: Rows<'_>, expected: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let n = expected.len();
    prop_assert_eq!(rows.len(), n);

    let mut counts = vec![0u64; n];
    stats::transition_counts(rows, &mut counts).unwrap();
    let mut density = vec![0f64; n];
    stats::transition_density(rows, &mut density).unwrap();
    let mut comp = vec![0f64; n];
    stats::complement_bigram_frequency(rows, &mut comp).unwrap();
    let mut hair = vec![0f64; n];
    stats::hairpin_density(rows, &mut hair).unwrap();
    let mut bi = vec![7u64; n * 16];
    stats::bigram_counts(rows, &mut bi).unwrap();
    let mut tri = vec![7u64; n * 64];
    stats::triplet_counts(rows, &mut tri).unwrap();
    let mut rc = vec![0u8; rows.values().len()];
    stats::reverse_complement(rows, &mut rc).unwrap();
    let (rv, ro) = stats::run_reduce_rows(rows).unwrap();

    let (mut bi_total, mut tri_total) = (vec![0u64; 16], vec![0u64; 64]);
    let mut at = 0;
    for (i, s) in expected.iter().enumerate() {
        let r = ref_reduce(s);
        prop_assert_eq!(counts[i], r.len() as u64);
        prop_assert!(same_f64(density[i], ref_share(r.len(), s.len())), "density row {}", i);
        prop_assert!(same_f64(comp[i], ref_complement_bigram(s)), "complement row {}", i);
        prop_assert!(same_f64(hair[i], ref_hairpin(s)), "hairpin row {}", i);
        let (b, t) = (ref_bigrams(s), ref_triplets(s));
        prop_assert_eq!(&bi[i * 16..][..16], &b[..]);
        prop_assert_eq!(&tri[i * 64..][..64], &t[..]);
        bi_total.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
        tri_total.iter_mut().zip(&t).for_each(|(x, y)| *x += y);
        prop_assert_eq!(&rc[at..at + s.len()], &ref_reverse_complement(s)[..]);
        at += s.len();
        prop_assert_eq!(&rv[ro[i]..ro[i + 1]], &r[..]);
    }
    prop_assert_eq!(ro.len(), n + 1);
    prop_assert_eq!(&stats::bigram_totals(rows)[..], &bi_total[..]);
    prop_assert_eq!(&stats::triplet_totals(rows)[..], &tri_total[..]);
    Ok(())
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn ragged_rows_match_the_reference((values, offsets, rows) in ragged(12)) {
        check_all(Rows::ragged(&values, &offsets).unwrap(), &rows)?;
    }

    #[test]
    fn dense_rows_match_the_reference((flat, n, rows) in dense(8, 40)) {
        check_all(Rows::dense(&flat, n).unwrap(), &rows)?;
        // The same rows given ragged give the same everything.
        let offsets: Vec<usize> = (0..=rows.len()).map(|i| i * n).collect();
        check_all(Rows::ragged(&flat, &offsets).unwrap(), &rows)?;
    }

    #[test]
    fn reduced_rows_have_the_same_statistics((values, offsets, rows) in ragged(8)) {
        let r = Rows::ragged(&values, &offsets).unwrap();
        let (rv, ro) = stats::run_reduce_rows(r).unwrap();
        let reduced = Rows::ragged(&rv, &ro).unwrap();
        prop_assert_eq!(stats::run_reduce_rows(reduced).unwrap(), (rv.clone(), ro.clone()));
        let (mut a, mut b) = (vec![0f64; rows.len()], vec![0f64; rows.len()]);
        stats::hairpin_density(r, &mut a).unwrap();
        stats::hairpin_density(reduced, &mut b).unwrap();
        prop_assert!(a.iter().zip(&b).all(|(x, y)| same_f64(*x, *y)));
        prop_assert_eq!(stats::triplet_totals(r), stats::triplet_totals(reduced));
        // Only the 36 admissible triplets (a ≠ b ≠ c) and off-diagonal bigrams occur.
        let t = stats::triplet_totals(r);
        for (i, &c) in t.iter().enumerate() {
            let (x, y, z) = (i / 16, i / 4 % 4, i % 4);
            prop_assert!(c == 0 || (x != y && y != z));
        }
        let bt = stats::bigram_totals(r);
        prop_assert!((0..4).all(|a| bt[a * 5] == 0));
    }

    #[test]
    fn reverse_complement_is_an_involution((values, offsets, _rows) in ragged(8)) {
        let r = Rows::ragged(&values, &offsets).unwrap();
        let mut once = vec![0u8; values.len()];
        stats::reverse_complement(r, &mut once).unwrap();
        let mut twice = vec![0u8; values.len()];
        stats::reverse_complement(Rows::ragged(&once, &offsets).unwrap(), &mut twice).unwrap();
        prop_assert_eq!(twice, values);
    }

    #[test]
    fn key_collisions_match_the_pair_count(keys in prop::collection::vec(prop_oneof![0u64..6, any::<u64>()], 0..60)) {
        let s = stats::key_collisions(&keys);
        let (n, distinct, pairs) = ref_collisions(&keys);
        prop_assert_eq!((s.n, s.distinct, s.colliding_pairs), (n, distinct, pairs));
        let nf = n as f64;
        prop_assert_eq!(s.expected_pairs, nf * (nf - 1.0).max(0.0) / 36_893_488_147_419_103_232.0);
    }

    #[test]
    fn invalid_symbols_and_offsets_are_errors(
        (values, offsets, _rows) in ragged(6),
        bad in 4u8..=255,
        at in any::<prop::sample::Index>(),
    ) {
        if !values.is_empty() {
            let mut v = values.clone();
            let i = at.index(v.len());
            v[i] = bad;
            prop_assert!(Rows::ragged(&v, &offsets).is_err());
            prop_assert!(Rows::dense(&v, 1).is_err());
        }
        let mut o = offsets.clone();
        *o.last_mut().unwrap() += 1;
        prop_assert!(Rows::ragged(&values, &o).is_err());
    }
}

#[test]
fn admissible_sequences_match_brute_force() {
    for k in 0..=7u32 {
        let total = 4usize.pow(k);
        let admissible = (0..total)
            .filter(|&code| {
                let digits: Vec<usize> = (0..k).map(|i| code / 4usize.pow(i) % 4).collect();
                digits.windows(2).all(|w| w[0] != w[1])
            })
            .count();
        assert_eq!(stats::admissible_sequences(k).unwrap(), admissible as u128, "k = {k}");
    }
    assert!(stats::admissible_sequences(81).is_err());
}

#[test]
fn many_rows_split_across_tasks_match_row_by_row() {
    // Enough symbols for several parallel tasks, with uneven row lengths.
    let mut rng = Rng::new(7);
    let mut offsets = vec![0usize];
    let mut values = Vec::new();
    let mut rows = Vec::new();
    for i in 0..4000 {
        let len = if i % 97 == 0 { 0 } else { 1 + rng.below(150) };
        let row: Vec<u8> = (0..len)
            .map(|_| if rng.below(3) == 0 { 1 } else { rng.below(4) as u8 })
            .collect();
        values.extend_from_slice(&row);
        offsets.push(values.len());
        rows.push(row);
    }
    let r = Rows::ragged(&values, &offsets).unwrap();
    check_all(r, &rows).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let (mut a, mut b) = (vec![0f64; rows.len()], vec![0f64; rows.len()]);
    stats::complement_bigram_frequency(r, &mut a).unwrap();
    pool.install(|| stats::complement_bigram_frequency(r, &mut b)).unwrap();
    assert!(a.iter().zip(&b).all(|(x, y)| same_f64(*x, *y)));
}

#[test]
fn null_values_on_iid_symbols() {
    // On i.i.d. uniform symbols, R is a walk choosing each next symbol among the
    // 3 others: complement bigram share → 1/3, hairpin share → 1/9 (SPEC §5).
    let mut rng = Rng::new(11);
    let (rows, n) = (200, 5000);
    let symbols: Vec<u8> = (0..rows * n).map(|_| rng.below(4) as u8).collect();
    let r = Rows::dense(&symbols, n).unwrap();
    let (mut c, mut h, mut d) = (vec![0f64; rows], vec![0f64; rows], vec![0f64; rows]);
    stats::complement_bigram_frequency(r, &mut c).unwrap();
    stats::hairpin_density(r, &mut h).unwrap();
    stats::transition_density(r, &mut d).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!((mean(&c) - 1.0 / 3.0).abs() < 0.003, "{}", mean(&c));
    assert!((mean(&h) - 1.0 / 9.0).abs() < 0.002, "{}", mean(&h));
    assert!((mean(&d) - 0.75).abs() < 0.003, "{}", mean(&d));
}

#[test]
fn buffer_lengths_are_checked_not_panicked_on() {
    let s = [0u8, 1, 2, 3, 3, 2];
    let r = Rows::dense(&s, 3).unwrap();
    assert!(stats::transition_counts(r, &mut [0u64; 3]).is_err());
    assert!(stats::bigram_counts(r, &mut [0u64; 31]).is_err());
    assert!(stats::triplet_counts(r, &mut [0u64; 129]).is_err());
    assert!(stats::reverse_complement(r, &mut [0u8; 5]).is_err());
    assert!(stats::run_reduce_offsets(r, &mut [0usize; 2]).is_err());
    assert!(stats::run_reduce_into(r, &[0, 3, 6], &mut [0u8; 5]).is_err());
    assert!(Rows::dense(&s, 4).is_err());
    assert!(Rows::dense(&s, 0).is_err());
    assert_eq!(Rows::dense(&[], 0).unwrap().len(), 0);
    let empty = stats::key_collisions(&[]);
    assert_eq!(
        empty,
        KeyCollisions {
            n: 0,
            distinct: 0,
            colliding_pairs: 0,
            expected_pairs: 0.0
        }
    );
}
