//! The saved-index format: round trips (owned and mapped), and every kind of
//! damaged, foreign or hostile file gives `Error::Format` (never a panic, a
//! huge allocation or silently different data). Atomic saves, including over
//! a file that is currently mapped.

mod common;

use common::Rng;
use proptest::prelude::*;
use q2key::index::format::{
    decode, load, remove_stale_temps, save, write_to, ALIGN, DESCRIPTOR_LEN, FIELDS_LEN, FIRST_SECTION_AT,
    HEADER_CRC_AT, PREAMBLE_LEN, SECTION_COUNT,
};
use q2key::index::Index;
use q2key::index::{Codes, IndexData, IndexThresholds};
use q2key::{code_width, keys_from_codes, pack, random_rotation, DimCuts, Error, LeeWeights, Reconstruction};
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("q2key-format-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Gaussian,
    Global,
    PerDim,
}

/// A valid random index: duplicate codes (equal keys) included, ids random and unique.
fn random_data(rng: &mut Rng, dim: usize, rows: usize, kind: Kind, weighted: bool) -> IndexData {
    let width = code_width(dim);
    let mut symbols = rng.symbols(rows * dim);
    for r in 1..rows {
        if rng.below(4) == 0 {
            let src = rng.below(r);
            symbols.copy_within(src * dim..(src + 1) * dim, r * dim);
        }
    }
    let mut codes = vec![0u8; rows * width];
    pack(&symbols, dim, &mut codes).unwrap();
    let (mut keys, mut transitions) = (vec![0u64; rows], vec![0u32; rows]);
    keys_from_codes(&codes, dim, &mut keys, &mut transitions).unwrap();
    let mut seen = HashSet::new();
    let ids: Vec<u64> = (0..rows)
        .map(|_| loop {
            let id = if rng.below(2) == 0 {
                rng.below(1000) as u64
            } else {
                rng.next_u64()
            };
            if seen.insert(id) {
                break id;
            }
        })
        .collect();
    let mut key_order: Vec<u64> = (0..rows as u64).collect();
    key_order.sort_by_key(|&r| (keys[r as usize], ids[r as usize]));
    let thresholds = match kind {
        Kind::Gaussian => IndexThresholds::Gaussian,
        Kind::Global => IndexThresholds::Global(rng.unit() * 0.3),
        Kind::PerDim => {
            let mut cuts = vec![0.0; 3 * dim];
            for d in 0..dim {
                let mut c = [rng.gaussian(), rng.gaussian(), rng.gaussian()];
                c.sort_by(f64::total_cmp);
                for (k, v) in c.into_iter().enumerate() {
                    cuts[k * dim + d] = v * 0.1;
                }
            }
            IndexThresholds::PerDim(DimCuts::new(&cuts, dim).unwrap())
        }
    };
    let weights = weighted.then(|| LeeWeights::new(rng.unit(), rng.unit() * 3.0, 2.5).unwrap());
    IndexData {
        dim,
        thresholds,
        reconstruction: None,
        rotation: None,
        weights,
        // Anything above every stored id (the loader requires it).
        next_id: ids
            .iter()
            .max()
            .map_or(0, |m| m.saturating_add(1))
            .saturating_add(rng.below(3) as u64),
        codes: Codes::Owned(codes),
        ids,
        keys,
        key_order,
    }
}

fn assert_same(a: &IndexData, b: &IndexData) {
    assert_eq!(a.dim, b.dim);
    assert_eq!(a.thresholds, b.thresholds);
    assert_eq!(a.weights, b.weights);
    assert_eq!(a.next_id, b.next_id);
    assert_eq!(&a.codes[..], &b.codes[..]);
    assert_eq!(a.ids, b.ids);
    assert_eq!(a.keys, b.keys);
    assert_eq!(a.key_order, b.key_order);
    assert_eq!(a.reconstruction, b.reconstruction);
    assert_eq!(a.rotation, b.rotation);
}

/// `data` with a Haar-random rotation from `seed` (format 3), and every
/// other `seed` a fitted table beside it.
fn rotated(mut data: IndexData, seed: u64) -> IndexData {
    data.rotation = Some(random_rotation(data.dim, seed).unwrap());
    if seed.is_multiple_of(2) {
        data.reconstruction = Some(Reconstruction::gaussian(data.dim, 0.1).unwrap());
    }
    data
}

fn encode(data: &IndexData) -> Vec<u8> {
    let mut buf = Vec::new();
    write_to(data, &mut buf).unwrap();
    buf
}

/// The reason of a Format error, or a panic naming what came back instead.
fn format_reason(result: q2key::Result<IndexData>, what: &str) -> String {
    match result {
        Err(Error::Format { path, reason }) => {
            assert!(!path.is_empty());
            reason
        }
        Err(e) => panic!("{what}: expected a Format error, got {e:?}"),
        Ok(_) => panic!("{what}: decoded without error"),
    }
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes every section checksum and the header checksum, so that a
/// deliberate change reaches the semantic checks.
fn refresh_crcs(b: &mut [u8]) {
    for i in 0..SECTION_COUNT {
        let d = PREAMBLE_LEN + FIELDS_LEN + i * DESCRIPTOR_LEN;
        let (off, len) = (get_u64(b, d + 8) as usize, get_u64(b, d + 16) as usize);
        let crc = crc32c::crc32c(&b[off..off + len]);
        b[d + 24..d + 28].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b[..HEADER_CRC_AT]);
    b[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Offset and length of section `i` of an encoded file.
fn section(b: &[u8], i: usize) -> (usize, usize) {
    let d = PREAMBLE_LEN + FIELDS_LEN + i * DESCRIPTOR_LEN;
    (get_u64(b, d + 8) as usize, get_u64(b, d + 16) as usize)
}

/// A small index with every section non-empty and padding between them.
fn small() -> IndexData {
    random_data(&mut Rng::new(7), 13, 9, Kind::PerDim, true)
}

#[test]
fn round_trips_in_memory_and_on_disk() {
    let mut rng = Rng::new(1);
    let dir = TempDir::new("roundtrip");
    let mut case = 0;
    for kind in [Kind::Gaussian, Kind::Global, Kind::PerDim] {
        for weighted in [false, true] {
            for (dim, rows) in [
                (1, 0),
                (1, 5),
                (3, 17),
                (4, 1),
                (13, 40),
                (33, 3),
                (64, 100),
                (130, 25),
                (384, 0),
            ] {
                let data = random_data(&mut rng, dim, rows, kind, weighted);
                let data = if case % 3 == 1 {
                    rotated(data, case as u64)
                } else {
                    data
                };
                let bytes = encode(&data);
                assert_same(&data, &decode(&bytes, "mem").unwrap());
                // The layout is canonical: decoding and re-encoding gives the same bytes.
                assert_eq!(encode(&decode(&bytes, "mem").unwrap()), bytes);

                let path = dir.path().join(format!("case{case}.q2k"));
                case += 1;
                save(&data, &path).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), bytes);
                let owned = load(&path, false).unwrap();
                assert!(!owned.codes.is_mapped());
                assert_same(&data, &owned);
                let mapped = load(&path, true).unwrap();
                assert!(mapped.codes.is_mapped());
                assert_same(&data, &mapped);
                if rows > 0 {
                    // The mapped codes are 64-byte aligned.
                    assert_eq!(mapped.codes.as_ptr() as usize % ALIGN, 0);
                }
            }
        }
    }
    // Only the saved files remain: no temporary files.
    assert!(dir.entries().iter().all(|n| n.ends_with(".q2k")), "{:?}", dir.entries());
}

/// Enough rows for the parallel checks; corruption far into the codes is still found.
#[test]
fn large_index_round_trips_and_corruption_is_found() {
    let data = random_data(&mut Rng::new(2), 37, 20_000, Kind::Global, false);
    let bytes = encode(&data);
    assert_same(&data, &decode(&bytes, "big").unwrap());
    let (codes_at, codes_len) = section(&bytes, 1);
    let width = code_width(37);
    let row = 17_777;
    let mut b = bytes.clone();
    b[codes_at + row * width + width - 1] |= 0x01; // a padding bit of that row
    refresh_crcs(&mut b);
    let r = format_reason(decode(&b, "big"), "padding bit far in");
    assert_eq!(r, format!("corrupted: row {row} has nonzero padding bits in its code"));
    let mut b = bytes.clone();
    b[codes_at + codes_len - width] ^= 0xC0; // the first symbol of the last row
    refresh_crcs(&mut b);
    let r = format_reason(decode(&b, "big"), "last row");
    assert_eq!(r, "corrupted: row 19999 has a key that does not match its code");
}

#[test]
fn every_truncation_is_a_format_error() {
    let bytes = encode(&small());
    assert!(bytes.len() > 600, "{}", bytes.len());
    for len in 0..bytes.len() {
        format_reason(decode(&bytes[..len], "t.q2k"), &format!("truncated to {len}"));
    }
    // Through the file loaders too (a few lengths: every one is covered above).
    let dir = TempDir::new("trunc");
    let path = dir.path().join("t.q2k");
    for len in [0, 7, 15, 100, FIRST_SECTION_AT, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        for mmap in [false, true] {
            let reason = format_reason(load(&path, mmap), &format!("file truncated to {len}"));
            let msg = load(&path, mmap).unwrap_err().to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
            assert!(msg.ends_with(&reason));
        }
    }
    // Trailing bytes are refused as well.
    let mut longer = bytes.clone();
    longer.push(0);
    let r = format_reason(decode(&longer, "t"), "one trailing byte");
    assert!(r.contains("after the last section"), "{r}");
}

#[test]
fn every_header_bit_flip_is_a_format_error() {
    let bytes = encode(&small());
    for at in 0..FIRST_SECTION_AT {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[at] ^= 1 << bit;
            format_reason(decode(&b, "h"), &format!("header byte {at} bit {bit}"));
        }
    }
    // Whole-byte replacements as well.
    let mut rng = Rng::new(3);
    for at in 0..FIRST_SECTION_AT {
        for _ in 0..3 {
            let mut b = bytes.clone();
            b[at] ^= 1 + rng.below(255) as u8;
            format_reason(decode(&b, "h"), &format!("header byte {at}"));
        }
    }
}

#[test]
fn random_body_flips_are_format_errors() {
    let bytes = encode(&small());
    let mut rng = Rng::new(11);
    let body = bytes.len() - FIRST_SECTION_AT;
    for i in 0..1000 {
        let at = FIRST_SECTION_AT + rng.below(body);
        let mut b = bytes.clone();
        b[at] ^= 1 + rng.below(255) as u8;
        format_reason(decode(&b, "b"), &format!("flip {i} at byte {at}"));
    }
    // Every byte of the body, one bit each, to be sure padding is covered.
    for at in FIRST_SECTION_AT..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        format_reason(decode(&b, "b"), &format!("body byte {at}"));
    }
}

#[test]
fn foreign_newer_and_empty_files() {
    let r = format_reason(decode(&[], "e"), "empty");
    assert!(r.contains("empty file"), "{r}");
    let r = format_reason(decode(b"PK\x03\x04 this is a zip file, honest", "z"), "foreign");
    assert!(r.contains("not a q2key index"), "{r}");
    let r = format_reason(decode(b"Q2KEY", "z"), "magic prefix");
    assert!(r.contains("truncated"), "{r}");

    let mut b = encode(&small());
    b[8..12].copy_from_slice(&4u32.to_le_bytes());
    let r = format_reason(decode(&b, "n"), "newer");
    assert_eq!(r, "written by a newer q2key (format 4); this one reads 1 to 3");
    refresh_crcs(&mut b);
    let r = format_reason(decode(&b, "n"), "newer, consistent checksum");
    assert!(r.contains("newer q2key (format 4)"), "{r}");
    // A format-1 body labelled format 2 (which has a sixth section) is a corrupted header.
    let mut b = encode(&small());
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    let r = format_reason(decode(&b, "n"), "format 1 labelled 2");
    assert!(r.contains("corrupted header: length 240, format 2 has 272"), "{r}");

    let dir = TempDir::new("foreign");
    let path = dir.path().join("x.q2k");
    std::fs::write(&path, b"hello world, not an index at all").unwrap();
    for mmap in [false, true] {
        let msg = load(&path, mmap).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!("{}: not a q2key index (wrong magic bytes)", path.display())
        );
    }
    std::fs::write(&path, b"").unwrap();
    for mmap in [false, true] {
        format_reason(load(&path, mmap), "empty file on disk");
    }
    // A missing file is an I/O error (FileNotFoundError in Python), naming the path.
    let missing = dir.path().join("missing.q2k");
    match load(&missing, false) {
        Err(Error::Io { path, kind, .. }) => {
            assert_eq!(kind, std::io::ErrorKind::NotFound);
            assert_eq!(path, missing.display().to_string());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_counts_error_without_allocating() {
    let base = encode(&small());
    let h = PREAMBLE_LEN;
    // (field offset, value): rows, dim, and both at once, with the code width
    // made consistent so the count checks themselves are reached.
    for (field, value) in [
        (h + 16, u64::MAX),
        (h + 16, 1 << 40),
        (h + 16, (base.len() / 8) as u64),
        (h, u64::MAX),
        (h, 1 << 50),
    ] {
        let mut b = base.clone();
        put_u64(&mut b, field, value);
        if field == h {
            put_u64(&mut b, h + 8, value.div_ceil(4));
        }
        refresh_crcs(&mut b);
        let start = Instant::now();
        let r = format_reason(decode(&b, "huge"), &format!("field {field} = {value}"));
        assert!(start.elapsed() < Duration::from_secs(1), "{r}");
    }
    // Section descriptors pointing past the end of the file.
    for i in 0..SECTION_COUNT {
        let d = h + FIELDS_LEN + i * DESCRIPTOR_LEN;
        for (at, value) in [(d + 8, u64::MAX - 3), (d + 16, u64::MAX), (d + 16, 1 << 45)] {
            let mut b = base.clone();
            put_u64(&mut b, at, value);
            refresh_crcs_header_only(&mut b);
            format_reason(decode(&b, "descriptor"), &format!("section {i} field {at}"));
        }
    }
}

fn refresh_crcs_header_only(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[..HEADER_CRC_AT]);
    b[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Corruption that keeps every checksum valid is still caught by the
/// semantic checks.
#[test]
fn semantic_checks_catch_consistent_checksums() {
    let data = small();
    let base = encode(&data);
    let width = code_width(data.dim);
    let (cuts_at, _) = section(&base, 0);
    let (codes_at, _) = section(&base, 1);
    let (ids_at, _) = section(&base, 2);
    let (keys_at, _) = section(&base, 3);
    let (order_at, _) = section(&base, 4);
    let h = PREAMBLE_LEN;
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("a key that does not match", Box::new(move |b| b[keys_at + 3] ^= 1)),
        (
            "a key that does not match",
            Box::new(move |b| b[codes_at] ^= 0x40), // first symbol of row 0
        ),
        (
            "nonzero padding bits",
            Box::new(move |b| b[codes_at + width - 1] |= 1), // dim 13: 3 padding pairs
        ),
        (
            "appears twice",
            Box::new(move |b| {
                let id0 = get_u64(b, ids_at);
                put_u64(b, ids_at + 8 * 5, id0);
            }),
        ),
        (
            "key order",
            Box::new(move |b| {
                let (x, y) = (get_u64(b, order_at), get_u64(b, order_at + 8));
                put_u64(b, order_at, y);
                put_u64(b, order_at + 8, x);
            }),
        ),
        ("key order", Box::new(move |b| put_u64(b, order_at + 16, 9))),
        (
            "key order",
            Box::new(move |b| {
                let x = get_u64(b, order_at);
                put_u64(b, order_at + 8, x);
            }),
        ),
        (
            "cuts",
            Box::new(move |b| put_u64(b, cuts_at, f64::NAN.to_bits())), // a NaN low cut
        ),
        (
            "cuts",
            Box::new(move |b| put_u64(b, cuts_at, 5.0f64.to_bits())), // low > mid
        ),
        ("nonzero padding before section", Box::new(move |b| b[order_at - 1] = 1)),
        ("weights", Box::new(move |b| put_u64(b, h + 48, (-1.0f64).to_bits()))),
        (
            "weights",
            Box::new(move |b| put_u64(b, h + 56, f64::INFINITY.to_bits())),
        ),
        (
            "overflows to inf", // finite, but dim × w_sign is not
            Box::new(move |b| put_u64(b, h + 56, f64::MAX.to_bits())),
        ),
        ("weights flag", Box::new(move |b| b[h + 36] = 2)),
        ("threshold kind", Box::new(move |b| b[h + 32] = 3)),
        (
            "threshold value",
            Box::new(move |b| put_u64(b, h + 40, 0.5f64.to_bits())),
        ),
        ("code width", Box::new(move |b| put_u64(b, h + 8, 3))),
        ("dimension 0", Box::new(move |b| put_u64(b, h, 0))),
        ("section count", Box::new(move |b| b[h + 72] = 4)),
        (
            "is not KEYS",
            Box::new(move |b| b[h + FIELDS_LEN + 3 * DESCRIPTOR_LEN] = b'X'),
        ),
        (
            "flags",
            Box::new(move |b| b[h + FIELDS_LEN + DESCRIPTOR_LEN + 4] = 1), // CODES flags
        ),
        ("corrupted header: length", Box::new(move |b| b[12] = 241)),
    ];
    for (expect, edit) in cases {
        let mut b = base.clone();
        edit(&mut b);
        assert_ne!(b, base, "{expect}: the edit changed nothing");
        refresh_crcs(&mut b);
        let r = format_reason(decode(&b, "sem"), expect);
        assert!(r.contains(expect), "expected {expect:?} in {r:?}");
    }

    // Global threshold: a negative or NaN tau.
    let mut rng = Rng::new(5);
    let g = encode(&random_data(&mut rng, 7, 4, Kind::Global, false));
    for bad in [-0.5, f64::NAN, f64::INFINITY] {
        let mut b = g.clone();
        put_u64(&mut b, h + 40, f64::to_bits(bad));
        refresh_crcs(&mut b);
        let r = format_reason(decode(&b, "tau"), "tau");
        assert!(r.contains("threshold"), "{r}");
    }
    // Weights stored with the flag off.
    let mut b = g.clone();
    put_u64(&mut b, h + 48, 1.0f64.to_bits());
    refresh_crcs(&mut b);
    format_reason(decode(&b, "w"), "weights without flag");
}

#[test]
fn saving_over_a_mapped_file_is_safe() {
    let mut rng = Rng::new(21);
    let dir = TempDir::new("mapped");
    let path = dir.path().join("idx.q2k");
    let a = random_data(&mut rng, 50, 300, Kind::Global, false);
    let b = random_data(&mut rng, 50, 200, Kind::Gaussian, true);
    save(&a, &path).unwrap();

    let mapped = load(&path, true).unwrap();
    assert!(mapped.codes.is_mapped());
    // Saving the mapped index over the very file it is mapped from.
    save(&mapped, &path).unwrap();
    assert_same(&a, &mapped);
    assert_same(&a, &load(&path, false).unwrap());

    let mapped = load(&path, true).unwrap();
    save(&b, &path).unwrap();
    // The old mapping still reads the old inode; a fresh load reads the new file.
    assert_same(&a, &mapped);
    assert_same(&b, &load(&path, true).unwrap());
    assert_same(&b, &load(&path, false).unwrap());
    assert_eq!(dir.entries(), vec!["idx.q2k".to_string()]);
}

#[test]
fn failed_saves_leave_nothing_behind() {
    let data = small();
    let dir = TempDir::new("atomic");

    // Into a directory that does not exist: an error naming the path, nothing created.
    let path = dir.path().join("no-such-dir").join("idx.q2k");
    let err = save(&data, &path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
    assert!(dir.entries().is_empty());

    // The rename fails (the target is a non-empty directory): the temporary
    // file is removed and the directory is untouched.
    let target = dir.path().join("busy");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let err = save(&data, &target).unwrap_err();
    assert!(err.to_string().starts_with(&target.display().to_string()), "{err}");
    assert_eq!(dir.entries(), vec!["busy".to_string()]);
    assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"x");

    // Inconsistent data is refused before any file is created.
    let mut bad = small();
    bad.keys.pop();
    assert!(matches!(
        save(&bad, &dir.path().join("bad.q2k")),
        Err(Error::Shape { .. })
    ));
    assert_eq!(dir.entries(), vec!["busy".to_string()]);

    // A successful save over an existing file replaces it, leaving only it.
    let path = dir.path().join("idx.q2k");
    std::fs::write(&path, b"old contents").unwrap();
    save(&data, &path).unwrap();
    assert_same(&data, &load(&path, false).unwrap());
    assert_eq!(dir.entries(), vec!["busy".to_string(), "idx.q2k".to_string()]);
}

#[test]
fn a_path_without_a_file_name_is_an_io_error() {
    let err = save(&small(), Path::new("/")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

/// Writes the fuzz target's seed files (small valid indexes of every kind):
/// `cargo test --test index_format -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/load");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(99);
    let cases = [
        (Kind::Gaussian, false, 1, 0),
        (Kind::Gaussian, false, 5, 3),
        (Kind::Global, true, 3, 4),
        (Kind::Global, false, 33, 2),
        (Kind::PerDim, false, 2, 1),
        (Kind::PerDim, true, 7, 5),
    ];
    for (i, (kind, weighted, dim, rows)) in cases.into_iter().enumerate() {
        let data = random_data(&mut rng, dim, rows, kind, weighted);
        std::fs::write(dir.join(format!("seed-{i}.q2k")), encode(&data)).unwrap();
    }
    // Format 3: a rotation, without and with a table.
    for (i, (kind, dim, rows)) in [(Kind::Gaussian, 3, 2), (Kind::PerDim, 5, 3)].into_iter().enumerate() {
        let data = rotated(random_data(&mut rng, dim, rows, kind, false), i as u64 + 1);
        std::fs::write(dir.join(format!("seed-rotation-{i}.q2k")), encode(&data)).unwrap();
    }
}

fn thresholds_of(kind: Kind, dim: usize) -> IndexThresholds {
    match kind {
        Kind::Gaussian => IndexThresholds::Gaussian,
        Kind::Global => IndexThresholds::Global(0.25),
        Kind::PerDim => {
            let cuts: Vec<f64> = [-0.5, 0.0, 0.5].iter().flat_map(|&c| vec![c; dim]).collect();
            IndexThresholds::PerDim(DimCuts::new(&cuts, dim).unwrap())
        }
    }
}

/// An index of dimension `dim` that is empty (`state` 0), holds one row (1),
/// or held rows that were all removed (2).
fn small_index(dim: usize, kind: Kind, weighted: bool, state: u8) -> Index {
    let weights = weighted.then(|| LeeWeights::new(1.0, 2.0, 3.0).unwrap());
    let mut index = Index::new(dim, thresholds_of(kind, dim), weights).unwrap();
    if state > 0 {
        let x: Vec<f32> = (0..dim).map(|d| (d % 7) as f32 * 0.3 - 0.9).collect();
        index.add(&x, None).unwrap();
    }
    if state == 2 {
        assert_eq!(index.remove(&[0]).unwrap(), 1);
    }
    index
}

fn check_small_round_trip(dim: usize, kind: Kind, weighted: bool, state: u8) {
    let dir = TempDir::new("dims");
    let path = dir.path().join("idx.q2k");
    let what = format!("dim {dim}, {kind:?}, weighted {weighted}, state {state}");
    let mut index = small_index(dim, kind, weighted, state);
    let bytes = index.to_bytes().unwrap();
    index.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what}");
    let rows = usize::from(state == 1);
    for mmap in [false, true] {
        let mut back = Index::load(&path, mmap).unwrap_or_else(|e| panic!("{what}, mmap {mmap}: {e}"));
        assert_eq!((back.dim(), back.len()), (dim, rows), "{what}");
        assert_eq!(back.to_bytes().unwrap(), bytes, "{what}");
    }
    let mut back = Index::from_bytes(&bytes).unwrap_or_else(|e| panic!("{what}, from_bytes: {e}"));
    assert_eq!((back.dim(), back.len()), (dim, rows), "{what}");
    assert_eq!(back.to_bytes().unwrap(), bytes, "{what}");
    // The id of a row once added (even if removed) is never handed out again.
    let x = vec![0.1f32; dim];
    let next = back.add(&x, None).unwrap();
    assert_eq!(next, vec![u64::from(state > 0)], "{what}");
}

const KINDS: [Kind; 3] = [Kind::Gaussian, Kind::Global, Kind::PerDim];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Issue 10 item 6: save→load (owned and mapped) and to_bytes→from_bytes
    /// give the same index for every dimension, empty, with one row, or with
    /// every row removed, under every threshold kind (an empty index of
    /// dimension ≥ 1284 was refused by a "dim / 4 ≤ file length" check).
    #[test]
    fn small_indexes_of_every_dimension_round_trip(
        dim in 1usize..=4096, kind in 0usize..3, weighted: bool, state in 0u8..3,
    ) {
        check_small_round_trip(dim, KINDS[kind], weighted, state);
    }
}

/// The boundary of the old check (1283 → 1284) and the largest sampled dimension, every case.
#[test]
fn empty_indexes_at_the_old_dimension_limit_round_trip() {
    for dim in [1283, 1284, 1285, 2048, 4096] {
        for kind in KINDS {
            for state in 0..3 {
                check_small_round_trip(dim, kind, false, state);
            }
        }
    }
}

/// Any dimension is representable in an empty file of the non-per-dimension
/// kinds; per-dimension cuts bound it by the CUTS section, checked without
/// allocating.
#[test]
fn huge_dimensions_of_empty_indexes() {
    for dim in [1usize << 20, 1 << 40] {
        let data = IndexData {
            dim,
            thresholds: IndexThresholds::Gaussian,
            reconstruction: None,
            rotation: None,
            weights: None,
            next_id: 0,
            codes: Codes::Owned(Vec::new()),
            ids: Vec::new(),
            keys: Vec::new(),
            key_order: Vec::new(),
        };
        let bytes = encode(&data);
        assert_eq!(bytes.len(), FIRST_SECTION_AT);
        assert_eq!(decode(&bytes, "huge").unwrap().dim, dim);
    }
}

/// Issue 10 item 7: a file whose `next_id` is not above every stored id is
/// refused (sequential ids after loading would repeat a stored one).
#[test]
fn next_id_at_or_below_a_stored_id_is_refused() {
    let mut data = small();
    let max = *data.ids.iter().max().unwrap();
    for (next_id, ok) in [
        (0, false),
        (max, false),
        (max - 1, false),
        (max + 1, true),
        (u64::MAX, true),
    ] {
        data.next_id = next_id;
        let r = decode(&encode(&data), "next");
        if ok {
            assert_eq!(r.unwrap().next_id, next_id);
        } else {
            let reason = format_reason(r, &format!("next_id {next_id}"));
            assert!(
                reason.contains(&format!("next id {next_id} is not above the largest stored id {max}")),
                "{reason}"
            );
        }
    }
    // The largest id itself: next_id saturates at u64::MAX, and add refuses to go past it.
    data.ids[0] = u64::MAX;
    data.key_order
        .sort_by_key(|&r| (data.keys[r as usize], data.ids[r as usize]));
    data.next_id = u64::MAX;
    let mut index = Index::from_bytes(&encode(&data)).unwrap();
    let x = vec![0.0f32; data.dim];
    assert!(index.add(&x, None).is_err());
    data.next_id = u64::MAX - 1;
    format_reason(decode(&encode(&data), "max"), "next_id below u64::MAX");
}

#[derive(Debug, Clone)]
enum Op {
    AddSequential(usize),
    AddIds(Vec<u64>),
    Remove(Vec<u64>),
    SaveLoad,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..4).prop_map(Op::AddSequential),
        proptest::collection::vec(0u64..40, 1..4).prop_map(Op::AddIds),
        proptest::collection::vec(0u64..40, 1..4).prop_map(Op::Remove),
        Just(Op::SaveLoad),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The class of items 6 and 7: any sequence of adds (sequential and
    /// explicit ids), removes and save/load round trips keeps ids unique,
    /// never hands out an id that is or was stored since the last load, and
    /// every saved file loads again.
    #[test]
    fn add_remove_save_load_keeps_ids_unique(ops in proptest::collection::vec(op(), 1..16), dim in 1usize..40) {
        let mut index = Index::new(dim, IndexThresholds::Gaussian, None).unwrap();
        let mut alive = std::collections::BTreeSet::new();
        let mut ever = std::collections::BTreeSet::new();
        let x = vec![0.3f32; dim];
        for op in ops {
            match op {
                Op::AddSequential(n) => {
                    let got = index.add(&x.repeat(n), None).unwrap();
                    for id in got {
                        prop_assert!(ever.insert(id), "sequential id {} was handed out before", id);
                        alive.insert(id);
                    }
                }
                Op::AddIds(ids) => {
                    let fresh = ids.iter().collect::<std::collections::BTreeSet<_>>().len() == ids.len()
                        && ids.iter().all(|id| !alive.contains(id));
                    let r = index.add(&x.repeat(ids.len()), Some(&ids));
                    prop_assert_eq!(r.is_ok(), fresh);
                    if fresh {
                        alive.extend(ids.iter().copied());
                        ever.extend(ids);
                    }
                }
                Op::Remove(ids) => {
                    let expect = ids.iter().collect::<std::collections::BTreeSet<_>>()
                        .into_iter().filter(|id| alive.contains(id)).count();
                    prop_assert_eq!(index.remove(&ids).unwrap(), expect);
                    for id in &ids {
                        alive.remove(id);
                    }
                }
                Op::SaveLoad => {
                    let bytes = index.to_bytes().unwrap();
                    index = Index::from_bytes(&bytes).unwrap();
                    prop_assert_eq!(index.to_bytes().unwrap(), bytes);
                    // Removed ids are not in the file, but `next_id` still covers them.
                }
            }
            prop_assert_eq!(index.len(), alive.len());
            for &id in &alive {
                prop_assert!(index.contains(id));
            }
        }
    }
}

/// Issue 10 item 10: `save` removes the temporary files of dead writers for
/// its target, never one whose writer is alive (by pid, or holding the lock).
#[test]
fn save_removes_temps_of_dead_writers_only() {
    let dir = TempDir::new("stale");
    let target = dir.path().join("idx.q2k");
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let mut live = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let me = std::process::id();
    let name = |pid: u32, n: u32| format!("idx.q2k.tmp-{pid}-{n}");
    for f in [
        name(dead, 0),
        name(dead, 7),
        name(live.id(), 0),
        name(me, 99),
        format!("other.q2k.tmp-{dead}-0"),
        format!("idx.q2k.tmp-{dead}-x"),
        format!("idx.q2k.tmp-{dead}"),
    ] {
        std::fs::write(dir.path().join(f), b"partial").unwrap();
    }
    // A dead pid whose file is locked by a live holder (pid reuse, another pid namespace).
    let locked_path = dir.path().join(name(dead, 3));
    std::fs::write(&locked_path, b"partial").unwrap();
    let holder = File::open(&locked_path).unwrap();
    holder.lock().unwrap();

    save(&small(), &target).unwrap();
    let mut expect = vec![
        "idx.q2k".to_string(),
        format!("idx.q2k.tmp-{dead}"),
        format!("idx.q2k.tmp-{dead}-x"),
        name(dead, 3),
        name(live.id(), 0),
        name(me, 99),
        format!("other.q2k.tmp-{dead}-0"),
    ];
    expect.sort();
    assert_eq!(dir.entries(), expect);

    drop(holder);
    live.kill().unwrap();
    live.wait().unwrap();
    assert_eq!(remove_stale_temps(&target), 2);
    assert_eq!(remove_stale_temps(&target), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Item 7, as a law over any `next_id` a file may carry: either the loader
    /// refuses it, or sequential ids after loading never repeat a stored id
    /// and the re-saved file loads.
    #[test]
    fn any_stored_next_id_is_refused_or_safe(
        ids in proptest::collection::btree_set(0u64..1000, 0..8), next_id in 0u64..1100,
    ) {
        let ids: Vec<u64> = ids.into_iter().collect();
        let dim = 6;
        let mut index = Index::new(dim, IndexThresholds::Gaussian, None).unwrap();
        let x = vec![0.2f32; dim];
        index.add(&x.repeat(ids.len()), Some(&ids)).unwrap();
        let mut bytes = index.to_bytes().unwrap();
        put_u64(&mut bytes, PREAMBLE_LEN + 24, next_id);
        refresh_crcs_header_only(&mut bytes);
        match Index::from_bytes(&bytes) {
            Err(e) => {
                prop_assert!(matches!(e, Error::Format { .. }), "{e:?}");
                prop_assert!(ids.last().is_some_and(|&m| next_id <= m), "{e}");
            }
            Ok(mut loaded) => {
                let got = loaded.add(&x.repeat(3), None).unwrap();
                for id in &got {
                    prop_assert!(!ids.contains(id), "id {} handed out again", id);
                }
                let again = loaded.to_bytes().unwrap();
                prop_assert!(Index::from_bytes(&again).is_ok());
            }
        }
    }
}
