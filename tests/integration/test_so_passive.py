"""`pimsk so --method passive` (pimsk.osim.so_passive) against OpenSim and against a known truth.

Inputs: a short synthetic knee_pair trial (vas_int_r + bifemsh_r, one free coordinate) made by `pimsk synth`,
its true model and true coordinates (no marker noise, no filter): any error is the method's, not the data's.
Golden values: the synthetic truth (forward simulation of the same model), OpenSim's InverseDynamicsTool and
OpenSim's own StaticOptimization.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pimsk.paths import PROJECT_ROOT

pytestmark = pytest.mark.opensim

LEG = PROJECT_ROOT / "subjects" / "demo_leg" / "subject.yaml"
WINDOW_S = 1.5  # window 0.5..2.0 s: a vastus burst, then the start of a hamstring burst


@pytest.fixture(scope="module")
def pair(tmp_path_factory, opensim_module):
    """(truth folder of knee_pair, its analysis window, work folder)."""
    from pimsk.synth.generate import synthesize

    root = tmp_path_factory.mktemp("so_passive")
    synthesize(LEG, root / "synth", max_duration_s=WINDOW_S, only_trials=["static", "knee_pair"])
    truth = json.loads((root / "synth" / "truth" / "truth.json").read_text())
    return root / "synth" / "truth" / "knee_pair", tuple(truth["trials"]["knee_pair"]["analysis_window_s"]), root


def _read(path):
    from pimsk.osim.storage import read_storage

    return read_storage(path)


def _pct_of_peak(truth, est, muscle: str, window) -> float:
    from pimsk.validate.truth import series_error

    e = series_error(truth.time_s, truth.column(muscle), est.time_s, est.column(muscle), window)
    return 100.0 * e.rmse / e.truth_peak


def test_given_the_true_model_passive_so_recovers_the_truth_and_opensim_so_does_not(pair, tmp_path):
    """Determinate pair, true model, true kinematics: the passive method with fibre-tendon equilibrium gives the
    simulated tendon forces; OpenSim's SO, which leaves passive fibre force out, misses them by far more."""
    from pimsk.cli import main

    folder, window, _ = pair
    truth = _read(folder / "forces.sto")
    errors = {}
    for method in ("passive", "opensim"):
        out = tmp_path / method
        rc = main(["so", "--model", str(folder / "model.osim"), "--coordinates", str(folder / "coordinates.mot"),
                   "--time-range", str(window[0]), str(window[1]), "--lowpass-hz", "0", "--method", method,
                   "--tendon", "equilibrium", "--reserves", "none", "--out", str(out)])
        assert rc == 0
        # same file names, columns and frames whichever method ran
        act = _read(out / "so_StaticOptimization_activation.sto")
        force = _read(out / "so_StaticOptimization_force.sto")
        assert act.labels == force.labels == ["vas_int_r", "bifemsh_r"]
        assert force.time_s[0] == pytest.approx(window[0]) and force.time_s[-1] == pytest.approx(window[1])
        assert (act.data >= 0.02 - 1e-9).all() and (act.data <= 1.0 + 1e-9).all()  # the muscles' control bounds
        errors[method] = {m: _pct_of_peak(truth, force, m, window) for m in truth.labels}
    assert max(errors["passive"].values()) < 1.0, errors
    assert min(errors["opensim"].values()) > 5.0 * max(errors["passive"].values()), errors
    summary = json.loads((tmp_path / "passive" / "so_so_passive.json").read_text())
    assert summary["frames_not_converged"] == 0
    assert summary["peak_passive_force_n"]["vas_int_r"] > 20.0  # the reason the method exists
    print(f"\nforce RMSE % of truth peak: {errors}")


def test_muscle_moments_balance_opensim_inverse_dynamics(pair, tmp_path, opensim_module):
    """sum_i r_i(q) F_i of the passive method's forces equals the net knee moment of OpenSim's
    InverseDynamicsTool on the same coordinates, frame by frame."""
    from pimsk.osim.id import run_id
    from pimsk.osim.so_passive import run_so_passive

    osim = opensim_module
    folder, window, _ = pair
    so = run_so_passive(model=folder / "model.osim", coordinates=folder / "coordinates.mot", out_dir=tmp_path / "so",
                        time_range=window, lowpass_hz=None, tendon="rigid")
    idr = run_id(model=folder / "model.osim", coordinates=folder / "coordinates.mot", out_dir=tmp_path / "id",
                 time_range=window, lowpass_hz=None)
    forces, tau = _read(so.outputs[1]), _read(idr.outputs[0])
    q = _read(folder / "coordinates.mot")
    np.testing.assert_allclose(forces.time_s, tau.time_s, atol=1e-9)
    model = osim.Model(str(folder / "model.osim"))
    state = model.initSystem()
    knee = model.getCoordinateSet().get("knee_angle_r")
    moment = np.zeros(forces.n_frames)
    for k, t in enumerate(forces.time_s):
        knee.setValue(state, math.radians(float(np.interp(t, q.time_s, q.column("knee_angle_r")))))
        moment[k] = sum(model.getMuscles().get(m).computeMomentArm(state, knee) * forces.column(m)[k]
                        for m in forces.labels)
    expected = tau.column("knee_angle_r_moment")
    assert np.ptp(expected) > 1.0
    assert np.abs(moment - expected).max() < 1e-3 * np.ptp(expected)


def test_without_passive_force_it_is_opensims_static_optimization(pair, tmp_path, opensim_module):
    """Passive force left out and pennation zero (so 'along the tendon' = 'along the fibre', as OpenSim's SO
    takes it), the method solves OpenSim's problem: activations agree with OpenSim's SO."""
    from pimsk.osim.so import run_so
    from pimsk.osim.so_passive import run_so_passive

    folder, window, _ = pair
    model = opensim_module.Model(str(folder / "model.osim"))
    for i in range(model.getMuscles().getSize()):
        model.updMuscles().get(i).set_pennation_angle_at_optimal(0.0)
    model.finalizeConnections()
    model.initSystem()
    flat = tmp_path / "flat.osim"
    model.printToXML(str(flat))
    ours = run_so_passive(model=flat, coordinates=folder / "coordinates.mot", out_dir=tmp_path / "ours",
                          time_range=window, lowpass_hz=None, include_passive=False)
    theirs = run_so(model=flat, coordinates=folder / "coordinates.mot", out_dir=tmp_path / "opensim",
                    time_range=window, lowpass_hz=None)
    a, b = _read(ours.outputs[0]), _read(theirs.outputs[0])
    assert a.labels == b.labels
    np.testing.assert_allclose(a.time_s, b.time_s, atol=1e-9)
    assert np.ptp(b.column("vas_int_r")) > 0.03  # the vastus works (the hamstring rests at its bound here)
    assert np.abs(a.data - b.data).max() < 0.005


def test_saved_setup_reruns_to_the_same_files(pair, tmp_path):
    from pimsk.cli import main
    from pimsk.osim.so_passive import run_so_passive

    folder, window, _ = pair
    first = run_so_passive(model=folder / "model.osim", coordinates=folder / "coordinates.mot",
                           out_dir=tmp_path / "a", time_range=window, lowpass_hz=6.0, tendon="equilibrium")
    assert first.setup == (tmp_path / "a" / "setup_so.xml").resolve()
    rc = main(["so", "--setup", str(first.setup), "--out", str(tmp_path / "b")])
    assert rc == 0
    for name in ("so_StaticOptimization_activation.sto", "so_StaticOptimization_force.sto",
                 "so_StaticOptimization_passive_force.sto"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_missing_input_is_named(pair, tmp_path, capsys):
    from pimsk.cli import main

    folder, _, _ = pair
    rc = main(["so", "--model", str(folder / "model.osim"), "--coordinates", str(tmp_path / "nope.mot"),
               "--method", "passive", "--out", str(tmp_path / "x"), "--trial", "knee_pair"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "nope.mot" in err and "knee_pair" in err


def _reserve_file(path, coordinates: dict[str, float]) -> None:
    """A ForceSet of unbounded CoordinateActuators (coordinate -> optimal force)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("OpenSimDocument", Version="40000")
    fs = ET.SubElement(root, "ForceSet", name="reserves")
    objs = ET.SubElement(fs, "objects")
    for c, f_opt in coordinates.items():
        a = ET.SubElement(objs, "CoordinateActuator", name=f"{c}_reserve")
        ET.SubElement(a, "coordinate").text = c
        ET.SubElement(a, "optimal_force").text = repr(float(f_opt))
        ET.SubElement(a, "min_control").text = "-Inf"
        ET.SubElement(a, "max_control").text = "Inf"
    ET.SubElement(fs, "groups")
    ET.ElementTree(root).write(path)


def test_walking_with_ground_reactions_and_reserves_balances_opensim_inverse_dynamics(data_dir, tmp_path,
                                                                                       opensim_module):
    """Gait10dof18musc (18 Millard muscles, 10 coordinates, planar pelvis), the published IK and ground reaction
    forces: muscle moments plus reserve actuators equal OpenSim's InverseDynamicsTool net generalized forces on
    every coordinate (external loads enter the target, reserves enter the solution)."""
    import shutil

    from pimsk.osim.id import run_id
    from pimsk.osim.so_passive import run_so_passive

    osim = opensim_module
    src = data_dir / "opensim-models"
    shutil.copy(src / "Models" / "Gait10dof18musc" / "subject01.osim", tmp_path / "subject01.osim")
    shutil.copytree(src / "Pipelines" / "Gait10dof18musc" / "ExperimentalData", tmp_path / "ExperimentalData")
    ik = src / "Pipelines" / "Gait10dof18musc" / "OutputReference" / "IK" / "subject01_walk_IK.mot"
    grf = tmp_path / "ExperimentalData" / "subject01_walk_grf.xml"
    coords = _read(ik).labels
    _reserve_file(tmp_path / "reserves.xml", {c: (1000.0 if c.startswith("pelvis") else 10.0) for c in coords})
    window = (0.6, 0.9)
    so = run_so_passive(model=tmp_path / "subject01.osim", coordinates=ik, external_loads=grf, out_dir=tmp_path / "so",
                        time_range=window, lowpass_hz=None, force_set_files=[tmp_path / "reserves.xml"])
    idr = run_id(model=tmp_path / "subject01.osim", coordinates=ik, external_loads=grf, out_dir=tmp_path / "id",
                 time_range=window, lowpass_hz=None)
    forces, tau, q = _read(so.outputs[1]), _read(idr.outputs[0]), _read(ik)
    np.testing.assert_allclose(forces.time_s, tau.time_s, atol=1e-5)
    model = osim.Model(str(tmp_path / "subject01.osim"))
    state = model.initSystem()
    cs = model.getCoordinateSet()
    muscles = [model.getMuscles().get(i) for i in range(model.getMuscles().getSize())]
    assert len(muscles) == 18 and set(m.getName() for m in muscles) <= set(forces.labels)
    for k, t in enumerate(forces.time_s):
        row = int(np.argmin(np.abs(q.time_s - t)))
        for c in coords:
            value = q.column(c)[row]
            cs.get(c).setValue(state, value if c in ("pelvis_tx", "pelvis_ty") else math.radians(value), False)
        model.realizePosition(state)
        for c in coords:
            got = sum(m.computeMomentArm(state, cs.get(c)) * forces.column(m.getName())[k] for m in muscles)
            got += forces.column(f"{c}_reserve")[k]
            label = next(lab for lab in tau.labels if lab in (f"{c}_moment", f"{c}_force"))
            assert got == pytest.approx(tau.column(label)[k], abs=1e-6 * max(1.0, np.ptp(tau.column(label)))), (t, c)
    # the hips, knees and ankles are carried by muscles, not by their reserves
    for c in ("hip_flexion_r", "knee_angle_r", "ankle_angle_r"):
        label = next(lab for lab in tau.labels if lab == f"{c}_moment")
        assert np.abs(forces.column(f"{c}_reserve")).max() < 0.05 * np.abs(tau.column(label)).max(), c
