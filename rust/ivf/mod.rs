//! An inverted-file index over Q² codes (issue 13): spherical k-means
//! centroids partition the rows into lists; a search scans only the
//! `nprobe` lists whose centroids are nearest the query.
//!
//! Each row's code is the code SPEC §1–4 gives the vector under the index's
//! [`Thresholds`] (the vector itself, not a residual), so codes and scores
//! are those of [`crate::Index`]: with `nprobe` = every list a search equals
//! the exhaustive one over the same rows exactly (ids, scores, ties by id).
//!
//! Defaults (all overridable in [`IvfParams`]):
//! - lists ≈ 4·√N for N training rows (faiss's rule of thumb, 4–16·√N);
//! - 64 training points per list: faiss warns below 39 and samples down to
//!   256; 64 keeps k-means cheap (a quarter of faiss's work) while every
//!   centroid still averages dozens of points, and coarse routing gains
//!   little from more (the lists only have to be good, not optimal);
//! - 10 iterations: spherical k-means moves little after that.
//!
//! Adding after training assigns rows to the existing centroids; nothing is
//! retrained. When the data drifts, new rows pile into fewer lists:
//! [`IvfStats::imbalance`] (faiss's `imbalance_factor`, 1 = perfectly even)
//! grows, and searches at the same `nprobe` scan more rows; retrain (build
//! a new index) when it does.

pub mod format;
pub mod kmeans;
mod lists;
mod route;
mod search;

pub use kmeans::KmeansParams;
pub use search::{IvfAsymNeighbours, IvfLeeNeighbours};

use crate::code_width;
use crate::decode::Reconstruction;
use crate::encode::thresholds::Thresholds;
use crate::error::{alloc_error, with_capacity, zeroed, Error, Result};
use crate::search::asym::SharedTables;
use lists::List;
use rayon::prelude::*;
use route::RouteTable;
use std::borrow::Cow;
use std::sync::OnceLock;

/// Live id → (list, row in the list).
type IdRows = foldhash::HashMap<u64, (u32, u32)>;

/// Training points per list by default.
pub const DEFAULT_POINTS_PER_LIST: usize = 64;
/// k-means iterations by default.
pub const DEFAULT_ITERATIONS: usize = 10;
/// A list is compacted once more than this share of its rows is removed.
const DEAD_SHARE_LIMIT: f64 = 0.25;

/// How [`IvfIndex::train`] partitions. `None` fields take the defaults above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IvfParams {
    pub lists: Option<usize>,
    pub points_per_list: Option<usize>,
    pub iterations: Option<usize>,
    pub seed: u64,
}

/// The default number of lists for `rows` training rows: `round(4·√rows)`,
/// at least 1 and at most `rows`.
pub fn default_lists(rows: usize) -> usize {
    ((4.0 * (rows as f64).sqrt()).round() as usize).clamp(1, rows.max(1))
}

/// Figures [`IvfIndex::stats`] reports (list sizes count live rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IvfStats {
    pub rows: usize,
    pub dead: usize,
    pub lists: usize,
    pub min_list: usize,
    pub max_list: usize,
    pub mean_list: f64,
    /// `lists · Σ size² / (Σ size)²` (faiss's `imbalance_factor`): 1 when every
    /// list holds as many rows, `lists` when one list holds all; 0 when empty.
    pub imbalance: f64,
    /// Heap bytes: lists (codes with their block padding, ids, norms,
    /// liveness), centroids and their routing levels, the reconstruction
    /// table, once an asymmetric search has built them its shared tables
    /// (≈ 200 KB at 384 dimensions), and once `contains` or `remove` has
    /// built it, the id map; mapped codes count.
    pub memory_bytes: usize,
    pub mapped: bool,
}

/// An inverted-file index. Not internally synchronised (`&self` methods only read).
#[derive(Debug)]
pub struct IvfIndex {
    dim: usize,
    thresholds: Thresholds,
    /// The reconstruction table in effect (fitted, else the rule's default).
    table: Reconstruction,
    /// `lists × dim` unit centroids; empty until trained.
    centroids: Vec<f32>,
    /// The centroids quantised for routing (`None` untrained or above
    /// `route::ROUTE_MAX_DIM` dimensions: routed by f32 dot products).
    route: Option<RouteTable>,
    /// The table's values every asymmetric search uses (built by the first,
    /// ≈ 200 KB at 384 dimensions: building them took 2–8 % of a search
    /// of 1 000 queries).
    shared: OnceLock<SharedTables>,
    lists: Vec<List>,
    /// Above every id ever stored (the next sequential id).
    next_id: u64,
    /// Whether the lists' codes are mapped from a file (then read-only).
    mapped: bool,
    /// Every live id's (list, row), built on first use by `contains` or
    /// `remove` (an index that is only searched never needs it; ≈ 20–39 B
    /// per row, in `memory_bytes`), kept up to date by adds and removals,
    /// dropped when rows move (compaction, training) and rebuilt on next use.
    rows_of: OnceLock<IdRows>,
}

impl IvfIndex {
    /// An untrained, empty index for vectors of dimension `dim` encoded
    /// with `thresholds` (which must be for `dim`, or for any dimension).
    pub fn new(dim: usize, thresholds: Thresholds) -> Result<IvfIndex> {
        let dim = crate::check_dim(dim)?;
        let table = thresholds.table_for(dim)?;
        Ok(IvfIndex {
            dim,
            thresholds,
            table,
            centroids: Vec::new(),
            route: None,
            shared: OnceLock::new(),
            lists: Vec::new(),
            rows_of: OnceLock::new(),
            next_id: 0,
            mapped: false,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    pub fn is_trained(&self) -> bool {
        !self.lists.is_empty()
    }

    /// Number of lists (0 before training).
    pub fn lists(&self) -> usize {
        self.lists.len()
    }

    /// The centroids, `lists × dim` row-major unit vectors.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.lists.iter().map(List::live).sum()
    }

    /// The live ids in storage order: list by list, each list's rows in
    /// order (what a scan of the lists visits).
    pub fn ids(&self) -> Result<Vec<u64>> {
        let mut out = with_capacity("ids", "the ids output", self.len(), 1)?;
        for l in &self.lists {
            out.extend((0..l.rows()).filter(|&r| l.is_alive(r)).map(|r| l.ids[r]));
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a live row has id `id` (O(1) once the id map is built: the
    /// first call builds it, O(rows)).
    pub fn contains(&self, id: u64) -> bool {
        self.id_rows().contains_key(&id)
    }

    /// The id map, built now if it was not.
    fn id_rows(&self) -> &IdRows {
        self.rows_of.get_or_init(|| self.build_id_rows())
    }

    /// Every live id's (list, row), from the lists.
    fn build_id_rows(&self) -> IdRows {
        let mut map = IdRows::default();
        map.reserve(self.len());
        for (l, list) in self.lists.iter().enumerate() {
            let live = (0..list.rows()).filter(|&r| list.is_alive(r));
            map.extend(live.map(|r| (list.ids[r], (l as u32, r as u32))));
        }
        map
    }

    /// Trains the centroids on `x` (`rows × dim` float rows, finite): a
    /// sample of `lists · points_per_list` distinct rows drawn by `seed`
    /// (all rows when there are fewer), then spherical k-means. Only an
    /// empty, untrained index trains (its lists would no longer match).
    pub fn train(&mut self, x: &[f32], params: IvfParams) -> Result<()> {
        self.train_rows(Cow::Borrowed(x), params)
    }

    /// [`IvfIndex::train`] of rows the caller hands over: when every row
    /// trains, k-means normalises them in place instead of in a copy, so
    /// training holds the sample once (a binding that copied the rows to
    /// release the GIL passes its copy here).
    pub fn train_owned(&mut self, x: Vec<f32>, params: IvfParams) -> Result<()> {
        self.train_rows(Cow::Owned(x), params)
    }

    fn train_rows(&mut self, x: Cow<'_, [f32]>, params: IvfParams) -> Result<()> {
        self.check_writable()?;
        if self.is_trained() {
            return Err(Error::value(
                "index",
                "is already trained (build a new index to retrain)",
            ));
        }
        let rows = self.check_floats("x", &x)?;
        let lists = params.lists.unwrap_or_else(|| default_lists(rows));
        let per_list = params.points_per_list.unwrap_or(DEFAULT_POINTS_PER_LIST);
        if per_list == 0 {
            return Err(Error::value("points_per_list", "must be at least 1"));
        }
        let iterations = params.iterations.unwrap_or(DEFAULT_ITERATIONS);
        let want = lists.saturating_mul(per_list);
        let mut rng = kmeans::SplitMix::new(params.seed);
        let training = if want < rows {
            let picked = kmeans::sample_distinct(rows, want, &mut rng);
            let mut sample = with_capacity("x", "the training sample", picked.len(), self.dim)?;
            for r in picked {
                sample.extend_from_slice(&x[r * self.dim..][..self.dim]);
            }
            sample
        } else {
            match x {
                Cow::Owned(rows) => rows,
                Cow::Borrowed(rows) => {
                    let mut copy = with_capacity("x", "the training sample", rows.len() / self.dim, self.dim)?;
                    copy.extend_from_slice(rows);
                    copy
                }
            }
        };
        let centroids = kmeans::train_owned(
            training,
            self.dim,
            KmeansParams {
                lists,
                iterations,
                seed: rng.next(),
            },
        )?;
        self.route = RouteTable::new(&centroids, self.dim)?;
        self.lists = (0..lists).map(|_| List::empty()).collect();
        self.rows_of = OnceLock::new();
        self.centroids = centroids;
        Ok(())
    }

    /// The number of rows of `x` (a `rows × dim` float matrix, finite),
    /// errors naming `arg`.
    fn check_floats(&self, arg: &'static str, x: &[f32]) -> Result<usize> {
        let rows = crate::check::check_rows(arg, x.len(), self.dim)?;
        if let Some(at) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                arg,
                row: at / self.dim,
                col: at % self.dim,
                value: f64::from(x[at]),
            });
        }
        Ok(rows)
    }

    /// The codes of `x` under the index's thresholds (the one place rows
    /// are encoded: the code SPEC §1–4 gives each vector, rotated first
    /// when the thresholds carry a rotation, SPEC §9, as [`crate::Index`]
    /// encodes). Routing never sees the rotation: centroids and lists are
    /// of the unrotated unit vectors.
    fn encode(&self, x: &[f32], rows: usize) -> Result<Vec<u8>> {
        let mut codes = zeroed("add", "the codes of the vectors", rows, code_width(self.dim))?;
        let mut keys = zeroed("add", "the keys of the vectors", rows, 1)?;
        let mut transitions = zeroed::<u32>("add", "the transition counts of the vectors", rows, 1)?;
        self.thresholds
            .encode(x, self.dim, &mut codes, &mut keys, &mut transitions)?;
        Ok(codes)
    }

    /// The nearest list of each row of `x`. Each parallel task normalises
    /// its own [`kmeans::ASSIGN_ROWS`] rows into a buffer of that size (the
    /// chunks `assign` would make), so routing holds no copy of `x`.
    fn nearest_lists(&self, x: &[f32], rows: usize) -> Result<Vec<u32>> {
        let mut lists = zeroed::<u32>("add", "the lists of the vectors", rows, 1)?;
        x.par_chunks(kmeans::ASSIGN_ROWS * self.dim)
            .zip(lists.par_chunks_mut(kmeans::ASSIGN_ROWS))
            .try_for_each(|(chunk, out)| {
                let unit = kmeans::normalised(chunk, self.dim)?;
                kmeans::assign(&unit, &self.centroids, self.dim, out)
            })?;
        Ok(lists)
    }

    /// The list each row of `x` (`rows × dim`, finite) would be added to:
    /// its nearest centroid, as [`IvfIndex::add`] assigns it. With
    /// [`IvfIndex::reserve`] and [`IvfIndex::add_to_lists`] a streamed build
    /// counts its rows per list first and sizes every list once: the lists
    /// never reallocate, so the heap holds no blocks they outgrew.
    pub fn assign(&self, x: &[f32]) -> Result<Vec<u32>> {
        if !self.is_trained() {
            return Err(Error::value("index", "is not trained: call train first"));
        }
        let rows = self.check_floats("x", x)?;
        self.nearest_lists(x, rows)
    }

    /// Makes room for `rows_per_list[l]` more rows in list `l` (one count
    /// per list), exactly, so adding them does not reallocate. Errors name
    /// `rows_per_list`: a wrong length, or `MemoryError` when a size
    /// overflows or cannot be allocated (the lists may then be partly
    /// reserved: capacity only, no rows change).
    pub fn reserve(&mut self, rows_per_list: &[u64]) -> Result<()> {
        self.check_writable()?;
        if !self.is_trained() {
            return Err(Error::value("index", "is not trained: call train first"));
        }
        if rows_per_list.len() != self.lists.len() {
            return Err(Error::shape(
                "rows_per_list",
                format!("{} counts (one per list)", self.lists.len()),
                rows_per_list.len(),
            ));
        }
        let width = code_width(self.dim);
        for (list, &more) in self.lists.iter_mut().zip(rows_per_list) {
            let more = usize::try_from(more).map_err(|_| Error::Alloc {
                arg: "rows_per_list",
                what: "the inverted lists",
                size: format!("{more} more rows"),
            })?;
            list.reserve(more, width, "rows_per_list")?;
        }
        Ok(())
    }

    /// Encodes `x` (`rows × dim`, finite) and adds each row to its nearest
    /// list under `ids` (sequential from [`IvfIndex::next_id`] when `None`).
    /// All-or-nothing: a bad shape, value or id (repeated, or already
    /// stored) fails before anything is stored. Returns the ids.
    pub fn add(&mut self, x: &[f32], ids: Option<&[u64]>) -> Result<Vec<u64>> {
        self.add_rows(x, ids, None)
    }

    /// [`IvfIndex::add`] of rows whose lists [`IvfIndex::assign`] gave
    /// (`lists[r]` for row `r`; not recomputed). A count or list number
    /// that does not fit fails, naming `lists`, before anything is stored.
    /// Any list numbers below [`IvfIndex::lists`] are accepted: the index
    /// stays valid, but a search finds a row only in the list it was put in.
    pub fn add_to_lists(&mut self, x: &[f32], ids: Option<&[u64]>, lists: &[u32]) -> Result<Vec<u64>> {
        self.add_rows(x, ids, Some(lists))
    }

    fn add_rows(&mut self, x: &[f32], ids: Option<&[u64]>, lists: Option<&[u32]>) -> Result<Vec<u64>> {
        self.check_writable()?;
        if !self.is_trained() {
            return Err(Error::value("index", "is not trained: call train first"));
        }
        let rows = self.check_floats("x", x)?;
        if let Some(lists) = lists {
            self.check_lists(lists, rows)?;
        }
        let ids = self.new_ids(rows, ids)?;
        let total = self.lists.iter().map(List::rows).sum::<usize>() + rows;
        if total > u32::MAX as usize {
            return Err(Error::shape("x", "at most 2³² − 1 rows in the index", total));
        }
        let codes = self.encode(x, rows)?;
        let mut norms = zeroed("add", "the norms of the vectors", rows, 1)?;
        crate::row_norms(&codes, self.dim, &self.table, &mut norms)?;
        let assignment = match lists {
            Some(lists) => Cow::Borrowed(lists),
            None => Cow::Owned(self.nearest_lists(x, rows)?),
        };
        let members = kmeans::group_by_list(&assignment, self.lists.len());
        let width = code_width(self.dim);
        for (l, list) in self.lists.iter_mut().enumerate() {
            list.reserve(members.starts[l + 1] - members.starts[l], width, "x")?;
        }
        if let Some(map) = self.rows_of.get_mut() {
            map.try_reserve(rows)
                .map_err(|_| alloc_error::<(u64, (u32, u32))>("x", "the id map", rows, 1))?;
        }
        // Nothing fails from here on.
        let before: Vec<usize> = self.lists.iter().map(List::rows).collect();
        self.lists.par_iter_mut().enumerate().for_each(|(l, list)| {
            for &r in &members.rows[members.starts[l]..members.starts[l + 1]] {
                let r = r as usize;
                list.push(&codes[r * width..][..width], ids[r], norms[r]);
            }
        });
        if let Some(map) = self.rows_of.get_mut() {
            for (l, &first) in before.iter().enumerate() {
                let added = &members.rows[members.starts[l]..members.starts[l + 1]];
                map.extend(
                    added
                        .iter()
                        .zip(first..)
                        .map(|(&r, row)| (ids[r as usize], (l as u32, row as u32))),
                );
            }
        }
        if let Some(&max) = ids.iter().max() {
            self.next_id = self.next_id.max(max.saturating_add(1));
        }
        Ok(ids)
    }

    /// `lists` (one list number per row of `rows`, each below the number of lists).
    fn check_lists(&self, lists: &[u32], rows: usize) -> Result<()> {
        if lists.len() != rows {
            return Err(Error::shape(
                "lists",
                format!("{rows} list numbers (one per row)"),
                lists.len(),
            ));
        }
        if let Some(row) = lists.iter().position(|&l| l as usize >= self.lists.len()) {
            return Err(Error::value(
                "lists",
                format!(
                    "row {row}: list {} is not below the index's {} lists",
                    lists[row],
                    self.lists.len()
                ),
            ));
        }
        Ok(())
    }

    /// The ids of `rows` new rows: `given` (checked: one per row, distinct,
    /// none stored) or sequential ones.
    fn new_ids(&self, rows: usize, given: Option<&[u64]>) -> Result<Vec<u64>> {
        let Some(ids) = given else {
            let start = self.next_id;
            let end = start
                .checked_add(rows as u64)
                .ok_or_else(|| Error::value("ids", "sequential ids would pass 2^64 - 1"))?;
            return Ok((start..end).collect());
        };
        if ids.len() != rows {
            return Err(Error::shape(
                "ids",
                format!("{rows} ids (one per row)"),
                format!("{}", ids.len()),
            ));
        }
        let mut batch = foldhash::HashMap::default();
        batch.reserve(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            if batch.insert(id, i).is_some() {
                return Err(Error::DuplicateId {
                    id,
                    row: i,
                    within_batch: true,
                });
            }
        }
        // The first row of the batch whose id is stored: by the id map when it
        // is built, else by a scan of the lists (not building the map for it
        // keeps a streamed build at the memory it needs).
        let stored = match self.rows_of.get() {
            Some(map) => ids.iter().position(|id| map.contains_key(id)),
            None => self
                .lists
                .par_iter()
                .filter_map(|l| {
                    (0..l.rows())
                        .filter(|&r| l.is_alive(r))
                        .filter_map(|r| batch.get(&l.ids[r]).copied())
                        .min()
                })
                .min(),
        };
        if let Some(i) = stored {
            return Err(Error::DuplicateId {
                id: ids[i],
                row: i,
                within_batch: false,
            });
        }
        Ok(ids.to_vec())
    }

    /// Removes the rows of `ids` (unknown ids are ignored); returns how
    /// many were removed, O(1) per id through the id map (built by the first
    /// call). A list is compacted once more than a quarter of its rows are
    /// removed.
    pub fn remove(&mut self, ids: &[u64]) -> Result<usize> {
        self.check_writable()?;
        let mut map = self.rows_of.take().unwrap_or_else(|| self.build_id_rows());
        let mut removed = 0;
        for id in ids {
            if let Some((l, r)) = map.remove(id) {
                if self.lists[l as usize].kill(r as usize) {
                    removed += 1;
                }
            }
        }
        let width = code_width(self.dim);
        let compacted = self
            .lists
            .par_iter_mut()
            .map(|l| -> Result<bool> {
                if l.dead as f64 > DEAD_SHARE_LIMIT * l.rows() as f64 {
                    l.compact(width)?;
                    return Ok(true);
                }
                Ok(false)
            })
            .collect::<Result<Vec<bool>>>()?;
        // Compaction moves rows: the map is rebuilt on next use.
        if !compacted.contains(&true) {
            self.rows_of = OnceLock::from(map);
        }
        Ok(removed)
    }

    /// Drops every removed row and frees its memory.
    pub fn compact(&mut self) -> Result<()> {
        self.check_writable()?;
        let width = code_width(self.dim);
        if self.lists.iter().any(|l| l.dead > 0) {
            self.rows_of = OnceLock::new(); // rows move: rebuilt on next use
        }
        self.lists.par_iter_mut().try_for_each(|l| l.compact(width))
    }

    pub fn stats(&self) -> IvfStats {
        let sizes: Vec<usize> = self.lists.iter().map(List::live).collect();
        let rows: usize = sizes.iter().sum();
        let squares: f64 = sizes.iter().map(|&s| (s as f64) * (s as f64)).sum();
        let imbalance = if rows == 0 {
            0.0
        } else {
            squares * sizes.len() as f64 / ((rows as f64) * (rows as f64))
        };
        IvfStats {
            rows,
            dead: self.lists.iter().map(|l| l.dead).sum(),
            lists: sizes.len(),
            min_list: sizes.iter().copied().min().unwrap_or(0),
            max_list: sizes.iter().copied().max().unwrap_or(0),
            mean_list: if sizes.is_empty() {
                0.0
            } else {
                rows as f64 / sizes.len() as f64
            },
            imbalance,
            memory_bytes: self.memory_bytes(),
            mapped: self.mapped,
        }
    }

    /// Heap bytes held (see [`IvfStats::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<IvfIndex>()
            + self.lists.iter().map(List::memory_bytes).sum::<usize>()
            + 4 * self.centroids.capacity()
            + self.route.as_ref().map_or(0, RouteTable::heap_bytes)
            + self.shared.get().map_or(0, SharedTables::heap_bytes)
            + 16 * self.dim
            + self.rows_of.get().map_or(0, crate::index::hash_map_bytes)
    }

    /// Compacts, then saves atomically to `path` (docs/FORMAT.md). Saving
    /// a mapped index, even over the file it maps, is safe.
    pub fn save(&mut self, path: &std::path::Path) -> Result<()> {
        if !self.mapped {
            self.compact()?;
        }
        format::save(self, path)
    }

    /// The saved file's bytes (compacts first): what pickling ships.
    pub fn to_bytes(&mut self) -> Result<Vec<u8>> {
        if !self.mapped {
            self.compact()?;
        }
        let mut out = Vec::new();
        format::write_to(self, &mut out).map_err(|e| Error::value("index", format!("could not serialise: {e}")))?;
        Ok(out)
    }

    /// An index from [`IvfIndex::to_bytes`] output (validated like a file; errors name `data`).
    pub fn from_bytes(bytes: &[u8]) -> Result<IvfIndex> {
        format::decode(bytes, "data")
    }

    /// Loads an index saved by [`IvfIndex::save`]; with `mmap` the lists'
    /// codes stay in the file, mapped read-only, and writing methods fail.
    pub fn load(path: &std::path::Path, mmap: bool) -> Result<IvfIndex> {
        format::load(path, mmap)
    }

    fn check_writable(&self) -> Result<()> {
        if self.mapped {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}
