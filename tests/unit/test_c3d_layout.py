"""Pure-Python pieces of the C3D reader, on hand-built bytes (no data folder, no worker)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pimsk.errors import C3DError
from pimsk.io._c3d_layout import RawParameter, dec_to_float, decode_parameter, inspect_c3d
from pimsk.io._c3d_mutate import minimal_c3d
from pimsk.io._c3d_worker import analog_factors
from pimsk.io.c3d_read import _events, clean_labels


def test_dec_floats_hand_solved() -> None:
    """DEC F-floating: word0 = sign | exponent (bias 128) | 7 high fraction bits, mantissa 0.1f, little-endian
    words. 1.0 = 0.5 * 2^1 -> exponent 129 -> word0 0x4080; -2.5 = -0.625 * 2^2 -> 0xC120."""
    raw = bytes([0x80, 0x40, 0, 0, 0x20, 0xC1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(dec_to_float(raw), [1.0, -2.5, 0.0])


def test_parameter_decoding_uses_c3d_dimension_order() -> None:
    """First index fastest: CHANNEL(6, 2) stored 1..12 gives plate 2 = channels 7..12."""
    raw = RawParameter(2, (6, 2), struct.pack("<12h", *range(1, 13)))
    value = decode_parameter(raw, "intel")
    assert value.shape == (6, 2) and list(value[:, 1]) == [7, 8, 9, 10, 11, 12]
    big = RawParameter(2, (2,), struct.pack(">2h", 300, -2))
    assert list(decode_parameter(big, "mips")) == [300, -2]
    text = RawParameter(-1, (4, 3), b"RFT1LA  \x00\x00\x00\x00")
    assert decode_parameter(text, "intel") == ["RFT1", "LA", ""]


def test_clean_labels() -> None:
    assert clean_labels([" RFT1 ", "", "LA", "LA", "\x04"], 6, "point") == [
        "RFT1", "point2", "LA", "LA_2", "point5", "point6"
    ]
    assert clean_labels(["A", "A_2", "A"], 3, "x") == ["A", "A_2", "A_3"]


def test_analog_factors_single_and_missing_values() -> None:
    one = {"ANALOG": {"SCALE": np.array([0.5]), "OFFSET": np.array([10]), "GEN_SCALE": np.array([2.0])}}
    scale, offset, notes = analog_factors(one, 3, unsigned=False)
    np.testing.assert_array_equal(scale, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(offset, [10, 10, 10])
    short = {"ANALOG": {"SCALE": np.array([0.5, 0.25]), "OFFSET": np.array([-1, 0, 0])}}
    scale, offset, notes = analog_factors(short, 3, unsigned=True)
    np.testing.assert_array_equal(scale, [0.5, 0.25, 1.0])
    np.testing.assert_array_equal(offset, [65535, 0, 0])  # UNSIGNED data: offsets are unsigned too
    assert notes and "SCALE" in notes[0]


def test_event_times_are_minutes_and_seconds() -> None:
    params = {
        "EVENT": {
            "USED": np.array([3]),
            "LABELS": ["Foot Strike", "Foot Off", "Foot Strike"],
            "CONTEXTS": ["Left", "Left", "Right"],
            "TIMES": np.array([[1.0, 0.0, 0.0], [0.5, 2.0, 1.25]]),
        }
    }
    events = _events(params)
    assert [(e.label, e.context, e.time_s) for e in events] == [
        ("Foot Strike", "Right", 1.25),
        ("Foot Off", "Left", 2.0),
        ("Foot Strike", "Left", 60.5),
    ]


def _minimal_c3d(n_frames: int = 2, data_frames: int | None = None) -> bytes:
    data = minimal_c3d(np.ones((n_frames, 1, 3)), np.zeros((n_frames, 1)), ["M001"])
    if data_frames is not None:
        data = data[: 2 * 512 + 16 * data_frames]
    return data


def test_minimal_file_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "m.c3d"
    path.write_bytes(_minimal_c3d())
    layout = inspect_c3d(path)
    assert (layout.processor, layout.n_points, layout.n_frames, layout.is_float) == ("intel", 1, 2, True)
    assert layout.value("POINT", "LABELS") == ["M001"]
    path.write_bytes(_minimal_c3d(n_frames=2, data_frames=1))
    with pytest.raises(C3DError, match="truncated"):
        inspect_c3d(path)
    bad = bytearray(_minimal_c3d())
    bad[512 + 3] = 99  # processor type
    path.write_bytes(bytes(bad))
    with pytest.raises(C3DError, match="processor"):
        inspect_c3d(path)
