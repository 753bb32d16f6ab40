//! Property tests for every algebraic law of SPEC.md (§1–§4).

mod common;

use common::{ldexp, spec_key, spec_mask, spec_pack, spec_run_reduce, spec_symbols, z4_lee};
use proptest::prelude::*;
use q2key::last_byte_mask;
use q2key::window_delta_for_depth;
use q2key::{
    code_width, complement, encode, key_and_transitions, key_from_reduced, lee, lee_counts, lee_pairwise, pack,
    prefix_mask, prefix_range, run_reduce, symbols, unpack, weighted_lee_pairwise, window_range, LeeWeights,
};

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn packed(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; code_width(s.len())];
    pack(s, s.len(), &mut out).unwrap();
    out
}

fn unpacked(code: &[u8], dim: usize) -> Vec<u8> {
    let mut out = vec![0u8; dim];
    unpack(code, dim, &mut out).unwrap();
    out
}

/// Symbol sequences, 1..max long.
fn syms(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..4, 1..max)
}

/// Symbol sequences made of runs (so run-reduction has something to do).
fn runny(max_runs: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0u8..4, 1usize..6), 1..max_runs)
        .prop_map(|runs| runs.into_iter().flat_map(|(s, n)| std::iter::repeat_n(s, n)).collect())
}

/// Two symbol sequences of the same length.
fn sym_pair(max: usize) -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (1..max).prop_flat_map(|n| (prop::collection::vec(0u8..4, n), prop::collection::vec(0u8..4, n)))
}

/// Two symbol sequences of the same length that agree on many places.
fn close_pair(max: usize) -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (sym_pair(max), prop::collection::vec(any::<bool>(), max)).prop_map(|((a, mut b), keep)| {
        for (i, bi) in b.iter_mut().enumerate() {
            if keep[i] {
                *bi = a[i];
            }
        }
        (a, b)
    })
}

/// Float vectors: Gaussian-ish values with exact zeros and a random overall scale.
fn vector(max: usize) -> impl Strategy<Value = Vec<f64>> {
    (
        prop::collection::vec(prop_oneof![4 => -3.0f64..3.0, 1 => Just(0.0)], 1..max),
        -20i32..20,
    )
        .prop_map(|(v, e)| v.into_iter().map(|x| ldexp(x, e)).collect())
}

proptest! {
    #![proptest_config(cfg(256))]

    /// §3: Hamming distance of Gray codes is the Lee distance on Z4.
    #[test]
    fn gray_isometry((a, b) in close_pair(300)) {
        let expected: u32 = a.iter().zip(&b).map(|(&x, &y)| z4_lee(x, y)).sum();
        let (ca, cb) = (packed(&a), packed(&b));
        prop_assert_eq!(lee(&ca, &cb).unwrap(), expected);
        prop_assert_eq!(common::naive_lee(&ca, &cb), expected);
        prop_assert!(expected <= 2 * a.len() as u32);
    }

    /// §2: pack is the SPEC byte layout, and unpack inverts it.
    #[test]
    fn pack_unpack_roundtrip(s in syms(300)) {
        let code = packed(&s);
        prop_assert_eq!(&code, &spec_pack(&s));
        prop_assert_eq!(code.len(), s.len().div_ceil(4));
        prop_assert_eq!(code.last().unwrap() & !last_byte_mask(s.len()), 0);
        prop_assert_eq!(unpacked(&code, s.len()), s);
    }

    /// §2: every code with zero padding is the packing of its unpacking; many rows at once.
    #[test]
    fn unpack_pack_roundtrip(dim in 1usize..70, rows in 0usize..5, seed in any::<u64>()) {
        let width = code_width(dim);
        let mut rng = common::Rng::new(seed);
        let mut codes = rng.bytes(rows * width);
        for r in 0..rows {
            codes[(r + 1) * width - 1] &= last_byte_mask(dim);
        }
        let mut s = vec![9u8; rows * dim];
        unpack(&codes, dim, &mut s).unwrap();
        prop_assert!(s.iter().all(|&x| x < 4));
        let mut back = vec![0xEEu8; rows * width];
        pack(&s, dim, &mut back).unwrap();
        prop_assert_eq!(back, codes);
    }

    /// §4: run-reduction is idempotent, adjacent elements differ, and it keeps
    /// the first symbol and the order of changes.
    #[test]
    fn run_reduction_laws(s in runny(80)) {
        let r = run_reduce(&s);
        prop_assert_eq!(&r, &spec_run_reduce(&s));
        prop_assert_eq!(run_reduce(&r), r.clone());
        prop_assert!(r.windows(2).all(|w| w[0] != w[1]));
        prop_assert_eq!(r[0], s[0]);
        prop_assert_eq!(r.len(), 1 + s.windows(2).filter(|w| w[0] != w[1]).count());
    }

    /// §4: key = first 32 elements of R as base-4 digits; |R| beside it.
    #[test]
    fn key_is_the_reduced_prefix_in_base_4(s in prop_oneof![runny(80), syms(200)]) {
        let r = run_reduce(&s);
        let code = packed(&s);
        let (key, n) = key_and_transitions(&code, s.len());
        prop_assert_eq!(key, key_from_reduced(&r));
        prop_assert_eq!(key, spec_key(&r));
        prop_assert_eq!(n as usize, r.len());
        prop_assert_eq!(q2key::key_and_transitions_of_symbols(&s), (key, n));
        // Digit i sits in bits 63−2i..62−2i; unused low digits are zero.
        for i in 0..32 {
            let digit = ((key >> (62 - 2 * i)) & 3) as u8;
            prop_assert_eq!(digit, r.get(i).copied().unwrap_or(0), "digit {}", i);
        }
    }

    /// §4 prefix semantics: for j ≤ min(32, |R|, |S|), the keys share their
    /// top 2j bits iff R and S agree on their first j places.
    #[test]
    fn key_prefix_law(prefix in runny(40), a in runny(20), b in runny(20)) {
        let s: Vec<u8> = prefix.iter().chain(&a).copied().collect();
        let t: Vec<u8> = prefix.iter().chain(&b).copied().collect();
        let (r, q) = (run_reduce(&s), run_reduce(&t));
        let (ks, _) = key_and_transitions(&packed(&s), s.len());
        let (kt, _) = key_and_transitions(&packed(&t), t.len());
        let jmax = r.len().min(q.len()).min(32) as u32;
        for j in 0..=jmax {
            let share = (ks ^ kt) & spec_mask(j) == 0;
            let agree = r[..j as usize] == q[..j as usize];
            prop_assert_eq!(share, agree, "j = {}", j);
            prop_assert_eq!(share, j == 0 || ks >> (64 - 2 * j) == kt >> (64 - 2 * j));
        }
        // Past the shorter sequence the law does not apply: keys are zero-padded.
        if r.len() < 32 && r.len() < q.len() && q[r.len()] == 0 && r[..] == q[..r.len()] {
            prop_assert_eq!(ks & spec_mask(r.len() as u32 + 1), kt & spec_mask(r.len() as u32 + 1));
        }
    }

    /// §4: prefix_range(K, j) = [K & m, K | !m] holds exactly the keys with K's top 2j bits.
    #[test]
    fn prefix_range_contains_exactly_the_prefix(key in any::<u64>(), others in prop::collection::vec(any::<u64>(), 16), tails in prop::collection::vec(any::<u64>(), 16)) {
        for j in 0..=32u32 {
            let m = spec_mask(j);
            prop_assert_eq!(prefix_mask(j), m);
            let (lo, hi) = prefix_range(key, j);
            prop_assert_eq!((lo, hi), (key & m, key | !m));
            let mut candidates = others.clone();
            // Keys that share the prefix (random tails) and its neighbours.
            candidates.extend(tails.iter().map(|t| (key & m) | (t & !m)));
            candidates.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1), key, 0, u64::MAX]);
            for y in candidates {
                prop_assert_eq!((lo..=hi).contains(&y), (y & m) == (key & m), "j {} y {:#x}", j, y);
            }
            // The window of half-width 4^(32−j) − 1 covers the prefix range.
            let delta = window_delta_for_depth(j);
            prop_assert_eq!(u128::from(delta), 4u128.pow(32 - j) - 1);
            let (wlo, whi) = window_range(key, delta);
            prop_assert!(wlo <= lo && hi <= whi);
            prop_assert_eq!(wlo, key.saturating_sub(delta));
            prop_assert_eq!(whi, key.saturating_add(delta));
        }
        prop_assert_eq!(prefix_mask(33), u64::MAX);
    }

    /// §3: complement θ(s) = s + 2 mod 4 is bitwise NOT of the used bits.
    #[test]
    fn complement_laws(s in syms(300)) {
        let dim = s.len();
        let code = packed(&s);
        let mut c = vec![0u8; code.len()];
        complement(&code, dim, &mut c).unwrap();
        prop_assert_eq!(lee(&code, &c).unwrap(), 2 * dim as u32);
        prop_assert_eq!(c.last().unwrap() & !last_byte_mask(dim), 0, "padding stays zero");
        prop_assert_ne!(&c, &code);
        let theta: Vec<u8> = s.iter().map(|&x| (x + 2) % 4).collect();
        prop_assert_eq!(unpacked(&c, dim), theta);
        let mut cc = vec![0u8; code.len()];
        complement(&c, dim, &mut cc).unwrap();
        prop_assert_eq!(&cc, &code);
        let counts = lee_counts(&code, &c).unwrap();
        prop_assert_eq!((counts.magnitude, counts.sign, counts.both), (0, 0, dim as u32));
    }

    /// §3: weighted Lee counts per property; (1, 1, 2) is plain Lee.
    #[test]
    fn weighted_lee_laws((a, b) in close_pair(200), w in (0.0f64..5.0, 0.0f64..5.0, 0.0f64..5.0)) {
        let (ca, cb) = (packed(&a), packed(&b));
        let (mut mag, mut sign, mut both) = (0u32, 0u32, 0u32);
        for (&x, &y) in a.iter().zip(&b) {
            let (lo, hi) = (x.min(y), x.max(y));
            match (lo, hi) {
                _ if lo == hi => {}
                (0, 1) | (2, 3) => mag += 1,  // A↔B, C↔D: magnitude class only
                (1, 2) | (0, 3) => sign += 1, // B↔C, A↔D: sign only
                _ => both += 1,               // A↔C, B↔D: complement
            }
        }
        let c = lee_counts(&ca, &cb).unwrap();
        prop_assert_eq!((c.magnitude, c.sign, c.both), (mag, sign, both));
        prop_assert_eq!(c.lee(), lee(&ca, &cb).unwrap());
        prop_assert_eq!(c.magnitude + c.sign + 2 * c.both, lee(&ca, &cb).unwrap());
        prop_assert_eq!(LeeWeights::PLAIN.apply(c), f64::from(c.lee()));
        prop_assert_eq!(LeeWeights::new(1.0, 1.0, 2.0).unwrap(), LeeWeights::PLAIN);

        // Row-wise: three rows (a/b, b/a, a/a).
        let width = ca.len();
        let rows_a: Vec<u8> = [&ca[..], &cb[..], &ca[..]].concat();
        let rows_b: Vec<u8> = [&cb[..], &ca[..], &ca[..]].concat();
        let mut plain = [0u32; 3];
        lee_pairwise(&rows_a, &rows_b, width, &mut plain).unwrap();
        let mut weighted = [0f64; 3];
        weighted_lee_pairwise(&rows_a, &rows_b, width, LeeWeights::PLAIN, &mut weighted).unwrap();
        prop_assert_eq!(weighted, plain.map(f64::from));
        prop_assert_eq!(plain, [c.lee(), c.lee(), 0]);

        let weights = LeeWeights::new(w.0, w.1, w.2).unwrap();
        weighted_lee_pairwise(&rows_a, &rows_b, width, weights, &mut weighted).unwrap();
        let expected = w.0 * f64::from(mag) + w.1 * f64::from(sign) + w.2 * f64::from(both);
        prop_assert!((weighted[0] - expected).abs() <= 1e-9 * expected.max(1.0));
        prop_assert_eq!(weighted[0], weighted[1]);
        prop_assert_eq!(weighted[2], 0.0);
    }

    /// §1: symbols() equals unpack(encode's codes), and the SPEC table away from boundaries.
    #[test]
    fn symbols_match_unpacked_codes_and_the_spec_table(dim in 1usize..150, rows in 1usize..4, seed in any::<u64>(), tau in prop_oneof![Just(None), (0.0f64..0.5).prop_map(Some)]) {
        let mut rng = common::Rng::new(seed);
        let x: Vec<f64> = (0..rows * dim)
            .map(|i| if (i * 7 + seed as usize).is_multiple_of(5) { 0.0 } else { f64::from(rng.gaussian() as f32) })
            .collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        // Values within float rounding of ±τ may be decided either way (the
        // f32 path rounds the cut to f32): keep away from them.
        let t = tau.unwrap_or(0.6745 / (dim as f64).sqrt());
        let expected: Vec<Vec<u8>> = x.chunks_exact(dim).filter_map(|row| spec_symbols(row, t, 1e-6)).collect();
        prop_assume!(expected.len() == rows);
        let width = code_width(dim);
        let (mut codes, mut keys, mut ntrans) = (vec![0u8; rows * width], vec![0u64; rows], vec![0u32; rows]);
        encode(&xf, dim, tau, &mut codes, &mut keys, &mut ntrans).unwrap();
        let mut s32 = vec![0u8; rows * dim];
        symbols(&xf, dim, tau, &mut s32).unwrap();
        let mut s64 = vec![0u8; rows * dim];
        symbols(&x, dim, tau, &mut s64).unwrap();
        prop_assert_eq!(&s32, &s64);
        let mut from_codes = vec![0u8; rows * dim];
        unpack(&codes, dim, &mut from_codes).unwrap();
        prop_assert_eq!(&s32, &from_codes);
        for r in 0..rows {
            let srow = &s32[r * dim..(r + 1) * dim];
            let red = spec_run_reduce(srow);
            prop_assert_eq!((keys[r], ntrans[r] as usize), (spec_key(&red), red.len()), "row {}", r);
            prop_assert_eq!(srow, &expected[r][..], "row {}", r);
        }
    }

    /// §1: encode(2^k · x) == encode(x) for every k keeping all coordinates normal f32.
    #[test]
    fn scale_invariance_powers_of_two_f32(x in vector(40)) {
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let reference = encode_one(&xf);
        let (kmin, kmax) = normal_scale_range(&xf.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), f64::from(f32::MIN_POSITIVE), f64::from(f32::MAX));
        for k in kmin..=kmax {
            let y: Vec<f32> = xf.iter().map(|&v| ldexp(f64::from(v), k) as f32).collect();
            prop_assert_eq!(encode_one(&y), reference.clone(), "f32 scale 2^{}", k);
        }
    }

    /// Arbitrary positive scale factors, away from the threshold boundary.
    #[test]
    fn scale_invariance_arbitrary_factor(x in vector(60), c in prop_oneof![1e-3f64..1e3, (-60.0f64..60.0).prop_map(f64::exp2)]) {
        let dim = x.len();
        let tau = 0.6745 / (dim as f64).sqrt();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let x: Vec<f64> = xf.iter().map(|&v| f64::from(v)).collect();
        // Skip inputs with a coordinate within relative 1e-3 of the ±τ boundary.
        prop_assume!(spec_symbols(&x, tau, 1e-3).is_some());
        let y: Vec<f32> = xf.iter().map(|&v| (f64::from(v) * c) as f32).collect();
        prop_assume!(y.iter().zip(&xf).all(|(&b, &a)| (a == 0.0) == (b == 0.0) && (b == 0.0 || b.is_normal())));
        prop_assert_eq!(encode_one(&y), encode_one(&xf));
        let y64: Vec<f64> = x.iter().map(|&v| v * c).collect();
        prop_assert_eq!(encode_one(&y64), encode_one(&x));
    }
}

proptest! {
    #![proptest_config(cfg(64))]

    /// §1: encode(2^k · x) == encode(x) for every k keeping all coordinates normal f64
    /// (this crosses the norm's overflow and underflow rescue paths).
    #[test]
    fn scale_invariance_powers_of_two_f64(x in vector(24)) {
        let reference = encode_one(&x);
        let (kmin, kmax) = normal_scale_range(&x, f64::MIN_POSITIVE, f64::MAX);
        for k in kmin..=kmax {
            let y: Vec<f64> = x.iter().map(|&v| ldexp(v, k)).collect();
            prop_assert_eq!(encode_one(&y), reference.clone(), "f64 scale 2^{}", k);
        }
    }
}

/// SPEC §1 with an explicit threshold: scale invariance must also hold for a
/// coordinate exactly on the cut, when `2^k·x` takes the f64 norm's rescue
/// path (Σx² overflows or underflows): both paths must sum the squares in the
/// same lane order, or the two cuts differ in the last bit.
#[test]
fn scale_invariance_f64_on_the_cut_across_the_rescue_path() {
    let x = [1.0f64, 0.1, 0.3, 0.7];
    let tau = f64::from_bits(0x3fe9_60ad_b816_696e); // 0.7930515857181442: x[0] sits on the cut
    let sym = |x: &[f64]| {
        let mut out = [9u8; 4];
        symbols(x, 4, Some(tau), &mut out).unwrap();
        out
    };
    let reference = sym(&x);
    for k in [-600, -1, 1, 600] {
        let y: Vec<f64> = x.iter().map(|&v| ldexp(v, k)).collect();
        assert_eq!(sym(&y), reference, "scale 2^{k}");
    }
}

/// The range of k for which every nonzero |x_i|·2^k lies in [min_normal, max].
fn normal_scale_range(x: &[f64], min_normal: f64, max: f64) -> (i32, i32) {
    let nonzero: Vec<f64> = x.iter().map(|v| v.abs()).filter(|&v| v > 0.0).collect();
    if nonzero.is_empty() {
        return (-40, 40);
    }
    let small = nonzero.iter().copied().fold(f64::INFINITY, f64::min);
    let large = nonzero.iter().copied().fold(0.0, f64::max);
    let mut kmin = (min_normal.log2() - small.log2()).floor() as i32 - 2;
    while ldexp(small, kmin) < min_normal {
        kmin += 1;
    }
    let mut kmax = (max.log2() - large.log2()).ceil() as i32 + 2;
    while ldexp(large, kmax) > max {
        kmax -= 1;
    }
    (kmin, kmax)
}

/// (code, key, transition count) of one vector through the public `encode`.
fn encode_one<T: q2key::EncodeElement>(x: &[T]) -> (Vec<u8>, u64, u32) {
    let dim = x.len();
    let (mut code, mut key, mut n) = (vec![0u8; code_width(dim)], [0u64], [0u32]);
    encode(x, dim, None, &mut code, &mut key, &mut n).unwrap();
    (code, key[0], n[0])
}

/// §4 counting: there are 4·3^(k−1) run-reduced sequences of length k, and the
/// key with the length tells them apart (exhaustive over all 4^8 sequences of 8 symbols).
#[test]
fn admissible_sequences_are_counted_and_keyed_injectively() {
    const N: usize = 8;
    let mut seen = vec![std::collections::HashSet::new(); N + 1];
    for code in 0u32..(1 << (2 * N)) {
        let s: Vec<u8> = (0..N).map(|i| ((code >> (2 * i)) & 3) as u8).collect();
        let (key, n) = key_and_transitions(&packed(&s), N);
        let r = run_reduce(&s);
        assert_eq!(n as usize, r.len());
        seen[r.len()].insert((key, r));
    }
    for (k, set) in seen.iter().enumerate().skip(1) {
        assert_eq!(set.len(), 4 * 3usize.pow(k as u32 - 1), "sequences of length {k}");
        let keys: std::collections::HashSet<u64> = set.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys.len(), set.len(), "keys of reduced sequences of length {k} collide");
    }
}

/// §4: the key alone cannot tell R = (B) from R = (B, A); |R| can.
#[test]
fn key_and_count_of_short_sequences() {
    assert_eq!(key_and_transitions(&packed(&[1, 1, 1]), 3), (1 << 62, 1));
    assert_eq!(key_and_transitions(&packed(&[1, 1, 0]), 3), (1 << 62, 2));
    // Long sequences: only the first 32 elements of R enter the key.
    let s: Vec<u8> = (0..100).map(|i| [0u8, 1, 2, 3, 2][i % 5]).collect();
    let r = run_reduce(&s);
    assert_eq!(r.len(), 100);
    assert_eq!(key_and_transitions(&packed(&s), 100), (spec_key(&r), 100));
}

/// §1: an all-zero vector (either sign of zero) encodes to all B.
#[test]
fn all_zero_vectors_encode_to_all_b() {
    for dim in 1..=70usize {
        for z in [0.0f32, -0.0] {
            let (code, key, n) = encode_one(&vec![z; dim]);
            assert_eq!(unpacked(&code, dim), vec![1u8; dim], "dim {dim}");
            assert_eq!((key, n), (1 << 62, 1), "dim {dim}");
            assert_eq!(encode_one(&vec![f64::from(z); dim]), (code, key, n), "dim {dim}");
        }
    }
}

/// §1: NaN or ±Inf is an error that names the offending row.
#[test]
fn non_finite_inputs_are_errors_naming_the_row() {
    let dim = 5;
    let mut x = vec![0.5f32; 4 * dim];
    x[2 * dim + 3] = f32::NAN;
    let (mut codes, mut keys, mut n) = (vec![0u8; 4 * code_width(dim)], vec![0u64; 4], vec![0u32; 4]);
    let err = encode(&x, dim, None, &mut codes, &mut keys, &mut n).unwrap_err();
    match err {
        q2key::Error::NonFinite { row, col, .. } => assert_eq!((row, col), (2, 3)),
        other => panic!("expected NonFinite, got {other:?}"),
    }
    let x64: Vec<f64> = x
        .iter()
        .map(|&v| if v.is_nan() { f64::NEG_INFINITY } else { f64::from(v) })
        .collect();
    let err = encode(&x64, dim, None, &mut codes, &mut keys, &mut n).unwrap_err();
    assert!(err.to_string().contains("row 2"), "{err}");
}

/// §1: the default threshold is 0.6745/√n; the boundaries belong to the lower cell.
#[test]
fn default_threshold_and_boundary_cells() {
    for dim in [1usize, 4, 100, 1024] {
        assert_eq!(q2key::gaussian_threshold(dim).unwrap(), 0.6745 / (dim as f64).sqrt());
    }
    assert!(q2key::gaussian_threshold(0).is_err());
    // With τ = 1 a one-hot vector's coordinate is exactly on ±τ: C for +, A for −.
    for (v, sym) in [(2.0f32, 2u8), (-2.0, 0)] {
        let x = [0.0f32, v, 0.0];
        let mut out = [9u8; 3];
        symbols(&x, 3, Some(1.0), &mut out).unwrap();
        assert_eq!(out, [1, sym, 1]);
    }
    // With τ = 0 the first rule of the table, A: v ≤ −τ, takes both zeros
    // (only the all-zero vector is all B).
    let mut out = [9u8; 4];
    symbols(&[0.0f64, -0.0, 1.0, -1.0], 4, Some(0.0), &mut out).unwrap();
    assert_eq!(out, [0, 0, 3, 0]);
    symbols(&[0.0f64, -0.0, 0.0, 0.0], 4, Some(0.0), &mut out).unwrap();
    assert_eq!(out, [1, 1, 1, 1]);
    // Invalid thresholds are errors.
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        let mut out = [0u8; 4];
        assert!(
            symbols(&[1.0f32, 2.0, 3.0, 4.0], 4, Some(bad), &mut out).is_err(),
            "threshold {bad}"
        );
    }
}

/// §3: weights must be finite and non-negative.
#[test]
fn lee_weights_are_validated() {
    assert!(LeeWeights::new(0.0, 0.0, 0.0).is_ok());
    for (m, s, b) in [(-1.0, 1.0, 2.0), (1.0, f64::NAN, 2.0), (1.0, 1.0, f64::INFINITY)] {
        assert!(LeeWeights::new(m, s, b).is_err(), "weights ({m}, {s}, {b})");
    }
}

/// §1: with rows spread over parallel tasks, the error names the first bad row.
#[test]
fn non_finite_error_names_the_first_bad_row_of_a_large_matrix() {
    let (dim, rows) = (4usize, 60_000usize);
    let mut x = vec![0.25f32; rows * dim];
    for (r, c) in [(50_000usize, 1usize), (33_000, 2), (20_001, 0), (59_999, 3)] {
        x[r * dim + c] = f32::INFINITY;
    }
    let (mut codes, mut keys, mut n) = (vec![0u8; rows * code_width(dim)], vec![0u64; rows], vec![0u32; rows]);
    for threads in [Some(1), Some(2), None] {
        let err = q2key::parallel::install(threads, || encode(&x, dim, None, &mut codes, &mut keys, &mut n))
            .unwrap()
            .unwrap_err();
        match err {
            q2key::Error::NonFinite { row, col, .. } => assert_eq!((row, col), (20_001, 0), "threads {threads:?}"),
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }
}
