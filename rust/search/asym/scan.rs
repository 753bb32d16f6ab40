//! The fast scan: integer sums per row, tested against each query's bound.

use super::candidates::{Candidates, ExactScore};
use super::codes::{CodesRef, Database};
use super::tables::QueryTables;
use super::CHUNK_ROWS;
use crate::kernels::scalar_asym::{fast_scan_blocks, BLOCK_ROWS, QUERY_GROUP};
use crate::kernels::Kernels;
use crate::search::flag_bits;

/// Scans rows `first..last` (`first` a multiple of [`CHUNK_ROWS`]) for every
/// query, offering each row to the query's candidates.
pub(super) fn scan_rows(
    kernels: &Kernels,
    db: &Database<'_>,
    queries: &[QueryTables],
    first: usize,
    last: usize,
    cands: &mut [Candidates],
) {
    scan_rows_with(
        kernels,
        db,
        queries,
        first,
        last,
        cands,
        &mut ScanBuffers::default(),
        None,
    );
}

/// The working buffers of [`scan_rows_with`], kept between calls that scan
/// many small row sets (the lists of an inverted file) so each call does
/// not allocate and zero them again.
#[derive(Default)]
pub(super) struct ScanBuffers {
    pub(super) blocks: Vec<u8>,
    pub(super) sums: Vec<u32>,
    pub(super) norms: Vec<f32>,
}

/// [`scan_rows`] with caller-kept buffers; `exact`: for one query, its
/// exact score of a row, to start from ([`Candidates::start_from_exact`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_rows_with(
    kernels: &Kernels,
    db: &Database<'_>,
    queries: &[QueryTables],
    first: usize,
    last: usize,
    cands: &mut [Candidates],
    buffers: &mut ScanBuffers,
    mut exact: Option<&mut ExactScore<'_>>,
) {
    debug_assert!(exact.is_none() || queries.len() == 1, "an exact scorer is one query's");
    let width = db.width;
    let ScanBuffers { blocks, sums, norms } = buffers;
    // The re-layout buffer of row-major codes only (fast-scan codes are read in place).
    if let CodesRef::RowMajor(_) = db.codes {
        blocks.resize(CHUNK_ROWS * width, 0);
    }
    let chunk_rows = (last - first).min(CHUNK_ROWS).div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
    let group = queries.len().min(QUERY_GROUP);
    // Every buffer is written before it is read in each chunk: no zeroing needed between calls.
    sums.resize(sums.len().max(group * chunk_rows), 0);
    norms.resize(norms.len().max(chunk_rows), 0.0);
    let mut start = first;
    while start < last {
        let end = (start + CHUNK_ROWS).min(last);
        let count = end - start;
        let padded = count.div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
        // The chunk's blocks, and the codes scanned after them (prefetched).
        let (chunk_blocks, next): (&[u8], &[u8]) = match db.codes {
            CodesRef::RowMajor(c) => {
                fast_scan_blocks(&c[start * width..end * width], width, &mut blocks[..padded * width]);
                (&blocks[..padded * width], &[])
            }
            // `start` is a multiple of 32: the chunk's blocks are whole.
            CodesRef::FastScan(f) => f.blocks[start * width..].split_at(padded * width),
            CodesRef::Blocks(b, _) => b[start * width..].split_at(padded * width),
        };
        let next = if end < last { next } else { db.next };
        let norms = match db.norms {
            Some(n) => &n[start..end],
            None => {
                let mut buf = vec![0u8; width];
                for (i, o) in norms[..count].iter_mut().enumerate() {
                    *o = db.squares.norm(db.code(start + i, &mut buf));
                }
                &norms[..count]
            }
        };
        let norm_range = db.norm_range.unwrap_or_else(|| norm_range(norms));
        // The offers read the norms of scattered rows after the scan: ask for
        // them now so they arrive while the kernel runs.
        prefetch(norms);
        for (g, group) in queries.chunks(QUERY_GROUP).enumerate() {
            let q0 = g * QUERY_GROUP;
            let sums = &mut sums[..group.len() * padded];
            // Each query's tables where they are (copying them side by side
            // cost 4 % of an inverted file's search, whose queries share sets).
            let mut tables: [&[u8]; QUERY_GROUP] = [&[]; QUERY_GROUP];
            for ((t, qt), c) in tables.iter_mut().zip(group).zip(&cands[q0..]) {
                *t = &qt.luts;
                c.prefetch_bound();
            }
            (kernels.asym_scan)(&tables[..group.len()], width, chunk_blocks, next, sums);
            for ((qt, c), sums) in group.iter().zip(&mut cands[q0..]).zip(sums.chunks_exact(padded)) {
                if qt.norm == 0.0 {
                    continue; // every score is 0: chosen by key at the end
                }
                offer_chunk(
                    db,
                    qt,
                    c,
                    start,
                    &sums[..count],
                    norms,
                    norm_range,
                    exact.as_deref_mut(),
                );
            }
        }
        start = end;
    }
}

/// (min, max) of `norms` ((+∞, 0) when empty).
pub(crate) fn norm_range(norms: &[f32]) -> (f32, f32) {
    norms
        .iter()
        .fold((f32::INFINITY, 0.0f32), |(lo, hi), &n| (lo.min(n), hi.max(n)))
}

/// Offers the rows `start..start + sums.len()` of one chunk to a query's
/// candidates, given their integer sums, norms and the norms' (min, max);
/// the first chunk starts the bound from `exact` scores when it can.
#[allow(clippy::too_many_arguments)]
pub(super) fn offer_chunk(
    db: &Database<'_>,
    qt: &QueryTables,
    c: &mut Candidates,
    start: usize,
    sums: &[u32],
    norms: &[f32],
    norm_range: (f32, f32),
    exact: Option<&mut ExactScore<'_>>,
) {
    let bounds = |i: usize| {
        let a = qt.approx(sums[i]);
        let n = f64::from(norms[i]);
        if n == 0.0 {
            (0.0, 0.0)
        } else {
            ((a - qt.err) / n, (a + qt.err) / n)
        }
    };
    if c.bound() == f64::NEG_INFINITY {
        let started = exact.is_some_and(|exact| {
            c.start_from_exact(
                qt,
                sums,
                norms,
                |i| db.allowed(start + i),
                |i| exact(db.base + (start + i) as u32),
            )
        });
        if !started {
            c.seed((0..sums.len()).filter(|&i| db.allowed(start + i)).map(|i| {
                let (lo, hi) = bounds(i);
                (db.base + (start + i) as u32, lo, hi)
            }));
            return;
        }
    }
    // hi ≥ bound ⇔ approx + err ≥ bound·‖x̂‖, in f32 with margins that only
    // let more rows through (a stale bound is lower, too). Sums are < 2³¹.
    let bound = c.bound();
    // An integer pre-test per 16 rows: a row can pass only if its sum
    // reaches what the chunk's smallest (largest, for a negative bound) norm
    // needs; the margins make it looser than the test below.
    let norm = f64::from(if bound >= 0.0 { norm_range.0 } else { norm_range.1 });
    let need = bound * norm;
    let top64 = qt.bias + qt.err;
    let least = ((need - need.abs() * 1e-5 - top64 - top64.abs() * 1e-5) / qt.scale).floor() - 1.0;
    if least >= f64::from(i32::MAX) {
        return; // no row of this chunk can reach the bound
    }
    let least = least.max(-1.0) as i32;
    let bound32 = (bound - 1e-6 * bound.abs()) as f32;
    let (scale, top) = (qt.scale as f32, (qt.bias + qt.err) as f32);
    let passes = |s: u32, n: f32| {
        let t = bound32 * n;
        (s as i32) as f32 * scale + top >= t - t.abs() * 1e-6
    };
    for (g, group) in sums.chunks(16).enumerate() {
        // Sums are < 2³¹; a fold (no early exit) vectorises.
        if !group.iter().fold(false, |any, &s| any | (s as i32 > least)) {
            continue;
        }
        // One bit per row that passes: only those are visited.
        let mut bits = pass_bits(group, &norms[16 * g..], passes);
        while bits != 0 {
            let i = 16 * g + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if db.allowed(start + i) {
                let (lo, hi) = bounds(i);
                c.offer(db.base + (start + i) as u32, lo, hi);
            }
        }
    }
}

/// Bit `j` set for each row `j` of a group of at most 16 (sums and norms)
/// that `passes`.
#[inline(always)]
pub(super) fn pass_bits(sums: &[u32], norms: &[f32], passes: impl Fn(u32, f32) -> bool) -> u32 {
    match (<&[u32; 16]>::try_from(sums), norms.first_chunk::<16>()) {
        (Ok(sums), Some(norms)) => {
            // A whole group: the test as 0/1 bytes (vectorises), then bits.
            let mut flags = [0u8; 16];
            for ((f, &s), &n) in flags.iter_mut().zip(sums).zip(norms) {
                *f = u8::from(passes(s, n));
            }
            flag_bits(flags)
        }
        // The short last group: bit by bit (its bytes were stored one at a
        // time and read back as words, which stalled on store forwarding).
        _ => sums
            .iter()
            .zip(norms)
            .enumerate()
            .fold(0, |bits, (j, (&s, &n))| bits | u32::from(passes(s, n)) << j),
    }
}

/// How many candidates ahead [`finish`](super::rerank::finish) and
/// [`KeptRows::best`](super::lists::KeptRows::best) prefetch a code.
pub(super) const PREFETCH_AHEAD: usize = 8;

/// Asks for every cache line `items` spans (one address per 48 bytes, and
/// its last byte), so the candidates' scattered codes arrive while earlier
/// ones are scored. A hint only: no effect on any result.
#[inline(always)]
pub(super) fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(items);
        let first = items.as_ptr().cast::<u8>();
        for off in (0..bytes).step_by(48).chain(bytes.checked_sub(1)) {
            // SAFETY: CPU: SSE (part of every x86-64); PREFETCHT0 never faults,
            // and `off < bytes` keeps the address inside `items` anyway.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(first.add(off).cast::<i8>());
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}
