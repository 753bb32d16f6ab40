//! Run-reduction, the 64-bit transition key, the transition count and key
//! prefix ranges (SPEC §4).
//!
//! Keys and counts are computed from the packed Gray code, 32 symbols per
//! 64-bit word: a symbol differs from its predecessor exactly when their Gray
//! pairs differ, so the run starts of a word are one XOR with the word shifted
//! by one symbol and its population count.

use crate::check::{check_len, check_rows};
use crate::codes::{code_width, validate_symbols};
use crate::error::Result;

/// Number of symbols a key holds.
pub const KEY_SYMBOLS: usize = 32;

const LOW_BITS: u64 = 0x5555_5555_5555_5555;

/// The run-reduced elements of a sequence, in order, without allocating: the
/// first symbol, then every symbol that differs from its predecessor. The one
/// run reduction of the crate (keys, [`run_reduce`] and the statistics use it).
#[inline]
pub fn reduced(row: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut prev = None;
    row.iter().copied().filter(move |&s| {
        let keep = prev != Some(s);
        prev = Some(s);
        keep
    })
}

/// Run-reduces one symbol sequence into a new vector (see [`reduced`]).
pub fn run_reduce(symbols: &[u8]) -> Vec<u8> {
    reduced(symbols).collect()
}

/// The key of a run-reduced (or any) sequence: its first 32 elements as
/// base-4 digits, most significant first; missing low digits are 0.
pub fn key_from_reduced(reduced: &[u8]) -> u64 {
    reduced
        .iter()
        .take(KEY_SYMBOLS)
        .enumerate()
        .fold(0u64, |k, (i, &r)| k | (u64::from(r & 3) << (62 - 2 * i)))
}

/// Loads code word `w` (symbols `32w .. 32w+31`) big-endian, zero-filled past the end.
#[inline(always)]
fn load_word(code: &[u8], w: usize) -> u64 {
    let start = w * 8;
    match code.get(start..start + 8) {
        Some(bytes) => u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8])),
        None => load_partial_word(&code[start..]),
    }
}

/// The last, partial word of a code (a variable-length copy: kept off the hot path).
#[cold]
fn load_partial_word(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    u64::from_be_bytes(buf)
}

/// Key and transition count `|R|` of one packed code of dimension `dim ≥ 1`.
#[inline]
pub fn key_and_transitions(code: &[u8], dim: usize) -> (u64, u32) {
    key_and_transitions_with(code, dim, gather_run_starts, count_run_starts)
}

/// The Gray pairs of `word` whose low bit is set in `starts`, packed in order
/// (the earliest symbol highest): what BMI2 `pext(word, starts | starts << 1)` computes.
#[inline(always)]
pub(crate) fn gather_run_starts(word: u64, starts: u64) -> u64 {
    let (mut out, mut m) = (0u64, starts);
    while m != 0 {
        let pos = 63 - m.leading_zeros();
        out = (out << 2) | ((word >> pos) & 3);
        m &= !(1u64 << pos);
    }
    out
}

/// [`gather_run_starts`] one byte (four Gray pairs) at a time through
/// [`GATHER_BYTE`]: a fixed eight steps without data-dependent branches, for
/// CPUs whose `pext` is slow (AMD before Zen 3) or missing. Same result as
/// [`gather_run_starts`] for every word and every `starts` (bits outside
/// [`LOW_BITS`] ignored).
#[inline(always)]
pub(crate) fn gather_run_starts_bytewise(word: u64, starts: u64) -> u64 {
    let mut out = 0u64;
    for shift in [56, 48, 40, 32, 24, 16, 8, 0] {
        let byte = (word >> shift) & 0xFF;
        // The byte's four start bits (at bits 6, 4, 2, 0) → a nibble, first pair highest.
        let s = (starts >> shift) & 0x55;
        let s = (s | (s >> 1)) & 0x33;
        let nibble = (s | (s >> 2)) & 0x0F;
        out = (out << (2 * nibble.count_ones())) | u64::from(GATHER_BYTE[((byte << 4) | nibble) as usize]);
    }
    out
}

/// `GATHER_BYTE[byte << 4 | nibble]`: the Gray pairs of `byte` (first pair in
/// the high bits) whose bit in `nibble` is set (bit 3 = first pair), packed in
/// order, the last one lowest: [`gather_run_starts`] of one byte.
static GATHER_BYTE: [u8; 4096] = {
    let mut table = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        let (byte, nibble) = (i >> 4, i & 15);
        let mut out = 0;
        let mut pair = 0;
        while pair < 4 {
            if nibble & (8 >> pair) != 0 {
                out = (out << 2) | ((byte >> (6 - 2 * pair)) & 3);
            }
            pair += 1;
        }
        table[i] = out as u8;
        i += 1;
    }
    table
};

/// Run starts in `word` (bit `2i` set where symbol `i` differs from the one
/// before; `prev` is the Gray pair preceding the word), limited to `used` symbols.
#[inline(always)]
fn run_starts(word: u64, prev: u64, used: usize) -> u64 {
    let diff = word ^ ((word >> 2) | (prev << 62));
    let starts = (diff | (diff >> 1)) & LOW_BITS;
    if used < 32 {
        starts & !(u64::MAX >> (2 * used))
    } else {
        starts
    }
}

/// Symbols used in word `w` of a code of dimension `dim`.
#[inline(always)]
fn used_in_word(dim: usize, w: usize) -> usize {
    (dim - 32 * w).min(32)
}

/// Number of run starts in words `first..` of a code, `prev` being the Gray
/// pair of the symbol before word `first`.
#[inline(always)]
pub(crate) fn count_run_starts(code: &[u8], first: usize, dim: usize, mut prev: u64) -> u32 {
    let mut runs = 0;
    // Whole words first, without the per-word bounds and partial-word checks.
    let full = dim / 32;
    if first < full {
        for bytes in code[8 * first..8 * full].chunks_exact(8) {
            let word = u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]));
            runs += run_starts(word, prev, 32).count_ones();
            prev = word & 3;
        }
    }
    for w in first.max(full)..dim.div_ceil(32) {
        let word = load_word(code, w);
        let used = used_in_word(dim, w);
        runs += run_starts(word, prev, used).count_ones();
        prev = (word >> (2 * (32 - used))) & 3;
    }
    runs
}

/// [`key_and_transitions`] with the run-start gather and the count of the
/// words after the key supplied by the caller (the AVX-512 backend passes
/// `pext` and a VPOPCNTQ count).
#[inline(always)]
pub(crate) fn key_and_transitions_with(
    code: &[u8],
    dim: usize,
    gather: impl Fn(u64, u64) -> u64,
    count_rest: impl Fn(&[u8], usize, usize, u64) -> u32,
) -> (u64, u32) {
    debug_assert_eq!(code.len(), code_width(dim));
    if dim == 0 {
        return (0, 0);
    }
    let mut key = 0u64;
    let mut key_len = 0u32;
    let mut runs = 0u32;
    // Symbol 0 compares with itself (no change found) and is marked a start by hand.
    let mut prev = u64::from(code[0] >> 6);
    for w in 0..dim.div_ceil(32) {
        if key_len == KEY_SYMBOLS as u32 {
            return (key, runs + count_rest(code, w, dim, prev));
        }
        let word = load_word(code, w);
        let used = used_in_word(dim, w);
        let first = if w == 0 { 1 << 62 } else { 0 };
        let starts = run_starts(word, prev, used) | first;
        let count = starts.count_ones();
        runs += count;
        if count > 0 {
            let gray = gather(word, starts);
            // Gray → Z4 per pair: the high bit stays, the low bit becomes low ⊕ high.
            let digits = gray ^ ((gray >> 1) & LOW_BITS);
            let take = count.min(KEY_SYMBOLS as u32 - key_len);
            key |= (digits >> (2 * (count - take))) << (64 - 2 * (key_len + take));
            key_len += take;
        }
        prev = (word >> (2 * (32 - used))) & 3;
    }
    (key, runs)
}

/// Key and transition count of one row of symbols (values 0..=3).
pub fn key_and_transitions_of_symbols(symbols: &[u8]) -> (u64, u32) {
    let mut key = 0u64;
    let mut runs = 0u32;
    for s in reduced(symbols) {
        if (runs as usize) < KEY_SYMBOLS {
            key |= u64::from(s & 3) << (62 - 2 * runs as usize);
        }
        runs += 1;
    }
    (key, runs)
}

/// Keys and transition counts of a `(rows, dim)` symbol matrix (values 0..=3).
pub fn keys_from_symbols(symbols: &[u8], dim: usize, keys: &mut [u64], transitions: &mut [u32]) -> Result<()> {
    let rows = check_rows("symbols", symbols.len(), dim)?;
    check_len("keys", keys.len(), rows)?;
    check_len("transitions", transitions.len(), rows)?;
    validate_symbols(symbols, dim)?;
    if dim == 0 {
        return Ok(());
    }
    for ((row, key), count) in symbols
        .chunks_exact(dim)
        .zip(keys.iter_mut())
        .zip(transitions.iter_mut())
    {
        (*key, *count) = key_and_transitions_of_symbols(row);
    }
    Ok(())
}

/// Checks that the unused low bit pairs of the last byte of every row of
/// `(rows, code_width(dim))` codes are zero (`dim ≥ 1`; the width is the caller's).
pub fn check_padding(codes: &[u8], dim: usize) -> Result<()> {
    let width = code_width(dim);
    let padding = !crate::codes::last_byte_mask(dim);
    if padding == 0 {
        return Ok(());
    }
    let bad = codes.chunks_exact(width).position(|row| row[width - 1] & padding != 0);
    match bad {
        None => Ok(()),
        Some(row) => Err(crate::error::Error::value(
            "codes",
            format!(
                "row {row} has nonzero padding bits: dim={dim} uses the top {} bits of the last byte, \
                 which is {:#010b}; the rest must be zero",
                2 * (dim % 4),
                codes[(row + 1) * width - 1]
            ),
        )),
    }
}

/// Keys and transition counts of `(rows, code_width(dim))` packed codes (the
/// reference design's `q2` pass-through): the same values as
/// [`keys_from_symbols`] of the unpacked symbols. The unused low bit pairs of
/// each row's last byte must be zero.
pub fn keys_from_codes(codes: &[u8], dim: usize, keys: &mut [u64], transitions: &mut [u32]) -> Result<()> {
    use crate::error::Error;
    use rayon::prelude::*;
    const ROWS_PER_TASK: usize = 4096;

    if dim == 0 {
        return Err(Error::value("dim", "must be at least 1"));
    }
    let width = code_width(dim);
    let rows = check_rows("codes", codes.len(), width)?;
    check_len("keys", keys.len(), rows)?;
    check_len("transitions", transitions.len(), rows)?;
    check_padding(codes, dim)?;
    let block = |codes: &[u8], keys: &mut [u64], transitions: &mut [u32]| {
        for ((code, key), count) in codes
            .chunks_exact(width)
            .zip(keys.iter_mut())
            .zip(transitions.iter_mut())
        {
            (*key, *count) = key_and_transitions(code, dim);
        }
    };
    if rows <= ROWS_PER_TASK {
        block(codes, keys, transitions);
    } else {
        keys.par_chunks_mut(ROWS_PER_TASK)
            .zip(transitions.par_chunks_mut(ROWS_PER_TASK))
            .zip(codes.par_chunks(ROWS_PER_TASK * width))
            .for_each(|((keys, transitions), codes)| block(codes, keys, transitions));
    }
    Ok(())
}

/// Mask of the top `2·depth` bits: keys agree on it iff their transition
/// sequences agree in the first `depth` places (`depth ≤ 32`).
#[inline]
pub const fn prefix_mask(depth: u32) -> u64 {
    if depth == 0 {
        0
    } else if depth >= 32 {
        u64::MAX
    } else {
        !(u64::MAX >> (2 * depth))
    }
}

/// The inclusive key range `[K & m, K | !m]` of keys sharing `key`'s first `depth` transitions.
#[inline]
pub const fn prefix_range(key: u64, depth: u32) -> (u64, u64) {
    let m = prefix_mask(depth);
    (key & m, key | !m)
}

/// The design's window `[K − δ, K + δ]`, saturating at 0 and 2⁶⁴ − 1.
#[inline]
pub const fn window_range(key: u64, delta: u64) -> (u64, u64) {
    (key.saturating_sub(delta), key.saturating_add(delta))
}

/// The half-width `4^(32−depth) − 1` whose window covers every key sharing the first `depth` transitions.
#[inline]
pub const fn window_delta_for_depth(depth: u32) -> u64 {
    !prefix_mask(depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::pack_row;

    fn packed(symbols: &[u8]) -> Vec<u8> {
        let mut code = vec![0u8; code_width(symbols.len())];
        pack_row(symbols, &mut code);
        code
    }

    #[test]
    fn single_run_keys() {
        // R = (B): key has B in the top digit and nothing else; |R| = 1.
        assert_eq!(key_and_transitions(&packed(&[1, 1, 1]), 3), (1 << 62, 1));
        // R = (B, A) has the same key but |R| = 2.
        assert_eq!(key_and_transitions(&packed(&[1, 1, 0]), 3), (1 << 62, 2));
    }

    #[test]
    fn packed_key_matches_the_symbol_walk_across_word_boundaries() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for dim in 1..200 {
            let symbols: Vec<u8> = (0..dim)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Long runs too, so keys are not always full.
                    if state.is_multiple_of(3) {
                        1
                    } else {
                        (state >> 20) as u8 & 3
                    }
                })
                .collect();
            let expected = key_and_transitions_of_symbols(&symbols);
            assert_eq!(key_and_transitions(&packed(&symbols), dim), expected, "dim {dim}");
            let reduced = run_reduce(&symbols);
            assert_eq!(expected, (key_from_reduced(&reduced), reduced.len() as u32));
        }
    }

    #[test]
    fn bytewise_gather_equals_the_bit_loop() {
        let mut state = 0x0123_4567_89ab_cdefu64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Every byte with every start nibble, at every byte position of the word.
        for byte in 0..256u64 {
            for nibble in 0..16u64 {
                let spread = (0..4).fold(0u64, |s, p| s | (((nibble >> (3 - p)) & 1) << (6 - 2 * p)));
                for shift in (0..64).step_by(8) {
                    let noise = next() & !(0xFF << shift);
                    let word = noise | (byte << shift);
                    // Starts elsewhere in the word too, and stray high bits that must be ignored.
                    let starts = (spread << shift) | (next() & LOW_BITS & !(0xFF << shift));
                    let stray = starts | (next() & !LOW_BITS);
                    let expected = gather_run_starts(word, starts);
                    assert_eq!(
                        gather_run_starts_bytewise(word, stray),
                        expected,
                        "{word:#x} {starts:#x}"
                    );
                }
            }
        }
        // Random words with sparse, dense, empty and full start masks.
        for _ in 0..20_000 {
            let word = next();
            for starts in [
                next() & LOW_BITS,
                next() & next() & LOW_BITS,
                (next() | next()) & LOW_BITS,
                0,
                LOW_BITS,
            ] {
                assert_eq!(
                    gather_run_starts_bytewise(word, starts),
                    gather_run_starts(word, starts),
                    "{word:#x} {starts:#x}"
                );
            }
        }
    }

    #[test]
    fn prefix_and_window_ranges() {
        assert_eq!(prefix_mask(1), 0xC000_0000_0000_0000);
        assert_eq!(
            prefix_range(0x4000_0000_0000_0001, 1),
            (0x4000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF)
        );
        assert_eq!(window_range(5, 10), (0, 15));
        assert_eq!(window_range(u64::MAX - 1, 10), (u64::MAX - 11, u64::MAX));
        assert_eq!(window_delta_for_depth(31), 3);
    }
}
