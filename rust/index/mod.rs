//! An index of Q² codes with user ids: all-or-nothing batch adds, O(1)
//! removals by tombstone with automatic compaction, exact (filtered) search,
//! range search, key windows, and persistence (`format`).
//!
//! Rows are kept in insertion order, and search scans them in place: removed
//! rows and filters become a row mask the kernel applies (a narrow filter,
//! searched by many queries, gathers its rows instead), and when ids do not
//! increase with rows the kernel breaks ties by id instead of by row.

mod data;
pub mod format;
mod query;
mod windows;

pub use data::{Codes, IndexData, IndexThresholds};
pub use query::{AsymNeighbours, Filter, Neighbours, RangeResult};

use crate::decode::Reconstruction;
use crate::encode::rotation::Rotation;
use crate::encode::thresholds::Thresholds;
use crate::encode::EncodeElement;
use crate::error::{with_capacity, zeroed, Error, Result};
use crate::search::lee::LeeWeights;
use crate::{code_width, keys_from_codes};
use std::sync::{Arc, OnceLock};

/// Compact automatically once more than this share of rows is dead.
const DEAD_SHARE_LIMIT: f64 = 0.25;

/// A Q² index. Not internally synchronised: wrap it in a lock to share it
/// (`&self` methods only read, so a read/write lock lets searches run together).
///
/// An index is built empty ([`Index::new`]) or from a saved file or bytes
/// ([`Index::load`], [`Index::from_bytes`]), which validate everything they are
/// given; there is no constructor from unchecked [`IndexData`]:
///
/// ```compile_fail
/// let _ = q2key::Index::from_data;
/// ```
#[derive(Debug)]
pub struct Index {
    data: IndexData,
    /// Per row: false once removed (a tombstone).
    alive: Vec<bool>,
    dead: usize,
    /// Alive id → stored row, built on first use: an index that is loaded and
    /// only searched never needs it (≈ 36 B per row at 1 M rows).
    rows_of: OnceLock<IdMap>,
    /// Whether ids strictly increase with the row (then row order is id order).
    ids_increasing: bool,
    /// Which rows are alive, as the search kernel's mask; built on first use after a change.
    alive_mask: OnceLock<Arc<query::AliveMask>>,
    /// Alive rows sorted by (key, id), built on first use after a change.
    key_order: OnceLock<Arc<windows::KeyOrder>>,
    /// The reconstruction table in effect and ‖x̂‖ of every stored row (f32,
    /// 4 B per row), built by the first asymmetric search, then kept up to
    /// date by adds and compactions (removals leave tombstoned rows' norms).
    asym: OnceLock<AsymState>,
}

/// What asymmetric search needs beyond the codes.
#[derive(Debug)]
pub(crate) struct AsymState {
    pub(crate) table: Reconstruction,
    /// ‖x̂‖ per stored row, as [`crate::row_norms`] computes it.
    pub(crate) norms: Vec<f32>,
}

/// Rows encoded for an index, not yet stored.
#[derive(Debug, Clone)]
pub struct EncodedRows {
    codes: Vec<u8>,
    keys: Vec<u64>,
}

/// Figures `Index::stats` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub alive: usize,
    pub dead: usize,
    pub dim: usize,
    pub code_bytes: usize,
    /// Bytes held per stored row: code + key (8) + id (8) + liveness (1) + the id
    /// map's share, from its capacity (≈ 36 B per row at 1 M rows), + the alive mask,
    /// + 4 for the row's ‖x̂‖ once an asymmetric search ran.
    pub bytes_per_row: usize,
    pub mapped: bool,
}

impl Index {
    /// An empty index for vectors of dimension `dim`.
    pub fn new(dim: usize, thresholds: IndexThresholds, weights: Option<LeeWeights>) -> Result<Index> {
        let dim = crate::check_dim(dim)?;
        match &thresholds {
            IndexThresholds::PerDim(c) if c.dim() != dim => {
                return Err(Error::ThresholdDim {
                    thresholds: c.dim(),
                    vectors: dim,
                })
            }
            IndexThresholds::Global(t) => {
                crate::check_tau("threshold", *t)?;
            }
            _ => {}
        }
        if let Some(w) = weights {
            LeeWeights::new(w.magnitude, w.sign, w.both)?.check_dims(dim)?;
        }
        Ok(Index::from_data(IndexData {
            dim,
            thresholds,
            reconstruction: None,
            rotation: None,
            weights,
            next_id: 0,
            codes: Codes::Owned(Vec::new()),
            ids: Vec::new(),
            keys: Vec::new(),
            key_order: Vec::new(),
        }))
    }

    /// An index over data the loader validated ([`format::decode`] or
    /// [`format::load`]) or [`Index::new`] built empty. The saved key order is
    /// reused. Crate-private: unchecked data (codes that do not match their
    /// keys, repeated ids, a key order out of range) would break the index's
    /// invariants, so callers go through the validating loaders
    /// ([`Index::from_bytes`], [`Index::load`]).
    pub(crate) fn from_data(mut data: IndexData) -> Index {
        let rows = data.ids.len();
        let ids_increasing = data.ids.windows(2).all(|w| w[0] < w[1]);
        let key_order = OnceLock::new();
        if data.key_order.len() == rows {
            let order = std::mem::take(&mut data.key_order);
            let _ = key_order.set(Arc::new(windows::KeyOrder::from_sorted_rows(&data.keys, order)));
        }
        Index {
            data,
            alive: vec![true; rows],
            dead: 0,
            rows_of: OnceLock::new(),
            ids_increasing,
            alive_mask: OnceLock::new(),
            key_order,
            asym: OnceLock::new(),
        }
    }

    /// This (empty or not) index scoring with the fitted reconstruction
    /// `table` (SPEC §8) instead of its rule's analytic default; a shape
    /// error naming `table` when its dimension is not the index's. The codes
    /// do not change: only asymmetric scores do.
    pub fn with_reconstruction(mut self, table: Option<Reconstruction>) -> Result<Index> {
        if let Some(t) = &table {
            t.check_dim(self.data.dim)?;
        }
        self.data.reconstruction = table;
        self.asym = OnceLock::new();
        Ok(self)
    }

    /// This empty index encoding through `rotation` (SPEC §9; `None`: none).
    /// A shape error naming `rotation` when its dimension is not the
    /// index's; a value error when the index holds rows (their codes were
    /// made under the old rotation).
    pub fn with_rotation(mut self, rotation: Option<Rotation>) -> Result<Index> {
        if let Some(r) = &rotation {
            if r.dim() != self.data.dim {
                return Err(Error::shape(
                    "rotation",
                    format!("a ({0}, {0}) matrix (the index's dimension)", self.data.dim),
                    format!("({0}, {0})", r.dim()),
                ));
            }
        }
        if !self.data.ids.is_empty() && rotation != self.data.rotation {
            return Err(Error::value(
                "rotation",
                "an index holding rows cannot change its rotation (their codes were made under the old one)",
            ));
        }
        self.data.rotation = rotation;
        Ok(self)
    }

    /// The rotation vectors go through before the rule, if any (SPEC §9).
    pub fn rotation(&self) -> Option<&Rotation> {
        self.data.rotation.as_ref()
    }

    /// The fitted reconstruction table, if any.
    pub fn reconstruction(&self) -> Option<&Reconstruction> {
        self.data.reconstruction.as_ref()
    }

    /// The index's thresholds as one value: its rule, its dimension and its
    /// fitted table (if any).
    pub fn threshold_set(&self) -> Result<Thresholds> {
        let th = Thresholds::of_index(self.data.thresholds.clone(), self.data.dim)?;
        let th = match &self.data.reconstruction {
            Some(t) => th.with_reconstruction(t.clone())?,
            None => th,
        };
        th.with_rotation(self.data.rotation.clone())
    }

    /// The table asymmetric search uses (fitted, else the rule's analytic
    /// default) and the stored rows' norms, computed on first use.
    pub(crate) fn asym_state(&self) -> Result<&AsymState> {
        if let Some(s) = self.asym.get() {
            return Ok(s);
        }
        let table = self.threshold_set()?.table_for(self.data.dim)?;
        let norms = stored_norms(&self.data.codes, self.data.dim, &table)?;
        // Another reader may have set it meanwhile: the same values.
        Ok(self.asym.get_or_init(|| AsymState { table, norms }))
    }

    pub fn dim(&self) -> usize {
        self.data.dim
    }

    pub fn width(&self) -> usize {
        code_width(self.data.dim)
    }

    pub fn thresholds(&self) -> &IndexThresholds {
        &self.data.thresholds
    }

    pub fn weights(&self) -> Option<LeeWeights> {
        self.data.weights
    }

    /// Alive rows.
    pub fn len(&self) -> usize {
        self.data.ids.len() - self.dead
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: u64) -> bool {
        self.id_map().contains_key(&id)
    }

    /// Whether the codes are memory-mapped from a file (then the index is read-only).
    pub fn is_mapped(&self) -> bool {
        self.data.codes.is_mapped()
    }

    pub fn stats(&self) -> IndexStats {
        let width = self.width();
        IndexStats {
            alive: self.len(),
            dead: self.dead,
            dim: self.data.dim,
            code_bytes: width,
            bytes_per_row: width
                + 8
                + 8
                + 1
                + self.norm_bytes()
                + self.map_and_mask_bytes().div_ceil(self.data.ids.len().max(1)),
            mapped: self.is_mapped(),
        }
    }

    /// Bytes per row of the norms asymmetric search keeps (4 once it ran, else 0).
    fn norm_bytes(&self) -> usize {
        if self.asym.get().is_some() {
            std::mem::size_of::<f32>()
        } else {
            0
        }
    }

    /// Heap bytes of the id → row map and of the alive-row mask a removal leads to.
    fn map_and_mask_bytes(&self) -> usize {
        let mask = if self.dead > 0 {
            self.data.ids.len().div_ceil(8)
        } else {
            0
        };
        self.rows_of.get().map_or(0, hash_map_bytes) + mask
    }

    /// Encodes `x` (`rows × dim`) with the index's thresholds and adds the
    /// codes; see [`Index::add_codes`].
    pub fn add<T: EncodeElement>(&mut self, x: &[T], ids: Option<&[u64]>) -> Result<Vec<u64>> {
        self.check_writable()?;
        let encoded = self.encode_rows(x)?;
        self.add_encoded(encoded, ids)
    }

    /// The codes and keys of `x` under the index's thresholds, without
    /// storing them (a caller holding a lock encodes first, then locks to add).
    pub fn encode_rows<T: EncodeElement>(&self, x: &[T]) -> Result<EncodedRows> {
        let dim = self.data.dim;
        let rows = x.len() / dim;
        if rows * dim != x.len() {
            return Err(Error::shape(
                "x",
                format!("rows of {dim} values"),
                format!("{} values", x.len()),
            ));
        }
        let mut codes = zeroed("add", "the codes of the vectors", rows, self.width())?;
        let mut keys = zeroed("add", "the keys of the vectors", rows, 1)?;
        let mut transitions = zeroed::<u32>("add", "the transition counts of the vectors", rows, 1)?;
        self.threshold_set()?
            .encode(x, dim, &mut codes, &mut keys, &mut transitions)?;
        Ok(EncodedRows { codes, keys })
    }

    /// Adds rows made by [`Index::encode_rows`] of this index.
    pub fn add_encoded(&mut self, rows: EncodedRows, ids: Option<&[u64]>) -> Result<Vec<u64>> {
        self.check_writable()?;
        self.append(&rows.codes, rows.keys, ids)
    }

    /// Adds `codes` (`rows × width`) under `ids` (sequential from the next
    /// free id when `None`). All-or-nothing: wrong widths, nonzero padding,
    /// duplicate or already-present ids fail before anything is stored.
    pub fn add_codes(&mut self, codes: &[u8], ids: Option<&[u64]>) -> Result<Vec<u64>> {
        self.check_writable()?;
        let width = self.width();
        if !codes.len().is_multiple_of(width) {
            return Err(Error::shape(
                "codes",
                format!("rows of {width} bytes (dimension {})", self.data.dim),
                format!("{} bytes", codes.len()),
            ));
        }
        let rows = codes.len() / width;
        let mut keys = zeroed("add_codes", "the keys of the codes", rows, 1)?;
        let mut transitions = zeroed::<u32>("add_codes", "the transition counts of the codes", rows, 1)?;
        keys_from_codes(codes, self.data.dim, &mut keys, &mut transitions)?;
        self.append(codes, keys, ids)
    }

    fn append(&mut self, codes: &[u8], keys: Vec<u64>, ids: Option<&[u64]>) -> Result<Vec<u64>> {
        self.check_writable()?; // before the id map changes
        let rows = keys.len();
        let first = self.data.ids.len();
        let ids = match ids {
            Some(ids) => {
                if ids.len() != rows {
                    return Err(Error::shape(
                        "ids",
                        format!("{rows} ids (one per row)"),
                        format!("{}", ids.len()),
                    ));
                }
                let mut map = self.take_id_map();
                let mapped = map_new_ids(&mut map, ids, first);
                self.rows_of = OnceLock::from(map);
                mapped?;
                ids.to_vec()
            }
            None => {
                let start = self.data.next_id;
                let end = start
                    .checked_add(rows as u64)
                    .ok_or_else(|| Error::value("ids", "sequential ids would pass 2^64 - 1"))?;
                // Above every id seen: none can be present. A map not built yet
                // will include them when it is.
                if let Some(map) = self.rows_of.get_mut() {
                    map.reserve(rows);
                    map.extend((start..end).zip(first..));
                }
                (start..end).collect()
            }
        };
        let Codes::Owned(stored) = &mut self.data.codes else {
            return Err(Error::ReadOnly); // not reached: checked above
        };
        stored.extend_from_slice(codes);
        if let Some(state) = self.asym.get_mut() {
            let added = stored_norms(codes, self.data.dim, &state.table)?;
            state.norms.extend_from_slice(&added);
        }
        let last_id = self.data.ids.last().copied();
        self.ids_increasing &=
            last_id.is_none_or(|l| ids.first().is_none_or(|&f| f > l)) && ids.windows(2).all(|w| w[0] < w[1]);
        if let Some(&max) = ids.iter().max() {
            self.data.next_id = self.data.next_id.max(max.saturating_add(1));
        }
        self.data.ids.extend_from_slice(&ids);
        self.data.keys.extend_from_slice(&keys);
        self.alive.resize(self.data.ids.len(), true);
        self.changed();
        Ok(ids)
    }

    /// The id map, built now if it was not.
    fn id_map(&self) -> &IdMap {
        self.rows_of.get_or_init(|| {
            let mut map = IdMap::default();
            map.reserve(self.len());
            let alive_rows = self
                .data
                .ids
                .iter()
                .zip(&self.alive)
                .enumerate()
                .filter(|(_, (_, &a))| a);
            map.extend(alive_rows.map(|(r, (&id, _))| (id, r)));
            map
        })
    }

    /// The id map, moved out to be changed (put it back with `OnceLock::from`).
    fn take_id_map(&mut self) -> IdMap {
        self.id_map();
        self.rows_of.take().unwrap_or_default()
    }

    /// Removes the given ids (unknown ids are ignored); returns how many were
    /// removed. O(1) per id; compacts once more than a quarter of rows are dead.
    pub fn remove(&mut self, ids: &[u64]) -> Result<usize> {
        self.check_writable()?;
        let mut removed = 0;
        let mut map = self.take_id_map();
        for id in ids {
            if let Some(row) = map.remove(id) {
                self.alive[row] = false;
                removed += 1;
            }
        }
        self.rows_of = OnceLock::from(map);
        if removed > 0 {
            self.dead += removed;
            self.changed();
            if self.dead as f64 > DEAD_SHARE_LIMIT * self.data.ids.len() as f64 {
                self.compact()?;
            }
        }
        Ok(removed)
    }

    /// Drops removed rows, keeping the order of the others, and frees their memory.
    pub fn compact(&mut self) -> Result<()> {
        self.check_writable()?;
        if self.dead == 0 {
            return Ok(());
        }
        let width = self.width();
        let Codes::Owned(codes) = &mut self.data.codes else {
            return Err(Error::ReadOnly);
        };
        let mut to = 0;
        for from in 0..self.alive.len() {
            if self.alive[from] {
                if to != from {
                    codes.copy_within(from * width..(from + 1) * width, to * width);
                    self.data.ids[to] = self.data.ids[from];
                    self.data.keys[to] = self.data.keys[from];
                    if let Some(state) = self.asym.get_mut() {
                        state.norms[to] = state.norms[from];
                    }
                }
                to += 1;
            }
        }
        codes.truncate(to * width);
        codes.shrink_to_fit();
        self.data.ids.truncate(to);
        self.data.ids.shrink_to_fit();
        self.data.keys.truncate(to);
        self.data.keys.shrink_to_fit();
        if let Some(state) = self.asym.get_mut() {
            state.norms.truncate(to);
            state.norms.shrink_to_fit();
        }
        self.alive = vec![true; to];
        self.dead = 0;
        self.rows_of = OnceLock::new(); // rows moved: rebuilt on next use
        self.changed();
        Ok(())
    }

    /// The codes of `ids`, in that order (`ids.len() × width`).
    pub fn codes_of(&self, ids: &[u64]) -> Result<Vec<u8>> {
        let width = self.width();
        let mut out = with_capacity("codes", "the codes output", ids.len(), width)?;
        for (i, id) in ids.iter().enumerate() {
            let row = *self.id_map().get(id).ok_or(Error::UnknownId { id: *id, position: i })?;
            out.extend_from_slice(&self.data.codes[row * width..(row + 1) * width]);
        }
        Ok(out)
    }

    /// The stored rows: codes, keys and ids, compact (call [`Index::compact`]
    /// first if rows were removed: this returns `None` while tombstones exist).
    pub fn arrays(&self) -> Option<(&[u8], &[u64], &[u64])> {
        (self.dead == 0).then_some((&self.data.codes[..], &self.data.keys[..], &self.data.ids[..]))
    }

    /// Compacts, then saves atomically to `path` (see `docs/FORMAT.md`).
    /// Saving a memory-mapped index over the file it maps is safe: the new
    /// file replaces the name, the map keeps the old contents.
    pub fn save(&mut self, path: &std::path::Path) -> Result<()> {
        if self.dead > 0 {
            self.compact()?;
        }
        self.data.key_order = self.key_order().rows().to_vec();
        let saved = format::save(&self.data, path);
        self.data.key_order = Vec::new();
        saved
    }

    /// The saved file's bytes (compacts first): what pickling ships.
    pub fn to_bytes(&mut self) -> Result<Vec<u8>> {
        if self.dead > 0 {
            self.compact()?;
        }
        self.data.key_order = self.key_order().rows().to_vec();
        let mut out = Vec::new();
        let written = format::write_to(&self.data, &mut out);
        self.data.key_order = Vec::new();
        written.map_err(|e| Error::value("index", format!("could not serialise: {e}")))?;
        Ok(out)
    }

    /// An index from [`Index::to_bytes`] output (validated like a file).
    pub fn from_bytes(bytes: &[u8]) -> Result<Index> {
        // Errors name the bytes as Python's `Index.from_bytes(data)` does.
        Ok(Index::from_data(format::decode(bytes, "data")?))
    }

    /// Loads an index saved by [`Index::save`]; with `mmap` the codes stay in
    /// the file, mapped read-only, and writing methods fail.
    pub fn load(path: &std::path::Path, mmap: bool) -> Result<Index> {
        Ok(Index::from_data(format::load(path, mmap)?))
    }

    fn check_writable(&self) -> Result<()> {
        if self.is_mapped() {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Drops the caches that depend on the rows.
    fn changed(&mut self) {
        self.alive_mask = OnceLock::new();
        self.key_order = OnceLock::new();
    }

    pub(crate) fn data(&self) -> &IndexData {
        &self.data
    }

    pub(crate) fn alive(&self) -> &[bool] {
        &self.alive
    }

    pub(crate) fn ids_increasing(&self) -> bool {
        self.ids_increasing
    }

    pub(crate) fn row_of(&self, id: u64) -> Option<usize> {
        self.id_map().get(&id).copied()
    }
}

/// ‖x̂‖ of `codes` (rows of the index's width) under `table`, in parallel
/// for many rows; the output is reserved first (`MemoryError` when too large).
fn stored_norms(codes: &[u8], dim: usize, table: &Reconstruction) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    const ROWS_PER_TASK: usize = 16 * 1024;
    let width = code_width(dim);
    let rows = codes.len() / width;
    let mut norms = zeroed("search", "the norms of the stored rows", rows, 1)?;
    codes
        .par_chunks(ROWS_PER_TASK * width)
        .zip(norms.par_chunks_mut(ROWS_PER_TASK))
        .try_for_each(|(c, n)| crate::row_norms(c, dim, table, n))?;
    Ok(norms)
}

/// Id → stored row. foldhash: several times faster than SipHash on u64 keys,
/// and seeded per process, so crafted ids cannot predict collisions.
type IdMap = foldhash::HashMap<u64, usize>;

/// Heap bytes of a hash map, from its capacity: hashbrown keeps capacity =
/// 7/8 of a power-of-two bucket count, each bucket one entry plus a control
/// byte.
pub(crate) fn hash_map_bytes<K, V, S>(map: &std::collections::HashMap<K, V, S>) -> usize {
    match map.capacity() {
        0 => 0,
        cap => (cap * 8).div_ceil(7).next_power_of_two() * (std::mem::size_of::<(K, V)>() + 1),
    }
}

/// Maps `ids` to rows `first..` in `map`, or, when one is already present or
/// repeated in the batch, leaves the map as it was and says which.
fn map_new_ids(map: &mut IdMap, ids: &[u64], first: usize) -> Result<()> {
    use std::collections::hash_map::Entry;
    map.reserve(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        match map.entry(id) {
            Entry::Vacant(slot) => {
                slot.insert(first + i);
            }
            Entry::Occupied(taken) => {
                let row = *taken.get();
                for undo in &ids[..i] {
                    map.remove(undo);
                }
                return Err(Error::DuplicateId {
                    id,
                    row: i,
                    within_batch: row >= first,
                });
            }
        }
    }
    Ok(())
}
