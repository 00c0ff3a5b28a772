"""Any OpenSim 4 model through our verbs: the Rajagopal 2016 full-body model and the wrist model.

Issue [F2] deliverable 4. Gait10dof18musc, Gait2354 and arm26 are covered by test_osim_pipelines.py, gait2392
by the MOtoNMS tests (test_motonms_subject.py: Scale + IK of 5 walks; test_motonms_labels.py: DeGroote
muscles, ID, SO).

**Rajagopal 2016** (opensim-models/Pipelines/Rajagopal, generic model Models/Rajagopal/Rajagopal2016.osim,
which the pipeline expects as ``../generic_unscaled.osim``; 100 Hz TRC with double-tab headers). OpenSim 4.6
runs the published setups as published, in the order of the pipeline's ``makeSimulation.m``: Scale
(``scale_setup_walk_scaleOnly.xml``: 6 measurements + 13 manual scale factors, markers placed on
static_walk_1), marker placement again on static_walk_2 (``scale_setup_walk.xml``), IK and ID. Ours are the
``pimsk scale``, ``pimsk ik``, ``pimsk id`` verbs from explicit arguments carrying the same inputs, each
chained on our own previous step; the second placement is ``pimsk scale`` with unit scale factors (what
the published setup's empty ScaleSet amounts to). Short windows: IK and ID 0.45-0.75 s (31 frames; published
IK 0-2.37 s); the published ID setup reads the RRA model and kinematics, so its ``model_file`` and
``coordinates_file`` are pointed at the Scale and IK results and its coordinates low-pass filtered at 6 Hz
(it leaves RRA's smooth output unfiltered; RRA and CMC are not run here).
Measured: scale sets and the placed model identical (max |d| = 0), IK and ID max |d| = 0; the scale set
equals the pipeline's shipped ``scaleSet_applied_walk.xml`` to its 6-7 printed digits (4.5e-6).
SO (0.5-0.6 s, right single support) runs with reserves and pelvis residuals generated from the model.

**Wrist** (Models/WristModel/wrist.osim, Gonzalez et al. 1997: 25 ``Schutte1993Muscle_Deprecated`` muscles,
carpal rows driven by ``flexion``/``deviation`` through 4 CoordinateCouplerConstraints). The published
model is kinematic only (every body massless, no markers), so the test derives a model from it: hand and
forearm masses from de Leva (1996), 1 g on every other body (with massless bodies, even with only the hand
given a mass, OpenSim's forward dynamics, which SO uses, returns NaN accelerations), fingers, thumb, elbow
and forearm rotation locked (a braced forearm), ECU_post-surgery removed (the file carries both ECU paths,
before and after a tendon transfer), and 6 markers. Muscles are replaced
by DeGrooteFregly2016Muscle (``replace_muscles_degroote``: OpenSim's replaceMuscles leaves Schutte muscles
unchanged, so their base properties are copied). The model's own markers moved through a known motion
(hold, minimum-jerk transition, hold) give the TRC.

Golden values: the known motion (IK within 0.1 deg); gravity: in the holds the net moment about
flexion/deviation must equal dV/dq, V the potential energy from OpenSim's centre of mass (ID writes the
carpal load on the coupled coordinates, so it is projected by the coupler Jacobian dq_dep/dq); OpenSim's
moment arms times SO's forces plus reserves must give that moment back; moment arms of the replaced
muscles equal those of the source Schutte muscles (same paths). Measured: IK max error 0.006 deg with
accuracy 1e-7 (0.68 deg with the default 1e-5, largest where the motion is fastest, i.e. where each frame
starts furthest from the previous frame's solution; 3e-5 deg with 1e-9); ID vs dV/dq 2e-5 N·m; SO moment
balance 1e-5 N·m; the 1 N·m reserves `pimsk so` generates (sized for gait) take ~20 % of the wrist's
0.13-0.19 N·m gravity moment, so reserves sized to the joint (0.01 N·m) are passed for the labels.

About 25-30 s on one core (every OpenSim step in a child process).
"""

from __future__ import annotations

import math
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pimsk.cli import main
from pimsk.io.containers import Markers
from pimsk.io.trc import write_trc
from pimsk.osim import published
from pimsk.osim.cmc_defaults import write_actuators
from pimsk.osim.compare import compare_tables, format_diffs, worst
from pimsk.osim.degroote import replace_muscles_degroote
from pimsk.osim.ik_tasks import read_ik_tasks
from pimsk.osim.model_info import read_model_info
from pimsk.osim.storage import read_storage

pytestmark = [pytest.mark.opensim, pytest.mark.data]

DEG_TOL = 0.1      # coordinates, degrees
M_TOL = 1e-4       # translational coordinates, m
MOMENT_TOL = 0.1   # N·m (N for translations)

RAJ = "opensim-models/Pipelines/Rajagopal"
RAJ_MODEL = "opensim-models/Models/Rajagopal/Rajagopal2016.osim"
RAJ_WINDOW = (0.45, 0.75)   # IK and ID (s)
RAJ_SO_WINDOW = (0.5, 0.6)  # right single support (left GRF 0)
LOWPASS_HZ = 6.0            # ID on IK output (the published ID reads smooth RRA kinematics, unfiltered)
RAJ_MASS_KG = 85.0668       # scale_setup_walk_scaleOnly.xml
RAJ_HEIGHT_M = 1.829

WRIST = "opensim-models/Models/WristModel/wrist.osim"
WRIST_RATE_HZ = 100.0
WRIST_HOLD_A = (-30.0, 10.0)   # flexion, deviation (deg): extended (hand hanging, forearm vertical); 0-0.8 s
WRIST_HOLD_B = (45.0, -15.0)   # flexed; held 1.8-3.0 s
WRIST_WINDOWS = {"A": (0.2, 0.6), "B": (2.1, 2.7)}  # inside the holds, clear of filter/spline edge effects
WRIST_IK_ACCURACY = 1e-7
WRIST_RESERVE_NM = 0.01
# de Leva P (1996) J Biomech 29:1223-1230, male: mass fractions, lengths (m), CoM and radii of gyration
# (sagittal, longitudinal, transverse) as fractions of the length, put on the body axes x, y, z (at neutral
# roughly palmar, proximal, radial); 75 kg subject
BODY_MASS_KG = 75.0
HAND = dict(mass=0.0061 * BODY_MASS_KG, length=0.0862, com=0.790, radii=(0.628, 0.401, 0.513))
FOREARM = dict(mass=0.0162 * BODY_MASS_KG, length=0.2689, com=0.4574, radii=(0.276, 0.121, 0.265))
LOCKED = ("elbow_flexion", "pro_sup", "MCP2_lateral", "MCP2_flex", "PIP_flex", "DIP_flex", "thumb_abd", "thumb_flex")
INDEPENDENT = ("flexion", "deviation")
DEPENDENT = ("rotaxis_auxprfem_r3", "auxprfem-auxprrud_coord", "auxprrud_auxdrfem_r3", "auxdrfem_auxdrrud_r1")
# markers: offsets (m) from the wrist centre at neutral, in ground axes (x palmar, y proximal, z radial)
WRIST_MARKERS = {
    "radius": {"styloid_rad": (0.0, 0.01, 0.03), "styloid_uln": (-0.005, 0.01, -0.03),
               "forearm_dorsal": (-0.03, 0.10, 0.0)},
    "carp_metacarp": {"mc2_head": (-0.01, -0.065, 0.02), "mc5_head": (-0.01, -0.06, -0.025),
                      "mc3_base": (-0.025, -0.025, 0.0)},
}
WRIST_EXTENSORS = ("ECRB", "ECRL", "ECU_pre-surgery")
WRIST_FLEXORS = ("FCR", "FCU", "PL")
# extrinsic flexors crossing the wrist palmarly: wrist flexors + the finger and thumb long flexors
FLEXOR_COMPARTMENT = WRIST_FLEXORS + ("FDSI", "FDSM", "FDSR", "FDSL", "FDPI", "FDPM", "FDPR", "FDPL", "FPL")


def _cli(*args) -> None:
    argv = [str(a) for a in args]
    assert main(argv) == 0, f"pimsk {' '.join(argv)} failed"


def _coord_check(ref: Path, ours: Path, what: str) -> None:
    diffs = compare_tables(ref, ours)
    print(format_diffs(diffs, what))
    assert diffs
    for d in diffs:
        tol = M_TOL if d.label.endswith(("_tx", "_ty", "_tz")) else DEG_TOL
        assert d.max_abs <= tol, f"{what}: {d.label} differs by {d.max_abs:.3g} (> {tol})"


def _scales(path: Path) -> dict[str, np.ndarray]:
    return {s.findtext("segment").strip(): np.array([float(v) for v in s.findtext("scales").split()])
            for s in ET.parse(path).getroot().iter("Scale")}


def _numbers(path: Path, tag: str) -> np.ndarray:
    text = Path(path).read_text()
    return np.array([float(v) for m in re.findall(rf"<{tag}>([^<]+)</{tag}>", text) for v in m.split()])


# ----------------------------------------------------------------------------- Rajagopal 2016

def _stage_rajagopal(data_dir: Path, dest: Path) -> Path:
    """The walk inputs laid out as the published setups expect (the generic model as ../generic_unscaled.osim,
    the IK/ID results folders that OpenSim does not create itself)."""
    src = data_dir / RAJ
    files = ["Scale/scale_setup_walk_scaleOnly.xml", "Scale/scale_setup_walk.xml", "Scale/markerset_walk_preScale.xml",
             "IK/ik_setup_walk.xml", "ID/id_setup_walk.xml", "ID/grf_walk.xml", "ExpData/static_walk_1.trc",
             "ExpData/static_walk_2.trc", "ExpData/motion_capture_walk.trc", "ExpData/grf_walk.mot"]
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / f, dest / f)  # contents only: the shared data is read-only
    shutil.copyfile(data_dir / RAJ_MODEL, dest / "generic_unscaled.osim")
    for d in ("IK/results_walk", "ID/results_walk"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    return dest


@pytest.fixture(scope="module")
def raj(tmp_path_factory, data_dir, opensim_module):
    ref = _stage_rajagopal(data_dir, tmp_path_factory.mktemp("raj_ref"))
    inp = _stage_rajagopal(data_dir, tmp_path_factory.mktemp("raj_inputs"))
    out = tmp_path_factory.mktemp("raj_ours")
    window = f"{RAJ_WINDOW[0]} {RAJ_WINDOW[1]}"
    # OpenSim 4.6, published setups (the second Scale overwrites the first one's model: keep a copy)
    published.run_published(ref / "Scale/scale_setup_walk_scaleOnly.xml", "ScaleTool")
    shutil.copyfile(ref / "Scale/subject_scaled_walk.osim", ref / "Scale/step1_subject_scaled_walk.osim")
    published.run_published(ref / "Scale/scale_setup_walk.xml", "ScaleTool")
    published.run_published(ref / "IK/ik_setup_walk.xml", "InverseKinematicsTool", overrides={"time_range": window})
    published.run_published(ref / "ID/id_setup_walk.xml", "InverseDynamicsTool",
                            overrides={"time_range": window, "model_file": "../Scale/subject_scaled_walk.osim",
                                       "coordinates_file": "../IK/results_walk/ik_output_walk.mot",
                                       "lowpass_cutoff_frequency_for_coordinates": str(LOWPASS_HZ)})
    # ours, through the verbs
    scale_only = inp / "Scale/scale_setup_walk_scaleOnly.xml"
    _cli("scale", "--model", inp / "generic_unscaled.osim", "--trc", inp / "ExpData/static_walk_1.trc",
         "--mass-kg", RAJ_MASS_KG, "--height-m", RAJ_HEIGHT_M, "--measurements", scale_only,
         "--manual-scales", scale_only, "--tasks", scale_only,
         "--marker-set", inp / "Scale/markerset_walk_preScale.xml", "--time-range", 0, 0.3,
         "--max-marker-rms-m", 0.05, "--max-marker-error-m", 0.1, "--out", out / "scale",
         "--subject", "rajagopal", "--trial", "static_walk_1")
    model1 = out / "scale/model_scaled.osim"
    mass_kg = read_model_info(model1).mass_kg
    (out / "no_measurements.yaml").write_text("[]\n")
    (out / "unit_scales.yaml").write_text("pelvis: [1, 1, 1]\n")
    _cli("scale", "--model", model1, "--trc", inp / "ExpData/static_walk_2.trc", "--mass-kg", repr(mass_kg),
         "--measurements", out / "no_measurements.yaml", "--manual-scales", out / "unit_scales.yaml",
         "--tasks", inp / "Scale/scale_setup_walk.xml", "--time-range", 0, 0.1, "--max-marker-rms-m", 0.05,
         "--max-marker-error-m", 0.1, "--out", out / "place", "--subject", "rajagopal", "--trial", "static_walk_2")
    model = out / "place/model_scaled.osim"
    _cli("ik", "--model", model, "--trc", inp / "ExpData/motion_capture_walk.trc",
         "--tasks", inp / "IK/ik_setup_walk.xml", "--time-range", *RAJ_WINDOW, "--out", out / "ik",
         "--subject", "rajagopal", "--trial", "walk")
    _cli("id", "--model", model, "--coordinates", out / "ik/coordinates.mot",
         "--external-loads", inp / "ID/grf_walk.xml", "--time-range", *RAJ_WINDOW, "--lowpass-hz", LOWPASS_HZ,
         "--exclude-forces", "muscles", "actuators", "--out", out / "id", "--subject", "rajagopal", "--trial", "walk")
    _cli("so", "--model", model, "--coordinates", out / "ik/coordinates.mot",  # reserves generated by the verb
         "--external-loads", inp / "ID/grf_walk.xml", "--time-range", *RAJ_SO_WINDOW,
         "--out", out / "so", "--subject", "rajagopal", "--trial", "walk")
    return {"ref": ref, "inp": inp, "out": out, "model": model, "info": read_model_info(model)}


def test_rajagopal_scale_matches_published(raj, data_dir):
    """Scale factors, the scaled-and-placed model after each Scale step: identical to OpenSim's run."""
    ours, ref46 = _scales(raj["out"] / "scale/scale_set.xml"), _scales(raj["ref"] / "Scale/scaleSet_applied_walk.xml")
    shipped = _scales(data_dir / RAJ / "Scale/scaleSet_applied_walk.xml")
    assert set(ours) == set(ref46) == set(shipped) and {"pelvis", "femur_r", "calcn_l", "torso"} <= set(ours)
    for body in ours:
        np.testing.assert_allclose(ours[body], ref46[body], rtol=0, atol=1e-12, err_msg=body)
        np.testing.assert_allclose(ours[body], shipped[body], rtol=0, atol=1e-5, err_msg=body)
    assert ours["pelvis"] == pytest.approx([1.24463, 1.00167, 1.19736], abs=1e-5)  # PelvisX/Y/Z in the setup's log
    for mine, theirs in (("scale/model_scaled.osim", "Scale/step1_subject_scaled_walk.osim"),
                         ("place/model_scaled.osim", "Scale/subject_scaled_walk.osim")):
        for tag in ("location", "mass", "mass_center", "inertia", "translation", "scale_factors",
                    "optimal_fiber_length", "tendon_slack_length"):
            a, b = _numbers(raj["out"] / mine, tag), _numbers(raj["ref"] / theirs, tag)
            assert a.size > 0 and a.shape == b.shape, (mine, tag)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=f"{mine}: {tag}")


def test_rajagopal_scale_marker_tables(raj):
    """The per-marker tables cover the weighted markers of each step (published weights and fixed markers:
    ~3 cm RMS, up to ~7.6 cm on markers the setup keeps fixed, as OpenSim logs for its own run)."""
    for step, setup, n_frames in (("scale", "Scale/scale_setup_walk_scaleOnly.xml", 31),
                                  ("place", "Scale/scale_setup_walk.xml", 11)):
        table = (raj["out"] / step / "marker_errors.tsv").read_text()
        print(table)
        lines = table.splitlines()
        assert lines[0] == "marker\tweight\trms_m\tmax_m\tt_of_max_s" and lines[-1].startswith("TOTAL")
        used = {k for k, w in read_ik_tasks(raj["inp"] / setup, "MarkerPlacer").markers.items() if w > 0}
        listed = {ln.split("\t")[0] for ln in lines[1:-1]}
        assert listed <= used and len(listed) >= 20  # weighted markers present in the static trial
        assert read_storage(raj["out"] / step / "marker_errors.sto").n_frames == n_frames
        assert float(lines[-1].split("\t")[2]) < 0.035


def test_rajagopal_ik_matches_published(raj):
    ref = raj["ref"] / "IK/results_walk/ik_output_walk.mot"
    assert read_storage(ref).n_frames == 31
    _coord_check(ref, raj["out"] / "ik/coordinates.mot", "Rajagopal IK 0.45-0.75 s (deg / m)")
    assert len(compare_tables(ref, raj["out"] / "ik/coordinates.mot")) == 39


def test_rajagopal_id_matches_published(raj):
    diffs = compare_tables(raj["ref"] / "ID/results_walk/inverse_dynamics.sto", raj["out"] / "id/moments.sto")
    print(format_diffs(diffs, "Rajagopal ID 0.45-0.75 s (N·m / N)"))
    assert len(diffs) == 39
    w = worst(diffs)
    assert w.max_abs <= MOMENT_TOL, f"{w.label} differs by {w.max_abs:.3g}"
    ankle = read_storage(raj["out"] / "id/moments.sto").column("ankle_angle_r_moment")
    assert ankle.min() < -50.0  # plantarflexion moment in right stance (N·m)


def test_rajagopal_so_with_generated_reserves(raj):
    """SO over 0.5-0.6 s: 80 muscles plus the reserves (1 N·m) and pelvis residuals `pimsk so` generates from the
    model; the muscles carry
    the leg moments (reserves ~0), the right plantarflexors the right stance."""
    generated = ET.parse(raj["out"] / "so/so_actuators.xml").getroot()
    acts = {e.get("name") for e in generated.iter("CoordinateActuator")}
    assert {a for a in acts if a.endswith("_residual")} == {f"pelvis_{c}_residual" for c in
                                                            ("tilt", "list", "rotation", "tx", "ty", "tz")}
    assert len(acts) == len(raj["info"].free_coordinates()) == 29
    forces = read_storage(raj["out"] / "so/so_StaticOptimization_force.sto")
    activ = read_storage(raj["out"] / "so/so_StaticOptimization_activation.sto")
    assert forces.n_frames == 11 and forces.time_s[0] == pytest.approx(0.5) and forces.time_s[-1] == pytest.approx(0.6)
    assert set(raj["info"].muscles) <= set(forces.labels) and len(raj["info"].muscles) == 80
    assert acts <= set(forces.labels)
    assert np.all(np.isfinite(forces.data))
    leg = [a for a in acts if a.endswith("_reserve") and a.startswith(("hip_", "knee_", "ankle_"))]
    assert len(leg) == 10
    worst_leg = max(float(np.abs(forces.column(a)).max()) for a in leg)
    print(f"largest leg reserve {worst_leg:.3g} N·m; residuals (N, N·m): "
          + ", ".join(f"{a} {np.abs(forces.column(a)).max():.1f}" for a in sorted(acts) if a.endswith("_residual")))
    assert worst_leg < 1.0
    muscles = raj["info"].muscles
    a = activ.data[:, [activ.labels.index(m) for m in muscles]]
    assert a.min() >= 0.0 and a.max() <= 1.0 + 1e-6
    assert forces.column("soleus_r").min() > 300.0 and forces.column("soleus_r").max() > forces.column("soleus_l").max()


# ----------------------------------------------------------------------------- wrist

def _wrist_test_model(osim, src: Path, dst: Path) -> None:
    """wrist.osim with masses, locked non-wrist coordinates, one ECU and markers (see the module docstring)."""
    model = osim.Model(str(src))
    state = model.initSystem()
    bodies = model.getBodySet()
    centre = np.array(bodies.get("rotaxis").getPositionInGround(state).to_numpy())  # on the flexion axis

    def in_body(body: str, offset) -> osim.Vec3:
        p = osim.Vec3(*(centre + np.asarray(offset, dtype=float)))
        return model.getGround().findStationLocationInAnotherFrame(state, p, bodies.get(body))

    markers = {(b, n): in_body(b, off) for b, d in WRIST_MARKERS.items() for n, off in d.items()}
    hand_com = in_body("carp_metacarp", (0.0, -HAND["com"] * HAND["length"], 0.0))
    for i in range(bodies.getSize()):
        if bodies.get(i).getMass() == 0.0:
            bodies.get(i).setMass(1e-3)
            bodies.get(i).setInertia(osim.Inertia(1e-7, 1e-7, 1e-7))
    for name, seg, com in (("carp_metacarp", HAND, hand_com),
                           ("ulna", FOREARM, osim.Vec3(0.0, -FOREARM["com"] * FOREARM["length"], 0.0))):
        body = bodies.get(name)
        body.setMass(seg["mass"])
        body.setMassCenter(com)
        body.setInertia(osim.Inertia(*(seg["mass"] * (np.array(seg["radii"]) * seg["length"]) ** 2)))
    for name in LOCKED:
        model.getCoordinateSet().get(name).setDefaultLocked(True)
    forces = model.updForceSet()
    assert forces.remove(forces.getIndex("ECU_post-surgery"))
    for (body, name), loc in markers.items():
        model.addMarker(osim.Marker(name, bodies.get(body), loc))
    model.finalizeConnections()
    model.printToXML(str(dst))


def _wrist_motion(t_s: np.ndarray) -> np.ndarray:
    """(n, 2) flexion, deviation (deg): hold A to 0.8 s, minimum-jerk to B over 1 s, hold B."""
    u = np.clip((t_s - 0.8) / 1.0, 0.0, 1.0)
    s = 10 * u ** 3 - 15 * u ** 4 + 6 * u ** 5
    a, b = np.array(WRIST_HOLD_A), np.array(WRIST_HOLD_B)
    return a + (b - a) * s[:, None]


class _Pose:
    """The test model in this process: poses by the independent coordinates (deg), assembled."""

    def __init__(self, osim, path: Path):
        self.osim = osim
        self.model = osim.Model(str(path))
        self.state = self.model.initSystem()
        self.coords = self.model.getCoordinateSet()

    def set(self, flexion_deg: float, deviation_deg: float) -> None:
        self.coords.get("flexion").setValue(self.state, math.radians(flexion_deg), False)
        self.coords.get("deviation").setValue(self.state, math.radians(deviation_deg), False)
        self.model.assemble(self.state)
        self.model.realizePosition(self.state)

    def potential_j(self) -> float:
        g = np.array(self.model.getGravity().to_numpy())
        com = np.array(self.model.calcMassCenterPosition(self.state).to_numpy())
        return float(-self.model.getTotalMass(self.state) * g @ com)

    def dependents_rad(self) -> np.ndarray:
        return np.array([self.coords.get(n).getValue(self.state) for n in DEPENDENT])

    def gradients(self, q_deg, h_deg: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
        """dV/dq (N·m per rad, (2,)) and the coupler Jacobian dq_dep/dq ((2, 4)) by central differences."""
        dv, jac = np.zeros(2), np.zeros((2, len(DEPENDENT)))
        for k in range(2):
            step = np.zeros(2)
            step[k] = h_deg
            self.set(*(np.asarray(q_deg) + step))
            vp, qp = self.potential_j(), self.dependents_rad()
            self.set(*(np.asarray(q_deg) - step))
            vm, qm = self.potential_j(), self.dependents_rad()
            dv[k] = (vp - vm) / (2 * math.radians(h_deg))
            jac[k] = (qp - qm) / (2 * math.radians(h_deg))
        return dv, jac


def _projected_id(moments, jac: np.ndarray, rows) -> np.ndarray:
    """(n, 2) net moment about flexion, deviation: own + coupled coordinates' moments through dq_dep/dq."""
    own = np.stack([moments.column(f"{n}_moment")[rows] for n in INDEPENDENT], axis=1)
    dep = np.stack([moments.column(f"{n}_moment")[rows] for n in DEPENDENT], axis=1)
    return own + dep @ jac.T


@pytest.fixture(scope="module")
def wrist(tmp_path_factory, data_dir, opensim_module):
    out = tmp_path_factory.mktemp("wrist")
    model = out / "wrist_test.osim"
    _wrist_test_model(opensim_module, data_dir / WRIST, model)
    # the model's own markers through the known motion -> TRC (mm)
    pose = _Pose(opensim_module, model)
    t_s = np.arange(int(round(3.0 * WRIST_RATE_HZ)) + 1) / WRIST_RATE_HZ
    q_deg = _wrist_motion(t_s)
    mset = pose.model.getMarkerSet()
    labels = [mset.get(i).getName() for i in range(mset.getSize())]
    xyz = np.zeros((len(t_s), len(labels), 3))
    for k, (f, d) in enumerate(q_deg):
        pose.set(f, d)
        for j, name in enumerate(labels):
            xyz[k, j] = mset.get(name).getLocationInGround(pose.state).to_numpy()
    trc = write_trc(out / "flex_dev.trc", Markers(time_s=t_s, xyz=xyz * 1000.0, labels=labels,
                                                    rate_hz=WRIST_RATE_HZ, units="mm"))
    dg = replace_muscles_degroote(model, out / "wrist_degroote.osim", log_file=out / "degroote.log", subject="wrist")
    _cli("ik", "--model", dg, "--trc", trc, "--accuracy", WRIST_IK_ACCURACY, "--out", out / "ik",
         "--subject", "wrist", "--trial", "flex_dev")
    _cli("id", "--model", dg, "--coordinates", out / "ik/coordinates.mot", "--out", out / "id",
         "--subject", "wrist", "--trial", "flex_dev")
    info = read_model_info(dg)
    small = write_actuators(info, out / "reserves_sized.xml", purpose="cmc", reserve_optimal_force=WRIST_RESERVE_NM)
    _cli("so", "--model", dg, "--coordinates", out / "ik/coordinates.mot", "--actuators", small,
         "--out", out / "so", "--subject", "wrist", "--trial", "flex_dev")
    _cli("so", "--model", dg, "--coordinates", out / "ik/coordinates.mot",  # the verb's generated 1 N·m reserves
         "--time-range", *WRIST_WINDOWS["A"], "--out", out / "so_default_reserves", "--subject", "wrist",
         "--trial", "flex_dev")
    return {"out": out, "model": model, "degroote": dg, "t_s": t_s, "q_deg": q_deg, "info": info,
            "pose": _Pose(opensim_module, dg), "source_pose": _Pose(opensim_module, data_dir / WRIST)}


def test_wrist_degroote_replacement(wrist, data_dir):
    """Every Schutte muscle becomes a DeGrooteFregly2016Muscle with the same base properties and path."""
    src = {m.get("name"): m for m in ET.parse(data_dir / WRIST).getroot().iter("Schutte1993Muscle_Deprecated")}
    dg = {m.get("name"): m for m in ET.parse(wrist["degroote"]).getroot().iter("DeGrooteFregly2016Muscle")}
    assert len(src) == 25 and set(dg) == set(src) - {"ECU_post-surgery"}
    assert "Schutte1993Muscle_Deprecated" not in wrist["degroote"].read_text()
    for name, m in dg.items():
        for tag in ("max_isometric_force", "optimal_fiber_length", "tendon_slack_length",
                    "pennation_angle_at_optimal"):
            assert float(m.findtext(tag)) == pytest.approx(float(src[name].findtext(tag)), rel=1e-12), (name, tag)
    assert "converted from their base Muscle properties" in (wrist["out"] / "degroote.log").read_text()
    # same paths: OpenSim's moment arms of the replaced muscles equal the source model's, in two postures
    new, old = wrist["pose"], wrist["source_pose"]
    for q in (WRIST_HOLD_A, WRIST_HOLD_B):
        new.set(*q)
        old.set(*q)
        for name in dg:
            for c in INDEPENDENT:
                r_new = new.model.getMuscles().get(name).computeMomentArm(new.state, new.coords.get(c))
                r_old = old.model.getMuscles().get(name).computeMomentArm(old.state, old.coords.get(c))
                assert r_new == pytest.approx(r_old, abs=1e-9), (name, c, q)
    # wrist flexors flex, extensors extend (Gonzalez et al. 1997: 0.5-2.5 cm at these postures)
    new.set(0.0, 0.0)
    arms_cm = {n: 100 * new.model.getMuscles().get(n).computeMomentArm(new.state, new.coords.get("flexion"))
               for n in WRIST_FLEXORS + WRIST_EXTENSORS}
    print("flexion moment arms at neutral (cm):", {k: round(v, 2) for k, v in arms_cm.items()})
    assert all(0.5 < arms_cm[n] < 2.5 for n in WRIST_FLEXORS)
    assert all(-2.5 < arms_cm[n] < -0.5 for n in WRIST_EXTENSORS)


def test_wrist_ik_recovers_known_motion(wrist):
    ik = read_storage(wrist["out"] / "ik/coordinates.mot")
    assert ik.n_frames == len(wrist["t_s"])
    np.testing.assert_allclose(ik.time_s, wrist["t_s"], atol=1e-9)
    err = {c: float(np.abs(ik.column(c) - wrist["q_deg"][:, k]).max()) for k, c in enumerate(INDEPENDENT)}
    print("IK max |error| (deg):", err)
    assert max(err.values()) < DEG_TOL
    for c in LOCKED:
        assert np.abs(ik.column(c)).max() < 1e-9
    total = (wrist["out"] / "ik/marker_errors.tsv").read_text().splitlines()[-1].split("\t")
    assert float(total[2]) < 1e-4  # marker RMS < 0.1 mm: the markers are the model's own


def test_wrist_id_equals_gravity_in_holds(wrist):
    """Held still, the net flexion/deviation moment is the gravity moment dV/dq of the hand."""
    moments = read_storage(wrist["out"] / "id/moments.sto")
    assert np.abs(moments.column("flexion_moment")).max() < 1e-6  # the load sits on the coupled carpal rows
    for key, q in (("A", WRIST_HOLD_A), ("B", WRIST_HOLD_B)):
        dv, jac = wrist["pose"].gradients(q)
        t0, t1 = WRIST_WINDOWS[key]
        rows = (moments.time_s >= t0) & (moments.time_s <= t1)
        net = _projected_id(moments, jac, rows)
        print(f"hold {key} {q}: dV/dq {dv} N·m; ID projected {net.min(axis=0)}..{net.max(axis=0)}")
        assert abs(dv[0]) > 0.1  # a real load: the hand's weight ~0.13-0.19 N·m about flexion
        np.testing.assert_allclose(net, np.broadcast_to(dv, net.shape), atol=1e-3)
    assert np.sign(wrist["pose"].gradients(WRIST_HOLD_A)[0][0]) == -1  # extended hand: extension moment holds it


def test_wrist_so_balances_id(wrist):
    """SO forces x OpenSim moment arms + reserves = the ID moment; the wrist muscles opposite gravity hold the
    hand; reserves sized to the joint stay ~0, gait-sized (1 N·m) ones take a share of it (printed)."""
    forces = read_storage(wrist["out"] / "so/so_StaticOptimization_force.sto")
    moments = read_storage(wrist["out"] / "id/moments.sto")
    ik = read_storage(wrist["out"] / "ik/coordinates.mot")
    assert forces.n_frames == len(wrist["t_s"])
    muscles = wrist["info"].muscles
    assert len(muscles) == 24 and set(muscles) <= set(forces.labels)
    pose = wrist["pose"]
    for key, q in (("A", WRIST_HOLD_A), ("B", WRIST_HOLD_B)):
        _, jac = pose.gradients(q)
        t0, t1 = WRIST_WINDOWS[key]
        for t in np.linspace(t0, t1, 3):
            k = int(np.argmin(np.abs(forces.time_s - t)))
            j = int(np.argmin(np.abs(ik.time_s - t)))
            pose.set(ik.column("flexion")[j], ik.column("deviation")[j])
            arms = np.array([[pose.model.getMuscles().get(m).computeMomentArm(pose.state, pose.coords.get(c))
                              for m in muscles] for c in INDEPENDENT])
            f = np.array([forces.column(m)[k] for m in muscles])
            reserve = np.array([forces.column(f"{c}_reserve")[k] for c in INDEPENDENT])
            net = _projected_id(moments, jac, [int(np.argmin(np.abs(moments.time_s - t)))])[0]
            np.testing.assert_allclose(arms @ f + reserve, net, atol=1e-3, err_msg=f"t={t}")
            assert np.all(np.abs(reserve) <= 0.01 * np.abs(net).max())
            by_name = dict(zip(muscles, arms[0] * f))
            if key == "A":   # extended: gravity flexes it back; the three wrist extensors give most of the hold
                extensors = sum(by_name[m] for m in WRIST_EXTENSORS)
                assert net[0] < 0 and extensors < net[0] / 2
                assert abs(extensors) > abs(sum(by_name[m] for m in WRIST_FLEXORS))
            else:            # flexed: gravity extends it; the flexor compartment (finger flexors included) holds
                flexors = sum(by_name[m] for m in FLEXOR_COMPARTMENT)
                assert net[0] > 0 and flexors > net[0] / 2
    generated = ET.parse(wrist["out"] / "so_default_reserves/so_actuators.xml").getroot()
    assert {e.get("name"): float(e.findtext("optimal_force")) for e in generated.iter("CoordinateActuator")} == {
        "flexion_reserve": 1.0, "deviation_reserve": 1.0}  # free coordinates only (locked, coupled left out)
    gait = read_storage(wrist["out"] / "so_default_reserves/so_StaticOptimization_force.sto")
    rows = [int(np.argmin(np.abs(moments.time_s - t))) for t in gait.time_s]
    _, jac = pose.gradients(WRIST_HOLD_A)
    net = _projected_id(moments, jac, rows)[:, 0]
    share = np.abs(gait.column("flexion_reserve")) / np.abs(net)
    print(f"1 N·m reserves carry {share.mean():.1%} of the flexion moment in hold A")
    assert share.mean() < 0.5  # the muscles carry most of it even then
