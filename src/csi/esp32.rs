//! ESP32-CSI-Tool CSV logs (serial output of the ESP32 firmware).
//!
//! One row per packet:
//! `CSI_DATA,role,mac,rssi,rate,sig_mode,mcs,bandwidth,smoothing,not_sounding,
//! aggregation,stbc,fec_coding,sgi,noise_floor,ampdu_cnt,channel,secondary_channel,
//! local_timestamp,ant,sig_len,rx_state,real_time_set,real_timestamp,len,[i8 list]`.
//! A header line naming the columns is optional; when present, columns are found by
//! name (so Espressif's esp-csi layout, which lacks some of them, also reads), and the
//! CSI list may be quoted. Lines that do not start with `CSI_DATA` (boot messages on
//! the serial port) are skipped.
//!
//! The list holds signed bytes, two per subcarrier, **imaginary first** as the
//! ESP-IDF `wifi_csi_info_t` documentation states (CSIKit reads them the other way).
//! It normally holds `len` bytes, but ESP32-CSI-Tool builds of 2020 print only the
//! first 128 bytes (64 subcarriers, the LLTF) whatever `len` says: the sample file's
//! HT40 rows say `len` 384 and carry 128 values. The frame holds the values the row
//! holds (csiread does the same); `len` is kept in [`Esp32Meta::len`]. A list longer
//! than `len` is an error.
//! Subcarriers stay in the order the chip sends them (LLTF, then HT-LTF, then STBC
//! HT-LTF as enabled), so a file can mix rows of 64 (non-HT) and 192 (HT40) values;
//! every row becomes a frame of shape `(1, 1, len / 2)`.
//!
//! A row that cannot be parsed (a serial glitch, a list shorter than `len`) is reported
//! with its line number and reading continues with the next line.
//!
//! Without a header line, a row is read in ESP32-CSI-Tool's layout (25 fields before
//! the list) or, when its field count says so, in one of esp-csi's `csi_recv` layouts
//! (24 fields on the ESP32/S3/C3, 14 on the C5/C6): a live serial port is often opened
//! after the firmware printed its one header line. esp-csi's `id` / `seq` column (the
//! sender's packet counter) becomes the frame's sequence number, so lost packets show.
//!
//! [`LineParser`] is the one parser of these lines: the file reader and the live
//! sources (serial port, UDP datagrams of lines; `pipeline::serial`, `pipeline::udp`)
//! all hand it one line at a time.
//!
//! Frame timestamp: `local_timestamp` (the ESP32's microsecond clock) in seconds;
//! `real_timestamp` is kept in [`Esp32Meta`].

use std::io::Read;

use ndarray::Array3;
use num_complex::Complex32;

use super::error::CsiError;
use super::meta::{int, FrameMeta, MetaValue};
use super::source::{Line, Source};
use super::{CsiFormat, CsiFrame};

/// The longest line accepted. A real row is at most about 2.5 KB (25 fields and 384
/// values of up to 4 characters); the limit leaves room for longer layouts and keeps a
/// line without an end (binary data, a hole) from growing a buffer without bound.
pub const MAX_LINE: usize = 64 * 1024;

/// Column names of ESP32-CSI-Tool, in file order (the layout of header-less files).
pub const TOOL_COLUMNS: [&str; 26] = [
    "type",
    "role",
    "mac",
    "rssi",
    "rate",
    "sig_mode",
    "mcs",
    "bandwidth",
    "smoothing",
    "not_sounding",
    "aggregation",
    "stbc",
    "fec_coding",
    "sgi",
    "noise_floor",
    "ampdu_cnt",
    "channel",
    "secondary_channel",
    "local_timestamp",
    "ant",
    "sig_len",
    "rx_state",
    "real_time_set",
    "real_timestamp",
    "len",
    "CSI_DATA",
];

/// The row fields beside the CSI, as ESP32-CSI-Tool names them. Integer fields a
/// layout lacks are 0; `real_timestamp` is NaN then.
#[derive(Debug, Clone, PartialEq)]
pub struct Esp32Meta {
    /// 1-based line number in the file.
    pub line: u64,
    /// The logging firmware's role (`AP`, `STA`, `PASSIVE`); empty where the layout has
    /// no `role` column (esp-csi).
    pub role: String,
    /// MAC address of the transmitter, as the row writes it.
    pub mac: String,
    /// Received signal strength, dBm.
    pub rssi: i32,
    /// PHY rate code of a non-HT (11b/g) frame.
    pub rate: i32,
    /// PHY mode: 0 non-HT (11b/g), 1 HT (11n), 3 VHT (11ac).
    pub sig_mode: i32,
    /// Modulation and coding scheme index of an HT frame.
    pub mcs: i32,
    /// Channel width code: 0 is 20 MHz, 1 is 40 MHz.
    pub bandwidth: i32,
    /// 1 when the sender allowed channel smoothing (the CSI may then be smoothed).
    pub smoothing: i32,
    /// 1 when the frame is not a sounding frame.
    pub not_sounding: i32,
    /// 1 when the frame was part of an A-MPDU.
    pub aggregation: i32,
    /// Space-time block coding flag (1: STBC).
    pub stbc: i32,
    /// Forward error coding flag (1: LDPC).
    pub fec_coding: i32,
    /// Guard interval flag (1: short guard interval).
    pub sgi: i32,
    /// Noise floor, dBm as the chip reports it.
    pub noise_floor: i32,
    /// Number of subframes aggregated in the A-MPDU.
    pub ampdu_cnt: i32,
    /// Primary channel number.
    pub channel: i32,
    /// Secondary channel: 0 none, 1 above the primary, 2 below.
    pub secondary_channel: i32,
    /// The ESP32's receive clock, microseconds (the frame's timestamp in seconds).
    pub local_timestamp: u64,
    /// Receive antenna index.
    pub ant: i32,
    /// Length of the received packet in bytes, FCS included.
    pub sig_len: i32,
    /// Receive error state (0: no error).
    pub rx_state: i32,
    /// 1 when the firmware had a wall clock set for `real_timestamp`.
    pub real_time_set: i32,
    /// Wall-clock time of the row, seconds as the firmware prints it; NaN when the
    /// layout lacks it.
    pub real_timestamp: f64,
    /// The `len` field: CSI bytes the chip reported. The list in the file may be
    /// shorter (see the module notes); the frame holds what the list holds.
    pub len: u32,
}

impl Esp32Meta {
    pub(crate) fn fields(&self) -> Vec<(&'static str, MetaValue)> {
        vec![
            ("line", int(self.line as i64)),
            ("role", MetaValue::Text(self.role.clone())),
            ("mac", MetaValue::Text(self.mac.clone())),
            ("rssi", int(self.rssi)),
            ("rate", int(self.rate)),
            ("sig_mode", int(self.sig_mode)),
            ("mcs", int(self.mcs)),
            ("bandwidth", int(self.bandwidth)),
            ("smoothing", int(self.smoothing)),
            ("not_sounding", int(self.not_sounding)),
            ("aggregation", int(self.aggregation)),
            ("stbc", int(self.stbc)),
            ("fec_coding", int(self.fec_coding)),
            ("sgi", int(self.sgi)),
            ("noise_floor", int(self.noise_floor)),
            ("ampdu_cnt", int(self.ampdu_cnt)),
            ("channel", int(self.channel)),
            ("secondary_channel", int(self.secondary_channel)),
            ("local_timestamp", int(self.local_timestamp as i64)),
            ("ant", int(self.ant)),
            ("sig_len", int(self.sig_len)),
            ("rx_state", int(self.rx_state)),
            ("real_time_set", int(self.real_time_set)),
            ("real_timestamp", MetaValue::Float(self.real_timestamp)),
            ("len", int(self.len)),
        ]
    }
}

/// esp-csi `csi_recv` headers (examples/get-started), printed once at start: the
/// ESP32/S3/C3 layout, then the C5/C6 one. Rows without a header are matched against
/// them by their number of fields.
const ESP_CSI_HEADERS: [&str; 2] = [
    "type,id,mac,rssi,rate,sig_mode,mcs,bandwidth,smoothing,not_sounding,aggregation,stbc,\
     fec_coding,sgi,noise_floor,ampdu_cnt,channel,secondary_channel,local_timestamp,ant,\
     sig_len,rx_state,len,first_word,data",
    "type,seq,mac,rssi,rate,noise_floor,fft_gain,agc_gain,channel,local_timestamp,sig_len,\
     rx_state,len,first_word,data",
];

/// Column positions for the fields the reader uses.
#[derive(Debug, Clone)]
struct Layout {
    /// Index of each of `TOOL_COLUMNS[..25]` in a row, if the layout has it.
    index: [Option<usize>; 25],
    /// Number of fields before the CSI list.
    n_fields: usize,
    /// Index of esp-csi's packet counter (`id` or `seq`), if the layout has one.
    seq: Option<usize>,
}

impl Layout {
    fn tool() -> Self {
        let mut index = [None; 25];
        for (i, slot) in index.iter_mut().enumerate() {
            *slot = Some(i);
        }
        Layout {
            index,
            n_fields: 25,
            seq: None,
        }
    }

    /// The known header-less layout with `n_fields` fields before the list.
    fn known(n_fields: usize) -> Option<Self> {
        ESP_CSI_HEADERS
            .iter()
            .filter_map(|h| Layout::from_header(h))
            .find(|l| l.n_fields == n_fields)
    }

    /// A layout from a header line, or `None` if the line is not a header.
    fn from_header(line: &str) -> Option<Self> {
        let names: Vec<&str> = line.split(',').map(|s| s.trim()).collect();
        if names.first() != Some(&"type") || !names.contains(&"len") {
            return None;
        }
        let mut index = [None; 25];
        for (slot, want) in index.iter_mut().zip(TOOL_COLUMNS.iter()) {
            *slot = names.iter().position(|n| n == want);
        }
        // esp-csi calls the list "data" and has a "first_word" field before it.
        Some(Layout {
            index,
            n_fields: names.len() - 1,
            seq: names.iter().position(|n| *n == "id" || *n == "seq"),
        })
    }
}

/// What one line of an ESP32 log is.
#[derive(Debug)]
pub enum LineKind {
    /// A `CSI_DATA` row, decoded.
    Frame(CsiFrame),
    /// A header naming the columns (it sets the layout of the rows after it).
    Header,
    /// Anything else: boot messages, logs of the firmware, empty lines.
    Other,
    /// A `CSI_DATA` row that does not decode; what is wrong with it.
    Bad(String),
}

/// The parser of ESP32 CSI log lines, for files and live sources alike. It remembers
/// the layout of the last header line seen.
#[derive(Debug, Clone)]
pub struct LineParser {
    layout: Layout,
}

impl Default for LineParser {
    fn default() -> Self {
        LineParser {
            layout: Layout::tool(),
        }
    }
}

impl LineParser {
    /// Classifies and decodes one line (its line ending may still be attached).
    /// `line_no` (1-based) is kept in the frame's metadata.
    pub fn parse(&mut self, line: &[u8], line_no: u64) -> LineKind {
        let Ok(text) = std::str::from_utf8(line) else {
            return if line.starts_with(b"CSI_DATA") {
                LineKind::Bad("not UTF-8 text".into())
            } else {
                LineKind::Other
            };
        };
        let text = text.trim_start_matches('\u{feff}').trim();
        // (A header's first column is "type": checked first, so data rows do not pay
        // for splitting every line into columns.)
        if let Some(layout) = text
            .starts_with("type")
            .then(|| Layout::from_header(text))
            .flatten()
        {
            self.layout = layout;
            return LineKind::Header;
        }
        if !text.starts_with("CSI_DATA") {
            return LineKind::Other;
        }
        match parse_row(text, &self.layout, line_no) {
            Ok(frame) => LineKind::Frame(frame),
            Err(problem) => LineKind::Bad(problem),
        }
    }
}

/// Streams frames from an ESP32 CSV log; one item per `CSI_DATA` row.
pub struct Esp32Reader<R: Read> {
    src: Source<R>,
    parser: LineParser,
    line_no: u64,
    line: Vec<u8>,
    done: bool,
    recoverable: bool,
}

/// The format table's view of this reader (`super::formats`).
impl<R: Read> super::formats::FormatReader for Esp32Reader<R> {
    fn offset(&self) -> u64 {
        Esp32Reader::offset(self)
    }
}

impl<R: Read> Esp32Reader<R> {
    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.src.offset
    }

    /// Reads the lines of `reader`, naming it `name` in errors.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        Esp32Reader {
            src: Source::new(reader, name.into()),
            parser: LineParser::default(),
            line_no: 0,
            line: Vec::new(),
            done: false,
            recoverable: false,
        }
    }

    fn next_frame(&mut self) -> Result<Option<CsiFrame>, CsiError> {
        loop {
            let start = self.src.offset;
            let mut line = std::mem::take(&mut self.line);
            let read = self.src.read_line(&mut line, MAX_LINE);
            self.line = line;
            self.line_no += 1;
            match read? {
                Line::Eof => return Ok(None),
                Line::Read => {}
                Line::TooLong(len) => {
                    // The line was consumed, so the next one is still readable.
                    self.recoverable = true;
                    return Err(self.src.malformed(
                        start,
                        format!(
                            "line {}: {len} bytes without a line end, over the {MAX_LINE}-byte \
                             limit of a CSI log line (binary data in a text log?); skipped",
                            self.line_no
                        ),
                    ));
                }
            }
            match self.parser.parse(&self.line, self.line_no) {
                LineKind::Frame(frame) => return Ok(Some(frame)),
                LineKind::Header | LineKind::Other => continue,
                LineKind::Bad(problem) => {
                    self.recoverable = true;
                    return Err(self
                        .src
                        .malformed(start, format!("line {}: {problem}", self.line_no)));
                }
            }
        }
    }
}

super::source::frame_iterator!(Esp32Reader);

/// The fast path for the CSI list: space- or comma-separated decimal integers in the
/// int8 range, as every tool prints them. `false` (and `out` partly filled) for
/// anything else; the caller then parses token by token and names what is wrong.
fn parse_i8_list(list: &[u8], out: &mut Vec<i8>) -> bool {
    let mut i = 0;
    while i < list.len() {
        let b = list[i];
        if b == b' ' || b == b',' {
            i += 1;
            continue;
        }
        let negative = b == b'-';
        if negative {
            i += 1;
        }
        let start = i;
        let mut v: i32 = 0;
        while i < list.len() && list[i].is_ascii_digit() && i - start < 4 {
            v = v * 10 + (list[i] - b'0') as i32;
            i += 1;
        }
        let ends = i == list.len() || list[i] == b' ' || list[i] == b',';
        if i == start || !ends {
            return false;
        }
        let v = if negative { -v } else { v };
        match i8::try_from(v) {
            Ok(v) => out.push(v),
            Err(_) => return false,
        }
    }
    true
}

fn parse_row(text: &str, layout: &Layout, line: u64) -> Result<CsiFrame, String> {
    let open = text.find('[').ok_or("no '[' opening the CSI list")?;
    let close = text[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or("the CSI list has no closing ']' (line cut short?)")?;
    let head = text[..open].trim_end().trim_end_matches('"');
    let fields: Vec<&str> = head.split(',').map(|s| s.trim()).collect();
    // `head` ends with the comma before the list, so the last element is empty.
    let fields = match fields.split_last() {
        Some((&"", rest)) => rest,
        _ => &fields[..],
    };
    let fallback;
    let layout = if fields.len() == layout.n_fields {
        layout
    } else if let Some(known) = Layout::known(fields.len()) {
        // A header-less esp-csi row (the port was opened after its header went by).
        fallback = known;
        &fallback
    } else {
        return Err(format!(
            "{} fields before the CSI list, expected {} for this layout",
            fields.len(),
            layout.n_fields
        ));
    };
    let get = |k: usize| layout.index[k].and_then(|i| fields.get(i).copied());
    let num = |k: usize| -> Result<i32, String> {
        match get(k) {
            None => Ok(0),
            Some(s) => s
                .parse::<i32>()
                .map_err(|_| format!("field {} = {s:?} is not an integer", TOOL_COLUMNS[k])),
        }
    };
    let list = &text[open + 1..close];
    let mut values = Vec::with_capacity(384);
    if !parse_i8_list(list.as_bytes(), &mut values) {
        values.clear();
        for tok in list.split([' ', ',']).filter(|t| !t.is_empty()) {
            let v: i32 = tok
                .parse()
                .map_err(|_| format!("CSI value {tok:?} is not an integer"))?;
            let v =
                i8::try_from(v).map_err(|_| format!("CSI value {v} is outside the int8 range"))?;
            values.push(v);
        }
    }
    let len = match get(24) {
        Some(s) => s
            .parse::<u32>()
            .map_err(|_| format!("field len = {s:?} is not an integer"))?,
        None => values.len() as u32,
    };
    // ESP32-CSI-Tool releases of 2020 print only the first 128 bytes whatever `len`
    // says (the sample file: len 384, 128 values), so fewer values than `len` is the
    // tool's normal output; more would mean a corrupt line.
    if values.len() > len as usize {
        return Err(format!(
            "the CSI list has {} values but len says only {len}",
            values.len()
        ));
    }
    if values.is_empty() || values.len() % 2 != 0 {
        return Err(format!(
            "the CSI list has {} values, not a positive even number",
            values.len()
        ));
    }
    let csi: Vec<Complex32> = values
        .chunks_exact(2)
        .map(|p| Complex32::new(p[1] as f32, p[0] as f32))
        .collect();
    let n = csi.len();
    let local_timestamp = match get(18) {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| format!("field local_timestamp = {s:?} is not an integer"))?,
        None => 0,
    };
    let real_timestamp = match get(23) {
        Some(s) => s
            .parse::<f64>()
            .map_err(|_| format!("field real_timestamp = {s:?} is not a number"))?,
        None => f64::NAN,
    };
    let meta = Esp32Meta {
        line,
        role: get(1).unwrap_or("").to_string(),
        mac: get(2).unwrap_or("").to_string(),
        rssi: num(3)?,
        rate: num(4)?,
        sig_mode: num(5)?,
        mcs: num(6)?,
        bandwidth: num(7)?,
        smoothing: num(8)?,
        not_sounding: num(9)?,
        aggregation: num(10)?,
        stbc: num(11)?,
        fec_coding: num(12)?,
        sgi: num(13)?,
        noise_floor: num(14)?,
        ampdu_cnt: num(15)?,
        channel: num(16)?,
        secondary_channel: num(17)?,
        local_timestamp,
        ant: num(19)?,
        sig_len: num(20)?,
        rx_state: num(21)?,
        real_time_set: num(22)?,
        real_timestamp,
        len,
    };
    // esp-csi prints its u32 counter with %d, so it reads negative past 2^31: the
    // wrap to u32 undoes that.
    let sequence = match layout.seq.and_then(|i| fields.get(i)) {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| format!("field id = {s:?} is not an integer"))? as u32
                as u64,
        ),
        None => None,
    };
    Ok(CsiFrame {
        timestamp: local_timestamp as f64 * 1e-6,
        csi: Array3::from_shape_vec((1, 1, n), csi).expect("n values"),
        rssi: get(3).map(|_| meta.rssi as f32),
        noise: get(14).map(|_| meta.noise_floor as f32),
        format: CsiFormat::Esp32,
        channel: u16::try_from(meta.channel).ok().filter(|&c| c > 0),
        bandwidth_mhz: Some(if meta.bandwidth == 1 { 40 } else { 20 }),
        sequence,
        meta: FrameMeta::Esp32(Box::new(meta)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "CSI_DATA,AP,3C:71:BF:6D:2A:78,-73,11,1,0,1,1,1,0,0,0,0,-93,0,1,1,80272146,0,101,0,0,80.363225,4,[101 -48 5 0 ]";

    #[test]
    fn imaginary_first_with_and_without_header() {
        let header = TOOL_COLUMNS.join(",");
        for text in [format!("{ROW}\n"), format!("{header}\n{ROW}\r\n")] {
            let frames: Vec<_> = Esp32Reader::new(text.as_bytes(), "mem")
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(frames.len(), 1);
            let f = &frames[0];
            assert_eq!(f.csi.shape(), &[1, 1, 2]);
            assert_eq!(f.csi[[0, 0, 0]], Complex32::new(-48.0, 101.0));
            assert_eq!(f.csi[[0, 0, 1]], Complex32::new(0.0, 5.0));
            assert!((f.timestamp - 80.272146).abs() < 1e-12);
            assert_eq!(f.rssi, Some(-73.0));
        }
    }

    #[test]
    fn esp_csi_rows_read_without_their_header() {
        // esp-csi csi_recv: the ESP32/S3/C3 layout (24 fields, a quoted comma list) and
        // the C5/C6 one (14 fields); the counter is printed with %d (negative past 2^31).
        let classic = "CSI_DATA,-2,1a:00:00:00:00:00,-30,11,1,6,1,0,1,0,1,0,0,-93,0,13,2,\
                       2751923,0,67,0,4,1,\"[67,48,4,0]\"";
        let c6 = "CSI_DATA,41,1a:00:00:00:00:00,-30,11,-93,3,20,13,2751923,67,0,4,0,\"[1,2,3,4]\"";
        let mut p = LineParser::default();
        let LineKind::Frame(f) = p.parse(classic.as_bytes(), 1) else {
            panic!("{:?}", p.parse(classic.as_bytes(), 1))
        };
        assert_eq!(f.csi.shape(), &[1, 1, 2]);
        assert_eq!(f.csi[[0, 0, 0]], Complex32::new(48.0, 67.0));
        assert_eq!(f.sequence, Some(u32::MAX as u64 - 1));
        assert_eq!((f.rssi, f.channel), (Some(-30.0), Some(13)));
        assert!((f.timestamp - 2.751923).abs() < 1e-9);
        let LineKind::Frame(f) = p.parse(c6.as_bytes(), 2) else {
            panic!("C5/C6 row")
        };
        assert_eq!(f.sequence, Some(41));
        assert_eq!(f.noise, Some(-93.0));
        assert_eq!(f.channel, Some(13));
        // The tool's own rows still read, without a sequence.
        let LineKind::Frame(f) = p.parse(ROW.as_bytes(), 3) else {
            panic!("tool row")
        };
        assert_eq!(f.sequence, None);
        assert!(matches!(
            p.parse(b"I (312) wifi: mode : sta", 4),
            LineKind::Other
        ));
        assert!(
            matches!(p.parse(b"CSI_DATA,1,2,[1 2]", 5), LineKind::Bad(m) if m.contains("3 fields"))
        );
        assert!(matches!(p.parse(b"CSI_DATA\xff", 6), LineKind::Bad(_)));
        assert!(matches!(p.parse(b"\xff\xfe", 7), LineKind::Other));
        let header = ESP_CSI_HEADERS[1].replace(' ', "");
        assert!(matches!(p.parse(header.as_bytes(), 8), LineKind::Header));
    }

    #[test]
    fn bad_line_is_reported_with_line_number_and_reading_goes_on() {
        let text = format!("boot message\n{}\n{ROW}\n", &ROW[..60]);
        let out: Vec<_> = Esp32Reader::new(text.as_bytes(), "mem").collect();
        assert_eq!(out.len(), 2);
        let msg = out[0].as_ref().unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains("byte 13"), "{msg}");
        assert!(out[1].is_ok());
    }

    #[test]
    fn the_fast_list_parser_agrees_with_token_parsing() {
        for list in [
            "1 -2 3", "-128,127", " 5  6 ", "", "+4", "1000", "-", "00001", "12a", "-0",
        ] {
            let mut fast = Vec::new();
            let slow: Result<Vec<i8>, ()> = list
                .split([' ', ','])
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse::<i32>()
                        .ok()
                        .and_then(|v| i8::try_from(v).ok())
                        .ok_or(())
                })
                .collect();
            if parse_i8_list(list.as_bytes(), &mut fast) {
                assert_eq!(Ok(fast), slow, "{list:?}");
            }
        }
        let mut v = Vec::new();
        assert!(parse_i8_list(b"1 -2 3,-128 127", &mut v) && v == [1, -2, 3, -128, 127]);
    }

    #[test]
    fn truncated_and_random_input_never_panics() {
        let text = format!("{ROW}\n{ROW}\n");
        for cut in 0..text.len() {
            let _: Vec<_> = Esp32Reader::new(&text.as_bytes()[..cut], "mem").collect();
        }
        let mut seed = 0x1234_5678_9abc_def0u64;
        for round in 0..2000 {
            let mut b = text.clone().into_bytes();
            for _ in 0..(1 + round % 6) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 40) as u8;
            }
            let _: Vec<_> = Esp32Reader::new(&b[..], "mem").collect();
        }
    }
}
