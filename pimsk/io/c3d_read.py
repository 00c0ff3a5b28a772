"""Robust C3D reading: pre-check in process, read in an isolated worker (ezc3d, then the `c3d` package).

``read_c3d(path)`` returns a :class:`~pimsk.io.c3d_data.C3DData` or raises :class:`~pimsk.errors.C3DError`
naming the file (and subject/trial when given). It never lets a native crash, a hang or a runaway allocation
take the calling process down:

1. :func:`pimsk.io._c3d_layout.inspect_c3d` parses the header and parameter section in pure Python with strict
   bounds and rejects non-C3D, truncated or self-contradictory files (cheap: well under a millisecond).
2. ezc3d reads the file in a persistent child process (``python -m pimsk.io._c3d_worker``) under a timeout and
   an address-space cap; if it crashes, hangs or raises, the child is replaced and the pure-Python `c3d`
   package reads it there instead (it also reads the SGI/MIPS encoding ezc3d rejects).
3. The normalised arrays come back through a pipe and are turned into a ``C3DData`` here, reader-independent.

Conventions: markers in the file's units (``markers.units``), NaN where the residual word is negative
(C3D spec: invalid point); ``markers.time_s = (first_frame - 1 + i) / point_rate`` so it shares its origin with
EVENT:TIMES; analog in physical units, ``(raw - OFFSET) * SCALE * GEN_SCALE`` (C3D User Guide, ANALOG group).
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import C3DError
from pimsk.io._c3d_layout import C3DLayout, inspect_c3d
from pimsk.io.c3d_data import C3DData, Event, ForcePlate
from pimsk.io.containers import Markers

READER_ORDER = ("ezc3d", "c3d")
PLATE_CHANNELS = {1: 6, 2: 6, 3: 8, 4: 6, 5: 8, 6: 12, 7: 8}


class _WorkerFailure(Exception):
    """The worker process died, hung or broke the protocol."""


class _Worker:
    """A persistent child process running :mod:`pimsk.io._c3d_worker`; replaced after any failure."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env.pop("PYTHONFAULTHANDLER", None)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.stderr = tempfile.TemporaryFile()
        self.pid_of_parent = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pimsk.io._c3d_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            close_fds=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Kill the child (it holds no state worth a graceful exit) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.stderr.close()

    def _stderr_tail(self, n_chars: int = 2000) -> str:
        """Last non-empty line the child wrote to stderr during the current request (e.g. a C++ 'terminate')."""
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - n_chars))
            lines = [ln.strip() for ln in self.stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            return lines[-1][:200] if lines else ""
        except (OSError, ValueError):
            return ""

    def _death(self) -> _WorkerFailure:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        tail = self._stderr_tail()
        return _WorkerFailure(f"reader process {how}" + (f" ({tail})" if tail else ""))

    def _read(self, n: int, deadline: float, timeout_s: float) -> bytes:
        fd = self.proc.stdout.fileno()
        chunks: list[bytes] = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                raise _WorkerFailure(f"reader process timed out after {timeout_s:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise self._death()
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def request(self, path: Path, reader: str, timeout_s: float) -> tuple[str, Any]:
        payload = pickle.dumps((str(path), reader))
        try:
            self.stderr.seek(0)
            self.stderr.truncate()
        except OSError:
            pass
        try:
            self.proc.stdin.write(struct.pack(">Q", len(payload)) + payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._death() from None
        deadline = time.monotonic() + timeout_s
        (length,) = struct.unpack(">Q", self._read(8, deadline, timeout_s))
        if length > 1 << 34:
            raise _WorkerFailure(f"reader process sent a {length}-byte reply")
        try:
            return pickle.loads(self._read(length, deadline, timeout_s))
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise _WorkerFailure(f"unreadable reply from reader process: {exc}") from None


_LOCK = threading.Lock()
_WORKER: _Worker | None = None


def shutdown_worker() -> None:
    """Stop the persistent reader process (a later read starts a new one, with the then-current environment)."""
    global _WORKER
    with _LOCK:
        if _WORKER is not None and _WORKER.pid_of_parent == os.getpid():
            _WORKER.stop()
        _WORKER = None


atexit.register(shutdown_worker)


def _read_isolated(path: Path, reader: str, timeout_s: float) -> dict[str, Any]:
    """Run one back-end in the worker; raise RuntimeError(reason) on any failure (worker replaced if it broke)."""
    global _WORKER
    with _LOCK:
        if _WORKER is not None and _WORKER.pid_of_parent != os.getpid():
            _WORKER = None  # inherited through fork: that worker belongs to the parent process
        if _WORKER is None or not _WORKER.alive():
            if _WORKER is not None:
                _WORKER.stop()
            try:
                _WORKER = _Worker()
            except OSError as exc:
                raise RuntimeError(f"cannot start reader process: {exc}") from None
        try:
            status, value = _WORKER.request(path, reader, timeout_s)
        except _WorkerFailure as exc:
            _WORKER.stop()
            _WORKER = None
            raise RuntimeError(str(exc)) from None
        except BaseException:  # e.g. KeyboardInterrupt mid-request: a half-read reply would poison the pipe
            _WORKER.stop()
            _WORKER = None
            raise
    if status != "ok":
        raise RuntimeError(str(value))
    if not isinstance(value, dict):
        raise RuntimeError("reader process returned no data")
    return value


# ------------------------------------------------------------------------------------------ building C3DData
def _strings(params: dict[str, dict[str, Any]], group: str, name: str) -> list[str]:
    """A character parameter plus its continuations NAME2, NAME3, ... (used when > 255 entries)."""
    out: list[str] = []
    bucket = params.get(group, {})
    for key in [name] + [f"{name}{k}" for k in range(2, 100)]:
        value = bucket.get(key)
        if value is None:
            if key != name:
                break
            continue
        if isinstance(value, np.ndarray):
            break
        out.extend(str(v) for v in value)
    return out


def _numbers(params: dict[str, dict[str, Any]], group: str, name: str) -> np.ndarray | None:
    value = params.get(group, {}).get(name)
    if value is None or not isinstance(value, np.ndarray):
        return None
    return value


def _first_number(params: dict[str, dict[str, Any]], group: str, name: str) -> float | None:
    value = _numbers(params, group, name)
    if value is None or value.size == 0:
        return None
    number = float(value.reshape(-1)[0])
    return number if np.isfinite(number) else None


def clean_labels(raw: list[str], n: int, prefix: str) -> list[str]:
    """n unique, non-blank labels: non-printable characters dropped, stripped; blank or missing ->
    f"{prefix}{i+1}"; repeats -> "name_2", "name_3", ..."""

    def printable(text: str) -> str:
        return "".join(ch for ch in text if ch.isprintable()).strip()

    labels = [(printable(raw[i]) if i < len(raw) else "") or f"{prefix}{i + 1}" for i in range(n)]
    seen: set[str] = set()
    out: list[str] = []
    for label in labels:
        candidate, k = label, 2
        while candidate in seen:
            candidate, k = f"{label}_{k}", k + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _plates(params: dict[str, dict[str, Any]], n_channels: int) -> list[ForcePlate]:
    """FORCE_PLATFORM group -> plates (first USED entries). CHANNEL is 1-based in the file, 0-based here.

    corners_lab: CORNERS(:, k, p) for k = 1..4 as rows; cal_matrix[i, j] = CAL_MATRIX(i+1, j+1, p), i.e. row i,
    column j (the spec stores it column by column), to be used as corrected = cal_matrix @ measured.
    """
    types = _numbers(params, "FORCE_PLATFORM", "TYPE")
    if types is None or types.size == 0:
        return []
    used = _first_number(params, "FORCE_PLATFORM", "USED")
    n_plates = types.size if used is None else min(int(used), types.size)
    corners = _numbers(params, "FORCE_PLATFORM", "CORNERS")
    origin = _numbers(params, "FORCE_PLATFORM", "ORIGIN")
    channel = _numbers(params, "FORCE_PLATFORM", "CHANNEL")
    cal = _numbers(params, "FORCE_PLATFORM", "CAL_MATRIX")
    if channel is None or channel.ndim == 0:
        raise C3DError("FORCE_PLATFORM:TYPE without CHANNEL", field="FORCE_PLATFORM:CHANNEL")
    channel = channel.reshape(channel.shape[0], -1) if channel.ndim != 1 else channel.reshape(-1, 1)
    plates: list[ForcePlate] = []
    n_cal = 0
    for p in range(n_plates):
        plate_type = int(types.reshape(-1)[p])
        n_ch = PLATE_CHANNELS.get(plate_type, channel.shape[0])
        if p >= channel.shape[1] or channel.shape[0] < n_ch:
            raise C3DError(f"plate {p + 1} (type {plate_type}) lacks {n_ch} channels", field="FORCE_PLATFORM:CHANNEL")
        chans = [int(c) - 1 for c in channel[:n_ch, p]]
        if any(c < 0 or c >= n_channels for c in chans):
            raise C3DError(
                f"plate {p + 1} uses channels {[c + 1 for c in chans]} but the file has {n_channels}",
                field="FORCE_PLATFORM:CHANNEL",
            )
        if corners is not None and corners.size >= 12 * (p + 1):
            c = corners.reshape(3, 4, -1)[:, :, p].T.astype(float)  # (4 corners, xyz)
        else:
            c = np.full((4, 3), np.nan)
        if origin is not None and origin.size >= 3 * (p + 1):
            o = origin.reshape(3, -1)[:, p].astype(float)
        else:
            o = np.zeros(3)
        matrix = None
        if plate_type in (3, 4, 5, 6, 7) and cal is not None and cal.ndim >= 2:
            m = cal.reshape(cal.shape[0], cal.shape[1], -1)
            # CAL_MATRIX holds one matrix per plate that needs one; index by plate, else by count of such plates.
            index = p if m.shape[2] >= n_plates else n_cal
            if index < m.shape[2] and m.shape[0] == m.shape[1] == n_ch:
                matrix = m[:, :, index].astype(float)
            n_cal += 1
        plates.append(ForcePlate(plate_type, c, o, chans, matrix))
    return plates


def _events(params: dict[str, dict[str, Any]]) -> list[Event]:
    """EVENT:LABELS/CONTEXTS/TIMES; TIMES is (2, n): minutes, seconds (time = 60 * minutes + seconds)."""
    times = _numbers(params, "EVENT", "TIMES")
    labels = _strings(params, "EVENT", "LABELS")
    if times is None or times.size == 0 or not labels:
        return []
    if times.ndim >= 2 and times.shape[0] == 2:
        t = 60.0 * times[0].reshape(-1) + times[1].reshape(-1)
    else:
        t = times.reshape(-1).astype(float)
    contexts = _strings(params, "EVENT", "CONTEXTS")
    used = _first_number(params, "EVENT", "USED")
    n = min(len(labels), t.size) if used is None else min(int(used), len(labels), t.size)
    events = [
        Event(labels[i].strip(), contexts[i].strip() if i < len(contexts) else "", float(t[i]))
        for i in range(max(n, 0))
        if np.isfinite(t[i])
    ]
    return sorted(events, key=lambda e: e.time_s)


def _flat_parameters(params: dict[str, dict[str, Any]]) -> dict[str, object]:
    return {f"{group}:{name}": value for group, bucket in params.items() for name, value in bucket.items()}


def build_c3d_data(path: Path, raw: dict[str, Any], reader: str, layout: C3DLayout | None = None) -> C3DData:
    """Turn a reader's normalised dict into C3DData (labels cleaned, plates, events, rates, units)."""
    params: dict[str, dict[str, Any]] = raw["params"]
    points = np.asarray(raw["points"], dtype=np.float64)
    if points.ndim != 3 or points.shape[2] != 3:
        raise C3DError(f"point data has shape {points.shape}", field="POINT")
    n_frames, n_points = points.shape[:2]
    analog = np.asarray(raw["analog"], dtype=np.float64)
    if analog.ndim != 2:
        raise C3DError(f"analog data has shape {analog.shape}", field="ANALOG")
    n_channels = analog.shape[1]

    rate = _first_number(params, "POINT", "RATE")
    if rate is None or rate <= 0:
        rate = float(raw.get("point_rate_hz") or 0.0)
    if not np.isfinite(rate) or rate <= 0:
        if n_frames:
            raise C3DError(f"point rate {rate} is not a positive number", field="POINT:RATE")
        rate = 0.0
    analog_rate = _first_number(params, "ANALOG", "RATE")
    if analog_rate is None or analog_rate <= 0:
        per_frame = (analog.shape[0] / n_frames) if n_frames else 0.0
        analog_rate = rate * per_frame
    first_frame = int(raw.get("first_frame", 1))
    if first_frame < 1:
        first_frame = 1
    units_list = _strings(params, "POINT", "UNITS")
    units = (units_list[0].strip() if units_list else "") or "mm"
    if units.lower() in ("mm", "cm", "m"):
        units = units.lower()
    time_s = (first_frame - 1 + np.arange(n_frames)) / rate if n_frames else np.zeros(0)
    markers = Markers(
        time_s=time_s,
        xyz=points,
        labels=clean_labels(_strings(params, "POINT", "LABELS"), n_points, "point"),
        rate_hz=rate,
        units=units,
    )
    analog_units = _strings(params, "ANALOG", "UNITS")
    warnings = list(raw.get("warnings", []))
    if layout is not None and layout.duplicates:
        warnings.append(f"duplicated parameters (first kept by pre-check): {', '.join(layout.duplicates[:5])}")
    return C3DData(
        path=path,
        markers=markers,
        analog=analog,
        analog_labels=clean_labels(_strings(params, "ANALOG", "LABELS"), n_channels, "analog"),
        analog_units=[(analog_units[i].strip() if i < len(analog_units) else "") for i in range(n_channels)],
        analog_rate_hz=float(analog_rate),
        plates=_plates(params, n_channels),
        events=_events(params),
        first_frame=first_frame,
        reader=reader,
        parameters=_flat_parameters(params),
        warnings=warnings,
    )


# ------------------------------------------------------------------------------------------------ public API
def check_c3d_data(data: C3DData) -> None:
    """Invariants every returned C3DData satisfies; C3DError (with the field) if one does not hold."""
    xyz = data.markers.xyz
    n_frames, n_points = xyz.shape[0], xyz.shape[1]
    if len(data.markers.labels) != n_points or len(set(data.markers.labels)) != n_points:
        raise C3DError("point labels are not unique per point", field="POINT:LABELS")
    if data.analog.ndim != 2 or data.analog.shape[1] != len(data.analog_labels):
        raise C3DError("analog labels do not match the channels", field="ANALOG:LABELS")
    if len(set(data.analog_labels)) != len(data.analog_labels) or len(data.analog_units) != data.analog.shape[1]:
        raise C3DError("analog labels or units are inconsistent", field="ANALOG:LABELS")
    if n_frames and not (np.isfinite(data.markers.rate_hz) and data.markers.rate_hz > 0):
        raise C3DError(f"point rate {data.markers.rate_hz}", field="POINT:RATE")
    if data.analog.shape[0] and not (np.isfinite(data.analog_rate_hz) and data.analog_rate_hz > 0):
        raise C3DError(f"analog rate {data.analog_rate_hz}", field="ANALOG:RATE")
    for plate in data.plates:
        if any(not 0 <= c < data.analog.shape[1] for c in plate.channels):
            raise C3DError("force plate channel out of range", field="FORCE_PLATFORM:CHANNEL")
        if plate.corners_lab.shape != (4, 3) or plate.origin.shape != (3,):
            raise C3DError("force plate geometry has the wrong shape", field="FORCE_PLATFORM:CORNERS")


def read_c3d(
    path: str | Path,
    *,
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float = 60.0,
    readers: tuple[str, ...] = READER_ORDER,
) -> C3DData:
    """Read a C3D file robustly (see module docstring); raise C3DError naming file/subject/trial on failure.

    timeout_s: limit for each back-end attempt (seconds); readers: back-ends to try, in order (default ezc3d
    then c3d). ``C3DData.reader`` says which back-end read it
    ('ezc3d' or 'c3d'); ``C3DData.warnings`` says why an earlier one was skipped or failed. On failure,
    ``C3DError.extra`` holds ``stage`` ('precheck' or 'readers') and, per back-end, its reason.
    """
    path = Path(path)
    where = {"file": str(path), "subject": subject, "trial": trial}
    if not path.is_file():
        raise C3DError("file not found", hint="check the path in the subject file", extra={"stage": "open"}, **where)
    try:
        layout = inspect_c3d(path)
    except C3DError as exc:
        exc.extra.setdefault("stage", "precheck")
        raise exc.located(**where) from None
    unknown = [r for r in readers if r not in READER_ORDER]
    if unknown or not readers:
        raise ValueError(f"readers must be taken from {READER_ORDER}, got {readers}")
    reasons: dict[str, str] = {}
    for reader in readers:
        skip = _skip_reason(layout, reader)
        if skip:
            reasons[reader] = f"skipped ({skip})"
            continue
        try:
            raw = _read_isolated(path, reader, timeout_s)
        except RuntimeError as exc:
            reasons[reader] = str(exc)
            continue
        try:
            data = build_c3d_data(path, raw, reader, layout)
            check_c3d_data(data)
        except C3DError as exc:
            reasons[reader] = exc.message + (f" [{exc.field}]" if exc.field else "")
            continue
        except Exception as exc:  # malformed content that slipped past the reader
            reasons[reader] = f"cannot interpret its output: {type(exc).__name__}: {exc}"
            continue
        data.warnings[:0] = [f"{name}: {why}" for name, why in reasons.items()]
        return data
    raise C3DError(
        "no reader could read it: " + "; ".join(f"{name}: {why}" for name, why in reasons.items()),
        hint="re-export the C3D from the capture software",
        extra={"stage": "readers", **reasons},
        **where,
    )


def _skip_reason(layout: C3DLayout, reader: str) -> str:
    """Why a back-end must not be given this file (known to fail or to crash on it), or ''."""
    if reader != "ezc3d":
        return ""
    if layout.processor == "mips":
        return "ezc3d 1.7 does not read the SGI/MIPS processor format"
    n_channels = layout.n_channels
    if n_channels:
        for name in ("SCALE", "OFFSET"):
            size, k = 0, 1
            while (value := layout.value("ANALOG", name if k == 1 else f"{name}{k}")) is not None:
                size, k = size + len(value), k + 1
            if size < n_channels:
                return f"ANALOG:{name} has {size} values for {n_channels} channels"
    return ""
