"""CSI readers from Python: every frame of every real recording against SUMMARY.json,
the MATLAB outputs of the official readers (scipy.io.loadmat) and, where SOURCES.md
shows csiread agrees with the official reader, against csiread value by value.

The data lives in ../shared/data/csi next to the crate; if it is missing the tests
fail, they never skip.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wifi_densepose as wdp
from wifi_densepose.inspect import inspect_text

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi"


def data(name: str) -> Path:
    path = DATA / name
    assert path.is_file(), (
        f"reference recording {path} is missing: these tests need the shared data folder "
        "../shared/data/csi next to the crate (see SOURCES.md there)"
    )
    return path


@pytest.fixture(scope="module")
def summary():
    return json.loads(data("SUMMARY.json").read_text())


def cpx(pairs):
    return np.array([complex(re, im) for re, im in pairs], dtype=np.complex128)


def csiread():
    import csiread as c  # test-only dependency, the fastest public reader

    return c


# ---------------------------------------------------------------- Intel 5300


def test_intel5300_every_frame_matches_matlab(summary):
    name = "intel5300_log.all_csi.6.7.6.dat"
    s = summary[name]
    rec = wdp.read_csi(data(name))
    assert rec.format == "intel5300"
    assert rec.errors == [] and rec.error is None
    assert len(rec) == s["packets"]
    assert {f.shape[1] for f in rec} == set(s["Nrx"])
    assert {f.shape[0] for f in rec} == set(s["Ntx"])
    mat = scipy.io.loadmat(data("reference/intel5300_log.all_csi.6.7.6.matlab_read_bf_file.mat"))
    raw, scaled = mat["csi"], mat["csi_scaled"]
    assert raw.shape == (29, 1)
    for k, frame in enumerate(rec):
        st = raw[k, 0][0, 0]
        meta = frame.meta
        for field in (
            "timestamp_low",
            "bfee_count",
            "Nrx",
            "Ntx",
            "rssi_a",
            "rssi_b",
            "rssi_c",
            "noise",
            "agc",
            "rate",
        ):
            assert meta[field] == st[field].item(), (k, field)
        assert meta["perm"] == list(st["perm"].ravel().astype(int))
        ours = frame.csi
        assert ours.dtype == np.complex64
        np.testing.assert_array_equal(ours, st["csi"])
        np.testing.assert_allclose(frame.scaled_csi(), scaled[k, 0], rtol=1e-12, atol=1e-12)
        assert frame.timestamp == pytest.approx(4e-6)
        assert frame.noise is None  # -127: not measured
    first = rec[0]
    np.testing.assert_array_equal(first.csi[0, 0, :4], cpx(s["first_pkt_csiread_sc0to3_rx0_tx0"]))
    np.testing.assert_allclose(
        first.scaled_csi()[0, 0, :2], cpx(s["first_pkt_scaled_sc0to1_rx0_tx0"]), rtol=1e-12
    )
    assert [first.meta[k] for k in ("rssi_a", "rssi_b", "rssi_c")] == s["rssi_abc_0"]
    assert first.meta["perm"] == [p + 1 for p in s["perm_0"]]
    assert rec[-1].meta["bfee_count"] == s["bfee_count_last"]
    # Three Ntx values: no uniform stack, and the message names the shapes.
    with pytest.raises(ValueError, match=r"\[1, 3, 30\] x10, \[3, 3, 30\] x10, \[2, 3, 30\] x9"):
        _ = rec.csi
    # The dominant shape (the first of the two most frequent) stacks.
    assert rec.csi_dominant().shape == (10, 1, 3, 30)
    np.testing.assert_array_equal(rec.csi_dominant()[1], rec[int(rec.dominant_indices[1])].csi)


def test_intel5300_scaled_option_stores_scaled_values():
    name = "intel5300_log.all_csi.6.7.6.dat"
    raw = wdp.read_csi(data(name))
    scaled = wdp.read_csi(data(name), scaled=True)
    for a, b in zip(raw, scaled):
        np.testing.assert_allclose(b.csi, a.scaled_csi().astype(np.complex64), rtol=1e-6)
        assert b.meta["scaled"] is True
    with pytest.raises(ValueError, match="already"):
        scaled[0].scaled_csi()


def test_intel5300_two_antennas_follow_read_bf_file(summary):
    name = "intel5300_walk_1590161182.dat"
    s = summary[name]
    rec = wdp.read_csi(data(name))
    assert len(rec) == s["packets"] and rec.errors == []
    csi = rec.csi
    assert csi.shape == (152, 2, 2, 30)
    assert rec.csi is not None and rec.timestamps is rec.timestamps  # cached, not rebuilt
    ts_low = np.array([f.meta["timestamp_low"] for f in rec])
    assert ts_low[0] == s["timestamp_low_first_us"] and ts_low[-1] == s["timestamp_low_last_us"]
    np.testing.assert_allclose(rec.timestamps, ts_low * 1e-6)
    assert rec.timestamps[-1] - rec.timestamps[0] == pytest.approx(s["span_us"] * 1e-6)
    assert all(not f.meta["permuted"] for f in rec)
    # read_bf_file.m leaves Nrx=2 unpermuted: slot 0 is what CSIKit reports, and
    # csiread's (permuted) slot 0 is our slot 1.
    np.testing.assert_array_equal(csi[0, 0, 0, :4], cpx(s["first_pkt_CSIKit_sc0to3_rx0_tx0"]))
    np.testing.assert_array_equal(csi[0, 0, 1, :4], cpx(s["first_pkt_csiread_sc0to3_rx0_tx0"]))
    np.testing.assert_allclose(
        rec[0].scaled_csi()[0, 1, :2], cpx(s["first_pkt_scaled_sc0to1_rx0_tx0"]), rtol=1e-12
    )
    m = rec[0].meta
    assert (m["rssi_a"], m["rssi_b"], m["rssi_c"]) == tuple(s["rssi_abc_0"])
    assert (m["noise"], m["agc"], m["rate"]) == (s["noise_0"], s["agc_0"], int(s["rate_0"], 16))
    assert rec[0].noise == s["noise_0"]


# ---------------------------------------------------------------- nexmon


def test_nexmon_bcm4358_matches_matlab_csi_buff_and_csiread(summary):
    name = "nexmon_bcm4358_example.pcap"
    s = summary[name]
    rec = wdp.read_csi(data(name))
    assert rec.format == "nexmon" and len(rec) == s["packets"]
    buff = scipy.io.loadmat(data("reference/nexmon_bcm4358_example.matlab_csireader.mat"))[
        "csi_buff"
    ]
    csi = rec.csi
    assert csi.shape == (4, 1, 1, 256)
    np.testing.assert_array_equal(csi[:, 0, 0, :], buff)
    ref = csiread().Nexmon(str(data(name)), chip="4358", bw=80, if_report=False)
    ref.read()
    np.testing.assert_array_equal(csi[:, 0, 0, :], ref.csi)
    assert {f.meta["core"] for f in rec} == set(s["cores"])
    assert {f.meta["spatial"] for f in rec} == set(s["spatial_streams"])
    assert all(f.meta["chan_spec"] == int(s["chanspec_0"], 16) for f in rec)
    assert all(f.meta["chip_version"] == int(s["chip_version_0"], 16) for f in rec)
    assert rec.timestamps[0] == pytest.approx(float(s["pcap_ts_first"]), abs=1e-6)
    assert rec.timestamps[-1] == pytest.approx(float(s["pcap_ts_last"]), abs=1e-6)
    np.testing.assert_array_equal(csi[0, 0, 0, :4], cpx(s["first_pkt_raw_fft_order_idx0to3"]))
    shifted = wdp.read_csi(data(name), fftshift=True)
    np.testing.assert_array_equal(shifted.csi, np.fft.fftshift(csi, axes=-1))
    np.testing.assert_array_equal(shifted[0].csi[0, 0, :4], cpx(s["first_pkt_fftshifted_idx0to3"]))
    assert np.isnan(rec.rssi).all()  # the classic header has no RSSI


def test_nexmon_bcm43455c0_every_packet_matches_csiread(summary):
    name = "nexmon_bcm43455c0_walk_1597159475.pcap"
    s = summary[name]
    rec = wdp.read_csi(data(name))
    assert len(rec) == s["packets"] and rec.errors == []
    ref = csiread().NexmonPull46(str(data(name)), chip="43455c0", bw=80, if_report=False)
    ref.read()
    np.testing.assert_array_equal(rec.csi[:, 0, 0, :], ref.csi)
    np.testing.assert_array_equal(rec.rssi, ref.rssi)
    assert [f.meta["fc"] for f in rec] == list(ref.fc)
    assert [f.meta["seq"] for f in rec] == list(ref.seq)
    np.testing.assert_array_equal(rec.timestamps, ref.sec + ref.usec * 1e-6)
    assert rec[0].meta["rssi"] == s["rssi_0"] and rec[0].meta["fc"] == int(s["fc_0"], 16)
    assert rec.timestamps[-1] - rec.timestamps[0] == pytest.approx(s["span_s"], abs=1e-6)
    raw8 = cpx(s["first_pkt_raw_fft_order_idx0to3"] + s["first_pkt_raw_fft_order_idx4to7"])
    np.testing.assert_array_equal(rec[0].csi[0, 0, :8], raw8)


# ---------------------------------------------------------------- ESP32


def test_esp32_every_row_matches_csiread(summary):
    name = "esp32_example_csi.csv"
    s = summary[name]
    rec = wdp.read_csi(data(name))
    assert rec.format == "esp32" and len(rec) == s["packets"] and rec.errors == []
    ref = csiread().ESP32(str(data(name)), if_report=False)
    ref.read()
    # The tool printed 128 bytes per row whatever `len` says (see docs/csi-formats.md).
    np.testing.assert_array_equal(rec.csi[:, 0, 0, :], ref.csi)
    assert [f.meta["len"] // 2 for f in rec] == s["subcarriers_per_row"]
    assert [f.meta["sig_mode"] for f in rec] == s["sig_mode"]
    assert [f.meta["bandwidth"] for f in rec] == s["bandwidth"]
    assert [f.meta["secondary_channel"] for f in rec] == s["secondary_channel"]
    assert rec[0].meta["local_timestamp"] == s["local_timestamp_first_us"]
    assert rec[-1].meta["real_timestamp"] == s["real_timestamp_last"]
    assert rec[0].meta["mac"] == s["mac_0"] and rec[0].rssi == s["rssi_0"]
    np.testing.assert_array_equal(rec[0].csi[0, 0, :6], cpx(s["first_row_first6"]))


def test_esp32_rows_of_different_lengths_refuse_to_stack(tmp_path):
    head = (
        "CSI_DATA,AP,3C:71:BF:6D:2A:78,-73,11,1,0,1,1,1,0,0,0,0,-93,0,1,1,{ts},0,101,0,0,80.3,{n},"
    )
    ht40 = head.format(ts=1, n=384) + "[" + " ".join(["1 2"] * 192) + " ]"
    legacy = head.format(ts=2, n=128) + "[" + " ".join(["3 4"] * 64) + " ]"
    path = tmp_path / "mixed.csv"
    path.write_text(ht40 + "\n" + legacy + "\n")
    rec = wdp.read_csi(path)
    assert rec.shapes == [(1, 1, 192), (1, 1, 64)]
    with pytest.raises(ValueError, match=r"\[1, 1, 192\] x1, \[1, 1, 64\] x1\); csi_dominant\(\)"):
        _ = rec.csi
    assert rec[0].csi[0, 0, 0] == complex(2, 1)  # imaginary first


def test_mixed_shapes_stack_the_dominant_one(tmp_path):
    """A stray 64-subcarrier row among HT40 rows: csi_dominant() stacks the HT40 ones,
    the others are counted, and dominant_indices lines up the other columns."""
    head = (
        "CSI_DATA,AP,3C:71:BF:6D:2A:78,-73,11,1,0,1,1,1,0,0,0,0,-93,0,1,1,{ts},0,101,0,0,80.3,{n},"
    )
    rows = []
    for ts in range(6):
        if ts == 2:
            rows.append(head.format(ts=ts, n=128) + "[" + " ".join(["3 4"] * 64) + " ]")
        else:
            rows.append(head.format(ts=ts, n=384) + "[" + " ".join([f"{ts} 2"] * 192) + " ]")
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(rows) + "\n")
    rec = wdp.read_csi(path)
    assert rec.shape_counts == [((1, 1, 192), 5), ((1, 1, 64), 1)]
    assert rec.dominant_shape == (1, 1, 192)
    np.testing.assert_array_equal(rec.dominant_indices, [0, 1, 3, 4, 5])
    stacked = rec.csi_dominant()
    assert stacked.shape == (5, 1, 1, 192) and stacked.dtype == np.complex64
    for k, i in enumerate(rec.dominant_indices):
        np.testing.assert_array_equal(stacked[k], rec[int(i)].csi)
    np.testing.assert_array_equal(rec.timestamps[rec.dominant_indices] * 1e6, [0, 1, 3, 4, 5])
    # A uniform recording: csi_dominant() is csi itself.
    walk = wdp.read_csi(data("intel5300_walk_1590161182.dat"))
    assert walk.csi_dominant() is walk.csi and walk.shape_counts == [((2, 2, 30), 152)]


# ---------------------------------------------------------------- PicoScenes


def test_picoscenes_every_frame_matches_csiread(summary):
    name = "picoscenes_rx_by_qca9300.csi"
    s = summary[name]
    rec = wdp.read_csi(data(name))
    assert rec.format == "picoscenes" and len(rec) == s["frames"] and rec.errors == []
    ref = csiread().Picoscenes(str(data(name)), {"CSI": [56, 3, 3], "MPDU": 1522}, if_report=False)
    ref.read()
    ref_csi = ref.raw["CSI"]["CSI"][:, :, :, :1]  # (frames, tones, rx, tx) with 1 tx used
    np.testing.assert_array_equal(rec.csi, np.transpose(ref_csi, (0, 3, 2, 1)))
    ts = np.array([f.meta["Timestamp"] for f in rec])
    assert ts[0] == s["RxSBasic_Timestamp_first"] and ts[-1] == s["RxSBasic_Timestamp_last"]
    np.testing.assert_array_equal(ts, ref.raw["RxSBasic"]["Timestamp"])
    np.testing.assert_array_equal(rec.rssi, ref.raw["RxSBasic"]["RSSI"])
    m = rec[0].meta
    assert m["DeviceType"] == int(s["DeviceType"], 16) and m["CBW"] == s["CBW"]
    assert m["CarrierFreq"] == s["CarrierFreq"] and m["MCS"] == s["mcs_0"]
    assert m["SubcarrierIndex"][:3] == s["subcarrier_index_first3"]
    np.testing.assert_array_equal(
        rec[0].csi[0, 0, :4], cpx(s["first_frame_csiread_tone0to3_rx0_tx0"])
    )


# ---------------------------------------------------------------- Atheros


def test_atheros_every_record_with_official_axes():
    name = "atheros_ath_csi_1.dat"
    rec = wdp.read_csi(data(name))
    assert rec.format == "atheros" and rec.errors == []
    assert len(rec) == 401  # every record; the official MATLAB reader returns 399
    csi = rec.csi
    assert csi.shape == (401, 2, 3, 56)  # (nc tx, nr rx, tones) as read_csi.c fills them
    ref = csiread().Atheros(str(data(name)), nrxnum=3, ntxnum=2, tones=56, if_report=False)
    ref.read(endian="little")
    # csiread has the right values in bitstream order but labels the nc-major stream as
    # if it were nr-major: undo its reshape, then ours is (tone, nc, nr) in stream order.
    stream = ref.csi.reshape(401, 56, 6)
    np.testing.assert_array_equal(np.transpose(csi, (0, 3, 1, 2)).reshape(401, 56, 6), stream)
    np.testing.assert_array_equal([f.meta["timestamp"] for f in rec], ref.timestamp)
    assert all(f.meta["channel"] == 2437 for f in rec)


# ---------------------------------------------------------------- API and errors


def test_recording_sequence_protocol():
    rec = wdp.read_csi(data("picoscenes_rx_by_qca9300.csi"), format="picoscenes")
    assert rec[-1].timestamp == rec[len(rec) - 1].timestamp
    with pytest.raises(IndexError):
        rec[len(rec)]
    with pytest.raises(IndexError):
        rec[-len(rec) - 1]
    stamps = [f.timestamp for f in rec]
    np.testing.assert_array_equal(stamps, rec.timestamps)
    assert rec.csi is rec.csi
    assert "picoscenes" in repr(rec)


def test_bad_format_name_and_missing_file():
    with pytest.raises(ValueError, match="unknown CSI format"):
        wdp.read_csi(data("esp32_example_csi.csv"), format="wifi9000")
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        wdp.read_csi(DATA / "nope.dat")


def test_garbage_is_a_csi_format_error_naming_file_and_offset(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(7, 250)) * 3)
    with pytest.raises(
        wdp.CsiFormatError, match=r"garbage\.bin, byte 0: cannot tell the CSI format"
    ):
        wdp.read_csi(path)
    assert issubclass(wdp.CsiFormatError, ValueError)


@pytest.mark.parametrize(
    "name",
    [
        "intel5300_walk_1590161182.dat",
        "atheros_ath_csi_1.dat",
        "nexmon_bcm43455c0_walk_1597159475.pcap",
        "picoscenes_rx_by_qca9300.csi",
    ],
)
def test_truncated_file_keeps_frames_before_the_cut(tmp_path, name):
    whole = data(name).read_bytes()
    full = wdp.read_csi(data(name))
    cut = tmp_path / name
    cut.write_bytes(whole[: len(whole) * 2 // 3 + 5])
    with pytest.warns(wdp.CsiFormatWarning, match="truncated"):
        rec = wdp.read_csi(cut)
    assert 0 < len(rec) < len(full)
    np.testing.assert_array_equal(rec.csi, full.csi[: len(rec)])
    assert rec.error is not None and "truncated" in rec.error and name in rec.error
    assert rec.error_offsets[-1] < len(whole) * 2 // 3 + 5


def test_wrong_format_named_raises_and_names_the_right_one():
    # A text reader over binary data: nothing recognised, and the fix is the format.
    with pytest.raises(wdp.CsiFormatError) as e:
        wdp.read_csi(data("atheros_ath_csi_1.dat"), format="esp32")
    msg = str(e.value)
    assert msg.startswith(f"{data('atheros_ath_csi_1.dat')}: no esp32 frame in 764707 bytes")
    assert 'Fix: read with format="atheros"' in msg
    # A binary reader over text: the problem with its offset, counted.
    with pytest.raises(wdp.CsiFormatError) as e:
        wdp.read_csi(data("esp32_example_csi.csv"), format="intel5300")
    msg = str(e.value)
    assert "no intel5300 frame in 6243 bytes; 1 problem: 1 × " in msg
    assert "First problem: byte 0: " in msg and 'format="esp32"' in msg


def test_an_empty_file_raises(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(wdp.CsiFormatError, match=r"empty\.pcap, byte 0: cannot tell the CSI format: the file is empty"):
        wdp.read_csi(empty)
    with pytest.raises(wdp.CsiFormatError, match=r"empty\.pcap: the file is empty: no nexmon frame"):
        wdp.read_csi(empty, format="nexmon")


def _nexmon_pcap(payloads: list[bytes]) -> bytes:
    """A pcap (Ethernet, IPv4, UDP port 5500) carrying `payloads`, written from the
    libpcap and RFC 791/768 layouts."""
    import struct

    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, p in enumerate(payloads):
        udp = struct.pack(">HHHH", 5500, 5500, 8 + len(p), 0) + p
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        eth = bytes(12) + b"\x08\x00" + ip + udp
        out += struct.pack("<IIII", 1_600_000_000 + i, 0, len(eth), len(eth)) + eth
    return out


def _nexmon_payload(chip_version: int, words: list[int], chanspec: int = 0xE02A) -> bytes:
    import struct

    head = struct.pack("<HbB6sHHHH", 0x1111, -50, 0x08, b"\x01\x02\x03\x04\x05\x06", 7, 0,
                       chanspec, chip_version)
    return head + b"".join(struct.pack("<I", w & 0xFFFFFFFF) for w in words)


def test_no_frames_names_the_file_the_first_offset_the_count_and_the_fix(tmp_path):
    # chip_version 0x1234 tells no chip, and a few small words fit every sample format.
    path = tmp_path / "unknown_chip.pcap"
    path.write_bytes(_nexmon_pcap([_nexmon_payload(0x1234, [0x421] * 8 + [0] * 248)] * 3))
    with pytest.raises(wdp.CsiFormatError) as e:
        wdp.read_csi(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: no nexmon frame in {path.stat().st_size} bytes; 3 problems: 3 × ")
    assert "(first at byte 24)" in msg and "First problem: byte 24: " in msg
    assert "Fix: read with nexmon_chip=" in msg
    rec = wdp.read_csi(path, nexmon_chip="bcm4339")
    assert len(rec) == 3 and rec.error_summary is None


def test_some_refused_records_make_one_warning_and_are_kept(tmp_path):
    rows = data("esp32_example_csi.csv").read_text().splitlines()
    path = tmp_path / "glitches.csv"
    bad = rows[0][:80]  # a serial glitch: a row cut short
    path.write_text("\n".join([rows[0], bad, rows[1], bad, rows[2]]) + "\n")
    with pytest.warns(wdp.CsiFormatWarning) as caught:
        rec = wdp.read_csi(path)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert msg == rec.error_summary
    assert msg.startswith(f"{path}: 3 frames read; 2 problems: 2 × no '[' opening the CSI list")
    assert len(rec) == 3 and len(rec.errors) == 2
    text = inspect_text(path)
    assert "3 packets" in text and "problems:    " + msg in text


def test_inspect_reports_a_file_without_frames_instead_of_raising(tmp_path):
    path = tmp_path / "unknown_chip.pcap"
    path.write_bytes(_nexmon_pcap([_nexmon_payload(0x1234, [0x421] * 8 + [0] * 248)]))
    text = inspect_text(path)
    assert "packets:     0 packets" in text and "nexmon_chip=" in text, text
    assert "1 packet" in inspect_text(path, nexmon_chip="bcm4339")


def test_replay_of_a_file_without_frames_says_why(tmp_path):
    from wifi_densepose.testing import collect

    path = tmp_path / "unknown_chip.pcap"
    path.write_bytes(_nexmon_pcap([_nexmon_payload(0x1234, [0x421] * 8 + [0] * 248)]))
    with wdp.Server() as server:
        server.add_environment("room", device="nexmon")
        events = collect(server, "system_event")
        replay = server.replay("room", path, speed=0)
        assert replay.wait(10)
        assert replay.sent == 0 and "nexmon_chip=" in replay.error
        deadline = __import__("time").monotonic() + 5
        while not [e for e in events.items if e.get("event") == "source_finished"]:
            assert __import__("time").monotonic() < deadline, events.items
            __import__("time").sleep(0.02)
        (done,) = [e for e in events.items if e.get("event") == "source_finished"]
        assert done["message"].startswith("replay failed: ") and "nexmon_chip=" in done["message"]


def test_inspect_text_reports_what_a_researcher_checks_first():
    text = inspect_text(data("intel5300_walk_1590161182.dat"))
    for expected in ("intel5300", "152", "Ntx 2", "Nrx 2", "30 subcarriers", "1.50", "Hz"):
        assert expected in text, (expected, text)
    text = inspect_text(data("esp32_example_csi.csv"), format="esp32")
    assert "13 packets" in text and "64 subcarriers" in text


# ---------------------------------------------------------------- UDP frame


def test_python_encoded_udp_frame_decodes_in_rust():
    from wifi_densepose.udp import encode_frame

    rng = np.random.default_rng(3)
    csi = rng.integers(-128, 128, (1, 2, 64)) + 1j * rng.integers(-128, 128, (1, 2, 64))
    datagram = encode_frame(
        9,
        csi,
        sequence=77,
        timestamp_us=1_700_000_000_250_000,
        channel=11,
        bandwidth_mhz=20,
        rssi=-48.4,
    )
    node, frame = wdp.decode_udp_frame(datagram, "10.1.2.3:4000")
    assert node == 9 and frame.format == "udp"
    np.testing.assert_array_equal(frame.csi, csi.astype(np.complex64))
    assert (frame.sequence, frame.channel, frame.bandwidth_mhz, frame.rssi, frame.noise) == (
        77,
        11,
        20,
        -48,
        None,
    )
    assert frame.timestamp == pytest.approx(1_700_000_000.25)
    with pytest.raises(wdp.CsiFormatError, match=r"10\.1\.2\.3:4000, byte 32"):
        wdp.decode_udp_frame(datagram[:-1], "10.1.2.3:4000")


# ---------------------------------------------------------------- big and odd inputs

ALL_SAMPLES = [
    "intel5300_log.all_csi.6.7.6.dat",
    "intel5300_walk_1590161182.dat",
    "atheros_ath_csi_1.dat",
    "nexmon_bcm4358_example.pcap",
    "nexmon_bcm43455c0_walk_1597159475.pcap",
    "esp32_example_csi.csv",
    "picoscenes_rx_by_qca9300.csi",
]


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_a_sparse_file_gives_its_real_frames_quickly(tmp_path, name):
    """A real recording, then a 64 GiB hole: the apparent size must not size any
    buffer (it used to abort the process) and the hole must not be read as zeros."""
    import time
    import warnings

    full = wdp.read_csi(data(name))
    path = tmp_path / name
    path.write_bytes(data(name).read_bytes())
    with open(path, "r+b") as f:
        f.truncate(64 << 30)
    assert path.stat().st_size == 64 << 30
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = wdp.read_csi(path)
    assert time.perf_counter() - t0 < 10.0
    assert len(rec) == len(full)
    np.testing.assert_array_equal(rec.timestamps, full.timestamps)
    # The reader stops at the first byte it cannot use: the zeros that end the last
    # file-system block, or the hole itself.
    assert rec.error is not None and name in rec.error
    assert rec.error_offsets[0] <= data(name).stat().st_size + 4096


def test_a_hole_is_named_with_its_offset(tmp_path):
    name = "picoscenes_rx_by_qca9300.csi"
    raw = data(name).read_bytes()
    path = tmp_path / name
    # Two real frames, then a hole of 1 GiB at a block boundary, then the rest.
    first = 8192
    with open(path, "wb") as f:
        f.write(raw[:first])
        f.seek(first + (1 << 30))
        f.write(raw[first:])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = wdp.read_csi(path)
    assert 0 < len(rec) < 20
    assert any(f"byte {first}: the file has a hole here" in e for e in rec.errors), rec.errors


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs on this OS")
def test_a_fifo_without_writer_is_refused_promptly(tmp_path):
    import os
    import threading

    fifo = tmp_path / "capture.pcap"
    os.mkfifo(fifo)
    result: dict = {}

    def read() -> None:
        try:
            wdp.read_csi(fifo)
        except Exception as e:  # noqa: BLE001 - the test inspects whatever it is
            result["error"] = e

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5.0)
    if t.is_alive():
        # Unblock the reader so the test process can end, then fail.
        with open(fifo, "wb"):
            pass
        pytest.fail("read_csi on a FIFO without a writer hung")
    err = result["error"]
    assert isinstance(err, wdp.CsiFormatError), err
    assert "capture.pcap" in str(err) and "FIFO" in str(err) and "regular file" in str(err)
    with pytest.raises(wdp.CsiFormatError, match="a directory, not a regular file"):
        wdp.read_csi(tmp_path)


def test_an_esp32_line_has_a_length_cap(tmp_path):
    row = data("esp32_example_csi.csv").read_text().splitlines()[0]
    path = tmp_path / "long.csv"
    with open(path, "w") as f:
        f.write(row + "\n")
        f.write("CSI_DATA," + "1," * (8 << 20) + "\n")  # a 16 MiB line
        f.write(row + "\n")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = wdp.read_csi(path)
    assert len(rec) == 2
    (err,) = rec.errors
    assert f"long.csv, byte {len(row) + 1}: line 2: {16 * 2**20 + 10} bytes" in err, err
    assert "limit" in err


# ---------------------------------------------------------------- nexmon chip detection


def _with_chip_version(raw: bytes, chip_version: int) -> bytes:
    """A copy of an Ethernet pcap with every nexmon header's chip_version replaced."""
    import struct

    assert struct.unpack_from("<I", raw, 20)[0] == 1  # Ethernet link layer
    out, pos = bytearray(raw), 24
    while pos + 16 <= len(raw):
        caplen = struct.unpack_from("<I", raw, pos + 8)[0]
        pkt = pos + 16
        ihl = (raw[pkt + 14] & 0x0F) * 4
        payload = pkt + 14 + ihl + 8
        assert raw[payload : payload + 2] == b"\x11\x11"
        struct.pack_into("<H", out, payload + 16, chip_version)
        pos = pkt + caplen
    return bytes(out)


@pytest.mark.parametrize(
    ("name", "chip", "samples"),
    [
        ("nexmon_bcm4358_example.pcap", "bcm4358", "float 9+5"),
        ("nexmon_bcm43455c0_walk_1597159475.pcap", "bcm4339 or bcm43455c0", "int16"),
    ],
)
def test_nexmon_chip_is_told_by_the_sample_values(tmp_path, name, chip, samples):
    """The real captures with their chip_version blanked: the values alone tell the
    sample format, and the frames equal those read with the chip named."""
    named = wdp.read_csi(data(name), nexmon_chip=chip.split()[-1])
    path = tmp_path / name
    path.write_bytes(_with_chip_version(data(name).read_bytes(), 0x0000))
    rec = wdp.read_csi(path)
    assert rec.errors == [] and len(rec) == len(named)
    np.testing.assert_array_equal(rec.csi, named.csi)
    meta = rec[0].meta
    assert meta["chip"] == chip and meta["samples"].startswith(samples)
    assert meta["chip_from"] == "sample values" and meta["chip_version"] == 0
    # With its own chip_version the file says the chip itself.
    assert wdp.read_csi(data(name))[0].meta["chip_from"] == "chip_version"


def _float_word(nman: int, nexp: int, re: int, im: int, e: int) -> int:
    """One unpack_float word from sign-magnitude mantissas and an exponent, laid out
    as nexmon_csi's unpack_float.c reads it (exponent low, then Q, then I)."""
    def field(v: int) -> int:
        return (abs(v) & ((1 << (nman - 1)) - 1)) | ((1 << (nman - 1)) if v < 0 else 0)

    return (field(re) << (nexp + nman)) | (field(im) << nexp) | (e & ((1 << nexp) - 1))


@pytest.mark.parametrize(
    ("chip", "chip_version", "told_chip", "frm"),
    [
        ("bcm4366c0", 0x1234, "bcm4366c0", "sample values"),
        ("bcm4366c0", 0x006A, "bcm4366c0", "chip_version"),
        ("bcm4358", 0x1234, "bcm4358", "sample values"),
        ("bcm4339", 0x0001, "bcm4339", "sample values"),
        ("bcm43455c0", 0x0065, "bcm43455c0", "chip_version"),
    ],
)
def test_nexmon_chip_detection_on_synthetic_packets(tmp_path, chip, chip_version, told_chip, frm):
    import struct

    rng = np.random.default_rng(7)
    if chip in ("bcm4339", "bcm43455c0"):
        pairs = rng.integers(-2000, 2000, (256, 2))
        words = [struct.unpack("<I", struct.pack("<hh", int(r), int(i)))[0] for r, i in pairs]
    else:
        nman, nexp = (12, 6) if chip == "bcm4366c0" else (9, 5)
        lim = (1 << (nman - 1)) - 1
        words = [
            _float_word(nman, nexp, int(r), int(i), int(e))
            for r, i, e in zip(
                rng.integers(-lim, lim, 256), rng.integers(-lim, lim, 256), rng.integers(-8, 4, 256)
            )
        ]
    path = tmp_path / "synthetic.pcap"
    path.write_bytes(_nexmon_pcap([_nexmon_payload(chip_version, words, chanspec=0xE02A)] * 2))
    named = wdp.read_csi(path, nexmon_chip=chip)
    rec = wdp.read_csi(path)
    np.testing.assert_array_equal(rec.csi, named.csi)
    assert rec[0].meta["chip"] == told_chip and rec[0].meta["chip_from"] == frm
    if chip in ("bcm4339", "bcm43455c0"):
        # int16 pairs, real first: checked against the words written.
        np.testing.assert_array_equal(rec.csi[0, 0, 0], pairs[:, 0] + 1j * pairs[:, 1])


def test_nexmon_chip_that_the_file_cannot_tell_names_the_candidates(tmp_path):
    # A few small positive values: every sample format reads them, differently.
    words = [0x0000_0421] * 8 + [0] * 248
    path = tmp_path / "few.pcap"
    path.write_bytes(_nexmon_pcap([_nexmon_payload(0x0001, words)]))
    with pytest.raises(wdp.CsiFormatError) as e:
        wdp.read_csi(path)
    msg = str(e.value)
    assert "cannot tell the nexmon chip" in msg and "bcm4339, bcm43455c0, bcm4358, bcm4366c0" in msg
    assert 'Fix: read with nexmon_chip="bcm4339" or nexmon_chip="bcm43455c0" or' in msg
    assert len(wdp.read_csi(path, nexmon_chip="bcm4358")) == 1


# ---------------------------------------------------------------- PicoScenes IWL5300


def _pico_segment(name: bytes, version: int, content: bytes) -> bytes:
    import struct

    body = bytes([len(name)]) + name + struct.pack("<H", version) + content
    return struct.pack("<I", len(body)) + body


def _pico_frame(device: int, n_sts: int, n_rx: int, ant_sel: int, data: bytes, cbw: int = 20) -> bytes:
    """One PicoScenes RxS frame, laid out field by field from the format description
    (frame header, RxSBasic v1, CSI v2, then an MPDU)."""
    import struct

    basic = struct.pack("<HQHBHHBBBBb4b", device, 1_000_000, 5200, 1, cbw, 400, 4, n_sts, 0,
                        n_rx, -90, 30, 30, 30, 30)
    csi = struct.pack("<HBHQQIHBBBBhI", device, 1, cbw, 5_200_000_000, 20_000_000, 312_500, 30,
                      n_sts, n_rx, 0, ant_sel, 0, len(data)) + data
    body = struct.pack("<IHB", 0x20150315, 1, 2)
    body += _pico_segment(b"RxSBasic", 1, basic) + _pico_segment(b"CSI", 2, csi) + b"\xde\xad"
    return struct.pack("<I", len(body)) + body


def _bfee_bits(values: np.ndarray) -> bytes:
    """The Linux CSI Tool bit stream for int8 `values[sc, rx, tx]` (real, imag): per
    subcarrier 3 unused bits, then 16 bits per (rx, tx) pair, tx fastest."""
    n_sc, n_rx, n_tx = values.shape
    bits: list[int] = []
    for sc in range(n_sc):
        bits += [0, 0, 0]
        for rx in range(n_rx):
            for tx in range(n_tx):
                for part in (values[sc, rx, tx].real, values[sc, rx, tx].imag):
                    byte = int(part) & 0xFF
                    bits += [(byte >> b) & 1 for b in range(8)]
    total = ((len(bits) + 7) // 8) * 8
    bits += [0] * (total - len(bits))
    return bytes(sum(bits[i + b] << b for b in range(8)) for i in range(0, len(bits), 8))


@pytest.mark.parametrize(("n_tx", "n_rx", "ant_sel"), [(1, 3, 0b100100), (2, 3, 0b000110), (3, 2, 0b0101), (2, 1, 0b11)])
def test_picoscenes_iwl5300_segments_decode_with_antenna_selection(tmp_path, n_tx, n_rx, ant_sel):
    rng = np.random.default_rng(n_tx * 10 + n_rx)
    values = rng.integers(-128, 128, (30, n_rx, n_tx)) + 1j * rng.integers(-128, 128, (30, n_rx, n_tx))
    data = _bfee_bits(values)
    # PicoScenes' buffer: n_tx = (len - 12) / 60 / n_rx must come out right.
    assert (len(data) - 12) // 60 // n_rx == n_tx
    path = tmp_path / "iwl5300.csi"
    path.write_bytes(_pico_frame(0x5300, n_tx, n_rx, ant_sel, data) * 3)
    rec = wdp.read_csi(path)
    assert rec.format == "picoscenes" and len(rec) == 3 and rec.errors == []
    # The independent reading: receive chain r goes to the rank of its antenna number.
    sel = [(ant_sel & 1) + 1, ((ant_sel >> 2) & 3) + 1, ((ant_sel >> 4) & 3) + 1][:n_rx]
    rank = np.argsort(np.argsort(sel, kind="stable"), kind="stable") if n_rx > 1 else [0]
    expected = np.zeros((n_tx, n_rx, 30), np.complex64)
    for rx in range(n_rx):
        expected[:, rank[rx], :] = values[:, rx, :].T
    np.testing.assert_array_equal(rec.csi[0], expected)
    meta = rec[0].meta
    assert meta["DeviceType"] == 0x5300 and meta["AntSel"] == ant_sel
    assert meta["SubcarrierIndex"][:15] == list(range(-28, -1, 2)) + [-1]
    assert meta["SubcarrierIndex"][15:] == [1] + list(range(3, 28, 2)) + [28]


def test_picoscenes_usrp_frames_are_refused_by_name(tmp_path):
    # 64 bytes: the 30 subcarrier indices, then 4 bytes where a matrix header should be.
    path = tmp_path / "usrp.csi"
    path.write_bytes(_pico_frame(0x1234, 1, 1, 0, bytes(64)) * 2)
    with pytest.raises(wdp.CsiFormatError) as e:
        wdp.read_csi(path)
    assert "2 × CSI segment: USRP CSI matrix ends after 4 bytes; its header needs 5" in str(e.value)


# ---------------------------------------------------------------- PicoScenes USRP


def _usrp_frame(values: np.ndarray, n_sts: int, indices: list[int], csi_version: int = 4,
                matrix_version: int = 2, order: bytes = b"C", extra_dims: int = 1) -> bytes:
    """One PicoScenes RxS frame whose CSI segment comes from a USRP (0x1234), written
    from the format as RXS-Parsing-Core defines it (CSI::toBuffer, SignalMatrix::toBuffer):
    `values[tone, stream, rx]` as a SignalMatrix of complex doubles."""
    import struct

    n_tones, n_tx, n_rx = values.shape
    n_ess = n_tx - n_sts
    basic = struct.pack("<HQHHHBHHBBBBBBb4b", 0x1234, 123_456_789, 5180, 5190, 40, 2, 40, 400,
                        3, n_sts, n_ess, n_rx, 1, 0, -92, -41, -41, -43, -45)
    dims = [n_tones, n_tx, n_rx] + [1] * extra_dims
    matrix = f"BBv{matrix_version}".encode() + bytes([len(dims)])
    matrix += b"".join(struct.pack("<Q" if matrix_version == 2 else "<I", d) for d in dims)
    matrix += b"CD" + bytes([64]) + order
    flat = values.flatten(order="F" if order == b"C" else "C")
    matrix += np.stack([flat.real, flat.imag], axis=1).astype("<f8").tobytes()
    payload = struct.pack(f"<{n_tones}h", *indices) + matrix
    csi = struct.pack("<H", 0x1234) + (b"\x07" if csi_version >= 4 else b"")
    csi += struct.pack("<bHQQIHBBB", 2, 40, 5_190_000_000, 40_000_000, 312_500, n_tones, n_sts,
                       n_rx, n_ess)
    csi += struct.pack("<H", 1) if csi_version >= 3 else b""
    csi += b"\x00" + (struct.pack("<h", 0) if csi_version >= 2 else b"")
    csi += struct.pack("<I", len(payload)) + payload
    body = struct.pack("<IHB", 0x20150315, 1, 2)
    body += _pico_segment(b"RxSBasic", 3, basic) + _pico_segment(b"CSI", csi_version, csi)
    body += b"\x08\x00" + bytes(22)  # an MPDU
    return struct.pack("<I", len(body)) + body


def _usrp_independent_reading(frame: bytes) -> tuple[list[int], np.ndarray, dict]:
    """A reading of one frame written from the format description only (not from this
    package's reader): returns (subcarrier indices, csi[stream, rx, tone], header)."""
    import struct

    assert struct.unpack_from("<I", frame, 0)[0] == len(frame) - 4
    assert struct.unpack_from("<IHB", frame, 4)[:2] == (0x20150315, 1)
    pos, n_seg = 11, frame[10]
    for _ in range(n_seg):
        (seg_len,) = struct.unpack_from("<I", frame, pos)
        name_len = frame[pos + 4]
        name = frame[pos + 5 : pos + 5 + name_len]
        (version,) = struct.unpack_from("<H", frame, pos + 5 + name_len)
        content = frame[pos + 7 + name_len : pos + 4 + seg_len]
        pos += 4 + seg_len
        if name != b"CSI":
            continue
        fields = ["device", "format", "cbw", "carrier", "rate", "sc_bw", "tones", "sts", "rx", "ess"]
        fmt = "<HbHQQIHBBB"
        if version >= 4:  # the firmware version follows the device type
            fields.insert(1, "firmware")
            fmt = "<HBbHQQIHBBB"
        if version >= 3:
            fields.append("num_csi")
            fmt += "H"
        fields.append("ant_sel")
        fmt += "B"
        if version >= 2:
            fields.append("offset")
            fmt += "h"
        fields.append("length")
        fmt += "I"
        h = dict(zip(fields, struct.unpack_from(fmt, content, 0)))
        data = content[struct.calcsize(fmt) :]
        assert h["device"] == 0x1234 and len(data) == h["length"]
        t, n_tx, n_rx = h["tones"], h["sts"] + h["ess"], h["rx"]
        indices = list(struct.unpack_from(f"<{t}h", data, 0))
        m = data[2 * t :]
        assert m[:3] == b"BBv"
        width = {ord("1"): 4, ord("2"): 8}[m[3]]
        ndim = m[4]
        dims = struct.unpack_from(f"<{ndim}{'I' if width == 4 else 'Q'}", m, 5)
        at = 5 + ndim * width
        assert m[at : at + 3] == b"CD\x40"
        order = "F" if m[at + 3 : at + 4] == b"C" else "C"
        raw = np.frombuffer(m[at + 4 :], "<f8")
        flat = raw[0::2] + 1j * raw[1::2]
        assert int(np.prod(dims)) == flat.size == t * n_tx * n_rx
        cube = flat.reshape((t, n_tx, n_rx), order=order)  # (tone, stream, rx)
        return indices, np.transpose(cube, (1, 2, 0)), h
    raise AssertionError("no CSI segment")


@pytest.mark.parametrize(
    ("n_sts", "n_ess", "n_rx", "csi_version", "matrix_version", "order", "extra_dims"),
    [
        (1, 0, 1, 4, 2, b"C", 1),
        (2, 0, 2, 4, 2, b"C", 1),
        (1, 1, 2, 3, 2, b"C", 0),
        (2, 0, 3, 2, 1, b"C", 1),
        (3, 0, 2, 1, 1, b"R", 0),
        (2, 1, 1, 4, 2, b"R", 1),
    ],
)
def test_picoscenes_usrp_segments_match_an_independent_reading(
    tmp_path, n_sts, n_ess, n_rx, csi_version, matrix_version, order, extra_dims
):
    n_tones = 114
    rng = np.random.default_rng(n_sts * 100 + n_rx * 10 + csi_version)
    shape = (n_tones, n_sts + n_ess, n_rx)
    values = [rng.normal(size=shape) * 30 + 1j * rng.normal(size=shape) * 30 for _ in range(3)]
    indices = list(range(-58, -1)) + list(range(2, 59))
    frames = [_usrp_frame(v, n_sts, indices, csi_version, matrix_version, order, extra_dims)
              for v in values]
    path = tmp_path / "usrp.csi"
    path.write_bytes(b"".join(frames))
    rec = wdp.read_csi(path)
    assert rec.format == "picoscenes" and len(rec) == 3 and rec.errors == []
    assert rec.csi.shape == (3, n_sts + n_ess, n_rx, n_tones)
    for i, (frame, v) in enumerate(zip(frames, values)):
        ref_indices, ref_csi, h = _usrp_independent_reading(frame)
        # The values written, and the independent reading of the bytes, value by value
        # (complex doubles on disk, complex64 here: the same rounding both ways).
        np.testing.assert_array_equal(rec.csi[i], v.transpose(1, 2, 0).astype(np.complex64))
        np.testing.assert_array_equal(rec.csi[i], ref_csi.astype(np.complex64))
        meta = rec[i].meta
        assert meta["SubcarrierIndex"] == ref_indices == indices
        assert meta["DeviceType"] == h["device"] == 0x1234
        assert meta["NumTones"] == h["tones"] == n_tones
        assert meta["CarrierFreq"] == h["carrier"] and meta["SamplingRate"] == h["rate"]
        assert meta["FirmwareVersion"] == h.get("firmware", 0)
        assert meta["NumCSI"] == h.get("num_csi", 1) == 1
        assert meta["Timestamp"] == 123_456_789 and meta["RSSI"] == -41
    assert rec[0].channel == 38 and rec[0].bandwidth_mhz == 40


@pytest.mark.parametrize("csi_version", [1, 2, 3, 4])
def test_picoscenes_usrp_segments_match_csiread(tmp_path, csi_version):
    """csiread decodes USRP segments too, but reads the matrix's values in storage order
    into its (tones, dim 1, dim 2) array whatever the storage order says, so it agrees
    with PicoScenes' column-major layout for one stream and one rx only. Check the header
    fields, the subcarrier indices and the stored value sequence against it everywhere,
    and the array itself for 1×1."""
    rng = np.random.default_rng(csi_version)
    cases = [(1, 0, 1), (2, 1, 2), (1, 0, 3)]
    frames, values = [], []
    for n_sts, n_ess, n_rx in cases:
        v = rng.normal(size=(56, n_sts + n_ess, n_rx)) + 1j * rng.normal(size=(56, n_sts + n_ess, n_rx))
        values.append(v)
        frames.append(_usrp_frame(v, n_sts, list(range(-28, 0)) + list(range(1, 29)), csi_version,
                                  extra_dims=0))
    path = tmp_path / "usrp.csi"
    path.write_bytes(b"".join(frames))
    rec = wdp.read_csi(path)
    assert len(rec) == 3 and rec.errors == []
    ref = csiread().Picoscenes(str(path), {"CSI": [56, 3, 3], "MPDU": 64}, if_report=False)
    ref.read()
    assert ref.count == 3
    for i, ((n_sts, n_ess, n_rx), v) in enumerate(zip(cases, values)):
        info = ref.raw["CSI"]["Info"][i]
        assert (info["NumTx"], info["NumESS"], info["NumRx"]) == (n_sts, n_ess, n_rx)
        assert info["NumTones"] == rec[i].meta["NumTones"] == 56
        assert info["CarrierFreq"] == rec[i].meta["CarrierFreq"]
        assert list(ref.raw["CSI"]["SubcarrierIndex"][i][:56]) == rec[i].meta["SubcarrierIndex"]
        n_tx = n_sts + n_ess
        stream = ref.raw["CSI"]["CSI"][i][:56, :n_tx, :n_rx].flatten()  # storage order
        ours = rec[i].csi  # (stream, rx, tone); stored column-major: tone fastest
        np.testing.assert_array_equal(np.transpose(ours, (1, 0, 2)).flatten(),
                                      stream.astype(np.complex64))
        if n_tx == n_rx == 1:
            np.testing.assert_array_equal(ours[0, 0], ref.raw["CSI"]["CSI"][i][:56, 0, 0].astype(np.complex64))
    np.testing.assert_array_equal(rec.rssi, ref.raw["RxSBasic"]["RSSI"])


def test_picoscenes_usrp_damaged_segments_are_named_and_the_rest_read(tmp_path):
    v = np.arange(56 * 2, dtype=float).reshape(56, 2, 1) * (1 + 0.5j)
    good = _usrp_frame(v, 2, list(range(56)))
    at = good.index(b"BBv2")
    float32 = bytearray(good)
    float32[at + 5 + 4 * 8 : at + 5 + 4 * 8 + 3] = b"CF\x20"
    truncated = good[:-7]  # the file ends inside the MPDU
    path = tmp_path / "usrp.csi"
    path.write_bytes(good + bytes(float32) + good + truncated)
    with pytest.warns(wdp.CsiFormatWarning) as w:
        rec = wdp.read_csi(path)
    assert len(rec) == 2 and len(w) == 1
    np.testing.assert_array_equal(rec.csi[1], v.transpose(1, 2, 0).astype(np.complex64))
    text = str(w[0].message)
    assert text == rec.error_summary and text.startswith(f"{path}: 2 frames read; 2 problems")
    assert "USRP CSI stored as complex float32" in text and "reads only complex double" in text
    # The refusal names the byte of the element type in the file.
    offset = len(good) + at + 5 + 4 * 8
    assert f"(at byte {offset})" in text
    assert rec.errors[0].startswith(f"{path}, byte {offset}: not supported: CSI segment: USRP CSI")
    assert "truncated" in text


def _chain_ratio_jumps_db(csi):
    """Per transmit chain: the second receive chain's power over the first's, its change
    from packet to packet, dB."""
    p = 10 * np.log10((np.abs(csi) ** 2).mean(axis=3))  # (n, tx, rx)
    return np.abs(np.diff(p[:, :, 1] - p[:, :, 0], axis=0)).max(axis=1)


def test_intel5300_two_antennas_can_come_in_antenna_order():
    # The Gi-z 2x2 washing-dishes capture: the card's permutation flips between (1, 3, 2)
    # and (3, 1, 2) from packet to packet, and read as read_bf_file.m reads it (no
    # permutation for Nrx = 2) the two antennas trade places at every flip.
    path = (DATA.parent / "labelled" / "gi-z_csi-data" / "intel" / "activity" / "august"
            / "washingdishes_1597160711.dat")
    official = wdp.read_csi(path)
    ordered = wdp.read_csi(path, antenna_order=True)
    perms = [tuple(f.meta["perm"][:2]) for f in official]
    assert set(perms) == {(1, 3), (3, 1)}
    assert not any(f.meta["permuted"] for f in official)
    assert all(f.meta["permuted"] for f in ordered)
    a, b = official.csi_dominant(), ordered.csi_dominant()
    flipped = np.array([p == (3, 1) for p in perms])[official.dominant_indices]
    np.testing.assert_array_equal(b[~flipped], a[~flipped])
    np.testing.assert_array_equal(b[flipped], a[flipped][:, :, ::-1])
    flips = (_chain_ratio_jumps_db(a) >= 2.5).sum()
    assert flips >= 40  # measured: 50, one at each flip
    assert (_chain_ratio_jumps_db(b) >= 2.5).sum() <= flips // 10  # measured: 0
    # Read in the official order, the flips are change to the sensor; in antenna order
    # far less (measured: median motion ratio 54 -> 1.6).
    ts = official.timestamps[official.dominant_indices]
    raw = np.nanmedian(wdp.sensing.sense(a, ts)["motion_ratio"])
    held = np.nanmedian(wdp.sensing.sense(b, ts)["motion_ratio"])
    assert held < raw / 5, (raw, held)
    # The engine puts every frame that reaches an environment in antenna order, however
    # it was read: analyze gives the same messages either way.
    events_official = wdp.analyze(official)
    events_ordered = wdp.analyze(ordered)
    strip = [(e["type"], json.dumps(e["data"].get("metadata", {}), sort_keys=True))
             for e in events_official if e["type"] == "pose_data"]
    strip2 = [(e["type"], json.dumps(e["data"].get("metadata", {}), sort_keys=True))
              for e in events_ordered if e["type"] == "pose_data"]
    assert len(strip) > 100 and strip == strip2
    # inspect says so.
    assert "re-ordered them 50 times" in inspect_text(path)
    assert "own one-antenna link" in inspect_text(DATA / "nexmon_bcm4358_example.pcap")

