//! `q2key._native.Thresholds`: the core's validated [`Thresholds`], held by
//! the Python `q2key.Thresholds` (which adds serialisation and the report).
//! Every constructor validates in Rust; Python only converts types.

use super::arrays::{matrix, to_matrix, FloatRows};
use super::errors::{about, from_err, renamed, ShapeError};
use crate::decode::Reconstruction;
use crate::encode::rotation::Rotation;
use crate::encode::thresholds::{ThresholdRule, Thresholds};
use numpy::{PyArray2, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

#[pyclass(name = "Thresholds", module = "q2key._native", frozen, eq)]
#[derive(PartialEq)]
pub(crate) struct PyThresholds(pub(crate) Thresholds);

impl PyThresholds {
    /// The rule for vectors of dimension `dim` (`None`: the Gaussian rule),
    /// checking the dimension; errors name `arg`.
    pub(crate) fn rule_for(thresholds: Option<&Self>, dim: usize, arg: &str) -> PyResult<ThresholdRule> {
        match thresholds {
            None => Ok(ThresholdRule::Gaussian),
            Some(t) => t.0.rule_for(dim).cloned().map_err(|e| renamed(e, "threshold", arg)),
        }
    }

    /// The thresholds for vectors of dimension `dim` (`None`: the Gaussian
    /// rule), checking the dimension; errors name `arg`.
    pub(crate) fn for_dim(thresholds: Option<&Self>, dim: usize, arg: &str) -> PyResult<Thresholds> {
        match thresholds {
            None => Thresholds::gaussian(dim).map_err(from_err),
            Some(t) => {
                t.0.rule_for(dim).map_err(|e| renamed(e, "threshold", arg))?;
                Ok(t.0.clone())
            }
        }
    }
}

/// `v` with `values` rounded to f32 appended (room already reserved).
fn extended(mut v: Vec<f32>, values: &[f64]) -> Vec<f32> {
    v.extend(values.iter().map(|&x| x as f32));
    v
}

#[pymethods]
impl PyThresholds {
    /// The Gaussian rule `τ = 0.6745/√dim`.
    #[staticmethod]
    fn gaussian(dim: usize) -> PyResult<Self> {
        Thresholds::gaussian(dim).map(PyThresholds).map_err(from_err)
    }

    /// One `τ ≥ 0` for every dimension; errors about `tau` name `arg`.
    #[staticmethod]
    #[pyo3(signature = (tau, dim=None, arg="tau"))]
    fn global_(tau: f64, dim: Option<usize>, arg: &str) -> PyResult<Self> {
        Thresholds::global("tau", tau, dim)
            .map(PyThresholds)
            .map_err(|e| renamed(e, "tau", arg))
    }

    /// Per-dimension cuts, a float64 array that must be `(3, n)`, finite and ordered.
    #[staticmethod]
    fn per_dim(cuts: PyReadonlyArrayDyn<'_, f64>) -> PyResult<Self> {
        let values = cuts
            .as_slice()
            .map_err(|_| super::errors::about::<ShapeError>("cuts", "cuts: expected a C-contiguous array".into()))?;
        Thresholds::per_dim(values, cuts.shape())
            .map(PyThresholds)
            .map_err(from_err)
    }

    /// `"gaussian"`, `"global"` or `"per_dim"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0.rule() {
            ThresholdRule::Gaussian => "gaussian",
            ThresholdRule::Global(_) => "global",
            ThresholdRule::PerDim(_) => "per_dim",
        }
    }

    #[getter]
    fn dim(&self) -> Option<usize> {
        self.0.dim()
    }

    #[getter]
    fn tau(&self) -> Option<f64> {
        self.0.tau()
    }

    /// A new `(3, dim)` float64 array of the per-dimension cuts, or `None`.
    #[getter]
    fn cuts<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray2<f64>>>> {
        self.0
            .cuts()
            .map(|c| to_matrix(py, c.as_slice().to_vec(), 3, c.dim()))
            .transpose()
    }

    /// These thresholds carrying the fitted reconstruction `table`, float32
    /// or float64 `(dim, 4)` (SPEC §8: finite, monotone per dimension); its
    /// dimension must be the thresholds' (a global τ without one takes it).
    fn with_reconstruction(&self, table: FloatRows<'_>) -> PyResult<Self> {
        let (rows, cols) = table.shape();
        if cols != 4 {
            return Err(about::<ShapeError>(
                "table",
                format!("table: expected shape (dim, 4) (x̂ of A, B, C, D per dimension), got ({rows}, {cols})"),
            ));
        }
        let table = match &table {
            FloatRows::F32(a) => Reconstruction::new(matrix("table", a)?.0, rows),
            FloatRows::F64(a) => Reconstruction::from_f64(matrix("table", a)?.0, rows),
        }
        .map_err(from_err)?;
        self.0
            .clone()
            .with_reconstruction(table)
            .map(PyThresholds)
            .map_err(from_err)
    }

    /// These thresholds with `rotation`, a float32 or float64 `(dim, dim)`
    /// orthogonal matrix (SPEC §9: finite, max |RᵀR − I| ≤ 1e-4; float64 is
    /// rounded to float32 first), or without one (`None`).
    #[pyo3(signature = (rotation))]
    fn with_rotation(&self, py: Python<'_>, rotation: Option<FloatRows<'_>>) -> PyResult<Self> {
        let rotation = rotation
            .map(|r| {
                let shape = r.shape();
                // Copied (rounded to f32) with the GIL held, then checked
                // (n³ work) without it: no other thread can change the copy.
                Rotation::check_shape(shape, shape.0.saturating_mul(shape.1)).map_err(from_err)?;
                let what = "a copy of the rotation";
                let values = match &r {
                    FloatRows::F32(a) => crate::error::copied("rotation", what, matrix("rotation", a)?.0, 1),
                    FloatRows::F64(a) => {
                        let values = matrix("rotation", a)?.0;
                        crate::error::with_capacity("rotation", what, shape.0, shape.1).map(|v| extended(v, values))
                    }
                }
                .map_err(from_err)?;
                py.detach(|| Rotation::new(&values, shape)).map_err(from_err)
            })
            .transpose()?;
        self.0
            .clone()
            .with_rotation(rotation)
            .map(PyThresholds)
            .map_err(from_err)
    }

    /// A new `(dim, dim)` float32 array of the rotation (row-major `R`,
    /// `y = v·R`), or `None`.
    #[getter]
    fn rotation<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        self.0
            .rotation()
            .map(|r| to_matrix(py, r.as_slice().to_vec(), r.dim(), r.dim()))
            .transpose()
    }

    /// A new `(dim, 4)` float32 array of the fitted table, or `None`.
    #[getter]
    fn reconstruction<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        self.0
            .reconstruction()
            .map(|t| to_matrix(py, t.as_slice().to_vec(), t.dim(), 4))
            .transpose()
    }

    /// The table in effect for vectors of dimension `dim`, `(dim, 4)` float32:
    /// the fitted one, else the rule's analytic default.
    fn table_for<'py>(&self, py: Python<'py>, dim: usize) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let dim = crate::check_dim(dim).map_err(from_err)?;
        let t = self.0.table_for(dim).map_err(from_err)?;
        to_matrix(py, t.into_values(), dim, 4)
    }

    /// A shape error naming `arg` unless these thresholds suit vectors of dimension `dim`.
    #[pyo3(signature = (dim, arg="threshold"))]
    fn check_dim(&self, dim: usize, arg: &str) -> PyResult<()> {
        PyThresholds::rule_for(Some(self), dim, arg).map(drop)
    }

    fn __repr__(&self) -> String {
        let fitted = match (self.0.reconstruction().is_some(), self.0.rotation().is_some()) {
            (true, true) => " with a fitted table and a rotation",
            (true, false) => " with a fitted table",
            (false, true) => " with a rotation",
            (false, false) => "",
        };
        format!(
            "<q2key._native.Thresholds {} dim={:?}{fitted}>",
            self.kind(),
            self.0.dim()
        )
    }
}
