"""The learning stage of the workflow (emg -> geometry -> dataset -> train -> evaluate -> figures) run as a user
runs it, `snakemake` in a subprocess, on a tiny configuration: demo_wrist with two trials cut to 1.5 s, networks
of one small block trained for 2 epochs, every method, one training-size and one depth run. Checks every figure,
the HTML report with a caption per figure, the tables (truth included) and the per-epoch progress in the log."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pimsk.paths import PROJECT_ROOT

pytestmark = pytest.mark.opensim

SNAKEFILE = PROJECT_ROOT / "Snakefile"
TRIALS = ["flex_slow", "flex_fast"]
FIGURES = ["predictions", "methods", "training_curves", "training_size", "network_depth", "truth"]
TINY = {
    "subjects": ["demo_wrist"],
    "steps": ["so", "learn"],
    "synth_max_duration_s": 1.5,
    "learning": {
        "seeds": [0],
        "network": {"n_blocks": 1, "channels": 4, "kernel_size": 3, "fc_hidden": [8], "dropout": 0.0},
        "training": {"max_epochs": 2, "batch_size": 8, "learning_rate": 0.003, "patience": 2, "threads": 1},
        "methods": {"picnn": {"search": {"loss.lambda": [0.3, 3.0]}}, "cnn": {"loss": {"lambda": 0.0}},
                    "elm": {"baseline": {"n_hidden": 20, "lags": [0]}, "search": {"baseline.C": [1.0, 10.0]}},
                    "mlelm": {"baseline": {"hidden": [8], "n_hidden": 20, "lags": [0]}, "search": {}},
                    "svr": {"baseline": {"lags": [0], "max_frames": 300}, "search": {"baseline.C": [1.0]}}},
        "training_size": {"fractions": [0.5], "methods": ["picnn"]},
        "network_depth": {"n_blocks": [2], "methods": ["picnn"]},
    },
}


def _subjects(tmp_path: Path) -> Path:
    """demo_wrist's subject file with two dynamic trials (synth makes only those)."""
    doc = yaml.safe_load((PROJECT_ROOT / "subjects" / "demo_wrist" / "subject.yaml").read_text())
    doc["trials"] = [t for t in doc["trials"] if t["name"] in TRIALS]
    doc["synth"]["trials"] = {k: v for k, v in doc["synth"]["trials"].items() if k in TRIALS + ["static"]}
    folder = tmp_path / "subjects" / "demo_wrist"
    folder.mkdir(parents=True)
    (folder / "subject.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder.parent


def test_learning_stage_makes_every_figure_and_the_report(tmp_path: Path, opensim_module) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "subjects_dir": str(_subjects(tmp_path))}))
    wd = tmp_path / "wf"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(wd), "--cores", "2",
                           "--configfile", str(config)], capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = wd / "results"
    learn = res / "learn" / "demo_wrist"

    # every figure, a real PNG
    for name in FIGURES:
        png = res / "figures" / "demo_wrist" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    # the report made at the end of the run holds every figure with its caption
    html = (res / "report.html").read_text(errors="replace")
    for name in FIGURES:
        assert f"{name}.png" in html, name
    for phrase in ("Method comparison on subject", "Effect of the training-set size", "Training curves on subject",
                   "Effect of the network depth", "TRUE values of the synthetic subject", "Predicted vs reference"):
        assert phrase in html, phrase

    # tables: every method on every fold (leave-one-trial-out over the two trials), and against the truth
    with (learn / "evaluate" / "methods" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    outputs = ["wrist_flexion_r", "FCR", "FCU", "ECRL", "ECRB", "ECU"]
    assert {(r["run"], r["test_group"], r["output"]) for r in rows} == {
        (m, t, o) for m in TINY["learning"]["methods"] for t in TRIALS for o in outputs}
    with (learn / "evaluate" / "methods" / "truth_summary.csv").open() as fh:
        truth = {(r["run"], r["output"]) for r in csv.DictReader(fh)}
    assert ("labels", "FCR") in truth and ("picnn", "wrist_flexion_r") in truth
    with (learn / "evaluate" / "training_size" / "summary.csv").open() as fh:
        assert {r["run"] for r in csv.DictReader(fh)} == {"picnn@0.5", "picnn@1"}
    with (learn / "evaluate" / "network_depth" / "summary.csv").open() as fh:
        assert {r["run"] for r in csv.DictReader(fh)} == {"picnn@1", "picnn@2"}

    # lambda was chosen on validation data: every PI-CNN fold has a selection over both candidates
    for sel in (learn / "runs" / "picnn").rglob("selection.csv"):
        with sel.open() as fh:
            assert len(list(csv.DictReader(fh))) == 2

    # the EMG reference is one for all the trials, and training shows progress epoch by epoch in the rule's log
    reference = (learn / "emg" / "emg_reference.json").read_text()
    assert '"method": "peak_over_trials"' in reference and all(t in reference for t in TRIALS)
    log = (res / "logs" / "demo_wrist" / "learn" / "train_picnn.log").read_text()
    assert len(re.findall(r"epoch +\d+/2 ", log)) >= 2 * 2 * len(TRIALS)  # 2 epochs x 2 lambdas x 2 folds
    print(f"tiny learning workflow: {seconds:.0f} s")
