"""Marker gap filling: short interior gaps by cubic spline, longer ones reported and left NaN.

A gap is a run of frames where a marker is NaN (any coordinate). Interior gaps of at most ``max_gap_frames``
frames are filled per coordinate with a not-a-knot cubic spline through every valid sample of that marker
(``scipy.interpolate.CubicSpline``; reproduces a cubic exactly). Gaps longer than that, gaps touching the start or
the end of the trial (no data on one side: nothing to interpolate between) and markers without two valid samples
stay NaN and are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline


@dataclass(frozen=True)
class Gap:
    """One run of missing frames of one marker.

    start_frame/end_frame: 0-based, inclusive; start_s/end_s: times of those frames; kind: 'interior', 'leading',
    'trailing' or 'all'; filled: whether it was filled by the spline.
    """

    marker: str
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    kind: str
    filled: bool

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


def find_gaps(missing: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a (n,) bool array as (start, end) inclusive index pairs."""
    m = np.asarray(missing, dtype=bool).astype(np.int8)
    if m.size == 0:
        return []
    edges = np.diff(np.concatenate([[0], m, [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def fill_gaps(xyz: np.ndarray, time_s: np.ndarray, labels: list[str],
              max_gap_frames: int) -> tuple[np.ndarray, list[Gap]]:
    """Fill short interior gaps.

    xyz: (n_frames, n_markers, 3) with NaN where missing; time_s: (n_frames,); labels: marker names;
    max_gap_frames: longest gap (frames) that is filled; 0 fills nothing.
    Returns the filled copy and every gap found (filled or not), in marker then time order.
    """
    if max_gap_frames < 0:
        raise ValueError("max_gap_frames must be >= 0")
    data = np.array(xyz, dtype=float, copy=True)
    t = np.asarray(time_s, dtype=float).reshape(-1)
    n = data.shape[0]
    if t.shape[0] != n:
        raise ValueError(f"{t.shape[0]} times for {n} frames")
    gaps: list[Gap] = []
    for j, label in enumerate(labels):
        missing = np.any(~np.isfinite(data[:, j, :]), axis=1)
        if not missing.any():
            continue
        valid = np.flatnonzero(~missing)
        runs = find_gaps(missing)
        spline = None
        for start, end in runs:
            if valid.size == 0:
                kind = "all"
            elif start == 0:
                kind = "leading"
            elif end == n - 1:
                kind = "trailing"
            else:
                kind = "interior"
            fill = kind == "interior" and (end - start + 1) <= max_gap_frames and valid.size >= 2
            if fill:
                if spline is None:
                    spline = CubicSpline(t[valid], data[valid, j, :], axis=0) if valid.size >= 3 else None
                idx = np.arange(start, end + 1)
                if spline is not None:
                    data[idx, j, :] = spline(t[idx])
                else:  # two valid samples: the cubic through them is the line
                    for k in range(3):
                        data[idx, j, k] = np.interp(t[idx], t[valid], data[valid, j, k])
            gaps.append(Gap(label, start, end, float(t[start]), float(t[end]), kind, fill))
        data[:, j, :][missing & ~_filled_mask(gaps, label, n)] = np.nan
    return data, gaps


def _filled_mask(gaps: list[Gap], label: str, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for g in gaps:
        if g.marker == label and g.filled:
            mask[g.start_frame:g.end_frame + 1] = True
    return mask


def unfilled(gaps: list[Gap]) -> list[Gap]:
    """The gaps that stay NaN."""
    return [g for g in gaps if not g.filled]
