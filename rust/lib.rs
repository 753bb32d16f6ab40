//! # q2key
//!
//! Q² ("quaternary quantization") codes for float vectors: 2 bits per
//! dimension, Gray-coded so that `popcount(a XOR b)` is the Lee distance on
//! Z4, plus a 64-bit transition key that sorts similar vectors near each
//! other, and exact k-NN search over the codes.
//!
//! The core is plain Rust on slices: callers own every buffer. The Python
//! bindings live behind the `python` feature.
//!
//! ```
//! let dim = 8;
//! let x: Vec<f32> = vec![0.9, -0.1, 0.05, -0.8, 0.3, 0.0, -0.02, 0.4];
//! let mut codes = vec![0u8; q2key::code_width(dim)];
//! let (mut keys, mut transitions) = ([0u64; 1], [0u32; 1]);
//! q2key::encode(&x, dim, None, &mut codes, &mut keys, &mut transitions).unwrap();
//! assert_eq!(q2key::lee(&codes, &codes).unwrap(), 0);
//! ```

//! ## Module map, in pipeline order
//!
//! | module | what it does |
//! |---|---|
//! | `encode` (`quantize`, `cuts`) | float rows → Z4 symbols → packed Gray codes, with a global threshold or per-dimension cuts |
//! | `codes` | Gray map, pack / unpack / complement of codes |
//! | `decode` | reconstruction tables (Gaussian, fitted, Lloyd–Max) and the decode of codes to floats |
//! | `keys` | run reduction, 64-bit transition keys, key prefixes and windows |
//! | `search` (`lee`, `blocks`, `topk`, `asym`) | Lee distances and exact k-NN over codes; asymmetric (float query) search |
//! | [`index`] | an index with ids: add, remove, search, key windows, persistence ([`index::format`]) |
//! | [`stats`] | statistics of symbol sequences (transitions, bigrams, collisions, ...) |
//! | `kernels` | the per-CPU SIMD kernels and every helper only they use |
//! | [`parallel`] | the bounded thread pools (`install`, `MAX_THREADS`) |
//! | `check`, `error` | the buffer checks and the one [`Error`] type every module shares |
//!
//! Every item is re-exported at the root, except three namespaces kept
//! public on purpose: [`index`] (the index, its storage and its file format),
//! [`stats`] (a family of batch statistics whose names read as
//! `stats::transition_density`, mirroring `q2key.stats` in Python) and
//! [`parallel`] (`parallel::install` says what `q2key::install` would not).

mod check;
mod codes;
mod decode;
mod encode;
mod error;
mod kernels;
mod keys;
mod search;

pub mod index;
pub mod ivf;
pub mod parallel;
pub mod stats;

#[cfg(feature = "python")]
mod python;

pub use codes::{
    code_width, complement, complement_row, gray, last_byte_mask, pack, pack_row, theta, ungray, unpack, unpack_row,
    validate_symbols,
};
pub use decode::{
    cell_means, decode, f32_queries, gaussian_cell_mean, lloyd_max, normal_cdf, reconstruction_mse, row_norms,
    unit_rows, Reconstruction, MAX_RECONSTRUCTION, MIN_RECONSTRUCTION,
};
pub use encode::cuts::{CutElement, DimCuts};
pub use encode::quantize::{check_dim, gaussian_threshold, resolve_threshold, Element, GAUSSIAN_QUARTILE, MAX_DIM};
pub use encode::rotation::{Rotation, ORTHOGONALITY_TOLERANCE};
pub use encode::rotation_fit::{
    fit_rotation, haar_matrix, polar_factor, polar_factor_jacobi, polar_factor_newton, random_rotation, RotationFit,
    RotationKind, DEFAULT_ROUNDS,
};
pub use encode::thresholds::{check_tau, ThresholdRule, Thresholds};
pub use encode::{encode, encode_cuts, encode_cuts_with, encode_with, symbols, symbols_cuts, EncodeElement};
pub use error::{Error, Result};
pub use index::{Filter, Index, IndexThresholds};
pub use ivf::{IvfIndex, IvfParams, IvfStats};
pub use kernels::scalar_asym::fast_scan_blocks;
#[doc(hidden)]
pub use kernels::scalar_lee_scan::LeeTables;
#[cfg(target_arch = "x86_64")]
#[doc(hidden)]
pub use kernels::x86_avx2_lee::Avx2Tile;
pub use kernels::{code_words, transpose_block, words_per_code, Backend, Kernels};
pub use keys::{
    check_padding, key_and_transitions, key_and_transitions_of_symbols, key_from_reduced, keys_from_codes,
    keys_from_symbols, prefix_mask, prefix_range, reduced, run_reduce, window_delta_for_depth, window_range,
    KEY_SYMBOLS,
};
pub use search::asym::{
    asym_rescored_total, rerank_asym, search_asym, search_asym_fast_scan, search_asym_fast_scan_with, search_asym_with,
    FastScanCodes,
};
pub use search::lee::{
    lee, lee_counts, lee_matrix, lee_one_to_many, lee_pairwise, weighted_lee_pairwise, LeeCounts, LeeWeights,
};
pub use search::{result_columns, search, search_masked, search_masked_with, search_with};

/// The name of the SIMD backend in use (`"avx512-vpopcntdq"`, `"avx2"` or `"scalar"`).
pub fn simd_backend() -> &'static str {
    Kernels::active().backend.name()
}
