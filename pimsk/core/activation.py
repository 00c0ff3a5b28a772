"""First-order activation dynamics of De Groote et al. (2016), as OpenSim 4.6's DeGrooteFregly2016Muscle.

da/dt = [ (f + 1/2) / (tau_a (1/2 + 3a/2)) + (1/2 + 3a/2)(1/2 - f) / tau_d ] (e - a),
f = 1/2 tanh(b (e - a)), with b = ``activation_dynamics_smoothing`` (0.1 in the paper and OpenSim's default;
OpenSim recommends 10). De Groote F et al. (2016) Ann Biomed Eng 44(10):2922-2936, eq. (1)-(2); the smooth
switch is their supplement's tanh formulation.

Note: OpenSim 4.6 reads the time constants and the smoothing into function-``static`` variables inside
computeStateVariableDerivatives, so within one process every DeGrooteFregly2016Muscle uses the values of the
first muscle evaluated. This module uses each muscle's own values (the documented model).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pimsk.core.muscle_parameters import MuscleParameters

__all__ = ["activation_derivative", "simulate_activation"]

TensorLike = Tensor | float


def activation_derivative(
    excitation: TensorLike,
    activation: TensorLike,
    activation_time_constant_s: TensorLike = 0.015,
    deactivation_time_constant_s: TensorLike = 0.060,
    smoothing: TensorLike = 0.1,
) -> Tensor:
    """da/dt in 1/s for excitation e and activation a (broadcast, e.g. (batch, muscle))."""
    e = torch.as_tensor(excitation)
    a = torch.as_tensor(activation, dtype=e.dtype if e.is_floating_point() else None, device=e.device)
    time_const_factor = 0.5 + 1.5 * a
    temp_act = 1.0 / (activation_time_constant_s * time_const_factor)
    temp_deact = time_const_factor / deactivation_time_constant_s
    f = 0.5 * torch.tanh(smoothing * (e - a))
    time_const = temp_act * (f + 0.5) + temp_deact * (-f + 0.5)
    return time_const * (e - a)


def simulate_activation(
    excitation: Tensor,
    dt_s: float,
    params: MuscleParameters | None = None,
    initial_activation: TensorLike | None = None,
    *,
    activation_time_constant_s: TensorLike | None = None,
    deactivation_time_constant_s: TensorLike | None = None,
    smoothing: TensorLike | None = None,
    substeps: int = 1,
) -> Tensor:
    """Activation time series from an excitation time series by classical Runge-Kutta (RK4).

    excitation: (..., time, muscle), sampled every ``dt_s`` seconds; linear between samples.
    Time constants and smoothing come from ``params`` (per muscle) unless given explicitly.
    initial_activation: (..., muscle); default = first excitation sample. Returns (..., time, muscle);
    differentiable with respect to excitation, initial activation and the time constants.
    """
    if params is not None:
        tau_a = params.activation_time_constant_s if activation_time_constant_s is None else activation_time_constant_s
        tau_d = (
            params.deactivation_time_constant_s if deactivation_time_constant_s is None else deactivation_time_constant_s
        )
        b = params.activation_dynamics_smoothing if smoothing is None else smoothing
    else:
        tau_a = 0.015 if activation_time_constant_s is None else activation_time_constant_s
        tau_d = 0.060 if deactivation_time_constant_s is None else deactivation_time_constant_s
        b = 0.1 if smoothing is None else smoothing
    if excitation.ndim < 2:
        raise ValueError(f"excitation must be (..., time, muscle), got shape {tuple(excitation.shape)}")
    n_time = excitation.shape[-2]
    a = excitation[..., 0, :] if initial_activation is None else torch.as_tensor(initial_activation).to(excitation)
    a = a.expand(excitation[..., 0, :].shape)
    h = dt_s / substeps
    out = [a]
    for k in range(n_time - 1):
        e0, e1 = excitation[..., k, :], excitation[..., k + 1, :]
        for j in range(substeps):
            s0 = j / substeps
            e_start = e0 + (e1 - e0) * s0
            e_mid = e0 + (e1 - e0) * (s0 + 0.5 / substeps)
            e_end = e0 + (e1 - e0) * (s0 + 1.0 / substeps)
            k1 = activation_derivative(e_start, a, tau_a, tau_d, b)
            k2 = activation_derivative(e_mid, a + 0.5 * h * k1, tau_a, tau_d, b)
            k3 = activation_derivative(e_mid, a + 0.5 * h * k2, tau_a, tau_d, b)
            k4 = activation_derivative(e_end, a + h * k3, tau_a, tau_d, b)
            a = a + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        out.append(a)
    return torch.stack(out, dim=-2)
