"""Labels of the real MOtoNMS UNIPD subject: inverse dynamics and static optimization on one walk.

Short window for CI: walk1, 2.45-2.80 s (right loading response to mid-stance, 22 frames at 60 Hz; the right
heel strikes plate 1 at 2.433 s). Pipeline as ``bench/run_motonms.py`` runs it: ``pimsk c3d`` with the
subject file, scale gait2392 (marker set ``builtin:unipd_fullbody``), muscles replaced by
DeGrooteFregly2016Muscle (the workflow's default labels model), IK, ID (external loads from the conversion,
coordinates low-pass 6 Hz), SO with reserves and pelvis residuals generated from the model.

Golden values: the plate -> foot geometry (centre of pressure against the heel markers), the normative
range of the stance knee extension moment (0.3-1.5 N·m/kg; Winter 1991, Kadaba 1989 report 0.4-1.0), and
OpenSim's own ID moment, which SO's muscle forces times OpenSim's moment arms must add up to.

About 25 s on one core (2 conversions, scaling, muscle replacement, IK, ID, SO in child processes).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pimsk.config import load_subject, resolve_path
from pimsk.paths import PROJECT_ROOT

SUBJECT_FILE = PROJECT_ROOT / "subjects" / "motonms_unipd" / "subject.yaml"
WALK = "walk1"
WINDOW_S = (2.45, 2.80)
KNEE = "knee_angle_r"  # gait2392: a positive moment extends the knee
KNEE_MUSCLES = ("rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r", "bifemlh_r", "bifemsh_r", "semimem_r",
                "semiten_r", "med_gas_r", "lat_gas_r", "sar_r", "grac_r", "tfl_r")
QUADRICEPS = ("rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r")
LOWPASS_HZ = 6.0


@pytest.fixture(scope="module")
def subject(data_dir):
    doc = load_subject(SUBJECT_FILE)
    if not resolve_path(doc["static"]["file"], Path(doc["_dir"])).is_file():
        pytest.skip(f"MOtoNMS UNIPD data not found under {data_dir / 'motonms'}")
    return doc


def _tasks(subject: dict, trial: dict, coordinate_weights: dict):
    from pimsk.osim.ik_tasks import CoordinateTask, IKTasks

    dropped = set(trial.get("drop_markers") or [])
    return IKTasks(markers={m: (0.0 if m in dropped else float(w))
                            for m, w in subject["scaling"]["marker_weights"].items()},
                   coordinates={c: CoordinateTask(weight=float(w)) for c, w in coordinate_weights.items()})


@pytest.fixture(scope="module")
def labels(subject, opensim_module, tmp_path_factory):
    """Convert, scale, IK, ID and SO on the window; returns the result files."""
    from pimsk.cli import main as pimsk_main
    from pimsk.io.trc import read_trc
    from pimsk.osim.cmc_defaults import write_actuators
    from pimsk.osim.degroote import replace_muscles_degroote
    from pimsk.osim.id import run_id
    from pimsk.osim.ik import run_ik
    from pimsk.osim.markersets import resolve
    from pimsk.osim.model_info import read_model_info
    from pimsk.osim.scale import Measurement, run_scale
    from pimsk.osim.so import run_so

    out = tmp_path_factory.mktemp("motonms_labels")
    walk = next(t for t in subject["trials"] if t["name"] == WALK)
    static = subject["static"]
    for trial, extra in ((static, ["--emg-map", "none"]), (walk, [])):
        rc = pimsk_main(["c3d", str(resolve_path(trial["file"], Path(subject["_dir"]))), "--out-dir",
                         str(out / trial["name"]), "--subject-file", str(SUBJECT_FILE), "--trial", trial["name"],
                         *extra])
        assert rc == 0
    model = resolve_path(subject["model"], Path(subject["_dir"]))
    sc = subject["scaling"]
    static_trc = out / static["name"] / "markers.trc"
    t_static = read_trc(static_trc).time_s
    scaled = run_scale(
        generic_model=model, static_trc=static_trc, out_dir=out / "scale", mass_kg=subject["mass_kg"],
        measurements=[Measurement(m["name"], [tuple(p) for p in m["marker_pairs"]], dict(m["bodies"]))
                      for m in sc["measurements"]],
        tasks=_tasks(subject, static, sc.get("coordinate_weights", {})),
        time_range=(float(t_static[0]), float(t_static[-1])),
        marker_set_file=resolve(subject["marker_set"], model, out / "scale"), height_m=subject["height_m"],
        max_marker_rms_m=sc["max_marker_rms_m"], max_marker_error_m=sc["max_marker_error_m"],
        subject=subject["id"], trial=static["name"])
    labels_model = replace_muscles_degroote(scaled.model, out / "scale" / "model_scaled_degroote.osim",
                                            log_file=out / "scale" / "degroote.log", subject=subject["id"])
    c3d = out / WALK
    ik = run_ik(model=scaled.model, trc=c3d / "markers.trc", out_dir=out / "ik",
                tasks=_tasks(subject, walk, subject["ik"].get("coordinate_weights", {})), time_range=WINDOW_S,
                marker_table=False, subject=subject["id"], trial=WALK)
    idr = run_id(model=scaled.model, coordinates=ik.outputs[0], out_dir=out / "id",
                 external_loads=c3d / "external_loads.xml", time_range=WINDOW_S, lowpass_hz=LOWPASS_HZ,
                 subject=subject["id"], trial=WALK)
    actuators = write_actuators(read_model_info(labels_model), out / "so_actuators.xml", purpose="cmc")
    so = run_so(model=labels_model, coordinates=ik.outputs[0], out_dir=out / "so", time_range=WINDOW_S,
                external_loads=c3d / "external_loads.xml", force_set_files=[actuators], lowpass_hz=LOWPASS_HZ,
                subject=subject["id"], trial=WALK)
    return {"c3d": c3d, "model": scaled.model, "coordinates": ik.outputs[0], "moments": idr.outputs[0],
            "forces": so.outputs[1], "so_log": so.log_file, "actuators": actuators, "labels_model": labels_model,
            "out": out}


def test_right_plate_loads_the_right_foot(labels):
    """ExternalLoads put the 'right' reaction on calcn_r; while it carries load its centre of pressure lies
    under the right foot: within 6 cm mediolaterally of the right heel marker, 0-25 cm ahead of it, and a step
    width (> 10 cm) from the left heel."""
    from pimsk.io.trc import read_trc
    from pimsk.osim.storage import read_storage

    forces = {f.get("name"): f for f in ET.parse(labels["c3d"] / "external_loads.xml").getroot().iter("ExternalForce")}
    assert forces["right"].findtext("applied_to_body").strip() == "calcn_r"
    assert forces["right"].findtext("force_identifier").strip() == "ground_force_r_v"
    assert forces["left"].findtext("applied_to_body").strip() == "calcn_l"
    grf = read_storage(labels["c3d"] / "grf.mot")
    on = (grf.column("ground_force_r_vy") > 20.0) & (grf.time_s >= WINDOW_S[0]) & (grf.time_s <= WINDOW_S[1])
    assert on.sum() > 300  # loaded over the whole window (1020 Hz)
    mk = read_trc(labels["c3d"] / "markers.trc").in_metres()
    t = grf.time_s[on]
    cop_x, cop_z = grf.column("ground_force_r_px")[on], grf.column("ground_force_r_pz")[on]
    heel = {}
    for side in "RL":
        xyz = mk.marker(f"{side}CA")
        ok = ~np.isnan(xyz[:, 0])
        heel[side] = (np.interp(t, mk.time_s[ok], xyz[ok, 0]), np.interp(t, mk.time_s[ok], xyz[ok, 2]))
    assert np.median(np.abs(cop_z - heel["R"][1])) < 0.06
    assert np.median(np.abs(cop_z - heel["L"][1])) > 0.10
    ahead = cop_x - heel["R"][0]
    assert ahead.min() > -0.05 and ahead.max() < 0.25
    assert np.all(grf.column("ground_force_l_vy")[on] <= 20.0)  # the left foot is off plate 2 here


def test_knee_moment_is_plausible(labels, subject):
    """Finite moments; the right knee's stance extension moment peaks at 0.3-1.5 N·m/kg in loading response."""
    from pimsk.osim.storage import read_storage

    m = read_storage(labels["moments"])
    assert m.n_frames >= 20 and np.all(np.isfinite(m.data))
    knee = m.column(f"{KNEE}_moment")
    peak = float(knee.max()) / subject["mass_kg"]
    t_peak = float(m.time_s[int(np.argmax(knee))])
    print(f"\npeak right knee extension moment {peak:.2f} N·m/kg at {t_peak:.3f} s; "
          f"min {knee.min() / subject['mass_kg']:.2f} N·m/kg")
    assert 0.3 <= peak <= 1.5
    assert WINDOW_S[0] + 0.03 < t_peak < WINDOW_S[1] - 0.03  # an interior maximum, not a window edge


def _knee_moment_from_forces(osim, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per SO frame: sum_i r_i F_i over all muscles, the quadriceps' part, the knee reserve (N·m), and time.
    r_i from OpenSim's computeMomentArm at the coordinates filtered as SO filters them (pad + lowpassIIR)."""
    from pimsk.osim.storage import read_storage

    model = osim.Model(str(labels["model"]))
    state = model.initSystem()
    sto = osim.Storage(str(labels["coordinates"]))
    sto.pad(sto.getSize() // 2)
    sto.lowpassIIR(LOWPASS_HZ)
    model.getSimbodyEngine().convertDegreesToRadians(sto)
    names = sto.getColumnLabels()
    coords = [names.get(i) for i in range(1, names.getSize())]
    cs = model.getCoordinateSet()
    forces = read_storage(labels["forces"])
    muscles = model.getMuscles()
    crossing = [muscles.get(i).getName() for i in range(muscles.getSize())]
    total, quads = [], []
    for k, t in enumerate(forces.time_s):
        row = osim.ArrayDouble(0.0, len(coords))
        sto.getDataAtTime(float(t), len(coords), row)
        for j, name in enumerate(coords):
            if cs.contains(name):
                cs.get(name).setValue(state, row.get(j), False)
        model.assemble(state)
        s = q = 0.0
        for name in crossing:
            r = muscles.get(name).computeMomentArm(state, cs.get(KNEE))
            s += r * forces.column(name)[k]
            q += r * forces.column(name)[k] if name in QUADRICEPS else 0.0
        total.append(s)
        quads.append(q)
    return np.array(total), np.array(quads), forces.column(f"{KNEE}_reserve"), forces.time_s


def test_so_knee_muscles_reproduce_the_id_knee_moment(labels, opensim_module):
    """SO converged on every frame; knee-muscle forces are finite and >= 0; sum_i r_i F_i + reserve equals the
    ID knee moment (0.05 N·m); the reserve stays below 1 N·m and the quadriceps carry >= 90 % of the peak
    extension moment (the muscles, not the reserve, make the moment)."""
    from pimsk.osim.storage import read_storage

    assert "OPTIMIZATION FAILED" not in Path(labels["so_log"]).read_text(errors="replace")
    forces = read_storage(labels["forces"])
    for name in KNEE_MUSCLES:
        f = forces.column(name)
        assert np.all(np.isfinite(f)) and f.min() >= -1e-6, name
    muscle_moment, quads, reserve, t = _knee_moment_from_forces(opensim_module, labels)
    ident = read_storage(labels["moments"])
    idk = np.array([ident.column(f"{KNEE}_moment")[int(np.argmin(np.abs(ident.time_s - tk)))] for tk in t])
    err = muscle_moment + reserve - idk
    k = int(np.argmax(idk))
    print(f"\nknee moment balance over {len(t)} frames: max |sum r F + reserve - ID| {np.abs(err).max():.4f} N·m; "
          f"max |reserve| {np.abs(reserve).max():.3f} N·m; quadriceps {quads[k]:.1f} of {idk[k]:.1f} N·m at the peak")
    assert len(t) >= 20
    assert np.abs(err).max() < 0.05
    assert np.abs(reserve).max() < 1.0
    assert quads[k] >= 0.9 * idk[k]


def test_so_verb_reserves_and_failed_frames(labels):
    """OpenSim's SO 'succeeds' with forces that are no solution when the floating base has no residuals: the verb
    turns failed frames into one clear error, and by default generates reserves and residuals from the model."""
    from pimsk.cli import main

    common = ["so", "--model", str(labels["labels_model"]), "--coordinates", str(labels["coordinates"]),
              "--external-loads", str(labels["c3d"] / "external_loads.xml"), "--time-range", "2.45", "2.55",
              "--subject", "motonms_unipd", "--trial", WALK]
    bare = labels["out"] / "so_bare"
    assert main(common + ["--reserves", "none", "--out", str(bare), "--log", str(bare / "so.log")]) == 2
    auto = labels["out"] / "so_auto"
    assert main(common + ["--out", str(auto), "--log", str(auto / "so.log")]) == 0
    assert (auto / "so_actuators.xml").is_file()
    assert "OPTIMIZATION FAILED" not in (auto / "so.log").read_text().upper()
