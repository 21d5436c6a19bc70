"""One exception hierarchy: every error the package raises is a ``WiFiDensePoseError`` and
still the built-in it was before (``ValueError``, ``OSError``...). Each class is triggered
for real (a bad file, a bad argument, a running server, a model that fails mid-run), not
constructed; a scan of the sources keeps new code from raising a bare built-in."""

from __future__ import annotations

import asyncio
import inspect
import os
import pathlib
import pkgutil
import re
from collections.abc import Callable

import numpy as np
import pytest
import wifi_densepose as wdp
from wifi_densepose import cli, config, errors, features, testing
from wifi_densepose.model import Model

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_CSI = ROOT.parent / "shared" / "data" / "csi"

# Each class, the built-in it must still be, and a call that raises it.
Case = tuple[type[BaseException], type[BaseException], Callable[[pathlib.Path], object]]


def _bad_csi(tmp: pathlib.Path) -> object:
    path = tmp / "noise.bin"
    path.write_bytes(bytes(range(7, 250)) * 3)
    return wdp.read_csi(path)  # no format given, and none can be told


def _usage(tmp: pathlib.Path) -> object:
    args = cli.build_parser().parse_args(["serve", "--config", str(tmp / "x.toml"),
                                          "--replay", "walk.dat"])
    return cli._serve_config(args)


def _config_file(tmp: pathlib.Path) -> object:
    path = tmp / "wdp.toml"
    path.write_text("[[environments]]\nid = 'a'\nsource = 'teleport'\n")
    return config.load(path)


def _inference(tmp: pathlib.Path) -> object:
    # Fits the contract as declared, but reshapes to a batch of one inside: two windows
    # make ONNX Runtime fail while running (training/make_bad_fixture.py).
    model = Model.load(FIXTURES / "batch_of_one.onnx")
    model.predict(np.zeros((1, 2, 32, 90), np.float32))  # one window runs
    return model.predict(np.zeros((2, 2, 32, 90), np.float32))


def _recording_index(tmp: pathlib.Path) -> object:
    path = next(iter(sorted(SHARED_CSI.glob("intel5300_*.dat"))), None)
    if path is None:
        pytest.skip(f"no Intel 5300 sample under {SHARED_CSI}")
    rec = wdp.read_csi(path)
    return rec[len(rec) + 5]


CASES: dict[str, Case] = {
    "csi format": (wdp.CsiFormatError, ValueError, _bad_csi),
    "csi missing file": (wdp.PathNotFoundError, FileNotFoundError,
                         lambda tmp: wdp.read_csi(tmp / "no_such.dat")),
    # Not a regular file: refused by name before any read (a FIFO would block).
    "csi read a directory": (wdp.CsiFormatError, ValueError,
                             lambda tmp: wdp.read_csi(tmp, format="intel5300")),
    "csi unknown format name": (wdp.InvalidArgumentError, ValueError,
                                lambda tmp: wdp.read_csi(tmp / "x.dat", format="morse")),
    "csi frame index": (wdp.OutOfBoundsError, IndexError, _recording_index),
    "dsp bad parameter": (wdp.DspError, ValueError,
                          lambda tmp: wdp.dsp.hampel(np.zeros((8, 4), np.float32), window=0)),
    "dsp wrong dtype": (wdp.ArgumentTypeError, TypeError,
                        lambda tmp: wdp.dsp.sanitize(np.zeros((1, 3, 30), np.float64))),
    "simulator scenario": (wdp.SimulationError, ValueError,
                           lambda tmp: wdp.sim.generate(scenario="no_such_scenario")),
    "model file": (wdp.ModelLoadError, RuntimeError,
                   lambda tmp: Model.load(FIXTURES / "bad_window.onnx")),
    "model input": (wdp.InvalidArgumentError, ValueError,
                    lambda tmp: Model.default().predict(np.zeros((1, 2, 16, 90), np.float32))),
    "model run": (wdp.InferenceError, RuntimeError, _inference),
    "features antennas": (wdp.InvalidArgumentError, ValueError,
                          lambda tmp: features.condition_recording(
                              np.zeros((40, 1, 2, 30), np.complex64))),
    "server config (engine)": (wdp.ConfigError, ValueError,
                               lambda tmp: wdp.Server(config={"no_such_limit": 1})),
    "server config file": (wdp.ConfigError, ValueError, _config_file),
    "server config path": (wdp.PathNotFoundError, FileNotFoundError,
                           lambda tmp: wdp.Server(config=str(tmp / "none.toml"))),
    "server bad key": (wdp.InvalidArgumentError, ValueError,
                       lambda tmp: wdp.Server(jwt_secret="")),
    "server wrong type": (wdp.ArgumentTypeError, TypeError,
                          lambda tmp: wdp.Server(model=3).start()),  # type: ignore[arg-type]
    "server event type": (wdp.InvalidArgumentError, ValueError,
                          lambda tmp: wdp.Server().publish("no_such_event", {})),
    "command line": (wdp.UsageError, ValueError, _usage),
    "message envelope": (wdp.ArgumentTypeError, TypeError,
                         lambda tmp: wdp.Message.from_dict({"no": "type"})),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_every_error_is_a_wifidensepose_error_and_its_old_builtin(case, tmp_path):
    cls, builtin, call = CASES[case]
    with pytest.raises(cls) as info:
        call(tmp_path)
    assert isinstance(info.value, wdp.WiFiDensePoseError)
    assert isinstance(info.value, builtin), f"{cls.__name__} is no longer a {builtin.__name__}"
    assert str(info.value), "the message says what was wrong"


def test_server_errors_on_a_running_server(tmp_path):
    with wdp.Server() as server:
        with pytest.raises(wdp.ServerError) as info:
            server.start()
        assert isinstance(info.value, RuntimeError)
        server.add_environment("room_001")
        with pytest.raises(wdp.PathNotFoundError) as missing:
            server.replay("room_001", tmp_path / "missing.dat")
        assert isinstance(missing.value, FileNotFoundError)
        with pytest.raises(wdp.ArgumentTypeError):
            server.inject_csi("room_001", np.zeros((1, 3, 30), np.float64))
        with pytest.raises(wdp.SimulationError):
            server.simulate("room_001", scenario="no_such_scenario")
        with pytest.raises(wdp.WaitTimeoutError) as waited:
            testing.collect(server, "system_event").wait(1, timeout=0.05)
        assert isinstance(waited.value, TimeoutError)


async def test_client_errors_are_protocol_errors_and_timeouts():
    with wdp.Server() as server:
        server.add_environment("room_001")
        token = server.issue_token("me", environments=["room_001"])
        async with wdp.Client(server.url, token, reconnect=False) as client:
            with pytest.raises(wdp.SubscriptionError) as bad:
                await client.subscribe("no_such_event")
            with pytest.raises(wdp.PermissionDenied) as denied:
                await client.subscribe("pose_data", environment_id="someone_elses_room")
            with pytest.raises(wdp.WaitTimeoutError) as waited:
                await client.recv(timeout=0.05)
            with pytest.raises(wdp.ArgumentTypeError):
                await client.subscribe("pose_data", no_such_option=1)
        for e in (bad.value, denied.value):
            assert isinstance(e, wdp.ProtocolError) and isinstance(e, wdp.WiFiDensePoseError)
        assert isinstance(waited.value, TimeoutError)
        assert isinstance(waited.value, asyncio.TimeoutError)  # the same class since 3.11


def _package_modules() -> list:
    import importlib

    names = [m.name for m in pkgutil.iter_modules(wdp.__path__, "wifi_densepose.")]
    return [wdp, wdp._native, wdp._native.dsp] + [importlib.import_module(n) for n in names]


def test_every_exception_class_of_the_package_is_in_the_hierarchy():
    found = {}
    for module in _package_modules():
        for name, value in vars(module).items():
            # Warnings (CsiFormatWarning) are not errors: they are never raised.
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and not issubclass(value, Warning)
                    and value.__module__.startswith("wifi_densepose")):
                found[f"{module.__name__}.{name}"] = value
    assert found, "the scan found the package's exceptions"
    for where, cls in found.items():
        assert issubclass(cls, wdp.WiFiDensePoseError), f"{where} is not a WiFiDensePoseError"
        assert cls.__name__ in errors.__all__, f"{where} is missing from wifi_densepose.errors"
    # Each class is one class wherever it is imported from.
    assert config.ConfigError is wdp.ConfigError is wdp._native.ConfigError
    assert cli.UsageError is wdp.UsageError
    assert wdp.client.ProtocolError is wdp.ProtocolError
    assert wdp.sim.SimulationError is wdp.SimulationError
    assert wdp.model.ModelLoadError is wdp.ModelLoadError
    assert wdp.dsp.DspError is wdp.DspError
    for name in errors.__all__:
        assert getattr(wdp, name) is getattr(errors, name)
        assert issubclass(getattr(errors, name), wdp.WiFiDensePoseError)


def test_the_classes_pickle_and_name_their_module():
    import pickle

    e = wdp.CsiFormatError("x.dat: byte 12: bad")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is wdp.CsiFormatError and back.args == e.args
    assert wdp.CsiFormatError.__module__ == "wifi_densepose._native"
    assert wdp.CsiFormatError.__mro__[1:3] == (wdp.WiFiDensePoseError, ValueError)
    assert wdp.WiFiDensePoseError.__mro__[1] is Exception


# A raise of a bare built-in in the package's code, Python or the Rust bindings: each has
# a class in the hierarchy instead. (pyo3's own argument conversion still raises plain
# TypeError for an argument of the wrong Python type; that is not our code.)
_PY_BARE = re.compile(r"raise (ValueError|TypeError|RuntimeError|OSError|IndexError|KeyError|"
                      r"TimeoutError|FileNotFoundError|Exception)\(")
_RS_BARE = re.compile(r"\bPy(ValueError|TypeError|RuntimeError|OSError|IndexError|KeyError|"
                      r"TimeoutError|FileNotFoundError|Exception)::new_err")


def test_no_bare_builtin_raise_in_the_package():
    offenders = []
    for path in sorted((ROOT / "python" / "wifi_densepose").glob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if _PY_BARE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    for path in sorted((ROOT / "src" / "python").glob("*.rs")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if _RS_BARE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "raise a class of wifi_densepose.errors:\n" + "\n".join(offenders)


def test_the_vocabulary_is_the_engines():
    assert wdp.ACTIVITIES == ("standing", "walking", "sitting", "lying", "falling")
    assert wdp.model.ACTIVITIES is wdp.ACTIVITIES and wdp.sim.ACTIVITIES is wdp.ACTIVITIES
    assert wdp.server.EVENT_TYPES is wdp.EVENT_TYPES
    assert len(wdp.EVENT_TYPES) == 10 and "activity_event" in wdp.EVENT_TYPES
    data = wdp.sim.generate(scenario="walk", seed=1, duration_s=1.0)
    assert tuple(data["activity_names"]) == wdp.ACTIVITIES


def test_what_is_not_a_file_is_refused_by_name(tmp_path):
    # A directory (or FIFO, socket, device) is refused before any read, naming the path.
    with pytest.raises(wdp.CsiFormatError, match=re.escape(os.fspath(tmp_path))):
        wdp.read_csi(tmp_path, format="intel5300")
