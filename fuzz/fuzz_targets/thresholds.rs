//! Fuzzes the Rust side of thresholds and weights (the Python `Thresholds`
//! bytes/JSON parsers are pure Python and fuzzed by `fuzz/python/`): the
//! checks `DimCuts::new`, the global-threshold check and `LeeWeights::new`
//! accept exactly the values their rules allow, and whatever they accept
//! survives an index file unchanged, bit for bit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use q2key::index::{Index, IndexThresholds};
use q2key::resolve_threshold;
use q2key::{DimCuts, LeeWeights};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let dim = 1 + usize::from(data[1] % 32);
    let values: Vec<f64> = data[2..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let weights = (values.len() >= 3).then(|| (values[0], values[1], values[2]));
    let weights = weights.and_then(|(m, s, b)| {
        let ok = [m, s, b].iter().all(|w| w.is_finite() && *w >= 0.0);
        let got = LeeWeights::new(m, s, b);
        assert_eq!(got.is_ok(), ok, "weights ({m}, {s}, {b})");
        got.ok()
    });
    let thresholds = match data[0] % 3 {
        0 => IndexThresholds::Gaussian,
        1 => {
            let tau = values.first().copied().unwrap_or(0.0);
            let ok = tau.is_finite() && tau >= 0.0;
            assert_eq!(resolve_threshold(Some(tau), dim).is_ok(), ok, "tau {tau}");
            if !ok {
                return;
            }
            IndexThresholds::Global(tau)
        }
        _ => {
            let cuts: Vec<f64> = values.iter().copied().cycle().take(3 * dim).collect();
            let ok = cuts.len() == 3 * dim
                && cuts.iter().all(|c| c.is_finite())
                && (0..dim).all(|d| cuts[d] <= cuts[dim + d] && cuts[dim + d] <= cuts[2 * dim + d]);
            let got = DimCuts::new(&cuts, dim);
            assert_eq!(got.is_ok(), ok, "cuts {cuts:?}");
            match got {
                Ok(c) => IndexThresholds::PerDim(c),
                Err(_) => return,
            }
        }
    };
    let mut index = Index::new(dim, thresholds.clone(), weights).expect("valid thresholds and weights");
    let bytes = index.to_bytes().unwrap();
    let back = Index::from_bytes(&bytes).expect("decodes");
    match (&thresholds, back.thresholds()) {
        (IndexThresholds::Global(a), IndexThresholds::Global(b)) => assert_eq!(a.to_bits(), b.to_bits()),
        (IndexThresholds::PerDim(a), IndexThresholds::PerDim(b)) => {
            let bits = |c: &DimCuts| c.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b));
        }
        (a, b) => assert_eq!(a, b),
    }
    let bits = |w: Option<LeeWeights>| w.map(|w| [w.magnitude, w.sign, w.both].map(f64::to_bits));
    assert_eq!(bits(back.weights()), bits(weights));
});
