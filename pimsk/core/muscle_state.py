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
  d f~T/dt = 0 by default) by Newton's method safeguarded by bisection on [0, 5]; the last Newton step is
  taken with autograd on, which gives exactly the implicit-function gradient
  d f~T/d theta = -(dR/d theta) / (dR/d f~T) at the solution.

Inputs broadcast: MTU length/velocity and activation may be (batch, time, muscle) or any shape whose last
dimension is the muscle dimension of :class:`MuscleParameters` (or broadcastable to it).
Reference: De Groote F et al. (2016) Ann Biomed Eng 44(10):2922-2936.
"""

from __future__ import annotations

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


def _solver_start(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor, p: MuscleParameters
) -> tuple[Tensor, ...]:
    """Bracket [0, 5], its residual signs, the rigid-tendon starting point and R, dR/df there."""
    K = dg.DEGROOTE2016
    lo = torch.full_like(l_mt, K.min_norm_tendon_force)
    hi = torch.full_like(l_mt, K.max_norm_tendon_force)
    r_lo, _ = equilibrium_residual_derivative(l_mt, v_mt, act, lo, p, df_t)
    r_hi, _ = equilibrium_residual_derivative(l_mt, v_mt, act, hi, p, df_t)
    bracketed = (r_lo * r_hi <= 0) & torch.isfinite(r_lo) & torch.isfinite(r_hi)
    lo_negative = r_lo < 0
    guess = rigid_tendon_state(l_mt, v_mt, act, p).norm_tendon_force
    guess = torch.nan_to_num(guess, nan=0.5 * (K.min_norm_tendon_force + K.max_norm_tendon_force))
    x = torch.minimum(torch.maximum(guess, lo), hi)
    r, dr = equilibrium_residual_derivative(l_mt, v_mt, act, x, p, df_t)
    return x, lo, hi, r, dr, bracketed, lo_negative


def _solver_step(
    l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor, p: MuscleParameters,
    x: Tensor, lo: Tensor, hi: Tensor, r: Tensor, dr: Tensor, bracketed: Tensor, lo_negative: Tensor,
    tol: float, eps: float,
) -> tuple[Tensor, ...]:
    """One safeguarded Newton step for every element not yet done; returns (x, lo, hi, r, dr, done)."""
    stalled = bracketed & ((hi - lo) <= 4.0 * eps * torch.clamp(hi.abs(), min=1.0))
    done = (r.abs() <= tol) | ~torch.isfinite(x) | stalled  # non-finite: diverged without a bracket
    root_right = (r < 0) == lo_negative
    lo = torch.where(bracketed & root_right & ~done, x, lo)
    hi = torch.where(bracketed & ~root_right & ~done, x, hi)
    x_new = x - r / dr
    bisect = bracketed & (~torch.isfinite(x_new) | (x_new <= lo) | (x_new >= hi))
    x_new = torch.where(bisect, 0.5 * (lo + hi), x_new)
    x = torch.where(done, x, x_new)
    r, dr = equilibrium_residual_derivative(l_mt, v_mt, act, x, p, df_t)
    return x, lo, hi, r, dr, done


_COMPILED: dict[str, object] = {}


def _compiled(name: str):
    """torch.compile'd solver pieces (fused elementwise kernels), built on first use."""
    if name not in _COMPILED:
        fn = {"start": _solver_start, "step": _solver_step, "state": compliant_tendon_state}[name]
        _COMPILED[name] = torch.compile(fn)
    return _COMPILED[name]


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
) -> EquilibriumSolution:
    """Normalised tendon force f~T in muscle-tendon equilibrium (R = 0, implicit form).

    Newton's method safeguarded by bisection on OpenSim's bounds [0, 5] (where R changes sign there;
    plain Newton elsewhere), started from the rigid-tendon force. The returned f~T is differentiable
    with respect to the inputs and every float parameter: the final Newton step is recorded by autograd,
    which at the root equals the implicit-function gradient -(dR/d theta) / (dR/d f~T).
    ``tolerance`` on |R| defaults to 64 machine epsilons of the dtype. ``compile=True`` runs the iterations
    through torch.compile (fused kernels: several times faster on large batches, one-off compile time).
    Shapes: (..., n_muscles).
    """
    p = params
    inputs = [_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force_derivative)]
    shape = torch.broadcast_shapes(*(x.shape for x in inputs), (p.n_muscles,))
    eps = torch.finfo(p.dtype).eps
    tol = 64.0 * eps if tolerance is None else tolerance
    pd = p.detach()
    args = [x.detach().expand(shape).contiguous() for x in inputs]
    start = _compiled("start") if compile else _solver_start
    step = _compiled("step") if compile else _solver_step
    iterations = 0
    with torch.no_grad():
        x, lo, hi, r, dr, bracketed, lo_negative = start(*args, pd)
        for iterations in range(1, max_iterations + 1):
            x, lo, hi, r, dr, done = step(*args, pd, x, lo, hi, r, dr, bracketed, lo_negative, tol, eps)
            if bool(done.all()):
                break
    x_star = x.detach()
    if torch.is_grad_enabled():
        # One Newton step with autograd on: value unchanged at the root, gradient = implicit-function theorem.
        r_graph = equilibrium_residual(*inputs[:3], x_star, p, inputs[3])
        f_t = x_star - r_graph / dr.detach()
    else:
        f_t = x_star
    converged = r.abs() <= max(tol, 1e3 * eps)
    return EquilibriumSolution(f_t.expand(shape), r, converged, iterations)


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
    (max_iterations, tolerance, compile).
    """
    p = params
    rigid = p.ignore_tendon_compliance
    if bool(rigid.all()):
        return rigid_tendon_state(mtu_length_m, mtu_velocity_mps, activation, p)
    inputs = [_as_tensor(x, p) for x in (mtu_length_m, mtu_velocity_mps, activation, norm_tendon_force_derivative)]

    def compliant(q: MuscleParameters, l_mt: Tensor, v_mt: Tensor, act: Tensor, df_t: Tensor) -> MuscleState:
        sol = solve_norm_tendon_force(l_mt, v_mt, act, q, df_t, **solver_options)
        state_fn = _compiled("state") if solver_options.get("compile") and not torch.is_grad_enabled() else (
            compliant_tendon_state
        )
        return state_fn(l_mt, v_mt, act, sol.norm_tendon_force, q, df_t)

    if not bool(rigid.any()):
        return compliant(p, *inputs)
    # Mixed: evaluate each group on its own muscles only (no NaN from the other model leaks into gradients).
    shape = torch.broadcast_shapes(*(x.shape for x in inputs), (p.n_muscles,))
    full = [x.expand(shape) for x in inputs]
    idx_r = torch.nonzero(rigid).flatten()
    idx_c = torch.nonzero(~rigid).flatten()
    names = p.names
    p_r = p.select([names[i] for i in idx_r.tolist()])
    p_c = p.select([names[i] for i in idx_c.tolist()])
    s_r = rigid_tendon_state(*(x.index_select(-1, idx_r) for x in full[:3]), p_r)
    s_c = compliant(p_c, *(x.index_select(-1, idx_c) for x in full))
    out = {}
    for f in fields(MuscleState):
        a, b = getattr(s_r, f.name), getattr(s_c, f.name)
        merged = torch.zeros(shape, dtype=a.dtype, device=a.device)
        merged = merged.index_copy(-1, idx_r, a).index_copy(-1, idx_c, b)
        out[f.name] = merged
    return MuscleState(**out)
