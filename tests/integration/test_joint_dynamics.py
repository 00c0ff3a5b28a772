"""Torch open-chain dynamics against OpenSim's InverseDynamicsSolver on the same kinematics.

Kinematics are smooth analytic sines; OpenSim gets q, u = qdot and udot = qddot of every moving coordinate
(dependent ones from OpenSim's own coupler functions and their derivatives), all muscles and other forces
switched off, so both sides compute M(q) qddot + C(q, qdot) - G(q) of the same rigid-body system.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pimsk.core.joint_dynamics import OpenChainDynamics
from pimsk.osim.chain import extract_chain, read_id_moments

pytestmark = [pytest.mark.opensim, pytest.mark.data]

TOL_NM = 1e-6
N_TIMES = 60


def _sines(ranges: list[tuple[float, float]], n: int = N_TIMES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q, qdot, qddot (n, d): each coordinate a sine over most of its range, different frequencies."""
    t = np.linspace(0.0, 2.0, n)[:, None]
    lo, hi = np.array(ranges).T
    mid, amp = (lo + hi) / 2, 0.45 * (hi - lo)
    w = 2 * np.pi * (0.6 + 0.37 * np.arange(len(ranges)))
    phase = 0.3 + 0.9 * np.arange(len(ranges))
    return (mid + amp * np.sin(w * t + phase), amp * w * np.cos(w * t + phase),
            -amp * w**2 * np.sin(w * t + phase))


def _no_forces(osim, model):
    for force in model.getForceSet():
        force.set_appliesForce(False)
    return model


def _mobility_index(osim, model, state, name: str) -> int:
    state.setU(osim.Vector(state.getNU(), 0.0))
    model.getCoordinateSet().get(name).setSpeedValue(state, 1.0)
    u = np.array([state.getU().get(i) for i in range(state.getNU())])
    return int(np.argmax(u))


def _opensim_moving(osim, model, independent: list[str], q, qd, qdd):
    """Values, speeds, accelerations of independent + coupled coordinates from OpenSim's coupler functions."""
    names, vals, vels, accs = list(independent), [q], [qd], [qdd]
    for con in model.getConstraintSet():
        if not con.get_isEnforced():
            continue
        cc = osim.CoordinateCouplerConstraint.safeDownCast(con)
        ind = cc.getIndependentCoordinateNames().get(0)
        if ind not in independent:
            continue
        fn = cc.getFunction()
        scale = osim.PropertyHelper.getValueDouble(cc.getPropertyByName("scale_factor"))
        k = independent.index(ind)
        f = np.array([fn.calcValue(osim.Vector(1, float(x))) for x in q[:, k]])
        d1 = np.array([fn.calcDerivative(osim.StdVectorInt([0]), osim.Vector(1, float(x))) for x in q[:, k]])
        d2 = np.array([fn.calcDerivative(osim.StdVectorInt([0, 0]), osim.Vector(1, float(x))) for x in q[:, k]])
        names.append(cc.getDependentCoordinateName())
        vals.append(scale * f[:, None])
        vels.append(scale * (d1 * qd[:, k])[:, None])
        accs.append(scale * (d2 * qd[:, k] ** 2 + d1 * qdd[:, k])[:, None])
    return names, np.hstack(vals), np.hstack(vels), np.hstack(accs)


def _opensim_forces(osim, model, names, fixed: dict[str, float], q, qd, qdd) -> np.ndarray:
    """InverseDynamicsSolver generalized forces of ``names`` at every time, (n, len(names))."""
    state = model.initSystem()
    cs = model.getCoordinateSet()
    index = [_mobility_index(osim, model, state, n) for n in names]
    solver = osim.InverseDynamicsSolver(model)
    out = np.empty((q.shape[0], len(names)))
    for i in range(q.shape[0]):
        state.setU(osim.Vector(state.getNU(), 0.0))
        for name, value in fixed.items():
            cs.get(name).setValue(state, value, False)
        for k, name in enumerate(names):
            cs.get(name).setValue(state, float(q[i, k]), False)
            cs.get(name).setSpeedValue(state, float(qd[i, k]))
        model.realizeVelocity(state)
        udot = osim.Vector(state.getNU(), 0.0)
        for k, j in enumerate(index):
            udot.set(j, float(qdd[i, k]))
        tau = solver.solve(state, udot)
        out[i] = [tau.get(j) for j in index]
    return out


def _compare(osim, model, root: str, coordinates: list[str], fixed: dict[str, float],
             ranges: list[tuple[float, float]] | None = None) -> tuple[OpenChainDynamics, float, float]:
    spec = extract_chain(model, root, coordinates, fixed)
    dyn = OpenChainDynamics(spec)
    ranges = ranges or [tuple(spec.coordinate_ranges[c]) for c in coordinates]
    q, qd, qdd = _sines(ranges)
    names, qa, qda, qdda = _opensim_moving(osim, model, coordinates, q, qd, qdd)
    assert sorted(names) == sorted(dyn.moving)
    order = [names.index(n) for n in dyn.moving]
    names, qa, qda, qdda = dyn.moving, qa[:, order], qda[:, order], qdda[:, order]
    reference = _opensim_forces(osim, model, names, fixed, qa, qda, qdda)
    args = [torch.tensor(x) for x in (q, qd, qdd)]
    mobility = dyn.mobility_forces(*args).numpy()
    assert np.abs(reference).max() > 0.05  # a real test: the moments are not trivially zero
    err_mobility = float(np.abs(mobility - reference).max())
    # net moment of the independent coordinates: virtual-work projection with OpenSim's coupler slopes
    jac = np.zeros((q.shape[0], len(names), len(coordinates)))
    for k in range(len(coordinates)):
        jac[:, k, k] = 1.0
    if len(names) > len(coordinates):  # d(moving)/d(independent) = OpenSim coupler slopes
        for k in range(len(coordinates)):
            e = np.zeros_like(q)
            e[:, k] = 1.0
            _, _, vel, _ = _opensim_moving(osim, model, coordinates, q, e, np.zeros_like(q))
            jac[:, :, k] = vel[:, order]
    net_reference = np.einsum("tm,tmk->tk", reference, jac)
    err_net = float(np.abs(dyn(*args).numpy() - net_reference).max())
    print(f"{model.getName()} root={root} coords={coordinates}: max|tau| {np.abs(reference).max():.3g} N m, "
          f"max error mobility {err_mobility:.2e}, net {err_net:.2e} N m over {q.shape[0]} times")
    return dyn, err_mobility, err_net


@pytest.fixture(scope="module")
def osim(opensim_module):
    return opensim_module


def test_arm26_shoulder_and_elbow(osim, data_dir: Path) -> None:
    model = _no_forces(osim, osim.Model(str(data_dir / "opensim-models/Models/Arm26/arm26.osim")))
    _, e_mob, e_net = _compare(osim, model, "base", ["r_shoulder_elev", "r_elbow_flex"], {},
                               ranges=[(-1.0, 2.0), (0.0, 2.2)])
    assert e_mob < TOL_NM and e_net < TOL_NM


def test_arm26_elbow_with_shoulder_locked(osim, data_dir: Path) -> None:
    model = _no_forces(osim, osim.Model(str(data_dir / "opensim-models/Models/Arm26/arm26.osim")))
    dyn, e_mob, e_net = _compare(osim, model, "r_humerus", ["r_elbow_flex"], {"r_shoulder_elev": 0.7})
    assert dyn.body_names == ["r_ulna_radius_hand"]
    assert e_mob < TOL_NM and e_net < TOL_NM


def _wrist_with_mass(osim, data_dir: Path):
    """wrist.osim has massless bodies; give the carpals, metacarpals and fingers seeded masses and inertias."""
    model = _no_forces(osim, osim.Model(str(data_dir / "opensim-models/Models/WristModel/wrist.osim")))
    rng = np.random.default_rng(7)
    for body in model.getBodySet():
        if body.getName() in ("ulna", "radius"):
            continue
        body.setMass(float(rng.uniform(0.02, 0.3)))
        body.setMassCenter(osim.Vec3(*rng.uniform(-0.03, 0.03, 3)))
        moments, products = rng.uniform(2e-5, 2e-4, 3), rng.uniform(-5e-6, 5e-6, 3)
        body.setInertia(osim.Inertia(*moments, *products))
    model.finalizeConnections()
    return model


def test_wrist_osim_with_coupled_carpal_bones(osim, data_dir: Path) -> None:
    model = _wrist_with_mass(osim, data_dir)
    dyn, e_mob, e_net = _compare(osim, model, "radius", ["flexion", "deviation"],
                                 {"elbow_flexion": 0.6, "pro_sup": -0.4})
    assert len(dyn.moving) == 6  # flexion, deviation and the four coupled carpal coordinates
    assert e_mob < TOL_NM and e_net < TOL_NM


def _code_built_wrist(osim, pin: bool):
    """Forearm welded to ground (horizontal, rotated), hand on a 2-DOF CustomJoint or a PinJoint."""
    model = osim.Model()
    model.setName("code_wrist")
    model.setGravity(osim.Vec3(0, -9.80665, 0))
    forearm = osim.Body("forearm", 1.2, osim.Vec3(0, -0.12, 0), osim.Inertia(0.006, 0.001, 0.006))
    hand = osim.Body("hand", 0.45, osim.Vec3(0.004, -0.07, 0.006),
                     osim.Inertia(9e-4, 3e-4, 7e-4, 4e-5, -2e-5, 3e-5))
    model.addBody(forearm)
    model.addBody(hand)
    weld = osim.WeldJoint("shoulder_weld", model.getGround(), osim.Vec3(0.1, 1.2, 0.2), osim.Vec3(0, 0.3, 1.4),
                          forearm, osim.Vec3(0, 0, 0), osim.Vec3(0, 0, 0))
    model.addJoint(weld)
    if pin:
        wrist = osim.PinJoint("wrist", forearm, osim.Vec3(0.01, -0.25, 0.0), osim.Vec3(0.2, 0.0, 0.1),
                              hand, osim.Vec3(0, 0.01, 0), osim.Vec3(0, 0.1, 0))
        wrist.upd_coordinates(0).setName("flexion")
        wrist.upd_coordinates(0).setRangeMin(-1.2)
        wrist.upd_coordinates(0).setRangeMax(1.2)
    else:
        st = osim.SpatialTransform()
        st.updTransformAxis(0).setCoordinateNames(osim.ArrayStr("flexion", 1))
        st.updTransformAxis(0).setAxis(osim.Vec3(0, 0, 1))
        st.updTransformAxis(0).set_function(osim.LinearFunction(1.0, 0.0))
        st.updTransformAxis(1).setCoordinateNames(osim.ArrayStr("deviation", 1))
        st.updTransformAxis(1).setAxis(osim.Vec3(1, 0, 0))
        st.updTransformAxis(1).set_function(osim.LinearFunction(1.0, 0.0))
        st.updTransformAxis(2).setAxis(osim.Vec3(0, 1, 0))
        for k, axis in zip((3, 4, 5), ((1, 0, 0), (0, 1, 0), (0, 0, 1))):
            st.updTransformAxis(k).setAxis(osim.Vec3(*axis))
        wrist = osim.CustomJoint("wrist", forearm, osim.Vec3(0.01, -0.25, 0.0), osim.Vec3(0.2, 0.0, 0.1),
                                 hand, osim.Vec3(0, 0.01, 0), osim.Vec3(0, 0.1, 0), st)
    model.addJoint(wrist)
    model.finalizeConnections()
    if not pin:
        cs = model.getCoordinateSet()
        cs.get("flexion").setRangeMin(-1.2)
        cs.get("flexion").setRangeMax(1.2)
        cs.get("deviation").setRangeMin(-0.4)
        cs.get("deviation").setRangeMax(0.6)
    return model


@pytest.mark.parametrize("pin", [False, True], ids=["custom_2dof", "pin"])
def test_code_built_wrist_is_exact(osim, pin: bool) -> None:
    model = _code_built_wrist(osim, pin)
    coords = ["flexion"] if pin else ["flexion", "deviation"]
    _, e_mob, e_net = _compare(osim, model, "forearm", coords, {})
    assert e_mob < TOL_NM and e_net < TOL_NM


def _scaled_gait2392(osim, data_dir: Path, folder: Path) -> Path:
    """gait2392 scaled with the published subject01 Scale setup (files copied; shared data untouched)."""
    pipeline = data_dir / "opensim-models/Pipelines/Gait2392_Simbody"
    for name in ("subject01_Setup_Scale.xml", "gait2392_Scale_MarkerSet.xml", "subject01_static.trc"):
        shutil.copyfile(pipeline / name, folder / name)
    shutil.copyfile(data_dir / "opensim-models/Models/Gait2392_Simbody/gait2392_thelen2003muscle.osim",
                    folder / "gait2392_simbody.osim")  # the setup's generic model, same bodies and joints
    tool = osim.ScaleTool(str(folder / "subject01_Setup_Scale.xml"))
    tool.run()
    out = folder / "subject01_simbody.osim"
    assert out.is_file(), "ScaleTool wrote no model"
    return out


def test_swinging_shank_of_scaled_gait2392(osim, data_dir: Path, tmp_path: Path) -> None:
    model_path = _scaled_gait2392(osim, data_dir, tmp_path)
    model = _no_forces(osim, osim.Model(str(model_path)))
    dyn, e_mob, e_net = _compare(osim, model, "femur_r", ["knee_angle_r", "ankle_angle_r"],
                                 {"hip_flexion_r": 0.4, "pelvis_tilt": -0.1},
                                 ranges=[(-1.9, 0.1), (-0.5, 0.4)])
    assert dyn.body_names == ["tibia_r", "talus_r", "calcn_r", "toes_r"]
    assert e_mob < TOL_NM and e_net < TOL_NM
    # the whole swinging leg below a fixed pelvis: 3-axis hip (body-fixed sequence) + spline knee
    hip_knee = ["hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r"]
    _, e_mob, e_net = _compare(osim, model, "pelvis", hip_knee, {"pelvis_tilt": 0.2, "pelvis_list": -0.1},
                               ranges=[(-0.5, 1.2), (-0.4, 0.3), (-0.4, 0.4), (-1.9, 0.1)])
    assert e_mob < TOL_NM and e_net < TOL_NM


def test_gradcheck_on_the_coupled_wrist(osim, data_dir: Path) -> None:
    spec = extract_chain(_wrist_with_mass(osim, data_dir), "radius", ["flexion", "deviation"])
    dyn = OpenChainDynamics(spec)
    gen = torch.Generator().manual_seed(0)
    x = [(0.5 * torch.randn(2, 2, generator=gen, dtype=torch.float64)).requires_grad_(True) for _ in range(3)]
    assert torch.autograd.gradcheck(lambda a, b, c: dyn(a, b, c), x)
    mass = dyn.mass_kg.clone().requires_grad_(True)

    def of_mass(m):
        dyn.mass_kg = m
        return dyn(*[v.detach() for v in x])

    assert torch.autograd.gradcheck(of_mass, (mass,))


def test_id_loader_matches_opensim_table(osim, data_dir: Path) -> None:
    path = (data_dir / "opensim-models/Pipelines/Gait2354_Simbody/OutputReference/ResultsInverseDynamics"
            / "inverse_dynamics.sto")
    coords = ["knee_angle_r", "hip_flexion_l", "pelvis_ty"]
    time_s, moment = read_id_moments(path, coords)
    table = osim.TimeSeriesTable(str(path))
    ref_time = np.array(table.getIndependentColumn())
    labels = ["knee_angle_r_moment", "hip_flexion_l_moment", "pelvis_ty_force"]
    ref = np.column_stack([table.getDependentColumn(c).to_numpy() for c in labels])
    assert np.array_equal(time_s, ref_time)
    assert np.array_equal(moment, ref)
    with pytest.raises(Exception, match="no column nope_moment"):
        read_id_moments(path, ["nope"])
