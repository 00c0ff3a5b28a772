"""DeGrooteFregly2016 muscle curves in torch, as OpenSim 4.6 implements them.

Source: De Groote F, Kinney AL, Rao AV, Fregly BJ (2016). Evaluation of direct collocation optimal
control problem formulations for solving the muscle redundancy problem. Ann Biomed Eng 44(10):2922-2936.
doi:10.1007/s10439-016-1591-9 (supplement: curve equations).

The constants and the small departures from the paper are those of OpenSim's
``DeGrooteFregly2016Muscle`` (opensim-core 4.6, OpenSim/Actuators/DeGrooteFregly2016Muscle.h), so that the
torch model reproduces OpenSim's numbers to float64 round-off:

- active force-length: b11 re-solved so that f_L(1) = 1; the supplement's missing square in the Gaussian
  denominator is restored; ``active_force_width_scale`` widens the curve about l~ = 1;
- passive force-length: shifted so that it passes through 0 at the minimum normalised fiber length (0.2);
- tendon: parameterised by the strain at one normalised force (kT derived from it), c2 = 1 and c3 = 0.2 so
  the curve passes through (1, 0) and tends to -0.2;
- force-velocity: d1 and d4 re-solved so the curve passes through (-1, 0) and (0, 1); the inverse includes
  the "- d3" missing from the supplement.

All functions are elementwise and broadcast: inputs may be any shape, e.g. (batch, time, muscle), with
per-muscle parameters of shape (muscle,). They work in float32 and float64 on any device and are
differentiable with autograd. Normalised quantities: fiber length / optimal fiber length, fiber velocity /
(max contraction velocity x optimal fiber length), tendon length / tendon slack length, force / max
isometric force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "DeGroote2016Constants",
    "DEGROOTE2016",
    "active_force_length_multiplier",
    "active_force_length_multiplier_derivative",
    "active_force_length_multiplier_and_derivative",
    "passive_force_multiplier",
    "passive_force_multiplier_derivative",
    "passive_force_multiplier_and_derivative",
    "force_velocity_multiplier",
    "force_velocity_multiplier_derivative",
    "force_velocity_multiplier_and_derivative",
    "force_velocity_inverse",
    "force_velocity_inverse_derivative",
    "tendon_stiffness_parameter",
    "tendon_force_multiplier",
    "tendon_force_multiplier_derivative",
    "tendon_force_length_inverse",
    "fiber_width",
]

TensorLike = Tensor | float


@dataclass(frozen=True)
class DeGroote2016Constants:
    """Published curve constants (De Groote et al. 2016, supplement), with OpenSim 4.6's corrections.

    b*: active force-length (three Gaussian-like terms); kpe: passive exponential shape factor;
    c1..c3: tendon curve; d1..d4: force-velocity curve; bounds of the curves' domain.
    """

    # Active force-length: values from simtk.org/projects/optcntrlmuscle, b11 modified so f(1) = 1.
    b11: float = 0.8150671134243542
    b21: float = 1.055033428970575
    b31: float = 0.162384573599574
    b41: float = 0.063303448465465
    b12: float = 0.433004984392647
    b22: float = 0.716775413397760
    b32: float = -0.029947116970696
    b42: float = 0.200356847296188
    b13: float = 0.1
    b23: float = 1.0
    b33: float = 0.353553390593274  # 0.5 * sqrt(0.5)
    b43: float = 0.0
    # Passive force-length exponential shape factor.
    kpe: float = 4.0
    # Tendon force-length (paper: c2 = 0.995, c3 = 0.250; OpenSim: 1.0 and 0.2).
    c1: float = 0.200
    c2: float = 1.0
    c3: float = 0.200
    # Force-velocity (d1, d4 re-solved by OpenSim so the curve passes through (-1, 0) and (0, 1)).
    d1: float = -0.3211346127989808
    d2: float = -8.149
    d3: float = -0.374
    d4: float = 0.8825327733249912
    # Domain bounds used by OpenSim.
    min_norm_fiber_length: float = 0.2
    max_norm_fiber_length: float = 1.8
    min_norm_tendon_force: float = 0.0
    max_norm_tendon_force: float = 5.0


DEGROOTE2016 = DeGroote2016Constants()
_K = DEGROOTE2016


def _gaussian_like(x: Tensor, b1: float, b2: float, b3: float, b4: float) -> Tensor:
    """b1 exp(-0.5 (x - b2)^2 / (b3 + b4 x)^2) (De Groote 2016, supplement eq. S1, squared denominator)."""
    return b1 * torch.exp(-0.5 * (x - b2) ** 2 / (b3 + b4 * x) ** 2)


def _gaussian_like_derivative(x: Tensor, b1: float, b2: float, b3: float, b4: float) -> Tensor:
    """d/dx of :func:`_gaussian_like`."""
    denom = b3 + b4 * x
    return b1 * torch.exp(-((b2 - x) ** 2) / (2.0 * denom**2)) * (b2 - x) * (b3 + b2 * b4) / denom**3


def active_force_length_multiplier(norm_fiber_length: Tensor, width_scale: TensorLike = 1.0) -> Tensor:
    """Active force-length multiplier f_L(l~) (De Groote 2016, sum of three Gaussian-like curves).

    norm_fiber_length: fiber length / optimal fiber length; width_scale: OpenSim's
    ``active_force_width_scale`` (>= 1; the curve is stretched about l~ = 1). Dimensionless, f_L(1) = 1.
    """
    x = (norm_fiber_length - 1.0) / width_scale + 1.0
    return (
        _gaussian_like(x, _K.b11, _K.b21, _K.b31, _K.b41)
        + _gaussian_like(x, _K.b12, _K.b22, _K.b32, _K.b42)
        + _gaussian_like(x, _K.b13, _K.b23, _K.b33, _K.b43)
    )


def active_force_length_multiplier_derivative(norm_fiber_length: Tensor, width_scale: TensorLike = 1.0) -> Tensor:
    """d f_L / d l~ (per unit normalised fiber length)."""
    x = (norm_fiber_length - 1.0) / width_scale + 1.0
    return (1.0 / width_scale) * (
        _gaussian_like_derivative(x, _K.b11, _K.b21, _K.b31, _K.b41)
        + _gaussian_like_derivative(x, _K.b12, _K.b22, _K.b32, _K.b42)
        + _gaussian_like_derivative(x, _K.b13, _K.b23, _K.b33, _K.b43)
    )


def active_force_length_multiplier_and_derivative(
    norm_fiber_length: Tensor, width_scale: TensorLike = 1.0
) -> tuple[Tensor, Tensor]:
    """(f_L, d f_L / d l~) sharing the exponentials (for Newton iterations)."""
    x = (norm_fiber_length - 1.0) / width_scale + 1.0
    value = torch.zeros_like(x)
    slope = torch.zeros_like(x)
    for b1, b2, b3, b4 in (
        (_K.b11, _K.b21, _K.b31, _K.b41),
        (_K.b12, _K.b22, _K.b32, _K.b42),
        (_K.b13, _K.b23, _K.b33, _K.b43),
    ):
        denom = b3 + b4 * x
        term = b1 * torch.exp(-0.5 * (x - b2) ** 2 / denom**2)
        value = value + term
        slope = slope + term * (b2 - x) * (b3 + b2 * b4) / denom**3
    return value, slope / width_scale


def _passive_offset(strain_at_one_norm_force: TensorLike) -> TensorLike:
    e0 = strain_at_one_norm_force
    arg = _K.kpe * (_K.min_norm_fiber_length - 1.0) / e0
    return torch.exp(arg) if isinstance(arg, Tensor) else math.exp(arg)


def passive_force_multiplier(norm_fiber_length: Tensor, strain_at_one_norm_force: TensorLike = 0.6) -> Tensor:
    """Passive fiber force-length multiplier f_PE(l~) (De Groote 2016 / Thelen 2003 exponential).

    Shifted as in OpenSim so that f_PE(0.2) = 0 and f_PE(1 + e0) = 1, e0 = ``strain_at_one_norm_force``
    (OpenSim's ``passive_fiber_strain_at_one_norm_force``). Dimensionless; negative below l~ = 0.2.
    """
    e0 = strain_at_one_norm_force
    offset = _passive_offset(e0)
    denom = math.exp(_K.kpe) - offset
    return (torch.exp(_K.kpe * (norm_fiber_length - 1.0) / e0) - offset) / denom


def passive_force_multiplier_derivative(
    norm_fiber_length: Tensor, strain_at_one_norm_force: TensorLike = 0.6
) -> Tensor:
    """d f_PE / d l~."""
    e0 = strain_at_one_norm_force
    offset = _passive_offset(e0)
    return (_K.kpe * torch.exp(_K.kpe * (norm_fiber_length - 1.0) / e0)) / (e0 * (math.exp(_K.kpe) - offset))


def passive_force_multiplier_and_derivative(
    norm_fiber_length: Tensor, strain_at_one_norm_force: TensorLike = 0.6
) -> tuple[Tensor, Tensor]:
    """(f_PE, d f_PE / d l~) sharing the exponential (for Newton iterations)."""
    e0 = strain_at_one_norm_force
    offset = _passive_offset(e0)
    denom = math.exp(_K.kpe) - offset
    growth = torch.exp(_K.kpe * (norm_fiber_length - 1.0) / e0)
    return (growth - offset) / denom, _K.kpe * growth / (e0 * denom)


def force_velocity_multiplier(norm_fiber_velocity: Tensor) -> Tensor:
    """Force-velocity multiplier f_V(v~) = d1 log(d2 v~ + d3 + sqrt((d2 v~ + d3)^2 + 1)) + d4 (De Groote 2016).

    norm_fiber_velocity: fiber velocity / (max contraction velocity x optimal fiber length), negative when
    shortening; domain [-1, 1], f_V(-1) = 0, f_V(0) = 1, f_V(1) ~ 1.794.
    """
    temp_v = _K.d2 * norm_fiber_velocity + _K.d3
    return _K.d1 * torch.log(temp_v + torch.sqrt(temp_v**2 + 1.0)) + _K.d4


def force_velocity_multiplier_derivative(norm_fiber_velocity: Tensor) -> Tensor:
    """d f_V / d v~ = d1 d2 / sqrt((d2 v~ + d3)^2 + 1)."""
    temp_v = _K.d2 * norm_fiber_velocity + _K.d3
    return _K.d1 * _K.d2 / torch.sqrt(temp_v**2 + 1.0)


def force_velocity_multiplier_and_derivative(norm_fiber_velocity: Tensor) -> tuple[Tensor, Tensor]:
    """(f_V, d f_V / d v~) sharing the square root (for Newton iterations)."""
    temp_v = _K.d2 * norm_fiber_velocity + _K.d3
    root = torch.sqrt(temp_v**2 + 1.0)
    return _K.d1 * torch.log(temp_v + root) + _K.d4, _K.d1 * _K.d2 / root


def force_velocity_inverse(force_velocity_multiplier: Tensor) -> Tensor:
    """Inverse force-velocity curve v~(f_V) = (sinh((f_V - d4) / d1) - d3) / d2 (De Groote 2016, corrected)."""
    return (torch.sinh(1.0 / _K.d1 * (force_velocity_multiplier - _K.d4)) - _K.d3) / _K.d2


def force_velocity_inverse_derivative(force_velocity_multiplier: Tensor) -> Tensor:
    """d v~ / d f_V."""
    return torch.cosh(1.0 / _K.d1 * (force_velocity_multiplier - _K.d4)) / (_K.d1 * _K.d2)


def tendon_stiffness_parameter(tendon_strain_at_one_norm_force: TensorLike) -> TensorLike:
    """kT = log((1 + c3) / c1) / (1 + e_T - c2), so that the tendon curve gives 1 at strain e_T (OpenSim)."""
    return math.log((1.0 + _K.c3) / _K.c1) / (1.0 + tendon_strain_at_one_norm_force - _K.c2)


def tendon_force_multiplier(norm_tendon_length: Tensor, tendon_strain_at_one_norm_force: TensorLike = 0.049) -> Tensor:
    """Tendon force-length f_T(l~T) = c1 exp(kT (l~T - c2)) - c3 (De Groote 2016), l~T = l_T / l_slack."""
    k_t = tendon_stiffness_parameter(tendon_strain_at_one_norm_force)
    return _K.c1 * torch.exp(k_t * (norm_tendon_length - _K.c2)) - _K.c3


def tendon_force_multiplier_derivative(
    norm_tendon_length: Tensor, tendon_strain_at_one_norm_force: TensorLike = 0.049
) -> Tensor:
    """d f_T / d l~T."""
    k_t = tendon_stiffness_parameter(tendon_strain_at_one_norm_force)
    return _K.c1 * k_t * torch.exp(k_t * (norm_tendon_length - _K.c2))


def tendon_force_length_inverse(
    norm_tendon_force: Tensor, tendon_strain_at_one_norm_force: TensorLike = 0.049
) -> Tensor:
    """Inverse tendon curve l~T(f~T) = log((f~T + c3) / c1) / kT + c2 (normalised tendon length)."""
    k_t = tendon_stiffness_parameter(tendon_strain_at_one_norm_force)
    return torch.log((1.0 / _K.c1) * (norm_tendon_force + _K.c3)) / k_t + _K.c2


def fiber_width(optimal_fiber_length_m: TensorLike, pennation_angle_at_optimal_rad: TensorLike) -> TensorLike:
    """Constant fiber height (width) w = l_opt sin(alpha_opt) in m (pennation with constant muscle thickness)."""
    if isinstance(pennation_angle_at_optimal_rad, Tensor):
        return optimal_fiber_length_m * torch.sin(pennation_angle_at_optimal_rad)
    return optimal_fiber_length_m * math.sin(pennation_angle_at_optimal_rad)
