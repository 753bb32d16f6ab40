//! Fuzzes the file loader, read and memory-mapped: each input is written to a
//! file and loaded both ways; both must agree with the in-memory `decode`
//! (the same index, or a format error with the same reason), and never panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use q2key::index::IndexData;
use q2key::index::format::{decode, load, write_to};
use q2key::Error;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("q2key-fuzz-load-file-{}.q2k", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    for bytes in common::variants(data) {
        check(&bytes);
    }
});

fn reason(r: &q2key::Result<IndexData>) -> Option<String> {
    match r {
        Ok(_) => None,
        Err(Error::Format { reason, .. }) => Some(reason.clone()),
        Err(e) => panic!("not a format error: {e:?}"),
    }
}

fn encoded(index: &IndexData) -> Vec<u8> {
    let mut out = Vec::new();
    write_to(index, &mut out).expect("a loaded index writes");
    out
}

fn check(bytes: &[u8]) {
    let path = scratch();
    std::fs::write(path, bytes).expect("scratch file");
    let in_memory = decode(bytes, "fuzz");
    for mmap in [false, true] {
        let loaded = load(path, mmap);
        assert_eq!(reason(&loaded), reason(&in_memory), "mmap {mmap}");
        if let Ok(index) = &loaded {
            common::assert_valid(index);
            assert_eq!(index.codes.is_mapped(), mmap && !bytes.is_empty());
            assert!(
                encoded(index) == bytes,
                "load (mmap {mmap}) then write_to changed the bytes"
            );
        }
    }
}
