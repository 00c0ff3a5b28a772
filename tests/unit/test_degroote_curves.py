"""Properties of the DeGrooteFregly2016 curves that follow from the paper and OpenSim's stated corrections.

De Groote et al. (2016) Ann Biomed Eng 44(10) and OpenSim 4.6 DeGrooteFregly2016Muscle.h: f_L(1) = 1,
f_V(-1) = 0, f_V(0) = 1, f_PE(0.2) = 0, f_PE(1 + e0) = 1, f_T(1) = 0, f_T(1 + e_T) = 1,
kT = ln((1 + c3)/c1) / e_T; inverses round-trip; closed-form derivatives equal autograd.
"""

from __future__ import annotations

import math

import pytest
import torch

from pimsk.core import degroote as dg

F64 = torch.float64


def lin(a: float, b: float, n: int = 2001, dtype=F64) -> torch.Tensor:
    return torch.linspace(a, b, n, dtype=dtype)


def test_constants_live_in_one_place():
    k = dg.DEGROOTE2016
    assert (k.c1, k.c2, k.c3) == (0.2, 1.0, 0.2)
    assert (k.min_norm_fiber_length, k.max_norm_fiber_length) == (0.2, 1.8)
    assert (k.min_norm_tendon_force, k.max_norm_tendon_force) == (0.0, 5.0)
    assert k.b33 == pytest.approx(0.5 * math.sqrt(0.5), abs=1e-15)
    with pytest.raises(AttributeError):
        k.c1 = 0.3  # frozen


def test_active_force_length_key_points():
    one = torch.tensor(1.0, dtype=F64)
    assert dg.active_force_length_multiplier(one).item() == pytest.approx(1.0, abs=1e-15)
    x = lin(0.2, 1.8)
    f = dg.active_force_length_multiplier(x)
    assert (f > 0).all()
    # The fitted curve peaks just past optimal length (about 1.001 at l~ = 1.013) and falls off on both sides.
    assert f.max() < 1.002 and abs(x[f.argmax()].item() - 1.0) < 0.02
    assert f[0] < 0.2 and f[-1] < 0.2


@pytest.mark.parametrize("scale", [1.0, 1.3, 2.0])
def test_active_force_width_scale_stretches_about_one(scale):
    x = lin(0.2, 1.8)
    stretched = dg.active_force_length_multiplier(1.0 + scale * (x - 1.0), scale)
    torch.testing.assert_close(stretched, dg.active_force_length_multiplier(x), rtol=1e-14, atol=1e-15)


def test_force_velocity_key_points_and_monotone():
    v = torch.tensor([-1.0, 0.0, 1.0], dtype=F64)
    f = dg.force_velocity_multiplier(v)
    assert f[0].item() == pytest.approx(0.0, abs=1e-15)
    assert f[1].item() == pytest.approx(1.0, abs=1e-15)
    assert f[2].item() == pytest.approx(1.794, abs=1e-3)  # range [0, 1.794] stated by OpenSim
    fine = dg.force_velocity_multiplier(lin(-1, 1))
    assert (fine.diff() > 0).all()


def test_force_velocity_inverse_round_trips():
    v = lin(-1.0, 1.0)
    torch.testing.assert_close(dg.force_velocity_inverse(dg.force_velocity_multiplier(v)), v, rtol=0, atol=1e-13)
    f = lin(0.0, 1.79)
    torch.testing.assert_close(dg.force_velocity_multiplier(dg.force_velocity_inverse(f)), f, rtol=0, atol=1e-13)


@pytest.mark.parametrize("e0", [0.5, 0.6, 0.7])
def test_passive_force_key_points(e0):
    x = torch.tensor([0.2, 1.0 + e0], dtype=F64)
    f = dg.passive_force_multiplier(x, e0)
    assert f[0].item() == pytest.approx(0.0, abs=1e-16)
    assert f[1].item() == pytest.approx(1.0, abs=1e-14)
    assert (dg.passive_force_multiplier(lin(0.2, 1.8), e0).diff() > 0).all()
    # Per-muscle tensor parameter gives the same as the float.
    torch.testing.assert_close(dg.passive_force_multiplier(x, torch.tensor(e0, dtype=F64)), f)


@pytest.mark.parametrize("e_t", [0.033, 0.049, 0.1])
def test_tendon_curve_key_points_and_kt(e_t):
    k_t = dg.tendon_stiffness_parameter(e_t)
    assert k_t == pytest.approx(math.log(6.0) / e_t, rel=1e-14)  # ln((1 + 0.2) / 0.2) / e_T
    x = torch.tensor([1.0, 1.0 + e_t], dtype=F64)
    f = dg.tendon_force_multiplier(x, e_t)
    assert f[0].item() == pytest.approx(0.0, abs=1e-16)
    assert f[1].item() == pytest.approx(1.0, abs=1e-14)
    forces = lin(0.0, 5.0)
    torch.testing.assert_close(
        dg.tendon_force_multiplier(dg.tendon_force_length_inverse(forces, e_t), e_t), forces, rtol=0, atol=1e-13
    )
    assert dg.tendon_force_multiplier(torch.tensor(-10.0, dtype=F64), e_t).item() == pytest.approx(-0.2, abs=1e-12)


def _autograd_derivative(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    return g


@pytest.mark.parametrize(
    "curve, derivative, lo, hi",
    [
        (lambda x: dg.active_force_length_multiplier(x, 1.4), lambda x: dg.active_force_length_multiplier_derivative(x, 1.4), 0.2, 1.8),
        (lambda x: dg.passive_force_multiplier(x, 0.7), lambda x: dg.passive_force_multiplier_derivative(x, 0.7), 0.2, 1.8),
        (dg.force_velocity_multiplier, dg.force_velocity_multiplier_derivative, -1.0, 1.0),
        (dg.force_velocity_inverse, dg.force_velocity_inverse_derivative, 0.0, 1.79),
        (lambda x: dg.tendon_force_multiplier(x, 0.04), lambda x: dg.tendon_force_multiplier_derivative(x, 0.04), 0.98, 1.1),
    ],
)
def test_closed_form_derivatives_equal_autograd(curve, derivative, lo, hi):
    x = lin(lo, hi, 501)
    torch.testing.assert_close(derivative(x), _autograd_derivative(curve, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "pair, value, derivative, lo, hi",
    [
        (lambda x: dg.active_force_length_multiplier_and_derivative(x, 1.2),
         lambda x: dg.active_force_length_multiplier(x, 1.2), lambda x: dg.active_force_length_multiplier_derivative(x, 1.2), 0.2, 1.8),
        (lambda x: dg.passive_force_multiplier_and_derivative(x, 0.7),
         lambda x: dg.passive_force_multiplier(x, 0.7), lambda x: dg.passive_force_multiplier_derivative(x, 0.7), 0.2, 1.8),
        (dg.force_velocity_multiplier_and_derivative, dg.force_velocity_multiplier,
         dg.force_velocity_multiplier_derivative, -1.0, 1.0),
    ],
)
def test_value_and_derivative_pairs(pair, value, derivative, lo, hi):
    x = lin(lo, hi, 501)
    v, d = pair(x)
    torch.testing.assert_close(v, value(x), rtol=1e-15, atol=1e-16)
    torch.testing.assert_close(d, derivative(x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_broadcast_and_dtype(dtype):
    torch.manual_seed(0)
    x = 0.5 + torch.rand(4, 7, 3, dtype=dtype)  # (batch, time, muscle)
    e0 = torch.tensor([0.5, 0.6, 0.7], dtype=dtype)
    scale = torch.tensor([1.0, 1.2, 1.5], dtype=dtype)
    e_t = torch.tensor([0.033, 0.049, 0.06], dtype=dtype)
    outs = [
        dg.active_force_length_multiplier(x, scale),
        dg.passive_force_multiplier(x, e0),
        dg.force_velocity_multiplier(x - 1.0),
        dg.tendon_force_multiplier(1.0 + 0.05 * x, e_t),
        dg.tendon_force_length_inverse(x, e_t),
    ]
    for out in outs:
        assert out.shape == (4, 7, 3) and out.dtype == dtype
    # Column j equals the scalar-parameter evaluation for muscle j.
    for j in range(3):
        torch.testing.assert_close(outs[1][..., j], dg.passive_force_multiplier(x[..., j], float(e0[j])))
        torch.testing.assert_close(outs[0][..., j], dg.active_force_length_multiplier(x[..., j], float(scale[j])))
