"""Read speed of wifi_densepose.read_csi against csiread (the fastest public Python reader).

For each sample recording in ../shared/data/csi the script builds a larger file in a
temporary directory by repeating its records (pcap: one global header, records
repeated; CSV: rows repeated), then reads it with both libraries in the same run, best
of several rounds, and prints MB/s, frames/s and the ratio. Both sides produce the
whole-recording arrays: csiread's ``read()`` fills its arrays, ours builds the
stacked ``Recording.csi`` and ``timestamps``.

Both readers run on one thread (ours decodes single-threaded too). The load average is
printed first: on a shared machine, compare ratios from the same run.

Build the extension in release mode first:
    VIRTUAL_ENV=... maturin develop --release
Run:
    python benches/csi_read.py [--mb 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import csiread
import wifi_densepose as wdp

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi"


def grow(src: Path, dst: Path, target_bytes: int) -> None:
    """Writes `src` repeated until `dst` is at least `target_bytes` long."""
    raw = src.read_bytes()
    head, body = (raw[:24], raw[24:]) if src.suffix == ".pcap" else (b"", raw)
    if src.suffix == ".csv" and not body.endswith(b"\n"):
        body += b"\n"
    reps = max(1, target_bytes // len(body))
    dst.write_bytes(head + body * reps)


CASES = [
    # (file, our format, csiread constructor, csiread read kwargs)
    (
        "intel5300_walk_1590161182.dat",
        "intel5300",
        lambda p: csiread.Intel(p, nrxnum=2, ntxnum=2, if_report=False),
        {},
    ),
    (
        "atheros_ath_csi_1.dat",
        "atheros",
        lambda p: csiread.Atheros(p, nrxnum=3, ntxnum=2, tones=56, if_report=False),
        {"endian": "little"},
    ),
    (
        "nexmon_bcm4358_example.pcap",
        "nexmon",
        lambda p: csiread.Nexmon(p, chip="4358", bw=80, if_report=False),
        {},
    ),
    (
        "nexmon_bcm43455c0_walk_1597159475.pcap",
        "nexmon",
        lambda p: csiread.NexmonPull46(p, chip="43455c0", bw=80, if_report=False),
        {},
    ),
    ("esp32_example_csi.csv", "esp32", lambda p: csiread.ESP32(p, if_report=False), {}),
    (
        "picoscenes_rx_by_qca9300.csi",
        "picoscenes",
        lambda p: csiread.Picoscenes(p, {"CSI": [56, 3, 3], "MPDU": 1522}, if_report=False),
        {},
    ),
]


def best_of(rounds: int, fn) -> tuple[float, int]:
    best, frames = float("inf"), 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        frames = fn()
        best = min(best, time.perf_counter() - t0)
    return best, frames


def ours(path: str, fmt: str) -> int:
    rec = wdp.read_csi(path, format=fmt)
    _ = rec.csi, rec.timestamps
    return len(rec)


def theirs(make, path: str, kwargs: dict) -> int:
    reader = make(path)
    reader.read(**kwargs)
    return int(reader.count) if hasattr(reader, "count") else len(reader.raw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=32.0, help="size of each grown file in MB")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print("# load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"{'file':42} {'MB':>6} {'frames':>8} | {'ours MB/s':>10} {'frames/s':>11} | "
        f"{'csiread MB/s':>12} {'frames/s':>11} | {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, fmt, make, kwargs in CASES:
            src = DATA / name
            assert src.is_file(), f"{src} is missing (see ../shared/data/csi/SOURCES.md)"
            path = Path(tmp) / name
            grow(src, path, int(args.mb * 1e6))
            mb = path.stat().st_size / 1e6
            p = str(path)
            t_ours, n_ours = best_of(args.rounds, lambda p=p, fmt=fmt: ours(p, fmt))
            t_ref, n_ref = best_of(args.rounds, lambda p=p, mk=make, kw=kwargs: theirs(mk, p, kw))
            note = "" if n_ours == n_ref else f"  (frame counts differ: {n_ours} vs {n_ref})"
            print(
                f"{name:42} {mb:6.1f} {n_ours:8d} | {mb / t_ours:10.1f} {n_ours / t_ours:11.0f} | "
                f"{mb / t_ref:12.1f} {n_ref / t_ref:11.0f} | {t_ref / t_ours:5.2f}x{note}"
            )


if __name__ == "__main__":
    main()
