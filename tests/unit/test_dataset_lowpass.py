"""`lowpass_hz` of a dataset spec: a target role is low-passed over the whole trial before it is cut."""

from __future__ import annotations

import numpy as np
import pytest

from pimsk.errors import ConfigError
from pimsk.io.containers import Table
from pimsk.io.storage import write_storage
from pimsk.learn.dataset_file import build_dataset

RATE_HZ = 100.0


def _files(tmp_path) -> dict:
    t = np.arange(0.0, 4.0, 1.0 / RATE_HZ)
    slow = 0.5 * np.sin(2 * np.pi * 1.0 * t)          # rad: passes a 10 Hz low-pass
    fast = 0.01 * np.sin(2 * np.pi * 40.0 * t)        # rad: "IK noise" at 40 Hz, removed
    write_storage(tmp_path / "env.sto", Table(t, np.c_[np.abs(slow), np.abs(slow)], ["A", "B"], name="env"))
    write_storage(tmp_path / "q.mot", Table(t, (slow + fast)[:, None], ["q"], name="q"))
    return {"t": t, "slow": slow}


def _spec(**extra) -> dict:
    return {"targets": {"coordinates": ["q"]}, "samples": {"kind": "window", "length": 400, "stride": 400},
            "trials": [{"name": "t1", "emg": "env.sto", "coordinates": "q.mot"}], **extra}


def test_lowpass_removes_the_fast_part_and_keeps_the_slow_one(tmp_path) -> None:
    f = _files(tmp_path)
    raw = build_dataset(_spec(), tmp_path).targets[0, :, 0]
    filtered = build_dataset(_spec(lowpass_hz={"coordinates": 10.0}), tmp_path).targets[0, :, 0]
    assert np.max(np.abs(raw - f["slow"])) > 0.009          # the 40 Hz part is there without the filter
    inner = slice(50, -50)                                    # away from the filter's edges
    assert np.max(np.abs(filtered[inner] - f["slow"][inner])) < 1e-3


@pytest.mark.parametrize("value, field", [({"forces": 10.0}, "lowpass_hz.forces"),
                                          ({"coordinates": -1.0}, "lowpass_hz.coordinates"),
                                          ({"coordinates": 80.0}, "lowpass_hz.coordinates"),
                                          (10.0, "lowpass_hz")])
def test_bad_lowpass_names_the_field(tmp_path, value, field) -> None:
    _files(tmp_path)
    with pytest.raises(ConfigError) as info:
        build_dataset(_spec(lowpass_hz=value), tmp_path)
    assert info.value.field == field
