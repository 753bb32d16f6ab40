//! The fused tile kernel used by search: every backend's hit masks equal the
//! scalar reference's, and every flagged row's distance is right.

mod common;

use common::Rng;
use q2key::{code_words, transpose_block, words_per_code};
use q2key::{Backend, Kernels};

#[test]
fn hit_masks_and_flagged_distances_match_scalar_on_every_backend() {
    let scalar = Kernels::for_backend(Backend::Scalar).unwrap();
    let mut rng = Rng::new(0);
    for width in [1usize, 7, 8, 9, 31, 96, 130, 256] {
        for rows in [1usize, 8, 13, 64, 100] {
            for nq in [1usize, 3, 4, 8, 13] {
                let db = rng.bytes(rows * width);
                let qs = rng.bytes(nq * width);
                let words = words_per_code(width);
                let mut qw = vec![0u64; nq * words];
                for (q, w) in qs.chunks(width).zip(qw.chunks_mut(words)) {
                    code_words(q, w);
                }
                let mut block = Vec::new();
                transpose_block(&db, width, &mut block);
                let groups = rows.div_ceil(8);
                // Bounds around the median distance (4·width), so some rows hit and some do not.
                let bounds: Vec<u32> = (0..nq)
                    .map(|q| (4 * width + q * 3) as u32 - (width as u32 / 2))
                    .collect();
                let mut ref_out = vec![0u32; nq * groups * 8];
                let mut ref_hits = vec![0u8; nq * groups];
                scalar.lee_tile_hits(&qw, words, &block, &bounds, &mut ref_out, &mut ref_hits);
                for q in 0..nq {
                    for r in 0..rows {
                        let d = scalar.lee_pair(&qs[q * width..][..width], &db[r * width..][..width]);
                        assert_eq!(ref_out[q * groups * 8 + r], d);
                        let hit = ref_hits[q * groups + r / 8] >> (r % 8) & 1 == 1;
                        assert_eq!(hit, d < bounds[q], "width {width} row {r}");
                    }
                }
                for backend in Backend::supported() {
                    let k = Kernels::for_backend(backend).unwrap();
                    let mut out = vec![0u32; nq * groups * 8];
                    let mut hits = vec![0u8; nq * groups];
                    k.lee_tile_hits(&qw, words, &block, &bounds, &mut out, &mut hits);
                    assert_eq!(hits, ref_hits, "{backend:?} width {width} rows {rows} queries {nq}");
                    for (i, &h) in hits.iter().enumerate() {
                        for r in 0..8 {
                            if h >> r & 1 == 1 {
                                assert_eq!(out[i * 8 + r], ref_out[i * 8 + r], "{backend:?} width {width}");
                            }
                        }
                    }
                }
            }
        }
    }
}
