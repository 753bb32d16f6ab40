//! Conformance vectors (tests/conformance/q2_vectors.npz, see its README):
//! every row's symbols, codes, keys and transition counts must match exactly.

use npyz::npz::NpzArchive;
use npyz::Deserialize;
use q2key::{code_width, encode, encode_with, symbols, Backend, EncodeElement, Kernels};
use std::io::{Read, Seek};

fn path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/q2_vectors.npz").to_string()
}

/// One array: its shape and its elements in C order.
fn load<T: Deserialize, R: Read + Seek>(npz: &mut NpzArchive<R>, name: &str) -> (Vec<u64>, Vec<T>) {
    let file = npz
        .by_name(name)
        .unwrap_or_else(|e| panic!("reading {name}: {e}"))
        .unwrap_or_else(|| panic!("the archive has no array {name}"));
    let shape = file.shape().to_vec();
    assert_eq!(file.order(), npyz::Order::C, "{name} must be C-ordered");
    let data = file.into_vec::<T>().unwrap_or_else(|e| panic!("decoding {name}: {e}"));
    (shape, data)
}

struct Case {
    dim: usize,
    rows: usize,
    x: Vec<f32>,
    symbols: Vec<u8>,
    codes: Vec<u8>,
    keys: Vec<u64>,
    ntrans: Vec<u32>,
}

fn cases() -> Vec<Case> {
    let mut npz = NpzArchive::open(path()).expect("open the conformance archive");
    let (_, dims) = load::<i64, _>(&mut npz, "dims");
    assert!(!dims.is_empty());
    dims.iter()
        .map(|&n| {
            let dim = usize::try_from(n).unwrap();
            let (xs, x) = load::<f32, _>(&mut npz, &format!("x_{dim}"));
            let rows = xs[0] as usize;
            assert_eq!(xs, [rows as u64, dim as u64], "shape of x_{dim}");
            let (ss, symbols) = load::<u8, _>(&mut npz, &format!("symbols_{dim}"));
            assert_eq!(ss, [rows as u64, dim as u64], "shape of symbols_{dim}");
            let (cs, codes) = load::<u8, _>(&mut npz, &format!("codes_{dim}"));
            assert_eq!(cs, [rows as u64, code_width(dim) as u64], "shape of codes_{dim}");
            let (ks, keys) = load::<u64, _>(&mut npz, &format!("keys_{dim}"));
            assert_eq!(ks, [rows as u64], "shape of keys_{dim}");
            let (ns, ntrans) = load::<u32, _>(&mut npz, &format!("ntrans_{dim}"));
            assert_eq!(ns, [rows as u64], "shape of ntrans_{dim}");
            Case {
                dim,
                rows,
                x,
                symbols,
                codes,
                keys,
                ntrans,
            }
        })
        .collect()
}

/// Compares an encoding with the expected arrays row by row.
fn check(case: &Case, what: &str, codes: &[u8], keys: &[u64], ntrans: &[u32]) {
    let (dim, width) = (case.dim, code_width(case.dim));
    for r in 0..case.rows {
        assert_eq!(
            &codes[r * width..(r + 1) * width],
            &case.codes[r * width..(r + 1) * width],
            "{what}: codes differ at dim {dim} row {r}"
        );
        assert_eq!(keys[r], case.keys[r], "{what}: key differs at dim {dim} row {r}");
        assert_eq!(
            ntrans[r], case.ntrans[r],
            "{what}: transition count differs at dim {dim} row {r}"
        );
    }
}

fn run<T: EncodeElement>(kernels: Option<&Kernels>, x: &[T], dim: usize, rows: usize) -> (Vec<u8>, Vec<u64>, Vec<u32>) {
    let (mut codes, mut keys, mut ntrans) = (vec![0xA5u8; rows * code_width(dim)], vec![7u64; rows], vec![7u32; rows]);
    match kernels {
        None => encode(x, dim, None, &mut codes, &mut keys, &mut ntrans),
        Some(k) => encode_with(k, x, dim, None, &mut codes, &mut keys, &mut ntrans),
    }
    .unwrap_or_else(|e| panic!("encoding dim {dim}: {e}"));
    (codes, keys, ntrans)
}

#[test]
fn archive_covers_the_documented_dims() {
    let cases = cases();
    let dims: Vec<usize> = cases.iter().map(|c| c.dim).collect();
    for d in [1usize, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 64, 100, 1024, 4096] {
        assert!(dims.contains(&d), "dim {d} missing from the archive ({dims:?})");
    }
    for c in &cases {
        assert!(c.rows >= 1, "dim {}: no rows", c.dim);
        assert!(
            c.x[..c.dim].iter().all(|&v| v == 0.0),
            "dim {}: row 0 is not the zero vector",
            c.dim
        );
        assert!(c.x.iter().all(|v| v.is_finite()), "dim {}: non-finite input", c.dim);
    }
}

#[test]
fn encode_f32_matches_every_row() {
    for case in cases() {
        let (codes, keys, ntrans) = run(None, &case.x, case.dim, case.rows);
        check(&case, "encode f32", &codes, &keys, &ntrans);
    }
}

#[test]
fn encode_f64_matches_every_row() {
    for case in cases() {
        let x: Vec<f64> = case.x.iter().map(|&v| f64::from(v)).collect();
        let (codes, keys, ntrans) = run(None, &x, case.dim, case.rows);
        check(&case, "encode f64", &codes, &keys, &ntrans);
    }
}

#[test]
fn every_backend_matches_every_row() {
    for case in cases() {
        let x64: Vec<f64> = case.x.iter().map(|&v| f64::from(v)).collect();
        for b in Backend::supported() {
            let k = Kernels::for_backend(b).unwrap();
            let (codes, keys, ntrans) = run(Some(k), &case.x, case.dim, case.rows);
            check(&case, &format!("{b:?} encode_with f32"), &codes, &keys, &ntrans);
            let (codes, keys, ntrans) = run(Some(k), &x64, case.dim, case.rows);
            check(&case, &format!("{b:?} encode_with f64"), &codes, &keys, &ntrans);
        }
    }
}

#[test]
fn symbols_match_every_row() {
    for case in cases() {
        let dim = case.dim;
        let mut s32 = vec![9u8; case.rows * dim];
        symbols(&case.x, dim, None, &mut s32).unwrap();
        let x64: Vec<f64> = case.x.iter().map(|&v| f64::from(v)).collect();
        let mut s64 = vec![9u8; case.rows * dim];
        symbols(&x64, dim, None, &mut s64).unwrap();
        for r in 0..case.rows {
            let expected = &case.symbols[r * dim..(r + 1) * dim];
            assert_eq!(
                &s32[r * dim..(r + 1) * dim],
                expected,
                "symbols f32 differ at dim {dim} row {r}"
            );
            assert_eq!(
                &s64[r * dim..(r + 1) * dim],
                expected,
                "symbols f64 differ at dim {dim} row {r}"
            );
        }
    }
}

/// The archive is self-consistent under the crate's pack/unpack and key functions.
#[test]
fn pack_and_keys_of_the_expected_symbols_match() {
    for case in cases() {
        let (dim, width) = (case.dim, code_width(case.dim));
        let mut codes = vec![0u8; case.rows * width];
        q2key::pack(&case.symbols, dim, &mut codes).unwrap();
        let mut back = vec![9u8; case.rows * dim];
        q2key::unpack(&case.codes, dim, &mut back).unwrap();
        for r in 0..case.rows {
            let code = &case.codes[r * width..(r + 1) * width];
            assert_eq!(
                &codes[r * width..(r + 1) * width],
                code,
                "pack differs at dim {dim} row {r}"
            );
            assert_eq!(
                &back[r * dim..(r + 1) * dim],
                &case.symbols[r * dim..(r + 1) * dim],
                "unpack differs at dim {dim} row {r}"
            );
            let reduced = q2key::run_reduce(&case.symbols[r * dim..(r + 1) * dim]);
            assert_eq!(
                q2key::key_and_transitions(code, dim),
                (case.keys[r], case.ntrans[r]),
                "key_and_transitions differs at dim {dim} row {r}"
            );
            assert_eq!(
                (q2key::key_from_reduced(&reduced), reduced.len() as u32),
                (case.keys[r], case.ntrans[r]),
                "key_from_reduced(run_reduce) differs at dim {dim} row {r}"
            );
        }
    }
}
