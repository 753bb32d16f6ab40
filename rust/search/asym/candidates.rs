//! What a scan keeps of one query: the bound and the rows that reached it.

use super::scan::prefetch;
use super::tables::QueryTables;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// An f64 ordered by `total_cmp` (the bounds are never NaN).
#[derive(Clone, Copy, PartialEq)]
pub(super) struct Bound(f64);
impl Eq for Bound {}
impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bound {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// What the scan of one query keeps: the `k` largest lower bounds, the
/// k-th best of k exact scores when a scan started from them, and the rows
/// whose upper bound reached the bound when they were seen.
pub(super) struct Candidates {
    pub(super) k: usize,
    pub(super) lower: BinaryHeap<Reverse<Bound>>,
    /// The k-th best exact score of k scored rows (−∞: none scored).
    pub(super) floor: f64,
    pub(super) rows: Vec<(u32, f64)>,
}

/// One query's exact score (SPEC §8) of a row, by its number in the scan.
pub(super) type ExactScore<'s> = dyn FnMut(u32) -> f64 + 's;

/// The largest `k` for which a scan that can score rows exactly starts
/// from k exact scores ([`Candidates::start_from_exact`]) instead of
/// seeding its bound from every row's lower bound: each costs about as
/// much as seeding 20 rows.
pub(super) const EXACT_START_MAX_K: usize = 32;

impl Candidates {
    pub(super) fn new(k: usize) -> Self {
        Candidates {
            k,
            lower: BinaryHeap::with_capacity(k + 1),
            floor: f64::NEG_INFINITY,
            rows: Vec::new(),
        }
    }

    /// The larger of the k-th largest lower bound so far (−∞ before k rows
    /// were offered) and the floor: the k-th best exact score is at least
    /// each (both count each row once, and any k rows' k-th best is at most
    /// the k-th best of all).
    #[inline(always)]
    pub(super) fn bound(&self) -> f64 {
        let lower = if self.lower.len() < self.k {
            f64::NEG_INFINITY
        } else {
            self.lower.peek().map_or(f64::NEG_INFINITY, |b| b.0 .0)
        };
        lower.max(self.floor)
    }

    /// Asks for the heap [`Candidates::bound`] reads, so that it is in cache
    /// when the rows of a scan running meanwhile are offered (a batch keeps
    /// a thousand queries' heaps, which leave the cache between lists).
    #[inline(always)]
    pub(super) fn prefetch_bound(&self) {
        prefetch(self.lower.as_slice());
    }

    #[inline]
    pub(super) fn offer(&mut self, row: u32, lo: f64, hi: f64) {
        if hi < self.bound() {
            return;
        }
        self.rows.push((row, hi));
        if self.lower.len() < self.k {
            self.lower.push(Reverse(Bound(lo)));
        } else if lo > self.bound() {
            self.lower.pop();
            self.lower.push(Reverse(Bound(lo)));
        }
        if self.rows.len() >= 4 * self.k + 4096 {
            self.prune();
        }
    }

    /// The first rows of a scan, before any bound exists: the k largest
    /// lower bounds among them make the bound, then every row whose upper
    /// bound reaches it is kept (each row's lower bound enters once).
    pub(super) fn seed(&mut self, rows: impl Iterator<Item = (u32, f64, f64)>) {
        let rows: Vec<(u32, f64, f64)> = rows.collect();
        for &(_, lo, _) in &rows {
            if self.lower.len() < self.k {
                self.lower.push(Reverse(Bound(lo)));
            } else if lo > self.bound() {
                self.lower.pop();
                self.lower.push(Reverse(Bound(lo)));
            }
        }
        let bound = self.bound();
        self.rows.extend(
            rows.into_iter()
                .filter(|&(_, _, hi)| hi >= bound)
                .map(|(r, _, hi)| (r, hi)),
        );
    }

    /// Starts the bound from exact scores: `exact(i)` of the k rows `i`
    /// that `allowed` lets through with the largest approximate scores
    /// (`qt`'s approximation of `sums[i]` over `norms[i]`) become the
    /// floor, the k-th best exact score's own lower bound. That is about the
    /// tables' error above the k-th largest lower bound seeding would give
    /// (a lower bound is the approximation less the error), so the scan
    /// offers and keeps about half as many rows, and no row's bounds are
    /// computed before the bound is known. False (nothing done) with fewer
    /// than k rows allowed or k above [`EXACT_START_MAX_K`].
    pub(super) fn start_from_exact(
        &mut self,
        qt: &QueryTables,
        sums: &[u32],
        norms: &[f32],
        allowed: impl Fn(usize) -> bool,
        mut exact: impl FnMut(usize) -> f64,
    ) -> bool {
        let k = self.k;
        if k == 0 || k > EXACT_START_MAX_K {
            return false;
        }
        // Only which rows are scored depends on these f32 approximations.
        let (scale, bias) = (qt.scale as f32, qt.bias as f32);
        let score = |i: usize| {
            if norms[i] == 0.0 {
                0.0
            } else {
                (sums[i] as f32 * scale + bias) / norms[i]
            }
        };
        // The k best so far, and the worst of them (−∞ until there are k).
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k);
        let mut worst = (f32::NEG_INFINITY, 0usize);
        let worst_of = |best: &[(f32, usize)]| {
            best.iter().enumerate().fold(
                (f32::INFINITY, 0usize),
                |w, (j, &(v, _))| if v < w.0 { (v, j) } else { w },
            )
        };
        for (i, (&sum, &n)) in sums.iter().zip(norms).enumerate() {
            // score > worst without the division (the norm is positive),
            // which most rows fail once k are held.
            let above = if n > 0.0 {
                sum as f32 * scale + bias > worst.0 * n
            } else {
                0.0 > worst.0
            };
            if !above || !allowed(i) {
                continue;
            }
            if best.len() < k {
                best.push((score(i), i));
                if best.len() < k {
                    continue;
                }
            } else {
                best[worst.1] = (score(i), i);
            }
            worst = worst_of(&best);
        }
        if best.len() < k {
            return false;
        }
        self.floor = best.iter().map(|&(_, i)| exact(i)).fold(f64::INFINITY, f64::min);
        true
    }

    /// Drops the rows that can no longer reach the top k.
    pub(super) fn prune(&mut self) {
        let bound = self.bound();
        self.rows.retain(|&(_, hi)| hi >= bound);
    }

    /// Merges another shard's candidates of the same query.
    pub(super) fn merge(&mut self, other: Candidates) {
        self.floor = self.floor.max(other.floor);
        for Reverse(b) in other.lower {
            if self.lower.len() < self.k {
                self.lower.push(Reverse(b));
            } else if b.0 > self.bound() {
                self.lower.pop();
                self.lower.push(Reverse(b));
            }
        }
        self.rows.extend(other.rows);
    }
}
