"""Scores of step beyond ([F6]: beyond one subject) against a synthetic subject's TRUE values.

* :func:`parameter_rows`: muscle parameters of the generic scaled model and of ``pimsk identify`` against the
  values ``pimsk synth`` simulated with (``truth.json``, ``muscle_parameters.truth``); error in % of the truth.
* :func:`force_scores`: RMSE (N), nRMSE (RMSE / range of the truth) and Pearson r per muscle of forces saved by
  ``pimsk identify`` on its test trial (``test_forces.npz``: ``ode`` = EMG-driven DeGroote forces at the measured
  kinematics with the run's parameters, ``network`` = the PI-CNN's force outputs) against the true tendon forces
  interpolated at the samples' times (:func:`pimsk.report.truth.truth_targets`). The first ``skip_frames`` frames
  of every window are left out (the EMG-driven activation starts at a(0) = e(0); ``identify.skip_frames``).
* :func:`force_traces`: those forces and the truth stitched into one time course of the test trial (mean over the
  overlapping windows at every frame).
* :func:`transfer_rows`: the summary of ``pimsk transfer`` (nRMSE and r per arm and output, over seeds).

Metrics: :mod:`pimsk.learn.metrics`. Shapes (n_windows, time, n_muscles); SI units.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import ConfigError
from pimsk.learn.datasets import SampleSet
from pimsk.learn.metrics import nrmse, pearson_r, rmse
from pimsk.report.tables import as_float, read_csv
from pimsk.report.truth import sample_times, truth_targets

__all__ = ["UNIT_SUFFIXES", "fold_dir", "parameter_rows", "load_test_forces", "force_scores", "force_traces",
           "transfer_rows"]

#: identification.csv parameter name -> truth.json parameter name (units dropped)
UNIT_SUFFIXES = ("_n", "_m", "_s")


def fold_dir(run_dir: str | Path, test_trial: str) -> Path:
    """The fold folder of a ``pimsk identify`` run whose test trial is ``test_trial`` (its identify.json)."""
    run_dir = Path(run_dir)
    for doc_path in sorted(run_dir.glob("*/identify.json")):
        if json.loads(doc_path.read_text()).get("test_group") == test_trial:
            return doc_path.parent
    raise ConfigError(f"no fold with test trial {test_trial!r}", trial=test_trial, file=run_dir,
                      hint="run `pimsk identify --fold TRIAL` first")


def _truth_name(parameter: str) -> str:
    for suffix in UNIT_SUFFIXES:
        if parameter.endswith(suffix):
            return parameter[: -len(suffix)]
    return parameter


def parameter_rows(identified_fold: str | Path, truth_json: str | Path) -> list[dict[str, Any]]:
    """One row per muscle and parameter that the truth holds: truth, generic, identified (SI) and the generic's
    and the identified's error in % of the truth; parameters without a true value (the time constants: the
    simulation used the model's own) are left out."""
    table = Path(identified_fold) / "identification.csv"
    if not table.is_file():
        raise ConfigError("identification table not found", file=table, hint="run `pimsk identify` first")
    truth_doc = json.loads(Path(truth_json).read_text())
    try:
        truth = truth_doc["muscle_parameters"]["truth"]
    except KeyError:
        raise ConfigError("no muscle_parameters.truth", file=truth_json, field="muscle_parameters.truth") from None
    rows = []
    for r in read_csv(table, ("muscle", "parameter", "generic", "identified")):
        true = (truth.get(r["muscle"]) or {}).get(_truth_name(r["parameter"]))
        if true is None:
            continue
        g, i = as_float(r["generic"]), as_float(r["identified"])
        rows.append({"muscle": r["muscle"], "parameter": r["parameter"], "truth": float(true), "generic": g,
                     "identified": i, "generic_error_pct": 100.0 * (g / true - 1.0),
                     "identified_error_pct": 100.0 * (i / true - 1.0)})
    if not rows:
        raise ConfigError("no identified parameter has a true value", file=table, field="parameter")
    return rows


def load_test_forces(fold: str | Path) -> dict[str, np.ndarray]:
    """test_forces.npz of a ``pimsk identify`` fold: index (n,), muscles (m,), network and ode (n, T, m) (N)."""
    path = Path(fold) / "test_forces.npz"
    if not path.is_file():
        raise ConfigError("test forces not found", file=path, hint="the fold needs a test trial")
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def _truth_forces(samples: SampleSet, index: np.ndarray, muscles: Sequence[str], truth_dir: str | Path
                  ) -> np.ndarray:
    true, found = truth_targets(samples, index, muscles, truth_dir)
    missing = [m for m in muscles if m not in found]
    if missing:
        raise ConfigError(f"no true forces of {missing}", file=Path(truth_dir), field="forces.sto")
    return true


def force_scores(samples: SampleSet, forces: Mapping[str, tuple[Mapping[str, np.ndarray], str]],
                 truth_dir: str | Path, skip_frames: int = 10) -> list[dict[str, Any]]:
    """Rows (method, muscle, rmse_n, nrmse, r, n_windows) plus one row per method with muscle ``mean``.

    forces: method -> (load_test_forces of its fold, key ``ode`` or ``network``); every fold must hold the same
    test windows."""
    rows: list[dict[str, Any]] = []
    ref_index = None
    for method, (saved, key) in forces.items():
        index = np.asarray(saved["index"], dtype=int)
        if ref_index is None:
            ref_index = index
        elif not np.array_equal(index, ref_index):
            raise ConfigError(f"{method}: other test windows than the first method's", field=method)
        muscles = [str(m) for m in saved["muscles"]]
        true = _truth_forces(samples, index, muscles, truth_dir)[:, skip_frames:]
        pred = np.asarray(saved[key], dtype=float)[:, skip_frames:]
        e, n, c = rmse(true, pred), nrmse(true, pred), pearson_r(true, pred)
        for k, m in enumerate(muscles):
            rows.append({"method": method, "muscle": m, "rmse_n": float(e[k]), "nrmse": float(n[k]),
                         "r": float(c[k]), "n_windows": int(len(index))})
        rows.append({"method": method, "muscle": "mean", "rmse_n": float(np.mean(e)), "nrmse": float(np.mean(n)),
                     "r": float(np.mean(c)), "n_windows": int(len(index))})
    return rows


def _stitch(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames of overlapping windows on one time axis: unique times (s) and the mean value there."""
    uniq, inverse = np.unique(np.round(times.ravel(), 6), return_inverse=True)
    return uniq, np.bincount(inverse, values.ravel()) / np.bincount(inverse)


def force_traces(samples: SampleSet, forces: Mapping[str, tuple[Mapping[str, np.ndarray], str]],
                 truth_dir: str | Path, skip_frames: int = 10) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """Time (s, the test trial's), {method or ``truth``: (n_frames, m) forces (N)} and the muscles; the first
    ``skip_frames`` frames of every window are left out, as in :func:`force_scores`."""
    first = next(iter(forces.values()))[0]
    index = np.asarray(first["index"], dtype=int)
    muscles = [str(m) for m in first["muscles"]]
    times = sample_times(samples, index)[:, skip_frames:]
    series = {"truth": _truth_forces(samples, index, muscles, truth_dir)[:, skip_frames:]}
    series.update({method: np.asarray(saved[key], dtype=float)[:, skip_frames:] for method, (saved, key)
                   in forces.items()})
    out: dict[str, np.ndarray] = {}
    t = None
    for name, values in series.items():
        cols = []
        for k in range(len(muscles)):
            t, v = _stitch(times, values[..., k])
            cols.append(v)
        out[name] = np.stack(cols, axis=-1)
    return t, out, muscles


def transfer_rows(summary_csv: str | Path) -> list[dict[str, Any]]:
    """The rows of ``pimsk transfer``'s summary.csv (arm, output, nrmse_mean/sd, r_mean/sd, n_seeds) as numbers."""
    rows = read_csv(summary_csv, ("arm", "output", "nrmse_mean", "r_mean"))
    return [{"arm": r["arm"], "output": r["output"],
             **{k: as_float(r.get(k)) for k in ("nrmse_mean", "nrmse_sd", "r_mean", "r_sd")},
             "n_seeds": int(as_float(r.get("n_seeds", "nan"))) if r.get("n_seeds") else None} for r in rows]
