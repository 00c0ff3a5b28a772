"""The two C3D back-ends (ezc3d, the `c3d` package), normalised to one plain dict, plus a worker loop.

Run as ``python -m pimsk.io._c3d_worker``: the worker reads length-prefixed pickled requests
``(path, reader_name)`` on stdin and answers ``("ok", dict)`` or ``("error", message)`` on a private copy of
its stdout (fd 1 itself is pointed at stderr so native libraries cannot corrupt the protocol). A segfault, an
abort or a runaway allocation kills only this process; :mod:`pimsk.io.c3d_read` turns that into a fallback.

The normalised dict (all numpy arrays are float64, time-first):
``points`` (n_frames, n_points, 3) in file units with NaN where residual < 0; ``residuals`` (n_frames, n_points);
``analog`` (n_analog_frames, n_channels) in physical units; ``point_rate_hz``; ``first_frame`` (1-based);
``params`` {GROUP: {NAME: list[str] | ndarray}} with ndarray shaped by the C3D dimensions (first index fastest);
``warnings`` list[str].

Test hook: the environment variable ``PIMSK_C3D_WORKER_FAULT`` = ``abort`` | ``segv`` | ``hang`` | ``exit``
(optionally ``:c3d`` or ``:*``; default target ezc3d) makes the worker misbehave that way when asked to read
with that back-end (used to prove the isolation).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.io._c3d_layout import RawParameter, decode_parameter

FAULT_ENV = "PIMSK_C3D_WORKER_FAULT"


# ----------------------------------------------------------------------------------------------------- ezc3d
def read_with_ezc3d(path: str | Path) -> dict[str, Any]:
    """Read with ezc3d (C++). May crash the process on malformed files: call it in the worker."""
    import ezc3d

    c3d = ezc3d.c3d(str(path))
    params: dict[str, dict[str, Any]] = {}
    for group_name, group in c3d["parameters"].items():
        if group_name.startswith("__") or not isinstance(group, dict):
            continue
        bucket = params.setdefault(group_name.strip().upper(), {})
        for name, entry in group.items():
            if name.startswith("__") or not isinstance(entry, dict) or "value" not in entry:
                continue
            value = entry["value"]
            if isinstance(value, (list, tuple)):
                value = [str(v).rstrip(" \x00") for v in value]
            else:
                value = np.asarray(value)
                value = value.astype(np.float64) if value.dtype.kind == "f" else value.astype(np.int64)
            bucket.setdefault(name.strip().upper(), value)
    data = c3d["data"]
    points = np.asarray(data["points"], dtype=np.float64)  # (4, n_points, n_frames)
    residuals = np.asarray(data["meta_points"]["residuals"], dtype=np.float64)  # (1, n_points, n_frames)
    analogs = np.asarray(data["analogs"], dtype=np.float64)  # (1, n_channels, n_analog_frames)
    xyz = np.ascontiguousarray(points[:3].transpose(2, 1, 0))
    res = np.ascontiguousarray(residuals[0].T) if residuals.size else np.zeros(xyz.shape[:2])
    xyz[res < 0] = np.nan
    header = c3d["header"]["points"]
    return {
        "points": xyz,
        "residuals": res,
        "analog": np.ascontiguousarray(analogs[0].T) if analogs.size else np.zeros((0, 0)),
        "point_rate_hz": float(header["frame_rate"]),
        "first_frame": int(header["first_frame"]) + 1,  # ezc3d reports it 0-based
        "params": params,
        "warnings": [],
    }


# ------------------------------------------------------------------------------------------------- c3d (py)
def analog_factors(
    params: dict[str, dict[str, Any]], n_channels: int, unsigned: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-channel (scale, offset) so that real = (raw - offset) * scale, C3D User Guide ANALOG group:
    real = (raw - ANALOG:OFFSET) * ANALOG:SCALE * ANALOG:GEN_SCALE.

    A single SCALE or OFFSET value applies to every channel; missing trailing values default to scale 1 /
    offset 0 (with a note). Offsets of UNSIGNED integer data are read unsigned.
    """
    notes: list[str] = []
    analog = params.get("ANALOG", {})

    def per_channel(name: str, default: float) -> np.ndarray:
        parts = [analog.get(name, np.zeros(0))]  # NAME, then NAME2, NAME3 ... beyond 255 channels
        k = 2
        while isinstance(analog.get(f"{name}{k}"), np.ndarray):
            parts.append(analog[f"{name}{k}"])
            k += 1
        values = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in parts])
        if values.size == 1 and n_channels > 1:
            return np.full(n_channels, values[0])
        out = np.full(n_channels, default)
        k = min(values.size, n_channels)
        out[:k] = values[:k]
        if values.size < n_channels and (values.size or name == "SCALE"):
            notes.append(f"ANALOG:{name} has {values.size} values for {n_channels} channels; rest set to {default}")
        return out

    scale = per_channel("SCALE", 1.0)
    offset = per_channel("OFFSET", 0.0)
    if unsigned:
        offset = np.mod(offset, 65536.0)
    gen = np.asarray(analog.get("GEN_SCALE", np.ones(1)), dtype=np.float64).reshape(-1)
    gen_scale = float(gen[0]) if gen.size else 1.0
    return scale * gen_scale, offset, notes


def read_with_c3d(path: str | Path) -> dict[str, Any]:
    """Read with the pure-Python `c3d` package (handles SGI/MIPS); analog transformed per the spec here."""
    import c3d

    notes: list[str] = []
    with open(path, "rb") as handle, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = c3d.Reader(handle)
        processor = str(reader.proc_type).lower()  # 'intel' | 'dec' | 'mips'
        params: dict[str, dict[str, Any]] = {}
        for group_name, group in reader.group_items():
            if not isinstance(group_name, str):
                continue
            bucket = params.setdefault(group_name.strip().upper(), {})
            for name, param in group.param_items():
                raw = RawParameter(int(param.bytes_per_element), tuple(int(d) for d in param.dimensions), param.bytes)
                bucket.setdefault(name.strip().upper(), decode_parameter(raw, processor))
        n_points = int(reader.point_used)
        n_channels = int(reader.analog_used)
        expected = int(reader.frame_count)
        scale, offset, more = analog_factors(params, n_channels, bool(reader.analog_format_unsigned))
        notes += more
        per_frame = int(reader.analog_per_frame) if n_channels else 0
        # c3d 0.6 always applies its own transform (which rejects a SCALE shorter than the channel count and
        # longer than 1): hand it ours, broadcast to its (channels, samples per frame) layout.
        transform = (
            np.broadcast_to(scale[:, None], (n_channels, per_frame)),
            np.broadcast_to(offset[:, None], (n_channels, per_frame)),
        )
        reader.get_analog_transform = lambda: transform
        frames_pts: list[np.ndarray] = []
        frames_analog: list[np.ndarray] = []
        for _, pts, analog in reader.read_frames(copy=True, analog_transform=True, check_nan=True):
            frames_pts.append(pts)
            if n_channels:
                frames_analog.append(np.asarray(analog, dtype=np.float64).T)
        notes += [str(w.message).split("\n")[0] for w in caught]
        if len(frames_pts) != expected:
            raise ValueError(f"read {len(frames_pts)} of {expected} frames (file truncated?)")
        point_rate = float(reader.point_rate)
        first_frame = int(reader.header.first_frame)
    pts = np.stack(frames_pts).astype(np.float64) if frames_pts else np.zeros((0, n_points, 5))
    xyz = np.ascontiguousarray(pts[:, :, :3])
    res = np.ascontiguousarray(pts[:, :, 3])
    xyz[res < 0] = np.nan
    if frames_analog:
        analog = np.concatenate(frames_analog, axis=0)
    else:
        analog = np.zeros((0, n_channels))
    return {
        "points": xyz,
        "residuals": res,
        "analog": np.ascontiguousarray(analog),
        "point_rate_hz": point_rate,
        "first_frame": first_frame,
        "params": params,
        "warnings": notes,
    }


READERS = {"ezc3d": read_with_ezc3d, "c3d": read_with_c3d}


# ----------------------------------------------------------------------------------------------- worker loop
def _read_exact(stream, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _fault(reader: str) -> None:
    """Test hook: misbehave as ``PIMSK_C3D_WORKER_FAULT`` = ``kind[:reader]`` says (reader ezc3d by default,
    ``*`` for both); kind is abort | segv | hang | exit."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return
    kind, _, target = spec.partition(":")
    if (target or "ezc3d") not in (reader, "*"):
        return
    if kind == "abort":
        os.abort()
    elif kind == "segv":
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
    elif kind == "hang":
        import time

        while True:
            time.sleep(1)
    elif kind == "exit":
        os._exit(3)


def serve() -> None:
    """Answer requests until stdin closes. One request: 8-byte big-endian length + pickle((path, reader))."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything native code prints goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    while True:
        head = _read_exact(inp, 8)
        if head is None:
            return
        body = _read_exact(inp, struct.unpack(">Q", head)[0])
        if body is None:
            return
        path, reader = pickle.loads(body)
        _fault(reader)
        try:
            reply: tuple[str, Any] = ("ok", READERS[reader](path))
        except MemoryError:
            reply = ("error", "MemoryError: out of memory while reading")
        except Exception as exc:  # any reader failure becomes a message for the parent
            cls = type(exc)
            kind = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"
            reply = ("error", f"{kind}: {exc}")
        try:
            payload = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            payload = pickle.dumps(("error", f"unpicklable result: {exc}"))
        out.write(struct.pack(">Q", len(payload)) + payload)
        out.flush()


def _limit_memory() -> None:
    """Cap the worker's address space (env PIMSK_C3D_WORKER_MAX_GB, default 4) so a bad file fails, not swaps."""
    try:
        import resource

        gb = float(os.environ.get("PIMSK_C3D_WORKER_MAX_GB", "4"))
        limit = int(gb * 1024**3)
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this worker when its parent dies (a hung native read cannot outlive it)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass


if __name__ == "__main__":
    _die_with_parent()
    _limit_memory()
    serve()
