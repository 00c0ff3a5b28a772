"""Training: PI-CNN (data + lambda x physics), the CNN baseline (lambda = 0), ELM, ML-ELM, SVR.

One *run config* (YAML/JSON mapping, :data:`DEFAULTS` for every key) says what to train::

    method: picnn            # picnn | cnn (same network, lambda = 0) | elm | mlelm | svr
    seed: 0                  # or seeds: [0, 1, 2] (one model per seed and fold)
    outputs: [wrist_flexion_r, FCR, FCU]   # target columns to predict (default: all but moment columns)
    network: {n_blocks: 4, channels: 32, kernel_size: 5, activation: relu, dropout: 0.1, fc_hidden: [64]}
    training: {max_epochs: 200, batch_size: 16, learning_rate: 1.0e-3, weight_decay: 0.0, patience: 20,
               monitor: data, threads: 1}
    loss: {lambda: 1.0, physics_moment: 1.0, physics_muscle: 1.0}
    physics: {surrogate: s.json, muscle_parameters: model.osim, chain: chain.json, ...}  # see PhysicsSpec
             # (chain may be an .osim with chain_root_body: forearm_r, chain_coordinates: [wrist_flexion_r])
    baseline: {n_hidden: 200, C: 1000, lags: [0, 5, 10]}          # settings of elm / mlelm / svr
    protocol: {name: within_trial, train_fraction: 0.8, val_fraction: 0.2}
              # | {name: leave_one_trial_out, n_val_trials: 1} (or val_fraction: 0.2: the tail of every
              #   training trial validates) | {name: cross_speed, attribute: speed, n_val_trials: 1}
    search: {loss.lambda: [0.1, 1, 10], network.n_blocks: [2, 4]}  # grid, chosen on VALIDATION data only

Every model is fitted on a fold's training samples; early stopping watches the validation loss (``monitor``:
the standardised data MSE by default, or the total); the search picks the candidate with the smallest
validation data MSE (``selection_metric``); the test samples are never looked at here (``pimsk evaluate``
does that). Standardisation, excitation gains and moment scales are fitted on the training samples only.
Everything random (weights, dropout, batch order, validation trials, baseline features) follows the seed.

Per model the output folder holds ``model.pt`` (PI-CNN/CNN: plain tensors and types, loadable with
``torch.load(weights_only=True)``) or ``model.pkl`` (baselines), ``history.csv`` (per epoch: train and
validation values of every loss term), ``config.json`` (the resolved config), ``split.json`` (indices),
``selection.csv`` (search candidates and their validation scores) and ``physics.json`` (calibration and how far
the training labels violate the physics).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pimsk.errors import ConfigError, PimskError
from pimsk.learn.baselines import load_baseline, make_baseline
from pimsk.learn.datasets import SampleSet, Split, Standardiser, cross_speed, leave_one_group_out, \
    head_of_each_trial, leave_one_trial_out, make_loader, within_trial_split
from pimsk.learn.losses import TERMS, LossWeights, PhysicsLoss, PhysicsSpec, TrainingLoss
from pimsk.learn.metrics import write_csv
from pimsk.learn.networks import CNNConfig, PICNN, build_network
from pimsk.learn.physics_files import PhysicsAssets, load_physics_assets

__all__ = ["DEFAULTS", "METHODS", "TrainSettings", "RunConfig", "FitResult", "TrainingError", "load_config",
           "resolve_config", "with_overrides", "make_splits", "fit_model", "select_and_fit", "run_training",
           "save_fit", "load_fit", "TrainedModel", "assets_from_config"]

log = logging.getLogger("pimsk.learn.train")

METHODS = ("picnn", "cnn", "elm", "mlelm", "svr")
DEFAULTS: dict[str, Any] = {
    "method": "picnn",
    "seed": 0,
    "seeds": None,
    "outputs": None,
    "network": {},
    "training": {},
    "loss": {"lambda": 1.0},
    "physics": {},
    "baseline": {},
    "protocol": {"name": "within_trial", "train_fraction": 0.8, "val_fraction": 0.2},
    "search": {},
    "selection_metric": "data",
}
_PHYSICS_FILES = ("surrogate", "muscle_parameters", "chain", "chain_root_body", "chain_coordinates")


class TrainingError(PimskError):
    """Training failed (non-finite loss, nothing to train on, ...)."""


@dataclass
class TrainSettings:
    """Optimiser and stopping: Adam(learning_rate, weight_decay); stop after ``patience`` epochs without a
    validation improvement larger than ``min_delta`` (relative); ``threads``: torch CPU threads (1 is fastest
    for these small tensors on a shared machine); ``grad_clip``: max gradient norm (0 = off)."""

    max_epochs: int = 200
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 20
    min_delta: float = 0.0
    monitor: str = "data"
    threads: int = 1
    grad_clip: float = 0.0
    log_physics: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "training") -> "TrainSettings":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training settings {unknown}", field=where, hint=f"known: {sorted(known)}")
        s = cls(**data)
        if s.max_epochs < 1 or s.batch_size < 1 or s.learning_rate <= 0 or s.patience < 1 or s.threads < 1:
            raise ConfigError("max_epochs, batch_size, patience, threads >= 1 and learning_rate > 0", field=where)
        if s.monitor not in ("data", "total"):
            raise ConfigError(f"monitor {s.monitor!r}: 'data' or 'total'", field=f"{where}.monitor")
        return s


@dataclass
class RunConfig:
    """A validated run config (see the module docstring); ``raw`` keeps the mapping it came from."""

    method: str
    seeds: list[int]
    outputs: list[str] | None
    network: CNNConfig
    training: TrainSettings
    loss: LossWeights
    physics: PhysicsSpec
    physics_files: dict[str, Any]
    baseline: dict[str, Any]
    protocol: dict[str, Any]
    search: dict[str, list]
    selection_metric: str
    raw: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- config
def load_config(path: str | Path) -> dict[str, Any]:
    """A run config mapping from YAML or JSON (unknown top-level keys raise ConfigError); the file's folder
    is kept as ``_base_dir`` for relative physics paths."""
    from pimsk.config import load_mapping

    path = Path(path)
    data = load_mapping(path, "run config")
    data["_base_dir"] = str(path.resolve().parent)
    try:
        resolve_config(data)
    except ConfigError as exc:
        raise exc.located(file=path)
    return data


def with_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep copy of ``raw`` with dotted keys set, e.g. ``{"loss.lambda": 10, "network.n_blocks": 2}``."""
    out = copy.deepcopy(dict(raw))
    for key, value in overrides.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = {}
            elif not isinstance(child, Mapping):
                raise ConfigError(f"cannot set {key}: {p} is not a mapping", field=key)
            node[p] = dict(child)
            node = node[p]
        node[parts[-1]] = value
    return out


def resolve_config(raw: Mapping[str, Any]) -> RunConfig:
    """Validate a run config mapping (defaults filled in)."""
    unknown = sorted(set(raw) - set(DEFAULTS) - {"_base_dir"})
    if unknown:
        raise ConfigError(f"unknown run-config keys {unknown}", field=unknown[0], hint=f"known: {sorted(DEFAULTS)}")
    data = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(dict(raw))}
    method = str(data["method"]).lower()
    if method not in METHODS:
        raise ConfigError(f"method {method!r} unknown", field="method", hint=f"choose one of {list(METHODS)}")
    seeds = data["seeds"] if data["seeds"] is not None else [data["seed"]]
    try:
        seeds = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ConfigError("seeds must be integers", field="seeds") from None
    if not seeds:
        raise ConfigError("no seeds", field="seeds")
    physics_raw = dict(data["physics"] or {})
    files = {k: physics_raw.pop(k) for k in _PHYSICS_FILES if k in physics_raw}
    search = dict(data["search"] or {})
    for key, values in search.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"search.{key} must be a non-empty list", field=f"search.{key}")
        if key.split(".")[0] in ("search", "seeds", "seed", "protocol", "method", "outputs"):
            raise ConfigError(f"search.{key}: that setting cannot be searched", field=f"search.{key}")
    if data["selection_metric"] not in ("data", "total"):
        raise ConfigError("selection_metric must be 'data' or 'total'", field="selection_metric")
    protocol = dict(data["protocol"] or {})
    if protocol.get("name") not in ("within_trial", "leave_one_trial_out", "cross_speed", "leave_one_group_out"):
        raise ConfigError(f"protocol.name {protocol.get('name')!r} unknown", field="protocol.name",
                          hint="within_trial, leave_one_trial_out, cross_speed or leave_one_group_out")
    outputs = data["outputs"]
    if outputs is not None and (not isinstance(outputs, list) or not outputs):
        raise ConfigError("outputs must be a non-empty list of target columns", field="outputs")
    return RunConfig(method=method, seeds=seeds, outputs=None if outputs is None else [str(o) for o in outputs],
                     network=CNNConfig.from_dict(data["network"]), training=TrainSettings.from_dict(data["training"]),
                     loss=LossWeights.from_dict(data["loss"]), physics=PhysicsSpec.from_dict(physics_raw),
                     physics_files=files, baseline=dict(data["baseline"] or {}), protocol=protocol, search=search,
                     selection_metric=data["selection_metric"], raw=dict(raw))


def assets_from_config(raw: Mapping[str, Any], **overrides: Any) -> PhysicsAssets | None:
    """Load the physics files named in ``physics`` (relative to ``_base_dir``); keyword overrides (CLI) win.
    None when no surrogate / muscle parameters are named."""
    physics = dict(raw.get("physics") or {})
    physics.update({k: v for k, v in overrides.items() if v is not None})
    base = Path(raw.get("_base_dir", "."))

    def path(key: str) -> Path | None:
        value = physics.get(key)
        if value is None:
            return None
        p = Path(value)
        return p if p.is_absolute() else base / p

    if physics.get("surrogate") is None and physics.get("muscle_parameters") is None:
        return None
    if physics.get("surrogate") is None or physics.get("muscle_parameters") is None:
        raise ConfigError("the physics needs both a surrogate and muscle parameters", field="physics.surrogate")
    coords = physics.get("chain_coordinates") or list((physics.get("coordinates") or {}).values()) or None
    return load_physics_assets(path("surrogate"), path("muscle_parameters"), path("chain"),
                               chain_root_body=physics.get("chain_root_body"), chain_coordinates=coords)


# ------------------------------------------------------------------------------------------- splits
def make_splits(samples: SampleSet, protocol: Mapping[str, Any], seed: int = 0) -> list[Split]:
    """Folds of the protocol: within_trial (one split), leave_one_trial_out, cross_speed / leave_one_group_out."""
    name = protocol.get("name")
    opts = {k: v for k, v in protocol.items() if k != "name"}
    try:
        if name == "within_trial":
            return [within_trial_split(samples, float(opts.get("train_fraction", 0.8)),
                                       float(opts.get("val_fraction", 0.2)))]
        if name == "leave_one_trial_out":
            val_fraction = float(opts.get("val_fraction", 0.0))
            return leave_one_trial_out(samples, n_val_trials=int(opts.get("n_val_trials", 0 if val_fraction else 1)),
                                       seed=seed, val_fraction=val_fraction)
        if name == "cross_speed":
            return cross_speed(samples, str(opts.get("attribute", "speed")), n_val_trials=int(opts.get("n_val_trials", 1)),
                               seed=seed)
        if name == "leave_one_group_out":
            return leave_one_group_out(samples, str(opts["attribute"]), n_val_trials=int(opts.get("n_val_trials", 1)),
                                       seed=seed)
    except KeyError as exc:
        raise ConfigError(f"protocol {name} needs {exc}", field=f"protocol.{exc.args[0]}") from None
    raise ConfigError(f"protocol {name!r} unknown", field="protocol.name")


def split_to_dict(split: Split, samples: SampleSet) -> dict[str, Any]:
    return {"name": split.name, "test_group": split.test_group,
            **{part: {"indices": getattr(split, part).tolist(),
                      "trials": sorted(set(samples.trial[getattr(split, part)].tolist()))}
               for part in ("train", "val", "test")}}


def split_from_dict(data: Mapping[str, Any]) -> Split:
    return Split(data["name"], np.asarray(data["train"]["indices"], dtype=int),
                 np.asarray(data["test"]["indices"], dtype=int), np.asarray(data["val"]["indices"], dtype=int),
                 data.get("test_group", ""))


# ------------------------------------------------------------------------------------------ fitting
@dataclass
class FitResult:
    """A fitted model and its record. ``val_score``: validation value of the selection metric (standardised
    data MSE by default; NaN without validation samples)."""

    method: str
    model: Any
    output_labels: list[str]
    output_index: list[int]
    history: list[dict[str, Any]]
    best_epoch: int
    val_score: float
    physics_info: dict[str, Any]
    seconds: float
    seed: int


def output_columns(samples: SampleSet, run: RunConfig) -> tuple[list[str], list[int]]:
    """Output labels and their target-column indices (default: every target that is not a moment column)."""
    if run.outputs is not None:
        missing = [o for o in run.outputs if o not in samples.target_labels]
        if missing:
            raise ConfigError(f"outputs {missing} are not dataset targets", field="outputs",
                              hint=f"targets: {samples.target_labels}")
        labels = list(run.outputs)
    else:
        moment_cols = set(run.physics.moment_columns.values()) if run.physics.moment_source == "target" else set()
        labels = [t for t in samples.target_labels if t not in moment_cols]
    return labels, [samples.target_labels.index(o) for o in labels]


def _mean_terms(sums: dict[str, float], n: int) -> dict[str, float]:
    return {k: (v / n if n else float("nan")) for k, v in sums.items()}


def _run_epoch(model: PICNN, loss_fn: TrainingLoss, loader, activation: torch.Tensor | None,
               optimizer: torch.optim.Optimizer | None, grad_clip: float) -> dict[str, float]:
    """One pass; with an optimizer: training mode and updates, else eval mode without gradient."""
    train = optimizer is not None
    model.train(train)
    sums = {t: 0.0 for t in TERMS}
    n = 0
    ctx = torch.enable_grad() if train else torch.no_grad()
    with ctx:
        for batch in loader:
            if activation is not None:
                batch["activation"] = activation[batch["index"]]
            z = model(batch["emg"], batch["dt_s"])
            terms = loss_fn(z, batch, model)
            if not torch.isfinite(terms["total"]):
                raise TrainingError(f"the loss is not finite ({ {k: float(v) for k, v in terms.items()} })",
                                    hint="lower the learning rate or lambda, or check the physics files")
            if train:
                optimizer.zero_grad(set_to_none=True)
                terms["total"].backward()
                if grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
            b = int(batch["emg"].shape[0])
            n += b
            for k in TERMS:
                sums[k] += float(terms[k].detach()) * b
    return _mean_terms(sums, n)


def _fit_network(samples: SampleSet, train_idx: np.ndarray, val_idx: np.ndarray, run: RunConfig,
                 assets: PhysicsAssets | None, seed: int) -> FitResult:
    t0 = time.perf_counter()
    s = run.training
    torch.set_num_threads(s.threads)
    labels, out_idx = output_columns(samples, run)
    model = build_network(len(samples.emg_labels), len(labels), run.network, seed=seed,
                          input_labels=samples.emg_labels, output_labels=labels)
    x_scale = Standardiser.fit(samples.emg[train_idx])
    y_scale = Standardiser.fit(samples.targets[train_idx][..., out_idx])
    model.set_scaling(x_scale.mean, x_scale.std, y_scale.mean, y_scale.std, float(np.median(samples.dt_s[train_idx])))
    weights = run.loss if run.method == "picnn" else LossWeights(0.0, run.loss.physics_moment, run.loss.physics_muscle)
    physics = None
    info: dict[str, Any] = {}
    if assets is not None and (weights.lam > 0 or s.log_physics):
        physics = PhysicsLoss(labels, samples.target_labels, samples.emg_labels, assets.surrogate, assets.params,
                              assets.chain, run.physics)
        tr = samples.subset(train_idx)
        info["calibration"] = physics.calibrate(tr.emg, tr.targets, tr.dt_s)
        info["label_violation_train"] = physics.label_violation(tr.emg, tr.targets, tr.dt_s)
        info["physics"] = physics.describe()
        log.info("physics: %s; training labels violate it by %s", physics.describe(),
                 {k: round(v, 6) for k, v in info["label_violation_train"].items()})
    elif run.method == "picnn" and weights.lam > 0:
        raise ConfigError("method picnn with lambda > 0 needs the physics files", field="physics.surrogate",
                          hint="give physics.surrogate and physics.muscle_parameters (or --surrogate ...)")
    loss_fn = TrainingLoss(weights, out_idx, physics, log_physics=s.log_physics)
    activation = None
    if physics is not None and physics.muscle_active and not physics.log_gain.requires_grad:
        with torch.no_grad():
            activation = physics.activation(torch.as_tensor(samples.emg), torch.as_tensor(samples.dt_s))
    params = list(model.parameters())
    if physics is not None and physics.log_gain.requires_grad and weights.lam > 0:
        params.append(physics.log_gain)
    optimizer = torch.optim.Adam(params, lr=s.learning_rate, weight_decay=s.weight_decay)
    torch.manual_seed(seed)  # dropout
    train_loader = make_loader(samples, train_idx, s.batch_size, shuffle=True, seed=seed)
    val_loader = make_loader(samples, val_idx, max(s.batch_size, 64), shuffle=False) if len(val_idx) else None
    history: list[dict[str, Any]] = []
    best = (math.inf, -1, None, None)
    stale = 0
    for epoch in range(1, s.max_epochs + 1):
        te = time.perf_counter()
        tr_terms = _run_epoch(model, loss_fn, train_loader, activation, optimizer, s.grad_clip)
        va_terms = _run_epoch(model, loss_fn, val_loader, activation, None, 0.0) if val_loader else {}
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in tr_terms.items()},
               **{f"val_{k}": va_terms.get(k, float("nan")) for k in TERMS},
               "lr": s.learning_rate, "seconds": time.perf_counter() - te}
        history.append(row)
        watched = va_terms.get(s.monitor, tr_terms[s.monitor])
        improved = watched < best[0] * (1.0 - s.min_delta) if math.isfinite(best[0]) else True
        if improved:
            best = (watched, epoch, copy.deepcopy(model.state_dict()),
                    None if physics is None else physics.log_gain.detach().clone())
            stale = 0
        else:
            stale += 1
        log.info("epoch %3d/%d  train %s | val %s | best %d (%.2f s)", epoch, s.max_epochs,
                 " ".join(f"{k} {tr_terms[k]:.4g}" for k in TERMS),
                 " ".join(f"{k} {va_terms[k]:.4g}" for k in TERMS) if va_terms else "-", best[1], row["seconds"])
        if val_loader is not None and stale >= s.patience:
            log.info("early stop at epoch %d: no validation improvement for %d epochs", epoch, s.patience)
            break
    model.load_state_dict(best[2])
    if physics is not None and best[3] is not None:
        physics.log_gain.data.copy_(best[3])
        info["excitation_gain_final"] = physics.describe()["excitation_gain"]
    model.eval()
    best_row = history[best[1] - 1]
    score_key = f"val_{run.selection_metric}"
    val_score = float(best_row[score_key]) if val_loader is not None else float("nan")
    return FitResult(run.method, model, labels, out_idx, history, best[1], val_score, info,
                     time.perf_counter() - t0, seed)


def _fit_baseline(samples: SampleSet, train_idx: np.ndarray, val_idx: np.ndarray, run: RunConfig,
                  seed: int) -> FitResult:
    t0 = time.perf_counter()
    labels, out_idx = output_columns(samples, run)
    model = make_baseline(run.method, run.baseline, seed=seed)
    tr = samples.subset(train_idx)
    model.fit(tr.emg, tr.targets[..., out_idx], tr.dt_s)
    std = Standardiser.fit(tr.targets[..., out_idx]).std

    def score(idx: np.ndarray) -> float:
        if len(idx) == 0:
            return float("nan")
        sub = samples.subset(idx)
        pred = model.predict(sub.emg, sub.dt_s)
        return float(np.mean(((pred - sub.targets[..., out_idx]) / std) ** 2))

    train_mse, val_mse = score(train_idx), score(val_idx)
    history = [{"epoch": 1, "train_total": train_mse, "train_data": train_mse, "val_total": val_mse,
                "val_data": val_mse, "seconds": time.perf_counter() - t0}]
    log.info("%s fitted: train data %.4g | val data %.4g (%.2f s)", run.method, train_mse, val_mse,
             time.perf_counter() - t0)
    return FitResult(run.method, model, labels, out_idx, history, 1, val_mse, {}, time.perf_counter() - t0, seed)


def fit_model(samples: SampleSet, train_idx: np.ndarray, val_idx: np.ndarray, run: RunConfig | Mapping[str, Any],
              assets: PhysicsAssets | None = None, seed: int | None = None) -> FitResult:
    """Fit one model of ``run.method`` on ``train_idx``, validating (early stopping) on ``val_idx``."""
    run = run if isinstance(run, RunConfig) else resolve_config(run)
    seed = run.seeds[0] if seed is None else int(seed)
    train_idx, val_idx = np.asarray(train_idx, dtype=int), np.asarray(val_idx, dtype=int)
    if len(train_idx) == 0:
        raise TrainingError("no training samples", field="split")
    if run.method in ("picnn", "cnn"):
        return _fit_network(samples, train_idx, val_idx, run, assets, seed)
    return _fit_baseline(samples, train_idx, val_idx, run, seed)


def _grid(search: Mapping[str, list]) -> list[dict[str, Any]]:
    keys = list(search)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(search[k] for k in keys))] or [{}]


def select_and_fit(samples: SampleSet, split: Split, raw: Mapping[str, Any], assets: PhysicsAssets | None = None,
                   seed: int = 0) -> tuple[FitResult, dict[str, Any], list[dict[str, Any]]]:
    """Fit every search candidate on ``split.train``, score it on ``split.val`` and keep the best.

    Returns (best fit, its resolved raw config, one row per candidate). The test samples are not used.
    """
    run = resolve_config(raw)
    candidates = _grid(run.search)
    if len(candidates) > 1 and len(split.val) == 0:
        raise ConfigError("a hyperparameter search needs validation samples", field="protocol",
                          hint="set val_fraction (within_trial) or n_val_trials (leave-one-out)")
    rows, best, best_raw, best_k = [], None, None, 0
    for k, overrides in enumerate(candidates):
        cand_raw = with_overrides({kk: vv for kk, vv in raw.items() if kk != "search"}, overrides)
        log.info("candidate %d/%d %s", k + 1, len(candidates), overrides or "(no search)")
        try:
            fit = fit_model(samples, split.train, split.val, resolve_config(cand_raw), assets, seed)
        except TrainingError as exc:
            if len(candidates) == 1:
                raise
            # a diverging candidate (non-finite loss on the TRAINING samples) is rejected, not the whole search
            log.warning("candidate %d %s failed: %s", k, overrides, exc)
            rows.append({"candidate": k, **{f"param:{kk}": vv for kk, vv in overrides.items()},
                         "val_score": float("nan"), "best_epoch": 0, "seconds": float("nan"), "failed": str(exc)})
            continue
        rows.append({"candidate": k, **{f"param:{kk}": vv for kk, vv in overrides.items()},
                     "val_score": fit.val_score, "best_epoch": fit.best_epoch, "seconds": round(fit.seconds, 3)})
        better = best is None or (math.isfinite(fit.val_score) and
                                  (not math.isfinite(best.val_score) or fit.val_score < best.val_score))
        if better:
            best, best_raw, best_k = fit, cand_raw, k
    if best is None:
        raise TrainingError(f"every search candidate failed ({rows[-1].get('failed')})", field="search")
    for row in rows:
        row["chosen"] = row["candidate"] == best_k
    return best, best_raw, rows


# ---------------------------------------------------------------------------------------- persistence
def _folder_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-") or "fold"


def save_fit(fit: FitResult, out_dir: str | Path, raw: Mapping[str, Any], split: Split, samples: SampleSet,
             selection: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the model and its record into ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": "pimsk.model", "method": fit.method, "seed": fit.seed, "output_labels": fit.output_labels,
            "output_index": fit.output_index, "emg_labels": list(samples.emg_labels),
            "target_labels": list(samples.target_labels), "best_epoch": fit.best_epoch, "val_score": fit.val_score,
            "seconds": fit.seconds}
    if isinstance(fit.model, PICNN):
        torch.save({**meta, "checkpoint": fit.model.checkpoint()}, out / "model.pt")
    else:
        fit.model.save(out / "model.pkl")
        (out / "model.json").write_text(json.dumps(meta, indent=1))
    write_csv(fit.history, out / "history.csv")
    cfg = {k: v for k, v in raw.items() if k != "_base_dir"}
    (out / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
    (out / "split.json").write_text(json.dumps(split_to_dict(split, samples), indent=1))
    (out / "physics.json").write_text(json.dumps(fit.physics_info, indent=1, default=float))
    if selection:
        write_csv(selection, out / "selection.csv")
    return out


@dataclass
class TrainedModel:
    """A saved model ready to predict: ``predict(emg (n, T, n_emg), dt_s (n,)) -> (n, T, n_outputs)`` SI."""

    method: str
    model: Any
    output_labels: list[str]
    output_index: list[int]
    emg_labels: list[str]
    folder: Path
    meta: dict[str, Any]

    def predict(self, emg: np.ndarray, dt_s: np.ndarray) -> np.ndarray:
        return self.model.predict(emg, dt_s)

    @property
    def split(self) -> Split:
        return split_from_dict(json.loads((self.folder / "split.json").read_text()))


def load_fit(folder: str | Path) -> TrainedModel:
    """Load a model folder written by :func:`save_fit`."""
    folder = Path(folder)
    if (folder / "model.pt").is_file():
        try:
            data = torch.load(folder / "model.pt", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds
            raise ConfigError(f"cannot read the model: {exc}", file=folder / "model.pt") from None
        model = PICNN.from_checkpoint(data["checkpoint"])
        model.eval()
    elif (folder / "model.pkl").is_file():
        model = load_baseline(folder / "model.pkl")
        data = json.loads((folder / "model.json").read_text())
    else:
        raise ConfigError("no model.pt or model.pkl", file=folder, hint="train it with `pimsk train`")
    return TrainedModel(data["method"], model, list(data["output_labels"]), list(data["output_index"]),
                        list(data["emg_labels"]), folder, {k: v for k, v in data.items() if k != "checkpoint"})


# ------------------------------------------------------------------------------------------- protocol
def run_training(samples: SampleSet, raw: Mapping[str, Any], out_dir: str | Path,
                 assets: PhysicsAssets | None = None, folds: Sequence[str] | None = None,
                 train_fraction: float = 1.0) -> list[dict[str, Any]]:
    """Every fold of the protocol x every seed: select on validation, fit, save under
    ``out_dir/<fold>/seed_<s>/``. ``folds``: only these (by split name or test group). ``train_fraction`` < 1
    trains on the first share, in time, of every trial's training samples
    (:func:`~pimsk.learn.datasets.head_of_each_trial`); validation and test samples stay. Returns summary rows
    (also in ``out_dir/summary.csv``)."""
    if not 0.0 < train_fraction <= 1.0:
        raise ConfigError(f"training fraction {train_fraction} must be in (0, 1]", field="--train-fraction")
    run = resolve_config(raw)
    out = Path(out_dir)
    rows = []
    for seed in run.seeds:
        splits = make_splits(samples, run.protocol, seed=seed)
        if folds:
            splits = [sp for sp in splits if sp.name in folds or sp.test_group in folds]
            if not splits:
                raise ConfigError(f"no fold named {list(folds)}", field="--fold",
                                  hint=f"folds: {[sp.test_group for sp in make_splits(samples, run.protocol, seed)]}")
        for sp in splits:
            if train_fraction < 1.0:
                sp = replace(sp, train=head_of_each_trial(samples, sp.train, train_fraction))
            log.info("fold %s seed %d: %d train (fraction %g), %d val, %d test samples", sp.name, seed,
                     len(sp.train), train_fraction, len(sp.val), len(sp.test))
            fit, best_raw, selection = select_and_fit(samples, sp, raw, assets, seed)
            folder = save_fit(fit, out / _folder_name(sp.name) / f"seed_{seed}", best_raw, sp, samples, selection)
            rows.append({"method": run.method, "fold": sp.name, "test_group": sp.test_group, "seed": seed,
                         "folder": str(folder.relative_to(out)), "best_epoch": fit.best_epoch,
                         "val_score": fit.val_score, "seconds": round(fit.seconds, 3),
                         "train_fraction": train_fraction, "n_train": len(sp.train),
                         **{f"chosen:{k}": v for r in selection if r.get("chosen") for k, v in r.items()
                            if k.startswith("param:")}})
    write_csv(rows, out / "summary.csv")
    return rows
