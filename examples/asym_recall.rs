//! Measures the asymmetric search on real embeddings: recall@10 against the
//! exact cosine ground truth, candidates re-scored per query, and time per
//! row per query. Not a test: run by hand.
//!
//! Inputs: raw little-endian arrays in one directory, made from
//! `data/wordnet-minilm-dev.npz` with numpy:
//! `database.f32` (20000 × 384), `queries.f32` (1000 × 384), `gt_ids.i32` (1000 × 100):
//!
//! ```text
//! python -c "import numpy as np; z = np.load('data/wordnet-minilm-dev.npz'); \
//!   [z[k].astype(np.float32).tofile(f'/tmp/asymdata/{k}.f32') for k in ('database', 'queries')]; \
//!   z['gt_ids'].astype(np.int32).tofile('/tmp/asymdata/gt_ids.i32')"
//! cargo run --release --example asym_recall -- /tmp/asymdata [rows-for-timing]
//! ```

use q2key::{
    asym_rescored_total, cell_means, code_width, encode, encode_cuts, gaussian_threshold, lloyd_max, parallel,
    row_norms, search, search_asym, DimCuts, Reconstruction,
};
use std::time::Instant;

const DIM: usize = 384;
const K: usize = 10;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn read_i32(path: &str) -> Vec<i32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn normalised(x: &[f32]) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(DIM) {
        let n = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        out.extend(row.iter().map(|&v| f64::from(v) / n));
    }
    out
}

fn quartile_cuts(values: &[f64]) -> DimCuts {
    let rows = values.len() / DIM;
    let mut cuts = vec![0.0; 3 * DIM];
    for d in 0..DIM {
        let mut col: Vec<f64> = (0..rows).map(|r| values[r * DIM + d]).collect();
        col.sort_by(f64::total_cmp);
        for (j, p) in [0.25, 0.5, 0.75].into_iter().enumerate() {
            cuts[j * DIM + d] = col[((rows - 1) as f64 * p).round() as usize];
        }
    }
    DimCuts::new(&cuts, DIM).unwrap()
}

fn recall(rows: &[i64], gt: &[i32]) -> f64 {
    let nq = rows.len() / K;
    let mut hit = 0usize;
    for q in 0..nq {
        let truth = &gt[q * 100..q * 100 + K];
        hit += rows[q * K..(q + 1) * K]
            .iter()
            .filter(|&&r| truth.contains(&(r as i32)))
            .count();
    }
    hit as f64 / (nq * K) as f64
}

fn run(name: &str, queries: &[f32], codes: &[u8], table: &Reconstruction, gt: &[i32]) {
    let n = codes.len() / code_width(DIM);
    let nq = queries.len() / DIM;
    let mut norms = vec![0f32; n];
    row_norms(codes, DIM, table, &mut norms).unwrap();
    let (mut s, mut r) = (vec![0f32; nq * K], vec![0i64; nq * K]);
    let before = asym_rescored_total();
    let t = Instant::now();
    search_asym(queries, codes, DIM, table, Some(&norms), K, &mut s, &mut r).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let cands = (asym_rescored_total() - before) as f64 / nq as f64;
    println!(
        "{name:<44} recall@10 {:.4}  candidates/query {cands:>8.1}  {:.2} ns/row/query",
        recall(&r, gt),
        secs * 1e9 / (nq * n) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("/tmp/asymdata", String::as_str);
    let timing_rows: usize = args.get(2).map_or(0, |s| s.parse().unwrap());
    let db = read_f32(&format!("{dir}/database.f32"));
    let queries = read_f32(&format!("{dir}/queries.f32"));
    let gt = read_i32(&format!("{dir}/gt_ids.i32"));
    let n = db.len() / DIM;
    let width = code_width(DIM);
    let (mut keys, mut trans) = (vec![0u64; n], vec![0u32; n]);
    let values = normalised(&db);
    let tau = gaussian_threshold(DIM).unwrap();

    parallel::install(Some(1), || {
        // Gaussian threshold, Gaussian table.
        let mut codes = vec![0u8; n * width];
        encode(&db, DIM, None, &mut codes, &mut keys, &mut trans).unwrap();
        let gaussian = Reconstruction::gaussian(DIM, tau).unwrap();
        run("gaussian cuts, gaussian table", &queries, &codes, &gaussian, &gt);
        let uniform = DimCuts::uniform(tau, DIM).unwrap();
        let fitted = cell_means(&values, DIM, &uniform).unwrap();
        run("gaussian cuts, fitted table", &queries, &codes, &fitted, &gt);

        // Lee on the same codes, for reference.
        let mut qcodes = vec![0u8; queries.len() / DIM * width];
        let mut qk = vec![0u64; queries.len() / DIM];
        let mut qt = vec![0u32; queries.len() / DIM];
        encode(&queries, DIM, None, &mut qcodes, &mut qk, &mut qt).unwrap();
        let (mut d, mut r) = (vec![0u32; qk.len() * K], vec![0i64; qk.len() * K]);
        search(&qcodes, &codes, width, K, &mut d, &mut r).unwrap();
        println!("{:<44} recall@10 {:.4}", "gaussian cuts, Lee", recall(&r, &gt));

        // Per-dimension quartile cuts fitted on the database, fitted table.
        let quartiles = quartile_cuts(&values);
        encode_cuts(&db, DIM, &quartiles, &mut codes, &mut keys, &mut trans).unwrap();
        let fitted = cell_means(&values, DIM, &quartiles).unwrap();
        run("quartile cuts, fitted table", &queries, &codes, &fitted, &gt);
        let gauss_in_cells = Reconstruction::from_cuts(&quartiles).unwrap();
        run("quartile cuts, gaussian-in-cells table", &queries, &codes, &gauss_in_cells, &gt);

        // Per-dimension Lloyd–Max from the quartiles.
        let (lm_cuts, lm_table) = lloyd_max(&values, DIM, &quartiles, 30).unwrap();
        encode_cuts(&db, DIM, &lm_cuts, &mut codes, &mut keys, &mut trans).unwrap();
        run("lloyd-max cuts (30 rounds), fitted table", &queries, &codes, &lm_table, &gt);

        if timing_rows > 0 {
            // Timing only: the quartile codes repeated to `timing_rows` rows.
            let big: Vec<u8> = codes.iter().copied().cycle().take(timing_rows * width).collect();
            let nq = 200;
            let q = &queries[..nq * DIM];
            let mut norms = vec![0f32; timing_rows];
            row_norms(&big, DIM, &fitted, &mut norms).unwrap();
            // The kernel alone over pre-laid blocks: one query's tables.
            let mut blocks = vec![0u8; timing_rows.div_ceil(32) * 32 * width];
            q2key::fast_scan_blocks(&big, width, &mut blocks);
            let luts: Vec<u8> = (0..4 * 32 * width).map(|i| (i * 37 % 127) as u8).collect();
            let mut sums = vec![0u32; 4 * timing_rows.div_ceil(32) * 32];
            for backend in q2key::Backend::supported() {
                let kernels = q2key::Kernels::for_backend(backend).unwrap();
                let reps = 5;
                let t = Instant::now();
                for _ in 0..reps {
                    kernels.asym_scan(&luts, width, &blocks, &[], &mut sums);
                }
                println!(
                    "kernel {backend:?}, 4 queries per block load, blocks streamed from memory: {:.2} ns/row/query",
                    t.elapsed().as_secs_f64() * 1e9 / (4 * reps * timing_rows) as f64
                );
            }
            let laid = q2key::FastScanCodes::new(&big, DIM).unwrap();
            let (mut s, mut r) = (vec![0f32; K], vec![0i64; K]);
            let t = Instant::now();
            for i in 0..nq {
                q2key::search_asym_fast_scan(&q[i * DIM..(i + 1) * DIM], &laid, &fitted, Some(&norms), K, &mut s, &mut r)
                    .unwrap();
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "timing {timing_rows} rows, fast-scan layout, one query at a time, 1 thread: {:.3} ms/query ({:.2} ns/row/query)",
                secs * 1e3 / nq as f64,
                secs * 1e9 / (nq * timing_rows) as f64
            );
            for batch in [nq, 1] {
                let (mut s, mut r) = (vec![0f32; batch * K], vec![0i64; batch * K]);
                let before = asym_rescored_total();
                let t = Instant::now();
                let mut done = 0;
                while done < nq {
                    search_asym(&q[done * DIM..(done + batch) * DIM], &big, DIM, &fitted, Some(&norms), K, &mut s, &mut r)
                        .unwrap();
                    done += batch;
                }
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "timing {timing_rows} rows, batches of {batch:>3}, 1 thread: {:.3} ms/query ({:.2} ns/row/query), {:.1} candidates/query",
                    secs * 1e3 / nq as f64,
                    secs * 1e9 / (nq * timing_rows) as f64,
                    (asym_rescored_total() - before) as f64 / nq as f64
                );
            }
        }
    })
    .unwrap();

    if timing_rows > 0 {
        // Two threads, a batch of queries: the issue's queries/s setting.
        let mut codes = vec![0u8; n * width];
        let quartiles = quartile_cuts(&values);
        encode_cuts(&db, DIM, &quartiles, &mut codes, &mut keys, &mut trans).unwrap();
        let fitted = cell_means(&values, DIM, &quartiles).unwrap();
        let big: Vec<u8> = codes.iter().copied().cycle().take(timing_rows * width).collect();
        let mut norms = vec![0f32; timing_rows];
        row_norms(&big, DIM, &fitted, &mut norms).unwrap();
        let nq = queries.len() / DIM;
        let (mut s, mut r) = (vec![0f32; nq * K], vec![0i64; nq * K]);
        let t = Instant::now();
        parallel::install(Some(2), || {
            search_asym(&queries, &big, DIM, &fitted, Some(&norms), K, &mut s, &mut r)
        })
        .unwrap()
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "timing {timing_rows} rows, {nq} queries, 2 threads: {:.1} queries/s",
            nq as f64 / secs
        );
    }
}
