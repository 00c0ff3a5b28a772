"""Errors of saved test predictions against a synthetic subject's TRUE values (``pimsk synth`` truth files).

The labels the networks learn from (SO or CMC forces, IK angles) are estimates; a synthetic subject also has the
values its forward simulation produced: ``<truth_dir>/<trial>/forces.sto`` (tendon forces, N) and
``coordinates.mot`` (deg in the file, rad here). For every test prediction written by ``pimsk evaluate``
(``predictions/<run>/<fold>/seed_<s>.npz``: ``pred``, ``indices``, ``labels``) the truth is interpolated onto the
samples' own times (``linspace(start_s, end_s, T)``: windows and time-normalised cycles alike) and scored with
:func:`pimsk.learn.metrics.output_metrics`. The labels themselves are scored too (run ``labels``: how far the
reference the networks were trained on is from the truth on the same samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import ConfigError
from pimsk.io.containers import Table
from pimsk.io.storage import read_storage
from pimsk.learn.datasets import SampleSet, table_in_si
from pimsk.learn.metrics import METRICS, output_metrics, write_csv
from pimsk.report.tables import summarise_rows

__all__ = ["TRUTH_FILES", "LABELS_RUN", "sample_times", "truth_targets", "truth_metrics", "write_truth_tables"]

#: truth files of one trial, searched in this order for an output's column
TRUTH_FILES = ("forces.sto", "coordinates.mot")
#: run name of the labels' own errors against the truth
LABELS_RUN = "labels"


def sample_times(samples: SampleSet, indices: np.ndarray) -> np.ndarray:
    """(n, T) times (s) of the frames of samples ``indices``: ``linspace(start_s, end_s, T)`` per sample (a
    window's frames are uniform from its first to its last frame; a cycle is time-normalised the same way)."""
    idx = np.asarray(indices, dtype=int)
    n_frames = samples.emg.shape[1]
    frac = np.linspace(0.0, 1.0, n_frames)
    start, end = samples.start_s[idx], samples.end_s[idx]
    return start[:, None] + (end - start)[:, None] * frac[None, :]


def _truth_tables(truth_dir: Path, trial: str) -> list[tuple[Path, Table]]:
    tables = []
    for name in TRUTH_FILES:
        path = truth_dir / trial / name
        if path.is_file():
            tables.append((path, table_in_si(read_storage(path))))
    if not tables:
        raise ConfigError(f"no truth files ({', '.join(TRUTH_FILES)})", trial=trial, file=truth_dir / trial,
                          hint="the truth folder of `pimsk synth` (results/<subject>/synth/truth)")
    return tables


def truth_targets(samples: SampleSet, indices: np.ndarray, labels: Sequence[str], truth_dir: str | Path
                  ) -> tuple[np.ndarray, list[str]]:
    """(n, T, k) true values of the ``labels`` that have a truth column, at the samples' frame times, and those k
    labels (outputs without a truth column, e.g. a muscle the simulation did not have, are left out)."""
    truth_dir = Path(truth_dir)
    idx = np.asarray(indices, dtype=int)
    times = sample_times(samples, idx)
    trials = [str(t) for t in samples.trial[idx]]
    cache = {t: _truth_tables(truth_dir, t) for t in dict.fromkeys(trials)}
    found = [lab for lab in labels if all(any(lab in tab.labels for _, tab in cache[t]) for t in cache)]
    out = np.full((len(idx), times.shape[1], len(found)), np.nan)
    for k, lab in enumerate(found):
        for i, trial in enumerate(trials):
            path, tab = next((p, tb) for p, tb in cache[trial] if lab in tb.labels)
            t = times[i]
            if t[0] < tab.time_s[0] - 1e-6 or t[-1] > tab.time_s[-1] + 1e-6:
                raise ConfigError(f"sample {t[0]:.3f}-{t[-1]:.3f} s lies outside the truth "
                                  f"({tab.time_s[0]:.3f}-{tab.time_s[-1]:.3f} s)", trial=trial, file=path, field=lab)
            out[i, :, k] = np.interp(t, tab.time_s, tab.column(lab))
    return out, found


def truth_metrics(samples: SampleSet, evaluation_dir: str | Path, truth_dir: str | Path) -> list[dict[str, Any]]:
    """Metrics rows against the truth for every prediction file under ``<evaluation_dir>/predictions`` (run,
    fold, seed, output, rmse, nrmse, r, r2, n_frames), plus the labels' own rows (run ``labels``, once per
    fold: the same test samples)."""
    root = Path(evaluation_dir) / "predictions"
    files = sorted(root.rglob("*.npz"))
    if not files:
        raise ConfigError("no predictions to compare with the truth", file=root, hint="run `pimsk evaluate` first")
    rows: list[dict[str, Any]] = []
    labelled: set[str] = set()
    for f in files:
        rel = f.relative_to(root)
        run, fold, seed = rel.parts[0], "/".join(rel.parts[1:-1]), f.stem.removeprefix("seed_")
        with np.load(f, allow_pickle=False) as d:
            labels = [str(x) for x in d["labels"]]
            pred, indices = d["pred"], d["indices"]
        true, found = truth_targets(samples, indices, labels, truth_dir)
        if not found:
            continue
        keep = [labels.index(lab) for lab in found]
        for r in output_metrics(true, pred[..., keep], found):
            rows.append({"run": run, "fold": fold, "seed": seed, **r})
        if fold not in labelled:  # the labels of these test samples against the truth
            labelled.add(fold)
            ref = samples.targets[np.asarray(indices, dtype=int)][..., [samples.target_labels.index(x) for x in found]]
            rows += [{"run": LABELS_RUN, "fold": fold, "seed": "", **r} for r in output_metrics(true, ref, found)]
    return rows


def write_truth_tables(samples: SampleSet, evaluation_dir: str | Path, truth_dir: str | Path) -> dict[str, Path]:
    """``truth_metrics.csv`` and ``truth_summary.csv`` (mean and SD over folds and seeds per run and output) in
    ``evaluation_dir``; returns their paths."""
    out = Path(evaluation_dir)
    rows = truth_metrics(samples, out, truth_dir)
    if not rows:
        raise ConfigError("no output of the predictions has a truth column", file=truth_dir,
                          hint=f"the truth files hold {', '.join(TRUTH_FILES)} per trial")
    return {"truth_metrics": write_csv(rows, out / "truth_metrics.csv"),
            "truth_summary": write_csv(summarise_rows(rows, METRICS), out / "truth_summary.csv")}
