"""Muscle-tendon states, equilibrium solver, activation dynamics and the parameter container (no OpenSim).

The fast equilibrium path (fixed Newton steps + check + safeguarded fallback) is checked against the
safeguarded solver alone, from warm and useless starts, for roots outside OpenSim's [0, 5], in every layout,
with autograd, and compiled against eager.

Hand-solved cases: a muscle at optimal length with the pennation at optimal angle, isometric, fully active,
gives F = F_max (1 + f_PE(1)) along the fiber; at equilibrium tendon force equals fiber force along the
tendon and (with d f~T/dt = 0, no damping) the explicit form recovers v_f = v_MT cos(alpha); the activation
derivative reduces to (e - a) / (tau_a (1/2 + 3a/2)) or (e - a)(1/2 + 3a/2) / tau_d for a saturated switch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pimsk.core import degroote as dg
from pimsk.core.activation import activation_derivative, simulate_activation
from pimsk.core.muscle_parameters import MuscleParameters
from pimsk.core.muscle_state import (
    compliant_tendon_state,
    equilibrium_forces,
    equilibrium_residual,
    equilibrium_residual_derivative,
    equilibrium_state,
    rigid_tendon_state,
    solve_norm_tendon_force,
)

F64 = torch.float64


def params(dtype=F64, **overrides) -> MuscleParameters:
    """Three knee-like muscles (rectus femoris, vastus medialis, medial gastrocnemius of gait2392)."""
    values = dict(
        max_isometric_force_n=[1169.0, 1294.0, 1558.0],
        optimal_fiber_length_m=[0.114, 0.089, 0.060],
        tendon_slack_length_m=[0.310, 0.126, 0.390],
        pennation_angle_at_optimal_rad=[0.0873, 0.0873, 0.2967],
        fiber_damping=[0.0, 0.1, 0.05],
        active_force_width_scale=[1.0, 1.0, 1.3],
        tendon_strain_at_one_norm_force=[0.049, 0.049, 0.06],
        passive_fiber_strain_at_one_norm_force=[0.6, 0.7, 0.6],
    )
    values.update(overrides)
    return MuscleParameters.from_values(["rect_fem_r", "vas_med_r", "med_gas_r"], dtype=dtype, **values)


def in_domain_inputs(p: MuscleParameters, shape=(4, 6), seed=0):
    """MTU length, velocity, activation of shape (*shape, 3) with fiber length in [0.6, 1.4] l_opt."""
    g = torch.Generator().manual_seed(seed)
    full = (*shape, p.n_muscles)
    norm_fiber = 0.6 + 0.8 * torch.rand(full, generator=g, dtype=F64)
    along = torch.sqrt((norm_fiber * p.optimal_fiber_length_m) ** 2 - p.fiber_width_m**2)
    l_mt = (p.tendon_slack_length_m * 1.01 + along).to(p.dtype)
    v_mt = ((torch.rand(full, generator=g, dtype=F64) - 0.5) * p.max_contraction_velocity_mps).to(p.dtype)
    act = (0.05 + 0.95 * torch.rand(full, generator=g, dtype=F64)).to(p.dtype)
    return l_mt, v_mt, act


# ------------------------------------------------------------------------------------------ container
def test_parameters_container():
    p = params()
    assert p.n_muscles == 3 and p.dtype == F64
    assert p.activation_time_constant_s.tolist() == [0.015] * 3  # OpenSim defaults filled in
    q = p.select(["med_gas_r", "rect_fem_r"])
    assert q.names == ("med_gas_r", "rect_fem_r")
    assert q.max_isometric_force_n.tolist() == [1558.0, 1169.0]
    with pytest.raises(KeyError, match="soleus_r"):
        p.select(["soleus_r"])
    assert p.to(dtype=torch.float32).optimal_fiber_length_m.dtype == torch.float32
    assert p.to(dtype=torch.float32).ignore_tendon_compliance.dtype == torch.bool
    with pytest.raises(ValueError, match="required"):
        MuscleParameters.from_values(["a"], max_isometric_force_n=[1.0])
    with pytest.raises(ValueError, match="unknown"):
        MuscleParameters.from_values(["a"], bogus=1.0)
    assert p.fiber_width_m[2].item() == pytest.approx(0.060 * math.sin(0.2967), rel=1e-15)
    assert p.max_contraction_velocity_mps[0].item() == pytest.approx(1.14, rel=1e-15)
    assert set(p.as_dict()) >= {"names", "max_isometric_force_n", "ignore_tendon_compliance"}


# ------------------------------------------------------------------------------------------ rigid tendon
def test_rigid_tendon_hand_solved_isometric_optimal():
    p = params(fiber_damping=[0.0, 0.0, 0.0], active_force_width_scale=[1.0, 1.0, 1.0])
    alpha = p.pennation_angle_at_optimal_rad
    l_mt = p.tendon_slack_length_m + p.optimal_fiber_length_m * torch.cos(alpha)
    s = rigid_tendon_state(l_mt, 0.0, 1.0, p)
    torch.testing.assert_close(s.norm_fiber_length, torch.ones(3, dtype=F64), rtol=0, atol=1e-15)
    torch.testing.assert_close(s.pennation_angle_rad, alpha, rtol=0, atol=1e-12)
    e0 = p.passive_fiber_strain_at_one_norm_force
    fpe1 = (torch.exp(torch.tensor(0.0, dtype=F64)) - torch.exp(-3.2 / e0)) / (math.exp(4.0) - torch.exp(-3.2 / e0))
    expected_fiber = p.max_isometric_force_n * (1.0 + fpe1)
    torch.testing.assert_close(s.fiber_force_n, expected_fiber, rtol=1e-14, atol=0)
    torch.testing.assert_close(s.tendon_force_n, expected_fiber * torch.cos(alpha), rtol=1e-12, atol=0)
    torch.testing.assert_close(s.tendon_length_m, p.tendon_slack_length_m, rtol=0, atol=0)


def test_rigid_tendon_velocity_and_damping():
    p = params()
    l_mt, v_mt, act = in_domain_inputs(p)
    s = rigid_tendon_state(l_mt, v_mt, act, p)
    torch.testing.assert_close(s.fiber_velocity_mps, v_mt * s.cos_pennation)
    torch.testing.assert_close(s.force_velocity_multiplier, dg.force_velocity_multiplier(s.norm_fiber_velocity))
    torch.testing.assert_close(
        s.passive_fiber_damping_force_n, p.max_isometric_force_n * p.fiber_damping * s.norm_fiber_velocity
    )
    torch.testing.assert_close(s.tendon_force_n, s.fiber_force_n * s.cos_pennation)
    # Pennation rate is the time derivative of alpha(l_f) along the motion: d alpha/dt = -v_f tan(alpha)/l_f.
    torch.testing.assert_close(
        s.pennation_angular_velocity_rad_per_s, -s.fiber_velocity_mps * torch.tan(s.pennation_angle_rad) / s.fiber_length_m
    )


def test_ignore_passive_fiber_force():
    p = params(ignore_passive_fiber_force=[True, False, False])
    s = rigid_tendon_state(*in_domain_inputs(p), p)
    assert (s.passive_force_multiplier[..., 0] == 0).all()
    assert (s.passive_force_multiplier[..., 1:] > 0).any()


# ------------------------------------------------------------------------------------------ compliant tendon
def test_residual_derivative_equals_autograd():
    p = params()
    l_mt, v_mt, act = in_domain_inputs(p)
    f_t = torch.full_like(l_mt, 0.4).requires_grad_(True)
    df_t = torch.linspace(-2.0, 2.0, l_mt.numel(), dtype=F64).reshape(l_mt.shape)
    r = equilibrium_residual(l_mt, v_mt, act, f_t, p, df_t)
    (auto,) = torch.autograd.grad(r.sum(), f_t)
    r2, closed = equilibrium_residual_derivative(l_mt, v_mt, act, f_t.detach(), p, df_t)
    torch.testing.assert_close(r2, r.detach(), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(closed, auto, rtol=1e-10, atol=1e-12)


def test_equilibrium_solution_is_in_equilibrium_and_consistent_with_explicit_form():
    p = params(fiber_damping=[0.0, 0.0, 0.0])
    l_mt, v_mt, act = in_domain_inputs(p)
    sol = solve_norm_tendon_force(l_mt, v_mt, act, p)
    assert sol.converged.all()
    assert sol.residual.abs().max() < 1e-13
    implicit = compliant_tendon_state(l_mt, v_mt, act, sol.norm_tendon_force, p, 0.0)
    torch.testing.assert_close(implicit.tendon_force_n, implicit.fiber_force_along_tendon_n, rtol=1e-12, atol=1e-9)
    # d f~T/dt = 0: the tendon does not stretch, so the fiber moves with the MTU: v_f = v_MT cos(alpha).
    torch.testing.assert_close(implicit.fiber_velocity_mps, v_mt * implicit.cos_pennation, rtol=1e-13, atol=1e-15)
    # The explicit form at the equilibrium force recovers the same fiber velocity from the inverse f_V curve.
    explicit = compliant_tendon_state(l_mt, v_mt, act, sol.norm_tendon_force, p)
    torch.testing.assert_close(explicit.norm_fiber_velocity, implicit.norm_fiber_velocity, rtol=1e-8, atol=1e-10)


def test_equilibrium_float32_converges():
    p = params(dtype=torch.float32)
    l_mt, v_mt, act = in_domain_inputs(p)
    sol = solve_norm_tendon_force(l_mt, v_mt, act, p)
    assert sol.norm_tendon_force.dtype == torch.float32
    assert sol.converged.all()
    ref = solve_norm_tendon_force(*(x.double() for x in (l_mt, v_mt, act)), p.to(dtype=F64))
    torch.testing.assert_close(sol.norm_tendon_force.double(), ref.norm_tendon_force, rtol=1e-4, atol=1e-5)


def test_equilibrium_state_mixes_rigid_and_compliant():
    p = params(ignore_tendon_compliance=[True, False, True])
    l_mt, v_mt, act = in_domain_inputs(p)
    mixed = equilibrium_state(l_mt, v_mt, act, p)
    rigid = rigid_tendon_state(l_mt, v_mt, act, p)
    comp = equilibrium_state(l_mt, v_mt, act, p.replace(ignore_tendon_compliance=torch.zeros(3, dtype=torch.bool)))
    torch.testing.assert_close(mixed.tendon_force_n[..., [0, 2]], rigid.tendon_force_n[..., [0, 2]])
    torch.testing.assert_close(mixed.tendon_force_n[..., 1], comp.tendon_force_n[..., 1])
    assert (mixed.tendon_length_m[..., 1] > p.tendon_slack_length_m[1]).all()


def test_solver_without_sign_change_reports_not_converged():
    p = params()
    # MTU shorter than the tendon slack length by far: no equilibrium in [0, 5] for a slack muscle.
    l_mt = (p.tendon_slack_length_m * 0.5).expand(2, 3)
    sol = solve_norm_tendon_force(l_mt, 0.0, 0.5, p)
    assert sol.norm_tendon_force.shape == (2, 3)
    assert not sol.converged.any()
    assert sol.iterations < 60  # diverged elements stop early instead of running to max_iterations


def test_fast_path_equals_the_safeguarded_solver_everywhere():
    p = params()
    l_mt, v_mt, act = in_domain_inputs(p, shape=(40, 25), seed=3)
    fast = solve_norm_tendon_force(l_mt, v_mt, act, p)
    # no fixed steps: every element goes to Newton safeguarded by bisection on [0, 5]
    safe = solve_norm_tendon_force(l_mt, v_mt, act, p, newton_steps=0, float32_steps=0)
    assert fast.converged.all() and safe.converged.all()
    assert fast.iterations == 5 + (fast.iterations - 5)  # 3 float32 + 2 float64 steps, then the fallback's
    torch.testing.assert_close(fast.norm_tendon_force, safe.norm_tendon_force, rtol=0, atol=1e-13)
    assert fast.residual.abs().max() <= 64 * torch.finfo(F64).eps
    # a warm start from the solution (or from a useless guess) gives the same root
    for guess in (fast.norm_tendon_force, torch.full_like(l_mt, float("nan")), torch.full_like(l_mt, 7.0)):
        warm = solve_norm_tendon_force(l_mt, v_mt, act, p, initial_guess=guess)
        assert warm.converged.all()
        torch.testing.assert_close(warm.norm_tendon_force, fast.norm_tendon_force, rtol=0, atol=1e-13)


def test_root_outside_the_bounds_is_kept_where_there_is_none_inside():
    # Fast shortening at low activation with fiber damping: the fiber pushes (damping force < 0), so at tendon
    # slack length R(0) > 0 and R(5) > 0, no sign change on OpenSim's [0, 5]; the equilibrium is a tendon in
    # slight compression, f~T in (-c3, 0) (OpenSim's bisection reports no equilibrium there).
    p = params(fiber_damping=[0.1, 0.1, 0.1])
    alpha = p.pennation_angle_at_optimal_rad
    l_mt = p.tendon_slack_length_m + p.optimal_fiber_length_m * torch.cos(alpha)
    v_mt = -0.98 * p.max_contraction_velocity_mps / torch.cos(alpha)
    sol = solve_norm_tendon_force(l_mt, v_mt, 0.05, p)
    r0 = equilibrium_residual(l_mt, v_mt, 0.05, torch.zeros(3, dtype=F64), p)
    r5 = equilibrium_residual(l_mt, v_mt, 0.05, torch.full((3,), 5.0, dtype=F64), p)
    assert (r0 > 0).all() and (r5 > 0).all()
    assert sol.converged.all()
    assert ((sol.norm_tendon_force < 0) & (sol.norm_tendon_force > -dg.DEGROOTE2016.c3)).all()
    assert equilibrium_residual(l_mt, v_mt, 0.05, sol.norm_tendon_force, p).abs().max() < 1e-13


def test_equilibrium_forces_equal_the_state_and_any_layout_works():
    p = params(ignore_tendon_compliance=[False, True, False])
    l_mt, v_mt, act = in_domain_inputs(p, shape=(3, 7, 5), seed=4)
    state = equilibrium_state(l_mt, v_mt, act, p)
    with torch.no_grad():  # the solver's own last evaluation: no extra pass over the curves
        tendon, fiber = equilibrium_forces(l_mt, v_mt, act, p)
    assert tendon.shape == fiber.shape == (3, 7, 5, 3)
    torch.testing.assert_close(tendon, state.tendon_force_n, rtol=1e-13, atol=1e-9)
    torch.testing.assert_close(fiber, state.fiber_force_n, rtol=1e-12, atol=1e-9)
    # with autograd: the same values, and gradients through the implicit step
    l_req = l_mt.clone().requires_grad_(True)
    tendon_g, fiber_g = equilibrium_forces(l_req, v_mt, act, p)
    torch.testing.assert_close(tendon_g.detach(), state.tendon_force_n, rtol=1e-13, atol=1e-9)
    (grad_forces,) = torch.autograd.grad(tendon_g.sum(), l_req)
    (grad_state,) = torch.autograd.grad(equilibrium_state(l_req, v_mt, act, p).tendon_force_n.sum(), l_req)
    torch.testing.assert_close(grad_forces, grad_state)
    # one muscle, no batch dimension; scalar velocity and activation broadcast
    single = solve_norm_tendon_force(l_mt[0, 0, 0], 0.0, 0.5, p)
    assert single.norm_tendon_force.shape == (3,)


def test_compiled_solver_matches_eager():
    p = params(fiber_damping=[0.1, 0.1, 0.1])
    l_mt, v_mt, act = in_domain_inputs(p, shape=(64, 10), seed=5)
    # first row: fast shortening at low activation (root outside [0, 5]): the compiled fallback runs too
    alpha = p.pennation_angle_at_optimal_rad
    l_mt[0] = p.tendon_slack_length_m + p.optimal_fiber_length_m * torch.cos(alpha)
    v_mt[0] = -0.98 * p.max_contraction_velocity_mps / torch.cos(alpha)
    act[0] = 0.05
    with torch.no_grad():
        eager = equilibrium_forces(l_mt, v_mt, act, p)
        compiled = equilibrium_forces(l_mt, v_mt, act, p, compile=True)
    assert (eager[0][0] < 0).all()  # tendon in compression there
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-9)


# ------------------------------------------------------------------------------------------ activation
def test_activation_derivative_hand_solved():
    e = torch.tensor([0.9, 0.1, 0.5], dtype=F64)
    a = torch.tensor([0.2, 0.7, 0.5], dtype=F64)
    d = activation_derivative(e, a, 0.01, 0.04, smoothing=1e9)  # saturated switch: tanh = +-1
    z = 0.5 + 1.5 * a
    assert d[0].item() == pytest.approx((0.9 - 0.2) / (0.01 * z[0].item()), rel=1e-14)
    assert d[1].item() == pytest.approx((0.1 - 0.7) * z[1].item() / 0.04, rel=1e-14)
    assert d[2].item() == 0.0
    # Default smoothing 0.1 (De Groote 2016): nearly the mean of the two rates.
    d01 = activation_derivative(e, a, 0.01, 0.04)
    mean_rate = 0.5 / (0.01 * z) + 0.5 * z / 0.04
    torch.testing.assert_close(d01, mean_rate * (e - a), rtol=0.1, atol=0)


def test_simulate_activation_matches_scipy():
    from scipy.integrate import solve_ivp

    dt = 0.002
    time = np.arange(0.0, 0.4, dt)
    excitation = np.stack([0.5 + 0.45 * np.sin(2 * np.pi * 3 * time), (time > 0.1) * 0.8 + 0.05], axis=-1)
    tau_a, tau_d, b = np.array([0.01, 0.015]), np.array([0.04, 0.06]), np.array([10.0, 0.1])

    def rhs(t_s, a):
        e = np.array([np.interp(t_s, time, excitation[:, j]) for j in range(2)])
        z = 0.5 + 1.5 * a
        f = 0.5 * np.tanh(b * (e - a))
        return (1 / (tau_a * z) * (f + 0.5) + z / tau_d * (0.5 - f)) * (e - a)

    ref = solve_ivp(rhs, (0, time[-1]), excitation[0], t_eval=time, rtol=1e-11, atol=1e-13, max_step=dt / 4).y.T
    ours = simulate_activation(
        torch.tensor(excitation)[None], dt, activation_time_constant_s=torch.tensor(tau_a),
        deactivation_time_constant_s=torch.tensor(tau_d), smoothing=torch.tensor(b), substeps=4,
    )[0].numpy()
    assert ours.shape == excitation.shape
    np.testing.assert_allclose(ours, ref, atol=2e-6)
