//! Helpers shared by the integration tests: a small deterministic PRNG, random
//! data generators and independent (deliberately naive) reference
//! implementations of the SPEC rules.
#![allow(dead_code)]

/// splitmix64: tiny, deterministic, good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n ≥ 1`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn gaussian(&mut self) -> f64 {
        // Box–Muller; 1 − u keeps the log argument in (0, 1].
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    pub fn laplace(&mut self) -> f64 {
        let u = self.unit() - 0.5;
        let m = (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE);
        -u.signum() * m.ln()
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    pub fn symbols(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() & 3) as u8).collect()
    }
}

/// Lee distance of two byte strings, one byte at a time.
pub fn naive_lee(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Lee distance on Z4 of two symbols.
pub fn z4_lee(a: u8, b: u8) -> u32 {
    let d = (i32::from(a) - i32::from(b)).unsigned_abs();
    d.min(4 - d)
}

/// Gray code of a symbol, spelled out from the SPEC table.
pub fn spec_gray(s: u8) -> u8 {
    match s {
        0 => 0b00,
        1 => 0b01,
        2 => 0b11,
        3 => 0b10,
        _ => panic!("symbol {s} out of range"),
    }
}

/// Packs symbols per SPEC §2, independently of the crate.
pub fn spec_pack(symbols: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; symbols.len().div_ceil(4)];
    for (i, &s) in symbols.iter().enumerate() {
        out[i / 4] |= spec_gray(s) << (6 - 2 * (i % 4));
    }
    out
}

/// Run-reduction per SPEC §4, independently of the crate.
pub fn spec_run_reduce(s: &[u8]) -> Vec<u8> {
    let mut r: Vec<u8> = Vec::new();
    for &x in s {
        if r.last() != Some(&x) {
            r.push(x);
        }
    }
    r
}

/// Key per SPEC §4: `Σ r_i · 4^(31−i)` over the first `min(|R|, 32)` elements.
pub fn spec_key(reduced: &[u8]) -> u64 {
    let mut k: u128 = 0;
    for (i, &r) in reduced.iter().take(32).enumerate() {
        k += u128::from(r) * 4u128.pow(31 - i as u32);
    }
    u64::try_from(k).expect("a key fits in 64 bits")
}

/// Mask of the top `2j` bits.
pub fn spec_mask(j: u32) -> u64 {
    if j == 0 {
        0
    } else {
        u64::MAX << (64 - 2 * j.min(32))
    }
}

/// Symbols per SPEC §1 computed in f64 by normalising; `None` when some
/// coordinate lies within relative `margin` of `±τ` (boundary cases that float
/// rounding may legitimately decide either way).
pub fn spec_symbols(x: &[f64], tau: f64, margin: f64) -> Option<Vec<u8>> {
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        return Some(vec![1; x.len()]);
    }
    let mut out = Vec::with_capacity(x.len());
    for &xi in x {
        let v = xi / norm;
        if tau > 0.0 && ((v.abs() - tau).abs() <= margin * tau) {
            return None;
        }
        out.push(if v <= -tau {
            0
        } else if v <= 0.0 {
            1
        } else if v <= tau {
            2
        } else {
            3
        });
    }
    Some(out)
}

/// `v · 2^k` exactly (while the result and `v` are normal or zero).
pub fn ldexp(mut v: f64, mut k: i32) -> f64 {
    while k != 0 {
        let step = k.clamp(-1000, 1000);
        v *= f64::powi(2.0, step);
        k -= step;
    }
    v
}

/// One row of test data of dimension `dim`, of the given kind (f64 values that
/// are exactly representable as f32).
pub fn row(rng: &mut Rng, kind: usize, dim: usize) -> Vec<f64> {
    let f = |v: f64| f64::from(v as f32);
    match kind {
        0 => (0..dim).map(|_| f(rng.gaussian())).collect(),
        1 => (0..dim).map(|_| f(rng.laplace() * 3.0)).collect(),
        // Sparse: mostly exact zeros (both signs).
        2 => (0..dim)
            .map(|_| match rng.below(10) {
                0 => f(rng.gaussian()),
                1 => -0.0,
                _ => 0.0,
            })
            .collect(),
        3 => vec![0.0; dim],
        4 => vec![-0.0; dim],
        // Many exact zeros among values of a few exact magnitudes (ties).
        5 => (0..dim)
            .map(|_| match rng.below(5) {
                0 | 1 => 0.0,
                2 => 1.0,
                3 => -1.0,
                _ => 0.5,
            })
            .collect(),
        // Constant.
        6 => vec![f(rng.gaussian()); dim],
        // One-hot.
        7 => {
            let mut v = vec![0.0; dim];
            v[rng.below(dim)] = if rng.below(2) == 0 { 2.5 } else { -2.5 };
            v
        }
        // Wide dynamic range, including f32 subnormals.
        8 => (0..dim)
            .map(|_| {
                let e = rng.below(250) as i32 - 140;
                f(rng.gaussian() * 2f64.powi(e))
            })
            .collect(),
        // Long runs of the same sign and size.
        _ => {
            let mut v = Vec::with_capacity(dim);
            while v.len() < dim {
                let x = f(rng.gaussian());
                let run = 1 + rng.below(40);
                v.extend(std::iter::repeat_n(x, run.min(dim - v.len())));
            }
            v
        }
    }
}

pub const KINDS: usize = 10;

/// Random codes where about a third of the rows repeat an earlier row (ties).
pub fn database(rng: &mut Rng, n: usize, width: usize) -> Vec<u8> {
    let mut db = rng.bytes(n * width);
    for r in 1..n {
        if rng.below(3) == 0 {
            let src = rng.below(r);
            db.copy_within(src * width..(src + 1) * width, r * width);
        }
    }
    db
}
