"""The real MOtoNMS UNIPD subject (static + 5 walks) on gait2392 with pimsk's own UNIPD marker set.

From ``subjects/motonms_unipd/subject.yaml``: convert the C3D trials (:mod:`pimsk.convert.c3d_to_opensim`),
generate the marker set for the generic model (:mod:`pimsk.osim.markersets.unipd_fullbody`), scale by marker
pairs and place the markers (:mod:`pimsk.osim.scale`), then IK over the right gait cycle of every walk
(:mod:`pimsk.osim.ik`). Golden values: scale factors recomputed by hand from marker distances (static
trial, generic-model markers in the default pose); knee flexion bands from normative adult gait (Kadaba et al. 1990,
J Orthop Res 8:383; Perry & Burnfield, Gait Analysis): initial contact ≈ 5 ± 5°, loading-response peak
≈ 15-25°, mid-stance minimum ≈ 0-10°, swing peak ≈ 60-70° at ≈ 70-75 % of the cycle.

About 25 s on one core (6 conversions, 1 scaling, 2 + 5 IK solves in child processes).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pimsk.config import load_subject, resolve_path
from pimsk.paths import PROJECT_ROOT

SUBJECT_FILE = PROJECT_ROOT / "subjects" / "motonms_unipd" / "subject.yaml"
KNEE = "knee_angle_r"  # gait2392: negative in flexion


def _markers_of(trial: dict, subject: dict, emg: bool = True):
    """Converted markers (m, OpenSim axes) of one trial, renamed and with ``drop_markers`` removed, and the
    conversion itself (with the EMG channels of the subject file where ``emg``: the static has none)."""
    from pimsk.convert.c3d_to_opensim import C3DConvertOptions, convert_c3d_data
    from pimsk.io.c3d_read import read_c3d
    from pimsk.io.containers import Markers

    path = resolve_path(trial["file"], Path(subject["_dir"]))
    plates = trial.get("plates", "auto")
    options = C3DConvertOptions(
        rotation=subject["lab_to_opensim"],
        plate_feet=plates if plates == "auto" else {int(k): v for k, v in plates.items()},
        rename_markers=dict(trial.get("rename_markers", {})),
        emg_map=dict(subject["emg"]["channels"]) if emg else {},
        subject=subject["id"], trial=trial["name"])
    conv = convert_c3d_data(read_c3d(path, subject=subject["id"], trial=trial["name"]), options)
    mk = conv.markers
    keep = [i for i, n in enumerate(mk.labels) if n not in set(trial.get("drop_markers", []))]
    kept = Markers(mk.time_s, mk.xyz[:, keep, :], [mk.labels[i] for i in keep], mk.rate_hz, mk.units, dict(mk.meta))
    return kept, conv


def _tasks(weights: dict, coordinate_weights: dict):
    from pimsk.osim.ik_tasks import CoordinateTask, IKTasks

    return IKTasks(markers={k: float(v) for k, v in weights.items()},
                   coordinates={k: CoordinateTask(weight=float(w)) for k, w in coordinate_weights.items()})


@pytest.fixture(scope="module")
def subject(data_dir):
    doc = load_subject(SUBJECT_FILE)
    if not resolve_path(doc["static"]["file"], Path(doc["_dir"])).is_file():
        pytest.skip(f"MOtoNMS UNIPD data not found under {data_dir / 'motonms'}")
    return doc


@pytest.fixture(scope="module")
def run(subject, opensim_module, tmp_path_factory):
    """Convert, generate the marker set, scale, IK every walk; returns what the tests look at."""
    from pimsk.io.trc import write_trc
    from pimsk.osim.ik import run_ik
    from pimsk.osim.marker_errors import compute_marker_errors
    from pimsk.osim.markersets import resolve
    from pimsk.osim.scale import Measurement, run_scale
    from pimsk.osim.storage import read_storage

    out = tmp_path_factory.mktemp("motonms_unipd")
    model = resolve_path(subject["model"], Path(subject["_dir"]))
    marker_set = resolve(subject["marker_set"], model, out / "markerset")
    sc = subject["scaling"]
    tasks_static = _tasks(sc["marker_weights"], sc.get("coordinate_weights", {}))
    tasks_ik = _tasks(sc["marker_weights"], subject["ik"].get("coordinate_weights", {}))

    static, _ = _markers_of(subject["static"], subject, emg=False)
    static_trc = out / "static.trc"
    write_trc(static_trc, static)
    t_static = (float(static.time_s[0]), float(static.time_s[-1]))
    scaled = run_scale(
        generic_model=model, static_trc=static_trc, out_dir=out / "scale", mass_kg=subject["mass_kg"],
        measurements=[Measurement(m["name"], [tuple(p) for p in m["marker_pairs"]], dict(m["bodies"]))
                      for m in sc["measurements"]],
        tasks=tasks_static, time_range=t_static, marker_set_file=marker_set, height_m=subject["height_m"],
        max_marker_rms_m=sc["max_marker_rms_m"], max_marker_error_m=sc["max_marker_error_m"],
        subject=subject["id"], trial="static")
    # the fit that marker placement starts from: scaled model, markers where the marker set put them
    unplaced = compute_marker_errors(model=scaled.model_scaled_only, trc=static_trc, time_range=t_static,
                                     tasks=tasks_static, work_dir=out / "scale", log_file=out / "scale" / "scale.log",
                                     step="unplaced-marker-errors", subject=subject["id"], trial="static")
    walks = {}
    for trial in subject["trials"]:
        mk, conv = _markers_of(trial, subject)
        (out / trial["name"]).mkdir()
        trc = out / trial["name"] / "markers.trc"
        write_trc(trc, mk)
        t0, t1 = trial["time_range_s"]
        ik = run_ik(model=scaled.model, trc=trc, out_dir=out / trial["name"] / "ik", tasks=tasks_ik,
                    time_range=(t0, t1), subject=subject["id"], trial=trial["name"])
        walks[trial["name"]] = {
            "coords": read_storage(ik.outputs[0]),
            "errors": read_storage(ik.extra["marker_errors"]),
            "time_range": (t0, t1), "conv": conv}
    return {"out": out, "model": model, "marker_set": marker_set, "static": static, "scaled": scaled,
            "unplaced": unplaced, "walks": walks}


def test_subject_file_is_complete(subject):
    """Five walks, each one right stride long, plates assigned, and 15 EMG channels on 15 gait2392 muscles."""
    walks = subject["trials"]
    assert len(walks) == 5
    for t in walks:
        t0, t1 = t["time_range_s"]
        assert 0.9 < t1 - t0 < 1.4, t["name"]  # a stride at 0.8-1.1 m/s
        assert t["plates"] == {"1": "r", "2": "l"}
    model = resolve_path(subject["model"], Path(subject["_dir"]))
    muscles = {el.get("name") for el in ET.parse(model).getroot().iter() if el.tag.endswith("Muscle")}
    mapped = list(subject["emg"]["channels"].values())
    assert len(mapped) == 15 and len(set(mapped)) == 15
    assert set(mapped) <= muscles, sorted(set(mapped) - muscles)


def test_marker_set_is_the_protocol_and_symmetric(run, subject):
    """30 protocol markers on the right bodies; each left marker mirrors its right one (the model is symmetric)."""
    from pimsk.osim.markersets.unipd_fullbody import MARKERS

    root = ET.parse(run["marker_set"]).getroot()
    loc = {m.get("name"): (m.findtext("socket_parent_frame").strip(),
                           np.array([float(v) for v in m.findtext("location").split()])) for m in root.iter("Marker")}
    assert sorted(loc) == sorted(MARKERS) == sorted(subject["scaling"]["marker_weights"])
    for name, (frame, xyz) in loc.items():
        if name[0] == "R" and "L" + name[1:] in loc:
            lframe, lxyz = loc["L" + name[1:]]
            assert lframe == (frame[:-2] + "_l" if frame.endswith("_r") else frame), name
            np.testing.assert_allclose(lxyz, xyz * (1, 1, -1), atol=1e-6, err_msg=name)


def test_emg_channels_become_muscles(run, subject):
    """The walks' EMG comes out named by gait2392 muscle at the 1020 Hz analog rate."""
    emg = run["walks"]["walk1"]["conv"].emg
    assert emg is not None
    assert sorted(emg.labels) == sorted(subject["emg"]["channels"].values())
    assert np.median(np.diff(emg.time_s)) == pytest.approx(1 / 1020, rel=1e-6)


def test_scale_factors_are_the_marker_distance_ratios(run, subject, opensim_module):
    """Each body axis gets the mean over its measurement's marker pairs of measured/model distance (measured:
    mean over the static's frames of the per-frame distance; model: generic model's markers in the default
    pose), and the scaled model weighs the subject's mass."""
    from pimsk.osim.scale import read_manual_scales

    osim = opensim_module
    model = osim.Model(str(run["model"]))
    model.updateMarkerSet(osim.MarkerSet(str(run["marker_set"])))
    state = model.initSystem()
    model_pos = {m.getName(): np.array([m.getLocationInGround(state).get(i) for i in range(3)])
                 for m in model.getMarkerSet()}
    static = run["static"]
    xyz = {n: static.xyz[:, i, :] for i, n in enumerate(static.labels)}
    expected: dict[str, np.ndarray] = {}
    for meas in subject["scaling"]["measurements"]:
        pairs = [p for p in meas["marker_pairs"] if p[0] in xyz and p[1] in xyz]
        ratio = np.mean([np.nanmean(np.linalg.norm(xyz[a] - xyz[b], axis=1))
                         / np.linalg.norm(model_pos[a] - model_pos[b]) for a, b in pairs])
        for body, axes in meas["bodies"].items():
            f = expected.setdefault(body, np.full(3, np.nan))
            for ax in axes.split():
                f["XYZ".index(ax)] = ratio
    got = read_manual_scales(run["scaled"].scale_set)
    for body, f in expected.items():
        np.testing.assert_allclose(got[body], f, rtol=1e-5, err_msg=body)
    print("\nscale factors (x y z):\n" + "\n".join(f"  {b:8s} {np.round(got[b], 3)}" for b in sorted(expected)))
    scaled = osim.Model(str(run["scaled"].model))
    assert scaled.getTotalMass(scaled.initSystem()) == pytest.approx(subject["mass_kg"], rel=1e-6)


def test_static_fit_before_marker_placement(run, subject):
    """The scaled model with the marker set's own marker positions fits the static pose to < 2 cm RMS."""
    errs = run["unplaced"]
    print(f"\nstatic marker errors before placement (m):\n{errs.table()}")
    assert "RIMH" not in errs.markers  # dropped: mislabelled in the static
    assert errs.total_rms_m < subject["scaling"]["max_marker_rms_m"]
    placed = run["scaled"].marker_errors  # after placement the markers sit on the static means
    assert placed.total_rms_m < errs.total_rms_m / 2


def _cycle(coords, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    """(fraction of the gait cycle, right knee flexion in degrees) of an IK result."""
    assert coords.in_degrees
    return (coords.time_s - t0) / (t1 - t0), -coords.column(KNEE)


@pytest.mark.parametrize("name", ["walk1", "walk2", "walk3", "walk4", "walk5"])
def test_walk_ik_fits_and_knee_is_physiological(run, name):
    """IK marker RMS < 2 cm over the right stride; right knee flexion follows the normal gait pattern."""
    w = run["walks"][name]
    err = w["errors"].data  # (n_frames, n_markers) m
    rms = float(np.sqrt(np.nanmean(err ** 2)))
    per_marker = np.sqrt(np.nanmean(err ** 2, axis=0))
    worst = ", ".join(f"{w['errors'].labels[i]} {1e3 * per_marker[i]:.0f}" for i in np.argsort(-per_marker)[:4])
    phase, flex = _cycle(w["coords"], *w["time_range"])
    ic = flex[0]
    lr = flex[phase <= 0.25].max()
    mid = flex[(phase >= 0.2) & (phase <= 0.5)].min()
    k = int(np.argmax(flex))
    print(f"\n{name}: IK RMS {1e3 * rms:.1f} mm (worst {worst} mm); knee flexion IC {ic:.1f}, loading peak {lr:.1f}, "
          f"mid-stance min {mid:.1f}, swing peak {flex[k]:.1f} deg at {100 * phase[k]:.0f} % of the cycle")
    assert rms < 0.02
    assert 0.0 <= ic <= 15.0
    assert 10.0 <= lr <= 30.0 and lr > ic
    assert -5.0 <= mid <= 15.0
    assert 55.0 <= flex[k] <= 75.0 and 0.6 <= phase[k] <= 0.85
    assert flex[-1] < 20.0  # extended again at the next heel strike
