//! Property tests of the CSI readers against damaged input, standing in for `cargo fuzz`
//! (which needs a nightly toolchain): every real sample recording in `../shared/data/csi`
//! is cut, bit-flipped, overwritten, spliced and shuffled thousands of times with a
//! seeded generator, and each damaged copy is read by the streaming reader and by the
//! column-wise table path (what Python's `read_csi` uses), as its own format and as
//! another one.
//!
//! Every case must end (no hang, no panic) with only well-formed frames (the CSI holds
//! `n_tx × n_rx × n_sub` values, none of them zero-sized) and errors that name the input
//! and an offset inside it; both paths must agree frame for frame and error for error.
//! A failing case prints its seed, file and mutation so it can be replayed alone.

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wifi_densepose::csi::atheros::Endianness;
use wifi_densepose::csi::nexmon::NexmonChip;
use wifi_densepose::csi::{
    detect_format, read_table_from, CsiError, CsiFormat, CsiFrame, CsiReader, ReadOptions,
};

const FILES: [(&str, CsiFormat); 7] = [
    ("intel5300_log.all_csi.6.7.6.dat", CsiFormat::Intel5300),
    ("intel5300_walk_1590161182.dat", CsiFormat::Intel5300),
    ("atheros_ath_csi_1.dat", CsiFormat::Atheros),
    ("nexmon_bcm4358_example.pcap", CsiFormat::Nexmon),
    ("nexmon_bcm43455c0_walk_1597159475.pcap", CsiFormat::Nexmon),
    ("esp32_example_csi.csv", CsiFormat::Esp32),
    ("picoscenes_rx_by_qca9300.csi", CsiFormat::PicoScenes),
];

const FORMATS: [CsiFormat; 5] = [
    CsiFormat::Intel5300,
    CsiFormat::Atheros,
    CsiFormat::Nexmon,
    CsiFormat::Esp32,
    CsiFormat::PicoScenes,
];

/// Cases per sample file (7 files: 10,500 damaged inputs, each read several ways).
const CASES_PER_FILE: usize = 1500;

/// Damaged inputs are cut from the first bytes of each file (several records of every
/// format), so that thousands of cases stay fast in a debug build.
const WINDOW: usize = 12 * 1024;

fn sample(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/csi")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "reference recording {} is missing ({e}): the CSI reader tests need the shared \
             data folder ../shared/data/csi next to the crate (see SOURCES.md there)",
            p.display()
        )
    })
}

/// Values that tend to break length and count fields.
const INTERESTING: [u8; 8] = [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xfe, 0xff];

/// Applies one to four random mutations to `b`; returns what was done, for the report.
fn mutate(rng: &mut StdRng, b: &mut Vec<u8>) -> String {
    let mut done = Vec::new();
    for _ in 0..rng.gen_range(1..=4) {
        let len = b.len();
        if len == 0 {
            break;
        }
        match rng.gen_range(0..9) {
            0 => {
                let i = rng.gen_range(0..len);
                let bit = rng.gen_range(0..8);
                b[i] ^= 1 << bit;
                done.push(format!("flip bit {bit} of byte {i}"));
            }
            1 => {
                let i = rng.gen_range(0..len);
                b[i] = rng.gen();
                done.push(format!("random byte {i}"));
            }
            2 => {
                let i = rng.gen_range(0..len);
                let v = INTERESTING[rng.gen_range(0..INTERESTING.len())];
                let n = rng.gen_range(1..=4).min(len - i);
                b[i..i + n].fill(v);
                done.push(format!("bytes {i}..{} = {v:#04x}", i + n));
            }
            3 => {
                let cut = rng.gen_range(0..len);
                b.truncate(cut);
                done.push(format!("truncate to {cut}"));
            }
            4 => {
                let i = rng.gen_range(0..len);
                let n = rng.gen_range(1..=64).min(len - i);
                b.drain(i..i + n);
                done.push(format!("delete {i}..{}", i + n));
            }
            5 => {
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=64);
                let junk: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                b.splice(i..i, junk);
                done.push(format!("insert {n} random bytes at {i}"));
            }
            6 => {
                // A copy of one part of the file elsewhere: records out of place.
                let from = rng.gen_range(0..len);
                let n = rng.gen_range(1..=512).min(len - from);
                let to = rng.gen_range(0..=len);
                let part = b[from..from + n].to_vec();
                b.splice(to..to, part);
                done.push(format!("copy {from}..{} to {to}", from + n));
            }
            7 => {
                // A 16- or 32-bit field (length, count) set to an extreme.
                let width = if rng.gen() { 2 } else { 4 };
                if len >= width {
                    let i = rng.gen_range(0..=len - width);
                    let v = if rng.gen() { 0xff } else { 0x00 };
                    b[i..i + width].fill(v);
                    b[i + rng.gen_range(0..width)] = rng.gen();
                    done.push(format!("{width}-byte field at {i} made extreme"));
                }
            }
            _ => {
                let i = rng.gen_range(0..len);
                b[i..].reverse();
                done.push(format!("reverse from {i}"));
            }
        }
    }
    done.join(", ")
}

/// Options that change how each format is decoded, picked at random.
fn options(rng: &mut StdRng) -> ReadOptions {
    let mut o = ReadOptions::default();
    o.intel5300.scaled = rng.gen_bool(0.3);
    o.intel5300.apply_permutation = rng.gen_bool(0.8);
    o.atheros.endianness = match rng.gen_range(0..3) {
        0 => None,
        1 => Some(Endianness::Little),
        _ => Some(Endianness::Big),
    };
    o.nexmon.chip = match rng.gen_range(0..5) {
        0 => Some(NexmonChip::Bcm4339),
        1 => Some(NexmonChip::Bcm4358),
        2 => Some(NexmonChip::Bcm43455c0),
        3 => Some(NexmonChip::Bcm4366c0),
        _ => None,
    };
    o.nexmon.bandwidth_mhz =
        [None, Some(20), Some(40), Some(80), Some(160), Some(33)][rng.gen_range(0..6)];
    o.nexmon.fftshift = rng.gen_bool(0.3);
    o
}

/// Reads `bytes` as `format` both ways and checks every property; `what` names the case.
/// Returns the numbers of frames and errors.
fn check(what: &str, bytes: &[u8], format: CsiFormat, opts: &ReadOptions) -> (usize, usize) {
    const NAME: &str = "fuzz-input";
    let len = bytes.len() as u64;
    // At most one item per byte plus the final error: more means the reader is stuck.
    let limit = bytes.len() + 2;
    let items: Vec<Result<CsiFrame, CsiError>> = CsiReader::new(bytes, NAME, format, opts)
        .unwrap_or_else(|e| panic!("{what}: a file format was refused: {e}"))
        .take(limit + 1)
        .collect();
    assert!(items.len() <= limit, "{what}: the reader does not end");
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match item {
            Ok(f) => {
                let shape = f.csi.shape().to_vec();
                assert!(
                    shape.iter().all(|&d| d > 0),
                    "{what}: frame with an empty dimension {shape:?}"
                );
                assert_eq!(
                    f.csi.len(),
                    f.n_tx() * f.n_rx() * f.n_subcarriers(),
                    "{what}"
                );
                assert_eq!(f.format, format, "{what}");
                frames.push(f);
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(NAME),
                    "{what}: error without the file: {msg}"
                );
                assert!(
                    msg.contains(&format!("byte {}", e.offset())),
                    "{what}: error without its offset: {msg}"
                );
                assert!(
                    e.offset() <= len,
                    "{what}: error offset {} past the end ({len} bytes): {msg}",
                    e.offset()
                );
                errors.push(msg);
            }
        }
    }
    // The column-wise path gives the same frames, values and errors.
    let table = read_table_from(
        CsiReader::new(bytes, NAME, format, opts).expect("refused above otherwise"),
        NAME,
        len,
    );
    let table_errors: Vec<String> = table.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(table_errors, errors, "{what}: errors differ between paths");
    assert_eq!(table.len(), frames.len(), "{what}: frame counts differ");
    for (i, f) in frames.iter().enumerate() {
        let g = table.frame(i);
        // Bitwise, so that NaN (scaled CSI of an all-zero frame) compares too.
        let bits = |a: &CsiFrame| -> Vec<(u32, u32)> {
            a.csi
                .iter()
                .map(|c| (c.re.to_bits(), c.im.to_bits()))
                .collect()
        };
        assert_eq!(g.csi.shape(), f.csi.shape(), "{what}: frame {i} shape");
        assert_eq!(bits(&g), bits(f), "{what}: frame {i} values");
        assert_eq!(
            g.timestamp.to_bits(),
            f.timestamp.to_bits(),
            "{what}: frame {i}"
        );
        assert_eq!(g.meta, f.meta, "{what}: frame {i} meta");
    }
    (frames.len(), errors.len())
}

#[test]
fn damaged_sample_files_never_panic_and_both_paths_agree() {
    let mut cases = 0usize;
    for (n, (file, format)) in FILES.into_iter().enumerate() {
        let whole = sample(file);
        // Frames and errors seen reading as the file's own format: the damage must leave
        // frames to read and errors to report, or the test exercises nothing.
        let (mut frames, mut errors) = (0, 0);
        for case in 0..CASES_PER_FILE {
            let seed = 0x5eed_0000 + (n * CASES_PER_FILE + case) as u64;
            let mut rng = StdRng::seed_from_u64(seed);
            // Mostly the start of the file (headers and the first records), sometimes a
            // window from anywhere (no header, a record cut at its start).
            let start = if rng.gen_bool(0.8) {
                0
            } else {
                rng.gen_range(0..whole.len())
            };
            let end = (start + rng.gen_range(1..=WINDOW)).min(whole.len());
            let mut bytes = whole[start..end].to_vec();
            let how = mutate(&mut rng, &mut bytes);
            let opts = options(&mut rng);
            let what = format!(
                "seed {seed:#x}: {file}[{start}..{end}], {how} ({} bytes)",
                bytes.len()
            );
            let (f, e) = check(&format!("{what} as {format:?}"), &bytes, format, &opts);
            frames += f;
            errors += e;
            // Another format named by the caller, and whatever detection says.
            let other = FORMATS[rng.gen_range(0..FORMATS.len())];
            check(&format!("{what} as {other:?}"), &bytes, other, &opts);
            if let Ok(detected) = detect_format(&bytes) {
                check(
                    &format!("{what} detected {detected:?}"),
                    &bytes,
                    detected,
                    &opts,
                );
            }
            cases += 1;
        }
        eprintln!("{file}: {CASES_PER_FILE} damaged copies, {frames} frames, {errors} errors");
        assert!(
            frames > 0 && errors > 0,
            "{file}: {frames} frames, {errors} errors"
        );
    }
    assert_eq!(cases, FILES.len() * CASES_PER_FILE);
}

#[test]
fn every_cut_of_a_sample_prefix_is_a_clean_error_or_clean_end() {
    // Every possible truncation point of the first records of each file, unmutated:
    // the frames before the cut are exactly those of the uncut file.
    for (file, format) in FILES {
        let whole = sample(file);
        let prefix = &whole[..whole.len().min(4096)];
        let opts = ReadOptions::default();
        let full: Vec<CsiFrame> = CsiReader::new(prefix, "prefix", format, &opts)
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        for cut in 0..prefix.len() {
            let what = format!("{file} cut at {cut}");
            check(&what, &prefix[..cut], format, &opts);
            let frames: Vec<CsiFrame> = CsiReader::new(&prefix[..cut], "prefix", format, &opts)
                .unwrap()
                .filter_map(Result::ok)
                .collect();
            assert!(frames.len() <= full.len(), "{what}");
            for (a, b) in frames.iter().zip(&full) {
                if format == CsiFormat::Esp32 {
                    // A CSV row cut short can still parse (fewer values): only whole rows
                    // must match.
                    continue;
                }
                assert_eq!(a.csi, b.csi, "{what}: a frame before the cut changed");
            }
        }
    }
}
