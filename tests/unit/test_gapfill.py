"""Marker gap filling on hand-made gaps: short interior gaps filled, long/edge gaps reported and left NaN."""

from __future__ import annotations

import numpy as np
import pytest

from pimsk.core.gapfill import fill_gaps, find_gaps, unfilled

RATE_HZ = 100.0


def _trial(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n) / RATE_HZ
    # a cubic in time (the not-a-knot cubic spline reproduces it exactly), a line, a constant
    a = np.column_stack([0.2 + 0.5 * t - 2.0 * t**2 + 3.0 * t**3, 1.0 - 0.3 * t, np.full(n, 0.9)])
    b = np.column_stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t), t])
    return t, np.stack([a, b], axis=1)  # (n, 2, 3)


def test_find_gaps() -> None:
    assert find_gaps(np.array([0, 1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)) == [(1, 2), (5, 5), (7, 8)]
    assert find_gaps(np.zeros(4, dtype=bool)) == []


def test_short_gap_filled_exactly_for_a_cubic() -> None:
    t, truth = _trial()
    xyz = truth.copy()
    xyz[20:25, 0, :] = np.nan  # 5 frames
    filled, gaps = fill_gaps(xyz, t, ["A", "B"], max_gap_frames=5)
    assert np.allclose(filled[20:25, 0, :], truth[20:25, 0, :], atol=1e-12)
    assert len(gaps) == 1 and gaps[0].filled and gaps[0].kind == "interior"
    assert (gaps[0].start_frame, gaps[0].end_frame, gaps[0].n_frames) == (20, 24, 5)
    assert gaps[0].start_s == pytest.approx(0.20) and gaps[0].end_s == pytest.approx(0.24)
    assert np.array_equal(filled[:, 1], truth[:, 1])  # untouched marker


def test_smooth_marker_filled_close_to_truth() -> None:
    t, truth = _trial()
    xyz = truth.copy()
    xyz[30:33, 1, :] = np.nan  # 3 frames of a 1 Hz sine sampled at 100 Hz
    filled, _ = fill_gaps(xyz, t, ["A", "B"], max_gap_frames=4)
    # the gap spans H = 4 sample intervals = 0.04 s; cubic spline error <= 5/384 H^4 max|f''''| (de Boor),
    # f = sin(2 pi t): max|f''''| = (2 pi)^4  ->  5.2e-5
    bound = 5.0 / 384.0 * 0.04**4 * (2 * np.pi) ** 4
    assert np.max(np.abs(filled[30:33, 1] - truth[30:33, 1])) < bound


def test_long_and_edge_gaps_stay_nan_and_are_reported() -> None:
    t, truth = _trial()
    xyz = truth.copy()
    xyz[10:22, 0, :] = np.nan  # 12 frames: too long
    xyz[40:42, 0, 1] = np.nan  # 2 frames, one coordinate only: filled (all three coordinates)
    xyz[:3, 1, :] = np.nan  # leading
    xyz[-2:, 1, :] = np.nan  # trailing
    filled, gaps = fill_gaps(xyz, t, ["A", "B"], max_gap_frames=5)
    assert np.isnan(filled[10:22, 0]).all()
    assert np.allclose(filled[40:42, 0], truth[40:42, 0], atol=1e-12)
    assert np.isnan(filled[:3, 1]).all() and np.isnan(filled[-2:, 1]).all()
    left = unfilled(gaps)
    assert [(g.marker, g.kind, g.start_frame, g.end_frame) for g in left] == [
        ("A", "interior", 10, 21), ("B", "leading", 0, 2), ("B", "trailing", 58, 59)]
    assert left[0].start_s == pytest.approx(0.10) and left[0].end_s == pytest.approx(0.21)
    # everything else is untouched
    mask = np.ones(60, dtype=bool)
    mask[10:22] = mask[40:42] = False
    assert np.array_equal(filled[mask, 0], truth[mask, 0])


def test_zero_max_gap_and_missing_marker() -> None:
    t, truth = _trial(10)
    xyz = truth.copy()
    xyz[4, 0, :] = np.nan
    xyz[:, 1, :] = np.nan
    filled, gaps = fill_gaps(xyz, t, ["A", "B"], max_gap_frames=0)
    assert np.isnan(filled[4, 0]).all() and np.isnan(filled[:, 1]).all()
    assert [(g.marker, g.kind, g.filled) for g in gaps] == [("A", "interior", False), ("B", "all", False)]
    with pytest.raises(ValueError):
        fill_gaps(xyz, t, ["A", "B"], max_gap_frames=-1)


def test_input_not_modified() -> None:
    t, truth = _trial(20)
    xyz = truth.copy()
    xyz[5, 0, :] = np.nan
    before = xyz.copy()
    fill_gaps(xyz, t, ["A", "B"], max_gap_frames=3)
    assert np.array_equal(np.isnan(xyz), np.isnan(before))
