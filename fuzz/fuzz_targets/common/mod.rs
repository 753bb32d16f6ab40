//! Helpers shared by the fuzz targets: the invariants of a decoded index and
//! the checksum fix-up that lets mutations reach the checks behind the CRCs.
#![allow(dead_code)]

use q2key::index::IndexData;
use q2key::index::format::{header_crc_at, section_count, DESCRIPTOR_LEN, FIELDS_LEN, PREAMBLE_LEN, SECTION_COUNT};
use q2key::{code_width, key_and_transitions};
use std::collections::HashSet;

/// Every invariant the loader promises of what it returns.
pub fn assert_valid(index: &IndexData) {
    let rows = index.ids.len();
    let width = code_width(index.dim);
    assert!(index.dim > 0);
    assert_eq!(index.codes.len(), rows * width);
    assert_eq!(index.keys.len(), rows);
    assert_eq!(index.key_order.len(), rows);
    if let Some(table) = &index.reconstruction {
        assert_eq!(table.dim(), index.dim);
    }
    for (code, &key) in index.codes.chunks_exact(width).zip(&index.keys) {
        assert_eq!(key_and_transitions(code, index.dim).0, key);
    }
    let unique: HashSet<u64> = index.ids.iter().copied().collect();
    assert_eq!(unique.len(), rows);
    if let Some(&max) = index.ids.iter().max() {
        assert!(
            index.next_id >= max.saturating_add(1),
            "next_id not above the stored ids"
        );
    }
    let pairs: Vec<(u64, u64)> = index
        .key_order
        .iter()
        .map(|&r| (index.keys[r as usize], index.ids[r as usize]))
        .collect();
    assert!(pairs.windows(2).all(|w| w[0] < w[1]));
}

pub fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// `bytes` with each section checksum (where its span lies in the input) and
/// the header checksum recomputed; `None` when the input has no full header.
pub fn with_fixed_checksums(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 {
        return None;
    }
    // Format 1 has five sections, format 2 six (the reconstruction table).
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let sections = section_count(version).unwrap_or(SECTION_COUNT);
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

/// The input as given, then (if it has a full header) with fixed checksums.
pub fn variants(data: &[u8]) -> impl Iterator<Item = std::borrow::Cow<'_, [u8]>> {
    std::iter::once(std::borrow::Cow::Borrowed(data)).chain(with_fixed_checksums(data).map(std::borrow::Cow::Owned))
}
