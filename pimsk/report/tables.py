"""Small table helpers for the learning results: read a CSV written by :func:`pimsk.learn.metrics.write_csv`,
and mean +- SD over folds and seeds per (run, output)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import FileFormatError

__all__ = ["read_csv", "mean_sd", "summarise_rows", "as_float"]


def read_csv(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; FileFormatError names the file and a missing column."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = reader.fieldnames or []
    except OSError as exc:
        raise FileFormatError(f"cannot read the table: {exc}", file=path) from None
    missing = [c for c in required if c not in columns]
    if missing:
        raise FileFormatError(f"column {missing[0]!r} missing", file=path, field=missing[0],
                              hint="write it with `pimsk evaluate`")
    return rows


def as_float(value: Any) -> float:
    """A CSV cell as float (empty or unparsable -> NaN)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample SD (ddof 1) of the finite values; SD NaN with fewer than two, both NaN with none."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else math.nan)


def summarise_rows(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                   keys: Sequence[str] = ("run", "output")) -> list[dict[str, Any]]:
    """One row per distinct ``keys`` (first-seen order): ``n`` and ``<metric>_mean``/``<metric>_sd`` over the
    rows of that group (folds x seeds)."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, items in groups.items():
        entry: dict[str, Any] = dict(zip(keys, key))
        entry["n"] = len(items)
        for m in metrics:
            entry[f"{m}_mean"], entry[f"{m}_sd"] = mean_sd(as_float(it[m]) for it in items)
        out.append(entry)
    return out
