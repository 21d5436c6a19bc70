"""Builds the fuzzers' seed corpus from the real recordings in ../shared/data/csi (not
copied into the repository: the corpus directory is ignored by git and rebuilt here).

    python fuzz/seed_corpus.py

read_any: for each sample file, its first 1, 2 and 4 KiB, prefixed with the byte that
picks its format (see fuzz_targets/read_any.rs) and with the byte that asks for
detection. udp_frame: datagrams from wifi_densepose.udp.encode_frame.
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
    from wifi_densepose.udp import encode_frame

    out = HERE / "corpus" / "udp_frame"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, shape in enumerate([(1, 1, 64), (1, 1, 128), (2, 2, 30)]):
        csi = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64) * 20
        (out / f"udp-{i}").write_bytes(encode_frame(i, csi, sequence=i, timestamp_us=1_000_000 * (1 + i)))
    print(f"seed corpus in {HERE / 'corpus'}")


if __name__ == "__main__":
    main()
