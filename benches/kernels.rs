//! Criterion benchmarks of the q2key kernels, one core, every backend this CPU runs.
//!
//! Groups (all throughputs are `Elements`):
//! - `probe/*`: machine probes, not q2key code. `probe/dep_add` is a chain of
//!   dependent 64-bit adds (1 cycle each), so its elements/s is the core clock
//!   in Hz. `probe/vpopcntq_zmm` is independent `VPOPCNTQ zmm` instructions
//!   (elements = instructions), `probe/xor_popcnt_add_zmm` is the tile kernel's
//!   inner step (`VPXORQ` with a broadcast + `VPOPCNTQ` + `VPADDQ` on zmm, one
//!   per 64 bytes of codes, data from L1), elements = 64-byte steps. Together
//!   they give the popcount ceiling of this CPU (see benches/README.md).
//! - `lee_pair/<backend>/<W>B`: one query against 100 000 rows (row-major), one
//!   `lee_pair` call per row; elements = distances.
//! - `lee_rows/<backend>/<W>B`: the same through one `lee_rows` call (100 000
//!   rows, 9.6 / 25.6 MB: streams from L3), and `lee_rows_hot`: a 1 024-row
//!   block that stays in L2, called repeatedly.
//! - `lee_tile/<backend>/<W>B/q1|q8`: 1 or 8 queries against the 100 000 rows
//!   transposed into 8-row groups (`transpose_block`); elements = queries × rows.
//!   `lee_tile_hot/.../q8`: 8 queries against a 1 024-row transposed block (the
//!   shape search uses).
//! - `transpose/<W>B`: `transpose_block` of 100 000 rows; elements = rows.
//! - `search/<backend>/<W>B`: `search_with`, 100 queries × 100 000 rows, k = 10,
//!   one thread; elements = distances (queries × rows).
//! - `encode/<backend>/f32_n384`: `encode_with`, 10 000 rows of dimension 384,
//!   one thread; elements = rows.
//!
//! Before timing, every backend's results are checked against the scalar ones.
//! `cargo bench --bench kernels -- --test` runs each benchmark once (smoke test).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use q2key::kernels::{code_words, transpose_block, words_per_code};
use q2key::{code_width, Backend, Kernels};
use std::hint::black_box;
use std::time::Duration;

const ROWS: usize = 100_000;
const HOT_ROWS: usize = 1_024;
const WIDTHS: [usize; 2] = [96, 256];
const TILE_QUERIES: usize = 8;
const SEARCH_QUERIES: usize = 100;
const SEARCH_K: usize = 10;
const ENCODE_ROWS: usize = 10_000;
const ENCODE_DIM: usize = 384;

/// xorshift64*: deterministic, fast, good enough for benchmark data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal samples (Box–Muller).
    fn gaussian_f32(&mut self, n: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n + 1);
        while v.len() < n {
            let (u1, u2) = (self.unit(), self.unit());
            let r = (-2.0 * u1.ln()).sqrt();
            let a = std::f64::consts::TAU * u2;
            v.push((r * a.cos()) as f32);
            v.push((r * a.sin()) as f32);
        }
        v.truncate(n);
        v
    }
}

fn kernels() -> Vec<&'static Kernels> {
    Backend::supported()
        .into_iter()
        .map(|b| Kernels::for_backend(b).expect("a supported backend has kernels"))
        .collect()
}

fn scalar() -> &'static Kernels {
    Kernels::for_backend(Backend::Scalar).expect("scalar always runs")
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
}

fn query_words(queries: &[u8], width: usize) -> Vec<u64> {
    let words = words_per_code(width);
    let mut out = vec![0u64; queries.len() / width * words];
    for (q, w) in queries.chunks_exact(width).zip(out.chunks_exact_mut(words)) {
        code_words(q, w);
    }
    out
}

// ---------------------------------------------------------------- probes

#[cfg(target_arch = "x86_64")]
mod probe {
    use std::arch::asm;

    /// `iters × 100` dependent adds: 100 cycles per iteration.
    pub fn dep_add(iters: u64) -> u64 {
        let mut x = 0u64;
        unsafe {
            asm!(
                "2:",
                ".rept 100",
                "add {x}, 1",
                ".endr",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                n = inout(reg) iters => _,
                options(nomem, nostack),
            );
        }
        x
    }

    /// `iters × 16` independent `VPOPCNTQ zmm, zmm`.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn vpopcntq(iters: u64) {
        asm!(
            "vpternlogq zmm16, zmm16, zmm16, 0xff",
            "vmovdqa64 zmm17, zmm16",
            "2:",
            "vpopcntq zmm0, zmm16", "vpopcntq zmm1, zmm17", "vpopcntq zmm2, zmm16", "vpopcntq zmm3, zmm17",
            "vpopcntq zmm4, zmm16", "vpopcntq zmm5, zmm17", "vpopcntq zmm6, zmm16", "vpopcntq zmm7, zmm17",
            "vpopcntq zmm8, zmm16", "vpopcntq zmm9, zmm17", "vpopcntq zmm10, zmm16", "vpopcntq zmm11, zmm17",
            "vpopcntq zmm12, zmm16", "vpopcntq zmm13, zmm17", "vpopcntq zmm14, zmm16", "vpopcntq zmm15, zmm17",
            "dec {n}",
            "jnz 2b",
            "vzeroupper",
            n = inout(reg) iters => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _,
            options(nomem, nostack),
        );
    }

    /// `iters × 8` steps of `acc += popcnt(load64 ^ broadcast(q))` with 8
    /// independent accumulators, 512 bytes of data (L1) per iteration: the
    /// tile kernel's inner loop with its loads, minus loop overhead.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn xor_popcnt_add(iters: u64, data: &[u8; 512], q: &u64) {
        asm!(
            "vpxorq zmm0, zmm0, zmm0", "vpxorq zmm1, zmm1, zmm1", "vpxorq zmm2, zmm2, zmm2", "vpxorq zmm3, zmm3, zmm3",
            "vpxorq zmm4, zmm4, zmm4", "vpxorq zmm5, zmm5, zmm5", "vpxorq zmm6, zmm6, zmm6", "vpxorq zmm7, zmm7, zmm7",
            "2:",
            "vmovdqu64 zmm16, [{d}]",       "vpxorq zmm16, zmm16, qword ptr [{q}]{{1to8}}", "vpopcntq zmm16, zmm16", "vpaddq zmm0, zmm0, zmm16",
            "vmovdqu64 zmm17, [{d} + 64]",  "vpxorq zmm17, zmm17, qword ptr [{q}]{{1to8}}", "vpopcntq zmm17, zmm17", "vpaddq zmm1, zmm1, zmm17",
            "vmovdqu64 zmm18, [{d} + 128]", "vpxorq zmm18, zmm18, qword ptr [{q}]{{1to8}}", "vpopcntq zmm18, zmm18", "vpaddq zmm2, zmm2, zmm18",
            "vmovdqu64 zmm19, [{d} + 192]", "vpxorq zmm19, zmm19, qword ptr [{q}]{{1to8}}", "vpopcntq zmm19, zmm19", "vpaddq zmm3, zmm3, zmm19",
            "vmovdqu64 zmm20, [{d} + 256]", "vpxorq zmm20, zmm20, qword ptr [{q}]{{1to8}}", "vpopcntq zmm20, zmm20", "vpaddq zmm4, zmm4, zmm20",
            "vmovdqu64 zmm21, [{d} + 320]", "vpxorq zmm21, zmm21, qword ptr [{q}]{{1to8}}", "vpopcntq zmm21, zmm21", "vpaddq zmm5, zmm5, zmm21",
            "vmovdqu64 zmm22, [{d} + 384]", "vpxorq zmm22, zmm22, qword ptr [{q}]{{1to8}}", "vpopcntq zmm22, zmm22", "vpaddq zmm6, zmm6, zmm22",
            "vmovdqu64 zmm23, [{d} + 448]", "vpxorq zmm23, zmm23, qword ptr [{q}]{{1to8}}", "vpopcntq zmm23, zmm23", "vpaddq zmm7, zmm7, zmm23",
            "dec {n}",
            "jnz 2b",
            "vzeroupper",
            n = inout(reg) iters => _,
            d = in(reg) data.as_ptr(),
            q = in(reg) q as *const u64,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            options(readonly, nostack),
        );
    }

    pub fn has_vpopcntdq() -> bool {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
    }
}

fn bench_probes(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut g = c.benchmark_group("probe");
        const ITERS: u64 = 100_000;
        g.throughput(Throughput::Elements(ITERS * 100));
        g.bench_function("dep_add", |b| b.iter(|| probe::dep_add(black_box(ITERS))));
        if probe::has_vpopcntdq() {
            g.throughput(Throughput::Elements(ITERS * 16));
            // SAFETY: the CPU has AVX-512 F and VPOPCNTDQ (checked above).
            g.bench_function("vpopcntq_zmm", |b| {
                b.iter(|| unsafe { probe::vpopcntq(black_box(ITERS)) })
            });
            let data = [0x5Au8; 512];
            let q = 0x0123_4567_89AB_CDEFu64;
            g.throughput(Throughput::Elements(ITERS * 8));
            g.bench_function("xor_popcnt_add_zmm", |b| {
                b.iter(|| unsafe { probe::xor_popcnt_add(black_box(ITERS), &data, &q) })
            });
        }
        g.finish();
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = c;
}

// ---------------------------------------------------------------- Lee kernels

struct Block {
    width: usize,
    words: usize,
    rows: Vec<u8>,
    transposed: Vec<u64>,
    hot_transposed: Vec<u64>,
    queries: Vec<u8>,
    query_words: Vec<u64>,
}

impl Block {
    fn new(width: usize) -> Self {
        let mut rng = Rng::new(width as u64);
        let rows = rng.bytes(ROWS * width);
        let queries = rng.bytes(TILE_QUERIES * width);
        let mut transposed = Vec::new();
        transpose_block(&rows, width, &mut transposed);
        let mut hot_transposed = Vec::new();
        transpose_block(&rows[..HOT_ROWS * width], width, &mut hot_transposed);
        let query_words = query_words(&queries, width);
        Block {
            width,
            words: words_per_code(width),
            rows,
            transposed,
            hot_transposed,
            queries,
            query_words,
        }
    }

    fn query(&self) -> &[u8] {
        &self.queries[..self.width]
    }

    /// Every backend's kernels must agree with the scalar ones on this data.
    fn check(&self) {
        let s = scalar();
        let mut expected = vec![0u32; ROWS];
        (s.lee_rows)(self.query(), &self.rows, &mut expected);
        let mut expected_tile = vec![0u32; TILE_QUERIES * ROWS];
        (s.lee_tile)(&self.query_words, self.words, &self.transposed, &mut expected_tile);
        for (q, chunk) in expected_tile.chunks_exact(ROWS).enumerate() {
            let query = &self.queries[q * self.width..][..self.width];
            for (r, &d) in chunk.iter().enumerate().step_by(997) {
                assert_eq!(d, (s.lee_pair)(query, &self.rows[r * self.width..][..self.width]));
            }
        }
        for k in kernels() {
            let mut got = vec![0u32; ROWS];
            (k.lee_rows)(self.query(), &self.rows, &mut got);
            assert!(
                got == expected,
                "{:?} lee_rows differs from scalar at width {}",
                k.backend,
                self.width
            );
            let mut got_tile = vec![0u32; TILE_QUERIES * ROWS];
            (k.lee_tile)(&self.query_words, self.words, &self.transposed, &mut got_tile);
            assert!(
                got_tile == expected_tile,
                "{:?} lee_tile differs from scalar at width {}",
                k.backend,
                self.width
            );
            for r in (0..ROWS).step_by(991) {
                let row = &self.rows[r * self.width..][..self.width];
                assert_eq!((k.lee_pair)(self.query(), row), expected[r], "{:?} lee_pair", k.backend);
            }
        }
    }
}

fn bench_lee(c: &mut Criterion) {
    for width in WIDTHS {
        let blk = Block::new(width);
        blk.check();
        let w = format!("{width}B");

        let mut g = c.benchmark_group("lee_pair");
        g.throughput(Throughput::Elements(ROWS as u64));
        for k in kernels() {
            let mut out = vec![0u32; ROWS];
            g.bench_function(BenchmarkId::new(k.backend.name(), &w), |b| {
                b.iter(|| {
                    let q = black_box(blk.query());
                    for (o, row) in out.iter_mut().zip(blk.rows.chunks_exact(width)) {
                        *o = (k.lee_pair)(q, row);
                    }
                    black_box(&out);
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group("lee_rows");
        g.throughput(Throughput::Elements(ROWS as u64));
        for k in kernels() {
            let mut out = vec![0u32; ROWS];
            g.bench_function(BenchmarkId::new(k.backend.name(), &w), |b| {
                b.iter(|| (k.lee_rows)(black_box(blk.query()), black_box(&blk.rows), black_box(&mut out)))
            });
        }
        g.finish();

        let mut g = c.benchmark_group("lee_rows_hot");
        g.throughput(Throughput::Elements(HOT_ROWS as u64));
        let hot = &blk.rows[..HOT_ROWS * width];
        for k in kernels() {
            let mut out = vec![0u32; HOT_ROWS];
            g.bench_function(BenchmarkId::new(k.backend.name(), &w), |b| {
                b.iter(|| (k.lee_rows)(black_box(blk.query()), black_box(hot), black_box(&mut out)))
            });
        }
        g.finish();

        let mut g = c.benchmark_group("lee_tile");
        for k in kernels() {
            for nq in [1, TILE_QUERIES] {
                g.throughput(Throughput::Elements((nq * ROWS) as u64));
                let mut out = vec![0u32; nq * ROWS];
                let qw = &blk.query_words[..nq * blk.words];
                g.bench_function(BenchmarkId::new(k.backend.name(), format!("{w}/q{nq}")), |b| {
                    b.iter(|| {
                        (k.lee_tile)(
                            black_box(qw),
                            blk.words,
                            black_box(&blk.transposed),
                            black_box(&mut out),
                        )
                    })
                });
            }
        }
        g.finish();

        let mut g = c.benchmark_group("lee_tile_hot");
        g.throughput(Throughput::Elements((TILE_QUERIES * HOT_ROWS) as u64));
        for k in kernels() {
            let mut out = vec![0u32; TILE_QUERIES * HOT_ROWS];
            g.bench_function(
                BenchmarkId::new(k.backend.name(), format!("{w}/q{TILE_QUERIES}")),
                |b| {
                    b.iter(|| {
                        (k.lee_tile)(
                            black_box(&blk.query_words),
                            blk.words,
                            black_box(&blk.hot_transposed),
                            black_box(&mut out),
                        )
                    })
                },
            );
        }
        g.finish();

        let mut g = c.benchmark_group("transpose");
        g.throughput(Throughput::Elements(ROWS as u64));
        let mut t = Vec::new();
        g.bench_function(&w, |b| {
            b.iter(|| transpose_block(black_box(&blk.rows), width, black_box(&mut t)))
        });
        g.finish();
    }
}

// ---------------------------------------------------------------- search, encode

fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    q2key::parallel::install(Some(1), f).expect("a one-thread pool")
}

fn bench_search(c: &mut Criterion) {
    for width in WIDTHS {
        let mut rng = Rng::new(1000 + width as u64);
        let db = rng.bytes(ROWS * width);
        let queries = rng.bytes(SEARCH_QUERIES * width);
        let run = |k: &Kernels, dist: &mut [u32], rows: &mut [i64]| {
            one_thread(|| q2key::search_with(k, &queries, &db, width, SEARCH_K, dist, rows).expect("search"))
        };
        let (mut d0, mut r0) = (
            vec![0u32; SEARCH_QUERIES * SEARCH_K],
            vec![0i64; SEARCH_QUERIES * SEARCH_K],
        );
        run(scalar(), &mut d0, &mut r0);
        let mut g = c.benchmark_group("search");
        g.throughput(Throughput::Elements((SEARCH_QUERIES * ROWS) as u64));
        for k in kernels() {
            let (mut d, mut r) = (vec![0u32; d0.len()], vec![0i64; r0.len()]);
            run(k, &mut d, &mut r);
            assert!(
                d == d0 && r == r0,
                "{:?} search differs from scalar at width {width}",
                k.backend
            );
            g.bench_function(BenchmarkId::new(k.backend.name(), format!("{width}B")), |b| {
                b.iter(|| run(k, black_box(&mut d), black_box(&mut r)))
            });
        }
        g.finish();
    }
}

fn bench_encode(c: &mut Criterion) {
    let x = Rng::new(7).gaussian_f32(ENCODE_ROWS * ENCODE_DIM);
    let width = code_width(ENCODE_DIM);
    let run = |k: &Kernels, codes: &mut [u8], keys: &mut [u64], trans: &mut [u32]| {
        one_thread(|| q2key::encode_with(k, &x, ENCODE_DIM, None, codes, keys, trans).expect("encode"))
    };
    let mut c0 = vec![0u8; ENCODE_ROWS * width];
    let (mut k0, mut t0) = (vec![0u64; ENCODE_ROWS], vec![0u32; ENCODE_ROWS]);
    run(scalar(), &mut c0, &mut k0, &mut t0);
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(ENCODE_ROWS as u64));
    for k in kernels() {
        let mut codes = vec![0u8; c0.len()];
        let (mut keys, mut trans) = (vec![0u64; ENCODE_ROWS], vec![0u32; ENCODE_ROWS]);
        run(k, &mut codes, &mut keys, &mut trans);
        assert!(
            codes == c0 && keys == k0 && trans == t0,
            "{:?} encode differs from scalar",
            k.backend
        );
        g.bench_function(BenchmarkId::new(k.backend.name(), format!("f32_n{ENCODE_DIM}")), |b| {
            b.iter(|| run(k, black_box(&mut codes), black_box(&mut keys), black_box(&mut trans)))
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    eprintln!(
        "q2key benches: supported backends {:?}, active {}",
        Backend::supported(),
        q2key::simd_backend()
    );
    bench_probes(c);
    bench_lee(c);
    bench_search(c);
    bench_encode(c);
}

criterion_group! {
    name = kernel_benches;
    config = config();
    targets = benches
}
criterion_main!(kernel_benches);
