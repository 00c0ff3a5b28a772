"""The learning stage's figures, after Zhang et al. 2023 (IEEE TNSRE, "Physics-informed deep learning for
musculoskeletal modelling"): PNG files drawn with matplotlib's Agg backend (no display needed).

* :func:`plot_predictions`: predicted vs reference joint angle(s) and muscle forces of the test samples, per
  method. Gait cycles: mean +- SD over the test cycles against 0-100 % of the cycle. Windows: the time course of
  one test trial, every frame the mean +- SD over the test windows (and seeds) that cover it.
* :func:`plot_method_comparison`: nRMSE and r per output, one bar per method (mean +- SD over folds and seeds).
* :func:`plot_training_curves`: total, data and physics terms per epoch (training solid, validation dashed),
  mean +- SD over folds and seeds, per run.
* :func:`plot_study`: mean nRMSE of the angle and of the force outputs against a study's variable (training-set
  fraction, number of convolutional blocks), per method.
* :func:`plot_truth`: nRMSE and r of every method against the TRUE values of a synthetic subject, beside the
  labels' own errors.

Inputs are the files of ``pimsk evaluate`` (summary.csv, metrics.csv, predictions/) and ``pimsk train``
(history.csv); angles are drawn in degrees, forces in N; nRMSE in % of the reference's range.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pimsk.errors import ConfigError
from pimsk.learn.datasets import SampleSet
from pimsk.report.tables import as_float, mean_sd, read_csv
from pimsk.report.truth import LABELS_RUN, sample_times

__all__ = ["plot_predictions", "plot_method_comparison", "plot_training_curves", "plot_study", "plot_truth",
           "study_runs", "load_predictions"]

LOSS_TERMS = ("total", "data", "physics_moment", "physics_muscle")
METHOD_NAMES = {"picnn": "PI-CNN", "cnn": "CNN", "elm": "ELM", "mlelm": "ML-ELM", "svr": "SVR",
                LABELS_RUN: "labels (SO/CMC)"}
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _name(run: str) -> str:
    return METHOD_NAMES.get(run, run)


#: one colour per method in every figure; other run names take the remaining colours in order
METHOD_COLOURS = {"picnn": "#d62728", "cnn": "#1f77b4", "elm": "#2ca02c", "mlelm": "#9467bd", "svr": "#ff7f0e",
                  LABELS_RUN: "black"}


def _colours(names: Sequence[str]) -> dict[str, str]:
    spare = iter(["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"] * 4)
    return {n: METHOD_COLOURS.get(n) or next(spare) for n in names}


def _ordered(runs: Sequence[str]) -> list[str]:
    """Known methods in the order of METHOD_COLOURS (PI-CNN first), then other runs, the labels last."""
    known = [m for m in METHOD_COLOURS if m in runs and m != LABELS_RUN]
    return known + [r for r in runs if r not in METHOD_COLOURS] + ([LABELS_RUN] if LABELS_RUN in runs else [])


def _save(fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    _pyplot().close(fig)
    return out


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


def _scale(label: str, angles: Sequence[str]) -> tuple[float, str]:
    return (180.0 / math.pi, "deg") if label in angles else (1.0, "N")


def runs_of(summary_rows: Sequence[Mapping[str, str]]) -> list[str]:
    return list(dict.fromkeys(r["run"] for r in summary_rows))


def outputs_of(summary_rows: Sequence[Mapping[str, str]], angles: Sequence[str]) -> list[str]:
    """Outputs of a summary, angles first."""
    outs = list(dict.fromkeys(r["output"] for r in summary_rows))
    return [o for o in outs if o in angles] + [o for o in outs if o not in angles]


# ------------------------------------------------------------------------------------------- predictions
def load_predictions(evaluation_dir: str | Path, run: str) -> list[dict[str, np.ndarray]]:
    """Every prediction file of ``run`` (``predictions/<run>/<fold>/seed_<s>.npz``) as dicts of arrays."""
    files = sorted((Path(evaluation_dir) / "predictions" / run).rglob("*.npz"))
    if not files:
        raise ConfigError(f"no predictions of run {run!r}", file=Path(evaluation_dir) / "predictions",
                          hint="run `pimsk evaluate` first")
    out = []
    for f in files:
        with np.load(f, allow_pickle=False) as d:
            out.append({k: d[k] for k in ("pred", "true", "indices", "labels")})
    return out


def _stitch(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of overlapping samples on one time axis: unique times (s), mean and SD of the values there."""
    keys = np.round(times.ravel(), 6)
    vals = values.ravel()
    uniq, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse)
    mean = np.bincount(inverse, vals) / count
    var = np.bincount(inverse, vals ** 2) / count - mean ** 2
    return uniq, mean, np.sqrt(np.clip(var, 0.0, None))


def _series(samples: SampleSet, preds: list[dict[str, np.ndarray]], label: str, trial: str | None
            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """x, (mean, SD) of the predictions and (mean, SD) of the reference of one output."""
    pred, true, idx = [], [], []
    for p in preds:
        labels = [str(x) for x in p["labels"]]
        if label not in labels:
            continue
        k = labels.index(label)
        keep = np.ones(len(p["indices"]), dtype=bool)
        if trial is not None:
            keep = samples.trial[np.asarray(p["indices"], dtype=int)] == trial
        pred.append(p["pred"][keep, :, k])
        true.append(p["true"][keep, :, k])
        idx.append(np.asarray(p["indices"], dtype=int)[keep])
    if not pred or sum(len(i) for i in idx) == 0:
        raise ConfigError(f"no test predictions of {label!r}" + (f" in trial {trial}" if trial else ""),
                          field=label)
    pred_a, true_a, idx_a = np.concatenate(pred), np.concatenate(true), np.concatenate(idx)
    if samples.kind == "cycle":
        x = np.linspace(0.0, 100.0, pred_a.shape[1])
        return x, (pred_a.mean(0), pred_a.std(0)), (true_a.mean(0), true_a.std(0))
    times = sample_times(samples, idx_a)
    x, pm, ps = _stitch(times, pred_a)
    _, tm, ts = _stitch(times, true_a)
    return x, (pm, ps), (tm, ts)


def plot_predictions(samples: SampleSet, evaluation_dir: str | Path, out: str | Path,
                     angles: Sequence[str] = (), title: str = "") -> Path:
    """Predicted vs reference outputs of the test samples, one panel per output, one line per method (mean +-
    SD bands; module docstring). Windows: the first trial (dataset order) that some fold tests."""
    plt = _pyplot()
    summary = read_csv(Path(evaluation_dir) / "summary.csv", ("run", "output"))
    runs = runs_of(summary)
    outputs = outputs_of(summary, angles)
    preds = {run: load_predictions(evaluation_dir, run) for run in runs}
    trial = None
    if samples.kind != "cycle":
        tested = {str(samples.trial[i]) for p in preds[runs[0]] for i in np.asarray(p["indices"], dtype=int)}
        trial = next(t for t in samples.trials if t in tested)
    colours = _colours(runs)
    rows, cols = _grid(len(outputs))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, label in zip(axes.flat, outputs):
        factor, unit = _scale(label, angles)
        x = ref = None
        for run in runs:
            x, (pm, ps), ref = _series(samples, preds[run], label, trial)
            ax.plot(x, pm * factor, color=colours[run], lw=1.2, label=_name(run))
            ax.fill_between(x, (pm - ps) * factor, (pm + ps) * factor, color=colours[run], alpha=0.12, lw=0)
        ax.plot(x, ref[0] * factor, color="black", lw=2.0, ls="--", label="reference")
        ax.fill_between(x, (ref[0] - ref[1]) * factor, (ref[0] + ref[1]) * factor, color="0.6", alpha=0.25, lw=0)
        ax.set_title(label, fontsize=10)
        ax.set_ylabel(f"{'angle' if unit == 'deg' else 'force'} ({unit})")
        ax.set_xlabel("gait cycle (%)" if samples.kind == "cycle" else f"time in trial {trial} (s)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(outputs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(title or "test predictions vs reference (mean ± SD)")
    fig.tight_layout()
    return _save(fig, out)


# ------------------------------------------------------------------------------------------- comparisons
def _bars(ax, runs: Sequence[str], outputs: Sequence[str], table: Mapping[tuple[str, str], Mapping[str, str]],
          metric: str, factor: float, colours: Mapping[str, str]) -> None:
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(outputs))
    for k, run in enumerate(runs):
        mean = [as_float(table.get((run, o), {}).get(f"{metric}_mean")) * factor for o in outputs]
        sd = [as_float(table.get((run, o), {}).get(f"{metric}_sd")) * factor for o in outputs]
        ax.bar(x + (k - (len(runs) - 1) / 2) * width, mean, width, yerr=np.nan_to_num(sd), capsize=2,
               color=colours[run], label=_name(run), error_kw={"lw": 0.8})
    ax.set_xticks(x)
    ax.set_xticklabels(outputs, rotation=30, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _comparison(summary: Sequence[Mapping[str, str]], runs: Sequence[str], outputs: Sequence[str], out: Path,
                title: str) -> Path:
    plt = _pyplot()
    table = {(r["run"], r["output"]): r for r in summary}
    colours = _colours(runs)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6.0, 1.1 * len(outputs) + 3), 6.4))
    _bars(a1, runs, outputs, table, "nrmse", 100.0, colours)
    a1.set_ylabel("nRMSE (% of range)")
    _bars(a2, runs, outputs, table, "r", 1.0, colours)
    a2.set_ylabel("Pearson r")
    a2.set_ylim(min(0.0, a2.get_ylim()[0]), 1.05)
    a1.legend(fontsize=8, ncol=min(6, len(runs)))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def plot_method_comparison(summary_csv: str | Path, out: str | Path, angles: Sequence[str] = (),
                           title: str = "") -> Path:
    """nRMSE (%) and r per output, grouped bars per method, error bars: SD over folds and seeds."""
    summary = read_csv(summary_csv, ("run", "output", "nrmse_mean", "nrmse_sd", "r_mean", "r_sd"))
    return _comparison(summary, runs_of(summary), outputs_of(summary, angles), Path(out),
                       title or "method comparison on the test folds (mean ± SD over folds and seeds)")


def plot_truth(truth_summary_csv: str | Path, out: str | Path, angles: Sequence[str] = (), title: str = "") -> Path:
    """nRMSE (%) and r of every method against the TRUE values, beside the labels' own errors (black)."""
    summary = read_csv(truth_summary_csv, ("run", "output", "nrmse_mean", "nrmse_sd", "r_mean", "r_sd"))
    return _comparison(summary, _ordered(runs_of(summary)), outputs_of(summary, angles), Path(out),
                       title or "errors against the TRUE values of the synthetic subject (test folds)")


# ------------------------------------------------------------------------------------------- training curves
def _histories(run_dir: Path) -> list[dict[str, np.ndarray]]:
    out = []
    for f in sorted(Path(run_dir).rglob("history.csv")):
        rows = read_csv(f, ("epoch",))
        out.append({k: np.asarray([as_float(r.get(k)) for r in rows]) for k in rows[0]} if rows else {})
    return [h for h in out if h]


def _padded(histories: Sequence[Mapping[str, np.ndarray]], key: str) -> np.ndarray:
    n = max(len(h["epoch"]) for h in histories)
    out = np.full((len(histories), n), np.nan)
    for k, h in enumerate(histories):
        if key in h:
            out[k, :len(h[key])] = h[key]
    return out


def plot_training_curves(run_dirs: Mapping[str, str | Path], out: str | Path, title: str = "") -> Path:
    """Loss terms per epoch of every run (history.csv of each fold and seed): total, data, physics_moment,
    physics_muscle; training solid, validation dashed; mean +- SD over folds and seeds (log scale)."""
    plt = _pyplot()
    runs = {name: _histories(Path(d)) for name, d in run_dirs.items()}
    empty = [n for n, h in runs.items() if not h]
    if empty:
        raise ConfigError(f"no history.csv under run {empty[0]!r}", file=run_dirs[empty[0]],
                          hint="train it with `pimsk train` (PI-CNN and CNN write one per fold and seed)")
    colours = _colours(list(runs))
    fig, axes = plt.subplots(1, len(LOSS_TERMS), figsize=(4.0 * len(LOSS_TERMS), 3.4), squeeze=False)
    for ax, term in zip(axes.flat, LOSS_TERMS):
        for name, hist in runs.items():
            for part, style in (("train", "-"), ("val", "--")):
                values = _padded(hist, f"{part}_{term}")
                if not np.isfinite(values).any():
                    continue
                with np.errstate(all="ignore"):
                    import warnings

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        mean, sd = np.nanmean(values, 0), np.nan_to_num(np.nanstd(values, 0))
                epochs = np.arange(1, values.shape[1] + 1)
                ax.plot(epochs, mean, style, color=colours[name], lw=1.3, label=f"{_name(name)} {part}")
                ax.fill_between(epochs, np.clip(mean - sd, 1e-12, None), mean + sd, color=colours[name], alpha=0.1,
                                lw=0)
        ax.set_yscale("log")
        ax.set_title(term.replace("_", " "), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    axes.flat[0].set_ylabel("loss (normalised)")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title or "training curves (mean ± SD over folds and seeds; the CNN's physics terms are logged "
                          "only, lambda = 0)")
    fig.tight_layout()
    return _save(fig, out)


# ------------------------------------------------------------------------------------------- studies
def study_runs(names: Sequence[str]) -> dict[str, list[tuple[float, str]]]:
    """Run names ``<method>@<value>`` -> {method: [(value, name), ...]} sorted by value."""
    out: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for name in names:
        method, sep, value = name.partition("@")
        if not sep:
            raise ConfigError(f"study run {name!r} is not <method>@<value>", field="run",
                              hint="name the runs with `pimsk evaluate --names picnn@0.5 ...`")
        out[method].append((float(value), name))
    return {m: sorted(v) for m, v in out.items()}


def plot_study(evaluation_dir: str | Path, out: str | Path, xlabel: str, angles: Sequence[str] = (),
               title: str = "") -> Path:
    """Mean nRMSE (%) over the angle outputs and over the force outputs against the study's variable, per
    method; error bars: SD over folds and seeds of the per-model mean (metrics.csv of ``pimsk evaluate``)."""
    plt = _pyplot()
    metrics = read_csv(Path(evaluation_dir) / "metrics.csv", ("run", "fold", "seed", "output", "nrmse"))
    groups = study_runs(list(dict.fromkeys(r["run"] for r in metrics)))
    kinds = [("angles", lambda o: o in angles), ("forces", lambda o: o not in angles)]
    kinds = [(k, f) for k, f in kinds if any(f(r["output"]) for r in metrics)]
    colours = _colours(list(groups))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.6 * len(kinds), 3.6), squeeze=False)
    for ax, (kind, chosen) in zip(axes.flat, kinds):
        for method, items in groups.items():
            xs, means, sds = [], [], []
            for value, name in items:
                per_model: dict[tuple[str, str], list[float]] = defaultdict(list)
                for r in metrics:
                    if r["run"] == name and chosen(r["output"]):
                        per_model[(r["fold"], r["seed"])].append(as_float(r["nrmse"]))
                m, s = mean_sd(float(np.nanmean(v)) for v in per_model.values())
                xs.append(value)
                means.append(100.0 * m)
                sds.append(100.0 * s if np.isfinite(s) else 0.0)
            ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3, color=colours[method], label=_name(method))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"mean nRMSE of the {kind} (%)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title or f"effect of the {xlabel} (test folds)")
    fig.tight_layout()
    return _save(fig, out)
