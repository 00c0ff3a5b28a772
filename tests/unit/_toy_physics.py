"""A hand-built musculoskeletal toy (no OpenSim) for the learning tests.

One hinge ``theta`` (rad) about ground z; a hand of mass m hanging with its centre of mass d below the hinge:
net moment (hand-solved) ``tau = (Izz + m d^2) theta'' + m g d sin(theta)``. Two muscles with constant moment
arms ``r_i`` (linear MTU lengths ``l_i = L0_i - r_i theta``): FLEX (r > 0, compliant tendon) and EXT (r < 0,
rigid tendon). Loaded by the tests through importlib (not collected: the name starts with ``_``).
"""

from __future__ import annotations

import math

import torch

from pimsk.core.joint_dynamics import AxisSpec, BodySpec, ChainSpec, OpenChainDynamics
from pimsk.core.muscle_parameters import MuscleParameters
from pimsk.core.path_surrogate import MusclePath, PathSurrogate, PolynomialPiece

MASS_KG = 0.45
COM_M = 0.07
IZZ = 8e-4
G = 9.81
MUSCLES = ["FLEX", "EXT"]
ARM_M = {"FLEX": 0.016, "EXT": -0.012}
L0_M = {"FLEX": 0.265, "EXT": 0.262}
HALF_RANGE = 1.2


def hand_moment(q: torch.Tensor, qdd: torch.Tensor) -> torch.Tensor:
    """Hand-solved net moment of the pendulum (N m)."""
    return (IZZ + MASS_KG * COM_M ** 2) * qdd + MASS_KG * G * COM_M * torch.sin(q)


def chain() -> OpenChainDynamics:
    eye = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    body = BodySpec(name="hand", parent="forearm", joint="wrist", mass_kg=MASS_KG, com_m=[0.0, -COM_M, 0.0],
                    inertia_kgm2=[[5e-4, 0.0, 0.0], [0.0, 3e-4, 0.0], [0.0, 0.0, IZZ]],
                    parent_offset_rotation=eye, parent_offset_translation_m=[0.0, 0.0, 0.0],
                    child_offset_rotation=eye, child_offset_translation_m=[0.0, 0.0, 0.0],
                    rotations=[AxisSpec([0.0, 0.0, 1.0], {"kind": "linear", "slope": 1.0, "intercept": 0.0}, "theta")])
    spec = ChainSpec(root_body="forearm", root_rotation=eye, root_translation_m=[0.0, 0.0, 0.0],
                     gravity_m_s2=[0.0, -G, 0.0], coordinates=["theta"], bodies=[body])
    return OpenChainDynamics(spec)


def surrogate() -> PathSurrogate:
    """l = L0 - r theta as a degree-1 polynomial in x = theta / HALF_RANGE."""
    paths = [MusclePath(m, ["theta"], [PolynomialPiece([[0], [1]], [L0_M[m], -ARM_M[m] * HALF_RANGE], [0.0],
                                                       [HALF_RANGE])]) for m in MUSCLES]
    return PathSurrogate(["theta"], [0.0], [HALF_RANGE], paths)


def params() -> MuscleParameters:
    return MuscleParameters.from_values(
        MUSCLES, max_isometric_force_n=[400.0, 300.0], optimal_fiber_length_m=[0.06, 0.055],
        tendon_slack_length_m=[0.2, 0.205], pennation_angle_at_optimal_rad=[0.05, math.radians(3.0)],
        ignore_tendon_compliance=[False, True])


def quadratic_motion(n_batch: int = 3, n_time: int = 50, dt_s: float = 0.01) -> tuple[torch.Tensor, ...]:
    """theta(t) = q0 + w t + a t^2 / 2 per sample (finite differences are exact); returns q, qd, qdd
    (batch, time, 1) and dt (batch,), each sample with its own time step."""
    dt = torch.tensor([dt_s * (1.0 + 0.25 * k) for k in range(n_batch)], dtype=torch.float64)
    t = torch.arange(n_time, dtype=torch.float64)[None, :] * dt[:, None]
    q0 = torch.linspace(-0.3, 0.2, n_batch, dtype=torch.float64)[:, None]
    w = torch.linspace(1.5, -1.0, n_batch, dtype=torch.float64)[:, None]
    a = torch.linspace(-4.0, 6.0, n_batch, dtype=torch.float64)[:, None]
    q = q0 + w * t + 0.5 * a * t ** 2
    qd = w + a * t
    qdd = a.expand_as(t)
    return q[..., None], qd[..., None], qdd[..., None].clone(), dt
