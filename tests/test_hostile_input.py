"""Inputs an adversarial review (2026-12-07) found crossing the Python boundary as a Rust
panic, aborting the process, hanging, or giving silently wrong results: each is now a
clear exception of the package's own (or, for "no limit", works), and fast."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import wifi_densepose as wdp
from wifi_densepose import dsp, sim

WALK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi" / "intel5300_walk_1590161182.dat"


@pytest.fixture(scope="module")
def run():
    return sim.generate("walk", seed=0, duration_s=2)


def test_waiting_without_limit_is_infinity_and_nan_is_refused():
    with wdp.Server(model=None) as s:
        s.add_environment("e")
        r = s.simulate("e", "walk", duration_s=1, speed=0)
        assert r.wait(float("inf")) is True
        assert r.wait(1e300) is True
        assert r.wait(-1) is True  # already done: a negative limit is no wait at all
        with pytest.raises(wdp.InvalidArgumentError, match="NaN"):
            r.wait(float("nan"))


@pytest.mark.parametrize("speed", [1e-300, 1e-4])
def test_a_speed_too_slow_to_wait_for_is_refused_up_front(speed):
    with wdp.Server(model=None) as s:
        s.add_environment("e")
        with pytest.raises(wdp.InvalidArgumentError, match="speed must be 0"):
            s.simulate("e", "walk", duration_s=1, speed=speed)
        if WALK.exists():
            with pytest.raises(wdp.InvalidArgumentError, match="speed must be 0"):
                s.replay("e", str(WALK), speed=speed)


@pytest.mark.parametrize("config", [
    {"callback_queue_capacity": 10**9},
    {"callback_queue_capacity": 2**62},
    {"environment_queue": 2**62},
    {"alert_queue_capacity": 2**62},
    {"rate_limits": {"heartbeat_grace_s": 1e300}},
])
def test_configured_sizes_past_a_machine_are_refused_not_allocated(config):
    with pytest.raises(wdp.ConfigError, match="at most|1e9 seconds"):
        wdp.Server(model=None, config=config).start().stop()


def test_pairing_more_antennas_than_any_card_has_is_refused_not_allocated():
    # In a child process: were the product allocated, 80 GB would abort the interpreter.
    code = textwrap.dedent("""
        import numpy as np
        from wifi_densepose import dsp, DspError
        try:
            dsp.conjugate_product(np.ones((1, 1, 100_000, 4), np.complex64))
        except DspError as e:
            print("refused:", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0 and "at most 64 are paired" in out.stdout, out.stderr


def test_a_view_larger_than_the_memory_limit_is_a_memory_error_not_an_abort():
    # A broadcast view of 4 GB held in 1 KB, under a memory limit 1 GB above what the child
    # already maps: Rust aborts on a failed allocation, where numpy raises MemoryError.
    code = textwrap.dedent("""
        import resource
        import numpy as np
        from wifi_densepose import dsp
        shape = (4_000_000, 3, 3, 30)
        real = np.broadcast_to(np.ones((1, 3, 3, 30), np.float32), shape)
        cplx = np.broadcast_to(np.ones((1, 3, 3, 30), np.complex64), shape)
        mapped = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                      if line.startswith("VmSize"))
        limit = mapped + (1 << 30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for name, call in [("hampel", lambda: dsp.hampel(real, window=3)),
                           ("sanitize", lambda: dsp.sanitize(cplx)),
                           ("condition", lambda: dsp.condition(cplx)),
                           ("normalize_amplitude", lambda: dsp.normalize_amplitude(real))]:
            try:
                call()
                print(name, "computed")
            except MemoryError as e:
                print(name, "MemoryError:", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all("MemoryError: dsp." in line for line in lines), out.stdout


@pytest.mark.parametrize("cutoff", [{"high": 1e-8}, {"low": 1e-8}, {"high": 49.99999}])
def test_a_cutoff_at_the_band_edge_is_refused_rather_than_filtering_to_nan(cutoff):
    x = np.random.default_rng(0).standard_normal((200, 30)).astype(np.float32)
    with pytest.raises(wdp.DspError, match="too close to 0 or to fs/2"):
        dsp.butter_filter(x, 100, **cutoff)
    assert np.isfinite(dsp.butter_filter(x, 100, high=1e-3)).all()


def test_analyze_refuses_timestamps_that_do_not_increase(run):
    csi, ts = run["csi"], run["timestamps"]
    for bad in (ts[::-1], np.zeros(len(ts)), ts + 1e300):
        with pytest.raises(wdp.InvalidArgumentError, match="steps go back or repeat"):
            wdp.analyze(csi, timestamps=bad, model=None)
    assert wdp.analyze(csi, timestamps=ts, model=None)
    # One step back (a device restarting) is the live path's to realign, not an error.
    restarted = np.where(np.arange(len(ts)) < len(ts) // 2, ts + 100.0, ts)
    assert wdp.analyze(csi, timestamps=restarted, model=None)


def test_analyze_refuses_csi_that_is_not_finite(run):
    csi = run["csi"].copy()
    csi[5] = np.nan
    with pytest.raises(wdp.InvalidArgumentError, match="first at frame 5"):
        wdp.analyze(csi, model=None)
    with pytest.raises(wdp.InvalidArgumentError, match="non-finite"):
        wdp.analyze(run["csi"] * np.float32(1e20), model=None)


def test_an_unknown_device_name_is_refused_where_it_is_given(run):
    with pytest.raises(wdp.InvalidArgumentError, match="unknown device 'nosuch'"):
        wdp.analyze(run["csi"], device="nosuch", model=None)
    with wdp.Server(model=None) as s:
        with pytest.raises(wdp.InvalidArgumentError, match="unknown device 'nosuch'"):
            s.add_environment("e", device="nosuch")
        s.add_environment("e")
        with pytest.raises(wdp.SimulationError, match="nope"):
            s.simulate("e", "walk", duration_s=1, device="nope", speed=0)


def test_an_environment_id_too_long_or_with_control_characters_is_refused():
    with wdp.Server(model=None) as s:
        for bad in ["room\n1", "r" * 257, "tab\there"]:
            with pytest.raises(wdp.InvalidArgumentError, match="environment_id must be at most 256"):
                s.add_environment(bad)
        s.add_environment("r" * 256)
        s.add_environment("Kitchen (ground floor)")
        assert len(s.environments) == 2


def test_a_seed_or_port_out_of_range_is_refused_by_name():
    for bad in [-1, 2**64]:
        with pytest.raises(wdp.InvalidArgumentError, match="seed must be an integer from 0"):
            sim.generate("walk", seed=bad, duration_s=0.1)
    with pytest.raises(wdp.ArgumentTypeError, match="seed must be an integer"):
        sim.describe("walk", seed=1.5)
    for port in [-1, 70000]:
        with pytest.raises(wdp.InvalidArgumentError, match="port must be an integer from 0"):
            wdp.Server(port=port)
    with wdp.Server(model=None) as s:
        s.add_environment("e")
        with pytest.raises(wdp.InvalidArgumentError, match="seed"):
            s.simulate("e", "walk", seed=-1, duration_s=1, speed=0)
    assert sim.describe("walk", seed=np.uint64(2**64 - 1))["seed"] == 2**64 - 1


def test_a_room_of_countless_objects_is_refused_at_once():
    objects = [{"position": [1.0, 1.0, 1.0], "rcs_m2": 1.0}] * 5000
    with pytest.raises(wdp.SimulationError, match="at most 256"):
        sim.generate({"room": {"objects": objects}}, seed=0, duration_s=0.1)


def test_a_transmitter_on_its_receiver_is_refused_not_simulated_as_nan():
    where = {"tx_position": [1.0, 1.0, 1.0], "rx_position": [1.0, 1.0, 1.0]}
    with pytest.raises(wdp.SimulationError, match="placement"):
        sim.generate({"placement": where}, seed=0, duration_s=1)


def test_a_token_for_one_environment_given_as_a_string_is_refused_not_split():
    with wdp.Server(model=None) as s:
        with pytest.raises(wdp.ArgumentTypeError, match=r"did you mean \['abc'\]"):
            s.issue_token("a", environments="abc")
        assert s.issue_token("a", environments=["abc"])


def test_quiet_substitutions_are_refused_by_name(run, tmp_path):
    """Each of these was taken and quietly replaced by a default, or NaN passed through."""
    with pytest.raises(wdp.InvalidArgumentError, match="calibrate_s"):
        wdp.sensing.sense(run["csi"], run["timestamps"], calibrate_s=float("nan"))
    with pytest.raises(wdp.InvalidArgumentError, match="calibrate_s"):
        wdp.sensing.sense(run["csi"], run["timestamps"], calibrate_s=-1)
    bad = run["csi"].copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(wdp.DspError, match="non-finite"):
        dsp.align_chains(bad)
    nexmon = WALK.parent / "nexmon_bcm43455c0_walk_1597159475.pcap"
    if nexmon.exists():
        with pytest.raises(wdp.InvalidArgumentError, match="bandwidth must be 20, 40, 80 or 160"):
            wdp.read_csi(nexmon, bandwidth=7)
        assert len(wdp.read_csi(nexmon, bandwidth=80))
    with pytest.raises(wdp.InvalidArgumentError, match="threads must be"):
        wdp.Model.default(threads=1000)


def test_a_multi_node_run_with_a_short_true_time_is_refused():
    two = {"name": "two", "room": {"size": [6.0, 5.0, 3.0]},
           "nodes": [{"name": "a", "placement": {"tx_position": [0.2, 2.5, 1.2],
                                                 "rx_position": [5.8, 2.5, 1.2]}},
                     {"name": "b", "placement": {"tx_position": [0.2, 2.5, 1.2],
                                                 "rx_position": [3.0, 4.8, 1.2]}}]}
    d = sim.generate(two, seed=1, duration_s=1.0)
    d["nodes"][0]["true_time"] = d["nodes"][0]["true_time"][:3]
    with pytest.raises(wdp.InvalidArgumentError, match=r"nodes\[0\]: 3 true_time values"):
        wdp.analyze(d, model=None)


def test_injected_timestamps_must_be_finite(run):
    with wdp.Server(model=None) as s:
        s.add_environment("e")
        for bad in (float("nan"), float("inf")):
            stamps = np.asarray(run["timestamps"][:4]).copy()
            stamps[2] = bad
            with pytest.raises(wdp.InvalidArgumentError, match="finite"):
                s.inject_csi("e", run["csi"][:4], stamps)
        assert s.inject_csi("e", run["csi"][:4], run["timestamps"][:4]) == 4
