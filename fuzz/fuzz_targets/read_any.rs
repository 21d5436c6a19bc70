//! Every file reader over arbitrary bytes: the first byte picks the format (or detection),
//! the rest is the file. A reader may return frames or an error, never panic, and never
//! loop without consuming input.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use wifi_densepose::csi::{detect_format, CsiFormat, CsiReader, ReadOptions};

const FORMATS: [CsiFormat; 5] = [
    CsiFormat::Intel5300,
    CsiFormat::Atheros,
    CsiFormat::Nexmon,
    CsiFormat::Esp32,
    CsiFormat::PicoScenes,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let format = match FORMATS.get(pick as usize % 6) {
        Some(f) => *f,
        None => match detect_format(file) {
            Ok(f) => f,
            Err(_) => return,
        },
    };
    let Ok(reader) = CsiReader::new(Cursor::new(file), "fuzz", format, &ReadOptions::default())
    else {
        return;
    };
    // At most one frame per input byte (plus slack): more means a reader that loops.
    let mut frames = 0usize;
    for item in reader {
        match item {
            Ok(frame) => {
                let _ = frame.csi.iter().map(|c| c.re + c.im).sum::<f32>();
                frames += 1;
                assert!(frames <= file.len() + 1, "more frames than input bytes");
            }
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
    // The whole-file path (a table with specialized decoders for some formats).
    if let Ok(reader) = CsiReader::new(Cursor::new(file), "fuzz", format, &ReadOptions::default())
    {
        let table = wifi_densepose::csi::read_table_from(reader, "fuzz", file.len() as u64);
        let _ = table.len();
    }
});
