//! Fuzzes the index loader: no input may panic, and whatever decodes must be
//! a valid index that re-encodes to exactly the input bytes (the format is
//! canonical). Each input is tried twice: as is, and with every checksum
//! recomputed, so mutations also reach the checks behind the checksums.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use q2key::index::format::{decode, write_to};

fuzz_target!(|data: &[u8]| {
    for bytes in common::variants(data) {
        check(&bytes);
    }
});

fn check(bytes: &[u8]) {
    let Ok(index) = decode(bytes, "fuzz") else {
        return;
    };
    common::assert_valid(&index);
    let mut again = Vec::new();
    write_to(&index, &mut again).expect("a decoded index writes");
    assert!(again == bytes, "decode then write_to changed the bytes");
}
