use q2key::kernels::{code_words, transpose_block, words_per_code};
use q2key::{Backend, Kernels};
use std::time::Instant;
fn main() {
    let (n, nq, b) = (200_000usize, 256usize, 96usize);
    let mut s = 1u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let db: Vec<u8> = (0..n * b).map(|_| rnd() as u8).collect();
    let qs: Vec<u8> = (0..nq * b).map(|_| rnd() as u8).collect();
    let k = Kernels::for_backend(Backend::Avx512).unwrap();
    let words = words_per_code(b);
    let mut qw = vec![0u64; nq * words];
    for (q, w) in qs.chunks(b).zip(qw.chunks_mut(words)) {
        code_words(q, w);
    }
    let mut t = Vec::new();
    let rows = 1024;
    let t0 = Instant::now();
    let mut out = vec![0u32; 8 * rows];
    let mut sink = 0u64;
    for blk in db.chunks(rows * b) {
        transpose_block(blk, b, &mut t);
        for q0 in (0..nq).step_by(8) {
            (k.lee_tile)(&qw[q0 * words..(q0 + 8) * words], words, &t, &mut out);
            sink += out[5] as u64;
        }
    }
    let el = t0.elapsed().as_secs_f64();
    println!("kernel only: {:.3} ns/dist  sink {sink}", el / (n * nq) as f64 * 1e9);
    let t0 = Instant::now();
    for blk in db.chunks(rows * b) {
        transpose_block(blk, b, &mut t);
        sink += t[3];
    }
    println!(
        "transpose only (per query chunk of {nq}): {:.3} ns/dist",
        t0.elapsed().as_secs_f64() / (n * nq) as f64 * 1e9
    );
    let mut d = vec![0u32; nq * 10];
    let mut r = vec![0i64; nq * 10];
    let t0 = Instant::now();
    q2key::parallel::install(Some(1), || {
        q2key::search_with(k, &qs, &db, b, 10, &mut d, &mut r).unwrap()
    })
    .unwrap();
    println!(
        "search 1 thread: {:.3} ns/dist",
        t0.elapsed().as_secs_f64() / (n * nq) as f64 * 1e9
    );
}
