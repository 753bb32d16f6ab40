//! Criterion benchmarks of the q2key kernels, one core, every backend this CPU runs.
//!
//! Groups (all throughputs are `Elements`):
//! - `probe/*`: machine probes, not q2key code. `probe/dep_add` is a chain of
//!   dependent 64-bit adds (1 cycle each), so its elements/s is the core clock
//!   in Hz. `probe/vpopcntq_zmm` is independent `VPOPCNTQ zmm` instructions
//!   (elements = instructions). The `probe/step_zmm_*` loops time the Lee
//!   kernels' inner step `acc += popcnt(data ^ query)` on 64 bytes (zmm XOR +
//!   VPOPCNTQ + ADD; elements = steps): `regs` with every operand in registers
//!   (the ALU ceiling), `load_bcast` with a zmm load and a broadcast load per
//!   step (the one-query tile shape), `tile4` with one zmm load per four steps
//!   (the four-query tile shape). Together they give the popcount ceiling of
//!   this CPU (see benches/README.md). `probe/ymm_*` (AVX2): 16 independent
//!   `VPSHUFB`, `VPADDB`, `VPAND`, or 8 `VPSHUFB` + 8 `VPADDB`, per iteration
//!   (elements = instructions): the port limit of the fast-scan kernels, whose
//!   inner loop is one shuffle and one byte add per table lookup;
//!   `probe/ymm_vbroadcasti128` (16 table loads) and `…_vpshufb` (8 loads +
//!   8 shuffles): whether the kernels' 16-byte table broadcasts take a shuffle port.
//! - `lee_pair/<backend>/<W>B`: one query against 100 000 rows (row-major), one
//!   `lee_pair` call per row; elements = distances.
//! - `lee_rows/<backend>/<W>B`: the same through one `lee_rows` call (100 000
//!   rows, 9.6 / 25.6 MB: streams from L3), and `lee_rows_hot`: a 1 024-row
//!   block that stays in L2, called repeatedly.
//! - `lee_tile/<backend>/<W>B/q1|q8`: 1 or 8 queries against the 100 000 rows
//!   transposed into 8-row groups (`transpose_block`); elements = queries × rows.
//!   `lee_tile_hot/.../q8/align64|align16`: 8 queries against a 1 024-row
//!   transposed block (the shape search uses) that starts at a 64-byte
//!   boundary, or 16 bytes past one (as a 16-aligned heap `Vec` may).
//! - `lee_tile_avx2/<variant>/<W>B/q8` (AVX2 CPUs): each AVX2 tile-kernel
//!   variant (`q2key::Avx2Tile`), 8 queries against a 1 024-row transposed block
//!   at a 64-byte boundary, for W in 32, 96, 128, 256, 512; elements = queries × rows.
//!   Timed in this thread's CPU time (Linux), not wall time: see `thread_cpu_time`.
//! - `transpose/<W>B`: `transpose_block` of a 1 024-row block (output stays in
//!   L2, as in search); elements = rows.
//! - `lee_scan/<backend>/<W>B/q8` (`…/q8_hits`): the fast-scan Lee kernel,
//!   8 queries against a 1 024-row block in the fast-scan layout (the shape
//!   search uses from `SCAN_MIN_QUERIES` queries), without and with hit
//!   masks (bounds about the 10th-nearest of 1 M random rows, so few hits);
//!   beside `lee_scan/tile_<backend>/<W>B/q8_hits`, the tile kernel
//!   (`lee_tile_hits`) on the same rows and bounds, and
//!   `lee_scan/layout/<W>B`: `fast_scan_blocks` of the 1 024-row block
//!   (elements = rows; what a block costs before its queries, against
//!   `transpose`). Elements = queries × rows otherwise; thread CPU time.
//! - `search/<backend>/<W>B/q100`: `search_with`, 100 queries × 100 000 rows,
//!   k = 10, one thread; elements = distances (queries × rows). `q1` and `q8`:
//!   small batches (the one-query path uses `lee_rows`), active backend only.
//! - `encode/<backend>/f32_n384`: `encode_with`, 10 000 rows of dimension 384,
//!   one thread; elements = rows. `f32_n384_per_dim`: the same rows through
//!   `encode_cuts_with` with per-dimension cuts (issue target: within 1.3×).
//!
//! - `asym_scan/<backend>/96B/q4_hot`: the asymmetric fast-scan kernel, 4
//!   queries' tables against a 1 024-row block in the fast-scan layout (the
//!   shape search uses); elements = queries × rows.
//! - `asym_search/<backend>/96B/q100`: `search_asym_with` (float queries,
//!   exact re-rank included), 100 queries × 100 000 rows of 384-d codes,
//!   k = 10, one thread, beside `asym_search/lee_<backend>/96B/q100`:
//!   `search_with` (Lee) of the same codes with the queries' codes, so the
//!   ratio is visible; elements = queries × rows.
//!
//! - `route_dots/<backend>/256x2048x384`: the inverted file's routing
//!   kernel (exact integer dot products of 8-bit levels), one thread;
//!   elements = multiply-adds, beside `kmeans_assign` (f32 sgemm, FLOPs).
//!
//! Before timing, every backend's results are checked against the scalar ones.
//! `cargo bench --bench kernels -- --test` runs each benchmark once (smoke test).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use q2key::{code_width, Backend, Kernels};
use q2key::{code_words, transpose_block, words_per_code};
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

const HOT_ROWS: usize = 1_024;
const WIDTHS: [usize; 2] = [96, 256];
const TILE_QUERIES: usize = 8;
const SEARCH_QUERIES: usize = 100;
/// Query batch sizes searched: the main one, and small batches (active backend only).
const SEARCH_BATCHES: [usize; 3] = [SEARCH_QUERIES, 1, 8];
const SEARCH_K: usize = 10;
const ENCODE_DIM: usize = 384;

/// A smoke run: `cargo test --benches` or `cargo bench -- --test` (criterion then runs every
/// benchmark once, to check that it runs and that its kernels agree, not to time it).
fn is_smoke_run() -> bool {
    static SMOKE: OnceLock<bool> = OnceLock::new();
    *SMOKE.get_or_init(|| {
        let args: Vec<String> = std::env::args().collect();
        args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
    })
}

/// Rows of the benchmark database: 100 000, or 4 096 in a smoke run (CI runs the smoke test in
/// the unoptimised test build, where 100 000 rows take minutes).
fn rows() -> usize {
    if is_smoke_run() {
        4_096
    } else {
        100_000
    }
}

/// Vectors encoded per iteration: 10 000, or 1 000 in a smoke run.
fn encode_rows() -> usize {
    if is_smoke_run() {
        1_000
    } else {
        10_000
    }
}

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

    /// `iters × 100` dependent adds: 100 cycles per iteration. The addend is
    /// a register: Intel cores since Golden Cove fold `add reg, imm` chains
    /// at rename (measured: 18.9 G such adds/s on a 3.46 GHz Xeon).
    pub fn dep_add(iters: u64) -> u64 {
        let mut x = 0u64;
        // SAFETY: CPU: plain x86-64 adds; lengths: no memory is accessed.
        unsafe {
            asm!(
                "2:",
                ".rept 100",
                "add {x}, {one}",
                ".endr",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                one = in(reg) 1u64,
                n = inout(reg) iters => _,
                options(nomem, nostack),
            );
        }
        x
    }

    /// `iters × 16` independent `VPOPCNTQ zmm, zmm`.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F and VPOPCNTDQ.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn vpopcntq(iters: u64) {
        // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (this function's contract); lengths:
        // no memory is accessed.
        unsafe {
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
    }

    /// The CPU supports AVX2 (for the `ymm_*` probes below).
    pub fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// `iters × 16` AVX2 instructions with no dependency between them (every
    /// one reads ymm8, ymm9 or the 16 bytes of `table` and writes one of
    /// ymm0–7): `$a` and `$b` alternate, each followed by its operands, so
    /// `(vpshufb, vpshufb)` is the shuffle throughput, `(vpshufb, vpaddb)`
    /// shows whether shuffles and adds share ports (the fast-scan kernels'
    /// inner loop is one shuffle and one add per lookup) and
    /// `(vbroadcasti128, vpshufb)` whether the kernels' 16-byte table
    /// broadcasts take a shuffle port.
    macro_rules! ymm_probe {
        ($name:ident, $a:literal, $a_operands:literal, $b:literal, $b_operands:literal) => {
            /// # Safety
            /// The CPU supports AVX2.
            #[target_feature(enable = "avx2")]
            pub unsafe fn $name(iters: u64, table: &[u8; 16]) {
                // SAFETY: CPU: AVX2 (this function's contract); lengths: only the
                // 16 bytes of `table` are read.
                unsafe {
                    asm!(
                        "prefetcht0 [{t}]",
                        "vpxor ymm8, ymm8, ymm8",
                        "vpcmpeqb ymm9, ymm9, ymm9",
                        "2:",
                        concat!($a, " ymm0", $a_operands), concat!($b, " ymm1", $b_operands),
                        concat!($a, " ymm2", $a_operands), concat!($b, " ymm3", $b_operands),
                        concat!($a, " ymm4", $a_operands), concat!($b, " ymm5", $b_operands),
                        concat!($a, " ymm6", $a_operands), concat!($b, " ymm7", $b_operands),
                        concat!($a, " ymm1", $a_operands), concat!($b, " ymm0", $b_operands),
                        concat!($a, " ymm3", $a_operands), concat!($b, " ymm2", $b_operands),
                        concat!($a, " ymm5", $a_operands), concat!($b, " ymm4", $b_operands),
                        concat!($a, " ymm7", $a_operands), concat!($b, " ymm6", $b_operands),
                        "dec {n}",
                        "jnz 2b",
                        "vzeroupper",
                        n = inout(reg) iters => _,
                        t = in(reg) table.as_ptr(),
                        out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
                        out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
                        out("ymm8") _, out("ymm9") _,
                        options(readonly, nostack),
                    );
                }
            }
        };
    }
    ymm_probe!(ymm_shuffle, "vpshufb", ", ymm8, ymm9", "vpshufb", ", ymm8, ymm9");
    ymm_probe!(ymm_add, "vpaddb", ", ymm8, ymm9", "vpaddb", ", ymm8, ymm9");
    ymm_probe!(ymm_shuffle_add, "vpshufb", ", ymm8, ymm9", "vpaddb", ", ymm8, ymm9");
    ymm_probe!(ymm_and, "vpand", ", ymm8, ymm9", "vpand", ", ymm8, ymm9");
    ymm_probe!(ymm_bcast, "vbroadcasti128", ", [{t}]", "vbroadcasti128", ", [{t}]");
    ymm_probe!(
        ymm_bcast_shuffle,
        "vbroadcasti128",
        ", [{t}]",
        "vpshufb",
        ", ymm8, ymm9"
    );

    /// `iters × 8` steps of `acc += popcnt(d ^ q)`, all operands in
    /// registers, 8 independent accumulators: the ALU ceiling of one step.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F and VPOPCNTDQ.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn step_regs(iters: u64) {
        // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (this function's contract); lengths:
        // no memory is accessed.
        unsafe {
            asm!(
                "vpxorq zmm0, zmm0, zmm0", "vpxorq zmm1, zmm1, zmm1", "vpxorq zmm2, zmm2, zmm2", "vpxorq zmm3, zmm3, zmm3",
                "vpxorq zmm4, zmm4, zmm4", "vpxorq zmm5, zmm5, zmm5", "vpxorq zmm6, zmm6, zmm6", "vpxorq zmm7, zmm7, zmm7",
                "vpternlogq zmm24, zmm24, zmm24, 0xff",
                "vpxorq zmm25, zmm25, zmm25",
                "2:",
                ".irp i, 0, 1, 2, 3, 4, 5, 6, 7",
                "vpxorq zmm1\\i, zmm24, zmm25",
                "vpopcntq zmm1\\i, zmm1\\i",
                "vpaddq zmm\\i, zmm\\i, zmm1\\i",
                ".endr",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) iters => _,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _,
                out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _,
                out("zmm24") _, out("zmm25") _,
                options(nomem, nostack),
            );
        }
    }

    /// `iters × 8` steps of `acc += popcnt(load64 ^ broadcast(q))` (one zmm
    /// load and one broadcast load per step, 8 independent accumulators, 512
    /// bytes of data in L1): the one-query tile shape.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F and VPOPCNTDQ.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn step_load_bcast(iters: u64, data: &[u8; 512], q: &u64) {
        // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (this function's contract); lengths:
        // reads the 512 bytes of `data` and `*q`.
        unsafe {
            asm!(
                "vpxorq zmm0, zmm0, zmm0", "vpxorq zmm1, zmm1, zmm1", "vpxorq zmm2, zmm2, zmm2", "vpxorq zmm3, zmm3, zmm3",
                "vpxorq zmm4, zmm4, zmm4", "vpxorq zmm5, zmm5, zmm5", "vpxorq zmm6, zmm6, zmm6", "vpxorq zmm7, zmm7, zmm7",
                "2:",
                ".irp i, 0, 1, 2, 3, 4, 5, 6, 7",
                "vmovdqu64 zmm1\\i, [{d} + 64*\\i]",
                "vpxorq zmm1\\i, zmm1\\i, qword ptr [{q}]{{1to8}}",
                "vpopcntq zmm1\\i, zmm1\\i",
                "vpaddq zmm\\i, zmm\\i, zmm1\\i",
                ".endr",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) iters => _,
                d = in(reg) data.as_ptr(),
                q = in(reg) q as *const u64,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _,
                out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _,
                options(readonly, nostack),
            );
        }
    }

    /// `iters × 8` steps in the four-query tile shape: one zmm load of data
    /// (L1) serves four `acc_t += popcnt(d ^ q_t)` with the queries already
    /// broadcast in registers; 8 accumulators (2 words × 4 queries).
    ///
    /// # Safety
    /// The CPU supports AVX-512 F and VPOPCNTDQ.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn step_tile4(iters: u64, data: &[u8; 512]) {
        // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (this function's contract); lengths:
        // reads the first 128 bytes of `data`.
        unsafe {
            asm!(
                "vpxorq zmm0, zmm0, zmm0", "vpxorq zmm1, zmm1, zmm1", "vpxorq zmm2, zmm2, zmm2", "vpxorq zmm3, zmm3, zmm3",
                "vpxorq zmm4, zmm4, zmm4", "vpxorq zmm5, zmm5, zmm5", "vpxorq zmm6, zmm6, zmm6", "vpxorq zmm7, zmm7, zmm7",
                "vpternlogq zmm24, zmm24, zmm24, 0xff", "vpxorq zmm25, zmm25, zmm25",
                "vpternlogq zmm26, zmm26, zmm26, 0xff", "vpxorq zmm27, zmm27, zmm27",
                "2:",
                "vmovdqu64 zmm20, [{d}]",
                "vmovdqu64 zmm21, [{d} + 64]",
                ".irp t, 4, 5, 6, 7",
                "vpxorq zmm1\\t, zmm20, zmm2\\t",
                "vpopcntq zmm1\\t, zmm1\\t",
                "vpaddq zmm\\t, zmm\\t, zmm1\\t",
                ".endr",
                ".irp t, 0, 1, 2, 3",
                "vpxorq zmm1\\t, zmm21, zmm2\\t",
                "vpopcntq zmm1\\t, zmm1\\t",
                "vpaddq zmm\\t, zmm\\t, zmm1\\t",
                ".endr",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) iters => _,
                d = in(reg) data.as_ptr(),
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _,
                out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _,
                out("zmm20") _, out("zmm21") _,
                out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
                options(readonly, nostack),
            );
        }
    }

    pub fn has_vpopcntdq() -> bool {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
    }
}

#[repr(C, align(64))]
struct Aligned64<T>(T);

fn bench_probes(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut g = c.benchmark_group("probe");
        const ITERS: u64 = 100_000;
        g.throughput(Throughput::Elements(ITERS * 100));
        g.bench_function("dep_add", |b| b.iter(|| probe::dep_add(black_box(ITERS))));
        if probe::has_avx2() {
            g.throughput(Throughput::Elements(ITERS * 16));
            type Probe = unsafe fn(u64, &[u8; 16]);
            let ymm: [(&str, Probe); 6] = [
                ("ymm_vpshufb", probe::ymm_shuffle),
                ("ymm_vpaddb", probe::ymm_add),
                ("ymm_vpshufb_vpaddb", probe::ymm_shuffle_add),
                ("ymm_vpand", probe::ymm_and),
                ("ymm_vbroadcasti128", probe::ymm_bcast),
                ("ymm_vbroadcasti128_vpshufb", probe::ymm_bcast_shuffle),
            ];
            let table = [7u8; 16];
            for (name, f) in ymm {
                // SAFETY: CPU: AVX2 (checked above); lengths: `table` is the 16 bytes read.
                g.bench_function(name, |b| b.iter(|| unsafe { f(black_box(ITERS), &table) }));
            }
        }
        if probe::has_vpopcntdq() {
            g.throughput(Throughput::Elements(ITERS * 16));
            g.bench_function("vpopcntq_zmm", |b| {
                // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (checked above); lengths: no memory.
                b.iter(|| unsafe { probe::vpopcntq(black_box(ITERS)) })
            });
            // 512 bytes at a 64-byte boundary, and at 16 bytes past one (where a
            // 16-aligned heap buffer may start): every zmm load then spans two lines.
            let buf = Aligned64([0x5A; 576]);
            let aligned: &[u8; 512] = buf.0[..512].try_into().unwrap();
            let split: &[u8; 512] = buf.0[16..528].try_into().unwrap();
            let q = 0x0123_4567_89AB_CDEFu64;
            g.throughput(Throughput::Elements(ITERS * 8));
            g.bench_function("step_zmm_regs", |b| {
                // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (checked above); lengths: no memory.
                b.iter(|| unsafe { probe::step_regs(black_box(ITERS)) })
            });
            for (name, data) in [("align64", aligned), ("align16", split)] {
                g.bench_function(format!("step_zmm_load_bcast/{name}"), |b| {
                    // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (checked above); lengths:
                    // `data` is 512 bytes, as the probe reads, and `q` one u64.
                    b.iter(|| unsafe { probe::step_load_bcast(black_box(ITERS), data, &q) })
                });
                g.bench_function(format!("step_zmm_tile4/{name}"), |b| {
                    // SAFETY: CPU: AVX-512 F and VPOPCNTDQ (checked above); lengths:
                    // `data` is 512 bytes, more than the 128 the probe reads.
                    b.iter(|| unsafe { probe::step_tile4(black_box(ITERS), data) })
                });
            }
        }
        g.finish();
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = c;
}

// ---------------------------------------------------------------- Lee kernels

/// A copy of some words starting `offset` bytes past a 64-byte boundary.
struct Placed {
    buf: Vec<u64>,
    start: usize,
    len: usize,
}

impl Placed {
    fn new(words: &[u64], offset: usize) -> Self {
        let mut buf = vec![0u64; words.len() + 16];
        let start = buf.as_ptr().align_offset(64) + offset / 8;
        buf[start..][..words.len()].copy_from_slice(words);
        Placed {
            buf,
            start,
            len: words.len(),
        }
    }
    fn words(&self) -> &[u64] {
        &self.buf[self.start..][..self.len]
    }
}

struct Block {
    width: usize,
    words: usize,
    rows: Vec<u8>,
    transposed: Vec<u64>,
    /// The same words placed at a 64-byte boundary and 16 bytes past one.
    hot_align64: Placed,
    hot_align16: Placed,
    queries: Vec<u8>,
    query_words: Vec<u64>,
}

impl Block {
    fn new(width: usize) -> Self {
        let mut rng = Rng::new(width as u64);
        let rows = rng.bytes(rows() * width);
        let queries = rng.bytes(TILE_QUERIES * width);
        let mut transposed = Vec::new();
        transpose_block(&rows, width, &mut transposed);
        let mut hot_transposed = Vec::new();
        transpose_block(&rows[..HOT_ROWS * width], width, &mut hot_transposed);
        let query_words = query_words(&queries, width);
        let hot_align64 = Placed::new(&hot_transposed, 0);
        let hot_align16 = Placed::new(&hot_transposed, 16);
        Block {
            width,
            words: words_per_code(width),
            rows,
            transposed,
            hot_align64,
            hot_align16,
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
        let mut expected = vec![0u32; rows()];
        s.lee_rows(self.query(), &self.rows, &mut expected);
        let mut expected_tile = vec![0u32; TILE_QUERIES * rows()];
        s.lee_tile(&self.query_words, self.words, &self.transposed, &mut expected_tile);
        for (q, chunk) in expected_tile.chunks_exact(rows()).enumerate() {
            let query = &self.queries[q * self.width..][..self.width];
            for (r, &d) in chunk.iter().enumerate().step_by(997) {
                assert_eq!(d, s.lee_pair(query, &self.rows[r * self.width..][..self.width]));
            }
        }
        for k in kernels() {
            let mut got = vec![0u32; rows()];
            k.lee_rows(self.query(), &self.rows, &mut got);
            assert!(
                got == expected,
                "{:?} lee_rows differs from scalar at width {}",
                k.backend,
                self.width
            );
            let mut got_tile = vec![0u32; TILE_QUERIES * rows()];
            k.lee_tile(&self.query_words, self.words, &self.transposed, &mut got_tile);
            assert!(
                got_tile == expected_tile,
                "{:?} lee_tile differs from scalar at width {}",
                k.backend,
                self.width
            );
            for r in (0..rows()).step_by(991) {
                let row = &self.rows[r * self.width..][..self.width];
                assert_eq!(k.lee_pair(self.query(), row), expected[r], "{:?} lee_pair", k.backend);
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
        g.throughput(Throughput::Elements(rows() as u64));
        for k in kernels() {
            let mut out = vec![0u32; rows()];
            g.bench_function(BenchmarkId::new(k.backend.name(), &w), |b| {
                b.iter(|| {
                    let q = black_box(blk.query());
                    for (o, row) in out.iter_mut().zip(blk.rows.chunks_exact(width)) {
                        *o = k.lee_pair(q, row);
                    }
                    black_box(&out);
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group("lee_rows");
        g.throughput(Throughput::Elements(rows() as u64));
        for k in kernels() {
            let mut out = vec![0u32; rows()];
            g.bench_function(BenchmarkId::new(k.backend.name(), &w), |b| {
                b.iter(|| k.lee_rows(black_box(blk.query()), black_box(&blk.rows), black_box(&mut out)))
            });
        }
        g.finish();

        let mut g = c.benchmark_group("lee_rows_hot");
        g.throughput(Throughput::Elements(HOT_ROWS as u64));
        let hot = &blk.rows[..HOT_ROWS * width];
        for k in kernels() {
            let mut out = vec![0u32; HOT_ROWS];
            g.bench_function(BenchmarkId::new(k.backend.name(), &w), |b| {
                b.iter(|| k.lee_rows(black_box(blk.query()), black_box(hot), black_box(&mut out)))
            });
        }
        g.finish();

        let mut g = c.benchmark_group("lee_tile");
        for k in kernels() {
            for nq in [1, TILE_QUERIES] {
                g.throughput(Throughput::Elements((nq * rows()) as u64));
                let mut out = vec![0u32; nq * rows()];
                let qw = &blk.query_words[..nq * blk.words];
                g.bench_function(BenchmarkId::new(k.backend.name(), format!("{w}/q{nq}")), |b| {
                    b.iter(|| {
                        k.lee_tile(
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
            for (name, block) in [("align64", &blk.hot_align64), ("align16", &blk.hot_align16)] {
                let id = BenchmarkId::new(k.backend.name(), format!("{w}/q{TILE_QUERIES}/{name}"));
                g.bench_function(id, |b| {
                    b.iter(|| {
                        k.lee_tile(
                            black_box(&blk.query_words),
                            blk.words,
                            black_box(block.words()),
                            black_box(&mut out),
                        )
                    })
                });
            }
        }
        g.finish();

        let mut g = c.benchmark_group("transpose");
        g.throughput(Throughput::Elements(HOT_ROWS as u64));
        let mut t = Vec::new();
        g.bench_function(&w, |b| {
            b.iter(|| transpose_block(black_box(hot), width, black_box(&mut t)))
        });
        g.finish();
    }
}

/// This thread's CPU time: the AVX2 variants are timed with it (criterion's
/// `iter_custom`) because on a VM shared with other work wall time counts the
/// time the scheduler gives to other processes; the kernels stay in L1/L2, so
/// CPU time is their cost.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, out: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: CPU: any; lengths: `clock_gettime` writes one `struct timespec`
    // (two 64-bit fields on x86-64 Linux) into `t`, which is one.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    std::time::Instant::now().elapsed()
}

/// Code widths the AVX2 tile variants are timed at.
const VARIANT_WIDTHS: [usize; 5] = [32, 96, 128, 256, 512];

#[cfg(target_arch = "x86_64")]
fn bench_avx2_tile_variants(c: &mut Criterion) {
    use q2key::Avx2Tile;
    if !Backend::Avx2.is_supported() {
        return;
    }
    let mut g = c.benchmark_group("lee_tile_avx2");
    g.throughput(Throughput::Elements((TILE_QUERIES * HOT_ROWS) as u64));
    for width in VARIANT_WIDTHS {
        let mut rng = Rng::new(500 + width as u64);
        let rows = rng.bytes(HOT_ROWS * width);
        let qw = query_words(&rng.bytes(TILE_QUERIES * width), width);
        let words = words_per_code(width);
        let mut t = Vec::new();
        transpose_block(&rows, width, &mut t);
        let block = Placed::new(&t, 0);
        let mut expected = vec![0u32; TILE_QUERIES * HOT_ROWS];
        scalar().lee_tile(&qw, words, block.words(), &mut expected);
        for v in Avx2Tile::ALL {
            let mut out = vec![0u32; TILE_QUERIES * HOT_ROWS];
            v.lee_tile(&qw, words, block.words(), &mut out);
            assert!(out == expected, "{} differs from scalar at width {width}", v.name());
            g.bench_function(BenchmarkId::new(v.name(), format!("{width}B/q{TILE_QUERIES}")), |b| {
                b.iter_custom(|iters| {
                    let start = thread_cpu_time();
                    for _ in 0..iters {
                        v.lee_tile(black_box(&qw), words, black_box(block.words()), black_box(&mut out));
                    }
                    thread_cpu_time() - start
                })
            });
        }
    }
    g.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn bench_avx2_tile_variants(_: &mut Criterion) {}

fn bench_lee_scan(c: &mut Criterion) {
    use q2key::{fast_scan_blocks, LeeTables};
    let mut g = c.benchmark_group("lee_scan");
    let cpu_time = |b: &mut criterion::Bencher, f: &mut dyn FnMut()| {
        b.iter_custom(|iters| {
            let start = thread_cpu_time();
            for _ in 0..iters {
                f();
            }
            thread_cpu_time() - start
        })
    };
    for width in VARIANT_WIDTHS {
        let mut rng = Rng::new(700 + width as u64);
        let rows = rng.bytes(HOT_ROWS * width);
        let queries = rng.bytes(TILE_QUERIES * width);
        let tables = LeeTables::new(&queries, width);
        let mut layout = vec![0u8; HOT_ROWS * width];
        fast_scan_blocks(&rows, width, &mut layout);
        let qw = query_words(&queries, width);
        let words = words_per_code(width);
        let mut t = Vec::new();
        transpose_block(&rows, width, &mut t);
        let block = Placed::new(&t, 0);
        // About the 10th-nearest distance of 1 M random codes: 4·width − 3.4·√(2·width).
        let bound = (4.0 * width as f64 - 3.4 * (2.0 * width as f64).sqrt()) as u32;
        let bounds = [bound; TILE_QUERIES];
        let (mut expected, mut expected_hits) = (
            vec![0u32; TILE_QUERIES * HOT_ROWS],
            vec![0u8; TILE_QUERIES * HOT_ROWS / 8],
        );
        scalar().lee_scan(
            &tables,
            0..TILE_QUERIES,
            &layout,
            Some((&bounds, &mut expected_hits)),
            &mut expected,
        );
        let mut tile = vec![0u32; TILE_QUERIES * HOT_ROWS];
        scalar().lee_tile(&qw, words, block.words(), &mut tile);
        assert!(tile == expected, "lee_scan differs from lee_tile at width {width}");
        let w = format!("{width}B");
        g.throughput(Throughput::Elements((TILE_QUERIES * HOT_ROWS) as u64));
        for k in kernels() {
            let (mut out, mut hits) = (
                vec![0u32; TILE_QUERIES * HOT_ROWS],
                vec![0u8; TILE_QUERIES * HOT_ROWS / 8],
            );
            k.lee_scan(&tables, 0..TILE_QUERIES, &layout, Some((&bounds, &mut hits)), &mut out);
            // With hits, only the flagged rows' distances are promised.
            let flagged_equal = (0..out.len())
                .filter(|&i| hits[i / 8] >> (i % 8) & 1 == 1)
                .all(|i| out[i] == expected[i]);
            assert!(
                hits == expected_hits && flagged_equal,
                "{:?} lee_scan differs from scalar at width {width}",
                k.backend
            );
            let name = k.backend.name();
            g.bench_function(BenchmarkId::new(name, format!("{w}/q{TILE_QUERIES}")), |b| {
                cpu_time(b, &mut || {
                    k.lee_scan(&tables, 0..TILE_QUERIES, black_box(&layout), None, black_box(&mut out))
                })
            });
            g.bench_function(BenchmarkId::new(name, format!("{w}/q{TILE_QUERIES}_hits")), |b| {
                cpu_time(b, &mut || {
                    k.lee_scan(
                        &tables,
                        0..TILE_QUERIES,
                        black_box(&layout),
                        Some((&bounds, &mut hits)),
                        black_box(&mut out),
                    )
                })
            });
            g.bench_function(
                BenchmarkId::new(format!("tile_{name}"), format!("{w}/q{TILE_QUERIES}_hits")),
                |b| {
                    cpu_time(b, &mut || {
                        k.lee_tile_hits(
                            black_box(&qw),
                            words,
                            black_box(block.words()),
                            &bounds,
                            &mut out,
                            &mut hits,
                        )
                    })
                },
            );
        }
        g.throughput(Throughput::Elements(HOT_ROWS as u64));
        g.bench_function(BenchmarkId::new("layout", &w), |b| {
            cpu_time(b, &mut || {
                fast_scan_blocks(black_box(&rows), width, black_box(&mut layout))
            })
        });
        g.bench_function(BenchmarkId::new("transpose", &w), |b| {
            cpu_time(b, &mut || transpose_block(black_box(&rows), width, black_box(&mut t)))
        });
    }
    g.finish();
}

// ---------------------------------------------------------------- search, encode

/// Runs `f` on a one-thread rayon pool whose only worker is the calling
/// thread, so search and encode run on one core with no hand-off to another
/// thread. (`q2key::parallel::install(Some(1), ..)`, what `threads=1` does in
/// Python, runs on a separate pool thread; on this 2-vCPU VM that measured
/// 10–12 % slower unless the process is pinned to one CPU.)
fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    thread_local! {
        static POOL: rayon::ThreadPool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .use_current_thread()
            .build()
            .expect("a one-thread pool on the current thread");
    }
    POOL.with(|pool| pool.install(f))
}

fn bench_search(c: &mut Criterion) {
    for width in WIDTHS {
        let mut rng = Rng::new(1000 + width as u64);
        let db = rng.bytes(rows() * width);
        let queries = rng.bytes(SEARCH_QUERIES * width);
        let run = |k: &Kernels, nq: usize, dist: &mut [u32], rows: &mut [i64]| {
            let q = &queries[..nq * width];
            one_thread(|| q2key::search_with(k, q, &db, width, SEARCH_K, dist, rows).expect("search"))
        };
        let mut expected = Vec::new();
        for nq in SEARCH_BATCHES {
            let (mut d0, mut r0) = (vec![0u32; nq * SEARCH_K], vec![0i64; nq * SEARCH_K]);
            run(scalar(), nq, &mut d0, &mut r0);
            expected.push((nq, d0, r0));
        }
        let mut g = c.benchmark_group("search");
        for k in kernels() {
            for (nq, d0, r0) in &expected {
                let nq = *nq;
                let (mut d, mut r) = (vec![0u32; d0.len()], vec![0i64; r0.len()]);
                run(k, nq, &mut d, &mut r);
                assert!(
                    &d == d0 && &r == r0,
                    "{:?} search of {nq} queries differs from scalar at width {width}",
                    k.backend
                );
                // Every backend on the main batch; small batches on the active one only.
                if nq != SEARCH_QUERIES && k.backend != Kernels::active().backend {
                    continue;
                }
                g.throughput(Throughput::Elements((nq * rows()) as u64));
                g.bench_function(BenchmarkId::new(k.backend.name(), format!("{width}B/q{nq}")), |b| {
                    b.iter(|| run(k, nq, black_box(&mut d), black_box(&mut r)))
                });
            }
        }
        g.finish();
    }
}

fn bench_encode(c: &mut Criterion) {
    let x = Rng::new(7).gaussian_f32(encode_rows() * ENCODE_DIM);
    let width = code_width(ENCODE_DIM);
    // Per-dimension cuts around the Gaussian ones, different in every dimension.
    let tau = q2key::gaussian_threshold(ENCODE_DIM).expect("dim ≥ 1");
    let mut jitter = Rng::new(8);
    let cuts: Vec<f64> = (0..3 * ENCODE_DIM)
        .map(|i| (i / ENCODE_DIM) as f64 - 1.0)
        .map(|side| side * tau + 0.1 * tau * f64::from(jitter.gaussian_f32(1)[0]))
        .collect();
    let mut ordered = cuts.clone();
    for d in 0..ENCODE_DIM {
        let mut c = [cuts[d], cuts[ENCODE_DIM + d], cuts[2 * ENCODE_DIM + d]];
        c.sort_by(f64::total_cmp);
        for (k, v) in c.into_iter().enumerate() {
            ordered[k * ENCODE_DIM + d] = v;
        }
    }
    let per_dim = q2key::DimCuts::new(&ordered, ENCODE_DIM).expect("ordered cuts");
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(encode_rows() as u64));
    for (suffix, cuts) in [("", None), ("_per_dim", Some(&per_dim))] {
        let run = |k: &Kernels, codes: &mut [u8], keys: &mut [u64], trans: &mut [u32]| {
            one_thread(|| match cuts {
                None => q2key::encode_with(k, &x, ENCODE_DIM, None, codes, keys, trans),
                Some(cuts) => q2key::encode_cuts_with(k, &x, ENCODE_DIM, cuts, codes, keys, trans),
            })
            .expect("encode")
        };
        let mut c0 = vec![0u8; encode_rows() * width];
        let (mut k0, mut t0) = (vec![0u64; encode_rows()], vec![0u32; encode_rows()]);
        run(scalar(), &mut c0, &mut k0, &mut t0);
        for k in kernels() {
            let mut codes = vec![0u8; c0.len()];
            let (mut keys, mut trans) = (vec![0u64; encode_rows()], vec![0u32; encode_rows()]);
            run(k, &mut codes, &mut keys, &mut trans);
            assert!(
                codes == c0 && keys == k0 && trans == t0,
                "{:?} encode{suffix} differs from scalar",
                k.backend
            );
            let id = BenchmarkId::new(k.backend.name(), format!("f32_n{ENCODE_DIM}{suffix}"));
            g.bench_function(id, |b| {
                b.iter(|| run(k, black_box(&mut codes), black_box(&mut keys), black_box(&mut trans)))
            });
        }
    }
    g.finish();
}

/// SPEC §9: the rotation alone per backend (checked equal to scalar), and the
/// whole encode through `Thresholds` (active backend) with and without it.
fn bench_encode_rotated(c: &mut Criterion) {
    let rows = encode_rows();
    let x = Rng::new(7).gaussian_f32(rows * ENCODE_DIM);
    let width = code_width(ENCODE_DIM);
    let rotation = q2key::random_rotation(ENCODE_DIM, 1).expect("a Haar rotation");
    let mut g = c.benchmark_group("encode_rotated");
    g.throughput(Throughput::Elements(rows as u64));
    let mut y0 = vec![0f32; x.len()];
    one_thread(|| rotation.apply_with(scalar(), &x, 0, &mut y0)).expect("rotate");
    for k in kernels() {
        let mut y = vec![0f32; x.len()];
        one_thread(|| rotation.apply_with(k, &x, 0, &mut y)).expect("rotate");
        assert!(y == y0, "{:?} rotation differs from scalar", k.backend);
        let id = BenchmarkId::new(k.backend.name(), format!("rotate_f32_n{ENCODE_DIM}"));
        g.bench_function(id, |b| {
            b.iter(|| one_thread(|| rotation.apply_with(k, black_box(&x), 0, black_box(&mut y))).expect("rotate"))
        });
    }
    let plain = q2key::Thresholds::gaussian(ENCODE_DIM).expect("dim ≥ 1");
    let rotated = plain.clone().with_rotation(Some(rotation)).expect("same dim");
    for (suffix, th) in [("", &plain), ("_rotated", &rotated)] {
        let mut codes = vec![0u8; rows * width];
        let (mut keys, mut trans) = (vec![0u64; rows], vec![0u32; rows]);
        let id = BenchmarkId::new(q2key::simd_backend(), format!("f32_n{ENCODE_DIM}{suffix}"));
        g.bench_function(id, |b| {
            b.iter(|| {
                one_thread(|| th.encode(black_box(&x), ENCODE_DIM, &mut codes, &mut keys, &mut trans)).expect("encode")
            })
        });
    }
    g.finish();
}

fn bench_asym(c: &mut Criterion) {
    let dim = ENCODE_DIM;
    let width = code_width(dim);
    let mut rng = Rng::new(4242);
    let x = rng.gaussian_f32(rows() * dim);
    let queries = rng.gaussian_f32(SEARCH_QUERIES * dim);
    let (mut db, mut qcodes) = (vec![0u8; rows() * width], vec![0u8; SEARCH_QUERIES * width]);
    let (mut keys, mut trans) = (vec![0u64; rows()], vec![0u32; rows()]);
    q2key::encode(&x, dim, None, &mut db, &mut keys, &mut trans).expect("encode");
    q2key::encode(
        &queries,
        dim,
        None,
        &mut qcodes,
        &mut keys[..SEARCH_QUERIES],
        &mut trans[..SEARCH_QUERIES],
    )
    .expect("encode");
    let tau = q2key::gaussian_threshold(dim).expect("dim ≥ 1");
    let table = q2key::Reconstruction::gaussian(dim, tau).expect("table");
    let mut norms = vec![0f32; rows()];
    q2key::row_norms(&db, dim, &table, &mut norms).expect("norms");

    // The kernel alone on one hot 1 024-row block, 4 queries.
    let mut blocks = vec![0u8; HOT_ROWS * width];
    q2key::fast_scan_blocks(&db[..HOT_ROWS * width], width, &mut blocks);
    let luts: Vec<u8> = Rng::new(5).bytes(4 * 32 * width).into_iter().map(|b| b & 127).collect();
    let mut expected = vec![0u32; 4 * HOT_ROWS];
    scalar().asym_scan(&luts, width, &blocks, &[], &mut expected);
    let mut g = c.benchmark_group("asym_scan");
    g.throughput(Throughput::Elements((4 * HOT_ROWS) as u64));
    for k in kernels() {
        let mut sums = vec![0u32; 4 * HOT_ROWS];
        k.asym_scan(&luts, width, &blocks, &[], &mut sums);
        assert_eq!(sums, expected, "{:?} asym_scan differs from scalar", k.backend);
        g.bench_function(BenchmarkId::new(k.backend.name(), format!("{width}B/q4_hot")), |b| {
            b.iter(|| k.asym_scan(black_box(&luts), width, black_box(&blocks), &[], black_box(&mut sums)))
        });
    }
    g.finish();

    let nq = SEARCH_QUERIES;
    let run = |k: &Kernels, s: &mut [f32], r: &mut [i64]| {
        one_thread(|| q2key::search_asym_with(k, &queries, &db, dim, &table, Some(&norms), SEARCH_K, s, r))
            .expect("search_asym")
    };
    let (mut s0, mut r0) = (vec![0f32; nq * SEARCH_K], vec![0i64; nq * SEARCH_K]);
    run(scalar(), &mut s0, &mut r0);
    let mut g = c.benchmark_group("asym_search");
    g.throughput(Throughput::Elements((nq * rows()) as u64));
    for k in kernels() {
        let (mut s, mut r) = (vec![0f32; s0.len()], vec![0i64; r0.len()]);
        run(k, &mut s, &mut r);
        assert!(s == s0 && r == r0, "{:?} search_asym differs from scalar", k.backend);
        g.bench_function(BenchmarkId::new(k.backend.name(), format!("{width}B/q{nq}")), |b| {
            b.iter(|| run(k, black_box(&mut s), black_box(&mut r)))
        });
        let (mut d, mut r) = (vec![0u32; nq * SEARCH_K], vec![0i64; nq * SEARCH_K]);
        let lee = format!("lee_{}", k.backend.name());
        g.bench_function(BenchmarkId::new(lee, format!("{width}B/q{nq}")), |b| {
            b.iter(|| {
                one_thread(|| {
                    q2key::search_with(k, &qcodes, &db, width, SEARCH_K, black_box(&mut d), black_box(&mut r))
                })
                .expect("search")
            })
        });
    }
    g.finish();
}

/// The k-means assignment (rows × centroids dot products, then the argmax)
/// on one thread, in FLOP/s (2·rows·lists·dim per call): the inner loop of
/// training and adding to an inverted file.
fn bench_kmeans_assign(c: &mut Criterion) {
    let dim = ENCODE_DIM;
    let mut rng = Rng::new(77);
    let mut g = c.benchmark_group("kmeans_assign");
    for (rows, lists) in [(1024usize, 256usize), (2048, 2048)] {
        let x = rng.gaussian_f32(rows * dim);
        let centroids = rng.gaussian_f32(lists * dim);
        let mut out = vec![0u32; rows];
        g.throughput(Throughput::Elements((2 * rows * lists * dim) as u64));
        g.bench_function(BenchmarkId::new("sgemm_argmax", format!("{rows}x{lists}x{dim}")), |b| {
            b.iter(|| {
                one_thread(|| q2key::ivf::kmeans::assign(&x, &centroids, dim, black_box(&mut out))).expect("assign")
            })
        });
    }
    g.finish();
}

/// The inverted file's routing kernel: 256 queries' 8-bit levels against
/// 2 048 centroids' (the tile layout), one thread; elements =
/// multiply-adds (queries·lists·dim), against `kmeans_assign`'s f32 sgemm
/// of the same shape (whose elements are FLOPs, two per multiply-add).
fn bench_route(c: &mut Criterion) {
    let (queries, lists, dim) = (256usize, 2048usize, ENCODE_DIM);
    let groups = dim.div_ceil(4);
    let q: Vec<u8> = Rng::new(8)
        .bytes(queries * 4 * groups)
        .into_iter()
        .map(|b| b & 127)
        .collect();
    let centroids: Vec<i8> = Rng::new(9)
        .bytes(lists * 4 * groups)
        .into_iter()
        .map(|b| (i16::from(b % 255) - 127) as i8)
        .collect();
    let mut expected = vec![0i32; queries * lists];
    scalar().route_dots(&q, groups, &centroids, &mut expected);
    let mut g = c.benchmark_group("route_dots");
    g.throughput(Throughput::Elements((queries * lists * dim) as u64));
    for k in kernels() {
        let mut out = vec![0i32; queries * lists];
        k.route_dots(&q, groups, &centroids, &mut out);
        assert_eq!(out, expected, "{:?} route_dots differs from scalar", k.backend);
        g.bench_function(
            BenchmarkId::new(k.backend.name(), format!("{queries}x{lists}x{dim}")),
            |b| b.iter(|| k.route_dots(black_box(&q), groups, black_box(&centroids), black_box(&mut out))),
        );
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
    bench_avx2_tile_variants(c);
    bench_lee_scan(c);
    bench_search(c);
    bench_encode(c);
    bench_encode_rotated(c);
    bench_asym(c);
    bench_kmeans_assign(c);
    bench_route(c);
}

criterion_group! {
    name = kernel_benches;
    config = config();
    targets = benches
}
criterion_main!(kernel_benches);
