"""Builds the fuzzers' seed corpus from the real recordings in ../shared/data/csi (not
copied into the repository: the corpus directory is ignored by git and rebuilt here).

    python fuzz/seed_corpus.py

read_any: for each sample file, its first 1, 2 and 4 KiB, prefixed with the byte that
picks its format (see fuzz_targets/read_any.rs) and with the byte that asks for
detection; and two PicoScenes frames with USRP CSI segments, built byte by byte. udp_frame: datagrams from wifi_densepose.udp.encode_frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "csi"
PICK = {  # the format byte of read_any.rs; 5 asks for detection
    "intel5300_log.all_csi.6.7.6.dat": 0,
    "intel5300_walk_1590161182.dat": 0,
    "atheros_ath_csi_1.dat": 1,
    "nexmon_bcm4358_example.pcap": 2,
    "nexmon_bcm43455c0_walk_1597159475.pcap": 2,
    "esp32_example_csi.csv": 3,
    "picoscenes_rx_by_qca9300.csi": 4,
}


def main() -> None:
    out = HERE / "corpus" / "read_any"
    out.mkdir(parents=True, exist_ok=True)
    for name, pick in PICK.items():
        data = (DATA / name).read_bytes()
        for size in (1024, 2048, 4096):
            for p in (pick, 5):
                (out / f"{Path(name).stem}-{size}-{p}").write_bytes(bytes([p]) + data[:size])
    # PicoScenes USRP segments (no real recording is public): two frames, 2×2 and 3×1,
    # column- and row-major, as tests/test_csi.py builds them.
    usrp = _usrp_frames()
    for p in (4, 5):
        (out / f"picoscenes_usrp-{p}").write_bytes(bytes([p]) + usrp)
    from wifi_densepose.udp import encode_frame

    out = HERE / "corpus" / "udp_frame"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, shape in enumerate([(1, 1, 64), (1, 1, 128), (2, 2, 30)]):
        csi = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64) * 20
        (out / f"udp-{i}").write_bytes(encode_frame(i, csi, sequence=i, timestamp_us=1_000_000 * (1 + i)))
    print(f"seed corpus in {HERE / 'corpus'}")


def _usrp_frames() -> bytes:
    import sys

    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_csi import _usrp_frame  # the byte-by-byte builder of the USRP tests

    rng = np.random.default_rng(1)
    a = rng.normal(size=(56, 2, 2)) + 1j * rng.normal(size=(56, 2, 2))
    b = rng.normal(size=(8, 3, 1)) + 1j * rng.normal(size=(8, 3, 1))
    return _usrp_frame(a, 1, list(range(-28, 0)) + list(range(1, 29))) + _usrp_frame(
        b, 3, list(range(8)), order=b"R"
    )


if __name__ == "__main__":
    main()
