"""Plates -> feet: stance segments, plate-to-foot assignment (explicit or from foot markers), per-foot wrench.

Everything here works in OpenSim axes (Y up), SI units, at the analog rate.

* A stance segment is a run of samples where a plate's vertical reaction pushes up by more than the threshold
  (a foot cannot pull on the ground: downward readings are noise).
* Automatic assignment: for each segment, the COP is compared with the mean position of each side's foot markers
  (heel, toe, metatarsal markers found by name, or given), projected on the plate's plane, over the segment's
  marker frames; the side with the smaller median distance wins if it is closer than ``max_distance_m``,
  otherwise the segment is left unassigned (and reported).
* A foot's wrench at a sample is the sum of the wrenches of the segments assigned to it there: one plate is
  copied as is (force, COP, free moment); several plates are combined into the total force, the total moment
  about the origin, and the COP on the mean surface height where the total moment's horizontal part vanishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from pimsk.core.gapfill import find_gaps

SIDES = ("r", "l")

# marker-name tokens of the foot (after the side prefix), case-insensitive
_FOOT_TOKENS = ("HEE", "HEEL", "CAL", "CALC", "CA", "FCC", "TOE", "TOE1", "HLX", "MT1", "MT2", "MT5", "MET",
                "MH1", "MH2", "MH5", "VMH", "IMH", "FMH", "FM1", "FM2", "FM5", "P1MT", "P5MT", "MFS", "MFL",
                "1MT", "5MT", "MT", "FT", "FOOT")
_SIDE_PREFIX = {"r": ("RIGHT", "R"), "l": ("LEFT", "L")}


@dataclass
class OsimPlate:
    """One plate's wrench in OpenSim axes (SI), reaction on the subject.

    force_n, cop_m, free_moment_nm: (n, 3); loaded: (n,) bool; number: 1-based plate number;
    normal: (3,) unit normal of the plate surface (default: OpenSim Y).
    """

    number: int
    force_n: np.ndarray
    cop_m: np.ndarray
    free_moment_nm: np.ndarray
    loaded: np.ndarray
    normal: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))


@dataclass
class Segment:
    """A stance segment of one plate: samples [start, end] (inclusive, analog rate) and the foot it goes to."""

    plate: int
    start: int
    end: int
    start_s: float
    end_s: float
    side: str | None = None
    distance_m: float | None = None
    how: str = ""


def stance_segments(plate: OsimPlate, time_s: np.ndarray) -> list[Segment]:
    """Runs of loaded samples of one plate."""
    return [Segment(plate.number, s, e, float(time_s[s]), float(time_s[e]))
            for s, e in find_gaps(plate.loaded)]


def foot_marker_names(labels: list[str]) -> dict[str, list[str]]:
    """Heel/toe/metatarsal markers of each side found by name (e.g. RCAL, LHEE, R_FM1, 'r heel', RVMH)."""
    found: dict[str, list[str]] = {"r": [], "l": []}
    tokens = "|".join(sorted(_FOOT_TOKENS, key=len, reverse=True))
    for side, prefixes in _SIDE_PREFIX.items():
        pre = "|".join(prefixes)
        pattern = re.compile(rf"^(?:{pre})[\s_.-]?(?:{tokens})\d*$", re.IGNORECASE)
        for name in labels:
            if pattern.match(name.strip()):
                found[side].append(name)
    return found


def assign_segments(segments: list[Segment], plates: dict[int, OsimPlate], analog_time_s: np.ndarray,
                    marker_time_s: np.ndarray, marker_xyz_m: np.ndarray, marker_labels: list[str],
                    foot_markers: dict[str, list[str]], max_distance_m: float = 0.3) -> None:
    """Set ``side`` of each segment from the foot markers (OpenSim axes, metres); in place."""
    idx = {s: [marker_labels.index(m) for m in foot_markers.get(s, []) if m in marker_labels] for s in SIDES}
    centroids = {}
    for side, cols in idx.items():
        if cols:
            with np.errstate(invalid="ignore"):
                pts = marker_xyz_m[:, cols, :]
                valid = np.isfinite(pts).all(axis=2)
                count = valid.sum(axis=1)
                total = np.where(valid[:, :, None], pts, 0.0).sum(axis=1)
                centroids[side] = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], np.nan)
    for seg in segments:
        plate = plates[seg.plate]
        frames = np.flatnonzero((marker_time_s >= seg.start_s) & (marker_time_s <= seg.end_s))
        if frames.size == 0:  # segment shorter than a marker frame: nearest frame
            frames = np.array([int(np.argmin(np.abs(marker_time_s - 0.5 * (seg.start_s + seg.end_s))))])
        cop = np.column_stack([np.interp(marker_time_s[frames], analog_time_s, plate.cop_m[:, k]) for k in range(3)])
        best: tuple[float, str] | None = None
        normal = plate.normal / np.linalg.norm(plate.normal)
        for side, c in centroids.items():
            d = c[frames] - cop
            d = d - np.outer(d @ normal, normal)  # in the plate's plane
            dist = np.linalg.norm(d, axis=1)
            dist = dist[np.isfinite(dist)]
            if dist.size == 0:
                continue
            med = float(np.median(dist))
            if best is None or med < best[0]:
                best = (med, side)
        if best is None:
            seg.how = "no foot marker visible"
            continue
        seg.distance_m = best[0]
        if best[0] <= max_distance_m:
            seg.side, seg.how = best[1], "markers"
        else:
            seg.how = f"nearest foot {best[0]:.3f} m away"


def foot_wrenches(plates: dict[int, OsimPlate], segments: list[Segment], n: int) -> dict[str, np.ndarray]:
    """Per-side (n, 9) arrays [force xyz, COP xyz, free moment xyz] from the assigned segments."""
    out: dict[str, np.ndarray] = {}
    for side in SIDES:
        contrib = {num: np.zeros(n, dtype=bool) for num in plates}
        for seg in segments:
            if seg.side == side:
                contrib[seg.plate][seg.start:seg.end + 1] = True
        force = np.zeros((n, 3))
        moment_o = np.zeros((n, 3))
        height_w = np.zeros(n)
        count = np.zeros(n, dtype=int)
        single_cop = np.zeros((n, 3))
        single_free = np.zeros((n, 3))
        for num, mask in contrib.items():
            if not mask.any():
                continue
            p = plates[num]
            f = np.where(mask[:, None], p.force_n, 0.0)
            force += f
            moment_o += np.cross(np.where(mask[:, None], p.cop_m, 0.0), f)
            moment_o += np.where(mask[:, None], p.free_moment_nm, 0.0)
            height_w += np.where(mask, p.cop_m[:, 1] * np.abs(p.force_n[:, 1]), 0.0)
            count += mask
            single_cop = np.where(mask[:, None], p.cop_m, single_cop)
            single_free = np.where(mask[:, None], p.free_moment_nm, single_free)
        cop = single_cop.copy()
        free = single_free.copy()
        multi = count > 1
        if multi.any():
            fy = force[multi, 1]
            h = height_w[multi] / np.maximum(np.abs(fy), 1e-12)
            m = moment_o[multi]
            px = (m[:, 2] + h * force[multi, 0]) / fy
            pz = (h * force[multi, 2] - m[:, 0]) / fy
            p = np.column_stack([px, h, pz])
            t = m - np.cross(p, force[multi])
            cop[multi] = p
            free[multi] = np.column_stack([np.zeros_like(px), t[:, 1], np.zeros_like(px)])
        out[side] = np.hstack([force, cop, free])
    return out
