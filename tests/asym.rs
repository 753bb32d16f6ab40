//! Asymmetric scoring (SPEC §8): reconstruction tables, decode, the fast-scan
//! kernels of every backend, and the exact top-k of the asymmetric search
//! against a naive f64 brute force.

mod common;

use common::Rng;
use proptest::prelude::*;
use q2key::{
    cell_means, code_width, decode, fast_scan_blocks, gaussian_cell_mean, lloyd_max, parallel, reconstruction_mse,
    rerank_asym, row_norms, search_asym, search_asym_fast_scan_with, search_asym_with, unpack, Backend, DimCuts, Error,
    FastScanCodes, Kernels, Reconstruction,
};

/// A random monotone table; values drawn from a small set (zeros and ties included).
fn random_table(rng: &mut Rng, dim: usize, with_zero_rows: bool) -> Reconstruction {
    let levels = [-1.0f32, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0];
    let mut v = Vec::with_capacity(4 * dim);
    for d in 0..dim {
        let mut four: Vec<f32> = (0..4).map(|_| levels[rng.below(levels.len())]).collect();
        if with_zero_rows && d % 2 == 0 {
            four[1] = 0.0;
            four[0] = four[0].min(0.0);
            four[2] = four[2].max(0.0);
        }
        four.sort_by(f32::total_cmp);
        v.extend(four);
    }
    Reconstruction::new(&v, dim).unwrap()
}

fn random_codes(rng: &mut Rng, rows: usize, dim: usize, symbols: &[u8]) -> Vec<u8> {
    let width = code_width(dim);
    let mut codes = vec![0u8; rows * width];
    for row in codes.chunks_exact_mut(width) {
        let s: Vec<u8> = (0..dim).map(|_| symbols[rng.below(symbols.len())]).collect();
        q2key::pack_row(&s, row);
    }
    codes
}

/// The exact score of SPEC §8, written out naively from unpacked symbols:
/// u = q/‖q‖; per pair of dimensions (2m, 2m+1) the two products summed,
/// and the two squares summed; pairs summed in four partial sums by m mod 4;
/// dot / ‖x̂‖.
fn naive_score(q: &[f32], symbols: &[u8], table: &Reconstruction) -> f64 {
    let qn = q
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .fold(0.0, |a, b| a + b)
        .sqrt();
    if qn == 0.0 {
        return 0.0;
    }
    // Partial sums by m mod 4, each in increasing m; then (S0 + S1) + (S2 + S3).
    let (mut dots, mut sqs) = ([0.0f64; 4], [0.0f64; 4]);
    for m in 0..q.len().div_ceil(2) {
        let (mut p, mut r) = (0.0f64, 0.0f64);
        for d in [2 * m, 2 * m + 1] {
            if d < q.len() {
                let x = f64::from(table.value(d, symbols[d]));
                p += f64::from(q[d]) / qn * x;
                r += x * x;
            }
        }
        dots[m % 4] += p;
        sqs[m % 4] += r;
    }
    let dot = (dots[0] + dots[1]) + (dots[2] + dots[3]);
    let sq = (sqs[0] + sqs[1]) + (sqs[2] + sqs[3]);
    if sq == 0.0 {
        0.0
    } else {
        dot / sq.sqrt()
    }
}

/// Naive exact top-k: all rows scored, sorted by (score desc, row asc).
fn brute_top_k(q: &[f32], codes: &[u8], dim: usize, table: &Reconstruction, k: usize) -> Vec<(f32, i64)> {
    let n = codes.len() / code_width(dim);
    let mut symbols = vec![0u8; n * dim];
    unpack(codes, dim, &mut symbols).unwrap();
    let mut all: Vec<(f64, i64)> = symbols
        .chunks_exact(dim)
        .enumerate()
        .map(|(r, s)| (naive_score(q, s, table), r as i64))
        .collect();
    // Scores compare as real numbers (−0 = +0), then rows.
    all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.into_iter().map(|(s, r)| (s as f32, r)).collect()
}

fn run_search(
    kernels: &Kernels,
    queries: &[f32],
    codes: &[u8],
    dim: usize,
    table: &Reconstruction,
    norms: Option<&[f32]>,
    k: usize,
) -> (usize, Vec<f32>, Vec<i64>) {
    let nq = queries.len() / dim;
    let n = codes.len() / code_width(dim);
    let kk = k.min(n);
    let (mut s, mut r) = (vec![0f32; nq * kk], vec![0i64; nq * kk]);
    let cols = search_asym_with(kernels, queries, codes, dim, table, norms, k, &mut s, &mut r).unwrap();
    (cols, s, r)
}

fn check_against_brute(seed: u64, dim: usize, n: usize, nq: usize, k: usize, symbols: &[u8], zero_rows: bool) {
    let mut rng = Rng::new(seed);
    let table = random_table(&mut rng, dim, zero_rows);
    let codes = random_codes(&mut rng, n, dim, symbols);
    let mut queries: Vec<f32> = (0..nq * dim).map(|_| rng.below(5) as f32 - 2.0).collect();
    if nq > 1 {
        queries[..dim].fill(0.0); // a zero query: every score 0, ties by row
    }
    let mut norms = vec![0f32; n];
    row_norms(&codes, dim, &table, &mut norms).unwrap();
    let want: Vec<Vec<(f32, i64)>> = queries
        .chunks_exact(dim)
        .map(|q| brute_top_k(q, &codes, dim, &table, k))
        .collect();
    for backend in Backend::supported() {
        let kernels = Kernels::for_backend(backend).unwrap();
        for threads in [1, 2, 3] {
            for given in [None, Some(&norms[..])] {
                let (cols, s, r) = parallel::install(Some(threads), || {
                    run_search(kernels, &queries, &codes, dim, &table, given, k)
                })
                .unwrap();
                assert_eq!(cols, k.min(n));
                // The same search over the fast-scan layout.
                let laid = FastScanCodes::new(&codes, dim).unwrap();
                let (mut s2, mut r2) = (vec![0f32; s.len()], vec![0i64; r.len()]);
                let cols2 = parallel::install(Some(threads), || {
                    search_asym_fast_scan_with(kernels, &queries, &laid, &table, given, k, &mut s2, &mut r2)
                })
                .unwrap()
                .unwrap();
                assert_eq!((cols2, &s2, &r2), (cols, &s, &r), "fast-scan layout, {backend:?}");
                for (qi, w) in want.iter().enumerate() {
                    let got: Vec<(f32, i64)> = s[qi * cols..(qi + 1) * cols]
                        .iter()
                        .copied()
                        .zip(r[qi * cols..(qi + 1) * cols].iter().copied())
                        .collect();
                    assert_eq!(
                        &got, w,
                        "{backend:?} threads {threads} query {qi} dim {dim} n {n} k {k}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The asymmetric top-k equals a naive exact f64 brute force, ties by
    /// lower row, on every backend and thread count, with and without norms
    /// (k > n, n not a multiple of 32, odd dims, zero queries, zero-norm rows).
    #[test]
    fn search_equals_brute_force(
        seed in any::<u64>(),
        dim in prop::sample::select(vec![1usize, 2, 3, 5, 7, 8, 13, 33, 64, 131]),
        n in 0usize..300,
        nq in 1usize..4,
        k in 1usize..40,
        few_symbols in any::<bool>(),
        zero_rows in any::<bool>(),
    ) {
        let symbols: &[u8] = if few_symbols { &[1, 2] } else { &[0, 1, 2, 3] };
        check_against_brute(seed, dim, n, nq, k, symbols, zero_rows);
    }

    /// `decode` equals a naive per-symbol decode of the unpacked symbols.
    #[test]
    fn decode_matches_naive(seed in any::<u64>(), dim in 1usize..70, n in 0usize..20) {
        let mut rng = Rng::new(seed);
        let table = random_table(&mut rng, dim, false);
        let codes = random_codes(&mut rng, n, dim, &[0, 1, 2, 3]);
        let mut out = vec![0f32; n * dim];
        decode(&codes, dim, &table, &mut out).unwrap();
        let mut symbols = vec![0u8; n * dim];
        unpack(&codes, dim, &mut symbols).unwrap();
        let naive: Vec<f32> = symbols.iter().enumerate().map(|(i, &s)| table.value(i % dim, s)).collect();
        prop_assert_eq!(out, naive);
    }

    /// Every backend's fast-scan sums (both kernels: whole databases and
    /// inverted lists) equal the scalar ones bit for bit
    /// (widths past the 256-byte 16-bit chunk, odd block counts, query
    /// groups of every size, all-127 tables; `next` codes of any length,
    /// which the kernels only prefetch).
    #[test]
    fn kernels_agree_with_scalar(
        seed in any::<u64>(),
        width in prop::sample::select(vec![1usize, 2, 31, 96, 255, 256, 257, 300, 600]),
        nblocks in 0usize..6,
        nq in 1usize..7,
        saturated in any::<bool>(),
        next_len in prop::sample::select(vec![0usize, 1, 63, 64, 65, 4096, 20_000]),
    ) {
        let mut rng = Rng::new(seed);
        let luts: Vec<u8> = (0..nq * 32 * width).map(|_| if saturated { 127 } else { rng.below(128) as u8 }).collect();
        let blocks: Vec<u8> = (0..nblocks * 32 * width).map(|_| rng.below(256) as u8).collect();
        let rows = nblocks * 32;
        let scalar = Kernels::for_backend(Backend::Scalar).unwrap();
        let mut want = vec![0u32; nq * rows];
        let next = vec![5u8; next_len];
        scalar.asym_scan(&luts, width, &blocks, &[], &mut want);
        // The reference itself, recomputed naively.
        for (i, &w) in want.iter().enumerate() {
            let (q, j, r) = (i / rows.max(1), (i % rows.max(1)) / 32, i % 32);
            let lut = &luts[q * 32 * width..];
            let s: u32 = (0..width)
                .map(|b| {
                    let byte = blocks[(j * width + b) * 32 + r];
                    u32::from(lut[32 * b + usize::from(byte >> 4)]) + u32::from(lut[32 * b + 16 + usize::from(byte & 15)])
                })
                .sum();
            prop_assert_eq!(w, s);
        }
        for backend in Backend::supported() {
            let kernels = Kernels::for_backend(backend).unwrap();
            let mut got = vec![7u32; nq * rows];
            kernels.asym_scan(&luts, width, &blocks, &next, &mut got);
            prop_assert_eq!(&got, &want, "{:?}", backend);
        }
    }

    /// The fast-scan layout: byte b of row 32j + r at (j·width + b)·32 + r, missing rows zero.
    #[test]
    fn fast_scan_layout_matches_its_definition(seed in any::<u64>(), width in 1usize..40, n in 0usize..100) {
        let mut rng = Rng::new(seed);
        let codes: Vec<u8> = (0..n * width).map(|_| rng.below(256) as u8).collect();
        let mut out = vec![9u8; n.div_ceil(32) * 32 * width];
        fast_scan_blocks(&codes, width, &mut out);
        for (i, &v) in out.iter().enumerate() {
            let (j, b, r) = (i / (32 * width), (i / 32) % width, i % 32);
            let row = 32 * j + r;
            prop_assert_eq!(v, if row < n { codes[row * width + b] } else { 0 });
        }
    }

    /// The two-stage path: re-ranking a candidate list equals brute force over those rows.
    #[test]
    fn rerank_equals_brute_force_over_the_candidates(
        seed in any::<u64>(),
        dim in 1usize..40,
        n in 1usize..60,
        c in 1usize..30,
        k in 1usize..40,
    ) {
        let mut rng = Rng::new(seed);
        let table = random_table(&mut rng, dim, true);
        let codes = random_codes(&mut rng, n, dim, &[0, 1, 2, 3]);
        let nq = 2;
        let queries: Vec<f32> = (0..nq * dim).map(|_| rng.below(5) as f32 - 2.0).collect();
        let cand: Vec<i64> = (0..nq * c).map(|_| rng.below(n + 1) as i64 - 1).collect();
        let kk = k.min(c);
        let (mut s, mut r) = (vec![0f32; nq * kk], vec![0i64; nq * kk]);
        prop_assert_eq!(rerank_asym(&queries, &codes, dim, &table, &cand, k, &mut s, &mut r).unwrap(), kk);
        let width = code_width(dim);
        for qi in 0..nq {
            let q = &queries[qi * dim..][..dim];
            let mut rows: Vec<i64> = cand[qi * c..][..c].iter().copied().filter(|&x| x >= 0).collect();
            rows.sort_unstable();
            rows.dedup();
            let sub: Vec<u8> = rows.iter().flat_map(|&x| codes[x as usize * width..][..width].to_vec()).collect();
            let mut want: Vec<(f32, i64)> = brute_top_k(q, &sub, dim, &table, kk)
                .into_iter()
                .map(|(s, i)| (s, rows[i as usize]))
                .collect();
            while want.len() < kk {
                want.push((f32::NEG_INFINITY, -1));
            }
            let got: Vec<(f32, i64)> = s[qi * kk..][..kk].iter().copied().zip(r[qi * kk..][..kk].iter().copied()).collect();
            prop_assert_eq!(got, want);
        }
    }
}

/// Many rows and few queries: the sharded path (rows split across threads)
/// and candidate pruning, against brute force.
#[test]
fn sharded_search_equals_brute_force() {
    let (dim, n) = (24, 140_000);
    let mut rng = Rng::new(5);
    let table = Reconstruction::gaussian(dim, q2key::gaussian_threshold(dim).unwrap()).unwrap();
    let codes = random_codes(&mut rng, n, dim, &[0, 1, 2, 3]);
    let queries: Vec<f32> = (0..dim).map(|_| rng.gaussian() as f32).collect();
    let want = brute_top_k(&queries, &codes, dim, &table, 50);
    for backend in Backend::supported() {
        let kernels = Kernels::for_backend(backend).unwrap();
        for threads in [1, 2] {
            let (_, s, r) = parallel::install(Some(threads), || {
                run_search(kernels, &queries, &codes, dim, &table, None, 50)
            })
            .unwrap();
            let got: Vec<(f32, i64)> = s.into_iter().zip(r).collect();
            assert_eq!(got, want, "{backend:?} threads {threads}");
            let laid = FastScanCodes::new(&codes, dim).unwrap();
            let (mut s, mut r) = (vec![0f32; 50], vec![0i64; 50]);
            parallel::install(Some(threads), || {
                search_asym_fast_scan_with(kernels, &queries, &laid, &table, None, 50, &mut s, &mut r)
            })
            .unwrap()
            .unwrap();
            let got: Vec<(f32, i64)> = s.into_iter().zip(r).collect();
            assert_eq!(got, want, "fast-scan layout, {backend:?} threads {threads}");
        }
    }
}

#[test]
fn gaussian_table_matches_independent_values() {
    // Conditional means of N(0, 1) quartile cells: φ(t)/0.25 and (φ(0) − φ(t))/0.25
    // with t = Φ⁻¹(3/4) (values from Python's math module).
    let t = 0.674_489_750_196_081_7;
    let table = Reconstruction::gaussian(1, t).unwrap();
    let want = [
        -1.271_106_290_736_428,
        -0.324_662_830_869_302_9,
        0.324_662_830_869_302_9,
        1.271_106_290_736_428,
    ];
    for (s, w) in want.iter().enumerate() {
        assert!((f64::from(table.value(0, s as u8)) - w).abs() < 1e-6, "symbol {s}");
        let exact = gaussian_cell_mean([f64::NEG_INFINITY, -t, 0.0, t][s], [-t, 0.0, t, f64::INFINITY][s], 1.0);
        assert!((exact - w).abs() < 1e-12, "symbol {s}: {exact}");
    }
    // Scaled by σ = 1/√dim.
    let t4 = t / 2.0;
    let table4 = Reconstruction::gaussian(4, t4).unwrap();
    assert!((f64::from(table4.value(3, 3)) - 1.271_106_290_736_428 / 2.0).abs() < 1e-6);
    // Half-normal mean √(2/π), an off-centre cell and a straddling one (Python math).
    assert!((gaussian_cell_mean(0.0, f64::INFINITY, 1.0) - 0.797_884_560_802_865_4).abs() < 1e-13);
    assert!((gaussian_cell_mean(0.5, 1.5, 1.0) - 0.920_644_605_222_035_6).abs() < 1e-12);
    assert!((gaussian_cell_mean(-0.3, 2.0, 1.0) - 0.550_097_686_653_792_9).abs() < 1e-12);
    // Far tails do not underflow: E[X | X > a] → a + 1/a.
    let far = gaussian_cell_mean(40.0, f64::INFINITY, 1.0);
    assert!((far - (40.0 + 1.0 / 40.0 - 2.0 / 40f64.powi(3))).abs() < 1e-6, "{far}");
    assert!((gaussian_cell_mean(f64::NEG_INFINITY, -40.0, 1.0) + far).abs() < 1e-12);
    let narrow = gaussian_cell_mean(30.0, 30.5, 1.0);
    assert!(narrow > 30.0 && narrow < 30.1, "{narrow}");
}

#[test]
fn tables_are_validated() {
    assert!(matches!(
        Reconstruction::new(&[0.0, 1.0, 0.5, 2.0], 1),
        Err(Error::Value { arg: "table", .. })
    ));
    assert!(matches!(
        Reconstruction::new(&[0.0, f32::NAN, 0.5, 2.0], 1),
        Err(Error::Value { arg: "table", .. })
    ));
    assert!(matches!(
        Reconstruction::new(&[0.0, 1.0, 2.0], 1),
        Err(Error::Shape { arg: "table", .. })
    ));
    assert!(Reconstruction::new(&[-1.0, -1.0, 1.0, 1.0], 1).is_ok());
    assert!(matches!(
        Reconstruction::gaussian(4, -0.1),
        Err(Error::Value { arg: "tau", .. })
    ));
    assert!(matches!(
        Reconstruction::gaussian(4, f64::NAN),
        Err(Error::Value { arg: "tau", .. })
    ));
    assert!(matches!(
        Reconstruction::gaussian(0, 0.1),
        Err(Error::Value { arg: "dim", .. })
    ));
    let table = Reconstruction::gaussian(4, 0.3).unwrap();
    let mut s = [0f32; 4];
    let mut r = [0i64; 4];
    // A table for another dimension, a non-finite query, k = 0.
    let e = search_asym(&[0.0; 8], &[0u8; 2], 8, &table, None, 1, &mut s[..1], &mut r[..1]).unwrap_err();
    assert!(matches!(e, Error::Shape { arg: "table", .. }), "{e}");
    let e = search_asym(
        &[0.0, f32::NAN, 0.0, 0.0],
        &[0u8; 1],
        4,
        &table,
        None,
        1,
        &mut s[..1],
        &mut r[..1],
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                arg: "queries",
                row: 0,
                col: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = search_asym(&[0.0; 4], &[0u8; 1], 4, &table, None, 0, &mut s[..1], &mut r[..1]).unwrap_err();
    assert!(matches!(e, Error::Value { arg: "k", .. }), "{e}");
    let e = search_asym(
        &[0.0; 4],
        &[0u8; 1],
        4,
        &table,
        Some(&[1.0, 2.0]),
        1,
        &mut s[..1],
        &mut r[..1],
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { arg: "norms", .. }), "{e}");
}

fn gaussian_sample(rng: &mut Rng, rows: usize, dim: usize) -> Vec<f64> {
    (0..rows * dim).map(|_| rng.gaussian()).collect()
}

#[test]
fn cell_means_of_a_gaussian_sample_approach_the_analytic_table() {
    let dim = 2;
    let mut rng = Rng::new(11);
    let sigma = 1.0 / (dim as f64).sqrt();
    let values: Vec<f64> = gaussian_sample(&mut rng, 100_000, dim)
        .iter()
        .map(|v| v * sigma)
        .collect();
    let tau = 0.674_489_750_196_081_7 * sigma;
    let cuts = DimCuts::uniform(tau, dim).unwrap();
    let fitted = cell_means(&values, dim, &cuts).unwrap();
    let analytic = Reconstruction::gaussian(dim, tau).unwrap();
    for (a, b) in fitted.as_slice().iter().zip(analytic.as_slice()) {
        assert!((a - b).abs() < 0.01, "{a} vs {b}");
    }
    // An empty cell takes the Gaussian conditional mean of that cell.
    let positive: Vec<f64> = values.iter().map(|v| v.abs() + 1e-3).collect();
    let fitted = cell_means(&positive, dim, &cuts).unwrap();
    assert_eq!(fitted.value(0, 0), analytic.value(0, 0));
    assert_eq!(fitted.value(1, 1), analytic.value(1, 1));
}

#[test]
fn lloyd_max_converges_to_the_known_gaussian_quantizer_without_raising_mse() {
    // Max (1960): the 4-level Lloyd–Max quantizer of N(0, 1) has cuts 0, ±0.9816
    // and levels ±0.4528, ±1.510.
    let dim = 1;
    let mut rng = Rng::new(3);
    let values = gaussian_sample(&mut rng, 200_000, dim);
    let start = DimCuts::uniform(0.3, dim).unwrap();
    let mut previous = reconstruction_mse(&values, dim, &start, &cell_means(&values, dim, &start).unwrap()).unwrap();
    for iters in 1..6 {
        let (cuts, table) = lloyd_max(&values, dim, &start, iters).unwrap();
        let mse = reconstruction_mse(&values, dim, &cuts, &table).unwrap();
        assert!(mse <= previous + 1e-15, "iteration {iters}: {mse} > {previous}");
        previous = mse;
    }
    let (cuts, table) = lloyd_max(&values, dim, &start, 500).unwrap();
    let c = cuts.as_slice();
    assert!(
        (c[2] - 0.9816).abs() < 0.02 && (c[0] + 0.9816).abs() < 0.02 && c[1].abs() < 0.02,
        "{c:?}"
    );
    let t = table.as_slice();
    assert!((t[3] - 1.510).abs() < 0.02 && (t[2] - 0.4528).abs() < 0.02, "{t:?}");
    assert!((t[0] + 1.510).abs() < 0.02 && (t[1] + 0.4528).abs() < 0.02, "{t:?}");
    // Converged: one more round moves nothing measurable.
    let (again, _) = lloyd_max(&values, dim, &cuts, 1).unwrap();
    for (a, b) in again.as_slice().iter().zip(c) {
        assert!((a - b).abs() < 1e-9);
    }
}

/// Every backend's fast-scan entry checks its buffers before reading or
/// writing through raw pointers: short tables, partial blocks, a short
/// output or an entry above 127 panic (never a wild access).
#[test]
fn asym_scan_checks_its_buffers_on_every_backend() {
    let width = 3;
    let luts = vec![1u8; 2 * 32 * width];
    let blocks = vec![0u8; 2 * 32 * width];
    for backend in Backend::supported() {
        let k = Kernels::for_backend(backend).unwrap();
        let run = |luts: &[u8], width: usize, blocks: &[u8], out: usize| {
            let (luts, blocks) = (luts.to_vec(), blocks.to_vec());
            std::panic::catch_unwind(move || {
                let mut o = vec![0u32; out];
                k.asym_scan(&luts, width, &blocks, &[], &mut o);
            })
            .is_ok()
        };
        assert!(run(&luts, width, &blocks, 2 * 64), "{backend:?}: a correct call");
        assert!(!run(&luts, 0, &blocks, 2 * 64), "{backend:?}: width 0");
        assert!(!run(&luts[1..], width, &blocks, 2 * 64), "{backend:?}: partial tables");
        assert!(!run(&luts, width, &blocks[1..], 2 * 64), "{backend:?}: partial block");
        assert!(!run(&luts, width, &blocks, 2 * 64 - 1), "{backend:?}: short output");
        let mut big = luts.clone();
        big[77] = 128;
        assert!(!run(&big, width, &blocks, 2 * 64), "{backend:?}: an entry above 127");
    }
}

/// Nonzero padding bits are the same error everywhere codes come in.
#[test]
fn nonzero_padding_bits_are_an_error_naming_the_row() {
    let dim = 5; // 2 bytes, the last uses its top 2 bits
    let codes = [0u8, 0b1100_0000, 0, 0b0000_0001];
    let table = Reconstruction::gaussian(dim, 0.3).unwrap();
    let check = |e: Error| {
        assert!(matches!(e, Error::Value { arg: "codes", .. }), "{e:?}");
        assert!(
            e.to_string().contains("row 1") && e.to_string().contains("padding"),
            "{e}"
        );
    };
    check(decode(&codes, dim, &table, &mut [0f32; 10]).unwrap_err());
    check(row_norms(&codes, dim, &table, &mut [0f32; 2]).unwrap_err());
    check(FastScanCodes::new(&codes, dim).unwrap_err());
    let q = [1.0f32; 5];
    check(search_asym(&q, &codes, dim, &table, None, 1, &mut [0f32], &mut [0i64]).unwrap_err());
    check(rerank_asym(&q, &codes, dim, &table, &[0], 1, &mut [0f32], &mut [0i64]).unwrap_err());
}
