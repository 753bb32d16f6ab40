//! Per-list storage of the inverted file: the rows' codes in the fast-scan
//! layout (SPEC §8: byte `b` of 32 rows side by side), growable a row at a
//! time without re-laying the list, and per row its id, ‖x̂‖ and liveness.

use crate::error::{Error, Result};
use crate::kernels::scalar_asym::BLOCK_ROWS;
use crate::search::asym::{block_code_into, norm_range, BlockSet};
use std::sync::Arc;

/// A list's fast-scan blocks: owned, or `len` bytes at `offset` of a
/// read-only map of a saved file (then the list is read-only).
#[derive(Debug)]
pub(crate) enum Blocks {
    Owned(Vec<u8>),
    Mapped {
        map: Arc<memmap2::Mmap>,
        offset: usize,
        len: usize,
    },
}

impl std::ops::Deref for Blocks {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Blocks::Owned(v) => v,
            Blocks::Mapped { map, offset, len } => &map[*offset..*offset + *len],
        }
    }
}

/// One inverted list. Invariants: `blocks` holds `⌈rows/32⌉` whole blocks
/// (padding rows zero), `ids`, `norms` hold `rows` values, `alive` ⌈rows/8⌉
/// bytes (bit `r % 8` of byte `r / 8`; bits past `rows` zero) with `dead`
/// bits clear; `norm_range` is [`norm_range`] of `norms`.
#[derive(Debug)]
pub(crate) struct List {
    pub(crate) blocks: Blocks,
    pub(crate) ids: Vec<u64>,
    pub(crate) norms: Vec<f32>,
    /// Kept as rows are pushed: every search needs it, and folding it over
    /// every list's norms took ≈ 1 µs per query of a 1 000-query search.
    pub(crate) norm_range: (f32, f32),
    pub(crate) alive: Vec<u8>,
    pub(crate) dead: usize,
}

impl List {
    pub(crate) fn empty() -> List {
        List {
            blocks: Blocks::Owned(Vec::new()),
            ids: Vec::new(),
            norms: Vec::new(),
            norm_range: norm_range(&[]),
            alive: Vec::new(),
            dead: 0,
        }
    }

    /// Stored rows, removed ones included.
    pub(crate) fn rows(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn live(&self) -> usize {
        self.rows() - self.dead
    }

    pub(crate) fn is_alive(&self, row: usize) -> bool {
        self.alive[row / 8] >> (row % 8) & 1 == 1
    }

    /// The rows a search may return before any filter: `None` when all are alive.
    pub(crate) fn alive_mask(&self) -> Option<&[u8]> {
        (self.dead > 0).then_some(&self.alive[..])
    }

    /// Row `row`'s code into `out` (`width` bytes).
    pub(crate) fn code_into(&self, row: usize, out: &mut [u8]) {
        block_code_into(&self.blocks, row, out);
    }

    /// The list as a block set for the asymmetric search, with `mask`.
    pub(crate) fn block_set<'a>(&'a self, mask: Option<&'a [u8]>) -> BlockSet<'a> {
        // Every debug-built test that searches checks the kept range (O(rows)).
        debug_assert_eq!(self.norm_range, norm_range(&self.norms), "a stale norm range");
        BlockSet {
            blocks: &self.blocks,
            rows: self.rows(),
            norms: &self.norms,
            norm_range: self.norm_range,
            keys: &self.ids,
            mask,
        }
    }

    /// Reserves room for `more` rows (exactly: lists are sized by their
    /// batches, or once by [`crate::ivf::IvfIndex::reserve`], so memory stays
    /// at what the rows need). `MemoryError` naming `arg` when the size
    /// overflows or cannot be allocated.
    pub(crate) fn reserve(&mut self, more: usize, width: usize, arg: &'static str) -> Result<()> {
        let Blocks::Owned(blocks) = &mut self.blocks else {
            return Err(Error::ReadOnly);
        };
        let fail = || Error::Alloc {
            arg,
            what: "the inverted lists",
            size: format!("{more} more rows"),
        };
        let rows = self.ids.len().checked_add(more).ok_or_else(fail)?;
        let want = rows
            .div_ceil(BLOCK_ROWS)
            .checked_mul(BLOCK_ROWS * width)
            .ok_or_else(fail)?;
        blocks
            .try_reserve_exact(want.saturating_sub(blocks.len()))
            .map_err(|_| fail())?;
        self.ids.try_reserve_exact(more).map_err(|_| fail())?;
        self.norms.try_reserve_exact(more).map_err(|_| fail())?;
        self.alive
            .try_reserve_exact(rows.div_ceil(8).saturating_sub(self.alive.len()))
            .map_err(|_| fail())?;
        Ok(())
    }

    /// Appends one row (call [`List::reserve`] first; `code` of `width` bytes).
    pub(crate) fn push(&mut self, code: &[u8], id: u64, norm: f32) {
        let Blocks::Owned(blocks) = &mut self.blocks else {
            unreachable!("reserve refused a mapped list");
        };
        let width = code.len();
        let row = self.ids.len();
        if row.is_multiple_of(BLOCK_ROWS) {
            blocks.resize(blocks.len() + BLOCK_ROWS * width, 0);
        }
        let block = &mut blocks[(row / BLOCK_ROWS) * BLOCK_ROWS * width..][..BLOCK_ROWS * width];
        for (b, &byte) in code.iter().enumerate() {
            block[b * BLOCK_ROWS + row % BLOCK_ROWS] = byte;
        }
        self.ids.push(id);
        self.norms.push(norm);
        // The fold of `norm_range`, one step further.
        self.norm_range = (self.norm_range.0.min(norm), self.norm_range.1.max(norm));
        if row.is_multiple_of(8) {
            self.alive.push(0);
        }
        self.alive[row / 8] |= 1 << (row % 8);
    }

    /// Marks row `row` removed; false when it already was.
    pub(crate) fn kill(&mut self, row: usize) -> bool {
        if !self.is_alive(row) {
            return false;
        }
        self.alive[row / 8] &= !(1 << (row % 8));
        self.dead += 1;
        true
    }

    /// Drops the removed rows, keeping the order of the others (the list
    /// becomes owned if it was mapped: only a writable index compacts).
    pub(crate) fn compact(&mut self, width: usize) -> Result<()> {
        if self.dead == 0 {
            return Ok(());
        }
        let mut kept = List::empty();
        kept.reserve(self.live(), width, "index")?;
        let mut code = vec![0u8; width];
        for row in (0..self.rows()).filter(|&r| self.is_alive(r)) {
            self.code_into(row, &mut code);
            kept.push(&code, self.ids[row], self.norms[row]);
        }
        *self = kept;
        Ok(())
    }

    /// Heap bytes held (capacities; a mapped list's blocks counted at their length).
    pub(crate) fn memory_bytes(&self) -> usize {
        let blocks = match &self.blocks {
            Blocks::Owned(v) => v.capacity(),
            Blocks::Mapped { len, .. } => *len,
        };
        std::mem::size_of::<List>()
            + blocks
            + 8 * self.ids.capacity()
            + 4 * self.norms.capacity()
            + self.alive.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept norm range is the fold of the norms after pushes, removals
    /// and compaction, and (+∞, 0) for an empty list.
    #[test]
    fn the_norm_range_follows_pushes_removals_and_compaction() {
        let width = 3;
        let mut list = List::empty();
        assert_eq!(list.norm_range, (f32::INFINITY, 0.0));
        let norms = [0.75f32, 0.0, 2.5, 1.25, 0.5, 3.0, 1.0];
        list.reserve(norms.len(), width, "x").unwrap();
        for (r, &n) in norms.iter().enumerate() {
            list.push(&[r as u8; 3], r as u64, n);
            assert_eq!(list.norm_range, norm_range(&list.norms));
        }
        assert_eq!(list.norm_range, (0.0, 3.0));
        for row in [1, 5] {
            assert!(list.kill(row));
        }
        list.compact(width).unwrap();
        assert_eq!(list.norms, [0.75, 2.5, 1.25, 0.5, 1.0]);
        assert_eq!(list.norm_range, (0.5, 2.5));
        for row in 0..list.rows() {
            list.kill(row);
        }
        list.compact(width).unwrap();
        assert_eq!(list.norm_range, (f32::INFINITY, 0.0));
    }
}
