//! Per-dimension thresholds: every backend equals the scalar kernel bit for
//! bit, the cells follow SPEC §1/§6 on the normalised vector, and scaling by
//! a power of two changes nothing.

mod common;

use common::{row, Rng, KINDS};
use q2key::{code_width, encode, encode_cuts, encode_cuts_with, unpack, Backend, DimCuts, Error, Kernels};

/// Random ordered cuts per dimension, some of them equal (empty cells).
fn random_cuts(rng: &mut Rng, dim: usize, spread: f64) -> Vec<f64> {
    let mut cuts = vec![0.0; 3 * dim];
    for d in 0..dim {
        let mut c = [
            rng.gaussian() * spread,
            rng.gaussian() * spread,
            rng.gaussian() * spread,
        ];
        if rng.below(8) == 0 {
            c[1] = c[0];
        }
        c.sort_by(f64::total_cmp);
        for (k, v) in c.into_iter().enumerate() {
            cuts[k * dim + d] = v;
        }
    }
    cuts
}

fn encode_all<T: q2key::EncodeElement>(
    k: &Kernels,
    x: &[T],
    dim: usize,
    cuts: &DimCuts,
) -> (Vec<u8>, Vec<u64>, Vec<u32>) {
    let rows = x.len() / dim;
    let mut out = (vec![0xA5u8; rows * code_width(dim)], vec![0u64; rows], vec![0u32; rows]);
    encode_cuts_with(k, x, dim, cuts, &mut out.0, &mut out.1, &mut out.2).unwrap();
    out
}

#[test]
fn every_backend_matches_scalar_on_every_dim_and_row_kind() {
    let scalar = Kernels::for_backend(Backend::Scalar).unwrap();
    let mut rng = Rng::new(31);
    for dim in 1..=300usize {
        let rows: Vec<Vec<f64>> = (0..KINDS).map(|kind| row(&mut rng, kind, dim)).collect();
        // f64 rows far outside the f32 range take the wide path.
        let mut x: Vec<f64> = rows.concat();
        x.extend(rows[0].iter().map(|v| v * 2f64.powi(700)));
        x.extend(rows[1].iter().map(|v| v * 2f64.powi(-1060)));
        let xf: Vec<f32> = rows.concat().iter().map(|&v| v as f32).collect();
        let spread = 1.0 / (dim as f64).sqrt();
        let cuts = DimCuts::new(&random_cuts(&mut rng, dim, spread), dim).unwrap();
        let expect64 = encode_all(scalar, &x, dim, &cuts);
        let expect32 = encode_all(scalar, &xf, dim, &cuts);
        for b in Backend::supported() {
            let k = Kernels::for_backend(b).unwrap();
            assert_eq!(encode_all(k, &x, dim, &cuts), expect64, "{b:?} f64 dim {dim}");
            assert_eq!(encode_all(k, &xf, dim, &cuts), expect32, "{b:?} f32 dim {dim}");
        }
    }
}

/// f32 rows whose `1/‖x‖` is not a normal f32 (tiny or huge norms) take the
/// shared wide path: same bits on every backend, same symbols as a unit-size row.
#[test]
fn f32_rows_at_the_ends_of_the_range_keep_their_code() {
    let mut rng = Rng::new(32);
    for dim in [1usize, 7, 16, 33, 100] {
        let base: Vec<f64> = (0..dim).map(|_| rng.gaussian()).collect();
        let cuts = DimCuts::new(&random_cuts(&mut rng, dim, 0.3), dim).unwrap();
        let reference = encode_all(Kernels::active(), &base, dim, &cuts);
        for e in [-140i32, -130, -126, -100, 100, 120, 125] {
            let xf: Vec<f32> = base.iter().map(|v| (v * 2f64.powi(e)) as f32).collect();
            if xf.iter().any(|v| !v.is_normal()) {
                continue; // subnormal coordinates lose bits: not a pure rescaling
            }
            for b in Backend::supported() {
                let got = encode_all(Kernels::for_backend(b).unwrap(), &xf, dim, &cuts);
                assert_eq!(got, reference, "{b:?} dim {dim} scale 2^{e}");
            }
        }
    }
}

/// The cells are those of SPEC §1 with the cuts in place of (−τ, 0, τ),
/// applied to `x/‖x‖` computed in f64, except within rounding of a cut.
#[test]
fn cells_follow_the_cuts_on_the_normalised_vector() {
    let mut rng = Rng::new(33);
    let mut checked = 0usize;
    for dim in [1usize, 5, 32, 384] {
        let cuts_v = random_cuts(&mut rng, dim, 1.0 / (dim as f64).sqrt());
        let cuts = DimCuts::new(&cuts_v, dim).unwrap();
        for kind in 0..KINDS {
            let x = row(&mut rng, kind, dim);
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mut code = vec![0u8; code_width(dim)];
            let (mut k, mut t) = ([0u64], [0u32]);
            encode_cuts(&x, dim, &cuts, &mut code, &mut k, &mut t).unwrap();
            let mut sym = vec![0u8; dim];
            unpack(&code, dim, &mut sym).unwrap();
            for d in 0..dim {
                let (lo, mid, hi) = (cuts_v[d], cuts_v[dim + d], cuts_v[2 * dim + d]);
                if norm == 0.0 {
                    assert_eq!(sym[d], 1, "all-zero rows are all B");
                    continue;
                }
                let v = x[d] / norm;
                if [lo, mid, hi].iter().any(|c| (v - c).abs() <= 1e-12 * (1.0 + c.abs())) {
                    continue;
                }
                let expect = if v <= lo {
                    0
                } else if v <= mid {
                    1
                } else if v <= hi {
                    2
                } else {
                    3
                };
                assert_eq!(sym[d], expect, "dim {dim} kind {kind} coordinate {d}: v = {v}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}

/// Uniform cuts (−τ, 0, τ) are the global rule: on Gaussian data (no value
/// within rounding of a cut) the codes equal the global encoder's.
#[test]
fn uniform_cuts_equal_the_global_threshold() {
    let mut rng = Rng::new(34);
    let (rows, dim) = (500usize, 384usize);
    let x: Vec<f32> = (0..rows * dim).map(|_| rng.gaussian() as f32).collect();
    let tau = q2key::gaussian_threshold(dim).unwrap();
    let w = code_width(dim);
    let mut a = (vec![0u8; rows * w], vec![0u64; rows], vec![0u32; rows]);
    encode(&x, dim, Some(tau), &mut a.0, &mut a.1, &mut a.2).unwrap();
    let cuts = DimCuts::uniform(tau, dim).unwrap();
    assert_eq!(encode_all(Kernels::active(), &x, dim, &cuts), a);
}

#[test]
fn cuts_are_validated() {
    assert!(matches!(DimCuts::new(&[0.0; 5], 2), Err(Error::Shape { .. })));
    assert!(matches!(DimCuts::new(&[], 0), Err(Error::Value { .. })));
    let unordered = DimCuts::new(&[-0.1, 0.2, 0.0, 0.0, 0.1, 0.3], 2).unwrap_err();
    assert!(unordered.to_string().contains("dimension 1"), "{unordered}");
    let nan = DimCuts::new(&[-0.1, f64::NAN, 0.1], 1).unwrap_err();
    assert!(nan.to_string().contains("finite"), "{nan}");
    let cuts = DimCuts::uniform(0.1, 4).unwrap();
    let mut out = (vec![0u8; 1], vec![0u64; 1], vec![0u32; 1]);
    let wrong_dim = encode_cuts(&[1.0f32; 3], 3, &cuts, &mut out.0, &mut out.1, &mut out.2).unwrap_err();
    assert!(matches!(wrong_dim, Error::Shape { arg: "x", .. }), "{wrong_dim}");
    let nonfinite = encode_cuts(
        &[1.0f32, 2.0, f32::INFINITY, 0.0],
        4,
        &cuts,
        &mut out.0,
        &mut out.1,
        &mut out.2,
    );
    assert!(matches!(nonfinite, Err(Error::NonFinite { row: 0, col: 2, .. })));
}
