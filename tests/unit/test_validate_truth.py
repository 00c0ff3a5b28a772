"""pimsk.validate.truth on hand-solved cases (no OpenSim): RMSE, windows, normalisation, scale sets, tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pimsk.errors import FileFormatError
from pimsk.io.containers import Table
from pimsk.validate import truth as vt


def test_series_error_constant_offset_and_window():
    t = np.arange(0, 2.001, 0.01)
    truth = 10 * np.sin(2 * np.pi * t)           # range 20, peak 10
    est = truth + 0.5
    est[:5] += 100.0                              # a start transient before the analysis window only
    e = vt.series_error(t, truth, t, est, window_s=(0.1, 1.9))
    assert e.rmse == pytest.approx(0.5, abs=1e-12)
    assert e.t0_s == pytest.approx(0.1) and e.t1_s == pytest.approx(1.9)
    assert e.n_frames == 181
    assert e.truth_range == pytest.approx(20.0, abs=1e-3) and e.truth_peak == pytest.approx(10.0, abs=1e-3)
    # whole trial: 5 samples off by 100.5, 196 by 0.5
    assert e.rmse_whole == pytest.approx(math.sqrt((5 * 100.5 ** 2 + 196 * 0.25) / 201), rel=1e-12)


def test_series_error_interpolates_an_irregular_estimate_inside_its_span():
    t = np.linspace(0.0, 1.0, 101)
    truth = 3.0 * t                                # linear: interpolation is exact
    t_est = np.array([0.2, 0.33, 0.5, 0.71, 0.8])  # e.g. CMC's own steps, shorter than the trial
    e = vt.series_error(t, truth, t_est, 3.0 * t_est + 1.0, window_s=None)
    assert e.rmse == pytest.approx(1.0, abs=1e-12)
    assert e.t0_s == pytest.approx(0.2) and e.t1_s == pytest.approx(0.8)


def test_series_error_refuses_no_overlap():
    t = np.linspace(0, 1, 11)
    with pytest.raises(FileFormatError):
        vt.series_error(t, t, t + 5.0, t, window_s=None)
    with pytest.raises(FileFormatError):  # overlap, but not inside the analysis window
        vt.series_error(t, t, t[:4], t[:4], window_s=(0.5, 1.0))


def _table(labels, data, in_degrees=False):
    t = np.arange(len(data)) * 0.01
    return Table(time_s=t, data=np.asarray(data, dtype=float), labels=labels, in_degrees=in_degrees)


def test_coordinates_compared_in_degrees_whatever_the_file_says():
    q_rad = np.linspace(0, 1, 50)
    truth = _table(["knee"], np.degrees(q_rad)[:, None], in_degrees=True)
    est = _table(["knee"], (q_rad + math.radians(0.5))[:, None], in_degrees=False)
    (row,) = vt.coordinate_rows("s", "t", "determinate", truth, est, ["knee"], window_s=None)
    assert row.error == pytest.approx(0.5, abs=1e-9) and row.passed is True


def test_moment_error_is_percent_of_truth_range_and_forces_of_peak():
    tau = np.concatenate([np.linspace(-5, 15, 50), np.linspace(15, -5, 50)])   # range 20
    (m,) = vt.moment_rows("s", "t", "redundant", _table(["knee_moment"], tau[:, None]),
                          _table(["knee_moment"], (tau + 0.3)[:, None]), ["knee"], window_s=None)
    assert m.error == pytest.approx(1.5) and m.rmse == pytest.approx(0.3) and m.passed is True
    f = np.concatenate([np.linspace(10, 200, 50), np.linspace(200, 10, 50)])  # peak 200, range 190
    rows = vt.force_rows("s", "t", "determinate", "so", _table(["a"], f[:, None]),
                         _table(["a", "a_reserve"], np.c_[f - 30.0, f * 0]), ["a"], window_s=None)
    assert rows[0].error == pytest.approx(15.0) and rows[0].passed is False and rows[0].limit == 10.0
    assert rows[0].pct_range == pytest.approx(100 * 30 / 190)
    (red,) = vt.force_rows("s", "t", "redundant", "so", _table(["a"], f[:, None]), _table(["a"], f[:, None]),
                           ["a"], window_s=None)
    assert red.limit is None and red.passed is None and red.error == 0.0


def test_scale_rows_take_the_worst_axis(tmp_path):
    xml = tmp_path / "scale_set.xml"
    xml.write_text("""<OpenSimDocument Version="40000"><ScaleSet><objects>
        <Scale><scales> 1.0 1.0 1.0</scales><segment>ground</segment><apply>true</apply></Scale>
        <Scale><scales> 1.0302 1.0 1.0609</scales><segment>femur_r</segment><apply>true</apply></Scale>
        </objects></ScaleSet></OpenSimDocument>""")
    (row,) = vt.scale_rows({"scale_factors": {"femur_r": [1.03, 1.0, 1.05]}}, xml, "s")
    assert row.error == pytest.approx(100 * (1.0609 / 1.05 - 1)) and row.passed is True
    with pytest.raises(FileFormatError):
        vt.scale_rows({"scale_factors": {"tibia_r": [1, 1, 1]}}, xml, "s")


def test_trial_config_counts_muscles_per_free_coordinate():
    assert vt.trial_config({"muscles": ["a", "b"], "free_coordinates": ["knee"]}) == "determinate"
    assert vt.trial_config({"muscles": ["a", "b", "c"], "free_coordinates": ["knee"]}) == "redundant"


def test_tables_and_csv(tmp_path):
    rows = [vt.Row("s", "static", "scale", "scale_factor", "femur_r", "-", 0.1, "%", 2.0, True),
            vt.Row("s", "t", "so", "muscle_force", "a", "redundant", 40.0, "% of peak", None, None, rmse=12.0,
                   rmse_unit="N", truth_norm=30.0)]
    text = vt.format_rows(rows, markdown=True)
    assert text.splitlines()[0].startswith("| subject") and "| NO" not in text
    summary = vt.summary_rows(rows)
    assert [e["trial"] for e in summary] == ["static", "t"] and summary[1]["so_force_mean_pct_peak"] == 40.0
    path = vt.write_csv(rows, tmp_path / "v.csv")
    assert path.read_text().splitlines()[0].split(",") == vt.CSV_FIELDS
