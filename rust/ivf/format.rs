//! The inverted-file index file (`docs/FORMAT.md`, "The inverted-file
//! index file"): magic `Q2KEYIVF`, a fixed header with a section table
//! (the descriptors, checksums and padding rules of the index file), then
//! six 64-byte aligned sections: CUTS, RCON, CENT (centroids), SIZE (rows
//! per list), CODE (every list's fast-scan blocks, one list after the
//! other, so a mapped file's lists are scanned in place) and IDS; format 2
//! adds a seventh, ROTN (the thresholds' rotation, as in the index file's
//! format 3), written only for an index with a rotation. Canonical:
//! one index, one encoding; the loader refuses every other byte string and
//! checks every count against the file length before allocating.
//! The rows' ‖x̂‖ are not stored: the loader recomputes them from the codes
//! it reads anyway (for their checksum and padding).

use super::lists::{Blocks, List};
use super::IvfIndex;
use crate::codes::{code_width, last_byte_mask};
use crate::decode::Reconstruction;
use crate::encode::cuts::DimCuts;
use crate::encode::thresholds::{ThresholdRule, Thresholds};
use crate::error::{Error, Result};
use crate::index::format::{
    crc_u64s, fail, get_u32, get_u64, put_u32, put_u64, read_rotation, rotation_bytes, save_atomically, u64s,
    write_u64s, KIND_GAUSSIAN, KIND_GLOBAL, KIND_PER_DIM,
};
use crate::kernels::scalar_asym::BLOCK_ROWS;
use crate::search::asym::norm_range;
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// The first 8 bytes of every inverted-file index file.
pub const MAGIC: [u8; 8] = *b"Q2KEYIVF";
/// The newest format: 2 (with a rotation); an index without one is written
/// in format 1, which has no ROTN section.
pub const VERSION: u32 = 2;
pub const PREAMBLE_LEN: usize = 16;
pub const FIELDS_LEN: usize = 64;
pub const DESCRIPTOR_LEN: usize = 32;
/// Sections of a format-1 file.
pub const SECTION_COUNT: usize = 6;
/// Sections of a format-2 file: format 1's and the rotation.
pub const SECTION_COUNT_V2: usize = 7;
const ALIGN: usize = 64;
/// Where the header's CRC-32C is (over the bytes before it) in a file of
/// `sections` sections.
pub const fn header_crc_at(sections: usize) -> usize {
    PREAMBLE_LEN + FIELDS_LEN + sections * DESCRIPTOR_LEN
}
/// The first section's offset; the same in both formats.
pub const FIRST_SECTION_AT: usize = (header_crc_at(SECTION_COUNT) + 4).next_multiple_of(ALIGN);
const _: () = assert!((header_crc_at(SECTION_COUNT_V2) + 4).next_multiple_of(ALIGN) == FIRST_SECTION_AT);
/// The section count of a file of format `version`; `None` for an unknown one.
pub fn section_count(version: u32) -> Option<usize> {
    match version {
        1 => Some(SECTION_COUNT),
        2 => Some(SECTION_COUNT_V2),
        _ => None,
    }
}
pub const TAGS: [[u8; 4]; SECTION_COUNT_V2] = [*b"CUTS", *b"RCON", *b"CENT", *b"SIZE", *b"CODE", *b"IDS\0", *b"ROTN"];
const NAMES: [&str; SECTION_COUNT_V2] = ["CUTS", "RCON", "CENT", "SIZE", "CODE", "IDS", "ROTN"];
const CUTS: usize = 0;
const RCON: usize = 1;
const CENT: usize = 2;
const SIZE: usize = 3;
const CODE: usize = 4;
const IDS: usize = 5;
const ROTN: usize = 6;

/// Bytes of the fast-scan blocks of a list of `rows` rows.
fn blocks_len(rows: usize, width: usize) -> Option<usize> {
    rows.div_ceil(BLOCK_ROWS).checked_mul(BLOCK_ROWS)?.checked_mul(width)
}

/// The canonical ranges of the first `sections` sections (the others are
/// left empty) and the file length; `None` on overflow.
fn layout(lens: [usize; SECTION_COUNT_V2], sections: usize) -> Option<([Range<usize>; SECTION_COUNT_V2], usize)> {
    let mut spans: [Range<usize>; SECTION_COUNT_V2] = Default::default();
    let mut at = FIRST_SECTION_AT;
    for (span, len) in spans.iter_mut().zip(lens).take(sections) {
        at = at.checked_next_multiple_of(ALIGN)?;
        *span = at..at.checked_add(len)?;
        at = span.end;
    }
    Some((spans, at))
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Streams the (compact) index in the file format to `w`.
pub fn write_to(index: &IvfIndex, w: &mut impl Write) -> io::Result<()> {
    let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
    if index.lists.iter().any(|l| l.dead > 0) {
        return Err(invalid("compact the index before writing it"));
    }
    let dim = index.dim;
    let width = code_width(dim);
    let (kind, tau, cuts) = match index.thresholds.rule_for(dim).map_err(|e| invalid(&e.to_string()))? {
        ThresholdRule::Gaussian => (KIND_GAUSSIAN, 0.0, Vec::new()),
        ThresholdRule::Global(t) => (KIND_GLOBAL, *t, Vec::new()),
        ThresholdRule::PerDim(c) => (KIND_PER_DIM, 0.0, c.as_slice().iter().map(|v| v.to_bits()).collect()),
    };
    let table = index
        .thresholds
        .reconstruction()
        .map_or_else(Vec::new, |t| f32_bytes(t.as_slice()));
    let centroids = f32_bytes(&index.centroids);
    let sizes: Vec<u64> = index.lists.iter().map(|l| l.rows() as u64).collect();
    let rows: usize = index.lists.iter().map(List::rows).sum();
    let rotation = index.thresholds.rotation().map_or_else(Vec::new, rotation_bytes);
    let (version, sections) = match index.thresholds.rotation() {
        Some(_) => (2, SECTION_COUNT_V2),
        None => (1, SECTION_COUNT),
    };
    let code_len = index.lists.iter().map(|l| l.blocks.len()).sum::<usize>();
    let lens = [
        8 * cuts.len(),
        table.len(),
        centroids.len(),
        8 * sizes.len(),
        code_len,
        8 * rows,
        rotation.len(),
    ];
    let (spans, _) = layout(lens, sections).ok_or_else(|| invalid("index too large for this platform"))?;
    let code_crc = index
        .lists
        .iter()
        .fold(0, |crc, l| crc32c::crc32c_append(crc, &l.blocks));
    let ids_crc = index.lists.iter().fold(0, |crc, l| {
        crc32c::crc32c_append(crc, &l.ids.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
    });
    let crcs = [
        crc_u64s(&cuts),
        crc32c::crc32c(&table),
        crc32c::crc32c(&centroids),
        crc_u64s(&sizes),
        code_crc,
        ids_crc,
        crc32c::crc32c(&rotation),
    ];
    let crc_at = header_crc_at(sections);
    let mut head = [0u8; FIRST_SECTION_AT];
    head[..8].copy_from_slice(&MAGIC);
    put_u32(&mut head, 8, version);
    put_u32(&mut head, 12, (crc_at - PREAMBLE_LEN) as u32);
    let h = PREAMBLE_LEN;
    put_u64(&mut head, h, dim as u64);
    put_u64(&mut head, h + 8, width as u64);
    put_u64(&mut head, h + 16, index.lists.len() as u64);
    put_u64(&mut head, h + 24, rows as u64);
    put_u64(&mut head, h + 32, index.next_id);
    put_u32(&mut head, h + 40, kind);
    put_u32(&mut head, h + 44, u32::from(!table.is_empty()));
    put_u64(&mut head, h + 48, tau.to_bits());
    put_u32(&mut head, h + 56, sections as u32);
    for (i, (span, crc)) in spans.iter().zip(crcs).enumerate().take(sections) {
        let d = h + FIELDS_LEN + i * DESCRIPTOR_LEN;
        head[d..d + 4].copy_from_slice(&TAGS[i]);
        put_u64(&mut head, d + 8, span.start as u64);
        put_u64(&mut head, d + 16, span.len() as u64);
        put_u32(&mut head, d + 24, crc);
    }
    let crc = crc32c::crc32c(&head[..crc_at]);
    put_u32(&mut head, crc_at, crc);
    w.write_all(&head)?;
    let mut at = FIRST_SECTION_AT;
    let zeros = [0u8; ALIGN];
    for (i, span) in spans.iter().enumerate().take(sections) {
        w.write_all(&zeros[..span.start - at])?;
        match i {
            CUTS => write_u64s(w, &cuts)?,
            RCON => w.write_all(&table)?,
            CENT => w.write_all(&centroids)?,
            SIZE => write_u64s(w, &sizes)?,
            CODE => {
                for l in &index.lists {
                    w.write_all(&l.blocks)?;
                }
            }
            ROTN => w.write_all(&rotation)?,
            _ => {
                for l in &index.lists {
                    write_u64s(w, &l.ids)?;
                }
            }
        }
        at = span.end;
    }
    Ok(())
}

/// Saves the (compact) index to `path` atomically (as [`crate::index::format::save`]).
pub fn save(index: &IvfIndex, path: &Path) -> Result<()> {
    if index.lists.iter().any(|l| l.dead > 0) {
        return Err(Error::value("index", "compact the index before saving it"));
    }
    save_atomically(path, |w| write_to(index, w))
}

/// What the header and the sections hold, validated.
struct Parts {
    dim: usize,
    thresholds: Thresholds,
    table: Reconstruction,
    next_id: u64,
    centroids: Vec<f32>,
    sizes: Vec<usize>,
    /// The CODE section's range in the file.
    code: Range<usize>,
    ids: Vec<u64>,
    norms: Vec<f32>,
}

fn read_parts(bytes: &[u8], path: &str) -> Result<Parts> {
    let len = bytes.len();
    if len == 0 {
        return Err(fail(path, "empty file: not a q2key inverted-file index"));
    }
    let n = len.min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(fail(path, "not a q2key inverted-file index (wrong magic bytes)"));
    }
    if len < PREAMBLE_LEN {
        return Err(fail(path, format!("truncated: {len} bytes, shorter than the preamble")));
    }
    let version = get_u32(bytes, 8);
    if version > VERSION {
        return Err(fail(
            path,
            format!("written by a newer q2key (inverted-file format {version}); this one reads {VERSION}"),
        ));
    }
    let Some(sections) = section_count(version) else {
        return Err(fail(path, format!("unknown format version {version}")));
    };
    let crc_at = header_crc_at(sections);
    if get_u32(bytes, 12) as usize != crc_at - PREAMBLE_LEN {
        return Err(fail(path, "corrupted header: wrong header length"));
    }
    if len < FIRST_SECTION_AT {
        return Err(fail(
            path,
            format!("truncated: {len} bytes, the header alone takes {FIRST_SECTION_AT}"),
        ));
    }
    let stored = get_u32(bytes, crc_at);
    let computed = crc32c::crc32c(&bytes[..crc_at]);
    if stored != computed {
        return Err(fail(
            path,
            format!("corrupted header: checksum {stored:#010x}, computed {computed:#010x}"),
        ));
    }
    if bytes[crc_at + 4..FIRST_SECTION_AT].iter().any(|&b| b != 0) {
        return Err(fail(path, "corrupted: nonzero padding after the header"));
    }
    let h = PREAMBLE_LEN;
    let bad = |what: String| fail(path, format!("corrupted header: {what}"));
    let dim64 = get_u64(bytes, h);
    let width64 = get_u64(bytes, h + 8);
    let lists64 = get_u64(bytes, h + 16);
    let rows64 = get_u64(bytes, h + 24);
    let next_id = get_u64(bytes, h + 32);
    let kind = get_u32(bytes, h + 40);
    let table_flag = get_u32(bytes, h + 44);
    let tau_bits = get_u64(bytes, h + 48);
    if dim64 == 0 {
        return Err(bad("dimension 0".into()));
    }
    let dim = usize::try_from(dim64).map_err(|_| bad(format!("dimension {dim64} does not fit in memory")))?;
    let width = code_width(dim);
    if width64 != width as u64 {
        return Err(bad(format!("code width {width64}, dimension {dim} needs {width}")));
    }
    // Every list has 8 bytes in SIZE and every row 8 in IDS: both bounded by the file.
    if lists64 > len as u64 / 8 || rows64 > len as u64 / 8 {
        return Err(bad(format!(
            "{lists64} lists and {rows64} rows cannot fit in {len} bytes"
        )));
    }
    if rows64 > u64::from(u32::MAX) {
        return Err(bad(format!(
            "{rows64} rows; an inverted-file index holds at most 2³² − 1"
        )));
    }
    let (lists, rows) = (lists64 as usize, rows64 as usize);
    if lists == 0 && rows > 0 {
        return Err(bad(format!("{rows} rows but no lists")));
    }
    if get_u32(bytes, h + 56) as usize != sections || get_u32(bytes, h + 60) != 0 {
        return Err(bad("section count or reserved field".into()));
    }
    if table_flag > 1 {
        return Err(bad(format!("reconstruction flag {table_flag}")));
    }
    if kind != KIND_GLOBAL && tau_bits != 0 {
        return Err(bad("threshold field set for a rule without one".into()));
    }
    let per_dim = match kind {
        KIND_GAUSSIAN | KIND_GLOBAL => false,
        KIND_PER_DIM => true,
        k => return Err(bad(format!("unknown threshold kind {k}"))),
    };
    // Section lengths from the counts; CODE's needs the sizes (read below, bounded first).
    let too_big = || bad("sizes overflow".into());
    let head_lens = [
        if per_dim {
            dim.checked_mul(24).ok_or_else(too_big)?
        } else {
            0
        },
        if table_flag == 1 {
            dim.checked_mul(16).ok_or_else(too_big)?
        } else {
            0
        },
        lists
            .checked_mul(dim)
            .and_then(|v| v.checked_mul(4))
            .ok_or_else(too_big)?,
        8 * lists,
    ];
    let desc = |i: usize| {
        let d = h + FIELDS_LEN + i * DESCRIPTOR_LEN;
        (
            &bytes[d..d + 4],
            get_u32(bytes, d + 4),
            get_u64(bytes, d + 8),
            get_u64(bytes, d + 16),
            get_u32(bytes, d + 24),
            get_u32(bytes, d + 28),
        )
    };
    // The SIZE section's place follows from the first three lengths alone.
    let (pre, _) = layout(
        [head_lens[0], head_lens[1], head_lens[2], head_lens[3], 0, 0, 0],
        SIZE + 1,
    )
    .ok_or_else(too_big)?;
    if pre[SIZE].end > len {
        return Err(fail(
            path,
            format!("truncated: {len} bytes, the list sizes end at {}", pre[SIZE].end),
        ));
    }
    let raw_sizes = u64s(&bytes[pre[SIZE].clone()]);
    let mut code_len = 0usize;
    let mut total = 0u64;
    for &s in &raw_sizes {
        total = total.checked_add(s).ok_or_else(too_big)?;
        if total > rows64 {
            return Err(fail(
                path,
                format!("corrupted: the list sizes add up to more than {rows} rows"),
            ));
        }
        code_len = code_len
            .checked_add(blocks_len(s as usize, width).ok_or_else(too_big)?)
            .ok_or_else(too_big)?;
    }
    if total != rows64 {
        return Err(fail(
            path,
            format!("corrupted: the list sizes add up to {total}, not {rows}"),
        ));
    }
    let lens = [
        head_lens[0],
        head_lens[1],
        head_lens[2],
        head_lens[3],
        code_len,
        8 * rows,
        if sections == SECTION_COUNT_V2 {
            dim.checked_mul(dim)
                .and_then(|v| v.checked_mul(4))
                .ok_or_else(too_big)?
        } else {
            0
        },
    ];
    let (spans, end) = layout(lens, sections).ok_or_else(too_big)?;
    for (i, span) in spans.iter().enumerate().take(sections) {
        let (tag, flags, offset, length, _, reserved) = desc(i);
        if tag != TAGS[i] || flags != 0 || reserved != 0 || offset != span.start as u64 || length != span.len() as u64 {
            return Err(bad(format!("section {} descriptor is not the canonical one", NAMES[i])));
        }
    }
    if len < end {
        return Err(fail(path, format!("truncated: {len} bytes, the header says {end}")));
    }
    if len > end {
        return Err(fail(
            path,
            format!("corrupted: {} bytes after the last section", len - end),
        ));
    }
    let mut at = FIRST_SECTION_AT;
    for (i, span) in spans.iter().enumerate().take(sections) {
        if bytes[at..span.start].iter().any(|&b| b != 0) {
            return Err(fail(
                path,
                format!("corrupted: nonzero padding before section {}", NAMES[i]),
            ));
        }
        at = span.end;
    }
    // Checksums (CODE, the largest, in parallel pieces combined in order).
    for (i, span) in spans.iter().enumerate().take(sections) {
        let computed = crc32c::crc32c(&bytes[span.clone()]);
        if computed != desc(i).4 {
            return Err(fail(path, format!("corrupted: section {} checksum mismatch", NAMES[i])));
        }
    }
    let floats = |r: Range<usize>| -> Vec<f32> {
        bytes[r]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let rule = match kind {
        KIND_GAUSSIAN => Thresholds::gaussian(dim),
        KIND_GLOBAL => Thresholds::global("threshold", f64::from_bits(tau_bits), Some(dim)),
        _ => {
            let cuts: Vec<f64> = u64s(&bytes[spans[CUTS].clone()])
                .into_iter()
                .map(f64::from_bits)
                .collect();
            DimCuts::new(&cuts, dim).and_then(|c| Thresholds::of_index(ThresholdRule::PerDim(c), dim))
        }
    }
    .map_err(|e| fail(path, format!("corrupted thresholds: {e}")))?;
    let thresholds = if table_flag == 1 {
        let t = Reconstruction::new(&floats(spans[RCON].clone()), dim)
            .map_err(|e| fail(path, format!("corrupted reconstruction table: {e}")))?;
        rule.with_reconstruction(t)
            .map_err(|e| fail(path, format!("corrupted reconstruction table: {e}")))?
    } else {
        rule
    };
    let thresholds = if sections == SECTION_COUNT_V2 {
        let rotation = read_rotation(&bytes[spans[ROTN].clone()], dim, path)?;
        thresholds
            .with_rotation(Some(rotation))
            .map_err(|e| fail(path, format!("corrupted rotation: {e}")))?
    } else {
        thresholds
    };
    let table = thresholds.table_for(dim).map_err(|e| fail(path, e.to_string()))?;
    let centroids = floats(spans[CENT].clone());
    if let Some(at) = centroids.iter().position(|v| !v.is_finite()) {
        return Err(fail(
            path,
            format!("corrupted: centroid {} holds {}", at / dim, centroids[at]),
        ));
    }
    let sizes: Vec<usize> = raw_sizes.into_iter().map(|s| s as usize).collect();
    let ids = u64s(&bytes[spans[IDS].clone()]);
    check_ids(&ids, next_id, path)?;
    let norms = check_codes(&bytes[spans[CODE].clone()], &sizes, dim, &table, path)?;
    Ok(Parts {
        dim,
        thresholds,
        table,
        next_id,
        centroids,
        sizes,
        code: spans[CODE].clone(),
        ids,
        norms,
    })
}

/// Ids unique and below `next_id` (or `next_id = 2⁶⁴ − 1` holding that id).
fn check_ids(ids: &[u64], next_id: u64, path: &str) -> Result<()> {
    let mut sorted = ids.to_vec();
    sorted.par_sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(fail(path, format!("corrupted: id {} is stored twice", w[0])));
    }
    if let Some(&max) = sorted.last() {
        if max >= next_id && !(max == u64::MAX && next_id == u64::MAX) {
            return Err(fail(
                path,
                format!("corrupted: next id {next_id} is not above the largest stored id {max}"),
            ));
        }
    }
    Ok(())
}

/// Every code's padding bits and every padding row zero; returns the rows'
/// ‖x̂‖ (list after list), computed from the codes.
fn check_codes(code: &[u8], sizes: &[usize], dim: usize, table: &Reconstruction, path: &str) -> Result<Vec<f32>> {
    let width = code_width(dim);
    let padding = !last_byte_mask(dim);
    let mut starts = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &s in sizes {
        starts.push(at);
        at += blocks_len(s, width).unwrap_or(0);
    }
    // Once for every list (building it per list took most of a load).
    let squares = crate::decode::ByteSquares::new(table);
    let per_list: Vec<Result<Vec<f32>>> = sizes
        .par_iter()
        .zip(&starts)
        .enumerate()
        .map(|(l, (&rows, &start))| {
            let blocks = &code[start..start + blocks_len(rows, width).unwrap_or(0)];
            let mut codes = vec![0u8; rows * width];
            for (r, c) in codes.chunks_exact_mut(width).enumerate() {
                crate::search::asym::block_code_into(blocks, r, c);
                if c[width - 1] & padding != 0 {
                    return Err(fail(
                        path,
                        format!("corrupted: list {l} row {r} has nonzero padding bits"),
                    ));
                }
            }
            let padded = rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
            let mut c = vec![0u8; width];
            for r in rows..padded {
                crate::search::asym::block_code_into(blocks, r, &mut c);
                if c.iter().any(|&b| b != 0) {
                    return Err(fail(path, format!("corrupted: list {l} has a nonzero padding row")));
                }
            }
            let mut norms = vec![0f32; rows];
            squares.norms(&codes, &mut norms);
            Ok(norms)
        })
        .collect();
    let mut norms = Vec::with_capacity(sizes.iter().sum());
    for n in per_list {
        norms.extend(n?);
    }
    Ok(norms)
}

/// The index from validated parts; `blocks(range)` gives a list's blocks
/// (a copy, or a range of the map).
fn assemble(p: Parts, mapped: bool, mut blocks: impl FnMut(Range<usize>) -> Blocks) -> Result<IvfIndex> {
    let width = code_width(p.dim);
    let mut lists = Vec::with_capacity(p.sizes.len());
    let (mut at, mut row) = (p.code.start, 0);
    for &rows in &p.sizes {
        let len = blocks_len(rows, width).unwrap_or(0);
        let mut alive = vec![0xFFu8; rows.div_ceil(8)];
        if rows % 8 != 0 {
            if let Some(last) = alive.last_mut() {
                *last = (1u8 << (rows % 8)) - 1;
            }
        }
        let norms = &p.norms[row..row + rows];
        lists.push(List {
            blocks: blocks(at..at + len),
            ids: p.ids[row..row + rows].to_vec(),
            norms: norms.to_vec(),
            norm_range: norm_range(norms),
            alive,
            dead: 0,
        });
        at += len;
        row += rows;
    }
    Ok(IvfIndex {
        route: super::route::RouteTable::new(&p.centroids, p.dim)?,
        shared: std::sync::OnceLock::new(),
        dim: p.dim,
        thresholds: p.thresholds,
        table: p.table,
        centroids: p.centroids,
        lists,
        next_id: p.next_id,
        mapped,
        rows_of: std::sync::OnceLock::new(),
    })
}

/// An index from the bytes of a file (errors name `path`).
pub fn decode(bytes: &[u8], path: &str) -> Result<IvfIndex> {
    let p = read_parts(bytes, path)?;
    assemble(p, false, |r| Blocks::Owned(bytes[r].to_vec()))
}

/// Loads an index saved by [`save`]; with `mmap` the lists' blocks stay in
/// the file, mapped read-only and scanned in place (the index is then
/// read-only). Everything is validated as [`decode`] does.
pub fn load(path: &Path, mmap: bool) -> Result<IvfIndex> {
    let shown = path.display().to_string();
    let io_err = |what: &str, e: io::Error| Error::io(&shown, what, &e);
    let mut file = File::open(path).map_err(|e| io_err("cannot open", e))?;
    let len = file.metadata().map_err(|e| io_err("cannot stat", e))?.len();
    if mmap && len > 0 {
        // SAFETY: the map is read-only; q2key never writes index files in place
        // (save renames a new file over the old one), and the loader checks every
        // byte it uses. Another process truncating the file while it is mapped is
        // outside what this function can guard against (docs/FORMAT.md).
        let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err("cannot map", e))?);
        let p = read_parts(&map, &shown)?;
        return assemble(p, true, |r| Blocks::Mapped {
            map: Arc::clone(&map),
            offset: r.start,
            len: r.len(),
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| io_err("cannot read", e))?;
    decode(&bytes, &shown)
}
