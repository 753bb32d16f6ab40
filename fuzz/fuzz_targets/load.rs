//! Fuzzes the index loader: no input may panic, and whatever decodes must be
//! a valid index that re-encodes to exactly the input bytes (the format is
//! canonical). Each input is tried twice: as is, and with every checksum
//! recomputed, so mutations also reach the checks behind the checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use q2key::index::data::IndexData;
use q2key::index::format::{decode, write_to, DESCRIPTOR_LEN, FIELDS_LEN, HEADER_CRC_AT, PREAMBLE_LEN, SECTION_COUNT};
use q2key::{code_width, key_and_transitions};
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_fixed_checksums(data) {
        check(&fixed);
    }
});

fn check(bytes: &[u8]) {
    let Ok(index) = decode(bytes, "fuzz") else {
        return;
    };
    assert_valid(&index);
    let mut again = Vec::new();
    write_to(&index, &mut again).expect("a decoded index writes");
    assert!(again == bytes, "decode then write_to changed the bytes");
}

fn assert_valid(index: &IndexData) {
    let rows = index.ids.len();
    let width = code_width(index.dim);
    assert!(index.dim > 0);
    assert_eq!(index.codes.len(), rows * width);
    assert_eq!(index.keys.len(), rows);
    assert_eq!(index.key_order.len(), rows);
    for (code, &key) in index.codes.chunks_exact(width).zip(&index.keys) {
        assert_eq!(key_and_transitions(code, index.dim).0, key);
    }
    let unique: HashSet<u64> = index.ids.iter().copied().collect();
    assert_eq!(unique.len(), rows);
    let pairs: Vec<(u64, u64)> = index
        .key_order
        .iter()
        .map(|&r| (index.keys[r as usize], index.ids[r as usize]))
        .collect();
    assert!(pairs.windows(2).all(|w| w[0] < w[1]));
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// `bytes` with each section checksum (where its span lies in the input) and
/// the header checksum recomputed; `None` when the input has no full header.
fn with_fixed_checksums(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < HEADER_CRC_AT + 4 {
        return None;
    }
    let mut b = bytes.to_vec();
    for i in 0..SECTION_COUNT {
        let d = PREAMBLE_LEN + FIELDS_LEN + i * DESCRIPTOR_LEN;
        let (offset, len) = (get_u64(&b, d + 8), get_u64(&b, d + 16));
        let end = offset.checked_add(len)?;
        if end <= b.len() as u64 {
            let crc = crc32c::crc32c(&b[offset as usize..end as usize]);
            b[d + 24..d + 28].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = crc32c::crc32c(&b[..HEADER_CRC_AT]);
    b[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Some(b)
}
