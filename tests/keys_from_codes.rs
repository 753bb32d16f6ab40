//! `keys_from_codes` (the `q2` pass-through) against `keys_from_symbols` of the unpacked codes.

mod common;

use common::Rng;
use proptest::prelude::*;
use q2key::last_byte_mask;
use q2key::{code_width, keys_from_codes, keys_from_symbols, pack, unpack, Error};

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `(dim, rows of symbols)`: runny rows so keys are sometimes short.
fn batch() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (1usize..300, 0usize..12).prop_flat_map(|(dim, rows)| {
        let row = prop::collection::vec((0u8..4, 1usize..8), 1..dim + 1).prop_map(move |runs| {
            let mut s: Vec<u8> = runs.into_iter().flat_map(|(v, n)| std::iter::repeat_n(v, n)).collect();
            s.resize(dim, 1);
            s
        });
        (
            Just(dim),
            prop::collection::vec(row, rows).prop_map(|rows| rows.concat()),
        )
    })
}

fn from_codes(codes: &[u8], dim: usize) -> Result<(Vec<u64>, Vec<u32>), Error> {
    let rows = codes.len() / code_width(dim).max(1);
    let (mut keys, mut counts) = (vec![0u64; rows], vec![0u32; rows]);
    keys_from_codes(codes, dim, &mut keys, &mut counts)?;
    Ok((keys, counts))
}

fn from_symbols(symbols: &[u8], dim: usize) -> (Vec<u64>, Vec<u32>) {
    let rows = symbols.len() / dim;
    let (mut keys, mut counts) = (vec![0u64; rows], vec![0u32; rows]);
    keys_from_symbols(symbols, dim, &mut keys, &mut counts).unwrap();
    (keys, counts)
}

proptest! {
    #![proptest_config(cfg(400))]

    #[test]
    fn matches_keys_from_symbols_of_the_unpacked_codes((dim, symbols) in batch()) {
        let rows = symbols.len() / dim;
        let mut codes = vec![0u8; rows * code_width(dim)];
        pack(&symbols, dim, &mut codes).unwrap();
        let mut unpacked = vec![0u8; rows * dim];
        unpack(&codes, dim, &mut unpacked).unwrap();
        prop_assert_eq!(from_codes(&codes, dim).unwrap(), from_symbols(&unpacked, dim));
    }

    #[test]
    fn random_codes_with_clean_padding((dim, rows, seed) in (1usize..200, 0usize..8, any::<u64>())) {
        let width = code_width(dim);
        let mut codes = Rng::new(seed).bytes(rows * width);
        for row in codes.chunks_exact_mut(width) {
            row[width - 1] &= last_byte_mask(dim);
        }
        let mut symbols = vec![0u8; rows * dim];
        unpack(&codes, dim, &mut symbols).unwrap();
        prop_assert_eq!(from_codes(&codes, dim).unwrap(), from_symbols(&symbols, dim));
    }
}

#[test]
fn large_batches_split_across_tasks_agree_with_the_symbol_walk() {
    let (dim, rows) = (37, 10_000);
    let symbols: Vec<u8> = (0..rows * dim).map(|i| ((i * 7 + i / 5) % 4) as u8).collect();
    let mut codes = vec![0u8; rows * code_width(dim)];
    pack(&symbols, dim, &mut codes).unwrap();
    assert_eq!(from_codes(&codes, dim).unwrap(), from_symbols(&symbols, dim));
}

#[test]
fn nonzero_padding_bits_are_an_error_naming_the_row() {
    let dim = 5; // 2 bytes, the last uses its top 2 bits
    let codes = [0u8, 0b1100_0000, 0, 0b0000_0001];
    let err = from_codes(&codes, dim).unwrap_err();
    assert!(matches!(err, Error::Value { arg: "codes", .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("row 1") && msg.contains("padding"), "{msg}");
    // A full last byte has no padding to check.
    assert!(from_codes(&[0xFF, 0xFF], 8).is_ok());
}

#[test]
fn widths_buffers_and_dim_are_checked() {
    // 3 bytes is not a whole number of 2-byte rows.
    assert!(matches!(
        from_codes(&[0, 0, 0], 5),
        Err(Error::Shape { arg: "codes", .. })
    ));
    let (mut keys, mut counts) = (vec![0u64; 1], vec![0u32; 2]);
    let err = keys_from_codes(&[0, 0, 0, 0], 5, &mut keys, &mut counts).unwrap_err();
    assert!(matches!(err, Error::Shape { arg: "keys", .. }), "{err:?}");
    let err = keys_from_codes(&[], 0, &mut [], &mut []).unwrap_err();
    assert!(matches!(err, Error::Value { arg: "dim", .. }), "{err:?}");
    // No rows: nothing to do.
    assert_eq!(from_codes(&[], 7).unwrap(), (vec![], vec![]));
}

#[test]
fn known_keys() {
    // R = (B) vs R = (B, A): same key, different counts (SPEC §4).
    let mut codes = vec![0u8; 2];
    pack(&[1, 1, 1, 1, 1, 1, 1, 0], 4, &mut codes).unwrap();
    assert_eq!(from_codes(&codes, 4).unwrap(), (vec![1 << 62, 1 << 62], vec![1, 2]));
}
