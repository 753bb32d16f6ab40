//! Fitting a rotation for Python (SPEC §9): `fit_rotation` returns
//! per-dimension thresholds fitted on the rotated sample, carrying the rotation.

use super::arrays::FloatRows;
use super::asym::{thresholds_for, unit_sample};
use super::run;
use super::thresholds::PyThresholds;
use crate::encode::rotation_fit::{fit_rotation as fit, RotationKind, DEFAULT_ROUNDS};
use pyo3::prelude::*;

const _: () = assert!(DEFAULT_ROUNDS == 8, "update the default in the signature below");

/// A rotation and per-dimension Lloyd–Max thresholds fitted to the sample's
/// normalised rows: `kind="random"`: Haar-random from `seed`;
/// `kind="learned"`: then `rounds` rounds of Lloyd–Max / Procrustes.
/// `thresholds` gives the cuts the first Lloyd–Max starts from (`None`: the
/// Gaussian rule); each Lloyd–Max runs at most `iterations` rounds. Returns
/// `(thresholds, errors)`: the sample's mean squared reconstruction error
/// after the first fit and after every round.
#[pyfunction]
// `rounds=8` spelled out so that the signature Python sees shows it (stubtest).
#[pyo3(signature = (sample, thresholds=None, rounds=8, seed=0, kind="learned", iterations=100, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_rotation<'py>(
    py: Python<'py>,
    sample: FloatRows<'py>,
    thresholds: Option<PyRef<'py, PyThresholds>>,
    rounds: usize,
    seed: u64,
    kind: &str,
    iterations: usize,
    threads: Option<usize>,
) -> PyResult<(PyThresholds, Vec<f64>)> {
    let kind = RotationKind::from_name(kind).map_err(super::errors::from_err)?;
    let start = thresholds_for(thresholds.as_deref(), sample.shape().1)?;
    let (values, dim) = unit_sample(&sample)?;
    let fitted = py.detach(|| run(threads, || fit(&values, dim, &start, kind, rounds, seed, iterations)))?;
    Ok((PyThresholds(fitted.thresholds), fitted.errors))
}
