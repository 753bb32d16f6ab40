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

pub mod cuts;
pub mod encode;
pub mod error;
pub mod gray;
pub mod index;
pub mod kernels;
pub mod lee;
pub mod parallel;
pub mod quantize;
pub mod runs;
pub mod search;
pub mod stats;

mod blocks;
mod topk;

#[cfg(feature = "python")]
mod python;

pub use cuts::DimCuts;
pub use encode::{encode, encode_cuts, encode_cuts_with, encode_with, symbols, symbols_cuts, EncodeElement};
pub use error::{Error, Result};
pub use gray::{code_width, complement, pack, unpack, validate_symbols};
pub use kernels::{Backend, Kernels};
pub use lee::{
    lee, lee_counts, lee_matrix, lee_one_to_many, lee_pairwise, weighted_lee_pairwise, LeeCounts, LeeWeights,
};
pub use quantize::{check_dim, gaussian_threshold, GAUSSIAN_QUARTILE, MAX_DIM};
pub use runs::{
    key_and_transitions, key_from_reduced, keys_from_codes, keys_from_symbols, prefix_mask, prefix_range, run_reduce,
    window_range,
};
pub use search::{search, search_masked, search_masked_with, search_with};

/// The name of the SIMD backend in use (`"avx512-vpopcntdq"`, `"avx2"` or `"scalar"`).
pub fn simd_backend() -> &'static str {
    Kernels::active().backend.name()
}
