"""Physics loss terms: zero on hand-built consistent data, the hand-computed value when perturbed, gradients.

The toy (tests/unit/_toy_physics.py) is a pendulum with a hand-solved equation of motion and two muscles with
constant moment arms; the motion is quadratic in time so that finite differences are exact; constant
excitation e gives constant activation a = e exactly (da/dt = 0 at a = e, De Groote 2016 eq. 1).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pimsk.core.muscle_state import equilibrium_state
from pimsk.errors import ConfigError
from pimsk.learn.losses import (LossWeights, PhysicsLoss, PhysicsSpec, TrainingLoss, second_time_derivative,
                                time_derivative)
from pimsk.learn.networks import build_network

_spec = importlib.util.spec_from_file_location("_toy_physics", Path(__file__).with_name("_toy_physics.py"))
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)

OUTPUTS = ["theta", "FLEX", "EXT"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one torch thread is much faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _consistent_forces(q, qd, activation):
    """DeGroote tendon forces of both muscles at the given kinematics and activation (batch, time, 2)."""
    sur, p = toy.surrogate(), toy.params()
    lengths, arms = sur.lengths_and_moment_arms(q)
    return equilibrium_state(lengths, -(arms[..., 0] * qd), activation, p).tendon_force_n


def _physics(spec=None, targets=None, emg_labels=("FLEX", "EXT")):
    return PhysicsLoss(OUTPUTS, targets or OUTPUTS, list(emg_labels), toy.surrogate(), toy.params(), toy.chain(),
                       spec or PhysicsSpec(excitation_gain=1.0, moment_scale_nm=2.0))


# ------------------------------------------------------------------------------------- derivatives
def test_time_derivatives_exact_on_polynomials_with_per_sample_dt():
    dt = torch.tensor([0.01, 0.02, 0.005], dtype=torch.float64)
    t = torch.arange(30, dtype=torch.float64)[None, :, None] * dt[:, None, None]
    x = 1.0 - 2.0 * t + 3.0 * t ** 2 + 4.0 * t ** 3
    assert torch.allclose(time_derivative(3.0 * t ** 2 - t, dt), 6.0 * t - 1.0, atol=1e-12)
    assert torch.allclose(second_time_derivative(x, dt), 6.0 + 24.0 * t, atol=1e-8)
    with pytest.raises(ValueError):
        time_derivative(x[:, :2], dt)


# ---------------------------------------------------------------------------------------- muscle
def test_muscle_consistency_zero_on_degroote_forces_and_known_when_perturbed():
    q, qd, _, dt = toy.quadratic_motion()
    e = torch.tensor([0.3, 0.2], dtype=torch.float64)
    emg = e.expand(q.shape[0], q.shape[1], 2).clone()
    forces = _consistent_forces(q, qd, emg)
    pred = torch.cat([q, forces], dim=-1)
    phys = _physics()
    out = phys(pred, emg, pred, dt)
    assert float(out["physics_muscle"]) < 1e-24
    # the activation from the dynamics is the constant excitation
    assert torch.allclose(phys.activation(emg, dt), emg, atol=1e-15)
    # +2 N on FLEX at every frame: mean over (frames, 2 muscles) of (2 / 400)^2 = (2/400)^2 / 2
    bumped = pred.clone()
    bumped[..., 1] += 2.0
    value = float(phys(bumped, emg, pred, dt)["physics_muscle"])
    assert value == pytest.approx((2.0 / 400.0) ** 2 / 2.0, rel=1e-9)


def test_muscle_consistency_force_scale_from_labels():
    q, qd, _, dt = toy.quadratic_motion()
    emg = torch.tensor([0.3, 0.2], dtype=torch.float64).expand(q.shape[0], q.shape[1], 2).clone()
    pred = torch.cat([q, _consistent_forces(q, qd, emg)], dim=-1)
    phys = _physics(PhysicsSpec(excitation_gain=1.0, moment_scale_nm=2.0, force_scale="labels"))
    info = phys.calibrate(emg.numpy(), pred.numpy(), dt.numpy())
    rms = pred[..., 1:].pow(2).mean(dim=(0, 1)).sqrt()
    assert info["force_scale_n"]["FLEX"] == pytest.approx(float(rms[0]), rel=1e-12)
    bumped = pred.clone()
    bumped[..., 2] -= 1.5
    value = float(phys(bumped, emg, pred, dt)["physics_muscle"])
    assert value == pytest.approx((1.5 / float(rms[1])) ** 2 / 2.0, rel=1e-9)


def test_excitation_gain_calibration_recovers_known_gain():
    q, qd, _, dt = toy.quadratic_motion(n_batch=4, n_time=60)
    t = torch.arange(q.shape[1], dtype=torch.float64)[None, :, None] * dt[:, None, None]
    envelope = 0.5 + 0.4 * torch.sin(2 * math.pi * 1.5 * t + torch.tensor([0.0, 1.0]))  # (batch, time, 2)
    true_gain = torch.tensor([0.25, 0.6], dtype=torch.float64)
    phys = _physics(PhysicsSpec(excitation_gain="calibrate", moment_scale_nm=2.0))
    act = phys.activation(envelope, dt, true_gain)
    forces = _consistent_forces(q, qd, act)
    labels = torch.cat([q, forces], dim=-1)
    info = phys.calibrate(envelope.numpy(), labels.numpy(), dt.numpy())
    assert info["excitation_gain"]["FLEX"] == pytest.approx(0.25, rel=1e-4)
    assert info["excitation_gain"]["EXT"] == pytest.approx(0.6, rel=1e-4)
    violation = phys.label_violation(envelope.numpy(), labels.numpy(), dt.numpy())
    assert violation["physics_muscle"] < 1e-10


# --------------------------------------------------------------------------------------- moments
def _balanced_forces(q, qdd):
    """FLEX force chosen freely, EXT force so that r_F F_F + r_E F_E equals the hand-solved moment."""
    tau = toy.hand_moment(q, qdd)[..., 0]
    f_flex = 80.0 + 10.0 * torch.cos(3.0 * q[..., 0])
    f_ext = (tau - toy.ARM_M["FLEX"] * f_flex) / toy.ARM_M["EXT"]
    return torch.stack([f_flex, f_ext], dim=-1)


def test_moment_balance_zero_with_dynamics_and_known_when_perturbed():
    q, qd, qdd, dt = toy.quadratic_motion()
    pred = torch.cat([q, _balanced_forces(q, qdd)], dim=-1)
    emg = torch.full((q.shape[0], q.shape[1], 2), 0.1, dtype=torch.float64)
    phys = _physics()
    assert float(phys(pred, emg, pred, dt)["physics_moment"]) < 1e-26
    bumped = pred.clone()
    bumped[..., 1] += 5.0  # +5 N on FLEX: residual r_F * 5 N, scale 2 N m
    value = float(phys(bumped, emg, pred, dt)["physics_moment"])
    assert value == pytest.approx((toy.ARM_M["FLEX"] * 5.0 / 2.0) ** 2, rel=1e-9)
    # a wrong angle changes the dynamics moment: non-zero
    tilted = pred.clone()
    tilted[..., 0] += 0.1
    assert float(phys(tilted, emg, pred, dt)["physics_moment"]) > 1e-6


def test_moment_balance_against_a_target_moment_column():
    q, qd, qdd, dt = toy.quadratic_motion()
    forces = _balanced_forces(q, qdd)
    moment = toy.hand_moment(q, qdd)
    targets = torch.cat([q, forces, moment], dim=-1)
    spec = PhysicsSpec(moment_source="target", moment_columns={"theta": "theta_moment"}, excitation_gain=1.0,
                       moment_scale_nm=0.5)
    phys = PhysicsLoss(OUTPUTS, OUTPUTS + ["theta_moment"], ["FLEX", "EXT"], toy.surrogate(), toy.params(), None, spec)
    emg = torch.full((q.shape[0], q.shape[1], 2), 0.1, dtype=torch.float64)
    pred = targets[..., :3]
    assert float(phys(pred, emg, targets, dt)["physics_moment"]) < 1e-26
    off = targets.clone()
    off[..., 3] += 0.2  # ID moment 0.2 N m higher -> residual -0.2 / 0.5
    assert float(phys(pred, emg, off, dt)["physics_moment"]) == pytest.approx(0.16, rel=1e-9)


def test_auto_moment_scale_is_rms_of_the_reference_moment():
    q, qd, qdd, dt = toy.quadratic_motion()
    pred = torch.cat([q, _balanced_forces(q, qdd)], dim=-1)
    emg = torch.full((q.shape[0], q.shape[1], 2), 0.1, dtype=torch.float64)
    phys = _physics(PhysicsSpec(excitation_gain=1.0))
    info = phys.calibrate(emg.numpy(), pred.numpy(), dt.numpy())
    expected = float(toy.hand_moment(q, qdd).pow(2).mean().sqrt())
    assert info["moment_scale_nm"]["theta"] == pytest.approx(expected, rel=1e-10)


# --------------------------------------------------------------------------------------- config
def test_physics_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="moment_source"):
        PhysicsSpec.from_dict({"moment_source": "magic"})
    with pytest.raises(ConfigError, match="physics"):
        PhysicsSpec.from_dict({"colour": "blue"})
    with pytest.raises(ConfigError, match="not predicted"):
        PhysicsLoss(["FLEX", "EXT"], ["FLEX", "EXT"], ["FLEX"], toy.surrogate(), toy.params(), toy.chain(),
                    PhysicsSpec(fixed_coordinates_rad={"theta": 0.0}))
    with pytest.raises(ConfigError, match="moment column"):
        PhysicsLoss(OUTPUTS, OUTPUTS, ["FLEX"], toy.surrogate(), toy.params(), None,
                    PhysicsSpec(moment_source="target", moment_columns={"theta": "nope"}))


# ------------------------------------------------------------------------------------- gradients
def test_gradients_reach_every_network_parameter_through_the_physics():
    torch.manual_seed(0)
    q, qd, qdd, dt = toy.quadratic_motion(n_batch=4, n_time=40)
    emg = (0.2 + 0.1 * torch.rand(4, 40, 2, dtype=torch.float64))
    targets = torch.cat([q, _balanced_forces(q, qdd)], dim=-1)
    net = build_network(2, 3, {"n_blocks": 2, "channels": 8, "fc_hidden": [8], "dropout": 0.0}, seed=0,
                        dtype=torch.float64)
    y = targets.reshape(-1, 3)
    net.set_scaling(np.zeros(2), np.ones(2), y.mean(0).numpy(), y.std(0).numpy(), 0.01)
    phys = _physics()
    batch = {"emg": emg, "targets": targets, "dt_s": dt}
    for name in ("physics_moment", "physics_muscle"):
        net.zero_grad()
        terms = phys(net.to_si(net(emg, dt)), emg, targets, dt)
        terms[name].backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name
    # total = data + lambda * physics; lambda = 0 gives exactly the data gradient
    loss_pi = TrainingLoss(LossWeights(lam=0.7), [0, 1, 2], phys)
    loss_0 = TrainingLoss(LossWeights(lam=0.0), [0, 1, 2], phys)
    loss_data = TrainingLoss(LossWeights(lam=0.0), [0, 1, 2], None)
    net.zero_grad()
    t_pi = loss_pi(net(emg, dt), batch, net)
    expected = t_pi["data"] + 0.7 * (t_pi["physics_moment"] + t_pi["physics_muscle"])
    assert float(t_pi["total"].detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    grads = {}
    for key, fn in (("zero", loss_0), ("data", loss_data)):
        net.zero_grad()
        terms = fn(net(emg, dt), batch, net)
        terms["total"].backward()
        grads[key] = [p.grad.clone() for p in net.parameters()]
        if key == "zero":
            assert math.isfinite(float(terms["physics_moment"]))  # still logged
        else:
            assert math.isnan(float(terms["physics_moment"]))
    assert all(torch.equal(a, b) for a, b in zip(grads["zero"], grads["data"]))


def test_trainable_excitation_gain_gets_a_gradient():
    q, qd, _, dt = toy.quadratic_motion()
    emg = torch.full((q.shape[0], q.shape[1], 2), 0.5, dtype=torch.float64)
    forces = _consistent_forces(q, qd, torch.full_like(emg, 0.2))
    pred = torch.cat([q, forces], dim=-1)
    phys = _physics(PhysicsSpec(excitation_gain=1.0, trainable_gain=True, moment_scale_nm=1.0))
    out = phys(pred, emg, pred, dt)
    out["physics_muscle"].backward()
    assert phys.log_gain.grad is not None and (phys.log_gain.grad > 0).all()  # gain too high -> decrease


def test_coordinates_from_the_labels_drive_the_physics_when_not_predicted():
    """Outputs: forces only; the angle comes from a label column (e.g. IK), not from the network."""
    q, qd, qdd, dt = toy.quadratic_motion()
    forces = _balanced_forces(q, qdd)
    targets = torch.cat([q, forces], dim=-1)  # columns: theta_ik, FLEX, EXT
    spec = PhysicsSpec(label_coordinates={"theta": "theta_ik"}, excitation_gain=1.0, moment_scale_nm=2.0)
    phys = PhysicsLoss(["FLEX", "EXT"], ["theta_ik", "FLEX", "EXT"], ["FLEX", "EXT"], toy.surrogate(), toy.params(),
                       toy.chain(), spec)
    emg = torch.full((q.shape[0], q.shape[1], 2), 0.1, dtype=torch.float64)
    assert float(phys(forces, emg, targets, dt)["physics_moment"]) < 1e-26
    bumped = forces.clone()
    bumped[..., 1] -= 4.0  # EXT -4 N: residual -r_E * 4 / 2
    value = float(phys(bumped, emg, targets, dt)["physics_moment"])
    assert value == pytest.approx((toy.ARM_M["EXT"] * 4.0 / 2.0) ** 2, rel=1e-9)
    with pytest.raises(ConfigError, match="neither predicted"):
        PhysicsLoss(["FLEX", "EXT"], ["theta_ik", "FLEX", "EXT"], ["FLEX"], toy.surrogate(), toy.params(),
                    toy.chain(), PhysicsSpec())


def test_clamp_to_surrogate_range():
    """The toy surrogate is fitted on theta in [-1.2, 1.2] rad: with clamp_to_surrogate_range a prediction of
    2.0 rad is evaluated at 1.2 (length L0 - r 1.2), -3.0 at -1.2; without, as predicted."""
    q = torch.tensor([[[2.0], [0.5], [-3.0]]], dtype=torch.float64)
    clamped = _physics(PhysicsSpec(excitation_gain=1.0, moment_scale_nm=2.0, clamp_to_surrogate_range=True))
    plain = _physics(PhysicsSpec(excitation_gain=1.0, moment_scale_nm=2.0))
    assert clamped.surrogate_q(q)[0, :, 0].tolist() == [toy.HALF_RANGE, 0.5, -toy.HALF_RANGE]
    assert plain.surrogate_q(q)[0, :, 0].tolist() == [2.0, 0.5, -3.0]
    lengths = clamped.surrogate.lengths(clamped.surrogate_q(q))[0, 0]
    for k, m in enumerate(toy.MUSCLES):
        assert float(lengths[k]) == pytest.approx(toy.L0_M[m] - toy.ARM_M[m] * toy.HALF_RANGE, rel=1e-12)
