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
