"""The conditioner's settings cross into the engine as one dict (src/python/dsp.rs,
``Settings``): converted as ``int()``/``float()`` would, defaults from the engine, unknown
names refused."""

from __future__ import annotations

import numpy as np
import pytest
from wifi_densepose import dsp
from wifi_densepose._native import dsp as native

RNG = np.random.default_rng(20261206)


def rand_csi(shape):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(np.complex64)


def test_missing_settings_are_the_engines_defaults_and_match_the_signature():
    csi = rand_csi((80, 1, 3, 30))
    a, p, m = dsp.condition(csi)
    na, np_, nm = native.condition(csi, None, {})
    nb = native.condition(csi, None, None)
    np.testing.assert_array_equal(a, na)
    np.testing.assert_array_equal(p, np_)
    np.testing.assert_array_equal(m, nm)
    np.testing.assert_array_equal(nb[0], na)
    # motion_window=50 by default: NaN before 50 frames, values after.
    assert np.isnan(m[:49]).all() and np.isfinite(m[60:]).all()


def test_values_convert_as_int_and_float_would():
    csi = rand_csi((60, 1, 3, 30))
    plain = dsp.condition(csi, hampel_window=2, fs=100.0, low=None, high=20.0)
    loose = dsp.condition(csi, hampel_window=np.int64(2), fs="100", high=np.float32(20.0))
    for x, y in zip(plain, loose):
        np.testing.assert_array_equal(x, y)
    c = dsp.Conditioner(hampel_window=2.0, n_subcarriers=np.uint8(16))
    amplitude, _, _ = c.push(csi[0])
    assert amplitude.shape == (1, 3, 16)


def test_bad_settings_are_refused_naming_the_setting():
    with pytest.raises(TypeError, match="unknown conditioner setting 'hampel'"):
        native.Conditioner({"hampel": 3})
    with pytest.raises(TypeError, match="conditioner setting 'fs'"):
        native.Conditioner({"fs": None})
    with pytest.raises(TypeError, match="must be a dict"):
        native.Conditioner([("fs", 100.0)])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        dsp.Conditioner(order="four")  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # a range the engine refuses: a DspError
        dsp.Conditioner(motion_window=1)
