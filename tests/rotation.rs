//! SPEC §9: the rotation rule (bit-exact against a naive reference, on every
//! backend and thread count), its validation, decoding back to the input
//! space, the fits, and the index file round trip.

use proptest::prelude::*;
use q2key::{
    fit_rotation, haar_matrix, parallel, polar_factor, polar_factor_jacobi, polar_factor_newton, random_rotation,
    Backend, Index, IndexThresholds, Kernels, Rotation, RotationKind, Thresholds,
};

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The rule written as plainly as possible: f64 normalisation (largest
/// magnitude first, squares in the encoder's 32-lane order), f32 `v`, then
/// `y_j = Σ_i v_i·R[i][j]` one f32 chain per `j` in increasing `i`.
fn reference(x: &[f32], r: &Rotation) -> Vec<f32> {
    let n = r.dim();
    let m = r.as_slice();
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(n) {
        let top = row.iter().fold(0f64, |t, &v| t.max(f64::from(v).abs()));
        let v: Vec<f32> = if top == 0.0 {
            vec![0.0; n]
        } else {
            let mut lanes = [0f64; 32];
            for (i, &x) in row.iter().enumerate() {
                let s = f64::from(x) / top;
                lanes[i % 32] += s * s;
            }
            let mut l8 = [0f64; 8];
            for (j, l) in l8.iter_mut().enumerate() {
                *l = (lanes[j] + lanes[j + 8]) + (lanes[j + 16] + lanes[j + 24]);
            }
            let norm = (((l8[0] + l8[1]) + (l8[2] + l8[3])) + ((l8[4] + l8[5]) + (l8[6] + l8[7]))).sqrt();
            row.iter().map(|&x| (f64::from(x) / top / norm) as f32).collect()
        };
        for j in 0..n {
            let mut acc = 0f32;
            for i in 0..n {
                acc += v[i] * m[i * n + j];
            }
            out.push(acc);
        }
    }
    out
}

fn per_dim(n: usize) -> Thresholds {
    let tau = 0.6745 / (n as f64).sqrt();
    let cuts: Vec<f64> = (0..3 * n)
        .map(|i| [-tau, 0.0, tau][i / n] + 0.01 * tau * ((i % 7) as f64 - 3.0))
        .collect();
    Thresholds::per_dim(&cuts, &[3, n]).unwrap()
}

fn encode(th: &Thresholds, x: &[f32], n: usize) -> (Vec<u8>, Vec<u64>, Vec<u32>) {
    let rows = x.len() / n;
    let (mut c, mut k, mut t) = (vec![0u8; rows * n.div_ceil(4)], vec![0u64; rows], vec![0u32; rows]);
    th.encode(x, n, &mut c, &mut k, &mut t).unwrap();
    (c, k, t)
}

#[test]
fn the_sum_of_squares_lanes_are_the_encoders() {
    // The reference above must normalise as the encoder does: a row whose
    // 32 lanes matter (dim > 32) encodes identically through the reference.
    let n = 77;
    let r = random_rotation(n, 3).unwrap();
    let x = values(5 * n, 1);
    let mut y = vec![0f32; x.len()];
    r.apply(&x, 0, &mut y).unwrap();
    assert_eq!(y, reference(&x, &r));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Haar rotations pass the check; one entry moved by more than the
    /// tolerance fails it, naming `rotation`.
    #[test]
    fn orthogonality_accepts_haar_and_rejects_perturbed(
        n in 1usize..40, seed in any::<u64>(), at in any::<prop::sample::Index>(), delta in 3e-4f32..0.5,
    ) {
        let r = random_rotation(n, seed).unwrap();
        let back = Rotation::new(r.as_slice(), (n, n)).unwrap();
        prop_assert_eq!(&back, &r);
        let mut bad = r.as_slice().to_vec();
        bad[at.index(n * n)] += delta;
        let e = Rotation::new(&bad, (n, n)).unwrap_err();
        prop_assert!(e.to_string().starts_with("rotation: must be orthogonal"), "{}", e);
    }

    /// Encoding with a rotation is encoding `v·R` (the rule, computed
    /// naively) with the same thresholds without one: bit for bit, on every
    /// backend and thread count.
    #[test]
    fn encode_with_rotation_is_encode_of_the_rotated_rows(
        n in 1usize..70, rows in 1usize..20, seed in any::<u64>(), scale in -30i32..30,
    ) {
        let r = random_rotation(n, seed).unwrap();
        let mut x = values(rows * n, seed ^ 1);
        x.iter_mut().for_each(|v| *v *= 2f32.powi(scale));
        x[..n.min(3)].fill(0.0);
        let plain = per_dim(n);
        let rotated = plain.clone().with_rotation(Some(r.clone())).unwrap();
        let expected = encode(&plain, &reference(&x, &r), n);
        for threads in [1, 2, 3] {
            let got = parallel::install(Some(threads), || encode(&rotated, &x, n)).unwrap();
            prop_assert_eq!(&got, &expected);
        }
        let want = reference(&x, &r);
        for backend in Backend::supported() {
            let mut y = vec![0f32; x.len()];
            r.apply_with(Kernels::for_backend(backend).unwrap(), &x, 0, &mut y).unwrap();
            prop_assert_eq!(&y, &want, "{:?}", backend);
        }
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        prop_assert_eq!(&encode_f64(&rotated, &x64, n), &expected.0);
        let (mut symbols, mut want) = (vec![0u8; rows * n], vec![0u8; rows * n]);
        rotated.symbols(&x, n, &mut symbols).unwrap();
        q2key::unpack(&expected.0, n, &mut want).unwrap();
        prop_assert_eq!(symbols, want);
    }

    /// Decoding lands back in the input space: `decode·R` is the table's
    /// (unrotated) reconstruction.
    #[test]
    fn decode_rotates_back(n in 1usize..50, rows in 1usize..8, seed in any::<u64>()) {
        let r = random_rotation(n, seed).unwrap();
        let plain = per_dim(n);
        let rotated = plain.clone().with_rotation(Some(r.clone())).unwrap();
        let (codes, _, _) = encode(&rotated, &values(rows * n, seed), n);
        let mut flat = vec![0f32; rows * n];
        plain.decode(&codes, n, &mut flat).unwrap();
        let mut back = vec![0f32; rows * n];
        rotated.decode(&codes, n, &mut back).unwrap();
        let m = r.as_slice();
        for (b, f) in back.chunks_exact(n).zip(flat.chunks_exact(n)) {
            for j in 0..n {
                let y: f64 = (0..n).map(|i| f64::from(b[i]) * f64::from(m[i * n + j])).sum();
                prop_assert!((y - f64::from(f[j])).abs() <= 1e-5, "{} vs {}", y, f[j]);
            }
        }
    }
}

fn encode_f64(th: &Thresholds, x: &[f64], n: usize) -> Vec<u8> {
    let rows = x.len() / n;
    let (mut c, mut k, mut t) = (vec![0u8; rows * n.div_ceil(4)], vec![0u64; rows], vec![0u32; rows]);
    th.encode(x, n, &mut c, &mut k, &mut t).unwrap();
    c
}

#[test]
fn the_identity_changes_nothing() {
    let n = 37;
    let x = values(11 * n, 5);
    let plain = per_dim(n);
    let id = plain
        .clone()
        .with_rotation(Some(Rotation::identity(n).unwrap()))
        .unwrap();
    let (a, b) = (encode(&plain, &x, n), encode(&id, &x, n));
    assert_eq!(a.0, b.0);
    let (mut d1, mut d2) = (vec![0f32; 11 * n], vec![0f32; 11 * n]);
    plain.decode(&a.0, n, &mut d1).unwrap();
    id.decode(&a.0, n, &mut d2).unwrap();
    assert_eq!(d1, d2);
}

#[test]
fn bad_rotations_name_the_parameter() {
    let e = Rotation::new(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], (2, 3)).unwrap_err();
    assert!(e.to_string().starts_with("rotation: expected a square"), "{e}");
    let e = Rotation::new(&[1.0, f32::NAN, 0.0, 1.0], (2, 2)).unwrap_err();
    assert!(
        e.to_string().starts_with("rotation: row 0 has a non-finite value"),
        "{e}"
    );
    let e = Rotation::new(&[], (0, 0)).unwrap_err();
    assert!(e.to_string().starts_with("rotation: "), "{e}");
    let e = per_dim(3)
        .with_rotation(Some(Rotation::identity(4).unwrap()))
        .unwrap_err();
    assert!(e.to_string().starts_with("rotation: expected a (3, 3) matrix"), "{e}");
    let mut x = values(8, 1);
    x[5] = f32::INFINITY;
    let th = per_dim(4).with_rotation(Some(random_rotation(4, 1).unwrap())).unwrap();
    let (mut c, mut k, mut t) = (vec![0u8; 2], vec![0u64; 2], vec![0u32; 2]);
    let e = th.encode(&x, 4, &mut c, &mut k, &mut t).unwrap_err();
    assert_eq!(
        e.to_string(),
        "x: row 1 has a non-finite value (inf) at column 1; inputs must be finite"
    );
}

#[test]
fn the_polar_factor_is_orthogonal_and_optimal_on_ill_conditioned_matrices() {
    let n = 24;
    let (a, b) = (haar_matrix(n, 1).unwrap(), haar_matrix(n, 2).unwrap());
    for (spread, rank) in [(1e-12f64, n), (1e-6, n), (1.0, n), (1e-3, n / 2), (1.0, 0)] {
        // m = a · diag(σ) · b, σ from 1 down to `spread`, zero past `rank`.
        let sigma: Vec<f64> = (0..n)
            .map(|k| {
                if k < rank {
                    spread.powf(k as f64 / n as f64)
                } else {
                    0.0
                }
            })
            .collect();
        let mut m = vec![0f64; n * n];
        for (k, s) in sigma.iter().enumerate() {
            for i in 0..n {
                for j in 0..n {
                    m[i * n + j] += a[i * n + k] * s * b[k * n + j];
                }
            }
        }
        let r = polar_factor(&m, n);
        Rotation::from_f64(&r, (n, n)).unwrap(); // orthogonal
                                                 // Optimal: trace(Rᵀ·M) reaches its maximum over rotations, Σσ
                                                 // (i.e. R minimises ‖X·R − X̂‖ for M = Xᵀ·X̂), whatever the conditioning.
        let trace: f64 = r.iter().zip(&m).map(|(r, m)| r * m).sum();
        let best: f64 = sigma.iter().sum();
        assert!(
            trace >= best - 1e-12 * n as f64,
            "spread {spread} rank {rank}: {trace} < {best}"
        );
        if rank == n && spread >= 1e-6 {
            // Well determined (error ≲ ε·‖M‖/σ_min): equal to a·b.
            for i in 0..n {
                for j in 0..n {
                    let want: f64 = (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum();
                    assert!(
                        (want - r[i * n + j]).abs() < 1e-6,
                        "spread {spread}: {want} vs {}",
                        r[i * n + j]
                    );
                }
            }
        }
    }
}

/// `a · diag(σ) · b` for row-major `n × n` `a`, `b`.
fn with_singular_values(a: &[f64], sigma: &[f64], b: &[f64]) -> Vec<f64> {
    let n = sigma.len();
    let mut m = vec![0f64; n * n];
    for (k, s) in sigma.iter().enumerate() {
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] += a[i * n + k] * s * b[k * n + j];
            }
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// On well-conditioned matrices (κ ≤ 100) the Newton iteration converges
    /// and its polar factor is the Jacobi SVD's within 1e-9, on every thread count.
    #[test]
    fn the_newton_polar_factor_matches_the_jacobi_one(
        n in 1usize..48, seed in any::<u64>(), spread in 1e-2f64..1.0, scale in -20i32..20,
    ) {
        let (a, b) = (haar_matrix(n, seed).unwrap(), haar_matrix(n, seed ^ 7).unwrap());
        let sigma: Vec<f64> = (0..n).map(|k| 2f64.powi(scale) * spread.powf(k as f64 / n as f64)).collect();
        let m = with_singular_values(&a, &sigma, &b);
        let newton = polar_factor_newton(&m, n).expect("converges on a well-conditioned matrix");
        let jacobi = polar_factor_jacobi(&m, n);
        for (x, y) in newton.iter().zip(&jacobi) {
            prop_assert!((x - y).abs() <= 1e-9, "{} vs {}", x, y);
        }
        for threads in [1, 3] {
            let again = parallel::install(Some(threads), || polar_factor(&m, n)).unwrap();
            prop_assert_eq!(&again, &newton);
        }
    }
}

fn unit_sample(rows: usize, n: usize, seed: u64) -> Vec<f64> {
    // Unequal spreads per dimension so that rotating matters.
    let x: Vec<f32> = values(rows * n, seed)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % n) as f32) + 0.3 * (i % 3) as f32)
        .collect();
    q2key::unit_rows("sample", &x, n).unwrap()
}

#[test]
fn the_learned_fit_never_increases_the_error_and_is_deterministic() {
    let n = 16;
    let sample = unit_sample(600, n, 9);
    let start = Thresholds::gaussian(n).unwrap();
    let fit = |threads| {
        parallel::install(Some(threads), || {
            fit_rotation(&sample, n, &start, RotationKind::Learned, 6, 42, 100).unwrap()
        })
        .unwrap()
    };
    let one = fit(1);
    assert_eq!(one.errors.len(), 7);
    for w in one.errors.windows(2) {
        assert!(w[1] <= w[0] * (1.0 + 1e-9), "{:?}", one.errors);
    }
    assert!(one.errors[6] < one.errors[0], "{:?}", one.errors);
    let three = fit(3);
    assert_eq!(one.thresholds, three.thresholds);
    assert_eq!(one.errors, three.errors);
    let other = fit_rotation(&sample, n, &start, RotationKind::Learned, 6, 43, 100).unwrap();
    assert_ne!(other.thresholds.rotation(), one.thresholds.rotation());
    let random = fit_rotation(&sample, n, &start, RotationKind::Random, 6, 42, 100).unwrap();
    assert_eq!(random.errors.len(), 1);
    assert_eq!(random.thresholds.rotation(), Some(&random_rotation(n, 42).unwrap()));
}

#[test]
fn an_index_with_a_rotation_round_trips_and_rejects_a_corrupt_one() {
    let n = 12;
    let r = random_rotation(n, 7).unwrap();
    let x = values(30 * n, 4);
    let mut index = Index::new(n, IndexThresholds::Gaussian, None)
        .unwrap()
        .with_rotation(Some(r.clone()))
        .unwrap();
    index.add(&x, None).unwrap();
    let th = Thresholds::gaussian(n).unwrap().with_rotation(Some(r.clone())).unwrap();
    let (codes, _, _) = encode(&th, &x, n);
    assert_eq!(index.arrays().unwrap().0, &codes[..]);
    let bytes = index.to_bytes().unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 3);
    let back = Index::from_bytes(&bytes).unwrap();
    assert_eq!(back.rotation(), Some(&r));
    assert_eq!(back.threshold_set().unwrap(), th);
    let queries = values(3 * n, 8);
    let (a, b) = (
        index.search_asym(&queries, 5, None).unwrap(),
        back.search_asym(&queries, 5, None).unwrap(),
    );
    assert_eq!((a.ids, a.distances), (b.ids, b.distances));
    // A rotation that is not orthogonal, with consistent checksums: the loader's error.
    let at = 384 + bytes[..].len() - 384 - n * n * 4; // the ROTATION section is last
    let mut bad = bytes.clone();
    bad[at..at + 4].copy_from_slice(&2.0f32.to_le_bytes());
    let crc = crc32c_of(&bad[at..]);
    let d = 16 + 80 + 6 * 32 + 24;
    bad[d..d + 4].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32c_of(&bad[..16 + 80 + 7 * 32]);
    bad[16 + 80 + 7 * 32..16 + 80 + 7 * 32 + 4].copy_from_slice(&hcrc.to_le_bytes());
    let e = Index::from_bytes(&bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("corrupted rotation: rotation: must be orthogonal"),
        "{e}"
    );
    // No rotation: the format is unchanged.
    let mut plain = Index::new(n, IndexThresholds::Gaussian, None).unwrap();
    plain.add(&x, None).unwrap();
    assert_eq!(
        u32::from_le_bytes(plain.to_bytes().unwrap()[8..12].try_into().unwrap()),
        1
    );
    // Rows already made under one rotation cannot be reinterpreted under another.
    let e = index.with_rotation(None).unwrap_err();
    assert!(e.to_string().starts_with("rotation: an index holding rows"), "{e}");
}

fn crc32c_of(bytes: &[u8]) -> u32 {
    // CRC-32C (Castagnoli), bitwise: the test does not depend on the crate's dependency.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn asymmetric_search_rotates_the_queries() {
    let n = 20;
    let r = random_rotation(n, 5).unwrap();
    let x = values(40 * n, 2);
    let queries = values(4 * n, 3);
    let mut index = Index::new(n, IndexThresholds::Gaussian, None)
        .unwrap()
        .with_rotation(Some(r.clone()))
        .unwrap();
    index.add(&x, None).unwrap();
    let got = index.search_asym(&queries, 7, None).unwrap();
    // The same search without a rotation, over the rotated rows and queries.
    let mut plain = Index::new(n, IndexThresholds::Gaussian, None).unwrap();
    plain.add(&reference(&x, &r), None).unwrap();
    let want = plain.search_asym(&reference(&queries, &r), 7, None).unwrap();
    assert_eq!((got.ids, got.distances), (want.ids, want.distances));
}
