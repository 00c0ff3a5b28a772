"""pimsk.report.beyond (scores of step beyond) and `pimsk figures --identification/--label-free/--transfer` on
hand-made `pimsk identify` / `pimsk transfer` folders: known truth, known force errors, hand-solved values."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pimsk.errors import ConfigError
from pimsk.io.containers import Table
from pimsk.io.storage import write_storage
from pimsk.learn.dataset_file import save_samples
from pimsk.learn.datasets import SampleSet
from pimsk.learn.metrics import write_csv
from pimsk.report import beyond as bd

RATE_HZ = 100.0
T = 20
MUSCLES = ["A", "B"]


def _true_force(t: np.ndarray) -> np.ndarray:
    """(len(t), 2) true forces (N): A = 10 + 5 t, B = 20 + 10 sin(2 pi t)."""
    return np.c_[10.0 + 5.0 * t, 20.0 + 10.0 * np.sin(2 * np.pi * t)]


def _samples() -> SampleSet:
    """Trials a (test) and b: 3 windows of T frames each, stride 10 frames."""
    emg, tgt, trial, start, end = [], [], [], [], []
    for name, t0 in (("a", 0.5), ("b", 1.0)):
        for k in range(3):
            t = t0 + (10 * k + np.arange(T)) / RATE_HZ
            emg.append(np.c_[np.sin(t), np.cos(t)])
            tgt.append(np.c_[0.1 * t, _true_force(t)])
            trial.append(name)
            start.append(t[0])
            end.append(t[-1])
    n = len(trial)
    return SampleSet(np.asarray(emg), np.asarray(tgt), np.full(n, 1 / RATE_HZ), np.asarray(trial, dtype=object),
                     np.asarray(start), np.asarray(end), MUSCLES, ["q", *MUSCLES], "window", {})


def _truth(root: Path) -> Path:
    t = np.arange(0.0, 3.0, 0.001)
    for name in ("a", "b"):
        d = root / "truth" / name
        d.mkdir(parents=True)
        write_storage(d / "forces.sto", Table(t, _true_force(t), MUSCLES, name="forces"))
    (root / "truth" / "truth.json").write_text(json.dumps({"muscle_parameters": {"truth": {
        "A": {"max_isometric_force": 500.0, "optimal_fiber_length": 0.05},
        "B": {"max_isometric_force": 200.0, "optimal_fiber_length": 0.08}}}}))
    return root / "truth"


def _fold(root: Path, arm: str, samples: SampleSet, ode_offset: float, network_gain: float,
          params: dict[tuple[str, str], tuple[float, float]]) -> Path:
    """A `pimsk identify` run folder: test trial a; ode = truth + offset (N), network = gain x truth."""
    fold = root / arm / "leave_one_trial_out-a"
    fold.mkdir(parents=True)
    (fold / "identify.json").write_text(json.dumps({"test_group": "a"}))
    (root / arm / "other").mkdir()
    (root / arm / "other" / "identify.json").write_text(json.dumps({"test_group": "b"}))
    write_csv([{"muscle": m, "parameter": p, "generic": g, "identified": i, "lower": 0, "upper": 1}
               for (m, p), (g, i) in params.items()], fold / "identification.csv")
    index = np.flatnonzero(samples.trial == "a")
    true = samples.targets[index][..., 1:]
    np.savez(fold / "test_forces.npz", index=index, muscles=np.array(MUSCLES), ode=true + ode_offset,
             network=true * network_gain, coordinates=samples.targets[index][..., :1])
    return root / arm


PARAMS = {("A", "max_isometric_force_n"): (400.0, 450.0), ("B", "max_isometric_force_n"): (250.0, 210.0),
          ("A", "optimal_fiber_length_m"): (0.06, 0.05), ("B", "optimal_fiber_length_m"): (0.08, 0.088),
          ("A", "activation_time_constant_s"): (0.015, 0.02)}  # no true value: left out


def test_parameter_rows_hand_solved(tmp_path):
    samples = _samples()
    run = _fold(tmp_path, "identified", samples, 0.0, 1.0, PARAMS)
    rows = {(r["muscle"], r["parameter"]): r for r in bd.parameter_rows(bd.fold_dir(run, "a"),
                                                                        _truth(tmp_path) / "truth.json")}
    assert set(rows) == set(PARAMS) - {("A", "activation_time_constant_s")}
    a = rows[("A", "max_isometric_force_n")]
    assert a["truth"] == 500.0 and a["generic_error_pct"] == pytest.approx(-20.0)
    assert a["identified_error_pct"] == pytest.approx(-10.0)
    assert rows[("B", "max_isometric_force_n")]["identified_error_pct"] == pytest.approx(5.0)
    assert rows[("A", "optimal_fiber_length_m")]["generic_error_pct"] == pytest.approx(20.0)
    assert rows[("B", "optimal_fiber_length_m")]["identified_error_pct"] == pytest.approx(10.0)


def test_fold_dir_finds_the_test_trial_or_says_which_is_missing(tmp_path):
    run = _fold(tmp_path, "x", _samples(), 0.0, 1.0, PARAMS)
    assert bd.fold_dir(run, "a").name == "leave_one_trial_out-a"
    assert bd.fold_dir(run, "b").name == "other"
    with pytest.raises(ConfigError, match="no fold with test trial 'c'"):
        bd.fold_dir(run, "c")


def test_force_scores_hand_solved(tmp_path):
    samples, truth = _samples(), _truth(tmp_path)
    ident = bd.load_test_forces(bd.fold_dir(_fold(tmp_path, "i", samples, 2.0, 1.0, PARAMS), "a"))
    half = bd.load_test_forces(bd.fold_dir(_fold(tmp_path, "h", samples, 0.0, 0.5, PARAMS), "a"))
    rows = bd.force_scores(samples, {"ode": (ident, "ode"), "net": (half, "network")}, truth, skip_frames=5)
    by = {(r["method"], r["muscle"]): r for r in rows}
    # ode = truth + 2 N: RMSE 2 N, r 1, nRMSE 2 / range of the truth over the frames scored
    t = np.concatenate([0.5 + (10 * k + np.arange(5, T)) / RATE_HZ for k in range(3)])
    span = np.ptp(_true_force(t), axis=0)
    for k, m in enumerate(MUSCLES):
        assert by[("ode", m)]["rmse_n"] == pytest.approx(2.0, rel=1e-9)
        assert by[("ode", m)]["r"] == pytest.approx(1.0)
        assert by[("ode", m)]["nrmse"] == pytest.approx(2.0 / span[k], rel=1e-6)
        # network = truth / 2: RMSE = RMS of half the truth, still r = 1
        assert by[("net", m)]["rmse_n"] == pytest.approx(np.sqrt(np.mean((0.5 * _true_force(t)[:, k]) ** 2)), rel=1e-6)
    assert by[("ode", "mean")]["rmse_n"] == pytest.approx(2.0)
    assert by[("ode", "A")]["n_windows"] == 3


def test_force_traces_stitch_the_test_trial(tmp_path):
    samples, truth = _samples(), _truth(tmp_path)
    saved = bd.load_test_forces(bd.fold_dir(_fold(tmp_path, "i", samples, 2.0, 1.0, PARAMS), "a"))
    t, series, muscles = bd.force_traces(samples, {"ode": (saved, "ode")}, truth, skip_frames=0)
    assert muscles == MUSCLES
    assert t[0] == pytest.approx(0.5) and t[-1] == pytest.approx(0.5 + (20 + T - 1) / RATE_HZ)
    assert len(t) == 20 + T  # windows at 0, 10, 20 frames: 40 distinct frames
    np.testing.assert_allclose(series["truth"], _true_force(t), atol=1e-9)
    np.testing.assert_allclose(series["ode"], _true_force(t) + 2.0, atol=1e-9)


def test_force_scores_refuse_other_test_windows(tmp_path):
    samples, truth = _samples(), _truth(tmp_path)
    a = bd.load_test_forces(bd.fold_dir(_fold(tmp_path, "i", samples, 0.0, 1.0, PARAMS), "a"))
    b = dict(a, index=a["index"][:2], ode=a["ode"][:2])
    with pytest.raises(ConfigError, match="other test windows"):
        bd.force_scores(samples, {"x": (a, "ode"), "y": (b, "ode")}, truth)


def test_figures_verb_writes_the_beyond_figures_and_tables(tmp_path):
    from pimsk.cli import main

    samples, truth = _samples(), _truth(tmp_path)
    data = save_samples(samples, tmp_path / "samples.npz")
    ident = _fold(tmp_path, "identified", samples, 1.0, 0.9, PARAMS)
    generic = _fold(tmp_path, "generic", samples, 5.0, 1.0, PARAMS)
    summary = tmp_path / "transfer" / "summary.csv"
    write_csv([{"arm": a, "output": o, "nrmse_mean": v, "nrmse_sd": 0.01, "r_mean": 0.9, "r_sd": 0.0, "n_seeds": 2}
               for a, v in (("generic", 0.3), ("scratch", 0.4), ("transfer", 0.2)) for o in ("q", "A", "mean")],
              summary)
    figs, tables = tmp_path / "figs", tmp_path / "tables"
    assert main(["figures", "--identification", str(ident), str(generic), "--label-free", str(ident), str(generic),
                 "--dataset", str(data), "--truth-dir", str(truth), "--test-trial", "a", "--skip-frames", "0",
                 "--transfer", str(summary), "--out-dir", str(figs), "--tables", str(tables)]) == 0
    for name in ("identification_parameters", "identification_forces", "label_free", "transfer"):
        assert (figs / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    with (tables / "forces.csv").open() as fh:
        forces = {(r["method"], r["muscle"]): r for r in csv.DictReader(fh)}
    assert float(forces[("generic_ode", "A")]["rmse_n"]) == pytest.approx(5.0)
    assert float(forces[("identified_ode", "B")]["rmse_n"]) == pytest.approx(1.0)
    doc = json.loads((tables / "transfer.json").read_text())
    assert {(r["arm"], r["output"]) for r in doc["rows"]} >= {("transfer", "A"), ("scratch", "q")}
    assert json.loads((tables / "label_free.json").read_text())["test_trial"] == "a"


def test_figures_verb_needs_the_truth_for_identification(tmp_path):
    from pimsk.cli import main

    assert main(["figures", "--identification", str(tmp_path), str(tmp_path), "--out-dir", str(tmp_path)]) != 0
