//! The threshold rule as one validated value (SPEC §1, §6): which rule cuts
//! normalised coordinates into the four cells, and the dimension it is for.
//!
//! [`ThresholdRule`] is what an index stores (also reachable as its old name
//! `IndexThresholds`); [`Thresholds`] adds the dimension the rule was made for
//! and is what callers hand the encoders. Every constructor validates, so a
//! `Thresholds` in hand is always usable: τ finite and ≥ 0, cuts of shape
//! `(3, dim)`, finite and ordered.

use crate::decode::Reconstruction;
use crate::encode::cuts::DimCuts;
use crate::encode::quantize::check_dim;
use crate::encode::rotation::Rotation;
use crate::encode::{encode, encode_cuts, symbols, symbols_cuts, EncodeElement};
use crate::error::{Error, Result};

/// The threshold rule codes were made with (part of an index: codes are only
/// comparable under equal thresholds).
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdRule {
    /// `τ = 0.6745/√dim`.
    Gaussian,
    /// One `τ` for every dimension.
    Global(f64),
    /// Three cuts per dimension.
    PerDim(DimCuts),
}

impl ThresholdRule {
    /// `τ` of the global rule, `None` for the others.
    pub fn tau(&self) -> Option<f64> {
        match self {
            ThresholdRule::Global(t) => Some(*t),
            _ => None,
        }
    }

    /// [`crate::encode`] of `x` (`rows × dim`) under this rule.
    pub fn encode<T: EncodeElement>(
        &self,
        x: &[T],
        dim: usize,
        codes: &mut [u8],
        keys: &mut [u64],
        transitions: &mut [u32],
    ) -> Result<()> {
        match self {
            ThresholdRule::Gaussian => encode(x, dim, None, codes, keys, transitions),
            ThresholdRule::Global(t) => encode(x, dim, Some(*t), codes, keys, transitions),
            ThresholdRule::PerDim(c) => encode_cuts(x, dim, c, codes, keys, transitions),
        }
    }

    /// [`crate::symbols`] of `x` (`rows × dim`) under this rule.
    pub fn symbols<T: EncodeElement>(&self, x: &[T], dim: usize, out: &mut [u8]) -> Result<()> {
        match self {
            ThresholdRule::Gaussian => symbols(x, dim, None, out),
            ThresholdRule::Global(t) => symbols(x, dim, Some(*t), out),
            ThresholdRule::PerDim(c) => symbols_cuts(x, dim, c, out),
        }
    }
}

/// `τ` when it is finite and ≥ 0; otherwise an error naming `arg` (the
/// caller's parameter: `threshold`, `tau`, ...) in the words every entry point uses.
pub fn check_tau(arg: &'static str, tau: f64) -> Result<f64> {
    if tau.is_finite() && tau >= 0.0 {
        return Ok(tau);
    }
    // `{:?}` prints the shortest form that reads back (`-1.0`, `-1e-300`,
    // `NaN`, `inf`), as Python's repr does; `{}` would spell out every digit.
    Err(Error::value(
        arg,
        format!("must be a finite number ≥ 0 (in units of the normalised vector), got {tau:?}"),
    ))
}

/// A validated threshold rule and the dimension it is for. Construct it with
/// [`Thresholds::gaussian`], [`Thresholds::global`] or [`Thresholds::per_dim`].
///
/// A struct rather than the bare rule so that what belongs to the thresholds
/// as a whole (the dimension today; a per-dimension reconstruction table
/// next) has a place beside the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    rule: ThresholdRule,
    /// `None`: a global τ for vectors of any dimension.
    dim: Option<usize>,
    /// The fitted reconstruction table (SPEC §8); `None`: the analytic default.
    reconstruction: Option<Reconstruction>,
    /// The rotation unit vectors go through before the rule (SPEC §9).
    rotation: Option<Rotation>,
}

impl Thresholds {
    /// The Gaussian rule `τ = 0.6745/√dim` for vectors of dimension `dim`.
    pub fn gaussian(dim: usize) -> Result<Thresholds> {
        Ok(Thresholds {
            rule: ThresholdRule::Gaussian,
            dim: Some(check_dim(dim)?),
            reconstruction: None,
            rotation: None,
        })
    }

    /// One `τ` for every dimension (`arg` names `tau` in errors); `dim`
    /// optionally pins the dimension.
    pub fn global(arg: &'static str, tau: f64, dim: Option<usize>) -> Result<Thresholds> {
        let tau = check_tau(arg, tau)?;
        let dim = dim.map(check_dim).transpose()?;
        Ok(Thresholds {
            rule: ThresholdRule::Global(tau),
            dim,
            reconstruction: None,
            rotation: None,
        })
    }

    /// Per-dimension cuts from a row-major array of `shape`, which must be
    /// `(3, n)` with `n ≥ 1` (low, middle, high per dimension).
    pub fn per_dim(cuts: &[f64], shape: &[usize]) -> Result<Thresholds> {
        let dim = match *shape {
            [3, n] if n >= 1 => n,
            _ => {
                return Err(Error::shape(
                    "cuts",
                    "shape (3, n) with n ≥ 1 (low, middle, high per dimension)",
                    python_shape(shape),
                ))
            }
        };
        let cuts = DimCuts::new(cuts, dim)?;
        Ok(Thresholds {
            rule: ThresholdRule::PerDim(cuts),
            dim: Some(dim),
            reconstruction: None,
            rotation: None,
        })
    }

    /// The rule of an index of dimension `dim` (so the dimension is known).
    pub fn of_index(rule: ThresholdRule, dim: usize) -> Result<Thresholds> {
        let thresholds = match rule {
            ThresholdRule::Gaussian => Thresholds::gaussian(dim)?,
            ThresholdRule::Global(t) => Thresholds::global("threshold", t, Some(dim))?,
            ThresholdRule::PerDim(c) => Thresholds {
                rule: ThresholdRule::PerDim(c),
                dim: Some(dim),
                reconstruction: None,
                rotation: None,
            },
        };
        thresholds.rule_for(dim)?;
        Ok(thresholds)
    }

    pub fn rule(&self) -> &ThresholdRule {
        &self.rule
    }

    /// These thresholds carrying the fitted reconstruction `table` (SPEC §8).
    /// The table's dimension must be the thresholds' (a shape error naming
    /// `table` otherwise); a global τ for any dimension takes the table's.
    pub fn with_reconstruction(self, table: Reconstruction) -> Result<Thresholds> {
        if let Some(dim) = self.dim {
            table.check_dim(dim)?;
        }
        Ok(Thresholds {
            dim: Some(table.dim()),
            reconstruction: Some(table),
            ..self
        })
    }

    /// The three cuts of every dimension for vectors of dimension `dim`
    /// (`−τ, 0, τ` for the Gaussian and global rules).
    pub fn dim_cuts(&self, dim: usize) -> Result<DimCuts> {
        match self.rule_for(dim)? {
            ThresholdRule::Gaussian => DimCuts::uniform(crate::gaussian_threshold(dim)?, dim),
            ThresholdRule::Global(t) => DimCuts::uniform(*t, dim),
            ThresholdRule::PerDim(c) => Ok(c.clone()),
        }
    }

    /// These thresholds carrying the table fitted to `values` (`(rows, dim)`,
    /// L2-normalised rows, e.g. [`crate::unit_rows`]): per dimension the
    /// mean of the values in each cell (SPEC §8 "Fitted", [`crate::cell_means`]).
    /// With a rotation, the table is fitted to the rotated values (`values·R`).
    pub fn fit_reconstruction(&self, values: &[f64], dim: usize) -> Result<Thresholds> {
        let values = self.rotated_values(values, dim)?;
        let table = crate::decode::cell_means(&values, dim, &self.dim_cuts(dim)?)?;
        self.clone().with_reconstruction(table)
    }

    /// Per-dimension Lloyd–Max from these thresholds' cuts ([`crate::lloyd_max`],
    /// at most `iterations` rounds) on `values` (normalised rows as for
    /// [`Thresholds::fit_reconstruction`]): per-dimension cuts carrying the
    /// means of their cells as the table.
    /// With a rotation, the fit is to the rotated values and keeps the rotation.
    pub fn lloyd_max(&self, values: &[f64], dim: usize, iterations: usize) -> Result<Thresholds> {
        let values = self.rotated_values(values, dim)?;
        let (cuts, table) = crate::decode::lloyd_max(&values, dim, &self.dim_cuts(dim)?, iterations)?;
        Ok(Thresholds {
            rule: ThresholdRule::PerDim(cuts),
            dim: Some(dim),
            reconstruction: Some(table),
            rotation: self.rotation.clone(),
        })
    }

    /// These thresholds without a fitted table (the analytic default applies).
    pub fn without_reconstruction(self) -> Thresholds {
        Thresholds {
            reconstruction: None,
            ..self
        }
    }

    /// These thresholds with `rotation` (SPEC §9; `None`: without one). Its
    /// dimension must be the thresholds' (a shape error naming `rotation`
    /// otherwise); a global τ for any dimension takes the rotation's.
    pub fn with_rotation(self, rotation: Option<Rotation>) -> Result<Thresholds> {
        let dim = match (&rotation, self.dim) {
            (Some(r), Some(own)) if r.dim() != own => {
                return Err(Error::shape(
                    "rotation",
                    format!("a ({own}, {own}) matrix (the thresholds' dimension)"),
                    format!("({0}, {0})", r.dim()),
                ))
            }
            (Some(r), _) => Some(r.dim()),
            (None, d) => d,
        };
        Ok(Thresholds { dim, rotation, ..self })
    }

    /// The rotation, if any (SPEC §9).
    pub fn rotation(&self) -> Option<&Rotation> {
        self.rotation.as_ref()
    }

    /// The fitted reconstruction table, if any.
    pub fn reconstruction(&self) -> Option<&Reconstruction> {
        self.reconstruction.as_ref()
    }

    /// The reconstruction table in effect for vectors of dimension `dim`:
    /// the fitted one, else the analytic default of SPEC §8
    /// ([`Reconstruction::gaussian`] of τ for the Gaussian and global rules,
    /// [`Reconstruction::from_cuts`] for per-dimension cuts). A shape error
    /// naming `threshold` when the thresholds are for another dimension.
    pub fn table_for(&self, dim: usize) -> Result<Reconstruction> {
        let rule = self.rule_for(dim)?;
        if let Some(table) = &self.reconstruction {
            return Ok(table.clone());
        }
        match rule {
            ThresholdRule::Gaussian => Reconstruction::gaussian(dim, crate::gaussian_threshold(dim)?),
            ThresholdRule::Global(t) => Reconstruction::gaussian(dim, *t),
            ThresholdRule::PerDim(c) => Reconstruction::from_cuts(c),
        }
    }

    /// The dimension these thresholds are for (`None`: a global τ for any dimension).
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    /// `τ`: Gaussian of the dimension, or the global one; `None` for per-dimension cuts.
    pub fn tau(&self) -> Option<f64> {
        match (&self.rule, self.dim) {
            (ThresholdRule::Gaussian, Some(dim)) => crate::gaussian_threshold(dim).ok(),
            (rule, _) => rule.tau(),
        }
    }

    /// The cuts of the per-dimension rule.
    pub fn cuts(&self) -> Option<&DimCuts> {
        match &self.rule {
            ThresholdRule::PerDim(c) => Some(c),
            _ => None,
        }
    }

    /// The rule, for vectors of dimension `dim`; a shape error naming
    /// `threshold` when the thresholds are for another dimension.
    pub fn rule_for(&self, dim: usize) -> Result<&ThresholdRule> {
        match self.dim {
            Some(own) if own != dim => Err(Error::ThresholdDim {
                thresholds: own,
                vectors: dim,
            }),
            _ => Ok(&self.rule),
        }
    }
}

/// `shape` as Python prints a tuple: `()`, `(3,)`, `(2, 4)`.
fn python_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_validate_and_name_the_parameter() {
        let e = Thresholds::global("tau", -0.1, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tau: must be a finite number ≥ 0 (in units of the normalised vector), got -0.1"
        );
        let e = Thresholds::global("tau", -1e-300, None).unwrap_err();
        assert!(e.to_string().ends_with("got -1e-300"), "{e}");
        let e = Thresholds::global("tau", -1.0, None).unwrap_err();
        assert!(e.to_string().ends_with("got -1.0"), "{e}");
        assert!(Thresholds::global("tau", f64::NAN, None).is_err());
        assert!(Thresholds::global("tau", 0.1, Some(0)).is_err());
        assert!(Thresholds::gaussian(0).is_err());
        let e = Thresholds::per_dim(&[0.0; 8], &[2, 4]).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }));
        assert!(e.to_string().ends_with("got (2, 4)"), "{e}");
        assert!(Thresholds::per_dim(&[], &[3, 0])
            .unwrap_err()
            .to_string()
            .contains("(3, 0)"));
        assert!(Thresholds::per_dim(&[0.0; 3], &[3])
            .unwrap_err()
            .to_string()
            .ends_with("got (3,)"));
        let e = Thresholds::per_dim(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.5], &[3, 2]).unwrap_err();
        assert!(e.to_string().contains("dimension 1: need low ≤ mid ≤ high"), "{e}");
    }

    #[test]
    fn the_dimension_is_checked_where_the_rule_is_used() {
        let th = Thresholds::global("tau", 0.1, Some(9)).unwrap();
        let e = th.rule_for(8).unwrap_err();
        assert_eq!(
            e,
            Error::ThresholdDim {
                thresholds: 9,
                vectors: 8
            }
        );
        assert_eq!(
            e.to_string(),
            "threshold: thresholds are for dimension 9, the vectors have 8"
        );
        assert_eq!(th.rule_for(9).unwrap(), &ThresholdRule::Global(0.1));
        let any = Thresholds::global("tau", 0.1, None).unwrap();
        assert!(any.rule_for(3).is_ok() && any.rule_for(300).is_ok());
        assert_eq!(Thresholds::gaussian(4).unwrap().tau(), Some(0.6745 / 2.0));
    }

    #[test]
    fn a_fitted_table_pins_the_dimension_and_replaces_the_default() {
        let table = Reconstruction::new(&[-1.0, -0.5, 0.5, 1.0, -2.0, 0.0, 0.0, 2.0], 2).unwrap();
        let any = Thresholds::global("tau", 0.3, None).unwrap();
        assert_eq!(any.table_for(5).unwrap(), Reconstruction::gaussian(5, 0.3).unwrap());
        let pinned = any.clone().with_reconstruction(table.clone()).unwrap();
        assert_eq!((pinned.dim(), pinned.reconstruction()), (Some(2), Some(&table)));
        assert_eq!(pinned.table_for(2).unwrap(), table);
        assert!(matches!(pinned.table_for(3), Err(Error::ThresholdDim { .. })));
        assert_ne!(pinned, any);
        assert_eq!(
            pinned.clone().without_reconstruction(),
            Thresholds::global("tau", 0.3, Some(2)).unwrap()
        );
        let e = Thresholds::gaussian(3).unwrap().with_reconstruction(table).unwrap_err();
        assert!(e.to_string().starts_with("table: "), "{e}");
        let g = Thresholds::gaussian(4).unwrap();
        let tau = crate::gaussian_threshold(4).unwrap();
        assert_eq!(g.table_for(4).unwrap(), Reconstruction::gaussian(4, tau).unwrap());
        let cuts = DimCuts::new(&[-0.5, -0.1, 0.0, 0.0, 0.5, 0.1], 2).unwrap();
        let per_dim = Thresholds::per_dim(cuts.as_slice(), &[3, 2]).unwrap();
        assert_eq!(per_dim.table_for(2).unwrap(), Reconstruction::from_cuts(&cuts).unwrap());
    }

    proptest::proptest! {
        /// Per-dimension cuts are accepted exactly when every cut is finite and
        /// each dimension is ordered; the accepted ones are kept as given.
        #[test]
        fn cuts_are_accepted_iff_finite_and_ordered(
            cuts in proptest::collection::vec(
                proptest::prop_oneof![8 => -2.0f64..2.0, 1 => proptest::num::f64::ANY],
                3..=12,
            ),
        ) {
            let dim = cuts.len() / 3;
            let cuts = &cuts[..3 * dim];
            let valid = cuts.iter().all(|c| c.is_finite())
                && (0..dim).all(|d| cuts[d] <= cuts[dim + d] && cuts[dim + d] <= cuts[2 * dim + d]);
            match Thresholds::per_dim(cuts, &[3, dim]) {
                Ok(th) => {
                    proptest::prop_assert!(valid);
                    proptest::prop_assert_eq!(th.dim(), Some(dim));
                    proptest::prop_assert_eq!(th.cuts().map(DimCuts::as_slice), Some(cuts));
                }
                Err(e) => {
                    proptest::prop_assert!(!valid, "{}", e);
                    proptest::prop_assert!(e.to_string().starts_with("cuts: "));
                }
            }
        }

        /// A global τ is accepted exactly when it is finite and ≥ 0.
        #[test]
        fn tau_is_accepted_iff_finite_and_not_negative(tau in proptest::num::f64::ANY) {
            let th = Thresholds::global("tau", tau, None);
            proptest::prop_assert_eq!(th.is_ok(), tau.is_finite() && tau >= 0.0);
        }
    }
}
