"""torch.autograd.gradcheck (float64) of DeGroote forces with respect to kinematics, activation, parameters,
through the rigid tendon, the explicit compliant form and the compliant-tendon equilibrium solve."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from pimsk.core.activation import activation_derivative, simulate_activation
from pimsk.core.muscle_parameters import MuscleParameters
from pimsk.core.muscle_state import (
    compliant_tendon_state,
    equilibrium_state,
    rigid_tendon_state,
    solve_norm_tendon_force,
)

F64 = torch.float64
TRAINABLE = (
    "max_isometric_force_n",
    "optimal_fiber_length_m",
    "tendon_slack_length_m",
    "pennation_angle_at_optimal_rad",
    "max_contraction_velocity_lopt_per_s",
    "tendon_strain_at_one_norm_force",
    "passive_fiber_strain_at_one_norm_force",
    "active_force_width_scale",
    "fiber_damping",
)


def base_params() -> MuscleParameters:
    return MuscleParameters.from_values(
        ["rect_fem_r", "vas_med_r", "med_gas_r"],
        max_isometric_force_n=[1169.0, 1294.0, 1558.0],
        optimal_fiber_length_m=[0.114, 0.089, 0.060],
        tendon_slack_length_m=[0.310, 0.126, 0.390],
        pennation_angle_at_optimal_rad=[0.0873, 0.0873, 0.2967],
        fiber_damping=[0.01, 0.1, 0.05],
        active_force_width_scale=[1.0, 1.1, 1.3],
        tendon_strain_at_one_norm_force=[0.049, 0.049, 0.06],
        passive_fiber_strain_at_one_norm_force=[0.6, 0.7, 0.6],
    )


def inputs(p: MuscleParameters, batch=2, time=3):
    g = torch.Generator().manual_seed(3)
    shape = (batch, time, p.n_muscles)
    norm_fiber = 0.7 + 0.6 * torch.rand(shape, generator=g, dtype=F64)
    along = torch.sqrt((norm_fiber * p.optimal_fiber_length_m) ** 2 - p.fiber_width_m**2)
    l_mt = p.tendon_slack_length_m * 1.01 + along
    v_mt = (torch.rand(shape, generator=g, dtype=F64) - 0.5) * 0.8 * p.max_contraction_velocity_mps
    act = 0.1 + 0.85 * torch.rand(shape, generator=g, dtype=F64)
    return l_mt, v_mt, act


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


def with_params(p: MuscleParameters, values) -> MuscleParameters:
    return p.replace(**dict(zip(TRAINABLE, values)))


def test_rigid_tendon_force_wrt_kinematics_and_activation():
    p = base_params()
    args = tuple(leaf(x) for x in inputs(p))
    assert gradcheck(lambda l, v, a: rigid_tendon_state(l, v, a, p).tendon_force_n, args)


def test_rigid_tendon_force_wrt_parameters():
    p = base_params()
    l_mt, v_mt, act = inputs(p)
    values = tuple(leaf(getattr(p, f)) for f in TRAINABLE)
    assert gradcheck(lambda *v: rigid_tendon_state(l_mt, v_mt, act, with_params(p, v)).tendon_force_n, values)


def test_explicit_compliant_fiber_force_wrt_state_and_parameters():
    p = base_params()
    l_mt, v_mt, act = inputs(p)
    f_t = torch.full_like(l_mt, 0.3)
    args = tuple(leaf(x) for x in (l_mt, v_mt, act, f_t))
    assert gradcheck(lambda l, v, a, f: compliant_tendon_state(l, v, a, f, p).fiber_force_n, args)
    values = tuple(leaf(getattr(p, f)) for f in TRAINABLE)
    assert gradcheck(lambda *v: compliant_tendon_state(l_mt, v_mt, act, f_t, with_params(p, v)).fiber_force_n, values)


def test_equilibrium_tendon_force_wrt_kinematics_activation_and_derivative():
    p = base_params()
    l_mt, v_mt, act = inputs(p)
    df_t = torch.full_like(l_mt, 0.5)
    args = tuple(leaf(x) for x in (l_mt, v_mt, act, df_t))

    def force(l, v, a, d):
        return p.max_isometric_force_n * solve_norm_tendon_force(l, v, a, p, d).norm_tendon_force

    assert gradcheck(force, args)


def test_equilibrium_tendon_force_wrt_parameters():
    p = base_params()
    l_mt, v_mt, act = inputs(p)
    values = tuple(leaf(getattr(p, f)) for f in TRAINABLE)
    assert gradcheck(lambda *v: equilibrium_state(l_mt, v_mt, act, with_params(p, v)).tendon_force_n, values)


def test_equilibrium_state_fiber_length_wrt_inputs():
    p = base_params()
    args = tuple(leaf(x) for x in inputs(p))
    assert gradcheck(lambda l, v, a: equilibrium_state(l, v, a, p).fiber_length_m, args)


@pytest.mark.parametrize("smoothing", [0.1, 10.0])
def test_activation_dynamics(smoothing):
    g = torch.Generator().manual_seed(4)
    e = leaf(torch.rand(2, 3, dtype=F64, generator=g))
    a = leaf(0.05 + 0.9 * torch.rand(2, 3, dtype=F64, generator=g))
    tau_a = leaf(torch.tensor([0.01, 0.015, 0.02], dtype=F64))
    tau_d = leaf(torch.tensor([0.04, 0.06, 0.05], dtype=F64))
    assert gradcheck(lambda *x: activation_derivative(*x, smoothing), (e, a, tau_a, tau_d))
    excitation = leaf(torch.rand(1, 6, 3, dtype=F64, generator=g))
    assert gradcheck(
        lambda x, ta: simulate_activation(x, 0.005, activation_time_constant_s=ta, smoothing=smoothing),
        (excitation, tau_a),
    )
