"""Run configs, dataset files, selection on validation only, the protocol runner and evaluation (no OpenSim)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from pimsk.errors import ConfigError, FileFormatError
from pimsk.learn.dataset_file import load_samples, save_samples
from pimsk.learn.datasets import SampleSet, Split
from pimsk.learn.evaluate import evaluate_runs
from pimsk.learn.train import load_fit, resolve_config, run_training, select_and_fit, with_overrides


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _samples(n_trials: int = 4, per_trial: int = 3, t: int = 20) -> SampleSet:
    """Targets are smooth functions of the envelopes (learnable), trials with a speed attribute."""
    rng = np.random.default_rng(0)
    n = n_trials * per_trial
    time = np.linspace(0, 1, t)[None, :, None]
    emg = 0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 2, (n, 1, 2)) * time + rng.uniform(0, 6, (n, 1, 2)))
    targets = np.stack([emg[..., 0] - emg[..., 1], 20 * emg[..., 0] ** 2, 15 * emg[..., 1]], axis=-1)
    trial = np.array([f"trial{k // per_trial}" for k in range(n)], dtype=object)
    start = np.array([float(k % per_trial) for k in range(n)])
    attrs = {f"trial{j}": {"speed": ["slow", "fast"][j % 2]} for j in range(n_trials)}
    return SampleSet(emg, targets, np.full(n, 0.01), trial, start, start + 0.9, ["A", "B"], ["q", "FA", "FB"],
                     "window", attrs)


def test_config_validation_and_overrides():
    with pytest.raises(ConfigError, match="method"):
        resolve_config({"method": "transformer"})
    with pytest.raises(ConfigError, match="unknown run-config"):
        resolve_config({"epochs": 3})
    with pytest.raises(ConfigError, match="training"):
        resolve_config({"training": {"epochs": 3}})
    with pytest.raises(ConfigError, match="search"):
        resolve_config({"search": {"loss.lambda": 1.0}})
    raw = with_overrides({"loss": {"lambda": 1.0}}, {"loss.lambda": 0.5, "network.n_blocks": 2})
    run = resolve_config(raw)
    assert run.loss.lam == 0.5 and run.network.n_blocks == 2 and run.method == "picnn"


def test_dataset_file_round_trip(tmp_path):
    s = _samples()
    path = save_samples(s, tmp_path / "d.npz")
    back = load_samples(path)
    assert np.array_equal(back.emg, s.emg) and np.array_equal(back.targets, s.targets)
    assert back.trial.tolist() == s.trial.tolist() and back.attributes == s.attributes
    assert back.emg_labels == s.emg_labels and back.kind == "window"
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(FileFormatError, match="not a pimsk dataset"):
        load_samples(tmp_path / "other.npz")


def test_selection_uses_validation_and_never_the_test_labels():
    s = _samples()
    split = Split("manual", np.arange(0, 6), np.arange(9, 12), np.arange(6, 9), "trial3")
    raw = {"method": "elm", "baseline": {"lags": [0]}, "search": {"baseline.n_hidden": [1, 60]}}
    fit, chosen, rows = select_and_fit(s, split, raw)
    assert chosen["baseline"]["n_hidden"] == 60 and [r["chosen"] for r in rows] == [False, True]
    assert rows[1]["val_score"] < rows[0]["val_score"]
    # poisoning the test labels changes nothing
    poisoned = s.subset(np.arange(len(s)))
    poisoned.targets[split.test] = np.nan
    fit2, chosen2, rows2 = select_and_fit(poisoned, split, raw)
    assert [r["val_score"] for r in rows2] == [r["val_score"] for r in rows]
    assert np.array_equal(fit2.model.predict(s.emg, s.dt_s), fit.model.predict(s.emg, s.dt_s))
    with pytest.raises(ConfigError, match="validation"):
        select_and_fit(s, Split("noval", np.arange(6), np.arange(9, 12)), raw)


def test_protocol_runner_and_evaluation_write_tables(tmp_path):
    s = _samples()
    elm = {"method": "elm", "baseline": {"n_hidden": 40}, "protocol": {"name": "leave_one_trial_out",
                                                                       "n_val_trials": 1}}
    cnn = {"method": "cnn", "network": {"n_blocks": 1, "channels": 4, "fc_hidden": [4]},
           "training": {"max_epochs": 2, "batch_size": 4}, "seeds": [0, 1],
           "protocol": {"name": "cross_speed", "n_val_trials": 1}}
    rows = run_training(s, elm, tmp_path / "elm")
    assert sorted(r["test_group"] for r in rows) == ["trial0", "trial1", "trial2", "trial3"]
    rows_cnn = run_training(s, cnn, tmp_path / "cnn")
    assert len(rows_cnn) == 2 * 2  # 2 speeds x 2 seeds
    model = load_fit(tmp_path / "cnn" / rows_cnn[0]["folder"])
    split = json.loads((tmp_path / "cnn" / rows_cnn[0]["folder"] / "split.json").read_text())
    test_trials = set(split["test"]["trials"])
    assert test_trials.isdisjoint(split["train"]["trials"]) and test_trials.isdisjoint(split["val"]["trials"])
    assert model.predict(s.emg[:2], s.dt_s[:2]).shape == (2, 20, 3)
    with (tmp_path / "cnn" / rows_cnn[0]["folder"] / "history.csv").open() as fh:
        hist = list(csv.DictReader(fh))
    assert [int(h["epoch"]) for h in hist] == [1, 2] and "val_physics_moment" in hist[0]
    paths = evaluate_runs(s, [tmp_path / "elm", tmp_path / "cnn"], tmp_path / "eval")
    with paths["metrics"].open() as fh:
        metrics = list(csv.DictReader(fh))
    assert len(metrics) == (4 + 4) * 3  # (folds x seeds) x outputs
    with paths["summary"].open() as fh:
        summary = {(r["run"], r["output"]): r for r in csv.DictReader(fh)}
    assert int(summary[("elm", "FA")]["n"]) == 4
    elm_fa = [float(m["nrmse"]) for m in metrics if m["run"] == "elm" and m["output"] == "FA"]
    assert float(summary[("elm", "FA")]["nrmse_mean"]) == pytest.approx(np.mean(elm_fa))
    with paths["anova"].open() as fh:
        anova_rows = list(csv.DictReader(fh))
    assert len(anova_rows) == 3 * 4 and all(r["n_groups"] == "2" for r in anova_rows)
    assert (tmp_path / "eval" / "predictions" / "elm").is_dir()


def test_dataset_verb_builds_windows_and_cycles_from_files(tmp_path):
    """Envelopes + coordinates (degrees) + forces on disk -> `pimsk dataset` -> the expected samples."""
    import yaml

    from pimsk.cli import main
    from pimsk.io.containers import Table
    from pimsk.io.storage import write_storage

    t = np.arange(0, 3.0 + 1e-9, 0.01)
    for name in ("a", "b"):
        write_storage(tmp_path / f"{name}_env.sto", Table(t, np.column_stack([0.5 + 0.4 * np.sin(t), 0.3 + 0 * t]),
                                                          ["EMG1", "EMG2"], name="env"))
        write_storage(tmp_path / f"{name}_q.mot", Table(t, np.column_stack([30.0 * np.sin(2 * t)]), ["knee"],
                                                        name="coords", in_degrees=True))
        write_storage(tmp_path / f"{name}_f.sto", Table(t, np.column_stack([100 + 10 * t, 5 * t]), ["M1", "M2"],
                                                        name="forces"))
        vy = np.where((t % 1.0) < 0.6, 700.0, 0.0)  # heel strikes at 1 s and 2 s
        write_storage(tmp_path / f"{name}_grf.mot", Table(t, vy[:, None], ["ground_force_r_vy"], name="grf"))
    spec = {"targets": {"coordinates": ["knee"], "forces": ["M1", "M2"]},
            "samples": {"kind": "window", "length": 100, "stride": 50},
            "trials": [{"name": n, "emg": f"{n}_env.sto", "coordinates": f"{n}_q.mot", "forces": f"{n}_f.sto",
                        "grf": f"{n}_grf.mot", "attributes": {"speed": 1.0}} for n in ("a", "b")]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["dataset", "--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "w.npz")]) == 0
    w = load_samples(tmp_path / "w.npz")
    assert w.emg.shape == (2 * 5, 100, 2) and w.targets.shape == (10, 100, 3)  # starts 0, 50, ..., 200 of 301
    assert np.allclose(w.targets[0, :, 0], np.deg2rad(30.0 * np.sin(2 * t[:100])))
    assert np.allclose(w.targets[1, :, 1], 100 + 10 * t[50:150])
    spec["samples"] = {"kind": "cycle", "n_frames": 101, "strikes": "grf", "grf_column": "ground_force_r_vy"}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["dataset", "--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "c.npz")]) == 0
    c = load_samples(tmp_path / "c.npz")
    assert c.kind == "cycle" and c.emg.shape == (2, 101, 2)  # one full cycle (1 s -> 2 s) per trial
    assert c.start_s[0] == pytest.approx(1.0, abs=0.011) and c.dt_s[0] == pytest.approx(0.01, rel=0.02)
    spec["trials"][0].pop("forces")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["dataset", "--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "x.npz")]) == 2
