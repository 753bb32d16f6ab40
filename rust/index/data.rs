//! What an index stores, as plain arrays: the in-memory form of a saved file.
//!
//! `IndexData` is always compact (no removed rows): the index keeps its
//! tombstones elsewhere and compacts before saving.

use crate::decode::Reconstruction;
use crate::encode::rotation::Rotation;
use crate::search::lee::LeeWeights;
use std::ops::Deref;

/// The threshold rule codes were made with, under its old name.
pub use crate::encode::thresholds::ThresholdRule as IndexThresholds;

/// Row-major codes, owned or memory-mapped read-only from a saved file.
pub enum Codes {
    Owned(Vec<u8>),
    /// `len` bytes at `offset` of a read-only map of the whole file.
    Mapped {
        map: memmap2::Mmap,
        offset: usize,
        len: usize,
    },
}

impl Codes {
    pub fn is_mapped(&self) -> bool {
        matches!(self, Codes::Mapped { .. })
    }
}

impl Deref for Codes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Codes::Owned(v) => v,
            Codes::Mapped { map, offset, len } => &map[*offset..*offset + *len],
        }
    }
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Codes({kind}, {} bytes)", self.len())
    }
}

/// Everything a saved index holds. Invariants (checked by the loader):
/// `codes.len() == ids.len() · code_width(dim)`, `keys.len() == ids.len()`,
/// ids unique (user ids may be anything) and all below `next_id` (or `next_id`
/// = `u64::MAX` when the id `u64::MAX` is stored), so sequential ids never repeat one,
/// `key_order` a permutation of `0..ids.len()` sorted by `(keys[row], ids[row])`.
#[derive(Debug)]
pub struct IndexData {
    pub dim: usize,
    pub thresholds: IndexThresholds,
    /// The fitted reconstruction table of the thresholds (SPEC §8), of
    /// dimension `dim`; `None`: the analytic default of the rule.
    pub reconstruction: Option<Reconstruction>,
    /// The rotation of the thresholds (SPEC §9), of dimension `dim`; `None`: none.
    pub rotation: Option<Rotation>,
    /// `None`: plain Lee distance.
    pub weights: Option<LeeWeights>,
    /// The id `add` gives the next vector when none is given: above every stored id.
    pub next_id: u64,
    pub codes: Codes,
    pub ids: Vec<u64>,
    pub keys: Vec<u64>,
    /// Rows sorted by `(key, id)`: the key-window structure (SPEC §4).
    pub key_order: Vec<u64>,
}
