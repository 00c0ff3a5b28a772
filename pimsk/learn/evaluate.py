"""Evaluation of trained runs on their test folds: metrics per output, summaries, ANOVA across runs.

A *run* is an output folder of ``pimsk train`` (one method and config): ``<run>/<fold>/seed_<s>/model.*``
with the fold's ``split.json``. For every model the test samples of its own split are predicted and compared with
the dataset's labels (:func:`pimsk.learn.metrics.output_metrics`). Written into the output folder:

* ``metrics.csv``: run, method, fold, test_group, seed, output, rmse, nrmse, r, r2, n_frames;
* ``summary.csv``: per run and output, mean and SD of each metric over folds and seeds;
* ``anova.csv``: per output and metric, one-way ANOVA across runs of the per-fold/seed values;
* ``predictions/<run>/<fold>/seed_<s>.npz``: ``pred``, ``true`` (n_test, T, n_out), ``indices``, ``labels``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import ConfigError
from pimsk.learn.datasets import SampleSet
from pimsk.learn.metrics import METRICS, anova, output_metrics, write_csv
from pimsk.learn.train import load_fit

__all__ = ["model_folders", "evaluate_model", "evaluate_runs"]

log = logging.getLogger("pimsk.learn.evaluate")


def model_folders(run_dir: str | Path) -> list[Path]:
    """Folders under ``run_dir`` holding a saved model, sorted."""
    run_dir = Path(run_dir)
    found = {p.parent for pat in ("model.pt", "model.pkl") for p in run_dir.rglob(pat)}
    return sorted(found)


def evaluate_model(samples: SampleSet, folder: str | Path, subset: str = "test") -> tuple[list[dict[str, Any]], dict]:
    """Metrics rows (one per output) and the predictions of one saved model on its split's ``subset``."""
    tm = load_fit(folder)
    if tm.emg_labels != list(samples.emg_labels):
        raise ConfigError(f"the model was trained on EMG {tm.emg_labels}, the dataset has {samples.emg_labels}",
                          file=folder, field="emg_labels")
    for label, idx in zip(tm.output_labels, tm.output_index):
        if idx >= len(samples.target_labels) or samples.target_labels[idx] != label:
            raise ConfigError(f"output {label!r} is not target column {idx} of the dataset", file=folder,
                              field="output_labels", hint="evaluate on the dataset the model was trained on")
    split = tm.split
    indices = getattr(split, subset)
    if len(indices) == 0:
        raise ConfigError(f"the split has no {subset} samples", file=folder, field=subset)
    sub = samples.subset(indices)
    pred = tm.predict(sub.emg, sub.dt_s)
    true = sub.targets[..., tm.output_index]
    rows = [{"method": tm.method, "fold": split.name, "test_group": split.test_group,
             "seed": tm.meta.get("seed"), **row} for row in output_metrics(true, pred, tm.output_labels)]
    return rows, {"pred": pred, "true": true, "indices": np.asarray(indices), "labels": np.asarray(tm.output_labels),
                  "trial": np.asarray([str(t) for t in sub.trial])}


def evaluate_runs(samples: SampleSet, run_dirs: Sequence[str | Path], out_dir: str | Path,
                  names: Sequence[str] | None = None, subset: str = "test") -> dict[str, Path]:
    """Evaluate every model of every run; write metrics, summary, ANOVA and predictions (module docstring)."""
    out = Path(out_dir)
    names = list(names) if names else [Path(r).name for r in run_dirs]
    if len(names) != len(run_dirs) or len(set(names)) != len(names):
        raise ConfigError(f"run names {names} must be unique, one per run", field="--names")
    rows: list[dict[str, Any]] = []
    for name, run_dir in zip(names, run_dirs):
        folders = model_folders(run_dir)
        if not folders:
            raise ConfigError("no trained models found", file=run_dir, hint="run `pimsk train` first")
        for folder in folders:
            r, pred = evaluate_model(samples, folder, subset)
            rel = folder.relative_to(Path(run_dir))
            target = out / "predictions" / name / rel.with_suffix(".npz")
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(target, **pred)
            rows += [{"run": name, **row} for row in r]
            log.info("%s %s: %s", name, rel, ", ".join(f"{x['output']} nRMSE {x['nrmse']:.3f} r {x['r']:.3f}"
                                                         for x in r))
    paths = {"metrics": write_csv(rows, out / "metrics.csv")}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["run"], row["output"])].append(row)
    summary = []
    for (run, output), items in groups.items():
        entry: dict[str, Any] = {"run": run, "method": items[0]["method"], "output": output, "n": len(items)}
        for m in METRICS:
            vals = np.asarray([it[m] for it in items], dtype=float)
            entry[f"{m}_mean"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
            entry[f"{m}_sd"] = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else float("nan")
        summary.append(entry)
    paths["summary"] = write_csv(summary, out / "summary.csv")
    anova_rows = []
    outputs = list(dict.fromkeys(row["output"] for row in rows))
    for output in outputs:
        for m in METRICS:
            per_run = {name: [row[m] for row in rows if row["run"] == name and row["output"] == output]
                       for name in names}
            anova_rows.append({"output": output, "metric": m, **anova(per_run), "runs": " ".join(names)})
    paths["anova"] = write_csv(anova_rows, out / "anova.csv")
    return paths
