//! Asymmetric search through the index (SPEC §8): equal to a brute force of
//! the SPEC's exact score over the alive, allowed rows, ordered by (score,
//! id), with removals, filters, user ids, every backend and thread count;
//! the reconstruction table survives save/load (format 2) and files without
//! one (format 1) load with the analytic default.

mod common;

use common::Rng;
use proptest::prelude::*;
use q2key::index::format::{decode, header_crc_at, write_to, DESCRIPTOR_LEN, FIELDS_LEN, PREAMBLE_LEN};
use q2key::index::{Codes, Filter, Index, IndexData, IndexThresholds};
use q2key::{code_width, pack, unpack, Backend, DimCuts, Error, Kernels, Reconstruction, Thresholds};

/// SPEC §8's exact score, written out from the spec (not from the crate).
fn spec_score(q: &[f32], xhat: &[f32]) -> f64 {
    let norm = q
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .fold(0.0, |a, b| a + b)
        .sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    let n = q.len();
    let (mut p, mut r) = ([0.0f64; 4], [0.0f64; 4]);
    for m in 0..n.div_ceil(2) {
        let (mut pm, mut rm) = (0.0f64, 0.0f64);
        for d in [2 * m, 2 * m + 1] {
            if d < n {
                let x = f64::from(xhat[d]);
                pm += f64::from(q[d]) / norm * x;
                rm += x * x;
            }
        }
        p[m % 4] += pm;
        r[m % 4] += rm;
    }
    let dot = (p[0] + p[1]) + (p[2] + p[3]);
    let ss = (r[0] + r[1]) + (r[2] + r[3]);
    if ss == 0.0 {
        0.0
    } else {
        dot / ss.sqrt()
    }
}

/// A coarse monotone table (quarter steps, some zeros and repeats): many exact ties.
fn coarse_table(rng: &mut Rng, dim: usize) -> Reconstruction {
    let values: Vec<f32> = (0..dim)
        .flat_map(|_| {
            let mut v = [0.0f32, 0.5, 1.0, 0.25].map(|x| x - rng.below(3) as f32 * 0.25);
            v.sort_by(f32::total_cmp);
            v
        })
        .collect();
    Reconstruction::new(&values, dim).unwrap()
}

struct Case {
    dim: usize,
    index: Index,
    /// Per stored row (insertion order, removed rows too): id, symbols, alive.
    rows: Vec<(u64, Vec<u8>, bool)>,
    table: Reconstruction,
}

fn build(rng: &mut Rng, dim: usize, n: usize, fitted: bool) -> Case {
    let table = if fitted {
        coarse_table(rng, dim)
    } else {
        Thresholds::gaussian(dim).unwrap().table_for(dim).unwrap()
    };
    let index = Index::new(dim, IndexThresholds::Gaussian, None)
        .unwrap()
        .with_reconstruction(fitted.then(|| table.clone()))
        .unwrap();
    let mut case = Case {
        dim,
        index,
        rows: Vec::new(),
        table,
    };
    // Two batches with ids that do not increase with rows (ties then go by id, not row).
    for batch in 0..2 {
        let symbols: Vec<u8> = (0..n * dim).map(|_| [0u8, 1, 2, 3][rng.below(4)]).collect();
        let mut codes = vec![0u8; n * code_width(dim)];
        pack(&symbols, dim, &mut codes).unwrap();
        let ids: Vec<u64> = (0..n as u64).map(|i| 5000 - 2 * i - batch).collect();
        case.index.add_codes(&codes, Some(&ids)).unwrap();
        for (id, s) in ids.iter().zip(symbols.chunks_exact(dim)) {
            case.rows.push((*id, s.to_vec(), true));
        }
    }
    case
}

impl Case {
    fn remove(&mut self, rng: &mut Rng, share: usize) {
        let gone: Vec<u64> = self
            .rows
            .iter()
            .filter(|r| r.2 && rng.below(100) < share)
            .map(|r| r.0)
            .collect();
        assert_eq!(self.index.remove(&gone).unwrap(), gone.len());
        for r in &mut self.rows {
            r.2 &= !gone.contains(&r.0);
        }
        // The index may have compacted: its rows are the alive ones, in order.
        if self.index.stats().dead == 0 {
            self.rows.retain(|r| r.2);
        }
    }

    /// The expected `(distances, ids)` of one query among the alive rows `allowed` lets through.
    fn expected(&self, q: &[f32], k: usize, allowed: impl Fn(u64) -> bool) -> (Vec<f32>, Vec<u64>) {
        let mut scored: Vec<(f64, u64)> = self
            .rows
            .iter()
            .filter(|r| r.2 && allowed(r.0))
            .map(|(id, s, _)| {
                let xhat: Vec<f32> = s.iter().enumerate().map(|(d, &s)| self.table.value(d, s)).collect();
                (spec_score(q, &xhat), *id)
            })
            .collect();
        scored.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        scored.truncate(k);
        let dist = scored.iter().map(|s| (1.0 - f64::from(s.0 as f32)) as f32).collect();
        (dist, scored.iter().map(|s| s.1).collect())
    }

    fn check(&self, queries: &[f32], k: usize, filter: Option<Filter<'_>>, allowed: impl Fn(u64) -> bool + Copy) {
        let kernels: Vec<&Kernels> = Backend::supported()
            .into_iter()
            .filter_map(Kernels::for_backend)
            .collect();
        for threads in [1usize, 3] {
            for &kernels in &kernels {
                let got = q2key::parallel::install(Some(threads), || {
                    self.index.search_asym_with(kernels, queries, k, filter)
                })
                .unwrap()
                .unwrap();
                for (qi, q) in queries.chunks_exact(self.dim).enumerate() {
                    let (dist, ids) = self.expected(q, k, allowed);
                    assert_eq!(got.columns, ids.len());
                    let c = got.columns;
                    assert_eq!(
                        &got.ids[qi * c..(qi + 1) * c],
                        &ids[..],
                        "dim {} k {k} query {qi}",
                        self.dim
                    );
                    assert_eq!(&got.distances[qi * c..(qi + 1) * c], &dist[..]);
                }
            }
        }
    }
}

fn queries(rng: &mut Rng, nq: usize, dim: usize) -> Vec<f32> {
    let mut q: Vec<f32> = (0..nq * dim).map(|_| rng.below(5) as f32 - 2.0).collect();
    q[..dim].fill(0.0); // a zero query: every score 0, chosen by id
    q
}

#[test]
fn index_search_equals_the_spec_brute_force() {
    let mut rng = Rng::new(42);
    for (dim, n, fitted) in [(7usize, 150usize, true), (16, 400, false), (33, 1100, true)] {
        let mut case = build(&mut rng, dim, n, fitted);
        let q = queries(&mut rng, 4, dim);
        for k in [1usize, 10, 100_000] {
            case.check(&q, k, None, |_| true);
        }
        case.remove(&mut rng, 10); // tombstones (no compaction yet)
        let wanted: Vec<u64> = case.rows.iter().map(|r| r.0).filter(|id| id % 3 == 0).collect();
        let mut mask = vec![0u8; 5001];
        for id in (0..5001).step_by(2) {
            mask[id] = 7; // any non-zero byte allows
        }
        for k in [1usize, 10, 100_000] {
            case.check(&q, k, None, |_| true);
            case.check(&q, k, Some(Filter::Ids(&wanted)), |id| id % 3 == 0);
            case.check(&q, k, Some(Filter::Mask(&mask)), |id| id % 2 == 0);
            // A narrow filter: the index gathers its rows (no stored norms).
            case.check(&q, k, Some(Filter::Ids(&wanted[..3.min(wanted.len())])), |id| {
                wanted[..3.min(wanted.len())].contains(&id)
            });
        }
        case.remove(&mut rng, 40); // compacts: the norms move with the rows
        case.check(&q, 10, None, |_| true);
        // Rows added after the first search get their norms too.
        let extra: Vec<u8> = (0..dim).map(|d| (d % 4) as u8).collect();
        let mut code = vec![0u8; code_width(dim)];
        pack(&extra, dim, &mut code).unwrap();
        case.index.add_codes(&code, Some(&[9_999_999])).unwrap();
        case.rows.push((9_999_999, extra, true));
        case.check(&q, 10, None, |_| true);
    }
}

#[test]
fn search_checks_its_arguments() {
    let mut rng = Rng::new(3);
    let case = build(&mut rng, 8, 10, false);
    let e = case.index.search_asym(&[0.0; 7], 1, None).unwrap_err();
    assert!(matches!(e, Error::Shape { arg: "queries", .. }), "{e}");
    let e = case.index.search_asym(&[0.0; 8], 0, None).unwrap_err();
    assert!(e.to_string().starts_with("k: "), "{e}");
    let mut q = [1.0f32; 8];
    q[3] = f32::NAN;
    let e = case.index.search_asym(&q, 1, None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                arg: "queries",
                row: 0,
                col: 3,
                ..
            }
        ),
        "{e}"
    );
    // An empty filter: no columns, queries still checked.
    let got = case.index.search_asym(&[1.0; 8], 3, Some(Filter::Ids(&[]))).unwrap();
    assert_eq!(got.columns, 0);
    assert!(case.index.search_asym(&q, 3, Some(Filter::Ids(&[]))).is_err());
}

/// The table goes through save/load and bytes; without a table the file is
/// format 1 (what older q2key reads) and loads with the analytic default.
#[test]
fn the_table_is_saved_and_old_files_get_the_default() {
    let mut rng = Rng::new(9);
    let case = build(&mut rng, 13, 60, true);
    let q = queries(&mut rng, 3, 13);
    let want = case.index.search_asym(&q, 5, None).unwrap();
    let mut index = case.index;
    let bytes = index.to_bytes().unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2);
    let back = Index::from_bytes(&bytes).unwrap();
    assert_eq!(back.reconstruction(), Some(&case.table));
    assert_eq!(back.search_asym(&q, 5, None).unwrap(), want);
    let dir = std::env::temp_dir().join(format!("q2key-asym-index-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.q2");
    index.save(&path).unwrap();
    for mmap in [false, true] {
        let loaded = Index::load(&path, mmap).unwrap();
        assert_eq!(loaded.search_asym(&q, 5, None).unwrap(), want);
        assert_eq!(loaded.threshold_set().unwrap().reconstruction(), Some(&case.table));
    }
    let _ = std::fs::remove_dir_all(&dir);

    // Without a table: format 1, and the Gaussian default scores.
    let plain = index.with_reconstruction(None).unwrap();
    let mut plain = plain;
    let bytes = plain.to_bytes().unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    let old = Index::from_bytes(&bytes).unwrap();
    assert_eq!(old.reconstruction(), None);
    let explicit = Index::from_bytes(&bytes)
        .unwrap()
        .with_reconstruction(Some(
            Reconstruction::gaussian(13, q2key::gaussian_threshold(13).unwrap()).unwrap(),
        ))
        .unwrap();
    assert_eq!(
        old.search_asym(&q, 5, None).unwrap(),
        explicit.search_asym(&q, 5, None).unwrap()
    );
    // A table of another dimension is refused.
    let e = Index::new(4, IndexThresholds::Gaussian, None)
        .unwrap()
        .with_reconstruction(Some(coarse_table(&mut rng, 5)))
        .unwrap_err();
    assert!(e.to_string().starts_with("table: "), "{e}");
}

fn data_with_table(dim: usize, rows: usize, table: Option<Reconstruction>, per_dim: bool) -> IndexData {
    let mut rng = Rng::new(dim as u64 * 31 + rows as u64);
    let symbols: Vec<u8> = (0..rows * dim).map(|_| rng.below(4) as u8).collect();
    let mut codes = vec![0u8; rows * code_width(dim)];
    pack(&symbols, dim, &mut codes).unwrap();
    let mut keys = vec![0u64; rows];
    let mut transitions = vec![0u32; rows];
    q2key::keys_from_codes(&codes, dim, &mut keys, &mut transitions).unwrap();
    let ids: Vec<u64> = (0..rows as u64).collect();
    let mut order: Vec<u64> = (0..rows as u64).collect();
    order.sort_by_key(|&r| (keys[r as usize], ids[r as usize]));
    let thresholds = if per_dim {
        IndexThresholds::PerDim(DimCuts::uniform(0.1, dim).unwrap())
    } else {
        IndexThresholds::Gaussian
    };
    IndexData {
        dim,
        thresholds,
        reconstruction: table,
        rotation: None,
        weights: None,
        next_id: rows as u64,
        codes: Codes::Owned(codes),
        ids,
        keys,
        key_order: order,
    }
}

/// Offset of section `i`'s descriptor.
fn descriptor(i: usize) -> usize {
    PREAMBLE_LEN + FIELDS_LEN + i * DESCRIPTOR_LEN
}

/// `bytes` with every section CRC and the header CRC recomputed (format 2).
fn fix_checksums(mut b: Vec<u8>) -> Vec<u8> {
    for i in 0..6 {
        let d = descriptor(i);
        let off = u64::from_le_bytes(b[d + 8..d + 16].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(b[d + 16..d + 24].try_into().unwrap()) as usize;
        let crc = crc32c::crc32c(&b[off..off + len]);
        b[d + 24..d + 28].copy_from_slice(&crc.to_le_bytes());
    }
    let at = header_crc_at(6);
    let crc = crc32c::crc32c(&b[..at]);
    b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

/// A corrupted table (non-finite, unordered, out of range) is a format
/// error naming the table, even behind correct checksums.
#[test]
fn the_loader_rejects_a_corrupted_table() {
    let table = Reconstruction::new(&[-1.0, -0.5, 0.5, 1.0, -2.0, 0.0, 0.0, 2.0, -0.1, -0.1, 0.1, 0.3], 3).unwrap();
    let mut bytes = Vec::new();
    write_to(&data_with_table(3, 4, Some(table), false), &mut bytes).unwrap();
    let d = descriptor(5);
    let off = u64::from_le_bytes(bytes[d + 8..d + 16].try_into().unwrap()) as usize;
    for (at, value) in [(0usize, f32::NAN), (4, f32::INFINITY), (1, -5.0), (2, 1e30), (3, 1e-20)] {
        let mut b = bytes.clone();
        b[off + 4 * at..off + 4 * at + 4].copy_from_slice(&value.to_le_bytes());
        match decode(&fix_checksums(b), "t") {
            Err(Error::Format { reason, .. }) => assert!(reason.contains("reconstruction table"), "{reason}"),
            other => panic!("value {value} at {at}: {other:?}"),
        }
    }
    // A checksum mismatch is caught first.
    let mut b = bytes.clone();
    b[off] ^= 1;
    assert!(matches!(decode(&b, "t"), Err(Error::Format { .. })));
    // A format-2 file must hold a table of 16·dim bytes: a truncated one is refused.
    let mut b = bytes.clone();
    b.truncate(b.len() - 16);
    assert!(matches!(decode(&b, "t"), Err(Error::Format { .. })));
    assert_eq!(decode(&bytes, "t").unwrap().reconstruction.map(|t| t.dim()), Some(3));
}

fn table_strategy(dim: usize) -> impl Strategy<Value = Reconstruction> {
    proptest::collection::vec(
        proptest::prop_oneof![4 => -2.0f32..2.0, 1 => Just(0.0f32), 1 => -1e-3f32..1e-3],
        4 * dim,
    )
    .prop_map(move |mut v| {
        for row in v.chunks_exact_mut(4) {
            for x in row.iter_mut() {
                if x.abs() < 1e-12 {
                    *x = 0.0;
                }
            }
            row.sort_by(f32::total_cmp);
        }
        Reconstruction::new(&v, dim).unwrap()
    })
}

proptest! {
    /// save → load keeps the table bit for bit (and every other field), and
    /// re-encoding gives the same bytes (the format stays canonical).
    #[test]
    fn tables_round_trip_through_the_file(
        (dim, table) in (1usize..40).prop_flat_map(|d| (Just(d), table_strategy(d))),
        rows in 0usize..12,
        per_dim in any::<bool>(),
    ) {
        let data = data_with_table(dim, rows, Some(table.clone()), per_dim);
        let mut bytes = Vec::new();
        write_to(&data, &mut bytes).unwrap();
        let back = decode(&bytes, "p").unwrap();
        prop_assert_eq!(back.reconstruction.as_ref(), Some(&table));
        prop_assert_eq!(&back.ids, &data.ids);
        prop_assert_eq!(&back.codes[..], &data.codes[..]);
        let mut again = Vec::new();
        write_to(&back, &mut again).unwrap();
        prop_assert_eq!(again, bytes);
    }
}

/// Decoding codes gives the table's values of their symbols.
#[test]
fn decode_reads_the_table() {
    let mut rng = Rng::new(5);
    let dim = 11;
    let table = coarse_table(&mut rng, dim);
    let symbols: Vec<u8> = (0..3 * dim).map(|_| rng.below(4) as u8).collect();
    let mut codes = vec![0u8; 3 * code_width(dim)];
    pack(&symbols, dim, &mut codes).unwrap();
    let mut back = vec![0u8; 3 * dim];
    unpack(&codes, dim, &mut back).unwrap();
    let mut out = vec![0f32; 3 * dim];
    q2key::decode(&codes, dim, &table, &mut out).unwrap();
    for (i, (&s, &v)) in symbols.iter().zip(&out).enumerate() {
        assert_eq!(v, table.value(i % dim, s));
    }
}

/// Writes format-2 seeds (with a reconstruction table) for the `load` fuzz
/// target beside format 1's: `cargo test --test asym_index -- --ignored write_format2_fuzz_seeds`.
#[test]
#[ignore]
fn write_format2_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/load");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(77);
    for (i, (dim, rows, per_dim)) in [(3usize, 2usize, false), (9, 4, true)].into_iter().enumerate() {
        let data = data_with_table(dim, rows, Some(coarse_table(&mut rng, dim)), per_dim);
        let mut bytes = Vec::new();
        write_to(&data, &mut bytes).unwrap();
        std::fs::write(dir.join(format!("seed-format2-{i}.q2k")), bytes).unwrap();
    }
}
