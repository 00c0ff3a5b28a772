"""Physics-informed transfer (Zhang et al. 2022) end to end on two short synthetic wrist subjects, via the verb.

demo_wrist_b (source) and demo_wrist_c (target: other segment scales, mass, muscle perturbations, seed) are
synthesised with 2 s trials and taken through c3d -> emg -> scale -> geometry -> dataset (bench/transfer.py's
chain); `pimsk transfer` trains the generic PI-CNN on the source (physics: the generic wrist model), a PI-CNN
from scratch on the first 20 % of every target trial, and the transfer (frozen conv blocks, fine-tuned head,
physics of the target's own scaled model with trainable excitation gains and bounded max isometric forces), with
its layers (per-output affine or head) and epoch budget chosen by simulating the transfer on the source's trials.
Checked: the target's later data are never used (not even by the choice), the feature extractor is unchanged,
fine-tuning improves the fit of what it was given, the identified parameters stay in their bounds, and the tables
are written.
"""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pytest
import torch
import yaml

from pimsk.paths import PROJECT_ROOT

pytestmark = pytest.mark.opensim


def _bench():
    spec = importlib.util.spec_from_file_location("bench_transfer", PROJECT_ROOT / "bench" / "transfer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run(tmp_path_factory, opensim_module):
    from pimsk.cli import main

    bench = _bench()
    root = tmp_path_factory.mktemp("transfer")
    subj = {s: bench.prepare_wrist_subject(PROJECT_ROOT / "subjects" / s / "subject.yaml", root / s,
                                           max_duration_s=2.0, window=40, stride=5)
            for s in ("demo_wrist_b", "demo_wrist_c")}
    cfg = bench.wrist_config({"demo_wrist_b": subj["demo_wrist_b"]}, subj["demo_wrist_c"], "demo_wrist_c",
                             seeds=[0], fraction=0.2, max_epochs=12, finetune_epochs=30,
                             search={"layers": ["affine", "head"], "l2sp": [0.01], "epochs": [10, 30]})
    cfg["transfer"]["val_share"] = 0.0  # 2 s trials: the 20 % share holds too few windows to validate on
    cfg["transfer"]["training"]["learning_rate"] = 0.02  # a generic model of 12 epochs is far off: larger steps
    (root / "transfer.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["transfer", "--config", str(root / "transfer.yaml"), "--out", str(root / "out")]) == 0
    return root, subj


def _load(folder):
    from pimsk.learn.train import load_fit

    return load_fit(folder)


def test_tables_have_every_arm_and_output(run):
    root, _ = run
    with (root / "out" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    outputs = ["wrist_flexion_r", "FCR", "FCU", "ECRL", "ECRB", "ECU"]
    assert sorted((r["arm"], r["output"]) for r in rows) == sorted((a, o) for a in ("generic", "scratch", "transfer")
                                                                  for o in outputs)
    assert all(np.isfinite(float(r["nrmse"])) and np.isfinite(float(r["r"])) for r in rows)


def test_only_the_first_fifth_of_the_target_trains(run):
    root, subj = run
    from pimsk.learn.dataset_file import load_samples

    samples = load_samples(subj["demo_wrist_c"]["dataset"])
    for arm in ("scratch", "transfer"):
        split = _load(root / "out" / arm / "seed_0").split
        for trial in samples.trials:
            idx = np.flatnonzero(samples.trial == trial)
            t0, t1 = samples.start_s[idx].min(), samples.end_s[idx].max()
            cut = t0 + 0.2 * (t1 - t0)
            mine = np.intersect1d(idx, np.concatenate([split.train, split.val]))
            assert mine.size > 0 and samples.end_s[mine].max() <= cut + 1e-9
            test = np.intersect1d(idx, split.test)
            assert test.size > 0 and samples.start_s[test].min() >= cut - 1e-9


def test_choice_made_on_the_source_and_feature_extractor_frozen(run):
    root, subj = run
    from pimsk.learn.dataset_file import load_samples

    selection = json.loads((root / "out" / "selection.json").read_text())
    chosen = selection["chosen"]
    assert chosen["layers"] in ("affine", "head") and chosen["epochs"] in (10, 30) and chosen["l2sp"] == 0.01
    folds = {r["fold"] for r in selection["simulation"]}  # one source: leave one of its trials out
    assert folds == {f"demo_wrist_b/{t}" for t in ("flex_slow", "flex_medium", "flex_fast")}
    generic = _load(root / "out" / "generic" / "seed_0")
    transfer = _load(root / "out" / "transfer" / "seed_0")
    assert transfer.meta["best_epoch"] == chosen["epochs"]  # the fixed budget, no peeking at later target data
    g_state, t_state = generic.model.state_dict(), transfer.model.state_dict()
    blocks = [k for k in g_state if k.startswith("blocks.")]
    assert blocks and all(torch.equal(g_state[k], t_state[k]) for k in blocks)  # weights and batch-norm statistics
    last = max(int(k.split(".")[1]) for k in g_state if k.startswith("head."))
    hidden_same = torch.equal(g_state["head.0.weight"], t_state["head.0.weight"])
    assert hidden_same == (chosen["layers"] == "affine")  # affine: only the (folded) last layer changes
    assert not torch.equal(g_state[f"head.{last}.weight"], t_state[f"head.{last}.weight"])
    # fine-tuning fits the target's training share better than the unchanged generic model
    samples = load_samples(subj["demo_wrist_c"]["dataset"])
    tr = samples.subset(transfer.split.train)
    y = tr.targets[..., transfer.output_index]
    std = y.reshape(-1, y.shape[-1]).std(0)
    mse = {name: float(np.mean(((m.predict(tr.emg, tr.dt_s) - y) / std) ** 2))
           for name, m in (("generic", generic), ("transfer", transfer))}
    assert mse["transfer"] < 0.75 * mse["generic"], mse  # penalised (L2-SP) and a fixed budget: a partial fit


def test_subject_parameters_updated_within_bounds(run):
    root, _ = run
    info = json.loads((root / "out" / "transfer" / "seed_0" / "physics.json").read_text())
    scales = info["max_isometric_force_scale"]
    assert sorted(scales) == sorted(["FCR", "FCU", "ECRL", "ECRB", "ECU"])
    assert all(0.7 < s < 1.3 for s in scales.values())
    assert any(abs(s - 1.0) > 1e-4 for s in scales.values())  # updated by the physics loss
    calibrated, final = info["calibration"]["excitation_gain"], info["excitation_gain_final"]
    assert any(abs(final[m] / calibrated[m] - 1.0) > 1e-4 for m in calibrated)
