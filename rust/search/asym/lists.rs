//! Search over the block sets of an inverted file's lists, one query or a routed batch.

use super::candidates::Candidates;
use super::codes::{block_code_into, CodesRef, Database};
use super::exact::{exact_score, exact_score_of_values, pair_squares, pair_terms, pair_values};
use super::rerank::{finish, ScannedRows};
use super::scan::{prefetch, scan_rows_with, ScanBuffers, PREFETCH_AHEAD};
use super::tables::QueryTables;
use super::{by_score_then, RESCORED};
use crate::codes::code_width;
use crate::decode::{ByteSquares, Reconstruction};
use crate::kernels::scalar_asym::first_pair;
use crate::kernels::Kernels;
use crate::search::{result_columns, RowScope};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering as AtomicOrdering;

/// One block set of [`search_asym_lists`]: whole fast-scan blocks of `rows`
/// codes, each row's ‖x̂‖ (as [`crate::row_norms`] computes it) and distinct
/// tie key, and the rows it may return (bit `r % 8` of `mask[r / 8]`; all when `None`).
#[derive(Clone, Copy)]
pub(crate) struct BlockSet<'a> {
    pub blocks: &'a [u8],
    pub rows: usize,
    pub norms: &'a [f32],
    /// [`norm_range`](super::norm_range) of `norms`.
    pub norm_range: (f32, f32),
    pub keys: &'a [u64],
    pub mask: Option<&'a [u8]>,
}

/// The per-table values a search over block sets shares between its queries.
#[derive(Debug)]
pub(crate) struct SharedTables {
    pub(super) squares: ByteSquares,
    pub(super) pair_squares: Vec<f64>,
}

impl SharedTables {
    pub(crate) fn new(table: &Reconstruction) -> SharedTables {
        SharedTables {
            squares: ByteSquares::new(table),
            pair_squares: pair_squares(table),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        8 * (self.squares.len() + self.pair_squares.capacity())
    }
}

/// Several block sets numbered one after the other.
pub(super) struct BlockSets<'a> {
    pub(super) sets: &'a [BlockSet<'a>],
    /// `starts[i]`: the number of set `i`'s first row; one more entry: the total.
    pub(super) starts: Vec<usize>,
}

impl<'a> BlockSets<'a> {
    /// The sets numbered one after another, in order.
    pub(super) fn new(sets: &'a [BlockSet<'a>]) -> Self {
        let mut starts = Vec::with_capacity(sets.len() + 1);
        let mut total = 0usize;
        for s in sets {
            starts.push(total);
            total += s.rows;
        }
        starts.push(total);
        BlockSets { sets, starts }
    }

    /// (set, row in it) of a row number.
    pub(super) fn locate(&self, row: usize) -> (usize, usize) {
        let set = self.starts[..self.sets.len()].partition_point(|&s| s <= row) - 1;
        (set, row - self.starts[set])
    }
}

impl ScannedRows for BlockSets<'_> {
    fn rows(&self) -> usize {
        self.starts[self.sets.len()]
    }
    fn allowed(&self, row: usize) -> bool {
        let (s, r) = self.locate(row);
        self.sets[s].mask.is_none_or(|m| m[r / 8] >> (r % 8) & 1 == 1)
    }
    fn key(&self, row: usize) -> u64 {
        let (s, r) = self.locate(row);
        self.sets[s].keys[r]
    }
    fn code<'s>(&'s self, row: usize, buf: &'s mut [u8]) -> &'s [u8] {
        let (s, r) = self.locate(row);
        block_code_into(self.sets[s].blocks, r, buf);
        buf
    }
}

/// The exact asymmetric top-`k` (SPEC §8) of one finite query `q` among the
/// rows of several block sets, as if they were one database: `(score, set,
/// row)` best first by (score, tie key). The same result as
/// [`search_asym_scoped`](super::search_asym_scoped) over the sets' rows concatenated with their keys
/// and masks, on every backend. The caller checks the sets' shapes (whole
/// blocks, `rows` norms and keys, `⌈rows/8⌉` mask bytes, norms finite and
/// ≥ 0, fewer than 2³² rows in all).
pub(crate) fn search_asym_lists(
    kernels: &Kernels,
    q: &[f32],
    table: &Reconstruction,
    shared: &SharedTables,
    sets: &[BlockSet<'_>],
    k: usize,
) -> Vec<(f32, usize, usize)> {
    let width = code_width(table.dim());
    let all = BlockSets::new(sets);
    let allowed: usize = sets
        .iter()
        .map(|s| {
            RowScope {
                mask: s.mask,
                tie_keys: None,
            }
            .allowed(s.rows)
        })
        .sum();
    let kk = result_columns(k, allowed);
    if kk == 0 {
        return Vec::new();
    }
    let qt = QueryTables::new(kernels, q, table);
    let mut cands = Candidates::new(kk);
    let mut buffers = ScanBuffers::default();
    if qt.norm != 0.0 {
        for (i, (s, start)) in sets.iter().zip(&all.starts).enumerate() {
            let db = Database {
                codes: CodesRef::Blocks(s.blocks, s.rows),
                width,
                rows: s.rows,
                norms: Some(s.norms),
                norm_range: Some(s.norm_range),
                squares: &shared.squares,
                pair_squares: &shared.pair_squares,
                scope: RowScope {
                    mask: s.mask,
                    tie_keys: Some(s.keys),
                },
                base: *start as u32,
                next: sets.get(i + 1).map_or(&[], |n| first_pair(n.blocks, width)),
            };
            scan_rows_with(
                kernels,
                &db,
                std::slice::from_ref(&qt),
                0,
                s.rows,
                std::slice::from_mut(&mut cands),
                &mut buffers,
                None,
            );
        }
    }
    let (mut scores, mut rows) = (vec![0f32; kk], vec![0i64; kk]);
    finish(
        &all,
        &shared.pair_squares,
        width,
        table,
        q,
        &qt,
        cands,
        &mut scores,
        &mut rows,
    );
    scores
        .into_iter()
        .zip(rows)
        .map(|(score, row)| {
            let (s, r) = all.locate(row as usize);
            (score, s, r)
        })
        .collect()
}

/// The candidates of one query of [`search_asym_lists_batch`], each with
/// its code copied out of its set's blocks while they were in cache, into
/// [`KeptCodes`] the batch's queries share.
pub(super) struct KeptRows {
    /// (upper bound, set, row, its code's first byte in the [`KeptCodes`]),
    /// in the order they were kept.
    pub(super) rows: Vec<(f64, u32, u32, usize)>,
}

/// The codes of every query's [`KeptRows`] of one batch, `width` bytes each,
/// in the order they were kept: appended one after another, so copying
/// them writes one stream instead of a buffer per query (a thousand
/// queries' buffers outgrow L2, and each write to one missed).
pub(super) struct KeptCodes {
    codes: Vec<u8>,
    width: usize,
    /// How many of the codes a [`KeptRows`] still holds (pruned rows' stay).
    live: usize,
}

impl KeptCodes {
    fn code(&self, at: usize) -> &[u8] {
        &self.codes[at..][..self.width]
    }

    /// Rewrites the codes the rows of `kept` still hold, in order, once
    /// pruned rows' codes are most of the buffer, so it stays within about
    /// twice what the rows hold (plus 4 096 codes).
    fn compact_if_sparse(&mut self, kept: &mut [KeptRows]) {
        if self.codes.len() < (2 * self.live + 4096) * self.width {
            return;
        }
        let mut codes = Vec::with_capacity(2 * self.live * self.width);
        for r in kept.iter_mut().flat_map(|k| k.rows.iter_mut()) {
            let at = codes.len();
            codes.extend_from_slice(self.code(r.3));
            r.3 = at;
        }
        self.codes = codes;
    }
}

/// Rows [`KeptRows`] makes room for at first, and [`KeptCodes`] per query:
/// a query of an inverted file at 1 M rows keeps ≈ 77 (measured at nprobe
/// 24), so they grow by at most one copy, not the seven of doubling from
/// empty.
pub(super) const KEPT_ROWS_RESERVED: usize = 128;
/// The most bytes [`KeptCodes`] reserves up front (wide codes grow from there).
const KEPT_CODES_RESERVED_MAX: usize = 1 << 24;

impl KeptRows {
    pub(super) fn with_capacity(rows: usize) -> KeptRows {
        KeptRows {
            rows: Vec::with_capacity(rows),
        }
    }

    /// Moves the rows `c` kept from set `s` whose upper bound still reaches
    /// `c`'s bound here, with their codes, keys and set number.
    pub(super) fn take(&mut self, codes: &mut KeptCodes, c: &mut Candidates, set: &BlockSet<'_>, s: usize) {
        let (bound, width, held) = (c.bound(), codes.width, self.rows.len());
        for &(row, hi) in c.rows.iter().filter(|&&(_, hi)| hi >= bound) {
            let at = codes.codes.len();
            self.rows.push((hi, s as u32, row, at));
            codes.codes.resize(at + width, 0);
            block_code_into(set.blocks, row as usize, &mut codes.codes[at..]);
        }
        c.rows.clear();
        if self.rows.len() >= 4 * c.k + 4096 {
            // Their codes stay in the shared buffer, unread, until it is compacted.
            let bound = c.bound();
            self.rows.retain(|r| r.0 >= bound);
        }
        // `live` counted the `held` rows already (and holds at least them).
        codes.live = codes.live - held + self.rows.len();
    }

    /// The exact top `k` of the rows (SPEC §8, best first by (score, key)):
    /// `(score, set, row)`. Rows are scored by decreasing upper bound until
    /// the next upper bound is below the k-th best exact score so far (no
    /// later row can then reach the top `k`).
    pub(super) fn best(
        self,
        codes: &KeptCodes,
        sets: &[BlockSet<'_>],
        terms: &[[f64; 2]],
        bound: f64,
        k: usize,
    ) -> Vec<(f32, usize, usize)> {
        let mut order: Vec<usize> = (0..self.rows.len()).filter(|&i| self.rows[i].0 >= bound).collect();
        order.sort_unstable_by(|&a, &b| self.rows[b].0.total_cmp(&self.rows[a].0));
        // The k best so far, the k-th on top.
        let mut best: BinaryHeap<LazyKeyHit<'_>> = BinaryHeap::with_capacity(k + 1);
        let mut rescored = 0u64;
        for (j, &i) in order.iter().enumerate() {
            if let Some(&ahead) = order.get(j + PREFETCH_AHEAD) {
                // The codes were copied while their lists were hot, but a
                // chunk's kept codes outgrow the caches before its re-rank.
                prefetch(codes.code(self.rows[ahead].3));
            }
            let (hi, s, r, at) = self.rows[i];
            if best.len() == k && best.peek().is_some_and(|kth| hi < kth.score) {
                break;
            }
            rescored += 1;
            let hit = LazyKeyHit {
                score: exact_score(terms, codes.code(at)),
                keys: sets[s as usize].keys,
                row: r,
                index: i as u32,
            };
            if best.len() < k {
                best.push(hit);
            } else if best.peek().is_some_and(|kth| hit < *kth) {
                best.pop();
                best.push(hit);
            }
        }
        RESCORED.fetch_add(rescored, AtomicOrdering::Relaxed);
        best.into_sorted_vec()
            .into_iter()
            .map(|hit| {
                let (_, s, r, _) = self.rows[hit.index as usize];
                (hit.score as f32, s as usize, r as usize)
            })
            .collect()
    }
}

/// A re-ranked row ordered by [`by_score_then_key`](super::by_score_then_key) (better first, so a
/// max-heap of them holds the worst on top) that reads its tie key only to
/// break an exact tie of scores: the keys of an inverted file's rows are
/// scattered, one likely cache miss each, and ties are rare.
#[derive(Clone, Copy)]
pub(super) struct LazyKeyHit<'a> {
    pub(super) score: f64,
    /// The tie keys of the row's set, and its row there.
    pub(super) keys: &'a [u64],
    pub(super) row: u32,
    /// Its place among the kept rows.
    pub(super) index: u32,
}

impl Ord for LazyKeyHit<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        by_score_then(self.score, other.score, || {
            self.keys[self.row as usize].cmp(&other.keys[other.row as usize])
        })
    }
}
impl PartialOrd for LazyKeyHit<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for LazyKeyHit<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for LazyKeyHit<'_> {}

/// [`search_asym_lists`] for several finite queries (`queries`, `Q × dim`)
/// at once, query `i` over the sets `routes[i]` (numbers into `sets`, each
/// at most once; its nearest first, as the inverted file routes). Each query
/// first scans `routes[i][0]` alone, which sets a bound near its final one
/// (measured: half the rows offered and kept, 1.12× the queries/s at 1 M
/// rows, nprobe 24); then each other set is scanned once for all the
/// queries routed to it, [`QUERY_GROUP`](crate::kernels::scalar_asym::QUERY_GROUP) queries per kernel pass, so its
/// codes are read once per group instead of once per query. Per query, `(score, set, row)`
/// (`set` a number into `sets`), exactly what [`search_asym_lists`] returns
/// over that query's sets: the exact re-rank keeps the true top `k`
/// whatever order the sets are scanned in.
///
/// A candidate's code is copied out of its set's blocks right after the
/// set's scan (while they are in cache), and the candidates are scored
/// exactly at the end, by decreasing upper bound, only until no further one
/// can reach the top `k`.
pub(crate) fn search_asym_lists_batch<'a>(
    kernels: &Kernels,
    queries: &[f32],
    table: &Reconstruction,
    shared: &'a SharedTables,
    sets: &[BlockSet<'a>],
    routes: &[Vec<u32>],
    k: usize,
) -> Vec<Vec<(f32, usize, usize)>> {
    let dim = table.dim();
    let width = code_width(dim);
    let allowed = |s: &BlockSet<'_>| {
        RowScope {
            mask: s.mask,
            tie_keys: None,
        }
        .allowed(s.rows)
    };
    let database = |set: &BlockSet<'a>, next: &'a [u8]| Database {
        codes: CodesRef::Blocks(set.blocks, set.rows),
        width,
        rows: set.rows,
        norms: Some(set.norms),
        norm_range: Some(set.norm_range),
        squares: &shared.squares,
        pair_squares: &shared.pair_squares,
        scope: RowScope {
            mask: set.mask,
            tie_keys: Some(set.keys),
        },
        base: 0,
        next,
    };
    let mut out: Vec<Vec<(f32, usize, usize)>> = (0..routes.len()).map(|_| Vec::new()).collect();
    let mut tables: Vec<QueryTables> = Vec::with_capacity(routes.len());
    let mut cands: Vec<Candidates> = Vec::with_capacity(routes.len());
    let mut kept: Vec<KeptRows> = (0..routes.len())
        .map(|_| KeptRows::with_capacity(KEPT_ROWS_RESERVED))
        .collect();
    let mut kept_codes = KeptCodes {
        codes: Vec::with_capacity((routes.len() * KEPT_ROWS_RESERVED * width).min(KEPT_CODES_RESERVED_MAX)),
        width,
        live: 0,
    };
    let mut buffers = ScanBuffers::default();
    let mut code = vec![0u8; width];
    // Per set, the queries routed to it (compressed rows: `first[s]..first[s + 1]`).
    let mut first = vec![0u32; sets.len() + 1];
    for (i, (q, route)) in queries.chunks_exact(dim).zip(routes).enumerate() {
        let (qt, products) = QueryTables::with_products(kernels, q, table);
        let kk = result_columns(k, route.iter().map(|&s| allowed(&sets[s as usize])).sum());
        let mut c = Candidates::new(kk);
        if qt.norm == 0.0 {
            // Every score is 0, chosen by key among the query's own sets.
            let own: Vec<BlockSet<'_>> = route.iter().map(|&s| sets[s as usize]).collect();
            out[i] = search_asym_lists(kernels, q, table, shared, &own, k)
                .into_iter()
                .map(|(score, s, r)| (score, route[s] as usize, r))
                .collect();
        } else if let Some(&s) = route.first().filter(|_| kk > 0) {
            // The nearest set first, alone, and its best rows scored
            // exactly: the bound that leaves is near the final one, so the
            // shared scans below offer and keep few rows (in set order, a
            // query's nearest set may come last).
            let set = &sets[s as usize];
            if set.rows > 0 {
                let mut values = Vec::new(); // built at the first exact score
                let mut exact = |row: u32| {
                    if values.is_empty() {
                        values = pair_values(&products);
                    }
                    block_code_into(set.blocks, row as usize, &mut code);
                    exact_score_of_values(&values, &shared.pair_squares, &code)
                };
                // The next query's nearest set is scanned next.
                let next = routes.get(i + 1).and_then(|r| r.first());
                let next = next.map_or(&[][..], |&n| first_pair(sets[n as usize].blocks, width));
                scan_rows_with(
                    kernels,
                    &database(set, next),
                    std::slice::from_ref(&qt),
                    0,
                    set.rows,
                    std::slice::from_mut(&mut c),
                    &mut buffers,
                    Some(&mut exact),
                );
                kept[i].take(&mut kept_codes, &mut c, set, s as usize);
            }
            for &s in route.iter().skip(1) {
                first[s as usize + 1] += 1;
            }
        }
        tables.push(qt);
        cands.push(c);
    }
    for s in 0..sets.len() {
        first[s + 1] += first[s];
    }
    let mut members = vec![0u32; first[sets.len()] as usize];
    let mut fill = first.clone();
    for (i, route) in routes.iter().enumerate() {
        if tables[i].norm != 0.0 && cands[i].k > 0 {
            for &s in route.iter().skip(1) {
                members[fill[s as usize] as usize] = i as u32;
                fill[s as usize] += 1;
            }
        }
    }
    let (mut group_tables, mut group_cands) = (Vec::new(), Vec::new());
    let scanned = |s: usize| fill[s] > first[s] && sets[s].rows > 0;
    for (s, set) in sets.iter().enumerate() {
        let routed = &members[first[s] as usize..fill[s] as usize];
        if !scanned(s) {
            continue;
        }
        let next = (s + 1..sets.len()).find(|&n| scanned(n));
        let next = next.map_or(&[][..], |n| first_pair(sets[n].blocks, width));
        // Moved out and back (no copy of the tables): the scan takes contiguous slices.
        group_tables.extend(
            routed
                .iter()
                .map(|&i| std::mem::replace(&mut tables[i as usize], QueryTables::none())),
        );
        group_cands.extend(
            routed
                .iter()
                .map(|&i| std::mem::replace(&mut cands[i as usize], Candidates::new(0))),
        );
        scan_rows_with(
            kernels,
            &database(set, next),
            &group_tables,
            0,
            set.rows,
            &mut group_cands,
            &mut buffers,
            None,
        );
        for ((&i, qt), mut c) in routed.iter().zip(group_tables.drain(..)).zip(group_cands.drain(..)) {
            kept[i as usize].take(&mut kept_codes, &mut c, set, s);
            (tables[i as usize], cands[i as usize]) = (qt, c);
        }
        kept_codes.compact_if_sparse(&mut kept);
    }
    for (i, (((q, qt), c), kept)) in queries.chunks_exact(dim).zip(tables).zip(cands).zip(kept).enumerate() {
        if qt.norm == 0.0 || c.k == 0 {
            continue;
        }
        let terms = pair_terms(q, qt.norm, table, &shared.pair_squares);
        out[i] = kept.best(&kept_codes, sets, &terms, c.bound(), c.k);
    }
    out
}
