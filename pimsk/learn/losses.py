"""Training loss of the PI-CNN: data MSE + lambda x physics, as a dict of named terms.

``total = data + lambda * (w_moment * physics_moment + w_muscle * physics_muscle)`` (Zhang et al. 2023, IEEE
TNSRE: data loss plus physics-law residuals). Every term is a mean of squared, normalised residuals, so each is
O(1) when the error is of the size of its normaliser:

* ``data``: MSE between predicted and labelled outputs in *standardised* units (each output divided by its
  training-set standard deviation), so angles (rad) and forces (N) weigh alike.
* ``physics_moment`` (moment balance): for every joint coordinate j with a balance,
  ``M_muscle_j = sum_i r_ij(q^) F^_i`` (moment arms ``r = -dl_MT/dq`` of the path surrogate at the *predicted*
  coordinates, *predicted* forces) must equal the net joint moment ``tau_j``:

  - ``moment_source = "dynamics"`` (open chains: wrist, swinging shank): ``tau = M(q^) q^'' + C(q^, q^') - G(q^)``
    from the torch open-chain dynamics (:class:`pimsk.core.joint_dynamics.OpenChainDynamics`) of the predicted
    kinematics, q^' and q^'' by finite differences along the time axis with the sample's ``dt_s``
    (:func:`time_derivative`, :func:`second_time_derivative`);
  - ``moment_source = "target"`` (external loads act, e.g. walking): ``tau`` is the inverse-dynamics moment,
    a column of the dataset's targets (``moment_columns``: coordinate -> target label).

  Residual normalised by ``moment_scale_nm`` (per coordinate; "auto": the RMS of the reference moment over the
  training labels, floored at 1 % of the RMS gross muscle moment ``sum_i |r_ij F_i|`` so a near-static task
  does not divide by ~0).
* ``physics_muscle`` (muscle consistency): the predicted force of each muscle with an EMG channel must equal
  the DeGrooteFregly2016 tendon force (:mod:`pimsk.core.muscle_state`) at the predicted kinematics (MTU length
  ``l_MT(q^)`` from the path surrogate, velocity ``v_MT = -sum_j r_ij q^'_j``) and the EMG-driven activation:
  excitation ``e = clip(g_i * envelope_i, 0, 1)`` (``g``: excitation gain, since envelopes normalised by their
  peak over trials are not normalised by an MVC; fixed, calibrated on the training labels, or trainable), then
  first-order activation dynamics (De Groote et al. 2016, :func:`pimsk.core.activation.simulate_activation`)
  from ``a(0) = e(0)`` at the start of each sample. Rigid or compliant tendon per the muscle parameters
  (``tendon`` overrides); the compliant tendon is solved at equilibrium with d f~T/dt = 0. Residual normalised
  by the muscle's maximum isometric force ``f_max`` (``force_scale: f_max``, default) or by the RMS of its
  labelled force over the training samples (``force_scale: labels``). Note: with f_max a weakly activated task
  gives a small term (demo wrist: ~4e-4 while data ~1); use ``labels`` or the ``physics_muscle`` weight.

Coordinates the surrogate or the chain needs but the network does not predict are either fixed
(``fixed_coordinates_rad``) or read from a label column (``label_coordinates``, e.g. the IK hip angle for the
knee muscles that cross the hip). Excitation gains, the moment scale and ``force_scale: labels`` are fitted on the
training samples only (:meth:`PhysicsLoss.calibrate`).

Physics is evaluated in the dtype of the physics modules (float64 by default) and the terms are cast back.
Shapes: (batch, time, channel) throughout; SI units (rad, N, N m, s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pimsk.core.activation import simulate_activation
from pimsk.core.joint_dynamics import OpenChainDynamics
from pimsk.core.muscle_parameters import MuscleParameters
from pimsk.core.muscle_state import equilibrium_state
from pimsk.core.path_surrogate import PathSurrogate
from pimsk.errors import ConfigError

__all__ = ["time_derivative", "second_time_derivative", "PhysicsSpec", "PhysicsLoss", "LossWeights",
           "TrainingLoss", "TERMS"]

#: Names of the logged loss terms, in CSV order.
TERMS = ("total", "data", "physics_moment", "physics_muscle")


# ---------------------------------------------------------------------------------------- derivatives
def _dt(dt_s: Tensor | float, x: Tensor) -> Tensor:
    dt = torch.as_tensor(dt_s, dtype=x.dtype, device=x.device)
    return dt.reshape(-1, *([1] * (x.ndim - 1))) if dt.ndim else dt


def time_derivative(x: Tensor, dt_s: Tensor | float) -> Tensor:
    """dx/dt of x (batch, time, ...) along the time axis; dt_s () or (batch,) in s.

    Second-order finite differences: central ``(x[t+1] - x[t-1]) / 2dt`` inside, three-point one-sided
    ``(-3x0 + 4x1 - x2) / 2dt`` at the ends (exact for quadratics in time). Needs time >= 3.
    """
    if x.shape[1] < 3:
        raise ValueError(f"need at least 3 frames for a time derivative, got {x.shape[1]}")
    dt = _dt(dt_s, x)
    inner = (x[:, 2:] - x[:, :-2]) / (2.0 * dt)
    first = (-3.0 * x[:, :1] + 4.0 * x[:, 1:2] - x[:, 2:3]) / (2.0 * dt)
    last = (3.0 * x[:, -1:] - 4.0 * x[:, -2:-1] + x[:, -3:-2]) / (2.0 * dt)
    return torch.cat([first, inner, last], dim=1)


def second_time_derivative(x: Tensor, dt_s: Tensor | float) -> Tensor:
    """d2x/dt2 along the time axis: central ``(x[t+1] - 2x[t] + x[t-1]) / dt^2`` inside, four-point one-sided
    ``(2x0 - 5x1 + 4x2 - x3) / dt^2`` at the ends (both exact for cubics in time). Needs time >= 4."""
    if x.shape[1] < 4:
        raise ValueError(f"need at least 4 frames for a second time derivative, got {x.shape[1]}")
    dt2 = _dt(dt_s, x) ** 2
    inner = (x[:, 2:] - 2.0 * x[:, 1:-1] + x[:, :-2]) / dt2
    first = (2.0 * x[:, :1] - 5.0 * x[:, 1:2] + 4.0 * x[:, 2:3] - x[:, 3:4]) / dt2
    last = (2.0 * x[:, -1:] - 5.0 * x[:, -2:-1] + 4.0 * x[:, -3:-2] - x[:, -4:-3]) / dt2
    return torch.cat([first, inner, last], dim=1)


# ------------------------------------------------------------------------------------------ settings
@dataclass
class PhysicsSpec:
    """How network outputs, EMG channels and dataset columns map onto the musculoskeletal model.

    coordinates: output label -> model coordinate (default: outputs named like a surrogate coordinate);
    muscles: output label -> muscle (default: outputs named like a muscle of the parameters);
    emg_muscles: EMG label -> muscle (default: EMG channels named like a muscle);
    moment_source: "dynamics" (torch open chain) or "target" (inverse-dynamics column);
    moment_columns: coordinate -> target label holding its net moment (moment_source "target");
    fixed_coordinates_rad: values of surrogate coordinates that are not predicted (rad or m);
    label_coordinates: coordinate -> target label for coordinates that are not predicted but known from the
    dataset (e.g. the hip angle for the knee muscles that cross the hip): taken from the labels, not the network;
    tendon: "model" (per the parameters), "rigid" or "compliant";
    excitation_gain: "calibrate" (fit on the training labels), a number, or {muscle: number};
    trainable_gain: optimise the (log) excitation gains with the network;
    moment_scale_nm: "auto", a number, or {coordinate: number};
    force_scale: normaliser of the muscle residual, "f_max" (max isometric force) or "labels" (RMS of the
    muscle's labelled force over the training samples; O(1) terms for weakly activated tasks);
    activation_substeps: RK4 substeps per frame of the activation dynamics;
    clamp_to_surrogate_range: evaluate the path surrogate at coordinates clamped to its fitted range.
    """

    coordinates: dict[str, str] = field(default_factory=dict)
    muscles: dict[str, str] = field(default_factory=dict)
    emg_muscles: dict[str, str] = field(default_factory=dict)
    moment_source: str = "dynamics"
    moment_columns: dict[str, str] = field(default_factory=dict)
    fixed_coordinates_rad: dict[str, float] = field(default_factory=dict)
    label_coordinates: dict[str, str] = field(default_factory=dict)
    tendon: str = "model"
    excitation_gain: Any = "calibrate"
    trainable_gain: bool = False
    moment_scale_nm: Any = "auto"
    force_scale: str = "f_max"
    activation_substeps: int = 1
    clamp_to_surrogate_range: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "physics") -> "PhysicsSpec":
        data = {k: v for k, v in dict(data or {}).items()
                if k not in ("surrogate", "muscle_parameters", "chain", "chain_root_body", "chain_coordinates")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown physics settings {unknown}", field=where, hint=f"known: {sorted(known)}")
        spec = cls(**data)
        if spec.moment_source not in ("dynamics", "target"):
            raise ConfigError(f"moment_source {spec.moment_source!r} must be 'dynamics' or 'target'",
                              field=f"{where}.moment_source")
        if spec.tendon not in ("model", "rigid", "compliant"):
            raise ConfigError(f"tendon {spec.tendon!r} must be 'model', 'rigid' or 'compliant'", field=f"{where}.tendon")
        if spec.force_scale not in ("f_max", "labels"):
            raise ConfigError(f"force_scale {spec.force_scale!r} must be 'f_max' or 'labels'",
                              field=f"{where}.force_scale")
        if spec.activation_substeps < 1:
            raise ConfigError("activation_substeps must be >= 1", field=f"{where}.activation_substeps")
        return spec

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------- physics
class PhysicsLoss(nn.Module):
    """Moment-balance and muscle-consistency residuals of predicted outputs (see the module docstring).

    output_labels: the network's outputs (SI); target_labels: the dataset's target columns (the outputs are
    among them; moment columns may be extra); emg_labels: the dataset's EMG channels. ``chain`` is needed for
    moment_source "dynamics". Call :meth:`calibrate` on training samples before training when excitation_gain
    or moment_scale_nm is to be calibrated.
    """

    def __init__(self, output_labels: Sequence[str], target_labels: Sequence[str], emg_labels: Sequence[str],
                 surrogate: PathSurrogate, params: MuscleParameters, chain: OpenChainDynamics | None = None,
                 spec: PhysicsSpec | None = None) -> None:
        super().__init__()
        self.spec = spec or PhysicsSpec()
        self.output_labels, self.target_labels = list(output_labels), list(target_labels)
        self.emg_labels = list(emg_labels)
        self.surrogate = surrogate
        self.chain = chain
        dtype = surrogate.center.dtype
        self.physics_dtype = dtype
        s = self.spec
        missing = [o for o in self.output_labels if o not in self.target_labels]
        if missing:
            raise ConfigError(f"outputs {missing} are not dataset targets", field="outputs")
        self.output_to_target = [self.target_labels.index(o) for o in self.output_labels]

        # coordinates -------------------------------------------------------------------------------
        coord_map = dict(s.coordinates) or {o: o for o in self.output_labels if o in surrogate.coordinates}
        for out, coord in coord_map.items():
            if out not in self.output_labels:
                raise ConfigError(f"physics.coordinates names {out!r}, not an output", field="physics.coordinates",
                                  hint=f"outputs: {self.output_labels}")
            if coord not in surrogate.coordinates and (chain is None or coord not in chain.coordinates):
                raise ConfigError(f"coordinate {coord!r} is neither in the path surrogate nor the chain",
                                  field="physics.coordinates", hint=f"surrogate: {surrogate.coordinates}")
        self.coord_names = list(coord_map.values())
        self.coord_out_idx = [self.output_labels.index(o) for o in coord_map]
        # coordinates known from the labels (not predicted)
        for c, col in s.label_coordinates.items():
            if col not in self.target_labels:
                raise ConfigError(f"label coordinate column {col!r} is not a dataset target",
                                  field="physics.label_coordinates", hint=f"targets: {self.target_labels}")
            if c in self.coord_names:
                raise ConfigError(f"coordinate {c!r} is both predicted and taken from the labels",
                                  field="physics.label_coordinates")
        self.label_coord_names = list(s.label_coordinates)
        self.label_coord_target_idx = [self.target_labels.index(s.label_coordinates[c]) for c in self.label_coord_names]
        #: every coordinate with a value per frame: predicted ones, then those from the labels
        self.all_coord_names = self.coord_names + self.label_coord_names
        # surrogate q: predicted / label columns + fixed values
        base = torch.zeros(len(surrogate.coordinates), dtype=dtype)
        pred_cols, pred_src = [], []
        for j, c in enumerate(surrogate.coordinates):
            if c in self.all_coord_names:
                pred_cols.append(j)
                pred_src.append(self.all_coord_names.index(c))
            elif c in s.fixed_coordinates_rad:
                base[j] = float(s.fixed_coordinates_rad[c])
            else:
                raise ConfigError(f"surrogate coordinate {c!r} is neither predicted, from the labels, nor fixed",
                                  field="physics.fixed_coordinates_rad",
                                  hint="predict it (an output), name its column in label_coordinates, or give its "
                                       "value in fixed_coordinates_rad")
        self.register_buffer("q_base", base)
        self.register_buffer("sur_pred_cols", torch.tensor(pred_cols, dtype=torch.long))
        self.register_buffer("sur_pred_src", torch.tensor(pred_src, dtype=torch.long))

        # forces --------------------------------------------------------------------------------------
        muscle_map = dict(s.muscles) or {o: o for o in self.output_labels if o in params.names}
        for out, m in muscle_map.items():
            if out not in self.output_labels:
                raise ConfigError(f"physics.muscles names {out!r}, not an output", field="physics.muscles")
            if m not in params.names or m not in surrogate.muscles:
                raise ConfigError(f"muscle {m!r} missing from the muscle parameters or the path surrogate",
                                  field="physics.muscles", hint=f"parameters: {list(params.names)}; "
                                                                 f"surrogate: {surrogate.muscles}")
        self.force_muscles = list(muscle_map.values())
        self.force_out_idx = [self.output_labels.index(o) for o in muscle_map]
        self.register_buffer("force_sur_idx", torch.tensor([surrogate.muscles.index(m) for m in self.force_muscles],
                                                           dtype=torch.long))

        # moment balance ------------------------------------------------------------------------------
        if s.moment_source == "dynamics":
            if chain is None:
                balance = []
            else:
                absent = [c for c in chain.coordinates if c not in self.all_coord_names]
                if absent:
                    raise ConfigError(f"the chain's coordinates {absent} are not predicted", field="physics.chain",
                                      hint="predict every coordinate of the open chain (or take it from the labels: "
                                           "label_coordinates), or use moment_source: target")
                balance = list(chain.coordinates)
            self.moment_target_idx: list[int] = []
        else:
            balance = [c for c in s.moment_columns if c in self.all_coord_names]
            for c, col in s.moment_columns.items():
                if col not in self.target_labels:
                    raise ConfigError(f"moment column {col!r} is not a dataset target", field="physics.moment_columns",
                                      hint=f"targets: {self.target_labels}")
            self.moment_target_idx = [self.target_labels.index(s.moment_columns[c]) for c in balance]
        for c in balance:
            if c not in surrogate.coordinates:
                raise ConfigError(f"balance coordinate {c!r} not in the path surrogate", field="physics.coordinates")
        self.balance_coords = balance
        self.register_buffer("balance_sur_idx", torch.tensor([surrogate.coordinates.index(c) for c in balance],
                                                             dtype=torch.long))
        scale = s.moment_scale_nm
        if isinstance(scale, Mapping):
            values = [float(scale.get(c, 1.0)) for c in balance]
        elif isinstance(scale, str):
            if scale != "auto":
                raise ConfigError(f"moment_scale_nm {scale!r}: use 'auto', a number or a mapping",
                                  field="physics.moment_scale_nm")
            values = [1.0] * len(balance)  # set by calibrate()
        else:
            values = [float(scale)] * len(balance)
        if any(v <= 0 for v in values):
            raise ConfigError("moment scales must be > 0", field="physics.moment_scale_nm")
        self.register_buffer("moment_scale", torch.tensor(values, dtype=dtype))
        self.moment_active = bool(balance) and bool(self.force_muscles)

        # muscle consistency --------------------------------------------------------------------------
        emg_map = dict(s.emg_muscles) or {e: e for e in self.emg_labels if e in params.names}
        for e in emg_map:
            if e not in self.emg_labels:
                raise ConfigError(f"physics.emg_muscles names EMG channel {e!r} not in the dataset",
                                  field="physics.emg_muscles", hint=f"EMG channels: {self.emg_labels}")
        muscle_to_emg = {m: e for e, m in emg_map.items()}
        self.consistency_muscles = [m for m in self.force_muscles if m in muscle_to_emg]
        self.consistency_force_pos = [self.force_muscles.index(m) for m in self.consistency_muscles]
        self.consistency_emg_idx = [self.emg_labels.index(muscle_to_emg[m]) for m in self.consistency_muscles]
        self.muscle_active = bool(self.consistency_muscles) and bool(self.all_coord_names)
        p = params.select(self.consistency_muscles) if self.consistency_muscles else None
        if p is not None:
            p = p.to(dtype=dtype)
            if s.tendon != "model":
                rigid = torch.full_like(p.ignore_tendon_compliance, s.tendon == "rigid")
                p = p.replace(ignore_tendon_compliance=rigid)
        self.params = p
        n_c = len(self.consistency_muscles)
        gain = torch.ones(n_c, dtype=dtype)
        if isinstance(s.excitation_gain, Mapping):
            for m, g in s.excitation_gain.items():
                if m in self.consistency_muscles:
                    gain[self.consistency_muscles.index(m)] = float(g)
        elif not isinstance(s.excitation_gain, str):
            gain[:] = float(s.excitation_gain)
        elif s.excitation_gain != "calibrate":
            raise ConfigError(f"excitation_gain {s.excitation_gain!r}: use 'calibrate', a number or a mapping",
                              field="physics.excitation_gain")
        if (gain <= 0).any():
            raise ConfigError("excitation gains must be > 0", field="physics.excitation_gain")
        self.log_gain = nn.Parameter(gain.log(), requires_grad=bool(s.trainable_gain))
        self.register_buffer("force_scale", p.max_isometric_force_n.clone() if p is not None
                             else torch.ones(0, dtype=dtype))
        self.calibrated: dict[str, Any] = {}

    # -- pieces ----------------------------------------------------------------------------------------
    def surrogate_q(self, q: Tensor) -> Tensor:
        """Coordinates (..., n_all) in ``all_coord_names`` order -> surrogate coordinates (..., n_sur), with the
        fixed values. With ``clamp_to_surrogate_range`` the predicted/label coordinates are clamped to the
        surrogate's fitted range (its polynomials are not valid beyond it: a prediction far outside, early in
        training, would otherwise give huge lengths and non-finite muscle states; outside the range the physics
        terms pass no gradient to the coordinate)."""
        shape = (*q.shape[:-1], self.q_base.shape[0])
        full = self.q_base.expand(shape)
        if self.sur_pred_cols.numel() == 0:
            return full
        mask = torch.zeros_like(self.q_base)
        mask[self.sur_pred_cols] = 1.0
        scattered = torch.zeros(shape, dtype=q.dtype, device=q.device).index_copy(
            -1, self.sur_pred_cols, q.index_select(-1, self.sur_pred_src))
        if self.spec.clamp_to_surrogate_range:
            sur = self.surrogate
            lo, hi = (sur.center - sur.half_range).to(q.dtype), (sur.center + sur.half_range).to(q.dtype)
            scattered = torch.minimum(torch.maximum(scattered, lo), hi) * mask
        return full * (1.0 - mask) + scattered

    def surrogate_qd(self, qd: Tensor) -> Tensor:
        """Speeds (..., n_all) -> surrogate speeds (zero for fixed coordinates)."""
        shape = (*qd.shape[:-1], self.q_base.shape[0])
        if self.sur_pred_cols.numel() == 0:
            return torch.zeros(shape, dtype=qd.dtype, device=qd.device)
        return torch.zeros(shape, dtype=qd.dtype, device=qd.device).index_copy(
            -1, self.sur_pred_cols, qd.index_select(-1, self.sur_pred_src))

    @property
    def excitation_gain(self) -> Tensor:
        return self.log_gain.exp()

    def activation(self, emg: Tensor, dt_s: Tensor, gain: Tensor | None = None) -> Tensor:
        """EMG-driven activation (batch, time, n_consistency) from raw envelopes (batch, time, n_emg)."""
        gain = self.excitation_gain if gain is None else gain
        env = emg.to(self.physics_dtype)[..., self.consistency_emg_idx]
        e = torch.clamp(gain * env, 0.0, 1.0)
        dt = torch.as_tensor(dt_s, dtype=self.physics_dtype, device=e.device).reshape(-1, 1)
        return simulate_activation(e, dt, self.params, substeps=self.spec.activation_substeps)

    def kinematics(self, pred_si: Tensor, dt_s: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Coordinates q (batch, time, n_all): the predicted ones, then those from the labels (``targets``, needed
        when ``label_coordinates`` is set); and their first and second time derivatives (finite differences)."""
        q = pred_si.to(self.physics_dtype)[..., self.coord_out_idx]
        if self.label_coord_names:
            if targets is None:
                raise ValueError("label_coordinates need the targets")
            q = torch.cat([q, targets.to(self.physics_dtype)[..., self.label_coord_target_idx]], dim=-1)
        dt = torch.as_tensor(dt_s, dtype=self.physics_dtype, device=q.device)
        return q, time_derivative(q, dt), second_time_derivative(q, dt)

    def muscle_forces(self, q: Tensor, qd: Tensor, activation: Tensor) -> Tensor:
        """DeGroote tendon forces (batch, time, n_consistency) in N at predicted coordinates and speeds."""
        q_full, qd_full = self.surrogate_q(q), self.surrogate_qd(qd)
        lengths, arms = self.surrogate.lengths_and_moment_arms(q_full)
        idx = torch.tensor([self.surrogate.muscles.index(m) for m in self.consistency_muscles], dtype=torch.long)
        l_mt = lengths.index_select(-1, idx)
        v_mt = -(arms.index_select(-2, idx) * qd_full[..., None, :]).sum(-1)
        return equilibrium_state(l_mt, v_mt, activation, self.params).tendon_force_n

    def net_moment(self, q: Tensor, qd: Tensor, qdd: Tensor, targets: Tensor) -> Tensor:
        """Reference net moment (batch, time, n_balance): open-chain dynamics or the target columns."""
        if self.spec.moment_source == "target":
            return targets.to(self.physics_dtype)[..., self.moment_target_idx]
        order = [self.all_coord_names.index(c) for c in self.chain.coordinates]
        return self.chain(q[..., order], qd[..., order], qdd[..., order])

    def muscle_moment(self, q: Tensor, forces: Tensor) -> tuple[Tensor, Tensor]:
        """sum_i r_ij F_i (batch, time, n_balance) of the predicted forces, and the gross sum_i |r_ij F_i|."""
        arms = self.surrogate.moment_arms(self.surrogate_q(q))  # (..., n_muscles, n_coords)
        arms = arms.index_select(-2, self.force_sur_idx).index_select(-1, self.balance_sur_idx)
        contrib = arms * forces[..., :, None]
        return contrib.sum(-2), contrib.abs().sum(-2)

    # -- terms -----------------------------------------------------------------------------------------
    def residuals(self, pred_si: Tensor, emg: Tensor, targets: Tensor, dt_s: Tensor,
                  activation: Tensor | None = None) -> dict[str, Tensor]:
        """Normalised residuals per frame: ``moment`` (batch, time, n_balance), ``muscle`` (batch, time,
        n_consistency); only the active ones."""
        out: dict[str, Tensor] = {}
        q, qd, qdd = self.kinematics(pred_si, dt_s, targets)
        forces = pred_si.to(self.physics_dtype)[..., self.force_out_idx]
        if self.moment_active:
            m_muscle, _ = self.muscle_moment(q, forces)
            out["moment"] = (m_muscle - self.net_moment(q, qd, qdd, targets)) / self.moment_scale
        if self.muscle_active:
            act = self.activation(emg, dt_s) if activation is None else activation.to(self.physics_dtype)
            f_model = self.muscle_forces(q, qd, act)
            out["muscle"] = (forces[..., self.consistency_force_pos] - f_model) / self.force_scale
        return out

    def forward(self, pred_si: Tensor, emg: Tensor, targets: Tensor, dt_s: Tensor,
                activation: Tensor | None = None) -> dict[str, Tensor]:
        """``physics_moment`` and ``physics_muscle``: means of squared normalised residuals (NaN if inactive)."""
        res = self.residuals(pred_si, emg, targets, dt_s, activation)
        nan = torch.tensor(float("nan"), dtype=pred_si.dtype, device=pred_si.device)
        return {"physics_moment": (res["moment"] ** 2).mean().to(pred_si.dtype) if "moment" in res else nan,
                "physics_muscle": (res["muscle"] ** 2).mean().to(pred_si.dtype) if "muscle" in res else nan}

    def label_outputs(self, targets: Tensor) -> Tensor:
        """The labelled outputs (batch, time, n_outputs) picked from the targets."""
        return targets[..., self.output_to_target]

    # -- calibration on training data ------------------------------------------------------------------
    @torch.no_grad()
    def calibrate(self, emg: np.ndarray, targets: np.ndarray, dt_s: np.ndarray, *, n_grid: int = 25,
                  gain_range: tuple[float, float] = (1e-3, 1e2), n_refine: int = 30) -> dict[str, Any]:
        """Fit what the spec asks to fit, on TRAINING samples (emg (n, T, n_emg), targets (n, T, n_targets)).

        - moment_scale_nm "auto": RMS of the reference moment over the labels (floor: 1 % of the RMS gross
          muscle moment);
        - excitation_gain "calibrate": per muscle, the gain minimising the mean squared normalised difference
          between the labelled force and the DeGroote force at the labelled kinematics (log-spaced grid of
          ``n_grid`` gains in ``gain_range``, then golden-section refinement).
        Returns (and stores in ``self.calibrated``) what was fitted.
        """
        dt = self.physics_dtype
        emg_t = torch.as_tensor(np.asarray(emg), dtype=dt)
        tgt = torch.as_tensor(np.asarray(targets), dtype=dt)
        dts = torch.as_tensor(np.asarray(dt_s), dtype=dt).reshape(-1)
        labels = self.label_outputs(tgt)
        q, qd, qdd = self.kinematics(labels, dts, tgt)
        forces = labels[..., self.force_out_idx]
        info: dict[str, Any] = {}
        if self.moment_active:
            if self.spec.moment_scale_nm == "auto":
                ref = self.net_moment(q, qd, qdd, tgt)
                _, gross = self.muscle_moment(q, forces)
                rms_ref = ref.pow(2).mean(dim=(0, 1)).sqrt()
                rms_gross = gross.pow(2).mean(dim=(0, 1)).sqrt()
                value = torch.maximum(rms_ref, 0.01 * rms_gross)
                self.moment_scale.copy_(torch.where(value > 0, value, torch.ones_like(value)))
            info["moment_scale_nm"] = dict(zip(self.balance_coords, self.moment_scale.tolist()))
        if self.muscle_active and self.spec.force_scale == "labels":
            rms = forces[..., self.consistency_force_pos].pow(2).mean(dim=(0, 1)).sqrt()
            floor = 1e-3 * self.params.max_isometric_force_n
            self.force_scale.copy_(torch.maximum(rms, floor))
            info["force_scale_n"] = dict(zip(self.consistency_muscles, self.force_scale.tolist()))
        if self.muscle_active and self.spec.excitation_gain == "calibrate":
            f_lab = forces[..., self.consistency_force_pos]
            f_max = self.params.max_isometric_force_n

            def cost(gain: Tensor) -> Tensor:  # gain (n_muscles,) -> (n_muscles,)
                f = self.muscle_forces(q, qd, self.activation(emg_t, dts, gain))
                return (((f - f_lab) / f_max) ** 2).mean(dim=(0, 1))

            logs = torch.linspace(math.log(gain_range[0]), math.log(gain_range[1]), n_grid, dtype=dt)
            costs = torch.stack([cost(torch.full((len(self.consistency_muscles),), float(g.exp()), dtype=dt))
                                 for g in logs])  # (n_grid, n_muscles)
            best = costs.argmin(0)
            lo = logs[torch.clamp(best - 1, min=0)]
            hi = logs[torch.clamp(best + 1, max=n_grid - 1)]
            ratio = (math.sqrt(5.0) - 1.0) / 2.0
            for _ in range(n_refine):  # golden section per muscle (vectorised)
                a = hi - ratio * (hi - lo)
                b = lo + ratio * (hi - lo)
                left = cost(a.exp()) <= cost(b.exp())
                hi = torch.where(left, b, hi)
                lo = torch.where(left, lo, a)
            gain = (0.5 * (lo + hi)).exp()
            self.log_gain.data.copy_(gain.log())
            info["excitation_gain"] = dict(zip(self.consistency_muscles, gain.tolist()))
            info["excitation_gain_cost"] = dict(zip(self.consistency_muscles, cost(gain).tolist()))
        self.calibrated = info
        return info

    @torch.no_grad()
    def label_violation(self, emg: np.ndarray, targets: np.ndarray, dt_s: np.ndarray) -> dict[str, float]:
        """How far the labels themselves violate the physics: the physics terms with the labels as predictions
        (and RMS of the residuals in physical units: ``moment_rms_nm``, ``muscle_rms_n``)."""
        dt = self.physics_dtype
        tgt = torch.as_tensor(np.asarray(targets), dtype=dt)
        emg_t = torch.as_tensor(np.asarray(emg), dtype=dt)
        dts = torch.as_tensor(np.asarray(dt_s), dtype=dt).reshape(-1)
        labels = self.label_outputs(tgt)
        res = self.residuals(labels, emg_t, tgt, dts)
        out = {k: float(v) for k, v in self.forward(labels, emg_t, tgt, dts).items()}
        if "moment" in res:
            phys = res["moment"] * self.moment_scale
            for c, v in zip(self.balance_coords, phys.pow(2).mean(dim=(0, 1)).sqrt().tolist()):
                out[f"moment_rms_nm:{c}"] = v
        if "muscle" in res:
            phys = res["muscle"] * self.force_scale
            for m, v in zip(self.consistency_muscles, phys.pow(2).mean(dim=(0, 1)).sqrt().tolist()):
                out[f"muscle_rms_n:{m}"] = v
        return out

    def describe(self) -> dict[str, Any]:
        """What the physics compares (for logs and the saved config)."""
        return {"coordinates": dict(zip([self.output_labels[i] for i in self.coord_out_idx], self.coord_names)),
                "label_coordinates": dict(self.spec.label_coordinates),
                "force_muscles": self.force_muscles, "balance_coordinates": self.balance_coords,
                "moment_source": self.spec.moment_source, "consistency_muscles": self.consistency_muscles,
                "moment_scale_nm": dict(zip(self.balance_coords, self.moment_scale.tolist())),
                "excitation_gain": dict(zip(self.consistency_muscles, self.excitation_gain.detach().tolist())),
                "moment_active": self.moment_active, "muscle_active": self.muscle_active}


# -------------------------------------------------------------------------------------- total loss
@dataclass
class LossWeights:
    """``total = data + lam * (physics_moment * term_m + physics_muscle * term_mu)``; lam 0: physics-free CNN."""

    lam: float = 1.0
    physics_moment: float = 1.0
    physics_muscle: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "loss") -> "LossWeights":
        data = dict(data or {})
        if "lambda" in data:
            data["lam"] = data.pop("lambda")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown loss settings {unknown}", field=where,
                              hint="known: lambda, physics_moment, physics_muscle")
        w = cls(**{k: float(v) for k, v in data.items()})
        if w.lam < 0 or w.physics_moment < 0 or w.physics_muscle < 0:
            raise ConfigError("loss weights must be >= 0", field=where)
        return w


class TrainingLoss(nn.Module):
    """Data MSE (standardised outputs) + lambda x weighted physics terms; returns the dict of TERMS.

    output_index: the target columns the network predicts, in output order.

    With lambda = 0 (or no physics) the physics terms are still evaluated for the log when ``log_physics``
    (without gradient), so the CNN baseline's curves show how physical its predictions are, but the total
    and every gradient equal those of the plain data loss.
    """

    def __init__(self, weights: LossWeights, output_index: Sequence[int], physics: PhysicsLoss | None = None,
                 log_physics: bool = True):
        super().__init__()
        self.weights = weights
        self.output_index = list(output_index)
        if physics is not None and list(physics.output_to_target) != self.output_index:
            raise ConfigError("the physics and the data loss disagree on the output columns", field="outputs")
        self.physics = physics
        self.log_physics = log_physics

    @property
    def uses_physics(self) -> bool:
        w = self.weights
        return self.physics is not None and w.lam > 0 and (w.physics_moment > 0 or w.physics_muscle > 0)

    def forward(self, z_pred: Tensor, batch: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
        """z_pred: standardised network outputs (batch, time, n_out); batch: ``emg``, ``targets`` (SI),
        ``dt_s`` and optionally ``activation``; model: provides ``to_si`` / ``to_standard``."""
        targets = batch["targets"]
        y_lab = targets[..., self.output_index]
        data = ((z_pred - model.to_standard(y_lab.to(z_pred.dtype))) ** 2).mean()
        nan = torch.tensor(float("nan"), dtype=z_pred.dtype, device=z_pred.device)
        terms = {"data": data, "physics_moment": nan, "physics_muscle": nan}
        total = data
        if self.physics is not None and (self.uses_physics or self.log_physics):
            pred_si = model.to_si(z_pred)
            if self.uses_physics:
                phys = self.physics(pred_si, batch["emg"], targets, batch["dt_s"], batch.get("activation"))
            else:
                with torch.no_grad():
                    phys = self.physics(pred_si.detach(), batch["emg"], targets, batch["dt_s"], batch.get("activation"))
            terms.update(phys)
            if self.uses_physics:
                w = self.weights
                for name, weight, active in (("physics_moment", w.physics_moment, self.physics.moment_active),
                                             ("physics_muscle", w.physics_muscle, self.physics.muscle_active)):
                    if weight > 0 and active:  # an active term that is NaN makes the total NaN (caught by train)
                        total = total + w.lam * weight * phys[name]
        terms["total"] = total
        return terms
