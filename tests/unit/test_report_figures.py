"""pimsk.report (truth metrics, figures) and `pimsk figures` / `pimsk train --train-fraction` helpers on
hand-made evaluation folders: known truth, known prediction errors, hand-solved expected values."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from pimsk.io.containers import Table
from pimsk.io.storage import write_storage
from pimsk.learn.datasets import SampleSet
from pimsk.learn.metrics import write_csv

RATE_HZ = 100.0
T = 20  # frames per window


def _samples() -> SampleSet:
    """Two trials, 3 windows each of T frames, stride 10 frames; target columns: angle (rad) and force (N) equal
    to the truth + a known offset: angle + 0.01 rad, force + 1 N."""
    emg, tgt, trial, start, end = [], [], [], [], []
    for name, t0 in (("a", 0.5), ("b", 1.0)):
        for k in range(3):
            t = t0 + (10 * k + np.arange(T)) / RATE_HZ
            emg.append(np.c_[np.sin(t), np.cos(t)])
            tgt.append(np.c_[_true_angle(t) + 0.01, _true_force(t) + 1.0])
            trial.append(name)
            start.append(t[0])
            end.append(t[-1])
    n = len(trial)
    return SampleSet(np.asarray(emg), np.asarray(tgt), np.full(n, 1 / RATE_HZ), np.asarray(trial, dtype=object),
                     np.asarray(start), np.asarray(end), ["M1", "M2"], ["q", "M"], "window", {})


def _true_angle(t):
    return 0.2 * t


def _true_force(t):
    return 10.0 + 5.0 * t


def _truth_dir(root: Path) -> Path:
    for name in ("a", "b"):
        t = np.arange(0.0, 3.0, 0.001)
        d = root / "truth" / name
        d.mkdir(parents=True)
        write_storage(d / "forces.sto", Table(t, _true_force(t)[:, None], ["M"], name="forces"))
        write_storage(d / "coordinates.mot", Table(t, np.degrees(_true_angle(t))[:, None], ["q"], name="coords",
                                                   in_degrees=True))
    return root / "truth"


def _evaluation(root: Path, samples: SampleSet, offsets: dict[str, float]) -> Path:
    """Evaluation folder as `pimsk evaluate` writes it: one model per trial (leave-one-trial-out), predictions =
    truth + offset (angle offset / 100 rad, force offset N)."""
    ev = root / "eval"
    rows, metrics = [], []
    for run, off in offsets.items():
        for fold, trial in (("fold-a", "a"), ("fold-b", "b")):
            idx = np.flatnonzero(samples.trial == trial)
            true = samples.targets[idx]
            times = samples.start_s[idx, None] + np.arange(T)[None, :] / RATE_HZ
            pred = np.stack([_true_angle(times) + off / 100.0, _true_force(times) + off], axis=-1)
            target = ev / "predictions" / run / fold / "seed_0.npz"
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez(target, pred=pred, true=true, indices=idx, labels=np.asarray(["q", "M"]),
                     trial=np.asarray([trial] * len(idx)))
            for k, out in enumerate(("q", "M")):
                err = float(np.sqrt(np.mean((pred[..., k] - true[..., k]) ** 2)))
                span = float(np.ptp(true[..., k]))
                metrics.append({"run": run, "method": run.split("@")[0], "fold": fold, "test_group": trial,
                                "seed": 0, "output": out, "rmse": err, "nrmse": err / span, "r": 1.0, "r2": 1.0,
                                "n_frames": true[..., k].size})
    write_csv(metrics, ev / "metrics.csv")
    for run in offsets:
        for out in ("q", "M"):
            vals = [m["nrmse"] for m in metrics if m["run"] == run and m["output"] == out]
            rows.append({"run": run, "method": run.split("@")[0], "output": out, "n": len(vals),
                         "rmse_mean": 0.0, "rmse_sd": 0.0, "nrmse_mean": float(np.mean(vals)),
                         "nrmse_sd": float(np.std(vals, ddof=1)), "r_mean": 1.0, "r_sd": 0.0,
                         "r2_mean": 1.0, "r2_sd": 0.0})
    write_csv(rows, ev / "summary.csv")
    return ev


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_sample_times_are_the_window_frames():
    from pimsk.report.truth import sample_times

    s = _samples()
    times = sample_times(s, np.array([1, 4]))
    np.testing.assert_allclose(times[0], 0.6 + np.arange(T) / RATE_HZ, atol=1e-12)
    np.testing.assert_allclose(times[1], 1.1 + np.arange(T) / RATE_HZ, atol=1e-12)


def test_truth_tables_hand_solved(tmp_path):
    """Predictions = truth + 2 N (+ 0.02 rad): RMSE 2 N / 0.02 rad, r 1; the labels (truth + 1 N, + 0.01 rad):
    RMSE 1 N / 0.01 rad; nRMSE divides by the truth's range over the test frames."""
    from pimsk.report.truth import LABELS_RUN, write_truth_tables

    s = _samples()
    ev = _evaluation(tmp_path, s, {"picnn": 2.0})
    paths = write_truth_tables(s, ev, _truth_dir(tmp_path))
    rows = _read(paths["truth_metrics"])
    assert {r["run"] for r in rows} == {"picnn", LABELS_RUN}
    for r in rows:
        want_force, want_angle = (2.0, 0.02) if r["run"] == "picnn" else (1.0, 0.01)
        want = want_force if r["output"] == "M" else want_angle
        assert float(r["rmse"]) == pytest.approx(want, rel=1e-6)
        assert float(r["r"]) == pytest.approx(1.0, abs=1e-9)
        t_first = 0.5 if r["fold"] == "fold-a" else 1.0
        span_s = (20 + T - 1) / RATE_HZ  # windows at 0, 10, 20 frames: the test frames span 39 frames
        span = (5.0 if r["output"] == "M" else 0.2) * span_s
        assert float(r["nrmse"]) == pytest.approx(want / span, rel=1e-6), (r, t_first)
    summary = {(r["run"], r["output"]): r for r in _read(paths["truth_summary"])}
    assert summary[("picnn", "M")]["n"] == "2"
    assert float(summary[("picnn", "M")]["rmse_mean"]) == pytest.approx(2.0, rel=1e-6)


def test_truth_outside_the_samples_is_an_error(tmp_path):
    from pimsk.errors import ConfigError
    from pimsk.report.truth import truth_targets

    s = _samples()
    truth = _truth_dir(tmp_path)
    short = Table(np.arange(0.0, 0.7, 0.01), np.zeros((70, 1)), ["M"], name="forces")
    write_storage(truth / "a" / "forces.sto", short)
    with pytest.raises(ConfigError, match="outside the truth"):
        truth_targets(s, np.array([2]), ["M"], truth)


def test_stitch_overlapping_windows_mean_and_sd():
    from pimsk.report.figures import _stitch

    times = np.array([[0.0, 0.1, 0.2], [0.1, 0.2, 0.3]])
    values = np.array([[1.0, 2.0, 3.0], [4.0, 6.0, 5.0]])
    x, mean, sd = _stitch(times, values)
    np.testing.assert_allclose(x, [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(mean, [1.0, 3.0, 4.5, 5.0])
    np.testing.assert_allclose(sd, [0.0, 1.0, 1.5, 0.0], atol=1e-12)


def test_study_runs_parse_and_sort():
    from pimsk.errors import ConfigError
    from pimsk.report.figures import study_runs

    got = study_runs(["picnn@1", "cnn@0.25", "picnn@0.5", "cnn@1"])
    assert got == {"picnn": [(0.5, "picnn@0.5"), (1.0, "picnn@1")], "cnn": [(0.25, "cnn@0.25"), (1.0, "cnn@1")]}
    with pytest.raises(ConfigError):
        study_runs(["picnn"])


def test_head_of_each_trial_keeps_the_first_fraction_in_time():
    from pimsk.learn.datasets import head_of_each_trial

    s = _samples()  # trial a: samples 0-2, trial b: 3-5 (start times increasing)
    np.testing.assert_array_equal(head_of_each_trial(s, np.array([2, 0, 1, 5, 4]), 0.5), [0, 1, 4])  # ceil 1.5, 1
    np.testing.assert_array_equal(head_of_each_trial(s, np.arange(6), 0.1), [0, 3])  # at least one per trial
    np.testing.assert_array_equal(head_of_each_trial(s, np.arange(6), 1.0), np.arange(6))


def test_figures_verb_writes_every_figure(tmp_path):
    """`pimsk figures` on hand-made evaluation folders: every PNG written and readable."""
    import matplotlib.image as mpimg

    from pimsk.cli import main
    from pimsk.learn.dataset_file import save_samples
    from pimsk.report.truth import write_truth_tables

    s = _samples()
    save_samples(s, tmp_path / "samples.npz")
    methods = _evaluation(tmp_path / "m", s, {"picnn": 2.0, "cnn": 3.0})
    write_truth_tables(s, methods, _truth_dir(tmp_path))
    size = _evaluation(tmp_path / "s", s, {"picnn@0.5": 3.0, "picnn@1": 2.0, "cnn@0.5": 4.0, "cnn@1": 3.0})
    depth = _evaluation(tmp_path / "d", s, {"picnn@1": 3.0, "picnn@2": 2.0})
    runs = {}
    for name, start in (("picnn", 1.0), ("cnn", 2.0)):
        for fold, n in (("f1", 5), ("f2", 7)):
            hist = [{"epoch": e, **{f"{p}_{k}": start / e for p in ("train", "val")
                                    for k in ("total", "data", "physics_moment", "physics_muscle")}}
                    for e in range(1, n + 1)]
            write_csv(hist, tmp_path / "runs" / name / fold / "seed_0" / "history.csv")
        runs[name] = tmp_path / "runs" / name
    out = tmp_path / "fig"
    assert main(["figures", "--dataset", str(tmp_path / "samples.npz"), "--methods", str(methods / "summary.csv"),
                 "--training-size", str(size / "summary.csv"), "--network-depth", str(depth / "summary.csv"),
                 "--histories", *(f"{k}={v}" for k, v in runs.items()), "--coordinates", "q",
                 "--out-dir", str(out), "--subject", "toy"]) == 0
    assert main(["figures", "--truth", str(methods / "summary.csv"), "--coordinates", "q", "--out-dir",
                 str(out)]) == 0
    for name in ("predictions", "methods", "training_curves", "training_size", "network_depth", "truth"):
        image = mpimg.imread(out / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, name
    assert main(["figures", "--out-dir", str(out)]) == 2  # nothing asked: one-line error
