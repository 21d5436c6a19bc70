//! Every frame of every real recording in `../shared/data/csi` against the reference
//! figures in `SUMMARY.json` and the MATLAB outputs of the official readers.
//! Missing data is a failure, never a skip.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use num_complex::Complex32;
use serde_json::Value;
use wifi_densepose::csi::atheros::AtherosMeta;
use wifi_densepose::csi::esp32::Esp32Meta;
use wifi_densepose::csi::intel5300::{get_scaled_csi, Intel5300Meta};
use wifi_densepose::csi::nexmon::{NexmonHeader, NexmonMeta, NexmonOptions};
use wifi_densepose::csi::picoscenes::PicoScenesMeta;
use wifi_densepose::csi::{
    detect_format, read_all, read_all_with, read_table_from, read_table_with, CsiError, CsiFormat,
    CsiFrame, CsiReader, FrameMeta, ReadOptions, Recording,
};

use common::mat5::{self, Mat};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/csi")
}

fn data(name: &str) -> PathBuf {
    let p = data_dir().join(name);
    assert!(
        p.is_file(),
        "reference recording {} is missing: the CSI reader tests need the shared data folder \
         ../shared/data/csi next to the crate (see SOURCES.md there)",
        p.display()
    );
    p
}

fn summary(file: &str) -> Value {
    let text = std::fs::read_to_string(data("SUMMARY.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all.get(file)
        .unwrap_or_else(|| panic!("SUMMARY.json has no entry for {file}"))
        .clone()
}

fn read_clean(file: &str) -> Recording {
    let rec = read_all(data(file), None).unwrap();
    assert!(
        rec.errors.is_empty(),
        "{file}: unexpected errors {:?}",
        rec.errors
    );
    rec
}

fn pairs(v: &Value) -> Vec<Complex32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| Complex32::new(p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32))
        .collect()
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{v} is not an integer"))
}

fn hex(v: &Value) -> i64 {
    i64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn int_set(v: &Value) -> BTreeSet<i64> {
    v.as_array().unwrap().iter().map(int).collect()
}

fn intel(f: &CsiFrame) -> &Intel5300Meta {
    match &f.meta {
        FrameMeta::Intel5300(m) => m,
        other => panic!("not an Intel frame: {other:?}"),
    }
}

fn nexmon(f: &CsiFrame) -> &NexmonMeta {
    match &f.meta {
        FrameMeta::Nexmon(m) => m,
        other => panic!("not a nexmon frame: {other:?}"),
    }
}

fn mat(name: &str) -> std::collections::BTreeMap<String, Mat> {
    mat5::load(&std::fs::read(data(&format!("reference/{name}"))).unwrap())
}

#[test]
fn intel5300_sample_matches_matlab_read_bf_file_and_get_scaled_csi() {
    let file = "intel5300_log.all_csi.6.7.6.dat";
    let s = summary(file);
    let rec = read_clean(file);
    assert_eq!(rec.format, CsiFormat::Intel5300);
    assert_eq!(rec.len() as i64, int(&s["packets"]));
    let nrx: BTreeSet<i64> = rec.frames.iter().map(|f| f.n_rx() as i64).collect();
    let ntx: BTreeSet<i64> = rec.frames.iter().map(|f| f.n_tx() as i64).collect();
    assert_eq!(nrx, int_set(&s["Nrx"]));
    assert_eq!(ntx, int_set(&s["Ntx"]));
    assert!(rec
        .frames
        .iter()
        .all(|f| f.n_subcarriers() as i64 == int(&s["subcarriers"])));
    for f in &rec.frames {
        assert_eq!(
            intel(f).timestamp_low as i64,
            int(&s["timestamp_low_first_us"])
        );
        assert_eq!(f.timestamp, 4e-6);
    }
    let first = intel(&rec.frames[0]);
    assert_eq!(first.bfee_count as i64, int(&s["bfee_count_first"]));
    assert_eq!(
        intel(rec.frames.last().unwrap()).bfee_count as i64,
        int(&s["bfee_count_last"])
    );
    let rssi: Vec<i64> = s["rssi_abc_0"]
        .as_array()
        .unwrap()
        .iter()
        .map(int)
        .collect();
    assert_eq!(
        [first.rssi_a, first.rssi_b, first.rssi_c]
            .map(|v| v as i64)
            .to_vec(),
        rssi
    );
    assert_eq!(first.noise as i64, int(&s["noise_0"]));
    assert_eq!(rec.frames[0].noise, None, "noise -127 means not measured");
    assert_eq!(first.agc as i64, int(&s["agc_0"]));
    let perm0: Vec<i64> = s["perm_0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| int(p) + 1)
        .collect();
    assert_eq!(first.perm.map(|p| p as i64).to_vec(), perm0);
    assert_eq!(first.rate as i64, hex(&s["rate_0"]));
    let want = pairs(&s["first_pkt_csiread_sc0to3_rx0_tx0"]);
    for (sc, w) in want.iter().enumerate() {
        assert_eq!(rec.frames[0].csi[[0, 0, sc]], *w);
    }
    let scaled0 = get_scaled_csi(&rec.frames[0].csi, first);
    for (sc, w) in s["first_pkt_scaled_sc0to1_rx0_tx0"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let got = scaled0[[0, 0, sc]];
        assert!(
            (got.re - w[0].as_f64().unwrap()).abs() < 1e-12
                && (got.im - w[1].as_f64().unwrap()).abs() < 1e-12
        );
    }

    // Every value of every frame against MATLAB read_bf_file / get_scaled_csi.
    let m = mat("intel5300_log.all_csi.6.7.6.matlab_read_bf_file.mat");
    let (raw, scaled) = (&m["csi"], &m["csi_scaled"]);
    assert_eq!(raw.dims(), &[29, 1]);
    for (k, f) in rec.frames.iter().enumerate() {
        let st = raw.cell(k);
        let meta = intel(f);
        for (field, value) in [
            ("timestamp_low", meta.timestamp_low as f64),
            ("bfee_count", meta.bfee_count as f64),
            ("Nrx", meta.n_rx as f64),
            ("Ntx", meta.n_tx as f64),
            ("rssi_a", meta.rssi_a as f64),
            ("rssi_b", meta.rssi_b as f64),
            ("rssi_c", meta.rssi_c as f64),
            ("noise", meta.noise as f64),
            ("agc", meta.agc as f64),
            ("rate", meta.rate as f64),
        ] {
            assert_eq!(st.field(field).scalar(), value, "frame {k} field {field}");
        }
        assert_eq!(
            st.field("perm").reals(),
            meta.perm.map(|p| p as f64).to_vec(),
            "frame {k} perm"
        );
        let mcsi = st.field("csi");
        let (nt, nr) = (f.n_tx(), f.n_rx());
        assert_eq!(mcsi.dims(), &[nt, nr, 30], "frame {k} shape");
        let mvals = mcsi.complex();
        let svals = scaled.cell(k).complex();
        let ours_scaled = get_scaled_csi(&f.csi, meta);
        for sc in 0..30 {
            for rx in 0..nr {
                for tx in 0..nt {
                    let i = tx + nt * (rx + nr * sc);
                    let got = f.csi[[tx, rx, sc]];
                    assert_eq!(
                        (got.re as f64, got.im as f64),
                        mvals[i],
                        "frame {k} tx {tx} rx {rx} sc {sc}"
                    );
                    let gs = ours_scaled[[tx, rx, sc]];
                    let (wr, wi) = svals[i];
                    let tol = 1e-12 * (1.0 + wr.abs().max(wi.abs()));
                    assert!(
                        (gs.re - wr).abs() <= tol && (gs.im - wi).abs() <= tol,
                        "frame {k} scaled tx {tx} rx {rx} sc {sc}: {gs} vs ({wr}, {wi})"
                    );
                }
            }
        }
    }
}

#[test]
fn intel5300_two_antennas_are_not_permuted_as_in_read_bf_file() {
    let file = "intel5300_walk_1590161182.dat";
    let s = summary(file);
    let rec = read_clean(file);
    assert_eq!(rec.len() as i64, int(&s["packets"]));
    for f in &rec.frames {
        assert_eq!(f.csi.shape(), &[2, 2, 30]);
        assert!(!intel(f).permuted);
    }
    let (a, z) = (intel(&rec.frames[0]), intel(rec.frames.last().unwrap()));
    assert_eq!(a.timestamp_low as i64, int(&s["timestamp_low_first_us"]));
    assert_eq!(z.timestamp_low as i64, int(&s["timestamp_low_last_us"]));
    let span = rec.frames.last().unwrap().timestamp - rec.frames[0].timestamp;
    assert!((span - int(&s["span_us"]) as f64 * 1e-6).abs() < 1e-9);
    assert_eq!(a.bfee_count as i64, int(&s["bfee_count_first"]));
    assert_eq!(z.bfee_count as i64, int(&s["bfee_count_last"]));
    assert_eq!(
        (a.rssi_a, a.rssi_b, a.rssi_c, a.noise, a.agc),
        (40, 40, 0, -82, 40)
    );
    assert_eq!(a.noise as i64, int(&s["noise_0"]));
    assert_eq!(a.rate as i64, hex(&s["rate_0"]));
    // Official behaviour (no permutation) is what CSIKit reports...
    for (sc, w) in pairs(&s["first_pkt_CSIKit_sc0to3_rx0_tx0"])
        .iter()
        .enumerate()
    {
        assert_eq!(rec.frames[0].csi[[0, 0, sc]], *w);
    }
    // ...and csiread's permuted slot 0 is our slot 1 (perm [2 1 3]).
    for (sc, w) in pairs(&s["first_pkt_csiread_sc0to3_rx0_tx0"])
        .iter()
        .enumerate()
    {
        assert_eq!(rec.frames[0].csi[[0, 1, sc]], *w);
    }
    let scaled = get_scaled_csi(&rec.frames[0].csi, a);
    for (sc, w) in s["first_pkt_scaled_sc0to1_rx0_tx0"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let got = scaled[[0, 1, sc]];
        assert!(
            (got.re - w[0].as_f64().unwrap()).abs() < 1e-9
                && (got.im - w[1].as_f64().unwrap()).abs() < 1e-9
        );
    }
}

fn check_pcap_time(f: &CsiFrame, text: &Value) {
    let (sec, usec) = text.as_str().unwrap().split_once('.').unwrap();
    let m = nexmon(f);
    assert_eq!(m.pcap_ts_sec as i64, sec.parse::<i64>().unwrap());
    assert_eq!(m.pcap_ts_frac as i64, usec.parse::<i64>().unwrap());
    assert!((f.timestamp - text.as_str().unwrap().parse::<f64>().unwrap()).abs() < 1e-6);
}

#[test]
fn nexmon_bcm4358_matches_matlab_csireader_csi_buff() {
    let file = "nexmon_bcm4358_example.pcap";
    let s = summary(file);
    let rec = read_clean(file);
    assert_eq!(rec.format, CsiFormat::Nexmon);
    assert_eq!(rec.len() as i64, int(&s["packets"]));
    let cores: BTreeSet<i64> = rec.frames.iter().map(|f| nexmon(f).core as i64).collect();
    let streams: BTreeSet<i64> = rec
        .frames
        .iter()
        .map(|f| nexmon(f).spatial_stream as i64)
        .collect();
    assert_eq!(cores, int_set(&s["cores"]));
    assert_eq!(streams, int_set(&s["spatial_streams"]));
    for f in &rec.frames {
        let m = nexmon(f);
        assert_eq!(f.csi.shape(), &[1, 1, int(&s["subcarriers"]) as usize]);
        assert_eq!(m.chanspec as i64, hex(&s["chanspec_0"]));
        assert_eq!(m.chip_version as i64, hex(&s["chip_version_0"]));
        assert_eq!(m.header, NexmonHeader::Classic);
        assert_eq!(
            (f.bandwidth_mhz, f.channel, f.rssi),
            (Some(80), Some(155), None)
        );
    }
    check_pcap_time(&rec.frames[0], &s["pcap_ts_first"]);
    check_pcap_time(rec.frames.last().unwrap(), &s["pcap_ts_last"]);
    let mut first8 = pairs(&s["first_pkt_raw_fft_order_idx0to3"]);
    first8.extend(pairs(&s["first_pkt_raw_fft_order_idx4to7"]));
    for (i, w) in first8.iter().enumerate() {
        assert_eq!(rec.frames[0].csi[[0, 0, i]], *w);
    }
    let m = mat("nexmon_bcm4358_example.matlab_csireader.mat");
    let buff = &m["csi_buff"];
    assert_eq!(buff.dims(), &[4, 256]);
    let vals = buff.complex();
    for (k, f) in rec.frames.iter().enumerate() {
        for i in 0..256 {
            let got = f.csi[[0, 0, i]];
            assert_eq!(
                (got.re as f64, got.im as f64),
                vals[k + 4 * i],
                "packet {k} subcarrier {i}"
            );
        }
    }
    let opts = ReadOptions {
        nexmon: NexmonOptions {
            fftshift: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let shifted = read_all_with(data(file), None, &opts).unwrap();
    for (i, w) in pairs(&s["first_pkt_fftshifted_idx0to3"]).iter().enumerate() {
        assert_eq!(shifted.frames[0].csi[[0, 0, i]], *w);
    }
}

#[test]
fn nexmon_bcm43455c0_newer_header() {
    let file = "nexmon_bcm43455c0_walk_1597159475.pcap";
    let s = summary(file);
    let rec = read_clean(file);
    assert_eq!(rec.len() as i64, int(&s["packets"]));
    for f in &rec.frames {
        let m = nexmon(f);
        assert_eq!(f.csi.shape(), &[1, 1, 256]);
        assert!(int_set(&s["cores"]).contains(&(m.core as i64)));
        assert!(int_set(&s["spatial_streams"]).contains(&(m.spatial_stream as i64)));
        assert_eq!(m.chanspec as i64, hex(&s["chanspec_0"]));
        assert_eq!(m.chip_version as i64, hex(&s["chip_version_0"]));
        assert_eq!(m.header, NexmonHeader::WithRssi);
        assert_eq!(m.padding, 0);
        assert_eq!((f.bandwidth_mhz, f.channel), (Some(80), Some(42)));
    }
    check_pcap_time(&rec.frames[0], &s["pcap_ts_first"]);
    check_pcap_time(rec.frames.last().unwrap(), &s["pcap_ts_last"]);
    let m0 = nexmon(&rec.frames[0]);
    assert_eq!(m0.rssi.map(i64::from), Some(int(&s["rssi_0"])));
    assert_eq!(rec.frames[0].rssi, Some(int(&s["rssi_0"]) as f32));
    assert_eq!(m0.frame_control.map(i64::from), Some(hex(&s["fc_0"])));
    let mut first8 = pairs(&s["first_pkt_raw_fft_order_idx0to3"]);
    first8.extend(pairs(&s["first_pkt_raw_fft_order_idx4to7"]));
    for (i, w) in first8.iter().enumerate() {
        assert_eq!(rec.frames[0].csi[[0, 0, i]], *w);
    }
    let opts = ReadOptions {
        nexmon: NexmonOptions {
            fftshift: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let shifted = read_all_with(data(file), None, &opts).unwrap();
    for (i, w) in pairs(&s["first_pkt_fftshifted_idx0to3"]).iter().enumerate() {
        assert_eq!(shifted.frames[0].csi[[0, 0, i]], *w);
    }
    let span = rec.frames.last().unwrap().timestamp - rec.frames[0].timestamp;
    assert!((span - s["span_s"].as_f64().unwrap()).abs() < 1e-6);
}

#[test]
fn esp32_rows_ht40_and_non_ht() {
    let file = "esp32_example_csi.csv";
    let s = summary(file);
    let rec = read_clean(file);
    assert_eq!(rec.format, CsiFormat::Esp32);
    assert_eq!(rec.len() as i64, int(&s["packets"]));
    let meta = |f: &CsiFrame| -> Esp32Meta {
        match &f.meta {
            FrameMeta::Esp32(m) => (**m).clone(),
            other => panic!("{other:?}"),
        }
    };
    for (k, f) in rec.frames.iter().enumerate() {
        let m = meta(f);
        // SUMMARY's subcarriers_per_row is len / 2 (192 for HT40 rows), but the tool that
        // wrote this file printed only the first 128 bytes of every row: 64 subcarriers
        // are all the file holds (csiread also returns 64 per row).
        assert_eq!(
            m.len as i64,
            2 * int(&s["subcarriers_per_row"][k]),
            "row {k}"
        );
        assert_eq!(f.n_subcarriers(), 64, "row {k}");
        assert_eq!(m.sig_mode as i64, int(&s["sig_mode"][k]));
        assert_eq!(m.bandwidth as i64, int(&s["bandwidth"][k]));
        assert_eq!(m.secondary_channel as i64, int(&s["secondary_channel"][k]));
        assert_eq!(m.stbc as i64, int(&s["stbc"][k]));
        assert!(int_set(&s["channel"]).contains(&(m.channel as i64)));
        assert!(int_set(&s["csi_len_bytes"]).contains(&(m.len as i64)));
    }
    let (a, z) = (meta(&rec.frames[0]), meta(rec.frames.last().unwrap()));
    assert_eq!(
        a.local_timestamp as i64,
        int(&s["local_timestamp_first_us"])
    );
    assert_eq!(z.local_timestamp as i64, int(&s["local_timestamp_last_us"]));
    assert_eq!(
        a.real_timestamp,
        s["real_timestamp_first"].as_f64().unwrap()
    );
    assert_eq!(z.real_timestamp, s["real_timestamp_last"].as_f64().unwrap());
    assert_eq!(a.rssi as i64, int(&s["rssi_0"]));
    assert_eq!(a.mac, s["mac_0"].as_str().unwrap());
    for (i, w) in pairs(&s["first_row_first6"]).iter().enumerate() {
        assert_eq!(rec.frames[0].csi[[0, 0, i]], *w);
    }
    assert_eq!(rec.shapes(), vec![[1, 1, 64]]);
}

#[test]
fn picoscenes_qca9300() {
    let file = "picoscenes_rx_by_qca9300.csi";
    let s = summary(file);
    let rec = read_clean(file);
    assert_eq!(rec.format, CsiFormat::PicoScenes);
    assert_eq!(rec.len() as i64, int(&s["frames"]));
    let meta = |f: &CsiFrame| -> PicoScenesMeta {
        match &f.meta {
            FrameMeta::PicoScenes(m) => (**m).clone(),
            other => panic!("{other:?}"),
        }
    };
    for f in &rec.frames {
        let m = meta(f);
        assert_eq!(m.device_type as i64, hex(&s["DeviceType"]));
        assert_eq!(m.cbw as i64, int(&s["CBW"]));
        assert_eq!(m.carrier_freq as i64, int(&s["CarrierFreq"]));
        assert_eq!(m.num_tones as i64, int(&s["NumTones"]));
        assert_eq!(f.n_subcarriers() as i64, int(&s["NumTones"]));
        assert!(int_set(&s["NumTx"]).contains(&(f.n_tx() as i64)));
        assert!(int_set(&s["NumRx"]).contains(&(f.n_rx() as i64)));
        let first3: Vec<i64> = m.subcarrier_indices[..3]
            .iter()
            .map(|&v| v as i64)
            .collect();
        assert_eq!(
            first3,
            s["subcarrier_index_first3"]
                .as_array()
                .unwrap()
                .iter()
                .map(int)
                .collect::<Vec<_>>()
        );
    }
    let (a, z) = (meta(&rec.frames[0]), meta(rec.frames.last().unwrap()));
    assert_eq!(a.tstamp as i64, int(&s["RxSBasic_Timestamp_first"]));
    assert_eq!(z.tstamp as i64, int(&s["RxSBasic_Timestamp_last"]));
    assert_eq!(a.rssi as i64, int(&s["rssi_0"]));
    assert_eq!(rec.frames[0].rssi, Some(int(&s["rssi_0"]) as f32));
    assert_eq!(a.mcs as i64, int(&s["mcs_0"]));
    for (i, w) in pairs(&s["first_frame_csiread_tone0to3_rx0_tx0"])
        .iter()
        .enumerate()
    {
        assert_eq!(rec.frames[0].csi[[0, 0, i]], *w);
    }
}

#[test]
fn atheros_keeps_every_complete_record() {
    let file = "atheros_ath_csi_1.dat";
    let rec = read_clean(file);
    assert_eq!(rec.format, CsiFormat::Atheros);
    // SOURCES.md: 401 records; the official read_log_file.m returns 399 of them.
    assert_eq!(rec.len(), 401);
    let mut offset_sum = 0usize;
    for f in &rec.frames {
        assert_eq!(f.csi.shape(), &[2, 3, 56], "nc=2 tx, nr=3 rx, 56 tones");
        let FrameMeta::Atheros(m) = &f.meta else {
            panic!()
        };
        let m: &AtherosMeta = m;
        assert!(!m.big_endian);
        assert_eq!(
            (m.nr, m.nc, m.num_tones, m.channel, m.csi_len),
            (3, 2, 56, 2437, 840)
        );
        offset_sum += 27 + m.csi_len as usize + m.payload_len as usize;
        // 10-bit two's complement range.
        assert!(f
            .csi
            .iter()
            .all(|c| (-512.0..512.0).contains(&c.re) && (-512.0..512.0).contains(&c.im)));
    }
    assert_eq!(
        offset_sum as u64,
        std::fs::metadata(data(file)).unwrap().len(),
        "records tile the file"
    );
    assert!(rec
        .frames
        .windows(2)
        .all(|w| w[1].timestamp > w[0].timestamp));
}

const ALL_FILES: [&str; 7] = [
    "intel5300_log.all_csi.6.7.6.dat",
    "intel5300_walk_1590161182.dat",
    "atheros_ath_csi_1.dat",
    "nexmon_bcm4358_example.pcap",
    "nexmon_bcm43455c0_walk_1597159475.pcap",
    "esp32_example_csi.csv",
    "picoscenes_rx_by_qca9300.csi",
];

#[test]
fn detection_names_every_file_right() {
    let want = [
        CsiFormat::Intel5300,
        CsiFormat::Intel5300,
        CsiFormat::Atheros,
        CsiFormat::Nexmon,
        CsiFormat::Nexmon,
        CsiFormat::Esp32,
        CsiFormat::PicoScenes,
    ];
    for (file, fmt) in ALL_FILES.iter().zip(want) {
        let bytes = std::fs::read(data(file)).unwrap();
        assert_eq!(
            detect_format(&bytes[..bytes.len().min(65536)]),
            Ok(fmt),
            "{file}"
        );
    }
    assert!(detect_format(b"\x00\x01\x02garbage").is_err());
}

#[test]
fn wrong_format_named_gives_errors_not_panics() {
    let formats = [
        CsiFormat::Intel5300,
        CsiFormat::Atheros,
        CsiFormat::Nexmon,
        CsiFormat::Esp32,
        CsiFormat::PicoScenes,
    ];
    for file in ALL_FILES {
        let right = read_all(data(file), None).unwrap().format;
        for fmt in formats.into_iter().filter(|&f| f != right) {
            // Usually no frame at all: an error that says why, grouped, with the offset
            // of the first problem. Any garbage "frames" must come with errors.
            let errors = match read_all(data(file), Some(fmt)) {
                Ok(rec) => {
                    assert!(!rec.errors.is_empty(), "{file} as {fmt:?}");
                    rec.errors
                }
                Err(e @ CsiError::NoFrames { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with(&format!("{}: ", data(file).display())),
                        "{msg}"
                    );
                    assert!(msg.contains(&format!("no {} frame", fmt.name())), "{msg}");
                    vec![e]
                }
                Err(e) => panic!("{file} as {fmt:?}: {e}"),
            };
            for e in &errors {
                let msg = e.to_string();
                assert!(msg.contains(file), "error does not name the file: {msg}");
                assert!(
                    msg.contains("byte "),
                    "error does not name the offset: {msg}"
                );
            }
        }
    }
}

#[test]
fn truncated_real_files_keep_the_frames_before_the_cut() {
    let opts = ReadOptions::default();
    for file in ALL_FILES {
        let bytes = std::fs::read(data(file)).unwrap();
        let fmt = read_all(data(file), None).unwrap().format;
        let full: Vec<CsiFrame> = CsiReader::new(&bytes[..], file, fmt, &opts)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for cut in [
            1,
            7,
            100,
            bytes.len() / 3 + 1,
            bytes.len() / 2 + 1,
            bytes.len() - 1,
        ] {
            let items: Vec<Result<CsiFrame, CsiError>> =
                CsiReader::new(&bytes[..cut], file, fmt, &opts)
                    .unwrap()
                    .collect();
            let ok: Vec<&CsiFrame> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert!(ok.len() <= full.len());
            for (a, b) in ok.iter().zip(&full) {
                assert_eq!(
                    a.csi, b.csi,
                    "{file} cut at {cut}: a frame before the cut changed"
                );
            }
            if fmt != CsiFormat::Esp32 {
                // Binary formats: a cut inside a record is always reported, with an offset inside the file.
                let err = items.iter().rev().find_map(|r| r.as_ref().err());
                let e = err.unwrap_or_else(|| panic!("{file} cut at {cut}: no error"));
                assert!(
                    e.offset() <= cut as u64,
                    "{file}: offset {} past the cut {cut}",
                    e.offset()
                );
            }
        }
    }
}

#[test]
fn corrupted_real_files_never_panic() {
    let opts = ReadOptions::default();
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    for file in ALL_FILES {
        let bytes = std::fs::read(data(file)).unwrap();
        let fmt = read_all(data(file), None).unwrap().format;
        for _ in 0..60 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 33) as u8;
            }
            for r in CsiReader::new(&b[..], file, fmt, &opts).unwrap().flatten() {
                assert_eq!(r.csi.len(), r.n_tx() * r.n_rx() * r.n_subcarriers());
            }
        }
    }
}

#[test]
fn missing_file_error_names_it() {
    let err = read_all("/nonexistent/x.dat", None).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.dat"), "{err}");
}

/// The column-wise batch path (what Python's `read_csi` uses) must give exactly what the
/// streaming iterator gives: every frame, value, metadata field and error.
fn assert_table_matches_stream(
    what: &str,
    table: &wifi_densepose::csi::CsiTable,
    items: Vec<Result<CsiFrame, CsiError>>,
) {
    let frames: Vec<&CsiFrame> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    let errors: Vec<String> = items
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(table.len(), frames.len(), "{what}: frame count");
    let table_errors: Vec<String> = table.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(table_errors, errors, "{what}: errors");
    for (i, f) in frames.iter().enumerate() {
        let g = table.frame(i);
        assert_eq!(g.csi, f.csi, "{what}: frame {i} csi");
        assert_eq!(
            g.timestamp.to_bits(),
            f.timestamp.to_bits(),
            "{what}: frame {i} timestamp"
        );
        assert_eq!(
            g.rssi.map(f32::to_bits),
            f.rssi.map(f32::to_bits),
            "{what}: frame {i} rssi"
        );
        assert_eq!(
            g.noise.map(f32::to_bits),
            f.noise.map(f32::to_bits),
            "{what}: frame {i} noise"
        );
        assert_eq!(
            (g.channel, g.bandwidth_mhz, g.sequence),
            (f.channel, f.bandwidth_mhz, f.sequence),
            "{what}: frame {i}"
        );
        assert_eq!(g.meta, f.meta, "{what}: frame {i} meta");
    }
    let mut shapes: Vec<[usize; 3]> = Vec::new();
    for f in &frames {
        let s = [f.n_tx(), f.n_rx(), f.n_subcarriers()];
        if !shapes.contains(&s) {
            shapes.push(s);
        }
    }
    assert_eq!(table.shapes, shapes, "{what}: shapes");
}

#[test]
fn batch_table_matches_the_streaming_reader() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for scaled in [false, true] {
        let mut opts = ReadOptions::default();
        opts.intel5300.scaled = scaled;
        for file in ALL_FILES {
            let table = read_table_with(data(file), None, &opts).unwrap();
            let rec = read_all_with(data(file), None, &opts).unwrap();
            let items = rec
                .frames
                .into_iter()
                .map(Ok)
                .chain(rec.errors.into_iter().map(Err))
                .collect();
            assert_table_matches_stream(file, &table, items);
            // Corrupted and cut copies, through both paths.
            let bytes = std::fs::read(data(file)).unwrap();
            for round in 0..12 {
                let mut b = bytes.clone();
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed as usize) % b.len();
                    b[i] = (seed >> 33) as u8;
                }
                if round % 3 == 0 {
                    b.truncate(b.len() * 2 / 3 + round);
                }
                let stream: Vec<_> = CsiReader::new(&b[..], file, rec.format, &opts)
                    .unwrap()
                    .collect();
                let table = read_table_from(
                    CsiReader::new(&b[..], file, rec.format, &opts).unwrap(),
                    file,
                    b.len() as u64,
                );
                assert_table_matches_stream(
                    &format!("{file} corrupted round {round}"),
                    &table,
                    stream,
                );
            }
        }
    }
}

/// A real recording followed by a 1 TiB hole: the process must not size anything from
/// the apparent size (it used to abort allocating 543 GB), and the hole must not be
/// read as zeros. Both whole-file paths give the real frames and an error.
#[test]
fn a_sparse_file_gives_its_frames_and_an_error_quickly() {
    let dir = std::env::temp_dir().join(format!("wdp-sparse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ALL_FILES {
        let full = read_all(data(file), None).unwrap();
        let path = dir.join(file);
        std::fs::copy(data(file), &path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let t0 = std::time::Instant::now();
        let rec = read_all(&path, None).unwrap();
        let table = read_table_with(&path, None, &ReadOptions::default()).unwrap();
        assert!(
            t0.elapsed().as_secs_f64() < 10.0,
            "{file}: {:?}",
            t0.elapsed()
        );
        assert_eq!(rec.frames.len(), full.frames.len(), "{file}");
        assert_eq!(table.frames.len(), full.frames.len(), "{file}");
        let e = rec
            .errors
            .last()
            .unwrap_or_else(|| panic!("{file}: no error"));
        let size = std::fs::metadata(data(file)).unwrap().len();
        assert!(e.offset() <= size + 4096, "{file}: {e}");
        assert!(
            table.csi.capacity() < 1 << 26,
            "{file}: buffer sized from the apparent size"
        );
        std::fs::remove_file(&path).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = std::env::temp_dir().join(format!("wdp-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("live.pcap");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(read_all(&f, None).map(|r| r.frames.len()));
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("read_all on a FIFO without a writer hung");
    let err = got.unwrap_err().to_string();
    assert!(
        err.contains("live.pcap") && err.contains("a FIFO (named pipe), not a regular file"),
        "{err}"
    );
    std::fs::remove_file(&fifo).unwrap();
}
