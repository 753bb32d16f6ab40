//! Gray map between Z4 symbols and 2-bit codes, packing 4 symbols per byte
//! (first dimension in the most significant bits), unpacking and complement (SPEC §2–§3).

use crate::check::{check_len, check_rows};
use crate::error::{Error, Result};

/// Bytes of one packed code of dimension `dim`.
#[inline]
pub const fn code_width(dim: usize) -> usize {
    dim.div_ceil(4)
}

/// Z4 symbol (0..=3) → 2-bit Gray code: A→00, B→01, C→11, D→10.
#[inline(always)]
pub const fn gray(symbol: u8) -> u8 {
    symbol ^ (symbol >> 1)
}

/// 2-bit Gray code → Z4 symbol (the map is its own inverse on two bits only
/// after one more shift, so spell it out).
#[inline(always)]
pub const fn ungray(code: u8) -> u8 {
    code ^ (code >> 1)
}

/// The mask of the bits a code of dimension `dim` uses in its last byte.
#[inline]
pub const fn last_byte_mask(dim: usize) -> u8 {
    match dim % 4 {
        0 => 0xFF,
        r => !(0xFFu8 >> (2 * r)),
    }
}

/// Packs one row of symbols (values 0..=3, see [`validate_symbols`]) into
/// `out` (`code_width(symbols.len())` bytes).
pub fn pack_row(symbols: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), code_width(symbols.len()));
    for (byte, chunk) in out.iter_mut().zip(symbols.chunks(4)) {
        let mut b = 0u8;
        for (j, &s) in chunk.iter().enumerate() {
            b |= gray(s & 3) << (6 - 2 * j);
        }
        *byte = b;
    }
}

/// Checks that every value of a `(rows, dim)` symbol matrix is 0..=3.
pub fn validate_symbols(symbols: &[u8], dim: usize) -> Result<()> {
    match symbols.iter().position(|&s| s > 3) {
        None => Ok(()),
        Some(at) => Err(Error::Symbol {
            arg: "symbols",
            row: at / dim.max(1),
            col: at % dim.max(1),
            value: symbols[at],
        }),
    }
}

/// Unpacks one code into `out.len()` symbols.
pub fn unpack_row(code: &[u8], out: &mut [u8]) {
    debug_assert_eq!(code.len(), code_width(out.len()));
    for (i, s) in out.iter_mut().enumerate() {
        let g = (code[i / 4] >> (6 - 2 * (i % 4))) & 3;
        *s = ungray(g);
    }
}

/// The complement `θ(s) = s + 2 mod 4` of a symbol. On Gray codes it is the
/// bitwise NOT of the pair (`gray(θ(s)) = !gray(s) & 3`), which is how
/// [`complement_row`] applies it to packed codes.
#[inline(always)]
pub const fn theta(s: u8) -> u8 {
    s.wrapping_add(2) & 3
}

/// Complement θ(s) = s + 2 mod 4 of one code: bitwise NOT of every used bit,
/// padding bits left at zero.
pub fn complement_row(code: &[u8], dim: usize, out: &mut [u8]) {
    debug_assert_eq!(code.len(), code_width(dim));
    for (o, &c) in out.iter_mut().zip(code) {
        *o = !c;
    }
    if let Some(last) = out.last_mut() {
        *last &= last_byte_mask(dim);
    }
}

/// Packs a `(rows, dim)` matrix of symbols into `(rows, code_width(dim))` codes.
pub fn pack(symbols: &[u8], dim: usize, out: &mut [u8]) -> Result<()> {
    let rows = check_rows("symbols", symbols.len(), dim)?;
    let width = code_width(dim);
    check_len("out", out.len(), rows * width)?;
    validate_symbols(symbols, dim)?;
    if dim == 0 {
        return Ok(());
    }
    for (srow, crow) in symbols.chunks_exact(dim).zip(out.chunks_exact_mut(width)) {
        pack_row(srow, crow);
    }
    Ok(())
}

/// Unpacks `(rows, code_width(dim))` codes into `(rows, dim)` symbols.
pub fn unpack(codes: &[u8], dim: usize, out: &mut [u8]) -> Result<()> {
    let width = code_width(dim);
    let rows = check_rows("codes", codes.len(), width)?;
    check_len("out", out.len(), rows * dim)?;
    if dim == 0 {
        return Ok(());
    }
    for (crow, srow) in codes.chunks_exact(width).zip(out.chunks_exact_mut(dim)) {
        unpack_row(crow, srow);
    }
    Ok(())
}

/// Complements `(rows, code_width(dim))` codes.
pub fn complement(codes: &[u8], dim: usize, out: &mut [u8]) -> Result<()> {
    let width = code_width(dim);
    check_rows("codes", codes.len(), width)?;
    check_len("out", out.len(), codes.len())?;
    if width == 0 {
        return Ok(());
    }
    for (crow, orow) in codes.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        complement_row(crow, dim, orow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_table_matches_spec() {
        assert_eq!([gray(0), gray(1), gray(2), gray(3)], [0b00, 0b01, 0b11, 0b10]);
        for s in 0..4 {
            assert_eq!(ungray(gray(s)), s);
        }
    }

    #[test]
    fn pack_puts_first_dimension_in_the_high_bits_and_zero_pads() {
        let mut out = [0u8; 2];
        pack(&[3, 0, 1, 2, 2], 5, &mut out).unwrap();
        assert_eq!(out, [0b10_00_01_11, 0b11_00_00_00]);
        let mut back = [9u8; 5];
        unpack(&out, 5, &mut back).unwrap();
        assert_eq!(back, [3, 0, 1, 2, 2]);
    }

    #[test]
    fn pack_rejects_a_symbol_above_three_naming_row_and_column() {
        let mut out = [0u8; 2];
        let err = pack(&[0, 1, 2, 3, 0, 7, 0, 0], 4, &mut out).unwrap_err();
        assert!(err.to_string().contains("row 1 column 1 holds 7"), "{err}");
    }

    #[test]
    fn complement_of_a_code_is_theta_of_its_symbols() {
        for s in 0..4 {
            assert_eq!(gray(theta(s)), !gray(s) & 3);
        }
        let symbols = [0, 1, 2, 3, 3, 2, 1];
        let (mut code, mut comp, mut back) = ([0u8; 2], [0u8; 2], [0u8; 7]);
        pack(&symbols, 7, &mut code).unwrap();
        complement(&code, 7, &mut comp).unwrap();
        unpack(&comp, 7, &mut back).unwrap();
        assert_eq!(back, symbols.map(theta));
    }

    #[test]
    fn complement_keeps_padding_zero() {
        let mut out = [0u8; 1];
        complement(&[0b01_11_00_00], 2, &mut out).unwrap();
        assert_eq!(out, [0b10_00_00_00]);
    }
}
