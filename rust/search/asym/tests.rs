use super::candidates::EXACT_START_MAX_K;
use super::exact::{exact_score, exact_score_of_values, pair_terms, pair_values};
use super::lists::search_asym_lists;
use super::tables::query_norm;
use super::*;
use crate::codes::pack_row;
use crate::kernels::scalar_asym::{fast_scan_blocks, LUT_MAX};
use crate::search::flag_bits;

/// The scoped search (mask and tie keys, as the index uses it) equals a
/// naive brute force over the allowed rows ordered by (score, key).
#[test]
fn scoped_search_follows_the_mask_and_the_tie_keys() {
    let mut state = 12345u64;
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as usize
    };
    for (dim, n) in [(7usize, 300usize), (16, 1000), (33, 2100)] {
        let width = code_width(dim);
        let values: Vec<f32> = (0..dim)
            .flat_map(|_| {
                let mut v = [0.0f32, 0.5, 1.0, 0.25].map(|x| x - next(3) as f32 * 0.25);
                v.sort_by(f32::total_cmp);
                v
            })
            .collect();
        let table = Reconstruction::new(&values, dim).unwrap();
        let mut codes = vec![0u8; n * width];
        for row in codes.chunks_exact_mut(width) {
            let s: Vec<u8> = (0..dim).map(|_| [1u8, 2][next(2)]).collect();
            pack_row(&s, row);
        }
        let mask: Vec<u8> = (0..n.div_ceil(8)).map(|_| next(256) as u8).collect();
        let mut keys: Vec<u64> = (0..n as u64).map(|i| 7 * i + 3).collect();
        for i in (1..n).rev() {
            keys.swap(i, next(i + 1));
        }
        let nq = 3;
        let queries: Vec<f32> = (0..nq * dim).map(|_| next(5) as f32 - 2.0).collect();
        let scope = RowScope {
            mask: Some(&mask),
            tie_keys: Some(&keys),
        };
        for k in [1usize, 10, 5000] {
            let kk = scoped_columns_for(k, n, scope);
            let (mut s, mut r) = (vec![0f32; nq * kk], vec![0i64; nq * kk]);
            for kernels in crate::Backend::supported().into_iter().filter_map(Kernels::for_backend) {
                search_asym_scoped(
                    kernels,
                    &queries,
                    CodesRef::RowMajor(&codes),
                    dim,
                    &table,
                    None,
                    k,
                    scope,
                    &mut s,
                    &mut r,
                )
                .unwrap();
                for (qi, q) in queries.chunks_exact(dim).enumerate() {
                    let terms = pair_terms(q, query_norm(q), &table, &pair_squares(&table));
                    let mut want: Vec<(f64, u64, u32)> = (0..n)
                        .filter(|&row| mask[row / 8] >> (row % 8) & 1 == 1)
                        .map(|row| {
                            let score = if query_norm(q) == 0.0 {
                                0.0
                            } else {
                                exact_score(&terms, &codes[row * width..][..width])
                            };
                            (score, keys[row], row as u32)
                        })
                        .collect();
                    want.sort_by(by_score_then_key);
                    let want: Vec<i64> = want.iter().take(kk).map(|w| i64::from(w.2)).collect();
                    assert_eq!(&r[qi * kk..(qi + 1) * kk], &want[..], "dim {dim} k {k} query {qi}");
                }
            }
        }
    }
}

proptest::proptest! {
    /// The rows of a group that pass the bound test, as bits: a whole group
    /// of 16 (the vectorised path) and a short last group (bit by bit), with
    /// more norms than sums as the scan passes them, equal the test row by row.
    #[test]
    fn pass_bits_sets_the_bit_of_each_row_that_passes(
        sums in proptest::collection::vec(0u32..1000, 1..=16),
        norms in proptest::collection::vec(0.0f32..2.0, 16..40),
        need in 0.0f32..1000.0,
    ) {
        let passes = |s: u32, n: f32| s as f32 * n >= need;
        let bits = super::scan::pass_bits(&sums, &norms, passes);
        for (j, (&s, &n)) in sums.iter().zip(&norms).enumerate() {
            proptest::prop_assert_eq!(bits >> j & 1 == 1, passes(s, n), "row {}", j);
        }
        proptest::prop_assert_eq!(bits >> sums.len(), 0);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// The batch search over block sets (each set scanned once for all
    /// its queries, candidates re-ranked by decreasing upper bound) on
    /// any thread count and backend returns for every query exactly
    /// what the one-query search returns over that query's sets: rows
    /// repeated within and across sets (equal scores ordered by key),
    /// masks, a zero query and a query routed nowhere included. The
    /// batch starts each query's bound from exact scores up to
    /// `EXACT_START_MAX_K` and seeds it above; the one-query search
    /// always seeds: `k` spans both.
    #[test]
    fn batch_over_sets_equals_each_query_alone(
        seed in 0u64..1_000_000, dim in 2usize..24, k in 1usize..45,
        masked in proptest::bool::ANY, threads in 1usize..4,
    ) {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let width = code_width(dim);
        let values: Vec<f32> = (0..dim)
            .flat_map(|_| {
                let mut v = [-1.0f32, -0.25, 0.25, 1.0].map(|x| x + next(3) as f32 * 0.125);
                v.sort_by(f32::total_cmp);
                v
            })
            .collect();
        let table = Reconstruction::new(&values, dim).unwrap();
        let shared = SharedTables::new(&table);
        // 7 sets of 0..150 rows; every third row repeats an earlier code.
        let sizes: Vec<usize> = (0..7).map(|s| if s == 3 { 0 } else { next(150) }).collect();
        let mut codes: Vec<Vec<u8>> = Vec::new();
        for &n in &sizes {
            let mut c = vec![0u8; n * width];
            for r in 0..n {
                if r % 3 == 2 {
                    c.copy_within((r / 2) * width..(r / 2 + 1) * width, r * width);
                } else {
                    let signs: Vec<u8> = (0..dim).map(|_| next(4) as u8).collect();
                    pack_row(&signs, &mut c[r * width..(r + 1) * width]);
                }
            }
            codes.push(c);
        }
        let total: usize = sizes.iter().sum();
        let mut keys: Vec<u64> = (0..total as u64).map(|i| 3 * i + 1).collect();
        for i in (1..total).rev() {
            keys.swap(i, next(i + 1));
        }
        let blocks: Vec<Vec<u8>> = codes
            .iter()
            .zip(&sizes)
            .map(|(c, &n)| {
                let mut b = vec![0u8; n.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * width];
                fast_scan_blocks(c, width, &mut b);
                b
            })
            .collect();
        let norms: Vec<Vec<f32>> = codes
            .iter()
            .map(|c| c.chunks_exact(width).map(|row| shared.squares.norm(row)).collect())
            .collect();
        let masks: Vec<Vec<u8>> = sizes.iter().map(|&n| (0..n.div_ceil(8)).map(|_| next(256) as u8).collect()).collect();
        let mut at = 0;
        let sets: Vec<BlockSet<'_>> = (0..sizes.len())
            .map(|s| {
                let set = BlockSet {
                    blocks: &blocks[s],
                    rows: sizes[s],
                    norms: &norms[s],
                    norm_range: norm_range(&norms[s]),
                    keys: &keys[at..at + sizes[s]],
                    mask: masked.then_some(&masks[s][..]),
                };
                at += sizes[s];
                set
            })
            .collect();
        let nq = 9;
        let mut queries: Vec<f32> = (0..nq * dim).map(|_| next(9) as f32 - 4.0).collect();
        queries[..dim].fill(0.0);
        let routes: Vec<Vec<u32>> = (0..nq)
            .map(|q| {
                let mut r: Vec<u32> = (0..7).filter(|_| q != 1 && next(2) == 0).collect();
                if q % 2 == 0 {
                    r.reverse();
                }
                r
            })
            .collect();
        for kernels in crate::Backend::supported().into_iter().filter_map(Kernels::for_backend) {
            let want: Vec<Vec<(f32, usize, usize)>> = queries
                .chunks_exact(dim)
                .zip(&routes)
                .map(|(q, route)| {
                    let own: Vec<BlockSet<'_>> = route.iter().map(|&s| sets[s as usize]).collect();
                    search_asym_lists(kernels, q, &table, &shared, &own, k)
                        .into_iter()
                        .map(|(score, s, r)| (score, route[s] as usize, r))
                        .collect()
                })
                .collect();
            let got = crate::parallel::install(Some(threads), || {
                search_asym_lists_batch(kernels, &queries, &table, &shared, &sets, &routes, k)
            })
            .unwrap();
            for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                proptest::prop_assert_eq!(
                    g.iter().map(|h| (h.0.to_bits(), h.1, h.2)).collect::<Vec<_>>(),
                    w.iter().map(|h| (h.0.to_bits(), h.1, h.2)).collect::<Vec<_>>(),
                    "query {}", q
                );
            }
        }
    }
}

fn scoped_columns_for(k: usize, n: usize, scope: RowScope<'_>) -> usize {
    crate::search::scoped_columns(k, n, scope)
}

/// The tables as first written (every pair's 16 values formed, then
/// their minima and maxima folded): the bytes and bounds the search
/// uses must not change (SPEC §8 fixes the quantisation).
pub(super) fn reference_tables(q: &[f32], table: &Reconstruction) -> (Vec<u8>, [f64; 4]) {
    let width = code_width(table.dim());
    let norm = query_norm(q);
    let mut luts = vec![0u8; 32 * width];
    if norm == 0.0 {
        return (luts, [0.0, 0.0, 0.0, norm]);
    }
    let dim = table.dim();
    let mut values = vec![0.0f64; 32 * width];
    let products = |d: usize| -> [f64; 4] {
        if d >= dim {
            return [0.0; 4];
        }
        let u = f64::from(q[d]) / norm;
        [0u8, 1, 2, 3].map(|g| u * f64::from(table.of_gray(d, g)))
    };
    for (m, out) in values.chunks_exact_mut(16).enumerate() {
        let (first, second) = (products(2 * m), products(2 * m + 1));
        for (n, v) in out.iter_mut().enumerate() {
            *v = if 2 * m + 1 < dim {
                first[n >> 2] + second[n & 3]
            } else {
                first[n >> 2]
            };
        }
    }
    let (mut bias, mut range, mut magnitude) = (0.0f64, 0.0f64, 0.0f64);
    let mins: Vec<f64> = values
        .chunks_exact(16)
        .map(|t| {
            let lo = t.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = t.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            range = range.max(hi - lo);
            magnitude += lo.abs().max(hi.abs()) + lo.abs();
            bias += lo;
            lo
        })
        .collect();
    let top = f64::from(LUT_MAX);
    let scale = if range > 0.0 { range / top } else { 1.0 };
    let mut err = 0.0f64;
    for (m, t) in values.chunks_exact(16).enumerate() {
        let mut worst = 0.0f64;
        for (n, &v) in t.iter().enumerate() {
            let level = f64::from(((v - mins[m]) * (1.0 / scale) + 0.5).min(top) as i32);
            luts[16 * m + n] = level as u8;
            worst = worst.max((v - mins[m] - level * scale).abs());
        }
        err += worst;
    }
    magnitude += scale * top * (2 * width) as f64 + err;
    let err = err + BOUND_SLACK * magnitude + f64::MIN_POSITIVE;
    (luts, [scale, bias, err, norm])
}

proptest::proptest! {
    /// `flag_bits` sets bit j exactly for the flags that are 1.
    #[test]
    fn flag_bits_has_one_bit_per_set_flag(flags in proptest::array::uniform16(0u8..2)) {
        let bits = flag_bits(flags);
        for (j, &f) in flags.iter().enumerate() {
            proptest::prop_assert_eq!(bits >> j & 1, u32::from(f));
        }
        proptest::prop_assert_eq!(bits >> 16, 0);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// The query tables (bytes, scale, bias, error bound) and pair values
    /// are those of the direct computation, bit for bit, for any
    /// dimension (odd ones and a last code byte of padding too), tables
    /// with equal values and zeros, and queries with zeros, repeats and
    /// a wide range of magnitudes.
    #[test]
    fn query_tables_equal_the_direct_computation(
        dim in 1usize..70,
        seed in proptest::prelude::any::<u64>(),
        zero_query in proptest::prelude::any::<bool>(),
    ) {
        let mut state = seed | 1;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let values: Vec<f32> = (0..dim)
            .flat_map(|_| {
                let mut v = [0u64; 4].map(|_| next(9) as f32 * 0.125 - 0.5);
                if next(4) == 0 {
                    v = [0.0; 4];
                }
                v.sort_by(f32::total_cmp);
                v
            })
            .collect();
        let table = Reconstruction::new(&values, dim).unwrap();
        let q: Vec<f32> = (0..dim)
            .map(|_| if zero_query { 0.0 } else { (next(21) as f32 - 10.0) * [1e-3f32, 1.0, 7.5e2][next(3) as usize] })
            .collect();
        let (luts, [scale, bias, err, norm]) = reference_tables(&q, &table);
        // Every backend's table quantiser gives the same bytes and bounds.
        for backend in crate::kernels::Backend::supported() {
            let kernels = Kernels::for_backend(backend).unwrap();
            let qt = QueryTables::new(kernels, &q, &table);
            proptest::prop_assert_eq!(&qt.luts, &luts, "{:?}", backend);
            proptest::prop_assert_eq!(
                [qt.scale, qt.bias, qt.err, qt.norm].map(f64::to_bits),
                [scale, bias, err, norm].map(f64::to_bits)
            );
        }
        if norm > 0.0 {
            let squares = pair_squares(&table);
            let got = pair_terms(&q, norm, &table, &squares);
            let width = code_width(dim);
            proptest::prop_assert_eq!(got.len(), 32 * width);
            for (m, t) in got.chunks_exact(16).enumerate() {
                for (n, &[v, square]) in t.iter().enumerate() {
                    proptest::prop_assert_eq!(square.to_bits(), squares[16 * m + n].to_bits());
                    let part = |d: usize, g: usize| {
                        if d < dim { f64::from(q[d]) / norm * f64::from(table.of_gray(d, g as u8)) } else { 0.0 }
                    };
                    let want = if 2 * m + 1 < dim { part(2 * m, n >> 2) + part(2 * m + 1, n & 3) } else { part(2 * m, n >> 2) };
                    proptest::prop_assert_eq!(v.to_bits(), want.to_bits());
                }
            }
            // The values the first list's exact scores use, with the
            // shared squares, score every code as the terms do.
            let (_, products) = QueryTables::with_products(Kernels::active(), &q, &table);
            let values = pair_values(&products);
            proptest::prop_assert_eq!(values.len(), got.len());
            for _ in 0..8 {
                let code: Vec<u8> = (0..width).map(|_| next(256) as u8).collect();
                proptest::prop_assert_eq!(
                    exact_score_of_values(&values, &squares, &code).to_bits(),
                    exact_score(&got, &code).to_bits()
                );
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// An exact start sets the floor to the least exact score of the k
    /// allowed rows of the largest approximations (never a disallowed
    /// row's, so at most the k-th best allowed score: a valid bound), and
    /// refuses (changing nothing) with fewer than k allowed rows, k = 0
    /// or k above `EXACT_START_MAX_K`; zero norms score 0.
    #[test]
    fn an_exact_start_floors_at_the_kth_best_of_the_best_approximations(
        seed in 0u64..1_000_000, rows in 0usize..200, k in 0usize..40, masked in proptest::bool::ANY,
    ) {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        // Few distinct sums and norms: ties in both.
        let sums: Vec<u32> = (0..rows).map(|_| next(6) as u32 * 40).collect();
        let norms: Vec<f32> = (0..rows).map(|_| [0.0f32, 0.5, 1.0, 2.0][next(4) as usize]).collect();
        let allowed: Vec<bool> = (0..rows).map(|_| !masked || next(3) != 0).collect();
        let qt = QueryTables { luts: Vec::new(), scale: 0.01, bias: -0.7, err: 0.05, norm: 1.0 };
        let approx = |i: usize| {
            if norms[i] == 0.0 { 0.0 } else { (sums[i] as f32 * qt.scale as f32 + qt.bias as f32) / norms[i] }
        };
        // "Exact" scores near the approximations, deterministic per row.
        let exact = |i: usize| f64::from(approx(i)) + (i % 7) as f64 * 1e-3;
        let mut c = Candidates::new(k);
        let mut scored = Vec::new();
        let started = c.start_from_exact(&qt, &sums, &norms, |i| allowed[i], |i| {
            scored.push(i);
            exact(i)
        });
        let allowed_rows: Vec<usize> = (0..rows).filter(|&i| allowed[i]).collect();
        let can = k > 0 && k <= EXACT_START_MAX_K && allowed_rows.len() >= k;
        proptest::prop_assert_eq!(started, can);
        if !can {
            proptest::prop_assert!(scored.is_empty());
            proptest::prop_assert_eq!(c.floor, f64::NEG_INFINITY);
            return Ok(());
        }
        scored.sort_unstable();
        scored.dedup();
        proptest::prop_assert_eq!(scored.len(), k);
        proptest::prop_assert!(scored.iter().all(|&i| allowed[i]));
        // The k best approximations (any of equal ones): none left out beats one scored.
        let least_scored = scored.iter().map(|&i| approx(i)).fold(f32::INFINITY, f32::min);
        proptest::prop_assert!(allowed_rows.iter().filter(|i| !scored.contains(i)).all(|&i| approx(i) <= least_scored));
        let floor = scored.iter().map(|&i| exact(i)).fold(f64::INFINITY, f64::min);
        proptest::prop_assert_eq!(c.floor.to_bits(), floor.to_bits());
        let mut best: Vec<f64> = allowed_rows.iter().map(|&i| exact(i)).collect();
        best.sort_by(|a, b| b.total_cmp(a));
        proptest::prop_assert!(c.floor <= best[k - 1]);
        proptest::prop_assert_eq!(c.bound().to_bits(), floor.to_bits());
    }
}

/// A query whose nearest set keeps more rows than the prune threshold
/// (4·k + 4096; all its rows tie), then meets a better set: the kept rows
/// are pruned against the raised bound, the shared code buffer (then
/// mostly pruned rows' codes) is compacted, and the batch still answers
/// exactly what one query's search over the same sets does.
#[test]
fn kept_rows_pruned_past_the_threshold_keep_the_exact_answer() {
    let dim = 8;
    let width = code_width(dim);
    let values: Vec<f32> = (0..dim).flat_map(|_| [-1.0f32, -0.25, 0.25, 1.0]).collect();
    let table = Reconstruction::new(&values, dim).unwrap();
    let shared = SharedTables::new(&table);
    let set_of = |symbols: &[&[u8]], repeats: usize| {
        let mut codes = vec![0u8; symbols.len() * repeats * width];
        for (r, row) in codes.chunks_exact_mut(width).enumerate() {
            pack_row(symbols[r % symbols.len()], row);
        }
        let rows = codes.len() / width;
        let mut blocks = vec![0u8; rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * width];
        fast_scan_blocks(&codes, width, &mut blocks);
        let norms: Vec<f32> = codes.chunks_exact(width).map(|c| shared.squares.norm(c)).collect();
        (blocks, norms, rows)
    };
    // Set 0: 5 000 copies of one middling code; set 1: a few better ones.
    let (middling, good, best) = ([2u8, 2, 2, 2, 1, 1, 1, 1], [3u8, 3, 3, 3, 3, 3, 2, 2], [3u8; 8]);
    let parts = [set_of(&[&middling], 5000), set_of(&[&good, &best, &good], 3)];
    let keys: Vec<u64> = (0..parts.iter().map(|p| p.2).sum::<usize>() as u64).rev().collect();
    let mut at = 0;
    let sets: Vec<BlockSet<'_>> = parts
        .iter()
        .map(|(blocks, norms, rows)| {
            let set = BlockSet {
                blocks,
                rows: *rows,
                norms,
                norm_range: norm_range(norms),
                keys: &keys[at..at + rows],
                mask: None,
            };
            at += rows;
            set
        })
        .collect();
    let query = [1.0f32; 8];
    let routes = vec![vec![0u32, 1]];
    for kernels in crate::Backend::supported().into_iter().filter_map(Kernels::for_backend) {
        for k in [1, 4] {
            let want = search_asym_lists(kernels, &query, &table, &shared, &sets, k);
            let got = search_asym_lists_batch(kernels, &query, &table, &shared, &sets, &routes, k);
            assert_eq!(got, vec![want.clone()], "k = {k}");
            // The best code first, then the good ones (by key), none of the middling.
            assert_eq!(want[0].1, 1, "k = {k}");
            assert!(want.iter().all(|&(_, s, _)| s == 1), "k = {k}: {want:?}");
        }
    }
}
