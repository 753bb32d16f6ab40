//! Exact top-k selection over small integer distances, ties to the lower row.
//!
//! Rows are offered in increasing order, so a candidate that ties the current
//! k-th distance always loses: the admission test is a strict `d < bound`,
//! checked sixteen rows at a time with a vectorisable minimum before any
//! scalar work. For large k a counting pass over the distance histogram
//! (distances are ≤ 8·width) replaces insertion.

/// The best `k` (distance, row) pairs seen so far, sorted by distance then row.
pub(crate) struct TopK {
    k: usize,
    dist: Vec<u32>,
    rows: Vec<u64>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            dist: Vec::with_capacity(k),
            rows: Vec::with_capacity(k),
        }
    }

    /// A candidate enters only if its distance is strictly below this.
    #[inline(always)]
    pub(crate) fn bound(&self) -> u32 {
        if self.dist.len() < self.k {
            u32::MAX
        } else {
            self.dist[self.k - 1]
        }
    }

    #[inline]
    fn insert(&mut self, d: u32, row: u64) {
        if self.dist.len() == self.k {
            self.dist.pop();
            self.rows.pop();
        }
        // After every equal distance: those rows came first.
        let at = self.dist.partition_point(|&x| x <= d);
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
                if d < bound {
                    self.insert(d, first_row + (c * 16 + j) as u64);
                    bound = self.bound();
                }
            }
        }
    }

    /// Offers the rows of the 8-row groups flagged in `hits` (bit r of
    /// `hits[g]` = row `8g + r` of `dists`), rows below `valid` only.
    pub(crate) fn offer_hits(&mut self, dists: &[u32], hits: &[u8], valid: usize, first_row: u64) {
        // Almost every mask is zero once the list is full: skip them eight at a time.
        for (c, chunk) in hits.chunks(8).enumerate() {
            let mut any = [0u8; 8];
            any[..chunk.len()].copy_from_slice(chunk);
            if u64::from_ne_bytes(any) != 0 {
                self.offer_hit_groups(dists, chunk, c * 8, valid, first_row);
            }
        }
    }

    fn offer_hit_groups(&mut self, dists: &[u32], hits: &[u8], first_group: usize, valid: usize, first_row: u64) {
        for (i, &mask) in hits.iter().enumerate() {
            let g = first_group + i;
            let mut m = mask;
            while m != 0 {
                let r = g * 8 + m.trailing_zeros() as usize;
                m &= m - 1;
                if r < valid && dists[r] < self.bound() {
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
pub(crate) fn select_by_counting(dists: &[u32], max_dist: u32, dist_out: &mut [u32], rows_out: &mut [i64]) {
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
                let mut top = TopK::new(k);
                for (i, chunk) in dists.chunks(37).enumerate() {
                    top.offer(chunk, (i * 37) as u64);
                }
                let (mut d, mut r) = (vec![0; k], vec![0; k]);
                top.write(&mut d, &mut r);
                assert_eq!(d.iter().copied().zip(r.iter().copied()).collect::<Vec<_>>(), expected);
                select_by_counting(&dists, 6, &mut d, &mut r);
                assert_eq!(d.into_iter().zip(r).collect::<Vec<_>>(), expected, "n {n} k {k}");
            }
        }
    }
}
