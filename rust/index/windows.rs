//! Key windows (SPEC §4): alive rows sorted by (key, id), routed by the top
//! three key bits into the design's eight blocks, so a window is a binary
//! search inside the blocks it touches plus a scan.

use super::Index;
use crate::error::{Error, Result};
use crate::keys::{prefix_range, window_range};
use std::sync::Arc;

const BLOCKS: usize = 8;

#[derive(Debug)]
pub(crate) struct KeyOrder {
    /// Row numbers sorted by (key, id).
    rows: Vec<u64>,
    /// `keys[rows[i]]`, for the binary searches.
    sorted_keys: Vec<u64>,
    /// `starts[b]..starts[b + 1]`: the positions of block `b` (`key >> 61 == b`).
    starts: [usize; BLOCKS + 1],
}

impl KeyOrder {
    /// From rows already sorted by (key, id) (a loaded file, validated by the loader).
    pub(crate) fn from_sorted_rows(keys: &[u64], rows: Vec<u64>) -> KeyOrder {
        let sorted_keys: Vec<u64> = rows.iter().map(|&r| keys[r as usize]).collect();
        let mut starts = [0usize; BLOCKS + 1];
        for (b, s) in starts.iter_mut().enumerate().skip(1) {
            *s = sorted_keys.partition_point(|&k| ((k >> 61) as usize) < b);
        }
        KeyOrder {
            rows,
            sorted_keys,
            starts,
        }
    }

    pub(crate) fn rows(&self) -> &[u64] {
        &self.rows
    }

    /// Positions whose key lies in `[lo, hi]`.
    fn span(&self, lo: u64, hi: u64) -> std::ops::Range<usize> {
        let (blo, bhi) = ((lo >> 61) as usize, (hi >> 61) as usize);
        let first = &self.sorted_keys[self.starts[blo]..self.starts[blo + 1]];
        let last = &self.sorted_keys[self.starts[bhi]..self.starts[bhi + 1]];
        let begin = self.starts[blo] + first.partition_point(|&k| k < lo);
        let end = self.starts[bhi] + last.partition_point(|&k| k <= hi);
        begin..end.max(begin)
    }
}

impl Index {
    pub(crate) fn key_order(&self) -> Arc<KeyOrder> {
        Arc::clone(self.key_order.get_or_init(|| {
            let data = self.data();
            let alive = self.alive();
            let mut rows: Vec<u64> = (0..data.ids.len() as u64).filter(|&r| alive[r as usize]).collect();
            rows.sort_unstable_by_key(|&r| (data.keys[r as usize], data.ids[r as usize]));
            Arc::new(KeyOrder::from_sorted_rows(&data.keys, rows))
        }))
    }

    /// Ids whose key lies in `[key − delta, key + delta]` (saturating), in key
    /// order (ties by id): the design's window query.
    pub fn window(&self, key: u64, delta: u64) -> Vec<u64> {
        let (lo, hi) = window_range(key, delta);
        self.ids_in(lo, hi)
    }

    /// Ids whose first `depth` transitions equal `key`'s (`depth` 0..=32), in key order.
    pub fn prefix(&self, key: u64, depth: u32) -> Result<Vec<u64>> {
        if depth > 32 {
            return Err(Error::value(
                "depth",
                format!("must be 0..=32 transitions, got {depth}"),
            ));
        }
        let (lo, hi) = prefix_range(key, depth);
        Ok(self.ids_in(lo, hi))
    }

    fn ids_in(&self, lo: u64, hi: u64) -> Vec<u64> {
        let order = self.key_order();
        let ids = &self.data().ids;
        order.rows[order.span(lo, hi)]
            .iter()
            .map(|&r| ids[r as usize])
            .collect()
    }
}
