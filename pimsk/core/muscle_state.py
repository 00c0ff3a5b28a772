"""Muscle-tendon states of the DeGrooteFregly2016 model in torch: rigid and compliant tendon.

Mirrors OpenSim 4.6 ``DeGrooteFregly2016Muscle`` (calcMuscleLengthInfoHelper, calcFiberVelocityInfoHelper,
calcMuscleDynamicsInfoHelper) so the numbers agree with OpenSim to float64 round-off:

- pennation with constant fiber height w = l_opt sin(alpha_opt): l_f = sqrt((l_MT - l_T)^2 + w^2),
  cos(alpha) = (l_MT - l_T) / l_f, alpha = asin(w / l_f);
- rigid tendon (``ignore_tendon_compliance``): l_T = l_slack, v_f = v_MT cos(alpha);
- compliant tendon: the state is the normalised tendon force f~T (De Groote et al. 2016, formulations 1
  and 3). *Explicit* form: the fiber velocity follows from the inverse force-velocity curve,
  f_V = (f~T / cos(alpha) - f_PE) / (a f_L). *Implicit* form: the fiber velocity follows from the tendon
  force derivative, v~T = (d f~T/dt) / f_T'(l~T), and the muscle-tendon equilibrium residual
  R = f~T - f~fiber cos(alpha) must be zero;
- :func:`solve_norm_tendon_force` finds R = 0 (as OpenSim's computeInitialFiberEquilibrium does, with
  d f~T/dt = 0 by default): a fixed number of Newton steps with no host synchronisation (one fused kernel
  under torch.compile), one convergence check, and Newton's method safeguarded by bisection on [0, 5] for
  the few elements left; the last Newton step is taken with autograd on, which gives exactly the
  implicit-function gradient d f~T/d theta = -(dR/d theta) / (dR/d f~T) at the solution; a previous
  solution may be passed as a warm start; :func:`equilibrium_forces` returns only tendon and fiber force
  (fastest);
- :func:`rigid_tendon_forces` and :func:`compliant_tendon_forces` (explicit form) return only tendon and fiber
  force: the same curves in one elementwise kernel with per-muscle constants precomputed, on a tiled
  state-major layout (rows of whole states spanning whole SIMD registers), agreeing with the full states to
  float64 round-off (tests/unit/test_muscle_forces.py).

Inputs broadcast: MTU length/velocity and activation may be (batch, time, muscle) or any shape whose last
dimension is the muscle dimension of :class:`MuscleParameters` (or broadcastable to it).
Reference: De Groote F et al. (2016) Ann Biomed Eng 44(10):2922-2936.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor

from pimsk.core import degroote as dg
from pimsk.core.muscle_parameters import MuscleParameters

__all__ = [
    "MuscleState",
    "EquilibriumSolution",
    "rigid_tendon_state",
    "compliant_tendon_state",
    "equilibrium_residual",
    "equilibrium_residual_derivative",
    "solve_norm_tendon_force",
    "equilibrium_state",
    "equilibrium_forces",
    "rigid_tendon_forces",
    "compliant_tendon_forces",
    "default_newton_steps",
]

TensorLike = Tensor | float


@dataclass(frozen=True)
class MuscleState:
    """Everything OpenSim's MuscleLengthInfo / FiberVelocityInfo / MuscleDynamicsInfo hold, as tensors.

    Lengths in m, velocities in m/s (positive = lengthening), angles in rad, forces in N;
    ``norm_*``: normalised (see :mod:`pimsk.core.degroote`).
    """

    mtu_length_m: Tensor
    mtu_velocity_mps: Tensor
    activation: Tensor
    tendon_length_m: Tensor
    norm_tendon_length: Tensor
    tendon_strain: Tensor
    fiber_length_m: Tensor
    norm_fiber_length: Tensor
    fiber_length_along_tendon_m: Tensor
    pennation_angle_rad: Tensor
    cos_pennation: Tensor
    sin_pennation: Tensor
    active_force_length_multiplier: Tensor
    passive_force_multiplier: Tensor
    tendon_velocity_mps: Tensor
    norm_tendon_velocity: Tensor
    fiber_velocity_mps: Tensor
    norm_fiber_velocity: Tensor
    fiber_velocity_along_tendon_mps: Tensor
    pennation_angular_velocity_rad_per_s: Tensor
    force_velocity_multiplier: Tensor
    active_fiber_force_n: Tensor
    passive_fiber_elastic_force_n: Tensor
    passive_fiber_damping_force_n: Tensor
    passive_fiber_force_n: Tensor
    fiber_force_n: Tensor
    norm_fiber_force: Tensor
    fiber_force_along_tendon_n: Tensor
    tendon_force_n: Tensor
    norm_tendon_force: Tensor


class EquilibriumSolution(NamedTuple):
    """Result of :func:`solve_norm_tendon_force` (tensors of the broadcast input shape)."""

    norm_tendon_force: Tensor
    residual: Tensor
    converged: Tensor
    iterations: int


# ---------------------------------------------------------------------------------------------- helpers
def _as_tensor(x: TensorLike, p: MuscleParameters) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return torch.as_tensor(x, dtype=p.dtype, device=p.device)


def _length_info(mtu_length: Tensor, norm_tendon_length: Tensor, p: MuscleParameters) -> dict[str, Tensor]:
    """OpenSim calcMuscleLengthInfoHelper: tendon, fiber, pennation and force-length multipliers."""
    tendon_length = p.tendon_slack_length_m * norm_tendon_length
    fiber_along = mtu_length - tendon_length
    width = p.fiber_width_m
    fiber_length = torch.sqrt(fiber_along**2 + width**2)
    norm_fiber_length = fiber_length / p.optimal_fiber_length_m
    sin_penn = width / fiber_length
    passive = dg.passive_force_multiplier(norm_fiber_length, p.passive_fiber_strain_at_one_norm_force)
    passive = torch.where(p.ignore_passive_fiber_force, torch.zeros_like(passive), passive)
    return {
        "mtu_length_m": mtu_length,
        "tendon_length_m": tendon_length,
        "norm_tendon_length": norm_tendon_length,
        "tendon_strain": norm_tendon_length - 1.0,
        "fiber_length_m": fiber_length,
        "norm_fiber_length": norm_fiber_length,
        "fiber_length_along_tendon_m": fiber_along,
        "cos_pennation": fiber_along / fiber_length,
        "sin_pennation": sin_penn,
        "pennation_angle_rad": torch.asin(sin_penn),
        "passive_force_multiplier": passive,
        "active_force_length_multiplier": dg.active_force_length_multiplier(
            norm_fiber_length, p.active_force_width_scale
        ),
    }


def _velocity_from_tendon(
    mtu_velocity: Tensor, norm_tendon_velocity: Tensor, li: dict[str, Tensor], p: MuscleParameters
) -> dict[str, Tensor]:
    """OpenSim calcFiberVelocityInfoHelper, rigid / implicit branch: fiber velocity from tendon velocity."""
    tendon_velocity = p.tendon_slack_length_m * norm_tendon_velocity
    fiber_velocity_along = mtu_velocity - tendon_velocity
    fiber_velocity = fiber_velocity_along * li["cos_pennation"]
    norm_fiber_velocity = fiber_velocity / p.max_contraction_velocity_mps
    return {
        "mtu_velocity_mps": mtu_velocity,
        "norm_tendon_velocity": norm_tendon_velocity,
        "tendon_velocity_mps": tendon_velocity,
        "fiber_velocity_along_tendon_mps": fiber_velocity_along,
        "fiber_velocity_mps": fiber_velocity,
        "norm_fiber_velocity": norm_fiber_velocity,
        "force_velocity_multiplier": dg.force_velocity_multiplier(norm_fiber_velocity),
    }


def _pennation_rate(vi: dict[str, Tensor], li: dict[str, Tensor], p: MuscleParameters) -> Tensor:
    tan_penn = p.fiber_width_m / li["fiber_length_along_tendon_m"]
    return -vi["fiber_velocity_mps"] / li["fiber_length_m"] * tan_penn


def _dynamics(
    activation: Tensor,
    li: dict[str, Tensor],
    vi: dict[str, Tensor],
    p: MuscleParameters,
    norm_tendon_force: Tensor | None,
) -> MuscleState:
    """OpenSim calcFiberForce + calcMuscleDynamicsInfoHelper; ``norm_tendon_force`` None = rigid tendon."""
    f_max = p.max_isometric_force_n
    active = f_max * (activation * li["active_force_length_multiplier"] * vi["force_velocity_multiplier"])
    elastic = f_max * li["passive_force_multiplier"]
    damping = f_max * p.fiber_damping * vi["norm_fiber_velocity"]
    fiber_force = active + elastic + damping
    norm_fiber_force = fiber_force / f_max
    along = fiber_force * li["cos_pennation"]
    if norm_tendon_force is None:
        norm_tendon = norm_fiber_force * li["cos_pennation"]
        tendon_force = along
    else:
        norm_tendon = norm_tendon_force
        tendon_force = f_max * norm_tendon_force
    values = {
        **li,
        **vi,
        "activation": activation,
        "pennation_angular_velocity_rad_per_s": _pennation_rate(vi, li, p),
        "active_fiber_force_n": active,
        "passive_fiber_elastic_force_n": elastic,
        "passive_fiber_damping_force_n": damping,
        "passive_fiber_force_n": elastic + damping,
        "fiber_force_n": fiber_force,
        "norm_fiber_force": norm_fiber_force,
        "fiber_force_along_tendon_n": along,
        "tendon_force_n": tendon_force,
        "norm_tendon_force": norm_tendon,
    }
    shape = torch.broadcast_shapes(*(v.shape for v in values.values()))
    return MuscleState(**{k: v.expand(shape) for k, v in values.items()})


# ---------------------------------------------------------------------------------------------- states
def rigid_tendon_state(
    mtu_length_m: TensorLike, mtu_velocity_mps: TensorLike, activation: TensorLike, params: MuscleParameters
) -> MuscleState:
    """Rigid-tendon state (OpenSim with ignore_tendon_compliance = true): l_T = l_slack, v_T = 0.

    mtu_length_m, mtu_velocity_mps (lengthening positive), activation: (..., n_muscles). Tendon force =
    fiber force along the tendon.
    """
    p = params
    l_mt, v_mt, act = (_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation))
    li = _length_info(l_mt, torch.ones_like(l_mt), p)
    vi = _velocity_from_tendon(v_mt, torch.zeros_like(v_mt), li, p)
    return _dynamics(act, li, vi, p, None)


def compliant_tendon_state(
    mtu_length_m: TensorLike,
    mtu_velocity_mps: TensorLike,
    activation: TensorLike,
    norm_tendon_force: TensorLike,
    params: MuscleParameters,
    norm_tendon_force_derivative: TensorLike | None = None,
) -> MuscleState:
    """Compliant-tendon state with normalised tendon force f~T as the state (De Groote 2016).

    With ``norm_tendon_force_derivative`` None: OpenSim's *explicit* form (fiber velocity from the inverse
    force-velocity curve; the fiber force then equals f~T / cos(alpha) when fiber_damping = 0).
    Otherwise the *implicit* form (fiber velocity from d f~T/dt in 1/s; fiber force from the curves, so
    :func:`equilibrium_residual` may be non-zero).
    """
    p = params
    l_mt, v_mt, act, f_t = (_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force))
    norm_tendon_length = dg.tendon_force_length_inverse(f_t, p.tendon_strain_at_one_norm_force)
    li = _length_info(l_mt, norm_tendon_length, p)
    if norm_tendon_force_derivative is None:
        fv = (f_t / li["cos_pennation"] - li["passive_force_multiplier"]) / (
            act * li["active_force_length_multiplier"]
        )
        norm_fiber_velocity = dg.force_velocity_inverse(fv)
        fiber_velocity = norm_fiber_velocity * p.max_contraction_velocity_mps
        fiber_velocity_along = fiber_velocity / li["cos_pennation"]
        tendon_velocity = v_mt - fiber_velocity_along
        vi = {
            "mtu_velocity_mps": v_mt,
            "force_velocity_multiplier": fv,
            "norm_fiber_velocity": norm_fiber_velocity,
            "fiber_velocity_mps": fiber_velocity,
            "fiber_velocity_along_tendon_mps": fiber_velocity_along,
            "tendon_velocity_mps": tendon_velocity,
            "norm_tendon_velocity": tendon_velocity / p.tendon_slack_length_m,
        }
    else:
        df_t = _as_tensor(norm_tendon_force_derivative, p)
        k_t = p.tendon_stiffness_parameter
        norm_tendon_velocity = df_t / (
            dg.DEGROOTE2016.c1 * k_t * torch.exp(k_t * (norm_tendon_length - dg.DEGROOTE2016.c2))
        )
        vi = _velocity_from_tendon(v_mt, norm_tendon_velocity, li, p)
    return _dynamics(act, li, vi, p, f_t)


def equilibrium_residual(
    mtu_length_m: TensorLike,
    mtu_velocity_mps: TensorLike,
    activation: TensorLike,
    norm_tendon_force: TensorLike,
    params: MuscleParameters,
    norm_tendon_force_derivative: TensorLike = 0.0,
) -> Tensor:
    """Muscle-tendon equilibrium residual f~T - F_fiber cos(alpha) / F_max (implicit form, as OpenSim's
    calcEquilibriumResidual). Dimensionless."""
    state = compliant_tendon_state(
        mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force, params, norm_tendon_force_derivative
    )
    return state.norm_tendon_force - state.fiber_force_along_tendon_n / params.max_isometric_force_n


def equilibrium_residual_derivative(
    mtu_length_m: TensorLike,
    mtu_velocity_mps: TensorLike,
    activation: TensorLike,
    norm_tendon_force: TensorLike,
    params: MuscleParameters,
    norm_tendon_force_derivative: TensorLike = 0.0,
) -> tuple[Tensor, Tensor]:
    """(R, dR/d f~T) of :func:`equilibrium_residual`, the derivative in closed form (chain rule through
    tendon length, pennation, force-length, force-velocity and damping). Used by the Newton solver; R equals
    :func:`equilibrium_residual` up to round-off (shared exponentials, f_T' written as kT (f~T + c3))."""
    p = params
    K = dg.DEGROOTE2016
    l_mt, v_mt, act, f_t, df_t = (
        _as_tensor(x, p)
        for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force, norm_tendon_force_derivative)
    )
    k_t = p.tendon_stiffness_parameter
    l_s = p.tendon_slack_length_m
    l_opt = p.optimal_fiber_length_m
    v_max = p.max_contraction_velocity_mps
    e_pe = p.passive_fiber_strain_at_one_norm_force
    # Tendon length and its derivative with respect to f~T.
    norm_tendon_length = dg.tendon_force_length_inverse(f_t, p.tendon_strain_at_one_norm_force)
    d_norm_tendon_length = 1.0 / (k_t * (f_t + K.c3))
    along = l_mt - l_s * norm_tendon_length
    d_along = -l_s * d_norm_tendon_length
    width = p.fiber_width_m
    fiber_length = torch.sqrt(along**2 + width**2)
    cos_p = along / fiber_length
    d_fiber_length = cos_p * d_along
    d_cos = d_along / fiber_length * (1.0 - cos_p**2)
    norm_fiber_length = fiber_length / l_opt
    d_norm_fiber_length = d_fiber_length / l_opt
    f_l, d_f_l = dg.active_force_length_multiplier_and_derivative(norm_fiber_length, p.active_force_width_scale)
    f_pe, d_f_pe = dg.passive_force_multiplier_and_derivative(norm_fiber_length, e_pe)
    f_pe = torch.where(p.ignore_passive_fiber_force, torch.zeros_like(f_pe), f_pe)
    d_f_pe = torch.where(p.ignore_passive_fiber_force, torch.zeros_like(d_f_pe), d_f_pe)
    # Velocities (implicit form); f_T'(l~T) = c1 kT exp(kT (l~T - c2)) = kT (f~T + c3) on the curve.
    norm_tendon_velocity = df_t / (k_t * (f_t + K.c3))
    d_norm_tendon_velocity = -norm_tendon_velocity * k_t * d_norm_tendon_length
    fiber_velocity_along = v_mt - l_s * norm_tendon_velocity
    d_fiber_velocity_along = -l_s * d_norm_tendon_velocity
    norm_fiber_velocity = fiber_velocity_along * cos_p / v_max
    d_norm_fiber_velocity = (d_fiber_velocity_along * cos_p + fiber_velocity_along * d_cos) / v_max
    f_v, d_f_v_d_v = dg.force_velocity_multiplier_and_derivative(norm_fiber_velocity)
    d_f_v = d_f_v_d_v * d_norm_fiber_velocity
    beta = p.fiber_damping
    norm_fiber_force = act * f_l * f_v + f_pe + beta * norm_fiber_velocity
    d_norm_fiber_force = (
        act * (d_f_l * d_norm_fiber_length * f_v + f_l * d_f_v) + d_f_pe * d_norm_fiber_length
        + beta * d_norm_fiber_velocity
    )
    residual = f_t - norm_fiber_force * cos_p
    d_residual = 1.0 - (d_norm_fiber_force * cos_p + norm_fiber_force * d_cos)
    return residual, d_residual


class _SolverConstants(NamedTuple):
    """Per-muscle constants of the curves, derived once from the parameters (shape (n,), one period of the
    tiled layout (see :func:`_tile_parts`), or in the fallback one entry per unconverged element).
    Reciprocals are precomputed so that the fused kernels spend their time on the curves, not on divisions by
    parameters (nor on sin(alpha_opt) and log per element)."""

    slack_length_m: Tensor
    tendon_offset_m: Tensor  # l_s (c2 - log(c1) / kT): tendon length = this + (l_s / kT) log(f~T + c3)
    slack_over_kt_m: Tensor  # l_s / kT
    width_sq_m2: Tensor
    inv_optimal_fiber_length: Tensor
    inv_width_scale: Tensor
    passive_rate: Tensor  # kpe / e0
    passive_offset: Tensor  # offset / (exp(kpe) - offset); 0 where ignore_passive_fiber_force
    passive_scale: Tensor  # 1 / (exp(kpe) - offset); 0 where ignore_passive_fiber_force
    inv_max_velocity: Tensor
    damping: Tensor
    max_force_n: Tensor

    def take(self, index: Tensor) -> "_SolverConstants":
        return _SolverConstants(*(x.index_select(0, index) for x in self))


def _solver_constants(p: MuscleParameters) -> _SolverConstants:
    K = dg.DEGROOTE2016
    k_t = p.tendon_stiffness_parameter
    l_s = p.tendon_slack_length_m
    e0 = p.passive_fiber_strain_at_one_norm_force
    offset = torch.exp(K.kpe * (K.min_norm_fiber_length - 1.0) / e0)
    scale = torch.where(p.ignore_passive_fiber_force, torch.zeros_like(offset), 1.0 / (math.exp(K.kpe) - offset))
    return _SolverConstants(
        l_s, l_s * (K.c2 - math.log(K.c1) / k_t), l_s / k_t, p.fiber_width_m**2, 1.0 / p.optimal_fiber_length_m,
        1.0 / p.active_force_width_scale, K.kpe / e0, offset * scale, scale, 1.0 / p.max_contraction_velocity_mps,
        p.fiber_damping, p.max_isometric_force_n,
    )


def _residual_and_slope(
    f_t: Tensor, l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor | None, c: _SolverConstants
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(R, dR/d f~T, normalised fiber force, its derivative d f~F / d f~T) of the implicit-form equilibrium
    residual; df_t None means 0.

    Same model as :func:`equilibrium_residual_derivative`, written for one fused kernel: exponentials shared
    between value and slope, reciprocals of parameters precomputed, the five reciprocals of each evaluation
    taken with two divisions. Agrees with it to a few ulps (the solution is checked with the same residual
    and the final state is computed by :func:`compliant_tendon_state`)."""
    K = dg.DEGROOTE2016
    fc3 = f_t + K.c3
    along = l_mt - c.tendon_offset_m - c.slack_over_kt_m * torch.log(fc3)
    lf_sq = along * along + c.width_sq_m2
    lf = torch.sqrt(lf_sq)
    inv_a = 1.0 / (fc3 * lf)
    inv_fc3 = lf * inv_a
    inv_lf = fc3 * inv_a
    d_along = -c.slack_over_kt_m * inv_fc3
    cos_p = along * inv_lf
    norm_lf = lf * c.inv_optimal_fiber_length
    d_norm_lf = cos_p * d_along * c.inv_optimal_fiber_length
    d_cos = d_along * inv_lf * (1.0 - cos_p * cos_p)
    x = (norm_lf - 1.0) * c.inv_width_scale + 1.0
    # Fiber velocity (implicit form): v~T = (d f~T/dt) / (kT (f~T + c3)).
    if df_t is None:
        norm_v = v_mt * cos_p * c.inv_max_velocity
        d_norm_v = v_mt * d_cos * c.inv_max_velocity
    else:
        tendon_v = c.slack_over_kt_m * df_t * inv_fc3
        along_v = v_mt - tendon_v
        norm_v = along_v * cos_p * c.inv_max_velocity
        d_norm_v = (tendon_v * inv_fc3 * cos_p + along_v * d_cos) * c.inv_max_velocity
    t = K.d2 * norm_v + K.d3
    root = torch.sqrt(t * t + 1.0)
    # Active force-length: three Gaussian-like terms, the third with b43 = 0 (constant denominator).
    den1 = K.b31 + K.b41 * x
    den2 = K.b32 + K.b42 * x
    den12 = den1 * den2
    inv_b = 1.0 / (den12 * root)
    inv_root = den12 * inv_b
    inv_den12 = root * inv_b
    f_l = torch.zeros_like(x)
    d_f_l = torch.zeros_like(x)
    for (b1, b2, b3, b4), inv_den in (((K.b11, K.b21, K.b31, K.b41), den2 * inv_den12),
                                      ((K.b12, K.b22, K.b32, K.b42), den1 * inv_den12)):
        z = (x - b2) * inv_den
        term = b1 * torch.exp(-0.5 * z * z)
        f_l = f_l + term
        d_f_l = d_f_l - term * z * ((b3 + b2 * b4) * inv_den * inv_den)
    z = (x - K.b23) * (1.0 / K.b33)
    term = K.b13 * torch.exp(-0.5 * z * z)
    f_l = f_l + term
    d_f_l = (d_f_l - term * z * (1.0 / K.b33)) * c.inv_width_scale
    # Passive force-length.
    growth = torch.exp(c.passive_rate * (norm_lf - 1.0)) * c.passive_scale
    f_pe = growth - c.passive_offset
    d_f_pe = c.passive_rate * growth
    f_v = K.d1 * torch.log(t + root) + K.d4
    d_f_v = (K.d1 * K.d2) * inv_root
    force = act * f_l * f_v + f_pe + c.damping * norm_v
    d_force = act * (d_f_l * d_norm_lf * f_v + f_l * d_f_v * d_norm_v) + d_f_pe * d_norm_lf + c.damping * d_norm_v
    residual = f_t - force * cos_p
    slope = 1.0 - (d_force * cos_p + force * d_cos)
    return residual, slope, force, d_force


def _fixed_newton(
    start: Tensor | float, l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor | None, c: _SolverConstants,
    steps: int, tol: float, forces: bool, float32_steps: int = 0,
) -> tuple[Tensor, ...]:
    """``float32_steps`` plain Newton steps in float32 (cheaper transcendentals; for float64 inputs), then
    ``steps`` in the inputs' dtype, from ``start``, with no data-dependent control flow (one fused kernel
    when compiled); then R, dR/df and the fiber force at the result in the inputs' dtype. status (int8): 0
    where |R| <= tol with f~T in OpenSim's bounds [0, 5], ``OUT_OF_BOUNDS`` where |R| <= tol outside them,
    ``UNCONVERGED`` elsewhere (NaN included). Returns (f~T, R, dR/df, norm fiber force, status).

    With ``forces`` the last of the ``steps`` evaluations doubles as the check (one pass over the curves
    fewer): its iterate is kept where |R| <= tol there; else the Newton step from it is taken and kept
    where the a-posteriori estimate of the residual after it, |R'| |d_k|^3 / d_(k-1)^2 for the quadratic
    convergence of the last two steps d (Newton's e_(k+1) ~ C e_k^2 with C ~ |d_k| / d_(k-1)^2), is at most
    tol / 4 and |d_k| <= sqrt(tol) (the estimate holds in the quadratic regime only: after a wild early step
    d_(k-1) it is far too small), with the fiber force carried to it to first order (error O(d_k^2)).
    Returns (tendon force N, fiber force N, status)."""
    K = dg.DEGROOTE2016
    f_t = torch.full_like(l_mt, start) if isinstance(start, float) else start
    previous_step: Tensor | None = None
    if float32_steps:
        low = [x.to(torch.float32) for x in (f_t, l_mt, v_mt, act)]
        low_rate = None if df_t is None else df_t.to(torch.float32)
        low_c = _SolverConstants(*(x.to(torch.float32) for x in c))
        f_low = low[0]
        for _ in range(float32_steps):
            residual, slope, *_ = _residual_and_slope(f_low, *low[1:], low_rate, low_c)
            f_low = f_low - residual / slope
        f_t = torch.where(torch.isfinite(f_low), f_low.to(l_mt.dtype), f_t)
    checked_steps = steps - 1 if forces and steps >= 2 else steps
    for _ in range(checked_steps):
        residual, slope, *_ = _residual_and_slope(f_t, l_mt, v_mt, act, df_t, c)
        previous_step = residual / slope
        f_t = f_t - previous_step
    residual, slope, force, d_force = _residual_and_slope(f_t, l_mt, v_mt, act, df_t, c)
    converged = residual.abs() <= tol
    if forces and previous_step is not None:
        step = residual / slope
        estimate = slope.abs() * step.abs() ** 3 / (previous_step * previous_step)
        small = step.abs() <= math.sqrt(tol)  # in the quadratic regime, not after a wild first step
        take_step = ~converged & small & (estimate <= 0.25 * tol)
        f_t = torch.where(take_step, f_t - step, f_t)
        force = torch.where(take_step, force - d_force * step, force)
        converged = converged | take_step
    in_bounds = (f_t >= K.min_norm_tendon_force) & (f_t <= K.max_norm_tendon_force)
    status = torch.where(converged, torch.where(in_bounds, 0, OUT_OF_BOUNDS), UNCONVERGED).to(torch.int8)
    if forces:
        return c.max_force_n * f_t, c.max_force_n * force, status
    return f_t, residual, slope, force, status


def _bracket_ends(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor | None, c: _SolverConstants
) -> tuple[Tensor, Tensor, Tensor]:
    """(R(0), R(5), bracketed): R at OpenSim's bounds f~T = 0 and 5 and whether R changes sign on [0, 5] (R
    finite at both ends)."""
    K = dg.DEGROOTE2016
    r_lo, *_ = _residual_and_slope(torch.full_like(l_mt, K.min_norm_tendon_force), l_mt, v_mt, act, df_t, c)
    r_hi, *_ = _residual_and_slope(torch.full_like(l_mt, K.max_norm_tendon_force), l_mt, v_mt, act, df_t, c)
    return r_lo, r_hi, (r_lo * r_hi <= 0) & torch.isfinite(r_lo) & torch.isfinite(r_hi)


def _bracket_start(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor | None, c: _SolverConstants, start: Tensor, tol: float
) -> tuple[Tensor, ...]:
    """Bracket [0, 5] and its residual signs; the start point: ``start`` where it is finite and, if R changes
    sign on [0, 5], inside the bracket (without a sign change plain Newton goes on from it, so a root found
    outside [0, 5] is kept), else the rigid-tendon force -R(0) clamped to [0, 5]; R, dR/df, fiber force and
    ``done`` there."""
    K = dg.DEGROOTE2016
    lo = torch.full_like(l_mt, K.min_norm_tendon_force)
    hi = torch.full_like(l_mt, K.max_norm_tendon_force)
    r_lo, _, bracketed = _bracket_ends(l_mt, v_mt, act, df_t, c)
    keep = torch.isfinite(start) & (~bracketed | ((start >= lo) & (start <= hi)))
    # R(0) = -(fiber force along the tendon at slack length): the rigid-tendon force.
    rigid = torch.nan_to_num(-r_lo, nan=0.5 * (K.min_norm_tendon_force + K.max_norm_tendon_force))
    x = torch.where(keep, start, torch.minimum(torch.maximum(rigid, lo), hi))
    r, dr, force, _ = _residual_and_slope(x, l_mt, v_mt, act, df_t, c)
    done = r.abs() <= tol
    return x, lo, hi, r, dr, force, bracketed, r_lo < 0, done


def _bracket_step(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor | None, c: _SolverConstants, x: Tensor, lo: Tensor,
    hi: Tensor, r: Tensor, dr: Tensor, force: Tensor, bracketed: Tensor, lo_negative: Tensor, done: Tensor,
    tol: float, eps: float,
) -> tuple[Tensor, ...]:
    """One Newton step safeguarded by bisection inside the bracket (plain Newton without one) for every
    element not ``done``; returns (x, lo, hi, r, dr, force, done) with ``done`` updated after the step
    (|R| <= tol, non-finite without a bracket, or a bracket shrunk to round-off)."""
    root_right = (r < 0) == lo_negative
    lo = torch.where(bracketed & root_right & ~done, x, lo)
    hi = torch.where(bracketed & ~root_right & ~done, x, hi)
    x_new = x - r / dr
    bisect = bracketed & (~torch.isfinite(x_new) | (x_new <= lo) | (x_new >= hi))
    x_new = torch.where(bisect, 0.5 * (lo + hi), x_new)
    x = torch.where(done, x, x_new)
    r_new, dr_new, force_new, _ = _residual_and_slope(x, l_mt, v_mt, act, df_t, c)
    r = torch.where(done, r, r_new)
    dr = torch.where(done, dr, dr_new)
    force = torch.where(done, force, force_new)
    stalled = bracketed & ((hi - lo) <= 4.0 * eps * torch.clamp(hi.abs(), min=1.0))
    done = done | (r.abs() <= tol) | ~torch.isfinite(x) | stalled  # non-finite: diverged without a bracket
    return x, lo, hi, r, dr, force, done


def _gather(
    idx: Tensor, n_muscles: int, l_all: Tensor, v_all: Tensor, a_all: Tensor, rate_all: Tensor | None,
    table: _SolverConstants,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, _SolverConstants]:
    """(l_MT, v_MT, a, d f~T/dt or None, per-element constants) at the flat elements ``idx`` of state-major
    (n_states x n_muscles,) inputs, the constants taken from the per-muscle ``table`` (shape (n_muscles,));
    inside a compiled kernel the gathers fuse with the work on them."""
    c = _SolverConstants(*(x[torch.remainder(idx, n_muscles)] for x in table))
    l_mt, v_mt, act = (x[idx] for x in (l_all, v_all, a_all))
    return l_mt, v_mt, act, None if rate_all is None else rate_all[idx], c


def _gathered_bracket_steps(
    idx: Tensor, n_muscles: int, l_all: Tensor, v_all: Tensor, a_all: Tensor, rate_all: Tensor | None,
    start_all: Tensor, table: _SolverConstants, tol: float, eps: float, steps: int, start_in_newtons: bool,
) -> tuple[Tensor, ...]:
    """The first ``steps`` iterations of the safeguarded solver (:func:`_bracket_start`, :func:`_bracket_step`)
    on the flat elements ``idx`` of the state-major (n_states x n_muscles,) inputs, with no host sync: the
    gathers of inputs and per-muscle constants (``table``, shape (n_muscles,)) happen inside the kernel (one
    fused kernel when compiled). ``start_in_newtons``: ``start_all`` is a tendon force in N. Returns (f~T, R,
    dR/df, norm fiber force, done), each (k,)."""
    l_mt, v_mt, act, rate, c = _gather(idx, n_muscles, l_all, v_all, a_all, rate_all, table)
    start = start_all[idx] / c.max_force_n if start_in_newtons else start_all[idx]
    x, lo, hi, r, dr, force, bracketed, lo_negative, done = _bracket_start(l_mt, v_mt, act, rate, c, start, tol)
    for _ in range(steps):
        x, lo, hi, r, dr, force, done = _bracket_step(
            l_mt, v_mt, act, rate, c, x, lo, hi, r, dr, force, bracketed, lo_negative, done, tol, eps
        )
    return x, r, dr, force, done


def _gathered_no_sign_change(
    idx: Tensor, n_muscles: int, l_all: Tensor, v_all: Tensor, a_all: Tensor, rate_all: Tensor | None,
    table: _SolverConstants,
) -> Tensor:
    """Whether R has no sign change on OpenSim's bounds [0, 5] (R finite at both ends) at the flat elements
    ``idx``, gathered inside the kernel as in :func:`_gathered_bracket_steps`: where a root found outside
    the bounds is kept (see :func:`_bracket_start`). Shape (k,), bool."""
    l_mt, v_mt, act, rate, c = _gather(idx, n_muscles, l_all, v_all, a_all, rate_all, table)
    r_lo, r_hi, bracketed = _bracket_ends(l_mt, v_mt, act, rate, c)
    return ~bracketed & torch.isfinite(r_lo) & torch.isfinite(r_hi)


def _safeguarded_newton(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor | None, c: _SolverConstants, start: Tensor,
    max_iterations: int, tol: float, eps: float, compile: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """Newton safeguarded by bisection on OpenSim's bounds [0, 5] where R changes sign there (plain Newton
    elsewhere), see :func:`_bracket_start`. Flat (k,) tensors with per-element constants; a host sync per
    iteration (on the few elements the fast path left). Returns (f~T, R, dR/df, norm fiber force,
    iterations)."""
    begin = _compiled("bracket_start") if compile else _bracket_start
    step = _compiled("bracket_step") if compile else _bracket_step
    x, lo, hi, r, dr, force, bracketed, lo_negative, done = begin(l_mt, v_mt, act, df_t, c, start, tol)
    iterations = 0
    while iterations < max_iterations and not bool(done.all()):
        x, lo, hi, r, dr, force, done = step(
            l_mt, v_mt, act, df_t, c, x, lo, hi, r, dr, force, bracketed, lo_negative, done, tol, eps
        )
        iterations += 1
    return x, r, dr, force, iterations


_COMPILED: dict[str, object] = {}
# Fused multiply-adds in the C++ of the elementwise kernels (inductor compiles with -ffp-contract=off by default).
_KERNEL_OPTIONS = {"cpp.enable_floating_point_contract_flag": "fast"}
# Iterations of the safeguarded fallback run in one kernel without a host sync (most elements need <= 2).
FALLBACK_FIXED_STEPS = 2
# f~T the fast path starts from without an initial guess: near the typical equilibrium of submaximal states
# (median 0.15-0.4 for random and walking states of the gait2392 knee and wrist muscles); from 0.5 Newton
# overshoots towards f~T < 0 more often (fast-path rejections, f32 knee / wrist: 6.4 / 3.2 % from 0.5, 5.3 / 1.4 %
# from 0.25; bench/bench_muscle.py states).
COLD_START = 0.25
# Fast-path status codes (0: converged in OpenSim's bounds [0, 5]).
OUT_OF_BOUNDS, UNCONVERGED = 1, 2


def _compiled(name: str):
    """torch.compile'd pieces (fused elementwise kernels), built on first use; the fallback's pieces see a
    different number of elements each call (dynamic shapes)."""
    if name not in _COMPILED:
        if name in ("newton", "newton_tail"):
            _COMPILED[name] = torch.compile(_fixed_newton, options=_KERNEL_OPTIONS)
        elif name == "state":
            _COMPILED[name] = torch.compile(compliant_tendon_state)
        elif name.startswith(("_rigid_forces_kernel", "_explicit_forces_kernel")):
            kernel = _rigid_forces_kernel if name.startswith("_rigid") else _explicit_forces_kernel
            _COMPILED[name] = torch.compile(kernel, options=_KERNEL_OPTIONS)
        elif name in ("gathered_bracket_steps", "gathered_no_sign_change"):
            fn = _gathered_bracket_steps if name == "gathered_bracket_steps" else _gathered_no_sign_change
            _COMPILED[name] = torch.compile(fn, dynamic=True, options=_KERNEL_OPTIONS)
        else:
            fn = {"bracket_start": _bracket_start, "bracket_step": _bracket_step}[name]
            _COMPILED[name] = torch.compile(fn, dynamic=True)
    return _COMPILED[name]


def default_newton_steps(dtype: torch.dtype, warm: bool = False) -> tuple[int, int]:
    """(float32_steps, newton_steps) of the fast path. Cold start (f~T = ``COLD_START``): float64 takes 3
    Newton steps in float32 (about 1.7x cheaper transcendentals) and 2 in float64, float32 takes 3; together
    with the check (in the forces-only path the last step's evaluation, see :func:`_fixed_newton`) they bring
    95-99 % of random in-domain states of the gait2392 knee and wrist muscles to |R| <= 64 eps in [0, 5],
    the same share as 5 or 6 float64 steps (of the rest, about 3 % of the knee states have their only root
    outside [0, 5]: kept after a sign check; the others go to the safeguarded fallback). From a warm start
    (``initial_guess`` within ~0.1 of the root) float64 takes one float32 step and 2 float64 steps, float32
    again 3. (A warm start along time saves little: at
    100 Hz gait the previous frame's force is off by up to 0.14 F_max, median 0.01.)"""
    if dtype == torch.float64:
        return (1, 2) if warm else (3, 2)
    return (0, 3)


class _Solved(NamedTuple):
    norm_tendon_force: Tensor
    residual: Tensor
    slope: Tensor
    norm_fiber_force: Tensor
    iterations: int


class _Forces(NamedTuple):
    tendon_force_n: Tensor
    fiber_force_n: Tensor
    iterations: int


def _fallback(
    out: list[Tensor], idx: Tensor, status: Tensor, args: list[Tensor], rate: Tensor | None, c: _SolverConstants,
    m: int, max_iterations: int, tol: float, eps: float, compile: bool, forces: bool,
) -> int:
    """The elements ``idx`` the fast path left (flat, state-major), solved in place in ``out`` ((f~T, R, dR/df,
    norm fiber force), or with ``forces`` (tendon force N, fiber force N)). A root the fast path found
    outside [0, 5] is kept where R has no sign change on [0, 5] (two evaluations); the rest go to the
    safeguarded solver: its first ``FALLBACK_FIXED_STEPS`` iterations in one kernel, then the rare rest
    with a host sync per step. Returns the iterations taken."""
    def kernel(name: str, fn):
        return _compiled(name) if compile else fn

    outside = idx[status == OUT_OF_BOUNDS]
    redo = idx[status == UNCONVERGED]
    if outside.numel():
        keep = kernel("gathered_no_sign_change", _gathered_no_sign_change)(outside, m, *args, rate, c)
        redo = torch.cat([redo, outside[~keep]])
    if not redo.numel():
        return 0
    fixed = min(FALLBACK_FIXED_STEPS, max_iterations)
    x, r, dr, force, done = kernel("gathered_bracket_steps", _gathered_bracket_steps)(
        redo, m, *args, rate, out[0], c, tol, eps, fixed, forces
    )
    iterations = fixed
    left = torch.nonzero(~done).squeeze(1)
    if left.numel():
        sub_idx = redo.index_select(0, left)
        c_sub = c.take(torch.remainder(sub_idx, m))
        sub = [a.index_select(0, sub_idx) for a in args]
        sub_rate = None if rate is None else rate.index_select(0, sub_idx)
        solved = _safeguarded_newton(*sub, sub_rate, c_sub, x.index_select(0, left), max_iterations - fixed, tol,
                                     eps, compile)
        for full, part in zip((x, r, dr, force), solved[:4]):
            full.index_copy_(0, left, part)
        iterations += solved[4]
    if forces:
        scale = c.max_force_n.index_select(0, torch.remainder(redo, m))
        parts = (scale * x, scale * force)
    else:
        parts = (x, r, dr, force)
    for full, part in zip(out, parts):
        full.index_copy_(0, redo, part)
    return iterations


def _solve(
    inputs: list[Tensor], p: MuscleParameters, initial_guess: Tensor | None, newton_steps: int | None,
    max_iterations: int, tol: float, compile: bool, forces: bool = False, float32_steps: int | None = None,
) -> _Solved | _Forces:
    """Fast path (fixed Newton steps, no host sync) + one check + safeguarded fallback on the rest. No grad.

    The work runs on the tiled state-major layout of :func:`_tile_parts` (rows of whole states filling whole
    SIMD registers, the per-muscle constants repeated along the row): full vector lanes whatever the number
    of muscles, without transposing inputs or results; the results are contiguous (..., n_muscles).
    ``forces``: return tendon and fiber force (N) instead of f~T, R, dR/df."""
    shape = torch.broadcast_shapes(*(x.shape for x in inputs), (p.n_muscles,))
    m = p.n_muscles
    eps = torch.finfo(p.dtype).eps
    c = _solver_constants(p)
    l_mt, v_mt, act, df_t = inputs
    args = [x.expand(shape).reshape(-1) for x in (l_mt, v_mt, act)]
    zero_rate = df_t.numel() == 1 and not bool(df_t.reshape(-1)[0] != 0)
    rate = None if zero_rate else df_t.expand(shape).reshape(-1)
    low_steps, steps = default_newton_steps(p.dtype, warm=initial_guess is not None)
    steps = steps if newton_steps is None else newton_steps
    low_steps = low_steps if float32_steps is None else float32_steps
    low_steps = low_steps if p.dtype == torch.float64 else 0
    if initial_guess is None:
        start: Tensor | None = None
    else:
        start = initial_guess.detach().to(p.dtype).expand(shape).reshape(-1)
        start = torch.nan_to_num(start, nan=COLD_START).clamp(dg.DEGROOTE2016.min_norm_tendon_force,
                                                              dg.DEGROOTE2016.max_norm_tendon_force)
    results = []
    for leftover, (part_start, *part_args, part_rate) in _tile_parts([start, *args, rate], m, p.dtype):
        # Whole rows and the leftover states compile separately (each keeps its own static shape).
        newton = _compiled("newton_tail" if leftover else "newton") if compile else _fixed_newton
        consts = _SolverConstants(*(x.repeat(part_args[0].shape[1] // m) for x in c))
        first = COLD_START if part_start is None else part_start
        results.append(newton(first, *part_args, part_rate, consts, steps, tol, forces, low_steps))
    out = _join(results)
    status = out.pop()
    iterations = low_steps + steps
    idx = torch.nonzero(status).squeeze(1)  # the one host sync of the fast path
    if idx.numel():
        iterations += _fallback(out, idx, status.index_select(0, idx), args, rate, c, m, max_iterations, tol, eps,
                                compile, forces)
    if forces:
        return _Forces(out[0].view(shape), out[1].view(shape), iterations)
    return _Solved(*(x.view(shape) for x in out), iterations)


def _implicit_step(inputs: list[Tensor], p: MuscleParameters, solved: _Solved) -> Tensor:
    """f~T with autograd: one Newton step recorded at the root, x* - R(x*; theta) / (dR/df)(x*), whose value
    is x* and whose gradient is the implicit-function gradient -(dR/d theta) / (dR/d f~T)."""
    x_star = solved.norm_tendon_force
    if not torch.is_grad_enabled():
        return x_star
    r_graph = equilibrium_residual(*inputs[:3], x_star, p, inputs[3])
    return x_star - r_graph / solved.slope


def solve_norm_tendon_force(
    mtu_length_m: TensorLike,
    mtu_velocity_mps: TensorLike,
    activation: TensorLike,
    params: MuscleParameters,
    norm_tendon_force_derivative: TensorLike = 0.0,
    *,
    max_iterations: int = 60,
    tolerance: float | None = None,
    compile: bool = False,
    initial_guess: TensorLike | None = None,
    newton_steps: int | None = None,
    float32_steps: int | None = None,
) -> EquilibriumSolution:
    """Normalised tendon force f~T in muscle-tendon equilibrium (R = 0, implicit form).

    Fast path: ``float32_steps`` plain Newton steps in float32 (float64 inputs only) and ``newton_steps`` in
    the inputs' dtype (defaults: :func:`default_newton_steps`) from f~T = ``COLD_START`` (0.25) or from
    ``initial_guess`` (e.g. a previous solution), with no host synchronisation (one fused kernel with
    ``compile=True``); then one check in the inputs' dtype, and the elements with |R| > ``tolerance`` or outside OpenSim's bounds [0, 5]
    are solved again by Newton's method safeguarded by bisection on [0, 5] (where R changes sign there;
    plain Newton elsewhere, which keeps a root outside [0, 5] when there is none inside), up to
    ``max_iterations``. Where R has several roots in [0, 5] the one found may differ from OpenSim's
    bisection. The returned f~T is differentiable with respect to the inputs and every float parameter: a
    final Newton step is recorded by autograd, which at the root equals the implicit-function gradient
    -(dR/d theta) / (dR/d f~T). ``tolerance`` on |R| defaults to 64 machine epsilons of the dtype;
    ``iterations``: fixed steps + the fallback's iterations. Shapes: (..., n_muscles).
    """
    p = params
    inputs = [_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force_derivative)]
    shape = torch.broadcast_shapes(*(x.shape for x in inputs), (p.n_muscles,))
    eps = torch.finfo(p.dtype).eps
    tol = 64.0 * eps if tolerance is None else tolerance
    guess = None if initial_guess is None else _as_tensor(initial_guess, p)
    with torch.no_grad():
        solved = _solve([x.detach() for x in inputs], p.detach(), guess, newton_steps, max_iterations, tol, compile,
                        float32_steps=float32_steps)
    f_t = _implicit_step(inputs, p, solved)
    converged = solved.residual.abs() <= max(tol, 1e3 * eps)
    return EquilibriumSolution(f_t.expand(shape), solved.residual, converged, solved.iterations)


def _split_rigid(p: MuscleParameters, inputs: list[Tensor], solver_options: dict):
    """Mixed rigid / compliant muscles: index tensors, the two parameter sets, the inputs of each group
    (broadcast to the full shape) and the solver options of the compliant group (initial_guess indexed)."""
    shape = torch.broadcast_shapes(*(x.shape for x in inputs), (p.n_muscles,))
    full = [x.expand(shape) for x in inputs]
    idx_r = torch.nonzero(p.ignore_tendon_compliance).flatten()
    idx_c = torch.nonzero(~p.ignore_tendon_compliance).flatten()
    p_r = p.select([p.names[i] for i in idx_r.tolist()])
    p_c = p.select([p.names[i] for i in idx_c.tolist()])
    options = dict(solver_options)
    if options.get("initial_guess") is not None:
        options["initial_guess"] = _as_tensor(options["initial_guess"], p).expand(shape).index_select(-1, idx_c)
    rigid_inputs = [x.index_select(-1, idx_r) for x in full[:3]]
    compliant_inputs = [x.index_select(-1, idx_c) for x in full]
    return shape, idx_r, idx_c, p_r, p_c, rigid_inputs, compliant_inputs, options


def _merge(shape: torch.Size, idx_r: Tensor, idx_c: Tensor, a: Tensor, b: Tensor) -> Tensor:
    merged = torch.zeros(shape, dtype=a.dtype, device=a.device)
    return merged.index_copy(-1, idx_r, a).index_copy(-1, idx_c, b)


def equilibrium_state(
    mtu_length_m: TensorLike,
    mtu_velocity_mps: TensorLike,
    activation: TensorLike,
    params: MuscleParameters,
    norm_tendon_force_derivative: TensorLike = 0.0,
    **solver_options,
) -> MuscleState:
    """State of every muscle at given MTU length, velocity and activation (..., n_muscles).

    Muscles with ``ignore_tendon_compliance`` get the rigid-tendon state; the others the compliant state
    (implicit form with the given d f~T/dt, default 0) at the equilibrium f~T of
    :func:`solve_norm_tendon_force`. Differentiable throughout. ``solver_options`` go to the solver
    (max_iterations, tolerance, compile, initial_guess, newton_steps, float32_steps).
    """
    p = params
    rigid = p.ignore_tendon_compliance
    if bool(rigid.all()):
        return rigid_tendon_state(mtu_length_m, mtu_velocity_mps, activation, p)
    inputs = [_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force_derivative)]

    def compliant(q: MuscleParameters, l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor,
                  options: dict) -> MuscleState:
        sol = solve_norm_tendon_force(l_mt, v_mt, act, q, df_t, **options)
        state_fn = _compiled("state") if options.get("compile") and not torch.is_grad_enabled() else (
            compliant_tendon_state
        )
        return state_fn(l_mt, v_mt, act, sol.norm_tendon_force, q, df_t)

    if not bool(rigid.any()):
        return compliant(p, *inputs, solver_options)
    # Mixed: evaluate each group on its own muscles only (no NaN from the other model leaks into gradients).
    shape, idx_r, idx_c, p_r, p_c, in_r, in_c, options = _split_rigid(p, inputs, solver_options)
    s_r = rigid_tendon_state(*in_r, p_r)
    s_c = compliant(p_c, *in_c, options)
    return MuscleState(**{
        f.name: _merge(shape, idx_r, idx_c, getattr(s_r, f.name), getattr(s_c, f.name)) for f in fields(MuscleState)
    })


def equilibrium_forces(
    mtu_length_m: TensorLike,
    mtu_velocity_mps: TensorLike,
    activation: TensorLike,
    params: MuscleParameters,
    norm_tendon_force_derivative: TensorLike = 0.0,
    *,
    max_iterations: int = 60,
    tolerance: float | None = None,
    compile: bool = False,
    initial_guess: TensorLike | None = None,
    newton_steps: int | None = None,
    float32_steps: int | None = None,
) -> tuple[Tensor, Tensor]:
    """(tendon force, fiber force) in N at muscle-tendon equilibrium, (..., n_muscles) each: the
    ``tendon_force_n`` and ``fiber_force_n`` of :func:`equilibrium_state` without the other fields.

    Without autograd the fiber force is the one the solver evaluated at its last iterate (no extra pass over
    the curves), so the whole computation is one fused kernel plus the fallback (``compile=True``). With
    autograd both forces come from the compliant state at the implicit-gradient f~T (differentiable).
    Options as :func:`solve_norm_tendon_force`; rigid-tendon muscles get their rigid-tendon forces.
    """
    p = params
    inputs = [_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force_derivative)]
    options = dict(max_iterations=max_iterations, tolerance=tolerance, compile=compile, initial_guess=initial_guess,
                   newton_steps=newton_steps, float32_steps=float32_steps)
    rigid = p.ignore_tendon_compliance
    if bool(rigid.all()):
        s = rigid_tendon_state(*inputs[:3], p)
        return s.tendon_force_n, s.fiber_force_n
    if bool(rigid.any()):
        shape, idx_r, idx_c, p_r, p_c, in_r, in_c, opts = _split_rigid(p, inputs, options)
        s_r = rigid_tendon_state(*in_r, p_r)
        t_c, f_c = equilibrium_forces(*in_c[:3], p_c, in_c[3], **opts)
        return _merge(shape, idx_r, idx_c, s_r.tendon_force_n, t_c), _merge(shape, idx_r, idx_c, s_r.fiber_force_n, f_c)
    shape = torch.broadcast_shapes(*(x.shape for x in inputs), (p.n_muscles,))
    tol = 64.0 * torch.finfo(p.dtype).eps if tolerance is None else tolerance
    guess = None if initial_guess is None else _as_tensor(initial_guess, p)
    grad = torch.is_grad_enabled()
    with torch.no_grad():
        solved = _solve([x.detach() for x in inputs], p.detach(), guess, newton_steps, max_iterations, tol, compile,
                        forces=not grad, float32_steps=float32_steps)
    if not grad:
        return solved.tendon_force_n, solved.fiber_force_n
    f_t = _implicit_step(inputs, p, solved)
    state = compliant_tendon_state(*inputs[:3], f_t.expand(shape), p, inputs[3])
    return state.tendon_force_n, state.fiber_force_n


# ---------------------------------------------------------------------------------------------- forces only
def _active_force_length(norm_fiber_length: Tensor, c: _SolverConstants) -> Tensor:
    """f_L of :func:`pimsk.core.degroote.active_force_length_multiplier` for one fused kernel: the two
    Gaussian-like terms with a varying denominator share one division, the third (b43 = 0) has none."""
    K = dg.DEGROOTE2016
    x = (norm_fiber_length - 1.0) * c.inv_width_scale + 1.0
    den1 = K.b31 + K.b41 * x
    den2 = K.b32 + K.b42 * x
    inv = 1.0 / (den1 * den2)
    z1 = (x - K.b21) * den2 * inv
    z2 = (x - K.b22) * den1 * inv
    z3 = (x - K.b23) * (1.0 / K.b33)
    return K.b11 * torch.exp(-0.5 * z1 * z1) + K.b12 * torch.exp(-0.5 * z2 * z2) + K.b13 * torch.exp(-0.5 * z3 * z3)


def _rigid_forces_kernel(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, c: _SolverConstants
) -> tuple[Tensor, Tensor]:
    """(tendon force N, fiber force N) of :func:`rigid_tendon_state`, elementwise, constants precomputed."""
    K = dg.DEGROOTE2016
    along = l_mt - c.slack_length_m
    lf = torch.sqrt(along * along + c.width_sq_m2)
    cos_p = along / lf
    norm_lf = lf * c.inv_optimal_fiber_length
    f_l = _active_force_length(norm_lf, c)
    f_pe = torch.exp(c.passive_rate * (norm_lf - 1.0)) * c.passive_scale - c.passive_offset
    norm_v = v_mt * cos_p * c.inv_max_velocity
    t = K.d2 * norm_v + K.d3
    f_v = K.d1 * torch.log(t + torch.sqrt(t * t + 1.0)) + K.d4
    fiber = c.max_force_n * (act * f_l * f_v + f_pe + c.damping * norm_v)
    return fiber * cos_p, fiber


def _explicit_forces_kernel(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, f_t: Tensor, c: _SolverConstants
) -> tuple[Tensor, Tensor]:
    """(tendon force N, fiber force N) of :func:`compliant_tendon_state` in the explicit form, elementwise:
    f_V = (f~T / cos(alpha) - f_PE) / (a f_L) written with one division, v~ = f_V^-1(f_V) for the damping."""
    K = dg.DEGROOTE2016
    along = l_mt - c.tendon_offset_m - c.slack_over_kt_m * torch.log(f_t + K.c3)
    lf = torch.sqrt(along * along + c.width_sq_m2)
    norm_lf = lf * c.inv_optimal_fiber_length
    f_l = _active_force_length(norm_lf, c)
    f_pe = torch.exp(c.passive_rate * (norm_lf - 1.0)) * c.passive_scale - c.passive_offset
    active = act * f_l
    f_v = (f_t * lf - f_pe * along) / (along * active)
    growth = torch.exp((f_v - K.d4) * (1.0 / K.d1))  # sinh(y) = (e^y - 1 / e^y) / 2: one exp, no sinh
    norm_v = (0.5 * (growth - 1.0 / growth) - K.d3) * (1.0 / K.d2)
    fiber = c.max_force_n * (active * f_v + f_pe + c.damping * norm_v)
    return c.max_force_n * f_t, fiber


def _vector_lanes(dtype: torch.dtype) -> int:
    """Elements of ``dtype`` per SIMD register of this CPU (what inductor's C++ kernels use)."""
    width_bytes = 64 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 32
    return max(1, width_bytes // torch.empty((), dtype=dtype).element_size())


def _states_per_row(n_states: int, n_muscles: int, dtype: torch.dtype) -> int:
    """States per row of the tiled layout: the fewest whose muscles fill whole SIMD registers (lcm(n_muscles,
    lanes) / n_muscles) where that divides ``n_states``; else a divisor of ``n_states`` up to 8 times that
    whose row fills >= 95 % of its registers (no leftover states to join); else the fewest (with leftovers)."""
    lanes = _vector_lanes(dtype)
    period = math.lcm(n_muscles, lanes) // n_muscles
    if n_states % period == 0:
        return period
    best, best_fill = period, 0.95
    for k in range(1, 8 * period + 1):
        if n_states % k == 0:
            fill = k * n_muscles / (math.ceil(k * n_muscles / lanes) * lanes)
            if fill > best_fill:
                best, best_fill = k, fill
    return best


def _tile_parts(
    flat: list[Tensor | None], n_muscles: int, dtype: torch.dtype
) -> list[tuple[bool, tuple[Tensor | None, ...]]]:
    """Split flat state-major (n_states x n_muscles,) tensors (None stays None) into the tiled layout:
    [(leftover?, views)], rows of :func:`_states_per_row` whole states, then (if any) the leftover states as
    (k, n_muscles).

    With the per-muscle constants repeated along a row, a compiled elementwise kernel runs full vector lanes
    with unit-stride loads whatever the number of muscles, without transposing inputs or results (a row of
    13 or 5 muscles would leave 3 of 16 or 3 of 8 lanes idle and take masked loads)."""
    m = n_muscles
    total = next(x for x in flat if x is not None).numel()
    k = _states_per_row(total // m, m, dtype)
    head = (total // m // k) * k * m
    parts = []
    for leftover, part, width in ((False, slice(0, head), k * m), (True, slice(head, total), m)):
        if part.stop > part.start:
            parts.append((leftover, tuple(None if x is None else x[part].view(-1, width) for x in flat)))
    return parts


def _join(results: list[tuple[Tensor, ...]]) -> list[Tensor]:
    """Flat outputs of the tiled parts, joined (a copy only where there are leftover states)."""
    if len(results) == 1:
        return [x.reshape(-1) for x in results[0]]
    return [torch.cat([a.reshape(-1), b.reshape(-1)]) for a, b in zip(*results)]


def _tiled_call(kernel, inputs: list[Tensor], p: MuscleParameters, compile: bool) -> list[Tensor]:
    """Run an elementwise ``kernel(*inputs, constants)`` over (..., n_muscles) inputs on the tiled layout of
    :func:`_tile_parts` (whole rows and leftover states compile separately, each keeping its static shape).
    Returns the outputs in the broadcast input shape, contiguous."""
    shape = torch.broadcast_shapes(*(x.shape for x in inputs), (p.n_muscles,))
    m = p.n_muscles
    c = _solver_constants(p)
    results = []
    for leftover, views in _tile_parts([x.expand(shape).reshape(-1) for x in inputs], m, p.dtype):
        fn = _compiled(kernel.__name__ + ("_tail" if leftover else "")) if compile else kernel
        results.append(fn(*views, _SolverConstants(*(x.repeat(views[0].shape[1] // m) for x in c))))
    return [x.view(shape) for x in _join(results)]


def rigid_tendon_forces(
    mtu_length_m: TensorLike, mtu_velocity_mps: TensorLike, activation: TensorLike, params: MuscleParameters,
    *, compile: bool = False,
) -> tuple[Tensor, Tensor]:
    """(tendon force, fiber force) in N of :func:`rigid_tendon_state`, (..., n_muscles) each, without the
    other fields: the same curves (De Groote et al. 2016, OpenSim 4.6) in one elementwise kernel with the
    per-muscle constants precomputed (agrees with the state to round-off). ``compile``: a torch.compile'd
    kernel (built on first use). Differentiable."""
    p = params
    inputs = [_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation)]
    tendon, fiber = _tiled_call(_rigid_forces_kernel, inputs, p, compile)
    return tendon, fiber


def compliant_tendon_forces(
    mtu_length_m: TensorLike, mtu_velocity_mps: TensorLike, activation: TensorLike, norm_tendon_force: TensorLike,
    params: MuscleParameters, *, compile: bool = False,
) -> tuple[Tensor, Tensor]:
    """(tendon force, fiber force) in N of :func:`compliant_tendon_state` in the explicit form (f~T given,
    fiber velocity from the inverse force-velocity curve), (..., n_muscles) each, without the other fields;
    one elementwise kernel with precomputed per-muscle constants (agrees with the state to round-off).
    ``compile``: a torch.compile'd kernel (built on first use). Differentiable."""
    p = params
    inputs = [_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force)]
    tendon, fiber = _tiled_call(_explicit_forces_kernel, inputs, p, compile)
    return tendon, fiber
