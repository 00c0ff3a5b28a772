"""Figures of step beyond ([F6]: beyond one subject), PNG with matplotlib's Agg backend.

* :func:`plot_parameters`: per muscle, the generic scaled model's, the identified and the TRUE value of every
  identified parameter that has a true value (bars), each bar labelled with its error in % of the truth (Shi, Ma &
  Zhao: parameters identified with the musculoskeletal ODE as a loss).
* :func:`plot_force_traces`: forces on the test trial, one panel per muscle: truth, ODE with the identified and
  with the generic parameters (and any other saved forces).
* :func:`plot_force_bars`: nRMSE and r per muscle against the truth, one bar per method (label-free vs supervised
  PI-CNN).
* :func:`plot_transfer`: nRMSE and r per output on the unseen subject's held-out data, one bar per arm
  (generic / scratch / transfer; Zhang et al. 2022, IEEE TIM), error bars SD over seeds.

Inputs are the rows of :mod:`pimsk.report.beyond`; forces in N, nRMSE in % of the truth's range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimsk.report.figures import _grid, _pyplot, _save

__all__ = ["PARAMETER_LABELS", "ARM_COLOURS", "plot_parameters", "plot_force_traces", "plot_force_bars",
           "plot_transfer"]

PARAMETER_LABELS = {"max_isometric_force_n": ("max isometric force", "N", 1.0),
                    "optimal_fiber_length_m": ("optimal fibre length", "mm", 1000.0),
                    "tendon_slack_length_m": ("tendon slack length", "mm", 1000.0)}
#: one colour per series of every figure of step beyond
ARM_COLOURS = {"truth": "black", "generic": "#7f7f7f", "identified": "#d62728", "generic_ode": "#7f7f7f",
               "identified_ode": "#d62728", "label_free": "#d62728", "supervised": "#1f77b4",
               "scratch": "#ff7f0e", "transfer": "#2ca02c"}
NAMES = {"generic_ode": "ODE, generic parameters", "identified_ode": "ODE, identified parameters",
         "label_free": "label-free PI-CNN", "supervised": "supervised PI-CNN", "truth": "truth",
         "generic": "generic", "identified": "identified", "scratch": "scratch", "transfer": "transfer"}


def _colour(name: str, k: int) -> str:
    return ARM_COLOURS.get(name) or ["#9467bd", "#8c564b", "#e377c2", "#17becf"][k % 4]


def plot_parameters(rows: Sequence[Mapping[str, Any]], out: str | Path, title: str = "") -> Path:
    """One panel per parameter: generic / identified / true bars per muscle, errors in % over the bars."""
    plt = _pyplot()
    params = list(dict.fromkeys(r["parameter"] for r in rows))
    fig, axes = plt.subplots(1, len(params), figsize=(5.2 * len(params), 3.6), squeeze=False)
    for ax, p in zip(axes.flat, params):
        name, unit, factor = PARAMETER_LABELS.get(p, (p, "SI", 1.0))
        sel = [r for r in rows if r["parameter"] == p]
        muscles = [r["muscle"] for r in sel]
        x = np.arange(len(muscles))
        for k, (kind, err) in enumerate((("generic", "generic_error_pct"), ("identified", "identified_error_pct"),
                                         ("truth", None))):
            vals = np.array([r[kind] for r in sel]) * factor
            bars = ax.bar(x + (k - 1) * 0.27, vals, 0.27, color=_colour(kind, k), label=NAMES[kind])
            if err:
                for b, r in zip(bars, sel):
                    ax.annotate(f"{r[err]:+.0f}%", (b.get_x() + b.get_width() / 2, b.get_height()),
                                ha="center", va="bottom", fontsize=6, rotation=90, xytext=(0, 2),
                                textcoords="offset points")
        ax.set_xticks(x)
        ax.set_xticklabels(muscles, fontsize=8)
        ax.set_ylabel(f"{name} ({unit})")
        ax.margins(y=0.18)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper right", ncol=3)
    fig.suptitle(title or "identified vs generic vs true muscle parameters (error in % of the truth)", x=0.35)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _save(fig, out)


def plot_force_traces(time_s: np.ndarray, series: Mapping[str, np.ndarray], muscles: Sequence[str],
                      out: str | Path, title: str = "") -> Path:
    """One panel per muscle: every series (n_frames, n_muscles) in N against time; the truth thick dashed."""
    plt = _pyplot()
    rows_n, cols = _grid(len(muscles), 3)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 2.8 * rows_n), squeeze=False)
    for i, (ax, m) in enumerate(zip(axes.flat, muscles)):
        for k, (name, values) in enumerate(series.items()):
            if name == "truth":
                ax.plot(time_s, values[:, i], color="black", lw=2.0, ls="--", label=NAMES[name], zorder=5)
            else:
                ax.plot(time_s, values[:, i], color=_colour(name, k), lw=1.1, label=NAMES.get(name, name))
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("time in the test trial (s)")
        ax.set_ylabel("tendon force (N)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(muscles):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(title or "muscle forces on the test trial")
    fig.tight_layout()
    return _save(fig, out)


def _metric_bars(ax, groups: Sequence[str], series: Sequence[str], values: Mapping[tuple[str, str], float],
                 errors: Mapping[tuple[str, str], float] | None, ylabel: str) -> None:
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for k, s in enumerate(series):
        v = [values.get((s, g), np.nan) for g in groups]
        e = None if errors is None else np.nan_to_num([errors.get((s, g), 0.0) for g in groups])
        ax.bar(x + (k - (len(series) - 1) / 2) * width, v, width, yerr=e, capsize=2, color=_colour(s, k),
               label=NAMES.get(s, s), error_kw={"lw": 0.8})
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def plot_force_bars(rows: Sequence[Mapping[str, Any]], out: str | Path, title: str = "") -> Path:
    """nRMSE (%) and r per muscle (and their mean) against the truth, one bar per method (rows of
    :func:`pimsk.report.beyond.force_scores`)."""
    plt = _pyplot()
    methods = list(dict.fromkeys(r["method"] for r in rows))
    muscles = list(dict.fromkeys(r["muscle"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    _metric_bars(axes[0], muscles, methods, {(r["method"], r["muscle"]): 100 * r["nrmse"] for r in rows}, None,
                 "nRMSE (% of the true range)")
    _metric_bars(axes[1], muscles, methods, {(r["method"], r["muscle"]): r["r"] for r in rows}, None,
                 "Pearson r with the truth")
    axes[1].set_ylim(min(0.0, min(r["r"] for r in rows if np.isfinite(r["r"])) - 0.05), 1.0)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(title or "forces against the truth on the test trial")
    fig.tight_layout()
    return _save(fig, out)


def plot_transfer(rows: Sequence[Mapping[str, Any]], out: str | Path, title: str = "") -> Path:
    """nRMSE (%) and r per output (and their mean) on the target's held-out data, one bar per arm, error bars
    SD over seeds (rows of :func:`pimsk.report.beyond.transfer_rows`)."""
    plt = _pyplot()
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    outputs = list(dict.fromkeys(r["output"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    key = {(r["arm"], r["output"]): r for r in rows}
    _metric_bars(axes[0], outputs, arms, {k: 100 * r["nrmse_mean"] for k, r in key.items()},
                 {k: 100 * r["nrmse_sd"] for k, r in key.items()}, "nRMSE (% of the reference's range)")
    _metric_bars(axes[1], outputs, arms, {k: r["r_mean"] for k, r in key.items()},
                 {k: r["r_sd"] for k, r in key.items()}, "Pearson r")
    axes[1].set_ylim(min(0.0, min(r["r_mean"] for r in rows if np.isfinite(r["r_mean"])) - 0.05), 1.0)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(title or "transfer to an unseen subject: held-out data of the target")
    fig.tight_layout()
    return _save(fig, out)
