"""Muscle-parameter identification with the musculoskeletal ODE as a loss, and label-free training.

Shi, Ma & Zhao ("The bionic neural network for external simulation of human locomotor system"): the
musculoskeletal model is an ODE loss and its physiological parameters are trained with the network. Here:

* **The ODE** (``physics_ode``): EMG envelope -> excitation ``e = clip(g * envelope, 0, 1)`` (``g`` from an MVC
  trial: :func:`mvc_excitation_gain`) -> activation dynamics (De Groote et al. 2016, RK4:
  :func:`pimsk.core.activation.simulate_activation`, trainable time constants) -> DeGrooteFregly2016
  contraction at the measured (IK) kinematics (path surrogate lengths and velocities; compliant tendon in a
  *quasi-dynamic* form: the equilibrium with d f~T/dt = 0, then once more with d f~T/dt taken along time from
  that first solution, which halves the moment error of the static equilibrium on fast wrist motion) -> joint
  moment ``sum_i r_ij F_i`` against the open-chain dynamics ``M(q) q'' + C - G`` of the same kinematics
  (:class:`pimsk.core.joint_dynamics.OpenChainDynamics`). Residual normalised by the RMS net moment of the
  training kinematics.
* **Trainable parameters** (:class:`BoundedMuscleParameters`): per muscle max isometric force, optimal fiber
  length, tendon slack length, activation and deactivation time constants, each ``lo + (hi - lo) sigmoid(raw)``
  between physiological bounds (:data:`DEFAULT_BOUNDS`), starting at the generic (scaled) model's values.
* **Errors in variables.** EMG-driven activations are noisy (the envelope of a stochastic signal); a plain
  least-squares fit of a noisy regressor shrinks the gains it multiplies (here: every max isometric force
  ~10-15 % low). ``physics_ode`` subtracts the expected noise part of the squared residual, ``sum_i (r_i
  F_active,i kappa_i)^2 / (1 + kappa_i^2)`` with ``kappa_i`` the relative SD of the EMG-driven activation
  (corrected least squares, Fuller 1987, Measurement Error Models, ch. 1). kappa comes from the MVC plateau's
  relative envelope noise, NOT clipped at excitation 1, passed through the activation dynamics at the RMS
  excitation of the training EMG (:func:`activation_noise_ratio`, :func:`excitation_level`): ~0.08-0.11 on the
  synthetic wrist, against a true relative activation error of ~0.09-0.13; the clipped plateau gave ~0.05, a
  correction 4x too small, and every max isometric force came out 8-14 % low.
* **Tendon.** ``tendon_iterations`` > 1 repeats the quasi-dynamic pass, relaxed (``tendon_relaxation``), towards
  the dynamic-tendon solution; 3 passes at 0.5 halve the moment error of the ODE at the true parameters and
  activations on the synthetic wrist (relative squared moment error 0.0059 -> 0.0026).
* **Label-free training**: the network (:class:`pimsk.learn.networks.PICNN`) maps EMG to the coordinates and the
  muscle forces; its data loss sees only the coordinates (IK). The forces are shaped by the physics alone:
  ``physics_moment`` (moment balance of the predicted forces at the predicted kinematics, as
  :class:`pimsk.learn.losses.PhysicsLoss`) and ``physics_muscle`` (predicted forces = the identified ODE's
  forces, which pass no gradient to the parameters here: they are identified from ``physics_ode``). Force
  outputs are standardised with the generic model's EMG-driven forces, never with force labels.

``total = data + w_moment physics_moment + w_muscle physics_muscle + w_ode physics_ode``. Network weights and
parameters train together (Adam, a learning rate per group). Shapes (batch, time, channel); SI units.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pimsk.core.activation import simulate_activation
from pimsk.core.muscle_parameters import MuscleParameters
from pimsk.core.muscle_state import MuscleState, equilibrium_state
from pimsk.errors import ConfigError
from pimsk.learn.datasets import SampleSet, Split, Standardiser, make_loader
from pimsk.learn.losses import PhysicsLoss, PhysicsSpec, time_derivative
from pimsk.learn.networks import PICNN, build_network
from pimsk.learn.physics_files import PhysicsAssets

__all__ = ["DEFAULT_BOUNDS", "IDENTIFIABLE", "BoundedMuscleParameters", "mvc_excitation_gain",
           "activation_noise_ratio", "excitation_level", "MusculoskeletalODE", "IdentifySettings", "IdentifyResult",
           "identify_and_train", "ode_forces", "predict_forces", "save_result", "ID_TERMS"]

log = logging.getLogger("pimsk.learn.identify")

#: Logged terms, in CSV order.
ID_TERMS = ("total", "data", "physics_moment", "physics_muscle", "physics_ode")

#: Parameters that may be identified: field -> ("rel" | "abs", lo, hi). "rel": bounds are factors on the
#: generic value; "abs": bounds in SI. Time constants: De Groote et al. 2016 use 15 / 60 ms; reported values
#: span ~5-50 ms (activation) and ~20-200 ms (deactivation).
DEFAULT_BOUNDS: dict[str, tuple[str, float, float]] = {
    "max_isometric_force_n": ("rel", 0.5, 2.0),
    "optimal_fiber_length_m": ("rel", 0.5, 1.6),
    "tendon_slack_length_m": ("rel", 0.9, 1.1),
    "activation_time_constant_s": ("abs", 0.005, 0.05),
    "deactivation_time_constant_s": ("abs", 0.02, 0.2),
}
IDENTIFIABLE = tuple(DEFAULT_BOUNDS)


# --------------------------------------------------------------------------------------- parameters
class BoundedMuscleParameters(nn.Module):
    """Trainable per-muscle parameters ``lo + (hi - lo) sigmoid(raw)`` on top of fixed generic ones.

    base: the generic (scaled) model's parameters (n_muscles,); fields: which of :data:`IDENTIFIABLE` train;
    bounds: overrides of :data:`DEFAULT_BOUNDS`. ``forward()`` returns a :class:`MuscleParameters` whose trained
    fields carry gradients. The generic value must lie strictly inside its bounds.
    """

    def __init__(self, base: MuscleParameters, fields: Sequence[str] = IDENTIFIABLE,
                 bounds: Mapping[str, Sequence] | None = None) -> None:
        super().__init__()
        self.base = base.detach()
        self.fields = list(fields)
        all_bounds = {**DEFAULT_BOUNDS, **{k: tuple(v) for k, v in dict(bounds or {}).items()}}
        self.raw = nn.ParameterDict()
        for name in self.fields:
            if name not in DEFAULT_BOUNDS:
                raise ConfigError(f"parameter {name!r} cannot be identified", field="identify.parameters",
                                  hint=f"choose from {list(IDENTIFIABLE)}")
            kind, lo, hi = all_bounds[name]
            g = getattr(self.base, name)
            lo_t, hi_t = (g * float(lo), g * float(hi)) if kind == "rel" else (torch.full_like(g, float(lo)),
                                                                                torch.full_like(g, float(hi)))
            if not bool(((g > lo_t) & (g < hi_t)).all()):
                raise ConfigError(f"generic {name} {g.tolist()} not strictly inside the bounds [{lo}, {hi}] ({kind})",
                                  field=f"identify.bounds.{name}")
            self.register_buffer(f"lo_{name}", lo_t.clone())
            self.register_buffer(f"hi_{name}", hi_t.clone())
            x = (g - lo_t) / (hi_t - lo_t)
            self.raw[name] = nn.Parameter(torch.log(x / (1.0 - x)))

    def value(self, name: str) -> Tensor:
        """The current value (n_muscles,) of one trained field (SI)."""
        lo, hi = getattr(self, f"lo_{name}"), getattr(self, f"hi_{name}")
        return lo + (hi - lo) * torch.sigmoid(self.raw[name])

    def forward(self) -> MuscleParameters:
        return self.base.replace(**{name: self.value(name) for name in self.fields})

    def table(self) -> list[dict[str, Any]]:
        """Rows (muscle, parameter, generic, identified, lower, upper) for CSV/JSON."""
        rows = []
        for name in self.fields:
            cur = self.value(name).detach()
            for i, m in enumerate(self.base.names):
                rows.append({"muscle": m, "parameter": name, "generic": float(getattr(self.base, name)[i]),
                             "identified": float(cur[i]), "lower": float(getattr(self, f"lo_{name}")[i]),
                             "upper": float(getattr(self, f"hi_{name}")[i])})
        return rows


# ------------------------------------------------------------------------------------- EMG scaling
def _plateau(envelope: np.ndarray, time_s: np.ndarray, window_s: Sequence[float] | None) -> np.ndarray:
    env = np.asarray(envelope, dtype=float)
    if window_s is None:
        return env
    t = np.asarray(time_s, dtype=float)
    keep = (t >= float(window_s[0])) & (t <= float(window_s[1]))
    if keep.sum() < 3:
        raise ConfigError(f"the MVC window {list(window_s)} s holds {int(keep.sum())} frames", field="mvc_window_s")
    return env[keep]


def mvc_excitation_gain(envelope: np.ndarray, time_s: np.ndarray, window_s: Sequence[float] | None = None
                        ) -> np.ndarray:
    """Excitation gain per channel (n_channels,): 1 / mean envelope over the MVC plateau (``window_s``).

    An MVC trial held at full excitation gives the envelope of excitation 1; its *mean* over the plateau is the
    reference (the peak, as ``pimsk emg --mvc`` uses, sits on the envelope's own fluctuation and makes
    excitations ~15-25 % too small at a 6-10 Hz low-pass).
    """
    mean = _plateau(envelope, time_s, window_s).mean(axis=0)
    if not np.all(mean > 0):
        raise ConfigError("an MVC envelope channel is not positive on the plateau", field="mvc_envelopes")
    return 1.0 / mean


def activation_noise_ratio(envelope: np.ndarray, time_s: np.ndarray, gain: np.ndarray, params: MuscleParameters,
                           window_s: Sequence[float] | None = None, level: np.ndarray | float | None = None,
                           settle_s: float = 0.1) -> np.ndarray:
    """kappa (n_channels,): relative SD of the EMG-driven activation from the MVC plateau's envelope noise.

    The envelope of amplitude-modulated EMG has a relative fluctuation that does not depend on the excitation
    (Hogan & Mann 1980); it is taken from the MVC plateau, ``envelope / its plateau mean``, and NOT clipped
    at excitation 1 (clipping the plateau at 1, as the excitation does, removes about half of it: kappa
    ~0.05 instead of ~0.09 on the synthetic wrist). That relative noise, at the excitation ``level``
    (n_channels,) or scalar (default: 1 / ``gain`` x the plateau mean, i.e. excitation 1), is passed through the
    activation dynamics of ``params``, whose time constants shrink at low activation (De Groote et al. 2016, eq.
    1-2: ``tau_a (0.5 + 1.5 a)``, ``tau_d / (0.5 + 1.5 a)``), so the ratio grows at the low levels of a dynamic
    task. ``settle_s``: start of the simulated plateau left out while the activation settles.
    """
    env = np.asarray(envelope, dtype=float)
    t = np.asarray(time_s, dtype=float)
    dt = float(np.median(np.diff(t)))
    plateau = _plateau(env, t, window_s)
    mean = plateau.mean(axis=0)
    if not np.all(mean > 0):
        raise ConfigError("an MVC envelope channel is not positive on the plateau", field="mvc_envelopes")
    lvl = np.ones_like(mean) if level is None else np.broadcast_to(np.asarray(level, dtype=float), mean.shape)
    e = torch.as_tensor(np.maximum(plateau / mean[None, :] * lvl[None, :], 0.0), dtype=params.dtype)  # no clip at 1
    with torch.no_grad():
        act = simulate_activation(e[None], dt, params.detach())[0].numpy()
    keep = act[min(int(round(settle_s / dt)), max(act.shape[0] - 3, 0)):]
    return keep.std(axis=0) / keep.mean(axis=0)


def excitation_level(emg: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """RMS excitation (n_channels,) of envelopes (..., n_channels) x ``gain``: the level at which the
    activation noise matters most for the squared moment residual (its noise term scales with a^2)."""
    e = np.clip(np.asarray(emg, dtype=float) * np.asarray(gain, dtype=float), 0.0, 1.0)
    return np.sqrt((e.reshape(-1, e.shape[-1]) ** 2).mean(axis=0))


# ------------------------------------------------------------------------------------------ the ODE
def ode_forces(physics: PhysicsLoss, params: MuscleParameters, q: Tensor, qd: Tensor, activation: Tensor,
               dt_s: Tensor, quasi_dynamic: bool = True, tendon_iterations: int = 1,
               relaxation: float = 1.0) -> tuple[MuscleState, Tensor]:
    """DeGroote state of the consistency muscles (batch, time, n) at kinematics q, qd (``physics``'s
    coordinate order) and activation; and the moment arms (batch, time, n, n_surrogate_coords).

    quasi_dynamic: solve once with d f~T/dt = 0, then ``tendon_iterations`` times again with d f~T/dt along time
    from the previous solution, blended as ``(1 - relaxation) old + relaxation new`` (a relaxed fixed-point
    iteration towards the dynamic-tendon solution ``f = equilibrium(d f/dt)``; 1 and 1.0: one plain pass)."""
    q_full, qd_full = physics.surrogate_q(q), physics.surrogate_qd(qd)
    lengths, arms = physics.surrogate.lengths_and_moment_arms(q_full)
    idx = torch.tensor([physics.surrogate.muscles.index(m) for m in physics.consistency_muscles], dtype=torch.long)
    l_mt, arms = lengths.index_select(-1, idx), arms.index_select(-2, idx)
    v_mt = -(arms * qd_full[..., None, :]).sum(-1)
    state = equilibrium_state(l_mt, v_mt, activation, params)
    if quasi_dynamic and not bool(params.ignore_tendon_compliance.all()):
        df_t = torch.zeros_like(state.tendon_force_n)
        for _ in range(max(int(tendon_iterations), 1)):
            new = time_derivative(state.tendon_force_n / params.max_isometric_force_n, dt_s)
            df_t = (1.0 - relaxation) * df_t + relaxation * new
            state = equilibrium_state(l_mt, v_mt, activation, params, df_t)
    return state, arms


#: Fewest frames of a window the ODE term may score (after skip_frames and the low-pass edges).
MIN_SCORED_FRAMES = 10


def lowpass_operator(n_time: int, rate_hz: float, cutoff_hz: float) -> np.ndarray:
    """(n_time, n_time) matrix M with M @ x = :func:`pimsk.core.emg.lowpass` (x, rate_hz, cutoff_hz) for any
    x of n_time samples (the zero-phase Butterworth with its edge padding is linear in x): column j is the
    filter's response to an impulse at j."""
    from pimsk.core.emg import lowpass

    return np.ascontiguousarray(lowpass(np.eye(n_time), rate_hz, cutoff_hz))


class MusculoskeletalODE(nn.Module):
    """``physics_ode``: EIV-corrected mean squared moment residual of the EMG-driven DeGroote model at the
    measured kinematics (see the module docstring). ``physics``: a :class:`PhysicsLoss` (coordinates,
    surrogate, chain, EMG mapping; excitation gain fixed); ``kappa``: activation noise ratios per consistency
    muscle (zeros: no correction)."""

    def __init__(self, physics: PhysicsLoss, parameters: BoundedMuscleParameters, kappa: Tensor | None = None,
                 quasi_dynamic: bool = True, skip_frames: int = 0, tendon_iterations: int = 1,
                 tendon_relaxation: float = 1.0, moment_lowpass_hz: float | None = None) -> None:
        super().__init__()
        if not physics.balance_coords or (physics.chain is None and physics.spec.moment_source == "dynamics"):
            raise ConfigError("the ODE loss needs balanced coordinates and their net moment: an open chain "
                              "(moment_source dynamics) or inverse-dynamics moments (moment_source target)",
                              field="physics.chain")
        self.physics = physics
        self.parameters_module = parameters
        n = len(physics.consistency_muscles)
        k = torch.zeros(n, dtype=physics.physics_dtype) if kappa is None else torch.as_tensor(kappa).to(
            physics.physics_dtype)
        self.register_buffer("eiv_factor", k**2 / (1.0 + k**2))
        self.quasi_dynamic = quasi_dynamic
        self.tendon_iterations = int(tendon_iterations)
        self.tendon_relaxation = float(tendon_relaxation)
        self.skip_frames = int(skip_frames)
        self.moment_lowpass_hz = None if moment_lowpass_hz is None else float(moment_lowpass_hz)
        self._lowpass_operators: dict[tuple[int, float], Tensor] = {}
        self.register_buffer("moment_scale", torch.ones(len(physics.balance_coords), dtype=physics.physics_dtype))
        self.register_buffer("balance_in_sur", physics.balance_sur_idx.clone())

    def measured_kinematics(self, targets: Tensor, dt_s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ph = self.physics
        return ph.kinematics(ph.label_outputs(targets.to(ph.physics_dtype)), dt_s, targets)

    @torch.no_grad()
    def calibrate(self, targets: np.ndarray, dt_s: np.ndarray) -> dict[str, float]:
        """Moment scale = RMS net moment of the training kinematics (no force labels)."""
        tg = torch.as_tensor(np.asarray(targets), dtype=self.physics.physics_dtype)
        dts = torch.as_tensor(np.asarray(dt_s), dtype=self.physics.physics_dtype).reshape(-1)
        q, qd, qdd = self.measured_kinematics(tg, dts)
        tau = self.physics.net_moment(q, qd, qdd, tg)
        rms = tau.pow(2).mean(dim=(0, 1)).sqrt()
        self.moment_scale.copy_(torch.where(rms > 0, rms, torch.ones_like(rms)))
        return dict(zip(self.physics.balance_coords, self.moment_scale.tolist()))

    def activation(self, emg: Tensor, dt_s: Tensor, params: MuscleParameters) -> Tensor:
        ph = self.physics
        env = emg.to(ph.physics_dtype)[..., ph.consistency_emg_idx]
        e = torch.clamp(ph.excitation_gain.detach() * env, 0.0, 1.0)
        dt = torch.as_tensor(dt_s, dtype=ph.physics_dtype, device=e.device).reshape(-1, 1)
        return simulate_activation(e, dt, params, substeps=ph.spec.activation_substeps)

    def forward(self, emg: Tensor, targets: Tensor, dt_s: Tensor) -> tuple[Tensor, Tensor]:
        """(physics_ode scalar, ODE tendon forces (batch, time, n_consistency) in N)."""
        params = self.parameters_module()
        dt = torch.as_tensor(dt_s, dtype=self.physics.physics_dtype).reshape(-1)
        q, qd, qdd = self.measured_kinematics(targets, dt)
        act = self.activation(emg, dt, params)
        state, arms = ode_forces(self.physics, params, q, qd, act, dt, self.quasi_dynamic, self.tendon_iterations,
                                 self.tendon_relaxation)
        arms = arms.index_select(-1, self.balance_in_sur)  # (b, t, n, n_balance)
        moment = (arms * state.tendon_force_n[..., None]).sum(-2)
        tau = self.physics.net_moment(q, qd, qdd, targets)
        active = state.active_fiber_force_n * state.cos_pennation
        noise = ((arms * active[..., None]) ** 2 * self.eiv_factor[:, None]).sum(-2)
        first, stop = self.skip_frames, moment.shape[1]
        if self.moment_lowpass_hz is not None:
            moment = self.matched_lowpass(moment, dt)
            edge = self.lowpass_edge_frames(dt)
            first, stop = max(first, edge), stop - edge
            if stop - first < MIN_SCORED_FRAMES:
                raise ConfigError(
                    f"windows of {moment.shape[1]} frames leave {max(stop - first, 0)} frames to the ODE term after "
                    f"the moment low-pass edges ({edge} frames at each end at {1.0 / float(dt.reshape(-1)[0]):g} Hz, "
                    f"{self.moment_lowpass_hz:g} Hz cut-off)", field="identify.moment_lowpass_hz",
                    hint=f"use windows of at least {2 * edge + MIN_SCORED_FRAMES} frames or a higher cut-off")
        sq = ((moment - tau) ** 2 - noise) / self.moment_scale**2
        return sq[:, first:stop].mean(), state.tendon_force_n

    def lowpass_edge_frames(self, dt_s: Tensor) -> int:
        """Frames at each window end left out after :meth:`matched_lowpass`: two time constants of the cut-off,
        where the window's own edge padding departs from the whole-trial filter of the kinematics."""
        return int(math.ceil(2.0 / (float(dt_s.reshape(-1)[0]) * float(self.moment_lowpass_hz))))

    def matched_lowpass(self, moment: Tensor, dt_s: Tensor) -> Tensor:
        """The muscle moment (batch, time, n_balance) low-passed by the zero-phase Butterworth the measured
        kinematics went through (:func:`pimsk.core.emg.lowpass`, 4th order, ``moment_lowpass_hz``), as a
        (time x time) linear operator (differentiable): both sides of the moment balance then carry the
        same filter (Kristianslund et al. 2012, J Biomech 45:666), so the trimmed peaks of the filtered
        kinematics' net moment do not pull the identified forces down."""
        n_time = moment.shape[1]
        rate_hz = 1.0 / float(dt_s.reshape(-1)[0])
        key = (n_time, round(rate_hz, 6))
        if key not in self._lowpass_operators:
            op = lowpass_operator(n_time, rate_hz, float(self.moment_lowpass_hz))
            self._lowpass_operators[key] = torch.as_tensor(op, dtype=moment.dtype)
        return torch.einsum("ts,bsn->btn", self._lowpass_operators[key].to(moment.device), moment)


# ------------------------------------------------------------------------------------- training
@dataclass
class IdentifySettings:
    """Settings of :func:`identify_and_train` (the ``identify`` section of the config; defaults in brackets).

    parameters: fields to identify [all of IDENTIFIABLE]; bounds: overrides of DEFAULT_BOUNDS;
    label_free: forces have no data term [True] (False: supervised forces, for comparison);
    weights: {physics_moment, physics_muscle, physics_ode} [1, 1, 1]; identify: train the parameters [True];
    max_epochs [150]; batch_size [16]; learning_rate (network) [3e-3]; parameter_learning_rate [0.03];
    quasi_dynamic [True]; tendon_iterations [1] and tendon_relaxation [1.0] (see :func:`ode_forces`);
    eiv_correction [True]; physics_kinematics: the kinematics of physics_moment and
    physics_muscle, "measured" (the IK data) or "predicted" (the network's, with gradient) ["measured"]; skip_frames: frames at each window start left out of the ODE
    term while the activation settles from a(0) = e(0) [10]; moment_lowpass_hz: the cut-off the measured
    kinematics were low-passed at, applied to the muscle moment of the ODE term too
    (:meth:`MusculoskeletalODE.matched_lowpass`) [None: no filter]; seed [0]; threads [1].
    """

    parameters: list[str] = field(default_factory=lambda: list(IDENTIFIABLE))
    bounds: dict[str, list] = field(default_factory=dict)
    label_free: bool = True
    weights: dict[str, float] = field(default_factory=lambda: {"physics_moment": 1.0, "physics_muscle": 1.0,
                                                               "physics_ode": 1.0})
    identify: bool = True
    max_epochs: int = 150
    batch_size: int = 16
    learning_rate: float = 3e-3
    parameter_learning_rate: float = 0.03
    quasi_dynamic: bool = True
    tendon_iterations: int = 1
    tendon_relaxation: float = 1.0
    eiv_correction: bool = True
    physics_kinematics: str = "measured"
    skip_frames: int = 10
    moment_lowpass_hz: float | None = None
    seed: int = 0
    threads: int = 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "identify") -> "IdentifySettings":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown identify settings {unknown}", field=where, hint=f"known: {sorted(known)}")
        s = cls(**data)
        if s.physics_kinematics not in ("measured", "predicted"):
            raise ConfigError(f"physics_kinematics {s.physics_kinematics!r}: 'measured' or 'predicted'",
                              field=f"{where}.physics_kinematics")
        if s.moment_lowpass_hz is not None and not float(s.moment_lowpass_hz) > 0:
            raise ConfigError(f"moment_lowpass_hz must be a cut-off > 0 Hz (got {s.moment_lowpass_hz!r})",
                              field=f"{where}.moment_lowpass_hz")
        s.weights = {**{"physics_moment": 1.0, "physics_muscle": 1.0, "physics_ode": 1.0}, **dict(s.weights)}
        bad = sorted(set(s.weights) - {"physics_moment", "physics_muscle", "physics_ode"})
        if bad or any(float(v) < 0 for v in s.weights.values()):
            raise ConfigError(f"weights must be physics_moment/physics_muscle/physics_ode >= 0 (got {s.weights})",
                              field=f"{where}.weights")
        return s


@dataclass
class IdentifyResult:
    """A trained network, the identified parameters and the record of the run."""

    model: PICNN
    parameters: BoundedMuscleParameters
    ode: MusculoskeletalODE
    output_labels: list[str]
    history: list[dict[str, float]]
    best_epoch: int
    info: dict[str, Any]
    seconds: float


def _terms(model: PICNN, ode: MusculoskeletalODE, batch: Mapping[str, Tensor], settings: IdentifySettings,
           coord_pos: list[int], force_pos: list[int], force_scale: Tensor) -> dict[str, Tensor]:
    ph = ode.physics
    z = model(batch["emg"], batch["dt_s"])
    targets = batch["targets"]
    y_lab = ph.label_outputs(targets).to(z.dtype)
    z_lab = model.to_standard(y_lab)
    data_pos = coord_pos if settings.label_free else coord_pos + force_pos
    data = ((z[..., data_pos] - z_lab[..., data_pos]) ** 2).mean()
    w = settings.weights
    ode_term, f_ode = ode(batch["emg"], targets, batch["dt_s"])
    pred = model.to_si(z).to(ph.physics_dtype)
    dt = batch["dt_s"].to(ph.physics_dtype)
    # the physics shapes the forces at the measured kinematics (the data), or at the predicted ones
    if settings.physics_kinematics == "predicted":
        q, qd, qdd = ph.kinematics(pred, dt, targets)
    else:
        q, qd, qdd = ode.measured_kinematics(targets, dt)
    forces = pred[..., ph.force_out_idx]
    m_muscle, _ = ph.muscle_moment(q, forces)
    moment = (((m_muscle - ph.net_moment(q, qd, qdd, targets)) / ode.moment_scale) ** 2).mean()
    muscle = (((forces[..., ph.consistency_force_pos] - f_ode.detach()) / force_scale) ** 2).mean()
    total = (data + w["physics_moment"] * moment.to(z.dtype) + w["physics_muscle"] * muscle.to(z.dtype)
             + w["physics_ode"] * ode_term.to(z.dtype))
    return {"total": total, "data": data, "physics_moment": moment, "physics_muscle": muscle, "physics_ode": ode_term}


def identify_and_train(samples: SampleSet, split: Split, assets: PhysicsAssets, coordinates: Sequence[str],
                       muscles: Sequence[str], network: Mapping[str, Any] | None = None,
                       settings: IdentifySettings | Mapping[str, Any] | None = None,
                       excitation_gain: Mapping[str, float] | None = None,
                       kappa: Mapping[str, float] | None = None,
                       physics_spec: Mapping[str, Any] | None = None) -> IdentifyResult:
    """Train a PI-CNN (EMG -> coordinates + forces) with the ODE loss, identifying the muscle parameters.

    samples/split: dataset and its fold (test samples are never used); assets: the GENERIC scaled model's
    surrogate, parameters and chain; coordinates/muscles: network outputs (dataset target names = model
    names); excitation_gain: per EMG muscle (from :func:`mvc_excitation_gain`; default 1: envelopes already
    normalised to excitation); kappa: activation noise ratios (from :func:`activation_noise_ratio`).
    Early stopping: none (a fixed number of epochs; the validation total is logged); the final epoch is kept.
    """
    t0 = time.perf_counter()
    s = settings if isinstance(settings, IdentifySettings) else IdentifySettings.from_dict(settings)
    torch.set_num_threads(s.threads)
    outputs = list(coordinates) + list(muscles)
    missing = [o for o in outputs if o not in samples.target_labels]
    if missing:
        raise ConfigError(f"outputs {missing} are not dataset targets", field="outputs",
                          hint=f"targets: {samples.target_labels}")
    gain = {m: float((excitation_gain or {}).get(m, 1.0)) for m in muscles}
    spec = PhysicsSpec.from_dict({**dict(physics_spec or {}), "excitation_gain": gain, "trainable_gain": False})
    physics = PhysicsLoss(outputs, samples.target_labels, samples.emg_labels, assets.surrogate, assets.params,
                          assets.chain, spec)
    if physics.consistency_muscles != list(muscles):
        raise ConfigError(f"every muscle needs an EMG channel of the same name (have {physics.consistency_muscles})",
                          field="physics.emg_muscles")
    bounded = BoundedMuscleParameters(physics.params, s.parameters, s.bounds)
    for p in bounded.parameters():
        p.requires_grad_(s.identify)
    kap = None
    if s.eiv_correction and kappa is not None:
        kap = torch.tensor([float(kappa.get(m, 0.0)) for m in muscles])
    ode = MusculoskeletalODE(physics, bounded, kap, s.quasi_dynamic, s.skip_frames, s.tendon_iterations,
                             s.tendon_relaxation, s.moment_lowpass_hz)
    train = samples.subset(split.train)
    info: dict[str, Any] = {"moment_scale_nm": ode.calibrate(train.targets, train.dt_s),
                            "excitation_gain": gain, "kappa": None if kap is None else dict(zip(muscles, kap.tolist()))}

    # output standardisation: coordinates from the IK labels; forces from the generic model's EMG-driven forces
    coord_pos = list(range(len(coordinates)))
    force_pos = list(range(len(coordinates), len(outputs)))
    with torch.no_grad():
        _, f_generic = ode(torch.as_tensor(train.emg), torch.as_tensor(train.targets), torch.as_tensor(train.dt_s))
    y_train = train.targets[..., physics.output_to_target]
    y_scale = Standardiser.fit(y_train)
    f_flat = f_generic.reshape(-1, len(muscles)).numpy()
    mean, std = y_scale.mean.copy(), y_scale.std.copy()
    if s.label_free:
        mean[force_pos], std[force_pos] = f_flat.mean(0), np.maximum(f_flat.std(0), 1e-6)
    force_scale = torch.as_tensor(np.maximum(np.sqrt((f_flat**2).mean(0)), 1e-6), dtype=physics.physics_dtype)
    info["force_scale_n"] = dict(zip(muscles, force_scale.tolist()))
    x_scale = Standardiser.fit(train.emg)
    model = build_network(len(samples.emg_labels), len(outputs), network, seed=s.seed,
                          input_labels=samples.emg_labels, output_labels=outputs)
    model.set_scaling(x_scale.mean, x_scale.std, mean, std, float(np.median(train.dt_s)))
    groups = [{"params": list(model.parameters()), "lr": s.learning_rate}]
    if s.identify:
        groups.append({"params": list(bounded.parameters()), "lr": s.parameter_learning_rate})
    optimizer = torch.optim.Adam(groups)
    torch.manual_seed(s.seed)
    loader = make_loader(samples, split.train, s.batch_size, shuffle=True, seed=s.seed)
    val_loader = make_loader(samples, split.val, 256, shuffle=False) if len(split.val) else None
    history: list[dict[str, float]] = []
    for epoch in range(1, s.max_epochs + 1):
        te = time.perf_counter()
        model.train()
        sums = {k: 0.0 for k in ID_TERMS}
        n = 0
        for batch in loader:
            terms = _terms(model, ode, batch, s, coord_pos, force_pos, force_scale)
            if not torch.isfinite(terms["total"]):
                raise ConfigError(f"the loss is not finite ({ {k: float(v) for k, v in terms.items()} })",
                                  field="identify", hint="lower the learning rates or check the physics files")
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            b = int(batch["emg"].shape[0])
            n += b
            for k in ID_TERMS:
                sums[k] += float(terms[k].detach()) * b
        row: dict[str, float] = {"epoch": epoch, **{f"train_{k}": v / max(n, 1) for k, v in sums.items()}}
        if val_loader is not None:
            model.eval()
            with torch.no_grad():
                vs = {k: 0.0 for k in ID_TERMS}
                nv = 0
                for batch in val_loader:
                    terms = _terms(model, ode, batch, s, coord_pos, force_pos, force_scale)
                    b = int(batch["emg"].shape[0])
                    nv += b
                    for k in ID_TERMS:
                        vs[k] += float(terms[k]) * b
            row.update({f"val_{k}": v / max(nv, 1) for k, v in vs.items()})
        for name in bounded.fields:
            for m, v in zip(muscles, bounded.value(name).detach().tolist()):
                row[f"{name}:{m}"] = v
        row["seconds"] = time.perf_counter() - te
        history.append(row)
        if epoch == 1 or epoch % 10 == 0 or epoch == s.max_epochs:
            log.info("epoch %3d/%d  %s (%.2f s)", epoch, s.max_epochs,
                     " ".join(f"{k} {row[f'train_{k}']:.4g}" for k in ID_TERMS), row["seconds"])
    model.eval()
    return IdentifyResult(model, bounded, ode, outputs, history, len(history), info, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_forces(result: IdentifyResult, samples: SampleSet, indices: np.ndarray,
                   params: MuscleParameters | None = None) -> dict[str, np.ndarray]:
    """Forces (n, time, n_muscles) on ``samples[indices]``: ``network`` (the trained network's force outputs)
    and ``ode`` (the EMG-driven DeGroote forces at the measured kinematics with ``params``, default the
    identified ones)."""
    sub = samples.subset(indices)
    ode = result.ode
    p = result.parameters() if params is None else params.to(dtype=ode.physics.physics_dtype)
    emg, tg = torch.as_tensor(sub.emg), torch.as_tensor(sub.targets)
    dt = torch.as_tensor(sub.dt_s, dtype=ode.physics.physics_dtype).reshape(-1)
    q, qd, _ = ode.measured_kinematics(tg, dt)
    state, _ = ode_forces(ode.physics, p, q, qd, ode.activation(emg, dt, p), dt, ode.quasi_dynamic,
                          ode.tendon_iterations, ode.tendon_relaxation)
    pred = result.model.predict(sub.emg, sub.dt_s)
    n_c = len(result.output_labels) - len(ode.physics.consistency_muscles)
    return {"network": pred[..., n_c:], "ode": state.tendon_force_n.numpy(), "coordinates": pred[..., :n_c]}


def save_result(result: IdentifyResult, out_dir: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``identified_parameters.json`` (all parameters, loadable as physics.muscle_parameters),
    ``identification.csv`` (generic vs identified per muscle and parameter), ``history.csv``, ``model.pt``,
    ``identify.json`` (settings, calibration)."""
    from pimsk.learn.metrics import write_csv
    from pimsk.learn.physics_files import save_muscle_parameters

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_muscle_parameters(result.parameters().detach(), out / "identified_parameters.json")
    write_csv(result.parameters.table(), out / "identification.csv")
    write_csv(result.history, out / "history.csv")
    torch.save(result.model.checkpoint(), out / "model.pt")
    doc = {"outputs": result.output_labels, "epochs": result.best_epoch, "seconds": result.seconds,
           **result.info, **dict(extra or {})}
    (out / "identify.json").write_text(json.dumps(doc, indent=1, default=float))
    return out
