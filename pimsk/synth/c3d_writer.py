"""Write a C3D file (markers in mm, analog EMG in V) with ezc3d's writer.

The native writer runs in a spawned child process: in a process where OpenSim's SWIG wrappers have already
converted ``std::vector<std::string>`` values, ezc3d's ``Parameter.set`` rejects Python lists of strings (the two
SWIG modules share one type table), and a native crash must not take the caller down either.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pimsk.errors import C3DError


def write_c3d(path: Path, markers_mm: np.ndarray, marker_labels: list[str], marker_rate_hz: float,
              analog_v: np.ndarray | None = None, analog_labels: list[str] | None = None,
              analog_rate_hz: float | None = None, subject: str = "", description: str = "") -> Path:
    """Write ``path`` in a fresh child process; arguments as :func:`write_c3d_in_process`."""
    args = (Path(path), np.asarray(markers_mm, dtype=float), list(marker_labels), float(marker_rate_hz),
            None if analog_v is None else np.asarray(analog_v, dtype=float),
            None if analog_labels is None else list(analog_labels),
            None if analog_rate_hz is None else float(analog_rate_hz), str(subject), str(description))
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(write_c3d_in_process, *args).result()
        except ValueError:
            raise
        except Exception as exc:  # a crashed child or an ezc3d error
            raise C3DError(f"writing the C3D file failed: {type(exc).__name__}: {exc}", file=str(path)) from None


def write_c3d_in_process(path: Path, markers_mm: np.ndarray, marker_labels: list[str], marker_rate_hz: float,
              analog_v: np.ndarray | None = None, analog_labels: list[str] | None = None,
              analog_rate_hz: float | None = None, subject: str = "", description: str = "") -> Path:
    """markers_mm: (n_frames, n_markers, 3) lab frame, mm; analog_v: (n_frames * ratio, n_channels),
    ratio = analog_rate_hz / marker_rate_hz (a whole number). Floats are stored as 32-bit reals."""
    import ezc3d

    markers_mm = np.asarray(markers_mm, dtype=float)
    n, k, _ = markers_mm.shape
    c = ezc3d.c3d()
    p = c["parameters"]
    p["POINT"]["RATE"]["value"] = [float(marker_rate_hz)]
    p["POINT"]["LABELS"]["value"] = list(marker_labels)
    p["POINT"]["DESCRIPTIONS"]["value"] = [""] * k
    p["POINT"]["UNITS"]["value"] = ["mm"]
    points = np.ones((4, k, n))
    points[:3] = np.transpose(markers_mm, (2, 1, 0))
    c["data"]["points"] = points
    if analog_v is not None and analog_v.size:
        analog_v = np.asarray(analog_v, dtype=float)
        ratio = analog_rate_hz / marker_rate_hz
        if abs(ratio - round(ratio)) > 1e-9 or analog_v.shape[0] != n * int(round(ratio)):
            raise ValueError(f"{analog_v.shape[0]} analog samples do not match {n} frames at ratio {ratio}")
        p["ANALOG"]["RATE"]["value"] = [float(analog_rate_hz)]
        p["ANALOG"]["LABELS"]["value"] = list(analog_labels or [])
        p["ANALOG"]["DESCRIPTIONS"]["value"] = ["EMG"] * analog_v.shape[1]
        p["ANALOG"]["UNITS"]["value"] = ["V"] * analog_v.shape[1]
        c["data"]["analogs"] = analog_v.T[None, :, :]
    if subject:
        c.add_parameter("SUBJECTS", "NAMES", [subject])
    if description:
        c.add_parameter("TRIAL", "DESCRIPTION", [description])
    path.parent.mkdir(parents=True, exist_ok=True)
    c.write(str(path))
    return path
