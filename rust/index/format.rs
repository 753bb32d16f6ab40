//! The on-disk format of an index (`docs/FORMAT.md` has the byte tables).
//!
//! One file: a 16-byte preamble (magic, format version, header length), a
//! fixed header with the section table (240 bytes in format 1, 272 in
//! format 2), the header's CRC-32C, zero padding to byte 320, then five
//! sections (CUTS, CODES, IDS, KEYS, KEY_ORDER) and, in format 2 only, a
//! sixth (RECONSTRUCTION: the fitted table of SPEC §8) at 64-byte aligned offsets, each with its own CRC-32C, zero padding
//! between them and nothing after the last. Everything is little-endian and
//! the layout is canonical: one `IndexData` has exactly one encoding, and the
//! loader rejects every other byte string (wrong offsets, nonzero padding,
//! trailing bytes, non-canonical floats in unused fields). An index without
//! a fitted table is written in format 1 (which older q2key reads), one with
//! a table in format 2, so a format-2 file always holds a table.
//!
//! The loader never trusts a count before checking it against the file
//! length, so no input makes it allocate more than the file justifies, and it
//! re-derives everything it can (keys from codes, the key order) so that a
//! corrupted body is caught even if a checksum were fooled.

use super::data::{Codes, IndexData, IndexThresholds};
use crate::codes::{code_width, last_byte_mask};
use crate::decode::Reconstruction;
use crate::encode::cuts::DimCuts;
use crate::encode::rotation::Rotation;
use crate::error::{Error, Result};
use crate::keys::key_and_transitions;
use crate::search::lee::LeeWeights;
use rayon::prelude::*;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The first 8 bytes of every index file.
pub const MAGIC: [u8; 8] = *b"Q2KEYIDX";
/// The newest format version this build writes and reads (it reads 1 to 3;
/// it writes 3 for an index with a rotation, else 2 for one with a fitted
/// reconstruction table, else 1).
pub const VERSION: u32 = 3;
/// Bytes of the preamble: magic, version, header length.
pub const PREAMBLE_LEN: usize = 16;
/// Bytes of the fixed header fields before the section table.
pub const FIELDS_LEN: usize = 80;
/// Bytes of one section descriptor.
pub const DESCRIPTOR_LEN: usize = 32;
/// Sections of a format-1 file, in file order.
pub const SECTION_COUNT: usize = 5;
/// Bytes of the header (fields + section table) in format 1.
pub const HEADER_LEN: usize = FIELDS_LEN + SECTION_COUNT * DESCRIPTOR_LEN;
/// Offset of the header's CRC-32C (over bytes `0..HEADER_CRC_AT`) in format 1.
pub const HEADER_CRC_AT: usize = PREAMBLE_LEN + HEADER_LEN;
/// Sections of a format-2 file: format 1's and the reconstruction table.
pub const SECTION_COUNT_V2: usize = SECTION_COUNT + 1;
/// Bytes of the header in format 2.
pub const HEADER_LEN_V2: usize = FIELDS_LEN + SECTION_COUNT_V2 * DESCRIPTOR_LEN;
/// Sections of a format-3 file: format 2's and the rotation.
pub const SECTION_COUNT_V3: usize = SECTION_COUNT_V2 + 1;
/// Alignment of every section payload.
pub const ALIGN: usize = 64;
/// Offset of the first section in formats 1 and 2: the header and its CRC,
/// padded to [`ALIGN`] (format 2's header and CRC end at byte 292).
pub const FIRST_SECTION_AT: usize = (PREAMBLE_LEN + HEADER_LEN_V2 + 4).next_multiple_of(ALIGN);
/// Section tags, in file order (format 1 has the first five, format 2 six).
pub const TAGS: [[u8; 4]; SECTION_COUNT_V3] = [*b"CUTS", *b"CODE", *b"IDS\0", *b"KEYS", *b"KORD", *b"RCON", *b"ROTN"];

/// Offset of the first section of a file of `sections` sections: 320 in
/// formats 1 and 2, 384 in format 3 (its header and CRC end at byte 324).
pub fn first_section_at(sections: usize) -> usize {
    (header_crc_at(sections) + 4).next_multiple_of(ALIGN)
}

/// Sections of a file of format `version` (`None`: not a version this build reads).
pub fn section_count(version: u32) -> Option<usize> {
    match version {
        1 => Some(SECTION_COUNT),
        2 => Some(SECTION_COUNT_V2),
        3 => Some(SECTION_COUNT_V3),
        _ => None,
    }
}

/// Offset of the header's CRC-32C in a file of `sections` sections.
pub fn header_crc_at(sections: usize) -> usize {
    PREAMBLE_LEN + FIELDS_LEN + sections * DESCRIPTOR_LEN
}

const CUTS: usize = 0;
const CODES: usize = 1;
const IDS: usize = 2;
const KEYS: usize = 3;
const KEY_ORDER: usize = 4;
const RECONSTRUCTION: usize = 5;
const ROTATION: usize = 6;
const SECTION_NAMES: [&str; SECTION_COUNT_V3] = [
    "CUTS",
    "CODES",
    "IDS",
    "KEYS",
    "KEY_ORDER",
    "RECONSTRUCTION",
    "ROTATION",
];

pub(crate) const KIND_GAUSSIAN: u32 = 0;
pub(crate) const KIND_GLOBAL: u32 = 1;
pub(crate) const KIND_PER_DIM: u32 = 2;

/// Rows checked per parallel task.
const ROWS_PER_TASK: usize = 4096;

/// Where each section lives: `offset` and `len` in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    offset: usize,
    len: usize,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// The canonical section spans of an index with these counts, and the file
/// length. `sections`: 5 (format 1), 6 (format 2: RECONSTRUCTION, always a
/// table) or 7 (format 3: RECONSTRUCTION, empty unless `table`, and
/// ROTATION); spans past `sections` are left empty. `None` when a size does
/// not fit in `usize` (no real file can be that large).
fn layout(
    dim: usize,
    rows: usize,
    per_dim: bool,
    sections: usize,
    table: bool,
) -> Option<([Span; SECTION_COUNT_V3], usize)> {
    let width = code_width(dim);
    let lens = [
        if per_dim { dim.checked_mul(24)? } else { 0 },
        rows.checked_mul(width)?,
        rows.checked_mul(8)?,
        rows.checked_mul(8)?,
        rows.checked_mul(8)?,
        if table { dim.checked_mul(16)? } else { 0 },
        if sections == SECTION_COUNT_V3 {
            dim.checked_mul(dim)?.checked_mul(4)?
        } else {
            0
        },
    ];
    let mut spans = [Span { offset: 0, len: 0 }; SECTION_COUNT_V3];
    let mut at = first_section_at(sections);
    for (span, len) in spans.iter_mut().zip(lens).take(sections) {
        at = at.checked_next_multiple_of(ALIGN)?;
        *span = Span { offset: at, len };
        at = at.checked_add(len)?;
    }
    Some((spans, at))
}

// ---------------------------------------------------------------------------
// Writing

/// The cheap consistency checks a writer needs (the loader checks everything).
fn check_data(data: &IndexData) -> Result<()> {
    let rows = data.ids.len();
    if data.dim == 0 {
        return Err(Error::value("dim", "must be at least 1"));
    }
    let width = code_width(data.dim);
    if data.codes.len() != rows * width {
        return Err(Error::shape(
            "codes",
            format!("{rows} rows of {width} bytes = {} bytes", rows * width),
            format!("{} bytes", data.codes.len()),
        ));
    }
    if data.keys.len() != rows {
        return Err(Error::shape("keys", format!("{rows} keys"), data.keys.len()));
    }
    if data.key_order.len() != rows {
        return Err(Error::shape("key_order", format!("{rows} rows"), data.key_order.len()));
    }
    if let IndexThresholds::PerDim(c) = &data.thresholds {
        if c.dim() != data.dim {
            return Err(Error::shape("thresholds", format!("dimension {}", data.dim), c.dim()));
        }
    }
    if let Some(t) = &data.reconstruction {
        t.check_dim(data.dim)?;
    }
    if let Some(r) = &data.rotation {
        if r.dim() != data.dim {
            return Err(Error::shape("rotation", format!("dimension {}", data.dim), r.dim()));
        }
    }
    Ok(())
}

/// CRC-32C of `values` as little-endian bytes.
pub(crate) fn crc_u64s(values: &[u64]) -> u32 {
    let mut buf = [0u8; 8 * 512];
    values.chunks(512).fold(0, |crc, chunk| {
        let bytes = le_bytes(chunk, &mut buf);
        crc32c::crc32c_append(crc, bytes)
    })
}

fn crc_f64s(values: &[f64]) -> u32 {
    let bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
    crc_u64s(&bits)
}

/// `values` as little-endian bytes in `buf` (`8 · values.len() ≤ buf.len()`).
fn le_bytes<'a>(values: &[u64], buf: &'a mut [u8]) -> &'a [u8] {
    for (out, v) in buf.chunks_exact_mut(8).zip(values) {
        out.copy_from_slice(&v.to_le_bytes());
    }
    &buf[..8 * values.len()]
}

pub(crate) fn write_u64s(w: &mut impl Write, values: &[u64]) -> io::Result<()> {
    let mut buf = [0u8; 8 * 512];
    for chunk in values.chunks(512) {
        w.write_all(le_bytes(chunk, &mut buf))?;
    }
    Ok(())
}

pub(crate) fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Streams `data` in the file format to `w` (one pass over the data for the
/// checksums, one to write). `data` must be consistent (see [`IndexData`]);
/// inconsistent lengths give an `InvalidInput` error before anything is written.
pub fn write_to(data: &IndexData, w: &mut impl Write) -> io::Result<()> {
    check_data(data).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let rows = data.ids.len();
    let (kind, tau, cuts) = match &data.thresholds {
        IndexThresholds::Gaussian => (KIND_GAUSSIAN, 0.0, &[][..]),
        IndexThresholds::Global(t) => (KIND_GLOBAL, *t, &[][..]),
        IndexThresholds::PerDim(c) => (KIND_PER_DIM, 0.0, c.as_slice()),
    };
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "index too large for this platform");
    let table = data.reconstruction.as_ref().map_or(&[][..], |t| t.as_slice());
    let (version, sections) = match (data.rotation.is_some(), data.reconstruction.is_some()) {
        (true, _) => (3, SECTION_COUNT_V3),
        (false, true) => (2, SECTION_COUNT_V2),
        (false, false) => (1, SECTION_COUNT),
    };
    let has_table = data.reconstruction.is_some();
    let (spans, _) = layout(data.dim, rows, kind == KIND_PER_DIM, sections, has_table).ok_or_else(too_big)?;
    let table_bytes: Vec<u8> = table.iter().flat_map(|v| v.to_le_bytes()).collect();
    let rotation_bytes = data.rotation.as_ref().map_or_else(Vec::new, rotation_bytes);
    let crcs = [
        crc_f64s(cuts),
        crc32c::crc32c(&data.codes),
        crc_u64s(&data.ids),
        crc_u64s(&data.keys),
        crc_u64s(&data.key_order),
        crc32c::crc32c(&table_bytes),
        crc32c::crc32c(&rotation_bytes),
    ];
    let crc_at = header_crc_at(sections);
    let first = first_section_at(sections);

    let mut head = vec![0u8; first];
    head[..8].copy_from_slice(&MAGIC);
    put_u32(&mut head, 8, version);
    put_u32(&mut head, 12, (FIELDS_LEN + sections * DESCRIPTOR_LEN) as u32);
    let h = PREAMBLE_LEN;
    put_u64(&mut head, h, data.dim as u64);
    put_u64(&mut head, h + 8, code_width(data.dim) as u64);
    put_u64(&mut head, h + 16, rows as u64);
    put_u64(&mut head, h + 24, data.next_id);
    put_u32(&mut head, h + 32, kind);
    put_u32(&mut head, h + 36, u32::from(data.weights.is_some()));
    put_u64(&mut head, h + 40, tau.to_bits());
    if let Some(wt) = data.weights {
        put_u64(&mut head, h + 48, wt.magnitude.to_bits());
        put_u64(&mut head, h + 56, wt.sign.to_bits());
        put_u64(&mut head, h + 64, wt.both.to_bits());
    }
    put_u32(&mut head, h + 72, sections as u32);
    for (i, (span, crc)) in spans.iter().zip(crcs).enumerate().take(sections) {
        let d = h + FIELDS_LEN + i * DESCRIPTOR_LEN;
        head[d..d + 4].copy_from_slice(&TAGS[i]);
        put_u64(&mut head, d + 8, span.offset as u64);
        put_u64(&mut head, d + 16, span.len as u64);
        put_u32(&mut head, d + 24, crc);
    }
    let crc = crc32c::crc32c(&head[..crc_at]);
    put_u32(&mut head, crc_at, crc);
    w.write_all(&head)?;

    let mut at = first;
    let zeros = [0u8; ALIGN];
    for (i, span) in spans.iter().enumerate().take(sections) {
        w.write_all(&zeros[..span.offset - at])?;
        match i {
            CUTS => {
                let bits: Vec<u64> = cuts.iter().map(|v| v.to_bits()).collect();
                write_u64s(w, &bits)?
            }
            CODES => w.write_all(&data.codes)?,
            IDS => write_u64s(w, &data.ids)?,
            KEYS => write_u64s(w, &data.keys)?,
            KEY_ORDER => write_u64s(w, &data.key_order)?,
            RECONSTRUCTION => w.write_all(&table_bytes)?,
            _ => w.write_all(&rotation_bytes)?,
        }
        at = span.offset + span.len;
    }
    Ok(())
}

/// Saves `data` to `path` atomically: writes `<name>.tmp-<pid>-<n>` in the
/// same directory, holding an exclusive lock on it, fsyncs it, renames it over
/// `path` and fsyncs the directory. Readers see the old file or the new one,
/// never a mix; a file currently memory-mapped (even the one `data`'s codes
/// are mapped from) keeps its old contents for the mapping. On error the
/// temporary file is removed and the error names `path`. First, temporary
/// files of `path` left by writers that died are removed
/// ([`remove_stale_temps`]).
pub fn save(data: &IndexData, path: &Path) -> Result<()> {
    check_data(data)?;
    save_atomically(path, |w| write_to(data, w))
}

/// The atomic save of [`save`] for any writer of the file's bytes (the
/// inverted-file index's too): temporary file, lock, `write`, fsync,
/// rename, directory fsync; on error the temporary file is removed.
pub(crate) fn save_atomically(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let shown = path.display().to_string();
    let name = path.file_name().ok_or_else(|| Error::Io {
        path: shown.clone(),
        kind: io::ErrorKind::InvalidInput,
        reason: "not a file path (no file name)".into(),
        errno: None,
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temps(path);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!("{TEMP_INFIX}{}-{n}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let io_err = |what: &str, e: io::Error| Error::io(&shown, what, &e);

    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_err(&format!("cannot create the temporary file {}", tmp.display()), e))?;
    let written = (|| {
        // Held until the file is renamed (and closed): a cleaner in another
        // process never removes a temporary file it cannot lock.
        file.lock().map_err(|e| io_err("cannot lock the temporary file", e))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        write(&mut w).map_err(|e| io_err("cannot write", e))?;
        let file = w.into_inner().map_err(|e| io_err("cannot write", e.into_error()))?;
        file.sync_all().map_err(|e| io_err("cannot sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err("cannot rename the temporary file over it", e))?;
        drop(file);
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The new file is in place; make its directory entry durable too.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(&format!("saved, but cannot sync the directory {}", dir.display()), e))
}

/// Between a target's file name and the writer's pid in a temporary file name.
const TEMP_INFIX: &str = ".tmp-";

/// The pid in `file_name` if it names a temporary file of [`save`] for
/// `target` (`<target>.tmp-<pid>-<n>`).
fn temp_writer_pid(file_name: &std::ffi::OsStr, target: &std::ffi::OsStr) -> Option<u32> {
    let rest = file_name
        .to_str()?
        .strip_prefix(target.to_str()?)?
        .strip_prefix(TEMP_INFIX)?;
    let (pid, n) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(pid) && digits(n)) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` exists, where the system says (`/proc`); `None` elsewhere.
fn process_alive(pid: u32) -> Option<bool> {
    Path::new("/proc/self")
        .exists()
        .then(|| Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes the temporary files [`save`] left for `path` in processes that
/// died before renaming them (killed, power loss), and returns how many. A
/// file is removed only if its writer's pid (in its name) is not a live
/// process and the file's lock can be taken: a live writer holds the lock
/// from creation to rename, so its file is never touched, even if its pid
/// was reused or lives in another pid namespace. Best effort: errors only
/// mean a file stays.
pub fn remove_stale_temps(path: &Path) -> usize {
    let (Some(target), dir) = (path.file_name(), path.parent()) else {
        return 0;
    };
    let dir = match dir {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(pid) = temp_writer_pid(&entry.file_name(), target) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) == Some(true) {
            continue;
        }
        let stale = entry.path();
        let Ok(file) = File::open(&stale) else { continue };
        if file.try_lock().is_ok() && std::fs::remove_file(&stale).is_ok() {
            removed += 1;
        }
    }
    removed
}

// ---------------------------------------------------------------------------
// Reading

pub(crate) fn fail(path: &str, reason: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

pub(crate) fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

pub(crate) fn u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut v = [0u8; 8];
            v.copy_from_slice(c);
            u64::from_le_bytes(v)
        })
        .collect()
}

/// Everything but the codes, validated, and where the codes are.
struct Parts {
    dim: usize,
    thresholds: IndexThresholds,
    weights: Option<LeeWeights>,
    next_id: u64,
    codes: Range<usize>,
    ids: Vec<u64>,
    keys: Vec<u64>,
    key_order: Vec<u64>,
    reconstruction: Option<Reconstruction>,
    rotation: Option<Rotation>,
}

/// Checks the preamble and header of `bytes` (the whole file) and returns the
/// section spans, all proven to lie inside `bytes`.
fn read_header(bytes: &[u8], path: &str) -> Result<Header> {
    let len = bytes.len();
    if len == 0 {
        return Err(fail(path, "empty file: not a q2key index"));
    }
    let n = len.min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(fail(path, "not a q2key index (wrong magic bytes)"));
    }
    if len < PREAMBLE_LEN {
        return Err(fail(path, format!("truncated: {len} bytes, shorter than the preamble")));
    }
    let version = get_u32(bytes, 8);
    if version > VERSION {
        return Err(fail(
            path,
            format!("written by a newer q2key (format {version}); this one reads 1 to {VERSION}"),
        ));
    }
    let Some(section_count) = section_count(version) else {
        return Err(fail(
            path,
            format!("unknown format version {version}; this q2key reads 1 to {VERSION}"),
        ));
    };
    let header_len = get_u32(bytes, 12);
    let expected_len = FIELDS_LEN + section_count * DESCRIPTOR_LEN;
    if header_len as usize != expected_len {
        return Err(fail(
            path,
            format!("corrupted header: length {header_len}, format {version} has {expected_len}"),
        ));
    }
    let crc_at = header_crc_at(section_count);
    let first = first_section_at(section_count);
    if len < first {
        return Err(fail(
            path,
            format!("truncated: {len} bytes, the header alone takes {first}"),
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
    if bytes[crc_at + 4..first].iter().any(|&b| b != 0) {
        return Err(fail(path, "corrupted: nonzero padding after the header"));
    }

    let h = PREAMBLE_LEN;
    let bad = |what: String| fail(path, format!("corrupted header: {what}"));
    let dim64 = get_u64(bytes, h);
    let width64 = get_u64(bytes, h + 8);
    let rows64 = get_u64(bytes, h + 16);
    let next_id = get_u64(bytes, h + 24);
    let kind = get_u32(bytes, h + 32);
    let weights_flag = get_u32(bytes, h + 36);
    let tau_bits = get_u64(bytes, h + 40);
    let w_bits = [get_u64(bytes, h + 48), get_u64(bytes, h + 56), get_u64(bytes, h + 64)];
    let sections = get_u32(bytes, h + 72);
    let reserved = get_u32(bytes, h + 76);

    if dim64 == 0 {
        return Err(bad("dimension 0".into()));
    }
    // The dimension is bounded by the file only through the sections it sizes
    // (CUTS, CODES), which `layout` computes with checked arithmetic and which
    // must then match the file length: an empty index may have any dimension.
    let dim = usize::try_from(dim64)
        .map_err(|_| bad(format!("dimension {dim64} does not fit in memory on this platform")))?;
    if width64 != code_width(dim) as u64 {
        return Err(bad(format!(
            "code width {width64}, dimension {dim} needs {}",
            code_width(dim)
        )));
    }
    let rows = usize::try_from(rows64)
        .ok()
        .filter(|&r| r <= len / 8)
        .ok_or_else(|| bad(format!("{rows64} rows do not fit a file of {len} bytes")))?;
    if sections as usize != section_count || reserved != 0 {
        return Err(bad(format!(
            "section count {sections} (reserved {reserved}); format {version} has {section_count} (reserved 0)"
        )));
    }
    let thresholds = match kind {
        KIND_GAUSSIAN | KIND_PER_DIM if tau_bits != 0 => {
            return Err(bad("a threshold value stored for a rule without one".into()))
        }
        KIND_GAUSSIAN => Some(IndexThresholds::Gaussian),
        KIND_GLOBAL => {
            let tau = f64::from_bits(tau_bits);
            if !(tau.is_finite() && tau >= 0.0) {
                return Err(bad(format!("threshold {tau}; must be finite and ≥ 0")));
            }
            Some(IndexThresholds::Global(tau))
        }
        KIND_PER_DIM => None,
        k => return Err(bad(format!("unknown threshold kind {k}"))),
    };
    let weights = match weights_flag {
        0 if w_bits != [0; 3] => return Err(bad("weights stored with the weights flag off".into())),
        0 => None,
        1 => {
            let [m, s, b] = w_bits.map(f64::from_bits);
            Some(
                LeeWeights::new(m, s, b)
                    .and_then(|w| w.check_dims(dim))
                    .map_err(|e| bad(e.to_string()))?,
            )
        }
        f => return Err(bad(format!("weights flag {f}, expected 0 or 1"))),
    };
    // Format 2 always holds a table; format 3 says by RECONSTRUCTION's length
    // (0 or 16·dim, checked against the layout below like every length).
    let table = match section_count {
        SECTION_COUNT_V2 => true,
        SECTION_COUNT_V3 => get_u64(bytes, h + FIELDS_LEN + RECONSTRUCTION * DESCRIPTOR_LEN + 16) != 0,
        _ => false,
    };
    let (spans, end) = layout(dim, rows, thresholds.is_none(), section_count, table)
        .ok_or_else(|| bad(format!("{rows} rows of dimension {dim} do not fit in memory")))?;
    let mut crcs = [0u32; SECTION_COUNT_V3];
    for (i, span) in spans.iter().enumerate().take(section_count) {
        let d = h + FIELDS_LEN + i * DESCRIPTOR_LEN;
        let name = SECTION_NAMES[i];
        if bytes[d..d + 4] != TAGS[i] {
            return Err(bad(format!("section {i} is not {name}")));
        }
        let (flags, offset, slen, reserved) = (
            get_u32(bytes, d + 4),
            get_u64(bytes, d + 8),
            get_u64(bytes, d + 16),
            get_u32(bytes, d + 28),
        );
        if flags != 0 || reserved != 0 {
            return Err(bad(format!(
                "section {name} has flags {flags:#x} / reserved {reserved:#x}"
            )));
        }
        if offset != span.offset as u64 || slen != span.len as u64 {
            return Err(bad(format!(
                "section {name} at {offset} with {slen} bytes; the counts put it at {} with {}",
                span.offset, span.len
            )));
        }
        crcs[i] = get_u32(bytes, d + 24);
    }
    if len < end {
        return Err(fail(path, format!("truncated: {len} bytes, the header says {end}")));
    }
    if len > end {
        return Err(fail(
            path,
            format!(
                "corrupted: {} bytes after the last section (file {len} bytes, expected {end})",
                len - end
            ),
        ));
    }
    Ok(Header {
        dim,
        rows,
        next_id,
        thresholds,
        weights,
        sections: section_count,
        table,
        spans,
        crcs,
    })
}

struct Header {
    dim: usize,
    rows: usize,
    next_id: u64,
    /// `None`: per-dimension cuts, in the CUTS section.
    thresholds: Option<IndexThresholds>,
    weights: Option<LeeWeights>,
    /// 5 (format 1), 6 (format 2: with the reconstruction table) or 7
    /// (format 3: with the rotation, and the table if `table`).
    sections: usize,
    table: bool,
    spans: [Span; SECTION_COUNT_V3],
    crcs: [u32; SECTION_COUNT_V3],
}

/// Validates all of `bytes` (one whole file) except what it returns as the
/// codes range, whose contents are validated too: checksums, padding and
/// every invariant of [`IndexData`].
fn read_parts(bytes: &[u8], path: &str) -> Result<Parts> {
    let head = read_header(bytes, path)?;
    let mut at = first_section_at(head.sections);
    for (i, span) in head.spans.iter().enumerate().take(head.sections) {
        if bytes[at..span.offset].iter().any(|&b| b != 0) {
            return Err(fail(
                path,
                format!("corrupted: nonzero padding before section {}", SECTION_NAMES[i]),
            ));
        }
        let computed = crc32c::crc32c(&bytes[span.range()]);
        if computed != head.crcs[i] {
            return Err(fail(
                path,
                format!(
                    "corrupted: section {} checksum {:#010x}, computed {computed:#010x}",
                    SECTION_NAMES[i], head.crcs[i]
                ),
            ));
        }
        at = span.offset + span.len;
    }

    let (dim, rows) = (head.dim, head.rows);
    let thresholds = match head.thresholds {
        Some(t) => t,
        None => {
            let cuts: Vec<f64> = u64s(&bytes[head.spans[CUTS].range()])
                .into_iter()
                .map(f64::from_bits)
                .collect();
            let cuts = DimCuts::new(&cuts, dim).map_err(|e| fail(path, format!("corrupted cuts: {e}")))?;
            IndexThresholds::PerDim(cuts)
        }
    };
    let reconstruction = if head.table {
        let values = f32s(&bytes[head.spans[RECONSTRUCTION].range()]);
        let table = Reconstruction::new(&values, dim)
            .map_err(|e| fail(path, format!("corrupted reconstruction table: {e}")))?;
        Some(table)
    } else {
        None
    };
    let rotation = if head.sections == SECTION_COUNT_V3 {
        Some(read_rotation(&bytes[head.spans[ROTATION].range()], dim, path)?)
    } else {
        None
    };
    let codes = head.spans[CODES].range();
    let ids = u64s(&bytes[head.spans[IDS].range()]);
    let keys = u64s(&bytes[head.spans[KEYS].range()]);
    let key_order = u64s(&bytes[head.spans[KEY_ORDER].range()]);
    check_rows(&bytes[codes.clone()], dim, &keys, path)?;
    check_ids(&ids, head.next_id, path)?;
    check_key_order(&key_order, &keys, &ids, rows, path)?;
    Ok(Parts {
        dim,
        thresholds,
        weights: head.weights,
        next_id: head.next_id,
        codes,
        ids,
        keys,
        key_order,
        reconstruction,
        rotation,
    })
}

/// Little-endian f32 values of `bytes` (a multiple of 4 long).
/// The `ROTN` section of `rotation` (index format 3, inverted-file format 2):
/// its f32 values, little-endian, row-major.
pub(crate) fn rotation_bytes(rotation: &Rotation) -> Vec<u8> {
    rotation.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The rotation a `ROTN` section of a `dim`-dimensional file holds, validated
/// by [`Rotation::new`] (square, finite, orthogonal, SPEC §9); a corrupted-file
/// error naming `path` otherwise.
pub(crate) fn read_rotation(section: &[u8], dim: usize, path: &str) -> Result<Rotation> {
    Rotation::new(&f32s(section), (dim, dim)).map_err(|e| fail(path, format!("corrupted rotation: {e}")))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Padding bits zero and every key equal to the key of its code.
fn check_rows(codes: &[u8], dim: usize, keys: &[u64], path: &str) -> Result<()> {
    let width = code_width(dim);
    let padding = !last_byte_mask(dim);
    let first_bad = |first_row: usize, codes: &[u8], keys: &[u64]| -> Option<(usize, &'static str)> {
        codes
            .chunks_exact(width)
            .zip(keys)
            .enumerate()
            .find_map(|(r, (code, &key))| {
                if code[width - 1] & padding != 0 {
                    Some((first_row + r, "nonzero padding bits in its code"))
                } else if key_and_transitions(code, dim).0 != key {
                    Some((first_row + r, "a key that does not match its code"))
                } else {
                    None
                }
            })
    };
    let bad = if keys.len() <= ROWS_PER_TASK {
        first_bad(0, codes, keys)
    } else {
        codes
            .par_chunks(ROWS_PER_TASK * width)
            .zip(keys.par_chunks(ROWS_PER_TASK))
            .enumerate()
            .find_map_first(|(t, (codes, keys))| first_bad(t * ROWS_PER_TASK, codes, keys))
    };
    match bad {
        Some((row, what)) => Err(fail(path, format!("corrupted: row {row} has {what}"))),
        None => Ok(()),
    }
}

/// Ids unique, and `next_id` above every one of them (as `add` keeps it:
/// `max(next_id, id + 1)`, saturating at `u64::MAX`), so that sequential ids
/// handed out after loading can never repeat a stored id.
fn check_ids(ids: &[u64], next_id: u64, path: &str) -> Result<()> {
    let max = if ids.windows(2).all(|w| w[0] < w[1]) {
        ids.last().copied() // increasing (sequential ids): distinct without sorting a copy
    } else {
        let mut sorted = ids.to_vec();
        sorted.par_sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(fail(path, format!("corrupted: id {} appears twice", w[0])));
        }
        sorted.last().copied()
    };
    match max {
        Some(max) if next_id < max.saturating_add(1) => Err(fail(
            path,
            format!("corrupted: next id {next_id} is not above the largest stored id {max}"),
        )),
        _ => Ok(()),
    }
}

/// `key_order` lists every row once, sorted by `(key, id)`: rows in range and
/// strictly increasing pairs (ids are unique, so equal pairs mean a repeated
/// row) with `rows` entries make a permutation.
fn check_key_order(order: &[u64], keys: &[u64], ids: &[u64], rows: usize, path: &str) -> Result<()> {
    let mut prev: Option<(u64, u64)> = None;
    for (i, &r) in order.iter().enumerate() {
        let row = usize::try_from(r).ok().filter(|&r| r < rows).ok_or_else(|| {
            fail(
                path,
                format!("corrupted: key order entry {i} is row {r}, the index has {rows}"),
            )
        })?;
        let pair = (keys[row], ids[row]);
        if prev.is_some_and(|p| p >= pair) {
            return Err(fail(
                path,
                format!("corrupted: key order is not sorted by (key, id) at entry {i}"),
            ));
        }
        prev = Some(pair);
    }
    Ok(())
}

/// Decodes one whole file held in memory (the codes are copied). Any input
/// that is not exactly a file [`write_to`] could have written gives
/// [`Error::Format`] naming `path` and the problem; none panics, and none
/// allocates more than a small multiple of `bytes.len()`.
pub fn decode(bytes: &[u8], path: &str) -> Result<IndexData> {
    let p = read_parts(bytes, path)?;
    let codes = Codes::Owned(bytes[p.codes.clone()].to_vec());
    Ok(assemble(p, codes))
}

fn assemble(p: Parts, codes: Codes) -> IndexData {
    IndexData {
        dim: p.dim,
        thresholds: p.thresholds,
        reconstruction: p.reconstruction,
        rotation: p.rotation,
        weights: p.weights,
        next_id: p.next_id,
        codes,
        ids: p.ids,
        keys: p.keys,
        key_order: p.key_order,
    }
}

/// Loads the index saved at `path`, validated as [`decode`] does. With
/// `mmap`, the codes stay in the file, mapped read-only ([`Codes::Mapped`]);
/// their checksum and keys are still verified here, which reads them once.
/// The file must not be changed in place while mapped (q2key's own [`save`]
/// never does: it replaces the file by renaming).
pub fn load(path: &Path, mmap: bool) -> Result<IndexData> {
    let shown = path.display().to_string();
    let io_err = |what: &str, e: io::Error| Error::io(&shown, what, &e);
    let mut file = File::open(path).map_err(|e| io_err("cannot open", e))?;
    let len = file.metadata().map_err(|e| io_err("cannot stat", e))?.len();
    if mmap && len > 0 {
        // SAFETY: the map is read-only; q2key never writes index files in place
        // (save renames a new file over the old one), and the loader checks every
        // byte it uses. Another process truncating the file while it is mapped
        // is outside what this function can guard against (documented).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err("cannot map", e))?;
        let p = read_parts(&map, &shown)?;
        let (offset, len) = (p.codes.start, p.codes.len());
        return Ok(assemble(p, Codes::Mapped { map, offset, len }));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| io_err("cannot read", e))?;
    let p = read_parts(&bytes, &shown)?;
    // Reuse the file buffer for the codes instead of copying them.
    bytes.truncate(p.codes.end);
    bytes.drain(..p.codes.start);
    bytes.shrink_to_fit();
    Ok(assemble(p, Codes::Owned(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_constants() {
        assert_eq!(HEADER_LEN, 240);
        assert_eq!(HEADER_CRC_AT, 256);
        assert_eq!(FIRST_SECTION_AT, 320);
    }

    #[test]
    fn empty_index_round_trips() {
        let data = IndexData {
            dim: 5,
            thresholds: IndexThresholds::Gaussian,
            reconstruction: None,
            rotation: None,
            weights: None,
            next_id: 7,
            codes: Codes::Owned(Vec::new()),
            ids: Vec::new(),
            keys: Vec::new(),
            key_order: Vec::new(),
        };
        let mut buf = Vec::new();
        write_to(&data, &mut buf).unwrap();
        assert_eq!(buf.len(), FIRST_SECTION_AT);
        let back = decode(&buf, "mem").unwrap();
        assert_eq!(back.dim, 5);
        assert_eq!(back.next_id, 7);
    }
}
