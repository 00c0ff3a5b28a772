"""Forces-only fast paths (rigid_tendon_forces, compliant_tendon_forces) against the full states (no OpenSim).

The fast paths evaluate the same curves in one elementwise kernel with precomputed per-muscle constants and a
tiled state-major layout (rows of whole states, a multiple of the SIMD width, plus a tail of leftover states):
they must equal the tendon and fiber force of rigid_tendon_state / compliant_tendon_state (which match
OpenSim to 1e-11, tests/integration/test_degroote_vs_opensim.py) to float64 round-off in every layout
(tail or not, broadcast inputs), eagerly and compiled, and be differentiable.
"""

from __future__ import annotations

import pytest
import torch

from pimsk.core.muscle_state import (
    compliant_tendon_forces,
    compliant_tendon_state,
    equilibrium_forces,
    equilibrium_state,
    rigid_tendon_forces,
    rigid_tendon_state,
    solve_norm_tendon_force,
)
from tests.unit.test_muscle_state import in_domain_inputs, params

F64 = torch.float64


def explicit_inputs(p, shape, seed=0):
    """In-domain (l_MT, v_MT, a) and f~T within 10 % of equilibrium (fiber velocity near the curve's domain)."""
    l_mt, v_mt, act = in_domain_inputs(p, shape=shape, seed=seed)
    f0 = solve_norm_tendon_force(l_mt, v_mt, act, p).norm_tendon_force.detach()
    g = torch.Generator().manual_seed(seed + 1)
    f_t = (f0 * (0.9 + 0.2 * torch.rand(f0.shape, generator=g, dtype=F64))).to(p.dtype)
    return l_mt, v_mt, act, f_t


def assert_forces_equal(state, forces, p, tol):
    f_max = p.max_isometric_force_n
    for ref, new in ((state.tendon_force_n, forces[0]), (state.fiber_force_n, forces[1])):
        assert new.shape == ref.shape
        assert torch.isfinite(new).all()
        assert ((new - ref).abs() / f_max).max().item() <= tol


@pytest.mark.parametrize("ignore_passive", [False, True])
# 3 muscles, float64: rows of 4 states fill 12 lanes. Whole rows; 39 states as 3 rows of 13 (39 lanes in 40);
# 101 states: rows + 5 leftover states; 5 and 1 state: leftovers only.
@pytest.mark.parametrize("shape", [(64, 4), (39,), (101,), (5, 1), ()])
def test_rigid_forces_equal_the_state(shape, ignore_passive):
    p = params(ignore_passive_fiber_force=[ignore_passive, False, ignore_passive])
    l_mt, v_mt, act = in_domain_inputs(p, shape=shape)
    state = rigid_tendon_state(l_mt, v_mt, act, p)
    assert_forces_equal(state, rigid_tendon_forces(l_mt, v_mt, act, p), p, 1e-13)


@pytest.mark.parametrize("ignore_passive", [False, True])
@pytest.mark.parametrize("shape", [(64, 4), (39,), (101,), (5, 1), ()])
def test_explicit_forces_equal_the_state(shape, ignore_passive):
    p = params(ignore_passive_fiber_force=[ignore_passive, False, ignore_passive])
    l_mt, v_mt, act, f_t = explicit_inputs(p, shape)
    state = compliant_tendon_state(l_mt, v_mt, act, f_t, p)
    if state.force_velocity_multiplier.numel() > 30:  # both lengthening and shortening fibers
        assert state.force_velocity_multiplier.max() > 1.0 and state.force_velocity_multiplier.min() < 1.0
    assert_forces_equal(state, compliant_tendon_forces(l_mt, v_mt, act, f_t, p), p, 1e-12)


def test_broadcast_inputs_and_scalars():
    p = params()
    l_mt, v_mt, act, f_t = explicit_inputs(p, (40,))
    # activation and velocity broadcast from a scalar / one row.
    state = rigid_tendon_state(l_mt, 0.1, act[0], p)
    assert_forces_equal(state, rigid_tendon_forces(l_mt, 0.1, act[0], p), p, 1e-13)
    state = compliant_tendon_state(l_mt, v_mt, 0.7, f_t, p)
    assert_forces_equal(state, compliant_tendon_forces(l_mt, v_mt, 0.7, f_t, p), p, 1e-12)


def test_float32_forces_close_to_float64_state():
    p = params()
    l_mt, v_mt, act, f_t = explicit_inputs(p, (50, 2))
    q = p.to(dtype=torch.float32)
    state = compliant_tendon_state(l_mt, v_mt, act, f_t, p)
    t, f = compliant_tendon_forces(*(x.float() for x in (l_mt, v_mt, act, f_t)), q)
    assert t.dtype == torch.float32
    assert_forces_equal(state, (t.double(), f.double()), p, 1e-4)


def test_compiled_forces_equal_eager():
    p = params()
    l_mt, v_mt, act, f_t = explicit_inputs(p, (101,))  # whole rows and leftover states
    eager = compliant_tendon_forces(l_mt, v_mt, act, f_t, p)
    compiled = compliant_tendon_forces(l_mt, v_mt, act, f_t, p, compile=True)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-9)


def test_forces_are_differentiable():
    p = params()
    l_mt, v_mt, act, f_t = explicit_inputs(p, (6,))
    inputs = [x.clone().requires_grad_() for x in (l_mt, v_mt, act, f_t)]
    assert torch.autograd.gradcheck(lambda *x: compliant_tendon_forces(*x, p)[1], inputs)
    assert torch.autograd.gradcheck(lambda *x: rigid_tendon_forces(*x, p), inputs[:3])
    f_max = p.max_isometric_force_n.clone().requires_grad_()
    rigid_tendon_forces(*inputs[:3], p.replace(max_isometric_force_n=f_max))[0].sum().backward()
    assert f_max.grad is not None and torch.isfinite(f_max.grad).all()


@pytest.mark.parametrize("shape", [(16, 2), (39,), (101,), (5,)])
def test_equilibrium_forces_equal_the_state_in_every_tiling(shape):
    p = params()
    l_mt, v_mt, act = in_domain_inputs(p, shape=shape)
    state = equilibrium_state(l_mt, v_mt, act, p)
    with torch.no_grad():
        forces = equilibrium_forces(l_mt, v_mt, act, p)
    assert forces[0].is_contiguous() and forces[1].is_contiguous()
    assert_forces_equal(state, forces, p, 1e-12)


@pytest.mark.parametrize("compile", [False, True])
def test_equilibrium_forces_float32_within_tolerance_of_the_float64_state(compile):
    # Many states from the cold start: the last fixed evaluation doubles as the check, and the Newton step
    # from it is taken where the a-posteriori residual estimate allows (a wild first step must not fool it);
    # the float32 forces stay within the float32 solver tolerance of the float64 equilibrium.
    p = params()
    l_mt, v_mt, act = in_domain_inputs(p, shape=(4000,), seed=7)
    state = equilibrium_state(l_mt, v_mt, act, p)
    with torch.no_grad():
        forces = equilibrium_forces(*(x.float() for x in (l_mt, v_mt, act)), p.to(dtype=torch.float32),
                                    compile=compile)
    assert_forces_equal(state, tuple(x.double() for x in forces), p, 2e-5)


def test_equilibrium_forces_keep_a_root_outside_the_bounds_only_without_a_sign_change():
    # The damping case of test_root_outside_the_bounds_is_kept_where_there_is_none_inside (no equilibrium in
    # [0, 5], the root f~T in (-c3, 0) kept), beside in-domain states (roots in [0, 5]).
    p = params(fiber_damping=[0.1, 0.1, 0.1])
    alpha = p.pennation_angle_at_optimal_rad
    pushing = (p.tendon_slack_length_m + p.optimal_fiber_length_m * torch.cos(alpha),
               -0.98 * p.max_contraction_velocity_mps / torch.cos(alpha), torch.full((3,), 0.05, dtype=F64))
    l_mt, v_mt, act = in_domain_inputs(p, shape=(20,), seed=8)
    inputs = [torch.cat([x, y.expand(1, 3)]) for x, y in zip((l_mt, v_mt, act), pushing)]
    state = equilibrium_state(*inputs, p)
    with torch.no_grad():
        tendon, fiber = equilibrium_forces(*inputs, p)
    assert (state.tendon_force_n[-1] < 0).all()
    assert_forces_equal(state, (tendon, fiber), p, 1e-12)
