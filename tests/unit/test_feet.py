"""Plates -> feet: foot-marker names, marker-based assignment and the combination of two plates (hand-solved)."""

from __future__ import annotations

import numpy as np

from pimsk.convert.feet import OsimPlate, Segment, assign_segments, foot_marker_names, foot_wrenches


def test_foot_marker_names() -> None:
    labels = ["RCAL", "LHEE", "R_FM1", "l heel", "RVMH", "LTOE", "RASI", "RKNE", "LANK", "Right Heel", "RCA", "C7"]
    found = foot_marker_names(labels)
    assert found == {"r": ["RCAL", "R_FM1", "RVMH", "Right Heel", "RCA"], "l": ["LHEE", "l heel", "LTOE"]}


def _plate(number: int, force, cop, free, n: int = 3) -> OsimPlate:
    return OsimPlate(number, np.tile(force, (n, 1)).astype(float), np.tile(cop, (n, 1)).astype(float),
                     np.tile(free, (n, 1)).astype(float), np.ones(n, dtype=bool))


def test_two_plates_under_one_foot() -> None:
    # OpenSim axes (Y up), floor at y = 0.
    # A: F = (10, 400, 0) at (0.1, 0, 0.2), free moment (0, 2, 0); B: F = (-10, 600, 20) at (0.5, 0, -0.1), (0, -1, 0)
    # total F = (0, 1000, 20); moment about the origin:
    #   pA x FA = (0*0 - 0.2*400, 0.2*10 - 0.1*0, 0.1*400 - 0*10) = (-80, 2, 40)
    #   pB x FB = (0*20 + 0.1*600, 0.1*10 - 0.5*20, 0.5*600 - 0) = (60, -9, 300)
    #   M = (-20, -7, 340) + (0, 1, 0) = (-20, -6, 340)
    # COP on y = 0: px = Mz / Fy = 0.34, pz = -Mx / Fy = 0.02; free moment = M - p x F,
    #   p x F = (0*20 - 0.02*1000, 0.02*0 - 0.34*20, 0.34*1000 - 0) = (-20, -6.8, 340)  ->  (0, 0.8, 0)
    plates = {1: _plate(1, [10, 400, 0], [0.1, 0, 0.2], [0, 2, 0]),
              2: _plate(2, [-10, 600, 20], [0.5, 0, -0.1], [0, -1, 0])}
    segments = [Segment(1, 0, 2, 0.0, 0.02, side="r"), Segment(2, 0, 1, 0.0, 0.01, side="r")]
    feet = foot_wrenches(plates, segments, 3)
    assert np.allclose(feet["r"][0], [0, 1000, 20, 0.34, 0, 0.02, 0, 0.8, 0])
    assert np.allclose(feet["r"][1], feet["r"][0])
    # sample 2: plate A alone, copied as is
    assert np.allclose(feet["r"][2], [10, 400, 0, 0.1, 0, 0.2, 0, 2, 0])
    assert np.all(feet["l"] == 0.0)


def test_assignment_by_nearest_foot() -> None:
    n_analog, n_frames = 40, 5
    analog_t = np.arange(n_analog) / 400.0
    marker_t = np.arange(n_frames) / 50.0
    plate = _plate(1, [0, 700, 0], [1.0, 0.0, 0.3], [0, 0, 0], n=n_analog)
    labels = ["RCAL", "RMT1", "LCAL", "LMT1"]
    xyz = np.zeros((n_frames, 4, 3))
    xyz[:, 0] = [0.9, 0.05, 0.32]  # right heel and toe straddle the COP
    xyz[:, 1] = [1.12, 0.03, 0.28]
    xyz[:, 2] = [1.4, 0.05, 0.1]  # left foot 0.4 m away
    xyz[:, 3] = [1.6, 0.03, 0.1]
    xyz[2, 1] = np.nan  # a missing toe frame is skipped
    segs = [Segment(1, 0, n_analog - 1, 0.0, analog_t[-1])]
    feet = foot_marker_names(labels)
    assign_segments(segs, {1: plate}, analog_t, marker_t, xyz, labels, feet, max_distance_m=0.3)
    assert segs[0].side == "r" and segs[0].distance_m < 0.05
    far = [Segment(1, 0, n_analog - 1, 0.0, analog_t[-1])]
    assign_segments(far, {1: plate}, analog_t, marker_t, xyz + [2.0, 0, 0], labels, feet, max_distance_m=0.3)
    assert far[0].side is None and "away" in far[0].how
