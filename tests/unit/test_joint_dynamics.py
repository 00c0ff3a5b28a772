"""Torch open-chain dynamics on hand-solved pendulums (no OpenSim)."""

from __future__ import annotations

import numpy as np
import torch

from pimsk.core.joint_dynamics import AxisSpec, BodySpec, ChainSpec, CouplerSpec, OpenChainDynamics, build_function

G = 9.81
EYE = np.eye(3).tolist()
ZERO = [0.0, 0.0, 0.0]


def _pin(coordinate: str) -> list[AxisSpec]:
    return [AxisSpec([0.0, 0.0, 1.0], {"kind": "linear", "slope": 1.0, "intercept": 0.0}, coordinate)]


def _link(name: str, parent: str, mass: float, com_y: float, izz: float, joint_y: float, coord: str) -> BodySpec:
    """A planar link hanging along -y, pinned about z at ``joint_y`` on its parent."""
    inertia = np.diag([izz * 0.5, izz * 0.3, izz]).tolist()
    return BodySpec(name=name, parent=parent, joint=f"{name}_pin", mass_kg=mass, com_m=[0.0, com_y, 0.0],
                    inertia_kgm2=inertia, parent_offset_rotation=EYE, parent_offset_translation_m=[0.0, joint_y, 0.0],
                    child_offset_rotation=EYE, child_offset_translation_m=ZERO, rotations=_pin(coord))


def _double_pendulum() -> tuple[OpenChainDynamics, dict[str, float]]:
    p = {"m1": 1.3, "m2": 0.8, "l1": 0.45, "c1": 0.2, "c2": 0.17, "i1": 0.03, "i2": 0.011}
    spec = ChainSpec(root_body="ground", root_rotation=EYE, root_translation_m=ZERO, gravity_m_s2=[0.0, -G, 0.0],
                     coordinates=["q1", "q2"],
                     bodies=[_link("upper", "ground", p["m1"], -p["c1"], p["i1"], 0.0, "q1"),
                             _link("lower", "upper", p["m2"], -p["c2"], p["i2"], -p["l1"], "q2")])
    return OpenChainDynamics(spec), p


def _double_pendulum_tau(q, qd, qdd, p):
    """Textbook planar double pendulum, angles from the downward vertical (Spong et al., Robot Modeling)."""
    m1, m2, l1, c1, c2, i1, i2 = (p[k] for k in ("m1", "m2", "l1", "c1", "c2", "i1", "i2"))
    q1, q2 = q[:, 0], q[:, 1]
    c = np.cos(q2)
    m11 = i1 + i2 + m1 * c1**2 + m2 * (l1**2 + c2**2 + 2 * l1 * c2 * c)
    m12 = i2 + m2 * (c2**2 + l1 * c2 * c)
    m22 = i2 + m2 * c2**2
    h = m2 * l1 * c2 * np.sin(q2)
    g1 = G * (m1 * c1 + m2 * l1) * np.sin(q1) + m2 * G * c2 * np.sin(q1 + q2)
    g2 = m2 * G * c2 * np.sin(q1 + q2)
    tau1 = m11 * qdd[:, 0] + m12 * qdd[:, 1] - h * (2 * qd[:, 0] * qd[:, 1] + qd[:, 1] ** 2) + g1
    tau2 = m12 * qdd[:, 0] + m22 * qdd[:, 1] + h * qd[:, 0] ** 2 + g2
    return np.stack([tau1, tau2], 1)


def test_double_pendulum_matches_the_textbook_equations() -> None:
    dyn, p = _double_pendulum()
    rng = np.random.default_rng(0)
    q, qd, qdd = (rng.uniform(-2, 2, (200, 2)) for _ in range(3))
    tau = dyn(*(torch.tensor(x) for x in (q, qd, qdd))).numpy()
    assert np.abs(tau - _double_pendulum_tau(q, qd, qdd, p)).max() < 1e-12


def test_batched_shapes_float32_and_gradcheck() -> None:
    dyn, _ = _double_pendulum()
    q = torch.randn(4, 9, 2, dtype=torch.float64)
    tau = dyn(q, q.cos(), q.sin())
    assert tau.shape == (4, 9, 2)
    dyn32 = _double_pendulum()[0].to(torch.float32)
    tau32 = dyn32(q.float(), q.cos().float(), q.sin().float())
    assert tau32.dtype == torch.float32 and torch.allclose(tau32.double(), tau, atol=1e-4)
    # gradients with respect to kinematics and inertial parameters
    x = [torch.randn(3, 2, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    assert torch.autograd.gradcheck(lambda a, b, c: dyn(a, b, c), x)
    mass = dyn.mass_kg.clone().requires_grad_(True)
    com = dyn.com_m.clone().requires_grad_(True)
    inertia = dyn.inertia_kgm2.clone().requires_grad_(True)

    def with_params(m, c, i):
        dyn.mass_kg, dyn.com_m, dyn.inertia_kgm2 = m, c, i
        return dyn(*[v.detach() for v in x])

    assert torch.autograd.gradcheck(with_params, (mass, com, inertia))


def test_coupled_coordinate_is_the_virtual_work_projection() -> None:
    # lower link's angle is coupled: q2 = 0.5 * q1 (a CoordinateCouplerConstraint); the net generalized
    # force of q1 is then tau1 + 0.5 tau2 of the unconstrained double pendulum (virtual work).
    dyn2, p = _double_pendulum()
    spec = dyn2.spec
    coupled = ChainSpec(root_body="ground", root_rotation=EYE, root_translation_m=ZERO, gravity_m_s2=[0.0, -G, 0.0],
                        coordinates=["q1"], bodies=spec.bodies,
                        couplers=[CouplerSpec("q2", "q1", {"kind": "linear", "slope": 0.5, "intercept": 0.0})])
    dyn = OpenChainDynamics(coupled)
    rng = np.random.default_rng(1)
    q1, qd1, qdd1 = (rng.uniform(-2, 2, (50, 1)) for _ in range(3))
    q = np.hstack([q1, 0.5 * q1])
    qd = np.hstack([qd1, 0.5 * qd1])
    qdd = np.hstack([qdd1, 0.5 * qdd1])
    full = _double_pendulum_tau(q, qd, qdd, p)
    tau = dyn(*(torch.tensor(x) for x in (q1, qd1, qdd1))).numpy()
    assert np.abs(tau[:, 0] - (full[:, 0] + 0.5 * full[:, 1])).max() < 1e-12


def test_hermite_function_matches_scipy() -> None:
    from scipy.interpolate import CubicHermiteSpline

    x = [-2.0, -1.0, -0.2, 0.5, 2.0]
    y = [0.1, -0.3, 0.2, 0.25, -0.1]
    dy = [0.5, 0.0, 1.2, -0.4, 0.3]
    fn = build_function({"kind": "hermite", "x": x, "y": y, "dydx": dy})
    ref = CubicHermiteSpline(x, y, dy)
    xs = np.linspace(-1.99, 1.99, 301)
    f, d1, d2 = (t.numpy() for t in fn.triple(torch.tensor(xs)))
    assert np.abs(f - ref(xs)).max() < 1e-14
    assert np.abs(d1 - ref(xs, 1)).max() < 1e-12
    assert np.abs(d2 - ref(xs, 2)).max() < 1e-10
    # linear beyond the end knots, with the end slopes
    out = fn(torch.tensor([-3.0, 3.0])).numpy()
    assert np.allclose(out, [0.1 - 0.5, -0.1 + 0.3])


def test_chain_json_roundtrip(tmp_path) -> None:
    dyn, _ = _double_pendulum()
    path = tmp_path / "chain.json"
    dyn.spec.save_json(path)
    back = OpenChainDynamics(ChainSpec.load_json(path))
    q = torch.randn(5, 2, dtype=torch.float64)
    assert torch.equal(back(q, q, q), dyn(q, q, q))
