//! The entry points of [`Thresholds`] that see its rotation (SPEC §9):
//! encoding and symbols of raw rows, decoding back to the input space, and
//! float queries for asymmetric scoring (§8). Without a rotation each is
//! the plain rule's.

use super::rotation_fit::times;
use super::thresholds::Thresholds;
use super::EncodeElement;
use crate::check::{check_len, check_rows};
use crate::codes::code_width;
use crate::error::{Error, Result};
use std::borrow::Cow;

/// Rows rotated per batch: bounds the f32 buffer (~6 MiB at 384-d) whatever the input size.
const BATCH_ROWS: usize = 4096;

impl Thresholds {
    /// Encodes `x` (`rows × dim`) under these thresholds: with a rotation,
    /// each row is normalised and rotated (SPEC §9) before the rule. Errors
    /// about the rows name `x`; on error the outputs are unspecified.
    pub fn encode<T: EncodeElement>(
        &self,
        x: &[T],
        dim: usize,
        codes: &mut [u8],
        keys: &mut [u64],
        transitions: &mut [u32],
    ) -> Result<()> {
        let rule = self.rule_for(dim)?;
        let Some(rotation) = self.rotation() else {
            return rule.encode(x, dim, codes, keys, transitions);
        };
        let rows = check_rows("x", x.len(), dim)?;
        let width = code_width(dim);
        check_len("codes", codes.len(), rows * width)?;
        check_len("keys", keys.len(), rows)?;
        check_len("transitions", transitions.len(), rows)?;
        let batch = BATCH_ROWS.min(rows.max(1));
        let mut rotated = crate::error::zeroed::<f32>("encode", "the rotated rows", batch, dim)?;
        for (b, ((x, codes), (keys, transitions))) in x
            .chunks(batch * dim)
            .zip(codes.chunks_mut(batch * width))
            .zip(keys.chunks_mut(batch).zip(transitions.chunks_mut(batch)))
            .enumerate()
        {
            let y = &mut rotated[..x.len()];
            rotation.apply(x, b * batch, y)?;
            rule.encode(&*y, dim, codes, keys, transitions)?;
        }
        Ok(())
    }

    /// The Z4 symbols of `x` (`rows × dim`) into `out` (`rows × dim`), as [`Thresholds::encode`] codes them.
    pub fn symbols<T: EncodeElement>(&self, x: &[T], dim: usize, out: &mut [u8]) -> Result<()> {
        let rule = self.rule_for(dim)?;
        if self.rotation().is_none() {
            return rule.symbols(x, dim, out);
        }
        let rows = check_rows("x", x.len(), dim.max(1))?;
        check_len("out", out.len(), rows * dim)?;
        let mut codes = crate::error::zeroed("symbols", "the codes", rows, code_width(dim))?;
        let (mut keys, mut transitions) = (
            crate::error::zeroed("symbols", "the keys", rows, 1)?,
            crate::error::zeroed("symbols", "the transition counts", rows, 1)?,
        );
        self.encode(x, dim, &mut codes, &mut keys, &mut transitions)?;
        crate::codes::unpack(&codes, dim, out)
    }

    /// Reconstructions of `codes` (`rows × code_width(dim)`) into `out`
    /// (`rows × dim`) in the input space: the table's values (SPEC §8),
    /// rotated back by `Rᵀ` when there is a rotation (SPEC §9).
    pub fn decode(&self, codes: &[u8], dim: usize, out: &mut [f32]) -> Result<()> {
        let table = self.table_for(dim)?;
        let Some(rotation) = self.rotation() else {
            return crate::decode(codes, dim, &table, out);
        };
        let mut rotated = crate::error::zeroed::<f32>("decode", "the rotated reconstructions", out.len(), 1)?;
        crate::decode(codes, dim, &table, &mut rotated)?;
        rotation.apply_transpose(&rotated, out)
    }

    /// Float queries (`rows × dim`, finite f32, e.g. [`crate::f32_queries`])
    /// as asymmetric scoring (SPEC §8) takes them: with a rotation, each row
    /// normalised and rotated (SPEC §9); as given otherwise.
    pub fn queries(&self, queries: Vec<f32>, dim: usize) -> Result<Vec<f32>> {
        self.rule_for(dim)?;
        let Some(rotation) = self.rotation() else {
            return Ok(queries);
        };
        let rows = check_rows("queries", queries.len(), dim)?;
        let mut out = crate::error::zeroed("search", "the rotated queries", rows, dim)?;
        rotation.apply(&queries, 0, &mut out).map_err(|e| match e {
            Error::NonFinite { row, col, value, .. } => Error::NonFinite {
                arg: "queries",
                row,
                col,
                value,
            },
            e => e,
        })?;
        Ok(out)
    }

    /// `values` (`rows × dim`, normalised rows in f64) as the rule sees
    /// them: times `R` (in f64) when there is a rotation.
    pub(crate) fn rotated_values<'a>(&self, values: &'a [f64], dim: usize) -> Result<Cow<'a, [f64]>> {
        let Some(rotation) = self.rotation() else {
            return Ok(Cow::Borrowed(values));
        };
        self.rule_for(dim)?;
        check_rows("values", values.len(), dim)?;
        let r: Vec<f64> = rotation.as_slice().iter().map(|&v| f64::from(v)).collect();
        Ok(Cow::Owned(times(values, &r, dim)))
    }
}
