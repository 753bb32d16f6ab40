//! Every kernel variant this CPU runs must equal the scalar reference bit for bit.

mod common;

use common::{naive_lee, row, Rng, KINDS};
use proptest::prelude::{any, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig, Strategy};
use q2key::{code_width, gaussian_threshold, Backend, Kernels};
use q2key::{code_words, transpose_block, words_per_code};

fn scalar() -> &'static Kernels {
    Kernels::for_backend(Backend::Scalar).expect("the scalar backend always runs")
}

/// The non-scalar variants this CPU runs (possibly none).
fn simd() -> Vec<&'static Kernels> {
    Backend::supported()
        .into_iter()
        .filter(|b| *b != Backend::Scalar)
        .map(|b| Kernels::for_backend(b).expect("a supported backend has kernels"))
        .collect()
}

fn all() -> Vec<&'static Kernels> {
    let mut v = vec![scalar()];
    v.extend(simd());
    v
}

#[test]
fn backend_table_is_consistent() {
    let supported = Backend::supported();
    eprintln!("supported backends: {supported:?}; active: {}", q2key::simd_backend());
    assert_eq!(supported.first(), Some(&Backend::Scalar));
    for b in [Backend::Scalar, Backend::Avx2, Backend::Avx512] {
        assert_eq!(Backend::from_name(b.name()), Some(b));
        match Kernels::for_backend(b) {
            Some(k) => {
                assert!(supported.contains(&b));
                assert_eq!(k.backend, b);
            }
            None => assert!(!supported.contains(&b), "{b:?} is supported but has no kernels"),
        }
    }
    assert_eq!(Backend::from_name("avx512"), Some(Backend::Avx512));
    assert_eq!(Backend::from_name("neon"), None);
    assert!(supported.contains(&Backend::best()));
    assert!(supported.contains(&Kernels::active().backend));
    assert_eq!(q2key::simd_backend(), Kernels::active().backend.name());
}

/// lee_pair: the full cross product of every code length 0..=2048 bytes and
/// every start offset 0..63 (both operands unaligned, by different amounts).
#[test]
fn lee_pair_every_length_and_every_offset() {
    const MAX: usize = 2048;
    let mut rng = Rng::new(1);
    let a_buf = rng.bytes(MAX + 64);
    let b_buf = rng.bytes(MAX + 64);
    let simd = simd();
    let scalar = scalar();
    for len in 0..=MAX {
        for off in 0..64 {
            let b_off = (off * 37 + len) % 64;
            let a = &a_buf[off..off + len];
            let b = &b_buf[b_off..b_off + len];
            let expected = scalar.lee_pair(a, b);
            if off == len % 64 {
                // The reference itself, against a bit-by-bit count (once per length).
                assert_eq!(expected, naive_lee(a, b), "scalar lee_pair, len {len} offset {off}");
            }
            for k in &simd {
                let got = k.lee_pair(a, b);
                if got != expected {
                    panic!(
                        "{:?} lee_pair len {len} offsets {off}/{b_off}: {got} != scalar {expected}",
                        k.backend
                    );
                }
            }
        }
    }
}

#[test]
fn lee_pair_extremes() {
    let mut rng = Rng::new(2);
    let buf = rng.bytes(2048 + 64);
    for k in all() {
        for len in (0..=2048).step_by(7).chain([63, 64, 65, 127, 128, 129, 2047, 2048]) {
            let ones = vec![0xFFu8; len];
            let zeros = vec![0u8; len];
            assert_eq!(k.lee_pair(&ones, &zeros), 8 * len as u32, "{:?} len {len}", k.backend);
            assert_eq!(k.lee_pair(&zeros, &ones), 8 * len as u32, "{:?} len {len}", k.backend);
            assert_eq!(k.lee_pair(&ones, &ones), 0, "{:?} len {len}", k.backend);
            // The same bytes at two different alignments are at distance 0.
            let (o1, o2) = (len % 64, (len * 5 + 3) % 64);
            let copy = buf[o1..o1 + len].to_vec();
            let mut shifted = vec![0u8; len + 64];
            shifted[o2..o2 + len].copy_from_slice(&copy);
            assert_eq!(
                k.lee_pair(&buf[o1..o1 + len], &shifted[o2..o2 + len]),
                0,
                "{:?} len {len}",
                k.backend
            );
        }
    }
}

#[test]
fn lee_rows_matches_scalar_and_brute_force() {
    let mut rng = Rng::new(3);
    let simd = simd();
    let scalar = scalar();
    for width in 1..=300usize {
        for &n in &[0usize, 1, 3, 8, 13, 31] {
            let q_off = rng.below(64);
            let r_off = rng.below(64);
            let q_buf = rng.bytes(width + 64);
            // One extra row past `out.len()`: it must be ignored.
            let r_buf = rng.bytes((n + 1) * width + 64);
            let query = &q_buf[q_off..q_off + width];
            let rows = &r_buf[r_off..r_off + (n + 1) * width];
            let brute: Vec<u32> = rows.chunks_exact(width).take(n).map(|r| naive_lee(query, r)).collect();
            let mut expected = vec![u32::MAX; n];
            scalar.lee_rows(query, rows, &mut expected);
            assert_eq!(expected, brute, "scalar lee_rows width {width} rows {n}");
            for k in &simd {
                let mut got = vec![u32::MAX; n];
                k.lee_rows(query, rows, &mut got);
                assert_eq!(got, expected, "{:?} lee_rows width {width} rows {n}", k.backend);
                // Exactly n rows' worth of input also works.
                let mut exact = vec![u32::MAX; n];
                k.lee_rows(query, &rows[..n * width], &mut exact);
                assert_eq!(
                    exact, expected,
                    "{:?} lee_rows width {width} rows {n} (exact)",
                    k.backend
                );
            }
        }
    }
}

#[test]
fn code_words_and_transpose_block_layout() {
    let mut rng = Rng::new(4);
    for width in 1..=40usize {
        let words = words_per_code(width);
        assert_eq!(words, width.div_ceil(8));
        for n in [0usize, 1, 7, 8, 9, 17] {
            let rows = rng.bytes(n * width);
            let mut t = vec![7u64; 3];
            transpose_block(&rows, width, &mut t);
            let groups = n.div_ceil(8);
            assert_eq!(t.len(), groups * words * 8, "width {width} rows {n}");
            for g in 0..groups {
                for r in 0..8 {
                    let i = 8 * g + r;
                    let mut expect = vec![0u64; words];
                    if i < n {
                        let code = &rows[i * width..(i + 1) * width];
                        for (b, &byte) in code.iter().enumerate() {
                            expect[b / 8] |= u64::from(byte) << (8 * (b % 8));
                        }
                        let mut cw = vec![u64::MAX; words];
                        code_words(code, &mut cw);
                        assert_eq!(cw, expect, "code_words width {width}");
                    }
                    for (w, &e) in expect.iter().enumerate() {
                        assert_eq!(
                            t[(g * words + w) * 8 + r],
                            e,
                            "width {width} rows {n} group {g} row {r} word {w}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn lee_tile_matches_scalar_and_brute_force() {
    let mut rng = Rng::new(5);
    let simd = simd();
    let scalar = scalar();
    let mut block = Vec::new();
    for width in 1..=300usize {
        let words = words_per_code(width);
        for &nq in &[1usize, 2, 3, 4, 5, 8, 9] {
            // Row counts cycle through multiples and non-multiples of 8.
            let n = [1usize, 7, 8, 13, 17, 24][(width + nq) % 6];
            let queries = rng.bytes(nq * width);
            let db = rng.bytes(n * width);
            let mut qwords = vec![0u64; nq * words];
            for (q, w) in queries.chunks_exact(width).zip(qwords.chunks_exact_mut(words)) {
                code_words(q, w);
            }
            transpose_block(&db, width, &mut block);
            let padded = n.div_ceil(8) * 8;
            let mut expected = vec![u32::MAX; nq * padded];
            scalar.lee_tile(&qwords, words, &block, &mut expected);
            for (q, query) in queries.chunks_exact(width).enumerate() {
                for r in 0..padded {
                    let brute = if r < n {
                        naive_lee(query, &db[r * width..(r + 1) * width])
                    } else {
                        // Missing rows of the last group are zero codes.
                        query.iter().map(|b| b.count_ones()).sum()
                    };
                    assert_eq!(
                        expected[q * padded + r],
                        brute,
                        "scalar lee_tile width {width} query {q} row {r}"
                    );
                }
            }
            for k in &simd {
                let mut got = vec![u32::MAX; nq * padded];
                k.lee_tile(&qwords, words, &block, &mut got);
                assert_eq!(
                    got, expected,
                    "{:?} lee_tile width {width} queries {nq} rows {n}",
                    k.backend
                );
            }
        }
    }
}

/// lee_tile_hits: the hit masks equal the scalar ones (bit r of group g set
/// iff row 8g + r is below the query's bound), and every flagged row's
/// distance equals the scalar one (unflagged groups may be left unwritten).
#[test]
fn lee_tile_hits_matches_scalar() {
    let mut rng = Rng::new(15);
    let simd = simd();
    let scalar = scalar();
    let mut block = Vec::new();
    for width in 1..=300usize {
        let words = words_per_code(width);
        for &nq in &[1usize, 2, 3, 4, 5, 8] {
            let n = [1usize, 7, 8, 13, 17, 24, 40][(width * 3 + nq) % 7];
            let queries = rng.bytes(nq * width);
            let db = rng.bytes(n * width);
            let mut qwords = vec![0u64; nq * words];
            for (q, w) in queries.chunks_exact(width).zip(qwords.chunks_exact_mut(words)) {
                code_words(q, w);
            }
            transpose_block(&db, width, &mut block);
            let groups = n.div_ceil(8);
            let max = 8 * width as u32;
            for round in 0..3 {
                let bounds: Vec<u32> = (0..nq)
                    .map(|q| match (round + q) % 4 {
                        0 => u32::MAX,
                        1 => 0,
                        2 => 4 * width as u32,
                        _ => rng.below(max as usize + 2) as u32,
                    })
                    .collect();
                let mut full = vec![u32::MAX; nq * groups * 8];
                scalar.lee_tile(&qwords, words, &block, &mut full);
                let (mut d0, mut h0) = (vec![u32::MAX; nq * groups * 8], vec![0xEEu8; nq * groups]);
                scalar.lee_tile_hits(&qwords, words, &block, &bounds, &mut d0, &mut h0);
                for q in 0..nq {
                    for g in 0..groups {
                        let expect = (0..8).fold(0u8, |m, r| {
                            m | (u8::from(full[(q * groups + g) * 8 + r] < bounds[q]) << r)
                        });
                        assert_eq!(
                            h0[q * groups + g],
                            expect,
                            "scalar hits width {width} query {q} group {g}"
                        );
                    }
                }
                for k in &simd {
                    let (mut d, mut h) = (vec![u32::MAX; nq * groups * 8], vec![0xEEu8; nq * groups]);
                    k.lee_tile_hits(&qwords, words, &block, &bounds, &mut d, &mut h);
                    assert_eq!(
                        h, h0,
                        "{:?} hits width {width} queries {nq} rows {n} bounds {bounds:?}",
                        k.backend
                    );
                    for (i, &dist) in d.iter().enumerate() {
                        let (q, g, r) = (i / (groups * 8), (i / 8) % groups, i % 8);
                        if h0[q * groups + g] >> r & 1 == 1 {
                            assert_eq!(
                                dist,
                                full[i],
                                "{:?} tile_hits distance width {width} query {q} row {}",
                                k.backend,
                                8 * g + r
                            );
                        }
                    }
                }
            }
        }
    }
}

fn check_encode_f32(k: &Kernels, x: &[f32], tau: f64, what: &str) {
    let width = code_width(x.len());
    let mut expected = vec![0xAAu8; width];
    let r_expected = scalar().encode_f32(x, tau, &mut expected);
    let mut got = vec![0x55u8; width];
    let r_got = k.encode_f32(x, tau, &mut got);
    assert_eq!(r_got, r_expected, "{:?} encode_f32 {what}: result", k.backend);
    if r_expected.is_ok() {
        assert_eq!(got, expected, "{:?} encode_f32 {what}: code", k.backend);
    }
}

fn check_encode_f64(k: &Kernels, x: &[f64], tau: f64, what: &str) {
    let width = code_width(x.len());
    let mut expected = vec![0xAAu8; width];
    let r_expected = scalar().encode_f64(x, tau, &mut expected);
    let mut got = vec![0x55u8; width];
    let r_got = k.encode_f64(x, tau, &mut got);
    assert_eq!(r_got, r_expected, "{:?} encode_f64 {what}: result", k.backend);
    if r_expected.is_ok() {
        assert_eq!(got, expected, "{:?} encode_f64 {what}: code", k.backend);
    }
}

#[test]
fn scalar_encode_writes_every_byte_and_zero_padding() {
    let mut rng = Rng::new(6);
    for dim in 1..=600usize {
        let x = row(&mut rng, dim % KINDS, dim);
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let tau = gaussian_threshold(dim).unwrap();
        let (mut a, mut b) = (vec![0u8; code_width(dim)], vec![0xFFu8; code_width(dim)]);
        let ra = scalar().encode_f32(&xf, tau, &mut a).unwrap();
        let rb = scalar().encode_f32(&xf, tau, &mut b).unwrap();
        assert_eq!(
            (ra, &a),
            (rb, &b),
            "dim {dim}: output depends on the buffer's old contents"
        );
        assert_eq!(a.last().unwrap() & !q2key::last_byte_mask(dim), 0, "dim {dim}: padding");
        let mut c = vec![0u8; code_width(dim)];
        let rc = scalar().encode_f64(&x, tau, &mut c).unwrap();
        assert_eq!((rc, &c), (ra, &a), "dim {dim}: f64 of f32 data differs from f32");
    }
}

#[test]
fn encode_kernels_match_scalar() {
    let simd = simd();
    if simd.is_empty() {
        eprintln!("only the scalar backend runs here: nothing to compare");
    }
    let mut rng = Rng::new(7);
    for dim in 1..=600usize {
        let taus = [gaussian_threshold(dim).unwrap(), 0.0, 1.0, rng.unit() * 0.3, 2.0];
        for kind in 0..KINDS {
            let x = row(&mut rng, kind, dim);
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            // f64 rows far outside the f32 range take the norm's rescue path.
            let big: Vec<f64> = x.iter().map(|&v| v * 2f64.powi(700)).collect();
            let small: Vec<f64> = x.iter().map(|&v| v * 2f64.powi(-700)).collect();
            for (t, &tau) in taus.iter().enumerate() {
                // Keep the run time down: every tau for a few dims, the default otherwise.
                if t > 0 && dim % 7 != kind % 7 && dim > 70 {
                    continue;
                }
                let what = format!("dim {dim} kind {kind} tau {tau}");
                for k in &simd {
                    check_encode_f32(k, &xf, tau, &what);
                    check_encode_f64(k, &x, tau, &what);
                    if t == 0 {
                        check_encode_f64(k, &big, tau, &format!("{what} ×2^700"));
                        check_encode_f64(k, &small, tau, &format!("{what} ×2^-700"));
                    }
                }
            }
        }
    }
}

/// Coordinates exactly on a boundary: a one-hot vector with τ = 1 puts its
/// nonzero coordinate exactly on ±t, and τ = 0 puts zeros on the 0/±t cut.
#[test]
fn encode_kernels_agree_on_exact_boundaries() {
    for dim in 1..=100usize {
        for at in [0, dim / 2, dim - 1] {
            for v in [1.0f64, -1.0, 3.0e-20, -7.5e30] {
                let mut x = vec![0.0f64; dim];
                x[at] = v;
                let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let mut code = vec![0u8; code_width(dim)];
                scalar().encode_f64(&x, 1.0, &mut code).unwrap();
                let mut sym = vec![0u8; dim];
                q2key::unpack(&code, dim, &mut sym).unwrap();
                let mut expect = vec![1u8; dim];
                expect[at] = if v > 0.0 { 2 } else { 0 }; // C: 0 < v ≤ τ; A: v ≤ −τ
                assert_eq!(sym, expect, "scalar one-hot dim {dim} at {at} value {v}");
                for k in all() {
                    for tau in [1.0, 0.0, 0.999_999_9, 1.000_000_1] {
                        let what = format!("one-hot dim {dim} at {at} value {v} tau {tau}");
                        check_encode_f32(k, &xf, tau, &what);
                        check_encode_f64(k, &x, tau, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn encode_kernels_report_the_first_non_finite_column() {
    let mut rng = Rng::new(8);
    for dim in 1..=70usize {
        let x: Vec<f64> = (0..dim).map(|_| rng.gaussian()).collect();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for col in [0, dim / 3, dim - 1] {
                let mut y = x.clone();
                y[col] = bad;
                if col + 2 < dim {
                    y[col + 2] = f64::NAN;
                }
                let yf: Vec<f32> = y.iter().map(|&v| v as f32).collect();
                for k in all() {
                    let mut code = vec![0u8; code_width(dim)];
                    assert_eq!(
                        k.encode_f32(&yf, 0.1, &mut code),
                        Err(col),
                        "{:?} f32 dim {dim}",
                        k.backend
                    );
                    assert_eq!(
                        k.encode_f64(&y, 0.1, &mut code),
                        Err(col),
                        "{:?} f64 dim {dim}",
                        k.backend
                    );
                }
            }
        }
    }
}

#[test]
fn encode_with_matrices_is_identical_across_backends() {
    let mut rng = Rng::new(9);
    for dim in [1usize, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 64, 100, 384, 599] {
        let rows = 37;
        let x: Vec<f64> = (0..rows).flat_map(|r| row(&mut rng, r % KINDS, dim)).collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let width = code_width(dim);
        let run = |k: &Kernels| {
            let mut out32 = (vec![0u8; rows * width], vec![0u64; rows], vec![0u32; rows]);
            q2key::encode_with(k, &xf, dim, None, &mut out32.0, &mut out32.1, &mut out32.2).unwrap();
            let mut out64 = (vec![0u8; rows * width], vec![0u64; rows], vec![0u32; rows]);
            q2key::encode_with(k, &x, dim, None, &mut out64.0, &mut out64.1, &mut out64.2).unwrap();
            assert_eq!(out32, out64, "{:?} dim {dim}: f32 and f64 encodings differ", k.backend);
            out32
        };
        let expected = run(scalar());
        for k in simd() {
            assert_eq!(run(k), expected, "{:?} encode_with dim {dim}", k.backend);
        }
    }
}

#[test]
fn search_with_is_identical_across_backends() {
    let mut rng = Rng::new(10);
    for width in [1usize, 3, 8, 13, 33, 96, 256] {
        for n in [0usize, 1, 9, 100, 3000] {
            let mut db = rng.bytes(n * width);
            // Duplicate some rows to force ties.
            for r in 1..n {
                if rng.below(4) == 0 {
                    let src = rng.below(r);
                    db.copy_within(src * width..(src + 1) * width, r * width);
                }
            }
            for nq in [1usize, 2, 5, 17] {
                let queries = rng.bytes(nq * width);
                for k in [1usize, 10, 300] {
                    let kk = k.min(n);
                    let run = |kernels: &Kernels| {
                        let (mut d, mut r) = (vec![u32::MAX; nq * kk], vec![-1i64; nq * kk]);
                        let cols = q2key::search_with(kernels, &queries, &db, width, k, &mut d, &mut r).unwrap();
                        assert_eq!(cols, kk);
                        (d, r)
                    };
                    let expected = run(scalar());
                    for kernels in simd() {
                        assert_eq!(
                            run(kernels),
                            expected,
                            "{:?} search width {width} n {n} queries {nq} k {k}",
                            kernels.backend
                        );
                    }
                }
            }
        }
    }
}

/// A row whose symbols come in runs: `runs` of (cell, length), each
/// coordinate a magnitude typical of its cell (strong ≈ 1, weak ≈ 0.01) with
/// some spread, so the Gaussian cut keeps most runs and the key fills in any
/// word (or never), and the words after the key are counted from any offset.
fn runny_row(runs: &[(u8, usize)], jitter: &[f32]) -> Vec<f32> {
    let cell = [-1.0f32, -0.01, 0.01, 1.0];
    let mut x = Vec::new();
    for &(s, len) in runs {
        x.extend((0..len).map(|_| cell[usize::from(s & 3)]));
    }
    for (v, j) in x.iter_mut().zip(jitter.iter().cycle()) {
        *v *= 1.0 + j;
    }
    x
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The f32 kernels (global threshold and per-dimension cuts) of every
    /// backend equal scalar's code, key and transition count on rows of any
    /// length up to 700 (every tail of the 32-, 16- and 8-wide steps), with
    /// runs that move the key's end and the counted words anywhere in the row.
    #[test]
    fn f32_encode_paths_match_scalar_on_rows_with_runs(
        runs in proptest::collection::vec((0u8..4, 1usize..90), 1..40),
        jitter in proptest::collection::vec(-0.5f32..0.5, 1..17),
        cut in 0usize..700,
        tau in prop_oneof![Just(None), (0.0f64..0.6).prop_map(Some)],
        cut_seed in any::<u64>(),
    ) {
        let mut x = runny_row(&runs, &jitter);
        x.truncate(cut.max(1));
        let dim = x.len();
        let tau = tau.unwrap_or_else(|| gaussian_threshold(dim).unwrap());
        let mut rng = Rng::new(cut_seed);
        let mut cuts = vec![0.0; 3 * dim];
        for d in 0..dim {
            let mut c = [rng.gaussian() * tau, rng.gaussian() * tau * 0.1, rng.gaussian() * tau];
            c.sort_by(f64::total_cmp);
            for (k, v) in c.into_iter().enumerate() {
                cuts[k * dim + d] = v;
            }
        }
        let cuts = q2key::DimCuts::new(&cuts, dim).unwrap();
        let cuts32: Vec<f32> = cuts.as_slice().iter().map(|&c| c as f32).collect();
        let width = code_width(dim);
        let (mut want, mut want_cuts) = (vec![0xAAu8; width], vec![0xAAu8; width]);
        let expected = scalar().encode_f32(&x, tau, &mut want);
        let expected_cuts = scalar().encode_cuts_f32(&x, &cuts32, &mut want_cuts);
        for k in simd() {
            let (mut got, mut got_cuts) = (vec![0x55u8; width], vec![0x55u8; width]);
            prop_assert_eq!(k.encode_f32(&x, tau, &mut got), expected, "{:?} dim {}", k.backend, dim);
            prop_assert_eq!(&got, &want, "{:?} dim {} code", k.backend, dim);
            prop_assert_eq!(k.encode_cuts_f32(&x, &cuts32, &mut got_cuts), expected_cuts, "{:?} dim {} cuts", k.backend, dim);
            prop_assert_eq!(&got_cuts, &want_cuts, "{:?} dim {} cuts code", k.backend, dim);
        }
    }
}
