"""Accuracy per output and comparison across methods.

Per output (every frame of every test sample pooled): RMSE (SI units: rad or N), RMSE normalised by the range
of the reference (``nrmse``, a fraction: RMSE / (max - min of the reference)), Pearson's r, and the coefficient
of determination ``R^2 = 1 - SS_res / SS_tot`` (can be negative). Across methods: one-way ANOVA
(:func:`scipy.stats.f_oneway`) of a metric's values over folds/seeds.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.errors import ConfigError

__all__ = ["rmse", "nrmse", "pearson_r", "r_squared", "output_metrics", "anova", "write_csv", "METRICS"]

METRICS = ("rmse", "nrmse", "r", "r2")


def _flat(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=float)
    b = np.asarray(y_pred, dtype=float)
    if a.shape != b.shape:
        raise ConfigError(f"reference {a.shape} and prediction {b.shape} differ in shape", field="predictions")
    n_out = a.shape[-1] if a.ndim > 1 else 1
    return a.reshape(-1, n_out), b.reshape(-1, n_out)


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(n_outputs,) root-mean-square error over all frames; inputs (..., n_outputs)."""
    a, b = _flat(y_true, y_pred)
    return np.sqrt(np.mean((a - b) ** 2, axis=0))


def nrmse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(n_outputs,) RMSE / (max - min) of the reference (NaN where the reference is constant)."""
    a, _ = _flat(y_true, y_pred)
    span = a.max(axis=0) - a.min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 0, rmse(y_true, y_pred) / np.where(span > 0, span, 1.0), np.nan)


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(n_outputs,) Pearson correlation coefficient (NaN where either side is constant)."""
    a, b = _flat(y_true, y_pred)
    da, db = a - a.mean(0), b - b.mean(0)
    den = np.sqrt((da ** 2).sum(0) * (db ** 2).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (da * db).sum(0) / np.where(den > 0, den, 1.0), np.nan)


def r_squared(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(n_outputs,) 1 - SS_res / SS_tot (NaN where the reference is constant)."""
    a, b = _flat(y_true, y_pred)
    ss_tot = ((a - a.mean(0)) ** 2).sum(0)
    ss_res = ((a - b) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)


def output_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """One row per output: ``output``, ``rmse``, ``nrmse``, ``r``, ``r2``, ``n_frames``."""
    a, b = _flat(y_true, y_pred)
    if len(labels) != a.shape[1]:
        raise ConfigError(f"{len(labels)} labels for {a.shape[1]} outputs", field="labels")
    values = {"rmse": rmse(a, b), "nrmse": nrmse(a, b), "r": pearson_r(a, b), "r2": r_squared(a, b)}
    return [{"output": name, **{k: float(v[k_out]) for k, v in values.items()}, "n_frames": int(a.shape[0])}
            for k_out, name in enumerate(labels)]


def anova(groups: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """One-way ANOVA across methods: ``groups`` method -> values (e.g. per-fold nRMSE of one output).

    Returns ``f`` and ``p`` (NaN when fewer than two groups have at least two finite values, or all values
    are equal)."""
    from scipy.stats import f_oneway

    samples = [np.asarray([v for v in vals if np.isfinite(v)], dtype=float) for vals in groups.values()]
    samples = [s for s in samples if s.size >= 2]
    if len(samples) < 2:
        return {"f": float("nan"), "p": float("nan"), "n_groups": len(samples)}
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = f_oneway(*samples)
    return {"f": float(res.statistic), "p": float(res.pvalue), "n_groups": len(samples)}


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Rows (dicts) to CSV with the union of their keys as columns, in first-seen order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        for k in row:
            if k not in columns:
                columns.append(k)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path
