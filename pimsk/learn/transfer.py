"""Physics-informed transfer of a generic PI-CNN to an unseen subject (Zhang et al. 2022, IEEE TIM).

After Zhang, Li, Xie, Li, Guo, Li & Zhang (2022), "Boosting personalized musculoskeletal modeling with
physics-informed knowledge transfer", IEEE Trans. Instrum. Meas. 72: a *generic* PI-CNN is trained on source
subjects (data loss + physics loss of the source model); for a new subject, the feature extractor (the
convolutional blocks) is frozen and only the subject-specific layers (the per-frame fully connected head) are
fine-tuned on a small share of the new subject's data, with the data loss plus a physics loss built on *the new
subject's own* scaled model (its path surrogate, DeGroote muscle parameters and, for open chains, its segment
inertia), whose subject-specific physiological parameters are updated with the head: the EMG-to-excitation gains
(``physics.trainable_gain``) and, optionally, the maximal isometric forces of the muscles with EMG, within
``+- identify.max_isometric_force`` of the scaled model's values (:class:`ForceScale`).

Three arms, compared on the same held-out target data (:func:`run_transfer`):

* ``generic``: the source-trained model, unchanged (only the declared label/sign conventions mapped);
* ``scratch``: a PI-CNN of the same architecture trained on the same target share only (target physics);
* ``transfer``: the generic model with frozen blocks and a fine-tuned head or per-output affine map (target
  physics), held near the generic weights by L2-SP (Li et al. 2018); which layers, the penalty strength and
  the epoch budget are chosen by simulating the transfer on the source subjects (:func:`simulate_on_sources`).

Target split (:func:`target_split`): the first ``fraction`` of every target trial (chronological) is all the
transfer and scratch arms may see (its last ``val_share`` validates, for early stopping); samples starting after
it are the test samples; samples straddling the cut are dropped. Nothing random touches the test samples.

Labels of the two subjects may differ (other models: ``rect_fem_r`` vs ``recfem_r``; other conventions: knee
flexion negative in gait2392, positive in Rajagopal 2016): ``inputs`` and ``outputs`` map the generic model's
labels to the target's, ``output_signs`` flips outputs whose sign convention differs. These are declared, not
learned, and applied to all three arms.

Shapes: (batch, time, channel); SI units (rad, N).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pimsk.errors import ConfigError
from pimsk.learn.datasets import SampleSet, Split, blocked_split, make_loader, within_trial_split
from pimsk.learn.losses import TERMS, LossWeights, PhysicsLoss, PhysicsSpec, TrainingLoss
from pimsk.learn.metrics import output_metrics, write_csv
from pimsk.learn.networks import PICNN
from pimsk.core.path_surrogate import PathSurrogate
from pimsk.learn.physics_files import PhysicsAssets
from pimsk.learn.train import (FitResult, TrainSettings, _run_epoch, assets_from_config, fit_model, resolve_config,
                               save_fit, with_overrides)

__all__ = ["BoundedSurrogate", "bounded_assets", "TransferSettings", "load_transfer_config", "transfer_from_config",
           "ForceScale", "target_split", "source_split", "align_samples", "align_generic", "rescale_outputs",
           "fine_tune", "evaluate_fit", "affine_recalibration", "recalibration_rows",
           "choose_outputs", "mixed_predict", "evaluate_mixed", "select_outputs_on_val",
           "cached_generic", "simulate_on_sources", "choose_candidate", "run_transfer", "summarise", "ARMS",
           "LAYERS"]

log = logging.getLogger("pimsk.learn.transfer")

ARMS = ("generic", "scratch", "transfer")
LAYERS = ("affine", "head")


# ------------------------------------------------------------------------------------------ settings
@dataclass
class TransferSettings:
    """How the target subject is used.

    fraction: share of every target trial's time span available for training, (0, 1);
    share_blocks: that share as this many equal blocks spread over every trial, block k at the start of the
    k-th of ``share_blocks`` equal segments (1: the first ``fraction`` of the trial; more: a share that covers
    every phase of a trial that holds one movement cycle, e.g. one gait cycle; :func:`target_split`);
    val_share: of that share, the last part that validates (early stopping); 0: no validation, fixed epochs;
    training: fine-tuning optimiser/stopping (:class:`pimsk.learn.train.TrainSettings`);
    loss: data + lambda x physics weights of the fine-tuning and of the scratch arm;
    identify: physiological parameter -> relative bound of its trainable scale (``max_isometric_force``);
    restandardise: re-standardise the outputs to the target's training share (the head's last layer is
    adjusted so the function is unchanged; only the weighting of the data loss changes);
    layers: what is fine-tuned besides the target's physiological parameters: ``"affine"`` (a gain and an
    offset per output on the generic model's standardised output: 2 x n_outputs parameters) or ``"head"``
    (every fully connected layer); the convolutional blocks are always frozen;
    l2sp: strength alpha of the L2-SP penalty ``alpha * sum (w - w_generic)^2`` over the fine-tuned weights
    (Li, Grandvalet & Davoine 2018, ICML, "Explicit inductive bias for transfer learning with convolutional
    networks"), which keeps them near the generic model's;
    search: candidate values of ``layers``, ``l2sp`` and ``epochs`` (fixed epoch budgets) chosen by simulating
    the transfer on the source subjects (:func:`simulate_on_sources`), never on target data; empty: use
    ``layers``, ``l2sp`` and ``training`` as given;
    select_outputs: per output, keep the unchanged generic prediction where it beats the fine-tuned one on the
    share's validation part (``val_share`` of the share; :func:`select_outputs_on_val`), so an output that
    fine-tuning hurts keeps the generic model; needs ``val_share > 0`` [False: with 20 % of a target the
    validation part is a few windows (wrist bench: 2, real pair: 0), too few to decide on].
    """

    fraction: float = 0.2
    share_blocks: int = 1
    val_share: float = 0.25
    training: TrainSettings = field(default_factory=TrainSettings)
    loss: LossWeights = field(default_factory=LossWeights)
    identify: dict[str, float] = field(default_factory=dict)
    restandardise: bool = True
    layers: str = "head"
    l2sp: float = 0.0
    search: dict[str, list] = field(default_factory=dict)
    select_outputs: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "transfer") -> "TransferSettings":
        data = dict(data or {})
        known = {"fraction", "share_blocks", "val_share", "training", "loss", "identify", "restandardise", "layers",
                 "l2sp", "search", "select_outputs"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown transfer settings {unknown}", field=where, hint=f"known: {sorted(known)}")
        s = cls(fraction=float(data.get("fraction", 0.2)), share_blocks=int(data.get("share_blocks", 1)),
                val_share=float(data.get("val_share", 0.25)),
                training=TrainSettings.from_dict(data.get("training"), where=f"{where}.training"),
                loss=LossWeights.from_dict(data.get("loss", {"lambda": 1.0}), where=f"{where}.loss"),
                identify={str(k): float(v) for k, v in dict(data.get("identify") or {}).items()},
                restandardise=bool(data.get("restandardise", True)), layers=str(data.get("layers", "head")),
                l2sp=float(data.get("l2sp", 0.0)),
                search={str(k): list(v) for k, v in dict(data.get("search") or {}).items()},
                select_outputs=bool(data.get("select_outputs", False)))
        if not 0.0 < s.fraction < 1.0:
            raise ConfigError(f"fraction {s.fraction} must be in (0, 1)", field=f"{where}.fraction")
        if s.share_blocks < 1:
            raise ConfigError(f"share_blocks {s.share_blocks} must be >= 1", field=f"{where}.share_blocks")
        if not 0.0 <= s.val_share < 1.0:
            raise ConfigError(f"val_share {s.val_share} must be in [0, 1)", field=f"{where}.val_share")
        for k, bound in s.identify.items():
            if k != "max_isometric_force":
                raise ConfigError(f"identify {k!r}: only max_isometric_force", field=f"{where}.identify")
            if not 0.0 < bound < 1.0:
                raise ConfigError(f"identify.{k} bound {bound} must be in (0, 1)", field=f"{where}.identify.{k}")
        for layers in [s.layers, *s.search.get("layers", [])]:
            if layers not in LAYERS:
                raise ConfigError(f"layers {layers!r} must be one of {list(LAYERS)}", field=f"{where}.layers")
        for alpha in [s.l2sp, *s.search.get("l2sp", [])]:
            if not float(alpha) >= 0.0:
                raise ConfigError(f"l2sp {alpha} must be >= 0", field=f"{where}.l2sp")
        bad = sorted(set(s.search) - {"layers", "l2sp", "epochs"})
        if bad or any(not v for v in s.search.values()):
            raise ConfigError(f"search {sorted(s.search)}: non-empty lists of layers, l2sp, epochs",
                              field=f"{where}.search")
        if any(int(e) < 1 for e in s.search.get("epochs", [])):
            raise ConfigError("search.epochs must be >= 1", field=f"{where}.search.epochs")
        return s

    def candidates(self) -> list[dict[str, Any]]:
        """The (layers, l2sp) pairs of the search (the given values where a key is not searched)."""
        return [{"layers": la, "l2sp": float(al)} for la in self.search.get("layers", [self.layers])
                for al in self.search.get("l2sp", [self.l2sp])]

    def epoch_budgets(self) -> list[int]:
        """The searched fixed epoch budgets (``training.max_epochs`` where not searched), ascending."""
        return sorted({int(e) for e in self.search.get("epochs", [self.training.max_epochs])})

    def chosen(self, layers: str, l2sp: float, epochs: int) -> "TransferSettings":
        """A copy with the chosen candidate: fixed ``epochs`` (early stopping off: no validation share)."""
        return replace(self, layers=layers, l2sp=float(l2sp), val_share=0.0, search={},
                       training=replace(self.training, max_epochs=int(epochs)))


# ------------------------------------------------------------------------------------- path surrogate
class BoundedSurrogate(PathSurrogate):
    """A path surrogate evaluated at the nearest point of its fitted coordinate ranges: ``q`` is clamped to
    ``center +- half_range`` before the polynomials are evaluated (in range: identical to the surrogate).

    Early in training a network's predicted coordinates can leave the fitted range (gait2392's knee fitted to
    -110...10 deg, a prediction at +40 deg): an extrapolated degree-8 polynomial then gives absurd MTU lengths
    and infinite passive forces. Clamped, the length is held at the range edge and the physics term cannot
    push the coordinate further out (the data term pulls it back).
    """

    def _bounded(self, q: torch.Tensor) -> torch.Tensor:
        lo = (self.center - self.half_range).to(q.dtype)
        hi = (self.center + self.half_range).to(q.dtype)
        return torch.maximum(torch.minimum(q, hi), lo)

    def lengths_and_moment_arms(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().lengths_and_moment_arms(self._bounded(q))

    def lengths(self, q: torch.Tensor) -> torch.Tensor:
        return super().lengths(self._bounded(q))


def bounded_assets(assets: PhysicsAssets | None) -> PhysicsAssets | None:
    """The same physics files with the surrogate evaluated inside its fitted ranges (:class:`BoundedSurrogate`)."""
    if assets is None:
        return None
    sur = BoundedSurrogate.from_dict(assets.surrogate.to_dict(), dtype=assets.surrogate.center.dtype)
    return PhysicsAssets(sur, assets.params, assets.chain, assets.sources)


# --------------------------------------------------------------------------------- physiological update
class ForceScale(nn.Module):
    """Trainable maximal isometric forces of the physics' EMG muscles: ``F_max = F_max,model * s``,
    ``s = 1 + bound * tanh(w)`` in ``(1 - bound, 1 + bound)`` (w = 0: the scaled model's values).

    :meth:`attach` registers a forward pre-hook on the :class:`PhysicsLoss` that puts the scaled parameters in
    place before each evaluation (the muscle-consistency term reads ``physics.params``).
    """

    def __init__(self, physics: PhysicsLoss, bound: float) -> None:
        super().__init__()
        if physics.params is None:
            raise ConfigError("identify.max_isometric_force needs muscles with EMG in the physics",
                              field="transfer.identify")
        self.base = physics.params
        self.bound = float(bound)
        self.names = list(physics.consistency_muscles)
        self.raw = nn.Parameter(torch.zeros(len(self.names), dtype=self.base.dtype))

    def scale(self) -> torch.Tensor:
        return 1.0 + self.bound * torch.tanh(self.raw)

    def apply_to(self, physics: PhysicsLoss) -> None:
        physics.params = self.base.replace(max_isometric_force_n=self.base.max_isometric_force_n * self.scale())

    def attach(self, physics: PhysicsLoss) -> Any:
        return physics.register_forward_pre_hook(lambda module, args: self.apply_to(module))

    def describe(self) -> dict[str, float]:
        return dict(zip(self.names, self.scale().detach().tolist()))


# -------------------------------------------------------------------------------------------- splits
def target_split(samples: SampleSet, fraction: float, val_share: float, blocks: int = 1) -> Split:
    """``fraction`` of every trial trains (the last ``val_share`` validates): its first ``fraction`` (``blocks``
    1; the samples starting after it test: :func:`pimsk.learn.datasets.within_trial_split`) or ``blocks`` equal
    blocks spread over it (the samples sharing no frame with a block test: :func:`blocked_split`)."""
    sp = blocked_split(samples, fraction, blocks, val_share)
    if blocks == 1:
        return Split(f"target_first_{fraction:g}", sp.train, sp.test, sp.val, "after the first "
                     f"{100 * fraction:g} % of every target trial")
    return Split(f"target_{fraction:g}_in_{blocks}_blocks", sp.train, sp.test, sp.val,
                 f"outside {blocks} blocks holding {100 * fraction:g} % of every target trial")


def source_split(samples: SampleSet, val_fraction: float = 0.2) -> Split:
    """All source samples train except the last ``val_fraction`` of every trial, which validates (no test)."""
    sp = within_trial_split(samples, 1.0 - val_fraction, 0.0)
    return Split("source", sp.train, np.zeros(0, dtype=int), sp.test, "none (source subjects)")


# ----------------------------------------------------------------------------------------- alignment
def _resolve_map(generic_labels: Sequence[str], mapping: Mapping[str, str] | None, available: Sequence[str],
                 what: str) -> list[str]:
    """Target label of every generic label (identity where not mapped); ConfigError when absent."""
    mapping = dict(mapping or {})
    unknown = [k for k in mapping if k not in generic_labels]
    if unknown:
        raise ConfigError(f"{what} map names {unknown}, not labels of the generic model", field=f"target.{what}",
                          hint=f"generic {what}: {list(generic_labels)}")
    out = [mapping.get(g, g) for g in generic_labels]
    missing = [o for o in out if o not in available]
    if missing:
        raise ConfigError(f"target {what} {missing} are not in the target dataset", field=f"target.{what}",
                          hint=f"target has: {list(available)}; map them with target.{what}")
    return out


def align_samples(samples: SampleSet, emg_labels: Sequence[str]) -> SampleSet:
    """Copy of ``samples`` with the EMG channels reordered to ``emg_labels`` (the generic model's input order
    mapped to target names)."""
    idx = [samples.emg_labels.index(e) for e in emg_labels]
    out = samples.subset(np.arange(len(samples)))
    out.emg = samples.emg[..., idx]
    out.emg_labels = list(emg_labels)
    return out


def rescale_outputs(model: PICNN, mean: np.ndarray, std: np.ndarray, sign: np.ndarray | None = None) -> PICNN:
    """In place: the model's SI outputs multiplied by ``sign`` (+-1 per output), then expressed in a new
    standardisation (mean, std); the head's last linear layer absorbs the change, so
    ``new.to_si(new(x)) == sign * old.to_si(old(x))`` exactly."""
    last = model.head[-1]
    if not isinstance(last, nn.Linear):
        raise ConfigError("the network head does not end in a linear layer", field="network")
    dtype = last.weight.dtype
    s = torch.ones(model.n_outputs, dtype=dtype) if sign is None else torch.as_tensor(sign, dtype=dtype)
    old_std, old_mean = model.output_std * s, model.output_mean * s
    new_mean = torch.as_tensor(np.asarray(mean, dtype=float), dtype=dtype)
    new_std = torch.as_tensor(np.asarray(std, dtype=float), dtype=dtype)
    ratio = old_std / new_std
    with torch.no_grad():
        last.weight.mul_(ratio[:, None])
        last.bias.copy_(last.bias * ratio + (old_mean - new_mean) / new_std)
        model.output_mean.copy_(new_mean)
        model.output_std.copy_(new_std)
    return model


def align_generic(generic: PICNN, emg_labels: Sequence[str], output_labels: Sequence[str],
                  output_signs: Sequence[float] | None = None) -> PICNN:
    """A copy of the generic model speaking the target's labels: inputs named ``emg_labels`` (same order as the
    generic's), outputs named ``output_labels``, sign conventions applied (:func:`rescale_outputs`)."""
    model = copy.deepcopy(generic)
    model.input_labels = list(emg_labels)
    model.output_labels = list(output_labels)
    if output_signs is not None and any(s != 1 for s in output_signs):
        rescale_outputs(model, model.output_mean.double().numpy() * np.asarray(output_signs),
                        model.output_std.double().numpy(), np.asarray(output_signs, dtype=float))
    model.eval()
    return model


class _FrozenFeatures(PICNN):
    """PICNN whose convolutional blocks stay in eval mode (frozen batch-norm statistics, no dropout) while
    the head trains; its checkpoint is a plain PICNN's."""

    @classmethod
    def frozen_copy(cls, model: PICNN) -> "_FrozenFeatures":
        """A deep copy of ``model`` (same dtype and state) whose blocks are frozen."""
        out = copy.deepcopy(model)
        out.__class__ = cls
        for p in out.blocks.parameters():
            p.requires_grad_(False)
        return out

    def train(self, mode: bool = True) -> "_FrozenFeatures":
        super().train(mode)
        self.blocks.train(False)
        return self


class _Personalised(_FrozenFeatures):
    """The generic network with frozen blocks and a per-output affine map of its standardised output,
    ``z' = gain * z + offset`` (gain 1, offset 0: the generic model). ``layers="affine"``: only gain and offset
    train (the head is frozen too, dropout off); ``"head"``: the fully connected layers train (gain and offset
    stay 1 and 0). :meth:`plain` folds the map into the last linear layer: a plain PICNN, same function."""

    layers: str

    @classmethod
    def wrap(cls, model: PICNN, layers: str) -> "_Personalised":
        out = cls.frozen_copy(model)
        out.__class__ = cls
        out.layers = layers
        dtype = out.head[-1].weight.dtype
        out.register_parameter("out_gain", nn.Parameter(torch.ones(out.n_outputs, dtype=dtype),
                                                        requires_grad=layers == "affine"))
        out.register_parameter("out_offset", nn.Parameter(torch.zeros(out.n_outputs, dtype=dtype),
                                                          requires_grad=layers == "affine"))
        if layers == "affine":
            for p in out.head.parameters():
                p.requires_grad_(False)
        return out

    def trainable(self) -> list[nn.Parameter]:
        """The fine-tuned network weights (the L2-SP penalty's set)."""
        return [p for p in self.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> "_Personalised":
        super().train(mode)
        if self.layers == "affine":
            self.head.train(False)
        return self

    def forward(self, emg: torch.Tensor, dt_s: torch.Tensor) -> torch.Tensor:
        return super().forward(emg, dt_s) * self.out_gain + self.out_offset

    def plain(self) -> PICNN:
        """A plain PICNN computing the same function (gain and offset folded into the last layer)."""
        out = copy.deepcopy(self)
        last = out.head[-1]
        with torch.no_grad():
            last.weight.mul_(out.out_gain.detach()[:, None])
            last.bias.copy_(last.bias * out.out_gain.detach() + out.out_offset.detach())
        del out._parameters["out_gain"], out._parameters["out_offset"]
        del out.layers
        out.__class__ = PICNN
        for p in out.parameters():
            p.requires_grad_(True)
        out.eval()
        return out


class _L2SPLoss(TrainingLoss):
    """:class:`TrainingLoss` + ``alpha * sum_i ||w_i - w_i0||^2`` over the fine-tuned weights ``w_i`` with their
    generic starting values ``w_i0`` (L2-SP: Li, Grandvalet & Davoine 2018, ICML, eq. 3); logged as the
    difference ``total - data - physics`` only (TERMS unchanged)."""

    def __init__(self, weights: LossWeights, output_index: Sequence[int], physics: PhysicsLoss | None,
                 params: Sequence[nn.Parameter], alpha: float) -> None:
        super().__init__(weights, output_index, physics, log_physics=False)
        self.params = list(params)
        self.anchors = [p.detach().clone() for p in self.params]
        self.alpha = float(alpha)

    def forward(self, z_pred: torch.Tensor, batch: Mapping[str, torch.Tensor], model: nn.Module
                ) -> dict[str, torch.Tensor]:
        terms = super().forward(z_pred, batch, model)
        if self.alpha > 0 and self.params:
            penalty = sum(((p - a) ** 2).sum() for p, a in zip(self.params, self.anchors))
            terms["total"] = terms["total"] + self.alpha * penalty
        return terms


# ----------------------------------------------------------------------------------------- fine-tune
def _physics(samples: SampleSet, labels: Sequence[str], assets: PhysicsAssets, spec: PhysicsSpec) -> PhysicsLoss:
    return PhysicsLoss(labels, samples.target_labels, samples.emg_labels, assets.surrogate, assets.params,
                       assets.chain, spec)


def fine_tune(generic: PICNN, samples: SampleSet, split: Split, output_index: Sequence[int],
              settings: TransferSettings, assets: PhysicsAssets | None, spec: PhysicsSpec,
              seed: int = 0, on_epoch: Callable[[int, Callable[[], PICNN]], None] | None = None) -> FitResult:
    """Freeze the generic model's convolutional blocks, fine-tune ``settings.layers`` (per-output affine map or
    the head) and the target's trainable physiological parameters on ``split.train`` with data + lambda x
    target physics + the L2-SP penalty towards the generic weights; early stopping on ``split.val`` (fixed
    ``training.max_epochs`` without validation samples).

    generic: already aligned to the target's labels (:func:`align_generic`); output_index: target columns of
    its outputs; on_epoch(epoch, model_now): called after every epoch (``model_now()`` gives the plain network
    at that epoch; used by :func:`simulate_on_sources` to score epoch budgets). Returns a FitResult whose
    ``physics_info`` holds the calibration, the final excitation gains, force scales and output gains/offsets.
    """
    t0 = time.perf_counter()
    s = settings.training
    torch.set_num_threads(s.threads)
    labels = list(generic.output_labels)
    base = copy.deepcopy(generic)
    tr = samples.subset(split.train)
    if settings.restandardise:
        y = tr.targets[..., list(output_index)].reshape(-1, len(labels))
        std = y.std(0)
        rescale_outputs(base, y.mean(0), np.where(std > 0, std, 1.0))
    model = _Personalised.wrap(base, settings.layers)
    weights = settings.loss
    physics, info, hooks = None, {"layers": settings.layers, "l2sp": settings.l2sp}, []
    scale: ForceScale | None = None
    if assets is not None and weights.lam > 0:
        physics = _physics(samples, labels, assets, spec)
        info["calibration"] = physics.calibrate(tr.emg, tr.targets, tr.dt_s)
        info["label_violation_train"] = physics.label_violation(tr.emg, tr.targets, tr.dt_s)
        if "max_isometric_force" in settings.identify and physics.muscle_active:
            scale = ForceScale(physics, settings.identify["max_isometric_force"])
            hooks.append(scale.attach(physics))
    elif weights.lam > 0:
        raise ConfigError("fine-tuning with lambda > 0 needs the target's physics files", field="target.physics")
    loss_fn = _L2SPLoss(weights, output_index, physics, model.trainable(), settings.l2sp)
    activation = None
    if physics is not None and physics.muscle_active and not physics.log_gain.requires_grad:
        with torch.no_grad():
            activation = physics.activation(torch.as_tensor(samples.emg), torch.as_tensor(samples.dt_s))
    params = model.trainable()
    extra = []
    if physics is not None and physics.log_gain.requires_grad:
        extra.append(physics.log_gain)
    if scale is not None:
        extra.append(scale.raw)
    optimizer = torch.optim.Adam(params + extra, lr=s.learning_rate, weight_decay=s.weight_decay)
    torch.manual_seed(seed)
    train_loader = make_loader(samples, split.train, s.batch_size, shuffle=True, seed=seed)
    val_loader = make_loader(samples, split.val, max(s.batch_size, 64), shuffle=False) if len(split.val) else None
    history: list[dict[str, Any]] = []
    best: tuple[float, int, Any, list[torch.Tensor]] = (math.inf, -1, None, [])
    stale = 0
    try:
        for epoch in range(1, s.max_epochs + 1):
            te = time.perf_counter()
            tr_terms = _run_epoch(model, loss_fn, train_loader, activation, optimizer, s.grad_clip)
            va_terms = _run_epoch(model, loss_fn, val_loader, activation, None, 0.0) if val_loader else {}
            history.append({"epoch": epoch, **{f"train_{k}": v for k, v in tr_terms.items()},
                            **{f"val_{k}": va_terms.get(k, float("nan")) for k in TERMS},
                            "seconds": time.perf_counter() - te})
            watched = va_terms[s.monitor] if val_loader else tr_terms[s.monitor]
            if val_loader is None or not math.isfinite(best[0]) or watched < best[0] * (1.0 - s.min_delta):
                best = (watched, epoch, copy.deepcopy(model.state_dict()), [t.detach().clone() for t in extra])
                stale = 0
            else:
                stale += 1
            log.debug("fine-tune epoch %3d/%d  train %s | val %s | best %d", epoch, s.max_epochs,
                      " ".join(f"{k} {tr_terms[k]:.4g}" for k in TERMS),
                      " ".join(f"{k} {va_terms[k]:.4g}" for k in TERMS) if va_terms else "-", best[1])
            if on_epoch is not None:
                on_epoch(epoch, model.plain)
            if val_loader is not None and stale >= s.patience:
                break
    finally:
        for h in hooks:
            h.remove()
    model.load_state_dict(best[2])
    for t, v in zip(extra, best[3]):
        t.data.copy_(v)
    if physics is not None:
        info["excitation_gain_final"] = physics.describe()["excitation_gain"]
    if scale is not None:
        info["max_isometric_force_scale"] = scale.describe()
    if settings.layers == "affine":
        info["output_gain"] = dict(zip(labels, model.out_gain.detach().tolist()))
        info["output_offset_std"] = dict(zip(labels, model.out_offset.detach().tolist()))
    plain = model.plain()
    best_row = history[best[1] - 1]
    val_score = float(best_row["val_data"]) if val_loader is not None else float("nan")
    return FitResult("transfer", plain, labels, list(output_index), history, best[1], val_score, info,
                     time.perf_counter() - t0, seed)


def evaluate_fit(model: PICNN, samples: SampleSet, indices: np.ndarray, output_index: Sequence[int],
                 labels: Sequence[str]) -> list[dict[str, Any]]:
    """Metrics rows (rmse, nrmse, r, r2 per output) of ``model`` on ``samples[indices]``."""
    sub = samples.subset(indices)
    pred = model.predict(sub.emg, sub.dt_s)
    return output_metrics(sub.targets[..., list(output_index)], pred, list(labels))


def affine_recalibration(pred_fit: np.ndarray, y_fit: np.ndarray, pred_apply: np.ndarray) -> np.ndarray:
    """Per output, the least-squares gain and offset ``y = g p + c`` fitted on the frames of (``pred_fit``,
    ``y_fit``) and applied to ``pred_apply`` (any leading shape, outputs last; SI units). An output whose fitted
    prediction is constant keeps gain 1 and takes the mean offset."""
    p = np.asarray(pred_fit, dtype=float)
    p = p.reshape(-1, p.shape[-1])
    y = np.asarray(y_fit, dtype=float).reshape(-1, p.shape[1])
    dp = p - p.mean(0)
    var = (dp ** 2).sum(0)
    gain = np.where(var > 0, (dp * (y - y.mean(0))).sum(0) / np.where(var > 0, var, 1.0), 1.0)
    offset = y.mean(0) - gain * p.mean(0)
    return np.asarray(pred_apply, dtype=float) * gain + offset


def recalibration_rows(model: PICNN, samples: SampleSet, share: np.ndarray, test: np.ndarray,
                       output_index: Sequence[int], labels: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """What a per-output gain and offset on the unchanged model's output can do on the test samples: fitted by
    least squares on the share's labels (``"recalibrated"``: a closed-form transfer baseline) and on the test
    labels themselves (``"recalibration_bound"``: not a method, the best any output affine map can reach).
    Rows of :func:`evaluate_fit`'s form per key."""
    cols = list(output_index)
    fit, tst = samples.subset(share), samples.subset(test)
    p_fit, p_tst = model.predict(fit.emg, fit.dt_s), model.predict(tst.emg, tst.dt_s)
    y_fit, y_tst = fit.targets[..., cols], tst.targets[..., cols]
    return {"recalibrated": output_metrics(y_tst, affine_recalibration(p_fit, y_fit, p_tst), list(labels)),
            "recalibration_bound": output_metrics(y_tst, affine_recalibration(p_tst, y_tst, p_tst), list(labels))}


def choose_outputs(tuned_rows: Sequence[Mapping[str, Any]], generic_rows: Sequence[Mapping[str, Any]]
                   ) -> dict[str, bool]:
    """Per output, whether to keep the unchanged generic prediction: True where the generic model's validation
    nRMSE is lower than or equal to the fine-tuned model's (ties keep the generic model: nothing fitted), or the
    fine-tuned one is not finite. ``*_rows``: :func:`evaluate_fit` rows on the target's validation samples
    (same outputs). Returns {output label: keep_generic}."""
    generic = {r["output"]: float(r["nrmse"]) for r in generic_rows}
    missing = [r["output"] for r in tuned_rows if r["output"] not in generic]
    if missing:
        raise ConfigError(f"outputs {missing} have no generic validation row", field="outputs")
    out: dict[str, bool] = {}
    for r in tuned_rows:
        tuned, gen = float(r["nrmse"]), generic[r["output"]]
        out[r["output"]] = bool(not math.isfinite(tuned) or (math.isfinite(gen) and gen <= tuned))
    return out


def mixed_predict(tuned: PICNN, generic: PICNN, keep_generic: Sequence[bool], emg: np.ndarray,
                  dt_s: np.ndarray) -> np.ndarray:
    """Predictions (SI, shape of ``tuned.predict``: samples x frames x outputs) taking output k from ``generic``
    where ``keep_generic[k]`` and from ``tuned`` elsewhere; both models have the same outputs in the same order."""
    keep = np.asarray(keep_generic, dtype=bool)
    pred = tuned.predict(emg, dt_s)
    if keep.shape != (pred.shape[-1],):
        raise ConfigError(f"{keep.size} keep flags for {pred.shape[-1]} outputs", field="keep_generic")
    if keep.any():
        pred = pred.copy()
        pred[..., keep] = generic.predict(emg, dt_s)[..., keep]
    return pred


def evaluate_mixed(tuned: PICNN, generic: PICNN, keep_generic: Sequence[bool], samples: SampleSet,
                   indices: np.ndarray, output_index: Sequence[int], labels: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`evaluate_fit` of the per-output mixture of :func:`mixed_predict` on ``samples[indices]``."""
    sub = samples.subset(indices)
    pred = mixed_predict(tuned, generic, keep_generic, sub.emg, sub.dt_s)
    return output_metrics(sub.targets[..., list(output_index)], pred, list(labels))


def select_outputs_on_val(tuned: PICNN, generic: PICNN, samples: SampleSet, val: np.ndarray,
                          output_index: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Choose per output between the fine-tuned and the unchanged generic model on the target's validation
    samples ``val`` (part of the target share, never the test part): :func:`choose_outputs` of both models'
    :func:`evaluate_fit` rows. Returns ``keep_generic`` {label: bool} and the validation nRMSE of both models;
    with no validation samples every output keeps the fine-tuned model."""
    if len(val) == 0:
        return {"keep_generic": {o: False for o in labels}, "val_nrmse_transfer": {}, "val_nrmse_generic": {}}
    t_rows = evaluate_fit(tuned, samples, val, output_index, labels)
    g_rows = evaluate_fit(generic, samples, val, output_index, labels)
    return {"keep_generic": choose_outputs(t_rows, g_rows),
            "val_nrmse_transfer": {r["output"]: float(r["nrmse"]) for r in t_rows},
            "val_nrmse_generic": {r["output"]: float(r["nrmse"]) for r in g_rows}}


# ------------------------------------------------------------------------------------------- protocol
def _pool_sources(sources: Sequence[tuple[str, SampleSet]]) -> SampleSet:
    from pimsk.learn.datasets import concat

    renamed = []
    for name, s in sources:
        r = s.subset(np.arange(len(s)))
        r.trial = np.asarray([f"{name}/{t}" for t in s.trial], dtype=object)
        r.attributes = {f"{name}/{k}": v for k, v in s.attributes.items()}
        renamed.append(r)
    return concat(renamed)


def _fingerprint(raw: Mapping[str, Any], samples: SampleSet, split: Split, seed: int) -> str:
    """Hash of what a generic model's training depends on: run config, data, split and seed."""
    h = hashlib.sha256(json.dumps({k: v for k, v in raw.items() if k != "_base_dir"}, sort_keys=True,
                                  default=str).encode())
    h.update(json.dumps([samples.emg_labels, samples.target_labels, int(seed)]).encode())
    for arr in (samples.emg, samples.targets, samples.dt_s, split.train, split.val):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


def cached_generic(samples: SampleSet, split: Split, raw: Mapping[str, Any], assets: PhysicsAssets | None,
                   seed: int, folder: str | Path) -> FitResult:
    """The generic model of ``raw`` trained on ``split`` (:func:`pimsk.learn.train.fit_model`), saved in ``folder``
    with a fingerprint of config, data, split and seed; a later call with the same fingerprint loads it instead
    of training again (the bench's arms, targets and reruns share it)."""
    from pimsk.learn.train import load_fit

    folder = Path(folder)
    key = _fingerprint(raw, samples, split, seed)
    stamp = folder / "fingerprint.txt"
    if stamp.is_file() and stamp.read_text().strip() == key and (folder / "model.pt").is_file():
        m = load_fit(folder)
        log.info("generic model reused from %s (fingerprint %s)", folder, key)
        return FitResult("picnn", m.model, m.output_labels, m.output_index, [], int(m.meta.get("best_epoch", -1)),
                         float(m.meta.get("val_score", float("nan"))), {"reused": str(folder)},
                         float(m.meta.get("seconds", float("nan"))), seed)
    fit = fit_model(samples, split.train, split.val, raw, assets, seed)
    save_fit(fit, folder, raw, split, samples)
    stamp.write_text(key + "\n")
    return fit


def _mean_nrmse(model: PICNN, samples: SampleSet, indices: np.ndarray, output_index: Sequence[int],
                labels: Sequence[str]) -> float:
    return float(np.nanmean([r["nrmse"] for r in evaluate_fit(model, samples, indices, output_index, labels)]))


def simulate_on_sources(sources: Sequence[tuple[str, SampleSet]], generic_raw: Mapping[str, Any],
                        settings: TransferSettings, source_assets: PhysicsAssets | None, out_dir: str | Path,
                        seed: int = 0, trainable_gain: bool = False) -> list[dict[str, Any]]:
    """Simulate the transfer on the source subjects to choose its settings without target data.

    Folds: leave one source subject out (one source only: leave one of its trials out). Per fold a generic model
    is trained on the rest (:func:`cached_generic`); every candidate of ``settings.search`` (layers x l2sp) is
    fine-tuned on the first ``fraction`` of every trial of the held-out part (no validation; the physics of the
    generic model; excitation gains trainable with ``trainable_gain``, forces as ``settings.identify``) and scored, at every epoch budget, by the
    mean nRMSE over outputs on the rest of the held-out part. Returns rows ``fold, layers, l2sp, epochs, nrmse``
    (``layers = "generic"``, epochs 0: the unchanged generic model) and writes ``simulation.csv``.
    """
    out = Path(out_dir)
    run = resolve_config(generic_raw)
    if len(sources) >= 2:
        folds = [(name, _pool_sources([x for j, x in enumerate(sources) if j != k]), held)
                 for k, (name, held) in enumerate(sources)]
    else:
        name, only = sources[0]
        folds = [(f"{name}/{t}", only.subset(np.flatnonzero(only.trial != t)),
                  only.subset(np.flatnonzero(only.trial == t))) for t in only.trials]
    spec = replace(run.physics, trainable_gain=trainable_gain)
    budgets = settings.epoch_budgets()
    rows: list[dict[str, Any]] = []
    for fold, train, held in folds:
        split = source_split(train)
        g = cached_generic(train, split, generic_raw, source_assets, seed,
                           out / "simulation" / _safe(fold) / "generic")
        labels = g.output_labels
        out_index = [held.target_labels.index(o) for o in labels]
        hsplit = target_split(held, settings.fraction, 0.0, settings.share_blocks)
        score = _mean_nrmse(g.model, held, hsplit.test, out_index, labels)
        rows.append({"fold": fold, "layers": "generic", "l2sp": float("nan"), "epochs": 0, "nrmse": score})
        for cand in settings.candidates():
            cs = settings.chosen(cand["layers"], cand["l2sp"], budgets[-1])

            def record(epoch: int, model_now: Callable[[], PICNN], cand: dict[str, Any] = cand) -> None:
                if epoch in budgets:
                    rows.append({"fold": fold, **cand, "epochs": epoch,
                                 "nrmse": _mean_nrmse(model_now(), held, hsplit.test, out_index, labels)})

            fine_tune(align_generic(g.model, held.emg_labels, labels), held, hsplit, out_index, cs, source_assets,
                      spec, seed, on_epoch=record)
        log.info("simulated transfer, fold %s: generic %.4f, best candidate %s", fold, score,
                 min((r for r in rows if r["fold"] == fold), key=lambda r: r["nrmse"]))
    write_csv(rows, out / "simulation.csv")
    return rows


def choose_candidate(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The (layers, l2sp, epochs) with the lowest mean nRMSE over the folds of :func:`simulate_on_sources`."""
    means: dict[tuple, list[float]] = {}
    for r in rows:
        if r["layers"] != "generic":
            means.setdefault((r["layers"], float(r["l2sp"]), int(r["epochs"])), []).append(float(r["nrmse"]))
    (layers, l2sp, epochs), vals = min(means.items(), key=lambda kv: float(np.mean(kv[1])))
    return {"layers": layers, "l2sp": l2sp, "epochs": epochs, "nrmse_simulated": float(np.mean(vals))}


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in text)


def run_transfer(sources: Sequence[tuple[str, SampleSet]], target: SampleSet, generic_raw: Mapping[str, Any],
                 settings: TransferSettings, out_dir: str | Path, *, source_assets: PhysicsAssets | None,
                 target_assets: PhysicsAssets | None, target_physics: Mapping[str, Any] | None = None,
                 inputs: Mapping[str, str] | None = None, outputs: Mapping[str, str] | None = None,
                 output_signs: Mapping[str, float] | None = None, seeds: Sequence[int] = (0,),
                 arms: Sequence[str] = ARMS, recalibration: bool = False) -> list[dict[str, Any]]:
    """Train the generic model on the pooled sources and compare the three arms on the target's test samples.

    sources: (subject name, SampleSet) pairs with the same labels; generic_raw: the generic model's run config
    (:mod:`pimsk.learn.train`: method picnn, network, training, loss, physics spec of the source model, outputs);
    target_physics: the target's PhysicsSpec mapping (its model's coordinate / muscle names); inputs / outputs:
    generic label -> target label; output_signs: target output -> +-1. With ``settings.search`` the transfer's
    layers, L2-SP strength and epoch budget are first chosen on the sources (:func:`simulate_on_sources`,
    ``selection.json``), then the transfer uses the whole target share for training (no validation part).
    The scratch arm validates on the last ``val_share`` of the share (early stopping). Writes under ``out_dir``:
    ``<arm>/seed_<s>/`` (model, history, split), ``metrics.csv`` (one row per arm, seed and output) and returns
    those rows. ``recalibration``: also rows of the generic model's output recalibrated by a gain and offset per
    output (:func:`recalibration_rows`: pseudo-arms ``recalibrated``, fitted on the share, and
    ``recalibration_bound``, fitted on the test samples: a diagnostic of what the share can teach).
    """
    out = Path(out_dir)
    unknown = [a for a in arms if a not in ARMS]
    if unknown or "generic" not in arms and "transfer" in arms:
        raise ConfigError(f"arms {list(arms)}: choose from {list(ARMS)} (transfer needs generic)", field="arms")
    pooled = _pool_sources(sources)
    split_src = source_split(pooled)
    run = resolve_config(generic_raw)
    gen_labels = run.outputs or [t for t in pooled.target_labels
                                 if t not in set(run.physics.moment_columns.values())]
    tgt_emg = _resolve_map(pooled.emg_labels, inputs, target.emg_labels, "inputs")
    tgt_out = _resolve_map(gen_labels, outputs, target.target_labels, "outputs")
    signs = [float((output_signs or {}).get(o, 1.0)) for o in tgt_out]
    tgt = align_samples(target, tgt_emg)
    out_index = [tgt.target_labels.index(o) for o in tgt_out]
    split_tgt = target_split(tgt, settings.fraction, settings.val_share, settings.share_blocks)
    spec = PhysicsSpec.from_dict(target_physics or {}, where="target.physics")
    scratch_raw = with_overrides({k: v for k, v in generic_raw.items() if k not in ("search", "seeds")},
                                 {"outputs": tgt_out, "physics": dict(target_physics or {}),
                                  "loss": {"lambda": settings.loss.lam,
                                           "physics_moment": settings.loss.physics_moment,
                                           "physics_muscle": settings.loss.physics_muscle}})
    gen_raw = with_overrides({k: v for k, v in generic_raw.items() if k not in ("search", "seeds")},
                             {"outputs": gen_labels})
    out.mkdir(parents=True, exist_ok=True)
    tf_settings = settings
    if settings.search and "transfer" in arms:
        sim = simulate_on_sources(sources, gen_raw, settings, source_assets, out, seed=list(seeds)[0],
                                  trainable_gain=spec.trainable_gain)
        choice = choose_candidate(sim)
        tf_settings = settings.chosen(choice["layers"], choice["l2sp"], choice["epochs"])
        (out / "selection.json").write_text(json.dumps({"chosen": choice, "search": settings.search,
                                                        "simulation": sim}, indent=1))
        log.info("transfer settings chosen on the sources: %s", choice)
    split_tf = target_split(tgt, tf_settings.fraction, tf_settings.val_share, tf_settings.share_blocks)
    (out / "target_split.json").write_text(json.dumps(
        {"fraction": settings.fraction, "share_blocks": settings.share_blocks, "val_share": settings.val_share,
         "n_train": int(len(split_tgt.train)), "n_val": int(len(split_tgt.val)), "n_test": int(len(split_tgt.test)),
         "n_train_transfer": int(len(split_tf.train)), "n_val_transfer": int(len(split_tf.val)),
         "train_frames_share": _frame_share(tgt, split_tgt),
         "train_frames_share_transfer": _frame_share(tgt, split_tf)}, indent=1))
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        fits: dict[str, tuple[PICNN, FitResult | None]] = {}
        if "generic" in arms:
            log.info("seed %d: generic model on %d source samples", seed, len(split_src.train))
            g = cached_generic(pooled, split_src, gen_raw, source_assets, seed, out / "generic" / f"seed_{seed}")
            fits["generic"] = (align_generic(g.model, tgt_emg, tgt_out, signs), g)
        if "scratch" in arms:
            log.info("seed %d: scratch on %d target samples", seed, len(split_tgt.train))
            sc = fit_model(tgt, split_tgt.train, split_tgt.val, scratch_raw, target_assets, seed)
            save_fit(sc, out / "scratch" / f"seed_{seed}", scratch_raw, split_tgt, tgt)
            fits["scratch"] = (sc.model, sc)
        if "transfer" in arms:
            log.info("seed %d: transfer (%s, l2sp %g) on %d target samples", seed, tf_settings.layers,
                     tf_settings.l2sp, len(split_tf.train))
            tf = fine_tune(fits["generic"][0], tgt, split_tf, out_index, tf_settings, target_assets, spec, seed)
            choice = _output_choice(fits["generic"][0], tf, tgt, split_tgt, split_tf, out_index, tgt_out,
                                    tf_settings, target_assets, spec, seed) if settings.select_outputs else None
            if choice is not None:
                tf.physics_info["output_choice"] = choice
                keep = [choice["keep_generic"][o] for o in tgt_out]
                log.info("seed %d: outputs keeping the generic model (chosen on %d validation samples): %s",
                         seed, len(split_tgt.val), [o for o, k in zip(tgt_out, keep) if k])
            save_fit(tf, out / "transfer" / f"seed_{seed}", scratch_raw, split_tf, tgt)
            fits["transfer"] = (tf.model, tf)
        for arm, (model, fit) in fits.items():
            test = split_tf.test if arm == "transfer" else split_tgt.test
            keep = [False] * len(tgt_out)
            if arm == "transfer" and "output_choice" in fit.physics_info:
                keep = [fit.physics_info["output_choice"]["keep_generic"][o] for o in tgt_out]
                metrics = evaluate_mixed(model, fits["generic"][0], keep, tgt, test, out_index, tgt_out)
            else:
                metrics = evaluate_fit(model, tgt, test, out_index, tgt_out)
            for row, kept in zip(metrics, keep):
                rows.append({"arm": arm, "seed": seed, **row,
                             "kept_generic": bool(kept) if arm == "transfer" else False,
                             "seconds": round(fit.seconds, 2) if fit is not None else float("nan"),
                             "best_epoch": fit.best_epoch if fit is not None else -1})
        if recalibration and "generic" in arms:
            share = np.sort(np.concatenate([split_tgt.train, split_tgt.val]))
            for arm, metrics in recalibration_rows(fits["generic"][0], tgt, share, split_tgt.test, out_index,
                                                   tgt_out).items():
                rows += [{"arm": arm, "seed": seed, **row, "kept_generic": False, "seconds": float("nan"),
                          "best_epoch": -1} for row in metrics]
    write_csv(rows, out / "metrics.csv")
    write_csv(summarise(rows), out / "summary.csv")
    return rows


def _output_choice(generic: PICNN, tuned: FitResult, samples: SampleSet, split_tgt: Split, split_tf: Split,
                   output_index: Sequence[int], labels: Sequence[str], settings: TransferSettings,
                   assets: PhysicsAssets | None, spec: PhysicsSpec, seed: int) -> dict[str, Any] | None:
    """Per-output choice between the fine-tuned and the generic model on the target share's validation part
    ``split_tgt.val`` (:func:`select_outputs_on_val`). When the transfer was fitted on the whole share
    (``split_tf`` without validation samples) a second fine-tuning with the same settings on ``split_tgt.train``
    only is the model compared (choose on held-out samples, then apply the choice to the model refitted on the
    whole share); otherwise the transfer itself. None without validation samples."""
    if len(split_tgt.val) == 0:
        return None
    if len(split_tf.val) == 0:
        part = Split(f"{split_tgt.name}_selection", split_tgt.train, split_tgt.test)
        probe = fine_tune(generic, samples, part, output_index, settings, assets, spec, seed).model
        fitted_on = "share without its validation part"
    else:
        probe, fitted_on = tuned.model, "share without its validation part (the transfer itself)"
    choice = select_outputs_on_val(probe, generic, samples, split_tgt.val, output_index, labels)
    return {**choice, "n_val": int(len(split_tgt.val)), "probe_fitted_on": fitted_on}


def _frame_share(samples: SampleSet, split: Split) -> float:
    """Share of the target's time span covered by the training + validation samples (union of their spans)."""
    used = total = 0.0
    for trial in samples.trials:
        idx = np.flatnonzero(samples.trial == trial)
        total += samples.end_s[idx].max() - samples.start_s[idx].min()
        mine = np.intersect1d(idx, np.concatenate([split.train, split.val]))
        reach = -np.inf  # length of the union of the samples' [start, end] intervals
        for a, b in sorted(zip(samples.start_s[mine], samples.end_s[mine])):
            used += max(0.0, b - max(a, reach))
            reach = max(reach, b)
    return float(used / total) if total > 0 else float("nan")


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and SD over seeds of nrmse and r per arm and output (rows of :func:`run_transfer`), plus the
    mean over outputs (``output = "mean"``)."""
    out: list[dict[str, Any]] = []
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    outputs = list(dict.fromkeys(r["output"] for r in rows))
    for arm in arms:
        for o in [*outputs, "mean"]:
            entry: dict[str, Any] = {"arm": arm, "output": o}
            for metric in ("nrmse", "r"):
                if o == "mean":
                    seeds = sorted({r["seed"] for r in rows if r["arm"] == arm})
                    vals = [np.nanmean([r[metric] for r in rows if r["arm"] == arm and r["seed"] == s])
                            for s in seeds]
                else:
                    vals = [r[metric] for r in rows if r["arm"] == arm and r["output"] == o]
                vals = np.asarray(vals, dtype=float)
                entry[f"{metric}_mean"] = float(np.nanmean(vals))
                entry[f"{metric}_sd"] = float(np.nanstd(vals, ddof=1)) if vals.size > 1 else 0.0
                entry["n_seeds"] = int(vals.size)
            out.append(entry)
    return out


# ----------------------------------------------------------------------------------------------- config
_CONFIG_KEYS = {"sources", "generic", "target", "transfer", "seeds", "arms", "_base_dir"}


def load_transfer_config(path: str | Path) -> dict[str, Any]:
    """A transfer config (YAML/JSON)::

        sources: [{name: demo_wrist, dataset: a.npz}, {name: demo_wrist_b, dataset: b.npz}]
        generic: {method: picnn, network: ..., training: ..., loss: ..., outputs: [...],
                  physics: {surrogate: ..., muscle_parameters: ..., chain: ..., <PhysicsSpec keys>}}  # source model
        target: {name: demo_wrist_c, dataset: c.npz, physics: {<the target's own files and spec>},
                 inputs: {generic EMG label: target label}, outputs: {...}, output_signs: {target output: -1}}
        transfer: {fraction: 0.2, val_share: 0.25, training: ..., loss: ..., identify: {max_isometric_force: 0.3}}
        seeds: [0, 1, 2]

    Relative paths are relative to the file's folder. Unknown keys raise ConfigError naming the file.
    """
    from pimsk.config import load_mapping

    path = Path(path)
    data = {**load_mapping(path, "transfer config"), "_base_dir": str(path.resolve().parent)}
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"unknown transfer-config keys {unknown}", file=path, field=unknown[0],
                          hint=f"known: {sorted(_CONFIG_KEYS - {'_base_dir'})}")
    for key in ("sources", "generic", "target"):
        if not data.get(key):
            raise ConfigError(f"the transfer config needs {key!r}", file=path, field=key)
    try:
        resolve_config(data["generic"])
        TransferSettings.from_dict(data.get("transfer"))
    except ConfigError as exc:
        raise exc.located(file=path)
    return data


def transfer_from_config(raw: Mapping[str, Any], out_dir: str | Path, *, seeds: Sequence[int] | None = None,
                         arms: Sequence[str] | None = None, recalibration: bool = False) -> list[dict[str, Any]]:
    """Load the datasets and physics files a transfer config names and :func:`run_transfer`."""
    from pimsk.learn.dataset_file import load_samples

    base = Path(raw.get("_base_dir", "."))

    def path(value: Any, where: str) -> Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where} must be a file path", field=where)
        p = Path(value)
        return p if p.is_absolute() else base / p

    sources = []
    for k, src in enumerate(raw["sources"]):
        if not isinstance(src, Mapping) or "dataset" not in src:
            raise ConfigError("each source needs a dataset", field=f"sources[{k}]")
        sources.append((str(src.get("name", f"source{k}")), load_samples(path(src["dataset"], f"sources[{k}]"))))
    tgt = dict(raw["target"])
    target = load_samples(path(tgt.get("dataset"), "target.dataset"))
    generic = {**dict(raw["generic"]), "_base_dir": str(base)}
    source_assets = bounded_assets(assets_from_config(generic))
    target_assets = bounded_assets(assets_from_config({"physics": tgt.get("physics") or {}, "_base_dir": str(base)}))
    settings = TransferSettings.from_dict(raw.get("transfer"))
    return run_transfer(sources, target, {k: v for k, v in generic.items() if k != "_base_dir"}, settings, out_dir,
                        source_assets=source_assets, target_assets=target_assets,
                        target_physics=tgt.get("physics"), inputs=tgt.get("inputs"), outputs=tgt.get("outputs"),
                        output_signs=tgt.get("output_signs"),
                        seeds=list(seeds) if seeds else list(raw.get("seeds") or [0]),
                        arms=list(arms) if arms else list(raw.get("arms") or ARMS), recalibration=recalibration)
