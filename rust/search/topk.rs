//! Exact top-k selection over small integer distances, ties to the lower key.
//!
//! A row's key is the row itself, or a tie-break key per row (an index's ids
//! in insertion order). Rows are offered in increasing order, so without keys
//! a candidate that ties the current k-th distance always loses and the
//! admission test is a strict `d < bound`, checked sixteen rows at a time with
//! a vectorisable minimum before any scalar work. With keys a tie may win, so
//! the bound lets equal distances through to a scalar (distance, key)
//! comparison. For large k a counting pass over the distance histogram
//! (distances are ≤ 8·width) replaces insertion.

/// The best `k` (distance, row) pairs seen so far, sorted by (distance, key).
pub(crate) struct TopK<'a> {
    k: usize,
    dist: Vec<u32>,
    rows: Vec<u64>,
    /// Tie-break key of each database row; `None`: the row itself.
    keys: Option<&'a [u64]>,
}

impl<'a> TopK<'a> {
    pub(crate) fn with_keys(k: usize, keys: Option<&'a [u64]>) -> Self {
        TopK {
            k,
            dist: Vec::with_capacity(k),
            rows: Vec::with_capacity(k),
            keys,
        }
    }

    #[inline(always)]
    fn key(&self, row: u64) -> u64 {
        self.keys.map_or(row, |k| k[row as usize])
    }

    /// Only distances strictly below this can enter (a kernel may skip the rest).
    #[inline(always)]
    pub(crate) fn bound(&self) -> u32 {
        if self.dist.len() < self.k {
            u32::MAX
        } else if self.keys.is_some() {
            self.dist[self.k - 1].saturating_add(1) // an equal distance with a lower key enters
        } else {
            self.dist[self.k - 1]
        }
    }

    /// Whether (d, row) enters: the list is not full, or it beats the last entry.
    #[inline(always)]
    fn admits(&self, d: u32, row: u64) -> bool {
        if self.dist.len() < self.k {
            return true;
        }
        let last = self.dist[self.k - 1];
        d < last || (d == last && self.keys.is_some() && self.key(row) < self.key(self.rows[self.k - 1]))
    }

    #[inline]
    fn insert(&mut self, d: u32, row: u64) {
        if self.dist.len() == self.k {
            self.dist.pop();
            self.rows.pop();
        }
        // After every entry it does not beat (without keys: every equal distance, offered earlier).
        let at = match self.keys {
            None => self.dist.partition_point(|&x| x <= d),
            Some(_) => {
                let key = self.key(row);
                let rows = &self.rows;
                let first_equal = self.dist.partition_point(|&x| x < d);
                let equal = self.dist[first_equal..].partition_point(|&x| x == d);
                first_equal + rows[first_equal..first_equal + equal].partition_point(|&r| self.key(r) < key)
            }
        };
        self.dist.insert(at, d);
        self.rows.insert(at, row);
    }

    /// Offers `dists[i]` for row `first_row + i`, rows increasing across calls.
    pub(crate) fn offer(&mut self, dists: &[u32], first_row: u64) {
        let mut bound = self.bound();
        for (c, chunk) in dists.chunks(16).enumerate() {
            if chunk.iter().copied().min().unwrap_or(u32::MAX) >= bound {
                continue;
            }
            for (j, &d) in chunk.iter().enumerate() {
                let row = first_row + (c * 16 + j) as u64;
                if d < bound && self.admits(d, row) {
                    self.insert(d, row);
                    bound = self.bound();
                }
            }
        }
    }

    /// Offers the rows of the 8-row groups flagged in `hits` (bit r of
    /// `hits[g]` = row `8g + r` of `dists`), rows below `valid` only.
    pub(crate) fn offer_hits(&mut self, dists: &[u32], hits: &[u8], valid: usize, first_row: u64) {
        // Almost every mask is zero once the list is full: skip them eight at a time.
        // Whole chunks are read as one word: a copy of a slice of unknown
        // length into a word buffer was a `memmove` call per chunk.
        let (words, tail) = hits.as_chunks::<8>();
        for (c, word) in words.iter().enumerate() {
            if u64::from_ne_bytes(*word) != 0 {
                self.offer_hit_groups(dists, word, c * 8, valid, first_row);
            }
        }
        if tail.iter().any(|&m| m != 0) {
            self.offer_hit_groups(dists, tail, hits.len() - tail.len(), valid, first_row);
        }
    }

    fn offer_hit_groups(&mut self, dists: &[u32], hits: &[u8], first_group: usize, valid: usize, first_row: u64) {
        for (i, &mask) in hits.iter().enumerate() {
            let g = first_group + i;
            let mut m = mask;
            while m != 0 {
                let r = g * 8 + m.trailing_zeros() as usize;
                m &= m - 1;
                if r < valid && self.admits(dists[r], first_row + r as u64) {
                    self.insert(dists[r], first_row + r as u64);
                }
            }
        }
    }

    /// The kept (distance, row) pairs, best first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.dist.iter().copied().zip(self.rows.iter().copied())
    }

    /// Writes the result (exactly `k` entries must have been seen).
    pub(crate) fn write(&self, dist: &mut [u32], rows: &mut [i64]) {
        debug_assert_eq!(self.dist.len(), dist.len());
        dist.copy_from_slice(&self.dist);
        for (o, &r) in rows.iter_mut().zip(&self.rows) {
            *o = r as i64;
        }
    }
}

/// Top `out.len()` of a full distance row by counting: O(n + max_dist).
/// Ties go to the lower row, or to the lower `keys[row]` when keys are given.
pub(crate) fn select_by_counting(
    dists: &[u32],
    max_dist: u32,
    keys: Option<&[u64]>,
    dist_out: &mut [u32],
    rows_out: &mut [i64],
) {
    let k = dist_out.len();
    let mut hist = vec![0usize; max_dist as usize + 2];
    for &d in dists {
        hist[d as usize] += 1;
    }
    // The cut: the smallest c with more than k−1 rows at or below it.
    let (mut cut, mut below) = (0usize, 0usize);
    while below + hist[cut] < k {
        below += hist[cut];
        cut += 1;
    }
    if let Some(keys) = keys {
        // Every row at or below the cut, ordered by (distance, key): k plus the cut's extra ties.
        let mut kept: Vec<(u32, u64, usize)> = dists
            .iter()
            .enumerate()
            .filter(|&(_, &d)| d as usize <= cut)
            .map(|(row, &d)| (d, keys[row], row))
            .collect();
        kept.sort_unstable();
        for ((d, r), (kd, _, row)) in dist_out.iter_mut().zip(rows_out.iter_mut()).zip(kept) {
            (*d, *r) = (kd, row as i64);
        }
        return;
    }
    let mut ties_left = k - below;
    // Start offset of each distance ≤ cut in the sorted output.
    let mut next = vec![0usize; cut + 1];
    let mut acc = 0;
    for (d, slot) in next.iter_mut().enumerate() {
        *slot = acc;
        acc += hist[d];
    }
    for (row, &d) in dists.iter().enumerate() {
        let d = d as usize;
        if d < cut || (d == cut && ties_left > 0) {
            if d == cut {
                ties_left -= 1;
            }
            dist_out[next[d]] = d as u32;
            rows_out[next[d]] = row as i64;
            next[d] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(dists: &[u32], k: usize) -> Vec<(u32, i64)> {
        let mut all: Vec<(u32, i64)> = dists.iter().enumerate().map(|(i, &d)| (d, i as i64)).collect();
        all.sort();
        all.truncate(k);
        all
    }

    #[test]
    fn with_keys_both_selectors_match_a_sort_with_ties_to_the_lower_key() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for n in [1usize, 9, 16, 100, 1000] {
            let dists: Vec<u32> = (0..n).map(|_| (next() % 5) as u32).collect();
            // Distinct keys in no particular order (a permutation of 0..n scaled).
            let mut keys: Vec<u64> = (0..n as u64).map(|i| i * 3 + 1).collect();
            for i in (1..n).rev() {
                keys.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            for k in [1, 2, 10, n] {
                let k = k.min(n);
                let mut all: Vec<(u32, u64, i64)> = (0..n).map(|i| (dists[i], keys[i], i as i64)).collect();
                all.sort();
                let expected: Vec<(u32, i64)> = all[..k].iter().map(|&(d, _, r)| (d, r)).collect();
                let mut top = TopK::with_keys(k, Some(&keys));
                for (i, chunk) in dists.chunks(13).enumerate() {
                    if i % 2 == 0 {
                        top.offer(chunk, (i * 13) as u64);
                    } else {
                        // Every row flagged, as a kernel with bound() would flag them.
                        let hits = vec![0xffu8; chunk.len().div_ceil(8)];
                        top.offer_hits(chunk, &hits, chunk.len(), (i * 13) as u64);
                    }
                }
                let (mut d, mut r) = (vec![0; k], vec![0; k]);
                top.write(&mut d, &mut r);
                assert_eq!(
                    d.iter().copied().zip(r.iter().copied()).collect::<Vec<_>>(),
                    expected,
                    "n {n} k {k}"
                );
                select_by_counting(&dists, 4, Some(&keys), &mut d, &mut r);
                assert_eq!(
                    d.into_iter().zip(r).collect::<Vec<_>>(),
                    expected,
                    "counting n {n} k {k}"
                );
            }
        }
    }

    #[test]
    fn both_selectors_match_a_sort_with_ties_to_the_lower_row() {
        let mut state = 99u64;
        for n in [1usize, 5, 16, 17, 100, 1000] {
            let dists: Vec<u32> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 7) as u32
                })
                .collect();
            for k in [1, 2, 10, n] {
                let k = k.min(n);
                let expected = brute(&dists, k);
                let mut top = TopK::with_keys(k, None);
                for (i, chunk) in dists.chunks(37).enumerate() {
                    top.offer(chunk, (i * 37) as u64);
                }
                let (mut d, mut r) = (vec![0; k], vec![0; k]);
                top.write(&mut d, &mut r);
                assert_eq!(d.iter().copied().zip(r.iter().copied()).collect::<Vec<_>>(), expected);
                select_by_counting(&dists, 6, None, &mut d, &mut r);
                assert_eq!(d.into_iter().zip(r).collect::<Vec<_>>(), expected, "n {n} k {k}");
            }
        }
    }
}
