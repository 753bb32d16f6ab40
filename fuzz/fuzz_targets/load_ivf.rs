//! Fuzzes the inverted-file index loader (docs/FORMAT.md): no input may
//! panic, and whatever decodes must re-encode to exactly the input bytes
//! (the format is canonical) and answer searches at every `nprobe` without
//! panicking. Each input is tried as is and with every checksum recomputed,
//! so mutations also reach the checks behind the checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use q2key::ivf::format::{decode, header_crc_at, section_count, write_to, DESCRIPTOR_LEN, FIELDS_LEN, PREAMBLE_LEN};

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_fixed_checksums(data) {
        check(&fixed);
    }
});

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// `bytes` with the section checksums (where a span lies in the input) and
/// the header checksum recomputed; `None` without a full header.
fn with_fixed_checksums(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < PREAMBLE_LEN {
        return None;
    }
    let sections = section_count(u32::from_le_bytes(bytes[8..12].try_into().unwrap()))?;
    let crc_at = header_crc_at(sections);
    if bytes.len() < crc_at + 4 {
        return None;
    }
    let mut b = bytes.to_vec();
    for i in 0..sections {
        let d = PREAMBLE_LEN + FIELDS_LEN + i * DESCRIPTOR_LEN;
        let (offset, len) = (get_u64(&b, d + 8), get_u64(&b, d + 16));
        let end = offset.checked_add(len)?;
        if end <= b.len() as u64 {
            let crc = crc32c::crc32c(&b[offset as usize..end as usize]);
            b[d + 24..d + 28].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = crc32c::crc32c(&b[..crc_at]);
    b[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    Some(b)
}

fn check(bytes: &[u8]) {
    let Ok(index) = decode(bytes, "fuzz") else {
        return;
    };
    let mut again = Vec::new();
    write_to(&index, &mut again).expect("a decoded index writes");
    assert!(again == bytes, "decode then write_to changed the bytes");
    let stats = index.stats();
    assert_eq!(stats.rows, index.len());
    if index.is_trained() && index.dim() <= 4096 {
        let dim = index.dim();
        let mut queries = vec![0f32; 2 * dim];
        for (i, q) in queries[dim..].iter_mut().enumerate() {
            *q = (i % 7) as f32 - 3.0;
        }
        for nprobe in [1, index.lists()] {
            let a = index.search_asym(&queries, 3, nprobe, None).expect("search");
            assert_eq!(a.ids.len(), 2 * a.columns);
            let l = index.search_lee_floats(&queries, 3, nprobe, None).expect("lee search");
            assert_eq!(l.ids.len(), 2 * l.columns);
        }
    }
}
