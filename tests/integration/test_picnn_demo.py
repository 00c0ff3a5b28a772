"""PI-CNN end to end on a short demo_wrist synthetic run, through the verbs.

synth (2 s per trial) -> pimsk c3d -> pimsk emg -> pimsk geometry (path surrogate of the truth model)
-> pimsk dataset (windows) -> pimsk train (PI-CNN, leave-one-trial-out, one fold, a few epochs)
-> pimsk evaluate. The training loss must decrease; the physics evaluated on the truth labels (true forces,
true kinematics; the model's own muscles and inertia) must be small; the tables must be written.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from pimsk.paths import PROJECT_ROOT

pytestmark = pytest.mark.opensim

WRIST = PROJECT_ROOT / "subjects" / "demo_wrist" / "subject.yaml"
TRIALS = ["flex_slow", "flex_medium", "flex_fast"]
MUSCLES = ["FCR", "FCU", "ECRL", "ECRB", "ECU"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, opensim_module):
    from pimsk.cli import main
    from pimsk.synth.generate import synthesize

    root = tmp_path_factory.mktemp("picnn")
    synthesize(WRIST, root / "synth", max_duration_s=2.0, only_trials=TRIALS)
    truth = root / "synth" / "truth"
    for t in TRIALS:
        assert main(["c3d", str(root / "synth" / f"{t}.c3d"), "--out-dir", str(root / "c3d" / t),
                     "--subject-file", str(WRIST), "--trial", t]) == 0
    assert main(["emg", *(str(root / "c3d" / t / "emg_raw.sto") for t in TRIALS), "--out-dir", str(root / "emg"),
                 "--trial-names", *TRIALS, "--delay-s", "0.04",
                 "--times-from", *(str(truth / t / "coordinates.mot") for t in TRIALS)]) == 0
    model = truth / "flex_slow" / "model.osim"
    assert main(["geometry", str(model), "--muscles", *MUSCLES, "--out", str(root / "surrogate.json"),
                 "--report", str(root / "surrogate.csv"), "--n-samples", "200", "--coordinates",
                 "wrist_flexion_r"]) == 0
    spec = {"targets": {"coordinates": ["wrist_flexion_r"], "forces": MUSCLES},
            "samples": {"kind": "window", "length": 50, "stride": 25},
            "trials": [{"name": t, "emg": f"emg/{t}_envelopes.sto", "coordinates": f"synth/truth/{t}/coordinates.mot",
                        "forces": f"synth/truth/{t}/forces.sto"} for t in TRIALS]}
    (root / "dataset.yaml").write_text(yaml.safe_dump(spec))
    assert main(["dataset", "--spec", str(root / "dataset.yaml"), "--out", str(root / "data.npz")]) == 0
    config = {"method": "picnn", "seed": 0,
              "network": {"n_blocks": 2, "channels": 16, "kernel_size": 5, "fc_hidden": [16], "dropout": 0.1},
              "training": {"max_epochs": 8, "batch_size": 4, "learning_rate": 3e-3, "patience": 8},
              "loss": {"lambda": 1.0},
              "physics": {"surrogate": "surrogate.json", "muscle_parameters": str(model), "chain": str(model),
                          "chain_root_body": "forearm_r", "chain_coordinates": ["wrist_flexion_r"]},
              "protocol": {"name": "leave_one_trial_out", "n_val_trials": 1}}
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "--dataset", str(root / "data.npz"), "--config", str(root / "run.yaml"),
                 "--out", str(root / "runs" / "picnn"), "--fold", "flex_fast"]) == 0
    assert main(["evaluate", "--dataset", str(root / "data.npz"), "--runs", str(root / "runs" / "picnn"),
                 "--out", str(root / "eval")]) == 0
    return root


def _history(folder: Path) -> list[dict[str, float]]:
    with (folder / "history.csv").open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def test_training_loss_decreases(demo):
    folder = demo / "runs" / "picnn" / "leave_one_trial_out-flex_fast" / "seed_0"
    hist = _history(folder)
    assert len(hist) == 8
    first, last = hist[0], hist[-1]
    assert last["train_total"] < 0.8 * first["train_total"], (first, last)
    assert last["train_data"] < first["train_data"]
    for row in hist:  # every term logged, and the total is their weighted sum
        assert row["train_total"] == pytest.approx(row["train_data"] + row["train_physics_moment"]
                                                   + row["train_physics_muscle"], rel=1e-5)
    split = json.loads((folder / "split.json").read_text())
    assert split["test"]["trials"] == ["flex_fast"]
    assert "flex_fast" not in split["train"]["trials"] + split["val"]["trials"]


def test_truth_labels_nearly_satisfy_the_physics(demo):
    """The synthetic truth obeys the same model: residual moments are small against the net moment, and the
    EMG-driven DeGroote forces follow the true forces once the excitation gains are calibrated."""
    info = json.loads((demo / "runs" / "picnn" / "leave_one_trial_out-flex_fast" / "seed_0" / "physics.json")
                      .read_text())
    violation = info["label_violation_train"]
    assert violation["physics_moment"] < 0.05  # residual / RMS net moment, squared
    for m in MUSCLES:
        assert 0.0 < info["calibration"]["excitation_gain"][m] < 1.0  # envelopes peak at 1; excitations ~0.1
        assert violation[f"muscle_rms_n:{m}"] < 6.0  # true forces peak at 25-45 N


def test_evaluation_tables(demo):
    with (demo / "eval" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["output"] for r in rows) == sorted(["wrist_flexion_r", *MUSCLES])
    assert all(r["test_group"] == "flex_fast" for r in rows)
    assert (demo / "eval" / "summary.csv").is_file() and (demo / "eval" / "anova.csv").is_file()
