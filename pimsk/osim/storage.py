"""Read OpenSim result files (.sto/.mot, any version) into :class:`pimsk.io.containers.Table`.

Only what comparing tool outputs needs: header up to ``endheader``, one label line, numeric rows.
(The general reader/writer for the pipeline's files lives in ``pimsk.io``.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pimsk.errors import FileFormatError
from pimsk.io.containers import Table


def read_storage(path: str | Path) -> Table:
    """Table of an OpenSim storage file; ``time`` column becomes ``time_s``; units as in the file."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise FileFormatError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        end = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "endheader")
    except StopIteration:
        raise FileFormatError("no 'endheader' line", file=str(path)) from None
    meta: dict[str, str] = {}
    for ln in lines[:end]:
        if "=" in ln:
            k, v = ln.split("=", 1)
            meta[k.strip()] = v.strip()
    body = [ln for ln in lines[end + 1:] if ln.strip()]
    if not body:
        raise FileFormatError("no column labels after 'endheader'", file=str(path))
    labels = body[0].split("\t") if "\t" in body[0] else body[0].split()
    labels = [lab.strip() for lab in labels]
    if not labels or labels[0].lower() != "time":
        raise FileFormatError(f"first column is {labels[0] if labels else ''!r}, not 'time'", file=str(path),
                              field="labels")
    try:
        data = np.array([[float(x) for x in ln.split()] for ln in body[1:]], dtype=float)
    except ValueError as exc:
        raise FileFormatError(f"non-numeric data: {exc}", file=str(path)) from None
    if data.size == 0:
        data = np.zeros((0, len(labels)))
    if data.ndim != 2 or data.shape[1] != len(labels):
        raise FileFormatError(f"{len(labels)} labels but rows of {data.shape[-1]} values", file=str(path))
    return Table(time_s=data[:, 0], data=data[:, 1:], labels=labels[1:],
                 name=lines[0].strip() if lines else path.stem,
                 in_degrees=meta.get("inDegrees", "no").lower() == "yes", meta=meta)


def time_range(path: str | Path) -> tuple[float, float]:
    """(first, last) time (s) of a storage file."""
    t = read_storage(path).time_s
    if t.size == 0:
        raise FileFormatError("no data rows", file=str(path))
    return float(t[0]), float(t[-1])
