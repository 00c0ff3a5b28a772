"""Column-by-column differences between two OpenSim result tables (ours vs a reference).

Rows are matched on equal times where the two tables share a time grid, else the compared table is
linearly interpolated onto the reference's times inside the overlap. Units are the files' own
(degrees for IK .mot and CMC ``Kinematics_q``, N or N·m for forces and moments).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pimsk.io.containers import Table
from pimsk.osim.storage import read_storage


@dataclass
class ColumnDiff:
    """Difference of one column: max |a-b|, RMS of (a-b), over ``n`` matched rows."""

    label: str
    max_abs: float
    rms: float
    n: int
    ref_range: float  # max-min of the reference column, to judge a difference's size

    def as_dict(self) -> dict:
        return asdict(self)


def short_label(label: str) -> str:
    """``/jointset/knee_r/knee_angle_r/value`` -> ``knee_angle_r``; ``/forceset/m/activation`` -> ``m.activation``."""
    parts = [p for p in label.split("/") if p]
    if label.startswith("/jointset/") and len(parts) == 4:
        return parts[2] if parts[3] == "value" else f"{parts[2]}_{'u' if parts[3] == 'speed' else parts[3]}"
    if label.startswith("/forceset/") and len(parts) == 3:
        return f"{parts[1]}.{parts[2]}"
    return label


def _as_table(t: Table | str | Path) -> Table:
    return t if isinstance(t, Table) else read_storage(t)


def compare_tables(
    ref: Table | str | Path,
    other: Table | str | Path,
    *,
    columns: Sequence[str] | None = None,
    t_min: float = -math.inf,
    t_max: float = math.inf,
    time_tol_s: float = 1e-6,
) -> list[ColumnDiff]:
    """Per-column differences ``other - ref`` over the shared columns (or ``columns``) and times.

    Labels are compared after :func:`short_label`. Raises ValueError when no rows or columns overlap.
    """
    a, b = _as_table(ref), _as_table(other)
    la = {short_label(x): i for i, x in enumerate(a.labels)}
    lb = {short_label(x): i for i, x in enumerate(b.labels)}
    names = [c for c in (columns if columns is not None else la) if c in la and c in lb]
    if not names:
        raise ValueError(f"no common columns between {a.name!r} and {b.name!r}")
    lo = max(t_min, a.time_s[0], b.time_s[0]) - time_tol_s
    hi = min(t_max, a.time_s[-1], b.time_s[-1]) + time_tol_s
    rows_a = np.flatnonzero((a.time_s >= lo) & (a.time_s <= hi))
    if rows_a.size == 0:
        raise ValueError(f"no overlapping times between {a.name!r} and {b.name!r}")
    ta = a.time_s[rows_a]
    j = np.clip(np.searchsorted(b.time_s, ta), 0, len(b.time_s) - 1)
    j_prev = np.clip(j - 1, 0, len(b.time_s) - 1)
    near = np.where(np.abs(b.time_s[j] - ta) <= np.abs(b.time_s[j_prev] - ta), j, j_prev)
    exact = np.abs(b.time_s[near] - ta) <= time_tol_s
    out = []
    for name in names:
        ya = a.data[rows_a, la[name]]
        col_b = b.data[:, lb[name]]
        if exact.mean() >= 0.9:  # same grid: compare the rows that share a time
            yb, ya_used = col_b[near[exact]], ya[exact]
        else:
            yb, ya_used = np.interp(ta, b.time_s, col_b), ya
        d = yb - ya_used
        out.append(ColumnDiff(label=name, max_abs=float(np.max(np.abs(d))), rms=float(np.sqrt(np.mean(d * d))),
                              n=int(d.size), ref_range=float(np.ptp(ya)) if ya.size else 0.0))
    return out


def worst(diffs: Iterable[ColumnDiff]) -> ColumnDiff:
    """The column with the largest max |difference|."""
    return max(diffs, key=lambda d: d.max_abs)


def format_diffs(diffs: Sequence[ColumnDiff], title: str = "", unit: str = "") -> str:
    """Plain-text table: column, max |diff|, RMS diff, reference range, rows."""
    w = max([len(d.label) for d in diffs] + [6])
    head = f"{'column':<{w}}  {'max|d|':>11}  {'rms d':>11}  {'ref range':>11}  {'rows':>5}"
    lines = ([title] if title else []) + [head + (f"   ({unit})" if unit else ""), "-" * len(head)]
    for d in diffs:
        lines.append(f"{d.label:<{w}}  {d.max_abs:11.4g}  {d.rms:11.4g}  {d.ref_range:11.4g}  {d.n:5d}")
    return "\n".join(lines)
