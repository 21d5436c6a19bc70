"""Live ESP32 sources without custom firmware (docs/esp32-live.md): the CSI_DATA lines
ESP32-CSI-Tool and esp-csi print on a serial port (here a pseudo-terminal, so no board is
needed), the same lines sent over UDP, and RuView's binary UDP frame. They are fed from
the real recordings in ../shared/data and must reach the environment as the file reader
reads them, with the health events of any live source."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wifi_densepose as wdp
from wifi_densepose import ConfigError, Server, ServerError, config
from wifi_densepose.testing import collect

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
WISENSING = SHARED / "labelled" / "wisensing-esp32" / "person_200cm_1.csv"
EXAMPLE = SHARED / "csi" / "esp32_example_csi.csv"
WISENSING_MAC = "A4:CF:12:13:93:D5"

termios = pytest.importorskip("termios", reason="serial ports are read through termios")

BOOT = [
    b"ets Jun  8 2016 00:22:57",
    b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
    b"\x1b[0;32mI (29) boot: ESP-IDF v4.3 2nd stage bootloader\x1b[0m",
    b"",
]


def lines_of(path: Path) -> list[bytes]:
    if not path.exists():
        pytest.skip(f"{path} is missing: these tests need ../shared/data next to the crate")
    return [ln for ln in path.read_bytes().splitlines() if ln.strip()]


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def server():
    with Server(model=None, config={"stall_timeout_s": 0.4}) as s:
        s.add_environment("room_001", device="esp32")
        s.add_environment("room_002", device="esp32")
        yield s


@pytest.fixture
def pty():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def test_serial_port_reads_a_real_recording_like_the_file_reader(server, pty):
    master, name = pty
    rows = lines_of(WISENSING)
    recording = wdp.read_csi(WISENSING)
    assert len(rows) == len(recording)
    hardware = collect(server, "hardware_event")
    poses = collect(server, "pose_data")
    listener = server.listen_serial(name, 921600, "room_001")
    assert listener.port == name and listener.source_id == f"serial:{name}"
    assert listener.connected
    # The port is in raw mode at the rate asked for (termios through libc).
    fd = os.open(name, os.O_RDWR | os.O_NOCTTY)
    try:
        attrs = termios.tcgetattr(fd)
    finally:
        os.close(fd)
    assert attrs[4] == attrs[5] == termios.B921600
    assert not attrs[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
    garbage = [
        b"CSI_DATA,STA,A4:CF:12:13:93:D5,-40,[1 2",  # cut short: no closing ']'
        b"CSI_DATA,\xff\xfe not text",
        b"\x00\x01\x02 binary noise \xff",
        b"x" * 70_000,  # a line over the 64 KiB limit (line ends lost)
    ]
    write_all(master, b"\n".join(BOOT + garbage) + b"\n")
    # In batches, each drained before the next: the environment's queue never fills, so
    # every row must arrive (a drop would be counted, never silent).
    for start in range(0, len(rows), 400):
        batch = rows[start:start + 400]
        write_all(master, b"\n".join(batch) + b"\r\n")
        done = start + len(batch)
        wait_until(lambda done=done: server.environment_stats("room_001")["frames"] == done)
    stats = listener.stats()
    assert stats["frames"] == len(rows) and stats["dropped"] == 0
    assert stats["skipped"] == len(BOOT) + 1  # boot lines (the empty one too) and noise
    assert stats["bad"] == 3  # two CSI_DATA lines that do not decode, one over-long line
    assert stats["lines"] == len(rows) + len(BOOT) + 3
    assert stats["opens"] == 1
    assert "65536-byte limit" in (listener.last_error or "")  # the last bad line
    env = server.environment_stats("room_001")
    assert env["shape"] == list(recording[0].csi.shape) == [1, 1, 64]
    source = env["sources"][f"serial:{name}"]
    assert source["frames"] == len(rows) and not source["stalled"]
    # The sensor reports on a 1x1 link without a model.
    wait_until(lambda: len(poses.items) > 0)
    assert all(p["metadata"]["model_version"] == "sensing" for p in poses.items)
    assert all(p["environment_id"] == "room_001" for p in poses.items)
    events = {e["event"] for e in hardware.items}
    assert {"source_connected", "bad_lines"} <= events
    bad = next(e for e in hardware.items if e["event"] == "bad_lines")
    assert bad["source_id"] == f"serial:{name}" and bad["severity"] == "warning"

    # Silence: the source is reported stalled, then back when rows come again.
    wait_until(lambda: any(e["event"] == "source_stopped" for e in hardware.items))
    write_all(master, rows[0] + b"\n")
    wait_until(lambda: any(e["event"] == "source_reconnected" for e in hardware.items))
    assert server.environment_stats("room_001")["sources"][f"serial:{name}"]["stalls"] == 1

    # The board goes away (the pseudo-terminal's other end closes): reported once,
    # and the listener stops cleanly after.
    os.close(master)
    wait_until(lambda: any(e["event"] == "serial_port_lost" for e in hardware.items))
    assert not listener.connected and "went away" in (listener.last_error or "")
    listener.stop()
    wait_until(lambda: listener.stopped)


def test_serial_esp_csi_rows_and_a_mac_filter(server, pty):
    master, name = pty
    rows = lines_of(EXAMPLE)  # ESP32-CSI-Tool rows from 3C:71:BF:6D:2A:78, 64 values
    other = lines_of(WISENSING)[:5]  # rows of another transmitter
    finished = collect(server, "system_event")
    # 1552000: the rate ESP32-CSI-Tool recommends, which has no termios constant.
    listener = server.listen_serial(name, 1552000, "room_002", mac="3c-71-bf-6d-2a-78")
    write_all(master, b"\n".join(rows[:6] + other + rows[6:]) + b"\n")
    wait_until(lambda: listener.stats()["frames"] == len(rows)
               and listener.stats()["other_mac"] == len(other))
    stats = listener.stats()
    assert (stats["frames"], stats["other_mac"], stats["bad"]) == (len(rows), len(other), 0)
    wait_until(lambda: server.environment_stats("room_002")["frames"] == len(rows))
    # Stopping is a source that ended on purpose: no stall alarm, a source_finished.
    listener.stop()
    wait_until(lambda: any(e.get("event") == "source_finished" for e in finished.items))
    time.sleep(0.6)  # past the stall timeout
    assert not server.environment_stats("room_002")["sources"][f"serial:{name}"]["stalled"]


def test_serial_errors_are_clear(server, tmp_path):
    with pytest.raises(FileNotFoundError, match="ttyNOPE"):
        server.listen_serial("/dev/ttyNOPE", 921600, "room_001")
    plain = tmp_path / "not-a-tty"
    plain.write_text("CSI_DATA\n")
    with pytest.raises(ServerError, match="not a serial port"):
        server.listen_serial(plain, 921600, "room_001")
    with pytest.raises(ConfigError, match="baud"):
        server.listen_serial("/dev/null", 0, "room_001")
    with pytest.raises(ConfigError, match="MAC"):
        server.listen_serial("/dev/null", 921600, "room_001", mac="nope")
    with pytest.raises(RuntimeError, match="was not added"):
        server.listen_serial("/dev/null", 921600, "nowhere")


def send(port: int, datagrams, pace: int = 50, drained=None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, d in enumerate(datagrams):
            s.sendto(d, ("127.0.0.1", port))
            if drained is not None and (i + 1) % pace == 0:
                wait_until(lambda i=i: drained() >= i + 1)


def test_udp_csi_data_lines_by_sender_and_by_mac(server):
    hardware = collect(server, "hardware_event")
    example = lines_of(EXAMPLE)
    rows = lines_of(WISENSING)[:600]
    by_sender = server.listen_udp(senders={"127.0.0.1": "room_001"})
    # Several lines per datagram (a forwarder of serial output), boot logs among them.
    send(by_sender.port, [b"\n".join(BOOT[:2] + example[:7]) + b"\n",
                          b"\n".join(BOOT[2:]),  # a datagram of logs only: skipped
                          b"\r\n".join(example[7:]) + b"\r\n",
                          b"CSI_DATA,garbage,[1 2]\n"])
    wait_until(lambda: by_sender.stats()["frames"] == len(example)
               and by_sender.stats()["bad"] == 1)
    wait_until(lambda: server.environment_stats("room_001")["frames"] == len(example))
    stats = by_sender.stats()
    assert (stats["datagrams"], stats["skipped"], stats["bad"]) == (4, 1, 1)
    assert server.environment_stats("room_001")["sources"]["udp:127.0.0.1"]["frames"] == 13

    by_mac = server.listen_udp(macs={WISENSING_MAC.lower(): "room_002"})
    # One line per datagram; lines of an unmapped transmitter are counted, not routed.
    send(by_mac.port, rows + example[:3], drained=lambda: by_mac.stats()["datagrams"])
    wait_until(lambda: by_mac.stats()["frames"] == len(rows)
               and by_mac.stats()["unknown_node"] == 3)
    stats = by_mac.stats()
    assert (stats["frames"], stats["unknown_node"], stats["dropped"]) == (len(rows), 3, 0)
    wait_until(lambda: server.environment_stats("room_002")["frames"] == len(rows))
    env = server.environment_stats("room_002")
    assert env["shape"] == [1, 1, 64]
    assert env["sources"][f"udp:mac_{WISENSING_MAC}"]["frames"] == len(rows)
    events = {e["event"] for e in hardware.wait_for(
        lambda items: {"source_connected", "bad_packets", "unknown_node"}
        <= {e["event"] for e in items})}
    assert {"source_connected", "bad_packets", "unknown_node"} <= events


def ruview_frame(node: int, seq: int, iq: bytes, freq: int = 2437, magic: int = 0xC5110001):
    """RuView's version-1 raw CSI frame (firmware/esp32-csi-node, csi_collector.c)."""
    return struct.pack("<IBBHIIbbH", magic, node, 1, len(iq) // 2, freq, seq, -48, -95, 0) + iq


def raw_bytes(row: bytes) -> bytes:
    """The ESP-IDF buffer a CSI_DATA row prints, as bytes."""
    values = row[row.index(b"[") + 1:row.index(b"]")].split()
    return struct.pack(f"{len(values)}b", *(int(v) for v in values))


def test_ruview_frames_by_node_id_with_loss_and_other_packets(server):
    hardware = collect(server, "hardware_event")
    rows = lines_of(WISENSING)[:300]
    listener = server.listen_udp({5: "room_001"})
    # The rows' own CSI bytes, as a RuView node would send them; two lost, one of
    # RuView's vitals packets (no CSI) and a frame from an unmapped node among them.
    seqs = [s for s in range(len(rows)) if s not in (100, 101)]
    frames = [ruview_frame(5, s, raw_bytes(rows[s])) for s in seqs]
    vitals = struct.pack("<IBBHIbB2xffII", 0xC5110002, 5, 1, 1500, 720000, -50, 1,
                         0.1, 0.9, 1000, 0)
    send(listener.port, frames[:150] + [vitals, ruview_frame(9, 0, raw_bytes(rows[0]))]
         + frames[150:] + [ruview_frame(5, 999, b"\x01\x02\x03")],
         drained=lambda: listener.stats()["datagrams"])
    wait_until(lambda: listener.stats()["frames"] == len(frames)
               and listener.stats()["bad"] == 1)
    stats = listener.stats()
    assert (stats["frames"], stats["skipped"], stats["unknown_node"], stats["bad"]) == (
        len(frames), 1, 1, 1)
    assert "3 bytes" in (listener.last_error or "") or "need" in (listener.last_error or "")
    wait_until(lambda: server.environment_stats("room_001")["frames"] == len(frames))
    env = server.environment_stats("room_001")
    assert env["shape"] == [1, 1, 64]
    node = env["sources"]["udp:node_5"]
    assert (node["frames"], node["gaps"]) == (len(frames), 2)
    assert any(e["event"] == "source_connected" and e["source_id"] == "udp:node_5"
               for e in hardware.wait_for(lambda items: any(
                   e["event"] == "source_connected" and e["source_id"] == "udp:node_5"
                   for e in items)))


def test_wdpc_frames_still_decode_beside_the_new_kinds(server):
    import numpy as np
    from wifi_densepose.udp import encode_frame

    listener = server.listen_udp({7: "room_001"})
    csi = (np.arange(64) % 5 + 2j).astype(np.complex64).reshape(1, 1, 64)
    send(listener.port, [encode_frame(7, csi, sequence=s) for s in range(5)]
         + [b"WDPC garbage", bytes(range(40))])
    wait_until(lambda: listener.stats()["frames"] == 5 and listener.stats()["bad"] == 2)
    stats = listener.stats()
    assert (stats["frames"], stats["bad"]) == (5, 2)
    with pytest.raises(ConfigError, match="MAC"):
        server.listen_udp(macs={"nope": "room_001"})
    with pytest.raises(ConfigError, match="sender"):
        server.listen_udp(senders={"host.example": "room_001"})


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wifi_densepose", "serve", "--port", "0",
                           "--model", "none", *args],
                          check=False, capture_output=True, text=True, timeout=60)


def test_serve_reads_serial_ports_and_routes_csi_data_lines(pty, tmp_path):
    _, name = pty
    out = _serve("--serial", name, "--baud", "115200", "--udp", "0",
                 "--node", "a4-cf-12-13-93-d5=ward", "--node", "10.0.0.21=lab",
                 "--environment", "kitchen", "--environment", "ward", "--environment", "lab",
                 "--duration", "1")
    assert out.returncode == 0, out.stderr
    assert f"kitchen: CSI_DATA lines on serial port {name} at 115200 baud" in out.stdout
    assert "ward: ESP32 mac A4:CF:12:13:93:D5 over UDP" in out.stdout
    assert "lab: ESP32 sender 10.0.0.21 over UDP" in out.stdout
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f"""
[[environments]]
id = "kitchen"
source = "serial"
port = "{name}"
mac = "3C:71:BF:6D:2A:78"

[[environments]]
id = "ward"
source = "udp"
node = 5
sender = "127.0.0.1"

[udp]
port = 0
""")
    out = _serve("--config", str(cfg), "--duration", "1")
    assert out.returncode == 0, out.stderr
    assert f"serial port {name} at 921600 baud (transmitter 3C:71:BF:6D:2A:78 only)" in out.stdout
    assert "ward: ESP32 node 5 / sender 127.0.0.1 over UDP" in out.stdout


def test_serve_errors_for_the_new_sources(tmp_path):
    out = _serve("--serial", "/dev/ttyNOPE", "--duration", "1")
    assert out.returncode == 1 and "ttyNOPE" in out.stderr
    out = _serve("--udp", "0", "--node", "not-a-key=room_001", "--duration", "1")
    assert out.returncode == 2 and "not a node id" in out.stderr
    assert config.parse({"environments": [{"id": "a", "source": "serial", "port": "/dev/x"}]}
                        ).environments[0].baud == config.DEFAULT_BAUD
    for env, key in [({"source": "serial"}, "environments[0].port"),
                     ({"source": "serial", "port": "/dev/x", "mac": "zz"}, "environments[0].mac"),
                     ({"source": "udp"}, "environments[0].node"),
                     ({"source": "udp", "sender": "host"}, "environments[0].sender"),
                     ({"source": "serial", "port": "/dev/x", "node": 1}, "environments[0].node")]:
        with pytest.raises(ConfigError, match=re.escape(key)):
            config.parse({"environments": [{"id": "a", **env}], "udp": {"port": 0}})


def test_the_toml_examples_in_the_docs_load():
    import tomllib

    text = (Path(__file__).resolve().parent.parent / "docs" / "esp32-live.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 4
    sources = []
    envs = []
    for block in blocks:
        cfg = config.parse(tomllib.loads(block), "docs/esp32-live.md")
        sources += [(e.source, e.port, e.mac, e.sender, e.node) for e in cfg.environments]
        envs += cfg.environments
    # Several nodes in one room, each with its placement.
    ward = next(e for e in envs if e.id == "ward" and len(e.nodes) > 1)
    assert ward.nodes == [1, 2, 3] and set(ward.source_placements) == set(ward.source_ids())
    kitchen = next(e for e in envs if e.source == "serial" and len(e.ports) > 1)
    assert kitchen.source_ids() == ["serial:/dev/ttyUSB0", "serial:/dev/ttyUSB1"]
    assert ("serial", "/dev/ttyUSB0", None, None, None) in sources
    assert ("udp", None, "A4:CF:12:13:93:D5", None, None) in sources
    assert ("udp", None, None, "10.0.0.21", None) in sources
    assert ("udp", None, None, None, 1) in sources
